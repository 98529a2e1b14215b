//! `cordon boot` (internal): the sentry process.
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};
use clap::Args;

use crate::sandbox::BootReport;
use crate::Cli;

#[derive(Args, Debug)]
pub struct BootArgs {
    /// Inherited fd of the gofer socket for the root mount.
    #[arg(long)]
    pub gofer_fd: i32,
    /// Inherited fd holding the boot configuration (JSON).
    #[arg(long)]
    pub config_fd: i32,
    /// Inherited listening control socket.
    #[arg(long)]
    pub control_fd: Option<i32>,
    /// Inherited pipe to report readiness (or the boot error) on.
    #[arg(long)]
    pub ready_fd: Option<i32>,
    /// Inherited file to write the container's exit status to.
    #[arg(long)]
    pub exit_fd: Option<i32>,
    /// Hold init until `cordon start`.
    #[arg(long)]
    pub wait_start: bool,
}

fn take(fd: Option<i32>, what: &str) -> Result<Option<OwnedFd>> {
    fd.map(|n| gofer::fd::take_inherited(n).with_context(|| format!("{what} fd"))).transpose()
}

pub fn boot(cli: &Cli, a: &BootArgs) -> Result<u8> {
    super::die_with_parent();
    let cfg_fd = gofer::fd::take_inherited(a.config_fd).context("config fd")?;
    let mut text = String::new();
    std::fs::File::from(cfg_fd).read_to_string(&mut text).context("reading the boot config")?;
    let cfg: sentry::BootConfig = serde_json::from_str(&text).context("parsing the boot config")?;
    // Nothing the CLI's caller leaked to us may reach the sandbox: only the
    // gofer sockets and the control fds stay.
    let mut keep = vec![a.gofer_fd];
    keep.extend(cfg.mounts.iter().filter_map(|m| m.gofer_fd));
    keep.extend([a.control_fd, a.ready_fd, a.exit_fd].into_iter().flatten());
    gofer::sandbox::close_other_fds(&keep);
    crate::logging::init(cli, "sentry");
    let sock = gofer::fd::take_inherited(a.gofer_fd).context("gofer fd")?;
    let control = take(a.control_fd, "control")?
        .map(|listener| sentry::ControlOptions { listener, wait_for_start: a.wait_start });
    let mut ready = take(a.ready_fd, "ready")?.map(std::fs::File::from);
    let exit_file = take(a.exit_fd, "exit")?.map(std::fs::File::from);
    let stdio = [dup_stdio(0)?, dup_stdio(1)?, dup_stdio(2)?];
    crate::isolate::isolate_sentry()?;
    let report = |ready: &mut Option<std::fs::File>, r: &BootReport| {
        if let Some(mut f) = ready.take() {
            let _ = f.write_all(&serde_json::to_vec(r).unwrap_or_default());
        }
    };
    let result = sentry::boot(cfg, sock, stdio, control, || report(&mut ready, &BootReport::Ready));
    match result {
        Ok(status) => {
            if let Some(mut f) = exit_file {
                let _ = write!(f, "{}", status.wait_status());
                let _ = f.sync_all();
            }
            match status {
                sentry::task::ExitStatus::Exited(c) => Ok(c as u8),
                sentry::task::ExitStatus::Signaled(sig) => sentry::exit_by_signal(sig),
            }
        }
        Err(e) => {
            let code = e.exit_code();
            if ready.is_some() {
                report(&mut ready, &BootReport::Failed { msg: e.to_string(), code });
            } else {
                eprintln!("cordon: {e}");
            }
            Ok(code as u8)
        }
    }
}

fn dup_stdio(n: i32) -> Result<OwnedFd> {
    let fd = match n {
        0 => std::io::stdin().as_fd().try_clone_to_owned(),
        1 => std::io::stdout().as_fd().try_clone_to_owned(),
        _ => std::io::stderr().as_fd().try_clone_to_owned(),
    };
    fd.with_context(|| format!("duplicating stdio fd {n}"))
}
