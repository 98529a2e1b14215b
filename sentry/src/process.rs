//! Processes: thread groups with their threads, parent, children, exit
//! status, signal actions and process-wide pending signals; and the
//! per-task state other tasks reach (pending signals, the stub to
//! interrupt).
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use syscalls::flags::sa;
use syscalls::structs::{Sigaction, Siginfo};

use crate::task::ExitStatus;

/// A process.
pub struct ThreadGroup {
    pub pid: i32,
    /// The container of the sandbox the process belongs to (0: the
    /// sandbox's first; a pod's other containers count up), inherited by
    /// the processes it forks.
    pub container: u32,
    /// The PID namespace the process is in (its container's), inherited
    /// by the processes it forks.
    pub pidns: crate::kernel::PidNs,
    /// The process's id in its namespace (`pid` in the sandbox's).
    pub vpid: i32,
    state: Mutex<GroupState>,
    /// Signal actions, shared by the group's threads.
    pub actions: Mutex<[Sigaction; 64]>,
    /// Signals sent to the process (kill), taken by whichever thread does
    /// not block them.
    pending: Mutex<Pending>,
    /// Mirrors `GroupState::stopped` for the task loop, which looks at it
    /// before every return to guest code without taking the state lock.
    pub stop_flag: AtomicBool,
    /// ITIMER_REAL.
    pub real_timer: Arc<crate::timer::IntervalTimer>,
    /// ITIMER_VIRTUAL and ITIMER_PROF.
    pub cpu_timers: [Arc<crate::timer::CpuTimer>; 2],
    /// POSIX timers (timer_create), by id.
    pub timers: Mutex<std::collections::BTreeMap<i32, Arc<crate::timer::PosixTimer>>>,
    /// /proc/pid/oom_score_adj (inherited by children).
    pub oom_score_adj: std::sync::atomic::AtomicI32,
    /// /proc/pid/io: characters and calls of read-like and write-like
    /// system calls (rchar, wchar, syscr, syscw).
    pub io: [std::sync::atomic::AtomicU64; 4],
    /// Programs the process has exec'd (mq_notify signals only the
    /// program that registered, as Linux's self_exec_id).
    pub execs: AtomicU64,
}

/// What changes over a process's life.
pub struct GroupState {
    pub parent: Option<Arc<ThreadGroup>>,
    pub children: Vec<Arc<ThreadGroup>>,
    /// Set when the process has exited (its last thread is gone): a zombie
    /// until its parent reaps it.
    pub exit: Option<ExitStatus>,
    /// Set when the whole group is exiting (exit_group, a fatal signal):
    /// the status the process ends with.
    pub group_exit: Option<ExitStatus>,
    /// The status the leader thread exited with, if it exited alone
    /// (pthread_exit in main) while other threads run on.
    pub leader_exit: Option<ExitStatus>,
    /// The signal the parent gets when this process exits.
    pub exit_signal: i32,
    pub pgid: i32,
    pub sid: i32,
    /// The live threads, the leader (if alive) first.
    pub threads: Vec<Arc<TaskShared>>,
    /// Job control: the signal that stopped the process (None: running).
    pub stopped: Option<i32>,
    /// A stop or continue the parent has not waited for yet (WUNTRACED,
    /// WCONTINUED).
    pub stop_unreported: bool,
    pub continue_unreported: bool,
    /// Guest CPU time of the process when it exited, for its parent's wait.
    pub cpu_time: std::time::Duration,
    /// CPU time of the reaped children and their descendants.
    pub children_time: std::time::Duration,
}

impl ThreadGroup {
    pub fn new(
        pid: i32,
        container: u32,
        (pidns, vpid): (crate::kernel::PidNs, i32),
        parent: Option<Arc<ThreadGroup>>,
        pgid: i32,
        sid: i32,
        actions: [Sigaction; 64],
    ) -> Arc<ThreadGroup> {
        Arc::new(ThreadGroup {
            pid,
            container,
            pidns,
            vpid,
            state: Mutex::new(GroupState {
                parent,
                children: Vec::new(),
                exit: None,
                group_exit: None,
                leader_exit: None,
                exit_signal: syscalls::flags::signal::SIGCHLD,
                pgid,
                sid,
                threads: Vec::new(),
                stopped: None,
                stop_unreported: false,
                continue_unreported: false,
                cpu_time: std::time::Duration::ZERO,
                children_time: std::time::Duration::ZERO,
            }),
            actions: Mutex::new(actions),
            pending: Mutex::new(Pending::default()),
            stop_flag: AtomicBool::new(false),
            real_timer: Default::default(),
            cpu_timers: Default::default(),
            timers: Default::default(),
            oom_score_adj: Default::default(),
            io: Default::default(),
            execs: AtomicU64::new(0),
        })
    }

    /// Counts a read-like (`write` false) or write-like call moving `bytes`.
    pub fn account_io(&self, write: bool, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let base = if write { 1 } else { 0 };
        self.io[base].fetch_add(bytes, Relaxed);
        self.io[base + 2].fetch_add(1, Relaxed);
    }

