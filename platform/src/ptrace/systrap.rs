//! The seccomp-trap mode of the stub platform (`--platform=systrap`).
//!
//! Under ptrace every guest system call is two context switches between the
//! stub and its tracer. In this mode a guest thread runs untraced under a
//! seccomp filter that turns its system calls into `SIGSYS`; the stub's
//! signal handler (in the stub code page, on an alternate stack in memory
//! the sentry maps too) posts the event in a per-thread *context* and spins,
//! and the task thread, spinning on another CPU, reads and writes the
//! guest's registers straight in the signal frame. Faults (`SIGSEGV`,
//! `SIGBUS`, ...) and the sentry's interrupt (`SIGURG`) take the same path.
//!
//! Changing the stub's mappings still needs the stub to make a call the
//! guest must not be able to make, so it is injected with ptrace as before:
//! the task thread attaches for as long as it changes mappings and detaches
//! before the guest runs again. The filter lets such calls through only
//! from the injection sites and only for a tracer (`SECCOMP_RET_TRACE`:
//! untraced, they fail ENOSYS), so guest code jumping there gains nothing.
//!
//! Everything in a context is writable by the guest's own threads: the
//! sentry reads it as untrusted (bounds-checked offsets, plain values), and
//! what a guest can do with it is spoil its own registers.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Error, Registers};

use super::stub::{StubCode, STUB_ADDR, STUB_LEN};

/// Size of one thread's context slot: one page of control fields and
/// scratch, then the alternate signal stack. Slots are aligned to their
/// size, so the handler finds its slot from its stack pointer.
pub const SLOT_LEN: u64 = 0x1_0000;
/// Most slots (stub threads) at once.
pub const SLOTS: u64 = 16_384;
/// Where slot 0 is mapped in every stub; slot `i` at `CTX_BASE + i *
/// SLOT_LEN`, so a thread's slot address is unique sandbox-wide.
pub const CTX_BASE: u64 = STUB_ADDR + 0x1_0000_0000;
/// The fd of the context memory file inside every stub.
pub const STUB_CTXFD: i32 = 2;

// Offsets of the control fields in a slot (the handler's assembly in
// stub.rs uses the same numbers).
const STATE: usize = 0;
const SENTRY_SLEEPING: usize = 4;
const STUB_SLEEPING: usize = 8;
const SIGNO: usize = 12;
const CODE: usize = 16;
const ADDR: usize = 24;
const UCONTEXT: usize = 32;
const FS_BASE: usize = 40;
const GS_BASE: usize = 48;
/// Pauses the handler spins before sleeping again, set by `wake_early`.
const SPIN: usize = 56;
/// Scratch for the arguments of injected setup calls.
const SCRATCH_SIGACTION: u64 = 256;
const SCRATCH_STACK: u64 = 512;
const SCRATCH_FPROG: u64 = 1024;
const SCRATCH_FILTER: u64 = 1088;
/// Eight zero bytes: an empty signal set.
const SCRATCH_EMPTY_SET: u64 = 2048;

// `state` 0: guest code runs (or the handler has not posted yet); the
// handler stores it on its way out.
/// `state`: the handler posted an event and waits for the sentry.
const EVENT: u32 = 1;
/// `state`: the sentry wrote the registers back; the handler may return.
const RESUME: u32 = 2;

/// Offsets in the kernel's `struct ucontext` (x86-64).
const UC_GREGS: u64 = 40;
const UC_FPSTATE: u64 = UC_GREGS + 184;
const UC_SIZE: u64 = 304;
/// sigcontext order: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip,
/// eflags, then cs/gs/fs/ss packed.
const G_RIP: u64 = 16;
const G_EFLAGS: u64 = 17;
const G_CSGSFS: u64 = 18;

/// How long a task thread spins for its guest's next event before sleeping.
const SENTRY_SPIN: u32 = 300;
/// How long a handler woken early spins for the sentry's answer (about a
/// millisecond: a large copy's time) before it sleeps again.
const EARLY_SPIN: u32 = 30_000;
/// How often a sleeping task thread checks that its stub is alive and
/// still answers (see `StubThread::tick`).
const TICK: Duration = Duration::from_millis(100);

/// The memory every stub thread's context slot lives in, mapped once into
/// the sentry.
pub struct TrapMemory {
    fd: OwnedFd,
    base: *mut u8,
    free: Mutex<Vec<u32>>,
}

