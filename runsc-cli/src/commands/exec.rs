//! `cordon exec`: a new process in a running sandbox (never on the host).
//! The `cordon` process (or, with `--detach`, a hidden `exec-wait` child
//! whose pid goes to the pid file) stands for the guest process on the
//! host: it passes on the signals it gets and exits as the process does.
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use nix::sys::signal::{SigSet, Signal};
use sentry::control::{Connection, Reply, Request};

use crate::console;
use crate::state::StateDir;
use crate::Cli;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A JSON file holding the OCI process to run.
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the pid of the host process that stands for the guest
    /// process to this file.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's pty master to.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Environment variables to set (KEY=VALUE).
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// UID[:GID] to run as.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Additional group ids.
    #[arg(long, short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Set no_new_privs.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Accepted for runc compatibility (no host LSM applies in the sandbox).
    #[arg(long)]
    pub process_label: Option<String>,
    /// Accepted for runc compatibility (no host LSM applies in the sandbox).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Container id.
    pub id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The process to run: `--process`, or the container's own process with
/// the command line's changes.
fn process(dir: &StateDir, a: &ExecArgs) -> Result<(sentry::config::ProcessConfig, bool)> {
    if let Some(path) = &a.process {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let p: oci_spec::runtime::Process =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if p.args().as_ref().is_none_or(|v| v.is_empty()) {
            bail!("process args cannot be empty");
        }
        return Ok((crate::bundle::process_config(&p), p.terminal().unwrap_or(false)));
    }
    if a.command.is_empty() {
        bail!("exec needs a command (or --process)");
    }
    let st = dir.read()?;
    let bundle = crate::bundle::load_bundle(&st.bundle)?;
    let base = bundle.spec.process().as_ref().context("config.json has no process")?;
    let mut p = crate::bundle::process_config(base);
    p.args = a.command.clone();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or(kv);
        p.env.retain(|e| e.split('=').next() != Some(key));
        p.env.push(kv.clone());
    }
    if let Some(cwd) = &a.cwd {
        p.cwd = cwd.clone();
    }
    if let Some(user) = &a.user {
        let (u, g) = user.split_once(':').unwrap_or((user, "0"));
        p.uid = u.parse().with_context(|| format!("invalid user {user:?} (want UID[:GID])"))?;
        p.gid = g.parse().with_context(|| format!("invalid user {user:?} (want UID[:GID])"))?;
    }
    if !a.additional_gids.is_empty() {
        p.additional_gids = a.additional_gids.clone();
    }
    p.no_new_privs |= a.no_new_privs;
    Ok((p, a.tty))
}

pub fn exec(cli: &Cli, a: &ExecArgs) -> Result<u8> {
    crate::logging::init(cli, "exec");
    let dir = StateDir::open_existing(&cli.root, &a.id, false)?;
    let st = dir.read()?;
    match dir.status(&st).as_str() {
        "stopped" | "creating" => bail!("cannot exec in a stopped container"),
        "paused" => bail!("cannot exec in a paused container"),
        _ => {}
    }
    // Before any thread exists (the terminal's copiers), so that only the
    // forwarding thread of `wait_process` takes these signals.
    let _ = forwarded().thread_block();
    let (mut process, terminal) = process(&dir, a)?;
    process.terminal = terminal;
    let pty = console::pty_for(terminal, a.detach, a.console_socket.as_deref())?;
    let attached_tty = pty.is_some() && a.console_socket.is_none();
    let conn = dir.connect()?;
    let request = dir.for_container(Request::Exec { process });
    drop(dir);
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio = match &pty {
        Some(p) => [p.slave.as_fd(), p.slave.as_fd(), p.slave.as_fd()],
        None => [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()],
    };
    conn.send(&request, &stdio)?;
    match conn.recv::<Reply>()?.0 {
        Reply::Started { .. } => {}
        Reply::Error { msg } => bail!(msg),
        r => bail!("unexpected reply {r:?}"),
    }
    if a.detach {
        let child = spawn_stand_in(conn, pty.as_ref(), None)?;
        if let (Some(p), Some(sock)) = (&pty, &a.console_socket) {
            console::send_master(sock, &p.master)?;
        }
        if let Some(p) = &a.pid_file {
            super::run::write_pid_file(p, child.id())?;
        }
        return Ok(0);
    }
    if let Some(p) = &a.pid_file {
        super::run::write_pid_file(p, std::process::id())?;
    }
    let master = pty.map(|p| Arc::new(p.master));
    if let (Some(m), Some(sock)) = (&master, &a.console_socket) {
        console::send_master(sock, m)?;
    }
    let attached = match master.clone() {
        Some(m) if attached_tty => Some(console::attach(m)?),
        _ => None,
    };
    let raw = attached.as_ref().and_then(|_| console::RawMode::enter());
    let winch = match &master {
        Some(m) if attached_tty => Winch::Resize(Some(m.clone())),
        Some(_) => Winch::Resize(None),
        None => Winch::Forward,
    };
    let status = wait_process(conn, winch);
    if let Some(a) = attached {
        a.finish();
    }
    drop(raw);
    Ok(super::lifecycle::shell_code(status))
}

