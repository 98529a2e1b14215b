//! The memory file: one memfd holding every guest page, mapped once into the
//! sentry so guest memory is copied through that mapping.
#![allow(unsafe_code)] // the sentry's one mapping of guest memory

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;

use nix::fcntl::{fallocate, FallocateFlags};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use syscalls::Errno;

/// Page size of the guest.
pub const PAGE: u64 = 4096;

/// The sentry's memory file.
pub struct MemoryFile {
    fd: OwnedFd,
    base: *mut u8,
    size: u64,
    free: Mutex<BTreeMap<u64, u64>>,
    /// Recently released ranges whose pages are still allocated, newest
    /// last, reused (zeroed) by allocations of the same size: a guest that
    /// maps and unmaps the same size again and again then neither frees nor
    /// faults in fresh host pages.
    recycled: Mutex<Recycled>,
}

#[derive(Default)]
struct Recycled {
    ranges: Vec<(u64, u64)>,
    bytes: u64,
}

/// Most bytes kept allocated in recycled ranges.
const RECYCLE_MAX: u64 = 64 << 20;
/// Largest single range kept for recycling.
const RECYCLE_RANGE_MAX: u64 = 8 << 20;
/// Largest piece `load_from` reads at once.
const LOAD_CHUNK: usize = 64 << 10;

// SAFETY: `base` points into a MAP_SHARED mapping that lives as long as the
// MemoryFile; all access goes through bounds-checked byte copies, and
// concurrent copies of plain bytes are the same races guest threads have.
unsafe impl Send for MemoryFile {}
// SAFETY: as above; the allocator state is behind a Mutex.
unsafe impl Sync for MemoryFile {}

/// Errors creating the memory file.
#[derive(Debug, thiserror::Error)]
pub enum MemoryFileError {
    #[error("memfd_create")]
    Create(#[source] nix::Error),
    #[error("sizing the memory file to {size} bytes")]
    Size {
        size: u64,
        #[source]
        source: nix::Error,
    },
    #[error("mapping the memory file")]
    Map(#[source] std::io::Error),
}

impl MemoryFile {
    /// A sparse memory file of `size` bytes, mapped into the sentry.
    pub fn new(size: u64) -> Result<MemoryFile, MemoryFileError> {
        let fd = memfd_create(c"cordon-memory", MemFdCreateFlag::MFD_CLOEXEC).map_err(MemoryFileError::Create)?;
        nix::unistd::ftruncate(&fd, size as i64).map_err(|source| MemoryFileError::Size { size, source })?;
        // SAFETY: a fresh shared mapping of our own memfd at a kernel-chosen
        // address; nothing else is mapped there.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(MemoryFileError::Map(std::io::Error::last_os_error()));
        }
        let mut free = BTreeMap::new();
        free.insert(0, size);
        Ok(MemoryFile { fd, base: base.cast(), size, free: Mutex::new(free), recycled: Mutex::default() })
    }

    /// Bytes of the file the host has backed with memory (the guest's
    /// pages in use, and recycled ones).
    pub fn resident_bytes(&self) -> u64 {
        nix::sys::stat::fstat(self.fd.as_raw_fd()).map_or(0, |st| st.st_blocks as u64 * 512)
    }

    /// The memfd, for platforms to map into stubs.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reserves `len` bytes (page multiple) of the file, reading as zeros.
    /// Returns the offset and whether the range's pages are all allocated
    /// already (recycled), so mapping it may populate them at once.
    pub fn allocate(&self, len: u64) -> Result<(u64, bool), Errno> {
        {
            let mut r = self.recycled.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = r.ranges.iter().rposition(|(_, l)| *l == len) {
                let (off, _) = r.ranges.swap_remove(i);
                r.bytes -= len;
                drop(r);
                self.zero(off, len);
                return Ok((off, true));
            }
        }
        self.allocate_clean(len).map(|off| (off, false))
    }

    fn allocate_clean(&self, len: u64) -> Result<u64, Errno> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let (&start, &flen) = free.iter().find(|(_, l)| **l >= len).ok_or(Errno::ENOMEM)?;
        free.remove(&start);
        if flen > len {
            free.insert(start + len, flen - len);
        }
        Ok(start)
    }

    /// Returns `[off, off+len)` to the allocator: kept for recycling when
    /// small and the pool has room, else its pages are dropped.
    pub fn release(&self, off: u64, len: u64) {
        if len == 0 {
            return;
        }
        if len <= RECYCLE_RANGE_MAX {
            let mut r = self.recycled.lock().unwrap_or_else(|e| e.into_inner());
            if r.bytes + len <= RECYCLE_MAX {
                r.ranges.push((off, len));
                r.bytes += len;
                return;
            }
        }
        self.release_clean(off, len);
    }

    fn release_clean(&self, off: u64, len: u64) {
        self.decommit(off, len);
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let (mut start, mut end) = (off, off + len);
        if let Some((&ps, &pl)) = free.range(..start).next_back() {
            if ps + pl == start {
                free.remove(&ps);
                start = ps;
            }
        }
        if let Some(&nl) = free.get(&end) {
            free.remove(&end);
            end += nl;
        }
        free.insert(start, end - start);
    }

    /// Drops the pages of `[off, off+len)`: they read as zeros again.
    pub fn decommit(&self, off: u64, len: u64) {
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        if let Err(e) = fallocate(self.fd.as_raw_fd(), flags, off as i64, len as i64) {
            tracing::warn!(target: "sentry::mm", "punching a hole in the memory file: {e}");
        }
    }

