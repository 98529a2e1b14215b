//! `cordon gofer` (internal): serves the container's root file system.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::Cli;

#[derive(Args, Debug)]
pub struct GoferArgs {
    /// The root file system to serve.
    #[arg(long)]
    pub rootfs: PathBuf,
    /// Serve it read-only.
    #[arg(long)]
    pub readonly: bool,
    /// Inherited fd of the sentry's socket.
    #[arg(long)]
    pub sock_fd: i32,
}

pub fn gofer(cli: &Cli, a: &GoferArgs) -> Result<u8> {
    super::die_with_parent();
    gofer::sandbox::close_other_fds(&[a.sock_fd]);
    // `cordon run` blocks the signals it forwards; the gofer must die of them.
    let _ = nix::sys::signal::SigSet::all().thread_unblock();
    crate::logging::init(cli, "gofer");
    let sock = gofer::fd::take_inherited(a.sock_fd).context("gofer socket fd")?;
    gofer::run_gofer(&a.rootfs, a.readonly, sock).context("gofer")?;
    Ok(0)
}
