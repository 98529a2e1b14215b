//! Signal calls: actions, masks, the alternate stack, sending signals to the
//! task itself, waiting for them, and returning from handlers.
use syscalls::flags::{sa, signal as S};
use syscalls::structs::{SigStack, Sigaction, Siginfo};
use syscalls::Errno;

use super::SysResult;
use std::sync::Arc;

use crate::process::{TaskShared, ThreadGroup};
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
        let cur = t.group().actions()[idx];
        t.write_obj(old, &cur)?;
    }
    if let Some(mut a) = new {
        a.mask &= !UNBLOCKABLE;
        t.group().actions()[idx] = a;
        // Setting a signal to be ignored discards it if pending, in the
        // process and in each of its threads.
        if a.handler == sa::SIG_IGN {
            t.group().pending().bits &= !bit(sig);
            let threads = t.group().state().threads.clone();
            for th in threads {
                th.pending().bits &= !bit(sig);
            }
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
    let pending = (t.shared.pending().bits | t.group().pending().bits) & t.signals.mask;
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

/// The code of a signal `t` sends `target` with `code`: from an ancestor
/// namespace, SIGKILL and SIGSTOP get through to the namespace's init, as
/// the kernel's do (neither is ever seen, so the code is not).
pub(crate) fn code_for(t: &Task, target: &ThreadGroup, sig: i32, code: i32) -> i32 {
    let from_above = target.is_ns_init() && target.pidns != t.pidns();
    if from_above && matches!(sig, S::SIGKILL | S::SIGSTOP) {
        sa::SI_KERNEL
    } else {
        code
    }
}

/// Sends `sig` to the process `target` (0 only checks it exists).
fn send_to_group(t: &Task, target: &ThreadGroup, sig: i32) {
    if sig == 0 {
        return;
    }
    let code = code_for(t, target, sig, sa::SI_USER);
    target.send(user_info(sig, code, t.group().pid_in(target.pidns), t.creds.uid));
    t.kernel.events.notify();
}

/// Sends `sig` to the thread `target` (0 only checks it exists).
fn send_to(t: &Task, target: &Arc<TaskShared>, sig: i32, code: i32) {
    if sig == 0 {
        return;
    }
    let code = code_for(t, &target.group, sig, code);
    target.queue(user_info(sig, code, t.group().pid_in(target.group.pidns), t.creds.uid));
    target.interrupt();
    t.kernel.events.notify();
}

pub fn sys_kill(t: &mut Task, pid: i32, sig: i32) -> SysResult {
    if !valid(sig) && sig != 0 {
        return Err(Errno::EINVAL);
    }
    let my_pgid = t.group().state().pgid;
    let ns = t.pidns();
    // Ids are the caller's namespace's; it sees only the processes there.
    let id = match pid {
        0 | -1 => 0,
        i32::MIN => return Err(Errno::ESRCH),
        p => t.global_id(p.abs()).ok_or(Errno::ESRCH)?,
    };
    let targets: Vec<Arc<ThreadGroup>> = {
        let pids = t.kernel.pids();
        pids.groups
            .values()
            .filter(|g| match pid {
                p if p > 0 => g.pid == id,
                0 => g.state().pgid == my_pgid,
                // Everything it sees but its namespace's init and itself.
                -1 => crate::kernel::sees(ns, g) && g.pid_in(ns) > 1 && g.pid != t.group().pid,
                _ => g.state().pgid == id,
            })
            .cloned()
            .collect()
    };
    // A zombie still counts as existing for kill(pid, 0); a signal to it
    // goes nowhere.
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    for target in targets.iter().filter(|g| g.state().exit.is_none()) {
        send_to_group(t, target, sig);
    }
    Ok(0)
}

pub fn sys_tgkill(t: &mut Task, tgid: i32, tid: i32, sig: i32) -> SysResult {
    if tgid <= 0 || tid <= 0 || (!valid(sig) && sig != 0) {
        return Err(Errno::EINVAL);
    }
    let target = t.task_by_id(tid).ok_or(Errno::ESRCH)?;
    if target.group.pid_in(t.pidns()) != tgid {
        return Err(Errno::ESRCH);
    }
    send_to(t, &target, sig, sa::SI_TKILL);
    Ok(0)
}

pub fn sys_tkill(t: &mut Task, tid: i32, sig: i32) -> SysResult {
    if tid <= 0 || (!valid(sig) && sig != 0) {
        return Err(Errno::EINVAL);
    }
    let target = t.task_by_id(tid).ok_or(Errno::ESRCH)?;
    send_to(t, &target, sig, sa::SI_TKILL);
    Ok(0)
}

pub fn sys_rt_tgsigqueueinfo(t: &mut Task, tgid: i32, tid: i32, sig: i32, uinfo: u64) -> SysResult {
    if !valid(sig) {
        return Err(Errno::EINVAL);
    }
    let mut info: Siginfo = t.read_obj(uinfo)?;
    let target = t.task_by_id(tid).ok_or(Errno::ESRCH)?;
    if target.group.pid_in(t.pidns()) != tgid {
        return Err(Errno::ESRCH);
    }
    // Only the kernel may claim kernel or kill() origins for another task.
    if info.code >= 0 && target.tid() != t.tid {
        return Err(Errno::EPERM);
    }
    info.signo = sig;
    info.code = code_for(t, &target.group, sig, info.code);
    target.queue(info);
    target.interrupt();
    t.kernel.events.notify();
    Ok(0)
}

pub fn sys_rt_sigqueueinfo(t: &mut Task, pid: i32, sig: i32, uinfo: u64) -> SysResult {
    if !valid(sig) {
        return Err(Errno::EINVAL);
    }
    let mut info: Siginfo = t.read_obj(uinfo)?;
    let target = t.group_by_id(pid).ok_or(Errno::ESRCH)?;
    if info.code >= 0 && target.pid != t.group().pid {
        return Err(Errno::EPERM);
    }
    info.signo = sig;
    info.code = code_for(t, &target, sig, info.code);
    if target.state().exit.is_none() {
        target.send(info);
        t.kernel.events.notify();
    }
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

/// Waits for a signal with `mask` in place (sigsuspend, pause); the old mask
/// comes back when the handler returns.
fn suspend(t: &mut Task, mask: u64) -> SysResult {
    let old = t.signals.mask;
    t.signals.mask = mask & !UNBLOCKABLE;
    let _ = t.block_on(None, || None::<()>);
    t.signals.saved_mask = Some(old);
    Err(super::ERESTARTNOHAND)
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

pub fn sys_rt_sigtimedwait(t: &mut Task, set: u64, info: u64, timeout: u64, setsize: u64) -> SysResult {
    if setsize != 8 {
        return Err(Errno::EINVAL);
    }
    let wanted = t.read_obj::<u64>(set)? & !UNBLOCKABLE;
    let deadline = if timeout == 0 {
        None
    } else {
        let ts: syscalls::structs::Timespec = t.read_obj(timeout)?;
        Some(crate::timer::instant_after(std::time::Instant::now(), crate::vfs::timerfd::duration_of(&ts)?))
    };
    let got = match t.block_on(deadline, || t.take_signal(wanted)) {
        Ok(info) => info,
        Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
        // Interrupted by a handled signal: EINTR, never restarted.
        Err(_) => return Err(Errno::EINTR),
    };
    if info != 0 {
        t.write_obj(info, &got)?;
    }
    Ok(got.signo as u64)
}
