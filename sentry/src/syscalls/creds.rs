//! Changing credentials: the setuid and setgid families, setgroups,
//! capget/capset. The rules live in `creds::Credentials`.
use syscalls::flags::cap as C;
use syscalls::structs::{CapData, CapHeader};
use syscalls::Errno;

use super::SysResult;
use crate::creds::{CapSets, NGROUPS_MAX};
use crate::task::Task;

/// Applies a change to the caller's credentials and publishes them.
fn change(t: &mut Task, f: impl FnOnce(&mut crate::creds::Credentials) -> Result<(), Errno>) -> SysResult {
    f(&mut t.creds)?;
    t.publish();
    Ok(0)
}

pub fn sys_setuid(t: &mut Task, uid: u32) -> SysResult {
    change(t, |c| c.set_uid(uid))
}

pub fn sys_setgid(t: &mut Task, gid: u32) -> SysResult {
    change(t, |c| c.set_gid(gid))
}

pub fn sys_setreuid(t: &mut Task, r: u32, e: u32) -> SysResult {
    change(t, |c| c.set_reuid(r, e))
}

pub fn sys_setregid(t: &mut Task, r: u32, e: u32) -> SysResult {
    change(t, |c| c.set_regid(r, e))
}

pub fn sys_setresuid(t: &mut Task, r: u32, e: u32, s: u32) -> SysResult {
    change(t, |c| c.set_resuid(r, e, s))
}

pub fn sys_setresgid(t: &mut Task, r: u32, e: u32, s: u32) -> SysResult {
    change(t, |c| c.set_resgid(r, e, s))
}

pub fn sys_setfsuid(t: &mut Task, uid: u32) -> SysResult {
    let old = t.creds.set_fsuid(uid);
    t.publish();
    Ok(u64::from(old))
}

pub fn sys_setfsgid(t: &mut Task, gid: u32) -> SysResult {
    let old = t.creds.set_fsgid(gid);
    t.publish();
    Ok(u64::from(old))
}

pub fn sys_setgroups(t: &mut Task, size: i32, list: u64) -> SysResult {
    let n = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
    if n > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; n * 4];
    t.mm.copy_in(list, &mut raw)?;
    let groups = raw.chunks_exact(4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]])).collect();
    change(t, |c| c.set_groups(groups))
}

/// How many `CapData` structs a header version carries, or None for an
/// unknown version (then the kernel's version is written back, EINVAL).
fn cap_words(t: &Task, hdr_addr: u64) -> Result<(CapHeader, usize), Errno> {
    let hdr: CapHeader = t.read_obj(hdr_addr)?;
    match hdr.version {
        C::LINUX_CAPABILITY_VERSION_1 => Ok((hdr, 1)),
        C::LINUX_CAPABILITY_VERSION_2 | C::LINUX_CAPABILITY_VERSION_3 => Ok((hdr, 2)),
        _ => {
            let fixed = CapHeader { version: C::LINUX_CAPABILITY_VERSION_3, pid: hdr.pid };
            t.write_obj(hdr_addr, &fixed)?;
            Err(Errno::EINVAL)
        }
    }
}

pub fn sys_capget(t: &mut Task, hdr_addr: u64, data: u64) -> SysResult {
    let (hdr, words) = match cap_words(t, hdr_addr) {
        // Probing with no data is how libcap learns the version: not an error.
        Err(e) if e == Errno::EINVAL && data == 0 => return Ok(0),
        r => r?,
    };
    if hdr.pid < 0 {
        return Err(Errno::EINVAL);
    }
    let caps: CapSets = if hdr.pid == 0 || hdr.pid == t.vtid() {
        t.creds.caps
    } else {
        let task = t.task_by_id(hdr.pid).ok_or(Errno::ESRCH)?;
        let v = task.view();
        v.caps
    };
    if data == 0 {
        return Ok(0);
    }
    for i in 0..words {
        let half = |set: u64| (set >> (32 * i)) as u32;
        let d = CapData {
            effective: half(caps.effective),
            permitted: half(caps.permitted),
            inheritable: half(caps.inheritable),
        };
        t.write_obj(data + (i * std::mem::size_of::<CapData>()) as u64, &d)?;
    }
    Ok(0)
}

pub fn sys_capset(t: &mut Task, hdr_addr: u64, data: u64) -> SysResult {
    let (hdr, words) = cap_words(t, hdr_addr)?;
    if hdr.pid != 0 && hdr.pid != t.vtid() {
        return Err(Errno::EPERM);
    }
    let (mut e, mut p, mut inh) = (0u64, 0u64, 0u64);
    for i in 0..words {
        let d: CapData = t.read_obj(data + (i * std::mem::size_of::<CapData>()) as u64)?;
        e |= u64::from(d.effective) << (32 * i);
        p |= u64::from(d.permitted) << (32 * i);
        inh |= u64::from(d.inheritable) << (32 * i);
    }
    if words == 1 {
        // Version 1 knows the low 32 capabilities only: the others stay.
        let high = !0u64 << 32;
        e |= t.creds.caps.effective & high;
        p |= t.creds.caps.permitted & high;
        inh |= t.creds.caps.inheritable & high;
    }
    change(t, |c| c.set_caps(e, p, inh))
}
