//! The ptrace platform: each address space is a stub process traced with
//! `PTRACE_SYSEMU`, so its system calls stop before they run and the sentry
//! serves them instead.
//!
//! A tracee can only be driven by the thread that traces it, so every task
//! thread has its own stub thread in the address space it runs in (DESIGN.md
//! §4): threads of one guest process are threads of one stub process, and
//! the host kernel keeps their view of memory coherent.
//!
//! Stubs are forked by a small template process the sentry starts once, not
//! by the sentry itself: forking a process that has thousands of threads and
//! mappings is slow, and a stub forked by a task thread would die with that
//! thread (PDEATHSIG follows the creating thread).
use std::any::Any;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::{AddressSpace, Context, Error, Event, FaultInfo, NewThread, Platform, Prot, Registers, SignalInfo};

mod stub;
mod systrap;

pub use stub::{STUB_ADDR, TASK_SIZE};
use systrap::{Slot, TrapMemory};

/// Reserves the stub code page at its fixed address. Call it first thing in
/// the sentry, before large mappings could land on that address.
pub fn prepare() -> Result<(), Error> {
    stub::install().map(drop)
}

/// The ptrace platform.
pub struct PtracePlatform {
    /// The request socket of the template process that forks stubs.
    template: Mutex<UnixStream>,
    template_pid: Pid,
    /// Seccomp-trap mode (`--platform=systrap`): the stub threads' contexts.
    trap: Option<Arc<TrapMemory>>,
}

impl PtracePlatform {
    /// A platform whose address spaces map from `memfd`, the sentry's memory
    /// file (which must stay open as long as the platform lives). Forks the
    /// stub template from the calling thread, which must outlive the
    /// platform (the template dies with it).
    ///
    /// With `systrap`, guest threads run untraced under a seccomp filter and
    /// trap into the sentry through a signal handler (see systrap.rs).
    pub fn new(memfd: RawFd, systrap: bool) -> Result<PtracePlatform, Error> {
        let code = stub::install()?;
        let trap = if systrap { Some(Arc::new(TrapMemory::new()?)) } else { None };
        let ctxfd = trap.as_ref().map_or(-1, |t| t.raw_fd());
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| Error::Host { op: "socketpair", pid: 0, source: io_errno(&e) })?;
        let parent = nix::unistd::getpid().as_raw();
        let theirs_fd = std::os::fd::AsRawFd::as_raw_fd(&theirs);
        // SAFETY: the child only makes async-signal-safe raw system calls
        // (prctl, setsid, signal, sigprocmask, fcntl, dup2, close_range) and
        // then jumps into the stub page, never returning into Rust code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(Error::Host { op: "fork", pid: 0, source: nix::Error::last() });
        }
        if pid == 0 {
            // SAFETY: we are the freshly forked child; see `become_template`.
            unsafe { become_template(parent, memfd, ctxfd, theirs_fd, code.template) }
        }
        drop(theirs);
        tracing::debug!(target: "platform::ptrace", pid, "stub template started");
        Ok(PtracePlatform { template: Mutex::new(ours), template_pid: Pid::from_raw(pid), trap })
    }

    /// Asks the template for a new stub process; returns its pid.
    fn fork_stub(&self) -> Result<Pid, Error> {
        let mut sock = self.template.lock().unwrap_or_else(|e| e.into_inner());
        let tpid = self.template_pid.as_raw();
        let failed = |op, e: std::io::Error| Error::Host { op, pid: tpid, source: io_errno(&e) };
        sock.write_all(&[1]).map_err(|e| failed("asking the stub template to fork", e))?;
        let mut buf = [0u8; 8];
        sock.read_exact(&mut buf).map_err(|e| failed("reading the stub template's answer", e))?;
        let pid = i64::from_le_bytes(buf);
        if pid <= 0 {
            let source = nix::Error::from_raw(i32::try_from(-pid).unwrap_or(libc::EAGAIN));
            return Err(Error::Host { op: "fork (in the stub template)", pid: tpid, source });
        }
        Ok(Pid::from_raw(pid as i32))
    }
}

impl Drop for PtracePlatform {
    fn drop(&mut self) {
        // Closing the socket ends the template; reap it.
        let _ = nix::sys::signal::kill(self.template_pid, Signal::SIGKILL);
        let _ = waitpid(self.template_pid, None);
    }
}

