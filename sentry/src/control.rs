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
//!
//! A pod's further containers join the sandbox of its first (the pod's
//! sandbox container) with `AddContainer`: the container's own root gofer
//! (and bind-mount gofers) and its init's stdio come along, and that
//! connection then stands for the container's init as an exec connection
//! does for its process. Requests for such a container come wrapped in
//! `Container { id, .. }`; unwrapped ones are for the first container.
use std::collections::HashMap;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno as HostErrno;
use nix::sys::socket::{self, ControlMessage, MsgFlags};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use syscalls::flags::sa;

use crate::config::{BootConfig, ProcessConfig};
use crate::kernel::{ContainerFs, Kernel, PidNs};
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
    /// Adds container `id` to the sandbox (a pod's further container), its
    /// init loaded and waiting for `Start`. The fds: init's stdin, stdout
    /// and stderr, the root's gofer socket, then the bind mounts' gofer
    /// sockets, which `config.mounts` name by their index in this list.
    /// Answered `Ok` (or `Error`); the connection then takes `Signal` and
    /// `Resize` for init and ends with its `Exited`.
    AddContainer {
        id: String,
        config: Box<BootConfig>,
    },
    /// `request` for container `id` of a pod (one `AddContainer` added).
    Container {
        id: String,
        request: Box<Request>,
    },
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
        let mut buf = gofer::fd::MessageBuffer::new(MAX_MESSAGE).map_err(ControlError::Io)?;
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

/// Where a container's init is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Created, waiting for `Start`.
    Created,
    /// Killed before it started.
    KilledBeforeStart(i32),
    Running,
    Stopped(ExitStatus),
}

/// One container of the sandbox: its file systems, its init, and where
/// that init is in its life.
struct Container {
    /// The tag its processes carry (`ThreadGroup::container`).
    tag: u32,
    /// The PID namespace its processes are in.
    pidns: PidNs,
    fs: ContainerFs,
    init: Arc<ThreadGroup>,
    phase: Mutex<Phase>,
    changed: Condvar,
}

impl Container {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_phase(&self, p: Phase) {
        *self.phase() = p;
        self.changed.notify_all();
    }

    /// Blocks until the container is started (true) or killed before it
    /// started (false, with the signal as its status).
    fn wait_for_start(&self) -> Result<(), ExitStatus> {
        let mut p = self.phase();
        loop {
            match *p {
                Phase::Created => p = self.changed.wait(p).unwrap_or_else(|e| e.into_inner()),
                Phase::KilledBeforeStart(sig) => return Err(ExitStatus::Signaled(sig)),
                _ => return Ok(()),
            }
        }
    }

    /// The container's live processes.
    fn groups(&self, kernel: &Kernel) -> Vec<Arc<ThreadGroup>> {
        let pids = kernel.pids();
        pids.groups.values().filter(|g| g.container == self.tag && g.state().exit.is_none()).cloned().collect()
    }
}

/// The control server of one sandbox.
pub struct Control {
    kernel: Arc<Kernel>,
    /// The sandbox's first container (the pod's sandbox container).
    first: Arc<Container>,
    /// The pod's further containers by id, and the next tag to give.
    pod: Mutex<(HashMap<String, Arc<Container>>, u32)>,
    /// Requests being served (see [`Control::settle`]).
    busy: Mutex<usize>,
    idle: Condvar,
}

/// A request being served, counted until it is answered.
struct Serving<'a>(&'a Control);

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        let mut n = self.0.busy.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            self.0.idle.notify_all();
        }
    }
}

impl Control {
    /// A server for `kernel`'s sandbox, whose first container has the file
    /// systems `fs` and the init `init`, waiting for `Start` if
    /// `wait_for_start`.
    pub fn new(kernel: Arc<Kernel>, fs: ContainerFs, init: Arc<ThreadGroup>, wait_for_start: bool) -> Arc<Control> {
        let phase = if wait_for_start { Phase::Created } else { Phase::Running };
        let first = Arc::new(Container {
            tag: 0,
            pidns: PidNs::ROOT,
            fs,
            init,
            phase: Mutex::new(phase),
            changed: Condvar::new(),
        });
        Arc::new(Control {
            kernel,
            first,
            pod: Mutex::new((HashMap::new(), 1)),
            busy: Mutex::new(0),
            idle: Condvar::new(),
        })
    }

    fn pod(&self) -> MutexGuard<'_, (HashMap<String, Arc<Container>>, u32)> {
        self.pod.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Blocks until the first container is started (true) or killed before
    /// it started (false, with the signal as its status).
    pub fn wait_for_start(&self) -> Result<(), ExitStatus> {
        self.first.wait_for_start()
    }

