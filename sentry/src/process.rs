//! Processes: thread groups with their parent, children, exit status and
//! signal actions, and the per-task state other tasks reach (pending
//! signals, the stub to interrupt).
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use syscalls::structs::{Sigaction, Siginfo};

use crate::task::ExitStatus;

/// A process.
pub struct ThreadGroup {
    pub pid: i32,
    state: Mutex<GroupState>,
    /// Signal actions, shared by the group's threads.
    pub actions: Mutex<[Sigaction; 64]>,
    /// ITIMER_REAL.
    pub real_timer: Arc<crate::timer::RealTimer>,
}

/// What changes over a process's life.
pub struct GroupState {
    pub parent: Option<Arc<ThreadGroup>>,
    pub children: Vec<Arc<ThreadGroup>>,
    /// Set when the process has exited: a zombie until its parent reaps it.
    pub exit: Option<ExitStatus>,
    /// The signal the parent gets when this process exits.
    pub exit_signal: i32,
    pub pgid: i32,
    pub sid: i32,
    /// The group's (only) thread, to direct signals at.
    pub leader: Option<Arc<TaskShared>>,
    /// CPU time used, reported by wait4 (microseconds of user, system).
    pub rusage: (u64, u64),
}

impl ThreadGroup {
    pub fn new(
        pid: i32,
        parent: Option<Arc<ThreadGroup>>,
        pgid: i32,
        sid: i32,
        actions: [Sigaction; 64],
    ) -> Arc<ThreadGroup> {
        Arc::new(ThreadGroup {
            pid,
            state: Mutex::new(GroupState {
                parent,
                children: Vec::new(),
                exit: None,
                exit_signal: syscalls::flags::signal::SIGCHLD,
                pgid,
                sid,
                leader: None,
                rusage: (0, 0),
            }),
            actions: Mutex::new(actions),
            real_timer: Default::default(),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn actions(&self) -> MutexGuard<'_, [Sigaction; 64]> {
        self.actions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn parent_pid(&self) -> i32 {
        self.state().parent.as_ref().map_or(0, |p| p.pid)
    }
}

/// Signals sent to a task and not yet delivered.
pub struct Pending {
    pub bits: u64,
    pub info: [Siginfo; 64],
}

/// The part of a task other tasks reach.
pub struct TaskShared {
    pub tid: i32,
    pub group: Arc<ThreadGroup>,
    pending: Mutex<Pending>,
    /// Host pid of the stub thread running the task's guest code (0 when
    /// none), to interrupt it.
    stub: AtomicI32,
}

impl TaskShared {
    pub fn new(tid: i32, group: Arc<ThreadGroup>) -> Arc<TaskShared> {
        Arc::new(TaskShared {
            tid,
            group,
            pending: Mutex::new(Pending { bits: 0, info: [Siginfo::default(); 64] }),
            stub: AtomicI32::new(0),
        })
    }

    pub fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_stub(&self, pid: i32) {
        self.stub.store(pid, Ordering::Relaxed);
    }

    /// Queues `info`; the caller then wakes the task (`Kernel::wake`).
    pub fn queue(&self, info: Siginfo) {
        let sig = info.signo;
        if !crate::signal::valid(sig) {
            return;
        }
        let mut p = self.pending();
        let b = crate::signal::bit(sig);
        if p.bits & b == 0 {
            p.info[(sig - 1) as usize] = info;
        }
        p.bits |= b;
    }

    /// Makes a task that is running guest code stop and look at its
    /// signals: a host signal to its stub brings the tracer back.
    pub fn interrupt(&self) {
        let pid = self.stub.load(Ordering::Relaxed);
        if pid > 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGURG);
        }
    }
}
