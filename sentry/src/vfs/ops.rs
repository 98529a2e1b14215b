//! Changes to the tree: creating, linking, removing and renaming names.
//! tmpfs directories are changed in place. A gofer directory under the root
//! overlay (`--overlay=root:memory`) takes new names from the upper tmpfs;
//! a removed lower name becomes a whiteout, and a lower file is copied up
//! before it changes. A writable gofer mount without an overlay
//! (`--overlay=none`, bind mounts) changes the host files through the
//! gofer, and the dentry cache follows. The sentry's synthetic trees refuse
//! changes.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use gofer::Attr;
use syscalls::flags::access as A;
use syscalls::flags::inotify as IN;
use syscalls::flags::mode::{S_IFDIR, S_IFIFO, S_IFSOCK, S_ISVTX};
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
    /// mknod of a FIFO.
    Fifo,
    /// mknod of a socket file.
    Socket,
    /// A message queue, made by the caller within its creator's limits
    /// (the only file an mqueue file system holds).
    Mqueue(Arc<crate::mqueue::MessageQueue>),
}

/// Where a directory's new names go.
enum Store {
    /// A tmpfs (the directory's own, or the overlay's upper layer).
    Tmpfs(Arc<tmpfs::Tmpfs>),
    /// The host directory behind a gofer handle.
    Host(gofer::Handle, Arc<super::GoferMount>),
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
        Node::Gofer { .. } => Errno::EROFS,
        _ => Errno::EPERM,
    }
}

impl Dentry {
    /// Where new names of this directory go (its tmpfs, the overlay's
    /// upper layer, or the host through the gofer), if `creds` may change
    /// the directory (write and search permission).
    fn writable_dir(&self, creds: &Credentials) -> Result<Store, Errno> {
        if !self.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if self.readonly() {
            return Err(Errno::EROFS);
        }
        let fs = match &self.node {
            Node::Tmpfs(inode) => Store::Tmpfs(inode.fs.clone()),
            Node::Gofer { handle, mount } if mount.writes_through() => Store::Host(*handle, mount.clone()),
            Node::Gofer { mount, .. } => Store::Tmpfs(mount.upper.clone().ok_or_else(|| not_writable(self))?),
            _ => return Err(not_writable(self)),
        };
        if !may_access(creds, &self.attr(), A::W_OK | A::X_OK, false) {
            return Err(Errno::EACCES);
        }
        Ok(fs)
    }

    /// The entry `name` of this directory (None if there is none or it was
    /// removed from the overlay), asking the gofer if it is not cached.
    pub fn child(self: &Arc<Dentry>, name: &[u8]) -> Result<Option<Arc<Dentry>>, Errno> {
        if let Some(c) = self.cached(name) {
            return Ok((!c.is_whiteout()).then_some(c));
        }
        let (found, _) = self.walk(&[name])?;
        Ok(found.into_iter().next().filter(|c| !c.is_whiteout()))
    }

    /// Whether removing `child` from this directory must leave a whiteout:
    /// an overlay directory whose lower layer has the name.
    fn needs_whiteout(&self, child: &Dentry) -> bool {
        matches!(&self.node, Node::Gofer { mount, .. } if mount.upper.is_some())
            && (matches!(child.node, Node::Gofer { .. }) || child.covers_lower.load(Ordering::Relaxed))
    }

    /// Puts `d` at `name` of a directory's map, noting whether it hides a
    /// lower entry (judged by what was there before).
    fn place_child(children: &mut std::collections::HashMap<Vec<u8>, Arc<Dentry>>, name: &[u8], d: &Arc<Dentry>) {
        let hides = children.get(name).is_some_and(|old| {
            old.is_whiteout() || matches!(old.node, Node::Gofer { .. }) || old.covers_lower.load(Ordering::Relaxed)
        });
        d.covers_lower.store(hides, Ordering::Relaxed);
        children.insert(name.to_vec(), d.clone());
    }

