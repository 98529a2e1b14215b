//! The stub's code page: the only mapping of a stub process that is not
//! guest memory.
//!
//! A stub starts as a fork of the sentry. It jumps into this page, unmaps
//! everything else, and stops itself; from then on it runs only guest code or
//! the one `syscall; int3` sequence the sentry points it at to inject a call.
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
    ".globl cordon_stub_start",
    "cordon_stub_start:",
    // Entered with r12 = STUB_ADDR, r13 = length to unmap above the page.
    // munmap(0, STUB_ADDR)
    "mov eax, 11",
    "xor edi, edi",
    "mov rsi, r12",
    "syscall",
    // munmap(STUB_ADDR + 4096, r13)
    "mov eax, 11",
    "lea rdi, [r12 + 4096]",
    "mov rsi, r13",
    "syscall",
    // kill(getpid(), SIGSTOP): the tracer takes over from this stop.
    "mov eax, 39",
    "syscall",
    "mov edi, eax",
    "mov esi, 19",
    "mov eax, 62",
    "syscall",
    "int3",
    ".globl cordon_stub_syscall",
    "cordon_stub_syscall:",
    "syscall",
    "int3",
    ".globl cordon_stub_end",
    "cordon_stub_end:",
    ".popsection",
);

extern "C" {
    static cordon_stub_start: u8;
    static cordon_stub_syscall: u8;
    static cordon_stub_end: u8;
}

/// Addresses of the stub code once installed at `STUB_ADDR`.
#[derive(Clone, Copy, Debug)]
pub struct StubCode {
    /// Where a forked child jumps to become a stub.
    pub entry: u64,
    /// A `syscall; int3` pair for injected calls.
    pub syscall: u64,
}

static STUB: OnceLock<Result<StubCode, String>> = OnceLock::new();

/// Installs the stub code page at `STUB_ADDR` in this (the sentry's) process,
/// once, so that forked children inherit it.
pub fn install() -> Result<StubCode, Error> {
    STUB.get_or_init(install_once).clone().map_err(|what| Error::Stub { pid: 0, what })
}

fn install_once() -> Result<StubCode, String> {
    let start = std::ptr::addr_of!(cordon_stub_start) as u64;
    let syscall = std::ptr::addr_of!(cordon_stub_syscall) as u64;
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
    Ok(StubCode { entry: STUB_ADDR, syscall: STUB_ADDR + (syscall - start) })
}
