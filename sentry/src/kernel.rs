//! The kernel: state shared by every task of a sandbox — the platform, the
//! memory file, the PID namespace, and the event queue that blocked tasks
//! wait on. (Each container of the sandbox has its own root and mount
//! table: see [`ContainerFs`].)
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use platform::Platform;

use crate::mm::MemoryFile;
use crate::process::{TaskShared, ThreadGroup};
use crate::vfs::Dentry;

/// The sandbox's kernel.
pub struct Kernel {
    pub platform: Box<dyn Platform>,
    pub memory: Arc<MemoryFile>,
    /// Where page caches of host files mapped shared live: one budget for
    /// the sandbox, so mapping host files cannot fill the sentry's memory.
    pub file_cache: Arc<crate::vfs::tmpfs::Tmpfs>,
    /// Most mounts the mount table may hold (Linux's fs.mount-max).
    pub max_mounts: usize,
    pub hostname: Vec<u8>,
    pub boot_time: Instant,
    pub strace: bool,
    pub pids: Mutex<PidNamespace>,
    pub events: Arc<EventQueue>,
    pub futexes: crate::futex::FutexTable,
    /// Most live tasks (the spec's pids limit, or DEFAULT_MAX_TASKS;
    /// `update` changes it).
    pub max_tasks: std::sync::atomic::AtomicU64,
    /// The sandbox is paused (`cordon pause`): no task runs guest code
    /// until it is resumed.
    pub frozen: std::sync::atomic::AtomicBool,
    /// Timed wake-ups of `events`.
    pub wakeups: Arc<Wakeups>,
    /// CPUs the sandbox may use (counted at boot, before any thread is
    /// pinned).
    pub ncpus: usize,
    /// The POSIX message queues (one IPC namespace per sandbox).
    pub mqueues: crate::mqueue::MqueueNamespace,
}

/// A mount table (/proc/mounts), changed by mount/umount2: one per
/// container, shared by its processes.
pub type MountTable = Mutex<Vec<MountInfo>>;

/// What a container's processes see of the file systems: its root (the
/// gofer's tree, under its overlay) with its mounts, and their table.
#[derive(Clone)]
pub struct ContainerFs {
    pub root: Arc<Dentry>,
    pub mounts: Arc<MountTable>,
}

/// One mounted file system as /proc/mounts lists it.
#[derive(Clone, Debug)]
pub struct MountInfo {
    /// The mount's id, its parent's, and the device number its files show.
    pub id: u64,
    pub parent: u64,
    pub dev: u64,
    pub path: String,
    pub fstype: String,
    pub source: String,
    pub options: String,
}

impl MountInfo {
    /// The entry for the mount now at `path` (absolute, from `root`).
    pub fn at(root: &Arc<crate::vfs::Dentry>, path: &str, fstype: &str, source: &str, options: &str) -> MountInfo {
        let mut m = MountInfo {
            id: 0,
            parent: 0,
            dev: 0,
            path: path.into(),
            fstype: fstype.into(),
            source: source.into(),
            options: options.into(),
        };
        m.find_ids(root);
        m
    }

    /// Fills in the ids and device number of the mount at the entry's path.
    pub fn find_ids(&mut self, root: &Arc<crate::vfs::Dentry>) {
        let r = crate::vfs::Resolver::new(root, root);
        if let Ok(d) = r.resolve(self.path.as_bytes(), true) {
            (self.id, self.dev, _) = d.mount_identity();
        }
        // The root's parent is outside the container's view, as in a
        // container's mount namespace.
        self.parent = match r.resolve_parent(self.path.as_bytes()) {
            _ if self.path == "/" => 1,
            Ok((dir, _)) => dir.mount_identity().0,
            Err(_) => crate::vfs::ROOT_MOUNT_ID,
        };
    }
}

/// The container's PID namespace: thread ids from 1 up, and the thread
/// groups (processes) by pid.
#[derive(Default)]
pub struct PidNamespace {
    next: i32,
    pub tasks: HashMap<i32, Arc<TaskShared>>,
    pub groups: HashMap<i32, Arc<ThreadGroup>>,
}

/// Most live tasks in one sandbox when the spec sets no pids limit (each
/// task is a host thread and a stub process).
pub const DEFAULT_MAX_TASKS: u64 = 1024;

