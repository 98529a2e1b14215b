//! The control server: how `cordon` commands reach a running sandbox.
//!
//! The CLI binds a listening `SOCK_SEQPACKET` unix socket in the
//! container's state directory and hands it to the sentry before the
//! sentry isolates itself. Each command is one connection: a JSON
//! [`Request`] datagram, answered by JSON [`Reply`] datagrams. An `Exec`
//! carries the new process's stdio as host fds (`SCM_RIGHTS`); its
//! connection then stays open for the life of the process, taking
//! `Signal` requests for it and ending with its `Exited` reply. A client
//! that goes away before its process ends takes the process with it
//! (SIGKILL): the host process that stands for a guest process lives
//! exactly as long as it.
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno as HostErrno;
use nix::sys::socket::{self, ControlMessage, MsgFlags};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use syscalls::flags::sa;

use crate::config::ProcessConfig;
use crate::kernel::Kernel;
use crate::process::ThreadGroup;
use crate::signal::{default_action, user_info, DefaultAction};
use crate::task::{ExitStatus, Task};

/// Largest datagram either side sends (an exec's process with a large
/// environment still fits).
pub const MAX_MESSAGE: usize = 256 << 10;

/// What a `cordon` command asks of the sandbox.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Runs the container's init (after `create`).
    Start,
    /// The container's status.
    State,
    /// Sends `signal` to init, or with `all` to every process. On an exec
    /// connection: to the exec'd process.
    Signal {
        signal: i32,
        all: bool,
    },
    Pause,
    Resume,
    /// The processes of the sandbox.
    Processes,
    /// Starts a process; its stdio are the three fds sent along.
    Exec {
        process: ProcessConfig,
    },
    /// Waits for the container's init to end.
    Wait,
    /// Resource usage.
    Stats,
    /// Changes the limits that can change (`linux.resources`).
    Update {
        pids_limit: Option<i64>,
    },
    /// On an exec connection with a console: the host pty's window size
    /// changed (the sentry reads the new one from its slave).
    Resize,
}

/// The container's lifecycle status, as `cordon state` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// One process as `cordon ps` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    /// Milliseconds after the sandbox booted.
    pub started_ms: u64,
    /// CPU time used so far.
    pub cpu_ms: u64,
    pub comm: String,
}

/// Resource usage of the sandbox (`cordon events --stats`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub pids: u64,
    pub pids_limit: u64,
    /// Bytes of guest memory (the memory file's resident pages).
    pub memory_bytes: u64,
    /// CPU time of guest code, in nanoseconds.
    pub cpu_ns: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Ok,
    Error {
        msg: String,
    },
    State {
        status: Status,
        init_pid: i32,
    },
    Processes {
        list: Vec<ProcessInfo>,
    },
    Started {
        pid: i32,
    },
    /// A process ended; its status as wait(2) reports it.
    Exited {
        wait_status: i32,
    },
    Stats(Stats),
}

/// One end of a control connection.
pub struct Connection {
    sock: OwnedFd,
}

/// Why a control message could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the sandbox closed the connection")]
    Closed,
    #[error("control socket: {0}")]
    Io(HostErrno),
    #[error("control message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("control message of {0} bytes is too large")]
    TooLarge(usize),
}

impl Connection {
    pub fn new(sock: OwnedFd) -> Connection {
        if let Err(e) = socket::setsockopt(&sock, socket::sockopt::SndBuf, &(2 * MAX_MESSAGE)) {
            tracing::debug!(target: "sentry::control", "cannot raise the send buffer: {e}");
        }
        Connection { sock }
    }