fn io_errno(e: &std::io::Error) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Platform for PtracePlatform {
    fn new_address_space(&self) -> Result<Box<dyn AddressSpace>, Error> {
        let pid = self.fork_stub()?;
        let pidfd = match &self.trap {
            // SAFETY: pidfd_open with integer arguments.
            Some(_) => match unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) } {
                fd if fd >= 0 => {
                    // SAFETY: a fresh fd we own.
                    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
                }
                _ => {
                    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                    return Err(Error::Host { op: "pidfd_open", pid: pid.as_raw(), source: nix::Error::last() });
                }
            },
            None => None,
        };
        let process = Arc::new(StubProcess { pid, pidfd, trap: self.trap.clone() });
        let attached = StubThread::attach(process.clone(), pid).and_then(|mut t| {
            // The attach may have stopped the new stub anywhere on its way
            // from fork to its wait loop: finish that way here.
            t.inject("prctl", libc::SYS_prctl, [libc::PR_SET_PDEATHSIG as u64, libc::SIGKILL as u64, 0, 0, 0, 0])?;
            match t.inject("close", libc::SYS_close, [TEMPLATE_SOCK as u64, 0, 0, 0, 0, 0]) {
                Ok(_) | Err(Error::Injected { source: nix::Error::EBADF, .. }) => {}
                Err(e) => return Err(e),
            }
            t.inject("munmap", libc::SYS_munmap, [STUB_ADDR + stub::STUB_LEN, stub::STUB_LEN, 0, 0, 0, 0])?;
            if t.process.trap.is_some() {
                t.enter_trap(true)?;
            }
            Ok(t)
        });
        match attached {
            Ok(t) => Ok(Box::new(t)),
            Err(e) => {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                Err(e)
            }
        }
    }

    fn new_context(&self) -> Box<dyn Context> {
        Box::new(PtraceContext)
    }

    fn max_user_address(&self) -> u64 {
        STUB_ADDR
    }
}

/// The fd number of the memory file inside every stub.
const STUB_MEMFD: i32 = 0;
/// The fd number of the request socket inside the template.
const TEMPLATE_SOCK: i32 = 1;

/// A stub process: one guest address space, shared by its stub threads.
struct StubProcess {
    pid: Pid,
    /// Trap mode: tells when the process is gone (its threads are not
    /// traced while guest code runs, so no waitpid reports it).
    pidfd: Option<OwnedFd>,
    trap: Option<Arc<TrapMemory>>,
}

impl StubProcess {
    /// False once the process has exited (always true in ptrace mode).
    fn alive(&self) -> bool {
        self.pidfd.is_none() || !self.wait_gone(std::time::Duration::ZERO)
    }

    /// Waits up to `timeout` for the process to be gone (true at once in
    /// ptrace mode, where the tracer's waitpid reports it).
    fn wait_gone(&self, timeout: std::time::Duration) -> bool {
        let Some(fd) = &self.pidfd else { return true };
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: poll of one pollfd we own; the pidfd is readable once the
        // process has exited.
        unsafe { libc::poll(&mut p, 1, ms) == 1 }
    }
}

/// Trap mode: where a stub thread is while its task thread is in the
/// sentry.
// One per thread, inline: boxing the registers would allocate on every
// attach for injected calls.
#[allow(clippy::large_enum_variant)]
enum Mode {
    /// In its signal handler, its frame holding the guest's registers;
    /// with `Some`, stopped under ptrace for injected calls (the handler's
    /// own registers kept to restore).
    Parked(Option<Registers>),
    /// Stopped under ptrace in guest code (see `StubThread::tick`): the
    /// registers are in the thread, not in a frame.
    Interrupted,
}

/// A stub thread's trap-mode state.
struct TrapThread {
    slot: Slot,
    mode: Mode,
    /// Ticks in a row that found the thread inside the stub page.
    stuck: u32,
}

/// Ticks in a row a thread may spend in the stub page (where it passes in
/// microseconds) while guest code should run, before it counts as broken: a
/// guest that forged a frame's alternate stack makes its handler spin on
/// guest memory.
const MAX_STUCK_TICKS: u32 = 20;

/// One stub thread, traced by the host thread that attached it: a task's
/// view of its address space.
pub struct StubThread {
    process: Arc<StubProcess>,
    tid: Pid,
    /// Registers of the thread at its first stop: valid segment selectors
    /// and flags to start every injected call from.
    template: Registers,
    code: stub::StubCode,
    /// Trap mode (None: ptrace mode, or a trap-mode thread never entered).
    trap: Option<TrapThread>,
}

/// A stub thread cloned for a new task, waiting in `pause` to be attached
/// by the task's host thread.
struct PendingThread {
    process: Option<Arc<StubProcess>>,
    tid: Pid,
}

impl StubThread {
    /// Attaches the calling thread to stub thread `tid` of `process`, which
    /// waits in `pause`, and stops it.
    fn attach(process: Arc<StubProcess>, tid: Pid) -> Result<StubThread, Error> {
        let code = stub::install()?;
        // A signal that reaches a starting stub first is dropped: the
        // sentry delivers signals.
        let template = seize_stop(tid, process.trap.is_some(), SignalsFirst::Drop)?;
        let mut t = StubThread { process, tid, template, code, trap: None };
        // The thread stopped inside pause(): run one call with no syscall
        // number set so the kernel's restart of pause is dropped, and check
        // that the stub answers.
        t.inject("getpid", libc::SYS_getpid, [0; 6])?;
        if t.process.trap.is_none() {
            pin_with_tracer(tid);
        }
        tracing::debug!(target: "platform::ptrace", pid = t.process.pid.as_raw(), tid = tid.as_raw(), "stub thread attached");
        Ok(t)
    }

    /// The host thread id of the stub thread.
    pub fn tid(&self) -> i32 {
        self.tid.as_raw()
    }

