//! `cordon`: an OCI runtime that runs containers in the Cordon sandbox.
#![deny(unsafe_code)]

mod commands;
mod isolate;
mod logging;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Global flags, spelled like runc's.
#[derive(Parser, Debug)]
#[command(name = "cordon", version, about = "Run OCI containers in the Cordon application-kernel sandbox")]
pub struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/cordon")]
    pub root: PathBuf,
    /// Write one debug log file per sandbox process into this directory.
    #[arg(long, global = true)]
    pub debug_log: Option<PathBuf>,
    /// Log every guest system call (to the debug log, or stderr).
    #[arg(long, global = true)]
    pub strace: bool,
    /// More logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Log file for runtime errors (runc compatibility).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Format of --log: text or json.
    #[arg(long, global = true, default_value = "text")]
    pub log_format: String,
    /// Where a writable root's changes go: `root:memory` keeps them in an
    /// overlay in the sandbox's memory (the host rootfs is never written);
    /// `none` writes them through the gofer to the host rootfs, like runc.
    #[arg(long, global = true, default_value = "root:memory", value_parser = ["root:memory", "none"])]
    pub overlay: String,
    /// How guest code runs: `ptrace` (every system call a ptrace stop) or
    /// `systrap` (system calls trap by seccomp into a signal handler that
    /// hands them to the sentry through shared memory; faster).
    #[arg(long, global = true, default_value = "systrap", value_parser = ["ptrace", "systrap"])]
    pub platform: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and run a container, waiting for it to exit.
    Run(commands::run::RunArgs),
    /// Write a default config.json.
    Spec(commands::spec::SpecArgs),
    /// List the system calls the sandbox serves.
    Syscalls,
    /// (internal) Run the sentry.
    #[command(hide = true)]
    Boot(commands::boot::BootArgs),
    /// (internal) Run a gofer.
    #[command(hide = true)]
    Gofer(commands::gofer::GoferArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(a) => commands::run::run(&cli, a),
        Command::Spec(a) => commands::spec::spec(a),
        Command::Syscalls => commands::syscalls::syscalls(),
        Command::Boot(a) => commands::boot::boot(&cli, a),
        Command::Gofer(a) => commands::gofer::gofer(&cli, a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            logging::report_error(&cli, &e);
            ExitCode::FAILURE
        }
    }
}
