//! eventfd: a 64-bit counter that write adds to and read takes (all of it,
//! or one with EFD_SEMAPHORE).
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use syscalls::flags::poll as P;
use syscalls::Errno;

use super::AnonFile;
use crate::kernel::EventQueue;
use crate::task::Task;

/// The counter never reaches this value (u64::MAX).
const MAX: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    events: Arc<EventQueue>,
    seq: AtomicU64,
}

impl EventFd {
    pub fn new(init: u64, semaphore: bool, events: Arc<EventQueue>) -> EventFd {
        EventFd { count: Mutex::new(init), semaphore, events, seq: AtomicU64::new(0) }
    }

    fn count(&self) -> std::sync::MutexGuard<'_, u64> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.events.notify();
    }
}

impl AnonFile for EventFd {
    fn name(&self) -> &'static str {
        "eventfd"
    }

    fn read(&self, t: &Task, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = t.block_on(None, || {
            let mut c = self.count();
            if *c > 0 {
                let v = if self.semaphore { 1 } else { *c };
                *c -= v;
                return Some(Ok(v));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        })??;
        buf[..8].copy_from_slice(&v.to_ne_bytes());
        self.changed();
        Ok(8)
    }

    fn write(&self, t: &Task, data: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let Some(bytes) = data.get(..8) else { return Err(Errno::EINVAL) };
        let v = u64::from_ne_bytes(bytes.try_into().map_err(|_| Errno::EINVAL)?);
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        t.block_on(None, || {
            let mut c = self.count();
            if MAX - *c >= v {
                *c += v;
                return Some(Ok(()));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        })??;
        self.changed();
        Ok(8)
    }

    fn readiness(&self, _t: &Task) -> i16 {
        let c = *self.count();
        let mut r = 0;
        if c > 0 {
            r |= P::POLLIN;
        }
        if c < MAX {
            r |= P::POLLOUT;
        }
        r
    }

    fn seq(&self) -> Option<u64> {
        Some(self.seq.load(Ordering::SeqCst))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
