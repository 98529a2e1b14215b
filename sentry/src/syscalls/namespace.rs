//! Calls that change names and attributes: mkdir, unlink, rmdir, rename,
//! symlink, link, truncate, chmod, chown, utimens, fsync.
use std::sync::Arc;

use syscalls::flags::cap;
use syscalls::flags::files::{UTIME_NOW, UTIME_OMIT};
use syscalls::flags::inotify as IN;
use syscalls::flags::{AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW};
use syscalls::structs::Timespec;
use syscalls::Errno;

use super::SysResult;
use crate::task::Task;
use crate::vfs::ops::{self, NewFile};
use crate::vfs::{tmpfs, Dentry, FileKind, Resolver};

/// The directory holding the last name of `path`, and that name.
fn parent_of(t: &Task, dirfd: i32, path: &[u8]) -> Result<(Arc<Dentry>, Vec<u8>), Errno> {
    let start = t.start_dir(dirfd, path)?;
    let root = t.fs().root.clone();
    let (dir, name) = Resolver::new(&root, &start).resolve_parent(path)?;
    if !dir.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok((dir.crossed_root(), name))
}

pub fn sys_mkdirat(t: &mut Task, dirfd: i32, path: u64, mode: u32) -> SysResult {
    let p = t.read_path(path)?;
    let (dir, name) = parent_of(t, dirfd, &p)?;
    if name == b"/" || name.is_empty() {
        return Err(Errno::EEXIST);
    }
    let perm = mode & 0o7777 & !t.fs().umask;
    dir.create(&name, NewFile::Dir, perm, &t.creds)?;
    Ok(0)
}

/// mknod(2): regular files, FIFOs and socket files; device nodes need a
/// host device, which the sandbox never exposes (EPERM).
pub fn sys_mknodat(t: &mut Task, dirfd: i32, path: u64, mode: u32, _dev: u64) -> SysResult {
    use syscalls::flags::mode::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK};
    let p = t.read_path(path)?;
    let new = match mode & S_IFMT {
        0 | S_IFREG => NewFile::Regular,
        S_IFIFO => NewFile::Fifo,
        S_IFSOCK => NewFile::Socket,
        S_IFCHR | S_IFBLK | S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    let (dir, name) = parent_of(t, dirfd, &p)?;
    if name == b"/" || name.is_empty() {
        return Err(Errno::EEXIST);
    }
    let perm = mode & 0o7777 & !t.fs().umask;
    dir.create(&name, new, perm, &t.creds)?;
    Ok(0)
}

pub fn sys_unlinkat(t: &mut Task, dirfd: i32, path: u64, flags: u32) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let p = t.read_path(path)?;
    let rmdir = flags & AT_REMOVEDIR != 0;
    if !rmdir && p.last() == Some(&b'/') {
        // "file/" names a directory, or nothing.
        let d = t.lookup(dirfd, &p, false)?;
        return Err(if d.is_dir() { Errno::EISDIR } else { Errno::ENOTDIR });
    }
    let (dir, name) = parent_of(t, dirfd, &p)?;
    if name == b"/" {
        return Err(Errno::EBUSY);
    }
    dir.remove(&name, rmdir, &t.creds)?;
    Ok(0)
}

pub fn sys_renameat2(t: &mut Task, olddir: i32, oldpath: u64, newdir: i32, newpath: u64, flags: u32) -> SysResult {
    let (op, np) = (t.read_path(oldpath)?, t.read_path(newpath)?);
    let (od, on) = parent_of(t, olddir, &op)?;
    let (nd, nn) = parent_of(t, newdir, &np)?;
    if on == b"/" || nn == b"/" {
        return Err(Errno::EBUSY);
    }
    ops::rename(&od, &on, &nd, &nn, flags, &t.creds)?;
    Ok(0)
}

pub fn sys_symlinkat(t: &mut Task, target: u64, dirfd: i32, path: u64) -> SysResult {
    let target = t.read_path(target)?;
    let p = t.read_path(path)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let (dir, name) = parent_of(t, dirfd, &p)?;
    dir.create(&name, NewFile::Symlink(target), 0o777, &t.creds)?;
    Ok(0)
}

pub fn sys_linkat(t: &mut Task, olddir: i32, oldpath: u64, newdir: i32, newpath: u64, flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let op = t.read_path(oldpath)?;
    let source = if op.is_empty() && flags & AT_EMPTY_PATH != 0 {
        t.fds.get(olddir)?.dentry.clone().ok_or(Errno::ENOENT)?
    } else {
        t.lookup(olddir, &op, flags & AT_SYMLINK_FOLLOW != 0)?
    };
    let np = t.read_path(newpath)?;
    let (dir, name) = parent_of(t, newdir, &np)?;
    dir.link(&name, &source, &t.creds)?;
    Ok(0)
}

