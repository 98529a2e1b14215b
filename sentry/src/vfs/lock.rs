//! Advisory file locks: POSIX record locks (owned by a process, released
//! when it closes any fd of the file or exits), open-file-description
//! record locks (F_OFD_*), and flock(2) locks (owned by the description),
//! on files identified by (device, inode).
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use syscalls::Errno;

use crate::kernel::EventQueue;

/// Who holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A process (POSIX record locks).
    Process(i32),
    /// An open file description (OFD record locks and flock), by address.
    Description(usize),
}

/// What a lock table entry locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Space {
    /// fcntl record locks (POSIX and OFD ones conflict with each other).
    Record,
    /// flock locks (independent of record locks on Linux).
    Flock,
}

#[derive(Clone, Copy, Debug)]
pub struct Lock {
    pub owner: Owner,
    pub write: bool,
    pub start: u64,
    /// Exclusive end; u64::MAX for "to the end of the file, whatever it is".
    pub end: u64,
}

impl Lock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start < end && start < self.end
    }
}

type Key = (u64, u64, Space);

#[derive(Default)]
struct Table {
    /// Each file's locks, an owner's locks together in the order owners
    /// first locked the file (as Linux's list: a waiter blocks on the first
    /// conflicting lock in this order).
    locks: HashMap<Key, Vec<Lock>>,
    /// Processes sleeping in F_SETLKW and the lock each one waits for, for
    /// deadlock detection.
    waiting: HashMap<Owner, Lock>,
}

/// Linux's MAX_DEADLK_ITERATIONS: longer chains are not called deadlocks.
const MAX_DEADLOCK_CHAIN: usize = 10;

fn conflicts(l: &Lock, want: &Lock) -> bool {
    l.owner != want.owner && (l.write || want.write) && l.overlaps(want.start, want.end)
}

impl Table {
    /// Whether `want`, about to wait for `blocker`, would close a cycle of
    /// processes each waiting for a lock the next one holds.
    fn deadlocks(&self, want: &Lock, blocker: &Lock) -> bool {
        let mut holder = blocker.owner;
        for _ in 0..MAX_DEADLOCK_CHAIN {
            let Some(next) = self.waiting.get(&holder) else { return false };
            if next.owner == want.owner {
                return true;
            }
            holder = next.owner;
        }
        false
    }
}

/// What a blocking request found.
pub enum Attempt {
    Taken,
    /// Must wait for this lock.
    Wait,
}

/// The sandbox's locks.
pub struct LockTable {
    table: Mutex<Table>,
    events: OnceLock<Arc<EventQueue>>,
}

/// The one lock table of the sentry.
pub fn locks() -> &'static LockTable {
    static LOCKS: OnceLock<LockTable> = OnceLock::new();
    LOCKS.get_or_init(|| LockTable { table: Mutex::new(Table::default()), events: OnceLock::new() })
}

impl LockTable {
    /// Where waiters of SETLKW and flock sleep.
    pub fn set_events(&self, events: Arc<EventQueue>) {
        let _ = self.events.set(events);
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        if let Some(e) = self.events.get() {
            e.notify();
        }
    }

    /// The first lock of another owner that conflicts with `want`.
    pub fn conflict(&self, file: (u64, u64), flock: bool, want: &Lock) -> Option<Lock> {
        let key = (file.0, file.1, if flock { Space::Flock } else { Space::Record });
        let t = self.lock();
        t.locks.get(&key)?.iter().find(|l| conflicts(l, want)).copied()
    }

    /// One try of F_SETLKW for a process's lock `want`: taken, or waiting
    /// (noted for deadlock detection; [`LockTable::stop_waiting`] when
    /// done), or EDEADLK when waiting would close a cycle. Like Linux, only
    /// the first conflicting lock is checked.
    pub fn set_or_wait(&self, file: (u64, u64), want: Lock) -> Result<Attempt, Errno> {
        let key = (file.0, file.1, Space::Record);
        let mut t = self.lock();
        let blocker = t.locks.get(&key).and_then(|list| list.iter().find(|l| conflicts(l, &want)).copied());
        let Some(blocker) = blocker else {
            t.waiting.remove(&want.owner);
            drop(t);
            // Another owner may have locked in between: wait for it then.
            return match self.set(file, false, want, false) {
                Ok(()) => Ok(Attempt::Taken),
                Err(Errno::EAGAIN) => Ok(Attempt::Wait),
                Err(e) => Err(e),
            };
        };
        if matches!(want.owner, Owner::Process(_)) {
            if t.deadlocks(&want, &blocker) {
                t.waiting.remove(&want.owner);
                return Err(Errno::EDEADLK);
            }
            t.waiting.insert(want.owner, blocker);
        }
        Ok(Attempt::Wait)
    }

    /// The waiter `owner` gave up or got its lock.
    pub fn stop_waiting(&self, owner: Owner) {
        self.lock().waiting.remove(&owner);
    }

    /// Takes `want` (or, for an unlock, removes the owner's locks in its
    /// range) unless another owner's lock conflicts: then `Err(EAGAIN)`.
    pub fn set(&self, file: (u64, u64), flock: bool, want: Lock, unlock: bool) -> Result<(), Errno> {
        let key = (file.0, file.1, if flock { Space::Flock } else { Space::Record });
        let mut t = self.lock();
        let list = t.locks.entry(key).or_default();
        if !unlock && list.iter().any(|l| conflicts(l, &want)) {
            return Err(Errno::EAGAIN);
        }
        // Cut the owner's locks out of the range, keeping what lies outside.
        let mut kept = Vec::with_capacity(list.len() + 1);
        for l in list.drain(..) {
            if l.owner != want.owner || !l.overlaps(want.start, want.end) {
                kept.push(l);
                continue;
            }
            if l.start < want.start {
                kept.push(Lock { end: want.start, ..l });
            }
            if l.end > want.end {
                kept.push(Lock { start: want.end, ..l });
            }
        }
        if !unlock {
            // With the owner's other locks, in order of start.
            let at = match kept.iter().position(|l| l.owner == want.owner) {
                Some(first) => {
                    first + kept[first..].iter().take_while(|l| l.owner == want.owner && l.start < want.start).count()
                }
                None => kept.len(),
            };
            kept.insert(at, want);
        }
        if kept.is_empty() {
            t.locks.remove(&key);
        } else {
            *list = kept;
        }
        drop(t);
        self.changed();
        Ok(())
    }

    /// Whether `owner` holds any lock (closing a file only has locks to
    /// drop, and an identity to look up, if it does).
    pub fn holds_any(&self, owner: Owner) -> bool {
        self.lock().locks.values().any(|list| list.iter().any(|l| l.owner == owner))
    }

    /// Drops every lock `owner` holds on `file` (None: on every file).
    pub fn release(&self, owner: Owner, file: Option<(u64, u64)>) {
        let mut t = self.lock();
        let mut any = false;
        t.locks.retain(|k, list| {
            if file.is_some_and(|f| (k.0, k.1) != f) {
                return true;
            }
            let before = list.len();
            list.retain(|l| l.owner != owner);
            any |= list.len() != before;
            !list.is_empty()
        });
        drop(t);
        if any {
            self.changed();
        }
    }
}
