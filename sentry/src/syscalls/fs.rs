//! File system calls: stat family, directories, links, access, cwd, umask.
use std::sync::Arc;

use syscalls::flags::{
    access as A, dtype, mode, statx as SX, AT_EACCESS, AT_EMPTY_PATH, AT_FDCWD, AT_NO_AUTOMOUNT, AT_STATX_SYNC_TYPE,
    AT_SYMLINK_NOFOLLOW,
};
use syscalls::structs::{Dirent64Head, Stat, Statx, StatxTimestamp};
use syscalls::Errno;
use zerocopy::IntoBytes;

use super::SysResult;
use crate::task::Task;
use crate::vfs::open::may_access;
use crate::vfs::{attr_to_stat, cgroupfs, procfs, sysfs, Dentry, FileKind};

/// The file `path` names relative to `dirfd`, or with AT_EMPTY_PATH and an
/// empty path, the file `dirfd` itself refers to.
enum Target {
    Dentry(Arc<Dentry>),
    Fd(i32),
}

fn target(t: &Task, dirfd: i32, path: u64, flags: u32, allowed: u32) -> Result<Target, Errno> {
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    // Since Linux 6.11 a NULL path with AT_EMPTY_PATH is the empty path.
    let p = if path == 0 && flags & AT_EMPTY_PATH != 0 { Vec::new() } else { t.read_path(path)? };
    if p.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            return Ok(Target::Dentry(t.fs().cwd.clone()));
        }
        t.fds.get(dirfd)?;
        return Ok(Target::Fd(dirfd));
    }
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    Ok(Target::Dentry(t.lookup(dirfd, &p, follow)?))
}

fn stat_of(t: &Task, tg: &Target) -> Result<Stat, Errno> {
    match tg {
        Target::Dentry(d) => Ok(attr_to_stat(&d.attr())),
        Target::Fd(fd) => t.fds.get(*fd)?.stat(),
    }
}

pub fn sys_stat(t: &mut Task, path: u64, buf: u64) -> SysResult {
    sys_newfstatat(t, AT_FDCWD, path, buf, 0)
}

pub fn sys_lstat(t: &mut Task, path: u64, buf: u64) -> SysResult {
    sys_newfstatat(t, AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW)
}

pub fn sys_fstat(t: &mut Task, fd: i32, buf: u64) -> SysResult {
    let st = t.fds.get(fd)?.stat()?;
    t.write_obj(buf, &st)?;
    Ok(0)
}

pub fn sys_newfstatat(t: &mut Task, dirfd: i32, path: u64, buf: u64, flags: u32) -> SysResult {
    let tg = target(t, dirfd, path, flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT)?;
    let st = stat_of(t, &tg)?;
    t.write_obj(buf, &st)?;
    Ok(0)
}

pub fn sys_statx(t: &mut Task, dirfd: i32, path: u64, flags: u32, mask: u32, buf: u64) -> SysResult {
    if mask & SX::STATX_RESERVED != 0 || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return Err(Errno::EINVAL);
    }
    let allowed = AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE;
    let tg = target(t, dirfd, path, flags, allowed)?;
    let s = stat_of(t, &tg)?;
    let dentry = match &tg {
        Target::Dentry(d) => Some(d.clone()),
        Target::Fd(fd) => t.fds.get(*fd)?.dentry.clone(),
    };
    let ts = |(sec, nsec): (i64, u32)| StatxTimestamp { tv_sec: sec, tv_nsec: nsec, reserved: 0 };
    let dev = s.st_dev;
    let rdev = s.st_rdev;
    let mut sx = Statx {
        stx_mask: SX::STATX_BASIC_STATS,
        stx_blksize: s.st_blksize as u32,
        stx_nlink: s.st_nlink as u32,
        stx_uid: s.st_uid,
        stx_gid: s.st_gid,
        stx_mode: s.st_mode as u16,
        stx_ino: s.st_ino,
        stx_size: s.st_size as u64,
        stx_blocks: s.st_blocks as u64,
        stx_atime: ts((s.st_atime, s.st_atime_nsec as u32)),
        stx_mtime: ts((s.st_mtime, s.st_mtime_nsec as u32)),
        stx_ctime: ts((s.st_ctime, s.st_ctime_nsec as u32)),
        stx_rdev_major: libc::major(rdev),
        stx_rdev_minor: libc::minor(rdev),
        stx_dev_major: libc::major(dev),
        stx_dev_minor: libc::minor(dev),
        ..Default::default()
    };
    if let Some(d) = dentry {
        let attr = d.attr();
        let synthetic = matches!(attr.dev, procfs::PROC_DEV | sysfs::SYSFS_DEV | cgroupfs::CGROUP_DEV);
        if !synthetic {
            // tmpfs and the host's file systems keep multigrain times: the
            // change times only when asked for; the birth time likewise.
            if mask & (SX::STATX_MTIME | SX::STATX_CTIME) == 0 {
                sx.stx_mask &= !(SX::STATX_MTIME | SX::STATX_CTIME);
            }
            if let (Some(b), true) = (attr.btime, mask & SX::STATX_BTIME != 0) {
                sx.stx_mask |= SX::STATX_BTIME;
                sx.stx_btime = ts(b);
            }
            if d.tmpfs().is_some() {
                sx.stx_attributes_mask = SX::STATX_ATTR_APPEND | SX::STATX_ATTR_IMMUTABLE | SX::STATX_ATTR_NODUMP;
            }
        }
        let (id, _, root) = d.mount_identity();
        if mask & SX::STATX_MNT_ID_UNIQUE != 0 {
            sx.stx_mask |= SX::STATX_MNT_ID_UNIQUE;
            sx.stx_mnt_id = SX::MNT_UNIQUE_ID_OFFSET + id;
        } else {
            sx.stx_mask |= SX::STATX_MNT_ID;
            sx.stx_mnt_id = id;
        }
        sx.stx_attributes_mask |= SX::STATX_ATTR_MOUNT_ROOT;
        if root {
            sx.stx_attributes |= SX::STATX_ATTR_MOUNT_ROOT;
        }
    }
    t.write_obj(buf, &sx)?;
    Ok(0)
}

