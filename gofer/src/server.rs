//! The gofer's request loop: the only code that touches host files.
//!
//! Every host lookup is `openat(dirfd, one_name, O_PATH|O_NOFOLLOW)` from a
//! file the server already holds, starting at the mount's root; names are
//! single components other than `.` and `..`. A walk never follows a
//! symlink, so no handle can name a file outside the tree under the root
//! (short of a mount inside it).
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

use libc::c_int;
use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{self, FileStat};

use crate::channel::Channel;
use crate::fd;
use crate::protocol::{valid_name, Attr, Dirent, FsStat, Handle, Request, Response, WalkStep, MAX_MESSAGE, MAX_WALK};
use crate::Error;

/// Room kept in a `Dirents` reply for the enum tag and the vector length.
const DIRENTS_OVERHEAD: usize = 32;

/// Upper bound of one encoded `Dirent` besides its name: the name length
/// (varint, at most 9 bytes), `ino` (varint, at most 9) and `kind` (1).
const DIRENT_OVERHEAD: usize = 19;

/// The `open(2)` flags the sentry may ask for; others are dropped.
const OPEN_ALLOWED: c_int = libc::O_ACCMODE
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DIRECTORY
    | libc::O_NOATIME
    | libc::O_DIRECT
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_LARGEFILE
    | libc::O_PATH;

/// A file held for the sentry.
struct Node {
    /// `O_PATH|O_NOFOLLOW` fd of the file itself.
    fd: Arc<OwnedFd>,
    /// The directory it was found in and its name there, to reopen a
    /// non-directory; `None` for the root.
    parent: Option<(Arc<OwnedFd>, CString)>,
    /// `st_mode & S_IFMT` when it was looked up.
    kind: u32,
    /// Directory listing of the scan in progress (Getdents).
    listing: Option<Vec<Dirent>>,
}

impl Node {
    fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }

    /// Opens the file for I/O with `flags` (which carry O_NOFOLLOW).
    ///
    /// A directory reopens through its own fd (`openat(fd, ".")`), which
    /// always names the same inode; anything else reopens by name in its
    /// parent, without following a symlink.
    fn reopen(&self, flags: OFlag) -> nix::Result<OwnedFd> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        match &self.parent {
            Some((parent, name)) if !self.is_dir() => fd::openat(parent.as_fd(), name, flags),
            _ => fd::openat(self.fd.as_fd(), c".", flags),
        }
    }
}

/// Serves one mount over one channel.
pub struct Server {
    root: Arc<OwnedFd>,
    readonly: bool,
    nodes: HashMap<Handle, Node>,
    /// The next handle; handles start at 1 and are never reused.
    next: Handle,
}

impl Server {
    /// A server for the tree under `root`, an `O_PATH|O_DIRECTORY` fd of
    /// the mount's root as the gofer sees it. With `readonly`, every open
    /// for writing fails with `EROFS`.
    pub fn new(root: OwnedFd, readonly: bool) -> Self {
        Server { root: Arc::new(root), readonly, nodes: HashMap::new(), next: 1 }
    }