/// truncate(2): the file must be a regular file the caller may write (a
/// lower file of the overlay is copied up first; a gofer file is truncated
/// on the host).
pub fn sys_truncate(t: &mut Task, path: u64, len: i64) -> SysResult {
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let p = t.read_path(path)?;
    let d = t.lookup(AT_FDCWD, &p, true)?;
    if d.is_dir() {
        return Err(Errno::EISDIR);
    }
    if !d.is_regular() {
        return Err(Errno::EINVAL);
    }
    if d.readonly() {
        return Err(Errno::EROFS);
    }
    if !crate::vfs::open::may_access(&t.creds, &d.attr(), syscalls::flags::access::W_OK, false) {
        return Err(Errno::EACCES);
    }
    let d = match (d.overlay_upper().is_some(), d.parent()) {
        (true, Some(dir)) => dir.copy_up(&d)?,
        _ => d,
    };
    match d.tmpfs() {
        Some(i) => {
            i.truncate(len as u64)?;
            d.notify(IN::IN_MODIFY);
        }
        None => d.update_attr(IN::IN_MODIFY, |a| a.size = len as u64)?,
    }
    Ok(0)
}

pub fn sys_ftruncate(t: &mut Task, fd: i32, len: i64) -> SysResult {
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.get(fd)?;
    if !f.writable() {
        return Err(Errno::EINVAL);
    }
    match &f.kind {
        FileKind::Tmpfs(inode) => inode.truncate(len as u64)?,
        FileKind::Regular(fd) => {
            nix::unistd::ftruncate(fd.as_ref(), len).map_err(|e| Errno::from_raw(e as i32))?;
            if let Some(c) = f.dentry.as_ref().and_then(|d| d.cached_pages()) {
                c.truncate(len as u64)?;
            }
        }
        FileKind::Dir(_) => return Err(Errno::EISDIR),
        _ => return Err(Errno::EINVAL),
    }
    if let Some(d) = &f.dentry {
        d.notify(IN::IN_MODIFY);
    }
    Ok(0)
}

pub fn sys_fallocate(t: &mut Task, fd: i32, mode: i32, off: i64, len: i64) -> SysResult {
    let f = t.fds.get(fd)?;
    if off < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    if let FileKind::Regular(fd) = &f.kind {
        // A host file: the host's fallocate, with the modes Linux file
        // systems commonly have.
        const KNOWN: i32 = libc::FALLOC_FL_KEEP_SIZE
            | libc::FALLOC_FL_PUNCH_HOLE
            | libc::FALLOC_FL_ZERO_RANGE
            | libc::FALLOC_FL_COLLAPSE_RANGE
            | libc::FALLOC_FL_INSERT_RANGE;
        if mode & !KNOWN != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let flags = nix::fcntl::FallocateFlags::from_bits_retain(mode);
        nix::fcntl::fallocate(std::os::fd::AsRawFd::as_raw_fd(fd.as_ref()), flags, off, len)
            .map_err(|e| Errno::from_raw(e as i32))?;
        return Ok(0);
    }
    let FileKind::Tmpfs(inode) = &f.kind else {
        return Err(Errno::ENODEV);
    };
    if mode != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let end = (off as u64).checked_add(len as u64).ok_or(Errno::EFBIG)?;
    if end > inode.attr().size {
        inode.truncate(end)?;
    }
    Ok(0)
}

/// fsync/fdatasync: a host file is flushed to its disk (its fd directly, a
/// directory through the gofer); memory-backed files have nothing to wait
/// for.
pub fn sys_fsync(t: &mut Task, fd: i32, data_only: bool) -> SysResult {
    let f = t.fds.get(fd)?;
    match (&f.kind, f.dentry.as_ref().and_then(|d| d.gofer())) {
        (FileKind::Regular(hfd), _) => {
            if let Some(d) = &f.dentry {
                d.write_back();
            }
            let raw = std::os::fd::AsRawFd::as_raw_fd(hfd.as_ref());
            let r = if data_only { nix::unistd::fdatasync(raw) } else { nix::unistd::fsync(raw) };
            r.map_err(|e| Errno::from_raw(e as i32))?;
        }
        (FileKind::Dir(_), Some((h, mount))) if mount.writes_through() => {
            mount.client.fsync(h, data_only).map_err(Errno::from_raw)?;
        }
        _ => {}
    }
    Ok(0)
}

/// syncfs: every host file is written through already; nothing is
/// buffered in the sentry.
pub fn sys_syncfs(t: &mut Task, fd: i32) -> SysResult {
    t.fds.get(fd)?;
    Ok(0)
}

