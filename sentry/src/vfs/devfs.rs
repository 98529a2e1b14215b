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

/// The root of a new devfs.
pub fn new_devfs() -> Arc<dyn SynthNode> {
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
            (b"pts", dir(11, 0o755)),
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
