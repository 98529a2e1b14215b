//! Opening a path: the shared logic behind open, openat and creat.
use std::sync::{Arc, Mutex};

use gofer::Attr;
use syscalls::flags::{access as A, OpenFlags as O};
use syscalls::Errno;

use super::{DirCursor, File, FileKind};
use crate::task::{Credentials, Task};

/// Whether `creds` may access a file with `attr` for `mask` (R_OK, W_OK,
/// X_OK bits), as Linux's generic_permission: the owner, group or other
/// bits for the fs ids, then CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE.
/// `real` checks as access(2) does: with the real ids, and capabilities
/// only for a real root.
pub fn may_access(creds: &Credentials, attr: &Attr, mask: u32, real: bool) -> bool {
    use syscalls::flags::cap::{CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH};
    let (uid, in_group) = if real {
        (creds.uid, creds.gid == attr.gid || creds.groups.contains(&attr.gid))
    } else {
        (creds.fsuid, creds.in_group(attr.gid))
    };
    let caps = match (real, creds.uid) {
        (false, _) => creds.caps.effective,
        (true, 0) => creds.caps.permitted,
        (true, _) => 0,
    };
    let capable = |c: u32| caps & (1 << c) != 0;
    let bits = if attr.uid == uid {
        (attr.mode >> 6) & 7
    } else if in_group {
        (attr.mode >> 3) & 7
    } else {
        attr.mode & 7
    };
    if bits & mask == mask {
        return true;
    }
    let is_dir = attr.mode & syscalls::flags::mode::S_IFMT == syscalls::flags::mode::S_IFDIR;
    if is_dir {
        return (mask & A::W_OK == 0 && capable(CAP_DAC_READ_SEARCH)) || capable(CAP_DAC_OVERRIDE);
    }
    if mask == A::R_OK && capable(CAP_DAC_READ_SEARCH) {
        return true;
    }
    (mask & A::X_OK == 0 || attr.mode & 0o111 != 0) && capable(CAP_DAC_OVERRIDE)
}

