//! tmpfs: a file system that lives in the sentry. Its dentries are the
//! directory tree itself; file data lives in the memory file in chunks, so
//! that MAP_SHARED mappings of a tmpfs file (shm_open, sem_open) map the
//! file's own pages.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use gofer::Attr;
use syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use syscalls::Errno;

use crate::mm::{Allocation, MemoryFile};

/// File data is kept in blocks of this size.
pub const CHUNK: u64 = 64 << 10;
/// Largest file size (Linux's MAX_LFS_FILESIZE).
const MAX_SIZE: u64 = i64::MAX as u64;

/// One mounted tmpfs.
pub struct Tmpfs {
    mf: Arc<MemoryFile>,
    /// Device number shown by stat.
    pub dev: u64,
    /// Most bytes of file data (size=).
    limit: u64,
    used: AtomicU64,
    next_ino: AtomicU64,
    /// Live inodes, at most `max_inodes` (Linux's nr_inodes: a guest must
    /// not fill the sentry's memory with empty files).
    inodes: AtomicU64,
    max_inodes: u64,
    /// Mounted read-only (a readonlyPaths entry, or `ro`).
    pub readonly: std::sync::atomic::AtomicBool,
    /// Mounted `nosuid`.
    pub nosuid: std::sync::atomic::AtomicBool,
    /// The mqueue file system: its regular files are message queues, and
    /// it has no directories, links or special files.
    pub mqueue: bool,
}

/// What a tmpfs inode holds.
pub enum Contents {
    Dir,
    Symlink(Vec<u8>),
    /// Chunks of file data by index; a missing chunk reads as zeros (so
    /// sparse files cost only what was written).
    File(Mutex<BTreeMap<u64, Chunk>>),
    /// A FIFO: its pipe, made at the first open.
    Fifo(Mutex<Option<Arc<crate::pipe::Pipe>>>),
    /// A socket file (bound by a unix socket; opening it is ENXIO).
    Socket,
    /// A POSIX message queue (a file of the mqueue file system).
    Mqueue(Arc<crate::mqueue::MessageQueue>),
}

/// Accounting unit of the size limit: a page, as Linux's tmpfs counts.
const PAGE: u64 = 4096;
const PAGES_PER_CHUNK: u64 = CHUNK / PAGE;

/// One chunk of a file's data, and which of its pages were charged to the
/// file system (written, or mapped shared): the memory file's pages are only
/// backed once touched, so a small file costs its pages, not a chunk.
pub struct Chunk {
    alloc: Arc<Allocation>,
    charged: u16,
}

/// The page bits of chunk-relative byte range `[from, to)`.
fn page_bits(from: u64, to: u64) -> u16 {
    let (a, b) = (from / PAGE, to.div_ceil(PAGE).min(PAGES_PER_CHUNK));
    let mut bits = 0u16;
    for p in a..b {
        bits |= 1 << p;
    }
    bits
}

/// A tmpfs file (shared by its hard links).
pub struct Inode {
    pub fs: Arc<Tmpfs>,
    attr: Mutex<Attr>,
    pub contents: Contents,
    /// Extended attributes (`user.` names).
    pub xattrs: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// inotify watches on the file (whichever link named it).
    pub watches: super::inotify::Watches,
    /// An O_TMPFILE file (without O_EXCL) not yet linked: a link may give
    /// it a name although it has none (Linux's I_LINKABLE).
    pub linkable: std::sync::atomic::AtomicBool,
}

/// The time now, as file timestamps keep it.
pub fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

impl Tmpfs {
    /// A new, empty tmpfs of at most `limit` bytes.
    pub fn new(mf: Arc<MemoryFile>, limit: u64) -> Arc<Tmpfs> {
        Arc::new(Tmpfs::build(mf, limit, false))
    }

    /// The mqueue file system of an IPC namespace (its files hold no data).
    pub fn new_mqueue(mf: Arc<MemoryFile>) -> Arc<Tmpfs> {
        Arc::new(Tmpfs::build(mf, 0, true))
    }

    fn build(mf: Arc<MemoryFile>, limit: u64, mqueue: bool) -> Tmpfs {
        static NEXT_DEV: AtomicU64 = AtomicU64::new(0x30);
        Tmpfs {
            mf,
            dev: NEXT_DEV.fetch_add(1, Ordering::Relaxed),
            limit,
            used: AtomicU64::new(0),
            next_ino: AtomicU64::new(1),
            inodes: AtomicU64::new(0),
            max_inodes: (limit / 4096).max(1024),
            readonly: Default::default(),
            nosuid: Default::default(),
            mqueue,
        }
    }

