//! The table itself: which calls the sentry serves, how, and how well.
use syscalls::flags::{AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use syscalls::Sysno;

use super::{creds, event, file, fs, mm, mount, mqueue, namespace as ns, process, signal, time, xattr, Handler};

/// How completely a call is implemented (for `cordon syscalls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Everything the man page describes.
    Full,
    /// The common uses; the rest fail with an errno.
    Partial,
}

/// How strace shows an argument.
#[derive(Clone, Copy, Debug)]
pub enum A {
    Int,
    Hex,
    Str,
}

/// One served call.
pub struct Entry {
    pub sysno: Sysno,
    pub handler: Handler,
    pub support: Support,
    pub fmt: &'static [A],
    /// What is missing, for partial support.
    pub note: &'static str,
    /// May sleep: strace also logs its entry.
    pub blocking: bool,
}

use Support::{Full, Partial};
use A::{Hex as H, Int as I, Str as S};

macro_rules! e {
    ($s:ident, $sup:expr, $fmt:expr, $note:expr, $h:expr) => {
        Entry {
            sysno: Sysno::$s,
            handler: $h,
            support: $sup,
            fmt: $fmt,
            note: $note,
            blocking: matches!(
                Sysno::$s,
                Sysno::read
                    | Sysno::readv
                    | Sysno::write
                    | Sysno::writev
                    | Sysno::wait4
                    | Sysno::waitid
                    | Sysno::poll
                    | Sysno::futex
                    | Sysno::nanosleep
                    | Sysno::clock_nanosleep
                    | Sysno::rt_sigsuspend
                    | Sysno::pause
                    | Sysno::vfork
                    | Sysno::clone
                    | Sysno::clone3
                    | Sysno::epoll_wait
                    | Sysno::epoll_pwait
                    | Sysno::epoll_pwait2
                    | Sysno::rt_sigtimedwait
                    | Sysno::splice
                    | Sysno::sendfile
                    | Sysno::copy_file_range
                    | Sysno::tee
                    | Sysno::flock
                    | Sysno::fcntl
                    | Sysno::mq_timedsend
                    | Sysno::mq_timedreceive
            ),
        }
    };
}

