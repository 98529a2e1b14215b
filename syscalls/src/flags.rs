//! Flag sets and constants of the system call ABI.
use bitflags::bitflags;

bitflags! {
    /// `open(2)` flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct OpenFlags: u32 {
        const O_WRONLY = 0o1;
        const O_RDWR = 0o2;
        const O_CREAT = 0o100;
        const O_EXCL = 0o200;
        const O_NOCTTY = 0o400;
        const O_TRUNC = 0o1000;
        const O_APPEND = 0o2000;
        const O_NONBLOCK = 0o4000;
        const O_DSYNC = 0o10000;
        const O_ASYNC = 0o20000;
        const O_DIRECT = 0o40000;
        const O_LARGEFILE = 0o100000;
        const O_DIRECTORY = 0o200000;
        const O_NOFOLLOW = 0o400000;
        const O_NOATIME = 0o1000000;
        const O_CLOEXEC = 0o2000000;
        const O_SYNC = 0o4010000;
        const O_PATH = 0o10000000;
        const O_TMPFILE = 0o20200000;
        const _ = !0;
    }
}

impl OpenFlags {
    /// The access mode bits.
    pub const O_ACCMODE: u32 = 0o3;
    /// The flags F_SETFL may change.
    pub const SETFL_MASK: u32 = 0o2000 | 0o4000 | 0o20000 | 0o40000 | 0o1000000;
}

bitflags! {
    /// `mmap`/`mprotect` protection bits.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Prot: u32 {
        const READ = 1;
        const WRITE = 2;
        const EXEC = 4;
        const GROWSDOWN = 0x0100_0000;
        const GROWSUP = 0x0200_0000;
    }
}

bitflags! {
    /// `mmap` flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MapFlags: u32 {
        const SHARED = 0x01;
        const PRIVATE = 0x02;
        const SHARED_VALIDATE = 0x03;
        const FIXED = 0x10;
        const ANONYMOUS = 0x20;
        const GROWSDOWN = 0x100;
        const DENYWRITE = 0x800;
        const EXECUTABLE = 0x1000;
        const LOCKED = 0x2000;
        const NORESERVE = 0x4000;
        const POPULATE = 0x8000;
        const NONBLOCK = 0x10000;
        const STACK = 0x20000;
        const HUGETLB = 0x40000;
        const SYNC = 0x80000;
        const FIXED_NOREPLACE = 0x100000;
        const _ = !0;
    }
}

/// Special directory fd meaning "the current directory".
pub const AT_FDCWD: i32 = -100;
/// Do not follow a final symlink.
pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
/// `unlinkat`: remove a directory.
pub const AT_REMOVEDIR: u32 = 0x200;
/// Follow a final symlink (linkat).
pub const AT_SYMLINK_FOLLOW: u32 = 0x400;
/// Do not automount.
pub const AT_NO_AUTOMOUNT: u32 = 0x800;
/// Operate on the fd itself when the path is empty.
pub const AT_EMPTY_PATH: u32 = 0x1000;
/// `faccessat`: check with effective ids.
pub const AT_EACCESS: u32 = 0x200;
/// statx sync flags mask.
pub const AT_STATX_SYNC_TYPE: u32 = 0x6000;

/// `fcntl` commands.
pub mod fcntl {
    pub const F_DUPFD: u32 = 0;
    pub const F_GETFD: u32 = 1;
    pub const F_SETFD: u32 = 2;
    pub const F_GETFL: u32 = 3;
    pub const F_SETFL: u32 = 4;
    pub const F_GETLK: u32 = 5;
    pub const F_SETLK: u32 = 6;
    pub const F_SETLKW: u32 = 7;
    pub const F_OFD_GETLK: u32 = 36;
    pub const F_OFD_SETLK: u32 = 37;
    pub const F_OFD_SETLKW: u32 = 38;
    pub const F_DUPFD_CLOEXEC: u32 = 1030;
    /// `l_type` of struct flock.
    pub const F_RDLCK: i16 = 0;
    pub const F_WRLCK: i16 = 1;
    pub const F_UNLCK: i16 = 2;
    /// flock(2) operations.
    pub const LOCK_SH: i32 = 1;
    pub const LOCK_EX: i32 = 2;
    pub const LOCK_NB: i32 = 4;
    pub const LOCK_UN: i32 = 8;
    pub const F_SETPIPE_SZ: u32 = 1031;
    pub const F_GETPIPE_SZ: u32 = 1032;
    pub const FD_CLOEXEC: u64 = 1;
}

