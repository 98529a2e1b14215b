//! The table from fd numbers to open files, shared by the tasks cloned with
//! CLONE_FILES (threads), copied by fork.
use std::sync::{Arc, Mutex, MutexGuard};

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

#[derive(Default)]
struct Slots {
    fds: Vec<Option<FdEntry>>,
    /// The size Linux's fdtable would have (`max_fds`): 64, grown in
    /// powers of two of 128 as higher fds are used, never shrunk except
    /// by fork. select(2) ignores bits beyond it, so programs can see it.
    max_fds: usize,
}

impl Slots {
    fn max_fds(&self) -> usize {
        self.max_fds.max(INITIAL_MAX_FDS)
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

    fn slot(&mut self, fd: i32) -> Option<&mut Option<FdEntry>> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i))
    }
}

/// A task's fd table: a handle that tasks sharing the table (CLONE_FILES)
/// each hold.
#[derive(Default)]
pub struct FdTable {
    slots: Arc<Mutex<Slots>>,
}

impl FdTable {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Another handle on this table (CLONE_FILES).
    pub fn share(&self) -> FdTable {
        FdTable { slots: self.slots.clone() }
    }

    /// A copy of the table for a forked process, sized for its highest
    /// open fd as Linux's dup_fd does.
    pub fn copy(&self) -> FdTable {
        let s = self.lock();
        let open = s.fds.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        let max_fds = if open > INITIAL_MAX_FDS { open.next_multiple_of(64) } else { INITIAL_MAX_FDS };
        FdTable { slots: Arc::new(Mutex::new(Slots { fds: s.fds.clone(), max_fds })) }
    }

    /// The size of the table as Linux would report it (see `max_fds`).
    pub fn max_fds(&self) -> usize {
        self.lock().max_fds()
    }

    pub fn get(&self, fd: i32) -> Result<Arc<File>, Errno> {
        self.lock().slot(fd).and_then(|s| s.as_ref()).map(|e| e.file.clone()).ok_or(Errno::EBADF)
    }

    /// The close-on-exec flag of `fd`.
    pub fn cloexec(&self, fd: i32) -> Result<bool, Errno> {
        self.lock().slot(fd).and_then(|s| s.as_ref()).map(|e| e.cloexec).ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&self, fd: i32, cloexec: bool) -> Result<(), Errno> {
        let mut s = self.lock();
        let e = s.slot(fd).and_then(|s| s.as_mut()).ok_or(Errno::EBADF)?;
        e.cloexec = cloexec;
        Ok(())
    }

    /// Installs `file` at the lowest free fd at or above `min`, below `limit`.
    pub fn insert(&self, file: Arc<File>, cloexec: bool, min: i32, limit: u64) -> Result<i32, Errno> {
        let min = usize::try_from(min).map_err(|_| Errno::EINVAL)?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut s = self.lock();
        let mut i = min;
        while i < s.fds.len() && s.fds[i].is_some() {
            i += 1;
        }
        if i >= limit {
            return Err(Errno::EMFILE);
        }
        let fd = i32::try_from(i).map_err(|_| Errno::EMFILE)?;
        s.set(i, FdEntry { file, cloexec });
        Ok(fd)
    }

    /// Installs `file` at exactly `fd`, returning what was there (for the
    /// caller to drop outside the table's lock).
    pub fn install(&self, fd: i32, file: Arc<File>, cloexec: bool, limit: u64) -> Result<Option<FdEntry>, Errno> {
        let i = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        if i as u64 >= limit {
            return Err(Errno::EBADF);
        }
        Ok(self.lock().set(i, FdEntry { file, cloexec }))
    }

    /// close_range(2): closes fds `first..=last`, or marks them
    /// close-on-exec. Returns what it closed, for the caller to flush and
    /// drop outside the table's lock.
    pub fn close_range(&self, first: u32, last: u32, cloexec: bool) -> Vec<FdEntry> {
        let mut closed = Vec::new();
        let mut s = self.lock();
        let end = (last as usize).saturating_add(1).min(s.fds.len());
        for slot in s.fds.iter_mut().take(end).skip(first as usize) {
            if cloexec {
                if let Some(e) = slot {
                    e.cloexec = true;
                }
            } else if let Some(e) = slot.take() {
                closed.push(e);
            }
        }
        drop(s);
        closed
    }

    /// Closes every fd marked close-on-exec, returning them (as
    /// `close_range`).
    pub fn close_on_exec(&self) -> Vec<FdEntry> {
        let mut closed = Vec::new();
        let mut s = self.lock();
        for slot in s.fds.iter_mut() {
            if slot.as_ref().is_some_and(|e| e.cloexec) {
                closed.extend(slot.take());
            }
        }
        drop(s);
        closed
    }

    /// Every open fd with its file, in order (for /proc).
    pub fn open_fds(&self) -> Vec<(i32, Arc<File>)> {
        self.lock().fds.iter().enumerate().filter_map(|(i, e)| e.as_ref().map(|e| (i as i32, e.file.clone()))).collect()
    }

    /// Lets go of this handle on the table: if it was the last one, every
    /// fd closes, and the entries are returned (as `close_range`).
    pub fn close_if_last(self) -> Vec<FdEntry> {
        match Arc::try_unwrap(self.slots) {
            Ok(slots) => slots.into_inner().unwrap_or_else(|e| e.into_inner()).fds.into_iter().flatten().collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn remove(&self, fd: i32) -> Result<FdEntry, Errno> {
        self.lock().slot(fd).and_then(Option::take).ok_or(Errno::EBADF)
    }
}
