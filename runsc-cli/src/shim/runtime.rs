//! The `cordon` OCI runtime as the shim drives it: the binary, its state
//! root and global flags (from the runtime options), and one call per
//! runtime command. Every child is waited for through the reaper.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{CodedInputStream, Message};
use serde::{Deserialize, Serialize};

use crate::reaper::Reaper;
use crate::ShimError;

/// How the shim runs `cordon`; saved in the bundle (`cordon-shim.json`) so
/// that `containerd-shim-cordon-v1 delete` can clean up after a dead shim.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuntimeConfig {
    /// The `cordon` binary.
    pub binary: PathBuf,
    /// `cordon --root`.
    pub root: PathBuf,
    /// Further global flags, from the options file's `[cordon]` table.
    pub flags: Vec<String>,
}

/// The options file (`ConfigPath`), laid out like runsc's:
///
/// ```toml
/// binary_name = "/usr/local/bin/cordon"   # default: next to the shim, then PATH
/// root = "/run/containerd/cordon"         # default: /run/containerd/cordon/<namespace>
/// [cordon]                                # global flags of `cordon`
/// platform = "ptrace"
/// debug-log = "/var/log/cordon/"
/// strace = true
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsFile {
    binary_name: Option<PathBuf>,
    root: Option<PathBuf>,
    #[serde(default)]
    cordon: BTreeMap<String, toml::Value>,
}

const SAVED: &str = "cordon-shim.json";

/// The `cordon` binary: the one beside the shim's own (resolved) path,
/// else the first on PATH.
fn default_binary() -> PathBuf {
    if let Some(dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
        let beside = dir.join("cordon");
        if beside.is_file() {
            return beside;
        }
    }
    PathBuf::from("cordon")
}

/// The string fields of the CRI's `runtimeoptions.v1.Options` (type_url = 1,
/// config_path = 2, config_body = 3), decoded by hand: the message is not
/// among the shim crate's generated types.
fn runtime_options(bytes: &[u8]) -> Result<(String, String), ShimError> {
    let bad = |e: containerd_shim::protos::protobuf::Error| ShimError::InvalidArgument(format!("runtime options: {e}"));
    let mut input = CodedInputStream::from_bytes(bytes);
    let (mut path, mut body) = (String::new(), String::new());
    while let Some(tag) = input.read_raw_tag_or_eof().map_err(bad)? {
        match (tag >> 3, tag & 7) {
            (2, 2) => path = input.read_string().map_err(bad)?,
            (3, 2) => body = input.read_string().map_err(bad)?,
            (_, wire) => {
                let wire = containerd_shim::protos::protobuf::rt::WireType::new(wire)
                    .ok_or_else(|| ShimError::InvalidArgument("runtime options: bad wire type".into()))?;
                input.skip_field(wire).map_err(bad)?;
            }
        }
    }
    Ok((path, body))
}

impl RuntimeConfig {
    /// The configuration for containers of `namespace` created with the
    /// runtime `options` of a CreateTaskRequest.
    pub fn from_options(namespace: &str, options: Option<&Any>) -> Result<RuntimeConfig, ShimError> {
        let mut file = OptionsFile::default();
        let mut binary = None;
        let mut root = None;
        if let Some(any) = options.filter(|a| !a.type_url.is_empty()) {
            if any.type_url.ends_with("containerd.runc.v1.Options") {
                // ctr's runc-style options (--runc-binary, --runc-root).
                let o = containerd_shim::api::Options::parse_from_bytes(&any.value)
                    .map_err(|e| ShimError::InvalidArgument(format!("runtime options: {e}")))?;
                binary = Some(o.binary_name).filter(|s| !s.is_empty()).map(PathBuf::from);
                root = Some(o.root).filter(|s| !s.is_empty()).map(PathBuf::from);
            } else if any.type_url.ends_with("runtimeoptions.v1.Options") {
                let (path, body) = runtime_options(&any.value)?;
                let text = if !body.is_empty() {
                    body
                } else if !path.is_empty() {
                    std::fs::read_to_string(&path)
                        .map_err(|e| ShimError::InvalidArgument(format!("reading the options file {path}: {e}")))?
                } else {
                    String::new()
                };
                file = toml::from_str(&text)
                    .map_err(|e| ShimError::InvalidArgument(format!("the options file {path}: {e}")))?;
            } else {
                return Err(ShimError::InvalidArgument(format!("unknown runtime options type {}", any.type_url)));
            }
        }
        let mut flags = Vec::new();
        for (key, value) in &file.cordon {
            match value {
                toml::Value::Boolean(true) => flags.push(format!("--{key}")),
                toml::Value::Boolean(false) => {}
                toml::Value::String(s) => flags.push(format!("--{key}={s}")),
                toml::Value::Integer(i) => flags.push(format!("--{key}={i}")),
                other => {
                    return Err(ShimError::InvalidArgument(format!("[cordon] {key}: unsupported value {other:?}")));
                }
            }
        }
        Ok(RuntimeConfig {
            binary: binary.or(file.binary_name).unwrap_or_else(default_binary),
            root: root.or(file.root).unwrap_or_else(|| Path::new("/run/containerd/cordon").join(namespace)),
            flags,
        })
    }