    /// Copies `len` bytes inside the file, from `from` to `to`.
    pub fn copy_within(&self, from: u64, to: u64, len: u64) {
        self.check(from, len as usize);
        self.check(to, len as usize);
        // SAFETY: both ranges are inside the mapping (checked above); they
        // are distinct allocations, so they do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.wrapping_add(from as usize),
                self.base.wrapping_add(to as usize),
                len as usize,
            )
        };
    }

    /// Fills `[off, off+len)` with zeros through the sentry's mapping.
    pub fn zero(&self, off: u64, len: u64) {
        self.check(off, len as usize);
        // SAFETY: `check` keeps the range inside the writable mapping.
        unsafe { std::ptr::write_bytes(self.base.wrapping_add(off as usize), 0, len as usize) };
    }

    fn check(&self, off: u64, len: usize) {
        assert!(off.checked_add(len as u64).is_some_and(|end| end <= self.size), "memory file access out of range");
    }

    /// Copies bytes out of the file.
    pub fn read(&self, off: u64, buf: &mut [u8]) {
        self.check(off, buf.len());
        // SAFETY: `check` keeps `[off, off+len)` inside the mapping, which is
        // readable and stays mapped while `self` lives; `buf` cannot overlap it.
        unsafe { std::ptr::copy_nonoverlapping(self.base.wrapping_add(off as usize), buf.as_mut_ptr(), buf.len()) };
    }

    /// Copies bytes into the file.
    pub fn write(&self, off: u64, data: &[u8]) {
        self.check(off, data.len());
        // SAFETY: as in `read`; the mapping is writable.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.wrapping_add(off as usize), data.len()) };
    }

    /// Atomically replaces the 4-aligned word at `off` with `f(old)` until
    /// `f` declines (None); returns the last old value. Guest threads
    /// update the same word with their own atomic instructions.
    pub fn update_u32(&self, off: u64, mut f: impl FnMut(u32) -> Option<u32>) -> u32 {
        self.check(off, 4);
        assert!(off.is_multiple_of(4), "unaligned atomic access");
        // SAFETY: `check` keeps the word inside the writable mapping, which
        // lives as long as `self`; it is 4-aligned (the mapping is
        // page-aligned); AtomicU32 has u32's layout, and all concurrent
        // accesses from the sentry go through atomics or plain copies the
        // guest ABI already allows to race.
        let word = unsafe { &*(self.base.wrapping_add(off as usize) as *const std::sync::atomic::AtomicU32) };
        match word.fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, &mut f) {
            Ok(old) | Err(old) => old,
        }
    }

    /// Reads `len` bytes of `fd` at `file_off` straight into the file at
    /// `off`; returns how many bytes were read before end of file.
    pub fn fill_from(&self, off: u64, len: usize, fd: RawFd, file_off: u64) -> Result<usize, Errno> {
        self.check(off, len);
        let mut done = 0;
        while done < len {
            // SAFETY: the destination range is inside the writable mapping
            // (checked above) and pread writes at most `len - done` bytes.
            let n = unsafe {
                libc::pread(
                    fd,
                    self.base.wrapping_add(off as usize + done).cast(),
                    len - done,
                    (file_off + done as u64) as i64,
                )
            };
            if n < 0 {
                let e = nix::Error::last();
                if e == nix::Error::EINTR {
                    continue;
                }
                return Err(Errno::from_raw(e as i32));
            }
            if n == 0 {
                break;
            }
            done += n as usize;
        }
        Ok(done)
    }

    /// Reads `len` bytes of `fd` at `file_off` into the file at `off`, as
    /// `fill_from` does, but through the memory file's fd rather than the
    /// sentry's mapping of it: pages read for the guest alone (the lazily
    /// read pages of a mapped file) are then not also mapped in the sentry.
    pub fn load_from(&self, off: u64, len: usize, fd: BorrowedFd<'_>, file_off: u64) -> Result<usize, Errno> {
        self.check(off, len);
        let mut buf = vec![0u8; len.min(LOAD_CHUNK)];
        let mut done = 0;
        while done < len {
            let want = (len - done).min(buf.len());
            let n = match nix::sys::uio::pread(fd, &mut buf[..want], (file_off + done as u64) as i64) {
                Ok(0) => break,
                Ok(n) => n,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(Errno::from_raw(e as i32)),
            };
            let mut put = 0;
            while put < n {
                match nix::sys::uio::pwrite(&self.fd, &buf[put..n], (off + (done + put) as u64) as i64) {
                    Ok(0) => return Err(Errno::EIO),
                    Ok(m) => put += m,
                    Err(nix::Error::EINTR) => continue,
                    Err(e) => return Err(Errno::from_raw(e as i32)),
                }
            }
            done += n;
        }
        Ok(done)
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`.
        unsafe { libc::munmap(self.base.cast(), self.size as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_release_coalesce() {
        let mf = MemoryFile::new(1 << 24).unwrap();
        let (a, _) = mf.allocate(PAGE).unwrap();
        let (b, _) = mf.allocate(2 * PAGE).unwrap();
        mf.write(b, b"hello");
        let mut buf = [0u8; 5];
        mf.read(b, &mut buf);
        assert_eq!(&buf, b"hello");
        mf.release(b, 2 * PAGE);
        let (again, recycled) = mf.allocate(2 * PAGE).unwrap();
        assert!(recycled);
        assert_eq!(again, b, "a released range of the same size is reused");
        mf.read(again, &mut buf);
        assert_eq!(buf, [0; 5], "recycled pages read as zeros");
        mf.release_clean(a, PAGE);
        mf.release_clean(b, 2 * PAGE);
        assert_eq!(mf.free.lock().unwrap().len(), 1);
        let (c, recycled) = mf.allocate(3 * PAGE).unwrap();
        assert!(!recycled);
        mf.read(c + PAGE, &mut buf);
        assert_eq!(buf, [0; 5], "released pages read as zeros");
        assert_eq!(mf.allocate(1 << 30), Err(Errno::ENOMEM));
    }
}
