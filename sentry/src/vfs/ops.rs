//! Changes to the tree: creating, linking, removing and renaming names.
//! tmpfs directories are changed in place; gofer mounts are read-only for
//! now (the gofer protocol's write operations come with the file-system
//! work), and the sentry's synthetic trees refuse changes.
use std::sync::Arc;

use gofer::Attr;
use syscalls::flags::access as A;
use syscalls::flags::mode::{S_IFDIR, S_ISVTX};
use syscalls::Errno;

use super::open::may_access;
use super::tmpfs::{self, Contents};
use super::{Dentry, Node};
use crate::task::Credentials;

/// What a new name is.
pub enum NewFile {
    Regular,
    Dir,
    Symlink(Vec<u8>),
}

use syscalls::flags::files::{RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT};

fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Why a directory that is not a tmpfs cannot change.
fn not_writable(dir: &Dentry) -> Errno {
    match &dir.node {
        Node::Gofer { mount, .. } if !mount.readonly => {
            tracing::warn!(target: "sentry::vfs", "changing a gofer directory is not supported yet");
            Errno::EROFS
        }
        Node::Gofer { .. } => Errno::EROFS,
        _ => Errno::EPERM,
    }
}

impl Dentry {
    /// The tmpfs inode of a directory that may be changed by `creds`
    /// (write and search permission).
    fn writable_dir(&self, creds: &Credentials) -> Result<&Arc<tmpfs::Inode>, Errno> {
        if !self.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let Node::Tmpfs(inode) = &self.node else { return Err(not_writable(self)) };
        if !may_access(creds, &self.attr(), A::W_OK | A::X_OK, false) {
            return Err(Errno::EACCES);
        }
        Ok(inode)
    }

    /// The sticky-directory rule: only the file's or the directory's owner
    /// (or root) may remove or rename it.
    fn sticky_allows(&self, child: &Dentry, creds: &Credentials) -> bool {
        let dir = self.attr();
        dir.mode & S_ISVTX == 0 || creds.euid == 0 || creds.euid == dir.uid || creds.euid == child.attr().uid
    }

    fn touch_dir(&self, nlink_delta: i64) {
        if let Node::Tmpfs(i) = &self.node {
            let mut a = i.attr();
            let t = tmpfs::now();
            a.mtime = t;
            a.ctime = t;
            a.nlink = (a.nlink as i64 + nlink_delta).max(0) as u64;
        }
    }

    /// Creates `name` in this directory with permission bits `perm` (the
    /// caller applied the umask).
    pub fn create(
        self: &Arc<Dentry>,
        name: &[u8],
        new: NewFile,
        perm: u32,
        creds: &Credentials,
    ) -> Result<Arc<Dentry>, Errno> {
        check_name(name)?;
        if name == b"." || name == b".." {
            return Err(Errno::EEXIST);
        }
        let inode = self.writable_dir(creds)?;
        let dir_attr = self.attr();
        // New files take the directory's group if it is setgid.
        let gid = if dir_attr.mode & syscalls::flags::mode::S_ISGID != 0 { dir_attr.gid } else { creds.egid };
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if children.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let (mode, contents, dirs) = match new {
            NewFile::Regular => (tmpfs::regular_mode(perm), Contents::File(Default::default()), 0),
            NewFile::Dir => {
                let setgid = dir_attr.mode & syscalls::flags::mode::S_ISGID;
                (S_IFDIR | (perm & 0o7777) | setgid, Contents::Dir, 1)
            }
            NewFile::Symlink(target) => (tmpfs::symlink_mode(), Contents::Symlink(target), 0),
        };
        let child = inode.fs.inode(mode, creds.euid, gid, contents);
        let d = Arc::new(Dentry::new(name.to_vec(), Some(self.clone()), Attr::default(), Node::Tmpfs(child)));
        children.insert(name.to_vec(), d.clone());
        drop(children);
        self.touch_dir(dirs);
        Ok(d)
    }

    /// A hard link `name` in this directory to the file of `target`.
    pub fn link(self: &Arc<Dentry>, name: &[u8], target: &Arc<Dentry>, creds: &Credentials) -> Result<(), Errno> {
        check_name(name)?;
        let inode = self.writable_dir(creds)?;
        let Node::Tmpfs(file) = &target.node else { return Err(Errno::EXDEV) };
        if !Arc::ptr_eq(&file.fs, &inode.fs) {
            return Err(Errno::EXDEV);
        }
        if file.is_dir() {
            return Err(Errno::EPERM);
        }
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if children.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let d = Arc::new(Dentry::new(name.to_vec(), Some(self.clone()), Attr::default(), Node::Tmpfs(file.clone())));
        children.insert(name.to_vec(), d);
        drop(children);
        {
            let mut a = file.attr();
            a.nlink += 1;
            a.ctime = tmpfs::now();
        }
        self.touch_dir(0);
        Ok(())
    }

    /// unlink (`dir` false) or rmdir (`dir` true) of `name`.
    pub fn remove(self: &Arc<Dentry>, name: &[u8], dir: bool, creds: &Credentials) -> Result<(), Errno> {
        check_name(name)?;
        if dir && name == b"." {
            return Err(Errno::EINVAL);
        }
        if dir && name == b".." {
            return Err(Errno::ENOTEMPTY);
        }
        let child = match self.cached(name) {
            Some(c) => c,
            None => {
                // Not in a tmpfs: find out whether it exists at all.
                self.walk(&[name])?.0.into_iter().next().ok_or(Errno::ENOENT)?
            }
        };
        self.writable_dir(creds)?;
        let Node::Tmpfs(inode) = &child.node else { return Err(not_writable(self)) };
        if child.mounted.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Err(Errno::EBUSY);
        }
        match (dir, inode.is_dir()) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            _ => {}
        }
        if dir && !child.children.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        if !self.sticky_allows(&child, creds) {
            return Err(Errno::EPERM);
        }
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        match children.get(name) {
            Some(c) if Arc::ptr_eq(c, &child) => {
                children.remove(name);
            }
            _ => return Err(Errno::ENOENT),
        }
        drop(children);
        {
            let mut a = inode.attr();
            a.nlink = if dir { 0 } else { a.nlink.saturating_sub(1) };
            a.ctime = tmpfs::now();
        }
        self.touch_dir(if dir { -1 } else { 0 });
        Ok(())
    }
}

