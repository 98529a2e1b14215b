//! inotify: watches on files and directories, and the queue of events that
//! changes made inside the sandbox put there (fsnotify's inotify backend).
//!
//! A watch hangs off the dentry it names (`Dentry::watches`); the VFS calls
//! [`Dentry::notify`] and friends where Linux calls its fsnotify hooks, in
//! the same order. Changes the host makes under a mount are not seen (the
//! dentry cache's coherence rule).
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use syscalls::flags::inotify as IN;
use syscalls::flags::poll as P;
use syscalls::Errno;

use super::{AnonFile, Dentry};
use crate::kernel::EventQueue;
use crate::task::Task;

/// Linux's default fs.inotify.max_queued_events: past it one IN_Q_OVERFLOW.
const MAX_QUEUED_EVENTS: usize = 16384;
/// Linux's default fs.inotify.max_user_instances, for the whole sandbox.
const MAX_INSTANCES: usize = 128;
/// A sandbox-wide bound on watches (Linux's max_user_watches is sized from
/// memory; this keeps a hostile guest from pinning every dentry).
const MAX_WATCHES: usize = 65536;
/// sizeof(struct inotify_event).
const EVENT_SIZE: usize = 16;

static INSTANCES: AtomicUsize = AtomicUsize::new(0);
static WATCHES: AtomicUsize = AtomicUsize::new(0);
/// Bytes of events queued in all instances, bounded by MAX_QUEUED_BYTES.
static QUEUED_BYTES: AtomicUsize = AtomicUsize::new(0);
/// A sandbox-wide bound on queued events (128 instances of 16384 events
/// with long names would be over half a GiB of sentry memory).
const MAX_QUEUED_BYTES: usize = 64 << 20;
/// fsnotify's rename cookie: the same value in a move's two halves.
static COOKIE: AtomicU32 = AtomicU32::new(0);

/// A fresh cookie for one rename.
pub fn next_cookie() -> u32 {
    COOKIE.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
}

struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// Bytes the event takes in a read: the header and the name with its
    /// NUL, padded to the header's size.
    fn len(&self) -> usize {
        EVENT_SIZE + self.name_len()
    }

    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).div_ceil(EVENT_SIZE) * EVENT_SIZE
        }
    }
}

/// One watch: which instance, its descriptor and what it wants.
pub struct Watch {
    owner: Weak<Instance>,
    wd: i32,
    mask: AtomicU32,
}

/// The watches on one dentry.
#[derive(Default)]
pub struct Watches {
    /// Whether the list may be non-empty (the unwatched fast path).
    any: AtomicBool,
    list: Mutex<Vec<Arc<Watch>>>,
}

impl Watches {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Watch>>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, w: Arc<Watch>) {
        self.list().push(w);
        self.any.store(true, Ordering::Release);
    }

    fn remove(&self, w: &Arc<Watch>) {
        let mut list = self.list();
        list.retain(|x| !Arc::ptr_eq(x, w));
        if list.is_empty() {
            self.any.store(false, Ordering::Release);
        }
    }

    /// Queues `mask` (with `name` for a child's event) on every watch that
    /// asked for it; one-shot watches go after their event.
    pub fn deliver(&self, mask: u32, name: &[u8], cookie: u32) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let mut done = Vec::new();
        for w in self.list().iter() {
            let wants = w.mask.load(Ordering::Relaxed);
            if wants & mask & IN::IN_ALL_EVENTS == 0 {
                continue;
            }
            let Some(owner) = w.owner.upgrade() else { continue };
            owner.queue(Event {
                wd: w.wd,
                mask: mask & (IN::IN_ALL_EVENTS | IN::IN_ISDIR),
                cookie,
                name: name.to_vec(),
            });
            if wants & IN::IN_ONESHOT != 0 {
                done.push((owner, w.clone()));
            }
        }
        for (owner, w) in done {
            self.remove(&w);
            owner.forget(w.wd);
        }
    }

    /// The file is gone (its last link removed): IN_DELETE_SELF, then every
    /// watch ends with IN_IGNORED.
    pub fn file_gone(&self) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        self.deliver(IN::IN_DELETE_SELF, b"", 0);
        let all: Vec<Arc<Watch>> = std::mem::take(&mut *self.list());
        self.any.store(false, Ordering::Release);
        for w in all {
            if let Some(owner) = w.owner.upgrade() {
                owner.forget(w.wd);
            }
        }
    }

    /// Moves the watches to `to` (a file copied up to the overlay's upper
    /// layer is the same file).
    pub fn move_to(&self, to: &Watches, to_dentry: &Arc<Dentry>) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let all: Vec<Arc<Watch>> = std::mem::take(&mut *self.list());
        self.any.store(false, Ordering::Release);
        for w in all {
            if let Some(owner) = w.owner.upgrade() {
                owner.retarget(w.wd, to_dentry);
            }
            to.add(w);
        }
    }
}

