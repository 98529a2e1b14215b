//! A task: one guest thread, the host thread that runs it, and the life of
//! a process around it (fork, exit, being waited for).
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use platform::{Context, Event, NewThread, Registers};
use syscalls::flags::{rlimit, sa, signal, OpenFlags};
use syscalls::structs::{Rlimit, Sigaction};
use syscalls::Errno;

use crate::config::ProcessConfig;
use crate::kernel::Kernel;
use crate::mm::{MemoryManager, SharedMemory, TaskMemory};
use crate::process::{TaskShared, ThreadGroup};
use crate::signal::{fault_info, user_info, SignalState};
use crate::vfs::{Dentry, FdTable, File, FileKind, Resolver};
use crate::BootError;

/// How a task (and so its process) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// The status a shell would report: the code, or 128 + signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c & 0xff,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }

    /// The status word wait4 reports.
    pub fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => (c & 0xff) << 8,
            ExitStatus::Signaled(s) => s & 0x7f,
        }
    }
}

/// The state restart_syscall continues from.
#[derive(Clone, Copy, Debug)]
pub enum RestartBlock {
    /// nanosleep / clock_nanosleep: sleep until `deadline`, writing the
    /// time left to `rem` if interrupted again.
    Sleep { deadline: Instant, rem: u64 },
}

pub use crate::creds::Credentials;

/// Root, cwd and umask.
#[derive(Clone)]
pub struct FsContext {
    pub root: Arc<Dentry>,
    pub cwd: Arc<Dentry>,
    pub umask: u32,
    /// The mount table of the task's container (its mount namespace).
    pub mounts: Arc<crate::kernel::MountTable>,
}

/// One guest thread.
pub struct Task {
    pub kernel: Arc<Kernel>,
    pub tid: i32,
    pub shared: Arc<TaskShared>,
    pub regs: Registers,
    pub mm: TaskMemory,
    ctx: Box<dyn Context>,
    pub fds: FdTable,
    /// Root, cwd and umask, shared with CLONE_FS.
    pub fs: Arc<Mutex<FsContext>>,
    pub creds: Credentials,
    /// The running image was exec'd with changed privileges (AT_SECURE).
    pub secure_exec: bool,
    pub signals: SignalState,
    pub rlimits: [Rlimit; 16],
    pub comm: [u8; 16],
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    /// Time spent running guest code (a thread's CPU time where the host
    /// cannot tell it: the host's thread clocks are private to a process).
    pub guest_time: std::time::Duration,
    /// sched_setaffinity's mask (None: every CPU), inherited by children.
    pub affinity: Option<Vec<u8>>,
    /// The executable (for /proc/pid/exe).
    pub exe: Option<Arc<Dentry>>,
    pub exit: Option<ExitStatus>,
    /// A system call a signal interrupted, to restart or fail with EINTR
    /// once the signal is handled.
    pub restart: Option<crate::syscalls::Restart>,
    /// What restart_syscall goes on with (a relative sleep's deadline).
    pub restart_block: Option<RestartBlock>,
    /// Set when this task was vforked: raised (and the parent woken) when
    /// it execs or exits.
    pub vfork_release: Option<Arc<AtomicBool>>,
}

/// The memory a new task starts with.
enum ChildMemory {
    /// The parent's address space (CLONE_VM), through a new stub thread.
    Shared(SharedMemory, Box<dyn NewThread>),
    /// A copy-on-write copy of the parent's, in a new stub process.
    Copied(MemoryManager),
}

/// Everything a clone gives the child's thread.
struct ForkedTask {
    kernel: Arc<Kernel>,
    tid: i32,
    shared: Arc<TaskShared>,
    regs: Registers,
    fp: Vec<u8>,
    mm: ChildMemory,
    fds: FdTable,
    fs: Arc<Mutex<FsContext>>,
    creds: Credentials,
    signals: SignalState,
    rlimits: [Rlimit; 16],
    comm: [u8; 16],
    clear_child_tid: u64,
    child_settid: u64,
    affinity: Option<Vec<u8>>,
    exe: Option<Arc<Dentry>>,
    vfork_release: Option<Arc<AtomicBool>>,
}

/// The stdio of a process started from outside.
pub enum ProcessStdio {
    /// Host fds (pipes, files, the caller's terminal), passed through.
    Host([OwnedFd; 3]),
    /// The guest end of its console (`process.terminal`).
    Terminal(crate::tty::TtyEnd),
}

