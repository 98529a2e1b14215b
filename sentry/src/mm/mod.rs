//! Guest memory.
//!
//! A [`MemoryManager`] is an address space as the guest sees it: VMAs backed
//! by allocations of the memory file, shared by every task of the address
//! space (threads, vfork children). Private memory is copy-on-write across
//! fork: both sides keep the same allocation until one writes. The manager
//! also knows what is installed in the platform address space (one stub
//! process for all its tasks): ranges are installed lazily on faults, and a
//! change to the VMAs queues the ranges to remove, which the task that made
//! it removes before it runs guest code again. Memory-file blocks freed
//! meanwhile are kept until then, so no thread can reach a block another
//! process has been given.
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use platform::{AddressSpace, Prot};
use syscalls::Errno;

pub mod memory_file;

pub use memory_file::{MemoryFile, PAGE};

/// How much around a faulting address is installed at once.
const FAULT_AROUND: u64 = 2 << 20;
/// How much around a faulting address is installed at once where file
/// pages are still to be read in (each read costs memory the guest may never
/// touch).
const FILE_FAULT_AROUND: u64 = 64 << 10;
/// How much a copy-on-write fault copies at once.
const COW_CHUNK: u64 = 64 << 10;
/// Largest single copy between guest memory and the sentry.
pub const MAX_COPY: usize = 1 << 20;

pub fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

pub fn page_up(a: u64) -> Option<u64> {
    a.checked_add(PAGE - 1).map(page_down)
}

/// A block of the memory file, returned to it when the last VMA using it
/// goes away.
pub struct Allocation {
    mf: Arc<MemoryFile>,
    off: u64,
    len: u64,
    /// The file this block is a private copy of: its pages are read in on
    /// first use (an install, a copy, a copy-on-write break), not when the
    /// file is mapped, so a program's untouched pages never take memory.
    lazy: Option<Mutex<LazyFill>>,
}

/// What of an [`Allocation`]'s file has been read in (a bit per page of a
/// block the memory file has room for: 8 MiB for all blocks at most).
struct LazyFill {
    src: FileSource,
    /// One bit per page of the block: read in already.
    filled: Vec<u64>,
    /// Pages of the file's part not read in yet.
    left: u64,
}

impl LazyFill {
    fn is_filled(&self, page: u64) -> bool {
        self.filled[(page / 64) as usize] & (1 << (page % 64)) != 0
    }

    fn set_filled(&mut self, page: u64) {
        self.filled[(page / 64) as usize] |= 1 << (page % 64);
    }

    /// Pages of the block `[from, to)` (byte offsets) that hold file bytes.
    fn file_pages(&self, from: u64, to: u64) -> std::ops::Range<u64> {
        let end = to.min(self.src.len).div_ceil(PAGE);
        (from / PAGE).min(end)..end
    }
}

impl Allocation {
    /// A new block of `len` bytes (zero-filled) of `mf`.
    pub fn new(mf: &Arc<MemoryFile>, len: u64) -> Result<Arc<Allocation>, Errno> {
        let (off, _) = mf.allocate(len)?;
        Ok(Arc::new(Allocation { mf: mf.clone(), off, len, lazy: None }))
    }

    /// Offset of the block in the memory file.
    pub fn offset(&self) -> u64 {
        self.off
    }

    /// Reads in the file's bytes of `[from, to)` (offsets in the block)
    /// that are not there yet; the rest of the block reads as zeros.
    fn fill(&self, from: u64, to: u64) -> Result<(), Errno> {
        let Some(lazy) = &self.lazy else { return Ok(()) };
        let mut l = lazy.lock().unwrap_or_else(|e| e.into_inner());
        if l.left == 0 {
            return Ok(());
        }
        let pages = l.file_pages(from, to);
        let mut p = pages.start;
        while p < pages.end {
            if l.is_filled(p) {
                p += 1;
                continue;
            }
            let mut q = p + 1;
            while q < pages.end && !l.is_filled(q) {
                q += 1;
            }
            let (start, end) = (p * PAGE, (q * PAGE).min(l.src.len));
            // A file shorter than it was at mmap time leaves zeros.
            self.mf.load_from(self.off + start, (end - start) as usize, l.src.fd.as_fd(), l.src.offset + start)?;
            for page in p..q {
                l.set_filled(page);
            }
            l.left -= q - p;
            p = q;
        }
        Ok(())
    }