    pub fn state(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The process's group and session ids, unless its state is locked
    /// now.
    pub fn try_ids(&self) -> Option<(i32, i32)> {
        let st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some((st.pgid, st.sid))
    }

    pub fn actions(&self) -> MutexGuard<'_, [Sigaction; 64]> {
        self.actions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Signals pending for the whole process.
    pub fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The parent's id as this process sees it (0: none, or outside its
    /// namespace).
    pub fn parent_pid(&self) -> i32 {
        self.state().parent.as_ref().map_or(0, |p| p.pid_in(self.pidns))
    }

    /// What a process in `ns` calls this one (0: it cannot see it).
    pub fn pid_in(&self, ns: crate::kernel::PidNs) -> i32 {
        if ns.is_root() {
            self.pid
        } else if ns == self.pidns {
            self.vpid
        } else {
            0
        }
    }

    /// Whether this is its namespace's init (id 1 there), which signals
    /// from inside the namespace cannot kill, and which adopts orphans.
    pub fn is_ns_init(&self) -> bool {
        self.vpid == 1
    }

    /// Sends a process-directed signal: queued for the group, and every
    /// thread is made to look (the ones that block it leave it).
    pub fn send(&self, info: Siginfo) {
        self.prepare_signal(info.signo);
        self.pending().queue(info);
        for t in self.state().threads.iter() {
            t.interrupt();
        }
    }

    /// What sending `sig` does before it is even delivered (Linux's
    /// prepare_signal): SIGCONT resumes a stopped process and drops pending
    /// stop signals; a stop signal drops a pending SIGCONT.
    pub fn prepare_signal(&self, sig: i32) {
        use crate::signal::bit;
        use syscalls::flags::signal as S;
        let stops = bit(S::SIGSTOP) | bit(S::SIGTSTP) | bit(S::SIGTTIN) | bit(S::SIGTTOU);
        let drop = match sig {
            S::SIGCONT => stops,
            S::SIGSTOP | S::SIGTSTP | S::SIGTTIN | S::SIGTTOU => bit(S::SIGCONT),
            _ => return,
        };
        self.pending().bits &= !drop;
        let threads = self.state().threads.clone();
        for t in &threads {
            t.pending().bits &= !drop;
        }
        if sig == S::SIGCONT {
            let parent = {
                let mut st = self.state();
                if st.stopped.take().is_none() {
                    return;
                }
                self.stop_flag.store(false, Ordering::SeqCst);
                st.stop_unreported = false;
                st.continue_unreported = true;
                st.parent.clone()
            };
            if let Some(parent) = parent {
                parent.child_changed(self.vpid, sa::CLD_CONTINUED, S::SIGCONT);
            }
        }
    }

    /// Tells this process (the parent) that child `pid` (its id in their
    /// namespace) stopped or
    /// continued: SIGCHLD unless it asked for none (SA_NOCLDSTOP).
    pub fn child_changed(&self, pid: i32, code: i32, status: i32) {
        use syscalls::flags::signal as S;
        let nocldstop = {
            let a = self.actions()[(S::SIGCHLD - 1) as usize];
            a.flags & sa::SA_NOCLDSTOP != 0 || a.handler == sa::SIG_IGN
        };
        if !nocldstop && self.state().exit.is_none() {
            let mut info = Siginfo { signo: S::SIGCHLD, code, ..Default::default() };
            info.fields[0] = u64::from(pid as u32);
            info.fields[1] = u64::from(status as u32);
            self.send(info);
        }
    }

    /// Stops every timer (at exit).
    pub fn cancel_timers(&self) {
        self.real_timer.cancel();
        for t in &self.cpu_timers {
            t.cancel();
        }
        self.delete_timers();
    }

    /// Deletes every POSIX timer (at exit and exec).
    pub fn delete_timers(&self) {
        let timers = std::mem::take(&mut *self.timers.lock().unwrap_or_else(|e| e.into_inner()));
        for timer in timers.into_values() {
            timer.timer.cancel();
        }
    }

    /// Makes every thread but `except` exit now.
    pub fn doom_others(&self, except: i32) {
        for t in self.state().threads.iter() {
            if t.tid() != except {
                t.doom();
            }
        }
    }
}

/// Signals sent and not yet delivered.
pub struct Pending {
    pub bits: u64,
    pub info: [Siginfo; 64],
}

impl Default for Pending {
    fn default() -> Pending {
        Pending { bits: 0, info: [Siginfo::default(); 64] }
    }
}

impl Pending {
    /// Adds `info`; a standard signal already pending is not queued twice.
    pub fn queue(&mut self, info: Siginfo) {
        let sig = info.signo;
        if !crate::signal::valid(sig) {
            return;
        }
        let b = crate::signal::bit(sig);
        // The kernel's SIGKILL or SIGSTOP (which reaches a namespace's
        // init) is not lost in one pending from a sender it ignores.
        let forced = info.code == syscalls::flags::sa::SI_KERNEL
            && matches!(sig, syscalls::flags::signal::SIGKILL | syscalls::flags::signal::SIGSTOP);
        if self.bits & b == 0 || forced {
            self.info[(sig - 1) as usize] = info;
        }
        self.bits |= b;
    }
}

/// What /proc shows of a task, published by the task's own thread when it
/// changes (start, exec, clone, prctl) and dropped when it exits.
#[derive(Default)]
pub struct ProcView {
    pub mm: Option<crate::mm::SharedMemory>,
    pub fds: Option<crate::vfs::FdTable>,
    pub fs: Option<Arc<Mutex<crate::task::FsContext>>>,
    /// Path of the executable.
    pub exe: Vec<u8>,
    pub comm: Vec<u8>,
    /// uid, euid, suid, gid, egid, sgid.
    pub ids: [u32; 6],
    pub groups: Vec<u32>,
    pub caps: crate::creds::CapSets,
    pub no_new_privs: bool,
    pub sigmask: u64,
    pub umask: u32,
    /// When the task started (boot-relative for /proc/pid/stat).
    pub started: Option<std::time::Instant>,
    /// Host clock of the process's guest CPU time.
    pub cpu_clock: Option<i32>,
    pub rlimits: [syscalls::structs::Rlimit; 16],
    /// The auxiliary vector of the running image (/proc/pid/auxv).
    pub auxv: Vec<u8>,
}

thread_local! {
    /// The task the calling host thread runs (each task has its own).
    static CURRENT: std::cell::RefCell<Option<Arc<TaskShared>>> = const { std::cell::RefCell::new(None) };
}

/// Records that this host thread runs `task`.
pub fn set_current(task: &Arc<TaskShared>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(task.clone()));
}