    /// Waits (until `deadline` at most) for the requests being served to
    /// be answered: the sandbox is about to end, and the `kill` that ended
    /// it must still hear its reply.
    pub fn settle(&self, deadline: Instant) {
        let mut n = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while *n > 0 {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            n = self.idle.wait_timeout(n, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// The first container's init has ended with `status`.
    pub fn stopped(&self, status: ExitStatus) {
        self.first.set_phase(Phase::Stopped(status));
    }

    fn handle(&self, conn: Connection) {
        let (req, fds) = match conn.recv::<Request>() {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(target: "sentry::control", "control request: {e}");
                if !matches!(e, ControlError::Closed) {
                    let _ = conn.send(&Reply::Error { msg: e.to_string() }, &[]);
                }
                return;
            }
        };
        tracing::debug!(target: "sentry::control", "control request {req:?}");
        *self.busy.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let _serving = Serving(self);
        let (container, req) = match req {
            Request::AddContainer { id, config } => return self.add_container(conn, id, &config, fds),
            Request::Container { id, request } => match self.pod().0.get(&id) {
                Some(c) => (c.clone(), *request),
                None => {
                    let msg = format!("container \"{id}\" is not in the sandbox");
                    let _ = conn.send(&Reply::Error { msg }, &[]);
                    return;
                }
            },
            req => (self.first.clone(), req),
        };
        let c = &container;
        let first = c.tag == 0;
        let reply = match req {
            Request::Start => self.start(c),
            Request::State => Ok(Reply::State { status: self.status(c), init_pid: c.init.pid }),
            Request::Signal { signal, all } => self.signal(c, signal, all),
            Request::Pause | Request::Resume if !first => {
                Err("a container of a pod pauses only with its whole pod (pause the sandbox container)".into())
            }
            Request::Pause => self.pause(true),
            Request::Resume => self.pause(false),
            Request::Processes => Ok(Reply::Processes { list: self.processes(c) }),
            Request::Exec { process } => return self.exec(c, conn, &process, fds),
            Request::Wait => Ok(self.wait(c)),
            Request::Stats => Ok(Reply::Stats(self.stats(c))),
            Request::Update { pids_limit: Some(_) } if !first => {
                Err("a pids limit for one container of a pod is not supported (set the pod's)".into())
            }
            Request::Update { pids_limit } => {
                if let Some(l) = pids_limit {
                    let max = if l > 0 { l as u64 } else { crate::kernel::DEFAULT_MAX_TASKS };
                    self.kernel.max_tasks.store(max, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(Reply::Ok)
            }
            Request::Resize => Err("resize is for an exec connection with a console".into()),
            Request::AddContainer { .. } | Request::Container { .. } => Err("a nested container request".into()),
        };
        let reply = reply.unwrap_or_else(|msg| Reply::Error { msg });
        if let Err(e) = conn.send(&reply, &[]) {
            tracing::debug!(target: "sentry::control", "control reply: {e}");
        }
    }

    /// Adds a pod's container: builds its file systems, loads its init
    /// (held until `Start`), answers, then runs it and reports its end on
    /// `conn`. The client going away kills the container's processes.
    fn add_container(&self, conn: Connection, id: String, cfg: &BootConfig, fds: Vec<OwnedFd>) {
        let added = self.load_container(&id, cfg, fds);
        let (container, task, console) = match added {
            Ok(a) => a,
            Err(msg) => {
                let _ = conn.send(&Reply::Error { msg }, &[]);
                return;
            }
        };
        if conn.send(&Reply::Ok, &[]).is_err() {
            container.set_phase(Phase::KilledBeforeStart(syscalls::flags::signal::SIGKILL));
        }
        self.watch_client(&conn, &container.init, console.clone(), Some(container.clone()));
        let status = match container.wait_for_start() {
            Err(status) => {
                // Init never ran: forget it.
                task.discard();
                status
            }
            Ok(()) => {
                if let Some(c) = &console {
                    c.refresh_winsize(&self.kernel);
                }
                match task.run_to_exit() {
                    Some(s) => s,
                    None => self.wait_exit(&container.init),
                }
            }
        };
        // The container ends with its init: no more execs, and its other
        // processes (execs too, started or not) are killed and have a
        // moment to go.
        container.set_phase(Phase::Stopped(status));
        self.kill_container(&container);
        if let Some(c) = &console {
            c.flush(Instant::now() + Duration::from_secs(1));
        }
        self.pod().0.remove(&id);
        // Its gofers see their connections close and exit.
        container.fs.root.release_tree();
        let _ = conn.send(&Reply::Exited { wait_status: status.wait_status() }, &[]);
    }

    /// Builds a new container's file systems and loads its init.
    fn load_container(&self, id: &str, cfg: &BootConfig, fds: Vec<OwnedFd>) -> Result<Loaded, String> {
        if matches!(*self.first.phase(), Phase::Stopped(_) | Phase::KilledBeforeStart(_)) {
            return Err("the pod's sandbox has stopped".into());
        }
        if fds.len() < 4 {
            return Err("a container needs its stdio and its root's gofer".into());
        }
        let mut fds: Vec<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
        let stdio = [0, 1, 2].map(|i| fds[i].take());
        let [Some(i), Some(o), Some(e)] = stdio else { return Err("missing stdio".into()) };
        let root = fds[3].take().ok_or("missing the root's gofer")?;
        let tag = {
            let mut pod = self.pod();
            if pod.0.contains_key(id) {
                return Err(format!("container \"{id}\" already exists in the sandbox"));
            }
            pod.1 += 1;
            pod.1 - 1
        };
        let mut bind_fd = |n: i32| usize::try_from(n).ok().filter(|&n| n > 3).and_then(|n| fds.get_mut(n)?.take());
        // A PID namespace of its own (its init is pid 1 there), or the
        // pod's.
        let pidns = if cfg.new_pid_namespace { self.kernel.pids().new_namespace() } else { PidNs::ROOT };
        let fs = ContainerFs::build(&self.kernel, cfg, pidns, root, &mut bind_fd).map_err(|e| e.to_string())?;
        let loaded =
            crate::console::process_stdio(&self.kernel, &cfg.process, [i, o, e]).and_then(|(stdio, console)| {
                Ok((Task::new_process(self.kernel.clone(), (tag, pidns), &fs, &cfg.process, stdio)?, console))
            });
        let (task, console) = match loaded {
            Ok(l) => l,
            Err(e) => {
                // Its gofers see their connections close and exit.
                fs.root.release_tree();
                return Err(e.to_string());
            }
        };
        let container = Arc::new(Container {
            tag,
            pidns,
            fs,
            init: task.group().clone(),
            phase: Mutex::new(Phase::Created),
            changed: Condvar::new(),
        });
        let mut pod = self.pod();
        if pod.0.contains_key(id) {
            drop(pod);
            task.discard();
            container.fs.root.release_tree();
            return Err(format!("container \"{id}\" already exists in the sandbox"));
        }
        pod.0.insert(id.to_string(), container.clone());
        Ok((container, task, console))
    }

    /// Waits for `group` to end.
    fn wait_exit(&self, group: &ThreadGroup) -> ExitStatus {
        loop {
            let seen = self.kernel.events.generation();
            if let Some(s) = group.state().exit {
                return s;
            }
            self.kernel.events.wait(seen, Some(Instant::now() + Duration::from_secs(1)));
        }
    }

    /// Kills every process of a pod's container and gives them a moment
    /// to go.
    fn kill_container(&self, c: &Container) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let seen = self.kernel.events.generation();
            let groups = c.groups(&self.kernel);
            if groups.is_empty() {
                break;
            }
            // Again each time: an exec that raced the end may have joined.
            for g in groups {
                send_from_outside(&self.kernel, &g, syscalls::flags::signal::SIGKILL);
            }
            self.kernel.events.wait(seen, Some(deadline));
        }
    }

    /// Serves the client's `Signal` and `Resize` requests for `group` (a
    /// container's init or an exec'd process) from a thread of its own; the
    /// client going away kills the process (with `container`, every
    /// process of that container).
    fn watch_client(
        &self,
        conn: &Connection,
        group: &Arc<ThreadGroup>,
        console: Option<Arc<crate::console::HostConsole>>,
        container: Option<Arc<Container>>,
    ) {
        let reader = match conn.try_clone() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: "sentry::control", "cannot watch a connection: {e}");
                return;
            }
        };
        let kernel = self.kernel.clone();
        let g = group.clone();
        let spawned = std::thread::Builder::new().name("control-watch".into()).spawn(move || loop {
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
                    match &container {
                        Some(c) => {
                            let mut p = c.phase();
                            if *p == Phase::Created {
                                *p = Phase::KilledBeforeStart(syscalls::flags::signal::SIGKILL);
                                c.changed.notify_all();
                            }
                            drop(p);
                            for g in c.groups(&kernel) {
                                send_from_outside(&kernel, &g, syscalls::flags::signal::SIGKILL);
                            }
                        }
                        None if g.state().exit.is_none() => {
                            send_from_outside(&kernel, &g, syscalls::flags::signal::SIGKILL);
                        }
                        None => {}
                    }
                    return;
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(target: "sentry::control", "cannot watch a connection: {e}");
        }
    }

