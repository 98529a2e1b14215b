//! The stub's code page: the only mapping of a stub process that is not
//! guest memory.
//!
//! At boot the sentry forks a *template* that jumps into this page, unmaps
//! everything else and forks a stub whenever the sentry asks. A stub (or a
//! stub thread cloned inside one) waits in `pause` until its tracer attaches;
//! from then on it runs only guest code or the `syscall; int3` sequence the
//! sentry points it at to inject a call.
use std::sync::OnceLock;

use crate::Error;

/// Where the stub's code page lives, in the sentry and in every stub. Guest
/// mappings stay below it.
pub const STUB_ADDR: u64 = 0x7ff0_0000_0000;
/// Size of the stub code page.
pub const STUB_LEN: u64 = 4096;
/// The highest user address (exclusive) on x86-64 with 4-level paging.
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

std::arch::global_asm!(
    ".pushsection .text.cordon_stub, \"ax\", @progbits",
    ".p2align 12",
    // The template: a process forked from the sentry once, at boot, that
    // forks every stub. Entered with r12 = STUB_ADDR, r13 = length to unmap
    // above the page, fd 0 = the memory file, fd 1 = the request socket.
    ".globl cordon_template_start",
    "cordon_template_start:",
    // munmap(0, STUB_ADDR): nothing of the sentry stays in the template.
    "mov eax, 11",
    "xor edi, edi",
    "mov rsi, r12",
    "syscall",
    // munmap(STUB_ADDR + 4096, r13)
    "mov eax, 11",
    "lea rdi, [r12 + 4096]",
    "mov rsi, r13",
    "syscall",
    // mmap(STUB_ADDR + 4096, 4096, RW, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED,
    // -1, 0): one data page for the request loop.
    "mov eax, 9",
    "lea rdi, [r12 + 4096]",
    "mov esi, 4096",
    "mov edx, 3",
    "mov r10d, 0x32",
    "mov r8, -1",
    "xor r9d, r9d",
    "syscall",
    "2:",
    // read(1, data, 1): one byte asks for one stub; EOF ends the template.
    "xor eax, eax",
    "mov edi, 1",
    "lea rsi, [r12 + 4096]",
    "mov edx, 1",
    "syscall",
    "cmp rax, -4",
    "je 2b",
    "test rax, rax",
    "jle 3f",
    // fork()
    "mov eax, 57",
    "syscall",
    "test rax, rax",
    "jz 4f",
    // write(1, &pid, 8): the new stub's pid (or -errno).
    "mov [r12 + 4096], rax",
    "mov eax, 1",
    "mov edi, 1",
    "lea rsi, [r12 + 4096]",
    "mov edx, 8",
    "syscall",
    "jmp 2b",
    "3:",
    // exit_group(0)
    "mov eax, 231",
    "xor edi, edi",
    "syscall",
    "4:",
    // A new stub: prctl(PR_SET_PDEATHSIG, SIGKILL) (it dies with the
    // template, which dies with the sentry), close(1), munmap(data page),
    // then wait to be attached.
    "mov eax, 157",
    "mov edi, 1",
    "mov esi, 9",
    "syscall",
    "mov eax, 3",
    "mov edi, 1",
    "syscall",
    "mov eax, 11",
    "lea rdi, [r12 + 4096]",
    "mov esi, 4096",
    "syscall",
    "jmp cordon_stub_wait",
    // An injected clone(2) of a new stub thread: the caller's thread stops
    // on the int3, the new thread waits to be attached.
    ".globl cordon_stub_clone",
    "cordon_stub_clone:",
    "syscall",
    "test rax, rax",
    "jz cordon_stub_wait",
    "int3",
    // pause() until a tracer attaches and takes over.
    ".globl cordon_stub_wait",
    "cordon_stub_wait:",
    "mov eax, 34",
    ".globl cordon_stub_wait_syscall",
    "cordon_stub_wait_syscall:",
    "syscall",
    "jmp cordon_stub_wait",
    ".globl cordon_stub_syscall",
    "cordon_stub_syscall:",
    "syscall",
    "int3",
    // The seccomp-trap mode's signal handler (systrap.rs), entered on the
    // thread's alternate stack with rdi = signo, rsi = siginfo, rdx =
    // ucontext and every signal blocked. The slot (context) is the stack's
    // 64 KiB-aligned base. It posts the event, spins and then sleeps until
    // the sentry has written the registers back, and returns through the
    // restorer into rt_sigreturn.
    ".globl cordon_trap_handler",
    "cordon_trap_handler:",
    "mov r8, rsp",
    "and r8, -65536",
    "mov [r8 + 12], edi",
    "mov eax, [rsi + 8]",
    "mov [r8 + 16], eax",
    "mov rax, [rsi + 16]",
    "mov [r8 + 24], rax",
    "mov [r8 + 32], rdx",
    "rdfsbase rax",
    "mov [r8 + 40], rax",
    "rdgsbase rax",
    "mov [r8 + 48], rax",
    "mov dword ptr [r8 + 56], 0",
    "mov dword ptr [r8], 1",
    "mfence",
    "cmp dword ptr [r8 + 4], 0",
    "je 2f",
    // futex(&state, FUTEX_WAKE, 1): the task thread sleeps.
    "mov rdi, r8",
    "mov esi, 1",
    "mov edx, 1",
    "call cordon_trap_futex",
    "2:",
    "mov ecx, 300",
    "3:",
    "cmp dword ptr [r8], 2",
    "je 6f",
    "pause",
    "dec ecx",
    "jnz 3b",
    // The sentry asked for a longer spin (wake_early): take it once.
    "xor ecx, ecx",
    "xchg ecx, dword ptr [r8 + 56]",
    "test ecx, ecx",
    "jnz 3b",
    "mov dword ptr [r8 + 8], 1",
    "mfence",
    "4:",
    "cmp dword ptr [r8], 2",
    "je 5f",
    // Woken early: spin again (stub_sleeping cleared first).
    "cmp dword ptr [r8 + 56], 0",
    "jne 7f",
    // futex(&state, FUTEX_WAIT, EVENT, NULL)
    "mov rdi, r8",
    "xor esi, esi",
    "mov edx, 1",
    "call cordon_trap_futex",
    "jmp 4b",
    "7:",
    "mov dword ptr [r8 + 8], 0",
    "jmp 2b",
    "5:",
    "mov dword ptr [r8 + 8], 0",
    "6:",
    "mov rax, [r8 + 40]",
    "wrfsbase rax",
    "mov rax, [r8 + 48]",
    "wrgsbase rax",
    "mov dword ptr [r8], 0",
    "ret",
    "cordon_trap_futex:",
    "xor r10d, r10d",
    "mov eax, 202",
    ".globl cordon_trap_futex_syscall",
    "cordon_trap_futex_syscall:",
    "syscall",
    "ret",
    ".globl cordon_trap_restorer",
    "cordon_trap_restorer:",
    "mov eax, 15",
    ".globl cordon_trap_sigreturn_syscall",
    "cordon_trap_sigreturn_syscall:",
    "syscall",
    "ud2",
    // A thread entering trap mode: a call the filter traps, whose frame
    // the first resume fills with the guest's registers.
    ".globl cordon_trap_first",
    "cordon_trap_first:",
    "mov eax, 39",
    "syscall",
    "ud2",
    ".globl cordon_stub_end",
    "cordon_stub_end:",
    ".popsection",
);

