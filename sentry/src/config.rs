//! What the CLI tells the sentry to run.
use serde::{Deserialize, Serialize};

/// The container's first process and the sandbox around it, as the CLI
/// derived them from `config.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BootConfig {
    /// The container's init process.
    #[serde(flatten)]
    pub process: ProcessConfig,
    pub hostname: String,
    pub root_readonly: bool,
    /// A writable root keeps its changes in an overlay in memory
    /// (`--overlay=root:memory`) instead of writing the host rootfs.
    #[serde(default = "overlay_default")]
    pub root_overlay: bool,
    /// A pod's container with a PID namespace of its own (the spec's pid
    /// namespace has no path): its init is pid 1 there, and its processes
    /// see only each other. Otherwise it shares the pod's.
    #[serde(default)]
    pub new_pid_namespace: bool,
    /// `linux.resources.pids.limit`: most processes and threads.
    #[serde(default)]
    pub pids_limit: Option<u64>,
    /// `mounts` of config.json, in order.
    #[serde(default)]
    pub mounts: Vec<MountConfig>,
    /// `linux.maskedPaths`.
    #[serde(default)]
    pub masked_paths: Vec<String>,
    /// `linux.readonlyPaths`.
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    /// Log every guest system call.
    pub strace: bool,
    /// How guest code runs: `ptrace` or `systrap` (`--platform`).
    #[serde(default = "platform_default")]
    pub platform: String,
}

/// A process to start in the sandbox: the container's init (config.json's
/// `process`), or one `exec` adds to a running sandbox.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProcessConfig {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// `process.capabilities` (absent: none, as runc).
    #[serde(default)]
    pub caps: crate::creds::CapSets,
    /// `process.noNewPrivileges`.
    #[serde(default)]
    pub no_new_privs: bool,
    /// `(resource, soft, hard)` from `process.rlimits`.
    #[serde(default)]
    pub rlimits: Vec<(u32, u64, u64)>,
    /// `process.terminal`: the stdio fds are one host pty slave, which
    /// becomes the process's console (see [`crate::console`]).
    #[serde(default)]
    pub terminal: bool,
}

/// One entry of config.json's `mounts`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MountConfig {
    pub destination: String,
    /// `type`: tmpfs, proc, sysfs, bind, ...
    pub kind: String,
    pub options: Vec<String>,
    /// `source` (the device name /proc/mounts shows for tmpfs, proc, ...).
    #[serde(default)]
    pub source: String,
    /// For a bind mount: the inherited fd of the socket of the gofer that
    /// serves it.
    #[serde(default)]
    pub gofer_fd: Option<i32>,
    /// The bind mount's source is a single file (its gofer serves a root
    /// holding only that file, named `f`).
    #[serde(default)]
    pub gofer_file: bool,
}

fn platform_default() -> String {
    "ptrace".into()
}

fn overlay_default() -> bool {
    true
}
