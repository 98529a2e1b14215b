//! A container as the shim keeps it: its bundle, its init process and its
//! exec'd processes, each with its pid, status, exit and stdio. Every
//! operation is a `cordon` command; exits come from the reaper.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use containerd_shim::api::Status;
use containerd_shim::protos::events::task::{TaskExecStarted, TaskExit, TaskStart};
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::topics;

use crate::reaper::Reaper;
use crate::runtime::{read_pid, CommandIo, Runtime};
use crate::stdio::{ConsoleSocket, ProcessIo, StdioPaths};
use crate::ShimError;

/// What the shim's publishing thread is asked to do.
pub enum Event {
    /// Publish a message on a topic.
    Publish(&'static str, Box<dyn MessageDyn>),
    /// Acknowledge once everything queued before has been published.
    Flush(Sender<()>),
}

fn publish(events: &Sender<Event>, topic: &'static str, message: Box<dyn MessageDyn>) {
    let _ = events.send(Event::Publish(topic, message));
}

/// Files of one runtime command, removed whatever becomes of it.
struct Leftovers(Vec<PathBuf>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The shim's record of one process (a container's init, or an exec).
pub struct Process {
    /// Empty for init.
    pub exec_id: String,
    pub stdio: StdioPaths,
    /// The OCI process (JSON) of an exec.
    spec: Vec<u8>,
    state: Mutex<ProcessState>,
    exited: Condvar,
    io: Mutex<ProcessIo>,
}

pub struct ProcessState {
    pub status: Status,
    pub pid: u32,
    pub exit_status: u32,
    pub exited_at: Option<Timestamp>,
    /// The end is final: output drained, TaskExit queued (or the process
    /// never started). Wait returns then.
    pub reported: bool,
}

impl Process {
    fn new(exec_id: &str, stdio: StdioPaths, spec: Vec<u8>) -> Arc<Process> {
        Arc::new(Process {
            exec_id: exec_id.to_string(),
            stdio,
            spec,
            state: Mutex::new(ProcessState {
                status: Status::CREATED,
                pid: 0,
                exit_status: 0,
                exited_at: None,
                reported: false,
            }),
            exited: Condvar::new(),
            io: Mutex::new(ProcessIo::default()),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, ProcessState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn io(&self) -> MutexGuard<'_, ProcessIo> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the process's end is reported: its exit status and time.
    pub fn wait(&self) -> (u32, Timestamp) {
        let mut s = self.state();
        while !s.reported {
            s = self.exited.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        (s.exit_status, s.exited_at.clone().unwrap_or_default())
    }

    /// Like `wait`, for at most `limit`; false if it has not ended.
    fn wait_for(&self, limit: Duration) -> bool {
        let s = self.state();
        let (s, _) = self.exited.wait_timeout_while(s, limit, |s| !s.reported).unwrap_or_else(|e| e.into_inner());
        s.reported
    }

    /// The process could not start: it is stopped (255, as runc's shim
    /// says), with no exit event.
    fn failed_to_start(&self, s: &mut ProcessState) {
        s.status = Status::STOPPED;
        s.exit_status = 255;
        s.exited_at = Some(now());
        s.reported = true;
        self.exited.notify_all();
    }

    pub fn close_stdin(&self) {
        self.io().close_stdin();
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<(), ShimError> {
        self.io().resize(width, height)
    }

    /// The host ends of the process's stdio for a `cordon` command, and the
    /// console socket if it has a terminal.
    fn open_stdio(&self) -> Result<([std::os::fd::OwnedFd; 3], Option<ConsoleSocket>), ShimError> {
        if self.stdio.terminal {
            let null = || std::fs::File::open("/dev/null").map(Into::into).map_err(|e| ShimError::Io(e.to_string()));
            Ok(([null()?, null()?, null()?], Some(ConsoleSocket::new()?)))
        } else {
            let (fds, io) = ProcessIo::direct(&self.stdio)?;
            *self.io() = io;
            Ok((fds, None))
        }
    }

    /// After the `cordon` command: the terminal's copies start.
    fn attach_console(&self, socket: Option<ConsoleSocket>) -> Result<(), ShimError> {
        if let Some(s) = socket {
            let master = s.receive()?;
            *self.io() = ProcessIo::console(&self.stdio, master)?;
        }
        Ok(())
    }
}

/// One container of this shim.
pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime: Runtime,
    pub init: Arc<Process>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
    /// The root file system the shim mounted, unmounted at delete.
    mounted_rootfs: Option<PathBuf>,
    events: Sender<Event>,
    reaper: Arc<Reaper>,
    /// Names the files of exec'd processes in the bundle.
    next_exec: AtomicU32,
}

/// What a created container needs besides its runtime.
pub struct CreateSpec {
    pub id: String,
    pub bundle: PathBuf,
    pub stdio: StdioPaths,
    pub mounted_rootfs: Option<PathBuf>,
}

fn now() -> Timestamp {
    Timestamp::now()
}

impl Container {
    /// `cordon create`: the sandbox waits for start; its pid (the sentry)
    /// is the init process's.
    pub fn create(
        spec: CreateSpec,
        runtime: Runtime,
        reaper: Arc<Reaper>,
        events: Sender<Event>,
    ) -> Result<Arc<Container>, ShimError> {
        let init = Process::new("", spec.stdio, Vec::new());
        let c = Arc::new(Container {
            id: spec.id,
            bundle: spec.bundle,
            runtime,
            init: init.clone(),
            execs: Mutex::new(HashMap::new()),
            mounted_rootfs: spec.mounted_rootfs,
            events,
            reaper,
            next_exec: AtomicU32::new(0),
        });
        let (fds, socket) = init.open_stdio()?;
        let pid_file = c.bundle.join("init.pid");
        let bundle = c.bundle.to_string_lossy().into_owned();
        let pid_path = pid_file.to_string_lossy().into_owned();
        let mut args = vec!["create", "--bundle", &bundle, "--pid-file", &pid_path];
        let socket_path = socket.as_ref().map(|s| s.path.to_string_lossy().into_owned());
        if let Some(s) = &socket_path {
            args.extend(["--console-socket", s]);
        }
        args.push(&c.id);
        let log = c.bundle.join("log.json");
        c.runtime.run(&args, CommandIo::Process { fds, log: &log })?;
        let _ = std::fs::remove_file(&log);
        let created = read_pid(&pid_file).and_then(|pid| {
            init.state().pid = pid;
            init.attach_console(socket)
        });
        if let Err(e) = created {
            // The sandbox exists: it must not outlive the failed create.
            let _ = c.runtime.call(&["delete", "--force", &c.id]);
            return Err(e);
        }
        Ok(c)
    }

    /// Reports init's end from now on (after TaskCreate went out).
    pub fn watch_init(self: &Arc<Self>) {
        let pid = self.init.state().pid;
        self.watch(&self.init, pid);
    }

    /// Calls `exited` when `pid`, the host process standing for `p`, ends.
    fn watch(self: &Arc<Self>, p: &Arc<Process>, pid: u32) {
        let c = self.clone();
        let p2 = p.clone();
        self.reaper.watch(pid as i32, Box::new(move |code| c.exited(&p2, code)));
    }

    /// `p` ended with `code`: its last output goes out, waiters wake, and
    /// containerd hears of it. Init's end is reported last, after its
    /// exec'd processes' (which end with the sandbox), as runc's shim does.
    fn exited(&self, p: &Process, code: u32) {
        {
            let mut s = p.state();
            s.status = Status::STOPPED;
            s.exit_status = code;
            s.exited_at = Some(now());
        }
        if p.exec_id.is_empty() {
            let execs: Vec<_> = self.execs.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
            for e in execs {
                if e.state().status != Status::CREATED {
                    e.wait_for(Duration::from_secs(2));
                }
            }
        }
        p.io().finish();
        let mut s = p.state();
        let event = TaskExit {
            container_id: self.id.clone(),
            id: if p.exec_id.is_empty() { self.id.clone() } else { p.exec_id.clone() },
            pid: s.pid,
            exit_status: code,
            exited_at: s.exited_at.clone().into(),
            ..Default::default()
        };
        publish(&self.events, topics::TASK_EXIT_EVENT_TOPIC, Box::new(event));
        s.reported = true;
        drop(s);
        p.exited.notify_all();
    }

    /// The process `exec_id` names ("" = init).
    pub fn process(&self, exec_id: &str) -> Result<Arc<Process>, ShimError> {
        if exec_id.is_empty() {
            return Ok(self.init.clone());
        }
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ShimError::NotFound(format!("process {exec_id} does not exist")))
    }

    /// Exec: records a process to start in the container.
    pub fn add_exec(&self, exec_id: &str, stdio: StdioPaths, spec: Vec<u8>) -> Result<(), ShimError> {
        if self.init.state().status == Status::STOPPED {
            return Err(ShimError::FailedPrecondition("container not running".into()));
        }
        let mut execs = self.execs.lock().unwrap_or_else(|e| e.into_inner());
        if execs.contains_key(exec_id) {
            return Err(ShimError::AlreadyExists(format!("process {exec_id} already exists")));
        }
        execs.insert(exec_id.to_string(), Process::new(exec_id, stdio, spec));
        Ok(())
    }

    /// Start: `cordon start` for init, `cordon exec --detach` for an exec.
    /// The start event goes out before the exit can (the process's lock is
    /// held across both the start and the event).
    pub fn start(self: &Arc<Self>, exec_id: &str) -> Result<u32, ShimError> {
        let p = self.process(exec_id)?;
        let mut s = p.state();
        if s.status != Status::CREATED {
            return Err(ShimError::FailedPrecondition(format!("process {} is not created", self.name(exec_id))));
        }
        if exec_id.is_empty() {
            self.runtime.call(&["start", &self.id])?;
            s.status = Status::RUNNING;
            let event = TaskStart { container_id: self.id.clone(), pid: s.pid, ..Default::default() };
            publish(&self.events, topics::TASK_START_EVENT_TOPIC, Box::new(event));
            return Ok(s.pid);
        }
        let pid = match self.exec_process(&p) {
            Ok(pid) => pid,
            Err(e) => {
                p.failed_to_start(&mut s);
                return Err(e);
            }
        };
        s.pid = pid;
        s.status = Status::RUNNING;
        let event =
            TaskExecStarted { container_id: self.id.clone(), exec_id: exec_id.to_string(), pid, ..Default::default() };
        publish(&self.events, topics::TASK_EXEC_STARTED_EVENT_TOPIC, Box::new(event));
        drop(s);
        self.watch(&p, pid);
        Ok(pid)
    }

    /// `cordon exec --detach` of `p`: the pid of its stand-in.
    fn exec_process(&self, p: &Process) -> Result<u32, ShimError> {
        let n = self.next_exec.fetch_add(1, Ordering::Relaxed);
        let spec_file = self.bundle.join(format!("exec-{n}.json"));
        let pid_file = self.bundle.join(format!("exec-{n}.pid"));
        let log = self.bundle.join(format!("exec-{n}.log.json"));
        let _leftovers = Leftovers(vec![spec_file.clone(), pid_file.clone(), log.clone()]);
        std::fs::write(&spec_file, &p.spec).map_err(|e| ShimError::Io(format!("writing the exec spec: {e}")))?;
        let (fds, socket) = p.open_stdio()?;
        let (spec_path, pid_path) = (spec_file.to_string_lossy().into_owned(), pid_file.to_string_lossy().into_owned());
        let mut args = vec!["exec", "--process", &spec_path, "--detach", "--pid-file", &pid_path];
        let socket_path = socket.as_ref().map(|s| s.path.to_string_lossy().into_owned());
        if let Some(sp) = &socket_path {
            args.extend(["--console-socket", sp]);
        }
        args.push(&self.id);
        self.runtime.run(&args, CommandIo::Process { fds, log: &log })?;
        let pid = read_pid(&pid_file)?;
        if let Err(e) = p.attach_console(socket) {
            // Its stand-in, killed, takes the process with it.
            signal_pid(pid, libc::SIGKILL);
            return Err(e);
        }
        Ok(pid)
    }

    fn name(&self, exec_id: &str) -> String {
        if exec_id.is_empty() {
            self.id.clone()
        } else {
            exec_id.to_string()
        }
    }

    /// Kill: `cordon kill` for init; the stand-in of an exec passes the
    /// signal on (or, killed itself, takes its process with it).
    pub fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<(), ShimError> {
        let p = self.process(exec_id)?;
        let (status, pid) = {
            let s = p.state();
            (s.status, s.pid)
        };
        let finished = || ShimError::NotFound("process already finished".into());
        if status == Status::STOPPED {
            return Err(finished());
        }
        if !exec_id.is_empty() && status == Status::CREATED {
            return Err(ShimError::FailedPrecondition(format!("process {exec_id} is not started")));
        }
        if exec_id.is_empty() {
            let sig = signal.to_string();
            let mut args = vec!["kill"];
            if all {
                args.push("--all");
            }
            args.extend([self.id.as_str(), sig.as_str()]);
            // The container may end while the kill is under way.
            return match self.runtime.call(&args) {
                Err(ShimError::Runtime(m)) if m.contains("container not running") => Err(finished()),
                r => r,
            };
        }
        if !(1..=64).contains(&signal) {
            return Err(ShimError::InvalidArgument(format!("invalid signal {signal}")));
        }
        if !signal_pid(pid, signal as i32) {
            return Err(finished());
        }
        Ok(())
    }

    /// Delete of an exec: forgets it (it must have ended, or never started).
    pub fn delete_exec(&self, exec_id: &str) -> Result<Arc<Process>, ShimError> {
        let p = self.process(exec_id)?;
        if p.state().status == Status::RUNNING {
            return Err(ShimError::FailedPrecondition(format!("cannot delete running process {exec_id}")));
        }
        self.execs.lock().unwrap_or_else(|e| e.into_inner()).remove(exec_id);
        Ok(p)
    }

    /// Delete of init: `cordon delete` (which ends a created sandbox, as
    /// runc's does), then the root file system is unmounted.
    pub fn delete(&self) -> Result<(), ShimError> {
        let status = self.init.state().status;
        if matches!(status, Status::RUNNING | Status::PAUSED) {
            return Err(ShimError::FailedPrecondition(format!(
                "cannot delete container {} that is not stopped",
                self.id
            )));
        }
        self.runtime.call(&["delete", "--force", &self.id])?;
        // A created sandbox was killed by the delete: its end is reported
        // before the delete's.
        self.init.wait_for(Duration::from_secs(5));
        if let Some(rootfs) = &self.mounted_rootfs {
            unmount_rootfs(rootfs);
        }
        Ok(())
    }

    /// Pause/Resume.
    pub fn pause(&self, pause: bool) -> Result<(), ShimError> {
        let mut s = self.init.state();
        match (s.status, pause) {
            (Status::RUNNING, true) => {
                self.runtime.call(&["pause", &self.id])?;
                s.status = Status::PAUSED;
            }
            (Status::PAUSED, false) => {
                self.runtime.call(&["resume", &self.id])?;
                s.status = Status::RUNNING;
            }
            (Status::PAUSED, true) => return Err(ShimError::FailedPrecondition("container is already paused".into())),
            (_, true) => return Err(ShimError::FailedPrecondition("container is not running".into())),
            (_, false) => return Err(ShimError::FailedPrecondition("container is not paused".into())),
        }
        Ok(())
    }

    /// The guest's process ids.
    pub fn pids(&self) -> Result<Vec<u32>, ShimError> {
        let out = self.runtime.run(&["ps", "--format", "json", &self.id], CommandIo::Capture { stdin: None })?;
        serde_json::from_str(&out).map_err(|e| ShimError::Runtime(format!("cordon ps printed {out:?}: {e}")))
    }

    /// `cordon events --stats`, as its JSON.
    pub fn stats(&self) -> Result<serde_json::Value, ShimError> {
        let out = self.runtime.run(&["events", "--stats", &self.id], CommandIo::Capture { stdin: None })?;
        serde_json::from_str(out.trim()).map_err(|e| ShimError::Runtime(format!("cordon events printed {out:?}: {e}")))
    }

    /// `cordon update` with the OCI LinuxResources (JSON).
    pub fn update(&self, resources: &[u8]) -> Result<(), ShimError> {
        self.runtime.run(&["update", "--resources", "-", &self.id], CommandIo::Capture { stdin: Some(resources) })?;
        Ok(())
    }
}

/// Sends `sig` (any number, real-time ones too) to host process `pid`;
/// false if it is gone.
#[allow(unsafe_code)] // kill(2) with a raw signal number, justified below
fn signal_pid(pid: u32, sig: i32) -> bool {
    // SAFETY: kill takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid as i32, sig) == 0 }
}

/// Unmounts what is mounted at (or under) `rootfs`.
pub fn unmount_rootfs(rootfs: &Path) {
    let target = rootfs.to_string_lossy();
    if let Err(e) = containerd_shim::mount::umount_recursive(Some(&target), libc::MNT_DETACH) {
        tracing::warn!("unmounting {target}: {e}");
    }
}