impl Task {
    /// A process started from outside: the container's first (pid 1), or
    /// one `exec` adds. Its stdio are host fds, its program is loaded from
    /// its container's root file system, and it leads a new session with no
    /// parent in the sandbox (it is reaped when it exits). `container` tags
    /// it (and every process it forks) as the container's, in PID namespace
    /// `pidns` (the first process of a new namespace is its init, id 1).
    pub fn new_process(
        kernel: Arc<Kernel>,
        (container, pidns): (u32, crate::kernel::PidNs),
        fs: &crate::kernel::ContainerFs,
        cfg: &ProcessConfig,
        stdio: ProcessStdio,
    ) -> Result<Task, BootError> {
        let space = kernel.platform.new_address_space()?;
        let max = kernel.platform.max_user_address();
        let mm = TaskMemory::new(MemoryManager::new(kernel.memory.clone(), max), space);
        let fds = FdTable::default();
        let installed = |i: usize, file: Arc<File>| {
            fds.install(i as i32, file, false, 3)
                .map(|_| ())
                .map_err(|e| BootError::Exec { msg: format!("installing stdio: {e}"), code: 1 })
        };
        let mut console = None;
        match stdio {
            ProcessStdio::Host(host) => {
                for (i, fd) in host.into_iter().enumerate() {
                    let flags = host_status_flags(&fd);
                    installed(i, File::new(FileKind::Host(fd), flags, None))?;
                }
            }
            ProcessStdio::Terminal(end) => {
                // One open file on 0, 1 and 2, as runc dups the console.
                console = Some(end.term.clone());
                let flags = OpenFlags::O_RDWR.bits() | OpenFlags::O_LARGEFILE.bits();
                let file = File::new(FileKind::Tty(end), flags, None);
                for i in 0..3 {
                    installed(i, file.clone())?;
                }
            }
        }
        let root = fs.root.clone();
        let cwd = Resolver::new(&root, &root)
            .resolve(cfg.cwd.as_bytes(), true)
            .and_then(|d| if d.is_dir() { Ok(d) } else { Err(Errno::ENOTDIR) })
            .map_err(|e| BootError::Exec {
                msg: format!("chdir to cwd (\"{}\") set in config.json failed: {}", cfg.cwd, e.description()),
                code: 1,
            })?;
        let mut rlimits = [Rlimit { rlim_cur: rlimit::RLIM_INFINITY, rlim_max: rlimit::RLIM_INFINITY }; 16];
        for (res, r) in rlimits.iter_mut().enumerate() {
            if let Ok((cur, max)) = host_rlimit(res as u32) {
                *r = Rlimit { rlim_cur: cur, rlim_max: max };
            }
        }
        for &(res, soft, hard) in &cfg.rlimits {
            if let Some(r) = rlimits.get_mut(res as usize) {
                *r = Rlimit { rlim_cur: soft, rlim_max: hard };
            }
        }
        let ids = {
            let mut pids = kernel.pids();
            // An exec'd process counts against the pids limit like a fork.
            if pids.tasks.len() as u64 >= kernel.max_tasks() {
                return Err(BootError::Exec { msg: "the sandbox's pids limit is reached".into(), code: 1 });
            }
            pids.alloc(pidns)
                .ok_or_else(|| BootError::Exec { msg: "no process id left in the sandbox".into(), code: 1 })?
        };
        let (tid, vtid) = ids;
        let group = ThreadGroup::new(tid, container, (pidns, vtid), None, tid, tid, [Sigaction::default(); 64]);
        // The process leads its session, and its console is that
        // session's controlling terminal.
        if let Some(term) = console {
            term.set_controlling(&group, tid);
        }
        let shared = TaskShared::new(ids, group.clone());
        group.state().threads.push(shared.clone());
        {
            let mut pids = kernel.pids();
            pids.tasks.insert(tid, shared.clone());
            pids.groups.insert(tid, group);
        }
        shared.set_stub(mm.host_ids());
        let ctx = kernel.platform.new_context();
        let mut task = Task {
            kernel,
            tid,
            shared,
            regs: Registers::zeroed(),
            mm,
            ctx,
            fds,
            fs: Arc::new(Mutex::new(FsContext { root, cwd, umask: 0o022, mounts: fs.mounts.clone() })),
            creds: Credentials::new(cfg.uid, cfg.gid, cfg.additional_gids.clone(), cfg.caps, cfg.no_new_privs),
            secure_exec: false,
            signals: SignalState::default(),
            rlimits,
            comm: [0; 16],
            clear_child_tid: 0,
            robust_list: (0, 0),
            guest_time: std::time::Duration::ZERO,
            affinity: None,
            exe: None,
            exit: None,
            restart: None,
            restart_block: None,
            vfork_release: None,
        };
        if let Err(e) = crate::loader::exec_first(&mut task, &cfg.args, &cfg.env) {
            task.discard();
            return Err(e);
        }
        Ok(task)
    }

    /// Forgets a process that never ran (a container killed before it
    /// started): it leaves the PID namespace and lets go of its files.
    pub fn discard(self) {
        {
            let mut pids = self.kernel.pids();
            pids.remove_task(self.tid);
            pids.remove_group(self.tid);
            if self.group().is_ns_init() {
                pids.end_namespace(self.group().pidns);
            }
        }
        *self.shared.view() = crate::process::ProcView::default();
        // The process and its thread point at each other.
        self.group().state().threads.clear();
    }

