//! Process and identity calls: exit, ids, limits, names, architecture state.
use std::sync::Arc;

use syscalls::flags::{arch_prctl as AP, prctl as PR, rlimit, sa, signal};
use syscalls::structs::{Rlimit, Siginfo, Utsname};
use syscalls::Errno;

use super::SysResult;
use crate::process::ThreadGroup;
use crate::task::{ExitStatus, Task};
use crate::vfs::pidfd::PidFd;

pub fn sys_exit(t: &mut Task, code: i32) -> SysResult {
    t.exit = Some(ExitStatus::Exited(code & 0xff));
    Ok(0)
}

pub fn sys_exit_group(t: &mut Task, code: i32) -> SysResult {
    let status = ExitStatus::Exited(code & 0xff);
    t.begin_group_exit(status);
    t.exit = Some(status);
    Ok(0)
}

pub fn sys_getpid(t: &mut Task) -> SysResult {
    Ok(t.group().vpid as u64)
}

pub fn sys_gettid(t: &mut Task) -> SysResult {
    Ok(t.vtid() as u64)
}

pub fn sys_getppid(t: &mut Task) -> SysResult {
    Ok(t.group().parent_pid() as u64)
}

/// The process `pid` names (0: the caller's).
fn group_of(t: &Task, pid: i32) -> Result<Arc<ThreadGroup>, Errno> {
    if pid == 0 {
        return Ok(t.group().clone());
    }
    t.group_by_id(pid).ok_or(Errno::ESRCH)
}

pub fn sys_getpgid(t: &mut Task, pid: i32) -> SysResult {
    let pgid = group_of(t, pid)?.state().pgid;
    Ok(t.vpid(pgid) as u64)
}

pub fn sys_getsid(t: &mut Task, pid: i32) -> SysResult {
    let sid = group_of(t, pid)?.state().sid;
    Ok(t.vpid(sid) as u64)
}

pub fn sys_setpgid(t: &mut Task, pid: i32, pgid: i32) -> SysResult {
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let target = group_of(t, pid)?;
    let me = t.group().clone();
    let is_child = target.state().parent.as_ref().is_some_and(|p| Arc::ptr_eq(p, &me));
    if !Arc::ptr_eq(&target, &me) && !is_child {
        return Err(Errno::ESRCH);
    }
    let my_sid = me.state().sid;
    // The group, by its id in the caller's namespace (one that is not
    // there cannot be in the caller's session).
    let pgid = if pgid == 0 { target.pid } else { t.global_id(pgid).ok_or(Errno::EPERM)? };
    // Looked for before the target's state is locked: the table's lock
    // comes first.
    let exists = pgid == target.pid
        || t.kernel.pids().groups.values().any(|g| {
            if Arc::ptr_eq(g, &target) {
                return false;
            }
            let st = g.state();
            st.pgid == pgid && st.sid == my_sid
        });
    let mut st = target.state();
    if st.sid != my_sid {
        return Err(Errno::EPERM);
    }
    if st.sid == target.pid {
        // A session leader cannot change its group.
        return Err(Errno::EPERM);
    }
    if !exists {
        return Err(Errno::EPERM);
    }
    st.pgid = pgid;
    Ok(0)
}

pub fn sys_setsid(t: &mut Task) -> SysResult {
    let me = t.group().clone();
    let pid = me.pid;
    let leads_group = t.kernel.pids().groups.values().any(|g| !Arc::ptr_eq(g, &me) && g.state().pgid == pid);
    let mut st = me.state();
    if st.pgid == pid || leads_group {
        return Err(Errno::EPERM);
    }
    st.pgid = pid;
    st.sid = pid;
    Ok(me.vpid as u64)
}

use syscalls::flags::wait::*;

/// Which children a wait looks at.
#[derive(Clone, Copy)]
enum Which {
    Pid(i32),
    Pgid(i32),
    Any,
}

/// What a wait reports about a child.
#[derive(Clone, Copy)]
enum WaitEvent {
    Exited(ExitStatus),
    Stopped(i32),
    Continued,
}

/// Which changes a wait reports, and how.
#[derive(Clone, Copy)]
struct WaitFor {
    exited: bool,
    stopped: bool,
    continued: bool,
    nohang: bool,
    /// WNOWAIT: report but leave the child as it is.
    keep: bool,
}