    /// Runs one system call inside the stub and returns its raw result.
    fn inject(&mut self, call: &'static str, nr: i64, args: [u64; 6]) -> Result<u64, Error> {
        self.inject_at(self.code.syscall, call, nr, args)
    }

    /// Runs one system call at `rip` (a `syscall` followed by an `int3` on
    /// the caller's path).
    fn inject_at(&mut self, rip: u64, call: &'static str, nr: i64, args: [u64; 6]) -> Result<u64, Error> {
        self.ensure_stopped()?;
        let mut regs = self.template;
        let r = &mut regs.0;
        r.rip = rip;
        r.rax = nr as u64;
        r.orig_rax = u64::MAX;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9] = args;
        let pid = self.tid;
        let host = |op, source| Error::Host { op, pid: pid.as_raw(), source };
        ptrace::setregs(pid, regs.0).map_err(|e| host("setregs", e))?;
        ptrace::cont(pid, None).map_err(|e| host("cont", e))?;
        for stops in 0.. {
            if stops > MAX_STOPS {
                return Err(Error::Stub {
                    pid: pid.as_raw(),
                    what: format!("stopped {stops} times in injected {call}"),
                });
            }
            match wait(pid)? {
                WaitStatus::Stopped(_, Signal::SIGTRAP) => break,
                WaitStatus::Stopped(_, sig) => {
                    // A signal raced with the injected call (e.g. SIGINT from
                    // a terminal): drop it, the sentry owns signal delivery.
                    tracing::debug!(target: "platform::ptrace", ?sig, "signal during injected call dropped");
                    ptrace::cont(pid, None).map_err(|e| host("cont", e))?;
                }
                WaitStatus::PtraceEvent(_, _, ev) => {
                    tracing::trace!(target: "platform::ptrace", tid = pid.as_raw(), call, ev, "event during injected call");
                    ptrace::cont(pid, None).map_err(|e| host("cont", e))?;
                }
                other => {
                    return Err(Error::Stub { pid: pid.as_raw(), what: format!("died in injected {call}: {other:?}") })
                }
            }
        }
        let out = ptrace::getregs(pid).map_err(|e| host("getregs", e))?;
        let ret = out.rax as i64;
        if (-4095..0).contains(&ret) {
            return Err(Error::Injected { call, pid: pid.as_raw(), source: nix::Error::from_raw(-ret as i32) });
        }
        Ok(out.rax)
    }

    /// Ends this stub thread, leaving the others of its process running.
    fn exit_thread(&mut self) -> Result<(), Error> {
        let tid = self.tid;
        let host = |op, source| Error::Host { op, pid: tid.as_raw(), source };
        // Without EXITKILL: if this thread leads the process it stays a
        // zombie until the others exit, and a tracer exiting meanwhile must
        // not kill the process through it.
        let opts = trace_options(self.process.trap.is_some()) - ptrace::Options::PTRACE_O_EXITKILL;
        ptrace::setoptions(tid, opts).map_err(|e| host("setoptions", e))?;
        let mut regs = self.template;
        regs.0.rip = self.code.syscall;
        regs.0.rax = libc::SYS_exit as u64;
        regs.0.orig_rax = u64::MAX;
        regs.0.rdi = 0;
        ptrace::setregs(tid, regs.0).map_err(|e| host("setregs", e))?;
        ptrace::cont(tid, None).map_err(|e| host("cont", e))?;
        if tid == self.process.pid {
            if self.process.trap.is_some() {
                // The filter stops the call for us first.
                if let WaitStatus::PtraceEvent(..) = wait(tid)? {
                    ptrace::cont(tid, None).map_err(|e| host("cont", e))?;
                }
            }
            // A leader's exit is reported only when the whole process ends.
            return Ok(());
        }
        for _ in 0..MAX_STOPS {
            match wait(tid)? {
                WaitStatus::Exited(..) | WaitStatus::Signaled(..) => return Ok(()),
                _ => ptrace::cont(tid, None).map_err(|e| host("cont", e))?,
            }
        }
        Err(Error::Stub { pid: tid.as_raw(), what: "does not exit".into() })
    }
}

/// Trap mode.
impl StubThread {
    /// Stops a parked thread under ptrace so calls can be injected; a
    /// no-op when it is stopped already (or in ptrace mode).
    fn ensure_stopped(&mut self) -> Result<(), Error> {
        let tid = self.tid;
        let Some(trap) = &mut self.trap else { return Ok(()) };
        if let Mode::Parked(None) = trap.mode {
            let regs = seize_stop(tid, true, SignalsFirst::Deliver)?;
            trap.mode = Mode::Parked(Some(regs));
        }
        Ok(())
    }