    /// The task's process.
    pub fn group(&self) -> &Arc<ThreadGroup> {
        &self.shared.group
    }

    /// The PID namespace the task is in.
    pub fn pidns(&self) -> crate::kernel::PidNs {
        self.shared.group.pidns
    }

    /// The task's thread id in its namespace.
    pub fn vtid(&self) -> i32 {
        self.shared.tid_in(self.pidns())
    }

    /// What this task calls the sandbox's id `id` (0: not in its
    /// namespace).
    pub fn vpid(&self, id: i32) -> i32 {
        self.kernel.pid_in(self.pidns(), id)
    }

    /// The sandbox's id of what this task calls `id`.
    pub fn global_id(&self, id: i32) -> Option<i32> {
        if self.pidns().is_root() {
            return (id > 0).then_some(id);
        }
        self.kernel.pids().find(self.pidns(), id)
    }

    /// The thread this task calls `tid`.
    pub fn task_by_id(&self, tid: i32) -> Option<Arc<TaskShared>> {
        self.kernel.pids().task_in(self.pidns(), tid)
    }

    /// The process this task calls `pid`.
    pub fn group_by_id(&self, pid: i32) -> Option<Arc<ThreadGroup>> {
        self.kernel.pids().group_in(self.pidns(), pid)
    }

    /// The task's name now (prctl PR_SET_NAME, exec, or a write to
    /// /proc/pid/comm), NUL-padded.
    pub fn comm_now(&self) -> [u8; 16] {
        let v = self.shared.view();
        let mut c = [0u8; 16];
        let n = v.comm.len().min(15);
        c[..n].copy_from_slice(&v.comm[..n]);
        c
    }

