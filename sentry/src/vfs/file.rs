//! Open file descriptions.
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use gofer::Dirent;
use syscalls::flags::inotify as IN;
use syscalls::flags::OpenFlags;
use syscalls::Errno;

use super::Dentry;

/// An open file description, shared by every fd that `dup`s it.
pub struct File {
    /// Status flags (access mode, O_APPEND, O_NONBLOCK, ...).
    flags: AtomicU32,
    pub kind: FileKind,
    pub dentry: Option<Arc<Dentry>>,
    /// The file position.
    pub pos: Mutex<u64>,
    /// Set once the description held an OFD or flock lock, released when
    /// it goes.
    pub locked: std::sync::atomic::AtomicBool,
}

impl Drop for File {
    fn drop(&mut self) {
        if self.locked.load(Ordering::Relaxed) {
            super::lock::locks().release(super::lock::Owner::Description(self as *const File as usize), None);
        }
        if let (Some(d), false) = (&self.dentry, self.is_path()) {
            d.notify(if self.writable() { IN::IN_CLOSE_WRITE } else { IN::IN_CLOSE_NOWRITE });
        }
    }
}

/// What kind of file a description is.
pub enum FileKind {
    /// A host fd handed to the sandbox: the container's stdio.
    Host(OwnedFd),
    /// A regular file of a gofer mount, read and written through the host
    /// fd the gofer donated.
    Regular(Arc<OwnedFd>),
    /// A directory of a gofer mount.
    Dir(Mutex<DirCursor>),
    /// `O_PATH`: names a file, allows no I/O.
    Path,
    /// One end of a pipe.
    Pipe(crate::pipe::PipeEnd),
    /// A character device the sentry implements (/dev/null and friends).
    Device(super::devfs::Device),
    /// A file with no path: eventfd, epoll, timerfd, signalfd.
    Anon(Box<dyn super::AnonFile>),
    /// A regular file of a tmpfs.
    Tmpfs(Arc<super::tmpfs::Inode>),
    /// A file whose contents the sentry generates (procfs).
    Generated(GeneratedFile),
    /// One end of a pseudo-terminal.
    Tty(crate::tty::TtyEnd),
    /// A POSIX message queue (mq_open, or open(2) in an mqueue mount).
    Mqueue(Arc<crate::mqueue::MessageQueue>),
}

/// Contents made by a generator, afresh whenever a read starts at offset
/// 0 (as Linux's seq_file does), so they reflect the state at read time.
pub struct GeneratedFile {
    generate: Box<dyn Fn() -> Vec<u8> + Send + Sync>,
    text: Mutex<Vec<u8>>,
    /// What a write does (None: not writable).
    store: Option<Box<StoreFn>>,
}

type StoreFn = dyn Fn(&[u8]) -> Result<usize, Errno> + Send + Sync;

impl GeneratedFile {
    pub fn new(generate: impl Fn() -> Vec<u8> + Send + Sync + 'static) -> GeneratedFile {
        GeneratedFile { generate: Box::new(generate), text: Mutex::new(Vec::new()), store: None }
    }

    /// A file whose writes go to `store` (e.g. /proc/pid/comm).
    pub fn writable(
        generate: impl Fn() -> Vec<u8> + Send + Sync + 'static,
        store: impl Fn(&[u8]) -> Result<usize, Errno> + Send + Sync + 'static,
    ) -> GeneratedFile {
        GeneratedFile { generate: Box::new(generate), text: Mutex::new(Vec::new()), store: Some(Box::new(store)) }
    }

    fn write(&self, data: &[u8]) -> Result<usize, Errno> {
        self.store.as_ref().ok_or(Errno::EINVAL).and_then(|s| s(data))
    }

    fn read_at(&self, at: usize, buf: &mut [u8]) -> usize {
        let mut text = self.text.lock().unwrap_or_else(|e| e.into_inner());
        if at == 0 {
            *text = (self.generate)();
        }
        let n = buf.len().min(text.len().saturating_sub(at));
        if n > 0 {
            buf[..n].copy_from_slice(&text[at..at + n]);
        }
        n
    }

