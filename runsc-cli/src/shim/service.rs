//! The task service containerd calls: each request is looked up to its
//! container and process and handed to them; events go to containerd in
//! order through one publishing thread.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

use containerd_shim::api;
use containerd_shim::protos::cgroups::metrics::{CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics, PidsStat};
use containerd_shim::protos::events::task::{TaskCreate, TaskDelete, TaskExecAdded, TaskIO, TaskPaused, TaskResumed};
use containerd_shim::protos::topics;
use containerd_shim::protos::ttrpc::context::Context;
use containerd_shim::protos::types::task::ProcessInfo;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{ExitSignal, Task, TtrpcContext, TtrpcResult};

use crate::container::{unmount_rootfs, Container, CreateSpec, Event};
use crate::reaper::Reaper;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::stdio::StdioPaths;
use crate::ShimError;

pub struct TaskService {
    containers: Mutex<HashMap<String, Arc<Container>>>,
    events: Sender<Event>,
    reaper: Arc<Reaper>,
    namespace: String,
    exit: Arc<ExitSignal>,
}

/// Mounts the root file system containerd prepared (a snapshot's mounts)
/// at `<bundle>/rootfs`; returns where, if there was anything to mount.
fn mount_rootfs(
    bundle: &Path,
    mounts: &[containerd_shim::protos::types::mount::Mount],
) -> Result<Option<PathBuf>, ShimError> {
    if mounts.is_empty() {
        return Ok(None);
    }
    let target = bundle.join("rootfs");
    std::fs::create_dir_all(&target).map_err(|e| ShimError::Io(format!("creating {}: {e}", target.display())))?;
    for m in mounts {
        if let Err(e) = containerd_shim::mount::mount_rootfs(Some(&m.type_), Some(&m.source), &m.options, &target) {
            unmount_rootfs(&target);
            return Err(ShimError::Io(format!("mounting the root file system ({} {}): {e}", m.type_, m.source)));
        }
    }
    Ok(Some(target))
}

/// containerd's cgroup v1 metrics from `cordon events --stats`.
fn metrics(stats: &serde_json::Value) -> Metrics {
    let data = &stats["data"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let mut m = Metrics::new();
    m.pids =
        Some(PidsStat { current: n(&data["pids"]["current"]), limit: n(&data["pids"]["limit"]), ..Default::default() })
            .into();
    m.cpu = Some(CPUStat {
        usage: Some(CPUUsage { total: n(&data["cpu"]["usage"]["total"]), ..Default::default() }).into(),
        ..Default::default()
    })
    .into();
    let usage = n(&data["memory"]["usage"]["usage"]);
    m.memory = Some(MemoryStat {
        rss: usage,
        usage: Some(MemoryEntry { usage, ..Default::default() }).into(),
        ..Default::default()
    })
    .into();
    m
}

impl TaskService {
    pub fn new(namespace: &str, publisher: RemotePublisher, exit: Arc<ExitSignal>) -> TaskService {
        let (events, rx) = channel::<Event>();
        let ns = namespace.to_string();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                for event in rx {
                    match event {
                        Event::Publish(topic, message) => {
                            if let Err(e) = publisher.publish(Context::default(), topic, &ns, message) {
                                tracing::warn!("publishing {topic}: {e}");
                            }
                        }
                        Event::Flush(ack) => {
                            let _ = ack.send(());
                        }
                    }
                }
            })
            .expect("starting the event thread");
        TaskService {
            containers: Mutex::new(HashMap::new()),
            events,
            reaper: Reaper::start(),
            namespace: namespace.to_string(),
            exit,
        }
    }

    fn container(&self, id: &str) -> Result<Arc<Container>, ShimError> {
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| ShimError::NotFound(format!("container {id} does not exist")))
    }

    fn publish(&self, topic: &'static str, event: Box<dyn containerd_shim::protos::protobuf::MessageDyn>) {
        let _ = self.events.send(Event::Publish(topic, event));
    }

    fn create_container(&self, req: &api::CreateTaskRequest) -> Result<Arc<Container>, ShimError> {
        if !req.checkpoint.is_empty() {
            return Err(ShimError::Unsupported("checkpoint/restore is not supported".into()));
        }
        if self.containers.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&req.id) {
            return Err(ShimError::AlreadyExists(format!("container {} already exists", req.id)));
        }
        let bundle = PathBuf::from(&req.bundle);
        let config = RuntimeConfig::from_options(&self.namespace, req.options.as_ref())?;
        config.save(&bundle)?;
        let mounted_rootfs = mount_rootfs(&bundle, &req.rootfs)?;
        let spec = CreateSpec {
            id: req.id.clone(),
            bundle,
            stdio: StdioPaths {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            },
            mounted_rootfs: mounted_rootfs.clone(),
        };
        let runtime = Runtime::new(config, self.reaper.clone());
        Container::create(spec, runtime, self.reaper.clone(), self.events.clone()).inspect_err(|_| {
            if let Some(r) = &mounted_rootfs {
                unmount_rootfs(r);
            }
        })
    }
}