static ENTRIES: &[Entry] = &[
    e!(read, Full, &[I, H, I], "", |t, a| file::sys_read(t, a.i32(0), a.u64(1), a.usize(2))),
    e!(write, Full, &[I, H, I], "", |t, a| file::sys_write(t, a.i32(0), a.u64(1), a.usize(2))),
    e!(readv, Full, &[I, H, I], "", |t, a| file::sys_readv(t, a.i32(0), a.u64(1), a.i32(2))),
    e!(writev, Full, &[I, H, I], "", |t, a| file::sys_writev(t, a.i32(0), a.u64(1), a.i32(2))),
    e!(pread64, Full, &[I, H, I, I], "", |t, a| file::sys_pread64(t, a.i32(0), a.u64(1), a.usize(2), a.i64(3))),
    e!(pwrite64, Full, &[I, H, I, I], "", |t, a| file::sys_pwrite64(t, a.i32(0), a.u64(1), a.usize(2), a.i64(3))),
    e!(preadv, Full, &[I, H, I, I], "", |t, a| file::sys_preadv(t, a.i32(0), a.u64(1), a.i32(2), a.i64(3))),
    e!(pwritev, Full, &[I, H, I, I], "", |t, a| file::sys_pwritev(t, a.i32(0), a.u64(1), a.i32(2), a.i64(3))),
    e!(lseek, Full, &[I, I, I], "", |t, a| file::sys_lseek(t, a.i32(0), a.i64(1), a.u32(2))),
    e!(open, Full, &[S, H, H], "", |t, a| file::sys_open(t, a.u64(0), a.u32(1), a.u32(2))),
    e!(openat, Full, &[I, S, H, H], "", |t, a| { file::sys_openat(t, a.i32(0), a.u64(1), a.u32(2), a.u32(3)) }),
    e!(openat2, Full, &[I, S, H, I], "", |t, a| file::sys_openat2(t, a.i32(0), a.u64(1), a.u64(2), a.usize(3))),
    e!(creat, Full, &[S, H], "", |t, a| file::sys_creat(t, a.u64(0), a.u32(1))),
    e!(close, Full, &[I], "", |t, a| file::sys_close(t, a.i32(0))),
    e!(dup, Full, &[I], "", |t, a| file::sys_dup(t, a.i32(0))),
    e!(dup2, Full, &[I, I], "", |t, a| file::sys_dup2(t, a.i32(0), a.i32(1))),
    e!(dup3, Full, &[I, I, H], "", |t, a| file::sys_dup3(t, a.i32(0), a.i32(1), a.u32(2))),
    e!(fcntl, Partial, &[I, I, H], "no lease or signal-ownership commands", |t, a| {
        file::sys_fcntl(t, a.i32(0), a.u32(1), a.u64(2))
    }),
    e!(ioctl, Partial, &[I, H, H], "terminal queries, FIONREAD, FIONBIO, FIOCLEX", |t, a| {
        file::sys_ioctl(t, a.i32(0), a.u32(1), a.u64(2))
    }),
    e!(poll, Full, &[H, I, I], "", |t, a| file::sys_poll(t, a.u64(0), a.u32(1), a.i32(2))),
    e!(ppoll, Full, &[H, I, H, H, I], "", |t, a| {
        file::sys_ppoll(t, a.u64(0), a.u32(1), a.u64(2), a.u64(3), a.u64(4))
    }),
    e!(select, Full, &[I, H, H, H, H], "", |t, a| {
        file::sys_select(t, a.i32(0), a.u64(1), a.u64(2), a.u64(3), a.u64(4))
    }),
    e!(pselect6, Full, &[I, H, H, H, H, H], "", |t, a| {
        file::sys_pselect6(t, a.i32(0), a.u64(1), a.u64(2), a.u64(3), a.u64(4), a.u64(5))
    }),
    e!(close_range, Full, &[I, I, H], "", |t, a| file::sys_close_range(t, a.u32(0), a.u32(1), a.u32(2))),
    e!(pipe, Full, &[H], "", |t, a| file::sys_pipe(t, a.u64(0))),
    e!(pipe2, Full, &[H, H], "", |t, a| file::sys_pipe2(t, a.u64(0), a.u32(1))),
    e!(splice, Partial, &[I, H, I, H, I, H], "copies through the sentry (no page moving)", |t, a| {
        file::sys_splice(t, a.i32(0), a.u64(1), a.i32(2), a.u64(3), a.usize(4), a.u32(5))
    }),
    e!(sendfile, Full, &[I, I, H, I], "", |t, a| file::sys_sendfile(t, a.i32(0), a.i32(1), a.u64(2), a.usize(3))),
    e!(copy_file_range, Full, &[I, H, I, H, I, H], "", |t, a| {
        file::sys_copy_file_range(t, a.i32(0), a.u64(1), a.i32(2), a.u64(3), a.usize(4), a.u32(5))
    }),
    e!(fadvise64, Full, &[I, I, I, I], "", |t, a| file::sys_fadvise64(t, a.i32(0), a.i64(1), a.i64(2), a.i32(3))),
    e!(tee, Full, &[I, I, I, H], "", |t, a| file::sys_tee(t, a.i32(0), a.i32(1), a.usize(2), a.u32(3))),
    e!(mknod, Full, &[S, H, H], "", |t, a| ns::sys_mknodat(t, AT_FDCWD, a.u64(0), a.u32(1), a.u64(2))),
    e!(mknodat, Full, &[I, S, H, H], "", |t, a| ns::sys_mknodat(t, a.i32(0), a.u64(1), a.u32(2), a.u64(3))),
    e!(mkdir, Full, &[S, H], "", |t, a| ns::sys_mkdirat(t, AT_FDCWD, a.u64(0), a.u32(1))),
    e!(mkdirat, Full, &[I, S, H], "", |t, a| { ns::sys_mkdirat(t, a.i32(0), a.u64(1), a.u32(2)) }),
    e!(unlink, Full, &[S], "", |t, a| ns::sys_unlinkat(t, AT_FDCWD, a.u64(0), 0)),
    e!(rmdir, Full, &[S], "", |t, a| { ns::sys_unlinkat(t, AT_FDCWD, a.u64(0), syscalls::flags::AT_REMOVEDIR) }),
    e!(unlinkat, Full, &[I, S, H], "", |t, a| { ns::sys_unlinkat(t, a.i32(0), a.u64(1), a.u32(2)) }),
    e!(rename, Partial, &[S, S], "the overlay\'s lower directories do not move (EXDEV)", |t, a| ns::sys_renameat2(
        t,
        AT_FDCWD,
        a.u64(0),
        AT_FDCWD,
        a.u64(1),
        0
    )),
    e!(renameat, Partial, &[I, S, I, S], "the overlay\'s lower directories do not move (EXDEV)", |t, a| {
        ns::sys_renameat2(t, a.i32(0), a.u64(1), a.i32(2), a.u64(3), 0)
    }),
    e!(
        renameat2,
        Partial,
        &[I, S, I, S, H],
        "no RENAME_WHITEOUT; the overlay\'s lower directories do not move (EXDEV)",
        |t, a| { ns::sys_renameat2(t, a.i32(0), a.u64(1), a.i32(2), a.u64(3), a.u32(4)) }
    ),
    e!(symlink, Full, &[S, S], "", |t, a| ns::sys_symlinkat(t, a.u64(0), AT_FDCWD, a.u64(1))),
    e!(symlinkat, Full, &[S, I, S], "", |t, a| ns::sys_symlinkat(t, a.u64(0), a.i32(1), a.u64(2))),
    e!(link, Full, &[S, S], "", |t, a| ns::sys_linkat(t, AT_FDCWD, a.u64(0), AT_FDCWD, a.u64(1), 0)),
    e!(linkat, Full, &[I, S, I, S, H], "", |t, a| {
        ns::sys_linkat(t, a.i32(0), a.u64(1), a.i32(2), a.u64(3), a.u32(4))
    }),
    e!(truncate, Full, &[S, I], "", |t, a| ns::sys_truncate(t, a.u64(0), a.i64(1))),
    e!(ftruncate, Full, &[I, I], "", |t, a| ns::sys_ftruncate(t, a.i32(0), a.i64(1))),
    e!(fallocate, Partial, &[I, H, I, I], "tmpfs: mode 0 only", |t, a| {
        ns::sys_fallocate(t, a.i32(0), a.i32(1), a.i64(2), a.i64(3))
    }),
    e!(flock, Full, &[I, H], "", |t, a| file::sys_flock(t, a.i32(0), a.i32(1))),
    e!(fsync, Full, &[I], "", |t, a| ns::sys_fsync(t, a.i32(0), false)),
    e!(fdatasync, Full, &[I], "", |t, a| ns::sys_fsync(t, a.i32(0), true)),
    e!(syncfs, Full, &[I], "", |t, a| ns::sys_syncfs(t, a.i32(0))),
    e!(sync, Full, &[], "", |_, _| Ok(0)),
    e!(chmod, Full, &[S, H], "", |t, a| ns::sys_fchmodat(t, AT_FDCWD, a.u64(0), a.u32(1))),
    e!(fchmod, Full, &[I, H], "", |t, a| ns::sys_fchmod(t, a.i32(0), a.u32(1))),
    e!(fchmodat, Full, &[I, S, H], "", |t, a| ns::sys_fchmodat(t, a.i32(0), a.u64(1), a.u32(2))),
    e!(chown, Full, &[S, I, I], "", |t, a| ns::sys_fchownat(t, AT_FDCWD, a.u64(0), a.u32(1), a.u32(2), 0)),
    e!(lchown, Full, &[S, I, I], "", |t, a| {
        ns::sys_fchownat(t, AT_FDCWD, a.u64(0), a.u32(1), a.u32(2), AT_SYMLINK_NOFOLLOW)
    }),
    e!(fchown, Full, &[I, I, I], "", |t, a| ns::sys_fchown(t, a.i32(0), a.u32(1), a.u32(2))),
    e!(fchownat, Full, &[I, S, I, I, H], "", |t, a| {
        ns::sys_fchownat(t, a.i32(0), a.u64(1), a.u32(2), a.u32(3), a.u32(4))
    }),
    e!(utimensat, Full, &[I, S, H, H], "", |t, a| { ns::sys_utimensat(t, a.i32(0), a.u64(1), a.u64(2), a.u32(3)) }),
    e!(eventfd, Full, &[I], "", |t, a| event::sys_eventfd2(t, a.i32(0) as u32, 0)),
    e!(eventfd2, Full, &[I, H], "", |t, a| event::sys_eventfd2(t, a.u32(0), a.u32(1))),
    e!(epoll_create, Full, &[I], "", |t, a| event::sys_epoll_create(t, a.i32(0))),
    e!(epoll_create1, Full, &[H], "", |t, a| event::sys_epoll_create1(t, a.u32(0))),
    e!(epoll_ctl, Partial, &[I, I, I, H], "EPOLLEXCLUSIVE accepted as plain; no loop detection", |t, a| {
        event::sys_epoll_ctl(t, a.i32(0), a.i32(1), a.i32(2), a.u64(3))
    }),
    e!(epoll_wait, Full, &[I, H, I, I], "", |t, a| event::sys_epoll_wait(t, a.i32(0), a.u64(1), a.i32(2), a.i32(3))),
    e!(epoll_pwait, Full, &[I, H, I, I, H, I], "", |t, a| {
        event::sys_epoll_pwait(t, a.i32(0), a.u64(1), a.i32(2), a.i32(3), a.u64(4), a.u64(5))
    }),
    e!(epoll_pwait2, Full, &[I, H, I, H, H, I], "", |t, a| {
        event::sys_epoll_pwait2(t, a.i32(0), a.u64(1), a.i32(2), a.u64(3), a.u64(4), a.u64(5))
    }),
    e!(mq_open, Full, &[S, H, H, H], "", |t, a| mqueue::sys_mq_open(t, a.u64(0), a.u32(1), a.u32(2), a.u64(3))),
    e!(mq_unlink, Full, &[S], "", |t, a| mqueue::sys_mq_unlink(t, a.u64(0))),
    e!(mq_timedsend, Full, &[I, H, I, I, H], "", |t, a| {
        mqueue::sys_mq_timedsend(t, a.i32(0), a.u64(1), a.u64(2), a.u32(3), a.u64(4))
    }),
    e!(mq_timedreceive, Full, &[I, H, I, H, H], "", |t, a| {
        mqueue::sys_mq_timedreceive(t, a.i32(0), a.u64(1), a.u64(2), a.u64(3), a.u64(4))
    }),
    e!(mq_notify, Partial, &[I, H], "SIGEV_THREAD needs netlink sockets (ENOTSOCK)", |t, a| {
        mqueue::sys_mq_notify(t, a.i32(0), a.u64(1))
    }),
    e!(mq_getsetattr, Full, &[I, H, H], "", |t, a| mqueue::sys_mq_getsetattr(t, a.i32(0), a.u64(1), a.u64(2))),
    e!(timer_create, Partial, &[I, H, H], "no CPU-time clocks", |t, a| {
        time::sys_timer_create(t, a.i32(0), a.u64(1), a.u64(2))
    }),
    e!(timer_settime, Full, &[I, H, H, H], "", |t, a| time::sys_timer_settime(
        t,
        a.i32(0),
        a.i32(1),
        a.u64(2),
        a.u64(3)
    )),
    e!(timer_gettime, Full, &[I, H], "", |t, a| time::sys_timer_gettime(t, a.i32(0), a.u64(1))),
    e!(timer_getoverrun, Full, &[I], "", |t, a| time::sys_timer_getoverrun(t, a.i32(0))),
    e!(timer_delete, Full, &[I], "", |t, a| time::sys_timer_delete(t, a.i32(0))),
    e!(timerfd_create, Partial, &[I, H], "TFD_TIMER_CANCEL_ON_SET never cancels", |t, a| {
        event::sys_timerfd_create(t, a.i32(0), a.i32(1))
    }),
    e!(timerfd_settime, Partial, &[I, H, H, H], "TFD_TIMER_CANCEL_ON_SET never cancels", |t, a| {
        event::sys_timerfd_settime(t, a.i32(0), a.i32(1), a.u64(2), a.u64(3))
    }),
    e!(timerfd_gettime, Full, &[I, H], "", |t, a| event::sys_timerfd_gettime(t, a.i32(0), a.u64(1))),
    e!(inotify_init, Partial, &[], "changes the host makes are not seen", |t, _| event::sys_inotify_init1(t, 0)),
    e!(inotify_init1, Partial, &[H], "changes the host makes are not seen", |t, a| {
        event::sys_inotify_init1(t, a.u32(0))
    }),
    e!(inotify_add_watch, Partial, &[I, S, H], "IN_EXCL_UNLINK is ignored", |t, a| {
        event::sys_inotify_add_watch(t, a.i32(0), a.u64(1), a.u32(2))
    }),
    e!(inotify_rm_watch, Full, &[I, I], "", |t, a| event::sys_inotify_rm_watch(t, a.i32(0), a.i32(1))),
    e!(signalfd, Full, &[I, H, I], "", |t, a| event::sys_signalfd4(t, a.i32(0), a.u64(1), a.u64(2), 0)),
    e!(signalfd4, Full, &[I, H, I, H], "", |t, a| event::sys_signalfd4(t, a.i32(0), a.u64(1), a.u64(2), a.i32(3))),
    e!(stat, Full, &[S, H], "", |t, a| fs::sys_stat(t, a.u64(0), a.u64(1))),
    e!(lstat, Full, &[S, H], "", |t, a| fs::sys_lstat(t, a.u64(0), a.u64(1))),
    e!(fstat, Full, &[I, H], "", |t, a| fs::sys_fstat(t, a.i32(0), a.u64(1))),
    e!(newfstatat, Full, &[I, S, H, H], "", |t, a| fs::sys_newfstatat(t, a.i32(0), a.u64(1), a.u64(2), a.u32(3))),
    e!(statx, Partial, &[I, S, H, H, H], "basic stats only", |t, a| {
        fs::sys_statx(t, a.i32(0), a.u64(1), a.u32(2), a.u32(3), a.u64(4))
    }),
    e!(statfs, Full, &[S, H], "", |t, a| fs::sys_statfs(t, a.u64(0), a.u64(1))),
    e!(fstatfs, Full, &[I, H], "", |t, a| fs::sys_fstatfs(t, a.i32(0), a.u64(1))),
    e!(getxattr, Full, &[S, S, H, I], "", |t, a| {
        xattr::sys_getxattr(t, xattr::On::Path(a.u64(0), true), a.u64(1), a.u64(2), a.usize(3))
    }),
    e!(lgetxattr, Full, &[S, S, H, I], "", |t, a| {
        xattr::sys_getxattr(t, xattr::On::Path(a.u64(0), false), a.u64(1), a.u64(2), a.usize(3))
    }),
    e!(fgetxattr, Full, &[I, S, H, I], "", |t, a| {
        xattr::sys_getxattr(t, xattr::On::Fd(a.i32(0)), a.u64(1), a.u64(2), a.usize(3))
    }),
    e!(listxattr, Full, &[S, H, I], "", |t, a| {
        xattr::sys_listxattr(t, xattr::On::Path(a.u64(0), true), a.u64(1), a.usize(2))
    }),
    e!(llistxattr, Full, &[S, H, I], "", |t, a| {
        xattr::sys_listxattr(t, xattr::On::Path(a.u64(0), false), a.u64(1), a.usize(2))
    }),
    e!(flistxattr, Full, &[I, H, I], "", |t, a| xattr::sys_listxattr(t, xattr::On::Fd(a.i32(0)), a.u64(1), a.usize(2))),
    e!(setxattr, Full, &[S, S, H, I, H], "", |t, a| {
        xattr::sys_setxattr(t, xattr::On::Path(a.u64(0), true), a.u64(1), a.u64(2), a.usize(3), a.u32(4))
    }),
    e!(lsetxattr, Full, &[S, S, H, I, H], "", |t, a| {
        xattr::sys_setxattr(t, xattr::On::Path(a.u64(0), false), a.u64(1), a.u64(2), a.usize(3), a.u32(4))
    }),
    e!(fsetxattr, Full, &[I, S, H, I, H], "", |t, a| {
        xattr::sys_setxattr(t, xattr::On::Fd(a.i32(0)), a.u64(1), a.u64(2), a.usize(3), a.u32(4))
    }),
    e!(removexattr, Full, &[S, S], "", |t, a| xattr::sys_removexattr(t, xattr::On::Path(a.u64(0), true), a.u64(1))),
    e!(lremovexattr, Full, &[S, S], "", |t, a| xattr::sys_removexattr(t, xattr::On::Path(a.u64(0), false), a.u64(1))),
    e!(fremovexattr, Full, &[I, S], "", |t, a| xattr::sys_removexattr(t, xattr::On::Fd(a.i32(0)), a.u64(1))),
    e!(getdents64, Full, &[I, H, I], "", |t, a| fs::sys_getdents64(t, a.i32(0), a.u64(1), a.u32(2))),
    e!(readlink, Full, &[S, H, I], "", |t, a| fs::sys_readlink(t, a.u64(0), a.u64(1), a.i32(2))),
    e!(readlinkat, Full, &[I, S, H, I], "", |t, a| fs::sys_readlinkat(t, a.i32(0), a.u64(1), a.u64(2), a.i32(3))),
    e!(access, Full, &[S, H], "", |t, a| fs::sys_access(t, a.u64(0), a.u32(1))),
    e!(faccessat, Full, &[I, S, H], "", |t, a| fs::sys_faccessat(t, a.i32(0), a.u64(1), a.u32(2))),
    e!(faccessat2, Full, &[I, S, H, H], "", |t, a| fs::sys_faccessat2(t, a.i32(0), a.u64(1), a.u32(2), a.u32(3))),
    e!(getcwd, Full, &[H, I], "", |t, a| fs::sys_getcwd(t, a.u64(0), a.u64(1))),
    e!(chdir, Full, &[S], "", |t, a| fs::sys_chdir(t, a.u64(0))),
    e!(fchdir, Full, &[I], "", |t, a| fs::sys_fchdir(t, a.i32(0))),
    e!(umask, Full, &[H], "", |t, a| fs::sys_umask(t, a.u32(0))),
    e!(brk, Full, &[H], "", |t, a| mm::sys_brk(t, a.u64(0))),
    e!(mmap, Partial, &[H, I, H, H, I, H], "no writable shared file mappings yet", |t, a| {
        mm::sys_mmap(t, a.u64(0), a.u64(1), a.u32(2), a.u32(3), a.i32(4), a.u64(5))
    }),
    e!(munmap, Full, &[H, I], "", |t, a| mm::sys_munmap(t, a.u64(0), a.u64(1))),
    e!(mprotect, Full, &[H, I, H], "", |t, a| mm::sys_mprotect(t, a.u64(0), a.u64(1), a.u32(2))),
    e!(madvise, Partial, &[H, I, I], "fork-behaviour hints (DONTFORK, WIPEONFORK) ignored", |t, a| {
        mm::sys_madvise(t, a.u64(0), a.u64(1), a.u32(2))
    }),
    e!(msync, Full, &[H, I, H], "", |t, a| mm::sys_msync(t, a.u64(0), a.u64(1), a.u32(2))),
    e!(mremap, Partial, &[H, I, I, H, H], "no duplication of shared mappings (old_size 0)", |t, a| {
        mm::sys_mremap(t, a.u64(0), a.u64(1), a.u64(2), a.u32(3), a.u64(4))
    }),
    e!(mincore, Partial, &[H, I, H], "resident means installed in the stub", |t, a| {
        mm::sys_mincore(t, a.u64(0), a.u64(1), a.u64(2))
    }),
    e!(mlock, Full, &[H, I], "", |t, a| mm::sys_mlock2(t, a.u64(0), a.u64(1), 0)),
    e!(mlock2, Full, &[H, I, H], "", |t, a| mm::sys_mlock2(t, a.u64(0), a.u64(1), a.u32(2))),
    e!(munlock, Full, &[H, I], "", |t, a| mm::sys_mlock2(t, a.u64(0), a.u64(1), 0)),
    e!(mlockall, Full, &[H], "", |t, a| mm::sys_mlockall(t, a.u32(0))),
    e!(munlockall, Full, &[], "", |_, _| Ok(0)),
    e!(exit, Full, &[I], "", |t, a| process::sys_exit(t, a.i32(0))),
    e!(pidfd_open, Full, &[I, H], "", |t, a| process::sys_pidfd_open(t, a.i32(0), a.u32(1))),
    e!(pidfd_send_signal, Full, &[I, I, H, H], "", |t, a| {
        process::sys_pidfd_send_signal(t, a.i32(0), a.i32(1), a.u64(2), a.u32(3))
    }),
    e!(clone3, Partial, &[H, I], "no namespaces, set_tid or cgroup", |t, a| {
        process::sys_clone3(t, a.u64(0), a.u64(1))
    }),
    e!(clone, Partial, &[H, H, H, H, H], "no namespaces", |t, a| {
        process::sys_clone(t, a.u64(0), a.u64(1), a.u64(2), a.u64(3), a.u64(4))
    }),
    e!(fork, Full, &[], "", |t, _| process::sys_fork(t)),
    e!(execve, Full, &[S, H, H], "", |t, a| process::sys_execve(t, a.u64(0), a.u64(1), a.u64(2))),
    e!(execveat, Full, &[I, S, H, H, H], "", |t, a| {
        process::sys_execveat(t, a.i32(0), a.u64(1), a.u64(2), a.u64(3), a.u32(4))
    }),
    e!(vfork, Full, &[], "", |t, _| process::sys_vfork(t)),
    e!(wait4, Partial, &[I, H, H, H], "rusage has CPU time only", |t, a| {
        process::sys_wait4(t, a.i32(0), a.u64(1), a.u32(2), a.u64(3))
    }),
    e!(waitid, Partial, &[I, I, H, H, H], "rusage has CPU time only", |t, a| {
        process::sys_waitid(t, a.u32(0), a.i32(1), a.u64(2), a.u32(3), a.u64(4))
    }),
    e!(setpgid, Full, &[I, I], "", |t, a| process::sys_setpgid(t, a.i32(0), a.i32(1))),
    e!(setsid, Full, &[], "", |t, _| process::sys_setsid(t)),
    e!(exit_group, Full, &[I], "", |t, a| process::sys_exit_group(t, a.i32(0))),
    e!(getpid, Full, &[], "", |t, _| process::sys_getpid(t)),
    e!(gettid, Full, &[], "", |t, _| process::sys_gettid(t)),
    e!(getppid, Full, &[], "", |t, _| process::sys_getppid(t)),
    e!(getpgrp, Full, &[], "", |t, _| process::sys_getpgid(t, 0)),
    e!(getpgid, Full, &[I], "", |t, a| process::sys_getpgid(t, a.i32(0))),
    e!(getsid, Full, &[I], "", |t, a| process::sys_getsid(t, a.i32(0))),
    e!(getuid, Full, &[], "", |t, _| process::sys_getuid(t)),
    e!(geteuid, Full, &[], "", |t, _| process::sys_geteuid(t)),
    e!(getgid, Full, &[], "", |t, _| process::sys_getgid(t)),
    e!(getegid, Full, &[], "", |t, _| process::sys_getegid(t)),
    e!(getresuid, Full, &[H, H, H], "", |t, a| process::sys_getresuid(t, a.u64(0), a.u64(1), a.u64(2))),
    e!(getresgid, Full, &[H, H, H], "", |t, a| process::sys_getresgid(t, a.u64(0), a.u64(1), a.u64(2))),
    e!(getgroups, Full, &[I, H], "", |t, a| process::sys_getgroups(t, a.i32(0), a.u64(1))),
    e!(set_tid_address, Full, &[H], "", |t, a| process::sys_set_tid_address(t, a.u64(0))),
    e!(set_robust_list, Full, &[H, I], "", |t, a| process::sys_set_robust_list(t, a.u64(0), a.u64(1))),
    e!(arch_prctl, Full, &[H, H], "", |t, a| process::sys_arch_prctl(t, a.u64(0), a.u64(1))),
    e!(prctl, Partial, &[I, H, H], "names, dumpable, capabilities, no_new_privs, keepcaps", |t, a| {
        process::sys_prctl(t, a.u64(0), a.u64(1), a.u64(2))
    }),
    e!(mount, Partial, &[S, S, S, H, H], "tmpfs, proc, sysfs, bind, remount read-only; no MS_MOVE", |t, a| {
        mount::sys_mount(t, a.u64(0), a.u64(1), a.u64(2), a.u64(3), a.u64(4))
    }),
    e!(umount2, Full, &[S, H], "", |t, a| mount::sys_umount2(t, a.u64(0), a.u32(1))),
    e!(setuid, Full, &[I], "", |t, a| creds::sys_setuid(t, a.u32(0))),
    e!(setgid, Full, &[I], "", |t, a| creds::sys_setgid(t, a.u32(0))),
    e!(setreuid, Full, &[I, I], "", |t, a| creds::sys_setreuid(t, a.u32(0), a.u32(1))),
    e!(setregid, Full, &[I, I], "", |t, a| creds::sys_setregid(t, a.u32(0), a.u32(1))),
    e!(setresuid, Full, &[I, I, I], "", |t, a| creds::sys_setresuid(t, a.u32(0), a.u32(1), a.u32(2))),
    e!(setresgid, Full, &[I, I, I], "", |t, a| creds::sys_setresgid(t, a.u32(0), a.u32(1), a.u32(2))),
    e!(setfsuid, Full, &[I], "", |t, a| creds::sys_setfsuid(t, a.u32(0))),
    e!(setfsgid, Full, &[I], "", |t, a| creds::sys_setfsgid(t, a.u32(0))),
    e!(setgroups, Full, &[I, H], "", |t, a| creds::sys_setgroups(t, a.i32(0), a.u64(1))),
    e!(capget, Full, &[H, H], "", |t, a| creds::sys_capget(t, a.u64(0), a.u64(1))),
    e!(capset, Full, &[H, H], "no file capabilities", |t, a| creds::sys_capset(t, a.u64(0), a.u64(1))),
    e!(uname, Full, &[H], "", |t, a| process::sys_uname(t, a.u64(0))),
    e!(getrlimit, Full, &[I, H], "", |t, a| process::sys_getrlimit(t, a.u32(0), a.u64(1))),
    e!(setrlimit, Full, &[I, H], "", |t, a| process::sys_setrlimit(t, a.u32(0), a.u64(1))),
    e!(prlimit64, Full, &[I, I, H, H], "", |t, a| {
        process::sys_prlimit64(t, a.i32(0), a.u32(1), a.u64(2), a.u64(3))
    }),
    e!(sched_setaffinity, Partial, &[I, I, H], "kept and reported, not enforced", |t, a| {
        process::sys_sched_setaffinity(t, a.i32(0), a.u32(1), a.u64(2))
    }),
    e!(sched_getscheduler, Full, &[I], "", |t, a| process::sys_sched_getscheduler(t, a.i32(0))),
    e!(sched_setscheduler, Partial, &[I, I, H], "SCHED_OTHER/BATCH/IDLE only, real-time EPERM", |t, a| {
        process::sys_sched_setscheduler(t, a.i32(0), a.i32(1), a.u64(2))
    }),
    e!(sched_getparam, Full, &[I, H], "", |t, a| process::sys_sched_getparam(t, a.i32(0), a.u64(1))),
    e!(sched_setparam, Full, &[I, H], "", |t, a| process::sys_sched_setparam(t, a.i32(0), a.u64(1))),
    e!(sched_get_priority_max, Full, &[I], "", |t, a| process::sys_sched_get_priority_max(t, a.i32(0))),
    e!(sched_get_priority_min, Full, &[I], "", |t, a| process::sys_sched_get_priority_min(t, a.i32(0))),
    e!(getcpu, Full, &[H, H, H], "", |t, a| process::sys_getcpu(t, a.u64(0), a.u64(1))),
    e!(get_robust_list, Partial, &[I, H, H], "the caller's own list only", |t, a| {
        process::sys_get_robust_list(t, a.i32(0), a.u64(1), a.u64(2))
    }),
    e!(sched_getaffinity, Full, &[I, I, H], "", |t, a| {
        process::sys_sched_getaffinity(t, a.i32(0), a.u32(1), a.u64(2))
    }),
    e!(sched_yield, Full, &[], "", |t, _| process::sys_sched_yield(t)),
    e!(rt_sigaction, Full, &[I, H, H, I], "", |t, a| {
        signal::sys_rt_sigaction(t, a.i32(0), a.u64(1), a.u64(2), a.u64(3))
    }),
    e!(rt_sigprocmask, Full, &[I, H, H, I], "", |t, a| {
        signal::sys_rt_sigprocmask(t, a.i32(0), a.u64(1), a.u64(2), a.u64(3))
    }),
    e!(sigaltstack, Full, &[H, H], "", |t, a| signal::sys_sigaltstack(t, a.u64(0), a.u64(1))),
    e!(kill, Full, &[I, I], "", |t, a| signal::sys_kill(t, a.i32(0), a.i32(1))),
    e!(tkill, Full, &[I, I], "", |t, a| signal::sys_tkill(t, a.i32(0), a.i32(1))),
    e!(tgkill, Full, &[I, I, I], "", |t, a| signal::sys_tgkill(t, a.i32(0), a.i32(1), a.i32(2))),
    e!(rt_sigqueueinfo, Full, &[I, I, H], "", |t, a| { signal::sys_rt_sigqueueinfo(t, a.i32(0), a.i32(1), a.u64(2)) }),
    e!(rt_tgsigqueueinfo, Full, &[I, I, I, H], "", |t, a| {
        signal::sys_rt_tgsigqueueinfo(t, a.i32(0), a.i32(1), a.i32(2), a.u64(3))
    }),
    e!(rt_sigreturn, Full, &[], "", |t, _| signal::sys_rt_sigreturn(t)),
    e!(rt_sigpending, Full, &[H, I], "", |t, a| signal::sys_rt_sigpending(t, a.u64(0), a.u64(1))),
    e!(rt_sigsuspend, Full, &[H, I], "", |t, a| signal::sys_rt_sigsuspend(t, a.u64(0), a.u64(1))),
    e!(restart_syscall, Full, &[], "", |t, _| time::sys_restart_syscall(t)),
    e!(rt_sigtimedwait, Full, &[H, H, H, I], "", |t, a| {
        signal::sys_rt_sigtimedwait(t, a.u64(0), a.u64(1), a.u64(2), a.u64(3))
    }),
    e!(pause, Full, &[], "", |t, _| signal::sys_pause(t)),
    e!(clock_gettime, Full, &[I, H], "", |t, a| time::sys_clock_gettime(t, a.i32(0), a.u64(1))),
    e!(clock_getres, Full, &[I, H], "", |t, a| time::sys_clock_getres(t, a.i32(0), a.u64(1))),
    e!(gettimeofday, Full, &[H, H], "", |t, a| time::sys_gettimeofday(t, a.u64(0), a.u64(1))),
    e!(time, Full, &[H], "", |t, a| time::sys_time(t, a.u64(0))),
    e!(nanosleep, Full, &[H, H], "", |t, a| time::sys_nanosleep(t, a.u64(0), a.u64(1))),
    e!(clock_nanosleep, Full, &[I, H, H, H], "", |t, a| {
        time::sys_clock_nanosleep(t, a.i32(0), a.u32(1), a.u64(2), a.u64(3))
    }),
    e!(futex, Partial, &[H, I, I, H, H, I], "no PI futexes", |t, a| {
        time::sys_futex(t, a.u64(0), a.u32(1), a.u32(2), a.u64(3), a.u64(4), a.u32(5))
    }),
    e!(alarm, Full, &[I], "", |t, a| time::sys_alarm(t, a.u32(0))),
    e!(getitimer, Full, &[I, H], "", |t, a| time::sys_getitimer(t, a.i32(0), a.u64(1))),
    e!(setitimer, Partial, &[I, H, H], "ITIMER_VIRTUAL counts system time too", |t, a| time::sys_setitimer(
        t,
        a.i32(0),
        a.u64(1),
        a.u64(2)
    )),
    e!(getrusage, Partial, &[I, H], "CPU time as user time", |t, a| time::sys_getrusage(t, a.i32(0), a.u64(1))),
    e!(times, Partial, &[H], "CPU time as user time", |t, a| time::sys_times(t, a.u64(0))),
    e!(getrandom, Full, &[H, I, H], "", |t, a| time::sys_getrandom(t, a.u64(0), a.usize(1), a.u32(2))),
    e!(sysinfo, Full, &[H], "", |t, a| time::sys_sysinfo(t, a.u64(0))),
];

/// Every served call.
pub fn entries() -> &'static [Entry] {
    ENTRIES
}
