//! Guest memory: the VMAs a guest asked for, backed by ranges of the memory
//! file, installed into its address space lazily on fault.
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use platform::{AddressSpace, Prot};
use syscalls::Errno;

pub mod memory_file;

pub use memory_file::{MemoryFile, PAGE};

/// How much around a faulting address is installed at once.
const FAULT_AROUND: u64 = 2 << 20;
/// Largest single copy between guest memory and the sentry.
pub const MAX_COPY: usize = 1 << 20;

pub fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

pub fn page_up(a: u64) -> Option<u64> {
    a.checked_add(PAGE - 1).map(page_down)
}

/// The file a private mapping was read from.
#[derive(Clone)]
pub struct FileSource {
    pub fd: Arc<OwnedFd>,
    /// File offset of the VMA's start.
    pub offset: u64,
    /// Bytes of the VMA (from its start) that come from the file; the rest
    /// are zeros (the tail of an ELF data segment, or past end of file).
    pub len: u64,
}

/// A guest memory area.
#[derive(Clone)]
pub struct Vma {
    pub end: u64,
    pub prot: Prot,
    /// Memory-file offset of the VMA's first byte.
    pub backing: u64,
    pub file: Option<FileSource>,
    pub kind: VmaKind,
    /// Every page of the backing is allocated in the memory file (a
    /// recycled range): installing it may populate all of it at once.
    pub committed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaKind {
    Anon,
    File,
    Brk,
    Stack,
}

/// The guest's address space as the sentry sees it.
pub struct MemoryManager {
    mf: Arc<MemoryFile>,
    space: Box<dyn AddressSpace>,
    /// VMAs by start address.
    vmas: BTreeMap<u64, Vma>,
    /// Ranges installed in the platform address space, start -> end.
    installed: BTreeMap<u64, u64>,
    pub brk_start: u64,
    pub brk: u64,
    pub mmap_base: u64,
    pub max_addr: u64,
    /// Set when the platform failed: the guest cannot go on.
    pub broken: bool,
}

impl MemoryManager {
    pub fn new(mf: Arc<MemoryFile>, space: Box<dyn AddressSpace>, max_addr: u64) -> MemoryManager {
        MemoryManager {
            mf,
            space,
            vmas: BTreeMap::new(),
            installed: BTreeMap::new(),
            brk_start: 0,
            brk: 0,
            mmap_base: max_addr - (1 << 30),
            max_addr,
            broken: false,
        }
    }

    /// The host clock of the guest's CPU time.
    pub fn cpu_clock(&self) -> Option<i32> {
        self.space.cpu_clock()
    }

    pub fn space(&mut self) -> &mut dyn AddressSpace {
        self.space.as_mut()
    }

    /// The VMA containing `addr`, with its start.
    pub fn vma_at(&self, addr: u64) -> Option<(u64, &Vma)> {
        let (&start, vma) = self.vmas.range(..=addr).next_back()?;
        (addr < vma.end).then_some((start, vma))
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas.range(..end).next_back().is_some_and(|(_, v)| v.end > start)
    }

    /// A free gap of `len` bytes, searching down from the mmap base.
    pub fn find_gap(&self, len: u64) -> Option<u64> {
        let mut top = self.mmap_base;
        for (&start, vma) in self.vmas.range(..self.mmap_base).rev() {
            if vma.end <= top && top - vma.end >= len {
                return Some(top - len);
            }
            top = top.min(start);
        }
        (top >= len + 0x10000).then(|| top - len)
    }

