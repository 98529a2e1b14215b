//! procfs: generated from the sentry's own objects (tasks, memory, files,
//! mounts), never copied from the host. Lookups are not cached (processes
//! come and go); file contents are generated when a file is opened.
use std::fmt::Write;
use std::sync::{Arc, OnceLock, Weak};

use gofer::Attr;
use syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFREG};
use syscalls::Errno;

use super::{FileKind, SynthNode};
use crate::kernel::{sees, Kernel, PidNs};
use crate::process::{ProcView, TaskShared, ThreadGroup};

/// Device number of the proc mount.
pub const PROC_DEV: u64 = 0x16;
/// Clock ticks per second of /proc's times (USER_HZ).
const HZ: u64 = 100;

/// The kernel a procfs shows, set once the kernel exists.
pub type KernelSlot = Arc<OnceLock<Weak<Kernel>>>;

/// What a procfs node is.
#[derive(Clone)]
enum Kind {
    Root,
    /// `/proc/<tgid>` (tid None) or `/proc/<tgid>/task/<tid>`.
    Pid {
        tgid: i32,
        tid: Option<i32>,
    },
    Tasks(i32),
    Fds(i32),
    Fd {
        tid: i32,
        fd: i32,
    },
    FdInfos(i32),
    FdInfo {
        tid: i32,
        fd: i32,
    },
    /// `/proc/<pid>/ns`.
    NsDir(i32),
    /// A symlink to a fixed or computed target.
    SelfLink,
    ThreadSelfLink,
    Link(Vec<u8>),
    PidLink {
        tid: i32,
        which: &'static str,
    },
    /// A file of a process.
    PidFile {
        tgid: i32,
        tid: i32,
        name: &'static str,
    },
    /// A global file (cpuinfo, ...).
    File(&'static str),
    /// A directory of /proc/sys, by path.
    SysDir(&'static str),
    SysFile(String),
}

/// A node of the proc tree.
pub struct ProcNode {
    kernel: KernelSlot,
    /// The PID namespace it shows (its mounter's): the processes there, by
    /// their ids there. Nodes name processes by their sandbox ids.
    ns: PidNs,
    kind: Kind,
}

/// The root of a new procfs showing PID namespace `ns`.
pub fn new_procfs(kernel: KernelSlot, ns: PidNs) -> Arc<dyn SynthNode> {
    Arc::new(ProcNode { kernel, ns, kind: Kind::Root })
}

const ROOT_FILES: &[&str] = &["cpuinfo", "filesystems", "loadavg", "meminfo", "stat", "uptime", "version"];
const PID_FILES: &[&str] = &[
    "cgroup",
    "cmdline",
    "comm",
    "environ",
    "auxv",
    "io",
    "limits",
    "maps",
    "mountinfo",
    "mounts",
    "oom_score_adj",
    "smaps_rollup",
    "stat",
    "statm",
    "status",
];
const PID_LINKS: &[&str] = &["cwd", "exe", "root"];

/// The sandbox's namespaces (one of each) and the inode numbers that name
/// them in /proc/pid/ns.
const NAMESPACES: &[(&str, u64)] = &[
    ("cgroup", 4026531835),
    ("ipc", 4026531839),
    ("mnt", 4026531841),
    ("net", 4026531840),
    ("pid", 4026531836),
    ("pid_for_children", 4026531836),
    ("time", 4026531834),
    ("time_for_children", 4026531834),
    ("user", 4026531837),
    ("uts", 4026531838),
];

/// Where inode numbers of a pod's containers' own namespaces start.
const CHILD_NS_INO: u64 = 4026532000;

/// /proc/sys: directories and their entries.
const SYS_TREE: &[(&str, &[&str])] = &[
    ("", &["fs", "kernel", "net", "vm"]),
    ("fs", &["file-max", "nr_open", "pipe-max-size"]),
    ("kernel", &["cap_last_cap", "hostname", "ngroups_max", "osrelease", "ostype", "pid_max", "random", "threads-max"]),
    ("kernel/random", &["boot_id", "uuid"]),
    ("net", &["core"]),
    ("net/core", &["somaxconn"]),
    ("vm", &["max_map_count", "mmap_min_addr", "overcommit_memory"]),
];

fn sys_path(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The node of a /proc/sys path: a directory of SYS_TREE or a file in one.
fn sys_node(path: &str) -> Option<Kind> {
    if let Some((d, _)) = SYS_TREE.iter().find(|(d, _)| *d == path) {
        return Some(Kind::SysDir(d));
    }
    let listed = SYS_TREE.iter().any(|(dir, names)| names.iter().any(|n| sys_path(dir, n) == path));
    listed.then(|| Kind::SysFile(path.to_string()))
}

fn boot_time() -> (i64, u32) {
    static T: OnceLock<(i64, u32)> = OnceLock::new();
    *T.get_or_init(|| {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (d.as_secs() as i64, d.subsec_nanos())
    })
}

fn ino_of(kind: &Kind) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match kind {
        Kind::Root => 1u8.hash(&mut h),
        Kind::Pid { tgid, tid } => (2u8, tgid, tid).hash(&mut h),
        Kind::Tasks(t) => (3u8, t).hash(&mut h),
        Kind::Fds(t) => (4u8, t).hash(&mut h),
        Kind::Fd { tid, fd } => (5u8, tid, fd).hash(&mut h),
        Kind::SelfLink => 6u8.hash(&mut h),
        Kind::ThreadSelfLink => 7u8.hash(&mut h),
        Kind::Link(t) => (8u8, t).hash(&mut h),
        Kind::PidLink { tid, which } => (9u8, tid, which).hash(&mut h),
        Kind::PidFile { tgid, tid, name } => (10u8, tgid, tid, name).hash(&mut h),
        Kind::File(n) => (11u8, n).hash(&mut h),
        Kind::SysDir(p) => (12u8, p).hash(&mut h),
        Kind::SysFile(p) => (13u8, p).hash(&mut h),
        Kind::FdInfos(t) => (14u8, t).hash(&mut h),
        Kind::FdInfo { tid, fd } => (15u8, tid, fd).hash(&mut h),
        Kind::NsDir(t) => (16u8, t).hash(&mut h),
    }
    h.finish() | 1
}

impl ProcNode {
    fn kernel(&self) -> Option<Arc<Kernel>> {
        self.kernel.get().and_then(Weak::upgrade)
    }

    fn child(&self, kind: Kind) -> Arc<dyn SynthNode> {
        Arc::new(ProcNode { kernel: self.kernel.clone(), ns: self.ns, kind })
    }

    fn group(&self, tgid: i32) -> Option<Arc<ThreadGroup>> {
        self.kernel()?.pids().groups.get(&tgid).cloned()
    }

    /// The task `tid` (its group's first live thread when `tid` is the
    /// group's id and the leader is gone).
    fn task(&self, tgid: i32, tid: i32) -> Option<Arc<TaskShared>> {
        let k = self.kernel()?;
        if let Some(t) = k.pids().tasks.get(&tid).filter(|t| t.group.pid == tgid) {
            return Some(t.clone());
        }
        let g = k.pids().groups.get(&tgid).cloned()?;
        let first = g.state().threads.first().cloned();
        first.filter(|_| tid == tgid)
    }

    /// The inode number naming namespace `ns` of task `tid`: the
    /// sandbox's, or for the PID and mount namespaces, which a pod's
    /// containers may have of their own, theirs.
    fn ns_ino(&self, tid: i32, ns: &str, base: u64) -> u64 {
        let group = self.kernel().and_then(|k| {
            let pids = k.pids();
            // (A process whose leader thread is gone goes by its group.)
            pids.tasks.get(&tid).map(|t| t.group.clone()).or_else(|| pids.groups.get(&tid).cloned())
        });
        let Some(group) = group else { return base };
        match ns {
            "pid" if !group.pidns.is_root() => CHILD_NS_INO + 2 * u64::from(group.pidns.0),
            "mnt" if group.container != 0 => CHILD_NS_INO + 2 * u64::from(group.container) + 1,
            _ => base,
        }
    }

    fn owner(&self) -> (u32, u32) {
        let tid = match &self.kind {
            Kind::Pid { tgid, tid } => tid.unwrap_or(*tgid),
            Kind::Tasks(t) | Kind::Fds(t) | Kind::FdInfos(t) | Kind::NsDir(t) => *t,
            Kind::Fd { tid, .. } | Kind::FdInfo { tid, .. } | Kind::PidLink { tid, .. } | Kind::PidFile { tid, .. } => {
                *tid
            }
            _ => return (0, 0),
        };
        let tgid = match &self.kind {
            Kind::Pid { tgid, .. } | Kind::PidFile { tgid, .. } => *tgid,
            _ => self.kernel().and_then(|k| k.pids().tasks.get(&tid).map(|t| t.group.pid)).unwrap_or(tid),
        };
        self.task(tgid, tid).map_or((0, 0), |t| {
            let v = t.view();
            (v.ids[1], v.ids[4])
        })
    }
}

/// The name of an open file as /proc/pid/fd shows it.
fn fd_target(f: &super::File, root: Option<&Arc<super::Dentry>>) -> Vec<u8> {
    use super::FileKind as K;
    match &f.kind {
        K::Pipe(end) => format!("pipe:[{}]", end.pipe.ino).into_bytes(),
        K::Tty(end) if f.dentry.is_none() => format!("/dev/pts/{}", end.term.index).into_bytes(),
        K::Anon(a) => format!("anon_inode:[{}]", a.name()).into_bytes(),
        K::Host(fd) => {
            let st = super::file::host_fstat(std::os::fd::AsRawFd::as_raw_fd(fd));
            match st {
                Ok(s) if s.st_mode & libc::S_IFMT == libc::S_IFIFO => format!("pipe:[{}]", s.st_ino).into_bytes(),
                Ok(s) if s.st_mode & libc::S_IFMT == libc::S_IFSOCK => format!("socket:[{}]", s.st_ino).into_bytes(),
                Ok(s) if s.st_mode & libc::S_IFMT == libc::S_IFCHR && s.st_rdev == libc::makedev(1, 3) => {
                    b"/dev/null".to_vec()
                }
                Ok(s) if s.st_mode & libc::S_IFMT == libc::S_IFCHR && libc::major(s.st_rdev) == 136 => {
                    format!("/dev/pts/{}", libc::minor(s.st_rdev)).into_bytes()
                }
                _ => format!("host:[{}]", std::os::fd::AsRawFd::as_raw_fd(fd)).into_bytes(),
            }
        }
        _ => match (&f.dentry, root) {
            // A tmpfs file whose name is gone (unlinked, or O_TMPFILE's
            // "#ino", even once linked elsewhere).
            (Some(d), Some(r)) if !d.is_dir() && d.tmpfs().is_some() && d.unlinked() => {
                let mut p = d.path_from(r);
                p.extend_from_slice(b" (deleted)");
                p
            }
            (Some(d), Some(r)) => d.path_from(r),
            (Some(d), None) => d.name(),
            (None, _) => b"/memfd: (deleted)".to_vec(),
        },
    }
}

impl SynthNode for ProcNode {
    fn attr(&self) -> Attr {
        let (uid, gid) = self.owner();
        let mode = match &self.kind {
            Kind::Root | Kind::Pid { .. } | Kind::Tasks(_) | Kind::SysDir(_) => S_IFDIR | 0o555,
            Kind::Fds(_) | Kind::FdInfos(_) => S_IFDIR | 0o500,
            Kind::NsDir(_) => S_IFDIR | 0o511,
            Kind::FdInfo { .. } => S_IFREG | 0o400,
            Kind::SelfLink | Kind::ThreadSelfLink | Kind::Link(_) | Kind::PidLink { .. } => S_IFLNK | 0o777,
            // The link's mode shows how the file is open, as Linux's.
            Kind::Fd { tid, fd } => {
                let file = self.kernel().and_then(|k| k.pids().tasks.get(tid).cloned()).and_then(|t| {
                    let v = t.view();
                    v.fds.as_ref().and_then(|f| f.get(*fd).ok())
                });
                let (r, w) = file.map_or((true, true), |f| (f.readable() || f.is_path(), f.writable()));
                S_IFLNK | 0o100 | if r { 0o400 } else { 0 } | if w { 0o200 } else { 0 }
            }
            Kind::PidFile { name: "environ" | "auxv" | "io", .. } => S_IFREG | 0o400,
            Kind::PidFile { name: "oom_score_adj", .. } | Kind::PidFile { name: "comm", .. } => S_IFREG | 0o644,
            Kind::SysFile(p) if p == "kernel/hostname" => S_IFREG | 0o644,
            Kind::PidFile { .. } | Kind::File(_) | Kind::SysFile(_) => S_IFREG | 0o444,
        };
        let t = boot_time();
        Attr {
            mode,
            nlink: if mode & S_IFDIR != 0 { 2 } else { 1 },
            uid,
            gid,
            blksize: 1024,
            atime: t,
            mtime: t,
            ctime: t,
            ino: ino_of(&self.kind),
            dev: PROC_DEV,
            ..Default::default()
        }
    }

    fn cacheable(&self) -> bool {
        false
    }

    fn lookup(&self, name: &[u8]) -> Option<Arc<dyn SynthNode>> {
        let name = std::str::from_utf8(name).ok()?;
        let kind = match &self.kind {
            Kind::Root => match name {
                "self" => Kind::SelfLink,
                "thread-self" => Kind::ThreadSelfLink,
                "mounts" => Kind::Link(b"self/mounts".to_vec()),
                "sys" => Kind::SysDir(""),
                n if ROOT_FILES.contains(&n) => Kind::File(ROOT_FILES.iter().find(|f| **f == n)?),
                n => {
                    let pid: i32 = n.parse().ok()?;
                    let g = self.kernel()?.pids().group_in(self.ns, pid)?;
                    Kind::Pid { tgid: g.pid, tid: None }
                }
            },
            Kind::Pid { tgid, tid } => {
                let me = tid.unwrap_or(*tgid);
                match name {
                    "task" if tid.is_none() => Kind::Tasks(*tgid),
                    "fd" => Kind::Fds(me),
                    "fdinfo" => Kind::FdInfos(me),
                    "ns" => Kind::NsDir(me),
                    n if PID_LINKS.contains(&n) => {
                        Kind::PidLink { tid: me, which: PID_LINKS.iter().find(|f| **f == n)? }
                    }
                    n if PID_FILES.contains(&n) => {
                        Kind::PidFile { tgid: *tgid, tid: me, name: PID_FILES.iter().find(|f| **f == n)? }
                    }
                    _ => return None,
                }
            }
            Kind::Tasks(tgid) => {
                let tid: i32 = name.parse().ok()?;
                let tid = self.kernel()?.pids().find(self.ns, tid)?;
                self.task(*tgid, tid).filter(|t| t.tid() == tid)?;
                Kind::Pid { tgid: *tgid, tid: Some(tid) }
            }
            Kind::Fds(tid) => {
                let fd: i32 = name.parse().ok()?;
                let t = self.kernel()?.pids().tasks.get(tid).cloned()?;
                let fds = t.view().fds.as_ref().map(|f| f.share())?;
                fds.get(fd).ok()?;
                Kind::Fd { tid: *tid, fd }
            }
            Kind::FdInfos(tid) => {
                let fd: i32 = name.parse().ok()?;
                let t = self.kernel()?.pids().tasks.get(tid).cloned()?;
                let fds = t.view().fds.as_ref().map(|f| f.share())?;
                fds.get(fd).ok()?;
                Kind::FdInfo { tid: *tid, fd }
            }
            Kind::NsDir(tid) => {
                let (_, ino) = NAMESPACES.iter().find(|(n, _)| *n == name)?;
                let ns = name.trim_end_matches("_for_children");
                Kind::Link(format!("{ns}:[{}]", self.ns_ino(*tid, ns, *ino)).into_bytes())
            }
            Kind::SysDir(dir) => {
                let (_, names) = SYS_TREE.iter().find(|(d, _)| d == dir)?;
                names.iter().find(|n| **n == name)?;
                sys_node(&sys_path(dir, name))?
            }
            _ => return None,
        };
        Some(self.child(kind))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Attr)> {
        let mut names: Vec<Kind> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        match &self.kind {
            Kind::Root => {
                for f in ROOT_FILES {
                    labels.push(f.to_string());
                    names.push(Kind::File(f));
                }
                labels.extend(["mounts", "self", "sys", "thread-self"].map(String::from));
                names.extend([
                    Kind::Link(b"self/mounts".to_vec()),
                    Kind::SelfLink,
                    Kind::SysDir(""),
                    Kind::ThreadSelfLink,
                ]);
                if let Some(k) = self.kernel() {
                    let mut pids: Vec<(i32, i32)> = k
                        .pids()
                        .groups
                        .values()
                        .filter(|g| sees(self.ns, g))
                        .map(|g| (g.pid_in(self.ns), g.pid))
                        .collect();
                    pids.sort_unstable();
                    for (label, p) in pids {
                        labels.push(label.to_string());
                        names.push(Kind::Pid { tgid: p, tid: None });
                    }
                }
            }
            Kind::Pid { tgid, tid } => {
                let me = tid.unwrap_or(*tgid);
                labels.push("fd".into());
                names.push(Kind::Fds(me));
                labels.push("fdinfo".into());
                names.push(Kind::FdInfos(me));
                labels.push("ns".into());
                names.push(Kind::NsDir(me));
                for l in PID_LINKS {
                    labels.push(l.to_string());
                    names.push(Kind::PidLink { tid: me, which: l });
                }
                for f in PID_FILES {
                    labels.push(f.to_string());
                    names.push(Kind::PidFile { tgid: *tgid, tid: me, name: f });
                }
                if tid.is_none() {
                    labels.push("task".into());
                    names.push(Kind::Tasks(*tgid));
                }
            }
            Kind::Tasks(tgid) => {
                if let Some(g) = self.group(*tgid) {
                    let mut tids: Vec<(i32, i32)> =
                        g.state().threads.iter().map(|t| (t.tid_in(self.ns), t.tid())).collect();
                    tids.sort_unstable();
                    for (label, t) in tids {
                        labels.push(label.to_string());
                        names.push(Kind::Pid { tgid: *tgid, tid: Some(t) });
                    }
                }
            }
            Kind::Fds(tid) | Kind::FdInfos(tid) => {
                let info = matches!(self.kind, Kind::FdInfos(_));
                let fds = self
                    .kernel()
                    .and_then(|k| k.pids().tasks.get(tid).cloned())
                    .and_then(|t| t.view().fds.as_ref().map(|f| f.share()));
                for (fd, _) in fds.map(|f| f.open_fds()).unwrap_or_default() {
                    labels.push(fd.to_string());
                    names.push(if info { Kind::FdInfo { tid: *tid, fd } } else { Kind::Fd { tid: *tid, fd } });
                }
            }
            Kind::NsDir(tid) => {
                for (n, ino) in NAMESPACES {
                    labels.push(n.to_string());
                    let ns = n.trim_end_matches("_for_children");
                    names.push(Kind::Link(format!("{ns}:[{}]", self.ns_ino(*tid, ns, *ino)).into_bytes()));
                }
            }
            Kind::SysDir(dir) => {
                if let Some((_, entries)) = SYS_TREE.iter().find(|(d, _)| d == dir) {
                    for n in entries.iter() {
                        if let Some(kind) = sys_node(&sys_path(dir, n)) {
                            labels.push(n.to_string());
                            names.push(kind);
                        }
                    }
                }
            }
            _ => {}
        }
        labels.into_iter().zip(names).map(|(l, k)| (l.into_bytes(), self.child(k).attr())).collect()
    }

    fn readlink(&self) -> Option<Vec<u8>> {
        let cur = crate::process::current();
        match &self.kind {
            // A process outside the namespace has no self here.
            Kind::SelfLink => Some(cur?.group.pid_in(self.ns)).filter(|p| *p > 0).map(|p| p.to_string().into_bytes()),
            Kind::ThreadSelfLink => {
                let c = cur?;
                let (pid, tid) = (c.group.pid_in(self.ns), c.tid_in(self.ns));
                (pid > 0).then(|| format!("{pid}/task/{tid}").into_bytes())
            }
            Kind::Link(t) => Some(t.clone()),
            Kind::PidLink { tid, which } => {
                let t = self.kernel()?.pids().tasks.get(tid).cloned()?;
                let v = t.view();
                let fs = v.fs.clone()?;
                let fs = fs.lock().unwrap_or_else(|e| e.into_inner());
                Some(match *which {
                    "exe" => v.exe.clone(),
                    "cwd" => fs.cwd.path_from(&fs.root),
                    _ => b"/".to_vec(),
                })
            }
            Kind::Fd { tid, fd } => {
                let t = self.kernel()?.pids().tasks.get(tid).cloned()?;
                let v = t.view();
                let f = v.fds.as_ref()?.get(*fd).ok()?;
                let root = v.fs.as_ref().map(|fs| fs.lock().unwrap_or_else(|e| e.into_inner()).root.clone());
                Some(fd_target(&f, root.as_ref()))
            }
            _ => None,
        }
    }

    fn magic(&self) -> Option<super::Magic> {
        use super::Magic;
        let tid = match &self.kind {
            Kind::Fd { tid, .. } | Kind::PidLink { tid, .. } => *tid,
            _ => return None,
        };
        let t = self.kernel()?.pids().tasks.get(&tid).cloned()?;
        let v = t.view();
        match &self.kind {
            Kind::Fd { fd, .. } => {
                let f = v.fds.as_ref()?.get(*fd).ok()?;
                // Pipes, stdio and anonymous files have no name to go to.
                match &f.dentry {
                    Some(d) => Some(Magic::Dentry(d.clone())),
                    None => Some(Magic::File(f)),
                }
            }
            Kind::PidLink { which, .. } if *which != "exe" => {
                let fs = v.fs.clone()?;
                let fs = fs.lock().unwrap_or_else(|e| e.into_inner());
                Some(Magic::Dentry(if *which == "cwd" { fs.cwd.clone() } else { fs.root.clone() }))
            }
            _ => None,
        }
    }

    fn open(&self, flags: u32) -> Result<FileKind, Errno> {
        let k = self.kernel().ok_or(Errno::ENOENT)?;
        if flags & 3 != 0 {
            return self.open_for_write(&k);
        }
        let slot = self.kernel.clone();
        let kind = self.kind.clone();
        match &kind {
            Kind::File(_) | Kind::SysFile(_) => {}
            Kind::PidFile { tgid, .. } => {
                k.pids().groups.get(tgid).ok_or(Errno::ESRCH)?;
            }
            Kind::FdInfo { .. } => {}
            _ => return Err(Errno::EISDIR),
        }
        let node = ProcNode { kernel: slot, ns: self.ns, kind };
        Ok(FileKind::Generated(super::file::GeneratedFile::new(move || node.contents())))
    }
}

impl ProcNode {
    /// The files Linux lets a process write: /proc/pid/comm (a thread of
    /// the writer's own process: at most 15 bytes, kept as written) and
    /// /proc/pid/oom_score_adj (-1000..=1000; lowering it takes
    /// CAP_SYS_RESOURCE).
    fn open_for_write(&self, k: &Arc<Kernel>) -> Result<FileKind, Errno> {
        let Kind::PidFile { tgid, tid, name } = self.kind.clone() else { return Err(Errno::EACCES) };
        let group = k.pids().groups.get(&tgid).cloned().ok_or(Errno::ESRCH)?;
        let task = k.pids().tasks.get(&tid).cloned();
        let node = ProcNode { kernel: self.kernel.clone(), ns: self.ns, kind: self.kind.clone() };
        let generate = move || node.contents();
        match name {
            "comm" => Ok(FileKind::Generated(super::file::GeneratedFile::writable(generate, move |data| {
                let writer = crate::process::current().ok_or(Errno::EINVAL)?;
                let task = task.as_ref().ok_or(Errno::ESRCH)?;
                if writer.group.pid != tgid {
                    return Err(Errno::EINVAL);
                }
                let n = data.len().min(15);
                let name = &data[..data[..n].iter().position(|b| *b == 0).unwrap_or(n)];
                task.view().comm = name.to_vec();
                Ok(data.len())
            }))),
            "oom_score_adj" => Ok(FileKind::Generated(super::file::GeneratedFile::writable(generate, move |data| {
                let text = std::str::from_utf8(&data[..data.len().min(12)]).map_err(|_| Errno::EINVAL)?.trim();
                let v: i32 = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                    Some(hex) => i32::from_str_radix(hex, 16),
                    None => text.parse(),
                }
                .map_err(|_| Errno::EINVAL)?;
                if !(-1000..=1000).contains(&v) {
                    return Err(Errno::EINVAL);
                }
                let writer = crate::process::current().ok_or(Errno::EINVAL)?;
                let caps = writer.view().caps.effective;
                let resource = 1u64 << syscalls::flags::cap::CAP_SYS_RESOURCE;
                let cur = group.oom_score_adj.load(std::sync::atomic::Ordering::Relaxed);
                if v < cur && caps & resource == 0 {
                    return Err(Errno::EACCES);
                }
                group.oom_score_adj.store(v, std::sync::atomic::Ordering::Relaxed);
                Ok(data.len())
            }))),
            _ => Err(Errno::EACCES),
        }
    }

    /// A file's contents now.
    fn contents(&self) -> Vec<u8> {
        let Some(k) = self.kernel() else { return Vec::new() };
        match &self.kind {
            Kind::File(name) => global_file(&k, self.ns, name),
            Kind::SysFile(path) => sys_file(&k, path),
            Kind::PidFile { tgid, tid, name } => {
                let Some(group) = k.pids().groups.get(tgid).cloned() else { return Vec::new() };
                let task = self.task(*tgid, *tid);
                pid_file(&k, self.ns, &group, task.as_ref(), name)
            }
            Kind::FdInfo { tid, fd } => {
                let Some(t) = k.pids().tasks.get(tid).cloned() else { return Vec::new() };
                let Some(f) = t.view().fds.as_ref().and_then(|fds| fds.get(*fd).ok()) else { return Vec::new() };
                let pos = *f.pos.lock().unwrap_or_else(|e| e.into_inner());
                let ino = f.stat().map(|s| s.st_ino).unwrap_or(0);
                let cloexec = t.view().fds.as_ref().is_some_and(|fds| fds.cloexec(*fd).unwrap_or(false));
                let flags = f.flags() | if cloexec { syscalls::flags::OpenFlags::O_CLOEXEC.bits() } else { 0 };
                format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{}\nino:\t{ino}\n", 20).into_bytes()
            }
            _ => Vec::new(),
        }
    }
}

fn global_file(k: &Kernel, ns: PidNs, name: &str) -> Vec<u8> {
    let mut s = String::new();
    let up = k.boot_time.elapsed();
    match name {
        "uptime" => {
            let idle = up.as_secs_f64() * k.ncpus as f64;
            let _ = writeln!(s, "{:.2} {:.2}", up.as_secs_f64(), idle);
        }
        "loadavg" => {
            // The namespace's threads, and the last id it handed out.
            let ids: Vec<i32> = k.pids().tasks.values().map(|t| t.tid_in(ns)).filter(|t| *t > 0).collect();
            let last = ids.iter().max().copied().unwrap_or(1);
            let _ = writeln!(s, "0.00 0.00 0.00 1/{} {}", ids.len(), last);
        }
        "version" => {
            let rel = String::from_utf8_lossy(crate::syscalls::process::RELEASE);
            let _ = writeln!(s, "Linux version {rel} (cordon@cordon) (gcc) #1 SMP Cordon");
        }
        "filesystems" => s.push_str("nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevpts\nnodev\tmqueue\n\text4\n"),
        "meminfo" => {
            let si = crate::host::sysinfo();
            let unit = u64::from(si.mem_unit.max(1));
            let kb = |v: u64| v * unit / 1024;
            let total = kb(si.totalram);
            let free = kb(si.freeram);
            let _ = write!(
                s,
                "MemTotal:       {total:8} kB\nMemFree:        {free:8} kB\nMemAvailable:   {free:8} kB\nBuffers:               0 kB\nCached:                0 kB\nSwapCached:            0 kB\nActive:                0 kB\nInactive:              0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\nDirty:                 0 kB\nShmem:          {:8} kB\nMmapped:               0 kB\n",
                kb(si.sharedram)
            );
        }
        "stat" => {
            let pids = k.pids();
            let ticks = up.as_secs() * HZ;
            let _ = writeln!(s, "cpu  0 0 0 {} 0 0 0 0 0 0", ticks * k.ncpus as u64);
            for c in 0..k.ncpus {
                let _ = writeln!(s, "cpu{c} 0 0 0 {ticks} 0 0 0 0 0 0");
            }
            let _ = write!(
                s,
                "intr 0\nctxt 0\nbtime {}\nprocesses {}\nprocs_running 1\nprocs_blocked 0\nsoftirq 0\n",
                boot_time().0 - up.as_secs() as i64,
                pids.tasks.len()
            );
        }
        "cpuinfo" => s = cpuinfo(k.ncpus),
        _ => {}
    }
    s.into_bytes()
}

fn cpuinfo(ncpus: usize) -> String {
    use std::arch::x86_64::__cpuid;
    // CPUID is always available on x86-64.
    let v = __cpuid(0);
    let mut vendor = Vec::new();
    for r in [v.ebx, v.edx, v.ecx] {
        vendor.extend_from_slice(&r.to_le_bytes());
    }
    let l1 = __cpuid(1);
    let family = ((l1.eax >> 8) & 0xf) + ((l1.eax >> 20) & 0xff);
    let model = ((l1.eax >> 4) & 0xf) | (((l1.eax >> 16) & 0xf) << 4);
    let stepping = l1.eax & 0xf;
    let mut brand = Vec::new();
    for leaf in 0x8000_0002u32..=0x8000_0004 {
        let r = __cpuid(leaf);
        for x in [r.eax, r.ebx, r.ecx, r.edx] {
            brand.extend_from_slice(&x.to_le_bytes());
        }
    }
    let brand = String::from_utf8_lossy(&brand).trim_matches(char::from(0)).trim().to_string();
    let mut flags = Vec::new();
    let bits: &[(u32, u32, &str)] = &[
        (3, 0, "fpu"),
        (3, 4, "tsc"),
        (3, 15, "cmov"),
        (3, 23, "mmx"),
        (3, 25, "sse"),
        (3, 26, "sse2"),
        (2, 0, "pni"),
        (2, 9, "ssse3"),
        (2, 12, "fma"),
        (2, 19, "sse4_1"),
        (2, 20, "sse4_2"),
        (2, 23, "popcnt"),
        (2, 25, "aes"),
        (2, 26, "xsave"),
        (2, 28, "avx"),
        (2, 30, "rdrand"),
    ];
    for (reg, bit, name) in bits {
        let r = if *reg == 3 { l1.edx } else { l1.ecx };
        if r & (1 << bit) != 0 {
            flags.push(*name);
        }
    }
    let l7 = std::arch::x86_64::__cpuid_count(7, 0);
    for (bit, name) in [(3, "bmi1"), (5, "avx2"), (8, "bmi2"), (16, "avx512f"), (18, "rdseed"), (29, "sha_ni")] {
        if l7.ebx & (1 << bit) != 0 {
            flags.push(name);
        }
    }
    // Base frequency: CPUID leaf 0x16 when the CPU has it, else the "@ x.xxGHz"
    // of the brand string.
    let mhz = if v.eax >= 0x16 { std::arch::x86_64::__cpuid(0x16).eax } else { 0 };
    let mhz = if mhz != 0 {
        f64::from(mhz)
    } else {
        brand
            .rsplit_once('@')
            .and_then(|(_, f)| f.trim().strip_suffix("GHz"))
            .and_then(|f| f.trim().parse::<f64>().ok())
            .map_or(1000.0, |g| g * 1000.0)
    };
    let mut s = String::new();
    for cpu in 0..ncpus {
        let _ = write!(
            s,
            "processor\t: {cpu}\nvendor_id\t: {}\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: {brand}\nstepping\t: {stepping}\ncpu MHz\t\t: {mhz:.3}\nphysical id\t: 0\nsiblings\t: {ncpus}\ncore id\t\t: {cpu}\ncpu cores\t: {ncpus}\napicid\t\t: {cpu}\nfpu\t\t: yes\ncpuid level\t: {}\nflags\t\t: {}\nclflush size\t: 64\nbogomips\t: {:.2}\ncache_alignment\t: 64\naddress sizes\t: 46 bits physical, 48 bits virtual\n\n",
            String::from_utf8_lossy(&vendor),
            v.eax,
            flags.join(" "),
            mhz * 2.0
        );
    }
    s
}

fn sys_file(k: &Kernel, path: &str) -> Vec<u8> {
    let v = match path {
        "fs/file-max" => "9223372036854775807".to_string(),
        "fs/nr_open" => "1048576".to_string(),
        "fs/pipe-max-size" => crate::pipe::PIPE_MAX_SIZE.to_string(),
        "kernel/cap_last_cap" => "40".to_string(),
        "kernel/hostname" => String::from_utf8_lossy(&k.hostname).into_owned(),
        "kernel/ngroups_max" => "65536".to_string(),
        "kernel/osrelease" => String::from_utf8_lossy(crate::syscalls::process::RELEASE).into_owned(),
        "kernel/ostype" => "Linux".to_string(),
        "kernel/pid_max" => crate::kernel::PID_MAX.to_string(),
        "kernel/threads-max" => k.max_tasks().to_string(),
        "kernel/random/boot_id" => {
            static ID: OnceLock<String> = OnceLock::new();
            ID.get_or_init(uuid).clone()
        }
        "kernel/random/uuid" => uuid(),
        "net/core/somaxconn" => "4096".to_string(),
        "vm/max_map_count" => "65530".to_string(),
        "vm/mmap_min_addr" => "65536".to_string(),
        "vm/overcommit_memory" => "0".to_string(),
        _ => String::new(),
    };
    format!("{v}\n").into_bytes()
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    let _ = crate::host::getrandom(&mut b, 0);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", h[..4].concat(), h[4..6].concat(), h[6..8].concat(), h[8..10].concat(), h[10..].concat())
}

/// Reads `[start, end)` of a process's memory (argv, environ).
fn read_range(v: &ProcView, (start, end): (u64, u64)) -> Vec<u8> {
    let Some(mm) = &v.mm else { return Vec::new() };
    let len = end.saturating_sub(start).min(1 << 20) as usize;
    let mut buf = vec![0u8; len];
    match mm.lock().copy_in(start, &mut buf) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

fn cpu_ticks(d: std::time::Duration) -> u64 {
    d.as_millis() as u64 / (1000 / HZ)
}

/// The mount table of the viewed task's container (empty once it exited).
fn mount_table(v: &crate::process::ProcView) -> Vec<crate::kernel::MountInfo> {
    let Some(fs) = &v.fs else { return Vec::new() };
    let table = fs.lock().unwrap_or_else(|e| e.into_inner()).mounts.clone();
    let rows = table.lock().unwrap_or_else(|e| e.into_inner()).clone();
    rows
}

fn pid_file(k: &Kernel, ns: PidNs, group: &Arc<ThreadGroup>, task: Option<&Arc<TaskShared>>, name: &str) -> Vec<u8> {
    let view = task.map(|t| t.view());
    let empty = ProcView::default();
    let v = view.as_deref().unwrap_or(&empty);
    // Ids as the namespace shows them, read before the state is locked
    // (the table's lock comes first).
    let (pgid, sid) = {
        let st = group.state();
        (st.pgid, st.sid)
    };
    let (own_pgid, own_sid) = (k.pid_in(group.pidns, pgid), k.pid_in(group.pidns, sid));
    let (pgid, sid) = (k.pid_in(ns, pgid), k.pid_in(ns, sid));
    let pid = group.pid_in(ns);
    // NStgid and NSpid: its ids from this namespace down to its own.
    let nested = |own: i32, here: i32| {
        if ns.is_root() && !group.pidns.is_root() {
            format!("{here}\t{own}")
        } else {
            here.to_string()
        }
    };
    let ns_tgid = nested(group.vpid, pid);
    let (ns_pgid, ns_sid) = (nested(own_pgid, pgid), nested(own_sid, sid));
    let st = group.state();
    let zombie = st.exit.is_some();
    let (tid, ns_tid) = match task {
        Some(t) => (t.tid_in(ns), nested(t.tid_in(group.pidns), t.tid_in(ns))),
        None => (pid, ns_tgid.clone()),
    };
    let state_tid = task.map_or(group.pid, |t| t.tid());
    let comm = String::from_utf8_lossy(&v.comm).into_owned();
    let state = if zombie {
        ('Z', "zombie")
    } else if st.stopped.is_some() {
        ('T', "stopped")
    } else if crate::process::current().is_some_and(|c| c.tid() == state_tid) {
        ('R', "running")
    } else {
        ('S', "sleeping")
    };
    let ppid = st.parent.as_ref().map_or(0, |p| p.pid_in(ns));
    let threads = st.threads.len().max(1);
    let cpu = if zombie { st.cpu_time } else { v.cpu_clock.and_then(crate::timer::cpu_now).unwrap_or_default() };
    let (vsize, rss, ranges, brk) = v.mm.as_ref().map_or((0, 0, ((0, 0), (0, 0)), (0, 0)), |mm| {
        let m = mm.lock();
        let size: u64 = m.areas().iter().map(|(s, e, ..)| e - s).sum();
        (size, m.resident(), (m.arg_range, m.env_range), (m.brk_start, m.brk))
    });
    let mut s = String::new();
    match name {
        "cmdline" => return read_range(v, ranges.0),
        "environ" => return read_range(v, ranges.1),
        "comm" => {
            let _ = writeln!(s, "{comm}");
        }
        "stat" => {
            let started = v.started.map_or(0, |t| cpu_ticks(t.saturating_duration_since(k.boot_time)));
            let exit_code = st.exit.map_or(0, |e| e.wait_status());
            let _ = writeln!(
                s,
                "{tid} ({comm}) {} {ppid} {} {} 0 -1 4194304 0 0 0 0 {} 0 {} 0 20 0 {threads} 0 {started} {vsize} {} 18446744073709551615 0 0 0 0 0 0 {} 0 0 0 0 0 {} 0 0 0 0 0 0 0 0 {} {} {} {} {} {} {exit_code}",
                state.0,
                pgid,
                sid,
                cpu_ticks(cpu),
                cpu_ticks(st.children_time),
                rss / 4096,
                v.sigmask,
                st.exit_signal,
                brk.0,
                brk.1,
                ranges.0 .0,
                ranges.0 .1,
                ranges.1 .0,
                ranges.1 .1,
            );
        }
        "statm" => {
            let _ = writeln!(s, "{} {} 0 0 0 {} 0", vsize / 4096, rss / 4096, vsize / 4096);
        }
        "status" => {
            let ids = v.ids;
            let groups: Vec<String> = v.groups.iter().map(u32::to_string).collect();
            let fdsize = v.fds.as_ref().map_or(0, |f| f.max_fds());
            let pending = task.map_or(0, |t| t.pending().bits);
            let shared = group.pending().bits;
            let actions = group.actions();
            let (mut ign, mut cgt) = (0u64, 0u64);
            for (i, a) in actions.iter().enumerate() {
                if a.handler == syscalls::flags::sa::SIG_IGN {
                    ign |= 1 << i;
                } else if a.handler != syscalls::flags::sa::SIG_DFL {
                    cgt |= 1 << i;
                }
            }
            let _ = write!(
                s,
                "Name:\t{comm}\nUmask:\t{:04o}\nState:\t{} ({})\nTgid:\t{}\nNgid:\t0\nPid:\t{tid}\nPPid:\t{ppid}\nTracerPid:\t0\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t{fdsize}\nGroups:\t{}\nNStgid:\t{ns_tgid}\nNSpid:\t{ns_tid}\nNSpgid:\t{ns_pgid}\nNSsid:\t{ns_sid}\nVmPeak:\t{:8} kB\nVmSize:\t{:8} kB\nVmRSS:\t{:8} kB\nThreads:\t{threads}\nSigQ:\t0/{}\nSigPnd:\t{pending:016x}\nShdPnd:\t{shared:016x}\nSigBlk:\t{:016x}\nSigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\nCapInh:\t{:016x}\nCapPrm:\t{:016x}\nCapEff:\t{:016x}\nCapBnd:\t{:016x}\nCapAmb:\t{:016x}\nNoNewPrivs:\t{}\nSeccomp:\t0\nCpus_allowed:\t{:x}\nCpus_allowed_list:\t0-{}\nvoluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
                v.umask,
                state.0,
                state.1,
                pid,
                ids[0],
                ids[1],
                ids[2],
                ids[1],
                ids[3],
                ids[4],
                ids[5],
                ids[4],
                groups.join(" "),
                vsize / 1024,
                vsize / 1024,
                rss / 1024,
                k.max_tasks(),
                v.sigmask,
                v.caps.inheritable,
                v.caps.permitted,
                v.caps.effective,
                v.caps.bounding,
                v.caps.ambient,
                u8::from(v.no_new_privs),
                (1u64 << k.ncpus.min(63)) - 1,
                k.ncpus.saturating_sub(1),
            );
        }
        "maps" => {
            let root = v.fs.as_ref().map(|fs| fs.lock().unwrap_or_else(|e| e.into_inner()).root.clone());
            if let Some(mm) = &v.mm {
                let areas = mm.lock().areas();
                for (start, end, prot, shared, kind, label) in areas {
                    use syscalls::flags::Prot;
                    let p = |f: Prot, c: char| if prot.contains(f) { c } else { '-' };
                    let (off, dev, ino, name) = match (&label, kind) {
                        (Some(l), _) => {
                            let a = l.file.attr();
                            let path = match &root {
                                Some(r) => l.file.path_from(r),
                                None => l.file.name(),
                            };
                            (l.offset, a.dev, a.ino, String::from_utf8_lossy(&path).into_owned())
                        }
                        (None, crate::mm::VmaKind::Brk) => (0, 0, 0, "[heap]".to_string()),
                        (None, crate::mm::VmaKind::Stack) => (0, 0, 0, "[stack]".to_string()),
                        _ => (0, 0, 0, String::new()),
                    };
                    let head = format!(
                        "{start:08x}-{end:08x} {}{}{}{} {off:08x} {:02x}:{:02x} {ino}",
                        p(Prot::READ, 'r'),
                        p(Prot::WRITE, 'w'),
                        p(Prot::EXEC, 'x'),
                        if shared { 's' } else { 'p' },
                        libc::major(dev),
                        libc::minor(dev),
                    );
                    if name.is_empty() {
                        let _ = writeln!(s, "{head} ");
                    } else {
                        // Linux pads the path to column 74.
                        let _ = writeln!(s, "{head:<72} {name}");
                    }
                }
                // The host kernel's vsyscall page is in every stub process.
                let head = "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0";
                let _ = writeln!(s, "{head:<72} [vsyscall]");
            }
        }
        "mounts" => {
            for m in mount_table(v).iter() {
                let _ = writeln!(s, "{} {} {} {} 0 0", m.source, m.path, m.fstype, m.options);
            }
        }
        "mountinfo" => {
            for m in mount_table(v).iter() {
                let (mount_opts, super_opts) = split_options(&m.options);
                let _ = writeln!(
                    s,
                    "{} {} {}:{} / {} {} - {} {} {}",
                    m.id,
                    m.parent,
                    libc::major(m.dev),
                    libc::minor(m.dev),
                    m.path,
                    mount_opts,
                    m.fstype,
                    m.source,
                    super_opts
                );
            }
        }
        "auxv" => return v.auxv.clone(),
        "cgroup" => s.push_str("0::/\n"),
        "oom_score_adj" => {
            let _ = writeln!(s, "{}", group.oom_score_adj.load(std::sync::atomic::Ordering::Relaxed));
        }
        "io" => {
            let io = group.io.each_ref().map(|c| c.load(std::sync::atomic::Ordering::Relaxed));
            // No block device: nothing reaches storage from the sandbox
            // itself (the gofer's host I/O is the host's business).
            let _ = write!(
                s,
                "rchar: {}\nwchar: {}\nsyscr: {}\nsyscw: {}\nread_bytes: 0\nwrite_bytes: 0\ncancelled_write_bytes: 0\n",
                io[0], io[1], io[2], io[3]
            );
        }
        "smaps_rollup" => {
            if let Some(mm) = &v.mm {
                let m = mm.lock();
                let areas = m.areas();
                let (lo, hi) = (areas.first().map_or(0, |a| a.0), areas.last().map_or(0, |a| a.1));
                let head = format!("{lo:08x}-{hi:08x} ---p 00000000 00:00 0");
                let _ = writeln!(s, "{head:<72} [rollup]");
                // Every installed page is the process's own (the memory
                // file's pages are not shared between processes but by
                // copy-on-write, which is not tracked per page here).
                let kb = m.resident() / 1024;
                let rows = [
                    ("Rss", kb),
                    ("Pss", kb),
                    ("Pss_Dirty", kb),
                    ("Pss_Anon", kb),
                    ("Pss_File", 0),
                    ("Pss_Shmem", 0),
                    ("Shared_Clean", 0),
                    ("Shared_Dirty", 0),
                    ("Private_Clean", 0),
                    ("Private_Dirty", kb),
                    ("Referenced", kb),
                    ("Anonymous", kb),
                    ("KSM", 0),
                    ("LazyFree", 0),
                    ("AnonHugePages", 0),
                    ("ShmemPmdMapped", 0),
                    ("FilePmdMapped", 0),
                    ("Shared_Hugetlb", 0),
                    ("Private_Hugetlb", 0),
                    ("Swap", 0),
                    ("SwapPss", 0),
                    ("Locked", 0),
                ];
                for (name, v) in rows {
                    let _ = writeln!(s, "{:<16}{v:>8} kB", format!("{name}:"));
                }
            }
        }
        "limits" => {
            s.push_str("Limit                     Soft Limit           Hard Limit           Units     \n");
            let names = [
                ("Max cpu time", "seconds"),
                ("Max file size", "bytes"),
                ("Max data size", "bytes"),
                ("Max stack size", "bytes"),
                ("Max core file size", "bytes"),
                ("Max resident set", "bytes"),
                ("Max processes", "processes"),
                ("Max open files", "files"),
                ("Max locked memory", "bytes"),
                ("Max address space", "bytes"),
                ("Max file locks", "locks"),
                ("Max pending signals", "signals"),
                ("Max msgqueue size", "bytes"),
                ("Max nice priority", ""),
                ("Max realtime priority", ""),
                ("Max realtime timeout", "us"),
            ];
            let show = |v: u64| {
                if v == syscalls::flags::rlimit::RLIM_INFINITY {
                    "unlimited".to_string()
                } else {
                    v.to_string()
                }
            };
            for ((name, unit), r) in names.iter().zip(v.rlimits.iter()) {
                let _ = writeln!(s, "{name:<26}{:<21}{:<21}{unit:<10}", show(r.rlim_cur), show(r.rlim_max));
            }
        }
        _ => {}
    }
    s.into_bytes()
}

/// Splits a mount's options as /proc/mounts shows them into mountinfo's
/// two fields: the mount's own (ro/rw and the per-mount flags) and the
/// superblock's (ro/rw and the file system's options, like size=).
fn split_options(options: &str) -> (String, String) {
    const MOUNT_FLAGS: [&str; 8] =
        ["nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime", "strictatime", "nosymfollow"];
    let mode = if options.split(',').any(|o| o == "ro") { "ro" } else { "rw" };
    let (mut own, mut sb) = (vec![mode], vec![mode]);
    for o in options.split(',').filter(|o| !matches!(*o, "" | "ro" | "rw" | "bind")) {
        if MOUNT_FLAGS.contains(&o) {
            own.push(o);
        } else {
            sb.push(o);
        }
    }
    (own.join(","), sb.join(","))
}
