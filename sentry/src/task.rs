//! A task: one guest thread, and the loop that runs it.
use std::os::fd::OwnedFd;
use std::sync::Arc;

use platform::{Context, Event, Registers};
use syscalls::flags::sa;
use syscalls::flags::{rlimit, signal, OpenFlags};
use syscalls::structs::Rlimit;
use syscalls::Errno;

use crate::config::BootConfig;
use crate::kernel::Kernel;
use crate::mm::{MemoryManager, TaskMemory};
use crate::signal::{fault_info, SignalState};
use crate::vfs::{Dentry, FdTable, File, FileKind, Resolver};
use crate::BootError;

/// How a task (and so the sandbox's init) ended.
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
}

/// User and group ids.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub groups: Vec<u32>,
}

/// Root, cwd and umask.
pub struct FsContext {
    pub root: Arc<Dentry>,
    pub cwd: Arc<Dentry>,
    pub umask: u32,
}

/// One guest thread.
pub struct Task {
    pub kernel: Arc<Kernel>,
    pub tid: i32,
    pub regs: Registers,
    pub mm: TaskMemory,
    ctx: Box<dyn Context>,
    pub fds: FdTable,
    pub fs: FsContext,
    pub creds: Credentials,
    pub signals: SignalState,
    pub rlimits: [Rlimit; 16],
    pub comm: [u8; 16],
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    pub exit: Option<ExitStatus>,
}

impl Task {
    /// The container's first process: stdio from the host, the program
    /// loaded from the root file system.
    pub fn new_init(kernel: Arc<Kernel>, cfg: &BootConfig, stdio: [OwnedFd; 3]) -> Result<Task, BootError> {
        let space = kernel.platform.new_address_space()?;
        let max = kernel.platform.max_user_address();
        let mm = TaskMemory::new(MemoryManager::new(kernel.memory.clone(), max), space);
        let mut fds = FdTable::default();
        for (i, fd) in stdio.into_iter().enumerate() {
            let flags = host_access_mode(&fd);
            fds.install(i as i32, File::new(FileKind::Host(fd), flags, None), false, 3)
                .map_err(|e| BootError::Exec { msg: format!("installing stdio: {e}"), code: 1 })?;
        }
        let root = kernel.root.clone();
        let cwd = Resolver { root: &root, start: &root }
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
        let ctx = kernel.platform.new_context();
        let mut task = Task {
            kernel,
            tid: 1,
            regs: Registers::zeroed(),
            mm,
            ctx,
            fds,
            fs: FsContext { root, cwd, umask: 0o022 },
            creds: Credentials {
                uid: cfg.uid,
                euid: cfg.uid,
                suid: cfg.uid,
                gid: cfg.gid,
                egid: cfg.gid,
                sgid: cfg.gid,
                groups: cfg.additional_gids.clone(),
            },
            signals: SignalState::default(),
            rlimits,
            comm: [0; 16],
            clear_child_tid: 0,
            robust_list: (0, 0),
            exit: None,
        };
        crate::loader::exec_first(&mut task, &cfg.args, &cfg.env)?;
        Ok(task)
    }

    /// Runs the task until it exits.
    pub fn run(&mut self) -> ExitStatus {
        loop {
            if let Some(status) = self.deliver_signals() {
                return status;
            }
            self.mm.sync();
            let event = match self.ctx.switch(self.mm.space(), &mut self.regs) {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::error!(target: "sentry::task", tid = self.tid, "platform failure: {e}");
                    return ExitStatus::Signaled(signal::SIGKILL);
                }
            };
            match event {
                Event::Syscall => {
                    crate::syscalls::handle(self);
                    if let Some(status) = self.exit {
                        return status;
                    }
                }
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
                    } else {
                        tracing::debug!(target: "sentry::task", "host signal {} to the stub ignored", s.signo);
                    }
                }
                Event::Died(sig) => {
                    tracing::error!(target: "sentry::task", tid = self.tid, "stub died ({sig})");
                    return ExitStatus::Signaled(signal::SIGKILL);
                }
            }
            if self.mm.broken() {
                return ExitStatus::Signaled(signal::SIGKILL);
            }
        }
    }

    /// The guest thread's FP state.
    pub fn ctx_fp_state(&mut self) -> Result<Vec<u8>, platform::Error> {
        self.ctx.fp_state(self.mm.space())
    }

    /// Loads the guest thread's FP state.
    pub fn set_ctx_fp_state(&mut self, state: &[u8]) -> Result<(), platform::Error> {
        self.ctx.set_fp_state(self.mm.space(), state)
    }

    /// A resolver starting at `dirfd` (or the cwd for AT_FDCWD).
    pub fn start_dir(&self, dirfd: i32, path: &[u8]) -> Result<Arc<Dentry>, Errno> {
        if path.first() == Some(&b'/') || dirfd == syscalls::flags::AT_FDCWD {
            return Ok(self.fs.cwd.clone());
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
        Resolver { root: &self.fs.root, start: &start }.resolve(path, follow)
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

fn host_access_mode(fd: &OwnedFd) -> u32 {
    match nix::fcntl::fcntl(std::os::fd::AsRawFd::as_raw_fd(fd), nix::fcntl::FcntlArg::F_GETFL) {
        Ok(fl) => (fl as u32) & (OpenFlags::O_ACCMODE | OpenFlags::O_APPEND.bits()),
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
