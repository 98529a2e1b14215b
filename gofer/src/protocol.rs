//! The gofer wire protocol (DESIGN.md §5), shared by the gofer and the
//! sentry's client.
//!
//! One message per datagram on a `SOCK_SEQPACKET` socketpair, encoded with
//! bincode. Host fds travel beside a message with `SCM_RIGHTS`. Every
//! operation is relative to a handle: a 64-bit id for a file the gofer holds
//! open (`O_PATH`), never reused. Names are single path components: the gofer
//! rejects `/`, `.`, `..` and empty names; the sentry resolves paths.
use serde::{Deserialize, Serialize};

/// A file the gofer holds open on the sentry's behalf.
pub type Handle = u64;

/// File attributes as the gofer sees them on the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attr {
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime: (i64, u32),
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub ino: u64,
    pub dev: u64,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dirent {
    pub name: Vec<u8>,
    pub ino: u64,
    /// `d_type` (DT_REG, DT_DIR, ...).
    pub kind: u8,
}

/// File system statistics for `statfs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsStat {
    pub fs_type: i64,
    pub bsize: i64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: i64,
    pub frsize: i64,
    pub flags: i64,
}

/// A request from the sentry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The root of the mount this channel serves.
    Mount,
    /// Walk `names` one by one from directory `dir`. Stops early at a missing
    /// name or after a symlink (which is not followed).
    Walk { dir: Handle, names: Vec<Vec<u8>> },
    /// The attributes of a handle.
    Stat { handle: Handle },
    /// Open the file behind a handle with these `open(2)` flags (no
    /// O_CREAT); the host fd is donated with the reply.
    Open { handle: Handle, flags: u32 },
    /// Directory entries of `dir` from position `offset` (an index), at
    /// most `count` of them.
    Getdents { dir: Handle, offset: u64, count: u32 },
    /// The target of a symlink.
    Readlink { handle: Handle },
    /// File system statistics of the mount.
    Statfs { handle: Handle },
    /// Forget a handle.
    Close { handle: Handle },
}

/// What one step of a walk found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkStep {
    pub handle: Handle,
    pub attr: Attr,
}

/// The gofer's reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A host errno.
    Error(i32),
    /// `Mount`: the root handle.
    Mounted { root: Handle, attr: Attr },
    /// `Walk`: one step per name walked, in order. Shorter than the
    /// request when a name was missing (then `missing` is set) or a symlink
    /// ended the walk (the last step's attr is a symlink).
    Walked { steps: Vec<WalkStep>, missing: bool },
    /// `Stat`.
    Attr(Attr),
    /// `Open`: the fd comes with the message.
    Opened,
    /// `Getdents`: entries; empty at the end.
    Dirents(Vec<Dirent>),
    /// `Readlink`.
    Link(Vec<u8>),
    /// `Statfs`.
    FsStat(FsStat),
    /// `Close` and other calls with nothing to say.
    Ok,
}

/// Largest datagram either side sends; replies bigger than this are split by
/// the caller (Getdents `count`).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// Largest number of names in one walk.
pub const MAX_WALK: usize = 256;

/// Whether `name` is one path component the gofer may look up.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name(b"a"));
        assert!(valid_name(b"..."));
        assert!(!valid_name(b""));
        assert!(!valid_name(b"."));
        assert!(!valid_name(b".."));
        assert!(!valid_name(b"a/b"));
        assert!(!valid_name(b"a\0"));
    }
}