    /// Whether every file byte of `[from, to)` (offsets in the block) has
    /// been read in.
    fn is_filled(&self, from: u64, to: u64) -> bool {
        let Some(lazy) = &self.lazy else { return true };
        let l = lazy.lock().unwrap_or_else(|e| e.into_inner());
        l.left == 0 || l.file_pages(from, to).all(|p| l.is_filled(p))
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        self.mf.release(self.off, self.len);
    }
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

/// A file whose shared mappings keep data the file itself must get back
/// (a host file mapped MAP_SHARED through the sentry's cache of it).
pub trait MappedFile: Send + Sync {
    /// Writes what the mappings changed back to the file.
    fn write_back(&self);
}

/// Held by every VMA of one shared mapping of a [`MappedFile`]: when the
/// last of them goes (munmap, exit, exec), the file gets its data back.
pub struct MappingHold(pub Arc<dyn MappedFile>);

impl Drop for MappingHold {
    fn drop(&mut self) {
        self.0.write_back();
    }
}

/// The file a mapping shows in /proc/pid/maps (its path, device and inode
/// are read when /proc is, as Linux names the file's current path).
#[derive(Clone)]
pub struct MapLabel {
    pub file: Arc<crate::vfs::Dentry>,
    /// File offset of the VMA's start.
    pub offset: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaKind {
    Anon,
    File,
    Brk,
    Stack,
}

/// A guest memory area.
#[derive(Clone)]
pub struct Vma {
    pub end: u64,
    pub prot: Prot,
    pub kind: VmaKind,
    alloc: Arc<Allocation>,
    /// Memory-file offset of the VMA's first byte (inside `alloc`).
    pub backing: u64,
    pub file: Option<FileSource>,
    /// Every page of the backing is allocated (installing may populate).
    pub committed: bool,
    /// MAP_SHARED: fork shares it instead of copying on write.
    pub shared: bool,
    /// Shares its pages with another address space since a fork: the first
    /// write copies them (or takes them over when nobody else is left).
    pub cow: bool,
    /// The file it maps, for /proc/pid/maps.
    pub label: Option<MapLabel>,
    /// A shared mapping of a file that must be written back.
    pub hold: Option<Arc<MappingHold>>,
}

impl Vma {
    /// Offset in its allocation of the byte at `addr` (the VMA starting at
    /// `start`).
    fn block_offset(&self, start: u64, addr: u64) -> u64 {
        self.backing - self.alloc.off + (addr - start)
    }

    /// Reads in what is not there yet of its file's bytes in `[from, to)`.
    fn fill(&self, start: u64, from: u64, to: u64) -> Result<(), Errno> {
        self.alloc.fill(self.block_offset(start, from), self.block_offset(start, to))
    }

    /// Whether `[from, to)` has all its file bytes read in.
    fn is_filled(&self, start: u64, from: u64, to: u64) -> bool {
        self.alloc.is_filled(self.block_offset(start, from), self.block_offset(start, to))
    }

    /// The protection to install with: copy-on-write pages stay read-only
    /// until written.
    fn install_prot(&self) -> Prot {
        if self.cow {
            self.prot - Prot::WRITE
        } else {
            self.prot
        }
    }
}

/// An address space as the guest sees it.
pub struct MemoryManager {
    mf: Arc<MemoryFile>,
    vmas: BTreeMap<u64, Vma>,
    pub brk_start: u64,
    pub brk: u64,
    pub mmap_base: u64,
    pub max_addr: u64,
    /// Where the argument and environment strings are (for /proc).
    pub arg_range: (u64, u64),
    pub env_range: (u64, u64),
    /// Ranges installed in the platform address space (start -> end).
    installed: BTreeMap<u64, u64>,
    /// Ranges to remove from the platform address space.
    stale: Vec<(u64, u64)>,
    /// Blocks no VMA uses any more, freed once `stale` is applied.
    graveyard: Vec<Arc<Allocation>>,
    /// Counts changes to the platform address space (installs and
    /// removals): a thread's fault that raced with another thread's change
    /// is seen as stale by it (see `TaskMemory::handle_fault`).
    changes: u64,
}

impl MemoryManager {
    pub fn new(mf: Arc<MemoryFile>, max_addr: u64) -> MemoryManager {
        MemoryManager {
            mf,
            vmas: BTreeMap::new(),
            brk_start: 0,
            brk: 0,
            mmap_base: max_addr - (1 << 30),
            max_addr,
            arg_range: (0, 0),
            env_range: (0, 0),
            installed: BTreeMap::new(),
            stale: Vec::new(),
            graveyard: Vec::new(),
            changes: 0,
        }
    }

    /// The VMA containing `addr`, with its start.
    pub fn vma_at(&self, addr: u64) -> Option<(u64, &Vma)> {
        let (&start, vma) = self.vmas.range(..=addr).next_back()?;
        (addr < vma.end).then_some((start, vma))
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas.range(..end).next_back().is_some_and(|(_, v)| v.end > start)
    }

    /// Records that `[start, end)` must be removed from the platform
    /// address space before the calling task runs guest code again.
    fn invalidate(&mut self, start: u64, end: u64) {
        self.stale.push((start, end));
    }

    /// Removes the stale ranges from the address space through `space` (the
    /// calling task's handle on it), then frees the blocks they used.
    pub fn flush(&mut self, space: &mut dyn AddressSpace) -> Result<(), platform::Error> {
        for (start, end) in std::mem::take(&mut self.stale) {
            self.uninstall(space, start, end)?;
        }
        self.graveyard.clear();
        Ok(())
    }

