//! The shim is the subreaper of everything it starts: the `cordon`
//! commands it runs, and the processes their pid files name (a sandbox's
//! sentry, an exec'd process's stand-in), which become its children when
//! the command that started them exits. One thread reaps them all; the
//! rest of the shim asks it for a pid's end (never `waitpid` elsewhere,
//! or the two would race for the status). The shim crate's own children
//! are reported to its monitor.
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long an end nobody asked for is kept.
const UNCLAIMED_FOR: Duration = Duration::from_secs(30);

/// What to do when a watched process ends, given its exit status as
/// containerd wants it (the code, or 128 + the signal).
pub type OnExit = Box<dyn FnOnce(u32) + Send>;

#[derive(Default)]
struct Reaped {
    /// Ends nobody has asked for yet, by pid, with when they came. Only
    /// the moment between a command's exit and the shim reading its pid
    /// file needs them: older ones are dropped (the pid may be reused).
    exited: HashMap<i32, (u32, Instant)>,
    /// Watchers of processes that have not ended yet.
    watchers: HashMap<i32, OnExit>,
}

#[derive(Default)]
pub struct Reaper {
    reaped: Mutex<Reaped>,
    /// Notified when a process was reaped.
    changed: Condvar,
}

/// containerd's exit status for a wait status.
fn exit_status(s: WaitStatus) -> Option<(i32, u32)> {
    match s {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code as u32)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as u32)),
        _ => None,
    }
}

/// Blocks SIGCHLD in the calling thread and every thread it starts later
/// (call first thing in `main`): the reaper takes it with `sigwait`.
/// Children do not inherit the mask (std's spawn resets it).
pub fn block_sigchld() {
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    let _ = chld.thread_block();
}

impl Reaper {
    /// Starts the reaping thread.
    pub fn start() -> Arc<Reaper> {
        let reaper = Arc::new(Reaper::default());
        let r = reaper.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || r.reap_forever())
            .expect("starting the reaper thread");
        reaper
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reaped> {
        self.reaped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reaps whatever ended, then sleeps until SIGCHLD (blocked in every
    /// thread by `block_sigchld`, so it stays pending for `sigwait`).
    fn reap_forever(&self) {
        let mut chld = SigSet::empty();
        chld.add(Signal::SIGCHLD);
        loop {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                    Ok(status) => self.reaped(status),
                    Err(Errno::EINTR) => {}
                    Err(e) => {
                        tracing::error!("waitpid: {e}");
                        break;
                    }
                }
            }
            let _ = chld.wait();
        }
    }

    fn reaped(&self, status: WaitStatus) {
        let Some((pid, code)) = exit_status(status) else { return };
        let watcher = {
            let mut r = self.lock();
            let w = r.watchers.remove(&pid);
            if w.is_none() {
                let now = Instant::now();
                r.exited.retain(|_, (_, at)| now.duration_since(*at) < UNCLAIMED_FOR);
                r.exited.insert(pid, (code, now));
            }
            w
        };
        self.changed.notify_all();
        match watcher {
            // Watchers wait for output and publish events: never in the
            // way of the next reap.
            Some(w) => {
                if let Err(e) = std::thread::Builder::new().name("exit".into()).spawn(move || w(code)) {
                    tracing::error!("cannot handle the exit of {pid}: {e}");
                }
            }
            // The shim crate waits for its own children (the rootfs
            // mount's) through its monitor.
            None => {
                let _ = containerd_shim::monitor::monitor_notify_by_pid(pid, code as i32);
            }
        }
    }

    /// Waits for `pid` to end; returns its exit status.
    pub fn wait(&self, pid: i32) -> u32 {
        let mut r = self.lock();
        loop {
            if let Some((code, _)) = r.exited.remove(&pid) {
                return code;
            }
            r = self.changed.wait(r).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Calls `on_exit` (on a thread of its own) when `pid` ends, or at once
    /// if it already has.
    pub fn watch(&self, pid: i32, on_exit: OnExit) {
        let mut r = self.lock();
        match r.exited.remove(&pid) {
            Some((code, _)) => {
                drop(r);
                on_exit(code);
            }
            None => {
                r.watchers.insert(pid, on_exit);
            }
        }
    }
}
