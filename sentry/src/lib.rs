//! The sentry: Cordon's kernel in user space (DESIGN.md §3). It owns every
//! guest object — tasks, memory, files — and serves each system call the
//! platform traps.
#![deny(unsafe_code)]

pub mod config;
pub mod console;
mod container;
pub mod control;
pub mod creds;
pub mod futex;
mod host; // raw host calls on stdio (unsafe, justified there)
pub mod kernel;
pub mod loader;
pub mod mm; // mm::memory_file maps guest memory (unsafe, justified there)
pub mod mqueue;
pub mod pipe;
pub mod process;
pub mod signal;
pub mod syscalls;
pub mod task;
pub mod timer;
pub mod tty;
pub mod vfs;

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

pub use config::BootConfig;
pub use host::exit_by_signal;
use kernel::Kernel;
use task::{ExitStatus, Task};

/// Size of the sparse memory file's offset space.
const MEMORY_FILE_SIZE: u64 = 1 << 38;

/// Why the sandbox could not start the container's process.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    MemoryFile(#[from] mm::memory_file::MemoryFileError),
    #[error("platform: {0}")]
    Platform(#[from] platform::Error),
    #[error("mounting the root file system from the gofer: {0}")]
    Mount(::syscalls::Errno),
    #[error("{msg}")]
    Exec { msg: String, code: i32 },
}

impl BootError {
    /// The exit status a runtime reports for this failure (127 for a
    /// missing executable, 126 for one that cannot run, like a shell).
    pub fn exit_code(&self) -> i32 {
        match self {
            BootError::Exec { code, .. } => *code,
            _ => 1,
        }
    }
}

/// Blocks the host signals the sandbox forwards (see
/// [`forward_host_signals`]), in this thread before any other exists, so
/// that every sentry thread inherits the mask and only the forwarding
/// thread takes them.
fn block_forwarded_signals() -> Option<nix::sys::signal::SigSet> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    match set.thread_block() {
        Ok(()) => Some(set),
        Err(e) => {
            tracing::warn!(target: "sentry::signal", "cannot block host signals for forwarding: {e}");
            None
        }
    }
}

/// Signals sent to the sandbox from outside (by `cordon run` forwarding
/// what it got, `cordon kill`, a supervisor) go to the container's init, as
/// runc's do: a host thread waits for them and queues them to pid 1.
fn forward_host_signals(
    kernel: &Arc<Kernel>,
    set: Option<nix::sys::signal::SigSet>,
    console: Option<Arc<console::HostConsole>>,
) {
    use nix::sys::signal::Signal;
    let Some(set) = set else { return };
    let kernel = kernel.clone();
    let spawned = std::thread::Builder::new().name("host-signals".into()).spawn(move || {
        while let Ok(sig) = set.wait() {
            // With a console, the host pty's size changed (the sentry is
            // the session leader it is the controlling terminal of).
            if let (Signal::SIGWINCH, Some(c)) = (sig, &console) {
                c.refresh_winsize(&kernel);
                continue;
            }
            let init = kernel.pids().tasks.get(&1).cloned();
            if let Some(init) = init {
                init.queue(signal::user_info(sig as i32, ::syscalls::flags::sa::SI_USER, 0, 0));
                init.interrupt();
                kernel.events.notify();
            }
        }
    });
    if spawned.is_err() {
        tracing::warn!(target: "sentry::signal", "cannot start the host signal thread");
    }
}

/// Size of a tmpfs whose options give none (Linux: half of RAM).
pub(crate) const DEFAULT_TMPFS_SIZE: u64 = 1 << 30;

/// Boots the sandbox: mounts the root from the gofer, loads the container's
/// first process and runs it to the end on this thread.
/// How the sandbox is driven from outside once it runs.
pub struct ControlOptions {
    /// The listening control socket (see [`control`]).
    pub listener: OwnedFd,
    /// Hold init until a `Start` request (`cordon create`).
    pub wait_for_start: bool,
}