    /// Creates a VMA at `[start, start+len)`, replacing whatever was there.
    pub fn map(
        &mut self,
        start: u64,
        len: u64,
        prot: Prot,
        kind: VmaKind,
        file: Option<FileSource>,
    ) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > self.max_addr || !start.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) || len == 0 {
            return Err(Errno::ENOMEM);
        }
        self.unmap(start, len)?;
        let (backing, committed) = self.mf.allocate(len)?;
        if let Some(src) = &file {
            self.fill(backing, src, 0, len)?;
        }
        self.vmas.insert(start, Vma { end, prot, backing, file, kind, committed });
        Ok(())
    }

    /// Reads a VMA's file bytes `[from, to)` (relative to its start) into its
    /// backing; bytes past the file's part stay zero.
    fn fill(&self, backing: u64, src: &FileSource, from: u64, to: u64) -> Result<(), Errno> {
        let file_end = to.min(src.len);
        if from < file_end {
            let want = (file_end - from) as usize;
            self.mf.fill_from(backing + from, want, src.fd.as_raw_fd(), src.offset + from)?;
        }
        Ok(())
    }

    /// Splits the VMA containing `at` so that a VMA starts at `at`.
    fn split(&mut self, at: u64) {
        let Some((start, vma)) = self.vma_at(at) else { return };
        if start == at {
            return;
        }
        let mut tail = vma.clone();
        let delta = at - start;
        tail.backing += delta;
        if let Some(f) = &mut tail.file {
            f.offset += delta;
            f.len = f.len.saturating_sub(delta);
        }
        if let Some(head) = self.vmas.get_mut(&start) {
            head.end = at;
            if let Some(f) = &mut head.file {
                f.len = f.len.min(delta);
            }
        }
        self.vmas.insert(at, tail);
    }

    /// Removes the mappings in `[start, start+len)`.
    pub fn unmap(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        if !self.overlaps(start, end) {
            return Ok(());
        }
        self.split(start);
        self.split(end);
        let doomed: Vec<u64> = self.vmas.range(start..end).map(|(s, _)| *s).collect();
        for s in doomed {
            if let Some(v) = self.vmas.remove(&s) {
                self.mf.release(v.backing, v.end - s);
            }
        }
        self.uninstall(start, end);
        Ok(())
    }

    /// Removes `[start, end)` from the platform address space.
    fn uninstall(&mut self, start: u64, end: u64) {
        let hit: Vec<(u64, u64)> =
            self.installed.range(..end).filter(|(_, e)| **e > start).map(|(s, e)| (*s, *e)).collect();
        if hit.is_empty() {
            return;
        }
        for (s, e) in &hit {
            self.installed.remove(s);
            if *s < start {
                self.installed.insert(*s, start);
            }
            if *e > end {
                self.installed.insert(end, *e);
            }
        }
        if let Err(e) = self.space.unmap(start, end - start) {
            tracing::error!(target: "sentry::mm", "unmapping {start:#x}..{end:#x} from the address space: {e}");
            self.broken = true;
        }
    }

    /// Changes the protection of `[start, start+len)`, which must be mapped.
    pub fn protect(&mut self, start: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        self.check_mapped(start, end)?;
        self.split(start);
        self.split(end);
        for (_, v) in self.vmas.range_mut(start..end) {
            v.prot = prot;
        }
        self.uninstall(start, end);
        Ok(())
    }

    fn check_mapped(&self, start: u64, end: u64) -> Result<(), Errno> {
        let mut at = start;
        while at < end {
            let (_, v) = self.vma_at(at).ok_or(Errno::ENOMEM)?;
            at = v.end;
        }
        Ok(())
    }

    /// `madvise(MADV_DONTNEED)`: anonymous pages read as zeros again, private
    /// file pages as the file.
    pub fn dontneed(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        self.check_mapped(start, end)?;
        let mut at = start;
        while at < end {
            let (vs, v) = self.vma_at(at).ok_or(Errno::ENOMEM)?;
            let to = v.end.min(end);
            let (rel_from, rel_to) = (at - vs, to - vs);
            let (backing, file) = (v.backing, v.file.clone());
            if let Some(v) = self.vmas.get_mut(&vs) {
                v.committed = false;
            }
            self.mf.decommit(backing + rel_from, rel_to - rel_from);
            if let Some(src) = file {
                self.fill(backing, &src, rel_from, rel_to)?;
            }
            at = to;
        }
        Ok(())
    }

    /// Serves a fault at `addr`: installs the page's VMA around it. False if
    /// the access is invalid and the guest must get SIGSEGV.
    pub fn handle_fault(&mut self, addr: u64) -> bool {
        let Some((vs, v)) = self.vma_at(addr) else { return false };
        if v.prot.intersection(Prot::READ | Prot::WRITE | Prot::EXEC).is_empty() {
            return false;
        }
        let page = page_down(addr);
        if self.installed.range(..=page).next_back().is_some_and(|(_, e)| *e > page) {
            // Installed already with the VMA's protection: a real violation.
            return false;
        }
        let win = page_down(addr) & !(FAULT_AROUND - 1);
        let mut start = win.max(vs);
        let mut end = (win + FAULT_AROUND).min(v.end);
        // Do not remap what is already installed around the page.
        if let Some((_, e)) = self.installed.range(..page).next_back() {
            start = start.max(*e);
        }
        if let Some((s, _)) = self.installed.range(page..).next() {
            end = end.min(*s);
        }
        let (prot, offset, populate) = (v.prot, v.backing + (start - vs), v.committed);
        if let Err(e) = self.space.map(start, end - start, offset, prot, populate) {
            tracing::error!(target: "sentry::mm", "installing {start:#x}..{end:#x}: {e}");
            self.broken = true;
            return false;
        }
        self.installed.insert(start, end);
        true
    }

    /// Walks the guest range `[addr, addr+len)` as memory-file pieces,
    /// requiring `need` protection; EFAULT if any byte is not accessible.
    fn pieces(&self, addr: u64, len: usize, need: Prot) -> Result<Vec<(u64, usize)>, Errno> {
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mut out = Vec::new();
        let mut at = addr;
        while at < end {
            let (vs, v) = self.vma_at(at).ok_or(Errno::EFAULT)?;
            if !v.prot.contains(need) {
                return Err(Errno::EFAULT);
            }
            let to = v.end.min(end);
            out.push((v.backing + (at - vs), (to - at) as usize));
            at = to;
        }
        Ok(out)
    }

    /// EFAULT unless all of `[addr, addr+len)` is writable guest memory.
    pub fn check_writable(&self, addr: u64, len: usize) -> Result<(), Errno> {
        self.pieces(addr, len, Prot::WRITE).map(drop)
    }

    /// Copies guest memory at `addr` into `buf`.
    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mut done = 0;
        for (off, n) in self.pieces(addr, buf.len(), Prot::READ)? {
            self.mf.read(off, &mut buf[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Copies `data` into guest memory at `addr`.
    pub fn copy_out(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let mut done = 0;
        for (off, n) in self.pieces(addr, data.len(), Prot::WRITE)? {
            self.mf.write(off, &data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Writes into guest memory regardless of protection (the loader
    /// filling a read-only stack or segment).
    pub fn poke(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let mut done = 0;
        for (off, n) in self.pieces(addr, data.len(), Prot::empty())? {
            self.mf.write(off, &data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without NUL).
    pub fn copy_in_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut at = addr;
        loop {
            // Read up to the end of the page so we never cross into an
            // unmapped page past the terminator.
            let chunk = (PAGE - (at % PAGE)) as usize;
            let mut buf = vec![0u8; chunk];
            self.copy_in(at, &mut buf)?;
            if let Some(nul) = buf.iter().position(|b| *b == 0) {
                out.extend_from_slice(&buf[..nul]);
                if out.len() > max {
                    return Err(Errno::ENAMETOOLONG);
                }
                return Ok(out);
            }
            out.extend_from_slice(&buf);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            at += chunk as u64;
        }
    }

    /// `brk(2)`: moves the program break; returns the (possibly unchanged)
    /// break.
    pub fn set_brk(&mut self, new: u64) -> u64 {
        if new < self.brk_start || new > self.mmap_base {
            return self.brk;
        }
        let (Some(old_top), Some(new_top)) = (page_up(self.brk), page_up(new)) else { return self.brk };
        if new_top > old_top {
            if self.overlaps(old_top, new_top)
                || self.map(old_top, new_top - old_top, Prot::READ | Prot::WRITE, VmaKind::Brk, None).is_err()
            {
                return self.brk;
            }
        } else if new_top < old_top && self.unmap(new_top, old_top - new_top).is_err() {
            return self.brk;
        }
        self.brk = new;
        self.brk
    }

    /// Whether `[start, start+len)` is free of VMAs.
    pub fn is_free(&self, start: u64, len: u64) -> bool {
        start.checked_add(len).is_some_and(|end| end <= self.max_addr && !self.overlaps(start, end))
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        for (s, v) in std::mem::take(&mut self.vmas) {
            self.mf.release(v.backing, v.end - s);
        }
    }
}
