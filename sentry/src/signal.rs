//! Signals: pending sets, actions, default actions, and delivery to guest
//! handlers through x86-64 rt signal frames (with the XSAVE state), undone
//! by `rt_sigreturn`.
use syscalls::flags::{sa, signal as S};
use syscalls::structs::{RtSigframe, SigStack, Sigaction, Sigcontext, Siginfo, Ucontext};
use syscalls::Errno;
use zerocopy::IntoBytes;

use crate::task::{ExitStatus, Task};

/// SIGKILL and SIGSTOP can be neither blocked nor caught.
pub const UNBLOCKABLE: u64 = bit(S::SIGKILL) | bit(S::SIGSTOP);

/// The mask bit of `sig`.
pub const fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// Whether `sig` is a signal number.
pub fn valid(sig: i32) -> bool {
    (1..=S::NSIG).contains(&sig)
}

/// What a signal does when its action is SIG_DFL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    CoreDump,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        17 | 23 | 28 => DefaultAction::Ignore, // SIGCHLD, SIGURG, SIGWINCH
        18 => DefaultAction::Continue,         // SIGCONT
        19..=22 => DefaultAction::Stop,        // SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU
        3 | 4 | 5 | 6 | 7 | 8 | 11 | 24 | 25 | 31 => DefaultAction::CoreDump,
        _ => DefaultAction::Terminate,
    }
}

/// A task's own signal state (actions belong to its thread group, pending
/// signals to its shared part).
pub struct SignalState {
    pub mask: u64,
    pub altstack: SigStack,
    /// The mask `rt_sigsuspend` replaced, restored when its handler returns.
    pub saved_mask: Option<u64>,
}

impl Default for SignalState {
    fn default() -> SignalState {
        SignalState { mask: 0, altstack: SigStack { ss_flags: S::SS_DISABLE, ..Default::default() }, saved_mask: None }
    }
}

impl SignalState {
    /// Whether the alternate stack is in use at stack pointer `sp`.
    pub fn on_altstack(&self, sp: u64) -> bool {
        let a = &self.altstack;
        a.ss_flags & S::SS_DISABLE == 0 && sp > a.ss_sp && sp - a.ss_sp <= a.ss_size
    }

    /// The `ss_flags` sigaltstack reports at `sp`.
    pub fn altstack_flags(&self, sp: u64) -> i32 {
        if self.altstack.ss_size == 0 {
            S::SS_DISABLE
        } else if self.on_altstack(sp) {
            S::SS_ONSTACK
        } else {
            self.altstack.ss_flags & (1 << 31)
        }
    }
}

/// The lowest-numbered pending signal not blocked, synchronous ones first
/// (as Linux picks them).
pub fn next_deliverable(pending: u64, mask: u64) -> Option<i32> {
    let ready = pending & !mask;
    if ready == 0 {
        return None;
    }
    let sync = bit(S::SIGSEGV) | bit(S::SIGBUS) | bit(S::SIGILL) | bit(S::SIGTRAP) | bit(S::SIGFPE) | bit(S::SIGSYS);
    let pick = if ready & sync != 0 { ready & sync } else { ready };
    Some(pick.trailing_zeros() as i32 + 1)
}

/// Signals the CPU raises for a fault (with a positive si_code).
fn is_fault(sig: i32) -> bool {
    matches!(sig, S::SIGSEGV | S::SIGBUS | S::SIGILL | S::SIGTRAP | S::SIGFPE | S::SIGSYS)
}

/// A siginfo for a signal sent by a process (`kill`, `tgkill`).
pub fn user_info(sig: i32, code: i32, pid: i32, uid: u32) -> Siginfo {
    let mut info = Siginfo { signo: sig, code, ..Default::default() };
    info.fields[0] = u64::from(pid as u32) | (u64::from(uid) << 32);
    info
}

/// A siginfo for a fault at `addr`.
pub fn fault_info(sig: i32, code: i32, addr: u64) -> Siginfo {
    let mut info = Siginfo { signo: sig, code, ..Default::default() };
    info.fields[0] = addr;
    info
}

