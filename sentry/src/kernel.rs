//! The kernel: state shared by every task of a sandbox — the platform, the
//! memory file, the PID namespaces, and the event queue that blocked tasks
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
    pub pids: Mutex<PidTable>,
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

/// A PID namespace, by number. The sandbox's (0) numbers processes with
/// the sentry's own ids, which every other namespace's processes also have;
/// a container with a PID namespace of its own (a pod's container, as CRI
/// asks by default) gets a child of it, whose processes also have ids of
/// their own from 1 up and see only each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PidNs(pub u32);

impl PidNs {
    /// The sandbox's namespace.
    pub const ROOT: PidNs = PidNs(0);

    pub fn is_root(self) -> bool {
        self == PidNs::ROOT
    }
}

/// The sandbox's processes and threads by id (the root namespace's ids),
/// and their ids in the child namespaces.
#[derive(Default)]
pub struct PidTable {
    next: i32,
    pub tasks: HashMap<i32, Arc<TaskShared>>,
    pub groups: HashMap<i32, Arc<ThreadGroup>>,
    /// Ids in child namespaces, by sandbox id, and back.
    local: HashMap<i32, (PidNs, i32)>,
    global: HashMap<(PidNs, i32), i32>,
    /// Where each child namespace's ids go on from.
    ns_next: HashMap<PidNs, i32>,
    /// Child namespaces whose init is gone: no new ids there (fork fails
    /// with ENOMEM, as Linux's disable_pid_allocation).
    dead: std::collections::HashSet<PidNs>,
    /// Ids no task or process holds any more that a process group or a
    /// session still goes by: not handed out again, and still translated,
    /// until the group and session are gone (as Linux keeps a struct pid).
    lingering: Vec<i32>,
    namespaces: u32,
}

/// Most live tasks in one sandbox when the spec sets no pids limit (each
/// task is a host thread and a stub process).
pub const DEFAULT_MAX_TASKS: u64 = 1024;

/// Largest pid handed out before numbers wrap (the pid_max systemd sets on
/// 64-bit hosts, which /proc/sys/kernel/pid_max reports).
pub const PID_MAX: i32 = 4_194_304;

impl PidTable {
    /// A fresh id for a task in `ns`, never one in use (by a task, an
    /// unreaped zombie, or a live process group or session), and its id in
    /// `ns` (the same in the sandbox's namespace).
    pub fn alloc(&mut self, ns: PidNs) -> Option<(i32, i32)> {
        let mut id = None;
        for _ in 0..PID_MAX {
            self.next = if self.next >= PID_MAX { 1 } else { self.next + 1 };
            let n = self.next;
            // (Not one handed out for a task not registered yet either.)
            if !self.tasks.contains_key(&n)
                && !self.groups.contains_key(&n)
                && !self.lingering.contains(&n)
                && !self.local.contains_key(&n)
            {
                id = Some(n);
                break;
            }
        }
        let id = id?;
        if self.dead.contains(&ns) {
            return None;
        }
        if !ns.is_root() {
            let next = self.ns_next.entry(ns).or_insert(0);
            let mut local = None;
            for _ in 0..PID_MAX {
                *next = if *next >= PID_MAX { 1 } else { *next + 1 };
                if !self.global.contains_key(&(ns, *next)) {
                    local = Some(*next);
                    break;
                }
            }
            let local = local?;
            self.local.insert(id, (ns, local));
            self.global.insert((ns, local), id);
            return Some((id, local));
        }
        Some((id, id))
    }

    /// A new child namespace (its first process gets id 1 there).
    pub fn new_namespace(&mut self) -> PidNs {
        self.namespaces += 1;
        PidNs(self.namespaces)
    }

    /// A child namespace's init is gone: it hands out no more ids, and is
    /// forgotten once its last id is.
    pub fn end_namespace(&mut self, ns: PidNs) {
        if !ns.is_root() {
            self.dead.insert(ns);
            self.forget_namespace_if_empty(ns);
        }
    }

    /// Whether `ns` has ended (its init is gone).
    pub fn ended(&self, ns: PidNs) -> bool {
        self.dead.contains(&ns)
    }

    fn forget_namespace_if_empty(&mut self, ns: PidNs) {
        if self.dead.contains(&ns) && !self.local.values().any(|(n, _)| *n == ns) {
            self.ns_next.remove(&ns);
            self.dead.remove(&ns);
        }
    }

    /// Takes a thread out of the table.
    pub fn remove_task(&mut self, tid: i32) -> Option<Arc<TaskShared>> {
        let t = self.tasks.remove(&tid);
        self.release(tid);
        t
    }

    /// Takes a process (reaped, or never run) out of the table.
    pub fn remove_group(&mut self, pid: i32) -> Option<Arc<ThreadGroup>> {
        let g = self.groups.remove(&pid);
        self.release(pid);
        g
    }

    /// Lets go of an id handed out for a task that was never registered.
    pub fn forget(&mut self, id: i32) {
        self.release(id);
    }