    /// Puts a freshly attached thread into trap mode: maps its context
    /// slot, sets its alternate stack (and, for a new process, the signal
    /// handlers, no_new_privs and the seccomp filter), then detaches it into
    /// the handler, where it waits for its first guest registers.
    fn enter_trap(&mut self, new_process: bool) -> Result<(), Error> {
        let mem = self.process.trap.clone().ok_or_else(|| Error::Stub { pid: 0, what: "not in trap mode".into() })?;
        let slot = mem.alloc()?;
        // The calls' arguments, written into the slot's scratch area.
        let (addr, offset) = (slot.stub_addr(), slot.file_offset());
        let act = slot.put_sigaction(&self.code);
        let prog = slot.put_filter(&self.code);
        let ss = slot.put_altstack();
        let empty = slot.empty_sigset();
        // Registered at once (attached, no frame yet): if a step below fails,
        // Drop unmaps the slot before it can serve another process.
        self.trap = Some(TrapThread { slot, mode: Mode::Interrupted, stuck: 0 });
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let args = [addr, systrap::SLOT_LEN, rw, flags, systrap::STUB_CTXFD as u64, offset];
        if self.inject("mmap", libc::SYS_mmap, args)? != addr {
            return Err(Error::Stub { pid: self.tid(), what: "context slot mapped elsewhere".into() });
        }
        if new_process {
            for sig in
                [libc::SIGSYS, libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGTRAP, libc::SIGURG]
            {
                self.inject("rt_sigaction", libc::SYS_rt_sigaction, [sig as u64, act, 0, 8, 0, 0])?;
            }
            self.inject("prctl", libc::SYS_prctl, [libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0, 0])?;
            self.inject("seccomp", libc::SYS_seccomp, [libc::SECCOMP_SET_MODE_FILTER as u64, 0, prog, 0, 0, 0])?;
        }
        self.inject("sigaltstack", libc::SYS_sigaltstack, [ss, 0, 0, 0, 0, 0])?;
        // A thread cloned while its parent sat in the handler inherited a
        // mask blocking everything, SIGSYS included.
        self.inject("rt_sigprocmask", libc::SYS_rt_sigprocmask, [libc::SIG_SETMASK as u64, empty, 0, 8, 0, 0])?;
        let tid = self.tid;
        let host = |op, source| Error::Host { op, pid: tid.as_raw(), source };
        let mut regs = self.template;
        regs.0.rip = self.code.trap_first;
        regs.0.rax = libc::SYS_getpid as u64;
        regs.0.orig_rax = u64::MAX;
        ptrace::setregs(tid, regs.0).map_err(|e| host("setregs", e))?;
        ptrace::detach(tid, None).map_err(|e| host("detach", e))?;
        let Some(trap) = &mut self.trap else { return Err(Error::Stub { pid: 0, what: "not in trap mode".into() }) };
        trap.mode = Mode::Parked(None);
        for _ in 0..50 {
            if trap.slot.wait_event() {
                let (signo, ..) = trap.slot.event();
                if signo != libc::SIGSYS {
                    return Err(Error::Stub {
                        pid: tid.as_raw(),
                        what: format!("entered trap mode with signal {signo}"),
                    });
                }
                return Ok(());
            }
            if !self.process.alive() {
                break;
            }
        }
        Err(Error::Stub { pid: tid.as_raw(), what: "did not enter trap mode".into() })
    }

    /// Unmaps a trap-mode thread's slot from its process before the thread
    /// ends.
    fn unmap_slot(&mut self) -> Result<(), Error> {
        let Some(addr) = self.trap.as_ref().map(|t| t.slot.stub_addr()) else { return Ok(()) };
        self.inject("munmap", libc::SYS_munmap, [addr, systrap::SLOT_LEN, 0, 0, 0, 0]).map(drop)
    }

    /// Runs guest code with `regs` until the next event.
    fn trap_switch(&mut self, regs: &mut Registers) -> Result<Event, Error> {
        let tid = self.tid;
        let host = |op, source| Error::Host { op, pid: tid.as_raw(), source };
        let Some(trap) = &mut self.trap else { return Err(Error::Stub { pid: 0, what: "not in trap mode".into() }) };
        match std::mem::replace(&mut trap.mode, Mode::Parked(None)) {
            Mode::Interrupted => {
                trap.mode = Mode::Interrupted;
                self.resume_interrupted(regs)?;
            }
            Mode::Parked(saved) => {
                trap.slot.write_regs(regs)?;
                if let Some(handler) = saved {
                    ptrace::setregs(tid, handler.0).map_err(|e| host("setregs", e))?;
                    ptrace::detach(tid, None).map_err(|e| host("detach", e))?;
                }
                trap.slot.resume();
            }
        }
        loop {
            let posted = self.trap.as_ref().is_some_and(|t| t.slot.wait_event());
            if posted {
                break;
            }
            if let Some(event) = self.tick(regs)? {
                return Ok(event);
            }
        }
        let trap = self.trap.as_mut().expect("trap mode");
        trap.stuck = 0;
        let slot = &trap.slot;
        let (signo, code, addr) = slot.event();
        let got = slot.read_regs(&self.template).map_err(|e| with_pid(e, tid))?;
        tracing::trace!(target: "platform::ptrace", tid = tid.as_raw(), signo, code, rip = format_args!("{:#x}", got.0.rip), nr = got.0.rax, "trap");
        Ok(match signo {
            libc::SIGSYS if code == SYS_SECCOMP => {
                *regs = Slot::syscall_regs(got);
                Event::Syscall
            }
            libc::SIGSEGV | libc::SIGBUS if code >= SI_KERNEL_MIN => {
                *regs = got;
                Event::Fault(FaultInfo { addr, signo, code })
            }
            _ => {
                *regs = got;
                Event::Signal(SignalInfo { signo, code, addr })
            }
        })
    }

