//! Signal calls: actions, masks, the alternate stack, sending signals to the
//! task itself, waiting for them, and returning from handlers.
use syscalls::flags::{sa, signal as S};
use syscalls::structs::{SigStack, Sigaction, Siginfo};
use syscalls::Errno;

use super::SysResult;
use crate::signal::{bit, user_info, valid, UNBLOCKABLE};
use crate::task::Task;

pub fn sys_rt_sigaction(t: &mut Task, sig: i32, act: u64, old: u64, setsize: u64) -> SysResult {
    if setsize != 8 || !valid(sig) {
        return Err(Errno::EINVAL);
    }
    let idx = (sig - 1) as usize;
    let new: Option<Sigaction> = if act != 0 { Some(t.read_obj(act)?) } else { None };
    if new.is_some() && (sig == S::SIGKILL || sig == S::SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    if old != 0 {
        t.write_obj(old, &t.signals.actions[idx])?;
    }
    if let Some(mut a) = new {
        a.mask &= !UNBLOCKABLE;
        t.signals.actions[idx] = a;
        // Setting a signal to be ignored discards it if pending.
        if a.handler == sa::SIG_IGN {
            t.signals.pending &= !bit(sig);
        }
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(t: &mut Task, how: i32, set: u64, old: u64, setsize: u64) -> SysResult {
    if setsize != 8 {
        return Err(Errno::EINVAL);
    }
    let new: Option<u64> = if set != 0 { Some(t.read_obj(set)?) } else { None };
    if new.is_some() && !matches!(how, S::SIG_BLOCK | S::SIG_UNBLOCK | S::SIG_SETMASK) {
        return Err(Errno::EINVAL);
    }
    if old != 0 {
        t.write_obj(old, &t.signals.mask)?;
    }
    if let Some(n) = new {
        let m = match how {
            S::SIG_BLOCK => t.signals.mask | n,
            S::SIG_UNBLOCK => t.signals.mask & !n,
            _ => n,
        };
        t.signals.mask = m & !UNBLOCKABLE;
    }
    Ok(0)
}

pub fn sys_rt_sigpending(t: &mut Task, set: u64, setsize: u64) -> SysResult {
    if setsize > 8 {
        return Err(Errno::EINVAL);
    }
    let pending = t.signals.pending & t.signals.mask;
    t.mm.copy_out(set, &pending.to_le_bytes()[..setsize as usize])?;
    Ok(0)
}

pub fn sys_sigaltstack(t: &mut Task, ss: u64, old: u64) -> SysResult {
    let new: Option<SigStack> = if ss != 0 { Some(t.read_obj(ss)?) } else { None };
    let sp = t.regs.sp();
    if old != 0 {
        let mut cur = t.signals.altstack;
        cur.ss_flags = t.signals.altstack_flags(sp);
        t.write_obj(old, &cur)?;
    }
    if let Some(mut n) = new {
        if t.signals.on_altstack(sp) {
            return Err(Errno::EPERM);
        }
        // SS_AUTODISARM (1 << 31) may accompany SS_ONSTACK.
        let mode = n.ss_flags & !(1 << 31);
        match mode {
            S::SS_DISABLE => n = SigStack { ss_flags: S::SS_DISABLE, ..Default::default() },
            0 | S::SS_ONSTACK => {
                if n.ss_size < S::MINSIGSTKSZ {
                    return Err(Errno::ENOMEM);
                }
                n.ss_flags &= 1 << 31;
            }
            _ => return Err(Errno::EINVAL),
        }
        t.signals.altstack = n;
    }
    Ok(0)
}

/// The container's processes: only the task itself so far.
fn is_self(t: &Task, pid: i32) -> bool {
    pid == t.tid || pid == 0 || pid == -1 || pid == -t.tid
}

fn send_self(t: &mut Task, sig: i32, code: i32) -> SysResult {
    if sig == 0 {
        return Ok(0);
    }
    if !valid(sig) {
        return Err(Errno::EINVAL);
    }
    let uid = t.creds.uid;
    t.send_signal(user_info(sig, code, t.tid, uid));
    Ok(0)
}

pub fn sys_kill(t: &mut Task, pid: i32, sig: i32) -> SysResult {
    if !valid(sig) && sig != 0 {
        return Err(Errno::EINVAL);
    }
    if is_self(t, pid) {
        return send_self(t, sig, sa::SI_USER);
    }
    Err(Errno::ESRCH)
}

pub fn sys_tgkill(t: &mut Task, tgid: i32, tid: i32, sig: i32) -> SysResult {
    if tgid <= 0 || tid <= 0 || (!valid(sig) && sig != 0) {
        return Err(Errno::EINVAL);
    }
    if tgid != t.tid || tid != t.tid {
        return Err(Errno::ESRCH);
    }
    send_self(t, sig, sa::SI_TKILL)
}

pub fn sys_tkill(t: &mut Task, tid: i32, sig: i32) -> SysResult {
    if tid <= 0 || (!valid(sig) && sig != 0) {
        return Err(Errno::EINVAL);
    }
    if tid != t.tid {
        return Err(Errno::ESRCH);
    }
    send_self(t, sig, sa::SI_TKILL)
}

pub fn sys_rt_sigqueueinfo(t: &mut Task, pid: i32, sig: i32, uinfo: u64) -> SysResult {
    sys_rt_tgsigqueueinfo(t, pid, pid, sig, uinfo)
}

pub fn sys_rt_tgsigqueueinfo(t: &mut Task, tgid: i32, tid: i32, sig: i32, uinfo: u64) -> SysResult {
    if !valid(sig) {
        return Err(Errno::EINVAL);
    }
    let mut info: Siginfo = t.read_obj(uinfo)?;
    if tgid != t.tid || tid != t.tid {
        return Err(Errno::ESRCH);
    }
    info.signo = sig;
    t.send_signal(info);
    Ok(0)
}

pub fn sys_rt_sigreturn(t: &mut Task) -> SysResult {
    match t.sigreturn() {
        Ok(rax) => Ok(rax),
        Err(_) => {
            // A corrupt frame: Linux kills the task with SIGSEGV.
            t.force_signal(crate::signal::fault_info(S::SIGSEGV, sa::SI_KERNEL, 0));
            Ok(t.regs.0.rax)
        }
    }
}

/// Waits for a signal with `mask` in place (sigsuspend, pause). Only the
/// task itself can signal it so far, so with nothing deliverable pending it
/// sleeps until the sandbox is killed.
fn suspend(t: &mut Task, mask: u64) -> SysResult {
    let old = t.signals.mask;
    t.signals.mask = mask & !UNBLOCKABLE;
    if t.signals.pending & !t.signals.mask != 0 {
        t.signals.saved_mask = Some(old);
        return Err(Errno::EINTR);
    }
    tracing::info!(target: "sentry::signal", "task {} waits for a signal nothing can send yet", t.tid);
    loop {
        std::thread::park();
    }
}

pub fn sys_rt_sigsuspend(t: &mut Task, set: u64, setsize: u64) -> SysResult {
    if setsize != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = t.read_obj(set)?;
    suspend(t, mask)
}

pub fn sys_pause(t: &mut Task) -> SysResult {
    let mask = t.signals.mask;
    suspend(t, mask)
}