/// Opens `path` relative to `dirfd` with `open(2)` flags.
pub fn open(t: &Task, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> Result<Arc<File>, Errno> {
    open_restricted(t, dirfd, path, flags, mode, super::Restrict::default())
}

/// Opens `path` as `open`, walking it under openat2's restrictions `r`.
pub fn open_restricted(
    t: &Task,
    dirfd: i32,
    path: &[u8],
    flags: u32,
    mode: u32,
    r: super::Restrict,
) -> Result<Arc<File>, Errno> {
    let mut truncated = false;
    let f = open_file(t, dirfd, path, flags, mode, r, &mut truncated)?;
    if let (Some(d), false) = (&f.dentry, f.is_path()) {
        d.notify(syscalls::flags::inotify::IN_OPEN);
        if truncated {
            d.notify(syscalls::flags::inotify::IN_MODIFY);
        }
    }
    Ok(f)
}

/// [`open_restricted`] without its inotify events; `truncated` tells
/// whether O_TRUNC truncated an existing file.
fn open_file(
    t: &Task,
    dirfd: i32,
    path: &[u8],
    flags: u32,
    mode: u32,
    r: super::Restrict,
    truncated: &mut bool,
) -> Result<Arc<File>, Errno> {
    let has = |f: O| flags & f.bits() != 0;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if has(O::O_TMPFILE) && flags & O::O_TMPFILE.bits() == O::O_TMPFILE.bits() {
        return open_tmpfile(t, dirfd, path, flags, mode);
    }
    let exclusive_create = has(O::O_CREAT) && has(O::O_EXCL);
    let follow = !has(O::O_NOFOLLOW) && !exclusive_create;
    let d = match t.lookup_restricted(dirfd, path, follow, r) {
        Ok(d) => {
            if has(O::O_CREAT) && has(O::O_EXCL) {
                return Err(Errno::EEXIST);
            }
            d
        }
        Err(e) if e == Errno::ENOENT && has(O::O_CREAT) => {
            if path.last() == Some(&b'/') {
                return Err(Errno::EISDIR);
            }
            let (root, start) = t.walk_bounds(dirfd, path, r)?;
            let (parent, name) = super::Resolver { root: &root, start: &start, restrict: r }.resolve_parent(path)?;
            let perm = mode & 0o7777 & !t.fs().umask;
            // A new file of an mqueue mount is a queue of the default size.
            let new = match parent.tmpfs() {
                Some(dir) if dir.fs.mqueue => {
                    let q = t.kernel.mqueues.new_queue(&crate::mqueue::Creator::of(t), None)?;
                    super::ops::NewFile::Mqueue(q)
                }
                _ => super::ops::NewFile::Regular,
            };
            match parent.create(&name, new, perm, &t.creds) {
                Ok(d) => {
                    // The creator may use the file whatever its mode says.
                    let fl = (flags | O::O_LARGEFILE.bits())
                        & !(O::O_CREAT | O::O_EXCL | O::O_NOCTTY | O::O_TRUNC | O::O_CLOEXEC).bits();
                    if let Some(inode) = d.tmpfs() {
                        return Ok(File::new(tmpfs_file(inode), fl, Some(d)));
                    }
                    // A new host file: the gofer donated a read-write fd.
                    let fd = d.host_fd(flags & O::O_ACCMODE)?;
                    return Ok(File::new(FileKind::Regular(fd), fl, Some(d)));
                }
                // Created by someone else meanwhile: open that.
                Err(Errno::EEXIST) if !has(O::O_EXCL) => t.lookup_restricted(dirfd, path, follow, r)?,
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    // Linux keeps O_LARGEFILE on every file opened on a 64-bit kernel.
    let fl =
        (flags | O::O_LARGEFILE.bits()) & !(O::O_CREAT | O::O_EXCL | O::O_NOCTTY | O::O_TRUNC | O::O_CLOEXEC).bits();
    if has(O::O_PATH) {
        let keep = O::O_PATH | O::O_DIRECTORY | O::O_NOFOLLOW | O::O_LARGEFILE;
        if has(O::O_DIRECTORY) && !d.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        return Ok(File::new(FileKind::Path, fl & keep.bits(), Some(d)));
    }
    // Linux checks O_DIRECTORY before refusing a final symlink.
    if has(O::O_DIRECTORY) && !d.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if d.is_symlink() {
        return Err(Errno::ELOOP);
    }
    let acc = flags & O::O_ACCMODE;
    let attr = d.attr();
    let mask = match acc {
        0 => A::R_OK,
        1 => A::W_OK,
        _ => A::R_OK | A::W_OK,
    };
    if d.is_dir() {
        if acc != 0 || has(O::O_TRUNC) {
            return Err(Errno::EISDIR);
        }
        if !may_access(&t.creds, &attr, A::R_OK, false) {
            return Err(Errno::EACCES);
        }
        return Ok(File::new(FileKind::Dir(Mutex::new(DirCursor::default())), fl, Some(d)));
    }
    let writes = acc != 0 || has(O::O_TRUNC);
    if writes && d.readonly() {
        return Err(Errno::EROFS);
    }
    if !may_access(&t.creds, &attr, mask, false) {
        return Err(Errno::EACCES);
    }
    // The container's stdio reached through /proc/self/fd may be a host
    // pipe: the host file is opened again, not a sandbox pipe.
    let host_file = matches!(&d.node, super::Node::Synthetic(n) if n.pipe().is_none());
    match d.file_type() {
        syscalls::flags::mode::S_IFIFO if !host_file => {
            let pipe = d.named_pipe(&t.kernel.events)?;
            let end = pipe.open_end(t, acc != 1, acc != 0, has(O::O_NONBLOCK))?;
            return Ok(File::new(FileKind::Pipe(end), fl, Some(d)));
        }
        syscalls::flags::mode::S_IFSOCK => return Err(Errno::ENXIO),
        _ => {}
    }
    // Writing a lower file of the overlay writes its upper copy.
    let d = match (writes && d.is_regular() && d.overlay_upper().is_some(), d.parent()) {
        (true, Some(dir)) => dir.copy_up(&d)?,
        _ => d,
    };
    let (handle, mount) = match (&d.node, d.gofer()) {
        (super::Node::Synthetic(n), _) => {
            let kind = n.open(flags)?;
            return Ok(File::new(kind, fl, Some(d)));
        }
        (super::Node::Tmpfs(inode), _) => {
            if has(O::O_TRUNC) && acc != 0 {
                inode.truncate(0)?;
                *truncated = true;
            }
            return Ok(File::new(tmpfs_file(inode), fl, Some(d)));
        }
        (_, Some((h, m))) => (h, m.clone()),
        _ => return Err(Errno::ENXIO),
    };
    if !d.is_regular() {
        // Devices, FIFOs and sockets of the rootfs: the gofer decides.
        let fd = mount.client.open(handle, acc | (flags & O::O_NONBLOCK.bits())).map_err(Errno::from_raw)?;
        return Ok(File::new(FileKind::Regular(Arc::new(fd)), fl, Some(d)));
    }
    let fd = if has(O::O_TRUNC) {
        // Truncation happens in the gofer's open.
        let fd = Arc::new(mount.client.open(handle, acc | O::O_TRUNC.bits()).map_err(Errno::from_raw)?);
        if let Some(c) = d.cached_pages() {
            c.truncate(0)?;
        }
        *truncated = true;
        fd
    } else {
        d.host_fd(acc)?
    };
    Ok(File::new(FileKind::Regular(fd), fl, Some(d)))
}

/// What an open file of a tmpfs inode is: its data, or its message queue.
fn tmpfs_file(inode: &Arc<super::tmpfs::Inode>) -> FileKind {
    match &inode.contents {
        super::tmpfs::Contents::Mqueue(q) => FileKind::Mqueue(q.clone()),
        _ => FileKind::Tmpfs(inode.clone()),
    }
}

/// `O_TMPFILE`: an unnamed regular file in the tmpfs directory `path`.
fn open_tmpfile(t: &Task, dirfd: i32, path: &[u8], flags: u32, mode: u32) -> Result<Arc<File>, Errno> {
    if flags & O::O_ACCMODE == 0 {
        return Err(Errno::EINVAL);
    }
    let dir = t.lookup(dirfd, path, true)?;
    if !dir.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if !may_access(&t.creds, &dir.attr(), A::W_OK | A::X_OK, false) {
        return Err(Errno::EACCES);
    }
    let perm = mode & 0o7777 & !t.fs().umask;
    let fl = (flags | O::O_LARGEFILE.bits()) & !(O::O_TMPFILE | O::O_CREAT | O::O_EXCL | O::O_CLOEXEC).bits()
        | (flags & O::O_ACCMODE);
    if dir.readonly() {
        return Err(Errno::EROFS);
    }
    let fs = match (dir.tmpfs(), dir.gofer()) {
        // mqueue has no unnamed files.
        (Some(p), _) if p.fs.mqueue => return Err(Errno::EOPNOTSUPP),
        (Some(p), _) => p.fs.clone(),
        (None, Some((h, mount))) if mount.writes_through() => {
            let owner = gofer::Owner { uid: t.creds.fsuid, gid: t.creds.fsgid };
            let host_flags = flags & (O::O_ACCMODE | (O::O_EXCL | O::O_APPEND).bits());
            let fd = mount.client.create_unnamed(h, host_flags, perm, owner).map_err(Errno::from_raw)?;
            return Ok(File::new(FileKind::Regular(Arc::new(fd)), fl, None));
        }
        // An overlay directory: the file lives in the upper layer, where
        // a link gives it a name.
        (None, Some((_, mount))) => mount.upper.clone().ok_or(Errno::EOPNOTSUPP)?,
        _ => return Err(Errno::EOPNOTSUPP),
    };
    let inode = fs.inode(
        super::tmpfs::regular_mode(perm),
        t.creds.fsuid,
        t.creds.fsgid,
        super::tmpfs::Contents::File(Default::default()),
    )?;
    let ino = {
        let mut a = inode.attr();
        a.nlink = 0;
        a.ino
    };
    inode.linkable.store(flags & O::O_EXCL.bits() == 0, std::sync::atomic::Ordering::Relaxed);
    // A name in `dir` that the directory does not list, as Linux's
    // "/dir/#ino (deleted)": /proc/self/fd reaches the file through it.
    let name = format!("#{ino}").into_bytes();
    let d = Arc::new(super::Dentry::new(name, Some(dir), gofer::Attr::default(), super::Node::Tmpfs(inode.clone())));
    Ok(File::new(FileKind::Tmpfs(inode), fl, Some(d)))
}
