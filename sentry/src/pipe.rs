//! Pipes: a bounded byte queue between a read end and a write end, with
//! blocking that signals interrupt, PIPE_BUF atomicity, EOF when the last
//! writer goes and EPIPE/SIGPIPE when the last reader does.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use syscalls::flags::{poll as P, signal};
use syscalls::Errno;

use crate::kernel::EventQueue;
use crate::task::Task;

/// Writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;
/// Default capacity (Linux: 16 pages).
pub const PIPE_DEFAULT_SIZE: usize = 65536;
/// Largest capacity F_SETPIPE_SZ grants (/proc/sys/fs/pipe-max-size).
pub const PIPE_MAX_SIZE: usize = 1 << 20;

/// A pipe.
pub struct Pipe {
    state: Mutex<PipeState>,
    events: Arc<EventQueue>,
    /// Inode number shown by fstat.
    pub ino: u64,
    /// (uid, gid) the inode shows: the creator's (root for a FIFO's pipe,
    /// whose file has its own owner).
    pub owner: (u32, u32),
    /// The pipe of a FIFO file (opens wait for the other side), not one
    /// made by pipe(2) (reopened through /proc/pid/fd, they never wait).
    named: bool,
    /// Bumped on every read, write and close: edge-triggered epoll reports
    /// a pipe again after each change, as Linux's wake-ups do.
    seq: std::sync::atomic::AtomicU64,
}

struct PipeState {
    buf: VecDeque<u8>,
    cap: usize,
    readers: usize,
    writers: usize,
    /// Opens of a named pipe for reading and for writing so far: a blocking
    /// open waits for the other side's count to move.
    read_opens: u64,
    write_opens: u64,
}

/// One end of a pipe, counted while it lives. An end of a named pipe
/// opened `O_RDWR` both reads and writes.
pub struct PipeEnd {
    pub pipe: Arc<Pipe>,
    pub write: bool,
    pub read: bool,
}