    /// Sends `msg` as one datagram, with `fds` beside it.
    pub fn send<T: Serialize>(&self, msg: &T, fds: &[BorrowedFd<'_>]) -> Result<(), ControlError> {
        let buf = serde_json::to_vec(msg)?;
        if buf.len() > MAX_MESSAGE {
            return Err(ControlError::TooLarge(buf.len()));
        }
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let rights = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
        loop {
            match socket::sendmsg::<()>(
                self.sock.as_raw_fd(),
                &[IoSlice::new(&buf)],
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(HostErrno::EINTR) => continue,
                Err(HostErrno::EPIPE | HostErrno::ECONNRESET) => return Err(ControlError::Closed),
                Err(e) => return Err(ControlError::Io(e)),
            }
        }
    }

    /// Receives one datagram and the fds that came with it.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<(T, Vec<OwnedFd>), ControlError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let got = loop {
            match gofer::fd::recv_with_fds(self.sock.as_fd(), &mut buf) {
                Err(HostErrno::EINTR) => continue,
                Err(HostErrno::ECONNRESET) => return Err(ControlError::Closed),
                Err(e) => return Err(ControlError::Io(e)),
                Ok(got) => break got,
            }
        };
        if got.flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
            return Err(ControlError::TooLarge(got.bytes));
        }
        if got.bytes == 0 {
            return Err(ControlError::Closed);
        }
        Ok((serde_json::from_slice(&buf[..got.bytes])?, got.fds))
    }

    /// A second handle on the same connection (one thread reads while
    /// another writes).
    pub fn try_clone(&self) -> Result<Connection, ControlError> {
        Ok(Connection {
            sock: self
                .sock
                .try_clone()
                .map_err(|e| ControlError::Io(HostErrno::from_raw(e.raw_os_error().unwrap_or(0))))?,
        })
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// Where the container's init is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Created, waiting for `Start`.
    Created,
    /// Killed before it started.
    KilledBeforeStart(i32),
    Running,
    Stopped(ExitStatus),
}

/// The control server of one sandbox.
pub struct Control {
    kernel: Arc<Kernel>,
    phase: Mutex<Phase>,
    changed: Condvar,
}