struct State {
    queue: VecDeque<Event>,
    bytes: usize,
    watches: BTreeMap<i32, (Arc<Dentry>, Arc<Watch>)>,
    next_wd: i32,
}

struct Instance {
    state: Mutex<State>,
    events: Arc<EventQueue>,
    seq: AtomicU64,
}

impl Instance {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self, ev: Event) {
        let mut s = self.state();
        // Linux merges an event identical to the last one queued.
        if let Some(last) = s.queue.back() {
            if last.wd == ev.wd && last.mask == ev.mask && last.cookie == ev.cookie && last.name == ev.name {
                return;
            }
        }
        let full =
            s.queue.len() >= MAX_QUEUED_EVENTS || QUEUED_BYTES.load(Ordering::Relaxed) + ev.len() > MAX_QUEUED_BYTES;
        let ev = match full {
            false => ev,
            true if s.queue.back().is_some_and(|e| e.mask == IN::IN_Q_OVERFLOW) => return,
            true => Event { wd: -1, mask: IN::IN_Q_OVERFLOW, cookie: 0, name: Vec::new() },
        };
        s.bytes += ev.len();
        QUEUED_BYTES.fetch_add(ev.len(), Ordering::Relaxed);
        s.queue.push_back(ev);
        drop(s);
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.events.notify();
    }

    /// Drops watch `wd` (already off its dentry) and queues IN_IGNORED.
    fn forget(&self, wd: i32) {
        if self.state().watches.remove(&wd).is_some() {
            WATCHES.fetch_sub(1, Ordering::Relaxed);
            self.queue(Event { wd, mask: IN::IN_IGNORED, cookie: 0, name: Vec::new() });
        }
    }

    fn retarget(&self, wd: i32, to: &Arc<Dentry>) {
        if let Some(entry) = self.state().watches.get_mut(&wd) {
            entry.0 = to.clone();
        }
    }
}

/// An inotify instance (the file inotify_init1 returns).
pub struct Inotify {
    inner: Arc<Instance>,
}

impl Inotify {
    pub fn new(events: Arc<EventQueue>) -> Result<Inotify, Errno> {
        if INSTANCES.fetch_add(1, Ordering::Relaxed) >= MAX_INSTANCES {
            INSTANCES.fetch_sub(1, Ordering::Relaxed);
            return Err(Errno::EMFILE);
        }
        let state = State { queue: VecDeque::new(), bytes: 0, watches: BTreeMap::new(), next_wd: 1 };
        Ok(Inotify { inner: Arc::new(Instance { state: Mutex::new(state), events, seq: AtomicU64::new(0) }) })
    }

    /// inotify_add_watch on `d` (the caller checked read permission and
    /// IN_ONLYDIR): the watch's descriptor, the same one for a dentry
    /// already watched.
    pub fn add_watch(&self, d: &Arc<Dentry>, mask: u32) -> Result<i32, Errno> {
        let mut s = self.inner.state();
        // One watch per file, whichever of its names was given.
        let existing = s
            .watches
            .iter()
            .find(|(_, (wd, _))| std::ptr::eq(wd.watch_list(), d.watch_list()))
            .map(|(wd, (_, w))| (*wd, w.clone()));
        let events = mask & (IN::IN_ALL_EVENTS | IN::IN_ONESHOT | IN::IN_EXCL_UNLINK);
        if let Some((wd, w)) = existing {
            if mask & IN::IN_MASK_CREATE != 0 {
                return Err(Errno::EEXIST);
            }
            if mask & IN::IN_MASK_ADD != 0 {
                w.mask.fetch_or(events, Ordering::Relaxed);
            } else {
                w.mask.store(events, Ordering::Relaxed);
            }
            return Ok(wd);
        }
        if WATCHES.fetch_add(1, Ordering::Relaxed) >= MAX_WATCHES {
            WATCHES.fetch_sub(1, Ordering::Relaxed);
            return Err(Errno::ENOSPC);
        }
        let wd = s.next_wd;
        s.next_wd = s.next_wd.checked_add(1).unwrap_or(1);
        let w = Arc::new(Watch { owner: Arc::downgrade(&self.inner), wd, mask: AtomicU32::new(events) });
        s.watches.insert(wd, (d.clone(), w.clone()));
        drop(s);
        d.watch_list().add(w);
        Ok(wd)
    }

