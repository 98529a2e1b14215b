//! The spec's `cgroup` mount: a read-only cgroup v2 view of the container's
//! one cgroup, as runc mounts it (cgroupns: the container's cgroup is the
//! root, "0::/" in /proc/pid/cgroup). Files report what the sentry knows
//! and enforces: its processes and threads, the task limit, the memory the
//! guest's pages take; CPU and memory limits show "max" because the
//! sandbox enforces none of its own yet.
use std::fmt::Write as _;
use std::sync::Arc;

use gofer::Attr;
use syscalls::flags::mode::{S_IFDIR, S_IFREG};
use syscalls::Errno;

use super::file::GeneratedFile;
use super::procfs::KernelSlot;
use super::{FileKind, SynthNode};
use crate::kernel::{sees, Kernel, PidNs};

/// Device number of the cgroup mount.
pub const CGROUP_DEV: u64 = 0x1a;

/// The files of the container's cgroup directory.
const FILES: &[&str] = &[
    "cgroup.controllers",
    "cgroup.events",
    "cgroup.max.depth",
    "cgroup.max.descendants",
    "cgroup.procs",
    "cgroup.subtree_control",
    "cgroup.threads",
    "cgroup.type",
    "cpu.max",
    "cpu.weight",
    "memory.current",
    "memory.high",
    "memory.low",
    "memory.max",
    "memory.min",
    "memory.swap.current",
    "memory.swap.max",
    "pids.current",
    "pids.max",
];

pub struct CgroupNode {
    /// None for the directory.
    file: Option<&'static str>,
    kernel: KernelSlot,
    /// The PID namespace whose ids it shows (its mounter's).
    ns: PidNs,
}

/// The root of a new cgroup view, showing ids of namespace `ns`.
pub fn new_cgroupfs(kernel: KernelSlot, ns: PidNs) -> Arc<dyn SynthNode> {
    Arc::new(CgroupNode { file: None, kernel, ns })
}

fn contents(k: &Kernel, ns: PidNs, file: &str) -> String {
    let mut s = String::new();
    match file {
        "cgroup.controllers" => s.push_str("cpu memory pids\n"),
        "cgroup.events" => {
            let populated = u8::from(!k.pids().groups.is_empty());
            let _ = write!(s, "populated {populated}\nfrozen 0\n");
        }
        "cgroup.procs" => {
            // The groups first, their state after: no lock held in between.
            // Only those the reader's namespace sees, by their ids there.
            let groups: Vec<_> = k.pids().groups.values().filter(|g| sees(ns, g)).cloned().collect();
            let mut ids: Vec<i32> = groups.iter().filter(|g| g.state().exit.is_none()).map(|g| g.pid_in(ns)).collect();
            ids.sort_unstable();
            for id in ids {
                let _ = writeln!(s, "{id}");
            }
        }
        "cgroup.threads" => {
            let mut ids: Vec<i32> = k.pids().tasks.values().map(|t| t.tid_in(ns)).filter(|t| *t > 0).collect();
            ids.sort_unstable();
            for id in ids {
                let _ = writeln!(s, "{id}");
            }
        }
        "cgroup.subtree_control" => s.push('\n'),
        "cgroup.type" => s.push_str("domain\n"),
        "cgroup.max.depth" | "cgroup.max.descendants" | "memory.high" | "memory.max" | "memory.swap.max" => {
            s.push_str("max\n")
        }
        "cpu.max" => s.push_str("max 100000\n"),
        "cpu.weight" => s.push_str("100\n"),
        "memory.current" => {
            let _ = writeln!(s, "{}", k.memory.resident_bytes());
        }
        "memory.low" | "memory.min" | "memory.swap.current" => s.push_str("0\n"),
        "pids.current" => {
            let _ = writeln!(s, "{}", k.pids().tasks.len());
        }
        // The limit the sentry enforces: the spec's, or its default bound
        // (where runc would show "max").
        "pids.max" => {
            let _ = writeln!(s, "{}", k.max_tasks());
        }
        _ => {}
    }
    s
}

impl SynthNode for CgroupNode {
    fn attr(&self) -> Attr {
        let ino = match self.file {
            None => 1,
            Some(f) => 2 + FILES.iter().position(|x| *x == f).unwrap_or(0) as u64,
        };
        Attr {
            mode: if self.file.is_none() { S_IFDIR | 0o755 } else { S_IFREG | 0o644 },
            nlink: if self.file.is_none() { 2 } else { 1 },
            blksize: 4096,
            ino,
            dev: CGROUP_DEV,
            ..Default::default()
        }
    }

    fn lookup(&self, name: &[u8]) -> Option<Arc<dyn SynthNode>> {
        if self.file.is_some() {
            return None;
        }
        let f = FILES.iter().find(|f| f.as_bytes() == name)?;
        Some(Arc::new(CgroupNode { file: Some(f), kernel: self.kernel.clone(), ns: self.ns }))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Attr)> {
        if self.file.is_some() {
            return Vec::new();
        }
        FILES.iter().filter_map(|f| self.lookup(f.as_bytes()).map(|n| (f.as_bytes().to_vec(), n.attr()))).collect()
    }

    fn open(&self, flags: u32) -> Result<FileKind, Errno> {
        let Some(file) = self.file else { return Err(Errno::EISDIR) };
        if flags & 3 != 0 {
            return Err(Errno::EROFS);
        }
        let (kernel, ns) = (self.kernel.clone(), self.ns);
        Ok(FileKind::Generated(GeneratedFile::new(move || {
            kernel
                .get()
                .and_then(std::sync::Weak::upgrade)
                .map(|k| contents(&k, ns, file))
                .unwrap_or_default()
                .into_bytes()
        })))
    }

    fn cacheable(&self) -> bool {
        true
    }

    fn readonly(&self) -> bool {
        true
    }
}
