//! Raw fd ownership and process memory: the only `unsafe` of the crate.
//!
//! Five things need it: taking ownership of the fds the kernel installs
//! when an `SCM_RIGHTS` message arrives (walking the control buffer of a raw
//! `recvmsg`), wrapping the descriptor `openat(2)` returns (nix 0.29 gives a
//! bare `RawFd`), `close_range(2)`, the pages of a [`MessageBuffer`], and
//! `malloc_trim` ([`release_free_heap`]).
use std::ffi::CStr;
use std::mem;
use std::num::NonZeroUsize;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::{self, NonNull};

use libc::{c_int, c_uint};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// Most fds one received message may carry: Linux's SCM_MAX_FD (the gofer
/// protocol allows fewer, see `channel::MAX_FDS`; a pod's container joining
/// its sandbox over the control socket brings its stdio and one gofer
/// socket per bind mount).
const RECV_MAX_FDS: usize = 253;

/// The control buffer, in `u64` words so that it is aligned for `cmsghdr`,
/// with room for one `SCM_RIGHTS` header and `RECV_MAX_FDS` descriptors.
const CMSG_WORDS: usize = (mem::size_of::<libc::cmsghdr>() + RECV_MAX_FDS * mem::size_of::<c_int>()).div_ceil(8) + 1;

/// `openat(dir, name, flags | O_CLOEXEC)`, the result owned. Never creates
/// a file: `O_CREAT` and `O_TMPFILE` are stripped.
pub(crate) fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: OFlag) -> nix::Result<OwnedFd> {
    // O_TMPFILE contains O_DIRECTORY: strip only its own bit.
    let tmpfile = OFlag::from_bits_retain(libc::O_TMPFILE & !libc::O_DIRECTORY);
    let flags = (flags | OFlag::O_CLOEXEC) - OFlag::O_CREAT - tmpfile;
    let raw = nix::fcntl::openat(Some(dir.as_raw_fd()), name, flags, Mode::empty())?;
    // SAFETY: `openat` succeeded, so `raw` is a new descriptor of this process
    // that nothing else owns yet; the `OwnedFd` becomes its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A zeroed receive buffer in an anonymous mapping of its own, so that only
/// the pages a message is written into take memory: a buffer sized for the
/// largest message (256 KiB) costs a page or two, where malloc may hand out
/// reused heap memory that it must clear (touching every page) first.
pub struct MessageBuffer {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer owns its mapping; the bytes are reached only through
// `&self`/`&mut self`, so the borrow rules order every access.
unsafe impl Send for MessageBuffer {}
// SAFETY: as above: shared references only read.
unsafe impl Sync for MessageBuffer {}

impl MessageBuffer {
    /// A buffer of `len` (> 0) zero bytes.
    pub fn new(len: usize) -> nix::Result<MessageBuffer> {
        let size = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        let prot = nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE;
        // SAFETY: a new private anonymous mapping where the kernel chooses:
        // it replaces nothing of the process's, and only this value uses it.
        let base = unsafe { nix::sys::mman::mmap_anonymous(None, size, prot, nix::sys::mman::MapFlags::MAP_PRIVATE) }?;
        Ok(MessageBuffer { base: base.cast(), len })
    }
}

impl std::fmt::Debug for MessageBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageBuffer").field("len", &self.len).finish()
    }
}

impl Deref for MessageBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `base` is a readable mapping of `len` bytes that lives as
        // long as `self` (unmapped only in `drop`); anonymous pages are
        // initialized (zero) from the start.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }
}

impl DerefMut for MessageBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and the mapping is writable; `&mut self`
        // makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr(), self.len) }
    }
}