/// A child's change a wait found: its pid, what happened, its CPU time (with
/// its reaped descendants'), and its pid as the waiter sees it.
type Found = (i32, WaitEvent, std::time::Duration, i32);

/// Waits for a child to change state as `w` asks; None with WNOHANG when
/// none has. An exited child is reaped unless `w.keep`.
fn wait_child(t: &Task, which: Which, w: WaitFor) -> Result<Option<Found>, Errno> {
    let me = t.group().clone();
    let ns = me.pidns;
    let found = t.block_on(None, || {
        let st = me.state();
        let mut any = false;
        for c in &st.children {
            let mut cs = c.state();
            let matches = match which {
                Which::Pid(p) => c.pid == p,
                Which::Pgid(g) => cs.pgid == g,
                Which::Any => true,
            };
            if !matches {
                continue;
            }
            any = true;
            let cpu = cs.cpu_time + cs.children_time;
            if let (Some(status), true) = (cs.exit, w.exited) {
                return Some(Ok(Some((c.pid, WaitEvent::Exited(status), cpu, c.pid_in(ns)))));
            }
            if let (Some(sig), true, true) = (cs.stopped, cs.stop_unreported, w.stopped) {
                cs.stop_unreported &= w.keep;
                return Some(Ok(Some((c.pid, WaitEvent::Stopped(sig), cpu, c.pid_in(ns)))));
            }
            if cs.continue_unreported && w.continued {
                cs.continue_unreported &= w.keep;
                return Some(Ok(Some((c.pid, WaitEvent::Continued, cpu, c.pid_in(ns)))));
            }
        }
        if !any {
            return Some(Err(Errno::ECHILD));
        }
        w.nohang.then_some(Ok(None))
    })??;
    if let (Some((pid, WaitEvent::Exited(_), cpu, _)), false) = (found, w.keep) {
        let mut st = me.state();
        st.children.retain(|c| c.pid != pid);
        st.children_time += cpu;
        drop(st);
        t.kernel.pids().remove_group(pid);
    }
    Ok(found)
}

/// `struct rusage` with only the user time filled in.
fn rusage_bytes(cpu: std::time::Duration) -> [u8; 144] {
    let mut buf = [0u8; 144];
    buf[0..8].copy_from_slice(&(cpu.as_secs() as i64).to_le_bytes());
    buf[8..16].copy_from_slice(&i64::from(cpu.subsec_micros()).to_le_bytes());
    buf
}

pub fn sys_wait4(t: &mut Task, pid: i32, status: u64, options: u32, rusage: u64) -> SysResult {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    // Ids of the caller's namespace; one not there is no child of it.
    let which = match pid {
        -1 => Which::Any,
        0 => Which::Pgid(t.group().state().pgid),
        i32::MIN => return Err(Errno::ESRCH),
        p if p < -1 => Which::Pgid(t.global_id(-p).ok_or(Errno::ECHILD)?),
        p => Which::Pid(t.global_id(p).ok_or(Errno::ECHILD)?),
    };
    let w = WaitFor {
        exited: true,
        stopped: options & WUNTRACED != 0,
        continued: options & WCONTINUED != 0,
        nohang: options & WNOHANG != 0,
        keep: false,
    };
    match wait_child(t, which, w)? {
        None => Ok(0),
        Some((_, ev, cpu, pid)) => {
            if status != 0 {
                let word = match ev {
                    WaitEvent::Exited(st) => st.wait_status(),
                    WaitEvent::Stopped(sig) => (sig << 8) | 0x7f,
                    WaitEvent::Continued => 0xffff,
                };
                t.write_obj(status, &word)?;
            }
            if rusage != 0 {
                let used = if matches!(ev, WaitEvent::Exited(_)) { cpu } else { std::time::Duration::ZERO };
                t.mm.copy_out(rusage, &rusage_bytes(used))?;
            }
            Ok(pid as u64)
        }
    }
}