/// File type bits of `st_mode`.
pub mod mode {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFSOCK: u32 = 0o140000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFBLK: u32 = 0o060000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFIFO: u32 = 0o010000;
    pub const S_ISUID: u32 = 0o4000;
    pub const S_ISGID: u32 = 0o2000;
    pub const S_ISVTX: u32 = 0o1000;
}

/// `d_type` values of `linux_dirent64`.
pub mod dtype {
    pub const DT_UNKNOWN: u8 = 0;
    pub const DT_FIFO: u8 = 1;
    pub const DT_CHR: u8 = 2;
    pub const DT_DIR: u8 = 4;
    pub const DT_BLK: u8 = 6;
    pub const DT_REG: u8 = 8;
    pub const DT_LNK: u8 = 10;
    pub const DT_SOCK: u8 = 12;
}

/// Auxiliary vector keys.
pub mod auxv {
    pub const AT_NULL: u64 = 0;
    pub const AT_PHDR: u64 = 3;
    pub const AT_PHENT: u64 = 4;
    pub const AT_PHNUM: u64 = 5;
    pub const AT_PAGESZ: u64 = 6;
    pub const AT_BASE: u64 = 7;
    pub const AT_FLAGS: u64 = 8;
    pub const AT_ENTRY: u64 = 9;
    pub const AT_UID: u64 = 11;
    pub const AT_EUID: u64 = 12;
    pub const AT_GID: u64 = 13;
    pub const AT_EGID: u64 = 14;
    pub const AT_PLATFORM: u64 = 15;
    pub const AT_HWCAP: u64 = 16;
    pub const AT_CLKTCK: u64 = 17;
    pub const AT_SECURE: u64 = 23;
    pub const AT_RANDOM: u64 = 25;
    pub const AT_HWCAP2: u64 = 26;
    pub const AT_EXECFN: u64 = 31;
    pub const AT_MINSIGSTKSZ: u64 = 51;
}

/// `arch_prctl` codes.
pub mod arch_prctl {
    pub const ARCH_SET_GS: u64 = 0x1001;
    pub const ARCH_SET_FS: u64 = 0x1002;
    pub const ARCH_GET_FS: u64 = 0x1003;
    pub const ARCH_GET_GS: u64 = 0x1004;
    pub const ARCH_GET_CPUID: u64 = 0x1011;
    pub const ARCH_SET_CPUID: u64 = 0x1012;
}

/// `ioctl` requests the sentry knows.
pub mod ioctl {
    pub const TCGETS: u32 = 0x5401;
    pub const TCSETS: u32 = 0x5402;
    pub const TCSETSW: u32 = 0x5403;
    pub const TCSETSF: u32 = 0x5404;
    pub const TIOCGPGRP: u32 = 0x540F;
    pub const TIOCSPGRP: u32 = 0x5410;
    pub const TIOCGWINSZ: u32 = 0x5413;
    pub const TIOCSWINSZ: u32 = 0x5414;
    pub const FIONREAD: u32 = 0x541B;
    pub const FIONBIO: u32 = 0x5421;
    pub const FIOCLEX: u32 = 0x5451;
    pub const FIONCLEX: u32 = 0x5450;
}

/// Clock ids.
pub mod clock {
    pub const CLOCK_REALTIME: i32 = 0;
    pub const CLOCK_MONOTONIC: i32 = 1;
    pub const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    pub const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    pub const CLOCK_MONOTONIC_RAW: i32 = 4;
    pub const CLOCK_REALTIME_COARSE: i32 = 5;
    pub const CLOCK_MONOTONIC_COARSE: i32 = 6;
    pub const CLOCK_BOOTTIME: i32 = 7;
    pub const CLOCK_REALTIME_ALARM: i32 = 8;
    pub const CLOCK_BOOTTIME_ALARM: i32 = 9;
    pub const CLOCK_TAI: i32 = 11;
    pub const TIMER_ABSTIME: u32 = 1;
}