pub fn sys_readlink(t: &mut Task, path: u64, buf: u64, size: i32) -> SysResult {
    sys_readlinkat(t, AT_FDCWD, path, buf, size)
}

pub fn sys_readlinkat(t: &mut Task, dirfd: i32, path: u64, buf: u64, size: i32) -> SysResult {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let p = t.read_path(path)?;
    let d = if p.is_empty() {
        // readlinkat(fd, "") reads the symlink an O_PATH fd refers to.
        let f = t.fds.get(dirfd)?;
        f.dentry.clone().filter(|d| d.is_symlink()).ok_or(Errno::ENOENT)?
    } else {
        t.lookup(dirfd, &p, false)?
    };
    let target = d.readlink()?;
    let n = target.len().min(size as usize);
    t.mm.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}

pub fn sys_access(t: &mut Task, path: u64, mask: u32) -> SysResult {
    sys_faccessat2(t, AT_FDCWD, path, mask, 0)
}

pub fn sys_faccessat(t: &mut Task, dirfd: i32, path: u64, mask: u32) -> SysResult {
    sys_faccessat2(t, dirfd, path, mask, 0)
}

pub fn sys_faccessat2(t: &mut Task, dirfd: i32, path: u64, mask: u32, flags: u32) -> SysResult {
    if mask & !(A::R_OK | A::W_OK | A::X_OK) != 0 {
        return Err(Errno::EINVAL);
    }
    let tg = target(t, dirfd, path, flags, AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)?;
    let (attr, readonly) = match &tg {
        Target::Dentry(d) => (d.attr(), d.readonly()),
        Target::Fd(fd) => {
            let f = t.fds.get(*fd)?;
            let st = f.stat()?;
            let ro = f.dentry.as_ref().is_some_and(|d| d.readonly());
            (crate::vfs::host_stat_like(&st), ro)
        }
    };
    if mask == A::F_OK {
        return Ok(0);
    }
    let ft = attr.mode & mode::S_IFMT;
    if mask & A::W_OK != 0 && readonly && matches!(ft, mode::S_IFREG | mode::S_IFDIR | mode::S_IFLNK) {
        return Err(Errno::EROFS);
    }
    if !may_access(&t.creds, &attr, mask, flags & AT_EACCESS == 0) {
        return Err(Errno::EACCES);
    }
    Ok(0)
}