impl Drop for MessageBuffer {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`; no reference to it
        // outlives `self`.
        if let Err(e) = unsafe { nix::sys::mman::munmap(self.base.cast(), self.len) } {
            tracing::warn!(target: "gofer::rpc", error = %e, "unmapping a message buffer");
        }
    }
}

/// Gives the heap's free pages back to the host (glibc's `malloc_trim`):
/// called once a process has set itself up, so the memory its start-up
/// freed (parsed configuration, builders, buffers) is not kept resident for
/// the rest of its life.
pub fn release_free_heap() {
    // SAFETY: malloc_trim only walks and trims malloc's own arenas, under
    // their locks; it is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) };
}

/// One message read by [`recv_with_fds`].
pub struct Received {
    /// Bytes of data written at the start of the buffer.
    pub bytes: usize,
    /// The fds that came with the message, all `O_CLOEXEC`.
    pub fds: Vec<OwnedFd>,
    /// `msg_flags` of the reply (`MSG_TRUNC`, `MSG_CTRUNC`).
    pub flags: c_int,
}

/// `recvmsg(sock, buf, MSG_CMSG_CLOEXEC)`, retrying `EINTR`, taking
/// ownership of every fd that arrived, even when the control data was
/// truncated (the caller checks `flags` and drops them).
pub fn recv_with_fds(sock: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<Received> {
    let mut control = [0u64; CMSG_WORDS];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: `msghdr` is a plain C struct of integers and pointers, for which
    // all-zero bytes (null pointers, zero lengths) are a valid value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control);
    let bytes = loop {
        // SAFETY: `msg` points at `iov`, which covers exactly `buf`, and at
        // `control` with its true size; all three live and are exclusively
        // borrowed across the call, so the kernel writes only inside them.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        match Errno::result(n) {
            Ok(n) => break usize::try_from(n).unwrap_or(0),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    };
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled by a successful `recvmsg`; CMSG_FIRSTHDR only
    // reads `msg_control`/`msg_controllen`, which point into `control`.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return either null or a pointer to
        // a complete header inside `control` (they check `msg_controllen`);
        // `control` is u64-aligned and alive.
        let hdr = unsafe { ptr::read_unaligned(cmsg) };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: `cmsg` is a valid header inside `control` (see above);
            // CMSG_DATA is pointer arithmetic on it.
            let data = unsafe { libc::CMSG_DATA(cmsg) };
            let header = (data as usize).saturating_sub(cmsg as usize);
            let count = hdr.cmsg_len.saturating_sub(header) / mem::size_of::<c_int>();
            for i in 0..count {
                let at = data.cast::<c_int>().wrapping_add(i);
                // SAFETY: the kernel wrote `cmsg_len` bytes for this header,
                // within `control`, so `count` ints follow `data`.
                let raw = unsafe { ptr::read_unaligned(at) };
                // SAFETY: each int of an SCM_RIGHTS payload is a descriptor the
                // kernel just installed in our table for this message; nothing
                // else knows it, so the `OwnedFd` is its only owner.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
        // SAFETY: `msg` and `cmsg` are valid as above; CMSG_NXTHDR returns the
        // next complete header inside `msg_controllen`, or null.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok(Received { bytes, fds, flags: msg.msg_flags })
}

/// `close_range(first, last, 0)`.
///
/// The caller guarantees that no live Rust object owns a descriptor in the
/// range (see [`crate::sandbox::close_other_fds`]).
pub(crate) fn close_range(first: c_uint, last: c_uint) -> nix::Result<()> {
    // SAFETY: close_range takes plain integers and touches no memory of ours;
    // closing the range is sound because the caller guarantees nothing in the
    // process owns those descriptors any more.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0 as c_uint) };
    Errno::result(r).map(drop)
}

/// Takes ownership of fd `n`, inherited from the parent process by number
/// (how `cordon` hands sockets and config to the gofer and sentry it
/// re-executes). Fails with EBADF unless `n` is open, and marks it
/// close-on-exec.
pub fn take_inherited(n: std::os::fd::RawFd) -> nix::Result<OwnedFd> {
    if n < 3 {
        return Err(nix::Error::EBADF);
    }
    nix::fcntl::fcntl(n, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
    // SAFETY: `n` is open (F_SETFD succeeded), above stdio, and by the
    // calling convention nothing else in this process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// `openat(dir, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
/// mode)`: creates a new file, never following or reusing what is there.
pub(crate) fn create_at(dir: BorrowedFd<'_>, name: &CStr, flags: OFlag, mode: u32) -> nix::Result<OwnedFd> {
    let flags = flags | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let raw = nix::fcntl::openat(Some(dir.as_raw_fd()), name, flags, Mode::from_bits_truncate(mode))?;
    // SAFETY: `openat` succeeded, so `raw` is a new descriptor of this process
    // that nothing else owns yet; the `OwnedFd` becomes its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH)`: changes the mode of the file an
/// `O_PATH` fd refers to (a symlink's mode cannot change: `EOPNOTSUPP`).
/// Fails with `ENOSYS` before Linux 6.6.
pub(crate) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> nix::Result<()> {
    const SYS_FCHMODAT2: libc::c_long = 452;
    // SAFETY: the path is a NUL-terminated static string and the other
    // arguments are integers; the kernel only reads the path.
    let r = unsafe { libc::syscall(SYS_FCHMODAT2, fd.as_raw_fd(), c"".as_ptr(), mode, libc::AT_EMPTY_PATH) };
    Errno::result(r).map(drop)
}

/// `utimensat(fd, "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`: sets the
/// access and modification times of the file an `O_PATH` fd refers to
/// (`UTIME_OMIT` leaves one alone).
pub(crate) fn utimens_fd(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> nix::Result<()> {
    // SAFETY: `times` points at two initialized timespecs that outlive the
    // call, and the path is a static NUL-terminated string; the kernel only
    // reads both.
    let r = unsafe {
        libc::utimensat(fd.as_raw_fd(), c"".as_ptr(), times.as_ptr(), libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
    };
    Errno::result(r).map(drop)
}

/// Runs a size-probing call (`fgetxattr`, `flistxattr`) into a buffer,
/// growing it to XATTR_SIZE_MAX on ERANGE; returns the bytes it wrote.
fn read_growing(start: usize, call: impl Fn(&mut [u8]) -> isize) -> nix::Result<Vec<u8>> {
    let mut buf = vec![0u8; start];
    loop {
        match Errno::result(call(&mut buf)) {
            Ok(n) => {
                buf.truncate(usize::try_from(n).unwrap_or(0));
                return Ok(buf);
            }
            Err(Errno::ERANGE) if buf.len() < 64 * 1024 => buf.resize(64 * 1024, 0),
            Err(e) => return Err(e),
        }
    }
}

/// `fgetxattr(fd, name)`: the whole value.
pub(crate) fn get_xattr(fd: BorrowedFd<'_>, name: &CStr) -> nix::Result<Vec<u8>> {
    read_growing(256, |buf| {
        // SAFETY: `buf` is a live, exclusively borrowed buffer of
        // `buf.len()` bytes and `name` is NUL-terminated; the kernel writes
        // at most `buf.len()` bytes into `buf`.
        unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
    })
}

/// `fsetxattr(fd, name, value, flags)`.
pub(crate) fn set_xattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8], flags: c_int) -> nix::Result<()> {
    // SAFETY: `value` is a live buffer of `value.len()` bytes and `name` is
    // NUL-terminated; the kernel only reads them.
    let r = unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), flags) };
    Errno::result(r).map(drop)
}