    /// A new inode of this file system (ENOSPC past its inode limit).
    pub fn inode(self: &Arc<Tmpfs>, mode: u32, uid: u32, gid: u32, contents: Contents) -> Result<Arc<Inode>, Errno> {
        if self.inodes.fetch_add(1, Ordering::SeqCst) >= self.max_inodes {
            self.inodes.fetch_sub(1, Ordering::SeqCst);
            return Err(Errno::ENOSPC);
        }
        let t = now();
        let ino = self.next_ino.fetch_add(1, Ordering::Relaxed);
        let is_dir = mode & S_IFMT == S_IFDIR;
        let size = match &contents {
            Contents::Symlink(target) => target.len() as u64,
            Contents::Dir => 4096,
            Contents::File(_) | Contents::Fifo(_) | Contents::Socket => 0,
            Contents::Mqueue(_) => syscalls::flags::mqueue::FILENT_SIZE,
        };
        let attr = Attr {
            mode,
            nlink: if is_dir { 2 } else { 1 },
            uid,
            gid,
            size,
            blksize: 4096,
            atime: t,
            mtime: t,
            ctime: t,
            btime: Some(t),
            ino,
            dev: self.dev,
            ..Default::default()
        };
        Ok(Arc::new(Inode {
            fs: self.clone(),
            attr: Mutex::new(attr),
            contents,
            xattrs: Default::default(),
            watches: Default::default(),
            linkable: Default::default(),
        }))
    }

    fn charge(&self, bytes: u64) -> Result<(), Errno> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let new = used.checked_add(bytes).filter(|n| *n <= self.limit).ok_or(Errno::ENOSPC)?;
            match self.used.compare_exchange(used, new, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(u) => used = u,
            }
        }
    }

    fn uncharge(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::SeqCst);
    }

    /// (total, free) bytes for statfs.
    pub fn usage(&self) -> (u64, u64) {
        let used = self.used.load(Ordering::Relaxed);
        (self.limit, self.limit.saturating_sub(used))
    }
}

