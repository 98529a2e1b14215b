//! File I/O: read, write and friends, open, close, dup, fcntl, ioctl, poll.
use std::sync::Arc;

use syscalls::flags::{fcntl as F, ioctl as I, poll as P, OpenFlags};
use syscalls::structs::{Iovec, Pollfd};
use syscalls::Errno;

use super::SysResult;
use crate::mm::MAX_COPY;
use crate::task::Task;
use crate::vfs::{File, FileKind};

/// Most iovecs in one call (IOV_MAX).
const IOV_MAX: usize = 1024;

pub fn sys_read(t: &mut Task, fd: i32, buf: u64, len: usize) -> SysResult {
    let f = t.fds.get(fd)?;
    read_into(t, &f, buf, len, None)
}

pub fn sys_pread64(t: &mut Task, fd: i32, buf: u64, len: usize, off: i64) -> SysResult {
    let f = t.fds.get(fd)?;
    if off < 0 {
        return Err(Errno::EINVAL);
    }
    read_into(t, &f, buf, len, Some(off as u64))
}

/// Counts a read-like or write-like call in /proc/pid/io.
fn accounted(t: &Task, write: bool, r: SysResult) -> SysResult {
    if let Ok(n) = r {
        t.group().account_io(write, n);
    }
    r
}

fn read_into(t: &mut Task, f: &File, buf: u64, len: usize, off: Option<u64>) -> SysResult {
    let r = read_into_inner(t, f, buf, len, off);
    accounted(t, false, r)
}

/// Copies of at least this many bytes take long enough (tens of
/// microseconds) for `Task::wake_early` to pay.
const LONG_COPY: usize = 256 << 10;

fn read_into_inner(t: &mut Task, f: &File, buf: u64, len: usize, off: Option<u64>) -> SysResult {
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    let n = len.min(MAX_COPY);
    t.mm.check_writable(buf, n)?;
    if let FileKind::Regular(fd) = &f.kind {
        // Host file data goes straight into guest memory (unless a shared
        // mapping's page cache holds newer data).
        if f.dentry.as_ref().is_none_or(|d| d.cached_pages().is_none()) {
            if n >= LONG_COPY {
                t.wake_early();
            }
            let mut pos = f.pos.lock().unwrap_or_else(|e| e.into_inner());
            let at = off.unwrap_or(*pos);
            let got = t.mm.lock().read_from_fd(buf, n, std::os::fd::AsRawFd::as_raw_fd(fd.as_ref()), at)?;
            if off.is_none() {
                *pos = at + got as u64;
            }
            return Ok(got as u64);
        }
    }
    let mut data = vec![0u8; n];
    let got = read_file(t, f, &mut data, off)?;
    t.mm.copy_out(buf, &data[..got])?;
    Ok(got as u64)
}

pub fn sys_write(t: &mut Task, fd: i32, buf: u64, len: usize) -> SysResult {
    let f = t.fds.get(fd)?;
    write_from(t, &f, &[Iovec { iov_base: buf, iov_len: len as u64 }], None)
}

pub fn sys_pwrite64(t: &mut Task, fd: i32, buf: u64, len: usize, off: i64) -> SysResult {
    let f = t.fds.get(fd)?;
    if off < 0 {
        return Err(Errno::EINVAL);
    }
    write_from(t, &f, &[Iovec { iov_base: buf, iov_len: len as u64 }], Some(off as u64))
}

/// Reads from any file: pipes block (interruptibly) in the sentry.
fn read_file(t: &Task, f: &File, data: &mut [u8], off: Option<u64>) -> Result<usize, Errno> {
    match &f.kind {
        FileKind::Pipe(_) | FileKind::Anon(_) | FileKind::Tty(_) if off.is_some() => Err(Errno::ESPIPE),
        FileKind::Pipe(end) => end.pipe.read(t, data, f.nonblocking()),
        FileKind::Tty(end) => end.read(t, data, f.nonblocking()),
        FileKind::Anon(a) => a.read(t, data, f.nonblocking()),
        _ => f.read(data, off),
    }
}

/// Writes to any file: pipes block (interruptibly) in the sentry.
fn write_file(t: &Task, f: &File, data: &[u8], off: Option<u64>) -> Result<usize, Errno> {
    match &f.kind {
        FileKind::Pipe(_) | FileKind::Anon(_) | FileKind::Tty(_) if off.is_some() => Err(Errno::ESPIPE),
        FileKind::Pipe(end) => end.pipe.write(t, data, f.nonblocking()),
        FileKind::Tty(end) => end.write(t, data, f.nonblocking()),
        FileKind::Anon(a) => a.write(t, data, f.nonblocking()),
        _ => f.write(data, off),
    }
}

/// Writes the guest buffers in chunks of at most MAX_COPY bytes, stopping
/// at the first short write. A pipe gets the buffers gathered, so a small
/// writev stays one atomic write.
fn write_from(t: &Task, f: &File, iovs: &[Iovec], off: Option<u64>) -> SysResult {
    accounted(t, true, write_from_inner(t, f, iovs, off))
}