impl Pipe {
    /// A new pipe and its two ends (read, write).
    /// `owner` is the creator's (fsuid, fsgid), which the pipe's inode shows.
    pub fn create(events: Arc<EventQueue>, owner: (u32, u32)) -> (PipeEnd, PipeEnd) {
        static NEXT_INO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);
        let ino = NEXT_INO.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pipe = Arc::new(Pipe {
            state: Mutex::new(PipeState {
                buf: VecDeque::new(),
                cap: PIPE_DEFAULT_SIZE,
                readers: 1,
                writers: 1,
                read_opens: 1,
                write_opens: 1,
            }),
            events,
            ino,
            owner,
            named: false,
            seq: Default::default(),
        });
        (PipeEnd { pipe: pipe.clone(), write: false, read: true }, PipeEnd { pipe, write: true, read: false })
    }

    /// The pipe behind a FIFO file (mkfifo): no ends until opened.
    pub fn named(events: Arc<EventQueue>, ino: u64) -> Arc<Pipe> {
        Arc::new(Pipe {
            state: Mutex::new(PipeState {
                buf: VecDeque::new(),
                cap: PIPE_DEFAULT_SIZE,
                readers: 0,
                writers: 0,
                read_opens: 0,
                write_opens: 0,
            }),
            events,
            ino,
            owner: (0, 0),
            named: true,
            seq: Default::default(),
        })
    }

    /// Opens an end of a named pipe, as open(2) of a FIFO: for reading
    /// waits for a writer and for writing waits for a reader (ENXIO with
    /// `nonblock` and no reader), unless `nonblock`; `O_RDWR` never waits.
    pub fn open_end(self: &Arc<Pipe>, t: &Task, read: bool, write: bool, nonblock: bool) -> Result<PipeEnd, Errno> {
        let end = {
            let mut st = self.state();
            if write && !read && nonblock && st.readers == 0 && self.named {
                return Err(Errno::ENXIO);
            }
            if read {
                st.readers += 1;
                st.read_opens += 1;
            }
            if write {
                st.writers += 1;
                st.write_opens += 1;
            }
            PipeEnd { pipe: self.clone(), write, read }
        };
        self.changed();
        if nonblock || (read && write) || !self.named {
            return Ok(end);
        }
        let (reads0, writes0) = {
            let st = self.state();
            (st.read_opens, st.write_opens)
        };
        // Dropping `end` on an interrupted wait takes its count back.
        t.block_on(None, || {
            let st = self.state();
            let ready = if read {
                st.writers > 0 || st.write_opens != writes0
            } else {
                st.readers > 0 || st.read_opens != reads0
            };
            ready.then_some(())
        })?;
        Ok(end)
    }

    fn state(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads what is there (at most `buf.len()`), waiting for data unless
    /// `nonblock`; 0 at end of file.
    pub fn read(&self, t: &Task, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = t.block_on(None, || {
            let mut st = self.state();
            if !st.buf.is_empty() {
                let n = buf.len().min(st.buf.len());
                let (a, b) = st.buf.as_slices();
                let from_a = n.min(a.len());
                buf[..from_a].copy_from_slice(&a[..from_a]);
                buf[from_a..n].copy_from_slice(&b[..n - from_a]);
                st.buf.drain(..n);
                return Some(Ok(n));
            }
            if st.writers == 0 {
                return Some(Ok(0));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        })??;
        self.changed();
        Ok(n)
    }

    /// Writes `data`, all of it unless interrupted or `nonblock`; writes of
    /// at most PIPE_BUF bytes are never split.
    pub fn write(&self, t: &Task, data: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let mut done = 0;
        while done < data.len() || data.is_empty() {
            let left = &data[done..];
            let step = t.block_on(None, || {
                let mut st = self.state();
                if st.readers == 0 {
                    return Some(Err(Errno::EPIPE));
                }
                let space = st.cap.saturating_sub(st.buf.len());
                let need = if left.len() <= PIPE_BUF { left.len() } else { 1 };
                if space >= need {
                    let n = left.len().min(space);
                    st.buf.extend(&left[..n]);
                    return Some(Ok(n));
                }
                nonblock.then_some(Err(Errno::EAGAIN))
            });
            match step {
                Ok(Ok(n)) => {
                    done += n;
                    self.changed();
                    if data.is_empty() {
                        break;
                    }
                }
                Ok(Err(e)) if e == Errno::EPIPE => {
                    let info = crate::signal::user_info(signal::SIGPIPE, 0, t.group().vpid, t.creds.uid);
                    t.send_signal(info);
                    return if done > 0 { Ok(done) } else { Err(Errno::EPIPE) };
                }
                Ok(Err(e)) | Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
            }
        }
        Ok(done)
    }

    /// splice/tee between two pipes: moves (or with `keep`, copies) up to
    /// `len` bytes from `self` into `out` once both have something to give
    /// and room to take, waiting unless `nonblock`. 0 at end of file.
    pub fn transfer(&self, t: &Task, out: &Pipe, len: usize, keep: bool, nonblock: bool) -> Result<usize, Errno> {
        let moved = t.block_on(None, || {
            // Both locks, in one global order.
            let (mut src, mut dst);
            if (self as *const Pipe) < (out as *const Pipe) {
                src = self.state();
                dst = out.state();
            } else {
                dst = out.state();
                src = self.state();
            }
            if src.buf.is_empty() {
                if src.writers == 0 {
                    return Some(Ok(0));
                }
                return nonblock.then_some(Err(Errno::EAGAIN));
            }
            if dst.readers == 0 {
                return Some(Err(Errno::EPIPE));
            }
            let n = len.min(src.buf.len()).min(dst.cap.saturating_sub(dst.buf.len()));
            if n == 0 {
                return nonblock.then_some(Err(Errno::EAGAIN));
            }
            if keep {
                let bytes: Vec<u8> = src.buf.iter().take(n).copied().collect();
                dst.buf.extend(bytes);
            } else {
                let bytes: Vec<u8> = src.buf.drain(..n).collect();
                dst.buf.extend(bytes);
            }
            Some(Ok(n))
        });
        let n = match moved {
            Ok(Ok(n)) => n,
            Ok(Err(Errno::EPIPE)) => {
                t.send_signal(crate::signal::user_info(signal::SIGPIPE, 0, t.group().vpid, t.creds.uid));
                return Err(Errno::EPIPE);
            }
            Ok(Err(e)) | Err(e) => return Err(e),
        };
        if n > 0 {
            self.changed();
            out.changed();
        }
        Ok(n)
    }

    /// Waits until the pipe has room (or has no readers), unless
    /// `nonblock`; returns the room.
    pub fn wait_room(&self, t: &Task, nonblock: bool) -> Result<usize, Errno> {
        t.block_on(None, || {
            let st = self.state();
            let room = st.cap.saturating_sub(st.buf.len());
            if room > 0 || st.readers == 0 {
                return Some(Ok(room));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        })?
    }

    /// poll(2) readiness of one end.
    pub fn poll(&self, write: bool) -> i16 {
        let st = self.state();
        if write {
            if st.readers == 0 {
                P::POLLERR
            } else if st.buf.len() < st.cap {
                P::POLLOUT
            } else {
                0
            }
        } else {
            let mut r = 0;
            if !st.buf.is_empty() {
                r |= P::POLLIN;
            }
            if st.writers == 0 {
                r |= P::POLLHUP;
            }
            r
        }
    }

    /// Records a change and wakes waiters.
    fn changed(&self) {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.events.notify();
    }

    /// The change count (see `seq`).
    pub fn seq(&self) -> u64 {
        self.seq.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Bytes waiting (FIONREAD).
    pub fn available(&self) -> usize {
        self.state().buf.len()
    }

    pub fn capacity(&self) -> usize {
        self.state().cap
    }

    /// F_SETPIPE_SZ: rounds up to a power of two pages; EBUSY if the data
    /// would not fit.
    pub fn set_capacity(&self, want: usize) -> Result<usize, Errno> {
        if want > PIPE_MAX_SIZE {
            return Err(Errno::EPERM);
        }
        let cap = want.max(4096).next_power_of_two();
        let mut st = self.state();
        if st.buf.len() > cap {
            return Err(Errno::EBUSY);
        }
        st.cap = cap;
        Ok(cap)
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        {
            let mut st = self.pipe.state();
            if self.write {
                st.writers -= 1;
            }
            if self.read {
                st.readers -= 1;
            }
        }
        self.pipe.changed();
    }
}
