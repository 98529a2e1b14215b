//! The system call table: `Sysno` to handler, one module per family.
//! Numbers without a handler return ENOSYS and are logged once by name.
use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use syscalls::{Errno, Sysno, SYSNO_COUNT};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::task::Task;

mod creds;
mod event;
mod file;
mod fs;
mod mm;
mod mount;
mod mqueue;
mod namespace;
pub(crate) mod process;
mod signal;
mod table;
pub(crate) mod time;
mod xattr;

pub use table::{entries, Support};

/// Internal: a blocking call was interrupted by a signal; restarted after
/// it is handled when SA_RESTART (or no handler) says so, else EINTR.
pub const ERESTARTSYS: Errno = Errno(512);
/// Internal: interrupted; restarted only if no handler runs (poll, pause,
/// epoll_wait, absolute sleeps).
pub const ERESTARTNOHAND: Errno = Errno(514);
/// Internal: interrupted; if no handler runs, the guest calls
/// restart_syscall, which goes on from `Task::restart_block` (relative
/// sleeps, with the time left).
pub const ERESTART_RESTARTBLOCK: Errno = Errno(516);

/// A system call a signal interrupted, and how it may go on.
#[derive(Clone, Copy, Debug)]
pub struct Restart {
    pub nr: u64,
    /// ERESTARTSYS, ERESTARTNOHAND or ERESTART_RESTARTBLOCK.
    pub kind: Errno,
}

/// What a handler returns: the value for `rax`, or an error.
pub type SysResult = Result<u64, Errno>;

/// The raw arguments of a system call, with typed views.
#[derive(Clone, Copy)]
pub struct Args(pub [u64; 6]);

impl Args {
    pub fn u64(&self, i: usize) -> u64 {
        self.0[i]
    }
    pub fn i32(&self, i: usize) -> i32 {
        self.0[i] as i32
    }
    pub fn u32(&self, i: usize) -> u32 {
        self.0[i] as u32
    }
    pub fn i64(&self, i: usize) -> i64 {
        self.0[i] as i64
    }
    pub fn usize(&self, i: usize) -> usize {
        self.0[i] as usize
    }
}

/// A handler: reads its arguments and calls the family's function.
pub type Handler = fn(&mut Task, &Args) -> SysResult;

fn lookup(nr: u64) -> Option<&'static table::Entry> {
    static BY_NUMBER: OnceLock<Vec<Option<&'static table::Entry>>> = OnceLock::new();
    let v = BY_NUMBER.get_or_init(|| {
        let mut v = vec![None; SYSNO_COUNT];
        for e in entries() {
            v[e.sysno as usize] = Some(e);
        }
        v
    });
    usize::try_from(nr).ok().and_then(|i| v.get(i).copied().flatten())
}

fn log_unimplemented(nr: u64) {
    static SEEN: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    // Bounded: at most one entry per number a guest can name (u64), but only
    // numbers below 4096 are remembered individually.
    let key = nr.min(4096);
    if seen.insert(key) {
        let name = Sysno::name_of(nr).unwrap_or("unknown");
        tracing::warn!(target: "sentry::syscall", "unimplemented system call {name} ({nr}): ENOSYS");
    }
}

/// Serves the system call the task stopped at.
pub fn handle(t: &mut Task) {
    let nr = t.regs.syscall_nr();
    let args = Args(t.regs.syscall_args());
    let entry = lookup(nr);
    if t.kernel.strace && entry.is_some_and(|e| e.blocking) {
        tracing::info!(target: "sentry::syscall", "[{}] {} ...", t.tid, Sysno::name_of(nr).unwrap_or("?"));
    }
    let result = match entry {
        Some(e) => (e.handler)(t, &args),
        None => {
            log_unimplemented(nr);
            Err(Errno::ENOSYS)
        }
    };
    let ret = match result {
        Ok(v) => v,
        Err(e) if e == ERESTARTSYS || e == ERESTARTNOHAND || e == ERESTART_RESTARTBLOCK => {
            t.restart = Some(Restart { nr, kind: e });
            Errno::EINTR.as_return()
        }
        Err(e) => e.as_return(),
    };
    if t.kernel.strace {
        strace(t, nr, &args, entry, &result);
    }
    t.regs.set_return(ret);
}

fn strace(t: &Task, nr: u64, args: &Args, entry: Option<&table::Entry>, result: &SysResult) {
    use std::fmt::Write;
    let name = Sysno::name_of(nr).unwrap_or("unknown");
    let mut s = String::new();
    let fmt = entry.map_or(&[][..], |e| e.fmt);
    let shown = if entry.is_some() { fmt.len() } else { 6 };
    for i in 0..shown {
        if i > 0 {
            s.push_str(", ");
        }
        let v = args.0[i];
        match fmt.get(i) {
            Some(table::A::Str) => match t.mm.copy_in_cstr(v, 256) {
                Ok(p) => {
                    let _ = write!(s, "{:?}", String::from_utf8_lossy(&p));
                }
                Err(_) => {
                    let _ = write!(s, "{v:#x}");
                }
            },
            Some(table::A::Int) => {
                let _ = write!(s, "{}", v as i64);
            }
            _ => {
                let _ = write!(s, "{v:#x}");
            }
        }
    }
    let res = match result {
        Ok(v) => format!("{:#x}", v),
        Err(e) => format!("-1 {}", e.name()),
    };
    tracing::info!(target: "sentry::syscall", "[{}] {}({}) = {}", t.tid, name, s, res);
}

impl Task {
    /// Reads a `T` from guest memory.
    pub fn read_obj<T: FromBytes + IntoBytes>(&self, addr: u64) -> Result<T, Errno> {
        let mut v = T::new_zeroed();
        self.mm.copy_in(addr, v.as_mut_bytes())?;
        Ok(v)
    }

    /// Writes a `T` to guest memory.
    pub fn write_obj<T: IntoBytes + Immutable>(&self, addr: u64, v: &T) -> Result<(), Errno> {
        self.mm.copy_out(addr, v.as_bytes())
    }

    /// Reads a path argument (EFAULT for a bad pointer, ENAMETOOLONG past
    /// PATH_MAX).
    pub fn read_path(&self, addr: u64) -> Result<Vec<u8>, Errno> {
        self.mm.copy_in_cstr(addr, crate::vfs::PATH_MAX - 1)
    }
}