fn write_from_inner(t: &Task, f: &File, iovs: &[Iovec], off: Option<u64>) -> SysResult {
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    if matches!(f.kind, FileKind::Pipe(_)) && iovs.len() > 1 {
        let total: u64 = iovs.iter().map(|i| i.iov_len).sum();
        if total <= MAX_COPY as u64 {
            let mut data = vec![0u8; total as usize];
            let mut at = 0;
            for iov in iovs {
                let n = iov.iov_len as usize;
                t.mm.copy_in(iov.iov_base, &mut data[at..at + n])?;
                at += n;
            }
            return write_file(t, f, &data, off).map(|n| n as u64);
        }
    }
    let mut total = 0u64;
    let mut chunk = Vec::new();
    for iov in iovs {
        let mut at = 0u64;
        while at < iov.iov_len {
            let n = (iov.iov_len - at).min(MAX_COPY as u64) as usize;
            chunk.resize(n, 0);
            if let Err(e) = t.mm.copy_in(iov.iov_base + at, &mut chunk) {
                return if total > 0 { Ok(total) } else { Err(e) };
            }
            let wrote = match write_file(t, f, &chunk, off.map(|o| o + total)) {
                Ok(w) => w,
                Err(e) if total > 0 => {
                    tracing::debug!(target: "sentry::syscall", "write stopped after {total} bytes: {e:?}");
                    return Ok(total);
                }
                Err(e) => return Err(e),
            };
            total += wrote as u64;
            at += wrote as u64;
            if wrote < n {
                return Ok(total);
            }
        }
    }
    Ok(total)
}

fn read_iovecs(t: &Task, iov: u64, cnt: i32) -> Result<Vec<Iovec>, Errno> {
    let cnt = usize::try_from(cnt).map_err(|_| Errno::EINVAL)?;
    if cnt > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut v = Vec::with_capacity(cnt);
    let mut total: u64 = 0;
    for i in 0..cnt {
        let e: Iovec = t.read_obj(iov + (i * 16) as u64)?;
        total = total.checked_add(e.iov_len).ok_or(Errno::EINVAL)?;
        if total > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        v.push(e);
    }
    Ok(v)
}

pub fn sys_writev(t: &mut Task, fd: i32, iov: u64, cnt: i32) -> SysResult {
    let f = t.fds.get(fd)?;
    let iovs = read_iovecs(t, iov, cnt)?;
    write_from(t, &f, &iovs, None)
}

pub fn sys_pwritev(t: &mut Task, fd: i32, iov: u64, cnt: i32, off: i64) -> SysResult {
    let f = t.fds.get(fd)?;
    if off < 0 {
        return Err(Errno::EINVAL);
    }
    let iovs = read_iovecs(t, iov, cnt)?;
    write_from(t, &f, &iovs, Some(off as u64))
}

pub fn sys_readv(t: &mut Task, fd: i32, iov: u64, cnt: i32) -> SysResult {
    let f = t.fds.get(fd)?;
    let iovs = read_iovecs(t, iov, cnt)?;
    readv_into(t, &f, &iovs, None)
}

pub fn sys_preadv(t: &mut Task, fd: i32, iov: u64, cnt: i32, off: i64) -> SysResult {
    let f = t.fds.get(fd)?;
    if off < 0 {
        return Err(Errno::EINVAL);
    }
    let iovs = read_iovecs(t, iov, cnt)?;
    readv_into(t, &f, &iovs, Some(off as u64))
}

/// One read into a sentry buffer, scattered over the guest's iovecs.
fn readv_into(t: &Task, f: &File, iovs: &[Iovec], off: Option<u64>) -> SysResult {
    accounted(t, false, readv_into_inner(t, f, iovs, off))
}

fn readv_into_inner(t: &Task, f: &File, iovs: &[Iovec], off: Option<u64>) -> SysResult {
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    let want: u64 = iovs.iter().map(|i| i.iov_len).sum();
    let n = want.min(MAX_COPY as u64) as usize;
    let mut left = n;
    for iov in iovs {
        let k = (iov.iov_len as usize).min(left);
        t.mm.check_writable(iov.iov_base, k)?;
        left -= k;
    }
    let mut data = vec![0u8; n];
    let got = read_file(t, f, &mut data, off)?;
    let mut done = 0;
    for iov in iovs {
        if done == got {
            break;
        }
        let k = (iov.iov_len as usize).min(got - done);
        t.mm.copy_out(iov.iov_base, &data[done..done + k])?;
        done += k;
    }
    Ok(got as u64)
}

pub fn sys_lseek(t: &mut Task, fd: i32, off: i64, whence: u32) -> SysResult {
    let f = t.fds.get(fd)?;
    f.seek(off, whence)
}

pub fn sys_open(t: &mut Task, path: u64, flags: u32, mode: u32) -> SysResult {
    sys_openat(t, syscalls::flags::AT_FDCWD, path, flags, mode)
}

pub fn sys_creat(t: &mut Task, path: u64, mode: u32) -> SysResult {
    let flags = OpenFlags::O_CREAT | OpenFlags::O_WRONLY | OpenFlags::O_TRUNC;
    sys_openat(t, syscalls::flags::AT_FDCWD, path, flags.bits(), mode)
}

pub fn sys_openat(t: &mut Task, dirfd: i32, path: u64, flags: u32, mode: u32) -> SysResult {
    let path = t.read_path(path)?;
    let file = crate::vfs::open::open(t, dirfd, &path, flags, mode)?;
    let cloexec = flags & OpenFlags::O_CLOEXEC.bits() != 0;
    let fd = t.fds.insert(file, cloexec, 0, t.nofile())?;
    Ok(fd as u64)
}

