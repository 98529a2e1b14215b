//! A process's stdio as containerd hands it over: paths of fifos that ctr
//! (or the CRI's log writer) reads and writes, or `file://` URIs. Without
//! a terminal the sandbox gets the output fifos themselves (no copying in
//! the shim) and stdin through a pipe, so that CloseIO can end it; with a
//! terminal the shim copies between the pty master and the fifos.
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::console;
use crate::ShimError;

/// Where a process's stdio goes, as containerd names it.
#[derive(Clone, Debug, Default)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

fn io_error(what: &str, path: &str, e: std::io::Error) -> ShimError {
    ShimError::Io(format!("opening {what} {path:?}: {e}"))
}

/// An output: a fifo (opened read-write so that the open never waits for
/// the reader), a `file://` URI (appended to), or nothing.
fn open_output(path: &str) -> Result<OwnedFd, ShimError> {
    let file = if path.is_empty() {
        OpenOptions::new().write(true).open("/dev/null")
    } else if let Some(file) = path.strip_prefix("file://") {
        if let Some(dir) = std::path::Path::new(file).parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error("the output file's directory", file, e))?;
        }
        OpenOptions::new().create(true).append(true).open(file)
    } else if path.starts_with("binary://") {
        return Err(ShimError::Unsupported(format!("stdio {path:?}: binary logging is not supported")));
    } else {
        OpenOptions::new().read(true).write(true).custom_flags(libc::O_CLOEXEC).open(path)
    };
    Ok(file.map_err(|e| io_error("output", path, e))?.into())
}

/// The stdin fifo, opened without waiting for its writer.
fn open_input(path: &str) -> Result<Option<File>, ShimError> {
    if path.is_empty() {
        return Ok(None);
    }
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map(Some)
        .map_err(|e| io_error("stdin", path, e))
}

/// The shim's side of a process's stdio.
#[derive(Default)]
pub struct ProcessIo {
    /// Dropping it ends the copy of stdin (CloseIO).
    stdin_stop: Mutex<Option<OwnedFd>>,
    /// Written when the process ended: the output copier drains and stops.
    output_stop: Option<OwnedFd>,
    output_done: Option<Receiver<()>>,
    /// The terminal's pty master.
    master: Option<std::sync::Arc<OwnedFd>>,
}

/// Copies `src` (a non-blocking fifo) to `dst` until its writer goes
/// away or `stop` is closed.
fn copy_input(src: File, dst: OwnedFd, stop: OwnedFd) {
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = [PollFd::new(src.as_fd(), PollFlags::POLLIN), PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return;
        }
        match nix::unistd::read(src.as_raw_fd(), &mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if console::write_all(dst.as_fd(), &buf[..n]).is_err() {
                    return;
                }
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ShimError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::Io(format!("creating a pipe: {e}")))
}

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), ShimError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| ShimError::Io(format!("starting a thread: {e}")))
}

impl ProcessIo {
    /// Stdio for a process without a terminal: the fds to hand to the
    /// sandbox (stdin, stdout, stderr), and the shim's side.
    pub fn direct(paths: &StdioPaths) -> Result<([OwnedFd; 3], ProcessIo), ShimError> {
        let mut io = ProcessIo::default();
        let stdin: OwnedFd = match open_input(&paths.stdin)? {
            None => File::open("/dev/null").map_err(|e| io_error("stdin", "/dev/null", e))?.into(),
            Some(fifo) => {
                let (r, w) = pipe()?;
                let (stop_r, stop_w) = pipe()?;
                spawn_named("stdin", move || copy_input(fifo, w, stop_r))?;
                io.stdin_stop = Mutex::new(Some(stop_w));
                r
            }
        };
        let stdout = open_output(&paths.stdout)?;
        let stderr = if !paths.stderr.is_empty() && paths.stderr == paths.stdout {
            stdout.try_clone().map_err(|e| ShimError::Io(e.to_string()))?
        } else {
            open_output(&paths.stderr)?
        };
        Ok(([stdin, stdout, stderr], io))
    }

    /// Stdio of a process with a terminal: copies the stdin fifo to the
    /// pty master and the master to the stdout fifo.
    pub fn console(paths: &StdioPaths, master: OwnedFd) -> Result<ProcessIo, ShimError> {
        let master = std::sync::Arc::new(master);
        let mut io = ProcessIo::default();
        if let Some(fifo) = open_input(&paths.stdin)? {
            let to = master.try_clone().map_err(|e| ShimError::Io(e.to_string()))?;
            let (stop_r, stop_w) = pipe()?;
            spawn_named("console-in", move || copy_input(fifo, to, stop_r))?;
            io.stdin_stop = Mutex::new(Some(stop_w));
        }
        let out = open_output(&paths.stdout)?;
        let (stop_r, stop_w) = pipe()?;
        let (done_tx, done_rx) = channel();
        let m = master.clone();
        spawn_named("console-out", move || {
            console::copy_output(&m, out.as_fd(), &stop_r);
            let _ = done_tx.send(());
        })?;
        io.output_stop = Some(stop_w);
        io.output_done = Some(done_rx);
        io.master = Some(master);
        Ok(io)
    }

    /// CloseIO: the process's stdin ends.
    pub fn close_stdin(&self) {
        self.stdin_stop.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// ResizePty: sets the terminal's size (the process's session leader
    /// gets SIGWINCH).
    pub fn resize(&self, width: u32, height: u32) -> Result<(), ShimError> {
        let Some(master) = &self.master else {
            return Err(ShimError::FailedPrecondition("the process has no terminal".into()));
        };
        let ws = libc::winsize {
            ws_row: height.min(u16::MAX as u32) as u16,
            ws_col: width.min(u16::MAX as u32) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        console::set_winsize(master.as_fd(), &ws).map_err(|e| ShimError::Io(format!("resizing the terminal: {e}")))
    }

    /// The process ended: its last output reaches containerd (waiting a
    /// second at most), then the copies stop.
    pub fn finish(&mut self) {
        if let Some(stop) = self.output_stop.take() {
            let _ = nix::unistd::write(&stop, b"x");
        }
        if let Some(done) = self.output_done.take() {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
        self.close_stdin();
    }
}

/// A socket `cordon` sends a terminal's pty master to (`--console-socket`).
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> Result<ConsoleSocket, ShimError> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // In the temporary directory: bundle paths can be too long for a
        // socket's name.
        let path = std::env::temp_dir().join(format!("cordon-shim-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| ShimError::Io(format!("binding the console socket {}: {e}", path.display())))?;
        Ok(ConsoleSocket { path, listener })
    }

    /// The master `cordon` sent (it has, once the command succeeded).
    pub fn receive(&self) -> Result<OwnedFd, ShimError> {
        let fail = |what: &str| ShimError::Io(format!("receiving the console: {what}"));
        self.listener.set_nonblocking(true).map_err(|e| fail(&e.to_string()))?;
        let (conn, _) = self.listener.accept().map_err(|e| fail(&e.to_string()))?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| fail(&e.to_string()))?;
        let mut name = [0u8; 64];
        let mut iov = [std::io::IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
            .map_err(|e| fail(&e.to_string()))?;
        let mut received = Vec::new();
        for cmsg in msg.cmsgs().map_err(|e| fail(&e.to_string()))? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // SAFETY: SCM_RIGHTS just installed `fd` in our table
                    // and nothing else owns it (any beyond the first are
                    // closed when `received` drops).
                    #[allow(unsafe_code)]
                    received.push(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
                }
            }
        }
        received.into_iter().next().ok_or_else(|| fail("no file descriptor came"))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
