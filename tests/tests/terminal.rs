//! Terminals (`process.terminal`), driven as containerd's runc shim drives
//! them: the pty master comes over `--console-socket`, the test types into
//! it, resizes it and reads what the guest wrote. Every transcript is
//! compared byte for byte with runc's on the same bundle. A person typing
//! into `cordon run` and `cordon exec -t` is played by tmux.
//!
//! The test process is a child subreaper, so the pid-file processes become
//! its children and their exit status can be checked.

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cordon_tests::{
    busybox_rootfs, cordon_command, devpts_mount, oci_config, runc_bin, shell_line, standard_mounts, unique_id,
    Process, Sandbox, Tmux,
};

/// One OCI runtime's CLI (runc or cordon) with its state root.
struct Runtime {
    name: &'static str,
    root: PathBuf,
    log_dir: Option<PathBuf>,
}

impl Runtime {
    fn cordon(sb: &Sandbox) -> Runtime {
        Runtime { name: "cordon", root: sb.state_root.clone(), log_dir: sb.log_dir.clone() }
    }

    fn runc(sb: &Sandbox) -> Runtime {
        Runtime { name: "runc", root: sb.tmp().join("runc"), log_dir: None }
    }

    fn command(&self) -> Command {
        if self.name == "runc" {
            let mut c = Command::new(runc_bin());
            c.arg("--root").arg(&self.root);
            c
        } else {
            cordon_command(&self.root, self.log_dir.as_deref())
        }
    }

    /// Runs `ARGS` with stdin and stdout null (a container started with
    /// `run -d` keeps its stdio: a pipe would never end) and returns its
    /// status and stderr.
    fn run(&self, args: &[&str]) -> (bool, String) {
        let err = std::env::temp_dir().join(unique_id("rt-stderr"));
        let file = fs::File::create(&err).expect("stderr file");
        let status = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .status()
            .expect("spawn runtime");
        let text = fs::read_to_string(&err).unwrap_or_default();
        let _ = fs::remove_file(&err);
        (status.success(), text)
    }

    /// Runs `ARGS` and asserts success.
    fn ok(&self, args: &[&str]) {
        let (ok, err) = self.run(args);
        assert!(ok, "{} {args:?} failed: {err}", self.name);
    }

    /// Runs `ARGS` and asserts failure with `msg` on stderr.
    fn fails(&self, args: &[&str], msg: &str) {
        let (ok, err) = self.run(args);
        assert!(!ok, "{} {args:?} should fail", self.name);
        assert!(err.contains(msg), "{} {args:?}: stderr lacks {msg:?}: {err}", self.name);
    }

    fn delete_all(&self) {
        for e in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let _ = self.run(&["delete", "--force", &id]);
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.delete_all();
    }
}

fn subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
}

/// Waits for child `pid` (ours, as subreaper); returns its exit code.
fn reap(pid: i32) -> i32 {
    let status = cordon_tests::reap(pid);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// A console socket: a listening unix socket the runtime sends the pty
/// master to.
struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    fn new(dir: &Path) -> ConsoleSocket {
        let path = dir.join(format!("console-{}.sock", unique_id("c")));
        let listener = UnixListener::bind(&path).expect("bind console socket");
        listener.set_nonblocking(true).expect("nonblocking");
        ConsoleSocket { path, listener }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("path")
    }

    /// Accepts the runtime's connection and takes the master it sends.
    fn receive(&self) -> Pty {
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no console was sent");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).expect("blocking");
        let mut data = [0u8; 256];
        let mut control = [0u8; 64];
        let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
        // SAFETY: an all-zero msghdr is valid; the pointers set below stay
        // valid for the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len();
        // SAFETY: msg describes live local buffers.
        let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, 0) };
        assert!(n > 0, "recvmsg on the console socket");
        // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR checks the length.
        let c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        assert!(!c.is_null(), "no fd came with the console message");
        // SAFETY: c is a non-null header inside `control`, filled by recvmsg.
        let hdr = unsafe { std::ptr::read_unaligned(c) };
        let (level, kind) = (hdr.cmsg_level, hdr.cmsg_type);
        // SAFETY: CMSG_DATA of a valid header points inside `control`.
        let data = unsafe { libc::CMSG_DATA(c) };
        // SAFETY: an SCM_RIGHTS message's data holds (at least) one fd.
        let fd = unsafe { std::ptr::read_unaligned(data as *const i32) };
        assert_eq!((level, kind), (libc::SOL_SOCKET, libc::SCM_RIGHTS));
        // SAFETY: the fd was just received and is ours alone.
        Pty { fd: unsafe { OwnedFd::from_raw_fd(fd) }, seen: Vec::new(), cursor: 0 }
    }
}