/// openat2: openat with a `struct open_how` of `size` bytes, strict about
/// unknown flags, and RESOLVE_* restrictions on the walk.
pub fn sys_openat2(t: &mut Task, dirfd: i32, path: u64, how: u64, size: usize) -> SysResult {
    use syscalls::flags::resolve::*;
    if size < OPEN_HOW_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let mut raw = vec![0u8; size];
    t.mm.copy_in(how, &mut raw)?;
    // A newer struct may be passed as long as what we do not know is zero.
    if raw[OPEN_HOW_SIZE_VER0..].iter().any(|b| *b != 0) {
        return Err(Errno::E2BIG);
    }
    let field = |i: usize| u64::from_ne_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let (flags, mode, resolve) = (field(0), field(1), field(2));
    let known = RESOLVE_NO_XDEV
        | RESOLVE_NO_MAGICLINKS
        | RESOLVE_NO_SYMLINKS
        | RESOLVE_BENEATH
        | RESOLVE_IN_ROOT
        | RESOLVE_CACHED;
    if flags & !VALID_OPEN_FLAGS != 0 || resolve & !known != 0 || mode & !0o7777 != 0 {
        return Err(Errno::EINVAL);
    }
    let has = |f: OpenFlags| flags & u64::from(f.bits()) == u64::from(f.bits());
    let creates = has(OpenFlags::O_CREAT) || has(OpenFlags::O_TMPFILE);
    if (mode != 0 && !creates) || resolve & RESOLVE_BENEATH != 0 && resolve & RESOLVE_IN_ROOT != 0 {
        return Err(Errno::EINVAL);
    }
    let path_only = OpenFlags::O_PATH | OpenFlags::O_DIRECTORY | OpenFlags::O_NOFOLLOW | OpenFlags::O_CLOEXEC;
    if has(OpenFlags::O_PATH) && flags & !u64::from(path_only.bits()) != 0 {
        return Err(Errno::EINVAL);
    }
    // Every lookup here may need the gofer: a "cached only" open that
    // would create or truncate is refused as Linux refuses it.
    if resolve & RESOLVE_CACHED != 0 && (creates || has(OpenFlags::O_TRUNC)) {
        return Err(Errno::EAGAIN);
    }
    let r = crate::vfs::Restrict {
        beneath: resolve & RESOLVE_BENEATH != 0,
        no_symlinks: resolve & RESOLVE_NO_SYMLINKS != 0,
        no_magiclinks: resolve & RESOLVE_NO_MAGICLINKS != 0,
        no_xdev: resolve & RESOLVE_NO_XDEV != 0,
        in_root: resolve & RESOLVE_IN_ROOT != 0,
        scoped: resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT) != 0,
    };
    let path = t.read_path(path)?;
    let file = crate::vfs::open::open_restricted(t, dirfd, &path, flags as u32, mode as u32, r)?;
    let fd = t.fds.insert(file, has(OpenFlags::O_CLOEXEC), 0, t.nofile())?;
    Ok(fd as u64)
}

pub fn sys_close(t: &mut Task, fd: i32) -> SysResult {
    let e = t.fds.remove(fd)?;
    t.flush_closed([e]);
    Ok(0)
}

/// The byte range `[start, end)` a struct flock names, for file `f`.
fn lock_range(f: &File, fl: &syscalls::structs::Flock) -> Result<(u64, u64), Errno> {
    let base: i64 = match fl.l_whence {
        0 => 0,
        1 => *f.pos.lock().unwrap_or_else(|e| e.into_inner()) as i64,
        2 => f.stat()?.st_size,
        _ => return Err(Errno::EINVAL),
    };
    let start = base.checked_add(fl.l_start).ok_or(Errno::EOVERFLOW)?;
    let (start, end) = match fl.l_len {
        0 => (start, u64::MAX as i128),
        n if n > 0 => (start, i128::from(start) + i128::from(n)),
        n => (start.checked_add(n).ok_or(Errno::EINVAL)?, i128::from(start)),
    };
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    Ok((start as u64, end.min(i128::from(u64::MAX)) as u64))
}