    fn status(&self, c: &Container) -> Status {
        match *c.phase() {
            Phase::Created => Status::Created,
            Phase::Running if self.kernel.frozen() => Status::Paused,
            Phase::Running => Status::Running,
            Phase::KilledBeforeStart(_) | Phase::Stopped(_) => Status::Stopped,
        }
    }

    fn start(&self, c: &Container) -> Result<Reply, String> {
        let mut p = c.phase();
        match *p {
            Phase::Created => {
                *p = Phase::Running;
                c.changed.notify_all();
                drop(p);
                // Setting the container up is over: what it freed goes back.
                gofer::fd::release_free_heap();
                Ok(Reply::Ok)
            }
            Phase::Running => Err("cannot start an already running container".into()),
            _ => Err("cannot start a container that has stopped".into()),
        }
    }

    fn signal(&self, c: &Container, sig: i32, all: bool) -> Result<Reply, String> {
        if !(0..=64).contains(&sig) {
            return Err(format!("invalid signal {sig}"));
        }
        {
            let mut p = c.phase();
            match *p {
                Phase::Created => {
                    // Init has not run a single instruction: a signal whose
                    // default action ends a process ends it.
                    if matches!(default_action(sig), DefaultAction::Terminate | DefaultAction::CoreDump) && sig != 0 {
                        *p = Phase::KilledBeforeStart(sig);
                        c.changed.notify_all();
                    }
                    return Ok(Reply::Ok);
                }
                Phase::Running => {}
                _ => return Err("container not running".into()),
            }
        }
        let groups: Vec<Arc<ThreadGroup>> = if all {
            c.groups(&self.kernel)
        } else {
            Some(c.init.clone()).filter(|g| g.state().exit.is_none()).into_iter().collect()
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
        if *self.first.phase() != Phase::Running {
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

    fn processes(&self, c: &Container) -> Vec<ProcessInfo> {
        let groups = c.groups(&self.kernel);
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

    /// The container's usage (memory is the sandbox's: its containers
    /// share one memory file).
    fn stats(&self, c: &Container) -> Stats {
        let tasks: Vec<_> = self.kernel.pids().tasks.values().filter(|t| t.group.container == c.tag).cloned().collect();
        let cpu: Duration = tasks.iter().filter_map(|t| t.view().cpu_clock.and_then(crate::timer::cpu_now)).sum();
        Stats {
            pids: tasks.len() as u64,
            pids_limit: self.kernel.max_tasks(),
            memory_bytes: self.kernel.memory.resident_bytes(),
            cpu_ns: cpu.as_nanos() as u64,
        }
    }

    fn wait(&self, c: &Container) -> Reply {
        let mut p = c.phase();
        loop {
            match *p {
                Phase::Stopped(s) => return Reply::Exited { wait_status: s.wait_status() },
                Phase::KilledBeforeStart(sig) => return Reply::Exited { wait_status: sig },
                _ => p = c.changed.wait(p).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// Starts `process` in container `c`, answers with its pid, then serves
    /// its signals and reports its end.
    fn exec(&self, c: &Container, conn: Connection, process: &ProcessConfig, fds: Vec<OwnedFd>) {
        let started = self.start_process(c, process, fds);
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
        self.watch_client(&conn, &group, console.clone(), None);
        let status = self.wait_exit(&group);
        // Its last output reaches the host before its end is reported.
        if let Some(c) = console {
            c.flush(Instant::now() + Duration::from_secs(1));
        }
        let _ = conn.send(&Reply::Exited { wait_status: status.wait_status() }, &[]);
    }

    fn start_process(&self, c: &Container, process: &ProcessConfig, fds: Vec<OwnedFd>) -> Result<Started, String> {
        if matches!(*c.phase(), Phase::Stopped(_) | Phase::KilledBeforeStart(_)) {
            return Err("cannot exec in a stopped container".into());
        }
        let stdio: [OwnedFd; 3] = fds.try_into().map_err(|_| "exec needs three stdio fds".to_string())?;
        let (stdio, console) =
            crate::console::process_stdio(&self.kernel, process, stdio).map_err(|e| e.to_string())?;
        let task = Task::new_process(self.kernel.clone(), (c.tag, c.pidns), &c.fs, process, stdio)
            .map_err(|e| e.to_string())?;
        let group = task.group().clone();
        let name = format!("task-{}", group.pid);
        std::thread::Builder::new().name(name).spawn(move || task.run_to_exit()).map_err(|e| {
            // The task never ran: forget it.
            let mut pids = self.kernel.pids();
            pids.remove_task(group.pid);
            pids.remove_group(group.pid);
            format!("starting the process: {e}")
        })?;
        Ok((group, console))
    }
}

/// A pod's container just added: it, its init (not yet run), and init's
/// console if it has one.
type Loaded = (Arc<Container>, Task, Option<Arc<crate::console::HostConsole>>);

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