    /// Renames the task (at most 15 bytes are kept).
    pub fn set_comm(&mut self, name: &[u8]) {
        let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len()).min(15)];
        self.comm = [0; 16];
        self.comm[..name.len()].copy_from_slice(name);
        self.shared.view().comm = name.to_vec();
    }

    /// Publishes what /proc shows of this task (at start, exec, and when
    /// names, ids or masks change).
    pub fn publish(&self) {
        let root = self.fs().root.clone();
        let mut v = self.shared.view();
        v.mm = Some(self.mm.handle());
        v.fds = Some(self.fds.share());
        v.fs = Some(self.fs.clone());
        // The view holds the name once set: /proc/pid/comm writes go there.
        if v.comm.is_empty() {
            let end = self.comm.iter().position(|b| *b == 0).unwrap_or(self.comm.len());
            v.comm = self.comm[..end].to_vec();
        }
        let c = &self.creds;
        v.ids = [c.uid, c.euid, c.suid, c.gid, c.egid, c.sgid];
        v.groups = c.groups.clone();
        v.caps = c.caps;
        v.no_new_privs = c.no_new_privs;
        v.sigmask = self.signals.mask;
        v.umask = self.fs().umask;
        v.started.get_or_insert_with(Instant::now);
        v.cpu_clock = self.mm.cpu_clock();
        v.rlimits = self.rlimits;
        if let Some(exe) = &self.exe {
            v.exe = exe.path_from(&root);
        }
    }

    /// Root, cwd and umask.
    pub fn fs(&self) -> MutexGuard<'_, FsContext> {
        self.fs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the task until it exits (alone, or with its whole process).
    pub fn run(&mut self) -> ExitStatus {
        crate::process::set_current(&self.shared);
        loop {
            if let Some(status) = self.exit {
                return status;
            }
            if self.shared.doomed() {
                // Another thread ended the group, or is exec'ing.
                return ExitStatus::Signaled(signal::SIGKILL);
            }
            if self.kernel.frozen() {
                // Returns at once for a SIGKILL, which the next step takes.
                self.park_while_frozen();
            }
            if let Some(status) = self.deliver_signals() {
                self.begin_group_exit(status);
                return status;
            }
            if self.group().stop_flag.load(Ordering::SeqCst) {
                self.park_while_stopped();
                continue;
            }
            self.mm.sync();
            let entered = Instant::now();
            let switched = self.ctx.switch(self.mm.space(), &mut self.regs);
            self.guest_time += entered.elapsed();
            let event = match switched {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::error!(target: "sentry::task", tid = self.tid, "platform failure: {e}");
                    self.begin_group_exit(ExitStatus::Signaled(signal::SIGKILL));
                    return ExitStatus::Signaled(signal::SIGKILL);
                }
            };
            match event {
                Event::Syscall => crate::syscalls::handle(self),
                Event::Fault(f) => {
                    if !self.mm.handle_fault(f.addr) {
                        let code = if self.mm.is_mapped(f.addr) { sa::SEGV_ACCERR } else { sa::SEGV_MAPERR };
                        let code = if f.signo == signal::SIGSEGV { code } else { f.code };
                        tracing::debug!(target: "sentry::task", tid = self.tid, addr = format_args!("{:#x}", f.addr),
                            ip = format_args!("{:#x}", self.regs.ip()), "fault: signal {}", f.signo);
                        self.force_signal(fault_info(f.signo, code, f.addr));
                    }
                }
                Event::Signal(s) => {
                    if s.code > 0 && is_synchronous(s.signo) {
                        tracing::debug!(target: "sentry::task", tid = self.tid, ip = format_args!("{:#x}", self.regs.ip()),
                            "synchronous signal {}", s.signo);
                        self.force_signal(fault_info(s.signo, s.code, s.addr));
                    }
                    // Anything else is an interruption to look at signals.
                }
                Event::Died(sig) => {
                    tracing::error!(target: "sentry::task", tid = self.tid, "stub died ({sig})");
                    self.begin_group_exit(ExitStatus::Signaled(signal::SIGKILL));
                    return ExitStatus::Signaled(signal::SIGKILL);
                }
            }
            if self.mm.broken() {
                self.begin_group_exit(ExitStatus::Signaled(signal::SIGKILL));
                return ExitStatus::Signaled(signal::SIGKILL);
            }
        }
    }

    /// Runs the task, then ends it; returns its process's status if it was
    /// the process's last thread.
    pub fn run_to_exit(mut self) -> Option<ExitStatus> {
        let status = self.run();
        self.exit_task(status)
    }

    /// Starts the exit of the whole process with `status` (exit_group, a
    /// fatal signal): every other thread is told to exit. The first status
    /// wins.
    pub fn begin_group_exit(&mut self, status: ExitStatus) {
        let group = self.group().clone();
        group.state().group_exit.get_or_insert(status);
        group.doom_others(self.tid);
        self.kernel.events.notify();
    }

    /// The guest thread's FP state.
    pub fn ctx_fp_state(&mut self) -> Result<Vec<u8>, platform::Error> {
        self.ctx.fp_state(self.mm.space())
    }

    /// The call being served will take a while (a large copy): the
    /// platform may get the guest thread ready to run meanwhile.
    pub fn wake_early(&mut self) {
        self.ctx.wake_early(self.mm.space());
    }

    /// Loads the guest thread's FP state.
    pub fn set_ctx_fp_state(&mut self, state: &[u8]) -> Result<(), platform::Error> {
        self.ctx.set_fp_state(self.mm.space(), state)
    }

    /// What closing fds does besides dropping them (Linux's filp_close):
    /// each file is flushed for this process.
    pub fn flush_closed(&self, closed: impl IntoIterator<Item = crate::vfs::fd_table::FdEntry>) {
        let group = self.group();
        for e in closed {
            e.file.flush(group);
        }
    }

    /// Blocks until `ready` yields a value, a signal needs handling
    /// (ERESTARTSYS), or `deadline` passes (ETIMEDOUT).
    pub fn block_on<T>(&self, deadline: Option<Instant>, mut ready: impl FnMut() -> Option<T>) -> Result<T, Errno> {
        loop {
            let seen = self.kernel.events.generation();
            if let Some(v) = ready() {
                return Ok(v);
            }
            if self.has_deliverable_signal() {
                return Err(crate::syscalls::ERESTARTSYS);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Errno::ETIMEDOUT);
            }
            self.kernel.events.wait(seen, deadline);
        }
    }

    /// `fork`, `vfork` and `clone`: a new process, or a new thread of this
    /// one (CLONE_THREAD). Returns the child's id, and its id in this
    /// task's namespace (its own).
    pub fn fork(&mut self, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> Result<(i32, i32), Errno> {
        use syscalls::flags::clone::*;
        let thread = flags & CLONE_THREAD != 0;
        if (thread && flags & CLONE_SIGHAND == 0) || (flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0) {
            return Err(Errno::EINVAL);
        }
        let vfork = flags & CLONE_VFORK != 0;
        let done = Arc::new(AtomicBool::new(false));
        let nproc = self.rlimits[rlimit::RLIMIT_NPROC as usize].rlim_cur;
        // The init of a namespace has no parent there to share.
        if flags & CLONE_PARENT != 0 && self.group().is_ns_init() {
            return Err(Errno::EINVAL);
        }
        let live = {
            let pids = self.kernel.pids();
            // Zombies count until reaped (as the pids cgroup counts them),
            // so a parent that never waits cannot pile them up.
            let zombies = pids.groups.values().filter(|g| g.state().exit.is_some()).count();
            (pids.tasks.len() + zombies) as u64
        };
        // Every task costs a host thread and a stub thread: a sandbox-wide
        // cap (which root cannot lift, unlike RLIMIT_NPROC) keeps a fork bomb
        // from exhausting the host.
        if live >= self.kernel.max_tasks() || (live >= nproc && self.creds.uid != 0) {
            return Err(Errno::EAGAIN);
        }
        // Everything that can fail comes before the child is registered.
        let fp = self.ctx_fp_state().map_err(|e| {
            tracing::warn!(target: "sentry::task", "reading the parent's FP state: {e}");
            Errno::ENOMEM
        })?;
        let mm = if flags & CLONE_VM != 0 {
            let pending = self.mm.space().new_thread().map_err(|e| {
                tracing::warn!(target: "sentry::task", "starting a stub thread: {e}");
                Errno::EAGAIN
            })?;
            ChildMemory::Shared(self.mm.handle(), pending)
        } else {
            let copy = self.mm.lock().fork();
            // The parent's writable private pages must fault (and copy)
            // before any of its threads writes again.
            self.mm.sync();
            ChildMemory::Copied(copy)
        };
        let mut regs = self.regs;
        regs.0.rax = 0;
        if stack != 0 {
            regs.0.rsp = stack;
        }
        if flags & CLONE_SETTLS != 0 {
            regs.0.fs_base = tls;
        }
        let (tid, vtid) = {
            let mut pids = self.kernel.pids();
            let ns = self.group().pidns;
            // A namespace whose init is gone takes no new process.
            pids.alloc(ns).ok_or(if pids.ended(ns) { Errno::ENOMEM } else { Errno::EAGAIN })?
        };
        let (group, parent_group) = if thread {
            (self.group().clone(), None)
        } else {
            let parent_group = if flags & CLONE_PARENT != 0 {
                self.group().state().parent.clone().unwrap_or_else(|| self.group().clone())
            } else {
                self.group().clone()
            };
            let (pgid, sid) = {
                let st = self.group().state();
                (st.pgid, st.sid)
            };
            let actions = *self.group().actions();
            let me = self.group();
            let ns = (me.pidns, vtid);
            let group = ThreadGroup::new(tid, me.container, ns, Some(parent_group.clone()), pgid, sid, actions);
            group.oom_score_adj.store(
                parent_group.oom_score_adj.load(std::sync::atomic::Ordering::Relaxed),
                std::sync::atomic::Ordering::Relaxed,
            );
            group.state().exit_signal = (flags & CSIGNAL) as i32;
            (group, Some(parent_group))
        };
        let shared = TaskShared::new((tid, vtid), group.clone());
        {
            let mut st = group.state();
            if thread && (st.group_exit.is_some() || st.threads.is_empty()) {
                // The process is exiting: no new threads.
                drop(st);
                self.kernel.pids().forget(tid);
                return Err(Errno::EAGAIN);
            }
            st.threads.push(shared.clone());
        }
        {
            let mut pids = self.kernel.pids();
            pids.tasks.insert(tid, shared.clone());
            if !thread {
                pids.groups.insert(tid, group.clone());
            }
        }
        if let Some(p) = &parent_group {
            p.state().children.push(group.clone());
        }
        if flags & CLONE_PARENT_SETTID != 0 {
            // As on Linux, a bad pointer here does not undo the fork.
            let _ = self.write_obj(ptid, &vtid);
        }
        let mut signals = SignalState { mask: self.signals.mask, altstack: self.signals.altstack, saved_mask: None };
        if flags & CLONE_VM != 0 && !vfork {
            // A thread (or CLONE_VM child) must not share the parent's
            // alternate stack.
            signals.altstack = SignalState::default().altstack;
        }
        let child = ForkedTask {
            kernel: self.kernel.clone(),
            tid,
            shared,
            regs,
            fp,
            mm,
            fds: if flags & CLONE_FILES != 0 { self.fds.share() } else { self.fds.copy() },
            fs: if flags & CLONE_FS != 0 { self.fs.clone() } else { Arc::new(Mutex::new(self.fs().clone())) },
            creds: self.creds.clone(),
            signals,
            rlimits: self.rlimits,
            comm: self.comm_now(),
            clear_child_tid: if flags & CLONE_CHILD_CLEARTID != 0 { ctid } else { 0 },
            child_settid: if flags & CLONE_CHILD_SETTID != 0 { ctid } else { 0 },
            affinity: self.affinity.clone(),
            exe: self.exe.clone(),
            vfork_release: vfork.then(|| done.clone()),
        };
        let name = format!("task-{tid}");
        if let Err(e) = std::thread::Builder::new().name(name).spawn(move || child.start()) {
            tracing::warn!(target: "sentry::task", "starting a task thread: {e}");
            let mut pids = self.kernel.pids();
            pids.remove_task(tid);
            pids.remove_group(tid);
            drop(pids);
            group.state().threads.retain(|t| t.tid() != tid);
            if let Some(p) = &parent_group {
                p.state().children.retain(|c| c.pid != tid);
            }
            return Err(Errno::EAGAIN);
        }
        if vfork {
            // The parent sleeps until the child execs or exits (signals
            // wait too, as on Linux, but not the end of the process).
            loop {
                let seen = self.kernel.events.generation();
                if done.load(Ordering::SeqCst) || self.shared.doomed() {
                    break;
                }
                self.kernel.events.wait(seen, None);
            }
        }
        Ok((tid, vtid))
    }

    /// execve's de_thread: every other thread of the process exits, and
    /// this one takes over the process's id if it had another.
    pub fn de_thread(&mut self) -> Result<(), Errno> {
        let group = self.group().clone();
        if group.state().threads.len() > 1 {
            group.doom_others(self.tid);
            self.kernel.events.notify();
            loop {
                let seen = self.kernel.events.generation();
                if group.state().threads.len() == 1 {
                    break;
                }
                if self.shared.doomed() {
                    // Another thread ended the process meanwhile.
                    return Err(Errno::EINTR);
                }
                self.kernel.events.wait(seen, None);
            }
        }
        if group.state().group_exit.is_some() {
            return Err(Errno::EINTR);
        }
        if self.tid != group.pid {
            let mut pids = self.kernel.pids();
            pids.tasks.insert(group.pid, self.shared.clone());
            pids.remove_task(self.tid);
            drop(pids);
            self.tid = group.pid;
            self.shared.take_group_ids();
            group.state().leader_exit = None;
        }
        Ok(())
    }

    /// What a task leaving its address space (exit, exec) owes the threads
    /// it shares it with, as Linux's mm_release: robust futexes released,
    /// the CLONE_CHILD_CLEARTID word zeroed and its waiter woken.
    pub fn release_memory_hooks(&mut self) {
        self.release_robust_futexes();
        let ctid = std::mem::take(&mut self.clear_child_tid);
        if ctid != 0 && self.mm.copy_out(ctid, &0i32.to_le_bytes()).is_ok() {
            if let Ok(key) = self.futex_key(ctid, false) {
                let _ = self.kernel.futexes.wake(self, key, 1, crate::futex::FUTEX_BITSET_MATCH_ANY);
            }
        }
    }

    /// Lets a vfork parent go on (the child exec'd or is exiting).
    pub fn release_vfork_parent(&mut self) {
        if let Some(done) = self.vfork_release.take() {
            done.store(true, Ordering::SeqCst);
            self.kernel.events.notify();
        }
    }

    /// Ends the task: wakes a vfork parent and a CLONE_CHILD_CLEARTID
    /// waiter, releases robust futexes, leaves the thread group. Returns
    /// the process's status when this was its last thread (the process
    /// then exits).
    pub fn exit_task(&mut self, status: ExitStatus) -> Option<ExitStatus> {
        self.release_vfork_parent();
        self.release_memory_hooks();
        // /proc's view shares the fd table: it goes first.
        *self.shared.view() = crate::process::ProcView::default();
        // Files close when the last task sharing the table lets go.
        let closed = std::mem::take(&mut self.fds).close_if_last();
        self.flush_closed(closed);
        let group = self.group().clone();
        let process_status = {
            let mut st = group.state();
            st.threads.retain(|t| !Arc::ptr_eq(t, &self.shared));
            if self.tid == group.pid && st.group_exit.is_none() {
                st.leader_exit = Some(status);
            }
            st.threads.is_empty().then(|| st.group_exit.or(st.leader_exit).unwrap_or(status))
        };
        {
            // Unless an exec'ing thread has already taken over this id.
            let mut pids = self.kernel.pids();
            if pids.tasks.get(&self.tid).is_some_and(|t| Arc::ptr_eq(t, &self.shared)) {
                pids.remove_task(self.tid);
            }
        }
        self.shared.set_stub((0, 0));
        match process_status {
            Some(s) => self.exit_process(s),
            None => self.kernel.events.notify(),
        }
        process_status
    }

    /// Ends the task's process with `status` (its last thread is gone):
    /// hands its children to init, and tells its parent.
    fn exit_process(&mut self, status: ExitStatus) {
        let group = self.group().clone();
        crate::vfs::lock::locks().release(crate::vfs::lock::Owner::Process(group.pid), None);
        group.cancel_timers();
        let cpu = self.mm.cpu_clock().and_then(crate::timer::cpu_now).unwrap_or_default();
        if group.state().sid == group.pid {
            crate::tty::session_leader_exited(&self.kernel, group.pid);
        }
        let (children, parent, exit_signal) = {
            let mut st = group.state();
            st.cpu_time = cpu;
            st.stopped = None;
            group.stop_flag.store(false, Ordering::SeqCst);
            st.exit = Some(status);
            (std::mem::take(&mut st.children), st.parent.clone(), st.exit_signal)
        };
        // Orphans go to their namespace's init. When a child namespace's
        // init ends, so does the namespace (Linux's zap_pid_ns_processes):
        // every process left in it is killed, and nobody reaps them.
        let adopter = if group.is_ns_init() { None } else { self.kernel.pids().init_of(group.pidns) };
        if group.is_ns_init() && !group.pidns.is_root() {
            Task::kill_namespace(&self.kernel, group.pidns);
        }
        // An init that is exiting itself adopts nobody (it has taken its
        // children already): its parent's lock, then each child's.
        let adopter = adopter.filter(|init| {
            let mut st = init.state();
            if st.exit.is_some() {
                return false;
            }
            for c in &children {
                c.state().parent = Some(init.clone());
            }
            st.children.extend(children.iter().cloned());
            true
        });
        match adopter {
            Some(init) => {
                if let Some(z) = children.iter().find(|c| c.state().exit.is_some()) {
                    notify_parent(&self.kernel, &init, signal::SIGCHLD, z, 0);
                }
            }
            None => {
                for c in &children {
                    let zombie = {
                        let mut st = c.state();
                        st.parent = None;
                        st.exit.is_some()
                    };
                    if zombie {
                        self.kernel.pids().remove_group(c.pid);
                    }
                }
            }
        }
        if let Some(parent) = parent {
            let autoreap = {
                let a = parent.actions()[(signal::SIGCHLD - 1) as usize];
                a.handler == sa::SIG_IGN || a.flags & sa::SA_NOCLDWAIT != 0
            };
            if autoreap && exit_signal == signal::SIGCHLD {
                parent.state().children.retain(|c| !Arc::ptr_eq(c, &group));
                self.kernel.pids().remove_group(group.pid);
            } else {
                notify_parent(&self.kernel, &parent, exit_signal, &group, self.creds.uid);
            }
        } else {
            self.kernel.pids().remove_group(group.pid);
        }
        self.kernel.events.notify();
    }

    /// Kills every process of a child PID namespace (its init is gone).
    pub fn kill_namespace(kernel: &Kernel, ns: crate::kernel::PidNs) {
        let tasks: Vec<Arc<TaskShared>> = {
            // No fork there gets an id from now on, so none escapes.
            let mut pids = kernel.pids();
            pids.end_namespace(ns);
            pids.tasks.values().filter(|t| t.group.pidns == ns).cloned().collect()
        };
        for t in tasks {
            t.group.send(user_info(signal::SIGKILL, sa::SI_KERNEL, 0, 0));
        }
        kernel.events.notify();
    }

    /// Sends `sig` to every process but init: the container is ending.
    pub fn kill_all(kernel: &Kernel) {
        let tasks: Vec<Arc<TaskShared>> = kernel.pids().tasks.values().cloned().collect();
        for t in tasks {
            if t.group.pid != 1 {
                t.group.send(user_info(signal::SIGKILL, sa::SI_KERNEL, 0, 0));
            }
        }
        kernel.events.notify();
    }

    /// A resolver starting at `dirfd` (or the cwd for AT_FDCWD).
    pub fn start_dir(&self, dirfd: i32, path: &[u8]) -> Result<Arc<Dentry>, Errno> {
        if path.first() == Some(&b'/') || dirfd == syscalls::flags::AT_FDCWD {
            return Ok(self.fs().cwd.clone());
        }
        let f = self.fds.get(dirfd)?;
        let d = f.dentry.clone().ok_or(Errno::ENOTDIR)?;
        if !d.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(d)
    }

    /// Resolves `path` relative to `dirfd`.
    pub fn lookup(&self, dirfd: i32, path: &[u8], follow: bool) -> Result<Arc<Dentry>, Errno> {
        let start = self.start_dir(dirfd, path)?;
        let root = self.fs().root.clone();
        Resolver::new(&root, &start).resolve(path, follow)
    }

    /// The root and start directory of a walk of `path` from `dirfd` under
    /// openat2's restrictions: a scoped walk starts at `dirfd` even for an
    /// absolute path, and RESOLVE_IN_ROOT makes that its root too.
    pub fn walk_bounds(
        &self,
        dirfd: i32,
        path: &[u8],
        r: crate::vfs::Restrict,
    ) -> Result<(Arc<Dentry>, Arc<Dentry>), Errno> {
        let start = if r.scoped { self.start_dir(dirfd, b"")? } else { self.start_dir(dirfd, path)? };
        let root = if r.in_root { start.clone() } else { self.fs().root.clone() };
        Ok((root, start))
    }

    /// Resolves `path` relative to `dirfd` under openat2's restrictions.
    pub fn lookup_restricted(
        &self,
        dirfd: i32,
        path: &[u8],
        follow: bool,
        r: crate::vfs::Restrict,
    ) -> Result<Arc<Dentry>, Errno> {
        let (root, start) = self.walk_bounds(dirfd, path, r)?;
        Resolver { root: &root, start: &start, restrict: r }.resolve(path, follow)
    }

    /// The fd limit (RLIMIT_NOFILE).
    pub fn nofile(&self) -> u64 {
        self.rlimits[rlimit::RLIMIT_NOFILE as usize].rlim_cur
    }
}

