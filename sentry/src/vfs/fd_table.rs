//! The table from fd numbers to open files.
use std::sync::Arc;

use syscalls::Errno;

use super::File;

/// One fd: the file and its close-on-exec flag.
#[derive(Clone)]
pub struct FdEntry {
    pub file: Arc<File>,
    pub cloexec: bool,
}

/// Fds a new table has room for, as Linux's NR_OPEN_DEFAULT.
const INITIAL_MAX_FDS: usize = 64;

/// A task's fd table.
#[derive(Default)]
pub struct FdTable {
    fds: Vec<Option<FdEntry>>,
    /// The size Linux's fdtable would have (`max_fds`): 64, grown in
    /// powers of two of 128 as higher fds are used, never shrunk except
    /// by fork. select(2) ignores bits beyond it, so programs can see it.
    max_fds: usize,
}

impl Clone for FdTable {
    /// A forked table is sized for its highest open fd, as dup_fd does.
    fn clone(&self) -> Self {
        let open = self.fds.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        let mut t = FdTable { fds: self.fds.clone(), max_fds: INITIAL_MAX_FDS };
        if open > INITIAL_MAX_FDS {
            t.max_fds = open.next_multiple_of(64);
        }
        t
    }
}

impl FdTable {
    /// The size of the table as Linux would report it (see `max_fds`).
    pub fn max_fds(&self) -> usize {
        self.max_fds.max(INITIAL_MAX_FDS)
    }

    pub fn get(&self, fd: i32) -> Result<Arc<File>, Errno> {
        self.entry(fd).map(|e| e.file.clone())
    }

    pub fn entry(&self, fd: i32) -> Result<&FdEntry, Errno> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get(i)).and_then(Option::as_ref).ok_or(Errno::EBADF)
    }

    pub fn entry_mut(&mut self, fd: i32) -> Result<&mut FdEntry, Errno> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i)).and_then(Option::as_mut).ok_or(Errno::EBADF)
    }

    /// Installs `file` at the lowest free fd at or above `min`, below `limit`.
    pub fn insert(&mut self, file: Arc<File>, cloexec: bool, min: i32, limit: u64) -> Result<i32, Errno> {
        let min = usize::try_from(min).map_err(|_| Errno::EINVAL)?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut i = min;
        while i < self.fds.len() && self.fds[i].is_some() {
            i += 1;
        }
        if i >= limit {
            return Err(Errno::EMFILE);
        }
        self.set(i, FdEntry { file, cloexec });
        i32::try_from(i).map_err(|_| Errno::EMFILE)
    }

    /// Installs `file` at exactly `fd`, returning what was there.
    pub fn install(&mut self, fd: i32, file: Arc<File>, cloexec: bool, limit: u64) -> Result<Option<FdEntry>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        if i as u64 >= limit {
            return Err(Errno::EBADF);
        }
        Ok(self.set(i, FdEntry { file, cloexec }))
    }

    fn set(&mut self, i: usize, e: FdEntry) -> Option<FdEntry> {
        if i >= self.max_fds() {
            // expand_fdtable: round up to a power of two of 1 KiB of pointers.
            self.max_fds = (i / 128 + 1).next_power_of_two() * 128;
        }
        if i >= self.fds.len() {
            self.fds.resize(i + 1, None);
        }
        self.fds[i].replace(e)
    }

    /// close_range(2): closes fds `first..=last`, or marks them
    /// close-on-exec.
    pub fn close_range(&mut self, first: u32, last: u32, cloexec: bool) {
        let end = (last as usize).saturating_add(1).min(self.fds.len());
        for slot in self.fds.iter_mut().take(end).skip(first as usize) {
            if cloexec {
                if let Some(e) = slot {
                    e.cloexec = true;
                }
            } else {
                *slot = None;
            }
        }
    }

    /// Closes every fd marked close-on-exec.
    pub fn close_on_exec(&mut self) {
        for slot in self.fds.iter_mut() {
            if slot.as_ref().is_some_and(|e| e.cloexec) {
                *slot = None;
            }
        }
    }

    pub fn remove(&mut self, fd: i32) -> Result<FdEntry, Errno> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i)).and_then(Option::take).ok_or(Errno::EBADF)
    }
}
