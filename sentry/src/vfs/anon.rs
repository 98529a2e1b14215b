//! Files without a path (Linux's anonymous inodes): eventfd, epoll,
//! timerfd, signalfd. Each kind implements [`AnonFile`]; the VFS reads,
//! writes and polls them through it.
use std::any::Any;

use syscalls::Errno;

use crate::task::Task;

/// The behaviour of one kind of anonymous file.
pub trait AnonFile: Send + Sync + Any {
    /// The kind as /proc shows it: `anon_inode:[<name>]`.
    fn name(&self) -> &'static str;
    /// read(2); blocks (interruptibly) unless `nonblock`.
    fn read(&self, _t: &Task, _buf: &mut [u8], _nonblock: bool) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    /// write(2); blocks (interruptibly) unless `nonblock`.
    fn write(&self, _t: &Task, _data: &[u8], _nonblock: bool) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }
    /// poll(2) readiness (POLL* bits) as `t` would see it now.
    fn readiness(&self, t: &Task) -> i16;
    /// A count bumped by every change that wakes waiters, for
    /// edge-triggered epoll; None when readiness changes are all there is.
    fn seq(&self) -> Option<u64> {
        None
    }
    fn as_any(&self) -> &dyn Any;
}