fn is_synchronous(signo: i32) -> bool {
    matches!(
        signo,
        signal::SIGSEGV | signal::SIGBUS | signal::SIGFPE | signal::SIGILL | signal::SIGTRAP | signal::SIGSYS
    )
}

fn host_status_flags(fd: &OwnedFd) -> u32 {
    match nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(fd), nix::fcntl::FcntlArg::F_GETFL) {
        Ok(fl) => (fl as u32) & !OpenFlags::O_CLOEXEC.bits(),
        Err(_) => OpenFlags::O_RDWR.bits(),
    }
}

fn host_rlimit(res: u32) -> Result<(u64, u64), Errno> {
    use nix::sys::resource::{getrlimit, Resource};
    let r = match res {
        rlimit::RLIMIT_CPU => Resource::RLIMIT_CPU,
        rlimit::RLIMIT_FSIZE => Resource::RLIMIT_FSIZE,
        rlimit::RLIMIT_DATA => Resource::RLIMIT_DATA,
        rlimit::RLIMIT_STACK => Resource::RLIMIT_STACK,
        rlimit::RLIMIT_CORE => Resource::RLIMIT_CORE,
        rlimit::RLIMIT_NPROC => Resource::RLIMIT_NPROC,
        rlimit::RLIMIT_NOFILE => Resource::RLIMIT_NOFILE,
        rlimit::RLIMIT_MEMLOCK => Resource::RLIMIT_MEMLOCK,
        rlimit::RLIMIT_AS => Resource::RLIMIT_AS,
        _ => return Err(Errno::EINVAL),
    };
    getrlimit(r).map_err(|e| Errno::from_raw(e as i32))
}