    /// Removes `[start, end)` from the platform address space.
    fn uninstall(&mut self, space: &mut dyn AddressSpace, start: u64, end: u64) -> Result<(), platform::Error> {
        let hit: Vec<(u64, u64)> =
            self.installed.range(..end).filter(|(_, e)| **e > start).map(|(s, e)| (*s, *e)).collect();
        if hit.is_empty() {
            return Ok(());
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
        self.changes += 1;
        // Only the part that was installed needs the host call.
        let from = hit[0].0.max(start);
        let to = hit[hit.len() - 1].1.min(end);
        space.unmap(from, to - from)
    }

    fn is_installed(&self, page: u64) -> bool {
        self.installed.range(..=page).next_back().is_some_and(|(_, e)| *e > page)
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

    /// Whether `[start, start+len)` is free of VMAs.
    pub fn is_free(&self, start: u64, len: u64) -> bool {
        start.checked_add(len).is_some_and(|end| end <= self.max_addr && !self.overlaps(start, end))
    }

    /// A new block of `len` bytes: zeros, or a private copy of `file`
    /// (read in as it is used). Also says whether its pages are allocated.
    fn allocate(&self, len: u64, file: Option<&FileSource>) -> Result<(Arc<Allocation>, bool), Errno> {
        let (off, committed) = self.mf.allocate(len)?;
        let lazy = file.filter(|f| f.len > 0).map(|f| {
            let src = FileSource { len: f.len.min(len), ..f.clone() };
            let pages = src.len.div_ceil(PAGE);
            Mutex::new(LazyFill { src, filled: vec![0; pages.div_ceil(64) as usize], left: pages })
        });
        Ok((Arc::new(Allocation { mf: self.mf.clone(), off, len, lazy }), committed))
    }

    /// Creates a VMA at `[start, start+len)`, replacing whatever was there.
    pub fn map(
        &mut self,
        start: u64,
        len: u64,
        prot: Prot,
        kind: VmaKind,
        file: Option<FileSource>,
        shared: bool,
    ) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > self.max_addr || !start.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) || len == 0 {
            return Err(Errno::ENOMEM);
        }
        self.unmap(start, len)?;
        let (alloc, committed) = self.allocate(len, file.as_ref())?;
        let backing = alloc.off;
        self.vmas.insert(
            start,
            Vma { end, prot, kind, alloc, backing, file, committed, shared, cow: false, label: None, hold: None },
        );
        Ok(())
    }

    /// Maps `[start, start+len)` shared onto `pages`, equal blocks of a
    /// file (tmpfs chunks), the first used from offset `first_off`: one VMA
    /// per block, so every mapping of the file shares its pages.
    pub fn map_pages(
        &mut self,
        start: u64,
        len: u64,
        prot: Prot,
        first_off: u64,
        pages: &[Arc<Allocation>],
    ) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end > self.max_addr || !start.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) || len == 0 {
            return Err(Errno::ENOMEM);
        }
        self.unmap(start, len)?;
        let mut at = start;
        let mut inner = first_off;
        for block in pages {
            if at >= end {
                break;
            }
            let piece = (block.len - inner).min(end - at);
            self.vmas.insert(
                at,
                Vma {
                    end: at + piece,
                    prot,
                    kind: VmaKind::File,
                    alloc: block.clone(),
                    backing: block.off + inner,
                    file: None,
                    committed: false,
                    shared: true,
                    cow: false,
                    label: None,
                    hold: None,
                },
            );
            at += piece;
            inner = 0;
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
        if let Some(l) = &mut tail.label {
            l.offset += delta;
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
                // Pages only this VMA uses are freed now, not when the
                // whole allocation goes.
                if !v.cow && !v.shared && Arc::strong_count(&v.alloc) > 1 {
                    self.mf.decommit(v.backing, v.end - s);
                }
                self.graveyard.push(v.alloc);
            }
        }
        self.invalidate(start, end);
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

    /// Changes the protection of `[start, start+len)`, which must be mapped.
    pub fn protect(&mut self, start: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        self.check_mapped(start, end)?;
        self.split(start);
        self.split(end);
        for (_, v) in self.vmas.range_mut(start..end) {
            v.prot = prot;
        }
        self.invalidate(start, end);
        Ok(())
    }

