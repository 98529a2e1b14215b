//! Extended attribute calls: get/set/list/remove, by path (following or
//! not) and by fd. The kernel objects are in `vfs::xattr`.
use std::sync::Arc;

use syscalls::flags::AT_FDCWD;
use syscalls::Errno;

use super::SysResult;
use crate::task::Task;
use crate::vfs::xattr::MAX_VALUE;
use crate::vfs::Dentry;

/// Where the attributes are: a path (followed or not), or an open file.
pub enum On {
    Path(u64, bool),
    Fd(i32),
}

fn dentry(t: &Task, on: &On) -> Result<Arc<Dentry>, Errno> {
    match *on {
        On::Path(path, follow) => {
            let p = t.read_path(path)?;
            t.lookup(AT_FDCWD, &p, follow)
        }
        On::Fd(fd) => {
            let f = t.fds.get(fd)?;
            if matches!(f.kind, crate::vfs::FileKind::Path) {
                return Err(Errno::EBADF);
            }
            // Pipes, sockets and anonymous files have no attributes.
            f.dentry.clone().ok_or(Errno::EOPNOTSUPP)
        }
    }
}

fn name(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    let n = t.mm.copy_in_cstr(addr, 256).map_err(|e| if e == Errno::ENAMETOOLONG { Errno::ERANGE } else { e })?;
    if n.is_empty() || n.len() > 255 {
        return Err(Errno::ERANGE);
    }
    Ok(n)
}

/// Copies `data` to a guest buffer of `size` bytes the way the xattr calls
/// do: size 0 asks for the length, a short buffer is ERANGE.
fn reply(t: &Task, buf: u64, size: usize, data: &[u8]) -> SysResult {
    if size == 0 {
        return Ok(data.len() as u64);
    }
    if data.len() > size {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(buf, data)?;
    Ok(data.len() as u64)
}

pub fn sys_getxattr(t: &mut Task, on: On, name_addr: u64, buf: u64, size: usize) -> SysResult {
    let d = dentry(t, &on)?;
    let n = name(t, name_addr)?;
    let v = d.get_xattr(&n)?;
    reply(t, buf, size, &v)
}

pub fn sys_listxattr(t: &mut Task, on: On, buf: u64, size: usize) -> SysResult {
    let d = dentry(t, &on)?;
    let list = d.list_xattr()?;
    reply(t, buf, size, &list)
}

pub fn sys_setxattr(t: &mut Task, on: On, name_addr: u64, value: u64, size: usize, flags: u32) -> SysResult {
    let d = dentry(t, &on)?;
    let n = name(t, name_addr)?;
    if size > MAX_VALUE {
        return Err(Errno::E2BIG);
    }
    let mut v = vec![0u8; size];
    t.mm.copy_in(value, &mut v)?;
    d.change_xattr(&n, Some(&v), flags, &t.creds)?;
    Ok(0)
}

pub fn sys_removexattr(t: &mut Task, on: On, name_addr: u64) -> SysResult {
    let d = dentry(t, &on)?;
    let n = name(t, name_addr)?;
    d.change_xattr(&n, None, 0, &t.creds)?;
    Ok(0)
}
