//! The sentry: Cordon's kernel in user space (DESIGN.md §3). It owns every
//! guest object — tasks, memory, files — and serves each system call the
//! platform traps.
#![deny(unsafe_code)]

pub mod config;
pub mod console;
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

/// Size of /dev/shm when the spec mounts none (as Docker's default).
const DEFAULT_SHM_SIZE: u64 = 64 << 20;
/// Size of a tmpfs whose options give none (Linux: half of RAM).
const DEFAULT_TMPFS_SIZE: u64 = 1 << 30;

/// The sandbox's own file systems: /dev/shm (a tmpfs, always), then the
/// spec's mounts in order. tmpfs, proc, sysfs, cgroup, mqueue and bind
/// mounts are served; /dev is the sentry's devfs whatever the spec says;
/// other types are logged and skipped. Returns the mount table.
fn mount_filesystems(
    root: &Arc<vfs::Dentry>,
    memory: &Arc<mm::MemoryFile>,
    mounts: &[config::MountConfig],
    (readonly, overlay): (bool, bool),
    kernel: &vfs::procfs::KernelSlot,
    ncpus: usize,
    mqueues: &mqueue::MqueueNamespace,
) -> Vec<kernel::MountInfo> {
    let info = |path: &str, fstype: &str, options: &str| kernel::MountInfo {
        id: 0,
        parent: 0,
        dev: 0,
        path: path.into(),
        fstype: fstype.into(),
        source: if fstype == "9p" || fstype == "overlay" { "none".into() } else { fstype.into() },
        options: options.into(),
    };
    let mut table = vec![
        match (readonly, overlay) {
            (true, _) => info("/", "9p", "ro"),
            (false, true) => info("/", "overlay", "rw"),
            (false, false) => info("/", "9p", "rw"),
        },
        info("/dev", "tmpfs", "rw,nosuid,mode=755"),
    ];
    let resolve = |path: &str| vfs::Resolver::new(root, root).resolve_parent(path.as_bytes());
    if let Ok((dev, _)) = resolve("/dev/shm") {
        if let Some(fs) = dev.mount_tmpfs(b"shm", memory.clone(), DEFAULT_SHM_SIZE, 0o1777) {
            fs.nosuid.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        table.push(info("/dev/shm", "tmpfs", "rw,nosuid,nodev,size=65536k,mode=1777"));
    }
    for m in mounts {
        // /proc/mounts names a mount by the spec's source, as Linux does.
        let info = |path: &str, fstype: &str, options: &str| {
            let mut e = info(path, fstype, options);
            if !m.source.is_empty() && fstype != "9p" {
                e.source = m.source.clone();
            }
            e
        };
        // A single file's mount point: its directory, and a name there.
        let file_target = || match resolve(&m.destination) {
            Ok((dir, name)) if dir.is_dir() && !name.is_empty() && name != b"/" => Some((dir.crossed_root(), name)),
            _ => {
                tracing::warn!(target: "sentry::vfs", "bind mount of a file at {}: no such directory", m.destination);
                None
            }
        };
        let target = || match resolve(&m.destination) {
            Ok((dir, name)) if dir.is_dir() && !name.is_empty() && name != b"/" => Some((dir, name)),
            _ => {
                tracing::warn!(target: "sentry::vfs", "{} mount at {}: no such directory", m.kind, m.destination);
                None
            }
        };
        match m.kind.as_str() {
            "tmpfs" if m.destination == "/dev" => {}
            "tmpfs" => {
                let (limit, mode) = vfs::tmpfs::parse_options(&m.options, DEFAULT_TMPFS_SIZE, 0o1777);
                if let Some((dir, name)) = target() {
                    let fs = dir.mount_tmpfs(&name, memory.clone(), limit, mode);
                    let has = |o: &str| m.options.iter().any(|x| x == o);
                    if let Some(fs) = fs {
                        fs.nosuid.store(has("nosuid"), std::sync::atomic::Ordering::Relaxed);
                        fs.readonly.store(has("ro"), std::sync::atomic::Ordering::Relaxed);
                    }
                    let opts = format!("rw,size={}k,mode={mode:o}", limit / 1024);
                    table.retain(|e| e.path != m.destination);
                    table.push(info(&m.destination, "tmpfs", &opts));
                }
            }
            "proc" => {
                if let Some((dir, name)) = target() {
                    dir.mount_synthetic(&name, vfs::procfs::new_procfs(kernel.clone()));
                    table.push(info(&m.destination, "proc", "rw,nosuid,nodev,noexec,relatime"));
                }
            }
            // devfs always serves /dev/pts; the spec's devpts mount is
            // shown in the table as runc's is.
            "devpts" if m.destination == "/dev/pts" => {
                table.push(info(&m.destination, "devpts", "rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666"));
            }
            "sysfs" => {
                if let Some((dir, name)) = target() {
                    dir.mount_synthetic(&name, vfs::sysfs::new_sysfs(ncpus));
                    table.push(info(&m.destination, "sysfs", "ro,nosuid,nodev,noexec,relatime"));
                }
            }
            // The IPC namespace's queues (every mqueue mount shows the same
            // ones, as in one IPC namespace on Linux).
            "mqueue" => {
                if let Some((dir, name)) = target() {
                    dir.mount_mqueue(&name, mqueues.root.clone());
                    table.push(info(&m.destination, "mqueue", "rw,nosuid,nodev,noexec,relatime"));
                }
            }
            // A read-only view of the container's cgroup (v2, as runc
            // mounts it on a cgroup v2 host whichever type the spec says).
            "cgroup" | "cgroup2" => {
                if let Some((dir, name)) = target() {
                    dir.mount_synthetic(&name, vfs::cgroupfs::new_cgroupfs(kernel.clone()));
                    table.push(info(&m.destination, "cgroup2", "ro,nosuid,nodev,noexec,relatime"));
                }
            }
            "bind" if m.gofer_fd.is_some() => {
                let Some(fd) = m.gofer_fd.and_then(|fd| gofer::fd::take_inherited(fd).ok()) else { continue };
                let has = |o: &str| m.options.iter().any(|x| x == o);
                let mount = Arc::new(vfs::GoferMount {
                    client: Arc::new(gofer::Client::new(gofer::Channel::new(fd))),
                    readonly: has("ro"),
                    noexec: has("noexec"),
                    nosuid: has("nosuid"),
                    upper: None,
                });
                if let Some((dir, name)) = if m.gofer_file { file_target() } else { target() } {
                    let mounted =
                        if m.gofer_file { dir.mount_gofer_file(&name, mount) } else { dir.mount_gofer(&name, mount) };
                    match mounted {
                        Ok(()) => table.push(info(&m.destination, "9p", if has("ro") { "ro" } else { "rw" })),
                        Err(e) => tracing::warn!(target: "sentry::vfs", "bind mount at {}: {e:?}", m.destination),
                    }
                }
            }
            kind => tracing::info!(target: "sentry::vfs", "mount of {kind} at {} not served yet", m.destination),
        }
    }
    for e in &mut table {
        e.find_ids(root);
        if e.id == e.parent {
            // devpts is served inside devfs, not as a mount of its own.
            e.id = vfs::new_mount_id();
        }
    }
    table
}

/// `linux.maskedPaths` and `linux.readonlyPaths`, after the mounts (as
/// runc applies them); paths that do not exist are skipped, as runc does.
fn restrict_paths(root: &Arc<vfs::Dentry>, masked: &[String], readonly: &[String]) {
    let resolve = |path: &str| vfs::Resolver::new(root, root).resolve_parent(path.as_bytes());
    for p in masked {
        match resolve(p).and_then(|(dir, name)| dir.crossed_root().mask(&name)) {
            Ok(()) => {}
            Err(e) if e == ::syscalls::Errno::ENOENT => {}
            Err(e) => tracing::warn!(target: "sentry::vfs", "masking {p}: {e:?}"),
        }
    }
    for p in readonly {
        match resolve(p).and_then(|(dir, name)| dir.crossed_root().remount_readonly(&name)) {
            Ok(()) => {}
            Err(e) if e == ::syscalls::Errno::ENOENT => {}
            Err(e) => tracing::warn!(target: "sentry::vfs", "making {p} read-only: {e:?}"),
        }
    }
}

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
    let client = gofer::Client::new(gofer::Channel::new(gofer_sock));
    // A writable root gets an overlay in memory (the gofer's files are never
    // written); a read-only root stays read-only, as runc's.
    let upper =
        (!cfg.root_readonly && cfg.root_overlay).then(|| vfs::tmpfs::Tmpfs::new(memory.clone(), DEFAULT_TMPFS_SIZE));
    let root_mount = Arc::new(vfs::GoferMount {
        client: Arc::new(client),
        readonly: cfg.root_readonly,
        noexec: false,
        nosuid: false,
        upper,
    });
    let root = vfs::Dentry::root(root_mount.clone()).map_err(BootError::Mount)?;
    let events: Arc<kernel::EventQueue> = Default::default();
    root.mount_synthetic(b"dev", vfs::devfs::new_devfs(events.clone()));
    let ncpus = std::thread::available_parallelism().map_or(1, |n| n.get()).min(1024);
    let kernel_slot: vfs::procfs::KernelSlot = Default::default();
    let mqueues = mqueue::MqueueNamespace::new(memory.clone(), events.clone()).map_err(BootError::Mount)?;
    let flags = (cfg.root_readonly, cfg.root_overlay);
    let mounts = mount_filesystems(&root, &memory, &cfg.mounts, flags, &kernel_slot, ncpus, &mqueues);
    restrict_paths(&root, &cfg.masked_paths, &cfg.readonly_paths);
    let kernel = Arc::new(Kernel {
        platform,
        file_cache: vfs::tmpfs::Tmpfs::new(memory.clone(), DEFAULT_TMPFS_SIZE),
        max_mounts: 100_000,
        memory,
        root,
        root_mount,
        hostname: cfg.hostname.clone().into_bytes(),
        boot_time: Instant::now(),
        strace: cfg.strace,
        pids: Default::default(),
        wakeups: kernel::Wakeups::new(events.clone()),
        ncpus,
        mounts: std::sync::Mutex::new(mounts),
        mqueues,
        events,
        futexes: Default::default(),
        max_tasks: cfg.pids_limit.unwrap_or(kernel::DEFAULT_MAX_TASKS).into(),
        frozen: false.into(),
    });
    let _ = kernel_slot.set(Arc::downgrade(&kernel));
    vfs::lock::locks().set_events(kernel.events.clone());
    let (stdio, console) = console::process_stdio(&kernel, &cfg.process, stdio)?;
    let task = Task::new_process(kernel.clone(), &cfg.process, stdio)?;
    let init = task.group().clone();
    forward_host_signals(&kernel, forwarded, console.clone());
    let wait_for_start = control.as_ref().is_some_and(|c| c.wait_for_start);
    let server = control::Control::new(kernel.clone(), wait_for_start);
    if let Some(c) = control {
        server.serve(c.listener);
    }
    ready();
    if let Err(status) = server.wait_for_start() {
        server.stopped(status);
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
    Ok(status)
}