/// Signal numbers.
pub mod signal {
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGQUIT: i32 = 3;
    pub const SIGILL: i32 = 4;
    pub const SIGTRAP: i32 = 5;
    pub const SIGABRT: i32 = 6;
    pub const SIGBUS: i32 = 7;
    pub const SIGFPE: i32 = 8;
    pub const SIGKILL: i32 = 9;
    pub const SIGUSR1: i32 = 10;
    pub const SIGSEGV: i32 = 11;
    pub const SIGUSR2: i32 = 12;
    pub const SIGPIPE: i32 = 13;
    pub const SIGALRM: i32 = 14;
    pub const SIGTERM: i32 = 15;
    pub const SIGCHLD: i32 = 17;
    pub const SIGCONT: i32 = 18;
    pub const SIGSTOP: i32 = 19;
    pub const SIGTSTP: i32 = 20;
    pub const SIGTTIN: i32 = 21;
    pub const SIGTTOU: i32 = 22;
    pub const SIGURG: i32 = 23;
    pub const SIGVTALRM: i32 = 26;
    pub const SIGPROF: i32 = 27;
    pub const SIGWINCH: i32 = 28;
    pub const SIGSYS: i32 = 31;
    pub const NSIG: i32 = 64;
    pub const SIG_BLOCK: i32 = 0;
    pub const SIG_UNBLOCK: i32 = 1;
    pub const SIG_SETMASK: i32 = 2;
    pub const SS_ONSTACK: i32 = 1;
    pub const SS_DISABLE: i32 = 2;
    pub const MINSIGSTKSZ: u64 = 2048;
}

/// `prctl` options.
pub mod prctl {
    pub const PR_SET_PDEATHSIG: u64 = 1;
    pub const PR_GET_PDEATHSIG: u64 = 2;
    pub const PR_GET_DUMPABLE: u64 = 3;
    pub const PR_SET_DUMPABLE: u64 = 4;
    pub const PR_SET_NAME: u64 = 15;
    pub const PR_GET_NAME: u64 = 16;
    pub const PR_GET_SECCOMP: u64 = 21;
    pub const PR_GET_KEEPCAPS: u64 = 7;
    pub const PR_SET_KEEPCAPS: u64 = 8;
    pub const PR_CAPBSET_READ: u64 = 23;
    pub const PR_CAPBSET_DROP: u64 = 24;
    pub const PR_GET_SECUREBITS: u64 = 27;
    pub const PR_SET_NO_NEW_PRIVS: u64 = 38;
    pub const PR_GET_NO_NEW_PRIVS: u64 = 39;
    pub const PR_CAP_AMBIENT: u64 = 47;
    pub const PR_CAP_AMBIENT_IS_SET: u64 = 1;
    pub const PR_CAP_AMBIENT_RAISE: u64 = 2;
    pub const PR_CAP_AMBIENT_LOWER: u64 = 3;
    pub const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;
}

/// mount(2) and umount2(2) flags.
pub mod mount {
    pub const MS_RDONLY: u64 = 1;
    pub const MS_NOSUID: u64 = 2;
    pub const MS_NODEV: u64 = 4;
    pub const MS_NOEXEC: u64 = 8;
    pub const MS_REMOUNT: u64 = 32;
    pub const MS_BIND: u64 = 4096;
    pub const MS_MOVE: u64 = 8192;
    pub const MS_REC: u64 = 16384;
    pub const MS_UNBINDABLE: u64 = 1 << 17;
    pub const MS_PRIVATE: u64 = 1 << 18;
    pub const MS_SLAVE: u64 = 1 << 19;
    pub const MS_SHARED: u64 = 1 << 20;
    pub const MNT_FORCE: u32 = 1;
    pub const MNT_DETACH: u32 = 2;
    pub const MNT_EXPIRE: u32 = 4;
    pub const UMOUNT_NOFOLLOW: u32 = 8;
}