pub fn sys_getcwd(t: &mut Task, buf: u64, size: u64) -> SysResult {
    let mut path = {
        let fs = t.fs();
        fs.cwd.path_from(&fs.root)
    };
    path.push(0);
    if (size as usize) < path.len() {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(buf, &path)?;
    Ok(path.len() as u64)
}

fn set_cwd(t: &mut Task, d: Arc<Dentry>) -> SysResult {
    if !d.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if !may_access(&t.creds, &d.attr(), A::X_OK, false) {
        return Err(Errno::EACCES);
    }
    t.fs().cwd = d;
    Ok(0)
}

pub fn sys_chdir(t: &mut Task, path: u64) -> SysResult {
    let p = t.read_path(path)?;
    let d = t.lookup(AT_FDCWD, &p, true)?;
    set_cwd(t, d)
}

pub fn sys_fchdir(t: &mut Task, fd: i32) -> SysResult {
    let f = t.fds.get(fd)?;
    let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
    set_cwd(t, d)
}

pub fn sys_umask(t: &mut Task, mask: u32) -> SysResult {
    let old = std::mem::replace(&mut t.fs().umask, mask & 0o777);
    Ok(u64::from(old))
}

/// Entries fetched from the gofer per round trip.
const DIRENT_BATCH: u32 = 4096;

pub fn sys_getdents64(t: &mut Task, fd: i32, buf: u64, count: u32) -> SysResult {
    let f = t.fds.get(fd)?;
    let FileKind::Dir(cursor) = &f.kind else {
        return Err(if f.is_path() { Errno::EBADF } else { Errno::ENOTDIR });
    };
    let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
    let cap = (count as usize).min(crate::mm::MAX_COPY);
    let mut out: Vec<u8> = Vec::new();
    let mut pos = f.pos.lock().unwrap_or_else(|e| e.into_inner());
    let mut cur = cursor.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        // Positions 0 and 1 are "." and ".."; entry k of the gofer is k+2.
        let (name, ino, kind): (Vec<u8>, u64, u8) = match *pos {
            0 => (b".".to_vec(), d.attr().ino, dtype::DT_DIR),
            1 => {
                let parent = d.parent().unwrap_or_else(|| d.clone());
                (b"..".to_vec(), parent.attr().ino, dtype::DT_DIR)
            }
            p => {
                let idx = p - 2;
                if !(cur.base..cur.base + cur.buf.len() as u64).contains(&idx) {
                    if cur.eof && idx >= cur.base {
                        break;
                    }
                    let ents = d.dir_entries(idx, DIRENT_BATCH)?;
                    cur.eof = ents.is_empty();
                    cur.base = idx;
                    cur.buf = ents;
                    if cur.eof {
                        break;
                    }
                }
                let e = &cur.buf[(idx - cur.base) as usize];
                (e.name.clone(), e.ino, e.kind)
            }
        };
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        if out.len() + reclen > cap {
            if out.is_empty() {
                return Err(Errno::EINVAL);
            }
            break;
        }
        let head = Dirent64Head { d_ino: ino, d_off: (*pos + 1) as i64, d_reclen: reclen as u16, d_type: kind };
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&name);
        out.resize(out.len() + reclen - 19 - name.len(), 0);
        *pos += 1;
    }
    t.mm.copy_out(buf, &out)?;
    d.notify(syscalls::flags::inotify::IN_ACCESS);
    Ok(out.len() as u64)
}

/// `statfs(2)` of the file system holding `d`.
fn statfs_of(d: &Dentry) -> Result<syscalls::structs::Statfs, Errno> {
    const ST_RDONLY: i64 = 1;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    match d.gofer() {
        Some((handle, mount)) => {
            let s = mount.client.statfs(handle).map_err(Errno::from_raw)?;
            let mut flags = s.flags & !ST_RDONLY;
            if mount.readonly {
                flags |= ST_RDONLY;
            }
            Ok(syscalls::structs::Statfs {
                f_type: s.fs_type,
                f_bsize: s.bsize,
                f_blocks: s.blocks,
                f_bfree: s.bfree,
                f_bavail: s.bavail,
                f_files: s.files,
                f_ffree: s.ffree,
                f_namelen: s.namelen,
                f_frsize: s.frsize,
                f_flags: flags,
                ..Default::default()
            })
        }
        None => {
            const PROC_SUPER_MAGIC: i64 = 0x9fa0;
            const SYSFS_MAGIC: i64 = 0x6265_6572;
            const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
            let (total, free) = d.tmpfs().map_or((0, 0), |i| i.fs.usage());
            Ok(syscalls::structs::Statfs {
                f_type: match d.attr().dev {
                    _ if d.tmpfs().is_some_and(|i| i.fs.mqueue) => syscalls::flags::mqueue::MQUEUE_MAGIC,
                    procfs::PROC_DEV => PROC_SUPER_MAGIC,
                    sysfs::SYSFS_DEV => SYSFS_MAGIC,
                    cgroupfs::CGROUP_DEV => CGROUP2_SUPER_MAGIC,
                    _ => TMPFS_MAGIC,
                },
                f_bsize: 4096,
                f_blocks: total / 4096,
                f_bfree: free / 4096,
                f_bavail: free / 4096,
                f_namelen: 255,
                f_frsize: 4096,
                ..Default::default()
            })
        }
    }
}

pub fn sys_statfs(t: &mut Task, path: u64, buf: u64) -> SysResult {
    let p = t.read_path(path)?;
    let d = t.lookup(AT_FDCWD, &p, true)?;
    t.write_obj(buf, &statfs_of(&d)?)?;
    Ok(0)
}

pub fn sys_fstatfs(t: &mut Task, fd: i32, buf: u64) -> SysResult {
    let f = t.fds.get(fd)?;
    let st = match &f.dentry {
        Some(d) => statfs_of(d)?,
        // Pipes and host stdio: an anonymous file system.
        None => syscalls::structs::Statfs {
            f_type: 0x5049_5045,
            f_bsize: 4096,
            f_namelen: 255,
            f_frsize: 4096,
            ..Default::default()
        },
    };
    t.write_obj(buf, &st)?;
    Ok(0)
}