pub fn boot(
    cfg: BootConfig,
    gofer_sock: OwnedFd,
    stdio: [OwnedFd; 3],
    control: Option<ControlOptions>,
    ready: impl FnOnce(),
) -> Result<ExitStatus, BootError> {
    // Whatever the caller blocked is not ours to keep blocked.
    let _ = nix::sys::signal::SigSet::all().thread_unblock();
    let forwarded = block_forwarded_signals();
    // The stub page's fixed address must be claimed before the memory file's
    // large mapping can take it.
    platform::ptrace::prepare()?;
    let memory = Arc::new(mm::MemoryFile::new(MEMORY_FILE_SIZE)?);
    let systrap = cfg.platform == "systrap";
    let platform = Box::new(platform::ptrace::PtracePlatform::new(memory.raw_fd(), systrap)?);
    let events: Arc<kernel::EventQueue> = Default::default();
    let ncpus = std::thread::available_parallelism().map_or(1, |n| n.get()).min(1024);
    let mqueues = mqueue::MqueueNamespace::new(memory.clone(), events.clone()).map_err(BootError::Mount)?;
    let kernel = Arc::new(Kernel {
        platform,
        file_cache: vfs::tmpfs::Tmpfs::new(memory.clone(), DEFAULT_TMPFS_SIZE),
        max_mounts: 100_000,
        memory,
        hostname: cfg.hostname.clone().into_bytes(),
        boot_time: Instant::now(),
        strace: cfg.strace,
        pids: Default::default(),
        wakeups: kernel::Wakeups::new(events.clone()),
        ncpus,
        mqueues,
        events,
        futexes: Default::default(),
        max_tasks: cfg.pids_limit.unwrap_or(kernel::DEFAULT_MAX_TASKS).into(),
        frozen: false.into(),
    });
    let fs = kernel::ContainerFs::build(&kernel, &cfg, kernel::PidNs::ROOT, gofer_sock, &mut |n| {
        gofer::fd::take_inherited(n).ok()
    })?;
    vfs::lock::locks().set_events(kernel.events.clone());
    let (stdio, console) = console::process_stdio(&kernel, &cfg.process, stdio)?;
    let task = Task::new_process(kernel.clone(), (0, kernel::PidNs::ROOT), &fs, &cfg.process, stdio)?;
    let init = task.group().clone();
    forward_host_signals(&kernel, forwarded, console.clone());
    let wait_for_start = control.as_ref().is_some_and(|c| c.wait_for_start);
    let server = control::Control::new(kernel.clone(), fs, init.clone(), wait_for_start);
    if let Some(c) = control {
        server.serve(c.listener);
    }
    ready();
    if let Err(status) = server.wait_for_start() {
        server.stopped(status);
        server.settle(Instant::now() + std::time::Duration::from_secs(1));
        return Ok(status);
    }
    // The console's size may have been set while init waited.
    if let Some(c) = &console {
        c.refresh_winsize(&kernel);
    }
    // This thread runs init's first thread, then waits for init's others.
    let status = match task.run_to_exit() {
        Some(status) => status,
        None => loop {
            let seen = kernel.events.generation();
            if let Some(status) = init.state().exit {
                break status;
            }
            kernel.events.wait(seen, None);
        },
    };
    server.stopped(status);
    // The container ends with its init: every other process is killed,
    // and has a moment to go (so that exec'd processes report their end).
    Task::kill_all(&kernel);
    let deadline = Instant::now() + std::time::Duration::from_secs(2);
    while Instant::now() < deadline {
        let seen = kernel.events.generation();
        if kernel.pids().groups.values().all(|g| g.state().exit.is_some()) {
            break;
        }
        kernel.events.wait(seen, Some(deadline));
    }
    if let Some(c) = console {
        c.flush(Instant::now() + std::time::Duration::from_secs(1));
    }
    server.settle(Instant::now() + std::time::Duration::from_secs(1));
    Ok(status)
}