impl Control {
    /// A server for `kernel`'s sandbox, its init waiting for `Start` if
    /// `wait_for_start`.
    pub fn new(kernel: Arc<Kernel>, wait_for_start: bool) -> Arc<Control> {
        let phase = if wait_for_start { Phase::Created } else { Phase::Running };
        Arc::new(Control { kernel, phase: Mutex::new(phase), changed: Condvar::new() })
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_phase(&self, p: Phase) {
        *self.phase() = p;
        self.changed.notify_all();
    }

    /// Serves connections on `listener` from a thread of its own, one
    /// thread per connection.
    pub fn serve(self: &Arc<Control>, listener: OwnedFd) {
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("control".into()).spawn(move || loop {
            match socket::accept4(listener.as_raw_fd(), socket::SockFlag::SOCK_CLOEXEC) {
                Ok(fd) => {
                    let Ok(fd) = gofer::fd::take_inherited(fd) else { continue };
                    let conn = Connection::new(fd);
                    let me = me.clone();
                    let spawned =
                        std::thread::Builder::new().name("control-conn".into()).spawn(move || me.handle(conn));
                    if let Err(e) = spawned {
                        tracing::warn!(target: "sentry::control", "cannot serve a connection: {e}");
                    }
                }
                Err(HostErrno::EINTR | HostErrno::ECONNABORTED) => {}
                Err(e) => {
                    tracing::error!(target: "sentry::control", "accept on the control socket: {e}");
                    return;
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(target: "sentry::control", "cannot start the control server: {e}");
        }
    }

    /// Blocks until the container is started (true) or killed before it
    /// started (false, with the signal as its status).
    pub fn wait_for_start(&self) -> Result<(), ExitStatus> {
        let mut p = self.phase();
        loop {
            match *p {
                Phase::Created => p = self.changed.wait(p).unwrap_or_else(|e| e.into_inner()),
                Phase::KilledBeforeStart(sig) => return Err(ExitStatus::Signaled(sig)),
                _ => return Ok(()),
            }
        }
    }

    /// The container's init has ended with `status`.
    pub fn stopped(&self, status: ExitStatus) {
        self.set_phase(Phase::Stopped(status));
    }

    fn handle(&self, conn: Connection) {
        let (req, fds) = match conn.recv::<Request>() {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(target: "sentry::control", "control request: {e}");
                return;
            }
        };
        tracing::debug!(target: "sentry::control", "control request {req:?}");
        let reply = match req {
            Request::Start => self.start(),
            Request::State => Ok(Reply::State { status: self.status(), init_pid: 1 }),
            Request::Signal { signal, all } => self.signal(signal, all),
            Request::Pause => self.pause(true),
            Request::Resume => self.pause(false),
            Request::Processes => Ok(Reply::Processes { list: self.processes() }),
            Request::Exec { process } => return self.exec(conn, &process, fds),
            Request::Wait => Ok(self.wait()),
            Request::Stats => Ok(Reply::Stats(self.stats())),
            Request::Update { pids_limit } => {
                if let Some(l) = pids_limit {
                    let max = if l > 0 { l as u64 } else { crate::kernel::DEFAULT_MAX_TASKS };
                    self.kernel.max_tasks.store(max, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(Reply::Ok)
            }
            Request::Resize => Err("resize is for an exec connection with a console".into()),
        };
        let reply = reply.unwrap_or_else(|msg| Reply::Error { msg });
        if let Err(e) = conn.send(&reply, &[]) {
            tracing::debug!(target: "sentry::control", "control reply: {e}");
        }
    }

    fn status(&self) -> Status {
        match *self.phase() {
            Phase::Created => Status::Created,
            Phase::Running if self.kernel.frozen() => Status::Paused,
            Phase::Running => Status::Running,
            Phase::KilledBeforeStart(_) | Phase::Stopped(_) => Status::Stopped,
        }
    }

    fn start(&self) -> Result<Reply, String> {
        let mut p = self.phase();
        match *p {
            Phase::Created => {
                *p = Phase::Running;
                self.changed.notify_all();
                Ok(Reply::Ok)
            }
            Phase::Running => Err("cannot start an already running container".into()),
            _ => Err("cannot start a container that has stopped".into()),
        }
    }

    fn signal(&self, sig: i32, all: bool) -> Result<Reply, String> {
        if !(0..=64).contains(&sig) {
            return Err(format!("invalid signal {sig}"));
        }
        {
            let mut p = self.phase();
            match *p {
                Phase::Created => {
                    // Init has not run a single instruction: a signal whose
                    // default action ends a process ends it.
                    if matches!(default_action(sig), DefaultAction::Terminate | DefaultAction::CoreDump) && sig != 0 {
                        *p = Phase::KilledBeforeStart(sig);
                        self.changed.notify_all();
                    }
                    return Ok(Reply::Ok);
                }
                Phase::Running => {}
                _ => return Err("container not running".into()),
            }
        }
        let groups: Vec<Arc<ThreadGroup>> = {
            let pids = self.kernel.pids();
            if all {
                pids.groups.values().filter(|g| g.state().exit.is_none()).cloned().collect()
            } else {
                pids.groups.get(&1).filter(|g| g.state().exit.is_none()).cloned().into_iter().collect()
            }
        };
        if groups.is_empty() {
            return Err("container not running".into());
        }
        if sig != 0 {
            for g in groups {
                send_from_outside(&self.kernel, &g, sig);
            }
        }
        Ok(Reply::Ok)
    }

    fn pause(&self, pause: bool) -> Result<Reply, String> {
        if *self.phase() != Phase::Running {
            return Err("container not running".into());
        }
        match (pause, self.kernel.frozen()) {
            (true, true) => Err("container already paused".into()),
            (false, false) => Err("container not paused".into()),
            _ => {
                self.kernel.set_frozen(pause);
                Ok(Reply::Ok)
            }
        }
    }

    fn processes(&self) -> Vec<ProcessInfo> {
        let groups: Vec<Arc<ThreadGroup>> = self.kernel.pids().groups.values().cloned().collect();
        let mut list: Vec<ProcessInfo> = groups
            .iter()
            .filter_map(|g| {
                let (threads, ppid, cpu) = {
                    let st = g.state();
                    if st.exit.is_some() {
                        return None;
                    }
                    (st.threads.clone(), st.parent.as_ref().map_or(0, |p| p.pid), st.cpu_time)
                };
                let cpu = threads
                    .iter()
                    .filter_map(|t| t.view().cpu_clock.and_then(crate::timer::cpu_now))
                    .fold(cpu, |a, b| a + b);
                let v = threads.first()?.view();
                Some(ProcessInfo {
                    pid: g.pid,
                    ppid,
                    uid: v.ids[1],
                    started_ms: v
                        .started
                        .map_or(0, |s| s.saturating_duration_since(self.kernel.boot_time).as_millis() as u64),
                    cpu_ms: cpu.as_millis() as u64,
                    comm: String::from_utf8_lossy(&v.comm).into_owned(),
                })
            })
            .collect();
        list.sort_by_key(|p| p.pid);
        list
    }

    fn stats(&self) -> Stats {
        let tasks: Vec<_> = self.kernel.pids().tasks.values().cloned().collect();
        let cpu: Duration = tasks.iter().filter_map(|t| t.view().cpu_clock.and_then(crate::timer::cpu_now)).sum();
        Stats {
            pids: tasks.len() as u64,
            pids_limit: self.kernel.max_tasks(),
            memory_bytes: self.kernel.memory.resident_bytes(),
            cpu_ns: cpu.as_nanos() as u64,
        }
    }

    fn wait(&self) -> Reply {
        let mut p = self.phase();
        loop {
            match *p {
                Phase::Stopped(s) => return Reply::Exited { wait_status: s.wait_status() },
                Phase::KilledBeforeStart(sig) => return Reply::Exited { wait_status: sig },
                _ => p = self.changed.wait(p).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// Starts `process`, answers with its pid, then serves its signals and
    /// reports its end.
    fn exec(&self, conn: Connection, process: &ProcessConfig, fds: Vec<OwnedFd>) {
        let started = self.start_process(process, fds);
        let (group, console) = match started {
            Ok(g) => g,
            Err(msg) => {
                let _ = conn.send(&Reply::Error { msg }, &[]);
                return;
            }
        };
        if conn.send(&Reply::Started { pid: group.pid }, &[]).is_err() {
            send_from_outside(&self.kernel, &group, syscalls::flags::signal::SIGKILL);
        }
        // The client's signals for the process, and its going away.
        if let Ok(reader) = conn.try_clone() {
            let kernel = self.kernel.clone();
            let g = group.clone();
            let console = console.clone();
            let spawned = std::thread::Builder::new().name("control-exec".into()).spawn(move || loop {
                match reader.recv::<Request>() {
                    Ok((Request::Signal { signal, .. }, _)) if (1..=64).contains(&signal) => {
                        send_from_outside(&kernel, &g, signal);
                    }
                    Ok((Request::Resize, _)) => {
                        if let Some(c) = &console {
                            c.refresh_winsize(&kernel);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        if g.state().exit.is_none() {
                            send_from_outside(&kernel, &g, syscalls::flags::signal::SIGKILL);
                        }
                        return;
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(target: "sentry::control", "cannot watch an exec connection: {e}");
            }
        }
        let status = loop {
            let seen = self.kernel.events.generation();
            if let Some(s) = group.state().exit {
                break s;
            }
            self.kernel.events.wait(seen, Some(Instant::now() + Duration::from_secs(1)));
        };
        // Its last output reaches the host before its end is reported.
        if let Some(c) = console {
            c.flush(Instant::now() + Duration::from_secs(1));
        }
        let _ = conn.send(&Reply::Exited { wait_status: status.wait_status() }, &[]);
    }

    fn start_process(&self, process: &ProcessConfig, fds: Vec<OwnedFd>) -> Result<Started, String> {
        if matches!(*self.phase(), Phase::Stopped(_) | Phase::KilledBeforeStart(_)) {
            return Err("cannot exec in a stopped container".into());
        }
        let stdio: [OwnedFd; 3] = fds.try_into().map_err(|_| "exec needs three stdio fds".to_string())?;
        let (stdio, console) =
            crate::console::process_stdio(&self.kernel, process, stdio).map_err(|e| e.to_string())?;
        let task = Task::new_process(self.kernel.clone(), process, stdio).map_err(|e| e.to_string())?;
        let group = task.group().clone();
        let name = format!("task-{}", group.pid);
        std::thread::Builder::new().name(name).spawn(move || task.run_to_exit()).map_err(|e| {
            // The task never ran: forget it.
            let mut pids = self.kernel.pids();
            pids.tasks.remove(&group.pid);
            pids.groups.remove(&group.pid);
            format!("starting the process: {e}")
        })?;
        Ok((group, console))
    }
}

/// An exec'd process and its console, if it has one.
type Started = (Arc<ThreadGroup>, Option<Arc<crate::console::HostConsole>>);

/// Sends `sig` to `group` from outside the sandbox (si_pid 0, as from an
/// ancestor PID namespace): SIGKILL and SIGSTOP get through to init too.
pub fn send_from_outside(kernel: &Kernel, group: &ThreadGroup, sig: i32) {
    let code = if matches!(sig, syscalls::flags::signal::SIGKILL | syscalls::flags::signal::SIGSTOP) {
        sa::SI_KERNEL
    } else {
        sa::SI_USER
    };
    group.send(user_info(sig, code, 0, 0));
    kernel.events.notify();
}

impl From<Connection> for OwnedFd {
    fn from(c: Connection) -> OwnedFd {
        c.sock
    }
}
