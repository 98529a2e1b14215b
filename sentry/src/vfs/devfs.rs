//! `/dev`: the device files every container gets (null, zero, full, random,
//! urandom), the standard symlinks, and empty `pts` and `shm` directories.
use std::sync::Arc;

use gofer::Attr;
use syscalls::flags::mode::{S_IFCHR, S_IFDIR, S_IFLNK};
use syscalls::Errno;

use super::{FileKind, SynthNode};

/// Device number of the devfs mount.
const DEVFS_DEV: u64 = 0x5;

/// The character devices the sentry implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Null,
    Zero,
    Full,
    Random,
}

impl Device {
    /// Reads from the device into `buf`.
    pub fn read(self, buf: &mut [u8]) -> Result<usize, Errno> {
        match self {
            Device::Null => Ok(0),
            Device::Zero | Device::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            Device::Random => crate::host::getrandom(buf, 0),
        }
    }

    /// Writes `data` to the device.
    pub fn write(self, data: &[u8]) -> Result<usize, Errno> {
        match self {
            Device::Full => Err(Errno::ENOSPC),
            _ => Ok(data.len()),
        }
    }
}

fn makedev(major: u64, minor: u64) -> u64 {
    (major << 8) | minor
}

/// When the devfs was made: the times of all its files.
static CREATED: std::sync::OnceLock<(i64, u32)> = std::sync::OnceLock::new();

fn attr(mode: u32, ino: u64, rdev: u64) -> Attr {
    let t = *CREATED.get_or_init(|| {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (d.as_secs() as i64, d.subsec_nanos())
    });
    Attr {
        mode,
        nlink: 1,
        ino,
        dev: DEVFS_DEV,
        rdev,
        blksize: 4096,
        atime: t,
        mtime: t,
        ctime: t,
        // devfs stands for the tmpfs runc mounts on /dev at start.
        btime: Some(t),
        ..Default::default()
    }
}

struct DevFile {
    ino: u64,
    rdev: u64,
    device: Device,
}

impl SynthNode for DevFile {
    fn attr(&self) -> Attr {
        attr(S_IFCHR | 0o666, self.ino, self.rdev)
    }

    fn open(&self, _flags: u32) -> Result<FileKind, Errno> {
        Ok(FileKind::Device(self.device))
    }
}

struct DevLink {
    ino: u64,
    target: &'static [u8],
}

impl SynthNode for DevLink {
    fn attr(&self) -> Attr {
        let mut a = attr(S_IFLNK | 0o777, self.ino, 0);
        a.size = self.target.len() as u64;
        a
    }

    fn readlink(&self) -> Option<Vec<u8>> {
        Some(self.target.to_vec())
    }
}

struct DevDir {
    ino: u64,
    mode: u32,
    children: Vec<(&'static [u8], Arc<dyn SynthNode>)>,
}

impl SynthNode for DevDir {
    fn attr(&self) -> Attr {
        let mut a = attr(S_IFDIR | self.mode, self.ino, 0);
        a.nlink = 2;
        a
    }

    fn lookup(&self, name: &[u8]) -> Option<Arc<dyn SynthNode>> {
        self.children.iter().find(|(n, _)| *n == name).map(|(_, c)| c.clone())
    }

    fn entries(&self) -> Vec<(Vec<u8>, Attr)> {
        self.children.iter().map(|(n, c)| (n.to_vec(), c.attr())).collect()
    }
}

/// /dev/ptmx (and /dev/pts/ptmx): each open makes a new terminal.
struct Ptmx {
    ino: u64,
    mode: u32,
    events: Arc<crate::kernel::EventQueue>,
}

impl SynthNode for Ptmx {
    fn attr(&self) -> Attr {
        attr(S_IFCHR | self.mode, self.ino, makedev(5, 2))
    }

    fn open(&self, _flags: u32) -> Result<FileKind, Errno> {
        let cur = crate::process::current().ok_or(Errno::ENXIO)?;
        let owner = {
            let v = cur.view();
            (v.ids[1], v.ids[4])
        };
        Ok(FileKind::Tty(crate::tty::Terminal::open_master(self.events.clone(), owner)?))
    }
}

/// /dev/tty: the caller's controlling terminal (ENXIO without one).
struct ControllingTty;

impl SynthNode for ControllingTty {
    fn attr(&self) -> Attr {
        attr(S_IFCHR | 0o666, 14, makedev(5, 0))
    }