pub fn sys_waitid(t: &mut Task, idtype: u32, id: i32, infop: u64, options: u32, rusage: u64) -> SysResult {
    if options & !(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE) != 0
        || options & (WEXITED | WUNTRACED | WCONTINUED) == 0
    {
        return Err(Errno::EINVAL);
    }
    let which = match idtype {
        P_ALL => Which::Any,
        P_PID if id > 0 => Which::Pid(t.global_id(id).ok_or(Errno::ECHILD)?),
        P_PGID if id == 0 => Which::Pgid(t.group().state().pgid),
        P_PGID if id > 0 => Which::Pgid(t.global_id(id).ok_or(Errno::ECHILD)?),
        P_PIDFD => {
            let f = t.fds.get(id)?;
            let group = f.anon::<PidFd>().ok_or(Errno::EINVAL)?.group.clone();
            Which::Pid(group.pid)
        }
        _ => return Err(Errno::EINVAL),
    };
    let w = WaitFor {
        exited: options & WEXITED != 0,
        stopped: options & WUNTRACED != 0,
        continued: options & WCONTINUED != 0,
        nohang: options & WNOHANG != 0,
        keep: options & WNOWAIT != 0,
    };
    let found = wait_child(t, which, w)?;
    if infop != 0 {
        let mut info = Siginfo::default();
        if let Some((_, ev, _, pid)) = found {
            info.signo = signal::SIGCHLD;
            let (code, status) = match ev {
                WaitEvent::Exited(ExitStatus::Exited(c)) => (sa::CLD_EXITED, c),
                // No core is ever dumped: CLD_KILLED for core signals too.
                WaitEvent::Exited(ExitStatus::Signaled(s)) => (sa::CLD_KILLED, s),
                WaitEvent::Stopped(s) => (sa::CLD_STOPPED, s),
                WaitEvent::Continued => (sa::CLD_CONTINUED, signal::SIGCONT),
            };
            info.code = code;
            info.fields[0] = u64::from(pid as u32) | (u64::from(t.creds.uid) << 32);
            info.fields[1] = u64::from(status as u32);
        }
        t.write_obj(infop, &info)?;
    }
    if rusage != 0 {
        let cpu = found.map_or(std::time::Duration::ZERO, |f| f.2);
        t.mm.copy_out(rusage, &rusage_bytes(cpu))?;
    }
    Ok(0)
}

