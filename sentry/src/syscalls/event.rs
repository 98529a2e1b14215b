//! Event files: eventfd, epoll, timerfd and signalfd.
use std::sync::Arc;
use std::time::{Duration, Instant};

use syscalls::flags::access::R_OK;
use syscalls::flags::{clock as C, epoll as E, eventfd as EFD, inotify as IN, signalfd as SFD, timerfd as TFD};
use syscalls::flags::{OpenFlags, AT_FDCWD};
use syscalls::structs::{EpollEvent, Itimerspec, Timespec};
use syscalls::Errno;

use super::SysResult;
use crate::signal::UNBLOCKABLE;
use crate::task::Task;
use crate::vfs::epoll::Epoll;
use crate::vfs::eventfd::EventFd;
use crate::vfs::inotify::Inotify;
use crate::vfs::open::may_access;
use crate::vfs::signalfd::SignalFd;
use crate::vfs::timerfd::{duration_of, TimerFd};
use crate::vfs::{AnonFile, File, FileKind};

/// Installs a new anonymous file; `nonblock` and `cloexec` from the
/// creating call's flags.
pub(super) fn install(t: &Task, file: impl AnonFile, nonblock: bool, cloexec: bool) -> SysResult {
    let mut flags = OpenFlags::O_RDWR.bits();
    if nonblock {
        flags |= OpenFlags::O_NONBLOCK.bits();
    }
    let f = File::new(FileKind::Anon(Box::new(file)), flags, None);
    Ok(t.fds.insert(f, cloexec, 0, t.nofile())? as u64)
}

pub fn sys_eventfd2(t: &mut Task, init: u32, flags: u32) -> SysResult {
    if flags & !(EFD::EFD_CLOEXEC | EFD::EFD_NONBLOCK | EFD::EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let efd = EventFd::new(u64::from(init), flags & EFD::EFD_SEMAPHORE != 0, t.kernel.events.clone());
    install(t, efd, flags & EFD::EFD_NONBLOCK != 0, flags & EFD::EFD_CLOEXEC != 0)
}

pub fn sys_epoll_create1(t: &mut Task, flags: u32) -> SysResult {
    if flags & !E::EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    install(t, Epoll::default(), false, flags & E::EPOLL_CLOEXEC != 0)
}

pub fn sys_epoll_create(t: &mut Task, size: i32) -> SysResult {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    sys_epoll_create1(t, 0)
}

pub fn sys_epoll_ctl(t: &mut Task, epfd: i32, op: i32, fd: i32, event: u64) -> SysResult {
    let ep_file = t.fds.get(epfd)?;
    let target = t.fds.get(fd)?;
    let ep = ep_file.anon::<Epoll>().ok_or(Errno::EINVAL)?;
    if Arc::ptr_eq(&ep_file, &target) {
        return Err(Errno::EINVAL);
    }
    // Files that are always ready cannot be waited for.
    let always_ready = match &target.kind {
        FileKind::Regular(_) | FileKind::Dir(_) => true,
        FileKind::Host(fd) => crate::vfs::file::host_fstat(std::os::fd::AsRawFd::as_raw_fd(fd))
            .is_ok_and(|s| matches!(s.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFDIR)),
        FileKind::Path => return Err(Errno::EBADF),
        _ => false,
    };
    if always_ready {
        return Err(Errno::EPERM);
    }
    let ev = if op == E::EPOLL_CTL_DEL { None } else { Some(t.read_obj::<EpollEvent>(event)?) };
    if let Some(ev) = ev {
        if ev.events & E::EPOLLEXCLUSIVE != 0 && target.anon::<Epoll>().is_some() {
            return Err(Errno::EINVAL);
        }
    }
    ep.ctl(op, fd, &target, ev)?;
    Ok(0)
}

/// epoll_wait and its variants: waits up to `timeout` (None: forever) with
/// `mask` as the signal mask meanwhile. Never restarted after a handler
/// (EINTR), restarted after a stop.
fn epoll_wait_common(
    t: &mut Task,
    epfd: i32,
    events: u64,
    max: i32,
    timeout: Option<Duration>,
    mask: Option<u64>,
) -> SysResult {
    if max <= 0 || max > E::EP_MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.get(epfd)?;
    let ep = f.anon::<Epoll>().ok_or(Errno::EINVAL)?;
    let size = std::mem::size_of::<EpollEvent>();
    t.mm.check_writable(events, max as usize * size)?;
    let deadline = timeout.map(|d| crate::timer::instant_after(Instant::now(), d));
    let ready = t.with_wait_mask(mask, |t| loop {
        let seen = t.kernel.events.generation();
        let ready = ep.collect(t, max as usize, true);
        if !ready.is_empty() || timeout == Some(Duration::ZERO) {
            return Ok(ready);
        }
        if t.has_deliverable_signal() {
            return Err(super::ERESTARTNOHAND);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ready);
        }
        // Host fds (stdio) cannot wake the event queue: look again soon.
        let slice = ep.has_host_files().then(|| Instant::now() + Duration::from_millis(10));
        let wake = match (deadline, slice) {
            (Some(d), Some(s)) => Some(d.min(s)),
            (d, s) => d.or(s),
        };
        t.kernel.events.wait(seen, wake);
    })?;
    for (i, ev) in ready.iter().enumerate() {
        t.write_obj(events + (i * size) as u64, ev)?;
    }
    Ok(ready.len() as u64)
}

fn ms_timeout(ms: i32) -> Option<Duration> {
    (ms >= 0).then(|| Duration::from_millis(ms as u64))
}