/// Capabilities (capability.h), by bit number.
pub mod cap {
    pub const CAP_CHOWN: u32 = 0;
    pub const CAP_DAC_OVERRIDE: u32 = 1;
    pub const CAP_DAC_READ_SEARCH: u32 = 2;
    pub const CAP_FOWNER: u32 = 3;
    pub const CAP_FSETID: u32 = 4;
    pub const CAP_KILL: u32 = 5;
    pub const CAP_SETGID: u32 = 6;
    pub const CAP_SETUID: u32 = 7;
    pub const CAP_SETPCAP: u32 = 8;
    pub const CAP_LINUX_IMMUTABLE: u32 = 9;
    pub const CAP_SYS_CHROOT: u32 = 18;
    pub const CAP_SYS_ADMIN: u32 = 21;
    pub const CAP_SYS_NICE: u32 = 23;
    pub const CAP_SYS_RESOURCE: u32 = 24;
    pub const CAP_MKNOD: u32 = 27;
    pub const CAP_MAC_OVERRIDE: u32 = 32;
    pub const CAP_LAST_CAP: u32 = 40;
    /// Every capability this kernel knows.
    pub const ALL: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;
    /// The file-system capabilities that follow the fsuid (CAP_FS_MASK).
    pub const FS_MASK: u64 = 1 << CAP_CHOWN
        | 1 << CAP_DAC_OVERRIDE
        | 1 << CAP_DAC_READ_SEARCH
        | 1 << CAP_FOWNER
        | 1 << CAP_FSETID
        | 1 << CAP_LINUX_IMMUTABLE
        | 1 << CAP_MKNOD
        | 1 << CAP_MAC_OVERRIDE;
    /// capget/capset header versions.
    pub const LINUX_CAPABILITY_VERSION_1: u32 = 0x1998_0330;
    pub const LINUX_CAPABILITY_VERSION_2: u32 = 0x2007_1026;
    pub const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    /// Names by number, as the OCI spec spells them.
    pub const NAMES: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];
}

/// `madvise` advice.
pub mod madv {
    pub const MADV_NORMAL: u32 = 0;
    pub const MADV_RANDOM: u32 = 1;
    pub const MADV_SEQUENTIAL: u32 = 2;
    pub const MADV_WILLNEED: u32 = 3;
    pub const MADV_DONTNEED: u32 = 4;
    pub const MADV_FREE: u32 = 8;
    pub const MADV_REMOVE: u32 = 9;
    pub const MADV_DONTFORK: u32 = 10;
    pub const MADV_DOFORK: u32 = 11;
    pub const MADV_MERGEABLE: u32 = 12;
    pub const MADV_UNMERGEABLE: u32 = 13;
    pub const MADV_HUGEPAGE: u32 = 14;
    pub const MADV_NOHUGEPAGE: u32 = 15;
    pub const MADV_DONTDUMP: u32 = 16;
    pub const MADV_DODUMP: u32 = 17;
    pub const MADV_WIPEONFORK: u32 = 18;
    pub const MADV_KEEPONFORK: u32 = 19;
    pub const MADV_COLD: u32 = 20;
    pub const MADV_PAGEOUT: u32 = 21;
    pub const MADV_POPULATE_READ: u32 = 22;
    pub const MADV_POPULATE_WRITE: u32 = 23;
}

/// mremap, mlock and mlockall flags.
pub mod mremap {
    pub const MREMAP_MAYMOVE: u32 = 1;
    pub const MREMAP_FIXED: u32 = 2;
    pub const MREMAP_DONTUNMAP: u32 = 4;
    pub const MLOCK_ONFAULT: u32 = 1;
    pub const MCL_CURRENT: u32 = 1;
    pub const MCL_FUTURE: u32 = 2;
    pub const MCL_ONFAULT: u32 = 4;
}

