//! Host calls that nix has no safe form for: on the container's stdio fds,
//! and signals to one stub thread.
#![allow(unsafe_code)] // ioctl passthrough with a sentry-owned buffer

use std::os::fd::RawFd;

use syscalls::Errno;

/// Runs `ioctl(fd, req, buf)` on a host fd; `buf` must be at least as large
/// as the request's argument (the caller sizes it per request).
pub fn ioctl_with_buf(fd: RawFd, req: u32, buf: &mut [u8]) -> Result<i32, Errno> {
    // SAFETY: the requests passed here (terminal and FIONREAD queries) read
    // or write at most `buf.len()` bytes, which the caller sized for them.
    let r = unsafe { libc::ioctl(fd, libc::c_ulong::from(req), buf.as_mut_ptr()) };
    if r < 0 {
        return Err(Errno::from_raw(nix::Error::last() as i32));
    }
    Ok(r)
}

/// `getrandom` into a sentry buffer.
pub fn getrandom(buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
    // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`.
    let r = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), flags) };
    if r < 0 {
        return Err(Errno::from_raw(nix::Error::last() as i32));
    }
    Ok(r as usize)
}

/// `sysinfo` of the host.
pub fn sysinfo() -> libc::sysinfo {
    // SAFETY: zeroed is a valid sysinfo; the call fills it.
    let mut s: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: `s` is a valid, writable sysinfo struct.
    unsafe { libc::sysinfo(&mut s) };
    s
}

/// Sends `sig` to host thread `tid` of process `pid` (a stub thread).
pub fn tgkill(pid: i32, tid: i32, sig: i32) {
    // SAFETY: tgkill takes plain integers; a stale id at worst finds no
    // thread (ESRCH).
    unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) };
}

/// Ends this process as if `sig` had killed it (how the sandbox's host
/// process reports a container killed by a signal to whoever waits for
/// it): the signal's default action, without a core dump; exits with
/// 128 + `sig` if the signal does not end the process.
pub fn exit_by_signal(sig: i32) -> ! {
    let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: setrlimit reads a valid rlimit struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    // SAFETY: restoring the default action is always sound; no handler of
    // ours is replaced while it runs (the process is ending).
    unsafe { libc::signal(sig, libc::SIG_DFL) };
    let mut set = nix::sys::signal::SigSet::empty();
    if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
        set.add(s);
        let _ = set.thread_unblock();
        let _ = nix::sys::signal::raise(s);
    }
    std::process::exit(128 + sig)
}