const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// EFLAGS bits a signal handler may change (the kernel's FIX_EFLAGS).
const FIX_EFLAGS: u64 = 0x50dd5;
const EFLAGS_DF_RF_TF: u64 = 0x400 | 0x10000 | 0x100;
/// The x86-64 red zone below the stack pointer that frames must skip.
const RED_ZONE: u64 = 128;

impl Task {
    /// Queues `info` for the task itself.
    pub fn send_signal(&self, info: Siginfo) {
        self.shared.queue(info);
    }

    /// Queues a synchronous signal the guest cannot block or ignore: if it
    /// is, the action is reset to the default (as Linux's force_sig does).
    pub fn force_signal(&mut self, info: Siginfo) {
        let sig = info.signo;
        {
            let mut actions = self.shared.group.actions();
            let a = &mut actions[(sig - 1) as usize];
            if self.signals.mask & bit(sig) != 0 || a.handler == sa::SIG_IGN {
                a.handler = sa::SIG_DFL;
                self.signals.mask &= !bit(sig);
            }
        }
        self.send_signal(info);
    }

    /// Whether a signal is pending (for the thread or its process) that the
    /// task would act on now (run a handler, stop or die), or the task must
    /// exit; pending signals it would ignore are dropped.
    pub fn has_deliverable_signal(&self) -> bool {
        if self.shared.doomed() {
            return true;
        }
        let mut own = self.shared.pending();
        let mut group = self.group().pending();
        let actions = self.shared.group.actions();
        let mut ready = (own.bits | group.bits) & !self.signals.mask;
        while ready != 0 {
            let sig = ready.trailing_zeros() as i32 + 1;
            ready &= !bit(sig);
            let from = if own.bits & bit(sig) != 0 { &mut *own } else { &mut *group };
            if self.ignores(sig, &from.info[(sig - 1) as usize], &actions[(sig - 1) as usize]) {
                from.bits &= !bit(sig);
            } else {
                return true;
            }
        }
        false
    }

    /// Whether delivering `info` would do nothing: ignored, a default
    /// action of ignore or continue, or a default action the container's
    /// init is protected from (as the init of a PID namespace on Linux: only
    /// the kernel's SIGKILL and faults get through).
    fn ignores(&self, sig: i32, info: &Siginfo, act: &Sigaction) -> bool {
        if act.handler == sa::SIG_IGN {
            return true;
        }
        if act.handler != sa::SIG_DFL {
            return false;
        }
        if matches!(default_action(sig), DefaultAction::Ignore | DefaultAction::Continue) {
            return true;
        }
        // Linux's SIGNAL_UNKILLABLE: even the kernel's own signals (a
        // terminal's ^C, a timer's SIGALRM) are ignored by init unless
        // they are SIGKILL/SIGSTOP or a fault.
        let forced =
            (info.code == sa::SI_KERNEL && matches!(sig, S::SIGKILL | S::SIGSTOP)) || (info.code > 0 && is_fault(sig));
        self.group().is_ns_init() && !forced
    }

    /// Stops the whole process (a stop signal's default action): every
    /// thread parks before it runs guest code again, until SIGCONT or
    /// SIGKILL; the parent hears of it (SIGCHLD, WUNTRACED).
    pub fn group_stop(&mut self, sig: i32) {
        let group = self.group().clone();
        let (parent, threads) = {
            let mut st = group.state();
            if st.group_exit.is_some() {
                return;
            }
            st.stopped = Some(sig);
            group.stop_flag.store(true, std::sync::atomic::Ordering::SeqCst);
            st.stop_unreported = true;
            st.continue_unreported = false;
            (st.parent.clone(), st.threads.clone())
        };
        for th in threads.iter().filter(|th| th.tid() != self.tid) {
            th.interrupt();
        }
        if let Some(p) = parent {
            p.child_changed(group.vpid, sa::CLD_STOPPED, sig);
        }
        self.kernel.events.notify();
    }

    /// Waits while the process is stopped (until SIGCONT, SIGKILL, or the
    /// end of the process).
    pub fn park_while_stopped(&self) {
        loop {
            let seen = self.kernel.events.generation();
            if self.group().state().stopped.is_none()
                || self.shared.doomed()
                || self.pending_signals() & bit(S::SIGKILL) != 0
            {
                return;
            }
            self.kernel.events.wait(seen, None);
        }
    }

