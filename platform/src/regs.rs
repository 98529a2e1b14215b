//! Guest general-purpose registers.

/// The x86-64 general registers as ptrace exchanges them.
#[derive(Clone, Copy)]
pub struct Registers(pub libc::user_regs_struct);

impl Registers {
    /// All-zero registers.
    pub fn zeroed() -> Registers {
        Registers(libc::user_regs_struct {
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            rbp: 0,
            rbx: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rax: 0,
            rcx: 0,
            rdx: 0,
            rsi: 0,
            rdi: 0,
            orig_rax: 0,
            rip: 0,
            cs: 0,
            eflags: 0,
            rsp: 0,
            ss: 0,
            fs_base: 0,
            gs_base: 0,
            ds: 0,
            es: 0,
            fs: 0,
            gs: 0,
        })
    }

    /// The system call number of a syscall stop.
    pub fn syscall_nr(&self) -> u64 {
        self.0.orig_rax
    }

    /// The six system call arguments.
    pub fn syscall_args(&self) -> [u64; 6] {
        let r = &self.0;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]
    }

    /// Sets the value a system call returns.
    pub fn set_return(&mut self, v: u64) {
        self.0.rax = v;
    }

    pub fn ip(&self) -> u64 {
        self.0.rip
    }

    pub fn sp(&self) -> u64 {
        self.0.rsp
    }
}

impl std::fmt::Debug for Registers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.0;
        write!(
            f,
            "rip={:#x} rsp={:#x} rax={:#x} orig_rax={:#x} rdi={:#x} rsi={:#x} rdx={:#x}",
            r.rip, r.rsp, r.rax, r.orig_rax, r.rdi, r.rsi, r.rdx
        )
    }
}
