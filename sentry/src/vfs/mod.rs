//! The virtual file system: dentries of the gofer-served root, path
//! resolution (symlinks, `..`, cwd) done here in the sentry, and open files.
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use gofer::{Attr, Client, Handle};
use syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use syscalls::Errno;

pub mod fd_table;
pub mod file;
pub mod open;

pub use fd_table::FdTable;
pub use file::{DirCursor, File, FileKind};

/// Longest path accepted from the guest (PATH_MAX, including the NUL).
pub const PATH_MAX: usize = 4096;
/// Most symlinks followed in one resolution.
const MAX_SYMLINKS: u32 = 40;

/// A mounted file system served by a gofer.
pub struct GoferMount {
    pub client: Client,
    pub readonly: bool,
}

/// A name in the tree, and the file it names.
pub struct Dentry {
    pub name: Vec<u8>,
    pub parent: Option<Arc<Dentry>>,
    pub handle: Handle,
    pub attr: Mutex<Attr>,
    pub mount: Arc<GoferMount>,
    children: Mutex<HashMap<Vec<u8>, Arc<Dentry>>>,
    link: Mutex<Option<Vec<u8>>>,
    /// Host fds the gofer donated for this file, by access mode, shared by
    /// every open file description: data I/O is pread/pwrite at offsets the
    /// sentry keeps, so descriptions need no host fd of their own.
    host_fds: Mutex<[Option<Arc<OwnedFd>>; 3]>,
}

impl Dentry {
    /// The root dentry of a gofer mount.
    pub fn root(mount: Arc<GoferMount>) -> Result<Arc<Dentry>, Errno> {
        let (handle, attr) = mount.client.mount().map_err(Errno::from_raw)?;
        Ok(Arc::new(Dentry::new(Vec::new(), None, handle, attr, mount)))
    }

    fn new(name: Vec<u8>, parent: Option<Arc<Dentry>>, handle: Handle, attr: Attr, mount: Arc<GoferMount>) -> Dentry {
        Dentry {
            name,
            parent,
            handle,
            attr: Mutex::new(attr),
            mount,
            children: Mutex::new(HashMap::new()),
            link: Mutex::new(None),
            host_fds: Mutex::new([None, None, None]),
        }
    }

    pub fn attr(&self) -> Attr {
        *self.attr.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn file_type(&self) -> u32 {
        self.attr().mode & S_IFMT
    }

    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }

    pub fn is_regular(&self) -> bool {
        self.file_type() == S_IFREG
    }

    fn cached(&self, name: &[u8]) -> Option<Arc<Dentry>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// Looks up `names` one after another below `self` in one gofer round
    /// trip, caching every dentry found. Returns the dentries found, which
    /// may be fewer than the names (a missing name or a symlink ends it).
    fn walk(self: &Arc<Dentry>, names: &[&[u8]]) -> Result<(Vec<Arc<Dentry>>, bool), Errno> {
        let (steps, missing) = self.mount.client.walk(self.handle, names).map_err(Errno::from_raw)?;
        let mut out = Vec::with_capacity(steps.len());
        let mut parent = self.clone();
        for (step, name) in steps.into_iter().zip(names) {
            let d =
                Arc::new(Dentry::new(name.to_vec(), Some(parent.clone()), step.handle, step.attr, self.mount.clone()));
            let d = parent.children.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_vec()).or_insert(d).clone();
            out.push(d.clone());
            parent = d;
        }
        Ok((out, missing))
    }

    /// A host fd for the file's data opened with access mode `acc`
    /// (O_RDONLY, O_WRONLY or O_RDWR), asking the gofer only the first time.
    pub fn host_fd(&self, acc: u32) -> Result<Arc<OwnedFd>, Errno> {
        let slot = (acc & 3) as usize;
        if slot > 2 {
            return Err(Errno::EINVAL);
        }
        let mut fds = self.host_fds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fd) = &fds[slot] {
            return Ok(fd.clone());
        }
        let fd = Arc::new(self.mount.client.open(self.handle, acc).map_err(Errno::from_raw)?);
        fds[slot] = Some(fd.clone());
        Ok(fd)
    }

    /// The target of a symlink.
    pub fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if !self.is_symlink() {
            return Err(Errno::EINVAL);
        }
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = &*link {
            return Ok(t.clone());
        }
        let t = self.mount.client.readlink(self.handle).map_err(Errno::from_raw)?;
        *link = Some(t.clone());
        Ok(t)
    }

    /// The absolute path of this dentry below `root`.
    pub fn path_from(self: &Arc<Dentry>, root: &Arc<Dentry>) -> Vec<u8> {
        let mut parts = Vec::new();
        let mut d = self.clone();
        while !Arc::ptr_eq(&d, root) {
            let Some(p) = d.parent.clone() else { break };
            parts.push(d.name.clone());
            d = p;
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        out
    }
}

