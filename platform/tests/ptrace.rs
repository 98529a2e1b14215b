//! The ptrace platform runs code in a stub and reports its system calls and
//! faults. Needs root (or ptrace rights over our own children).
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use platform::ptrace::PtracePlatform;
use platform::{Event, Platform, Prot, Registers};

fn memfd_with(code: &[u8]) -> OwnedFd {
    let fd = nix::sys::memfd::memfd_create(c"test-mem", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC).unwrap();
    let mut f = std::fs::File::from(fd);
    f.set_len(1 << 20).unwrap();
    f.write_all(code).unwrap();
    // SAFETY: into_raw_fd hands over ownership of a valid fd.
    unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(f)) }
}

#[test]
fn syscalls_and_faults_stop_the_stub() {
    syscalls_and_faults(false);
}

#[test]
fn syscalls_and_faults_trap_the_stub_under_systrap() {
    syscalls_and_faults(true);
}

fn syscalls_and_faults(systrap: bool) {
    // mov edi, 7; mov eax, 60; syscall; mov rax, [0x1000];
    let code = [
        0xbf, 0x07, 0, 0, 0, // mov edi, 7
        0xb8, 0x3c, 0, 0, 0, // mov eax, 60
        0x0f, 0x05, // syscall
        0x48, 0x8b, 0x04, 0x25, 0x00, 0x10, 0x00, 0x00, // mov rax, [0x1000]
    ];
    let mem = memfd_with(&code);
    let platform = PtracePlatform::new(mem.as_raw_fd(), systrap).unwrap();
    let mut space = platform.new_address_space().unwrap();
    space.map(0x10000, 4096, 0, Prot::READ | Prot::EXEC, false).unwrap();
    let mut ctx = platform.new_context();
    let mut regs = Registers::zeroed();
    // Start from the stub's own segment registers.
    regs.0.cs = 0x33;
    regs.0.ss = 0x2b;
    regs.0.eflags = 0x202;
    regs.0.rip = 0x10000;
    let ev = ctx.switch(space.as_mut(), &mut regs).unwrap();
    assert_eq!(ev, Event::Syscall);
    assert_eq!(regs.syscall_nr(), 60);
    assert_eq!(regs.syscall_args()[0], 7);
    regs.set_return(0);
    let ev = ctx.switch(space.as_mut(), &mut regs).unwrap();
    match ev {
        Event::Fault(f) => assert_eq!(f.addr, 0x1000),
        other => panic!("expected a fault, got {other:?}"),
    }
    // Serve the fault by mapping a page there, then the load succeeds and the
    // guest runs into the next (zero) bytes: `add [rax], al` faults on rax=0.
    space.map(0x1000, 4096, 8192, Prot::READ, true).unwrap();
    let ev = ctx.switch(space.as_mut(), &mut regs).unwrap();
    assert!(matches!(ev, Event::Fault(f) if f.addr == 0), "{ev:?}");
}

/// Registers that start guest code at `rip` with the stub's segments.
fn regs_at(rip: u64) -> Registers {
    let mut regs = Registers::zeroed();
    regs.0.cs = 0x33;
    regs.0.ss = 0x2b;
    regs.0.eflags = 0x202;
    regs.0.rip = rip;
    regs
}

#[test]
fn threads_share_one_address_space() {
    threads_share(false);
}

#[test]
fn threads_share_one_address_space_under_systrap() {
    threads_share(true);
}

fn threads_share(systrap: bool) {
    // mov eax, 39; syscall; mov rax, [0x20000]; jmp back to the start
    let code = [
        0xb8, 0x27, 0, 0, 0, // mov eax, 39
        0x0f, 0x05, // syscall
        0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x02, 0x00, // mov rax, [0x20000]
        0xeb, 0xef, // jmp -17
    ];
    let mem = memfd_with(&code);
    let platform = std::sync::Arc::new(PtracePlatform::new(mem.as_raw_fd(), systrap).unwrap());
    let mut space = platform.new_address_space().unwrap();
    space.map(0x10000, 4096, 0, Prot::READ | Prot::EXEC, false).unwrap();
    let pending = space.new_thread().unwrap();
    let (pid, tid) = space.host_ids();
    let p2 = platform.clone();
    let (mapped_tx, mapped) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        let mut space2 = pending.attach().unwrap();
        let (pid2, tid2) = space2.host_ids();
        let mut ctx = p2.new_context();
        let mut regs = regs_at(0x10000);
        assert_eq!(ctx.switch(space2.as_mut(), &mut regs).unwrap(), Event::Syscall);
        // The first thread's mapping is visible here.
        mapped.recv().unwrap();
        regs.set_return(0);
        let ev = ctx.switch(space2.as_mut(), &mut regs).unwrap();
        assert_eq!(ev, Event::Syscall, "the load of 0x20000 must not fault");
        (pid2, tid2)
    });
    // Installed through this thread, used by the other one.
    space.map(0x20000, 4096, 8192, Prot::READ, true).unwrap();
    mapped_tx.send(()).unwrap();
    let (pid2, tid2) = other.join().unwrap();
    assert_eq!(pid, pid2, "threads of one address space share a process");
    assert_ne!(tid, tid2);
    // The other thread is gone; this one runs on.
    let mut ctx = platform.new_context();
    let mut regs = regs_at(0x10000);
    assert_eq!(ctx.switch(space.as_mut(), &mut regs).unwrap(), Event::Syscall);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("Threads:\t1\n"), "{status}");
}

#[test]
fn answers_after_an_early_wake_arrive() {
    answers_after_early_wake(false);
}

#[test]
fn answers_after_an_early_wake_arrive_under_systrap() {
    answers_after_early_wake(true);
}

/// `Context::wake_early` before an answer, with the handler still spinning,
/// already asleep, or asleep again after its early spin ran out: every
/// answer reaches the guest, in order.
fn answers_after_early_wake(systrap: bool) {
    // mov eax, 39; syscall; add r12, rax; jmp back to the start
    let code = [
        0xb8, 0x27, 0, 0, 0, // mov eax, 39
        0x0f, 0x05, // syscall
        0x49, 0x01, 0xc4, // add r12, rax
        0xeb, 0xf4, // jmp -12
    ];
    let mem = memfd_with(&code);
    let platform = PtracePlatform::new(mem.as_raw_fd(), systrap).unwrap();
    let mut space = platform.new_address_space().unwrap();
    space.map(0x10000, 4096, 0, Prot::READ | Prot::EXEC, false).unwrap();
    let mut ctx = platform.new_context();
    let mut regs = regs_at(0x10000);
    let ms = std::time::Duration::from_millis;
    // (pause before the early wake, pause after it) in milliseconds.
    let pauses = [(0, 0), (0, 1), (5, 0), (5, 30), (0, 30), (30, 30)];
    let mut sum = 0;
    for (i, (before, after)) in pauses.into_iter().enumerate() {
        assert_eq!(ctx.switch(space.as_mut(), &mut regs).unwrap(), Event::Syscall);
        assert_eq!(regs.syscall_nr(), 39);
        assert_eq!(regs.0.r12, sum, "answer {i} reached the guest");
        std::thread::sleep(ms(before));
        ctx.wake_early(space.as_mut());
        std::thread::sleep(ms(after));
        regs.set_return(i as u64 + 1);
        sum += i as u64 + 1;
    }
    assert_eq!(ctx.switch(space.as_mut(), &mut regs).unwrap(), Event::Syscall);
    assert_eq!(regs.0.r12, sum);
}