/// Tells `parent` that a child changed state: its exit signal, and a wake-up
/// for waiters.
fn notify_parent(kernel: &Kernel, parent: &Arc<ThreadGroup>, sig: i32, child: &ThreadGroup, uid: u32) {
    if sig > 0 && parent.state().exit.is_none() {
        // No core is ever dumped: CLD_KILLED for core signals too.
        let (code, status) = match child.state().exit {
            Some(ExitStatus::Signaled(s)) => (sa::CLD_KILLED, s),
            Some(ExitStatus::Exited(c)) => (sa::CLD_EXITED, c),
            None => (sa::CLD_EXITED, 0),
        };
        let mut info = user_info(sig, code, child.vpid, uid);
        info.fields[1] = u64::from(status as u32);
        parent.send(info);
    }
    kernel.events.notify();
}

impl ForkedTask {
    /// The child's host thread: its handle on its address space, then the
    /// guest.
    fn start(self) {
        let kernel = self.kernel.clone();
        let mm = match self.mm {
            ChildMemory::Shared(handle, pending) => pending.attach().map(|space| TaskMemory::attach(handle, space)),
            ChildMemory::Copied(mm) => kernel.platform.new_address_space().map(|space| TaskMemory::new(mm, space)),
        };
        let mm = match mm {
            Ok(mm) => mm,
            Err(e) => {
                tracing::error!(target: "sentry::task", tid = self.tid, "creating the child's address space: {e}");
                if let Some(done) = &self.vfork_release {
                    done.store(true, Ordering::SeqCst);
                }
                // The child dies before running: a process as if SIGKILLed,
                // a thread with its whole process.
                let group = self.shared.group.clone();
                let killed = ExitStatus::Signaled(signal::SIGKILL);
                group.state().group_exit.get_or_insert(killed);
                group.doom_others(self.tid);
                let last = {
                    let mut st = group.state();
                    st.threads.retain(|t| !Arc::ptr_eq(t, &self.shared));
                    st.threads.is_empty()
                };
                kernel.pids().remove_task(self.tid);
                if last {
                    group.state().exit = Some(killed);
                    let parent = group.state().parent.clone();
                    if let Some(parent) = parent {
                        notify_parent(&kernel, &parent, signal::SIGCHLD, &group, self.creds.uid);
                    }
                }
                kernel.events.notify();
                return;
            }
        };
        self.shared.set_stub(mm.host_ids());
        let mut t = Task {
            kernel: kernel.clone(),
            tid: self.tid,
            shared: self.shared,
            regs: self.regs,
            mm,
            ctx: kernel.platform.new_context(),
            fds: self.fds,
            fs: self.fs,
            creds: self.creds,
            secure_exec: false,
            signals: self.signals,
            rlimits: self.rlimits,
            comm: self.comm,
            clear_child_tid: self.clear_child_tid,
            robust_list: (0, 0),
            guest_time: std::time::Duration::ZERO,
            affinity: self.affinity,
            exe: self.exe,
            exit: None,
            restart: None,
            restart_block: None,
            vfork_release: self.vfork_release,
        };
        if t.set_ctx_fp_state(&self.fp).is_err() {
            tracing::warn!(target: "sentry::task", tid = t.tid, "could not copy the parent's FP state");
        }
        if self.child_settid != 0 {
            let _ = t.write_obj(self.child_settid, &t.vtid());
        }
        t.publish();
        t.run_to_exit();
    }
}
