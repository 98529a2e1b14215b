//! `cordon run`: creates a sandbox for a bundle, runs it, waits for it.
use std::io::{Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use oci_spec::runtime::Spec;

use crate::state::{State, StateDir};
use crate::Cli;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Path to the bundle (directory with config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Accepted for runc compatibility.
    #[arg(long)]
    pub detach: bool,
    /// Container id.
    pub id: String,
}

/// A validated bundle.
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Loads and checks `config.json` of a bundle.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = dir.canonicalize().with_context(|| format!("bundle {}", dir.display()))?;
    let cfg = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg).with_context(|| format!("reading {}", cfg.display()))?;
    let spec: Spec = serde_json::from_str(&text).with_context(|| format!("parsing {}", cfg.display()))?;
    let root = spec.root().as_ref().ok_or_else(|| anyhow!("config.json has no root"))?;
    let rootfs = dir.join(root.path());
    if !rootfs.is_dir() {
        bail!("root.path {} does not exist or is not a directory", rootfs.display());
    }
    let process = spec.process().as_ref().ok_or_else(|| anyhow!("config.json has no process"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("process.args must not be empty");
    }
    // execve takes C strings: a NUL inside one cannot be passed (runc
    // fails the exec with EINVAL).
    let strings = process.args().iter().flatten().chain(process.env().iter().flatten());
    if let Some(bad) = strings.into_iter().find(|s| s.contains('\0')) {
        bail!("process.args and process.env must not contain NUL bytes: {bad:?}");
    }
    Ok(Bundle { dir, rootfs, spec })
}

/// Whether a config.json mount is a bind mount.
fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options().as_ref().is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

/// The host directory a bind mount serves (relative sources are relative
/// to the bundle, as runc takes them).
fn bind_source(b: &Bundle, m: &oci_spec::runtime::Mount) -> Option<PathBuf> {
    let src = m.source().as_ref()?;
    Some(if src.is_absolute() { src.clone() } else { b.dir.join(src) })
}