    /// `madvise(MADV_DONTNEED)`: private anonymous pages read as zeros
    /// again, private file pages as the file, shared pages are kept.
    pub fn dontneed(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        self.check_mapped(start, end)?;
        self.split(start);
        self.split(end);
        let keys: Vec<u64> = self.vmas.range(start..end).map(|(s, _)| *s).collect();
        for s in keys {
            let Some(v) = self.vmas.get(&s) else { continue };
            if v.shared {
                continue;
            }
            let len = v.end - s;
            if v.cow || v.file.is_some() {
                // Fresh pages: zeros, or the file's (read in again as they
                // are used). Pages only this VMA used go, once the new
                // ones exist (a failed allocation changes nothing).
                let (cow, backing, file) = (v.cow, v.backing, v.file.clone());
                let (alloc, committed) = self.allocate(len, file.as_ref())?;
                if !cow {
                    self.mf.decommit(backing, len);
                }
                if let Some(v) = self.vmas.get_mut(&s) {
                    v.backing = alloc.off;
                    self.graveyard.push(std::mem::replace(&mut v.alloc, alloc));
                    v.committed = committed;
                    v.cow = false;
                }
            } else {
                self.mf.decommit(v.backing, len);
                if let Some(v) = self.vmas.get_mut(&s) {
                    v.committed = false;
                }
            }
        }
        self.invalidate(start, end);
        Ok(())
    }

    /// Gives the copy-on-write VMA around `addr` pages of its own: the
    /// whole VMA when nobody else shares its allocation, else a copy of the
    /// chunk around `addr`.
    fn break_cow(&mut self, addr: u64) -> Result<(), Errno> {
        let Some((vs, v)) = self.vma_at(addr) else { return Err(Errno::EFAULT) };
        if !v.cow {
            return Ok(());
        }
        let vend = v.end;
        if Arc::strong_count(&v.alloc) == 1 {
            if let Some(v) = self.vmas.get_mut(&vs) {
                v.cow = false;
            }
            self.invalidate(vs, vend);
            return Ok(());
        }
        let chunk_start = (addr & !(COW_CHUNK - 1)).max(vs);
        let chunk_end = ((addr & !(COW_CHUNK - 1)) + COW_CHUNK).min(vend);
        self.split(chunk_start);
        self.split(chunk_end);
        let len = chunk_end - chunk_start;
        let v = self.vmas.get(&chunk_start).ok_or(Errno::EFAULT)?;
        v.fill(chunk_start, chunk_start, chunk_end)?;
        let old = v.backing;
        let (alloc, _) = self.allocate(len, None)?;
        self.mf.copy_within(old, alloc.off, len);
        if let Some(v) = self.vmas.get_mut(&chunk_start) {
            v.backing = alloc.off;
            self.graveyard.push(std::mem::replace(&mut v.alloc, alloc));
            v.committed = true;
            v.cow = false;
        }
        self.invalidate(chunk_start, chunk_end);
        Ok(())
    }

    /// Serves a fault at `addr` through `space`, the faulting task's handle
    /// on the address space. `Ok(false)` if the access is invalid and the
    /// guest must get a signal.
    pub fn fault(&mut self, addr: u64, space: &mut dyn AddressSpace) -> Result<bool, platform::Error> {
        self.flush(space)?;
        let Some((_, v)) = self.vma_at(addr) else { return Ok(false) };
        if v.prot.intersection(Prot::READ | Prot::WRITE | Prot::EXEC).is_empty() {
            return Ok(false);
        }
        let page = page_down(addr);
        if self.is_installed(page) {
            // Installed with the VMA's protection: a write to a
            // copy-on-write page, or a real violation.
            if v.cow && v.prot.contains(Prot::WRITE) {
                if self.break_cow(addr).is_err() {
                    return Ok(false);
                }
                self.flush(space)?;
                return self.install(addr, space);
            }
            return Ok(false);
        }
        self.install(addr, space)
    }

    fn install(&mut self, addr: u64, space: &mut dyn AddressSpace) -> Result<bool, platform::Error> {
        let Some((vs, v)) = self.vma_at(addr) else { return Ok(false) };
        let page = page_down(addr);
        let window = |size: u64| {
            let win = page & !(size - 1);
            (win.max(vs), (win + size).min(v.end))
        };
        let (mut start, mut end) = window(FAULT_AROUND);
        if !v.is_filled(vs, start, end) {
            // File pages not read in yet: only those near the fault, as
            // Linux maps a file's pages around a fault.
            (start, end) = window(FILE_FAULT_AROUND);
        }
        if let Some((_, e)) = self.installed.range(..page).next_back() {
            start = start.max(*e);
        }
        if let Some((s, _)) = self.installed.range(page..).next() {
            end = end.min(*s);
        }
        if v.fill(vs, start, end).is_err() {
            return Ok(false);
        }
        let offset = v.backing + (start - vs);
        space.map(start, end - start, offset, v.install_prot(), v.committed)?;
        self.installed.insert(start, end);
        self.changes += 1;
        Ok(true)
    }