/// Whether `d` is `ancestor` or below it.
fn is_within(d: &Arc<Dentry>, ancestor: &Arc<Dentry>) -> bool {
    let mut cur = Some(d.clone());
    while let Some(c) = cur {
        if Arc::ptr_eq(&c, ancestor) {
            return true;
        }
        cur = c.parent();
    }
    false
}

/// rename(2) and renameat2(2) with RENAME_NOREPLACE / RENAME_EXCHANGE.
pub fn rename(
    old_dir: &Arc<Dentry>,
    old_name: &[u8],
    new_dir: &Arc<Dentry>,
    new_name: &[u8],
    flags: u32,
    creds: &Credentials,
) -> Result<(), Errno> {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || (flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0)
    {
        return Err(Errno::EINVAL);
    }
    check_name(old_name)?;
    check_name(new_name)?;
    for n in [old_name, new_name] {
        if n == b"." || n == b".." {
            return Err(Errno::EBUSY);
        }
    }
    let source =
        old_dir.cached(old_name).or_else(|| old_dir.walk(&[old_name]).ok().and_then(|(f, _)| f.into_iter().next()));
    let source = source.ok_or(Errno::ENOENT)?;
    if flags & RENAME_WHITEOUT != 0 {
        return Err(Errno::EINVAL);
    }
    let from = old_dir.writable_dir(creds)?;
    let to = new_dir.writable_dir(creds)?;
    if !Arc::ptr_eq(&from.fs, &to.fs) {
        return Err(Errno::EXDEV);
    }
    let Node::Tmpfs(src_inode) = &source.node else { return Err(Errno::EXDEV) };
    if source.mounted.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
        return Err(Errno::EBUSY);
    }
    if src_inode.is_dir() && is_within(new_dir, &source) {
        return Err(Errno::EINVAL);
    }
    if !old_dir.sticky_allows(&source, creds) {
        return Err(Errno::EPERM);
    }
    let target = new_dir.cached(new_name);
    if let Some(t) = &target {
        if flags & RENAME_NOREPLACE != 0 {
            return Err(Errno::EEXIST);
        }
        if Arc::ptr_eq(t, &source) || t.tmpfs().is_some_and(|i| Arc::ptr_eq(i, src_inode)) {
            // The same file under both names: nothing to do.
            return Ok(());
        }
        if t.mounted.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Err(Errno::EBUSY);
        }
        if !new_dir.sticky_allows(t, creds) {
            return Err(Errno::EPERM);
        }
        if flags & RENAME_EXCHANGE == 0 {
            match (src_inode.is_dir(), t.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !t.children.lock().unwrap_or_else(|e| e.into_inner()).is_empty() => {
                    return Err(Errno::ENOTEMPTY)
                }
                _ => {}
            }
        } else if t.is_dir() && is_within(old_dir, t) {
            return Err(Errno::EINVAL);
        }
    } else if flags & RENAME_EXCHANGE != 0 {
        return Err(Errno::ENOENT);
    }
    // Both directories' maps, locked in one order.
    let same_dir = Arc::ptr_eq(old_dir, new_dir);
    if flags & RENAME_EXCHANGE != 0 {
        let t = target.ok_or(Errno::ENOENT)?;
        {
            let mut a = old_dir.children.lock().unwrap_or_else(|e| e.into_inner());
            a.insert(old_name.to_vec(), t.clone());
        }
        {
            let mut b = new_dir.children.lock().unwrap_or_else(|e| e.into_inner());
            b.insert(new_name.to_vec(), source.clone());
        }
        t.set_place(old_name, old_dir);
        source.set_place(new_name, new_dir);
        if !same_dir && src_inode.is_dir() != t.is_dir() {
            let delta = if src_inode.is_dir() { 1 } else { -1 };
            new_dir.touch_dir(delta);
            old_dir.touch_dir(-delta);
        } else {
            new_dir.touch_dir(0);
            old_dir.touch_dir(0);
        }
        return Ok(());
    }
    {
        let mut a = old_dir.children.lock().unwrap_or_else(|e| e.into_inner());
        match a.get(old_name) {
            Some(c) if Arc::ptr_eq(c, &source) => {
                a.remove(old_name);
            }
            _ => return Err(Errno::ENOENT),
        }
    }
    let replaced = new_dir.children.lock().unwrap_or_else(|e| e.into_inner()).insert(new_name.to_vec(), source.clone());
    source.set_place(new_name, new_dir);
    if let Some(old) = replaced {
        if let Node::Tmpfs(i) = &old.node {
            let mut a = i.attr();
            a.nlink = if i.is_dir() { 0 } else { a.nlink.saturating_sub(1) };
            a.ctime = tmpfs::now();
        }
        if old.is_dir() {
            new_dir.touch_dir(-1);
        }
    }
    if src_inode.is_dir() && !same_dir {
        old_dir.touch_dir(-1);
        new_dir.touch_dir(1);
    } else {
        old_dir.touch_dir(0);
        new_dir.touch_dir(0);
    }
    src_inode.attr().ctime = tmpfs::now();
    Ok(())
}