// SAFETY: `base` is a shared mapping that lives as long as the value; all
// access through it is to plain bytes with atomic or volatile operations.
unsafe impl Send for TrapMemory {}
// SAFETY: as above.
unsafe impl Sync for TrapMemory {}

impl TrapMemory {
    pub fn new() -> Result<TrapMemory, Error> {
        let host = |op| Error::Host { op, pid: 0, source: nix::Error::last() };
        if !fsgsbase_usable() {
            return Err(Error::Stub {
                pid: 0,
                what: "the seccomp-trap platform needs the FSGSBASE instructions, which this host does not enable"
                    .into(),
            });
        }
        // SAFETY: memfd_create with a static NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"cordon-stub-contexts".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(host("memfd_create"));
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let len = SLOTS * SLOT_LEN;
        // SAFETY: ftruncate on the fd we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as i64) } != 0 {
            return Err(host("ftruncate"));
        }
        // SAFETY: a fresh shared mapping of the whole file, placed by the
        // kernel; failure is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(host("mmap"));
        }
        let free = (0..SLOTS as u32).rev().collect();
        Ok(TrapMemory { fd, base: base.cast(), free: Mutex::new(free) })
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// A free slot, zeroed.
    pub fn alloc(self: &Arc<Self>) -> Result<Slot, Error> {
        let idx = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let idx = idx.ok_or_else(|| Error::Stub { pid: 0, what: format!("all {SLOTS} stub contexts in use") })?;
        Ok(Slot { mem: self.clone(), idx })
    }
}

impl Drop for TrapMemory {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `new`, which nothing uses
        // any more (every Slot holds an Arc of us).
        unsafe { libc::munmap(self.base.cast(), (SLOTS * SLOT_LEN) as usize) };
    }
}

/// Whether user space may use RDFSBASE/WRFSBASE (AT_HWCAP2 bit 1).
fn fsgsbase_usable() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector.
    unsafe { libc::getauxval(libc::AT_HWCAP2) & 2 != 0 }
}

/// One stub thread's context slot.
pub struct Slot {
    mem: Arc<TrapMemory>,
    idx: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Give the memory back (and zero it: the next owner must not see
        // this thread's registers).
        // SAFETY: fallocate on our own memfd, within its size.
        unsafe {
            libc::fallocate(
                self.mem.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                (u64::from(self.idx) * SLOT_LEN) as i64,
                SLOT_LEN as i64,
            )
        };
        self.mem.free.lock().unwrap_or_else(|e| e.into_inner()).push(self.idx);
    }
}

impl Slot {
    /// The slot's address inside the stub.
    pub fn stub_addr(&self) -> u64 {
        CTX_BASE + u64::from(self.idx) * SLOT_LEN
    }

    /// The slot's offset in the context memory file.
    pub fn file_offset(&self) -> u64 {
        u64::from(self.idx) * SLOT_LEN
    }

    fn ptr(&self, off: u64) -> *mut u8 {
        debug_assert!(off < SLOT_LEN);
        // SAFETY: `off < SLOT_LEN` keeps the pointer inside this slot of
        // the mapping.
        unsafe { self.mem.base.add((u64::from(self.idx) * SLOT_LEN + off) as usize) }
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: the field is 4-aligned inside the slot's mapped page,
        // which lives as long as `self`; AtomicU32 has u32's layout.
        unsafe { &*self.ptr(off as u64).cast::<AtomicU32>() }
    }

    fn read_u64(&self, off: u64) -> u64 {
        // SAFETY: an in-slot, 8-aligned address; volatile because the stub
        // may write it concurrently.
        unsafe { self.ptr(off).cast::<u64>().read_volatile() }
    }

    fn write_u64(&self, off: u64, v: u64) {
        // SAFETY: as in `read_u64`.
        unsafe { self.ptr(off).cast::<u64>().write_volatile(v) }
    }

    fn write_bytes(&self, off: u64, bytes: &[u8]) {
        assert!(off + bytes.len() as u64 <= SLOT_LEN);
        // SAFETY: the range is inside the slot (checked above).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr(off), bytes.len()) };
    }