    /// Walks the guest range `[addr, addr+len)` VMA by VMA (start, VMA,
    /// the part of the range in it), requiring `need` protection; EFAULT if
    /// any byte is not accessible.
    fn walk(&self, addr: u64, len: usize, need: Prot) -> Result<Vec<(u64, &Vma, u64, u64)>, Errno> {
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mut out = Vec::new();
        let mut at = addr;
        while at < end {
            let (vs, v) = self.vma_at(at).ok_or(Errno::EFAULT)?;
            if !v.prot.contains(need) {
                return Err(Errno::EFAULT);
            }
            let to = v.end.min(end);
            out.push((vs, v, at, to));
            at = to;
        }
        Ok(out)
    }

    /// The guest range `[addr, addr+len)` as memory-file pieces, with their
    /// file pages read in; `need` as for [`Self::walk`]. Pieces of a
    /// copy-on-write VMA are the shared pages: writers call
    /// `prepare_write` first.
    fn pieces(&self, addr: u64, len: usize, need: Prot) -> Result<Vec<(u64, usize)>, Errno> {
        let mut out = Vec::new();
        for (vs, v, at, to) in self.walk(addr, len, need)? {
            v.fill(vs, at, to)?;
            out.push((v.backing + (at - vs), (to - at) as usize));
        }
        Ok(out)
    }

    /// Breaks copy-on-write sharing over `[addr, addr+len)` before the
    /// sentry writes there.
    fn prepare_write(&mut self, addr: u64, len: usize) -> Result<(), Errno> {
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mut at = addr;
        while at < end {
            let (_, v) = self.vma_at(at).ok_or(Errno::EFAULT)?;
            if v.cow {
                self.break_cow(at)?;
                continue;
            }
            at = v.end.min(end);
        }
        Ok(())
    }

    pub fn check_writable(&self, addr: u64, len: usize) -> Result<(), Errno> {
        self.walk(addr, len, Prot::WRITE).map(drop)
    }

    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mut done = 0;
        for (off, n) in self.pieces(addr, buf.len(), Prot::READ)? {
            self.mf.read(off, &mut buf[done..done + n]);
            done += n;
        }
        Ok(())
    }

    pub fn copy_out(&mut self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.check_writable(addr, data.len())?;
        self.prepare_write(addr, data.len())?;
        self.write_pieces(addr, data, Prot::WRITE)
    }

    /// Reads at most `len` bytes of host file `fd` at `file_off` straight
    /// into guest memory at `addr` (writable), without a bounce buffer;
    /// returns how many bytes were read before end of file.
    pub fn read_from_fd(
        &mut self,
        addr: u64,
        len: usize,
        fd: std::os::fd::RawFd,
        file_off: u64,
    ) -> Result<usize, Errno> {
        self.check_writable(addr, len)?;
        // Copy-on-write pages first get pages of their own: the pieces are
        // where the data must land.
        self.prepare_write(addr, len)?;
        let pieces = self.pieces(addr, len, Prot::WRITE)?;
        let mut done = 0usize;
        for (off, n) in pieces {
            let got = self.mf.fill_from(off, n, fd, file_off + done as u64)?;
            done += got;
            if got < n {
                break;
            }
        }
        Ok(done)
    }

    /// Atomically updates the guest word at `addr` (4-aligned, writable)
    /// with `f` as `MemoryFile::update_u32` does; returns the old value.
    pub fn update_u32(&mut self, addr: u64, f: impl FnMut(u32) -> Option<u32>) -> Result<u32, Errno> {
        if !addr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        self.check_writable(addr, 4)?;
        self.prepare_write(addr, 4)?;
        let (off, _) = self.pieces(addr, 4, Prot::WRITE)?[0];
        Ok(self.mf.update_u32(off, f))
    }

    /// Writes regardless of protection (the loader filling the stack).
    pub fn poke(&mut self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.prepare_write(addr, data.len())?;
        self.write_pieces(addr, data, Prot::empty())
    }