/// A pty master as the shim holds it.
struct Pty {
    fd: OwnedFd,
    seen: Vec<u8>,
    cursor: usize,
}

impl Pty {
    /// Reads what is there within `timeout`; false at end (EIO).
    fn read_some(&mut self, timeout: Duration) -> bool {
        let mut p = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) };
        if r <= 0 {
            return true;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a live local buffer of its length.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return false;
        }
        self.seen.extend_from_slice(&buf[..n as usize]);
        true
    }

    /// Reads until `marker` appears after what was already matched.
    fn expect(&mut self, marker: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = &self.seen[self.cursor..];
            if let Some(i) = text.windows(marker.len()).position(|w| w == marker.as_bytes()) {
                self.cursor += i + marker.len();
                return;
            }
            assert!(Instant::now() < deadline, "no {marker:?} in:\n{}", String::from_utf8_lossy(&self.seen));
            if !self.read_some(Duration::from_millis(100)) {
                panic!("the terminal closed before {marker:?}:\n{}", String::from_utf8_lossy(&self.seen));
            }
        }
    }

    fn send(&self, bytes: &[u8]) {
        // SAFETY: writes from a live buffer of its length.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        assert_eq!(n, bytes.len() as isize, "write to the pty master");
    }

    fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads a valid winsize.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(r, 0, "TIOCSWINSZ");
    }

    /// Reads to the end (every slave closed) and returns the transcript.
    fn finish(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.read_some(Duration::from_millis(100)) {
            assert!(Instant::now() < deadline, "the terminal stayed open:\n{}", String::from_utf8_lossy(&self.seen));
        }
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

/// config.json for `process` with a terminal and runc's standard mounts.
fn terminal_config(process: &Process, terminal: bool) -> serde_json::Value {
    let mut config = oci_config(process, &busybox_rootfs().to_string_lossy());
    let mut mounts = standard_mounts();
    mounts.push(devpts_mount());
    config["mounts"] = serde_json::Value::Array(mounts);
    config["process"]["terminal"] = terminal.into();
    config
}

/// The init console: tty, isatty on 0/1/2, the terminal's settings, the
/// size set before start, Ctrl-C to the foreground group (init's trap
/// runs, the child dies by SIGINT), a resize as SIGWINCH with the new
/// size, and init's exit status from the pid-file process.
fn init_console_transcript(sb: &Sandbox, rt: &Runtime) -> (String, i32) {
    let id = unique_id(&sb.name);
    let sock = ConsoleSocket::new(sb.tmp());
    let pid_file = sb.tmp().join(format!("{id}.pid"));
    let bundle = sb.bundle.dir.to_str().expect("path");
    rt.ok(&[
        "create",
        "--bundle",
        bundle,
        "--console-socket",
        sock.path(),
        "--pid-file",
        pid_file.to_str().expect("path"),
        &id,
    ]);
    let mut pty = sock.receive();
    pty.resize(30, 100);
    rt.ok(&["start", &id]);
    pty.expect("ready1");
    pty.send(b"go\r");
    pty.expect("sleeping");
    pty.send(b"\x03");
    pty.expect("ready2");
    pty.send(b"y\r");
    pty.expect("y\r\n");
    pty.resize(50, 132);
    let pid: i32 = fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("pid");
    let transcript = pty.finish();
    let code = reap(pid);
    rt.ok(&["delete", &id]);
    (transcript, code)
}

#[test]
fn init_console_through_the_console_socket_is_runcs() {
    subreaper();
    let sb = Sandbox::with_shared_rootfs("tty-init", &busybox_rootfs());
    let script = "tty; stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; stty -a; \
        trap 'echo got-INT' INT; echo ready1; read x; sh -c 'echo sleeping; exec sleep 5'; echo after-sleep $?; \
        trap 'stty size; exit 7' WINCH; echo ready2; read y; while :; do sleep 0.05; done";
    sb.bundle.write_config_value(&terminal_config(&Process::sh(script), true));
    let (runc, cordon) = (Runtime::runc(&sb), Runtime::cordon(&sb));
    let (want, want_code) = init_console_transcript(&sb, &runc);
    let (got, got_code) = init_console_transcript(&sb, &cordon);
    assert!(want.contains("/dev/pts/0") && want.contains("30 100") && want.contains("50 132"), "runc:\n{want}");
    assert_eq!(got, want, "cordon's console transcript differs from runc's");
    assert_eq!((got_code, want_code), (7, 7), "init's exit status through the pid file");
}

/// An exec'd process's console (`exec -t --detach --console-socket`, as
/// the shim runs `ctr task exec -t`): the resize reaches it as SIGWINCH,
/// Ctrl-C interrupts its foreground group, and the pid-file process exits
/// with its status.
fn exec_console_transcript(sb: &Sandbox, rt: &Runtime, script: &str) -> (String, i32) {
    let id = unique_id(&sb.name);
    let bundle = sb.bundle.dir.to_str().expect("path");
    rt.ok(&["run", "-d", "--bundle", bundle, &id]);
    let sock = ConsoleSocket::new(sb.tmp());
    let pid_file = sb.tmp().join(format!("{id}-exec.pid"));
    let pid_path = pid_file.to_str().expect("path");
    rt.ok(&[
        "exec",
        "-t",
        "--detach",
        "--console-socket",
        sock.path(),
        "--pid-file",
        pid_path,
        &id,
        "sh",
        "-c",
        script,
    ]);
    let mut pty = sock.receive();
    pty.expect("ready");
    pty.resize(40, 120);
    pty.expect("winched");
    pty.send(b"go\r");
    pty.expect("sleeping");
    pty.send(b"\x03");
    let pid: i32 = fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("pid");
    let transcript = pty.finish();
    let code = reap(pid);
    rt.ok(&["delete", "--force", &id]);
    (transcript, code)
}

#[test]
fn exec_console_through_the_console_socket_is_runcs() {
    subreaper();
    let sb = Sandbox::with_shared_rootfs("tty-exec", &busybox_rootfs());
    let init = Process::sh("while :; do sleep 1000; done");
    sb.bundle.write_config_value(&terminal_config(&init, false));
    let script = "tty; [ -t 0 ] && echo isatty; trap 'echo winched' WINCH; echo ready; \
        while ! read x; do :; done; stty size; trap 'echo got-INT' INT; \
        sh -c 'echo sleeping; exec sleep 5'; echo after-sleep $?; exit 5";
    let (runc, cordon) = (Runtime::runc(&sb), Runtime::cordon(&sb));
    let (want, want_code) = exec_console_transcript(&sb, &runc, script);
    let (got, got_code) = exec_console_transcript(&sb, &cordon, script);
    assert!(want.contains("40 120") && want.contains("after-sleep 130"), "runc:\n{want}");
    assert_eq!(got, want, "cordon's exec console transcript differs from runc's");
    assert_eq!((got_code, want_code), (5, 5), "the exec'd process's status through the pid file");
}

#[test]
fn console_flags_are_checked_as_runc_checks_them() {
    let sb = Sandbox::with_shared_rootfs("tty-errors", &busybox_rootfs());
    let bundle = sb.bundle.dir.to_str().expect("path");
    let cordon = Runtime::cordon(&sb);
    sb.bundle.write_config_value(&terminal_config(&Process::sh("true"), true));
    let id = unique_id(&sb.name);
    cordon.fails(
        &["create", "--bundle", bundle, &id],
        "cannot allocate tty if runc will detach without setting console socket",
    );
    cordon.fails(&["run", "-d", "--bundle", bundle, &id], "cannot allocate tty");
    sb.bundle.write_config_value(&terminal_config(&Process::sh("true"), false));
    let sock = ConsoleSocket::new(sb.tmp());
    cordon.fails(
        &["create", "--bundle", bundle, "--console-socket", sock.path(), &id],
        "cannot use console socket if runc will not allocate tty",
    );
    cordon_tests::assert_nothing_left(&sb.state_root, &id);
}

/// A person at a terminal: `cordon run` of an interactive shell in tmux,
/// typing, Ctrl-C of a foreground job, Ctrl-Z and jobs, a window resize,
/// and exit with a status; then `cordon exec -t` into a running container.
#[test]
fn a_person_types_into_cordon_run_and_exec_t() {
    let sb = Sandbox::with_shared_rootfs("tty-tmux", &busybox_rootfs());
    let cordon = Runtime::cordon(&sb);
    sb.bundle.write_config_value(&terminal_config(&Process::new(&["sh"]), true));
    let id = unique_id(&sb.name);
    let status = sb.tmp().join("status");
    let mut run = cordon.command();
    run.args(["run", "--bundle", sb.bundle.dir.to_str().expect("path"), &id]);
    let line = format!("{}; echo $? > {}", shell_line(&run), status.display());
    let t = Tmux::start(&line);
    // capture-pane drops trailing blanks.
    let prompt = "/ #";
    t.wait_for(prompt, 1);
    t.keys(&["tty; stty size", "Enter"]);
    t.wait_for("30 100", 1);
    t.type_then_key("sleep 100", "C-c");
    t.wait_for(prompt, 3);
    t.keys(&["echo after-int $?", "Enter"]);
    t.wait_for("after-int 130", 1);
    t.type_then_key("sleep 200", "C-z");
    t.wait_for("Stopped", 1);
    t.keys(&["jobs; kill -9 %1", "Enter"]);
    t.wait_for("Stopped", 2);
    t.resize(90, 25);
    t.keys(&["stty size; cat", "Enter"]);
    t.wait_for("25 90", 1);
    t.keys(&["typed-to-cat", "Enter"]);
    t.wait_for("typed-to-cat", 2);
    t.keys(&["C-d"]);
    t.wait_for("Killed", 1);
    let pane = t.pane();
    assert!(pane.contains("/dev/pts/0") && pane.contains("^C") && pane.contains("^Z"), "{pane}");
    t.keys(&["exit 7", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read_to_string(&status).unwrap_or_default().trim() != "7" {
        assert!(Instant::now() < deadline, "cordon run did not exit 7:\n{}", t.pane());
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(t);
    cordon_tests::assert_nothing_left(&sb.state_root, &id);

    // exec -t into a running container.
    sb.bundle.write_config_value(&terminal_config(&Process::sh("while :; do sleep 1000; done"), false));
    let id = unique_id(&sb.name);
    cordon.ok(&["run", "-d", "--bundle", sb.bundle.dir.to_str().expect("path"), &id]);
    let mut exec = cordon.command();
    exec.args(["exec", "-t", &id, "sh"]);
    let line = format!("{}; echo $? > {}", shell_line(&exec), status.display());
    let _ = fs::remove_file(&status);
    let t = Tmux::start(&line);
    t.wait_for(prompt, 1);
    t.keys(&["tty", "Enter"]);
    t.wait_for(prompt, 2);
    t.type_then_key("sleep 100", "C-c");
    t.wait_for(prompt, 3);
    t.resize(80, 20);
    t.keys(&["stty size", "Enter"]);
    t.wait_for("20 80", 1);
    let pane = t.pane();
    assert!(pane.contains("/dev/pts/0") && pane.contains("^C"), "{pane}");
    t.keys(&["exit 4", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read_to_string(&status).unwrap_or_default().trim() != "4" {
        assert!(Instant::now() < deadline, "cordon exec -t did not exit 4:\n{}", t.pane());
        std::thread::sleep(Duration::from_millis(50));
    }
    cordon.ok(&["delete", "--force", &id]);
}