/// Resource limit ids.
pub mod rlimit {
    pub const RLIMIT_CPU: u32 = 0;
    pub const RLIMIT_FSIZE: u32 = 1;
    pub const RLIMIT_DATA: u32 = 2;
    pub const RLIMIT_STACK: u32 = 3;
    pub const RLIMIT_CORE: u32 = 4;
    pub const RLIMIT_RSS: u32 = 5;
    pub const RLIMIT_NPROC: u32 = 6;
    pub const RLIMIT_NOFILE: u32 = 7;
    pub const RLIMIT_MEMLOCK: u32 = 8;
    pub const RLIMIT_AS: u32 = 9;
    pub const RLIMIT_MSGQUEUE: u32 = 12;
    pub const RLIM_NLIMITS: u32 = 16;
    pub const RLIM_INFINITY: u64 = u64::MAX;
}

/// `poll` events.
pub mod poll {
    pub const POLLIN: i16 = 0x1;
    pub const POLLPRI: i16 = 0x2;
    pub const POLLOUT: i16 = 0x4;
    pub const POLLERR: i16 = 0x8;
    pub const POLLHUP: i16 = 0x10;
    pub const POLLNVAL: i16 = 0x20;
    pub const POLLRDNORM: i16 = 0x40;
    pub const POLLWRNORM: i16 = 0x100;
}

/// epoll_create1, epoll_ctl and event bits.
pub mod epoll {
    pub const EPOLL_CLOEXEC: u32 = 0o2000000;
    pub const EPOLL_CTL_ADD: i32 = 1;
    pub const EPOLL_CTL_DEL: i32 = 2;
    pub const EPOLL_CTL_MOD: i32 = 3;
    pub const EPOLLIN: u32 = 0x1;
    pub const EPOLLPRI: u32 = 0x2;
    pub const EPOLLOUT: u32 = 0x4;
    pub const EPOLLERR: u32 = 0x8;
    pub const EPOLLHUP: u32 = 0x10;
    pub const EPOLLRDNORM: u32 = 0x40;
    pub const EPOLLRDBAND: u32 = 0x80;
    pub const EPOLLWRNORM: u32 = 0x100;
    pub const EPOLLWRBAND: u32 = 0x200;
    pub const EPOLLMSG: u32 = 0x400;
    pub const EPOLLRDHUP: u32 = 0x2000;
    pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
    pub const EPOLLWAKEUP: u32 = 1 << 29;
    pub const EPOLLONESHOT: u32 = 1 << 30;
    pub const EPOLLET: u32 = 1 << 31;
    /// Most events one epoll_wait returns (INT_MAX / sizeof(epoll_event)).
    pub const EP_MAX_EVENTS: i32 = i32::MAX / 12;
}

/// eventfd2 flags.
pub mod eventfd {
    pub const EFD_SEMAPHORE: u32 = 1;
    pub const EFD_NONBLOCK: u32 = 0o4000;
    pub const EFD_CLOEXEC: u32 = 0o2000000;
}

/// timerfd_create / timerfd_settime flags.
pub mod timerfd {
    pub const TFD_TIMER_ABSTIME: i32 = 1;
    pub const TFD_TIMER_CANCEL_ON_SET: i32 = 2;
    pub const TFD_NONBLOCK: i32 = 0o4000;
    pub const TFD_CLOEXEC: i32 = 0o2000000;
}

/// signalfd4 flags.
pub mod signalfd {
    pub const SFD_NONBLOCK: i32 = 0o4000;
    pub const SFD_CLOEXEC: i32 = 0o2000000;
}

/// Scheduling policies (sched_setscheduler).
pub mod sched {
    pub const SCHED_OTHER: i32 = 0;
    pub const SCHED_FIFO: i32 = 1;
    pub const SCHED_RR: i32 = 2;
    pub const SCHED_BATCH: i32 = 3;
    pub const SCHED_IDLE: i32 = 5;
    pub const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;
}

