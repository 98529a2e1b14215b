//! POSIX message queues: mq_open, mq_unlink, mq_timedsend,
//! mq_timedreceive, mq_notify and mq_getsetattr. The queues and their
//! namespace are `crate::mqueue`; the checks here come in Linux's order.
use std::sync::Arc;
use std::time::Instant;

use syscalls::flags::mqueue::MQ_PRIO_MAX;
use syscalls::flags::sigev::{SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD};
use syscalls::flags::OpenFlags as O;
use syscalls::structs::{MqAttr, Sigevent};
use syscalls::Errno;

use super::SysResult;
use crate::mqueue::{MessageQueue, Notification};
use crate::task::Task;
use crate::vfs::{File, FileKind};

/// A queue's name as the system call takes it (glibc strips the leading
/// '/'): one entry of the mqueue root, as Linux's lookup_one_len checks it.
fn queue_name(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    let name = t.read_path(addr)?;
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EACCES);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(name)
}

/// The open file and queue of descriptor `mqd` (EBADF for anything else).
fn queue_of(t: &Task, mqd: i32) -> Result<(Arc<File>, Arc<MessageQueue>), Errno> {
    let f = t.fds.get(mqd)?;
    let q = match &f.kind {
        FileKind::Mqueue(q) => q.clone(),
        _ => return Err(Errno::EBADF),
    };
    Ok((f, q))
}

/// An absolute CLOCK_REALTIME deadline at `addr` (0: none), checked before
/// anything else.
fn deadline(t: &Task, addr: u64) -> Result<Option<Instant>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let ts = super::time::read_timespec(t, addr)?;
    super::time::absolute_deadline(syscalls::flags::clock::CLOCK_REALTIME, &ts).map(Some)
}

/// A send or receive changed the queue: its file's times, as Linux keeps
/// them (a send also modifies it).
fn touch(f: &File, sent: bool) {
    if let Some(inode) = f.dentry.as_ref().and_then(|d| d.tmpfs()) {
        let now = crate::vfs::tmpfs::now();
        let mut a = inode.attr();
        a.atime = now;
        a.ctime = now;
        if sent {
            a.mtime = now;
        }
    }
}

pub fn sys_mq_open(t: &mut Task, name: u64, oflag: u32, mode: u32, attr: u64) -> SysResult {
    let attr = if attr == 0 { None } else { Some(t.read_obj::<MqAttr>(attr)?) };
    let name = queue_name(t, name)?;
    let file = t.kernel.mqueues.open(t, &name, oflag, mode, attr.map(|a| (a.mq_maxmsg, a.mq_msgsize)))?;
    Ok(t.fds.insert(file, true, 0, t.nofile())? as u64)
}

pub fn sys_mq_unlink(t: &mut Task, name: u64) -> SysResult {
    let name = queue_name(t, name)?;
    t.kernel.mqueues.root.remove(&name, false, &t.creds)?;
    Ok(0)
}

pub fn sys_mq_timedsend(t: &mut Task, mqd: i32, msg: u64, len: u64, prio: u32, timeout: u64) -> SysResult {
    let deadline = deadline(t, timeout)?;
    if prio >= MQ_PRIO_MAX {
        return Err(Errno::EINVAL);
    }
    let (f, q) = queue_of(t, mqd)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    if len > q.msgsize as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let mut data = vec![0; len as usize];
    t.mm.copy_in(msg, &mut data)?;
    q.send(t, (prio, data), f.nonblocking(), deadline)?;
    touch(&f, true);
    Ok(0)
}

pub fn sys_mq_timedreceive(t: &mut Task, mqd: i32, msg: u64, len: u64, prio: u64, timeout: u64) -> SysResult {
    let deadline = deadline(t, timeout)?;
    let (f, q) = queue_of(t, mqd)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    if len < q.msgsize as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let (p, data) = q.receive(t, f.nonblocking(), deadline)?;
    touch(&f, false);
    // The message is gone even if it cannot be stored.
    if prio != 0 {
        t.write_obj(prio, &p)?;
    }
    t.mm.copy_out(msg, &data)?;
    Ok(data.len() as u64)
}

pub fn sys_mq_notify(t: &mut Task, mqd: i32, sevp: u64) -> SysResult {
    let n = if sevp == 0 {
        None
    } else {
        let ev: Sigevent = t.read_obj(sevp)?;
        Some(match ev.notify {
            SIGEV_NONE => Notification::None,
            // Signal 0 is accepted (and sends nothing), as on Linux.
            SIGEV_SIGNAL if (0..=syscalls::flags::signal::NSIG).contains(&ev.signo) => {
                Notification::Signal { signo: ev.signo, value: ev.value }
            }
            SIGEV_THREAD => return Err(thread_notification(t, &ev)),
            _ => return Err(Errno::EINVAL),
        })
    };
    let (_, q) = queue_of(t, mqd)?;
    q.register(t.group(), n)?;
    Ok(0)
}

/// SIGEV_THREAD: Linux reads the 32-byte cookie, then wants a netlink
/// socket at fd `sigev_signo` (glibc's helper thread listens on it). The
/// sandbox has no netlink sockets, so an open fd is never one (ENOTSOCK).
fn thread_notification(t: &Task, ev: &Sigevent) -> Errno {
    let mut cookie = [0u8; 32];
    if let Err(e) = t.mm.copy_in(ev.value, &mut cookie) {
        return e;
    }
    match t.fds.get(ev.signo) {
        Err(e) => e,
        Ok(_) => Errno::ENOTSOCK,
    }
}

pub fn sys_mq_getsetattr(t: &mut Task, mqd: i32, new: u64, old: u64) -> SysResult {
    let nonblock = O::O_NONBLOCK.bits();
    let new = if new == 0 { None } else { Some(t.read_obj::<MqAttr>(new)?) };
    if new.is_some_and(|a| a.mq_flags & !i64::from(nonblock) != 0) {
        return Err(Errno::EINVAL);
    }
    let (f, q) = queue_of(t, mqd)?;
    let before = MqAttr {
        mq_flags: i64::from(f.flags() & nonblock),
        mq_maxmsg: q.maxmsg,
        mq_msgsize: q.msgsize,
        mq_curmsgs: q.count(),
        ..Default::default()
    };
    if let Some(a) = new {
        f.set_status_flags((f.flags() & !nonblock) | (a.mq_flags as u32 & nonblock));
    }
    if old != 0 {
        t.write_obj(old, &before)?;
    }
    Ok(0)
}