    /// Converts an address inside the slot (as the stub sees it) of an
    /// object of `len` bytes on the alternate stack to a slot offset.
    fn stack_offset(&self, addr: u64, len: u64) -> Option<u64> {
        let off = addr.checked_sub(self.stub_addr())?;
        (off >= 4096 && off.checked_add(len)? <= SLOT_LEN).then_some(off)
    }

    /// Writes a `struct sigaction` for the trap handler into the scratch
    /// area; returns its stub address.
    pub fn put_sigaction(&self, code: &StubCode) -> u64 {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&code.trap_handler.to_le_bytes());
        let flags = (libc::SA_SIGINFO | libc::SA_ONSTACK) as u64 | SA_RESTORER;
        b[8..16].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&code.trap_restorer.to_le_bytes());
        // Every signal blocked in the handler but SIGTRAP: the int3 that
        // ends an injected call must not find it blocked, or the kernel
        // would force it through by resetting the process's handler.
        let mask = !(1u64 << (libc::SIGTRAP - 1));
        b[24..32].copy_from_slice(&mask.to_le_bytes());
        self.write_bytes(SCRATCH_SIGACTION, &b);
        self.stub_addr() + SCRATCH_SIGACTION
    }

    /// Writes the `stack_t` of the slot's alternate stack; returns its stub
    /// address.
    pub fn put_altstack(&self) -> u64 {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&(self.stub_addr() + 4096).to_le_bytes());
        b[16..24].copy_from_slice(&(SLOT_LEN - 4096).to_le_bytes());
        self.write_bytes(SCRATCH_STACK, &b);
        self.stub_addr() + SCRATCH_STACK
    }

    /// The stub address of an empty signal set.
    pub fn empty_sigset(&self) -> u64 {
        self.write_u64(SCRATCH_EMPTY_SET, 0);
        self.stub_addr() + SCRATCH_EMPTY_SET
    }

    /// Writes the stub's seccomp filter and its `sock_fprog`; returns the
    /// fprog's stub address.
    pub fn put_filter(&self, code: &StubCode) -> u64 {
        let insns = filter(code);
        let mut b = Vec::with_capacity(insns.len() * 8);
        for (op, jt, jf, k) in &insns {
            b.extend_from_slice(&op.to_le_bytes());
            b.push(*jt);
            b.push(*jf);
            b.extend_from_slice(&k.to_le_bytes());
        }
        self.write_bytes(SCRATCH_FILTER, &b);
        let mut p = [0u8; 16];
        p[0..2].copy_from_slice(&(insns.len() as u16).to_le_bytes());
        p[8..16].copy_from_slice(&(self.stub_addr() + SCRATCH_FILTER).to_le_bytes());
        self.write_bytes(SCRATCH_FPROG, &p);
        self.stub_addr() + SCRATCH_FPROG
    }

    /// The event the handler posted, if it has posted one.
    pub fn posted(&self) -> bool {
        self.word(STATE).load(Ordering::Acquire) == EVENT
    }

    /// Waits up to `TICK` (after a spin) for the handler to post an event;
    /// true if it did.
    pub fn wait_event(&self) -> bool {
        let state = self.word(STATE);
        for _ in 0..SENTRY_SPIN {
            if state.load(Ordering::Acquire) == EVENT {
                return true;
            }
            std::hint::spin_loop();
        }
        let sleeping = self.word(SENTRY_SLEEPING);
        let deadline = std::time::Instant::now() + TICK;
        let posted = loop {
            sleeping.store(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let s = state.load(Ordering::Acquire);
            if s == EVENT {
                break true;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break false;
            }
            futex_wait(state, s, left);
        };
        sleeping.store(0, Ordering::Relaxed);
        posted
    }

    /// The sentry has started a long piece of work for the posted event:
    /// the handler spins for the answer instead of sleeping, and is woken
    /// now if it sleeps, so that the CPU it runs on is not idle when the
    /// answer comes (waking an idle vCPU costs up to ~100 us on a nested
    /// VM, more than a 1 MiB copy saves by running beside it). A wake-up
    /// that misses the handler on its way to sleep is only lost time: the
    /// resume wakes it all the same.
    pub fn wake_early(&self) {
        self.word(SPIN).store(EARLY_SPIN, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.word(STUB_SLEEPING).load(Ordering::SeqCst) != 0 {
            futex_wake(self.word(STATE));
        }
    }

    /// Lets the handler return into guest code.
    pub fn resume(&self) {
        self.word(STATE).store(RESUME, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.word(STUB_SLEEPING).load(Ordering::SeqCst) != 0 {
            futex_wake(self.word(STATE));
        }
    }

    /// The posted event's signal number, si_code and si_addr.
    pub fn event(&self) -> (i32, i32, u64) {
        let signo = self.word(SIGNO).load(Ordering::Relaxed) as i32;
        let code = self.word(CODE).load(Ordering::Relaxed) as i32;
        (signo, code, self.read_u64(ADDR as u64))
    }

    /// The slot offset of the posted frame's ucontext, checked to lie on
    /// the slot's stack.
    fn ucontext(&self) -> Result<u64, Error> {
        let uc = self.read_u64(UCONTEXT as u64);
        self.stack_offset(uc, UC_SIZE).ok_or_else(|| bad_frame("ucontext", uc))
    }

    /// The posted frame's registers, over `base` (segment selectors and
    /// anything the frame does not hold).
    pub fn read_regs(&self, base: &Registers) -> Result<Registers, Error> {
        let uc = self.ucontext()?;
        let g = |i: u64| self.read_u64(uc + UC_GREGS + i * 8);
        let mut regs = *base;
        let r = &mut regs.0;
        [r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15] = [g(0), g(1), g(2), g(3), g(4), g(5), g(6), g(7)];
        [r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax, r.rcx, r.rsp] =
            [g(8), g(9), g(10), g(11), g(12), g(13), g(14), g(15)];
        r.rip = g(G_RIP);
        r.eflags = g(G_EFLAGS);
        let segs = g(G_CSGSFS);
        r.cs = segs & 0xffff;
        r.ss = segs >> 48;
        r.fs_base = self.read_u64(FS_BASE as u64);
        r.gs_base = self.read_u64(GS_BASE as u64);
        r.orig_rax = u64::MAX;
        Ok(regs)
    }

    /// Writes `regs` into the posted frame (and the thread's FS/GS base
    /// into the context, for the handler to load).
    pub fn write_regs(&self, regs: &Registers) -> Result<(), Error> {
        let uc = self.ucontext()?;
        let r = &regs.0;
        let vals = [
            r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax, r.rcx,
            r.rsp, r.rip, r.eflags,
        ];
        for (i, v) in vals.into_iter().enumerate() {
            self.write_u64(uc + UC_GREGS + i as u64 * 8, v);
        }
        self.write_u64(FS_BASE as u64, r.fs_base);
        self.write_u64(GS_BASE as u64, r.gs_base);
        Ok(())
    }

    /// Registers of a system call event as PTRACE_SYSEMU reports them:
    /// the number in orig_rax and -ENOSYS in rax.
    pub fn syscall_regs(mut regs: Registers) -> Registers {
        regs.0.orig_rax = regs.0.rax;
        regs.0.rax = (-libc::ENOSYS) as u64;
        regs
    }

    /// The posted frame's XSAVE area: slot offset and the length the
    /// kernel saved (its software bytes say; the legacy 512 bytes if not an
    /// XSAVE frame), at most `fp_state_size()`.
    fn fpstate(&self) -> Result<(u64, usize), Error> {
        let uc = self.ucontext()?;
        let fp = self.read_u64(uc + UC_FPSTATE);
        let off = self.stack_offset(fp, 512).ok_or_else(|| bad_frame("fpstate", fp))?;
        let magic = self.read_u64(off + 464) as u32;
        let saved = (self.read_u64(off + 464 + 16) & 0xffff_ffff) as usize;
        let len = if magic == FP_XSTATE_MAGIC1 { saved.clamp(512, crate::fp_state_size()) } else { 512 };
        self.stack_offset(fp, len as u64).ok_or_else(|| bad_frame("fpstate", fp))?;
        Ok((off, len))
    }

    pub fn read_fp(&self) -> Result<Vec<u8>, Error> {
        let (off, len) = self.fpstate()?;
        let mut buf = vec![0u8; crate::fp_state_size()];
        // SAFETY: `off..off+len` is inside the slot (checked by `fpstate`)
        // and `buf` holds at least `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr(off), buf.as_mut_ptr(), len) };
        // The software bytes are the kernel's frame bookkeeping, not state.
        buf[464..512].fill(0);
        Ok(buf)
    }

    pub fn write_fp(&self, state: &[u8]) -> Result<(), Error> {
        let (off, len) = self.fpstate()?;
        let len = len.min(state.len());
        // Keep the frame's software bytes (464..512): sigreturn reads them
        // to know the area is an XSAVE image.
        self.write_bytes(off, &state[..464.min(len)]);
        if len > 512 {
            self.write_bytes(off + 512, &state[512..len]);
        }
        Ok(())
    }
}

const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const SA_RESTORER: u64 = 0x0400_0000;

fn bad_frame(what: &str, addr: u64) -> Error {
    Error::Stub { pid: 0, what: format!("posted a signal frame whose {what} ({addr:#x}) is off its stack") }
}

fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: i64::from(timeout.subsec_nanos()) };
    // SAFETY: FUTEX_WAIT on a live, aligned word of a shared mapping (not
    // FUTEX_PRIVATE: the stub waits on the same word); `ts` outlives the call.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, &ts as *const libc::timespec) };
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a live, aligned word of a shared mapping.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1) };
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const RET_TRAP: u32 = 0x0003_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_RET_K: u16 = 0x06;
const BPF_TAX: u16 = 0x07;
const BPF_TXA: u16 = 0x87;

