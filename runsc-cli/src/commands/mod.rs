//! One module per command.
pub mod boot;
pub mod exec;
pub mod gofer;
pub mod inspect;
pub mod lifecycle;
pub mod run;
pub mod spec;
pub mod syscalls;

/// Set by `cordon run` on the sandbox processes it starts: its pid.
pub const PARENT_PID_ENV: &str = "CORDON_PARENT_PID";

/// A sandbox process started by `cordon run` is killed when `cordon run`
/// dies, even by SIGKILL, so that nothing of the sandbox is left behind.
pub fn die_with_parent() {
    let Some(want) = std::env::var(PARENT_PID_ENV).ok().and_then(|v| v.parse::<i32>().ok()) else { return };
    if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_err()
        || nix::unistd::getppid().as_raw() != want
    {
        // Already orphaned (or cannot tell): do not run on alone.
        std::process::exit(1);
    }
}