/// The task this host thread runs (None outside task threads).
pub fn current() -> Option<Arc<TaskShared>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The part of a task other tasks reach.
pub struct TaskShared {
    /// The thread id (changes once if the task execs from a non-leader
    /// thread and takes over the leader's id).
    tid: AtomicI32,
    /// The thread id in the process's namespace (`tid` in the sandbox's).
    vtid: AtomicI32,
    pub group: Arc<ThreadGroup>,
    pending: Mutex<Pending>,
    /// Host process and thread of the stub running the task's guest code
    /// (0 when none), to interrupt it.
    stub: AtomicU64,
    /// Set when the task must exit at once: its group is exiting, or
    /// another thread is exec'ing.
    doomed: AtomicBool,
    /// What /proc shows of it.
    view: Mutex<ProcView>,
}

impl TaskShared {
    pub fn new((tid, vtid): (i32, i32), group: Arc<ThreadGroup>) -> Arc<TaskShared> {
        Arc::new(TaskShared {
            tid: AtomicI32::new(tid),
            vtid: AtomicI32::new(vtid),
            group,
            pending: Mutex::new(Pending::default()),
            stub: AtomicU64::new(0),
            doomed: AtomicBool::new(false),
            view: Mutex::new(ProcView::default()),
        })
    }

    pub fn tid(&self) -> i32 {
        self.tid.load(Ordering::Relaxed)
    }

    /// The thread takes over its process's ids (an exec from a non-leader
    /// thread).
    pub fn take_group_ids(&self) {
        self.tid.store(self.group.pid, Ordering::Relaxed);
        self.vtid.store(self.group.vpid, Ordering::Relaxed);
    }

    /// What a process in `ns` calls this thread (0: it cannot see it).
    pub fn tid_in(&self, ns: crate::kernel::PidNs) -> i32 {
        if ns.is_root() {
            self.tid()
        } else if ns == self.group.pidns {
            self.vtid.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    pub fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What /proc shows of the task.
    pub fn view(&self) -> MutexGuard<'_, ProcView> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the stub's host process and thread (`(0, 0)`: none).
    pub fn set_stub(&self, (pid, tid): (i32, i32)) {
        self.stub.store((u64::from(pid as u32) << 32) | u64::from(tid as u32), Ordering::Relaxed);
    }

    /// Queues a thread-directed signal; the caller then wakes the task
    /// (`interrupt`, `Kernel::events`).
    pub fn queue(&self, info: Siginfo) {
        self.group.prepare_signal(info.signo);
        self.pending().queue(info);
    }

    /// Makes a task that is running guest code stop and look at its
    /// signals: a host signal to its stub thread brings the tracer back.
    pub fn interrupt(&self) {
        let v = self.stub.load(Ordering::Relaxed);
        let (pid, tid) = ((v >> 32) as i32, v as u32 as i32);
        if pid > 0 && tid > 0 {
            crate::host::tgkill(pid, tid, libc::SIGURG);
        }
    }

    /// Tells the task to exit at once, and interrupts it.
    pub fn doom(&self) {
        self.doomed.store(true, Ordering::SeqCst);
        self.interrupt();
    }

    pub fn doomed(&self) -> bool {
        self.doomed.load(Ordering::SeqCst)
    }
}
