//! Signal calls. Actions, masks and the alternate stack are recorded; a
//! signal a task sends itself takes its default action when no handler is
//! installed (delivery to handlers comes with the processes work).
use syscalls::flags::signal as S;
use syscalls::structs::{SigStack, Sigaction};
use syscalls::Errno;

use super::SysResult;
use crate::task::{ExitStatus, Task};

const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
const UNBLOCKABLE: u64 = (1 << (S::SIGKILL - 1)) | (1 << (S::SIGSTOP - 1));

fn valid(sig: i32) -> bool {
    (1..=S::NSIG).contains(&sig)
}

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

pub fn sys_sigaltstack(t: &mut Task, ss: u64, old: u64) -> SysResult {
    let new: Option<SigStack> = if ss != 0 { Some(t.read_obj(ss)?) } else { None };
    if old != 0 {
        t.write_obj(old, &t.signals.altstack)?;
    }
    if let Some(mut n) = new {
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

/// What a signal sent to the task itself does without a handler.
fn send_self(t: &mut Task, sig: i32) -> SysResult {
    if sig == 0 {
        return Ok(0);
    }
    if !valid(sig) {
        return Err(Errno::EINVAL);
    }
    let handler = t.signals.actions[(sig - 1) as usize].handler;
    let ignored_by_default = matches!(sig, S::SIGCHLD | S::SIGCONT | 23 /* SIGURG */ | 28 /* SIGWINCH */);
    if handler == SIG_IGN || (handler == SIG_DFL && ignored_by_default) {
        return Ok(0);
    }
    if handler == SIG_DFL && t.signals.mask & (1 << (sig - 1)) == 0 || sig == S::SIGKILL {
        t.exit = Some(ExitStatus::Signaled(sig));
        return Ok(0);
    }
    tracing::warn!(target: "sentry::signal", "signal {sig} to a handler or while blocked: delivery not supported yet");
    Err(Errno::ENOSYS)
}

pub fn sys_kill(t: &mut Task, pid: i32, sig: i32) -> SysResult {
    if pid == t.tid || pid == 0 || pid == -1 {
        return send_self(t, sig);
    }
    Err(Errno::ESRCH)
}

pub fn sys_tgkill(t: &mut Task, tgid: i32, tid: i32, sig: i32) -> SysResult {
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    if tgid != t.tid || tid != t.tid {
        return Err(Errno::ESRCH);
    }
    send_self(t, sig)
}

pub fn sys_tkill(t: &mut Task, tid: i32, sig: i32) -> SysResult {
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    if tid != t.tid {
        return Err(Errno::ESRCH);
    }
    send_self(t, sig)
}
