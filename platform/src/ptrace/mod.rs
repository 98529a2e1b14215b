//! The ptrace platform: each address space is a stub process traced with
//! `PTRACE_SYSEMU`, so its system calls stop before they run and the sentry
//! serves them instead.
//!
//! A tracee can only be driven by the thread that traces it, so an address
//! space belongs to the host thread that created it (the task's thread).
use std::any::Any;
use std::os::fd::RawFd;

use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::{AddressSpace, Context, Error, Event, FaultInfo, Platform, Prot, Registers, SignalInfo};

mod stub;

pub use stub::{STUB_ADDR, TASK_SIZE};

/// Reserves the stub code page at its fixed address. Call it first thing in
/// the sentry, before large mappings could land on that address.
pub fn prepare() -> Result<(), Error> {
    stub::install().map(drop)
}

/// The ptrace platform.
pub struct PtracePlatform {
    memfd: RawFd,
}

impl PtracePlatform {
    /// A platform whose address spaces map from `memfd`, the sentry's memory
    /// file (which must stay open as long as the platform lives).
    pub fn new(memfd: RawFd) -> Result<PtracePlatform, Error> {
        stub::install()?;
        Ok(PtracePlatform { memfd })
    }
}

impl Platform for PtracePlatform {
    fn new_address_space(&self) -> Result<Box<dyn AddressSpace>, Error> {
        Ok(Box::new(Stub::spawn(self.memfd)?))
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

/// A stub process: one guest address space.
pub struct Stub {
    pid: Pid,
    /// Registers of the stub at its first stop: valid segment selectors and
    /// flags to start every injected call from.
    template: Registers,
    syscall_addr: u64,
}

impl Stub {
    /// Forks a new stub from the calling thread, which becomes its tracer.
    fn spawn(memfd: RawFd) -> Result<Stub, Error> {
        let code = stub::install()?;
        let parent = nix::unistd::getpid().as_raw();
        // SAFETY: the child only makes async-signal-safe raw system calls
        // (prctl, ptrace, sigprocmask, dup2, close_range, setsid) and then
        // jumps into the stub page, never returning into Rust code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(Error::Host { op: "fork", pid: 0, source: nix::Error::last() });
        }
        if pid == 0 {
            // SAFETY: we are the freshly forked child; see `become_stub`.
            unsafe { become_stub(parent, memfd, code.entry) }
        }
        let pid = Pid::from_raw(pid);
        let mut stub = Stub { pid, template: Registers::zeroed(), syscall_addr: code.syscall };
        // The stub stops itself with SIGSTOP once it has unmapped everything.
        loop {
            match wait(pid)? {
                WaitStatus::Stopped(_, Signal::SIGSTOP) => break,
                WaitStatus::Stopped(_, sig) => {
                    // Nothing else should stop it; let it go on to its SIGSTOP.
                    ptrace::cont(pid, sig).map_err(|source| Error::Host { op: "cont", pid: pid.as_raw(), source })?;
                }
                other => {
                    return Err(Error::Stub { pid: pid.as_raw(), what: format!("died while starting: {other:?}") });
                }
            }
        }
        ptrace::setoptions(pid, ptrace::Options::PTRACE_O_EXITKILL | ptrace::Options::PTRACE_O_TRACESYSGOOD)
            .map_err(|source| Error::Host { op: "setoptions", pid: pid.as_raw(), source })?;
        stub.template = Registers(ptrace::getregs(pid).map_err(|source| Error::Host {
            op: "getregs",
            pid: pid.as_raw(),
            source,
        })?);
        pin_with_tracer(pid);
        tracing::debug!(target: "platform::ptrace", pid = pid.as_raw(), "stub started");
        Ok(stub)
    }

    /// The host pid of the stub.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Runs one system call inside the stub and returns its raw result.
    fn inject(&mut self, call: &'static str, nr: i64, args: [u64; 6]) -> Result<u64, Error> {
        let mut regs = self.template;
        let r = &mut regs.0;
        r.rip = self.syscall_addr;
        r.rax = nr as u64;
        r.orig_rax = u64::MAX;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9] = args;
        let pid = self.pid;
        let host = |op, source| Error::Host { op, pid: pid.as_raw(), source };
        ptrace::setregs(pid, regs.0).map_err(|e| host("setregs", e))?;
        ptrace::cont(pid, None).map_err(|e| host("cont", e))?;
        loop {
            match wait(pid)? {
                WaitStatus::Stopped(_, Signal::SIGTRAP) => break,
                WaitStatus::Stopped(_, sig) => {
                    // A signal raced with the injected call (e.g. SIGINT from
                    // a terminal): drop it, the sentry owns signal delivery.
                    tracing::debug!(target: "platform::ptrace", ?sig, "signal during injected call dropped");
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

/// Turns the freshly forked child into a stub. Never returns.
///
/// # Safety
/// Must be called only in the child right after `fork`, with the stub page
/// installed at `entry`.
unsafe fn become_stub(parent: i32, memfd: RawFd, entry: u64) -> ! {
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
    // SAFETY: PTRACE_TRACEME takes no pointers.
    if unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) } != 0 {
        // SAFETY: as above.
        unsafe { libc::_exit(2) };
    }
    // SAFETY: see `unregister_rseq`; we have not unmapped anything yet.
    unsafe { unregister_rseq() };
    for sig in 1..=64 {
        // SAFETY: resetting a disposition to SIG_DFL installs no handler.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an all-zero sigset_t is the empty set.
    let empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `empty` is a valid sigset that outlives the call.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) };
    // SAFETY: dup2 on integer fds.
    if memfd != STUB_MEMFD && unsafe { libc::dup2(memfd, STUB_MEMFD) } != STUB_MEMFD {
        // SAFETY: as above.
        unsafe { libc::_exit(3) };
    }
    // SAFETY: close_range on integer fds; the child owns its fd table.
    unsafe { libc::syscall(libc::SYS_close_range, STUB_MEMFD as u32 + 1, u32::MAX, 0u32) };
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

impl AddressSpace for Stub {
    fn map(&mut self, addr: u64, len: u64, offset: u64, prot: Prot, populate: bool) -> Result<(), Error> {
        let mut flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        if populate {
            flags |= libc::MAP_POPULATE as u64;
        }
        let got =
            self.inject("mmap", libc::SYS_mmap, [addr, len, prot_bits(prot), flags, STUB_MEMFD as u64, offset])?;
        if got != addr {
            return Err(Error::Stub { pid: self.pid(), what: format!("mmap at {addr:#x} landed at {got:#x}") });
        }
        Ok(())
    }

    fn unmap(&mut self, addr: u64, len: u64) -> Result<(), Error> {
        self.inject("munmap", libc::SYS_munmap, [addr, len, 0, 0, 0, 0]).map(drop)
    }

    fn protect(&mut self, addr: u64, len: u64, prot: Prot) -> Result<(), Error> {
        self.inject("mprotect", libc::SYS_mprotect, [addr, len, prot_bits(prot), 0, 0, 0]).map(drop)
    }

    fn host_pid(&self) -> i32 {
        self.pid.as_raw()
    }

    fn cpu_clock(&self) -> Option<i32> {
        // MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
        Some((!self.pid.as_raw() << 3) | 2)
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, Some(WaitPidFlag::__WALL));
    }
}

const NT_X86_XSTATE: libc::c_int = 0x202;

fn stub_of(space: &mut dyn AddressSpace) -> Result<&mut Stub, Error> {
    space
        .as_any_mut()
        .downcast_mut::<Stub>()
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
        let pid = stub_of(space)?.pid;
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
            WaitStatus::Signaled(_, sig, _) => Event::Died(sig as i32),
            WaitStatus::Exited(_, code) => Event::Died(code),
            other => return Err(Error::Stub { pid: pid.as_raw(), what: format!("unexpected stop {other:?}") }),
        };
        regs.0 = ptrace::getregs(pid).map_err(|e| host("getregs", e))?;
        Ok(event)
    }

    fn fp_state(&mut self, space: &mut dyn AddressSpace) -> Result<Vec<u8>, Error> {
        let pid = stub_of(space)?.pid;
        let mut buf = vec![0u8; crate::fp_state_size()];
        xstate(pid, &mut buf, false)?;
        Ok(buf)
    }

    fn set_fp_state(&mut self, space: &mut dyn AddressSpace, state: &[u8]) -> Result<(), Error> {
        let pid = stub_of(space)?.pid;
        let mut buf = state.to_vec();
        xstate(pid, &mut buf, true)
    }
}