/// Who may change a file's attributes: its owner, or root.
fn may_change(t: &Task, d: &Dentry) -> Result<(), Errno> {
    if d.readonly() {
        return Err(Errno::EROFS);
    }
    if t.creds.fsuid != d.attr().uid && !t.creds.capable(cap::CAP_FOWNER) {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// The file `path` (or with AT_EMPTY_PATH, `dirfd` itself) names.
fn target(t: &Task, dirfd: i32, path: u64, flags: u32) -> Result<Arc<Dentry>, Errno> {
    let p = t.read_path(path)?;
    if p.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd == AT_FDCWD {
            return Ok(t.fs().cwd.clone());
        }
        return t.fds.get(dirfd)?.dentry.clone().ok_or(Errno::EBADF);
    }
    t.lookup(dirfd, &p, flags & AT_SYMLINK_NOFOLLOW == 0)
}

fn chmod(t: &Task, d: &Arc<Dentry>, mode: u32) -> SysResult {
    may_change(t, d)?;
    let mut mode = mode & 0o7777;
    // Only a member of the file's group may keep its setgid bit.
    let gid = d.attr().gid;
    if !t.creds.in_group(gid) && !t.creds.capable(cap::CAP_FSETID) {
        mode &= !syscalls::flags::mode::S_ISGID;
    }
    d.update_attr(IN::IN_ATTRIB, |a| {
        a.mode = (a.mode & syscalls::flags::mode::S_IFMT) | mode;
        a.ctime = tmpfs::now();
    })?;
    Ok(0)
}

pub fn sys_fchmodat(t: &mut Task, dirfd: i32, path: u64, mode: u32) -> SysResult {
    let d = target(t, dirfd, path, 0)?;
    chmod(t, &d, mode)
}

pub fn sys_fchmod(t: &mut Task, fd: i32, mode: u32) -> SysResult {
    let f = t.fds.get(fd)?;
    match (&f.kind, &f.dentry) {
        (FileKind::Tmpfs(_), None) => Ok(0),
        (_, Some(d)) => chmod(t, d, mode),
        _ => Err(Errno::EBADF),
    }
}

fn chown(t: &Task, d: &Arc<Dentry>, uid: u32, gid: u32) -> SysResult {
    may_change(t, d)?;
    let keep = u32::MAX;
    if !t.creds.capable(cap::CAP_CHOWN) {
        // An owner may only change the group, to one of its own.
        let a = d.attr();
        let owner = t.creds.fsuid == a.uid;
        let uid_ok = uid == keep || (owner && uid == a.uid);
        let gid_ok = gid == keep || (owner && (gid == a.gid || t.creds.in_group(gid)));
        if !uid_ok || !gid_ok {
            return Err(Errno::EPERM);
        }
    }
    d.update_attr(IN::IN_ATTRIB, |a| {
        if uid != keep {
            a.uid = uid;
        }
        if gid != keep {
            a.gid = gid;
        }
        if a.mode & syscalls::flags::mode::S_IFMT != syscalls::flags::mode::S_IFDIR {
            a.mode &= !(syscalls::flags::mode::S_ISUID | syscalls::flags::mode::S_ISGID);
        }
        a.ctime = tmpfs::now();
    })?;
    Ok(0)
}

pub fn sys_fchownat(t: &mut Task, dirfd: i32, path: u64, uid: u32, gid: u32, flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let d = target(t, dirfd, path, flags)?;
    chown(t, &d, uid, gid)
}

pub fn sys_fchown(t: &mut Task, fd: i32, uid: u32, gid: u32) -> SysResult {
    let f = t.fds.get(fd)?;
    let d = f.dentry.clone().ok_or(Errno::EBADF)?;
    chown(t, &d, uid, gid)
}

/// utimensat: `times` null sets both to now.
pub fn sys_utimensat(t: &mut Task, dirfd: i32, path: u64, times: u64, flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let ts: [Timespec; 2] = if times == 0 {
        [Timespec { tv_sec: 0, tv_nsec: UTIME_NOW }; 2]
    } else {
        [t.read_obj(times)?, t.read_obj(times + 16)?]
    };
    for x in &ts {
        if x.tv_nsec != UTIME_NOW && x.tv_nsec != UTIME_OMIT && !(0..1_000_000_000).contains(&x.tv_nsec) {
            return Err(Errno::EINVAL);
        }
    }
    let d = if path == 0 {
        // futimens: the fd itself.
        t.fds.get(dirfd)?.dentry.clone().ok_or(Errno::EBADF)?
    } else {
        target(t, dirfd, path, flags)?
    };
    if d.readonly() {
        return Err(Errno::EROFS);
    }
    let owner = t.creds.fsuid == d.attr().uid || t.creds.capable(cap::CAP_FOWNER);
    let only_now = ts.iter().all(|x| x.tv_nsec == UTIME_NOW || x.tv_nsec == UTIME_OMIT);
    // Setting "now" needs write access; any other time needs ownership.
    let writer = only_now && crate::vfs::open::may_access(&t.creds, &d.attr(), syscalls::flags::access::W_OK, false);
    if !(owner || writer) {
        return Err(if only_now { Errno::EACCES } else { Errno::EPERM });
    }
    let now = tmpfs::now();
    let pick = |x: &Timespec, old: (i64, u32)| match x.tv_nsec {
        UTIME_NOW => now,
        UTIME_OMIT => old,
        n => (x.tv_sec, n as u32),
    };
    // fsnotify_change: both times is a utime call, one alone an access or
    // a modification.
    let event = match (ts[0].tv_nsec == UTIME_OMIT, ts[1].tv_nsec == UTIME_OMIT) {
        (false, false) => IN::IN_ATTRIB,
        (false, true) => IN::IN_ACCESS,
        (true, false) => IN::IN_MODIFY,
        (true, true) => 0,
    };
    d.update_attr(event, |a| {
        a.atime = pick(&ts[0], a.atime);
        a.mtime = pick(&ts[1], a.mtime);
        a.ctime = now;
    })?;
    Ok(0)
}