/// What a stand-in does with the SIGWINCH it gets.
enum Winch {
    /// Passes it on, as any other signal.
    Forward,
    /// The process has a console: its size changed. With a pty master,
    /// our own terminal's size is copied to it first.
    Resize(Option<Arc<OwnedFd>>),
}

/// Starts the host process that stands for a guest process (an exec'd
/// process, or a pod's container's init) on connection `conn`: a hidden
/// `cordon exec-wait`, which passes its signals on and exits as the guest
/// process does (writing its wait status to `exit_file`).
pub fn spawn_stand_in(
    conn: Connection,
    pty: Option<&console::Pty>,
    exit_file: Option<&std::path::Path>,
) -> Result<std::process::Child> {
    let fd = OwnedFd::from(conn);
    let exe = std::env::current_exe().context("finding the cordon binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.env_remove(super::PARENT_PID_ENV)
        .arg("exec-wait")
        .arg("--conn-fd")
        .arg(fd.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(f) = exit_file {
        cmd.arg("--exit-file").arg(f);
    }
    if let Some(p) = pty {
        // The waiter leads the pty's session, so that a resize of the
        // master (the shim's ResizePty) reaches it as SIGWINCH.
        cmd.arg("--console").stdin(p.slave.try_clone()?);
        console::lead_session_of(&mut cmd, 0);
    }
    crate::sandbox::spawn_with_fds(&mut cmd, &[&fd]).context("starting the exec waiter")
}

/// Signals passed on to the guest process.
fn forwarded() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGTERM,
        Signal::SIGCONT,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set
}

/// Passes signals on to the process until it ends; returns its wait
/// status (SIGKILL's if the sandbox went away).
fn wait_process(conn: Connection, winch: Winch) -> i32 {
    let set = forwarded();
    if set.thread_block().is_ok() {
        if let Ok(sender) = conn.try_clone() {
            std::thread::spawn(move || {
                while let Ok(sig) = set.wait() {
                    let req = match (sig, &winch) {
                        (Signal::SIGWINCH, Winch::Resize(master)) => {
                            if let Some(m) = master {
                                console::copy_winsize(std::io::stdin().as_fd(), m.as_fd());
                            }
                            Request::Resize
                        }
                        _ => Request::Signal { signal: sig as i32, all: false },
                    };
                    if sender.send(&req, &[]).is_err() {
                        return;
                    }
                }
            });
        }
    }
    loop {
        match conn.recv::<Reply>() {
            Ok((Reply::Exited { wait_status }, _)) => return wait_status,
            Ok(_) => {}
            Err(_) => return libc::SIGKILL,
        }
    }
}

#[derive(Args, Debug)]
pub struct ExecWaitArgs {
    /// Inherited exec connection to the sandbox.
    #[arg(long)]
    pub conn_fd: i32,
    /// The process has a console, our controlling terminal: a SIGWINCH
    /// means its size changed.
    #[arg(long)]
    pub console: bool,
    /// Write the process's wait status here when it ends (a container's
    /// `exit` file).
    #[arg(long)]
    pub exit_file: Option<PathBuf>,
}

/// `cordon exec-wait` (internal): lives as long as an exec'd process and
/// ends as it did.
pub fn exec_wait(_cli: &Cli, a: &ExecWaitArgs) -> Result<u8> {
    let fd = gofer::fd::take_inherited(a.conn_fd).context("connection fd")?;
    let winch = if a.console { Winch::Resize(None) } else { Winch::Forward };
    // It waits for the rest of the process's life: what start-up freed goes back.
    gofer::fd::release_free_heap();
    let status = wait_process(Connection::new(fd), winch);
    if let Some(f) = &a.exit_file {
        let _ = std::fs::write(f, status.to_string());
    }
    if status & 0x7f != 0 {
        sentry::exit_by_signal(status & 0x7f);
    }
    Ok(((status >> 8) & 0xff) as u8)
}