impl Inode {
    pub fn attr(&self) -> MutexGuard<'_, Attr> {
        self.attr.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn chunks(&self) -> Result<MutexGuard<'_, BTreeMap<u64, Chunk>>, Errno> {
        match &self.contents {
            Contents::File(c) => Ok(c.lock().unwrap_or_else(|e| e.into_inner())),
            Contents::Dir => Err(Errno::EISDIR),
            Contents::Symlink(_) | Contents::Fifo(_) | Contents::Socket | Contents::Mqueue(_) => Err(Errno::EINVAL),
        }
    }

    /// Reads at `off`; 0 at or past the end.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let chunks = self.chunks()?;
        let size = self.attr().size;
        if off >= size {
            return Ok(0);
        }
        let n = buf.len().min((size - off) as usize);
        let mut done = 0;
        while done < n {
            let at = off + done as u64;
            let (idx, inner) = (at / CHUNK, at % CHUNK);
            let step = ((CHUNK - inner) as usize).min(n - done);
            match chunks.get(&idx) {
                Some(c) => self.fs.mf.read(c.alloc.offset() + inner, &mut buf[done..done + step]),
                None => buf[done..done + step].fill(0),
            }
            done += step;
        }
        drop(chunks);
        self.attr().atime = now();
        Ok(n)
    }

    /// Makes sure the chunks under `[off, off+len)` exist and their pages
    /// there are charged to the file system (ENOSPC past its size).
    fn allocate(&self, chunks: &mut BTreeMap<u64, Chunk>, off: u64, len: u64) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = off + len;
        let last = (end - 1) / CHUNK;
        for idx in off / CHUNK..=last {
            let base = idx * CHUNK;
            let want = page_bits(off.max(base) - base, end.min(base + CHUNK) - base);
            let chunk = match chunks.entry(idx) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(Chunk { alloc: Allocation::new(&self.fs.mf, CHUNK)?, charged: 0 })
                }
            };
            let new = want & !chunk.charged;
            if new != 0 {
                // Charged before use: the size limit bounds what a guest can
                // make the sentry's memory hold.
                self.fs.charge(u64::from(new.count_ones()) * PAGE)?;
                chunk.charged |= new;
            }
        }
        Ok(())
    }

    /// Writes at `off`, growing the file.
    pub fn write(&self, off: u64, data: &[u8]) -> Result<usize, Errno> {
        let end = off.checked_add(data.len() as u64).filter(|e| *e <= MAX_SIZE).ok_or(Errno::EFBIG)?;
        let mut chunks = self.chunks()?;
        self.allocate(&mut chunks, off, data.len() as u64)?;
        let mut done = 0;
        while done < data.len() {
            let at = off + done as u64;
            let (idx, inner) = (at / CHUNK, at % CHUNK);
            let step = ((CHUNK - inner) as usize).min(data.len() - done);
            if let Some(c) = chunks.get(&idx) {
                self.fs.mf.write(c.alloc.offset() + inner, &data[done..done + step]);
            }
            done += step;
        }
        drop(chunks);
        let mut a = self.attr();
        a.size = a.size.max(end);
        a.blocks = a.size.div_ceil(512);
        let t = now();
        a.mtime = t;
        a.ctime = t;
        Ok(data.len())
    }

    /// Sets the size: a shrink frees the chunks past the end and zeroes the
    /// rest of the last one.
    pub fn truncate(&self, len: u64) -> Result<(), Errno> {
        if len > MAX_SIZE {
            return Err(Errno::EFBIG);
        }
        if let Contents::Mqueue(_) = self.contents {
            // A queue's size is only what stat shows: Linux sets it, and
            // the queue is untouched.
            let mut a = self.attr();
            a.size = len;
            let t = now();
            a.mtime = t;
            a.ctime = t;
            return Ok(());
        }
        let mut chunks = self.chunks()?;
        let keep = len.div_ceil(CHUNK);
        let gone = chunks.split_off(&keep);
        let freed: u64 = gone.values().map(|c| u64::from(c.charged.count_ones())).sum();
        self.fs.uncharge(freed * PAGE);
        drop(gone);
        if !len.is_multiple_of(CHUNK) {
            if let Some(c) = chunks.get_mut(&(keep - 1)) {
                let inner = len % CHUNK;
                self.fs.mf.zero(c.alloc.offset() + inner, CHUNK - inner);
                // Whole pages past the end are no longer used.
                let past = page_bits(inner.div_ceil(PAGE) * PAGE, CHUNK) & c.charged;
                c.charged &= !past;
                self.fs.uncharge(u64::from(past.count_ones()) * PAGE);
            }
        }
        drop(chunks);
        let mut a = self.attr();
        a.size = len;
        a.blocks = len.div_ceil(512);
        let t = now();
        a.mtime = t;
        a.ctime = t;
        Ok(())
    }

    /// The chunks covering `[off, off+len)`, allocated (for MAP_SHARED).
    pub fn pages(&self, off: u64, len: u64) -> Result<Vec<Arc<Allocation>>, Errno> {
        let mut chunks = self.chunks()?;
        self.allocate(&mut chunks, off, len)?;
        let (first, last) = (off / CHUNK, (off + len - 1) / CHUNK);
        Ok(chunks.range(first..=last).map(|(_, c)| c.alloc.clone()).collect())
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.contents, Contents::Dir)
    }

    /// Fills this (empty) file with the whole of host file `fd` (an
    /// overlay copy-up, a shared mapping's page cache).
    pub fn fill_from_host(&self, fd: &std::os::fd::OwnedFd) -> Result<(), Errno> {
        let mut buf = vec![0u8; crate::mm::MAX_COPY];
        let mut off = 0u64;
        loop {
            let n = match nix::sys::uio::pread(fd, &mut buf, off as i64) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(Errno::from_raw(e as i32)),
            };
            self.write(off, &buf[..n])?;
            off += n as u64;
        }
    }
}

impl Drop for Inode {
    fn drop(&mut self) {
        self.fs.inodes.fetch_sub(1, Ordering::SeqCst);
        if let Contents::File(c) = &self.contents {
            let pages: u64 =
                c.lock().unwrap_or_else(|e| e.into_inner()).values().map(|c| u64::from(c.charged.count_ones())).sum();
            self.fs.uncharge(pages * PAGE);
        }
    }
}

/// Parses tmpfs mount options (size=, mode=); returns (limit, mode).
pub fn parse_options(options: &[String], default_limit: u64, default_mode: u32) -> (u64, u32) {
    let mut limit = default_limit;
    let mut mode = default_mode;
    for o in options {
        if let Some(v) = o.strip_prefix("size=") {
            let (num, mult) = match v.chars().last() {
                Some('k') | Some('K') => (&v[..v.len() - 1], 1 << 10),
                Some('m') | Some('M') => (&v[..v.len() - 1], 1 << 20),
                Some('g') | Some('G') => (&v[..v.len() - 1], 1 << 30),
                _ => (v, 1),
            };
            if let Ok(n) = num.parse::<u64>() {
                limit = n.saturating_mul(mult);
            }
        } else if let Some(v) = o.strip_prefix("mode=") {
            if let Ok(m) = u32::from_str_radix(v, 8) {
                mode = m & 0o7777;
            }
        }
    }
    (limit, mode)
}

/// Modes of new tmpfs files.
pub fn regular_mode(perm: u32) -> u32 {
    S_IFREG | (perm & 0o7777)
}

pub fn symlink_mode() -> u32 {
    S_IFLNK | 0o777
}
