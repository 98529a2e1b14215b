//! Process and identity calls: exit, ids, limits, names, architecture state.
use syscalls::flags::{arch_prctl as AP, prctl as PR, rlimit};
use syscalls::structs::{Rlimit, Utsname};
use syscalls::Errno;

use super::SysResult;
use crate::task::{ExitStatus, Task};

pub fn sys_exit(t: &mut Task, code: i32) -> SysResult {
    t.exit = Some(ExitStatus::Exited(code & 0xff));
    Ok(0)
}

pub fn sys_exit_group(t: &mut Task, code: i32) -> SysResult {
    sys_exit(t, code)
}

/// The container's init is pid 1 of its PID namespace, and its own process
/// group and session leader.
pub fn sys_getpid(t: &mut Task) -> SysResult {
    Ok(t.tid as u64)
}

pub fn sys_getppid(_t: &mut Task) -> SysResult {
    Ok(0)
}

pub fn sys_getpgid(t: &mut Task, pid: i32) -> SysResult {
    if pid != 0 && pid != t.tid {
        return Err(Errno::ESRCH);
    }
    Ok(t.tid as u64)
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
    Ok(t.tid as u64)
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

pub fn sys_prctl(t: &mut Task, op: u64, arg2: u64) -> SysResult {
    match op {
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
            t.comm = name;
            Ok(0)
        }
        PR::PR_GET_NAME => t.mm.copy_out(arg2, &t.comm).map(|_| 0),
        PR::PR_GET_DUMPABLE => Ok(1),
        PR::PR_SET_DUMPABLE => {
            if arg2 <= 1 {
                Ok(0)
            } else {
                Err(Errno::EINVAL)
            }
        }
        PR::PR_GET_NO_NEW_PRIVS => Ok(0),
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
    if pid != 0 && pid != t.tid {
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
        if n.rlim_max > cur.rlim_max && t.creds.euid != 0 {
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

pub fn sys_sched_getaffinity(t: &mut Task, pid: i32, len: u32, mask: u64) -> SysResult {
    if pid != 0 && pid != t.tid {
        return Err(Errno::ESRCH);
    }
    // The mask size the kernel uses: nr_cpu_ids rounded up to longs.
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()).min(1024);
    let size = ncpu.div_ceil(64) * 8;
    if (len as usize) < size || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let mut bytes = vec![0u8; size];
    for cpu in 0..ncpu {
        bytes[cpu / 8] |= 1 << (cpu % 8);
    }
    t.mm.copy_out(mask, &bytes)?;
    Ok(size as u64)
}

pub fn sys_sched_yield(_t: &mut Task) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}