    /// Lets `id` go once nothing goes by it; looks again at the ids kept
    /// for process groups and sessions.
    fn release(&mut self, id: i32) {
        if self.tasks.contains_key(&id) || self.groups.contains_key(&id) {
            return;
        }
        if !self.lingering.contains(&id) {
            self.lingering.push(id);
        }
        let groups = &self.groups;
        // A process whose state is locked now may use it: kept, and looked
        // at again next time (waiting for the lock here could deadlock, as
        // the table's lock is taken first).
        let in_use = |n: i32| groups.values().any(|g| g.try_ids().is_none_or(|(pgid, sid)| pgid == n || sid == n));
        let (keep, gone): (Vec<i32>, Vec<i32>) = self.lingering.iter().partition(|n| in_use(**n));
        self.lingering = keep;
        for n in gone {
            if let Some(key) = self.local.remove(&n) {
                self.global.remove(&key);
                self.forget_namespace_if_empty(key.0);
            }
        }
    }

    /// What a process in `ns` calls the sandbox's id `id` (0: it cannot
    /// see it, as Linux's pid_vnr).
    pub fn id_in(&self, ns: PidNs, id: i32) -> i32 {
        if ns.is_root() {
            return id;
        }
        match self.local.get(&id) {
            Some((n, local)) if *n == ns => *local,
            _ => 0,
        }
    }

    /// The sandbox's id of what a process in `ns` calls `id`.
    pub fn find(&self, ns: PidNs, id: i32) -> Option<i32> {
        if ns.is_root() {
            return (id > 0).then_some(id);
        }
        self.global.get(&(ns, id)).copied()
    }

    /// The thread a process in `ns` calls `tid`.
    pub fn task_in(&self, ns: PidNs, tid: i32) -> Option<Arc<TaskShared>> {
        self.tasks.get(&self.find(ns, tid)?).cloned()
    }

    /// The process a process in `ns` calls `pid`.
    pub fn group_in(&self, ns: PidNs, pid: i32) -> Option<Arc<ThreadGroup>> {
        self.groups.get(&self.find(ns, pid)?).cloned()
    }

    /// The init of `ns` (its id 1), if it still exists.
    pub fn init_of(&self, ns: PidNs) -> Option<Arc<ThreadGroup>> {
        self.group_in(ns, 1)
    }
}

/// Whether a process in `ns` sees `g` (the sandbox's namespace sees all).
pub fn sees(ns: PidNs, g: &ThreadGroup) -> bool {
    ns.is_root() || g.pidns == ns
}

impl Kernel {
    pub fn pids(&self) -> MutexGuard<'_, PidTable> {
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

    /// What a process in `ns` calls the sandbox's id `id` (0: not in its
    /// namespace).
    pub fn pid_in(&self, ns: PidNs, id: i32) -> i32 {
        if ns.is_root() {
            id
        } else {
            self.pids().id_in(ns, id)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_namespaces_number_their_processes_from_one() {
        let mut pids = PidTable::default();
        let (root_id, same) = pids.alloc(PidNs::ROOT).unwrap();
        assert_eq!(root_id, same, "the sandbox's namespace uses the sandbox's ids");
        let (a, b) = (pids.new_namespace(), pids.new_namespace());
        let (g1, l1) = pids.alloc(a).unwrap();
        let (g2, l2) = pids.alloc(a).unwrap();
        let (g3, l3) = pids.alloc(b).unwrap();
        assert_eq!((l1, l2, l3), (1, 2, 1));
        assert!(g1 != root_id && g1 != g2 && g3 != g2, "sandbox ids are unique: {root_id} {g1} {g2} {g3}");
        // Each namespace sees its own by their ids there; the sandbox's sees
        // every process by its sandbox id; nobody else sees them.
        assert_eq!((pids.id_in(a, g1), pids.id_in(a, g2), pids.id_in(b, g3)), (1, 2, 1));
        assert_eq!((pids.id_in(b, g1), pids.id_in(a, g3), pids.id_in(a, root_id)), (0, 0, 0));
        assert_eq!(pids.id_in(PidNs::ROOT, g3), g3);
        assert_eq!((pids.find(a, 1), pids.find(b, 1), pids.find(b, 2)), (Some(g1), Some(g3), None));
        assert_eq!(pids.find(PidNs::ROOT, g1), Some(g1));
        // An id let go is forgotten, and not handed out again at once.
        pids.forget(g1);
        assert_eq!((pids.find(a, 1), pids.id_in(a, g1)), (None, 0));
        assert_eq!(pids.alloc(a).unwrap().1, 3);
        // An ended namespace hands out no more ids, and is forgotten with
        // its last one.
        pids.end_namespace(b);
        assert!(pids.alloc(b).is_none());
        assert_eq!(pids.find(b, 1), Some(g3), "an ended namespace's processes keep their ids");
        pids.forget(g3);
        assert!(!pids.ended(b) && !pids.ns_next.contains_key(&b));
    }
}