    fn len(&self) -> usize {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A directory listing in progress.
#[derive(Default)]
pub struct DirCursor {
    /// Entries fetched from the gofer, starting at index `base`.
    pub buf: Vec<Dirent>,
    pub base: u64,
    pub eof: bool,
}

impl File {
    pub fn new(kind: FileKind, flags: u32, dentry: Option<Arc<Dentry>>) -> Arc<File> {
        Arc::new(File { flags: AtomicU32::new(flags), kind, dentry, pos: Mutex::new(0), locked: Default::default() })
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// F_SETFL: changes the flags that may change.
    pub fn set_status_flags(&self, new: u32) {
        let mask = OpenFlags::SETFL_MASK;
        let old = self.flags();
        self.flags.store((old & !mask) | (new & mask), Ordering::Relaxed);
    }

    pub fn readable(&self) -> bool {
        !self.is_path() && matches!(self.flags() & OpenFlags::O_ACCMODE, 0 | 2)
    }

    pub fn writable(&self) -> bool {
        !self.is_path() && matches!(self.flags() & OpenFlags::O_ACCMODE, 1 | 2)
    }

    pub fn nonblocking(&self) -> bool {
        self.flags() & OpenFlags::O_NONBLOCK.bits() != 0
    }

    pub fn is_path(&self) -> bool {
        matches!(self.kind, FileKind::Path)
    }

    /// The host fd behind the file, for host I/O.
    pub fn host_fd(&self) -> Option<i32> {
        match &self.kind {
            FileKind::Host(fd) => Some(fd.as_raw_fd()),
            FileKind::Regular(fd) => Some(fd.as_raw_fd()),
            _ => None,
        }
    }

    /// Reads at the file position (or `offset`), advancing the position when
    /// no offset is given.
    pub fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize, Errno> {
        let n = self.read_data(buf, offset)?;
        if let (Some(d), true) = (&self.dentry, n > 0) {
            d.notify(IN::IN_ACCESS);
        }
        Ok(n)
    }

    fn read_data(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        match &self.kind {
            FileKind::Host(fd) => match offset {
                None => host_result(nix::unistd::read(fd.as_raw_fd(), buf)),
                Some(off) => host_result(nix::sys::uio::pread(fd, buf, off as i64)),
            },
            FileKind::Regular(fd) => {
                let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
                let at = offset.unwrap_or(*pos);
                let n = match self.dentry.as_ref().and_then(|d| d.cached_pages()) {
                    // Mapped shared: the cache has what the mappings wrote.
                    Some(c) => c.read(at, buf)?,
                    None => host_result(nix::sys::uio::pread(fd.as_ref(), buf, at as i64))?,
                };
                if offset.is_none() {
                    *pos = at + n as u64;
                }
                Ok(n)
            }
            FileKind::Device(d) => d.read(buf),
            FileKind::Tmpfs(inode) => {
                let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
                let at = offset.unwrap_or(*pos);
                let n = inode.read(at, buf)?;
                if offset.is_none() {
                    *pos = at + n as u64;
                }
                Ok(n)
            }
            FileKind::Generated(g) => {
                let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
                let at = offset.unwrap_or(*pos) as usize;
                let n = g.read_at(at, buf);
                if offset.is_none() {
                    *pos = (at + n) as u64;
                }
                Ok(n)
            }
            // The queue's state line, made afresh by every read.
            FileKind::Mqueue(q) => {
                let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
                let at = offset.unwrap_or(*pos);
                let text = q.status();
                let from = (at as usize).min(text.len());
                let n = buf.len().min(text.len() - from);
                buf[..n].copy_from_slice(&text.as_bytes()[from..from + n]);
                if offset.is_none() {
                    *pos = at + n as u64;
                }
                Ok(n)
            }
            FileKind::Dir(_) => Err(Errno::EISDIR),
            FileKind::Anon(_) | FileKind::Tty(_) => Err(Errno::EINVAL),
            FileKind::Path | FileKind::Pipe(_) => Err(Errno::EBADF),
        }
    }

    /// Writes at the file position (or `offset`).
    pub fn write(&self, data: &[u8], offset: Option<u64>) -> Result<usize, Errno> {
        let n = self.write_data(data, offset)?;
        if let (Some(d), true) = (&self.dentry, n > 0) {
            d.notify(IN::IN_MODIFY);
        }
        Ok(n)
    }

    fn write_data(&self, data: &[u8], offset: Option<u64>) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        match &self.kind {
            FileKind::Host(fd) => match offset {
                None => host_result(nix::unistd::write(fd, data)),
                Some(off) => host_result(nix::sys::uio::pwrite(fd, data, off as i64)),
            },
            FileKind::Regular(fd) => {
                let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
                let append = self.flags() & OpenFlags::O_APPEND.bits() != 0;
                let at = match offset {
                    Some(o) => o,
                    None if append => host_fstat(fd.as_raw_fd())?.st_size as u64,
                    None => *pos,
                };
                let n = host_result(nix::sys::uio::pwrite(fd.as_ref(), data, at as i64))?;
                if let Some(c) = self.dentry.as_ref().and_then(|d| d.cached_pages()) {
                    c.write(at, &data[..n])?;
                }
                if offset.is_none() {
                    *pos = at + n as u64;
                }
                Ok(n)
            }
            FileKind::Device(d) => d.write(data),
            FileKind::Tmpfs(inode) => {
                let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
                let append = self.flags() & OpenFlags::O_APPEND.bits() != 0;
                let at = match offset {
                    Some(o) => o,
                    None if append => inode.attr().size,
                    None => *pos,
                };
                let n = inode.write(at, data)?;
                if offset.is_none() {
                    *pos = at + n as u64;
                }
                Ok(n)
            }
            FileKind::Generated(g) => g.write(data),
            FileKind::Dir(_) => Err(Errno::EISDIR),
            FileKind::Anon(_) | FileKind::Tty(_) | FileKind::Mqueue(_) => Err(Errno::EINVAL),
            FileKind::Path | FileKind::Pipe(_) => Err(Errno::EBADF),
        }
    }

    /// `lseek(2)`.
    pub fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        const SEEK_SET: u32 = 0;
        const SEEK_CUR: u32 = 1;
        const SEEK_END: u32 = 2;
        const SEEK_DATA: u32 = 3;
        const SEEK_HOLE: u32 = 4;
        match &self.kind {
            FileKind::Host(fd) => {
                if whence > SEEK_HOLE {
                    return Err(Errno::EINVAL);
                }
                let w = match whence {
                    SEEK_SET => nix::unistd::Whence::SeekSet,
                    SEEK_CUR => nix::unistd::Whence::SeekCur,
                    SEEK_END => nix::unistd::Whence::SeekEnd,
                    SEEK_DATA => nix::unistd::Whence::SeekData,
                    _ => nix::unistd::Whence::SeekHole,
                };
                host_result(nix::unistd::lseek(fd.as_raw_fd(), offset, w)).map(|v| v as u64)
            }
            FileKind::Generated(_) | FileKind::Mqueue(_) => {
                let size = match (&self.kind, &self.dentry) {
                    (FileKind::Generated(g), _) => g.len() as i64,
                    // A queue: the size its inode shows (not its text's).
                    (_, Some(d)) => d.attr().size as i64,
                    _ => 0,
                };
                let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
                let new = match whence {
                    SEEK_SET => offset,
                    SEEK_CUR => (*pos as i64).checked_add(offset).ok_or(Errno::EOVERFLOW)?,
                    SEEK_END => size.checked_add(offset).ok_or(Errno::EOVERFLOW)?,
                    _ => return Err(Errno::EINVAL),
                };
                if new < 0 {
                    return Err(Errno::EINVAL);
                }
                *pos = new as u64;
                Ok(new as u64)
            }
            FileKind::Tmpfs(inode) => {
                let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
                let size = inode.attr().size as i64;
                let new = match whence {
                    SEEK_SET => offset,
                    SEEK_CUR => (*pos as i64).checked_add(offset).ok_or(Errno::EOVERFLOW)?,
                    SEEK_END => size.checked_add(offset).ok_or(Errno::EOVERFLOW)?,
                    // No holes are tracked: data everywhere up to the size.
                    SEEK_DATA if offset < size => offset,
                    SEEK_HOLE if offset < size => size,
                    SEEK_DATA | SEEK_HOLE => return Err(Errno::ENXIO),
                    _ => return Err(Errno::EINVAL),
                };
                if new < 0 {
                    return Err(Errno::EINVAL);
                }
                *pos = new as u64;
                Ok(new as u64)
            }
            FileKind::Regular(fd) => {
                let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
                let base = match whence {
                    SEEK_SET => 0,
                    SEEK_CUR => *pos as i64,
                    SEEK_END => host_fstat(fd.as_raw_fd())?.st_size,
                    SEEK_DATA | SEEK_HOLE => {
                        let w = if whence == SEEK_DATA {
                            nix::unistd::Whence::SeekData
                        } else {
                            nix::unistd::Whence::SeekHole
                        };
                        let v = host_result(nix::unistd::lseek(fd.as_raw_fd(), offset, w))?;
                        *pos = v as u64;
                        return Ok(v as u64);
                    }
                    _ => return Err(Errno::EINVAL),
                };
                let new = base.checked_add(offset).ok_or(Errno::EOVERFLOW)?;
                if new < 0 {
                    return Err(Errno::EINVAL);
                }
                *pos = new as u64;
                Ok(new as u64)
            }
            FileKind::Dir(cursor) => {
                let mut pos = self.pos.lock().unwrap_or_else(|e| e.into_inner());
                let new = match whence {
                    SEEK_SET => offset,
                    SEEK_CUR => (*pos as i64).checked_add(offset).ok_or(Errno::EOVERFLOW)?,
                    _ => return Err(Errno::EINVAL),
                };
                if new < 0 {
                    return Err(Errno::EINVAL);
                }
                *pos = new as u64;
                *cursor.lock().unwrap_or_else(|e| e.into_inner()) = DirCursor::default();
                Ok(new as u64)
            }
            FileKind::Path => Err(Errno::EBADF),
            FileKind::Pipe(_) | FileKind::Tty(_) => Err(Errno::ESPIPE),
            // Character devices and anonymous files (noop_llseek) ignore
            // seeks and report position 0.
            FileKind::Device(_) | FileKind::Anon(_) => Ok(0),
        }
    }

    /// The attributes of the open file as `struct stat`.
    pub fn stat(&self) -> Result<syscalls::structs::Stat, Errno> {
        match &self.kind {
            FileKind::Host(fd) => {
                let s = host_fstat(fd.as_raw_fd())?;
                Ok(super::attr_to_stat(&super::host_stat_to_attr(&s)))
            }
            FileKind::Regular(fd) => {
                let s = host_fstat(fd.as_raw_fd())?;
                let mut a = super::host_stat_to_attr(&s);
                if let Some(d) = &self.dentry {
                    // Keep the identity the guest saw at lookup.
                    let seen = d.attr();
                    a.dev = seen.dev;
                    a.ino = seen.ino;
                }
                Ok(super::attr_to_stat(&a))
            }
            // A named pipe: the FIFO file's attributes.
            FileKind::Pipe(_) if self.dentry.is_some() => {
                Ok(super::attr_to_stat(&self.dentry.as_ref().ok_or(Errno::EBADF)?.attr()))
            }
            FileKind::Pipe(end) => Ok(syscalls::structs::Stat {
                st_dev: 0xc,
                st_ino: end.pipe.ino,
                st_nlink: 1,
                st_mode: syscalls::flags::mode::S_IFIFO | 0o600,
                st_uid: end.pipe.owner.0,
                st_gid: end.pipe.owner.1,
                st_blksize: 4096,
                ..Default::default()
            }),
            FileKind::Tmpfs(inode) => Ok(super::attr_to_stat(&inode.attr())),
            // A slave opened with TIOCGPTPEER: its /dev/pts node.
            FileKind::Tty(end) if self.dentry.is_none() => Ok(super::attr_to_stat(&super::devfs::pts_attr(&end.term))),
            FileKind::Anon(_) => Ok(syscalls::structs::Stat {
                // Linux's anon_inode: one inode, mode 0600 with no type.
                st_dev: 0xe,
                st_ino: 1,
                st_nlink: 1,
                st_mode: 0o600,
                st_blksize: 4096,
                ..Default::default()
            }),
            _ => {
                let d = self.dentry.as_ref().ok_or(Errno::EBADF)?;
                Ok(super::attr_to_stat(&d.attr()))
            }
        }
    }

    /// poll(2) readiness now (POLL* bits, before masking with what the
    /// caller asked for).
    pub fn readiness(&self, t: &crate::task::Task) -> i16 {
        use syscalls::flags::poll as P;
        match &self.kind {
            FileKind::Pipe(end) if end.read && end.write => end.pipe.poll(false) | end.pipe.poll(true),
            FileKind::Pipe(end) => end.pipe.poll(end.write),
            FileKind::Anon(a) => a.readiness(t),
            FileKind::Mqueue(q) => q.readiness(),
            FileKind::Tty(end) => end.poll(),
            FileKind::Host(fd) => {
                use nix::poll::{PollFd, PollFlags, PollTimeout};
                use std::os::fd::AsFd;
                let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN | PollFlags::POLLOUT | PollFlags::POLLPRI)];
                match nix::poll::poll(&mut p, PollTimeout::ZERO) {
                    Ok(_) => p[0].revents().map_or(0, |r| r.bits()),
                    Err(_) => P::POLLERR,
                }
            }
            _ => P::POLLIN | P::POLLOUT,
        }
    }

    /// A count of changes for edge-triggered epoll (see `AnonFile::seq`).
    pub fn change_seq(&self) -> Option<u64> {
        match &self.kind {
            FileKind::Pipe(end) => Some(end.pipe.seq()),
            FileKind::Anon(a) => a.seq(),
            FileKind::Mqueue(q) => Some(q.seq()),
            FileKind::Tty(end) => Some(end.term.seq()),
            _ => None,
        }
    }

    /// A descriptor of this file was closed by `group` (Linux's
    /// filp_close): the process's record locks on the file go, and so does
    /// its mq_notify registration on a queue.
    pub fn flush(&self, group: &Arc<crate::process::ThreadGroup>) {
        let owner = super::lock::Owner::Process(group.pid);
        // The identity may cost a host fstat: only for a process with locks.
        if super::lock::locks().holds_any(owner) {
            if let Ok(id) = self.lock_identity() {
                super::lock::locks().release(owner, Some(id));
            }
        }
        if let FileKind::Mqueue(q) = &self.kind {
            q.flush(group);
        }
    }

    /// What locks identify the file by: its device and inode numbers.
    pub fn lock_identity(&self) -> Result<(u64, u64), Errno> {
        let st = self.stat()?;
        Ok((st.st_dev, st.st_ino))
    }

    /// The anonymous file behind this one, as its concrete kind.
    pub fn anon<T: super::AnonFile>(&self) -> Option<&T> {
        match &self.kind {
            FileKind::Anon(a) => a.as_any().downcast_ref::<T>(),
            _ => None,
        }
    }
}

/// `fstat` of a host fd.
pub fn host_fstat(fd: i32) -> Result<libc::stat, Errno> {
    nix::sys::stat::fstat(fd).map_err(|e| Errno::from_raw(e as i32))
}

/// A host call's result as the guest sees it.
pub fn host_result<T>(r: nix::Result<T>) -> Result<T, Errno> {
    r.map_err(|e| Errno::from_raw(e as i32))
}
