//! Memory calls: brk, mmap, munmap, mprotect, madvise, msync.
use std::sync::Arc;

use platform::Prot;
use syscalls::flags::{madv, MapFlags as M};
use syscalls::Errno;

use super::SysResult;
use crate::mm::{page_up, FileSource, VmaKind, PAGE};
use crate::task::Task;
use crate::vfs::tmpfs::CHUNK;
use crate::vfs::FileKind;

pub fn sys_brk(t: &mut Task, addr: u64) -> SysResult {
    Ok(t.mm.lock().set_brk(addr))
}

fn prot_of(bits: u32) -> Result<Prot, Errno> {
    let p = Prot::from_bits(bits).ok_or(Errno::EINVAL)?;
    if p.intersects(Prot::GROWSDOWN | Prot::GROWSUP) {
        return Err(Errno::EINVAL);
    }
    Ok(p)
}

pub fn sys_mmap(t: &mut Task, addr: u64, len: u64, prot: u32, flags: u32, fd: i32, off: u64) -> SysResult {
    let flags = M::from_bits_retain(flags);
    let prot = prot_of(prot)?;
    if len == 0 || !off.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let ty = flags.bits() & 0x3;
    if ty != M::SHARED.bits() && ty != M::PRIVATE.bits() && ty != M::SHARED_VALIDATE.bits() {
        return Err(Errno::EINVAL);
    }
    let shared = ty != M::PRIVATE.bits();
    let fixed = flags.contains(M::FIXED);
    let noreplace = flags.contains(M::FIXED_NOREPLACE);
    if (fixed || noreplace) && !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let mut tmpfs_file = None;
    let mut shared_host = None;
    let mut label = None;
    let file = if flags.contains(M::ANONYMOUS) {
        None
    } else {
        let f = t.fds.get(fd)?;
        label = f.dentry.clone().map(|file| crate::mm::MapLabel { file, offset: off });
        let pages = match &f.kind {
            FileKind::Tmpfs(inode) => Some(inode.clone()),
            // Shared mappings of a host file keep its newest data in the
            // sentry's page cache of it: a private copy comes from there.
            FileKind::Regular(_) if !shared => f.dentry.as_ref().and_then(|d| d.cached_pages()),
            _ => None,
        };
        if let Some(inode) = pages {
            if !f.readable() || (shared && prot.contains(Prot::WRITE) && !f.writable()) {
                return Err(Errno::EACCES);
            }
            off.checked_add(len).ok_or(Errno::EOVERFLOW)?;
            tmpfs_file = Some(inode);
            None
        } else {
            let FileKind::Regular(host) = &f.kind else {
                return Err(if f.is_path() { Errno::EBADF } else { Errno::ENODEV });
            };
            if !f.readable() || (shared && prot.contains(Prot::WRITE) && !f.writable()) {
                return Err(Errno::EACCES);
            }
            off.checked_add(len).ok_or(Errno::EOVERFLOW)?;
            let through = f.dentry.as_ref().filter(|d| d.gofer().is_some_and(|(_, m)| m.writes_through()));
            if let (true, Some(d)) = (shared, through) {
                // A host file the sandbox may change: every mapping shares
                // the sentry's page cache of it.
                shared_host = Some((d.clone(), d.page_cache(&t.kernel.file_cache)?));
            } else if shared && prot.contains(Prot::WRITE) {
                // Read-only mounts refuse writable opens, so this is a file
                // whose data cannot change: nothing to share.
                return Err(Errno::EACCES);
            }
            let size = f.stat()?.st_size as u64;
            let from_file = size.saturating_sub(off).min(len);
            Some(FileSource { fd: Arc::clone(host), offset: off, len: from_file })
        }
    };
    let start = if fixed || noreplace {
        if noreplace && !t.mm.lock().is_free(addr, len) {
            return Err(Errno::EEXIST);
        }
        addr
    } else if addr != 0 && addr.is_multiple_of(PAGE) && t.mm.lock().is_free(addr, len) {
        addr
    } else {
        t.mm.lock().find_gap(len).ok_or(Errno::ENOMEM)?
    };
    if let Some((d, cache)) = shared_host {
        // Past the page-cache budget: the mapping cannot be backed.
        let pages = cache.pages(off, len).map_err(|e| if e == Errno::ENOSPC { Errno::ENOMEM } else { e })?;
        let hold = Arc::new(crate::mm::MappingHold(Arc::new(crate::vfs::SharedHostFile(d))));
        let mut mm = t.mm.lock();
        mm.map_pages(start, len, prot, off % CHUNK, &pages)?;
        mm.set_hold(start, start + len, &hold);
        if let Some(l) = label {
            mm.set_label(start, start + len, l);
        }
        return Ok(start);
    }
    if let Some(inode) = tmpfs_file {
        if shared {
            // The file's own pages, so that every mapping and read/write
            // sees the same data.
            let pages = inode.pages(off, len)?;
            let mut mm = t.mm.lock();
            mm.map_pages(start, len, prot, off % CHUNK, &pages)?;
            if let Some(l) = label {
                mm.set_label(start, start + len, l);
            }
        } else {
            t.mm.lock().map(start, len, prot, VmaKind::File, None, false)?;
            if let Some(l) = label {
                t.mm.lock().set_label(start, start + len, l);
            }
            let size = inode.attr().size;
            let n = size.saturating_sub(off).min(len) as usize;
            let mut at = 0;
            while at < n {
                let step = (n - at).min(crate::mm::MAX_COPY);
                let mut buf = vec![0u8; step];
                let got = inode.read(off + at as u64, &mut buf)?;
                t.mm.poke(start + at as u64, &buf[..got])?;
                at += step;
            }
        }
        return Ok(start);
    }
    let kind = if file.is_some() { VmaKind::File } else { VmaKind::Anon };
    let mut mm = t.mm.lock();
    mm.map(start, len, prot, kind, file, shared)?;
    if let (VmaKind::File, Some(l)) = (kind, label) {
        mm.set_label(start, start + len, l);
    }
    Ok(start)
}