    pub fn save(&self, bundle: &Path) -> Result<(), ShimError> {
        let text = serde_json::to_vec(self).map_err(|e| ShimError::Io(e.to_string()))?;
        std::fs::write(bundle.join(SAVED), text).map_err(|e| ShimError::Io(format!("saving the runtime options: {e}")))
    }

    pub fn load(bundle: &Path, namespace: &str) -> RuntimeConfig {
        std::fs::read(bundle.join(SAVED))
            .ok()
            .and_then(|t| serde_json::from_slice(&t).ok())
            .unwrap_or_else(|| RuntimeConfig::from_options(namespace, None).expect("defaults are valid"))
    }
}

/// `cordon` with one configuration, waited for through `reaper`.
pub struct Runtime {
    pub config: RuntimeConfig,
    reaper: Arc<Reaper>,
}

/// The stdio a runtime command runs with.
pub enum CommandIo<'a> {
    /// Output captured (the error message comes from stderr), stdin given.
    Capture { stdin: Option<&'a [u8]> },
    /// The process's stdio: errors come from the `--log` file.
    Process { fds: [OwnedFd; 3], log: &'a Path },
}

/// The error line `cordon` printed (without its `cordon: ` prefix), or
/// the last `msg` of its JSON log.
fn error_message(stderr: &str, log: Option<&Path>) -> String {
    if let Some(msg) = log.and_then(|l| std::fs::read_to_string(l).ok()).and_then(|text| {
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["level"] == "error")
            .find_map(|v| v["msg"].as_str().map(String::from))
    }) {
        return msg;
    }
    let line = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("failed without a message");
    line.strip_prefix("cordon: ").unwrap_or(line).to_string()
}

impl Runtime {
    pub fn new(config: RuntimeConfig, reaper: Arc<Reaper>) -> Runtime {
        Runtime { config, reaper }
    }

    /// Runs `cordon <global flags> <args>`; returns its stdout.
    pub fn run(&self, args: &[&str], io: CommandIo<'_>) -> Result<String, ShimError> {
        let mut cmd = Command::new(&self.config.binary);
        cmd.arg("--root").arg(&self.config.root).args(&self.config.flags);
        let log = match &io {
            CommandIo::Process { log, .. } => {
                let _ = std::fs::remove_file(log);
                cmd.arg("--log").arg(log).arg("--log-format").arg("json");
                Some(log.to_path_buf())
            }
            CommandIo::Capture { .. } => None,
        };
        cmd.args(args);
        let mut input = None;
        match io {
            CommandIo::Capture { stdin } => {
                cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
                input = stdin;
            }
            CommandIo::Process { fds: [i, o, e], .. } => {
                cmd.stdin(i).stdout(o).stderr(e);
            }
        }
        tracing::debug!("running {cmd:?}");
        let mut child =
            cmd.spawn().map_err(|e| ShimError::Io(format!("running {}: {e}", self.config.binary.display())))?;
        if let (Some(data), Some(mut w)) = (input, child.stdin.take()) {
            let _ = w.write_all(data);
        }
        let mut stdout = String::new();
        let mut stderr = String::new();
        let err_reader = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = e.read_to_string(&mut s);
                s
            })
        });
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut stdout);
        }
        if let Some(r) = err_reader {
            stderr = r.join().unwrap_or_default();
        }
        let code = self.reaper.wait(child.id() as i32);
        if code != 0 {
            return Err(ShimError::Runtime(error_message(&stderr, log.as_deref())));
        }
        Ok(stdout)
    }

    /// Runs a command whose output does not matter.
    pub fn call(&self, args: &[&str]) -> Result<(), ShimError> {
        self.run(args, CommandIo::Capture { stdin: None }).map(|_| ())
    }
}

/// The pid a runtime command wrote to `path`.
pub fn read_pid(path: &Path) -> Result<u32, ShimError> {
    let text = std::fs::read_to_string(path).map_err(|e| ShimError::Io(format!("reading {}: {e}", path.display())))?;
    text.trim().parse().map_err(|_| ShimError::Io(format!("{} holds no pid: {text:?}", path.display())))
}