    /// Waits while the sandbox is paused (until it is resumed, or the task
    /// must die: SIGKILL still gets through, as in cgroup v2's freezer).
    pub fn park_while_frozen(&self) {
        loop {
            let seen = self.kernel.events.generation();
            if !self.kernel.frozen() || self.shared.doomed() || self.pending_signals() & bit(S::SIGKILL) != 0 {
                return;
            }
            self.kernel.events.wait(seen, None);
        }
    }

    /// Runs a wait (ppoll, pselect, epoll_pwait) with `mask` as the signal
    /// mask meanwhile. The old mask comes back when the wait ends, or, if
    /// a signal interrupted it, once that signal's handler returns.
    pub fn with_wait_mask<T>(
        &mut self,
        mask: Option<u64>,
        wait: impl FnOnce(&mut Task) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let Some(m) = mask else { return wait(self) };
        let old = std::mem::replace(&mut self.signals.mask, m & !UNBLOCKABLE);
        let r = wait(self);
        if r.as_ref().is_err_and(|e| *e == crate::syscalls::ERESTARTNOHAND) {
            self.signals.saved_mask = Some(old);
        } else {
            self.signals.mask = old;
        }
        r
    }

    /// Signals pending for this thread or its process.
    pub fn pending_signals(&self) -> u64 {
        let own = self.shared.pending().bits;
        own | self.group().pending().bits
    }

    /// A POSIX timer's signal leaving the queue carries the overruns since
    /// it was queued (si_overrun).
    fn settle_timer_signal(&self, mut info: Siginfo) -> Siginfo {
        if info.code == crate::timer::SI_TIMER {
            let id = info.fields[0] as u32 as i32;
            let timer = self.group().timers.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned();
            if let Some(t) = timer {
                let overrun = t.timer.delivered().min(i32::MAX as u64);
                info.fields[0] = u64::from(id as u32) | (overrun << 32);
            }
        }
        info
    }

    /// Takes a pending signal in `mask` whatever the signal mask says
    /// (signalfd, sigtimedwait): the thread's own first, then the
    /// process's, lowest number first.
    pub fn take_signal(&self, mask: u64) -> Option<Siginfo> {
        let mut own = self.shared.pending();
        let mut group = self.group().pending();
        let sig = next_deliverable((own.bits | group.bits) & mask, 0)?;
        let from = if own.bits & bit(sig) != 0 { &mut *own } else { &mut *group };
        from.bits &= !bit(sig);
        let info = from.info[(sig - 1) as usize];
        drop((own, group));
        Some(self.settle_timer_signal(info))
    }

    /// Takes the next signal to deliver: the thread's own first, then the
    /// process's.
    fn dequeue_signal(&self) -> Option<(i32, Siginfo)> {
        let mut own = self.shared.pending();
        let mut group = self.group().pending();
        let sig = next_deliverable(own.bits | group.bits, self.signals.mask)?;
        let from = if own.bits & bit(sig) != 0 { &mut *own } else { &mut *group };
        from.bits &= !bit(sig);
        let info = from.info[(sig - 1) as usize];
        drop((own, group));
        Some((sig, self.settle_timer_signal(info)))
    }

    /// Delivers pending unblocked signals before the task returns to guest
    /// code: default actions, or a handler frame. Returns the exit status
    /// when a signal ends the task.
    pub fn deliver_signals(&mut self) -> Option<ExitStatus> {
        while let Some((sig, info)) = self.dequeue_signal() {
            let act = self.shared.group.actions()[(sig - 1) as usize];
            if self.ignores(sig, &info, &act) {
                continue;
            }
            match act.handler {
                sa::SIG_DFL => match default_action(sig) {
                    DefaultAction::Ignore | DefaultAction::Continue => continue,
                    DefaultAction::Stop => {
                        self.group_stop(sig);
                        continue;
                    }
                    DefaultAction::Terminate | DefaultAction::CoreDump => return Some(ExitStatus::Signaled(sig)),
                },
                _ => {
                    self.prepare_restart(Some(&act));
                    if let Err(e) = self.setup_frame(sig, &act, &info) {
                        tracing::info!(target: "sentry::signal", "cannot deliver signal {sig}: {e:?}; killed by SIGSEGV");
                        return Some(ExitStatus::Signaled(S::SIGSEGV));
                    }
                    // Only one handler frame per return to the guest.
                    return None;
                }
            }
        }
        self.prepare_restart(None);
        None
    }