pub fn sys_epoll_wait(t: &mut Task, epfd: i32, events: u64, max: i32, ms: i32) -> SysResult {
    epoll_wait_common(t, epfd, events, max, ms_timeout(ms), None)
}

/// The signal mask argument of the p-variants (null: unchanged).
fn read_sigmask(t: &Task, addr: u64, size: u64) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(t.read_obj(addr)?))
}

pub fn sys_epoll_pwait(t: &mut Task, epfd: i32, events: u64, max: i32, ms: i32, sig: u64, size: u64) -> SysResult {
    let mask = read_sigmask(t, sig, size)?;
    epoll_wait_common(t, epfd, events, max, ms_timeout(ms), mask)
}

pub fn sys_epoll_pwait2(t: &mut Task, epfd: i32, events: u64, max: i32, ts: u64, sig: u64, size: u64) -> SysResult {
    let timeout = if ts == 0 { None } else { Some(duration_of(&t.read_obj::<Timespec>(ts)?)?) };
    let mask = read_sigmask(t, sig, size)?;
    epoll_wait_common(t, epfd, events, max, timeout, mask)
}

pub fn sys_timerfd_create(t: &mut Task, clock: i32, flags: i32) -> SysResult {
    if flags & !(TFD::TFD_CLOEXEC | TFD::TFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let host = match clock {
        C::CLOCK_REALTIME | C::CLOCK_MONOTONIC | C::CLOCK_BOOTTIME => clock,
        C::CLOCK_REALTIME_ALARM => C::CLOCK_REALTIME,
        C::CLOCK_BOOTTIME_ALARM => C::CLOCK_BOOTTIME,
        _ => return Err(Errno::EINVAL),
    };
    let tfd = TimerFd::new(host, t.kernel.events.clone(), t.kernel.wakeups.clone());
    install(t, tfd, flags & TFD::TFD_NONBLOCK != 0, flags & TFD::TFD_CLOEXEC != 0)
}

pub fn sys_timerfd_settime(t: &mut Task, fd: i32, flags: i32, new: u64, old: u64) -> SysResult {
    if flags & !(TFD::TFD_TIMER_ABSTIME | TFD::TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.get(fd)?;
    let tfd = f.anon::<TimerFd>().ok_or(Errno::EINVAL)?;
    let value: Itimerspec = t.read_obj(new)?;
    let before = tfd.set(&value, flags & TFD::TFD_TIMER_ABSTIME != 0)?;
    if old != 0 {
        t.write_obj(old, &before)?;
    }
    Ok(0)
}

pub fn sys_timerfd_gettime(t: &mut Task, fd: i32, cur: u64) -> SysResult {
    let f = t.fds.get(fd)?;
    let tfd = f.anon::<TimerFd>().ok_or(Errno::EINVAL)?;
    t.write_obj(cur, &tfd.get())?;
    Ok(0)
}

pub fn sys_signalfd4(t: &mut Task, fd: i32, mask: u64, size: u64, flags: i32) -> SysResult {
    if size != 8 || flags & !(SFD::SFD_CLOEXEC | SFD::SFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let mask = t.read_obj::<u64>(mask)? & !UNBLOCKABLE;
    if fd == -1 {
        return install(t, SignalFd::new(mask), flags & SFD::SFD_NONBLOCK != 0, flags & SFD::SFD_CLOEXEC != 0);
    }
    let f = t.fds.get(fd)?;
    f.anon::<SignalFd>().ok_or(Errno::EINVAL)?.set_mask(mask);
    Ok(fd as u64)
}

pub fn sys_inotify_init1(t: &mut Task, flags: u32) -> SysResult {
    if flags & !(IN::IN_NONBLOCK | IN::IN_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let inotify = Inotify::new(t.kernel.events.clone())?;
    install(t, inotify, flags & IN::IN_NONBLOCK != 0, flags & IN::IN_CLOEXEC != 0)
}

/// The inotify instance behind `fd` (EINVAL for any other file).
fn inotify_of(f: &File) -> Result<&Inotify, Errno> {
    match &f.kind {
        FileKind::Anon(a) => a.as_any().downcast_ref::<Inotify>().ok_or(Errno::EINVAL),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_inotify_add_watch(t: &mut Task, fd: i32, path: u64, mask: u32) -> SysResult {
    const ALL_BITS: u32 = IN::IN_VALID_MASK | IN::IN_UNMOUNT | IN::IN_Q_OVERFLOW | IN::IN_IGNORED;
    if mask & IN::IN_MASK_ADD != 0 && mask & IN::IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    if mask & ALL_BITS == 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.get(fd)?;
    let inotify = inotify_of(&f)?;
    let p = t.read_path(path)?;
    let d = t.lookup(AT_FDCWD, &p, mask & IN::IN_DONT_FOLLOW == 0)?;
    if mask & IN::IN_ONLYDIR != 0 && !d.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if !may_access(&t.creds, &d.attr(), R_OK, false) {
        return Err(Errno::EACCES);
    }
    Ok(inotify.add_watch(&d, mask)? as u64)
}

pub fn sys_inotify_rm_watch(t: &mut Task, fd: i32, wd: i32) -> SysResult {
    let f = t.fds.get(fd)?;
    inotify_of(&f)?.rm_watch(wd)?;
    Ok(0)
}

/// FIONREAD on an inotify instance: the bytes a read would return.
pub fn inotify_queued(f: &File) -> Option<usize> {
    inotify_of(f).ok().map(Inotify::queued_bytes)
}