/// `struct sigevent` notification kinds and POSIX timers' si_code.
pub mod sigev {
    pub const SIGEV_SIGNAL: i32 = 0;
    pub const SIGEV_NONE: i32 = 1;
    pub const SIGEV_THREAD: i32 = 2;
    pub const SIGEV_THREAD_ID: i32 = 4;
    pub const SI_TIMER: i32 = -2;
    /// si_code of an mq_notify signal.
    pub const SI_MESGQ: i32 = -3;
}

/// POSIX message queues: limits of an IPC namespace (Linux's defaults).
pub mod mqueue {
    /// Priorities are below this.
    pub const MQ_PRIO_MAX: u32 = 32768;
    /// fs.mqueue.msg_default and msgsize_default: a queue created without
    /// attributes.
    pub const MSG_DEFAULT: i64 = 10;
    pub const MSGSIZE_DEFAULT: i64 = 8192;
    /// fs.mqueue.msg_max and msgsize_max: the most a process without
    /// CAP_SYS_RESOURCE may ask for.
    pub const MSG_MAX: i64 = 10;
    pub const MSGSIZE_MAX: i64 = 8192;
    /// HARD_MSGMAX and HARD_MSGSIZEMAX: the most anyone may ask for.
    pub const HARD_MSGMAX: i64 = 65536;
    pub const HARD_MSGSIZEMAX: i64 = 16 * 1024 * 1024;
    /// fs.mqueue.queues_max: queues in the namespace (CAP_SYS_RESOURCE
    /// passes it).
    pub const QUEUES_MAX: u64 = 256;
    /// The file size an mqueue inode shows (Linux's FILENT_SIZE).
    pub const FILENT_SIZE: u64 = 80;
    /// statfs f_type of the mqueue file system.
    pub const MQUEUE_MAGIC: i64 = 0x1980_0202;
}

/// utimensat's special nanosecond values, splice flags, renameat2 flags.
pub mod files {
    pub const UTIME_NOW: i64 = (1 << 30) - 1;
    pub const UTIME_OMIT: i64 = (1 << 30) - 2;
    pub const SPLICE_F_MOVE: u32 = 1;
    pub const SPLICE_F_NONBLOCK: u32 = 2;
    pub const SPLICE_F_MORE: u32 = 4;
    pub const SPLICE_F_GIFT: u32 = 8;
    pub const RENAME_NOREPLACE: u32 = 1;
    pub const RENAME_EXCHANGE: u32 = 2;
    pub const RENAME_WHITEOUT: u32 = 4;
}

/// `access` mode bits.
pub mod access {
    pub const F_OK: u32 = 0;
    pub const X_OK: u32 = 1;
    pub const W_OK: u32 = 2;
    pub const R_OK: u32 = 4;
}

/// `getrandom` flags.
pub mod getrandom {
    pub const GRND_NONBLOCK: u32 = 1;
    pub const GRND_RANDOM: u32 = 2;
    pub const GRND_INSECURE: u32 = 4;
}

/// `statx` mask bits.
pub mod statx {
    pub const STATX_TYPE: u32 = 0x1;
    pub const STATX_MODE: u32 = 0x2;
    pub const STATX_NLINK: u32 = 0x4;
    pub const STATX_UID: u32 = 0x8;
    pub const STATX_GID: u32 = 0x10;
    pub const STATX_ATIME: u32 = 0x20;
    pub const STATX_MTIME: u32 = 0x40;
    pub const STATX_CTIME: u32 = 0x80;
    pub const STATX_INO: u32 = 0x100;
    pub const STATX_SIZE: u32 = 0x200;
    pub const STATX_BLOCKS: u32 = 0x400;
    pub const STATX_BASIC_STATS: u32 = 0x7ff;
    pub const STATX_BTIME: u32 = 0x800;
    pub const STATX_MNT_ID: u32 = 0x1000;
    pub const STATX_DIOALIGN: u32 = 0x2000;
    pub const STATX_MNT_ID_UNIQUE: u32 = 0x4000;
    /// Mask bit reserved for a future struct statx.
    pub const STATX_RESERVED: u32 = 0x8000_0000;