    /// A system call interrupted by a signal goes on or fails with EINTR:
    /// ERESTARTSYS calls are restarted when no handler runs or the handler
    /// has SA_RESTART; ERESTARTNOHAND ones only when no handler runs;
    /// ERESTART_RESTARTBLOCK ones then continue through restart_syscall.
    /// With no handler, a mask a call set for its wait (sigsuspend, ppoll)
    /// comes back.
    fn prepare_restart(&mut self, act: Option<&Sigaction>) {
        use crate::syscalls::{ERESTARTNOHAND, ERESTART_RESTARTBLOCK};
        if act.is_none() {
            if let Some(m) = self.signals.saved_mask.take() {
                self.signals.mask = m;
            }
        }
        let Some(r) = self.restart.take() else { return };
        let restart = match r.kind {
            k if k == ERESTARTNOHAND || k == ERESTART_RESTARTBLOCK => act.is_none(),
            _ => act.is_none_or(|a| a.flags & sa::SA_RESTART != 0),
        };
        if !restart {
            self.restart_block = None;
            self.regs.0.rax = Errno::EINTR.as_return();
            return;
        }
        self.regs.0.rax = if r.kind == ERESTART_RESTARTBLOCK { syscalls::Sysno::restart_syscall as u64 } else { r.nr };
        self.regs.0.rip = self.regs.0.rip.wrapping_sub(2);
    }