/// fcntl's record locks: F_GETLK/F_SETLK/F_SETLKW (owned by the process)
/// and F_OFD_* (owned by the open file description).
fn record_lock(t: &mut Task, f: &Arc<File>, cmd: u32, arg: u64) -> SysResult {
    use crate::vfs::lock::{locks, Lock, Owner};
    use syscalls::flags::fcntl as F;
    let mut fl: syscalls::structs::Flock = t.read_obj(arg)?;
    let ofd = matches!(cmd, F::F_OFD_GETLK | F::F_OFD_SETLK | F::F_OFD_SETLKW);
    if ofd && fl.l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    let owner = if ofd { Owner::Description(Arc::as_ptr(f) as usize) } else { Owner::Process(t.group().pid) };
    let (start, end) = lock_range(f, &fl)?;
    let id = f.lock_identity()?;
    let write = match fl.l_type {
        F::F_RDLCK => false,
        F::F_WRLCK => true,
        F::F_UNLCK if !matches!(cmd, F::F_GETLK | F::F_OFD_GETLK) => {
            locks().set(id, false, Lock { owner, write: false, start, end }, true)?;
            return Ok(0);
        }
        _ => return Err(Errno::EINVAL),
    };
    let want = Lock { owner, write, start, end };
    if matches!(cmd, F::F_GETLK | F::F_OFD_GETLK) {
        match locks().conflict(id, false, &want) {
            Some(l) => {
                fl.l_type = if l.write { F::F_WRLCK } else { F::F_RDLCK };
                fl.l_whence = 0;
                fl.l_start = l.start as i64;
                fl.l_len = if l.end == u64::MAX { 0 } else { (l.end - l.start) as i64 };
                fl.l_pid = match l.owner {
                    Owner::Process(p) => t.vpid(p),
                    Owner::Description(_) => -1,
                };
            }
            None => fl.l_type = F::F_UNLCK,
        }
        t.write_obj(arg, &fl)?;
        return Ok(0);
    }
    if (write && !f.writable()) || (!write && !f.readable()) {
        return Err(Errno::EBADF);
    }
    if ofd {
        f.locked.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if matches!(cmd, F::F_SETLKW | F::F_OFD_SETLKW) {
        let r = t.block_on(None, || match locks().set_or_wait(id, want) {
            Ok(crate::vfs::lock::Attempt::Wait) => None,
            r => Some(r),
        });
        locks().stop_waiting(owner);
        r??;
    } else {
        locks().set(id, false, want, false)?;
    }
    Ok(0)
}

pub fn sys_flock(t: &mut Task, fd: i32, op: i32) -> SysResult {
    use crate::vfs::lock::{locks, Lock, Owner};
    use syscalls::flags::fcntl::{LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN};
    let f = t.fds.get(fd)?;
    if f.is_path() {
        return Err(Errno::EBADF);
    }
    let id = f.lock_identity()?;
    let owner = Owner::Description(Arc::as_ptr(&f) as usize);
    let want = |write| Lock { owner, write, start: 0, end: u64::MAX };
    match op & !LOCK_NB {
        LOCK_UN => {
            locks().set(id, true, want(false), true)?;
            return Ok(0);
        }
        LOCK_SH | LOCK_EX => {}
        _ => return Err(Errno::EINVAL),
    }
    let w = want(op & !LOCK_NB == LOCK_EX);
    f.locked.store(true, std::sync::atomic::Ordering::Relaxed);
    if op & LOCK_NB != 0 {
        locks().set(id, true, w, false).map_err(|_| Errno::EWOULDBLOCK)?;
    } else {
        t.block_on(None, || match locks().set(id, true, w, false) {
            Err(Errno::EAGAIN) => None,
            r => Some(r),
        })??;
    }
    Ok(0)
}

pub fn sys_dup(t: &mut Task, fd: i32) -> SysResult {
    let f = t.fds.get(fd)?;
    Ok(t.fds.insert(f, false, 0, t.nofile())? as u64)
}

pub fn sys_dup2(t: &mut Task, old: i32, new: i32) -> SysResult {
    let f = t.fds.get(old)?;
    if old == new {
        return Ok(new as u64);
    }
    let replaced = t.fds.install(new, f, false, t.nofile())?;
    t.flush_closed(replaced);
    Ok(new as u64)
}

pub fn sys_dup3(t: &mut Task, old: i32, new: i32, flags: u32) -> SysResult {
    if old == new || flags & !OpenFlags::O_CLOEXEC.bits() != 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.get(old)?;
    let replaced = t.fds.install(new, f, flags != 0, t.nofile())?;
    t.flush_closed(replaced);
    Ok(new as u64)
}

pub fn sys_fcntl(t: &mut Task, fd: i32, cmd: u32, arg: u64) -> SysResult {
    let f = t.fds.get(fd)?;
    match cmd {
        F::F_DUPFD | F::F_DUPFD_CLOEXEC => {
            let min = i32::try_from(arg).map_err(|_| Errno::EINVAL)?;
            if min < 0 || min as u64 >= t.nofile() {
                return Err(Errno::EINVAL);
            }
            Ok(t.fds.insert(f, cmd == F::F_DUPFD_CLOEXEC, min, t.nofile())? as u64)
        }
        F::F_GETFD => Ok(u64::from(t.fds.cloexec(fd)?)),
        F::F_SETFD => {
            t.fds.set_cloexec(fd, arg & F::FD_CLOEXEC != 0)?;
            Ok(0)
        }
        F::F_GETFL => Ok(u64::from(f.flags())),
        F::F_GETLK | F::F_SETLK | F::F_SETLKW | F::F_OFD_GETLK | F::F_OFD_SETLK | F::F_OFD_SETLKW => {
            record_lock(t, &f, cmd, arg)
        }
        F::F_GETPIPE_SZ | F::F_SETPIPE_SZ => {
            let FileKind::Pipe(end) = &f.kind else { return Err(Errno::EBADF) };
            if cmd == F::F_GETPIPE_SZ {
                return Ok(end.pipe.capacity() as u64);
            }
            let want = usize::try_from(arg).map_err(|_| Errno::EINVAL)?;
            Ok(end.pipe.set_capacity(want)? as u64)
        }
        F::F_SETFL => {
            f.set_status_flags(arg as u32);
            Ok(0)
        }
        _ => {
            tracing::debug!(target: "sentry::syscall", "fcntl command {cmd} not supported");
            Err(Errno::EINVAL)
        }
    }
}

pub fn sys_ioctl(t: &mut Task, fd: i32, req: u32, arg: u64) -> SysResult {
    let f = t.fds.get(fd)?;
    match req {
        I::FIOCLEX | I::FIONCLEX => {
            t.fds.set_cloexec(fd, req == I::FIOCLEX)?;
            return Ok(0);
        }
        I::FIONBIO => {
            let on: i32 = t.read_obj(arg)?;
            let nb = OpenFlags::O_NONBLOCK.bits();
            f.set_status_flags(if on != 0 { f.flags() | nb } else { f.flags() & !nb });
            return Ok(0);
        }
        _ => {}
    }
    match &f.kind {
        FileKind::Host(_) => host_ioctl(t, &f, req, arg),
        FileKind::Tty(end) => crate::tty::ioctl(t, end, req, arg),
        FileKind::Pipe(end) if req == I::FIONREAD => {
            let n = i32::try_from(end.pipe.available()).unwrap_or(i32::MAX);
            t.write_obj(arg, &n)?;
            Ok(0)
        }
        FileKind::Anon(_) if req == I::FIONREAD => {
            let n = super::event::inotify_queued(&f).ok_or(Errno::ENOTTY)?;
            t.write_obj(arg, &i32::try_from(n).unwrap_or(i32::MAX))?;
            Ok(0)
        }
        FileKind::Regular(_) if req == I::FIONREAD => {
            let size = f.stat()?.st_size as u64;
            let pos = *f.pos.lock().unwrap_or_else(|e| e.into_inner());
            let avail = i32::try_from(size.saturating_sub(pos)).unwrap_or(i32::MAX);
            t.write_obj(arg, &avail)?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// Terminal and FIONREAD queries on the container's stdio go to the host.
fn host_ioctl(t: &Task, f: &Arc<File>, req: u32, arg: u64) -> SysResult {
    let fd = f.host_fd().ok_or(Errno::ENOTTY)?;
    let (size, out) = match req {
        I::TCGETS => (36, true),
        I::TIOCGWINSZ => (8, true),
        I::TIOCGPGRP | I::FIONREAD => (4, true),
        I::TCSETS | I::TCSETSW | I::TCSETSF => (36, false),
        I::TIOCSWINSZ => (8, false),
        _ => return Err(Errno::ENOTTY),
    };
    let mut buf = vec![0u8; size];
    if !out {
        t.mm.copy_in(arg, &mut buf)?;
    } else {
        t.mm.check_writable(arg, size)?;
    }
    let r = crate::host::ioctl_with_buf(fd, req, &mut buf)?;
    if req == I::TIOCGPGRP {
        // The guest's foreground group is its init's.
        buf.copy_from_slice(&1i32.to_le_bytes());
    }
    if out {
        t.mm.copy_out(arg, &buf)?;
    }
    Ok(r as u64)
}

pub fn sys_poll(t: &mut Task, fds: u64, nfds: u32, timeout_ms: i32) -> SysResult {
    if u64::from(nfds) > t.nofile() {
        return Err(Errno::EINVAL);
    }
    let mut pfds: Vec<Pollfd> = Vec::with_capacity(nfds as usize);
    for i in 0..nfds as u64 {
        pfds.push(t.read_obj(fds + i * 8)?);
    }
    let ready = poll_files(t, &mut pfds, timeout_ms)?;
    for (i, p) in pfds.iter().enumerate() {
        t.write_obj(fds + i as u64 * 8, p)?;
    }
    Ok(ready as u64)
}

/// Polls guest fds until one is ready, the timeout passes or a signal
/// needs handling. Host fds (stdio) cannot wake the sentry's event queue, so
/// they are polled in slices.
fn poll_files(t: &Task, pfds: &mut [Pollfd], timeout_ms: i32) -> Result<usize, Errno> {
    use std::time::{Duration, Instant};
    const HOST_SLICE_MS: u64 = 50;
    let deadline = (timeout_ms >= 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
    let only_host = pfds.iter().all(|p| p.fd < 0 || t.fds.get(p.fd).is_ok_and(|f| matches!(f.kind, FileKind::Host(_))));
    let any_host = pfds.iter().any(|p| p.fd >= 0 && t.fds.get(p.fd).is_ok_and(|f| matches!(f.kind, FileKind::Host(_))));
    loop {
        // Read the generation first: a change after this wakes the wait.
        let seen = t.kernel.events.generation();
        let left_ms =
            deadline.map_or(HOST_SLICE_MS, |d| d.saturating_duration_since(Instant::now()).as_millis() as u64);
        let host_wait = if only_host { left_ms.min(HOST_SLICE_MS) as i32 } else { 0 };
        let n = poll_once(t, pfds, host_wait)?;
        if n > 0 || timeout_ms == 0 {
            return Ok(n);
        }
        if t.has_deliverable_signal() {
            // EINTR after a handler, restarted after a stop.
            return Err(super::ERESTARTNOHAND);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(0);
        }
        if only_host {
            continue;
        }
        let slice = if any_host {
            let s = Instant::now() + Duration::from_millis(10);
            Some(deadline.map_or(s, |d| d.min(s)))
        } else {
            deadline
        };
        t.kernel.events.wait(seen, slice);
    }
}

/// The readiness of every pollfd now; host fds wait at most `host_wait_ms`.
fn poll_once(t: &Task, pfds: &mut [Pollfd], host_wait_ms: i32) -> Result<usize, Errno> {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let always = P::POLLERR | P::POLLHUP | P::POLLNVAL;
    let mut host_idx = Vec::new();
    let mut files = Vec::new();
    for (i, p) in pfds.iter_mut().enumerate() {
        p.revents = 0;
        if p.fd < 0 {
            continue;
        }
        match t.fds.get(p.fd) {
            Err(_) => p.revents = P::POLLNVAL,
            Ok(f) => match &f.kind {
                FileKind::Host(_) => {
                    host_idx.push(i);
                    files.push(f.clone());
                }
                _ => p.revents = f.readiness(t) & (p.events | always),
            },
        }
    }
    if !host_idx.is_empty() {
        let mut host: Vec<PollFd> = files
            .iter()
            .zip(&host_idx)
            .filter_map(|(f, i)| match &f.kind {
                FileKind::Host(fd) => Some(PollFd::new(fd.as_fd(), PollFlags::from_bits_truncate(pfds[*i].events))),
                _ => None,
            })
            .collect();
        let to = PollTimeout::try_from(host_wait_ms.max(0)).unwrap_or(PollTimeout::ZERO);
        match nix::poll::poll(&mut host, to) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(Errno::from_raw(e as i32)),
        }
        for (h, i) in host.iter().zip(&host_idx) {
            pfds[*i].revents = h.revents().map_or(0, |r| r.bits());
        }
    }
    Ok(pfds.iter().filter(|p| p.revents != 0).count())
}

pub fn sys_pipe(t: &mut Task, fds: u64) -> SysResult {
    sys_pipe2(t, fds, 0)
}

pub fn sys_pipe2(t: &mut Task, fds: u64, flags: u32) -> SysResult {
    let allowed = OpenFlags::O_CLOEXEC | OpenFlags::O_NONBLOCK | OpenFlags::O_DIRECT;
    if flags & !allowed.bits() != 0 {
        return Err(Errno::EINVAL);
    }
    let (r, w) = crate::pipe::Pipe::create(t.kernel.events.clone(), (t.creds.fsuid, t.creds.fsgid));
    let status = flags & (OpenFlags::O_NONBLOCK | OpenFlags::O_DIRECT).bits();
    let rf = File::new(FileKind::Pipe(r), status, None);
    let wf = File::new(FileKind::Pipe(w), status | OpenFlags::O_WRONLY.bits(), None);
    let cloexec = flags & OpenFlags::O_CLOEXEC.bits() != 0;
    let rfd = t.fds.insert(rf, cloexec, 0, t.nofile())?;
    let wfd = match t.fds.insert(wf, cloexec, 0, t.nofile()) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds.remove(rfd);
            return Err(e);
        }
    };
    if let Err(e) = t.write_obj(fds, &[rfd, wfd]) {
        let _ = t.fds.remove(rfd);
        let _ = t.fds.remove(wfd);
        return Err(e);
    }
    Ok(0)
}

/// Polls with `timeout` and, while waiting, `mask` as the signal mask
/// (ppoll, pselect6); the old mask comes back afterwards, or after the
/// handler of a signal that interrupted the wait.
fn poll_with_mask(t: &mut Task, pfds: &mut [Pollfd], timeout_ms: i32, mask: Option<u64>) -> Result<usize, Errno> {
    t.with_wait_mask(mask, |t| poll_files(t, pfds, timeout_ms))
}

/// Milliseconds of a timespec timeout (None: wait forever).
fn timespec_ms(t: &Task, addr: u64) -> Result<i32, Errno> {
    if addr == 0 {
        return Ok(-1);
    }
    let ts: syscalls::structs::Timespec = t.read_obj(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    let ms = ts.tv_sec.saturating_mul(1000).saturating_add((ts.tv_nsec + 999_999) / 1_000_000);
    Ok(ms.min(i64::from(i32::MAX)) as i32)
}

pub fn sys_ppoll(t: &mut Task, fds: u64, nfds: u32, tsp: u64, sigmask: u64, setsize: u64) -> SysResult {
    if u64::from(nfds) > t.nofile() {
        return Err(Errno::EINVAL);
    }
    let timeout = timespec_ms(t, tsp)?;
    let mask = if sigmask != 0 {
        if setsize != 8 {
            return Err(Errno::EINVAL);
        }
        Some(t.read_obj::<u64>(sigmask)?)
    } else {
        None
    };
    let mut pfds: Vec<Pollfd> = Vec::with_capacity(nfds as usize);
    for i in 0..u64::from(nfds) {
        pfds.push(t.read_obj(fds + i * 8)?);
    }
    let ready = poll_with_mask(t, &mut pfds, timeout, mask)?;
    for (i, p) in pfds.iter().enumerate() {
        t.write_obj(fds + i as u64 * 8, p)?;
    }
    Ok(ready as u64)
}

/// Reads an fd_set of `nfds` bits (None for a null pointer).
fn read_fdset(t: &Task, addr: u64, nfds: usize) -> Result<Option<Vec<u64>>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let words = nfds.div_ceil(64);
    let mut v = vec![0u64; words];
    for (i, w) in v.iter_mut().enumerate() {
        *w = t.read_obj(addr + 8 * i as u64)?;
    }
    Ok(Some(v))
}

fn select_common(t: &mut Task, nfds: i32, sets: [u64; 3], timeout_ms: i32, mask: Option<u64>) -> SysResult {
    if nfds < 0 {
        return Err(Errno::EINVAL);
    }
    // Linux ignores bits past the end of the fd table.
    let n = (nfds as usize).min(t.fds.max_fds());
    let r = read_fdset(t, sets[0], n)?;
    let w = read_fdset(t, sets[1], n)?;
    let e = read_fdset(t, sets[2], n)?;
    let bit = |s: &Option<Vec<u64>>, fd: usize| s.as_ref().is_some_and(|v| v[fd / 64] & (1 << (fd % 64)) != 0);
    let mut pfds = Vec::new();
    for fd in 0..n {
        let mut events = 0;
        if bit(&r, fd) {
            events |= P::POLLIN;
        }
        if bit(&w, fd) {
            events |= P::POLLOUT;
        }
        if bit(&e, fd) {
            events |= P::POLLPRI;
        }
        if events != 0 {
            t.fds.get(fd as i32)?;
            pfds.push(Pollfd { fd: fd as i32, events, revents: 0 });
        }
    }
    poll_with_mask(t, &mut pfds, timeout_ms, mask)?;
    let words = n.div_ceil(64);
    let mut out = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let mut count = 0;
    for p in &pfds {
        let fd = p.fd as usize;
        let hits = [
            p.events & P::POLLIN != 0 && p.revents & (P::POLLIN | P::POLLHUP | P::POLLERR) != 0,
            p.events & P::POLLOUT != 0 && p.revents & (P::POLLOUT | P::POLLERR) != 0,
            p.events & P::POLLPRI != 0 && p.revents & P::POLLPRI != 0,
        ];
        for (k, hit) in hits.iter().enumerate() {
            if *hit {
                out[k][fd / 64] |= 1 << (fd % 64);
                count += 1;
            }
        }
    }
    for (k, addr) in sets.iter().enumerate() {
        if *addr != 0 {
            for (i, word) in out[k].iter().enumerate() {
                t.write_obj(addr + 8 * i as u64, word)?;
            }
        }
    }
    Ok(count)
}

/// Writes the time a select left of `total` (started at `start`) back to
/// the guest's timeout, as Linux does whatever the result.
fn select_time_left(start: std::time::Instant, total: std::time::Duration) -> std::time::Duration {
    total.saturating_sub(start.elapsed())
}

pub fn sys_select(t: &mut Task, nfds: i32, r: u64, w: u64, e: u64, tv: u64) -> SysResult {
    let start = std::time::Instant::now();
    let (timeout, total) = if tv == 0 {
        (-1, None)
    } else {
        let v: syscalls::structs::Timeval = t.read_obj(tv)?;
        if v.tv_sec < 0 || !(0..1_000_000).contains(&v.tv_usec) {
            return Err(Errno::EINVAL);
        }
        let ms = v.tv_sec.saturating_mul(1000).saturating_add((v.tv_usec + 999) / 1000).min(i64::from(i32::MAX)) as i32;
        (ms, Some(std::time::Duration::new(v.tv_sec as u64, (v.tv_usec * 1000) as u32)))
    };
    let r = select_common(t, nfds, [r, w, e], timeout, None);
    if let Some(total) = total {
        let left = select_time_left(start, total);
        let v = syscalls::structs::Timeval { tv_sec: left.as_secs() as i64, tv_usec: i64::from(left.subsec_micros()) };
        t.write_obj(tv, &v)?;
    }
    r
}

pub fn sys_pselect6(t: &mut Task, nfds: i32, r: u64, w: u64, e: u64, tsp: u64, sig: u64) -> SysResult {
    let start = std::time::Instant::now();
    let timeout = timespec_ms(t, tsp)?;
    let total = if tsp != 0 {
        let ts: syscalls::structs::Timespec = t.read_obj(tsp)?;
        Some(std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    } else {
        None
    };
    let mask = if sig != 0 {
        let (set, size): (u64, u64) = (t.read_obj(sig)?, t.read_obj(sig + 8)?);
        if set == 0 {
            None
        } else if size != 8 {
            return Err(Errno::EINVAL);
        } else {
            Some(t.read_obj::<u64>(set)?)
        }
    } else {
        None
    };
    let r = select_common(t, nfds, [r, w, e], timeout, mask);
    if let Some(total) = total {
        let left = select_time_left(start, total);
        let ts = syscalls::structs::Timespec { tv_sec: left.as_secs() as i64, tv_nsec: i64::from(left.subsec_nanos()) };
        t.write_obj(tsp, &ts)?;
    }
    r
}

pub fn sys_close_range(t: &mut Task, first: u32, last: u32, flags: u32) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u32 = 2;
    const CLOSE_RANGE_CLOEXEC: u32 = 4;
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    let closed = t.fds.close_range(first, last, flags & CLOSE_RANGE_CLOEXEC != 0);
    t.flush_closed(closed);
    Ok(0)
}

use syscalls::flags::files::{SPLICE_F_GIFT, SPLICE_F_MORE, SPLICE_F_MOVE, SPLICE_F_NONBLOCK};
const SPLICE_FLAGS: u32 = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT;

/// The offset a splice reads or writes at: `*off` when given (not for a
/// pipe), else the file position.
fn splice_offset(t: &Task, f: &File, off: u64) -> Result<Option<u64>, Errno> {
    if off == 0 {
        return Ok(None);
    }
    if matches!(f.kind, FileKind::Pipe(_)) {
        return Err(Errno::ESPIPE);
    }
    let o: i64 = t.read_obj(off)?;
    if o < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(o as u64))
}

/// Copies up to `len` bytes from `fin` at `at_in` to `fout` at `at_out`
/// (None: the file positions) in chunks, as sendfile and copy_file_range
/// do in the kernel: stops at end of file or a short write, and reports
/// what was copied if a later chunk fails.
fn copy_between(
    t: &Task,
    fin: &File,
    mut at_in: Option<u64>,
    fout: &File,
    mut at_out: Option<u64>,
    len: usize,
) -> Result<(usize, Option<u64>, Option<u64>), Errno> {
    const CHUNK: usize = 128 * 1024;
    let mut buf = vec![0u8; len.min(CHUNK)];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(CHUNK);
        let step = read_file(t, fin, &mut buf[..want], at_in).and_then(|got| {
            let wrote = if got == 0 { 0 } else { write_file(t, fout, &buf[..got], at_out)? };
            Ok((got, wrote))
        });
        let (got, wrote) = match step {
            Ok(v) => v,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        done += wrote;
        at_in = at_in.map(|o| o + wrote as u64);
        at_out = at_out.map(|o| o + wrote as u64);
        if got == 0 || wrote < got {
            // A short write leaves the unwritten part unread: put the input
            // position back by that much.
            if wrote < got && at_in.is_none() {
                let mut pos = fin.pos.lock().unwrap_or_else(|e| e.into_inner());
                *pos = pos.saturating_sub((got - wrote) as u64);
            }
            break;
        }
    }
    Ok((done, at_in, at_out))
}

/// sendfile: copies from `in_fd` (at `*offset`, updated, when given) to
/// `out_fd`, which may be any writable file.
pub fn sys_sendfile(t: &mut Task, out_fd: i32, in_fd: i32, offset: u64, count: usize) -> SysResult {
    let (fin, fout) = (t.fds.get(in_fd)?, t.fds.get(out_fd)?);
    if !fin.readable() || !fout.writable() {
        return Err(Errno::EBADF);
    }
    if fout.flags() & OpenFlags::O_APPEND.bits() != 0 {
        return Err(Errno::EINVAL);
    }
    // The input must be a file that can splice: not a pipe, event or
    // terminal (Linux's ttys have no splice_read: programs like cat fall
    // back to read, so that an EOF typed ends them).
    if matches!(fin.kind, FileKind::Pipe(_) | FileKind::Anon(_) | FileKind::Dir(_) | FileKind::Tty(_)) {
        return Err(Errno::EINVAL);
    }
    let at = if offset == 0 {
        None
    } else {
        let o: i64 = t.read_obj(offset)?;
        if o < 0 {
            return Err(Errno::EINVAL);
        }
        Some(o as u64)
    };
    let (n, at_in, _) = copy_between(t, &fin, at, &fout, None, count.min(MAX_COPY))?;
    if let Some(o) = at_in {
        t.write_obj(offset, &(o as i64))?;
    }
    Ok(n as u64)
}

/// copy_file_range: copies between two regular files, at `*off_in` and
/// `*off_out` (updated) or the file positions.
pub fn sys_copy_file_range(
    t: &mut Task,
    fd_in: i32,
    off_in: u64,
    fd_out: i32,
    off_out: u64,
    len: usize,
    flags: u32,
) -> SysResult {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let (fin, fout) = (t.fds.get(fd_in)?, t.fds.get(fd_out)?);
    if !fin.readable() || !fout.writable() || fout.flags() & OpenFlags::O_APPEND.bits() != 0 {
        return Err(Errno::EBADF);
    }
    let (sin, sout) = (fin.stat()?, fout.stat()?);
    let kind = |m: u32| m & syscalls::flags::mode::S_IFMT;
    if kind(sin.st_mode) == syscalls::flags::mode::S_IFDIR || kind(sout.st_mode) == syscalls::flags::mode::S_IFDIR {
        return Err(Errno::EISDIR);
    }
    if kind(sin.st_mode) != syscalls::flags::mode::S_IFREG || kind(sout.st_mode) != syscalls::flags::mode::S_IFREG {
        return Err(Errno::EINVAL);
    }
    let read_off = |t: &Task, p: u64| -> Result<Option<u64>, Errno> {
        if p == 0 {
            return Ok(None);
        }
        let o: i64 = t.read_obj(p)?;
        u64::try_from(o).map(Some).map_err(|_| Errno::EINVAL)
    };
    let (at_in, at_out) = (read_off(t, off_in)?, read_off(t, off_out)?);
    let pos = |f: &File, at: Option<u64>| at.unwrap_or_else(|| *f.pos.lock().unwrap_or_else(|e| e.into_inner()));
    let (start_in, start_out) = (pos(&fin, at_in), pos(&fout, at_out));
    // Overlapping ranges of one file are refused.
    let same = sin.st_dev == sout.st_dev && sin.st_ino == sout.st_ino;
    let len = len.min(MAX_COPY);
    if same && start_in < start_out + len as u64 && start_out < start_in + len as u64 {
        return Err(Errno::EINVAL);
    }
    if start_in.checked_add(len as u64).is_none_or(|e| e > i64::MAX as u64)
        || start_out.checked_add(len as u64).is_none_or(|e| e > i64::MAX as u64)
    {
        return Err(Errno::EOVERFLOW);
    }
    let (n, new_in, new_out) = copy_between(t, &fin, at_in, &fout, at_out, len)?;
    if let Some(o) = new_in {
        t.write_obj(off_in, &(o as i64))?;
    }
    if let Some(o) = new_out {
        t.write_obj(off_out, &(o as i64))?;
    }
    Ok(n as u64)
}

/// posix_fadvise: a hint; checked, then ignored (the sentry keeps no page
/// cache of its own for host files to drop or prefetch).
pub fn sys_fadvise64(t: &mut Task, fd: i32, _offset: i64, len: i64, advice: i32) -> SysResult {
    let f = t.fds.get(fd)?;
    if matches!(f.kind, FileKind::Pipe(_)) {
        return Err(Errno::ESPIPE);
    }
    if !(0..=5).contains(&advice) || len < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn sys_splice(
    t: &mut Task,
    fd_in: i32,
    off_in: u64,
    fd_out: i32,
    off_out: u64,
    len: usize,
    flags: u32,
) -> SysResult {
    if flags & !SPLICE_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let (fin, fout) = (t.fds.get(fd_in)?, t.fds.get(fd_out)?);
    if !fin.readable() || !fout.writable() {
        return Err(Errno::EBADF);
    }
    if fout.flags() & OpenFlags::O_APPEND.bits() != 0 {
        return Err(Errno::EINVAL);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let (at_in, at_out) = (splice_offset(t, &fin, off_in)?, splice_offset(t, &fout, off_out)?);
    let len = len.min(MAX_COPY);
    if len == 0 {
        return Ok(0);
    }
    let n = match (&fin.kind, &fout.kind) {
        (FileKind::Pipe(a), FileKind::Pipe(b)) => {
            if Arc::ptr_eq(&a.pipe, &b.pipe) {
                return Err(Errno::EINVAL);
            }
            a.pipe.transfer(t, &b.pipe, len, false, nonblock || fin.nonblocking())?
        }
        (_, FileKind::Pipe(b)) => {
            let room = b.pipe.wait_room(t, nonblock || fout.nonblocking())?;
            let mut buf = vec![0u8; len.min(room.max(1))];
            let got = read_file(t, &fin, &mut buf, at_in)?;
            if got == 0 {
                return Ok(0);
            }
            b.pipe.write(t, &buf[..got], false)?
        }
        (FileKind::Pipe(a), _) => {
            let mut buf = vec![0u8; len];
            let got = a.pipe.read(t, &mut buf, nonblock || fin.nonblocking())?;
            if got == 0 {
                return Ok(0);
            }
            write_file(t, &fout, &buf[..got], at_out)?
        }
        _ => return Err(Errno::EINVAL),
    };
    if let Some(o) = at_in {
        t.write_obj(off_in, &((o + n as u64) as i64))?;
    }
    if let Some(o) = at_out {
        t.write_obj(off_out, &((o + n as u64) as i64))?;
    }
    Ok(n as u64)
}

pub fn sys_tee(t: &mut Task, fd_in: i32, fd_out: i32, len: usize, flags: u32) -> SysResult {
    if flags & !SPLICE_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let (fin, fout) = (t.fds.get(fd_in)?, t.fds.get(fd_out)?);
    if !fin.readable() || !fout.writable() {
        return Err(Errno::EBADF);
    }
    let (FileKind::Pipe(a), FileKind::Pipe(b)) = (&fin.kind, &fout.kind) else { return Err(Errno::EINVAL) };
    if Arc::ptr_eq(&a.pipe, &b.pipe) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    Ok(a.pipe.transfer(t, &b.pipe, len.min(MAX_COPY), true, flags & SPLICE_F_NONBLOCK != 0)? as u64)
}
