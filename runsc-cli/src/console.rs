//! Host side of `process.terminal`, as runc does it: a host pty pair per
//! terminal process. The slave is the process's stdio (the sentry makes it
//! the guest's console, see `sentry::console`); the master goes to
//! `--console-socket` (SCM_RIGHTS), or stays with `cordon run`/`exec`,
//! which copy it to and from their own terminal, put in raw mode.
#![allow(unsafe_code)] // pre_exec and TIOCSCTTY/TIOCGWINSZ ioctls, justified below

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// A host pty pair.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a host pty pair (both ends close-on-exec).
fn open_pty() -> Result<Pty> {
    let p = nix::pty::openpty(None, None).context("opening a pty for the terminal")?;
    for fd in [&p.master, &p.slave] {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    Ok(Pty { master: p.master, slave: p.slave })
}

/// The pty of a process, if it has a terminal, checked as runc checks
/// the console flags: a detached process with a terminal needs a console
/// socket, and a console socket needs a terminal. Without a socket the
/// master stays with us, and gets our terminal's window size before the
/// process can ask for it.
pub fn pty_for(terminal: bool, detached: bool, socket: Option<&Path>) -> Result<Option<Pty>> {
    match (terminal, socket) {
        (true, None) if detached => {
            bail!("cannot allocate tty if runc will detach without setting console socket")
        }
        (false, Some(_)) => bail!("cannot use console socket if runc will not allocate tty"),
        (false, None) => Ok(None),
        (true, _) => {
            let pty = open_pty()?;
            if socket.is_none() {
                copy_winsize(std::io::stdin().as_fd(), pty.master.as_fd());
            }
            Ok(Some(pty))
        }
    }
}

/// Sends the pty master to the console socket at `path`, as runc does (the
/// datagram's bytes are the master's name).
pub fn send_master(path: &Path, master: &OwnedFd) -> Result<()> {
    let sock =
        UnixStream::connect(path).with_context(|| format!("connecting to the console socket {}", path.display()))?;
    let fds = [master.as_raw_fd()];
    let name = b"/dev/ptmx";
    sendmsg::<()>(sock.as_raw_fd(), &[IoSlice::new(name)], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .with_context(|| format!("sending the console to {}", path.display()))?;
    Ok(())
}

/// Makes the process `cmd` starts lead a new session whose controlling
/// terminal is the tty on its fd `tty_fd` (after its stdio are set up):
/// it then gets the SIGWINCH of the tty's size changes.
pub fn lead_session_of(cmd: &mut Command, tty_fd: RawFd) {
    // SAFETY: the closure runs in the forked child before exec and makes
    // only the async-signal-safe calls of `lead_session`; it touches no
    // memory shared with the parent's other threads.
    unsafe {
        cmd.pre_exec(move || lead_session(tty_fd));
    }
}

/// setsid, then TIOCSCTTY on `tty_fd`.
fn lead_session(tty_fd: RawFd) -> std::io::Result<()> {
    // SAFETY: setsid takes no arguments.
    if unsafe { libc::setsid() } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
    if unsafe { libc::ioctl(tty_fd, libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Copies the window size of terminal `from` to pty `to` (false if `from`
/// is no terminal).
pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ fills the live winsize `ws`.
    if unsafe { libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } < 0 {
        return false;
    }
    set_winsize(to, &ws).is_ok()
}

/// Sets the window size of pty `to` (its session leader gets SIGWINCH).
pub fn set_winsize(to: BorrowedFd<'_>, ws: &libc::winsize) -> std::io::Result<()> {
    // SAFETY: TIOCSWINSZ reads the live winsize `ws`; `to` is borrowed open.
    if unsafe { libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The person's terminal in raw mode while it is attached to a container
/// (keys reach the guest's line discipline as typed); restored on drop.
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Puts our stdin in raw mode, if it is a terminal.
    pub fn enter() -> Option<RawMode> {
        let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
        let saved = tcgetattr(&fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// Our stdin and stdout joined to a pty master.
pub struct Attached {
    stop: OwnedFd,
    output: JoinHandle<()>,
}

/// Copies our stdin to `master` and `master` to our stdout.
pub fn attach(master: Arc<OwnedFd>) -> Result<Attached> {
    let (stop_r, stop_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let m = master.clone();
    // Left blocked in read when the container ends; the process exits.
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = nix::unistd::read(0, &mut buf) {
            if n == 0 || write_all(m.as_fd(), &buf[..n]).is_err() {
                return;
            }
        }
    });
    let output = std::thread::spawn(move || copy_output(&master, std::io::stdout().as_fd(), &stop_r));
    Ok(Attached { stop: stop_w, output })
}

impl Attached {
    /// The process ended: copies what output is left, then stops.
    pub fn finish(self) {
        let _ = nix::unistd::write(&self.stop, b"x");
        let _ = self.output.join();
    }
}

pub fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Master to `out` until the slave is gone (EIO), or until `stop` and no
/// more output comes for a moment.
pub fn copy_output(master: &OwnedFd, out: BorrowedFd<'_>, stop: &OwnedFd) {
    let mut buf = [0u8; 4096];
    let mut drain_until: Option<Instant> = None;
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let timeout = match drain_until {
            None => {
                fds.push(PollFd::new(stop.as_fd(), PollFlags::POLLIN));
                PollTimeout::NONE
            }
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left.as_millis() as u64).unwrap_or(PollTimeout::ZERO)
            }
        };
        match poll(&mut fds, timeout) {
            Ok(0) => return,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let stopped = fds.get(1).is_some_and(|f| f.revents().is_some_and(|r| !r.is_empty()));
        let readable = fds[0].revents().is_some_and(|r| !r.is_empty());
        if stopped {
            // The output the sandbox flushed is in the pty already: take
            // it, and what follows within a moment.
            drain_until = Some(Instant::now() + Duration::from_millis(50));
        }
        if readable {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    if write_all(out, &buf[..n]).is_err() {
                        return;
                    }
                    if drain_until.is_some() {
                        drain_until = Some(Instant::now() + Duration::from_millis(50));
                    }
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                _ => return,
            }
        }
    }
}
