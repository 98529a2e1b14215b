//! A process's console (`process.terminal`): the guest gets a terminal of
//! the sandbox's own devpts, with its line discipline and job control, and
//! the sentry joins that terminal's master to a host pty slave that
//! `cordon` made (whose master went to `--console-socket`, or to the
//! terminal of the person running `cordon run`/`exec -t`).
//!
//! The host slave is set raw, so it passes bytes through unchanged: what
//! the person types reaches the guest's line discipline as typed (Ctrl-C
//! included, which becomes SIGINT for the guest's foreground process
//! group, never a host signal), and the guest's output leaves as its
//! terminal processed it. The host pty's window size is copied to the
//! guest's terminal when the sentry hears it changed (a host SIGWINCH, or
//! a `Resize` request on an exec connection).
//!
//! Two threads copy: host to guest (until the host master closes, which
//! hangs the guest's terminal up) and guest to host (until every guest
//! end of the terminal is closed).
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use syscalls::Errno;

use crate::config::ProcessConfig;
use crate::kernel::Kernel;
use crate::task::ProcessStdio;
use crate::tty::{Terminal, TtyEnd};

const TIOCGWINSZ: u32 = 0x5413;

/// A guest terminal joined to a host pty slave.
pub struct HostConsole {
    pub term: Arc<Terminal>,
    host: Arc<OwnedFd>,
    /// The guest terminal's master end, dropped on a hang-up.
    master: Mutex<Option<TtyEnd>>,
    /// Output bytes taken from the guest terminal, and written to the host.
    taken: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl HostConsole {
    /// Makes the guest terminal for host slave `host` (owned by
    /// `owner`, uid and gid) and starts copying. The window size starts as
    /// the host's. Returns the console and the process's end of the
    /// terminal (the copiers end once every such end is closed).
    pub fn start(kernel: &Arc<Kernel>, host: OwnedFd, owner: (u32, u32)) -> Result<(Arc<HostConsole>, TtyEnd), Errno> {
        set_raw(&host);
        let master = Terminal::open_console(kernel.events.clone(), owner)?;
        let slave = master.term.open_slave(true)?;
        let console = Arc::new(HostConsole {
            term: master.term.clone(),
            host: Arc::new(host),
            master: Mutex::new(Some(master)),
            taken: Default::default(),
            written: Default::default(),
        });
        console.refresh_winsize(kernel);
        let (stop_r, stop_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Errno::from_raw(e as i32))?;
        let input = {
            let (c, k) = (console.clone(), kernel.clone());
            move || c.copy_in(&k, stop_r)
        };
        let output = {
            let c = console.clone();
            move || c.copy_out(stop_w)
        };
        for (name, spawned) in [
            ("console-in", std::thread::Builder::new().name("console-in".into()).spawn(input)),
            ("console-out", std::thread::Builder::new().name("console-out".into()).spawn(output)),
        ] {
            if let Err(e) = spawned {
                tracing::warn!(target: "sentry::tty", "cannot start the {name} thread: {e}");
                return Err(Errno::EAGAIN);
            }
        }
        Ok((console, slave))
    }

    /// Copies the host pty's window size to the guest terminal (which
    /// signals SIGWINCH to its foreground group if it changed).
    pub fn refresh_winsize(&self, kernel: &Kernel) {
        let mut b = [0u8; 8];
        if crate::host::ioctl_with_buf(self.host.as_raw_fd(), TIOCGWINSZ, &mut b).is_ok() {
            self.term.set_winsize(kernel, crate::tty::winsize_from_bytes(&b));
        }
    }

    /// Waits (until `deadline` at most) for the guest's output so far to
    /// reach the host pty, so that it is there before the process is
    /// reported ended.
    pub fn flush(&self, deadline: Instant) {
        while Instant::now() < deadline {
            let pending = self.term.output_pending();
            if !pending && self.written.load(Ordering::SeqCst) == self.taken.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The host master closed: the guest terminal loses its master, so
    /// its readers see end of file and its writers EIO, as after a hang-up.
    fn hang_up(&self) {
        self.master.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Host to guest: what is typed goes through the guest's line
    /// discipline.
    fn copy_in(&self, kernel: &Kernel, stop: OwnedFd) {
        let mut buf = [0u8; 4096];
        loop {
            let mut fds =
                [PollFd::new(self.host.as_fd(), PollFlags::POLLIN), PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
            if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                return;
            }
            match nix::unistd::read(self.host.as_raw_fd(), &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => {
                    self.hang_up();
                    return;
                }
                Ok(n) => self.term.input(kernel, &buf[..n]),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(e) => {
                    tracing::warn!(target: "sentry::tty", "reading the host console: {e}");
                    self.hang_up();
                    return;
                }
            }
        }
    }

    /// Guest to host: the terminal's output, until no guest end is left.
    /// Ends the input copier when it ends.
    fn copy_out(&self, stop: OwnedFd) {
        let mut out = Vec::new();
        while self.term.take_output(&mut out, &self.taken) {
            let mut rest = &out[..];
            while !rest.is_empty() {
                match nix::unistd::write(self.host.as_fd(), rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                    Err(_) => {
                        // The host master is gone: what is left has nowhere
                        // to go.
                        rest = &[];
                        self.hang_up();
                    }
                }
            }
            self.written.fetch_add(out.len() as u64, Ordering::SeqCst);
            out.clear();
        }
        let _ = nix::unistd::write(&stop, b"x");
    }
}

/// The stdio of a process started from outside: its host fds, or with
/// `process.terminal` a console on the host pty slave it was given (all
/// three fds are that slave).
pub fn process_stdio(
    kernel: &Arc<Kernel>,
    cfg: &ProcessConfig,
    stdio: [OwnedFd; 3],
) -> Result<(ProcessStdio, Option<Arc<HostConsole>>), crate::BootError> {
    if !cfg.terminal {
        return Ok((ProcessStdio::Host(stdio), None));
    }
    let [host, _, _] = stdio;
    let (console, end) = HostConsole::start(kernel, host, (cfg.uid, cfg.gid))
        .map_err(|e| crate::BootError::Exec { msg: format!("making the console: {}", e.description()), code: 1 })?;
    Ok((ProcessStdio::Terminal(end), Some(console)))
}

/// Sets the host pty slave raw: no echo, no line editing, no signal
/// characters, no output processing (the guest's terminal does all that).
fn set_raw(fd: &OwnedFd) {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    match tcgetattr(fd) {
        Ok(mut t) => {
            cfmakeraw(&mut t);
            if let Err(e) = tcsetattr(fd, SetArg::TCSANOW, &t) {
                tracing::warn!(target: "sentry::tty", "cannot set the host console raw: {e}");
            }
        }
        Err(e) => tracing::warn!(target: "sentry::tty", "the console is not a host terminal: {e}"),
    }
}