/// `flistxattr(fd)`: every name, each NUL-terminated.
pub(crate) fn list_xattr(fd: BorrowedFd<'_>) -> nix::Result<Vec<u8>> {
    read_growing(1024, |buf| {
        // SAFETY: `buf` is a live, exclusively borrowed buffer of
        // `buf.len()` bytes; the kernel writes at most that many.
        unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }
    })
}

/// `fremovexattr(fd, name)`.
pub(crate) fn remove_xattr(fd: BorrowedFd<'_>, name: &CStr) -> nix::Result<()> {
    // SAFETY: `name` is NUL-terminated; the kernel only reads it.
    let r = unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) };
    Errno::result(r).map(drop)
}

/// `openat(dir, ".", flags | O_CLOEXEC, mode)` where `flags` carry
/// `O_TMPFILE`: an unnamed file in `dir`.
pub(crate) fn open_unnamed(dir: BorrowedFd<'_>, flags: OFlag, mode: u32) -> nix::Result<OwnedFd> {
    let raw =
        nix::fcntl::openat(Some(dir.as_raw_fd()), c".", flags | OFlag::O_CLOEXEC, Mode::from_bits_truncate(mode))?;
    // SAFETY: `openat` succeeded, so `raw` is a new descriptor of this process
    // that nothing else owns yet; the `OwnedFd` becomes its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `statx(fd, "", AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW)` of the basic fields and
/// the birth time (nix 0.29 has no statx).
pub fn statx(fd: &OwnedFd) -> Result<libc::statx, i32> {
    // SAFETY: an all-zero statx is a valid value of the plain-data struct.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    let flags = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
    let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
    // SAFETY: the path is a NUL-terminated literal and `sx` is a valid,
    // writable statx the kernel fills; `fd` is open for the call's length.
    if unsafe { libc::statx(fd.as_raw_fd(), c"".as_ptr(), flags, mask, &mut sx) } != 0 {
        return Err(nix::errno::Errno::last_raw());
    }
    Ok(sx)
}
