//! `containerd-shim-cordon-v1`: containerd's shim v2 for Cordon
//! (`runtime_type = "io.containerd.cordon.v1"`). containerd starts one per
//! container, or per pod (containers with the same
//! `io.kubernetes.cri.sandbox-id` annotation share it); it serves the task
//! API over ttrpc and drives the `cordon` OCI runtime, whose processes it
//! reaps and whose exits it reports as events.
#![deny(unsafe_code)]

// The terminal helpers of the `cordon` binary (copying a pty master out).
#[allow(dead_code)]
#[path = "../console.rs"]
mod console;
mod container;
mod reaper;
mod runtime;
mod service;
mod stdio;

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;

use containerd_shim::{publisher::RemotePublisher, Config, DeleteResponse, ExitSignal, Flags, Shim, StartOpts};

use crate::runtime::{Runtime, RuntimeConfig};

/// Errors of the shim, each a gRPC code containerd understands.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unsupported(String),
    /// `cordon` failed: its message.
    #[error("{0}")]
    Runtime(String),
    #[error("{0}")]
    Io(String),
}

impl From<ShimError> for containerd_shim::protos::ttrpc::Error {
    fn from(e: ShimError) -> Self {
        use containerd_shim::protos::ttrpc::{error::get_rpc_status, Code};
        let code = match &e {
            ShimError::NotFound(_) => Code::NOT_FOUND,
            ShimError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            ShimError::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            ShimError::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            ShimError::Unsupported(_) => Code::UNIMPLEMENTED,
            ShimError::Runtime(_) | ShimError::Io(_) => Code::UNKNOWN,
        };
        get_rpc_status(code, e.to_string())
    }
}

/// The shim binary's entry points (start, delete, serve).
struct CordonShim {
    namespace: String,
    id: String,
    bundle: String,
    exit: Arc<ExitSignal>,
}

/// The annotation of a pod's containers naming their pod sandbox.
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// The bundle's config.json annotation `key`, if any.
pub fn bundle_annotation(bundle: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(bundle.join("config.json")).ok()?;
    let spec: serde_json::Value = serde_json::from_str(&text).ok()?;
    spec["annotations"][key].as_str().map(String::from)
}

impl Shim for CordonShim {
    type T = service::TaskService;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        CordonShim {
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            bundle: args.bundle.clone(),
            exit: Arc::new(ExitSignal::default()),
        }
    }

    /// `start`: one shim serves a pod (grouped by the sandbox id), else one
    /// per container. Runs in the bundle directory.
    fn start_shim(&mut self, opts: StartOpts) -> Result<String, containerd_shim::Error> {
        let grouping = bundle_annotation(Path::new("."), SANDBOX_ID).unwrap_or_else(|| opts.id.clone());
        let (_pid, address) = containerd_shim::spawn(opts, &grouping, Vec::new())?;
        Ok(address)
    }

    /// `delete`: the shim of this container is gone; its sandbox and
    /// mounts go too.
    fn delete_shim(&mut self) -> Result<DeleteResponse, containerd_shim::Error> {
        let bundle = if self.bundle.is_empty() {
            std::env::current_dir().map_err(|e| containerd_shim::Error::Other(e.to_string()))?
        } else {
            self.bundle.clone().into()
        };
        let config = RuntimeConfig::load(&bundle, &self.namespace);
        let runtime = Runtime::new(config, reaper::Reaper::start());
        if let Err(e) = runtime.call(&["delete", "--force", &self.id]) {
            tracing::warn!("cleaning up {}: {e}", self.id);
        }
        container::unmount_rootfs(&bundle.join("rootfs"));
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp::now()).into(),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        service::TaskService::new(&self.namespace, publisher, self.exit.clone())
    }
}

/// Logs go to the `log` fifo containerd reads in the shim's directory
/// (debug level with `-debug`), else to stderr.
fn init_logging() {
    let debug = std::env::args().any(|a| a == "-debug" || a == "--debug");
    let filter = tracing_subscriber::EnvFilter::new(if debug { "debug" } else { "info" });
    let serving = std::env::args().all(|a| a != "start" && a != "delete");
    if serving {
        if let Ok(f) = OpenOptions::new().write(true).open("log") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false)
                .try_init();
            return;
        }
    }
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn main() {
    reaper::block_sigchld();
    init_logging();
    let config = Config {
        // Our own logging, and our own reaper (see `reaper`).
        no_setup_logger: true,
        no_reaper: true,
        ..Default::default()
    };
    containerd_shim::run::<CordonShim>("io.containerd.cordon.v1", Some(config));
}