    /// Builds the rt signal frame for `sig` and points the registers at its
    /// handler.
    fn setup_frame(&mut self, sig: i32, act: &Sigaction, info: &Siginfo) -> Result<(), Errno> {
        if act.flags & sa::SA_RESTORER == 0 {
            // x86-64 signal frames return through the restorer only.
            return Err(Errno::EFAULT);
        }
        let regs = self.regs.0;
        let use_altstack = act.flags & sa::SA_ONSTACK != 0
            && self.signals.altstack.ss_flags & S::SS_DISABLE == 0
            && !self.signals.on_altstack(regs.rsp);
        let mut sp = if use_altstack {
            self.signals.altstack.ss_sp + self.signals.altstack.ss_size
        } else {
            regs.rsp.wrapping_sub(RED_ZONE)
        };
        let mut fp = self.ctx_fp_state().map_err(|_| Errno::EFAULT)?;
        let fpsize = fp.len() as u64;
        sp = sp.checked_sub(fpsize + 4).ok_or(Errno::EFAULT)? & !63;
        let fpstate = sp;
        sp = sp.checked_sub(std::mem::size_of::<RtSigframe>() as u64).ok_or(Errno::EFAULT)?;
        sp = (sp & !15) - 8;
        // The software-reserved words of the FXSAVE area describe the frame's
        // XSAVE area (struct _fpx_sw_bytes).
        fp[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
        fp[468..472].copy_from_slice(&(fpsize as u32 + 4).to_le_bytes());
        fp[472..480].copy_from_slice(&platform::fp_features().to_le_bytes());
        fp[480..484].copy_from_slice(&(fpsize as u32).to_le_bytes());
        fp.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
        self.mm.copy_out(fpstate, &fp)?;
        let old_mask = self.signals.saved_mask.take().unwrap_or(self.signals.mask);
        let group = self.shared.group.clone();
        let fault = matches!(sig, S::SIGSEGV | S::SIGBUS);
        let frame = RtSigframe {
            pretcode: act.restorer,
            uc: Ucontext {
                flags: sa::UC_FP_XSTATE | sa::UC_SIGCONTEXT_SS | sa::UC_STRICT_RESTORE_SS,
                link: 0,
                stack: SigStack {
                    ss_sp: self.signals.altstack.ss_sp,
                    ss_flags: self.signals.altstack_flags(regs.rsp),
                    pad: 0,
                    ss_size: self.signals.altstack.ss_size,
                },
                mcontext: Sigcontext {
                    r8: regs.r8,
                    r9: regs.r9,
                    r10: regs.r10,
                    r11: regs.r11,
                    r12: regs.r12,
                    r13: regs.r13,
                    r14: regs.r14,
                    r15: regs.r15,
                    rdi: regs.rdi,
                    rsi: regs.rsi,
                    rbp: regs.rbp,
                    rbx: regs.rbx,
                    rdx: regs.rdx,
                    rax: regs.rax,
                    rcx: regs.rcx,
                    rsp: regs.rsp,
                    rip: regs.rip,
                    eflags: regs.eflags,
                    cs: regs.cs as u16,
                    ss: regs.ss as u16,
                    trapno: if fault { 14 } else { 0 },
                    oldmask: old_mask,
                    cr2: if fault { info.fields[0] } else { 0 },
                    fpstate,
                    ..Default::default()
                },
                sigmask: old_mask,
            },
            info: *info,
        };
        self.mm.copy_out(sp, frame.as_bytes())?;
        let r = &mut self.regs.0;
        r.rdi = sig as u64;
        r.rsi = sp + 8 + std::mem::size_of::<Ucontext>() as u64;
        r.rdx = sp + 8;
        r.rax = 0;
        r.rsp = sp;
        r.rip = act.handler;
        r.eflags &= !EFLAGS_DF_RF_TF;
        r.cs = 0x33;
        r.ss = 0x2b;
        r.orig_rax = u64::MAX;
        self.set_ctx_fp_state(&platform::initial_fp_state()).map_err(|_| Errno::EFAULT)?;
        let s = &mut self.signals;
        s.mask = old_mask | act.mask;
        if act.flags & sa::SA_NODEFER == 0 {
            s.mask |= bit(sig);
        }
        s.mask &= !UNBLOCKABLE;
        if act.flags & sa::SA_RESETHAND != 0 {
            group.actions()[(sig - 1) as usize] = Sigaction::default();
        }
        Ok(())
    }

    /// `rt_sigreturn`: restores what `setup_frame` saved. Returns the
    /// restored `rax`, which becomes the call's "result".
    pub fn sigreturn(&mut self) -> Result<u64, Errno> {
        let frame_addr = self.regs.0.rsp.wrapping_sub(8);
        let frame: RtSigframe = self.read_obj(frame_addr)?;
        let m = frame.uc.mcontext;
        let r = &mut self.regs.0;
        (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15) = (m.r8, m.r9, m.r10, m.r11, m.r12, m.r13, m.r14, m.r15);
        (r.rdi, r.rsi, r.rbp, r.rbx, r.rdx, r.rax, r.rcx, r.rsp) =
            (m.rdi, m.rsi, m.rbp, m.rbx, m.rdx, m.rax, m.rcx, m.rsp);
        r.rip = m.rip;
        r.eflags = (r.eflags & !FIX_EFLAGS) | (m.eflags & FIX_EFLAGS);
        r.cs = 0x33;
        r.ss = 0x2b;
        r.orig_rax = u64::MAX;
        self.signals.mask = frame.uc.sigmask & !UNBLOCKABLE;
        if m.fpstate != 0 {
            let mut fp = vec![0u8; platform::fp_state_size()];
            self.mm.copy_in(m.fpstate, &mut fp)?;
            // Only state a guest may set: keep the header sane.
            fp[520..576].fill(0);
            let features = u64::from_le_bytes(fp[512..520].try_into().unwrap_or_default());
            fp[512..520].copy_from_slice(&(features & platform::fp_features()).to_le_bytes());
            self.set_ctx_fp_state(&fp).map_err(|_| Errno::EFAULT)?;
        }
        // sigaltstack settings saved in the frame come back, as on Linux.
        let st = frame.uc.stack;
        if !self.signals.on_altstack(self.regs.0.rsp)
            && st.ss_flags & S::SS_DISABLE == 0
            && st.ss_size >= S::MINSIGSTKSZ
        {
            self.signals.altstack =
                SigStack { ss_sp: st.ss_sp, ss_flags: st.ss_flags & (1 << 31), pad: 0, ss_size: st.ss_size };
        }
        Ok(self.regs.0.rax)
    }
}
