//! Starting a sandbox: the gofers, then the sentry, with the sockets, the
//! boot configuration and the control socket they inherit.
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use nix::sys::socket::{bind, listen, socket, socketpair, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use serde::{Deserialize, Serialize};

use crate::bundle::{bind_source, boot_config, is_bind, Bundle};
use crate::state::StateDir;
use crate::Cli;
use sentry::control::{Reply, Request};

/// A failure with the exit status the command must end with.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Failure {
    pub msg: String,
    pub code: u8,
}

/// What the sentry tells the command that started it once it is ready to
/// run the container, or why it cannot.
#[derive(Debug, Serialize, Deserialize)]
pub enum BootReport {
    Ready,
    Failed { msg: String, code: i32 },
}

/// How the sandbox relates to the command that starts it.
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    /// `cordon run` in the foreground: the sandbox dies with this process.
    pub attached: bool,
    /// `cordon create`: init waits for `cordon start`.
    pub wait_for_start: bool,
}

/// Global flags every cordon child process gets.
fn child_command(cli: &Cli, attached: bool) -> Result<Command> {
    let exe = std::env::current_exe().context("finding the cordon binary")?;
    let mut cmd = Command::new(exe);
    if attached {
        // The sandbox dies with `cordon run` (see `die_with_parent`).
        cmd.env(crate::commands::PARENT_PID_ENV, std::process::id().to_string());
    } else {
        cmd.env_remove(crate::commands::PARENT_PID_ENV);
    }
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
pub fn spawn_with_fds(cmd: &mut Command, fds: &[&OwnedFd]) -> Result<Child> {
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
pub struct Sandbox {
    /// The root's gofer, then one per served bind mount.
    pub gofers: Vec<Child>,
    /// The sentry; for a pod's further container (see [`Sandbox::join`]),
    /// the host process that stands for its init.
    pub sentry: Child,
}

/// The CRI annotations that place a container in its pod's sandbox.
const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// The pod sandbox container whose sandbox a container joins: a bundle
/// annotated as a pod's `container` (not its `sandbox`), whose pod's
/// sandbox container exists under the same root.
pub fn pod_sandbox(cli: &Cli, b: &Bundle, id: &str) -> Option<String> {
    let ann = b.spec.annotations().as_ref()?;
    if ann.get(CONTAINER_TYPE).map(String::as_str) != Some("container") {
        return None;
    }
    let sandbox = ann.get(SANDBOX_ID)?;
    if sandbox == id || crate::state::validate_id(sandbox).is_err() {
        return None;
    }
    if !cli.root.join(sandbox).join("state.json").exists() {
        // Not ours (or gone): the container gets a sandbox of its own.
        tracing::info!("pod sandbox {sandbox} not found under {}: a sandbox of its own", cli.root.display());
        return None;
    }
    Some(sandbox.clone())
}

/// Starts a gofer serving `rootfs`; returns it and the sentry's end of its
/// socket.
fn start_gofer(cli: &Cli, rootfs: &Path, readonly: bool, attached: bool) -> Result<(Child, OwnedFd)> {
    let (sentry_end, gofer_end) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .context("creating the gofer socket pair")?;
    let mut g = child_command(cli, attached)?;
    g.arg("gofer").arg("--rootfs").arg(rootfs).arg("--sock-fd").arg(gofer_end.as_raw_fd().to_string());
    if readonly {
        g.arg("--readonly");
    }
    g.stdin(Stdio::null()).stdout(Stdio::null());
    if !attached {
        // A detached sandbox must not hold our caller's output open: the
        // runc shim reads `create`'s output to its end (with a terminal,
        // when nothing else holds it). The gofer logs to --debug-log.
        g.stderr(Stdio::null());
    }
    let gofer = spawn_with_fds(&mut g, &[&gofer_end]).context("starting the gofer")?;
    Ok((gofer, sentry_end))
}

fn kill_children(children: &mut [Child]) {
    for c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Sandbox {
    /// Starts the gofers and the sentry for bundle `b`, with the control
    /// socket in `state`, and waits until the sentry has loaded init (or
    /// failed to).
    /// With `console` (a host pty slave), that is init's stdio, and the
    /// sentry leads a session it is the controlling terminal of.
    pub fn start(
        cli: &Cli,
        b: &Bundle,
        state: &StateDir,
        launch: Launch,
        console: Option<&OwnedFd>,
    ) -> Result<Sandbox> {
        let mut gofers = Vec::new();
        let started = Self::spawn(cli, b, state, launch, console, &mut gofers);
        match started {
            Ok(sentry) => Ok(Sandbox { gofers, sentry }),
            Err(e) => {
                kill_children(&mut gofers);
                Err(e)
            }
        }
    }

    /// Adds the container of bundle `b` to the running sandbox of its pod
    /// (the state of the pod's sandbox container is `pod`): starts its
    /// gofers, hands their sockets and init's stdio (or `console`, a host
    /// pty slave) to the sentry, and starts the host process that stands
    /// for its init. `state`'s `control.sock` becomes a link to the pod's.
    pub fn join(
        cli: &Cli,
        b: &Bundle,
        state: &StateDir,
        pod: &StateDir,
        console: Option<&crate::console::Pty>,
    ) -> Result<Sandbox> {
        let st = pod.read()?;
        match pod.status(&st).as_str() {
            "created" | "running" => {}
            s => bail!("the pod's sandbox {} is {s}", pod.id),
        }
        std::os::unix::fs::symlink(format!("../{}/control.sock", pod.id), state.dir.join("control.sock"))
            .context("linking the pod's control socket")?;
        let mut gofers = Vec::new();
        let joined = Self::add(cli, b, state, pod, console, &mut gofers);
        match joined {
            Ok(stand_in) => Ok(Sandbox { gofers, sentry: stand_in }),
            Err(e) => {
                kill_children(&mut gofers);
                Err(e)
            }
        }
    }

    fn add(
        cli: &Cli,
        b: &Bundle,
        state: &StateDir,
        pod: &StateDir,
        console: Option<&crate::console::Pty>,
        gofers: &mut Vec<Child>,
    ) -> Result<Child> {
        let (ends, binds) = Self::start_gofers(cli, b, false, gofers)?;
        // The sentry finds each bind mount's socket by its index in the fds
        // sent: stdin, stdout, stderr, the root's, then the binds'.
        let bind_fds: Vec<(usize, i32)> = binds.iter().enumerate().map(|(k, (i, _))| (*i, 4 + k as i32)).collect();
        let config = Box::new(boot_config(cli, b, &bind_fds)?);
        let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
        let mut fds = match console {
            Some(p) => vec![p.slave.as_fd(), p.slave.as_fd(), p.slave.as_fd()],
            None => vec![stdin.as_fd(), stdout.as_fd(), stderr.as_fd()],
        };
        fds.push(ends.as_fd());
        fds.extend(binds.iter().map(|(_, fd)| fd.as_fd()));
        let conn = pod.connect()?;
        conn.send(&Request::AddContainer { id: state.id.clone(), config }, &fds)?;
        match conn.recv::<Reply>()?.0 {
            Reply::Ok => {}
            Reply::Error { msg } => bail!(msg),
            r => bail!("unexpected reply {r:?}"),
        }
        crate::commands::exec::spawn_stand_in(conn, console, Some(&state.dir.join("exit")))
    }

    /// Starts the gofer of the root and one per bind mount; returns the
    /// sentry's end of the root's socket and, by mount index, the binds'.
    fn start_gofers(
        cli: &Cli,
        b: &Bundle,
        attached: bool,
        gofers: &mut Vec<Child>,
    ) -> Result<(OwnedFd, Vec<(usize, OwnedFd)>)> {
        // Under the overlay the root's gofer never writes: it serves a
        // read-only mount even when the root is writable.
        let readonly = b.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) || cli.overlay != "none";
        let (root_gofer, sentry_end) = start_gofer(cli, &b.rootfs, readonly, attached)?;
        gofers.push(root_gofer);
        let mut bind_ends = Vec::new();
        for (i, m) in b.spec.mounts().iter().flatten().enumerate() {
            if !is_bind(m) {
                continue;
            }
            let Some(src) = bind_source(b, m).filter(|s| s.exists()) else {
                // runc refuses a missing source too.
                bail!("bind mount source {:?} does not exist", m.source().as_deref().unwrap_or(Path::new("")));
            };
            let ro = m.options().as_ref().is_some_and(|o| o.iter().any(|x| x == "ro"));
            let (g, end) = start_gofer(cli, &src, ro, attached)
                .with_context(|| format!("serving the bind mount of {}", src.display()))?;
            gofers.push(g);
            bind_ends.push((i, end));
        }
        Ok((sentry_end, bind_ends))
    }

    fn spawn(
        cli: &Cli,
        b: &Bundle,
        state: &StateDir,
        launch: Launch,
        console: Option<&OwnedFd>,
        gofers: &mut Vec<Child>,
    ) -> Result<Child> {
        let (sentry_end, bind_ends) = Self::start_gofers(cli, b, launch.attached, gofers)?;
        let bind_fds: Vec<(usize, i32)> = bind_ends.iter().map(|(i, fd)| (*i, fd.as_raw_fd())).collect();
        let cfg = boot_config(cli, b, &bind_fds)?;
        let cfg_fd = nix::sys::memfd::memfd_create(c"cordon-boot", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
            .context("memfd for the boot config")?;
        let mut f = std::fs::File::from(cfg_fd);
        f.write_all(&serde_json::to_vec(&cfg)?)?;
        f.rewind()?;
        let cfg_fd = OwnedFd::from(f);
        // The control socket, bound in the state directory.
        let listener = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)
            .context("creating the control socket")?;
        bind(listener.as_raw_fd(), &UnixAddr::new(&state.short_path("control.sock"))?)
            .context("binding the control socket")?;
        listen(&listener, Backlog::new(64)?).context("listening on the control socket")?;
        let exit_file =
            OwnedFd::from(std::fs::File::create(state.dir.join("exit")).context("creating the exit status file")?);
        let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
        let mut s = child_command(cli, launch.attached)?;
        s.arg("boot")
            .arg("--gofer-fd")
            .arg(sentry_end.as_raw_fd().to_string())
            .arg("--config-fd")
            .arg(cfg_fd.as_raw_fd().to_string())
            .arg("--control-fd")
            .arg(listener.as_raw_fd().to_string())
            .arg("--ready-fd")
            .arg(ready_w.as_raw_fd().to_string())
            .arg("--exit-fd")
            .arg(exit_file.as_raw_fd().to_string());
        if launch.wait_for_start {
            s.arg("--wait-start");
        }
        if let Some(slave) = console {
            let dup = || slave.try_clone().context("duplicating the console");
            s.stdin(dup()?).stdout(dup()?).stderr(dup()?);
            crate::console::lead_session_of(&mut s, 0);
        }
        let mut inherited: Vec<&OwnedFd> = vec![&sentry_end, &cfg_fd, &listener, &ready_w, &exit_file];
        inherited.extend(bind_ends.iter().map(|(_, fd)| fd));
        let mut sentry = spawn_with_fds(&mut s, &inherited).context("starting the sentry")?;
        drop(ready_w);
        drop(listener);
        let mut text = String::new();
        let _ = std::fs::File::from(ready_r).read_to_string(&mut text);
        let report = serde_json::from_str::<BootReport>(&text);
        match report {
            Ok(BootReport::Ready) => Ok(sentry),
            Ok(BootReport::Failed { msg, code }) => {
                let _ = sentry.wait();
                Err(Failure { msg, code: code.clamp(1, 255) as u8 }.into())
            }
            Err(_) => {
                let status = sentry.wait();
                bail!("the sandbox failed to start ({})", status.map(|s| s.to_string()).unwrap_or_default())
            }
        }
    }
}