    /// Answers requests until the peer closes the channel (then `Ok`).
    ///
    /// A request that cannot be decoded gets `Error(EINVAL)`; only a broken
    /// channel ends the loop with an error.
    pub fn serve(&mut self, chan: &Channel) -> Result<(), Error> {
        loop {
            let req = match chan.recv::<Request>() {
                Ok((req, fds)) => {
                    if !fds.is_empty() {
                        tracing::warn!(target: "gofer::rpc", count = fds.len(), "dropping fds sent with a request");
                    }
                    req
                }
                Err(Error::Closed) => {
                    tracing::debug!(target: "gofer::rpc", "channel closed, gofer done");
                    return Ok(());
                }
                Err(e @ (Error::Decode { .. } | Error::Truncated { .. })) => {
                    tracing::warn!(target: "gofer::rpc", error = %e, "malformed request");
                    match chan.send(&Response::Error(libc::EINVAL), &[]) {
                        Ok(()) => continue,
                        Err(Error::Closed) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
            tracing::trace!(target: "gofer::rpc", ?req, "request");
            let (resp, donated) = self.handle(req);
            tracing::trace!(target: "gofer::rpc", ?resp, "reply");
            let sent = match &donated {
                Some(f) => chan.send(&resp, &[f.as_fd()]),
                None => chan.send(&resp, &[]),
            };
            match sent {
                Ok(()) => {}
                Err(Error::Closed) => return Ok(()),
                Err(e @ Error::TooLarge { .. }) => {
                    // Replies are capped to fit; this is a bug, not the peer's.
                    tracing::error!(target: "gofer::rpc", error = %e, "reply too large");
                    match chan.send(&Response::Error(libc::EIO), &[]) {
                        Ok(()) => {}
                        Err(Error::Closed) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The reply to one request, and the fd donated with it.
    pub(crate) fn handle(&mut self, req: Request) -> (Response, Option<OwnedFd>) {
        let resp = match req {
            Request::Mount => self.mount(),
            Request::Walk { dir, names } => self.walk(dir, names),
            Request::Stat { handle } => self.node(handle).and_then(|n| stat_fd(&n.fd)).map(Response::Attr),
            Request::Open { handle, flags } => {
                return match self.open(handle, flags) {
                    Ok(f) => (Response::Opened, Some(f)),
                    Err(e) => (Response::Error(e), None),
                }
            }
            Request::Getdents { dir, offset, count } => self.getdents(dir, offset, count),
            Request::Readlink { handle } => self.readlink(handle),
            Request::Statfs { handle } => self.node(handle).and_then(|n| statfs_fd(&n.fd)).map(Response::FsStat),
            Request::Close { handle } => match self.nodes.remove(&handle) {
                Some(_) => Ok(Response::Ok),
                None => Err(libc::EBADF),
            },
        };
        (resp.unwrap_or_else(Response::Error), None)
    }

    fn node(&self, h: Handle) -> Result<&Node, i32> {
        self.nodes.get(&h).ok_or(libc::EBADF)
    }

    fn insert(&mut self, node: Node) -> Handle {
        let h = self.next;
        self.next += 1;
        self.nodes.insert(h, node);
        h
    }

    fn mount(&mut self) -> Result<Response, i32> {
        let attr = stat_fd(&self.root)?;
        let root = self.insert(Node {
            fd: Arc::clone(&self.root),
            parent: None,
            kind: attr.mode & libc::S_IFMT,
            listing: None,
        });
        Ok(Response::Mounted { root, attr })
    }

    fn walk(&mut self, dir: Handle, names: Vec<Vec<u8>>) -> Result<Response, i32> {
        if names.len() > MAX_WALK || !names.iter().all(|n| valid_name(n)) {
            return Err(libc::EINVAL);
        }
        let start = self.node(dir)?;
        let mut cur = Arc::clone(&start.fd);
        let mut cur_kind = start.kind;
        let mut found: Vec<(Node, Attr)> = Vec::with_capacity(names.len());
        let mut missing = false;
        for name in names {
            if cur_kind != libc::S_IFDIR {
                // Dropping `found` closes what this walk opened.
                return Err(libc::ENOTDIR);
            }
            // valid_name excludes NUL bytes.
            let name = CString::new(name).map_err(|_| libc::EINVAL)?;
            let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW;
            let child = match fd::openat(cur.as_fd(), &name, flags) {
                Ok(f) => Arc::new(f),
                Err(Errno::ENOENT) => {
                    missing = true;
                    break;
                }
                Err(e) => return Err(e as i32),
            };
            let attr = stat_fd(&child)?;
            let kind = attr.mode & libc::S_IFMT;
            found.push((Node { fd: Arc::clone(&child), parent: Some((cur, name)), kind, listing: None }, attr));
            if kind == libc::S_IFLNK {
                break;
            }
            cur = child;
            cur_kind = kind;
        }
        let steps = found.into_iter().map(|(node, attr)| WalkStep { handle: self.insert(node), attr }).collect();
        Ok(Response::Walked { steps, missing })
    }

    fn open(&mut self, h: Handle, flags: u32) -> Result<OwnedFd, i32> {
        let node = self.node(h)?;
        let flags = c_int::from_ne_bytes(flags.to_ne_bytes());
        let tmpfile = libc::O_TMPFILE & !libc::O_DIRECTORY;
        if flags & (libc::O_CREAT | tmpfile) != 0 {
            return Err(libc::EINVAL);
        }
        let access = flags & libc::O_ACCMODE;
        if access == libc::O_ACCMODE {
            return Err(libc::EINVAL);
        }
        let path_only = flags & libc::O_PATH != 0;
        let writes = !path_only && (access != libc::O_RDONLY || flags & libc::O_TRUNC != 0);
        if writes && node.is_dir() {
            // Linux's order: a directory is never writable, read-only or not.
            return Err(libc::EISDIR);
        }
        if writes && self.readonly {
            return Err(libc::EROFS);
        }
        let mut flags = flags & OPEN_ALLOWED;
        match node.kind {
            libc::S_IFLNK => return Err(libc::ELOOP),
            // As if the mount were `nodev`: a device node in the rootfs must
            // not reach the host's device.
            libc::S_IFCHR | libc::S_IFBLK if !path_only => return Err(libc::EACCES),
            libc::S_IFSOCK if !path_only => return Err(libc::ENXIO),
            // Opening a FIFO blocks until the other end opens, which would
            // stall the gofer; a non-blocking open never waits.
            libc::S_IFIFO => flags |= libc::O_NONBLOCK,
            _ => {}
        }
        node.reopen(OFlag::from_bits_retain(flags)).map_err(|e| e as i32)
    }

    fn getdents(&mut self, dir: Handle, offset: u64, count: u32) -> Result<Response, i32> {
        let node = self.nodes.get_mut(&dir).ok_or(libc::EBADF)?;
        if !node.is_dir() {
            return Err(libc::ENOTDIR);
        }
        if offset == 0 || node.listing.is_none() {
            node.listing = Some(list_dir(node)?);
        }
        let listing = node.listing.as_deref().unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(listing.len());
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let mut budget = MAX_MESSAGE - DIRENTS_OVERHEAD;
        let mut out = Vec::new();
        for d in listing[start..].iter().take(count) {
            let cost = d.name.len() + DIRENT_OVERHEAD;
            if cost > budget {
                break;
            }
            budget -= cost;
            out.push(d.clone());
        }
        Ok(Response::Dirents(out))
    }

    fn readlink(&self, h: Handle) -> Result<Response, i32> {
        let node = self.node(h)?;
        if node.kind != libc::S_IFLNK {
            return Err(libc::EINVAL);
        }
        let target = nix::fcntl::readlinkat(Some(node.fd.as_raw_fd()), c"").map_err(|e| e as i32)?;
        Ok(Response::Link(std::os::unix::ffi::OsStringExt::into_vec(target)))
    }
}

/// Every entry of a directory but `.` and `..`.
fn list_dir(node: &Node) -> Result<Vec<Dirent>, i32> {
    let fd = node.reopen(OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(|e| e as i32)?;
    let mut dir = Dir::from(fd).map_err(|e| e as i32)?;
    let mut out = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(|e| e as i32)?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        out.push(Dirent { name: name.to_vec(), ino: entry.ino(), kind: dirent_kind(entry.file_type()) });
    }
    Ok(out)
}

fn dirent_kind(t: Option<Type>) -> u8 {
    match t {
        Some(Type::Fifo) => libc::DT_FIFO,
        Some(Type::CharacterDevice) => libc::DT_CHR,
        Some(Type::Directory) => libc::DT_DIR,
        Some(Type::BlockDevice) => libc::DT_BLK,
        Some(Type::File) => libc::DT_REG,
        Some(Type::Symlink) => libc::DT_LNK,
        Some(Type::Socket) => libc::DT_SOCK,
        None => libc::DT_UNKNOWN,
    }
}

/// `fstatat(fd, "", AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW)`.
fn stat_fd(fd: &OwnedFd) -> Result<Attr, i32> {
    let st = stat::fstatat(Some(fd.as_raw_fd()), c"", AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| e as i32)?;
    Ok(attr_of(&st))
}

fn attr_of(st: &FileStat) -> Attr {
    let nsec = |n: i64| u32::try_from(n).unwrap_or(0);
    Attr {
        mode: st.st_mode,
        nlink: st.st_nlink,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        size: u64::try_from(st.st_size).unwrap_or(0),
        blksize: u64::try_from(st.st_blksize).unwrap_or(0),
        blocks: u64::try_from(st.st_blocks).unwrap_or(0),
        atime: (st.st_atime, nsec(st.st_atime_nsec)),
        mtime: (st.st_mtime, nsec(st.st_mtime_nsec)),
        ctime: (st.st_ctime, nsec(st.st_ctime_nsec)),
        ino: st.st_ino,
        dev: st.st_dev,
    }
}

fn statfs_fd(fd: &OwnedFd) -> Result<FsStat, i32> {
    let fs = nix::sys::statfs::fstatfs(fd).map_err(|e| e as i32)?;
    // fstatfs's wrapper lacks f_frsize; statvfs has it (same syscall in glibc).
    let vfs = nix::sys::statvfs::fstatvfs(fd).map_err(|e| e as i32)?;
    let wide = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Ok(FsStat {
        fs_type: fs.filesystem_type().0,
        bsize: fs.block_size(),
        blocks: fs.blocks(),
        bfree: fs.blocks_free(),
        bavail: fs.blocks_available(),
        files: fs.files(),
        ffree: fs.files_free(),
        namelen: fs.maximum_name_length(),
        frsize: wide(vfs.fragment_size()),
        flags: wide(fs.flags().bits()),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt};
    use std::path::Path;
    use std::thread::JoinHandle;

    use super::*;
    use crate::testutil::TempDir;
    use crate::Client;

    /// A server rooted at `root` in a thread, and a client to it.
    fn start(root: &Path, readonly: bool) -> (Client, JoinHandle<Result<(), Error>>) {
        let fd = fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_DIRECTORY).open(root).unwrap();
        let (ours, theirs) = Channel::pair().unwrap();
        let t = std::thread::spawn(move || Server::new(OwnedFd::from(fd), readonly).serve(&theirs));
        (Client::new(ours), t)
    }

    fn stop(client: Client, t: JoinHandle<Result<(), Error>>) {
        drop(client);
        t.join().unwrap().unwrap();
    }

    fn is_link(s: &WalkStep) -> bool {
        s.attr.mode & libc::S_IFMT == libc::S_IFLNK
    }

    #[test]
    fn handle_lifecycle() {
        let dir = TempDir::new();
        fs::write(dir.path().join("f"), b"x").unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, attr) = c.mount().unwrap();
        assert_eq!(root, 1);
        assert_eq!(attr.mode & libc::S_IFMT, libc::S_IFDIR);
        assert_eq!(attr.ino, fs::metadata(dir.path()).unwrap().ino());
        let (steps, missing) = c.walk(root, &[b"f"]).unwrap();
        assert!(!missing);
        let f = steps[0].handle;
        assert!(f > root);
        assert_eq!(c.stat(f).unwrap(), steps[0].attr);
        assert_eq!(steps[0].attr.size, 1);
        c.close(f).unwrap();
        assert_eq!(c.close(f), Err(libc::EBADF));
        assert_eq!(c.stat(f), Err(libc::EBADF));
        assert_eq!(c.open(f, 0).unwrap_err(), libc::EBADF);
        assert_eq!(c.getdents(f, 0, 10), Err(libc::EBADF));
        assert_eq!(c.walk(f, &[b"x"]), Err(libc::EBADF));
        assert_eq!(c.stat(12345), Err(libc::EBADF));
        // Handles are never reused.
        let (again, _) = c.walk(root, &[b"f"]).unwrap();
        assert!(again[0].handle > f);
        let (root2, _) = c.mount().unwrap();
        assert!(root2 > again[0].handle);
        assert!(c.statfs(root).unwrap().bsize > 0);
        assert!(!c.is_broken());
        stop(c, t);
    }

    #[test]
    fn walk_semantics() {
        let dir = TempDir::new();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/b/file"), b"data").unwrap();
        symlink("b/file", dir.path().join("a/link")).unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();

        let (steps, missing) = c.walk(root, &[b"a", b"b", b"file"]).unwrap();
        assert!(!missing);
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[2].attr.size, 4);

        // Missing first name: no step.
        assert_eq!(c.walk(root, &[b"nope", b"x"]).unwrap(), (vec![], true));
        // Missing later name: the steps before it.
        let (steps, missing) = c.walk(root, &[b"a", b"nope", b"x"]).unwrap();
        assert!(missing);
        assert_eq!(steps.len(), 1);

        // A symlink ends the walk after its step, unfollowed.
        let (steps, missing) = c.walk(root, &[b"a", b"link", b"more"]).unwrap();
        assert!(!missing);
        assert_eq!(steps.len(), 2);
        assert!(is_link(&steps[1]));
        assert_eq!(c.readlink(steps[1].handle).unwrap(), b"b/file");
        assert_eq!(c.readlink(steps[0].handle), Err(libc::EINVAL));

        // A file followed by more names.
        assert_eq!(c.walk(root, &[b"a", b"b", b"file", b"x"]), Err(libc::ENOTDIR));

        // Invalid names.
        for bad in [&b".."[..], b".", b"", b"a/b", b"a\0"] {
            assert_eq!(c.walk(root, &[b"a", bad]), Err(libc::EINVAL), "{bad:?}");
        }
        assert_eq!(c.walk(root, &[]).unwrap(), (vec![], false));
        stop(c, t);
    }

    #[test]
    fn long_walk_is_split() {
        let dir = TempDir::new();
        let depth = MAX_WALK * 2 + 10;
        let mut path = dir.path().to_owned();
        for _ in 0..depth {
            path.push("d");
        }
        fs::create_dir_all(&path).unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let names = vec![&b"d"[..]; depth];
        let (steps, missing) = c.walk(root, &names).unwrap();
        assert!(!missing);
        assert_eq!(steps.len(), depth);
        let mut longer = names.clone();
        longer.push(b"nope");
        let (steps, missing) = c.walk(root, &longer).unwrap();
        assert!(missing);
        assert_eq!(steps.len(), depth);
        stop(c, t);
    }

    #[test]
    fn open_donates_a_readable_fd() {
        let dir = TempDir::new();
        fs::write(dir.path().join("f"), b"hello gofer").unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let (steps, _) = c.walk(root, &[b"f"]).unwrap();
        let fd = c.open(steps[0].handle, libc::O_RDONLY as u32).unwrap();
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
        let mut s = String::new();
        fs::File::from(fd).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello gofer");
        // Writable when not read-only.
        let w = c.open(steps[0].handle, (libc::O_WRONLY | libc::O_APPEND) as u32).unwrap();
        nix::unistd::write(&w, b"!").unwrap();
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"hello gofer!");
        // No creating.
        assert_eq!(c.open(steps[0].handle, libc::O_CREAT as u32).unwrap_err(), libc::EINVAL);
        assert_eq!(c.open(root, (libc::O_TMPFILE | libc::O_RDWR) as u32).unwrap_err(), libc::EINVAL);
        // A directory opens too.
        let d = c.open(root, (libc::O_RDONLY | libc::O_DIRECTORY) as u32).unwrap();
        assert_eq!(nix::sys::stat::fstat(d.as_raw_fd()).unwrap().st_ino, fs::metadata(dir.path()).unwrap().ino());
        assert_eq!(c.open(steps[0].handle, libc::O_DIRECTORY as u32).unwrap_err(), libc::ENOTDIR);
        stop(c, t);
    }

    #[test]
    fn readonly_refuses_writes() {
        let dir = TempDir::new();
        fs::write(dir.path().join("f"), b"keep").unwrap();
        let (c, t) = start(dir.path(), true);
        let (root, _) = c.mount().unwrap();
        let (steps, _) = c.walk(root, &[b"f"]).unwrap();
        let h = steps[0].handle;
        for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_RDONLY | libc::O_TRUNC, libc::O_WRONLY | libc::O_APPEND] {
            assert_eq!(c.open(h, flags as u32).unwrap_err(), libc::EROFS, "{flags:#o}");
        }
        assert!(c.open(h, libc::O_RDONLY as u32).is_ok());
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"keep");
        assert_eq!(c.open(root, libc::O_RDWR as u32).unwrap_err(), libc::EISDIR);
        stop(c, t);
    }

    #[test]
    fn special_files() {
        let dir = TempDir::new();
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        nix::sys::stat::mknod(
            &dir.path().join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let (fifo, _) = c.walk(root, &[b"fifo"]).unwrap();
        // Does not block with no writer.
        assert!(c.open(fifo[0].handle, libc::O_RDONLY as u32).is_ok());
        let (null, _) = c.walk(root, &[b"null"]).unwrap();
        assert_eq!(c.open(null[0].handle, libc::O_RDWR as u32).unwrap_err(), libc::EACCES);
        stop(c, t);
    }

    #[test]
    fn getdents_lists_3000_entries() {
        let dir = TempDir::new();
        fs::create_dir(dir.path().join("big")).unwrap();
        // Long names, so the whole listing is several times MAX_MESSAGE.
        let name = |i: usize| format!("{i:0>200}");
        for i in 0..3000 {
            fs::write(dir.path().join("big").join(name(i)), b"").unwrap();
        }
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let (steps, _) = c.walk(root, &[b"big"]).unwrap();
        let big = steps[0].handle;
        for count in [u32::MAX, 700] {
            let mut all = Vec::new();
            let mut calls = 0;
            loop {
                let chunk = c.getdents(big, all.len() as u64, count).unwrap();
                calls += 1;
                if chunk.is_empty() {
                    break;
                }
                assert!(chunk.len() <= count as usize);
                all.extend(chunk);
            }
            assert!(calls >= 4, "{calls} calls");
            let mut names: Vec<Vec<u8>> = all.iter().map(|d| d.name.clone()).collect();
            names.sort();
            let want: Vec<Vec<u8>> = (0..3000).map(|i| name(i).into_bytes()).collect();
            assert_eq!(names, want);
            assert!(all.iter().all(|d| d.kind == libc::DT_REG && d.ino != 0));
        }
        // Offset 0 refreshes the cached listing.
        fs::write(dir.path().join("big/new"), b"").unwrap();
        let mut total = 0;
        loop {
            let chunk = c.getdents(big, total, u32::MAX).unwrap();
            if chunk.is_empty() {
                break;
            }
            total += chunk.len() as u64;
        }
        assert_eq!(total, 3001);
        assert_eq!(c.getdents(big, 1 << 40, 10).unwrap(), vec![]);
        // Not a directory.
        let (f, _) = c.walk(big, &[b"new"]).unwrap();
        assert_eq!(c.getdents(f[0].handle, 0, 10), Err(libc::ENOTDIR));
        stop(c, t);
    }

    #[test]
    fn symlinks_never_escape() {
        let dir = TempDir::new();
        let root_dir = dir.path().join("root");
        fs::create_dir_all(root_dir.join("a/b")).unwrap();
        symlink("../../..", root_dir.join("a/b/up")).unwrap();
        symlink("/etc", root_dir.join("a/b/abs")).unwrap();
        symlink("/etc", root_dir.join("abs")).unwrap();
        fs::write(dir.path().join("outside"), b"secret").unwrap();
        let (c, t) = start(&root_dir, false);
        let (root, _) = c.mount().unwrap();
        let etc_ino = fs::metadata("/etc").unwrap().ino();
        let outside_ino = fs::metadata(dir.path()).unwrap().ino();
        let walks: [&[&[u8]]; 5] = [
            &[b"a", b"b", b"up", b"outside"],
            &[b"a", b"b", b"up", b"etc", b"passwd"],
            &[b"a", b"b", b"abs", b"passwd"],
            &[b"abs", b"passwd"],
            &[b"abs"],
        ];
        for names in walks {
            let (steps, missing) = c.walk(root, names).unwrap();
            assert!(!missing);
            let last = steps.last().unwrap();
            assert!(is_link(last), "{names:?}");
            for s in &steps {
                assert_ne!(s.attr.ino, etc_ino);
                assert_ne!(s.attr.ino, outside_ino);
            }
            assert_eq!(c.open(last.handle, libc::O_RDONLY as u32).unwrap_err(), libc::ELOOP);
            assert_eq!(c.open(last.handle, (libc::O_RDONLY | libc::O_DIRECTORY) as u32).unwrap_err(), libc::ELOOP);
            // Walking on from the symlink's handle goes nowhere.
            assert_eq!(c.walk(last.handle, &[b"passwd"]), Err(libc::ENOTDIR));
            assert_eq!(c.getdents(last.handle, 0, 10), Err(libc::ENOTDIR));
        }
        // `..` is refused at every position.
        assert_eq!(c.walk(root, &[b".."]), Err(libc::EINVAL));
        assert_eq!(c.walk(root, &[b"a", b"..", b".."]), Err(libc::EINVAL));
        stop(c, t);
    }

    #[test]
    fn malformed_requests_get_einval() {
        let dir = TempDir::new();
        let fd =
            fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_DIRECTORY).open(dir.path()).unwrap();
        let (ours, theirs) = Channel::pair().unwrap();
        let t = std::thread::spawn(move || Server::new(OwnedFd::from(fd), false).serve(&theirs));
        ours.send(&(200u8, "junk"), &[]).unwrap();
        let (resp, _): (Response, _) = ours.recv().unwrap();
        assert_eq!(resp, Response::Error(libc::EINVAL));
        // Too many names in one walk.
        let names = vec![b"a".to_vec(); MAX_WALK + 1];
        ours.send(&Request::Walk { dir: 1, names }, &[]).unwrap();
        let (resp, _): (Response, _) = ours.recv().unwrap();
        assert_eq!(resp, Response::Error(libc::EINVAL));
        // Still serving.
        ours.send(&Request::Mount, &[]).unwrap();
        let (resp, _): (Response, _) = ours.recv().unwrap();
        assert!(matches!(resp, Response::Mounted { root: 1, .. }));
        drop(ours);
        t.join().unwrap().unwrap();
    }

    #[test]
    fn client_fails_with_eio_when_the_gofer_is_gone() {
        let (ours, theirs) = Channel::pair().unwrap();
        drop(theirs);
        let c = Client::new(ours);
        assert_eq!(c.mount(), Err(libc::EIO));
        assert!(c.is_broken());
        assert_eq!(c.stat(1), Err(libc::EIO));
    }

    #[test]
    fn client_is_shared_between_threads() {
        let dir = TempDir::new();
        fs::write(dir.path().join("f"), b"x").unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let (steps, _) = c.walk(root, &[b"f"]).unwrap();
                        assert_eq!(c.stat(steps[0].handle).unwrap().size, 1);
                        c.close(steps[0].handle).unwrap();
                    }
                });
            }
        });
        stop(c, t);
    }
}