extern "C" {
    static cordon_template_start: u8;
    static cordon_stub_clone: u8;
    static cordon_stub_syscall: u8;
    static cordon_stub_wait_syscall: u8;
    static cordon_trap_handler: u8;
    static cordon_trap_futex_syscall: u8;
    static cordon_trap_restorer: u8;
    static cordon_trap_sigreturn_syscall: u8;
    static cordon_trap_first: u8;
    static cordon_stub_end: u8;
}

/// Addresses of the stub code once installed at `STUB_ADDR`.
#[derive(Clone, Copy, Debug)]
pub struct StubCode {
    /// Where the forked template jumps.
    pub template: u64,
    /// A `syscall` whose new thread (rax 0) waits to be attached, and whose
    /// caller stops on an int3.
    pub clone: u64,
    /// A `syscall; int3` pair for injected calls.
    pub syscall: u64,
    /// The `syscall` (pause) of the loop new stubs wait in.
    pub wait: u64,
    /// Trap mode: the signal handler, its restorer, its two `syscall`
    /// instructions (futex, rt_sigreturn) and the entry of a thread into
    /// trap mode.
    pub trap_handler: u64,
    pub trap_restorer: u64,
    pub trap_futex: u64,
    pub trap_sigreturn: u64,
    pub trap_first: u64,
}

static STUB: OnceLock<Result<StubCode, String>> = OnceLock::new();

/// Installs the stub code page at `STUB_ADDR` in this (the sentry's) process,
/// once, so that forked children inherit it.
pub fn install() -> Result<StubCode, Error> {
    STUB.get_or_init(install_once).clone().map_err(|what| Error::Stub { pid: 0, what })
}

fn install_once() -> Result<StubCode, String> {
    let start = std::ptr::addr_of!(cordon_template_start) as u64;
    let clone = std::ptr::addr_of!(cordon_stub_clone) as u64;
    let syscall = std::ptr::addr_of!(cordon_stub_syscall) as u64;
    let at = |sym: u64| STUB_ADDR + (sym - start);
    let end = std::ptr::addr_of!(cordon_stub_end) as u64;
    let len = end - start;
    if len > STUB_LEN {
        return Err(format!("stub code is {len} bytes, more than a page"));
    }
    // SAFETY: mapping a fresh anonymous page at a fixed address with
    // MAP_FIXED_NOREPLACE cannot clobber an existing mapping; failure is
    // checked.
    let page = unsafe {
        libc::mmap(
            STUB_ADDR as *mut libc::c_void,
            STUB_LEN as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED || page as u64 != STUB_ADDR {
        return Err(format!("cannot map the stub page at {STUB_ADDR:#x}: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `start..end` is the stub code in our text section (readable),
    // `page` is a fresh writable page of STUB_LEN >= len bytes, and the two
    // do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(start as *const u8, page.cast::<u8>(), len as usize) };
    // SAFETY: `page` is the page mapped above; making it read+exec only.
    let rc = unsafe { libc::mprotect(page, STUB_LEN as usize, libc::PROT_READ | libc::PROT_EXEC) };
    if rc != 0 {
        return Err(format!("mprotect of the stub page: {}", std::io::Error::last_os_error()));
    }
    Ok(StubCode {
        template: STUB_ADDR,
        clone: at(clone),
        syscall: at(syscall),
        wait: at(std::ptr::addr_of!(cordon_stub_wait_syscall) as u64),
        trap_handler: at(std::ptr::addr_of!(cordon_trap_handler) as u64),
        trap_restorer: at(std::ptr::addr_of!(cordon_trap_restorer) as u64),
        trap_futex: at(std::ptr::addr_of!(cordon_trap_futex_syscall) as u64),
        trap_sigreturn: at(std::ptr::addr_of!(cordon_trap_sigreturn_syscall) as u64),
        trap_first: at(std::ptr::addr_of!(cordon_trap_first) as u64),
    })
}