/// The stub's seccomp filter, one `(code, jt, jf, k)` per instruction.
///
/// Every guest system call traps (`SIGSYS`). From the stub page, by
/// instruction pointer: the handler's `futex` (wait or wake only) and the
/// restorer's `rt_sigreturn` run (a guest jumping there can only wait on or
/// restore its own state), as does `pause` at the wait site of a new thread; the
/// injection sites run calls only for a tracer (`RET_TRACE`; ENOSYS
/// otherwise). Calls of other ABIs (int 0x80) fail ENOSYS, as in gVisor.
fn filter(code: &StubCode) -> Vec<(u16, u8, u8, u32)> {
    let after = |site: u64| (site + 2) as u32;
    let stub_hi = (STUB_ADDR >> 32) as u32;
    debug_assert_eq!(STUB_ADDR >> 32, (STUB_ADDR + STUB_LEN) >> 32);
    let mut f = vec![
        (BPF_LD_W_ABS, 0, 0, 4),
        (BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        (BPF_RET_K, 0, 0, RET_ERRNO | libc::ENOSYS as u32),
        (BPF_LD_W_ABS, 0, 0, 12),
        (BPF_JEQ_K, 1, 0, stub_hi),
        (BPF_RET_K, 0, 0, RET_TRAP),
        (BPF_LD_W_ABS, 0, 0, 0),
        (BPF_TAX, 0, 0, 0),
        (BPF_LD_W_ABS, 0, 0, 8),
    ];
    // futex at the handler's site, and only FUTEX_WAIT or FUTEX_WAKE (no
    // PI or requeue operations on words a guest could fill with host tids).
    f.extend([
        (BPF_JEQ_K, 0, 7, after(code.trap_futex)),
        (BPF_TXA, 0, 0, 0),
        (BPF_JEQ_K, 0, 3, libc::SYS_futex as u32),
        (BPF_LD_W_ABS, 0, 0, 24),
        (BPF_JEQ_K, 2, 0, libc::FUTEX_WAIT as u32),
        (BPF_JEQ_K, 1, 0, libc::FUTEX_WAKE as u32),
        (BPF_RET_K, 0, 0, RET_TRAP),
        (BPF_RET_K, 0, 0, RET_ALLOW),
    ]);
    for (site, nr) in [(code.trap_sigreturn, libc::SYS_rt_sigreturn), (code.wait, libc::SYS_pause)] {
        f.extend([
            (BPF_JEQ_K, 0, 4, after(site)),
            (BPF_TXA, 0, 0, 0),
            (BPF_JEQ_K, 1, 0, nr as u32),
            (BPF_RET_K, 0, 0, RET_TRAP),
            (BPF_RET_K, 0, 0, RET_ALLOW),
        ]);
    }
    for site in [code.syscall, code.clone] {
        f.extend([(BPF_JEQ_K, 0, 1, after(site)), (BPF_RET_K, 0, 0, RET_TRACE)]);
    }
    f.push((BPF_RET_K, 0, 0, RET_TRAP));
    f
}