    /// inotify_rm_watch.
    pub fn rm_watch(&self, wd: i32) -> Result<(), Errno> {
        let (d, w) = self.inner.state().watches.get(&wd).cloned().ok_or(Errno::EINVAL)?;
        d.watch_list().remove(&w);
        self.inner.forget(wd);
        Ok(())
    }

    /// Bytes queued (FIONREAD).
    pub fn queued_bytes(&self) -> usize {
        self.inner.state().bytes
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        QUEUED_BYTES.fetch_sub(self.state().bytes, Ordering::Relaxed);
    }
}

impl Drop for Inotify {
    fn drop(&mut self) {
        let watches = std::mem::take(&mut self.inner.state().watches);
        WATCHES.fetch_sub(watches.len(), Ordering::Relaxed);
        for (d, w) in watches.into_values() {
            d.watch_list().remove(&w);
        }
        INSTANCES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AnonFile for Inotify {
    fn name(&self) -> &'static str {
        "inotify"
    }

    fn read(&self, t: &Task, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        t.block_on(None, || {
            let mut s = self.inner.state();
            let first = match s.queue.front() {
                None => return nonblock.then_some(Err(Errno::EAGAIN)),
                Some(e) => e.len(),
            };
            if first > buf.len() {
                return Some(Err(Errno::EINVAL));
            }
            let mut n = 0;
            while let Some(e) = s.queue.front() {
                let len = e.len();
                if n + len > buf.len() {
                    break;
                }
                let out = &mut buf[n..n + len];
                out[0..4].copy_from_slice(&e.wd.to_ne_bytes());
                out[4..8].copy_from_slice(&e.mask.to_ne_bytes());
                out[8..12].copy_from_slice(&e.cookie.to_ne_bytes());
                out[12..16].copy_from_slice(&(e.name_len() as u32).to_ne_bytes());
                out[16..].fill(0);
                out[16..16 + e.name.len()].copy_from_slice(&e.name);
                n += len;
                s.bytes -= len;
                QUEUED_BYTES.fetch_sub(len, Ordering::Relaxed);
                s.queue.pop_front();
            }
            Some(Ok(n))
        })?
    }

    fn readiness(&self, _t: &Task) -> i16 {
        if self.inner.state().queue.is_empty() {
            0
        } else {
            P::POLLIN | P::POLLRDNORM
        }
    }

    fn seq(&self) -> Option<u64> {
        Some(self.inner.seq.load(Ordering::SeqCst))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Whether any watch exists in the sandbox (the fast path of every hook).
fn any_watch() -> bool {
    WATCHES.load(Ordering::Relaxed) != 0
}

impl Dentry {
    /// Where this file's watches are: a tmpfs inode's (shared by its hard
    /// links), else the dentry's own.
    fn watch_list(&self) -> &Watches {
        match &self.node {
            super::Node::Tmpfs(i) => &i.watches,
            _ => &self.watches,
        }
    }

    fn isdir_bit(&self) -> u32 {
        if self.is_dir() {
            IN::IN_ISDIR
        } else {
            0
        }
    }

    /// An event on this file (fsnotify_parent): its directory's watches
    /// see it with the file's name, then the file's own.
    pub fn notify(&self, mask: u32) {
        if !any_watch() {
            return;
        }
        let mask = mask | self.isdir_bit();
        let (name, parent) = self.place.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(p) = parent {
            if mask & IN::IN_CHILD_EVENTS != 0 && !self.is_mount_root() {
                p.watch_list().deliver(mask, &name, 0);
            }
        }
        self.watch_list().deliver(mask, b"", 0);
    }

    /// An event for this file's own watches only (fsnotify_inode: link
    /// count changes, IN_MOVE_SELF; inotify shows these without IN_ISDIR).
    pub fn notify_self(&self, mask: u32) {
        if any_watch() {
            self.watch_list().deliver(mask, b"", 0);
        }
    }

    /// A change to entry `name` of this directory (create, delete, either
    /// half of a move) about file `child`.
    pub fn notify_entry(&self, mask: u32, name: &[u8], child: &Dentry, cookie: u32) {
        if any_watch() {
            self.watch_list().deliver(mask | child.isdir_bit(), name, cookie);
        }
    }

    /// The file's last link went: IN_DELETE_SELF and the end of its
    /// watches. `nlink` is its link count after the removal.
    pub fn notify_removed(&self, nlink: u64) {
        if any_watch() && (nlink == 0 || self.is_dir()) {
            self.watch_list().file_gone();
        }
    }

    /// The watches of a file copied up go with it.
    pub fn move_watches(&self, to: &Arc<Dentry>) {
        if any_watch() {
            self.watch_list().move_to(to.watch_list(), to);
        }
    }
}