pub fn sys_munmap(t: &mut Task, addr: u64, len: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) || len == 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::EINVAL)?;
    t.mm.lock().unmap(addr, len)?;
    Ok(0)
}

pub fn sys_mprotect(t: &mut Task, addr: u64, len: u64, prot: u32) -> SysResult {
    let prot = prot_of(prot)?;
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    t.mm.lock().protect(addr, len, prot)?;
    Ok(0)
}

pub fn sys_madvise(t: &mut Task, addr: u64, len: u64, advice: u32) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::EINVAL)?;
    let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
    match advice {
        madv::MADV_DONTNEED | madv::MADV_FREE => {
            if len > 0 {
                t.mm.lock().dontneed(addr, end)?;
            }
            Ok(0)
        }
        // Hints that change nothing observable here (no swap, no huge
        // pages, no core dumps, no page merging).
        madv::MADV_NORMAL
        | madv::MADV_RANDOM
        | madv::MADV_SEQUENTIAL
        | madv::MADV_WILLNEED
        | madv::MADV_HUGEPAGE
        | madv::MADV_NOHUGEPAGE
        | madv::MADV_MERGEABLE
        | madv::MADV_UNMERGEABLE
        | madv::MADV_DONTDUMP
        | madv::MADV_DODUMP
        | madv::MADV_COLD
        | madv::MADV_PAGEOUT
        | madv::MADV_POPULATE_READ
        | madv::MADV_POPULATE_WRITE => {
            if len > 0 {
                t.mm.lock().check_range(addr, len)?;
            }
            Ok(0)
        }
        madv::MADV_DONTFORK | madv::MADV_DOFORK | madv::MADV_WIPEONFORK | madv::MADV_KEEPONFORK => {
            tracing::debug!(target: "sentry::mm", "madvise {advice}: fork behaviour hints are ignored");
            if len > 0 {
                t.mm.lock().check_range(addr, len)?;
            }
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_msync(t: &mut Task, addr: u64, len: u64, flags: u32) -> SysResult {
    const MS_ASYNC: u32 = 1;
    const MS_INVALIDATE: u32 = 2;
    const MS_SYNC: u32 = 4;
    if !addr.is_multiple_of(PAGE)
        || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & MS_ASYNC & (flags >> 2) != 0
    {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
    // The range must be mapped; shared mappings of host files write their
    // data back (tmpfs and anonymous memory have nowhere to go).
    let held = {
        let mm = t.mm.lock();
        mm.check_range(addr, len)?;
        mm.held_files(addr, end)
    };
    for h in held {
        h.0.write_back();
    }
    Ok(0)
}

pub fn sys_mremap(t: &mut Task, old: u64, old_len: u64, new_len: u64, flags: u32, new_addr: u64) -> SysResult {
    t.mm.lock().remap(old, old_len, new_len, flags, new_addr)
}

pub fn sys_mincore(t: &mut Task, addr: u64, len: u64, vec: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    t.mm.lock().check_range(addr, len)?;
    // In pieces: a huge PROT_NONE reservation must not make the sentry
    // allocate a byte per page at once.
    const PIECE: u64 = 1 << 16;
    let mut done = 0;
    while done < len / PAGE {
        let n = (len / PAGE - done).min(PIECE);
        let pages = t.mm.lock().residency(addr + done * PAGE, n * PAGE)?;
        t.mm.copy_out(vec + done, &pages)?;
        done += n;
    }
    Ok(0)
}

/// mlock and munlock: nothing is ever swapped out, so locking is
/// accounting only; the range must be mapped.
pub fn sys_mlock2(t: &mut Task, addr: u64, len: u64, flags: u32) -> SysResult {
    use syscalls::flags::mremap::MLOCK_ONFAULT;
    if flags & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    let start = addr & !(PAGE - 1);
    let len = page_up(len + (addr - start)).ok_or(Errno::ENOMEM)?;
    t.mm.lock().check_range(start, len)?;
    Ok(0)
}

pub fn sys_mlockall(_t: &mut Task, flags: u32) -> SysResult {
    use syscalls::flags::mremap::{MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT};
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}
