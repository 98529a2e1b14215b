//! sysfs, minimal but truthful: the CPUs the sandbox has, the cgroup
//! mount point, and the transparent huge page settings programs read.
use std::sync::Arc;

use gofer::Attr;
use syscalls::flags::mode::{S_IFDIR, S_IFREG};
use syscalls::Errno;

use super::file::GeneratedFile;
use super::{FileKind, SynthNode};

/// Device number of the sysfs mount.
pub const SYSFS_DEV: u64 = 0x17;

/// Directories and their entries (a name ending in '/' is a directory).
const TREE: &[(&str, &[&str])] = &[
    ("", &["devices/", "fs/", "kernel/"]),
    ("devices", &["system/"]),
    ("devices/system", &["cpu/"]),
    ("devices/system/cpu", &["offline", "online", "possible", "present"]),
    ("fs", &["cgroup/"]),
    ("fs/cgroup", &[]),
    ("kernel", &["mm/"]),
    ("kernel/mm", &["transparent_hugepage/"]),
    ("kernel/mm/transparent_hugepage", &["defrag", "enabled"]),
];

/// A node of the sysfs tree, by path.
pub struct SysfsNode {
    path: String,
    dir: bool,
    ncpus: usize,
}

/// The root of a new sysfs for a sandbox with `ncpus` CPUs.
pub fn new_sysfs(ncpus: usize) -> Arc<dyn SynthNode> {
    Arc::new(SysfsNode { path: String::new(), dir: true, ncpus })
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl SysfsNode {
    fn contents(&self) -> String {
        let last = self.ncpus.saturating_sub(1);
        let range = if last == 0 { "0".to_string() } else { format!("0-{last}") };
        match self.path.as_str() {
            "devices/system/cpu/online" | "devices/system/cpu/possible" | "devices/system/cpu/present" => {
                format!("{range}\n")
            }
            "devices/system/cpu/offline" => "\n".into(),
            "kernel/mm/transparent_hugepage/enabled" => "always [madvise] never\n".into(),
            "kernel/mm/transparent_hugepage/defrag" => "always defer defer+madvise [madvise] never\n".into(),
            _ => String::new(),
        }
    }
}

impl SynthNode for SysfsNode {
    fn attr(&self) -> Attr {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.path.hash(&mut h);
        Attr {
            mode: if self.dir { S_IFDIR | 0o755 } else { S_IFREG | 0o444 },
            nlink: if self.dir { 2 } else { 1 },
            size: 4096,
            blksize: 4096,
            ino: h.finish() | 1,
            dev: SYSFS_DEV,
            ..Default::default()
        }
    }

    fn lookup(&self, name: &[u8]) -> Option<Arc<dyn SynthNode>> {
        let name = std::str::from_utf8(name).ok()?;
        let (_, entries) = TREE.iter().find(|(d, _)| *d == self.path)?;
        let entry = entries.iter().find(|e| e.trim_end_matches('/') == name)?;
        Some(Arc::new(SysfsNode { path: join(&self.path, name), dir: entry.ends_with('/'), ncpus: self.ncpus }))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Attr)> {
        let Some((_, entries)) = TREE.iter().find(|(d, _)| *d == self.path) else { return Vec::new() };
        entries
            .iter()
            .filter_map(|e| {
                let name = e.trim_end_matches('/');
                self.lookup(name.as_bytes()).map(|n| (name.as_bytes().to_vec(), n.attr()))
            })
            .collect()
    }

    fn open(&self, flags: u32) -> Result<FileKind, Errno> {
        if self.dir {
            return Err(Errno::EISDIR);
        }
        if flags & 3 != 0 {
            return Err(Errno::EACCES);
        }
        let text = self.contents().into_bytes();
        Ok(FileKind::Generated(GeneratedFile::new(move || text.clone())))
    }
}