    /// Lets a thread stopped in guest code (`Mode::Interrupted`) run on with
    /// `regs`. A guest that forged an rt_sigreturn may have moved or
    /// disabled the host alternate stack the handler needs, or blocked host
    /// signals (SIGSYS would then kill the stub at its next call): both are
    /// put back first.
    fn resume_interrupted(&mut self, regs: &Registers) -> Result<(), Error> {
        let tid = self.tid;
        let host = |op, source| Error::Host { op, pid: tid.as_raw(), source };
        let ss = self.trap.as_ref().map(|t| t.slot.put_altstack()).unwrap_or_default();
        self.inject("sigaltstack", libc::SYS_sigaltstack, [ss, 0, 0, 0, 0, 0])?;
        ptrace::setregs(tid, regs.0).map_err(|e| host("setregs", e))?;
        let empty: u64 = 0;
        // SAFETY: PTRACE_SETSIGMASK reads 8 bytes from `empty`, which
        // outlives the call.
        let rc =
            unsafe { libc::ptrace(PTRACE_SETSIGMASK, tid.as_raw(), std::mem::size_of::<u64>(), &empty as *const u64) };
        if rc < 0 {
            return Err(host("setsigmask", nix::Error::last()));
        }
        ptrace::detach(tid, None).map_err(|e| host("detach", e))?;
        if let Some(trap) = &mut self.trap {
            trap.mode = Mode::Parked(None);
        }
        Ok(())
    }

    /// Called when guest code has run a tick without an event: reports the
    /// stub's death, or stops the thread under ptrace and, if it is in guest
    /// code, takes it out as an interruption. A guest that blocked the
    /// sentry's interrupt signal (a forged rt_sigreturn can) is still
    /// stopped this way, so no guest outruns a kill.
    fn tick(&mut self, regs: &mut Registers) -> Result<Option<Event>, Error> {
        if !self.process.alive() {
            return Ok(Some(Event::Died(libc::SIGKILL)));
        }
        let tid = self.tid;
        let got = match seize_stop(tid, true, SignalsFirst::Deliver) {
            Ok(r) => r,
            Err(_) if !self.process.alive() => return Ok(Some(Event::Died(libc::SIGKILL))),
            Err(e) => return Err(e),
        };
        let trap = self.trap.as_mut().expect("trap mode");
        let in_stub = (STUB_ADDR..STUB_ADDR + stub::STUB_LEN).contains(&got.0.rip);
        let posted = trap.slot.posted();
        tracing::trace!(target: "platform::ptrace", tid = tid.as_raw(), rip = format_args!("{:#x}", got.0.rip), posted, "tick");
        if posted || in_stub {
            ptrace::detach(tid, None).map_err(|e| Error::Host { op: "detach", pid: tid.as_raw(), source: e })?;
            trap.stuck = if posted { 0 } else { trap.stuck + 1 };
            if trap.stuck > MAX_STUCK_TICKS {
                return Err(Error::Stub { pid: tid.as_raw(), what: "does not leave its signal handler".into() });
            }
            return Ok(None);
        }
        trap.stuck = 0;
        trap.mode = Mode::Interrupted;
        *regs = Registers(got.0);
        Ok(Some(Event::Signal(SignalInfo { signo: libc::SIGURG, code: libc::SI_TKILL, addr: 0 })))
    }
}

/// Stops of one injected call past which the stub counts as broken (a
/// signal that keeps coming back, a fault that repeats).
const MAX_STOPS: u32 = 1000;

const PTRACE_SETSIGMASK: libc::c_uint = 0x420b;

/// `si_code` of a seccomp SIGSYS.
const SYS_SECCOMP: i32 = 1;

fn with_pid(e: Error, tid: Pid) -> Error {
    match e {
        Error::Stub { what, .. } => Error::Stub { pid: tid.as_raw(), what },
        e => e,
    }
}

/// What `seize_stop` does with a signal that stops the thread before the
/// interrupt does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SignalsFirst {
    /// Drop it (a stub that is still starting).
    Drop,
    /// Let it go on to the thread's handler (trap mode: a guest system call
    /// or fault that raced with the attach).
    Deliver,
}

/// The ptrace options of a tracer of stub threads. In trap mode injected
/// calls pass the filter as RET_TRACE, which without TRACESECCOMP fails
/// them with ENOSYS.
fn trace_options(trap: bool) -> ptrace::Options {
    let opts = ptrace::Options::PTRACE_O_EXITKILL | ptrace::Options::PTRACE_O_TRACESYSGOOD;
    if trap {
        opts | ptrace::Options::PTRACE_O_TRACESECCOMP
    } else {
        opts
    }
}