    /// stx_attributes bits.
    pub const STATX_ATTR_IMMUTABLE: u64 = 0x10;
    pub const STATX_ATTR_APPEND: u64 = 0x20;
    pub const STATX_ATTR_NODUMP: u64 = 0x40;
    pub const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;

    /// Where unique mount ids start (Linux's MNT_UNIQUE_ID_OFFSET).
    pub const MNT_UNIQUE_ID_OFFSET: u64 = 1 << 31;
}

/// `sigaction` flags and signal codes.
pub mod sa {
    pub const SA_NOCLDSTOP: u64 = 0x1;
    pub const SA_NOCLDWAIT: u64 = 0x2;
    pub const SA_SIGINFO: u64 = 0x4;
    pub const SA_RESTORER: u64 = 0x0400_0000;
    pub const SA_ONSTACK: u64 = 0x0800_0000;
    pub const SA_RESTART: u64 = 0x1000_0000;
    pub const SA_NODEFER: u64 = 0x4000_0000;
    pub const SA_RESETHAND: u64 = 0x8000_0000;
    pub const SIG_DFL: u64 = 0;
    pub const SIG_IGN: u64 = 1;
    /// si_code: sent by kill(2).
    pub const SI_USER: i32 = 0;
    /// SIGCHLD si_code values.
    pub const CLD_EXITED: i32 = 1;
    pub const CLD_KILLED: i32 = 2;
    pub const CLD_DUMPED: i32 = 3;
    pub const CLD_STOPPED: i32 = 5;
    pub const CLD_CONTINUED: i32 = 6;
    /// si_code: sent by the kernel.
    pub const SI_KERNEL: i32 = 0x80;
    /// si_code: sent by sigqueue(3).
    pub const SI_QUEUE: i32 = -1;
    /// si_code: sent by tkill/tgkill.
    pub const SI_TKILL: i32 = -6;
    pub const SEGV_MAPERR: i32 = 1;
    pub const SEGV_ACCERR: i32 = 2;
    /// ucontext flags.
    pub const UC_FP_XSTATE: u64 = 1;
    pub const UC_SIGCONTEXT_SS: u64 = 2;
    pub const UC_STRICT_RESTORE_SS: u64 = 4;
}

/// `clone` flags.
pub mod clone {
    pub const CSIGNAL: u64 = 0xff;
    pub const CLONE_VM: u64 = 0x100;
    pub const CLONE_FS: u64 = 0x200;
    pub const CLONE_FILES: u64 = 0x400;
    pub const CLONE_SIGHAND: u64 = 0x800;
    pub const CLONE_PIDFD: u64 = 0x1000;
    pub const CLONE_PTRACE: u64 = 0x2000;
    pub const CLONE_DETACHED: u64 = 0x400000;
    pub const CLONE_VFORK: u64 = 0x4000;
    pub const CLONE_PARENT: u64 = 0x8000;
    pub const CLONE_THREAD: u64 = 0x10000;
    pub const CLONE_NEWNS: u64 = 0x20000;
    pub const CLONE_SYSVSEM: u64 = 0x40000;
    pub const CLONE_SETTLS: u64 = 0x80000;
    pub const CLONE_PARENT_SETTID: u64 = 0x100000;
    pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
    pub const CLONE_UNTRACED: u64 = 0x800000;
    pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
    pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
    pub const CLONE_NEWUTS: u64 = 0x0400_0000;
    pub const CLONE_NEWIPC: u64 = 0x0800_0000;
    pub const CLONE_NEWUSER: u64 = 0x1000_0000;
    pub const CLONE_NEWPID: u64 = 0x2000_0000;
    pub const CLONE_NEWNET: u64 = 0x4000_0000;
    pub const CLONE_IO: u64 = 0x8000_0000;
    /// Every namespace flag.
    pub const CLONE_NEW_ANY: u64 =
        CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
}

