//! Running guest code: the `Platform`, `AddressSpace` and `Context` contract
//! of DESIGN.md §4, and its ptrace implementation.
//!
//! A platform gives the sentry address spaces (stub processes whose memory is
//! the sentry's memory file, mapped at the guest's addresses) and runs guest
//! threads in them until they make a system call, fault, or are signalled.
use std::any::Any;
use std::os::fd::RawFd;

pub mod ptrace;
mod regs;

pub use regs::Registers;
pub use syscalls::flags::Prot;

/// Errors of the platform layer: a host call that failed while managing a
/// stub. These are sentry bugs or host resource exhaustion, never guest
/// errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} failed for stub {pid}")]
    Host {
        op: &'static str,
        pid: i32,
        #[source]
        source: nix::Error,
    },
    #[error("stub {pid} {what}")]
    Stub { pid: i32, what: String },
    #[error("injected {call} in stub {pid} failed")]
    Injected {
        call: &'static str,
        pid: i32,
        #[source]
        source: nix::Error,
    },
}

/// Why guest code stopped running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A system call; its number and arguments are in the registers.
    Syscall,
    /// A memory fault the sentry may be able to serve (`SIGSEGV`/`SIGBUS`
    /// raised by the CPU).
    Fault(FaultInfo),
    /// Any other signal the host delivered to the stub, e.g. a synchronous
    /// `SIGFPE`, `SIGILL`, `SIGTRAP`, or an external one.
    Signal(SignalInfo),
    /// The stub died (killed from outside).
    Died(i32),
}

/// A page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    /// The faulting address.
    pub addr: u64,
    /// `SIGSEGV` or `SIGBUS`.
    pub signo: i32,
    /// `si_code` (SEGV_MAPERR, SEGV_ACCERR, BUS_ADRERR, ...).
    pub code: i32,
}

/// A signal delivered to a stub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    pub signo: i32,
    pub code: i32,
    pub addr: u64,
}

/// Creates address spaces and execution contexts.
pub trait Platform: Send + Sync {
    /// A new, empty address space, driven from the calling thread.
    fn new_address_space(&self) -> Result<Box<dyn AddressSpace>, Error>;
    /// A new context for one guest thread.
    fn new_context(&self) -> Box<dyn Context>;
    /// The highest address (exclusive) guest mappings may use.
    fn max_user_address(&self) -> u64;
}

/// One guest address space as one host thread drives it: the calling task's
/// handle on it. Every handle of one address space sees the same memory, so
/// a mapping installed or removed through one holds for all.
pub trait AddressSpace: Send {
    /// Maps `len` bytes of the memory file at `offset` to guest `addr`;
    /// with `populate`, the pages (already allocated) are installed at once.
    fn map(&mut self, addr: u64, len: u64, offset: u64, prot: Prot, populate: bool) -> Result<(), Error>;
    /// Removes mappings in `[addr, addr+len)`.
    fn unmap(&mut self, addr: u64, len: u64) -> Result<(), Error>;
    /// Changes the protection of `[addr, addr+len)`.
    fn protect(&mut self, addr: u64, len: u64, prot: Prot) -> Result<(), Error>;
    /// Another handle on this address space, for a new task (a thread or a
    /// vfork child); it must be attached from the host thread that will run
    /// the task.
    fn new_thread(&mut self) -> Result<Box<dyn NewThread>, Error>;
    /// A host clock id measuring the CPU time guest code spent in this
    /// address space, all threads together.
    fn cpu_clock(&self) -> Option<i32>;
    /// The host process and thread running the guest thread, which a host
    /// signal (tgkill) interrupts.
    fn host_ids(&self) -> (i32, i32);
    /// For a context to reach its implementation.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A handle on an address space made by `AddressSpace::new_thread`, not yet
/// attached to the host thread that will drive it.
pub trait NewThread: Send {
    /// Attaches the calling host thread; dropping it unattached ends it.
    fn attach(self: Box<Self>) -> Result<Box<dyn AddressSpace>, Error>;
}

/// One guest thread's execution state on the host.
pub trait Context: Send {
    /// Runs guest code in `space` with `regs` until the next event; `regs`
    /// holds the guest's registers when it returns.
    fn switch(&mut self, space: &mut dyn AddressSpace, regs: &mut Registers) -> Result<Event, Error>;
    /// The thread's floating-point and vector state in XSAVE layout
    /// (`fp_state_size()` bytes).
    fn fp_state(&mut self, space: &mut dyn AddressSpace) -> Result<Vec<u8>, Error>;
    /// Loads XSAVE-layout state saved by `fp_state` (or built from
    /// `initial_fp_state`).
    fn set_fp_state(&mut self, space: &mut dyn AddressSpace, state: &[u8]) -> Result<(), Error>;
    /// A hint that the sentry has started a long piece of work for the
    /// current event (a large copy) and will answer when it is done: a
    /// platform whose thread sleeps while it waits may wake it now, so the
    /// answer does not also pay for waking an idle CPU. Does nothing by
    /// default.
    fn wake_early(&mut self, _space: &mut dyn AddressSpace) {}
}

/// Size of the XSAVE area for the features the host enables (CPUID 0xD).
pub fn fp_state_size() -> usize {
    // CPUID is always available on x86-64.
    let r = std::arch::x86_64::__cpuid_count(0xd, 0);
    (r.ebx as usize).max(512 + 64)
}

/// The features the host enables in XCR0 (CPUID 0xD: EDX:EAX).
pub fn fp_features() -> u64 {
    let r = std::arch::x86_64::__cpuid_count(0xd, 0);
    (u64::from(r.edx) << 32) | u64::from(r.eax)
}

/// FP state as a fresh thread (or a signal handler) starts with it: x87
/// control word 0x37f, MXCSR 0x1f80, every other component in its initial
/// state.
pub fn initial_fp_state() -> Vec<u8> {
    let mut s = vec![0u8; fp_state_size()];
    s[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
    s[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    s[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
    // XSTATE_BV: x87 and SSE state present (as above), the rest initial.
    s[512..520].copy_from_slice(&3u64.to_le_bytes());
    s
}

/// The memory file every address space maps from, as the platform needs it.
#[derive(Clone, Copy, Debug)]
pub struct MemoryFileFd(pub RawFd);
