//! `cordon boot` (internal): the sentry process.
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};
use clap::Args;

use crate::Cli;

#[derive(Args, Debug)]
pub struct BootArgs {
    /// Inherited fd of the gofer socket for the root mount.
    #[arg(long)]
    pub gofer_fd: i32,
    /// Inherited fd holding the boot configuration (JSON).
    #[arg(long)]
    pub config_fd: i32,
}

pub fn boot(cli: &Cli, a: &BootArgs) -> Result<u8> {
    super::die_with_parent();
    let cfg_fd = gofer::fd::take_inherited(a.config_fd).context("config fd")?;
    let mut text = String::new();
    std::fs::File::from(cfg_fd).read_to_string(&mut text).context("reading the boot config")?;
    let cfg: sentry::BootConfig = serde_json::from_str(&text).context("parsing the boot config")?;
    // Nothing the CLI's caller leaked to us may reach the sandbox: only the
    // gofer sockets stay.
    let mut keep = vec![a.gofer_fd];
    keep.extend(cfg.mounts.iter().filter_map(|m| m.gofer_fd));
    gofer::sandbox::close_other_fds(&keep);
    crate::logging::init(cli, "sentry");
    let sock = gofer::fd::take_inherited(a.gofer_fd).context("gofer fd")?;
    let stdio = [dup_stdio(0)?, dup_stdio(1)?, dup_stdio(2)?];
    crate::isolate::isolate_sentry()?;
    match sentry::boot(cfg, sock, stdio) {
        Ok(status) => Ok(status.shell_code() as u8),
        Err(e) => {
            eprintln!("cordon: {e}");
            Ok(e.exit_code() as u8)
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