impl Task for TaskService {
    fn create(&self, _ctx: &TtrpcContext, req: api::CreateTaskRequest) -> TtrpcResult<api::CreateTaskResponse> {
        tracing::info!("create {} (bundle {})", req.id, req.bundle);
        let c = self.create_container(&req)?;
        let pid = c.init.state().pid;
        self.containers.lock().unwrap_or_else(|e| e.into_inner()).insert(req.id.clone(), c.clone());
        self.publish(
            topics::TASK_CREATE_EVENT_TOPIC,
            Box::new(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: Some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                })
                .into(),
                checkpoint: req.checkpoint.clone(),
                pid,
                ..Default::default()
            }),
        );
        // Its end, even an early one, is reported after the create.
        c.watch_init();
        Ok(api::CreateTaskResponse { pid, ..Default::default() })
    }

    fn start(&self, _ctx: &TtrpcContext, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        let c = self.container(&req.id)?;
        let pid = c.start(&req.exec_id)?;
        Ok(api::StartResponse { pid, ..Default::default() })
    }

    fn state(&self, _ctx: &TtrpcContext, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        let c = self.container(&req.id)?;
        let p = c.process(&req.exec_id)?;
        let s = p.state();
        Ok(api::StateResponse {
            id: if req.exec_id.is_empty() { req.id.clone() } else { req.exec_id.clone() },
            bundle: c.bundle.to_string_lossy().into_owned(),
            pid: s.pid,
            status: s.status.into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status: s.exit_status,
            exited_at: s.exited_at.clone().into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    fn delete(&self, _ctx: &TtrpcContext, req: api::DeleteRequest) -> TtrpcResult<api::DeleteResponse> {
        let c = self.container(&req.id)?;
        if !req.exec_id.is_empty() {
            let p = c.delete_exec(&req.exec_id)?;
            let s = p.state();
            return Ok(api::DeleteResponse {
                pid: s.pid,
                exit_status: s.exit_status,
                exited_at: s.exited_at.clone().into(),
                ..Default::default()
            });
        }
        c.delete()?;
        self.containers.lock().unwrap_or_else(|e| e.into_inner()).remove(&req.id);
        let s = c.init.state();
        self.publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: req.id.clone(),
                id: req.id.clone(),
                pid: s.pid,
                exit_status: s.exit_status,
                exited_at: s.exited_at.clone().into(),
                ..Default::default()
            }),
        );
        Ok(api::DeleteResponse {
            pid: s.pid,
            exit_status: s.exit_status,
            exited_at: s.exited_at.clone().into(),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let c = self.container(&req.id)?;
        let processes = c.pids()?.into_iter().map(|pid| ProcessInfo { pid, ..Default::default() }).collect();
        Ok(api::PidsResponse { processes, ..Default::default() })
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        self.container(&req.id)?.pause(true)?;
        self.publish(
            topics::TASK_PAUSED_EVENT_TOPIC,
            Box::new(TaskPaused { container_id: req.id.clone(), ..Default::default() }),
        );
        Ok(api::Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        self.container(&req.id)?.pause(false)?;
        self.publish(
            topics::TASK_RESUMED_EVENT_TOPIC,
            Box::new(TaskResumed { container_id: req.id.clone(), ..Default::default() }),
        );
        Ok(api::Empty::new())
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        self.container(&req.id)?.kill(&req.exec_id, req.signal, req.all)?;
        Ok(api::Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let c = self.container(&req.id)?;
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let spec = req.spec.as_ref().map(|a| a.value.clone()).unwrap_or_default();
        c.add_exec(&req.exec_id, stdio, spec)?;
        self.publish(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Box::new(TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            }),
        );
        Ok(api::Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<api::Empty> {
        self.container(&req.id)?.process(&req.exec_id)?.resize(req.width, req.height)?;
        Ok(api::Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        let p = self.container(&req.id)?.process(&req.exec_id)?;
        if req.stdin {
            p.close_stdin();
        }
        Ok(api::Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        let c = self.container(&req.id)?;
        let resources = req.resources.as_ref().map(|a| a.value.clone()).unwrap_or_default();
        c.update(&resources)?;
        Ok(api::Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let p = self.container(&req.id)?.process(&req.exec_id)?;
        let (exit_status, exited_at) = p.wait();
        Ok(api::WaitResponse { exit_status, exited_at: Some(exited_at).into(), ..Default::default() })
    }

    fn stats(&self, _ctx: &TtrpcContext, req: api::StatsRequest) -> TtrpcResult<api::StatsResponse> {
        let c = self.container(&req.id)?;
        let stats = c.stats()?;
        let any = containerd_shim::util::convert_to_any(Box::new(metrics(&stats)))
            .map_err(|e| ShimError::Io(e.to_string()))?;
        Ok(api::StatsResponse { stats: Some(any).into(), ..Default::default() })
    }

    fn connect(&self, _ctx: &TtrpcContext, req: api::ConnectRequest) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self.container(&req.id).map(|c| c.init.state().pid).unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        if self.containers.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            // The events already queued (TaskDelete) reach containerd first.
            let (ack, done) = channel();
            if self.events.send(Event::Flush(ack)).is_ok() {
                let _ = done.recv_timeout(std::time::Duration::from_secs(5));
            }
            self.exit.signal();
        }
        Ok(api::Empty::new())
    }
}