pub fn sys_clone(t: &mut Task, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> SysResult {
    use syscalls::flags::clone::*;
    // The legacy call returns the pidfd where the parent's tid would go.
    if flags & CLONE_PIDFD != 0 && flags & CLONE_PARENT_SETTID != 0 {
        return Err(Errno::EINVAL);
    }
    clone_common(t, flags, stack, ptid, ctid, tls, ptid)
}

fn clone_common(t: &mut Task, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64, pidfd: u64) -> SysResult {
    use syscalls::flags::clone::*;
    if flags & CLONE_NEW_ANY != 0 {
        tracing::warn!(target: "sentry::syscall", "clone flags {flags:#x}: namespaces are not supported yet");
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_PIDFD != 0 && flags & (CLONE_THREAD | CLONE_DETACHED) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_PIDFD != 0 {
        // Fail before the child exists if the pidfd cannot be returned.
        t.mm.check_writable(pidfd, 4)?;
    }
    let (pid, vpid) = t.fork(flags, stack, ptid, ctid, tls)?;
    if flags & CLONE_PIDFD != 0 {
        let group = t.kernel.pids().groups.get(&pid).cloned().ok_or(Errno::ESRCH)?;
        let fd = super::event::install(t, PidFd { group }, false, true)? as i32;
        t.write_obj(pidfd, &fd)?;
    }
    Ok(vpid as u64)
}

pub fn sys_pidfd_open(t: &mut Task, pid: i32, flags: u32) -> SysResult {
    if flags & !syscalls::flags::OpenFlags::O_NONBLOCK.bits() != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let group = {
        let pids = t.kernel.pids();
        match pids.group_in(t.pidns(), pid) {
            Some(g) => g,
            // A thread that does not lead its process.
            None if pids.task_in(t.pidns(), pid).is_some() => return Err(Errno::EINVAL),
            None => return Err(Errno::ESRCH),
        }
    };
    super::event::install(t, PidFd { group }, flags != 0, true)
}

pub fn sys_pidfd_send_signal(t: &mut Task, pidfd: i32, sig: i32, uinfo: u64, flags: u32) -> SysResult {
    if flags != 0 || !(sig == 0 || crate::signal::valid(sig)) {
        return Err(Errno::EINVAL);
    }
    let f = t.fds.get(pidfd)?;
    let group = f.anon::<PidFd>().ok_or(Errno::EBADF)?.group.clone();
    if group.state().exit.is_some() {
        return Err(Errno::ESRCH);
    }
    if sig == 0 {
        return Ok(0);
    }
    let info = if uinfo != 0 {
        let mut info: Siginfo = t.read_obj(uinfo)?;
        if info.signo != sig || (info.code >= 0 && group.pid != t.group().pid) {
            return Err(Errno::EINVAL);
        }
        info.signo = sig;
        info.code = super::signal::code_for(t, &group, sig, info.code);
        info
    } else {
        let code = super::signal::code_for(t, &group, sig, syscalls::flags::sa::SI_USER);
        crate::signal::user_info(sig, code, t.group().pid_in(group.pidns), t.creds.uid)
    };
    group.send(info);
    t.kernel.events.notify();
    Ok(0)
}

pub fn sys_clone3(t: &mut Task, uargs: u64, size: u64) -> SysResult {
    use syscalls::flags::clone::*;
    const VER0: u64 = 64;
    if !(VER0..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let args: syscalls::structs::CloneArgs = t.read_obj(uargs)?;
    // Later versions add set_tid and cgroup: only their zero values are
    // understood.
    if size > VER0 {
        let mut rest = vec![0u8; (size - VER0) as usize];
        t.mm.copy_in(uargs + VER0, &mut rest)?;
        if rest.iter().any(|b| *b != 0) {
            return Err(Errno::EINVAL);
        }
    }
    if args.flags & CSIGNAL != 0 || args.exit_signal > 64 || (args.stack == 0) != (args.stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    let stack = if args.stack != 0 { args.stack.checked_add(args.stack_size).ok_or(Errno::EINVAL)? } else { 0 };
    clone_common(t, args.flags | args.exit_signal, stack, args.parent_tid, args.child_tid, args.tls, args.pidfd)
}

pub fn sys_fork(t: &mut Task) -> SysResult {
    Ok(t.fork(u64::from(signal::SIGCHLD as u32), 0, 0, 0, 0)?.1 as u64)
}

pub fn sys_vfork(t: &mut Task) -> SysResult {
    use syscalls::flags::clone::{CLONE_VFORK, CLONE_VM};
    Ok(t.fork(CLONE_VM | CLONE_VFORK | u64::from(signal::SIGCHLD as u32), 0, 0, 0, 0)?.1 as u64)
}

pub fn sys_getuid(t: &mut Task) -> SysResult {
    Ok(u64::from(t.creds.uid))
}
pub fn sys_geteuid(t: &mut Task) -> SysResult {
    Ok(u64::from(t.creds.euid))
}
pub fn sys_getgid(t: &mut Task) -> SysResult {
    Ok(u64::from(t.creds.gid))
}
pub fn sys_getegid(t: &mut Task) -> SysResult {
    Ok(u64::from(t.creds.egid))
}

pub fn sys_getresuid(t: &mut Task, r: u64, e: u64, s: u64) -> SysResult {
    t.write_obj(r, &t.creds.uid)?;
    t.write_obj(e, &t.creds.euid)?;
    t.write_obj(s, &t.creds.suid)?;
    Ok(0)
}

pub fn sys_getresgid(t: &mut Task, r: u64, e: u64, s: u64) -> SysResult {
    t.write_obj(r, &t.creds.gid)?;
    t.write_obj(e, &t.creds.egid)?;
    t.write_obj(s, &t.creds.sgid)?;
    Ok(0)
}

pub fn sys_getgroups(t: &mut Task, size: i32, list: u64) -> SysResult {
    let n = t.creds.groups.len();
    if size == 0 {
        return Ok(n as u64);
    }
    if size < 0 || (size as usize) < n {
        return Err(Errno::EINVAL);
    }
    for (i, g) in t.creds.groups.iter().enumerate() {
        t.write_obj(list + 4 * i as u64, g)?;
    }
    Ok(n as u64)
}

pub fn sys_set_tid_address(t: &mut Task, addr: u64) -> SysResult {
    t.clear_child_tid = addr;
    Ok(t.vtid() as u64)
}

pub fn sys_set_robust_list(t: &mut Task, head: u64, len: u64) -> SysResult {
    if len != 24 {
        return Err(Errno::EINVAL);
    }
    t.robust_list = (head, len);
    Ok(0)
}

pub fn sys_arch_prctl(t: &mut Task, code: u64, addr: u64) -> SysResult {
    match code {
        AP::ARCH_SET_FS => {
            if addr >= t.mm.max_addr {
                return Err(Errno::EPERM);
            }
            t.regs.0.fs_base = addr;
            Ok(0)
        }
        AP::ARCH_SET_GS => {
            if addr >= t.mm.max_addr {
                return Err(Errno::EPERM);
            }
            t.regs.0.gs_base = addr;
            Ok(0)
        }
        AP::ARCH_GET_FS => t.write_obj(addr, &t.regs.0.fs_base).map(|_| 0),
        AP::ARCH_GET_GS => t.write_obj(addr, &t.regs.0.gs_base).map(|_| 0),
        AP::ARCH_GET_CPUID => Ok(1),
        // CPUID faulting is not offered to guests.
        AP::ARCH_SET_CPUID => Err(Errno::ENODEV),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_prctl(t: &mut Task, op: u64, arg2: u64, arg3: u64) -> SysResult {
    let cap_arg = |v: u64| u32::try_from(v).map_err(|_| Errno::EINVAL);
    match op {
        PR::PR_GET_KEEPCAPS => Ok(u64::from(t.creds.keep_caps)),
        PR::PR_SET_KEEPCAPS => {
            if arg2 > 1 {
                return Err(Errno::EINVAL);
            }
            t.creds.keep_caps = arg2 == 1;
            Ok(0)
        }
        PR::PR_CAPBSET_READ => {
            let cap = cap_arg(arg2)?;
            if cap > syscalls::flags::cap::CAP_LAST_CAP {
                return Err(Errno::EINVAL);
            }
            Ok((t.creds.caps.bounding >> cap) & 1)
        }
        PR::PR_CAPBSET_DROP => {
            t.creds.drop_bounding(cap_arg(arg2)?)?;
            t.publish();
            Ok(0)
        }
        PR::PR_CAP_AMBIENT => {
            let r = match arg2 {
                PR::PR_CAP_AMBIENT_IS_SET => {
                    let cap = cap_arg(arg3)?;
                    if cap > syscalls::flags::cap::CAP_LAST_CAP {
                        return Err(Errno::EINVAL);
                    }
                    return Ok((t.creds.caps.ambient >> cap) & 1);
                }
                PR::PR_CAP_AMBIENT_RAISE => t.creds.set_ambient(cap_arg(arg3)?, true),
                PR::PR_CAP_AMBIENT_LOWER => t.creds.set_ambient(cap_arg(arg3)?, false),
                PR::PR_CAP_AMBIENT_CLEAR_ALL => {
                    t.creds.caps.ambient = 0;
                    Ok(())
                }
                _ => Err(Errno::EINVAL),
            };
            r?;
            t.publish();
            Ok(0)
        }
        PR::PR_GET_SECUREBITS => Ok(0),
        PR::PR_SET_NO_NEW_PRIVS => {
            if arg2 != 1 {
                return Err(Errno::EINVAL);
            }
            t.creds.no_new_privs = true;
            t.publish();
            Ok(0)
        }
        PR::PR_SET_NAME => {
            // Linux copies at most 16 bytes and keeps 15 of them.
            let mut name = [0u8; 16];
            for (i, b) in name.iter_mut().take(15).enumerate() {
                let mut c = [0u8; 1];
                t.mm.copy_in(arg2 + i as u64, &mut c)?;
                if c[0] == 0 {
                    break;
                }
                *b = c[0];
            }
            t.set_comm(&name);
            Ok(0)
        }
        PR::PR_GET_NAME => {
            let name = t.comm_now();
            t.mm.copy_out(arg2, &name).map(|_| 0)
        }
        PR::PR_GET_DUMPABLE => Ok(1),
        PR::PR_SET_DUMPABLE => {
            if arg2 <= 1 {
                Ok(0)
            } else {
                Err(Errno::EINVAL)
            }
        }
        PR::PR_GET_NO_NEW_PRIVS => Ok(u64::from(t.creds.no_new_privs)),
        _ => {
            tracing::debug!(target: "sentry::syscall", "prctl option {op} not supported");
            Err(Errno::EINVAL)
        }
    }
}

fn field(s: &[u8]) -> [u8; 65] {
    let mut f = [0u8; 65];
    let n = s.len().min(64);
    f[..n].copy_from_slice(&s[..n]);
    f
}

/// The kernel release the sandbox reports.
pub const RELEASE: &[u8] = b"6.1.0";

pub fn sys_uname(t: &mut Task, buf: u64) -> SysResult {
    let u = Utsname {
        sysname: field(b"Linux"),
        nodename: field(&t.kernel.hostname),
        release: field(RELEASE),
        version: field(b"#1 SMP Cordon"),
        machine: field(b"x86_64"),
        domainname: field(b"(none)"),
    };
    t.write_obj(buf, &u)?;
    Ok(0)
}

pub fn sys_getrlimit(t: &mut Task, res: u32, buf: u64) -> SysResult {
    sys_prlimit64(t, 0, res, 0, buf)
}

pub fn sys_setrlimit(t: &mut Task, res: u32, buf: u64) -> SysResult {
    sys_prlimit64(t, 0, res, buf, 0)
}

pub fn sys_prlimit64(t: &mut Task, pid: i32, res: u32, new: u64, old: u64) -> SysResult {
    if pid != 0 && pid != t.group().vpid {
        return Err(Errno::ESRCH);
    }
    if res >= rlimit::RLIM_NLIMITS {
        return Err(Errno::EINVAL);
    }
    let cur = t.rlimits[res as usize];
    let newv: Option<Rlimit> = if new != 0 { Some(t.read_obj(new)?) } else { None };
    if let Some(n) = newv {
        if n.rlim_cur > n.rlim_max {
            return Err(Errno::EINVAL);
        }
        if n.rlim_max > cur.rlim_max && !t.creds.capable(syscalls::flags::cap::CAP_SYS_RESOURCE) {
            return Err(Errno::EPERM);
        }
        if res == rlimit::RLIMIT_NOFILE && n.rlim_max > 1 << 20 {
            return Err(Errno::EPERM);
        }
    }
    if old != 0 {
        t.write_obj(old, &cur)?;
    }
    if let Some(n) = newv {
        t.rlimits[res as usize] = n;
    }
    Ok(0)
}

/// The size of the kernel's CPU masks: nr_cpu_ids rounded up to longs.
fn cpumask_size(t: &Task) -> usize {
    t.kernel.ncpus.div_ceil(64) * 8
}

/// The task `pid` names (0: the caller), which must exist.
fn check_task(t: &Task, pid: i32) -> Result<(), Errno> {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid != 0 && t.task_by_id(pid).is_none() {
        return Err(Errno::ESRCH);
    }
    Ok(())
}

pub fn sys_sched_getaffinity(t: &mut Task, pid: i32, len: u32, mask: u64) -> SysResult {
    check_task(t, pid)?;
    let size = cpumask_size(t);
    if (len as usize) < size || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let mut bytes = vec![0u8; size];
    for cpu in 0..t.kernel.ncpus {
        bytes[cpu / 8] |= 1 << (cpu % 8);
    }
    if pid == 0 || pid == t.vtid() {
        if let Some(a) = &t.affinity {
            for (b, m) in bytes.iter_mut().zip(a) {
                *b &= m;
            }
        }
    }
    t.mm.copy_out(mask, &bytes)?;
    Ok(size as u64)
}

/// sched_setaffinity: kept and reported back; the sentry's threads are
/// placed by the host.
pub fn sys_sched_setaffinity(t: &mut Task, pid: i32, len: u32, mask: u64) -> SysResult {
    check_task(t, pid)?;
    let n = (len as usize).min(cpumask_size(t));
    let mut bytes = vec![0u8; n];
    t.mm.copy_in(mask, &mut bytes)?;
    let any_online = (0..t.kernel.ncpus).any(|cpu| bytes.get(cpu / 8).is_some_and(|b| b & (1 << (cpu % 8)) != 0));
    if !any_online {
        return Err(Errno::EINVAL);
    }
    if pid == 0 || pid == t.vtid() {
        t.affinity = Some(bytes);
    }
    Ok(0)
}

use syscalls::flags::sched::*;

pub fn sys_sched_getscheduler(t: &mut Task, pid: i32) -> SysResult {
    check_task(t, pid)?;
    Ok(SCHED_OTHER as u64)
}

/// Every task is scheduled by the host as SCHED_OTHER: that policy (with
/// priority 0) is accepted, real-time ones are refused.
pub fn sys_sched_setscheduler(t: &mut Task, pid: i32, policy: i32, param: u64) -> SysResult {
    check_task(t, pid)?;
    let prio: i32 = t.read_obj(param)?;
    match policy & !SCHED_RESET_ON_FORK {
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE if prio == 0 => Ok(0),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Err(Errno::EINVAL),
        SCHED_FIFO | SCHED_RR => Err(Errno::EPERM),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_sched_getparam(t: &mut Task, pid: i32, param: u64) -> SysResult {
    check_task(t, pid)?;
    t.write_obj(param, &0i32)?;
    Ok(0)
}

pub fn sys_sched_setparam(t: &mut Task, pid: i32, param: u64) -> SysResult {
    check_task(t, pid)?;
    let prio: i32 = t.read_obj(param)?;
    if prio != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn sys_sched_get_priority_max(_t: &mut Task, policy: i32) -> SysResult {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok(99),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_sched_get_priority_min(_t: &mut Task, policy: i32) -> SysResult {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// getcpu: the CPU the task's host thread is on, node 0.
pub fn sys_getcpu(t: &mut Task, cpu: u64, node: u64) -> SysResult {
    let c = nix::sched::sched_getcpu().unwrap_or(0) as u32;
    if cpu != 0 {
        t.write_obj(cpu, &c)?;
    }
    if node != 0 {
        t.write_obj(node, &0u32)?;
    }
    Ok(0)
}

pub fn sys_get_robust_list(t: &mut Task, pid: i32, head: u64, len: u64) -> SysResult {
    if pid != 0 && pid != t.vtid() {
        check_task(t, pid)?;
        // Other tasks' lists live in their own threads.
        return Err(Errno::EPERM);
    }
    t.write_obj(head, &t.robust_list.0)?;
    t.write_obj(len, &24u64)?;
    Ok(0)
}

pub fn sys_sched_yield(_t: &mut Task) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

/// Most argv/envp entries accepted.
const MAX_ARG_STRINGS: usize = 0x7fff_ffff;
/// Most argv + envp bytes accepted (E2BIG past it).
const MAX_ARG_BYTES: usize = 2 << 20;

/// Reads a NULL-terminated array of strings (argv, envp).
fn read_strv(t: &Task, addr: u64, total: &mut usize) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    for i in 0..MAX_ARG_STRINGS {
        let p: u64 = t.read_obj(addr + 8 * i as u64)?;
        if p == 0 {
            return Ok(out);
        }
        let s =
            t.mm.copy_in_cstr(p, MAX_ARG_BYTES).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::E2BIG } else { e })?;
        *total += s.len() + 1;
        if *total > MAX_ARG_BYTES {
            return Err(Errno::E2BIG);
        }
        out.push(s);
    }
    Err(Errno::E2BIG)
}

pub fn sys_execve(t: &mut Task, path: u64, argv: u64, envp: u64) -> SysResult {
    sys_execveat(t, syscalls::flags::AT_FDCWD, path, argv, envp, 0)
}

pub fn sys_execveat(t: &mut Task, dirfd: i32, path: u64, argv: u64, envp: u64, flags: u32) -> SysResult {
    use syscalls::flags::{AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = t.read_path(path)?;
    let mut total = 0;
    let argv = read_strv(t, argv, &mut total)?;
    let envp = read_strv(t, envp, &mut total)?;
    if p.is_empty() && flags & AT_EMPTY_PATH == 0 {
        return Err(Errno::ENOENT);
    }
    crate::loader::execve(t, dirfd, &p, argv, envp, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    Ok(0)
}