    fn write_pieces(&self, addr: u64, data: &[u8], need: Prot) -> Result<(), Errno> {
        let mut done = 0;
        for (off, n) in self.pieces(addr, data.len(), need)? {
            self.mf.write(off, &data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    /// The VMAs covering `[start, end)` without a hole (EFAULT otherwise),
    /// split at both ends.
    fn covering(&mut self, start: u64, end: u64) -> Result<Vec<u64>, Errno> {
        self.check_mapped(start, end).map_err(|_| Errno::EFAULT)?;
        self.split(start);
        self.split(end);
        Ok(self.vmas.range(start..end).map(|(s, _)| *s).collect())
    }

    /// A fresh VMA like the one ending at `at` (same protection, kind,
    /// sharing; its file continued) over `[at, at+len)`.
    fn extend_after(&mut self, template: &Vma, tmpl_start: u64, at: u64, len: u64) -> Result<(), Errno> {
        let file = template.file.as_ref().map(|f| {
            let offset = f.offset + (at - tmpl_start);
            let from_file = (f.offset + f.len).saturating_sub(offset).min(len);
            FileSource { fd: f.fd.clone(), offset, len: from_file }
        });
        self.map(at, len, template.prot, template.kind, file, template.shared)?;
        if let Some(l) = &template.label {
            self.set_label(at, at + len, MapLabel { offset: l.offset + (at - tmpl_start), ..l.clone() });
        }
        Ok(())
    }

    /// Makes the VMAs in `[start, end)` hold `hold` (one shared mapping).
    pub fn set_hold(&mut self, start: u64, end: u64, hold: &Arc<MappingHold>) {
        for (_, v) in self.vmas.range_mut(start..end) {
            v.hold = Some(hold.clone());
        }
    }

    /// The files mapped shared in `[start, end)` (msync).
    pub fn held_files(&self, start: u64, end: u64) -> Vec<Arc<MappingHold>> {
        let mut out: Vec<Arc<MappingHold>> = Vec::new();
        for (s, v) in &self.vmas {
            if *s < end && v.end > start {
                if let Some(h) = &v.hold {
                    if !out.iter().any(|o| Arc::ptr_eq(o, h)) {
                        out.push(h.clone());
                    }
                }
            }
        }
        out
    }

    /// Names the file the VMAs in `[start, end)` map (`label.offset` is
    /// the file offset at `start`).
    pub fn set_label(&mut self, start: u64, end: u64, label: MapLabel) {
        for (s, v) in self.vmas.range_mut(start..end) {
            v.label = Some(MapLabel { offset: label.offset + (s - start), ..label.clone() });
        }
    }

    /// `mremap(2)`: shrinks, grows in place, or moves (keeping the pages,
    /// never copying them) `[old, old+old_len)`; returns the new address.
    pub fn remap(&mut self, old: u64, old_len: u64, new_len: u64, flags: u32, new_addr: u64) -> Result<u64, Errno> {
        use syscalls::flags::mremap::*;
        let may_move = flags & MREMAP_MAYMOVE != 0;
        let fixed = flags & MREMAP_FIXED != 0;
        let dontunmap = flags & MREMAP_DONTUNMAP != 0;
        if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
            || !old.is_multiple_of(PAGE)
            || new_len == 0
            || ((fixed || dontunmap) && !may_move)
            || (dontunmap && old_len != new_len)
        {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if old_len == 0 {
            // Duplicating a shared mapping: not supported.
            return Err(Errno::EINVAL);
        }
        let old_end = old.checked_add(old_len).ok_or(Errno::EINVAL)?;
        let keys = self.covering(old, old_end)?;
        let (last_start, last) = {
            let k = *keys.last().ok_or(Errno::EFAULT)?;
            (k, self.vmas.get(&k).cloned().ok_or(Errno::EFAULT)?)
        };
        // DONTUNMAP always moves.
        let in_place = !fixed && !dontunmap;
        if in_place && new_len <= old_len {
            self.unmap(old + new_len, old_len - new_len)?;
            return Ok(old);
        }
        if in_place && self.is_free(old_end, new_len - old_len) {
            self.extend_after(&last, last_start, old_end, new_len - old_len)?;
            return Ok(old);
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let dest = if fixed {
            if !new_addr.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
            }
            let dest_end = new_addr.checked_add(new_len).ok_or(Errno::EINVAL)?;
            if dest_end > self.max_addr || (new_addr < old_end && old < dest_end) {
                return Err(Errno::EINVAL);
            }
            self.unmap(new_addr, new_len)?;
            new_addr
        } else {
            self.find_gap(new_len).ok_or(Errno::ENOMEM)?
        };
        // Move the VMAs (and their pages) as they are.
        let keep = new_len.min(old_len);
        let moved: Vec<(u64, Vma)> = keys.iter().filter_map(|k| self.vmas.remove(k).map(|v| (*k, v))).collect();
        for (start, mut v) in moved {
            let offset = start - old;
            if offset >= keep {
                self.graveyard.push(v.alloc);
                continue;
            }
            let new_start = dest + offset;
            let len = (v.end - start).min(keep - offset);
            v.end = new_start + len;
            self.vmas.insert(new_start, v);
        }
        self.invalidate(old, old_end);
        if new_len > old_len {
            self.extend_after(&last, last_start - old + dest, dest + old_len, new_len - old_len)?;
        }
        if dontunmap {
            // The old range stays mapped, empty (anonymous memory reads as
            // zeros again).
            self.map(old, old_len, last.prot, VmaKind::Anon, None, false)?;
        }
        Ok(dest)
    }

    /// Bytes installed in the stub (what /proc reports as resident).
    pub fn resident(&self) -> u64 {
        self.installed.iter().map(|(s, e)| e - s).sum()
    }

    /// Every VMA: start, end, protection, shared, kind (for /proc maps).
    pub fn areas(&self) -> Vec<(u64, u64, Prot, bool, VmaKind, Option<MapLabel>)> {
        self.vmas.iter().map(|(s, v)| (*s, v.end, v.prot, v.shared, v.kind, v.label.clone())).collect()
    }

    /// Checks that `[start, start+len)` is mapped (ENOMEM otherwise).
    pub fn check_range(&self, start: u64, len: u64) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        self.check_mapped(start, end)
    }

    /// mincore: one byte per page, 1 where pages are installed.
    pub fn residency(&self, start: u64, len: u64) -> Result<Vec<u8>, Errno> {
        self.check_range(start, len)?;
        Ok((0..len / PAGE).map(|i| u8::from(self.is_installed(start + i * PAGE))).collect())
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
                || self.map(old_top, new_top - old_top, Prot::READ | Prot::WRITE, VmaKind::Brk, None, false).is_err()
            {
                return self.brk;
            }
        } else if new_top < old_top && self.unmap(new_top, old_top - new_top).is_err() {
            return self.brk;
        }
        self.brk = new;
        self.brk
    }

    /// The child's copy for fork: shared mappings stay shared, private ones
    /// become copy-on-write on both sides.
    pub fn fork(&mut self) -> MemoryManager {
        let mut private = Vec::new();
        for (&s, v) in self.vmas.iter_mut() {
            if !v.shared {
                v.cow = true;
                if v.prot.contains(Prot::WRITE) {
                    private.push((s, v.end));
                }
            }
        }
        // Writable private pages installed in the parent must fault again.
        for (s, e) in private {
            self.invalidate(s, e);
        }
        MemoryManager {
            mf: self.mf.clone(),
            vmas: self.vmas.clone(),
            brk_start: self.brk_start,
            brk: self.brk,
            mmap_base: self.mmap_base,
            max_addr: self.max_addr,
            arg_range: self.arg_range,
            env_range: self.env_range,
            installed: BTreeMap::new(),
            stale: Vec::new(),
            graveyard: Vec::new(),
            changes: 0,
        }
    }
}

/// A handle on a VMA tree: for a new task that shares it, or for /proc.
#[derive(Clone)]
pub struct SharedMemory(Arc<Mutex<MemoryManager>>);

impl SharedMemory {
    /// The VMA tree, locked.
    pub fn lock(&self) -> MutexGuard<'_, MemoryManager> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A task's view of its memory: the shared VMA tree and the task's own
/// handle on the platform address space.
pub struct TaskMemory {
    shared: Arc<Mutex<MemoryManager>>,
    space: Box<dyn AddressSpace>,
    /// Set when the platform failed: the guest cannot go on.
    broken: bool,
    pub max_addr: u64,
    /// `MemoryManager::changes` when this task last entered guest code.
    seen: u64,
}

impl TaskMemory {
    pub fn new(mm: MemoryManager, space: Box<dyn AddressSpace>) -> TaskMemory {
        let max_addr = mm.max_addr;
        TaskMemory { shared: Arc::new(Mutex::new(mm)), space, broken: false, max_addr, seen: 0 }
    }

    /// The VMA tree, for a task that will share it (CLONE_VM).
    pub fn handle(&self) -> SharedMemory {
        SharedMemory(self.shared.clone())
    }

    /// A task's memory over a shared VMA tree, with the task's own handle
    /// on the same platform address space.
    pub fn attach(shared: SharedMemory, space: Box<dyn AddressSpace>) -> TaskMemory {
        let max_addr = shared.0.lock().unwrap_or_else(|e| e.into_inner()).max_addr;
        TaskMemory { shared: shared.0, space, broken: false, max_addr, seen: 0 }
    }

    /// The VMA tree, locked.
    pub fn lock(&self) -> MutexGuard<'_, MemoryManager> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.lock().copy_in(addr, buf)
    }

    pub fn copy_out(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.lock().copy_out(addr, data)
    }

    pub fn poke(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.lock().poke(addr, data)
    }

    pub fn check_writable(&self, addr: u64, len: usize) -> Result<(), Errno> {
        self.lock().check_writable(addr, len)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without NUL).
    pub fn copy_in_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mm = self.lock();
        let mut out = Vec::new();
        let mut at = addr;
        loop {
            // Up to the end of the page, never past the terminator's page.
            let chunk = (PAGE - (at % PAGE)) as usize;
            let mut buf = vec![0u8; chunk];
            mm.copy_in(at, &mut buf)?;
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

    /// Serves a fault; false when the guest must get a signal.
    pub fn handle_fault(&mut self, addr: u64) -> bool {
        let shared = self.shared.clone();
        let mut mm = shared.lock().unwrap_or_else(|e| e.into_inner());
        match mm.fault(addr, self.space.as_mut()) {
            // Another thread changed the mappings since this one entered
            // guest code (it broke copy-on-write on the page, say): the
            // fault may predate the change, so the access is retried; a
            // fault again with nothing changed is real.
            Ok(false) if mm.changes != self.seen => true,
            Ok(ok) => ok,
            Err(e) => {
                tracing::error!(target: "sentry::mm", "serving a fault at {addr:#x}: {e}");
                self.broken = true;
                false
            }
        }
    }

    /// Applies this address space's pending changes before the task runs
    /// guest code.
    pub fn sync(&mut self) {
        let shared = self.shared.clone();
        let mut mm = shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = mm.flush(self.space.as_mut()) {
            tracing::error!(target: "sentry::mm", "updating the address space: {e}");
            self.broken = true;
        }
        self.seen = mm.changes;
    }

    /// Whether a VMA covers `addr`.
    pub fn is_mapped(&self, addr: u64) -> bool {
        self.lock().vma_at(addr).is_some()
    }

    /// The task's handle on the platform address space.
    pub fn space(&mut self) -> &mut dyn AddressSpace {
        self.space.as_mut()
    }

    /// A number naming the address space (shared by tasks that share it).
    pub fn identity(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    /// The host process and thread running this task's guest code.
    pub fn host_ids(&self) -> (i32, i32) {
        self.space.host_ids()
    }

    pub fn broken(&self) -> bool {
        self.broken
    }

    /// The host clock of the process's guest CPU time.
    pub fn cpu_clock(&self) -> Option<i32> {
        self.space.cpu_clock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A host file of `pages` pages, page `i` filled with byte `i`.
    fn numbered_file(pages: u64) -> Arc<OwnedFd> {
        let mut f = tempfile_in_tmp();
        for i in 0..pages {
            f.write_all(&[i as u8; PAGE as usize]).unwrap();
        }
        Arc::new(OwnedFd::from(f))
    }

    fn tempfile_in_tmp() -> std::fs::File {
        let path = std::env::temp_dir().join(format!(
            "cordon-mm-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f
    }

    fn byte_at(mm: &MemoryManager, addr: u64) -> u8 {
        let mut b = [0u8];
        mm.copy_in(addr, &mut b).unwrap();
        b[0]
    }

    #[test]
    fn a_mapped_file_is_read_in_as_it_is_used() {
        let mf = Arc::new(MemoryFile::new(1 << 28).unwrap());
        let mut mm = MemoryManager::new(mf.clone(), 1 << 40);
        let base = 0x10_0000;
        let pages = 4096; // 16 MiB
        let src = FileSource { fd: numbered_file(pages), offset: PAGE, len: (pages - 1) * PAGE - 100 };
        let before = mf.resident_bytes();
        mm.map(base, pages * PAGE, Prot::READ | Prot::WRITE, VmaKind::File, Some(src), false).unwrap();
        assert!(mf.resident_bytes() - before < 64 << 10, "mapping reads nothing in");
        assert_eq!(byte_at(&mm, base + 1000 * PAGE + 7), (1001 % 256) as u8, "file offset PAGE is the mapping's start");
        assert!(mf.resident_bytes() - before <= 64 << 10, "one page read in, not the file");
        // The tail: past the file's part, zeros (the bss of an ELF segment).
        assert_eq!(byte_at(&mm, base + (pages - 2) * PAGE + PAGE - 101), (pages - 1) as u8);
        assert_eq!(byte_at(&mm, base + (pages - 2) * PAGE + PAGE - 100), 0);
        assert_eq!(byte_at(&mm, base + (pages - 1) * PAGE), 0);

        // Fork: both sides see the file; a write on one side is its own.
        let mut child = mm.fork();
        child.copy_out(base + 2000 * PAGE, b"x").unwrap();
        assert_eq!(byte_at(&child, base + 2000 * PAGE), b'x');
        assert_eq!(byte_at(&mm, base + 2000 * PAGE), (2001 % 256) as u8);
        assert_eq!(byte_at(&child, base + 2001 * PAGE), (2002 % 256) as u8);

        // MADV_DONTNEED: written pages read as the file again.
        mm.copy_out(base + 3000 * PAGE, b"y").unwrap();
        assert_eq!(byte_at(&mm, base + 3000 * PAGE), b'y');
        mm.dontneed(base + 3000 * PAGE, base + 3001 * PAGE).unwrap();
        assert_eq!(byte_at(&mm, base + 3000 * PAGE), (3001 % 256) as u8);
        child.dontneed(base + 2000 * PAGE, base + 2001 * PAGE).unwrap();
        assert_eq!(byte_at(&child, base + 2000 * PAGE), (2001 % 256) as u8);

        // Split by mprotect, moved by mremap: still the right file bytes.
        mm.protect(base + 100 * PAGE, PAGE, Prot::READ).unwrap();
        assert_eq!(byte_at(&mm, base + 100 * PAGE), 101);
        assert_eq!(byte_at(&mm, base + 101 * PAGE), 102);
        let moved =
            mm.remap(base + 200 * PAGE, 10 * PAGE, 20 * PAGE, syscalls::flags::mremap::MREMAP_MAYMOVE, 0).unwrap();
        assert_eq!(byte_at(&mm, moved + 5 * PAGE), 206);
    }
}
