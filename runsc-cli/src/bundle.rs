//! Bundles: config.json read and checked, and turned into what the sentry
//! runs.
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::Spec;

use crate::Cli;

/// A validated bundle.
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
}

/// Loads and checks `config.json` of a bundle.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = dir.canonicalize().with_context(|| format!("bundle {}", dir.display()))?;
    let cfg = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg).with_context(|| format!("reading {}", cfg.display()))?;
    let spec: Spec = serde_json::from_str(&text).with_context(|| format!("parsing {}", cfg.display()))?;
    let root = spec.root().as_ref().ok_or_else(|| anyhow!("config.json has no root"))?;
    let rootfs = dir.join(root.path());
    if !rootfs.is_dir() {
        bail!("root.path {} does not exist or is not a directory", rootfs.display());
    }
    let process = spec.process().as_ref().ok_or_else(|| anyhow!("config.json has no process"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("process.args must not be empty");
    }
    // execve takes C strings: a NUL inside one cannot be passed (runc
    // fails the exec with EINVAL).
    let strings = process.args().iter().flatten().chain(process.env().iter().flatten());
    if let Some(bad) = strings.into_iter().find(|s| s.contains('\0')) {
        bail!("process.args and process.env must not contain NUL bytes: {bad:?}");
    }
    Ok(Bundle { dir, rootfs, spec })
}

/// Whether a config.json mount is a bind mount.
pub fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options().as_ref().is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

/// The host directory a bind mount serves (relative sources are relative
/// to the bundle, as runc takes them).
pub fn bind_source(b: &Bundle, m: &oci_spec::runtime::Mount) -> Option<PathBuf> {
    let src = m.source().as_ref()?;
    Some(if src.is_absolute() { src.clone() } else { b.dir.join(src) })
}

/// The sentry's view of the process to run; `bind_fds` are the sentry's
/// gofer sockets of the bind mounts, by index in `mounts`.
pub fn boot_config(cli: &Cli, b: &Bundle, bind_fds: &[(usize, i32)]) -> Result<sentry::BootConfig> {
    let p = b.spec.process().as_ref().ok_or_else(|| anyhow!("config.json has no process"))?;
    let hostname = match b.spec.hostname() {
        Some(h) if !h.is_empty() => h.clone(),
        _ => nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default(),
    };
    Ok(sentry::BootConfig {
        process: process_config(p),
        hostname,
        root_readonly: b.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
        root_overlay: cli.overlay != "none",
        platform: cli.platform.clone(),
        pids_limit: b
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.pids().as_ref())
            .map(|p| p.limit())
            .filter(|l| *l > 0)
            .map(|l| l as u64),
        mounts: b
            .spec
            .mounts()
            .as_ref()
            .map(|ms| {
                ms.iter()
                    .enumerate()
                    .map(|(i, m)| sentry::config::MountConfig {
                        destination: m.destination().to_string_lossy().into_owned(),
                        kind: if is_bind(m) { "bind".into() } else { m.typ().clone().unwrap_or_default() },
                        options: m.options().clone().unwrap_or_default(),
                        source: m.source().as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default(),
                        gofer_fd: bind_fds.iter().find(|(j, _)| *j == i).map(|(_, fd)| *fd),
                        gofer_file: is_bind(m) && bind_source(b, m).is_some_and(|s| !s.is_dir()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        masked_paths: linux_paths(b, |l| l.masked_paths().clone()),
        readonly_paths: linux_paths(b, |l| l.readonly_paths().clone()),
        strace: cli.strace,
        new_pid_namespace: new_pid_namespace(b),
    })
}

/// Whether the spec asks for a PID namespace of its own: a `pid` entry
/// without a path (with a path it joins that one: in a pod, the pod's; with
/// no entry it shares the runtime's, which in a sandbox is the pod's too).
/// Only a pod's container can have one: a sandbox's first container is
/// always its root namespace's init.
pub fn new_pid_namespace(b: &Bundle) -> bool {
    use oci_spec::runtime::LinuxNamespaceType;
    let namespaces = b.spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none())
}

/// The sentry's view of an OCI process (init's, or one to exec).
pub fn process_config(p: &oci_spec::runtime::Process) -> sentry::config::ProcessConfig {
    let user = p.user();
    let rlimits = p
        .rlimits()
        .as_ref()
        .map(|v| {
            v.iter()
                .filter_map(|r| {
                    let name = serde_json::to_value(r.typ()).ok()?;
                    let res = rlimit_number(name.as_str()?)?;
                    Some((res, r.soft(), r.hard()))
                })
                .collect()
        })
        .unwrap_or_default();
    sentry::config::ProcessConfig {
        args: p.args().clone().unwrap_or_default(),
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().to_string_lossy().into_owned(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        caps: capability_sets(p.capabilities().as_ref()),
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        rlimits,
        terminal: p.terminal().unwrap_or(false),
    }
}

/// A list of paths from the spec's `linux` section.
fn linux_paths(b: &Bundle, get: impl Fn(&oci_spec::runtime::Linux) -> Option<Vec<String>>) -> Vec<String> {
    b.spec.linux().as_ref().and_then(get).unwrap_or_default()
}

/// `process.capabilities` as bit masks (unknown names are ignored, as runc
/// ignores capabilities the kernel lacks).
fn capability_sets(caps: Option<&oci_spec::runtime::LinuxCapabilities>) -> sentry::creds::CapSets {
    let Some(c) = caps else { return sentry::creds::CapSets::default() };
    let mask = |set: &Option<oci_spec::runtime::Capabilities>| {
        set.iter().flatten().fold(0u64, |m, cap| {
            let name = serde_json::to_value(cap).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let name = if name.starts_with("CAP_") { name } else { format!("CAP_{name}") };
            match syscalls::flags::cap::NAMES.iter().position(|n| *n == name) {
                Some(i) => m | 1 << i,
                None => m,
            }
        })
    };
    sentry::creds::CapSets {
        effective: mask(c.effective()),
        permitted: mask(c.permitted()),
        inheritable: mask(c.inheritable()),
        bounding: mask(c.bounding()),
        ambient: mask(c.ambient()),
    }
}

fn rlimit_number(name: &str) -> Option<u32> {
    use syscalls::flags::rlimit as R;
    Some(match name {
        "RLIMIT_CPU" => R::RLIMIT_CPU,
        "RLIMIT_FSIZE" => R::RLIMIT_FSIZE,
        "RLIMIT_DATA" => R::RLIMIT_DATA,
        "RLIMIT_STACK" => R::RLIMIT_STACK,
        "RLIMIT_CORE" => R::RLIMIT_CORE,
        "RLIMIT_RSS" => R::RLIMIT_RSS,
        "RLIMIT_NPROC" => R::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => R::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => R::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => R::RLIMIT_AS,
        _ => return None,
    })
}
