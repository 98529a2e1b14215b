//! `cordon run` and `cordon create`: a sandbox for a bundle; `run` starts
//! it at once and waits for it, `create` leaves init waiting for `start`.
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use nix::sys::signal::{SigSet, Signal};

use crate::bundle::load_bundle;
use crate::console;
use crate::sandbox::{Launch, Sandbox};
use crate::state::{proc_stat, rfc3339_now, ContainerState, StateDir};
use crate::Cli;

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Path to the bundle (directory with config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the sandbox's host pid (the process that exits with the
    /// container's status) to this file.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's pty master to.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (the sandbox never pivots the host).
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility (the sandbox has no host keyring).
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Container id.
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Do not wait: leave the container running in the background.
    #[arg(long, short = 'd')]
    pub detach: bool,
}

/// Writes `path` atomically (runc's pid file: a temp file, renamed).
pub fn write_pid_file(path: &std::path::Path, pid: u32) -> Result<()> {
    let tmp = path.with_extension("cordon-tmp");
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// A created container.
struct Created {
    state: StateDir,
    sandbox: Sandbox,
    /// With `process.terminal` and no console socket: the pty master, for
    /// `cordon run` to attach to.
    master: Option<OwnedFd>,
}

/// Creates the state directory and the sandbox of a container. With
/// `process.terminal`, init's stdio is a new pty, whose master goes to
/// the console socket (or, attached, comes back to the caller).
fn create_container(cli: &Cli, a: &CreateArgs, launch: Launch) -> Result<Created> {
    crate::state::validate_id(&a.id)?;
    let bundle = load_bundle(&a.bundle)?;
    let terminal = bundle.spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
    let pty = console::pty_for(terminal, !launch.attached, a.console_socket.as_deref())?;
    let state = StateDir::create(&cli.root, &a.id)?;
    let mut st = ContainerState {
        oci_version: bundle.spec.version().clone(),
        id: a.id.clone(),
        pid: 0,
        status: "creating".into(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: rfc3339_now(),
        owner: String::new(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default().into_iter().collect(),
        sentry_start: 0,
        gofers: Vec::new(),
    };
    state.write(&st)?;
    // A pod's further container joins its pod's sandbox (`create` only:
    // `run` gives a container a sandbox of its own).
    let pod = match launch.wait_for_start {
        true => crate::sandbox::pod_sandbox(cli, &bundle, &a.id),
        false => None,
    };
    let sandbox = match pod {
        Some(pod) => {
            let pod = StateDir::open_existing(&cli.root, &pod, false)?;
            Sandbox::join(cli, &bundle, &state, &pod, pty.as_ref())?
        }
        None => Sandbox::start(cli, &bundle, &state, launch, pty.as_ref().map(|p| &p.slave))?,
    };
    let ids = |c: &std::process::Child| (c.id() as i32, proc_stat(c.id() as i32).map_or(0, |s| s.0));
    (st.pid, st.sentry_start) = ids(&sandbox.sentry);
    st.gofers = sandbox.gofers.iter().map(ids).collect();
    st.status = if launch.wait_for_start { "created" } else { "running" }.into();
    let mut master = pty.map(|p| p.master);
    let finished = (|| -> Result<()> {
        state.write(&st)?;
        if let Some(p) = &a.pid_file {
            write_pid_file(p, sandbox.sentry.id())?;
        }
        if let (Some(m), Some(sock)) = (&master, &a.console_socket) {
            console::send_master(sock, m)?;
            master = None;
        }
        Ok(())
    })();
    if let Err(e) = finished {
        // Nothing of a container that failed to be created stays behind.
        let mut sandbox = sandbox;
        for c in std::iter::once(&mut sandbox.sentry).chain(sandbox.gofers.iter_mut()) {
            let _ = c.kill();
            let _ = c.wait();
        }
        return Err(e);
    }
    Ok(Created { state, sandbox, master })
}

pub fn create(cli: &Cli, a: &CreateArgs) -> Result<u8> {
    crate::logging::init(cli, "create");
    let mut c = create_container(cli, a, Launch { attached: false, wait_for_start: true })?;
    // The sandbox lives on without us (our caller, or init, reaps it).
    c.state.keep();
    Ok(0)
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
    let launch = Launch { attached: !a.detach, wait_for_start: false };
    if a.detach {
        let mut c = create_container(cli, &a.create, launch)?;
        c.state.keep();
        return Ok(0);
    }
    // Block the signals we forward before any child exists; children start
    // with an empty mask.
    let mut sigs = forwarded_signals();
    sigs.add(Signal::SIGWINCH);
    sigs.thread_block().context("blocking signals")?;
    let c = create_container(cli, &a.create, launch)?;
    let sentry_pid = nix::unistd::Pid::from_raw(c.sandbox.sentry.id() as i32);
    let master = c.master.map(Arc::new);
    let winch_to = master.clone();
    std::thread::spawn(move || {
        while let Ok(sig) = sigs.wait() {
            match (sig, &winch_to) {
                // Our terminal's new size goes to the pty, whose session
                // (the sentry's) gets SIGWINCH and passes the size in.
                (Signal::SIGWINCH, Some(m)) => {
                    console::copy_winsize(std::io::stdin().as_fd(), m.as_fd());
                }
                (Signal::SIGWINCH, None) => {}
                _ => {
                    let _ = nix::sys::signal::kill(sentry_pid, sig);
                }
            }
        }
    });
    let attached = master.map(console::attach).transpose()?;
    let raw = attached.as_ref().and_then(|_| console::RawMode::enter());
    let code = wait_sandbox(c.sandbox);
    if let Some(a) = attached {
        a.finish();
    }
    drop(raw);
    // `run` deletes the container when it ends, as runc's does.
    drop(c.state);
    code
}

/// Waits for the sentry, then for the gofers (which exit when the sentry's
/// end of their sockets close). Returns the container's status.
fn wait_sandbox(mut sb: Sandbox) -> Result<u8> {
    let status = sb.sentry.wait().context("waiting for the sentry")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    for gofer in &mut sb.gofers {
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