/// Where a resolution starts and what bounds it.
pub struct Resolver<'a> {
    pub root: &'a Arc<Dentry>,
    pub start: &'a Arc<Dentry>,
}

impl Resolver<'_> {
    /// Resolves `path`; follows a final symlink when `follow` is set.
    pub fn resolve(&self, path: &[u8], follow: bool) -> Result<Arc<Dentry>, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let mut budget = MAX_SYMLINKS;
        self.resolve_from(self.start, path, follow, &mut budget)
    }

    /// Resolves all but the last component; returns the parent directory and
    /// the last name (empty for "/").
    pub fn resolve_parent(&self, path: &[u8]) -> Result<(Arc<Dentry>, Vec<u8>), Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let trimmed = trim_trailing_slashes(path);
        let (dir, name) = match trimmed.iter().rposition(|b| *b == b'/') {
            Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let parent = if dir.is_empty() { self.start.clone() } else { self.resolve(dir, true)? };
        Ok((parent, name.to_vec()))
    }

    fn resolve_from(
        &self,
        start: &Arc<Dentry>,
        path: &[u8],
        follow: bool,
        budget: &mut u32,
    ) -> Result<Arc<Dentry>, Errno> {
        let mut cur = if path.first() == Some(&b'/') { self.root.clone() } else { start.clone() };
        let must_be_dir = path.last() == Some(&b'/');
        let names: Vec<&[u8]> = path.split(|b| *b == b'/').filter(|c| !c.is_empty()).collect();
        let mut i = 0;
        while i < names.len() {
            if !cur.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let name = names[i];
            if name.len() > 255 {
                return Err(Errno::ENAMETOOLONG);
            }
            if name == b"." {
                i += 1;
                continue;
            }
            if name == b".." {
                if !Arc::ptr_eq(&cur, self.root) {
                    if let Some(p) = cur.parent.clone() {
                        cur = p;
                    }
                }
                i += 1;
                continue;
            }
            let child = match cur.cached(name) {
                Some(c) => c,
                None => {
                    // Walk the run of plain names ahead in one round trip.
                    let run: Vec<&[u8]> =
                        names[i..].iter().take_while(|n| **n != b"." && **n != b"..").copied().collect();
                    let (found, _missing) = cur.walk(&run)?;
                    match found.into_iter().next() {
                        Some(c) => c,
                        None => return Err(Errno::ENOENT),
                    }
                }
            };
            let last = i + 1 == names.len();
            if child.is_symlink() && (!last || follow || must_be_dir) {
                if *budget == 0 {
                    return Err(Errno::ELOOP);
                }
                *budget -= 1;
                let target = child.readlink()?;
                cur = self.resolve_from(&cur, &target, true, budget)?;
            } else {
                cur = child;
            }
            i += 1;
        }
        if must_be_dir && !cur.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }
}

fn trim_trailing_slashes(p: &[u8]) -> &[u8] {
    let mut end = p.len();
    while end > 1 && p[end - 1] == b'/' {
        end -= 1;
    }
    &p[..end]
}

/// `struct stat` of gofer attributes.
pub fn attr_to_stat(a: &Attr) -> syscalls::structs::Stat {
    syscalls::structs::Stat {
        st_dev: a.dev,
        st_ino: a.ino,
        st_nlink: a.nlink,
        st_mode: a.mode,
        st_uid: a.uid,
        st_gid: a.gid,
        st_rdev: a.rdev,
        st_size: a.size as i64,
        st_blksize: a.blksize as i64,
        st_blocks: a.blocks as i64,
        st_atime: a.atime.0,
        st_atime_nsec: i64::from(a.atime.1),
        st_mtime: a.mtime.0,
        st_mtime_nsec: i64::from(a.mtime.1),
        st_ctime: a.ctime.0,
        st_ctime_nsec: i64::from(a.ctime.1),
        ..Default::default()
    }
}

/// Gofer attributes of a host `struct stat`.
pub fn host_stat_to_attr(s: &libc::stat) -> Attr {
    Attr {
        mode: s.st_mode,
        nlink: s.st_nlink,
        uid: s.st_uid,
        gid: s.st_gid,
        rdev: s.st_rdev,
        size: s.st_size as u64,
        blksize: s.st_blksize as u64,
        blocks: s.st_blocks as u64,
        atime: (s.st_atime, s.st_atime_nsec as u32),
        mtime: (s.st_mtime, s.st_mtime_nsec as u32),
        ctime: (s.st_ctime, s.st_ctime_nsec as u32),
        ino: s.st_ino,
        dev: s.st_dev,
    }
}

/// Gofer-style attributes of a `struct stat` (mode and ids are what
/// permission checks need).
pub fn host_stat_like(s: &syscalls::structs::Stat) -> Attr {
    Attr { mode: s.st_mode, uid: s.st_uid, gid: s.st_gid, ino: s.st_ino, dev: s.st_dev, ..Default::default() }
}