/// Attaches the calling thread to stub thread `tid` and stops it; returns
/// its registers.
fn seize_stop(tid: Pid, trap: bool, signals: SignalsFirst) -> Result<Registers, Error> {
    let host = |op, source| Error::Host { op, pid: tid.as_raw(), source };
    ptrace::seize(tid, trace_options(trap)).map_err(|e| host("seize", e))?;
    ptrace::interrupt(tid).map_err(|e| host("interrupt", e))?;
    for _ in 0..MAX_STOPS {
        match wait(tid)? {
            WaitStatus::PtraceEvent(..) => {
                return Ok(Registers(ptrace::getregs(tid).map_err(|e| host("getregs", e))?));
            }
            WaitStatus::Stopped(_, sig) => {
                tracing::trace!(target: "platform::ptrace", tid = tid.as_raw(), ?sig, "signal before the attach's stop");
                let sig = (signals == SignalsFirst::Deliver).then_some(sig);
                ptrace::cont(tid, sig).map_err(|e| host("cont", e))?;
                ptrace::interrupt(tid).map_err(|e| host("interrupt", e))?;
            }
            other => return Err(Error::Stub { pid: tid.as_raw(), what: format!("died while attaching: {other:?}") }),
        }
    }
    Err(Error::Stub { pid: tid.as_raw(), what: "keeps stopping on signals while attaching".into() })
}

impl Drop for StubThread {
    fn drop(&mut self) {
        // The last thread takes the process with it; others just end (in
        // trap mode, after unmapping their slot, which may then serve a
        // thread of another process).
        if Arc::strong_count(&self.process) > 1 && self.unmap_slot().is_ok() && self.exit_thread().is_ok() {
            return;
        }
        let _ = nix::sys::signal::kill(self.process.pid, Signal::SIGKILL);
        let _ = waitpid(self.tid, Some(WaitPidFlag::__WALL));
        if let Some(trap) = self.trap.take() {
            if !self.process.wait_gone(std::time::Duration::from_secs(5)) {
                // Still mapped somewhere: never hand the slot out again.
                tracing::warn!(target: "platform::ptrace", pid = self.process.pid.as_raw(), "stub did not die; its context slot is retired");
                std::mem::forget(trap.slot);
            }
        }
    }
}

impl NewThread for PendingThread {
    fn attach(mut self: Box<Self>) -> Result<Box<dyn AddressSpace>, Error> {
        let process = self.process.take().ok_or_else(|| Error::Stub { pid: 0, what: "attached twice".into() })?;
        let mut t = StubThread::attach(process, self.tid)?;
        if t.process.trap.is_some() {
            t.enter_trap(false)?;
        }
        Ok(Box::new(t))
    }
}

impl Drop for PendingThread {
    fn drop(&mut self) {
        // Never attached: attach here only to end it.
        if let Some(process) = self.process.take() {
            if let Err(e) = StubThread::attach(process, self.tid) {
                tracing::warn!(target: "platform::ptrace", tid = self.tid.as_raw(), "ending an unused stub thread: {e}");
            }
        }
    }
}

/// Pins the stub and its tracer (this thread) to the CPU the tracer runs
/// on. Every system call is a round trip between the two; on one CPU it is a
/// plain context switch instead of a cross-CPU wake-up, about three times
/// faster on the 2-vCPU machines we measure on.
fn pin_with_tracer(stub: Pid) {
    use nix::sched::{sched_getcpu, sched_setaffinity, CpuSet};
    let Ok(cpu) = sched_getcpu() else { return };
    let mut set = CpuSet::new();
    if set.set(cpu).is_err() {
        return;
    }
    for pid in [Pid::from_raw(0), stub] {
        if let Err(e) = sched_setaffinity(pid, &set) {
            tracing::debug!(target: "platform::ptrace", "pinning {pid} to CPU {cpu}: {e}");
        }
    }
}