    fn open(&self, flags: u32) -> Result<FileKind, Errno> {
        let cur = crate::process::current().ok_or(Errno::ENXIO)?;
        let sid = cur.group.state().sid;
        let term = crate::tty::of_session(sid).ok_or(Errno::ENXIO)?;
        let noctty = flags & syscalls::flags::OpenFlags::O_NOCTTY.bits() != 0;
        Ok(FileKind::Tty(term.open_slave(noctty)?))
    }
}

/// The /dev/pts node of a terminal's slave: owned by the opener of
/// /dev/ptmx, mode 620, group tty (5) as runc's devpts mount options say.
pub fn pts_attr(term: &crate::tty::Terminal) -> Attr {
    let mut a = attr(S_IFCHR | 0o620, 0x1000 + u64::from(term.index), term.rdev());
    a.uid = term.owner.0;
    a.gid = 5;
    a
}

struct PtsNode(Arc<crate::tty::Terminal>);

impl SynthNode for PtsNode {
    fn attr(&self) -> Attr {
        pts_attr(&self.0)
    }

    fn open(&self, flags: u32) -> Result<FileKind, Errno> {
        let noctty = flags & syscalls::flags::OpenFlags::O_NOCTTY.bits() != 0;
        Ok(FileKind::Tty(self.0.open_slave(noctty)?))
    }
}

/// /dev/pts: `ptmx` and one node per live terminal.
struct PtsDir {
    ptmx: Arc<dyn SynthNode>,
}

impl SynthNode for PtsDir {
    fn attr(&self) -> Attr {
        let mut a = attr(S_IFDIR | 0o755, 11, 0);
        a.nlink = 2;
        a
    }

    fn lookup(&self, name: &[u8]) -> Option<Arc<dyn SynthNode>> {
        if name == b"ptmx" {
            return Some(self.ptmx.clone());
        }
        let index: u32 = std::str::from_utf8(name).ok()?.parse().ok()?;
        if name.len() > 1 && name[0] == b'0' {
            return None;
        }
        let term = crate::tty::lookup(index)?;
        Some(Arc::new(PtsNode(term)))
    }

    fn entries(&self) -> Vec<(Vec<u8>, Attr)> {
        let mut v = vec![(b"ptmx".to_vec(), self.ptmx.attr())];
        for i in crate::tty::indexes() {
            if let Some(t) = crate::tty::lookup(i) {
                v.push((i.to_string().into_bytes(), pts_attr(&t)));
            }
        }
        v
    }

    // Terminals come and go: never cache lookups.
    fn cacheable(&self) -> bool {
        false
    }
}

/// The root of a new devfs; terminals made through it wake `events`.
pub fn new_devfs(events: Arc<crate::kernel::EventQueue>) -> Arc<dyn SynthNode> {
    let dev = |ino, major, minor, device| -> Arc<dyn SynthNode> {
        Arc::new(DevFile { ino, rdev: makedev(major, minor), device })
    };
    let link = |ino, target| -> Arc<dyn SynthNode> { Arc::new(DevLink { ino, target }) };
    let dir = |ino, mode| -> Arc<dyn SynthNode> { Arc::new(DevDir { ino, mode, children: Vec::new() }) };
    Arc::new(DevDir {
        ino: 1,
        mode: 0o755,
        children: vec![
            (&b"null"[..], dev(2, 1, 3, Device::Null)),
            (b"zero", dev(3, 1, 5, Device::Zero)),
            (b"full", dev(4, 1, 7, Device::Full)),
            (b"random", dev(5, 1, 8, Device::Random)),
            (b"urandom", dev(6, 1, 9, Device::Random)),
            (b"fd", link(7, b"/proc/self/fd")),
            (b"stdin", link(8, b"/proc/self/fd/0")),
            (b"stdout", link(9, b"/proc/self/fd/1")),
            (b"stderr", link(10, b"/proc/self/fd/2")),
            (b"pts", Arc::new(PtsDir { ptmx: Arc::new(Ptmx { ino: 15, mode: 0o666, events: events.clone() }) })),
            (b"ptmx", Arc::new(Ptmx { ino: 13, mode: 0o666, events })),
            (b"tty", Arc::new(ControllingTty)),
            (b"shm", dir(12, 0o1777)),
        ],
    })
}

/// A /dev/null node, which runc binds over masked files.
pub fn null_device() -> Arc<dyn SynthNode> {
    Arc::new(DevFile { ino: 2, rdev: makedev(1, 3), device: Device::Null })
}

/// An empty read-only directory, which runc mounts over masked
/// directories.
pub fn empty_dir() -> Arc<dyn SynthNode> {
    Arc::new(super::ReadOnlyNode(Arc::new(DevDir { ino: 1, mode: 0o755, children: Vec::new() })))
}
