//! `cordon`: an OCI runtime that runs containers in the Cordon sandbox.
#![deny(unsafe_code)]

mod bundle;
mod commands;
mod console;
mod isolate;
mod logging;
mod sandbox;
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
    /// Accepted for runc compatibility (the sandbox's cgroups are not
    /// managed through systemd).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Network of the sandbox: `none` (only loopback) is what there is.
    #[arg(long, global = true, default_value = "none", value_parser = ["none", "sandbox", "host"])]
    pub network: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and run a container, waiting for it to exit.
    Run(commands::run::RunArgs),
    /// Create a container; its process waits for `start`.
    Create(commands::run::CreateArgs),
    /// Start a created container's process.
    Start(commands::lifecycle::IdArgs),
    /// Print a container's state (OCI state JSON).
    State(commands::lifecycle::IdArgs),
    /// List containers.
    List(commands::lifecycle::ListArgs),
    /// Send a signal to a container's init (or all its processes).
    Kill(commands::lifecycle::KillArgs),
    /// Delete a container and everything of its sandbox.
    Delete(commands::lifecycle::DeleteArgs),
    /// Pause every process of a container.
    Pause(commands::lifecycle::IdArgs),
    /// Resume a paused container.
    Resume(commands::lifecycle::IdArgs),
    /// Wait for a container's init to exit; exit with its status.
    Wait(commands::lifecycle::IdArgs),
    /// List the processes of a container.
    Ps(commands::inspect::PsArgs),
    /// Print a container's resource usage.
    Events(commands::inspect::EventsArgs),
    /// Change a container's resource limits.
    Update(commands::inspect::UpdateArgs),
    /// Run a new process in a running container.
    Exec(commands::exec::ExecArgs),
    /// (internal) Stand for a detached exec'd process.
    #[command(hide = true)]
    ExecWait(commands::exec::ExecWaitArgs),
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
        Command::Create(a) => commands::run::create(&cli, a),
        Command::Start(a) => commands::lifecycle::start(&cli, a),
        Command::State(a) => commands::lifecycle::state(&cli, a),
        Command::List(a) => commands::lifecycle::list(&cli, a),
        Command::Kill(a) => commands::lifecycle::kill(&cli, a),
        Command::Delete(a) => commands::lifecycle::delete(&cli, a),
        Command::Pause(a) => commands::lifecycle::pause(&cli, a, true),
        Command::Resume(a) => commands::lifecycle::pause(&cli, a, false),
        Command::Wait(a) => commands::lifecycle::wait(&cli, a),
        Command::Ps(a) => commands::inspect::ps(&cli, a),
        Command::Events(a) => commands::inspect::events(&cli, a),
        Command::Update(a) => commands::inspect::update(&cli, a),
        Command::Exec(a) => commands::exec::exec(&cli, a),
        Command::ExecWait(a) => commands::exec::exec_wait(&cli, a),
        Command::Spec(a) => commands::spec::spec(a),
        Command::Syscalls => commands::syscalls::syscalls(),
        Command::Boot(a) => commands::boot::boot(&cli, a),
        Command::Gofer(a) => commands::gofer::gofer(&cli, a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            logging::report_error(&cli, &e);
            match e.downcast_ref::<sandbox::Failure>() {
                Some(f) => ExitCode::from(f.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}