/// Turns the freshly forked child into the stub template. Never returns.
///
/// # Safety
/// Must be called only in the child right after `fork`, with the stub page
/// installed at `entry`.
unsafe fn become_template(parent: i32, memfd: RawFd, ctxfd: RawFd, sock: RawFd, entry: u64) -> ! {
    // Each call below is a raw system call on plain integers in the
    // single-threaded child; none touches memory the child does not own.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    // SAFETY: getppid has no arguments.
    if unsafe { libc::getppid() } != parent {
        // SAFETY: _exit never returns and runs no destructors.
        unsafe { libc::_exit(1) };
    }
    // Keep terminal-generated signals away: the sentry delivers signals.
    // SAFETY: setsid has no arguments.
    unsafe { libc::setsid() };
    // SAFETY: see `unregister_rseq`; we have not unmapped anything yet.
    unsafe { unregister_rseq() };
    for sig in 1..=64 {
        // SAFETY: resetting a disposition to SIG_DFL installs no handler.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // Stubs are reaped by the kernel once their tracer has seen them exit.
    // SAFETY: SIG_IGN installs no handler.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    // SAFETY: an all-zero sigset_t is the empty set.
    let empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `empty` is a valid sigset that outlives the call.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) };
    // Copy both fds out of the way first, then into place.
    // SAFETY: fcntl on an integer fd.
    let m = unsafe { libc::fcntl(memfd, libc::F_DUPFD, 16) };
    // SAFETY: as above.
    let s = unsafe { libc::fcntl(sock, libc::F_DUPFD, 16) };
    // SAFETY: dup2 on integer fds.
    // SAFETY: as above.
    let c = if ctxfd >= 0 { unsafe { libc::fcntl(ctxfd, libc::F_DUPFD, 16) } } else { -1 };
    // SAFETY: dup2 on integer fds.
    let m_ok = m >= 0 && unsafe { libc::dup2(m, STUB_MEMFD) } == STUB_MEMFD;
    // SAFETY: as above.
    let s_ok = s >= 0 && unsafe { libc::dup2(s, TEMPLATE_SOCK) } == TEMPLATE_SOCK;
    // SAFETY: as above.
    let c_ok = ctxfd < 0 || (c >= 0 && unsafe { libc::dup2(c, systrap::STUB_CTXFD) } == systrap::STUB_CTXFD);
    if !m_ok || !s_ok || !c_ok {
        // SAFETY: _exit never returns and runs no destructors.
        unsafe { libc::_exit(3) };
    }
    let keep = if ctxfd >= 0 { systrap::STUB_CTXFD } else { TEMPLATE_SOCK };
    // SAFETY: close_range on integer fds; the child owns its fd table.
    unsafe { libc::syscall(libc::SYS_close_range, keep as u32 + 1, u32::MAX, 0u32) };
    // SAFETY: `entry` is the stub code page, mapped read+exec in this child
    // (inherited from the sentry); it never returns into Rust code.
    unsafe {
        std::arch::asm!(
            "jmp {entry}",
            entry = in(reg) entry,
            in("r12") STUB_ADDR,
            in("r13") TASK_SIZE - (STUB_ADDR + stub::STUB_LEN),
            options(noreturn)
        )
    }
}

extern "C" {
    /// glibc's offset of the thread's rseq area from the thread pointer.
    static __rseq_offset: isize;
    /// glibc's size of the registered rseq area (0: not registered).
    static __rseq_size: u32;
}

/// The signature glibc registers rseq areas with on x86.
const RSEQ_SIG: u32 = 0x5305_3053;
const RSEQ_FLAG_UNREGISTER: u32 = 1;

/// Drops the rseq registration a forked child inherits from its parent's
/// thread: once the stub unmaps the parent's memory, the kernel's next
/// update of the area would fail and kill the stub with SIGSEGV.
///
/// # Safety
/// Only in the forked child, before it unmaps anything.
unsafe fn unregister_rseq() {
    // SAFETY: a plain integer glibc initialises at start-up.
    let size = unsafe { __rseq_size };
    if size == 0 {
        return;
    }
    // SAFETY: as above.
    let offset = unsafe { __rseq_offset };
    let tp: u64;
    // SAFETY: on x86-64 glibc, fs:0 holds the thread pointer itself.
    unsafe { std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly)) };
    let area = tp.wrapping_add_signed(offset as i64);
    // The registered length is glibc's area size rounded up; try the sizes
    // glibc versions have used until the kernel accepts one.
    for len in [size, 32, 64] {
        // SAFETY: unregistering only drops the kernel's reference to `area`.
        if unsafe { libc::syscall(libc::SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) } == 0 {
            return;
        }
    }
}

fn wait(pid: Pid) -> Result<WaitStatus, Error> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(s) => return Ok(s),
            Err(nix::Error::EINTR) => continue,
            Err(source) => return Err(Error::Host { op: "waitpid", pid: pid.as_raw(), source }),
        }
    }
}

fn prot_bits(prot: Prot) -> u64 {
    u64::from((prot & (Prot::READ | Prot::WRITE | Prot::EXEC)).bits())
}

impl AddressSpace for StubThread {
    fn map(&mut self, addr: u64, len: u64, offset: u64, prot: Prot, populate: bool) -> Result<(), Error> {
        let mut flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        if populate {
            flags |= libc::MAP_POPULATE as u64;
        }
        let got =
            self.inject("mmap", libc::SYS_mmap, [addr, len, prot_bits(prot), flags, STUB_MEMFD as u64, offset])?;
        if got != addr {
            return Err(Error::Stub { pid: self.tid(), what: format!("mmap at {addr:#x} landed at {got:#x}") });
        }
        Ok(())
    }

    fn unmap(&mut self, addr: u64, len: u64) -> Result<(), Error> {
        self.inject("munmap", libc::SYS_munmap, [addr, len, 0, 0, 0, 0]).map(drop)
    }

    fn protect(&mut self, addr: u64, len: u64, prot: Prot) -> Result<(), Error> {
        self.inject("mprotect", libc::SYS_mprotect, [addr, len, prot_bits(prot), 0, 0, 0]).map(drop)
    }