/// Largest pid handed out before numbers wrap (the pid_max systemd sets on
/// 64-bit hosts, which /proc/sys/kernel/pid_max reports).
pub const PID_MAX: i32 = 4_194_304;

impl PidNamespace {
    /// A fresh id, never one in use (by a task or an unreaped zombie).
    pub fn alloc(&mut self) -> Option<i32> {
        for _ in 0..PID_MAX {
            self.next = if self.next >= PID_MAX { 1 } else { self.next + 1 };
            if !self.tasks.contains_key(&self.next) && !self.groups.contains_key(&self.next) {
                return Some(self.next);
            }
        }
        None
    }
}

impl Kernel {
    pub fn pids(&self) -> MutexGuard<'_, PidNamespace> {
        self.pids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Most live tasks now.
    pub fn max_tasks(&self) -> u64 {
        self.max_tasks.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn frozen(&self) -> bool {
        self.frozen.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Pauses or resumes every task. A task running guest code is
    /// interrupted and parks before it runs guest code again; a task
    /// blocked in a system call parks when the call returns.
    pub fn set_frozen(&self, frozen: bool) {
        self.frozen.store(frozen, std::sync::atomic::Ordering::SeqCst);
        if frozen {
            let tasks: Vec<Arc<TaskShared>> = self.pids().tasks.values().cloned().collect();
            for t in tasks {
                t.interrupt();
            }
        }
        self.events.notify();
    }

    /// The init process (pid 1), if it still exists.
    pub fn init_group(&self) -> Option<Arc<ThreadGroup>> {
        self.pids().groups.get(&1).cloned()
    }
}

/// Wakes the event queue at given instants: timers whose expiry blocked
/// tasks wait for (timerfd) ask for a wake-up here. One host thread serves
/// them all, started on first use.
pub struct Wakeups {
    events: Arc<EventQueue>,
    due: Mutex<WakeupState>,
    cv: Condvar,
}

#[derive(Default)]
struct WakeupState {
    at: std::collections::BTreeSet<Instant>,
    started: bool,
}

impl Wakeups {
    pub fn new(events: Arc<EventQueue>) -> Arc<Wakeups> {
        Arc::new(Wakeups { events, due: Mutex::new(WakeupState::default()), cv: Condvar::new() })
    }

    /// Notifies the event queue at `when` (or soon after).
    pub fn at(self: &Arc<Wakeups>, when: Instant) {
        let mut st = self.due.lock().unwrap_or_else(|e| e.into_inner());
        let first = st.at.first().is_none_or(|f| when < *f);
        st.at.insert(when);
        if !st.started {
            let me = self.clone();
            if std::thread::Builder::new().name("wakeups".into()).spawn(move || me.run()).is_err() {
                tracing::error!(target: "sentry::kernel", "cannot start the wake-up thread");
                return;
            }
            st.started = true;
        }
        if first {
            self.cv.notify_one();
        }
    }

    fn run(&self) {
        let mut st = self.due.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            let mut fired = false;
            while st.at.first().is_some_and(|t| *t <= now) {
                st.at.pop_first();
                fired = true;
            }
            if fired {
                self.events.notify();
            }
            st = match st.at.first().copied() {
                Some(t) => self.cv.wait_timeout(st, t - now).unwrap_or_else(|e| e.into_inner()).0,
                None => self.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

/// Wakes blocked tasks when anything they may wait for changes: a child
/// exiting, pipe data, a signal. Waiters re-check their condition; the
/// generation count closes the window between checking and sleeping.
#[derive(Default)]
pub struct EventQueue {
    gen: Mutex<u64>,
    cv: Condvar,
}

impl EventQueue {
    /// The current generation, read before checking a condition.
    pub fn generation(&self) -> u64 {
        *self.gen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Something changed: wake every waiter.
    pub fn notify(&self) {
        let mut g = self.gen.lock().unwrap_or_else(|e| e.into_inner());
        *g = g.wrapping_add(1);
        self.cv.notify_all();
    }

    /// Sleeps until the generation moves past `seen` or `deadline` passes.
    pub fn wait(&self, seen: u64, deadline: Option<Instant>) {
        let mut g = self.gen.lock().unwrap_or_else(|e| e.into_inner());
        while *g == seen {
            match deadline {
                None => g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return;
                    }
                    g = self.cv.wait_timeout(g, d - now).unwrap_or_else(|e| e.into_inner()).0;
                }
            }
        }
    }
}