/// The sentry's view of the process to run; `bind_fds` are the sentry's
/// gofer sockets of the bind mounts, by index in `mounts`.
fn boot_config(cli: &Cli, b: &Bundle, bind_fds: &[(usize, i32)]) -> Result<sentry::BootConfig> {
    let p = b.spec.process().as_ref().ok_or_else(|| anyhow!("config.json has no process"))?;
    let user = p.user();
    let rlimits = p
        .rlimits()
        .as_ref()
        .map(|v| {
            v.iter()
                .filter_map(|r| {
                    let name = serde_json::to_value(r.typ()).ok()?;
                    let res = rlimit_number(name.as_str()?)?;
                    Some((res, r.soft(), r.hard()))
                })
                .collect()
        })
        .unwrap_or_default();
    let hostname = match b.spec.hostname() {
        Some(h) if !h.is_empty() => h.clone(),
        _ => nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default(),
    };
    Ok(sentry::BootConfig {
        args: p.args().clone().unwrap_or_default(),
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().to_string_lossy().into_owned(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        caps: capability_sets(p.capabilities().as_ref()),
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        hostname,
        root_readonly: b.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
        root_overlay: cli.overlay != "none",
        platform: cli.platform.clone(),
        rlimits,
        pids_limit: b
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.pids().as_ref())
            .map(|p| p.limit())
            .filter(|l| *l > 0)
            .map(|l| l as u64),
        mounts: b
            .spec
            .mounts()
            .as_ref()
            .map(|ms| {
                ms.iter()
                    .enumerate()
                    .map(|(i, m)| sentry::config::MountConfig {
                        destination: m.destination().to_string_lossy().into_owned(),
                        kind: if is_bind(m) { "bind".into() } else { m.typ().clone().unwrap_or_default() },
                        options: m.options().clone().unwrap_or_default(),
                        source: m.source().as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
                        gofer_fd: bind_fds.iter().find(|(j, _)| *j == i).map(|(_, fd)| *fd),
                        gofer_file: is_bind(m) && bind_source(b, m).is_some_and(|s| !s.is_dir()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        masked_paths: linux_paths(b, |l| l.masked_paths().clone()),
        readonly_paths: linux_paths(b, |l| l.readonly_paths().clone()),
        strace: cli.strace,
    })
}

/// A list of paths from the spec's `linux` section.
fn linux_paths(b: &Bundle, get: impl Fn(&oci_spec::runtime::Linux) -> Option<Vec<String>>) -> Vec<String> {
    b.spec.linux().as_ref().and_then(get).unwrap_or_default()
}

/// `process.capabilities` as bit masks (unknown names are ignored, as runc
/// ignores capabilities the kernel lacks).
fn capability_sets(caps: Option<&oci_spec::runtime::LinuxCapabilities>) -> sentry::creds::CapSets {
    let Some(c) = caps else { return sentry::creds::CapSets::default() };
    let mask = |set: &Option<oci_spec::runtime::Capabilities>| {
        set.iter().flatten().fold(0u64, |m, cap| {
            let name = serde_json::to_value(cap).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let name = if name.starts_with("CAP_") { name } else { format!("CAP_{name}") };
            match syscalls::flags::cap::NAMES.iter().position(|n| *n == name) {
                Some(i) => m | 1 << i,
                None => m,
            }
        })
    };
    sentry::creds::CapSets {
        effective: mask(c.effective()),
        permitted: mask(c.permitted()),
        inheritable: mask(c.inheritable()),
        bounding: mask(c.bounding()),
        ambient: mask(c.ambient()),
    }
}

fn rlimit_number(name: &str) -> Option<u32> {
    use syscalls::flags::rlimit as R;
    Some(match name {
        "RLIMIT_CPU" => R::RLIMIT_CPU,
        "RLIMIT_FSIZE" => R::RLIMIT_FSIZE,
        "RLIMIT_DATA" => R::RLIMIT_DATA,
        "RLIMIT_STACK" => R::RLIMIT_STACK,
        "RLIMIT_CORE" => R::RLIMIT_CORE,
        "RLIMIT_RSS" => R::RLIMIT_RSS,
        "RLIMIT_NPROC" => R::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => R::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => R::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => R::RLIMIT_AS,
        _ => return None,
    })
}

/// Global flags every cordon child process gets.
fn child_command(cli: &Cli) -> Result<Command> {
    let exe = std::env::current_exe().context("finding the cordon binary")?;
    let mut cmd = Command::new(exe);
    // The sandbox dies with `cordon run` (see `die_with_parent`).
    cmd.env(super::PARENT_PID_ENV, std::process::id().to_string());
    if let Some(d) = &cli.debug_log {
        cmd.arg("--debug-log").arg(d);
    }
    if cli.strace {
        cmd.arg("--strace");
    }
    if cli.debug {
        cmd.arg("--debug");
    }
    Ok(cmd)
}

/// Spawns `cmd` with `fds` inherited by number (close-on-exec cleared only
/// for the spawn).
fn spawn_with_fds(cmd: &mut Command, fds: &[&OwnedFd]) -> Result<Child> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    for fd in fds {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))?;
    }
    let child = cmd.spawn();
    for fd in fds {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    Ok(child?)
}

/// The sandbox processes of one container.
struct Sandbox {
    /// The root's gofer, then one per served bind mount.
    gofers: Vec<Child>,
    sentry: Child,
}

/// Starts a gofer serving `rootfs`; returns it and the sentry's end of its
/// socket.
fn start_gofer(cli: &Cli, rootfs: &Path, readonly: bool) -> Result<(Child, OwnedFd)> {
    let (sentry_end, gofer_end) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .context("creating the gofer socket pair")?;
    let mut g = child_command(cli)?;
    g.arg("gofer").arg("--rootfs").arg(rootfs).arg("--sock-fd").arg(gofer_end.as_raw_fd().to_string());
    if readonly {
        g.arg("--readonly");
    }
    g.stdin(Stdio::null()).stdout(Stdio::null());
    let gofer = spawn_with_fds(&mut g, &[&gofer_end]).context("starting the gofer")?;
    Ok((gofer, sentry_end))
}

impl Sandbox {
    fn kill_gofers(gofers: &mut [Child]) {
        for g in gofers {
            let _ = g.kill();
            let _ = g.wait();
        }
    }

    fn start(cli: &Cli, b: &Bundle) -> Result<Sandbox> {
        // Under the overlay the root's gofer never writes: it serves a
        // read-only mount even when the root is writable.
        let readonly = b.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) || cli.overlay != "none";
        let (root_gofer, sentry_end) = start_gofer(cli, &b.rootfs, readonly)?;
        let mut gofers = vec![root_gofer];
        // One gofer per bind mount of a directory.
        let mut bind_ends = Vec::new();
        for (i, m) in b.spec.mounts().iter().flatten().enumerate() {
            if !is_bind(m) {
                continue;
            }
            let Some(src) = bind_source(b, m).filter(|s| s.exists()) else {
                // runc refuses a missing source too.
                Self::kill_gofers(&mut gofers);
                bail!("bind mount source {:?} does not exist", m.source().as_deref().unwrap_or(Path::new("")));
            };
            let ro = m.options().as_ref().is_some_and(|o| o.iter().any(|x| x == "ro"));
            match start_gofer(cli, &src, ro) {
                Ok((g, end)) => {
                    gofers.push(g);
                    bind_ends.push((i, end));
                }
                Err(e) => {
                    Self::kill_gofers(&mut gofers);
                    return Err(e.context(format!("serving the bind mount of {}", src.display())));
                }
            }
        }
        let bind_fds: Vec<(usize, i32)> = bind_ends.iter().map(|(i, fd)| (*i, fd.as_raw_fd())).collect();
        let cfg = match boot_config(cli, b, &bind_fds) {
            Ok(c) => c,
            Err(e) => {
                Self::kill_gofers(&mut gofers);
                return Err(e);
            }
        };
        let cfg_fd = nix::sys::memfd::memfd_create(c"cordon-boot", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
            .context("memfd for the boot config")?;
        let mut f = std::fs::File::from(cfg_fd);
        f.write_all(&serde_json::to_vec(&cfg)?)?;
        f.rewind()?;
        let cfg_fd = OwnedFd::from(f);
        let mut s = child_command(cli)?;
        s.arg("boot")
            .arg("--gofer-fd")
            .arg(sentry_end.as_raw_fd().to_string())
            .arg("--config-fd")
            .arg(cfg_fd.as_raw_fd().to_string());
        let mut inherited: Vec<&OwnedFd> = vec![&sentry_end, &cfg_fd];
        inherited.extend(bind_ends.iter().map(|(_, fd)| fd));
        let sentry = match spawn_with_fds(&mut s, &inherited) {
            Ok(c) => c,
            Err(e) => {
                Self::kill_gofers(&mut gofers);
                return Err(e.context("starting the sentry"));
            }
        };
        Ok(Sandbox { gofers, sentry })
    }

    /// Waits for the sentry, then for the gofer (which exits when the
    /// sentry's end of its socket closes). Returns the container's status.
    fn wait(mut self) -> Result<u8> {
        let status = self.sentry.wait().context("waiting for the sentry")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        for gofer in &mut self.gofers {
            loop {
                match gofer.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                    _ => {
                        let _ = gofer.kill();
                        let _ = gofer.wait();
                        break;
                    }
                }
            }
        }
        Ok(match (status.code(), status.signal()) {
            (Some(c), _) => c as u8,
            (None, Some(sig)) => (128 + sig) as u8,
            _ => 1,
        })
    }
}

/// Signals a person or supervisor sends `cordon run`, passed on to the
/// sentry.
fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        set.add(s);
    }
    set
}

pub fn run(cli: &Cli, a: &RunArgs) -> Result<u8> {
    crate::logging::init(cli, "run");
    crate::state::validate_id(&a.id)?;
    let bundle = load_bundle(&a.bundle)?;
    let state = StateDir::create(&cli.root, &a.id)?;
    // Block the signals we forward before any child exists; children start
    // with an empty mask.
    let sigs = forwarded_signals();
    sigs.thread_block().context("blocking signals")?;
    let sandbox = Sandbox::start(cli, &bundle)?;
    state.write(&State {
        oci_version: "1.0.2",
        id: &a.id,
        status: "running",
        pid: sandbox.sentry.id(),
        bundle: &bundle.dir,
    })?;
    let sentry_pid = nix::unistd::Pid::from_raw(sandbox.sentry.id() as i32);
    std::thread::spawn(move || {
        while let Ok(sig) = sigs.wait() {
            let _ = nix::sys::signal::kill(sentry_pid, sig);
        }
    });
    let code = sandbox.wait()?;
    drop(state);
    Ok(code)
}