/// `futex` operations.
pub mod futex {
    pub const FUTEX_WAIT: u32 = 0;
    pub const FUTEX_WAKE: u32 = 1;
    pub const FUTEX_REQUEUE: u32 = 3;
    pub const FUTEX_CMP_REQUEUE: u32 = 4;
    pub const FUTEX_WAKE_OP: u32 = 5;
    pub const FUTEX_WAIT_BITSET: u32 = 9;
    pub const FUTEX_WAKE_BITSET: u32 = 10;
    pub const FUTEX_PRIVATE_FLAG: u32 = 128;
    pub const FUTEX_CLOCK_REALTIME: u32 = 256;
    pub const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;
}

/// `wait4`/`waitid` options.
pub mod wait {
    pub const WNOHANG: u32 = 1;
    pub const WUNTRACED: u32 = 2;
    pub const WEXITED: u32 = 4;
    pub const WCONTINUED: u32 = 8;
    pub const WNOWAIT: u32 = 0x0100_0000;
    pub const WNOTHREAD: u32 = 0x2000_0000;
    pub const WALL: u32 = 0x4000_0000;
    pub const WCLONE: u32 = 0x8000_0000;
    pub const P_ALL: u32 = 0;
    pub const P_PID: u32 = 1;
    pub const P_PGID: u32 = 2;
    pub const P_PIDFD: u32 = 3;
}

/// `openat2` resolve flags (`struct open_how.resolve`).
pub mod resolve {
    pub const RESOLVE_NO_XDEV: u64 = 0x01;
    pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    pub const RESOLVE_BENEATH: u64 = 0x08;
    pub const RESOLVE_IN_ROOT: u64 = 0x10;
    pub const RESOLVE_CACHED: u64 = 0x20;
    /// Every open flag openat2 accepts (Linux's VALID_OPEN_FLAGS).
    pub const VALID_OPEN_FLAGS: u64 = 0o37777703;
    /// The size of the first `struct open_how` (flags, mode, resolve).
    pub const OPEN_HOW_SIZE_VER0: usize = 24;
}

/// inotify_init1 flags and inotify event bits (`<sys/inotify.h>`).
pub mod inotify {
    pub const IN_NONBLOCK: u32 = 0o4000;
    pub const IN_CLOEXEC: u32 = 0o2000000;

    pub const IN_ACCESS: u32 = 0x0000_0001;
    pub const IN_MODIFY: u32 = 0x0000_0002;
    pub const IN_ATTRIB: u32 = 0x0000_0004;
    pub const IN_CLOSE_WRITE: u32 = 0x0000_0008;
    pub const IN_CLOSE_NOWRITE: u32 = 0x0000_0010;
    pub const IN_OPEN: u32 = 0x0000_0020;
    pub const IN_MOVED_FROM: u32 = 0x0000_0040;
    pub const IN_MOVED_TO: u32 = 0x0000_0080;
    pub const IN_CREATE: u32 = 0x0000_0100;
    pub const IN_DELETE: u32 = 0x0000_0200;
    pub const IN_DELETE_SELF: u32 = 0x0000_0400;
    pub const IN_MOVE_SELF: u32 = 0x0000_0800;
    pub const IN_ALL_EVENTS: u32 = 0x0000_0fff;

    pub const IN_UNMOUNT: u32 = 0x0000_2000;
    pub const IN_Q_OVERFLOW: u32 = 0x0000_4000;
    pub const IN_IGNORED: u32 = 0x0000_8000;

    pub const IN_ONLYDIR: u32 = 0x0100_0000;
    pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
    pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
    pub const IN_MASK_CREATE: u32 = 0x1000_0000;
    pub const IN_MASK_ADD: u32 = 0x2000_0000;
    pub const IN_ISDIR: u32 = 0x4000_0000;
    pub const IN_ONESHOT: u32 = 0x8000_0000;

    /// Events a directory's watch sees for its children (with their name).
    pub const IN_CHILD_EVENTS: u32 = IN_ACCESS | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_OPEN;
    /// Bits inotify_add_watch accepts.
    pub const IN_VALID_MASK: u32 = IN_ALL_EVENTS
        | IN_ONLYDIR
        | IN_DONT_FOLLOW
        | IN_EXCL_UNLINK
        | IN_MASK_CREATE
        | IN_MASK_ADD
        | IN_ISDIR
        | IN_ONESHOT;
}