    /// Copies the lower file `child` of this overlay directory up into the
    /// upper layer (data, mode, owner, times) and puts the copy in its place.
    pub fn copy_up(self: &Arc<Dentry>, child: &Arc<Dentry>) -> Result<Arc<Dentry>, Errno> {
        let fs = match (&self.node, &child.node) {
            (_, Node::Tmpfs(_)) => return Ok(child.clone()),
            (Node::Gofer { mount, .. }, Node::Gofer { .. }) => mount.upper.clone().ok_or(Errno::EROFS)?,
            _ => return Err(Errno::EXDEV),
        };
        let a = child.attr();
        let inode = if child.is_regular() {
            let inode = fs.inode(a.mode, a.uid, a.gid, Contents::File(Default::default()))?;
            inode.fill_from_host(child.host_fd(0)?.as_ref())?;
            // The file's user.* attributes come along.
            let names = child.list_xattr().unwrap_or_default();
            let mut map = inode.xattrs.lock().unwrap_or_else(|e| e.into_inner());
            for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
                if let Ok(v) = child.get_xattr(name) {
                    map.insert(name.to_vec(), v);
                }
            }
            drop(map);
            inode
        } else if child.is_symlink() {
            fs.inode(a.mode, a.uid, a.gid, Contents::Symlink(child.readlink()?))?
        } else {
            // Directories stay in the lower layer (their new entries go up
            // one by one); devices and FIFOs are not copied.
            return Err(Errno::EXDEV);
        };
        {
            let mut ia = inode.attr();
            ia.atime = a.atime;
            ia.mtime = a.mtime;
            ia.ctime = a.ctime;
        }
        let name = child.name();
        let up = Arc::new(Dentry::new(name.clone(), Some(self.clone()), Attr::default(), Node::Tmpfs(inode)));
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        match children.get(&name) {
            // Someone copied it up meanwhile.
            Some(c) if !Arc::ptr_eq(c, child) && !c.is_whiteout() => Ok(c.clone()),
            _ => {
                Dentry::place_child(&mut children, &name, &up);
                child.move_watches(&up);
                Ok(up)
            }
        }
    }

    /// Changes the attributes of this file with `f`: a tmpfs inode, a lower
    /// file copied up first, or a lower directory's attributes as the
    /// overlay keeps them. `event` is the inotify event the change makes
    /// (0: none).
    pub fn update_attr(self: &Arc<Dentry>, event: u32, f: impl FnOnce(&mut Attr)) -> Result<(), Errno> {
        match &self.node {
            Node::Tmpfs(i) => {
                f(&mut i.attr());
                self.notify(event);
                Ok(())
            }
            Node::Gofer { handle, mount } if mount.writes_through() => {
                let old = self.attr();
                let mut new = old;
                f(&mut new);
                let change = gofer::SetAttr {
                    mode: (new.mode != old.mode).then_some(new.mode & 0o7777),
                    uid: (new.uid != old.uid).then_some(new.uid),
                    gid: (new.gid != old.gid).then_some(new.gid),
                    size: (new.size != old.size).then_some(new.size),
                    atime: (new.atime != old.atime).then_some(new.atime),
                    mtime: (new.mtime != old.mtime).then_some(new.mtime),
                };
                let a = mount.client.setstat(*handle, change).map_err(Errno::from_raw)?;
                if let (Some(size), Some(c)) = (change.size, self.cached_pages()) {
                    c.truncate(size)?;
                }
                self.set_attr(a);
                self.notify(event);
                Ok(())
            }
            Node::Gofer { mount, .. } if mount.upper.is_some() => {
                if self.is_dir() {
                    f(&mut self.attr.lock().unwrap_or_else(|e| e.into_inner()));
                    self.notify(event);
                    return Ok(());
                }
                let up = self.parent().ok_or(Errno::EROFS)?.copy_up(self)?;
                up.update_attr(event, f)
            }
            Node::Gofer { .. } => Err(Errno::EROFS),
            _ => Err(Errno::EPERM),
        }
    }

    /// As filename_create: once the directory may be searched, an existing
    /// name is EEXIST before the directory's EROFS or write permission.
    fn check_name_free(self: &Arc<Dentry>, name: &[u8], creds: &Credentials) -> Result<(), Errno> {
        if !self.is_dir() {
            return Ok(());
        }
        if !may_access(creds, &self.attr(), A::X_OK, false) {
            return Err(Errno::EACCES);
        }
        match self.child(name)? {
            Some(_) => Err(Errno::EEXIST),
            None => Ok(()),
        }
    }

    /// The sticky-directory rule: only the file's or the directory's owner
    /// (or root) may remove or rename it.
    fn sticky_allows(&self, child: &Dentry, creds: &Credentials) -> bool {
        let dir = self.attr();
        dir.mode & S_ISVTX == 0
            || creds.fsuid == dir.uid
            || creds.fsuid == child.attr().uid
            || creds.capable(syscalls::flags::cap::CAP_FOWNER)
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
        self.check_name_free(name, creds)?;
        let store = self.writable_dir(creds)?;
        let dir_attr = self.attr();
        // New files take the directory's group if it is setgid.
        let gid = if dir_attr.mode & syscalls::flags::mode::S_ISGID != 0 { dir_attr.gid } else { creds.fsgid };
        let fs = match store {
            Store::Tmpfs(fs) => fs,
            Store::Host(dh, mount) => {
                let owner = gofer::Owner { uid: creds.fsuid, gid };
                let c = &mount.client;
                let mut fd = None;
                let step = match new {
                    NewFile::Regular => {
                        let flags = syscalls::flags::OpenFlags::O_RDWR.bits();
                        c.create(dh, name, flags, perm & 0o7777, owner).map(|(step, f)| {
                            fd = Some(Arc::new(f));
                            step
                        })
                    }
                    NewFile::Dir => {
                        let setgid = dir_attr.mode & syscalls::flags::mode::S_ISGID;
                        c.mkdir(dh, name, (perm & 0o7777) | setgid, owner)
                    }
                    NewFile::Symlink(target) => c.symlink(dh, name, &target, owner),
                    NewFile::Fifo => c.mknod(dh, name, S_IFIFO | (perm & 0o7777), owner),
                    NewFile::Socket => c.mknod(dh, name, S_IFSOCK | (perm & 0o7777), owner),
                    NewFile::Mqueue(_) => return Err(Errno::EPERM),
                }
                .map_err(Errno::from_raw)?;
                let node = Node::Gofer { handle: step.handle, mount: mount.clone() };
                let d = Arc::new(Dentry::new(name.to_vec(), Some(self.clone()), step.attr, node));
                if let Some(fd) = fd {
                    d.keep_host_fd(fd);
                }
                self.children.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_vec(), d.clone());
                self.mark_stale();
                self.notify_entry(IN::IN_CREATE, name, &d, 0);
                return Ok(d);
            }
        };
        if fs.mqueue != matches!(new, NewFile::Mqueue(_)) {
            // mqueue has no mkdir, symlink or mknod (and queues live
            // nowhere else).
            return Err(Errno::EPERM);
        }
        let (mode, contents, dirs) = match new {
            NewFile::Regular => (tmpfs::regular_mode(perm), Contents::File(Default::default()), 0),
            NewFile::Mqueue(q) => (syscalls::flags::mode::S_IFREG | (perm & 0o7777), Contents::Mqueue(q), 0),
            NewFile::Dir => {
                let setgid = dir_attr.mode & syscalls::flags::mode::S_ISGID;
                (S_IFDIR | (perm & 0o7777) | setgid, Contents::Dir, 1)
            }
            NewFile::Symlink(target) => (tmpfs::symlink_mode(), Contents::Symlink(target), 0),
            NewFile::Fifo => (S_IFIFO | (perm & 0o7777), Contents::Fifo(Default::default()), 0),
            NewFile::Socket => (S_IFSOCK | (perm & 0o7777), Contents::Socket, 0),
        };
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if children.get(name).is_some_and(|c| !c.is_whiteout()) {
            return Err(Errno::EEXIST);
        }
        let child = fs.inode(mode, creds.fsuid, gid, contents)?;
        let d = Arc::new(Dentry::new(name.to_vec(), Some(self.clone()), Attr::default(), Node::Tmpfs(child)));
        Dentry::place_child(&mut children, name, &d);
        drop(children);
        self.touch_dir(dirs);
        self.notify_entry(IN::IN_CREATE, name, &d, 0);
        Ok(d)
    }

    /// A hard link `name` in this directory to the file of `target`.
    pub fn link(self: &Arc<Dentry>, name: &[u8], target: &Arc<Dentry>, creds: &Credentials) -> Result<(), Errno> {
        check_name(name)?;
        self.check_name_free(name, creds)?;
        let store = self.writable_dir(creds)?;
        if target.is_dir() {
            return Err(Errno::EPERM);
        }
        let fs = match store {
            Store::Tmpfs(fs) => fs,
            Store::Host(dh, mount) => {
                let th = match target.gofer() {
                    Some((th, tm)) if Arc::ptr_eq(tm, &mount) => th,
                    _ => return Err(Errno::EXDEV),
                };
                if self.child(name)?.is_some() {
                    return Err(Errno::EEXIST);
                }
                let step = mount.client.link(dh, name, th).map_err(Errno::from_raw)?;
                let node = Node::Gofer { handle: step.handle, mount: mount.clone() };
                let d = Arc::new(Dentry::new(name.to_vec(), Some(self.clone()), step.attr, node));
                self.children.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_vec(), d.clone());
                target.mark_stale();
                self.mark_stale();
                target.notify_self(IN::IN_ATTRIB);
                self.notify_entry(IN::IN_CREATE, name, &d, 0);
                return Ok(());
            }
        };
        let target = match (&target.node, target.parent()) {
            // A lower file of this overlay links as its upper copy; a file
            // of any other mount is on another device.
            (Node::Gofer { mount, .. }, Some(dir)) if mount.upper.as_ref().is_some_and(|u| Arc::ptr_eq(u, &fs)) => {
                dir.copy_up(target)?
            }
            (Node::Gofer { .. }, _) => return Err(Errno::EXDEV),
            _ => target.clone(),
        };
        let Node::Tmpfs(file) = &target.node else { return Err(Errno::EXDEV) };
        if !Arc::ptr_eq(&file.fs, &fs) {
            return Err(Errno::EXDEV);
        }
        if fs.mqueue {
            return Err(Errno::EPERM);
        }
        // A file with no name left stays so, unless O_TMPFILE made it.
        if file.attr().nlink == 0 && !file.linkable.load(Ordering::SeqCst) {
            return Err(Errno::ENOENT);
        }
        if self.child(name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if children.get(name).is_some_and(|c| !c.is_whiteout()) {
            return Err(Errno::EEXIST);
        }
        let d = Arc::new(Dentry::new(name.to_vec(), Some(self.clone()), Attr::default(), Node::Tmpfs(file.clone())));
        Dentry::place_child(&mut children, name, &d);
        drop(children);
        {
            let mut a = file.attr();
            a.nlink += 1;
            a.ctime = tmpfs::now();
        }
        file.linkable.store(false, Ordering::SeqCst);
        self.touch_dir(0);
        target.notify_self(IN::IN_ATTRIB);
        self.notify_entry(IN::IN_CREATE, name, &d, 0);
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
        let child = self.child(name)?.ok_or(Errno::ENOENT)?;
        let store = self.writable_dir(creds)?;
        if child.mounted.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Err(Errno::EBUSY);
        }
        match (dir, child.is_dir()) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            _ => {}
        }
        if dir && !child.dir_entries(0, 1)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        if !self.sticky_allows(&child, creds) {
            return Err(Errno::EPERM);
        }
        if let Store::Host(dh, mount) = store {
            mount.client.unlink(dh, name, dir).map_err(Errno::from_raw)?;
            let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
            if children.get(name).is_some_and(|c| Arc::ptr_eq(c, &child)) {
                children.remove(name);
            }
            drop(children);
            child.mark_stale();
            self.mark_stale();
            self.notify_unlinked(name, &child, dir);
            return Ok(());
        }
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if children.get(name).is_some_and(|c| !Arc::ptr_eq(c, &child)) {
            return Err(Errno::ENOENT);
        }
        if self.needs_whiteout(&child) {
            let w = Arc::new(Dentry::new(name.to_vec(), Some(self.clone()), Attr::default(), Node::Whiteout));
            children.insert(name.to_vec(), w);
        } else {
            children.remove(name);
        }
        drop(children);
        if let Node::Tmpfs(inode) = &child.node {
            let mut a = inode.attr();
            a.nlink = if dir { 0 } else { a.nlink.saturating_sub(1) };
            a.ctime = tmpfs::now();
        }
        self.touch_dir(if dir { -1 } else { 0 });
        self.notify_unlinked(name, &child, dir);
        Ok(())
    }

    /// vfs_unlink's and vfs_rmdir's events: the file's link count changed
    /// (unlink), its end if that was the last link, the directory's entry.
    fn notify_unlinked(&self, name: &[u8], child: &Dentry, dir: bool) {
        if !dir {
            child.notify_self(IN::IN_ATTRIB);
        }
        child.notify_removed(if dir { 0 } else { child.attr().nlink });
        self.notify_entry(IN::IN_DELETE, name, child, 0);
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
    let source = old_dir.child(old_name)?.ok_or(Errno::ENOENT)?;
    if flags & RENAME_WHITEOUT != 0 {
        return Err(Errno::EINVAL);
    }
    let from = old_dir.writable_dir(creds)?;
    let to = new_dir.writable_dir(creds)?;
    match (from, to) {
        // mqueue has no rename.
        (Store::Tmpfs(a), Store::Tmpfs(b)) if Arc::ptr_eq(&a, &b) && a.mqueue => return Err(Errno::EPERM),
        (Store::Tmpfs(a), Store::Tmpfs(b)) if Arc::ptr_eq(&a, &b) => {}
        (Store::Host(oh, a), Store::Host(nh, b)) if Arc::ptr_eq(&a, &b) => {
            return rename_host(old_dir, old_name, new_dir, new_name, flags, creds, (&source, oh, nh, &a));
        }
        _ => return Err(Errno::EXDEV),
    }
    // A lower file moves as its upper copy; lower directories cannot move
    // (EXDEV, as overlayfs without redirects: mv copies them instead).
    let source = old_dir.copy_up(&source)?;
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
    let target = match new_dir.child(new_name)? {
        // Exchanged names move both ways: a lower file goes up first.
        Some(t) if flags & RENAME_EXCHANGE != 0 => Some(new_dir.copy_up(&t)?),
        t => t,
    };
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
    // Each directory's map is locked on its own, one after the other.
    let same_dir = Arc::ptr_eq(old_dir, new_dir);
    if flags & RENAME_EXCHANGE != 0 {
        let t = target.ok_or(Errno::ENOENT)?;
        // Each name keeps whether it hides a lower entry; the files trade
        // places.
        let (src_covers, t_covers) =
            (source.covers_lower.load(Ordering::Relaxed), t.covers_lower.load(Ordering::Relaxed));
        old_dir.children.lock().unwrap_or_else(|e| e.into_inner()).insert(old_name.to_vec(), t.clone());
        new_dir.children.lock().unwrap_or_else(|e| e.into_inner()).insert(new_name.to_vec(), source.clone());
        t.covers_lower.store(src_covers, Ordering::Relaxed);
        source.covers_lower.store(t_covers, Ordering::Relaxed);
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
        notify_moved((old_dir, old_name), (new_dir, new_name), &source, None);
        notify_moved((new_dir, new_name), (old_dir, old_name), &t, None);
        return Ok(());
    }
    {
        let mut a = old_dir.children.lock().unwrap_or_else(|e| e.into_inner());
        match a.get(old_name) {
            Some(c) if Arc::ptr_eq(c, &source) => {
                if old_dir.needs_whiteout(&source) {
                    let w = Arc::new(Dentry::new(
                        old_name.to_vec(),
                        Some(old_dir.clone()),
                        Attr::default(),
                        Node::Whiteout,
                    ));
                    a.insert(old_name.to_vec(), w);
                } else {
                    a.remove(old_name);
                }
            }
            _ => return Err(Errno::ENOENT),
        }
    }
    let replaced = {
        let mut b = new_dir.children.lock().unwrap_or_else(|e| e.into_inner());
        let old = b.get(new_name).cloned();
        Dentry::place_child(&mut b, new_name, &source);
        old
    };
    source.set_place(new_name, new_dir);
    if let Some(old) = &replaced {
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
    notify_moved((old_dir, old_name), (new_dir, new_name), &source, replaced.as_ref());
    Ok(())
}

/// rename through the gofer: the host checks what it can (ENOTEMPTY,
/// EISDIR, ENOTDIR, EEXIST); the sentry checks permissions, mounts and
/// loops, then moves its dentries the way the host moved the names.
fn rename_host(
    old_dir: &Arc<Dentry>,
    old_name: &[u8],
    new_dir: &Arc<Dentry>,
    new_name: &[u8],
    flags: u32,
    creds: &Credentials,
    (source, oh, nh, mount): (&Arc<Dentry>, gofer::Handle, gofer::Handle, &Arc<super::GoferMount>),
) -> Result<(), Errno> {
    if source.mounted.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
        return Err(Errno::EBUSY);
    }
    if source.is_dir() && is_within(new_dir, source) {
        return Err(Errno::EINVAL);
    }
    if !old_dir.sticky_allows(source, creds) {
        return Err(Errno::EPERM);
    }
    let target = new_dir.child(new_name)?;
    if let Some(t) = &target {
        if t.mounted.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Err(Errno::EBUSY);
        }
        if !new_dir.sticky_allows(t, creds) {
            return Err(Errno::EPERM);
        }
        if flags & RENAME_EXCHANGE != 0 && t.is_dir() && is_within(old_dir, t) {
            return Err(Errno::EINVAL);
        }
    }
    mount.client.rename(oh, old_name, nh, new_name, flags).map_err(Errno::from_raw)?;
    let (sa, ta) = (source.attr(), target.as_ref().map(|t| t.attr()));
    if ta.is_some_and(|ta| (ta.dev, ta.ino) == (sa.dev, sa.ino)) && flags & RENAME_EXCHANGE == 0 {
        // Two names of one file: the host did nothing.
        return Ok(());
    }
    {
        let mut a = old_dir.children.lock().unwrap_or_else(|e| e.into_inner());
        match (&target, flags & RENAME_EXCHANGE != 0) {
            (Some(t), true) => {
                a.insert(old_name.to_vec(), t.clone());
                t.set_place(old_name, old_dir);
            }
            _ => {
                if a.get(old_name).is_some_and(|c| Arc::ptr_eq(c, source)) {
                    a.remove(old_name);
                }
            }
        }
    }
    new_dir.children.lock().unwrap_or_else(|e| e.into_inner()).insert(new_name.to_vec(), source.clone());
    source.set_place(new_name, new_dir);
    for d in [Some(source), target.as_ref(), Some(old_dir), Some(new_dir)].into_iter().flatten() {
        d.mark_stale();
    }
    if flags & RENAME_EXCHANGE != 0 {
        let t = target.as_ref().ok_or(Errno::ENOENT)?;
        notify_moved((old_dir, old_name), (new_dir, new_name), source, None);
        notify_moved((new_dir, new_name), (old_dir, old_name), t, None);
    } else {
        notify_moved((old_dir, old_name), (new_dir, new_name), source, target.as_ref());
    }
    Ok(())
}

/// fsnotify_move: the two halves of the move with one cookie, the link
/// count of a replaced file, the moved file's IN_MOVE_SELF, and the end of
/// a replaced file that had no other link.
fn notify_moved(from: (&Dentry, &[u8]), to: (&Dentry, &[u8]), moved: &Dentry, replaced: Option<&Arc<Dentry>>) {
    let cookie = super::inotify::next_cookie();
    from.0.notify_entry(IN::IN_MOVED_FROM, from.1, moved, cookie);
    to.0.notify_entry(IN::IN_MOVED_TO, to.1, moved, cookie);
    if let Some(t) = replaced {
        t.notify_self(IN::IN_ATTRIB);
    }
    moved.notify_self(IN::IN_MOVE_SELF);
    if let Some(t) = replaced {
        t.notify_removed(t.attr().nlink);
    }
}