    fn new_thread(&mut self) -> Result<Box<dyn NewThread>, Error> {
        let flags = libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM;
        let tid = self.inject_at(self.code.clone, "clone", libc::SYS_clone, [flags as u64, 0, 0, 0, 0, 0])?;
        Ok(Box::new(PendingThread { process: Some(self.process.clone()), tid: Pid::from_raw(tid as i32) }))
    }

    fn host_ids(&self) -> (i32, i32) {
        (self.process.pid.as_raw(), self.tid.as_raw())
    }

    fn cpu_clock(&self) -> Option<i32> {
        // MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
        Some((!self.process.pid.as_raw() << 3) | 2)
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

const NT_X86_XSTATE: libc::c_int = 0x202;

fn stub_of(space: &mut dyn AddressSpace) -> Result<&mut StubThread, Error> {
    space
        .as_any_mut()
        .downcast_mut::<StubThread>()
        .ok_or_else(|| Error::Stub { pid: 0, what: "address space of another platform".into() })
}

/// PTRACE_GETREGSET / SETREGSET of the XSAVE area.
fn xstate(pid: Pid, buf: &mut [u8], set: bool) -> Result<(), Error> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let req = if set { libc::PTRACE_SETREGSET } else { libc::PTRACE_GETREGSET };
    // SAFETY: `iov` describes `buf`, which outlives the call; the kernel
    // reads or writes at most `iov_len` bytes of it.
    let r = unsafe { libc::ptrace(req, pid.as_raw(), NT_X86_XSTATE as usize, &mut iov as *mut libc::iovec) };
    if r < 0 {
        let op = if set { "setregset" } else { "getregset" };
        return Err(Error::Host { op, pid: pid.as_raw(), source: nix::Error::last() });
    }
    Ok(())
}

/// A guest thread's context on the ptrace platform: the thread's registers
/// are loaded into the stub before it runs and read back when it stops.
pub struct PtraceContext;

/// `si_code` values at or below this were sent by a process, not raised by
/// the kernel for a fault.
const SI_KERNEL_MIN: i32 = 1;

impl Context for PtraceContext {
    fn switch(&mut self, space: &mut dyn AddressSpace, regs: &mut Registers) -> Result<Event, Error> {
        let stub = stub_of(space)?;
        if stub.trap.is_some() {
            return stub.trap_switch(regs);
        }
        let pid = stub.tid;
        let host = |op, source| Error::Host { op, pid: pid.as_raw(), source };
        ptrace::setregs(pid, regs.0).map_err(|e| host("setregs", e))?;
        ptrace::sysemu(pid, None).map_err(|e| host("sysemu", e))?;
        let status = wait(pid)?;
        let event = match status {
            WaitStatus::PtraceSyscall(_) => Event::Syscall,
            WaitStatus::Stopped(_, sig) => {
                let info = ptrace::getsiginfo(pid).map_err(|e| host("getsiginfo", e))?;
                // SAFETY: si_addr is valid to read for any siginfo; for
                // signals that do not set it the value is merely meaningless.
                let addr = unsafe { info.si_addr() } as u64;
                let signo = sig as i32;
                if matches!(sig, Signal::SIGSEGV | Signal::SIGBUS) && info.si_code >= SI_KERNEL_MIN {
                    Event::Fault(FaultInfo { addr, signo, code: info.si_code })
                } else {
                    Event::Signal(SignalInfo { signo, code: info.si_code, addr })
                }
            }
            // Never asked for after the attach; treat it as an interruption.
            WaitStatus::PtraceEvent(_, sig, _) => Event::Signal(SignalInfo { signo: sig as i32, code: 0, addr: 0 }),
            WaitStatus::Signaled(_, sig, _) => Event::Died(sig as i32),
            WaitStatus::Exited(_, code) => Event::Died(code),
            other => return Err(Error::Stub { pid: pid.as_raw(), what: format!("unexpected stop {other:?}") }),
        };
        regs.0 = ptrace::getregs(pid).map_err(|e| host("getregs", e))?;
        Ok(event)
    }

    fn fp_state(&mut self, space: &mut dyn AddressSpace) -> Result<Vec<u8>, Error> {
        let stub = stub_of(space)?;
        if let Some(TrapThread { slot, mode: Mode::Parked(_), .. }) = &stub.trap {
            return slot.read_fp();
        }
        let pid = stub.tid;
        let mut buf = vec![0u8; crate::fp_state_size()];
        xstate(pid, &mut buf, false)?;
        Ok(buf)
    }

    fn wake_early(&mut self, space: &mut dyn AddressSpace) {
        if let Ok(StubThread { trap: Some(TrapThread { slot, mode: Mode::Parked(_), .. }), .. }) = stub_of(space) {
            slot.wake_early();
        }
    }

    fn set_fp_state(&mut self, space: &mut dyn AddressSpace, state: &[u8]) -> Result<(), Error> {
        let stub = stub_of(space)?;
        if let Some(TrapThread { slot, mode: Mode::Parked(_), .. }) = &stub.trap {
            return slot.write_fp(state);
        }
        let pid = stub.tid;
        let mut buf = state.to_vec();
        xstate(pid, &mut buf, true)
    }
}
