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
    /// The birth time, where the file system keeps one.
    pub btime: Option<(i64, u32)>,
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
    /// Forget several handles (the sentry batches the handles of dentries
    /// it dropped); unknown ones are skipped.
    CloseMany { handles: Vec<Handle> },
    /// Create the regular file `name` in `dir` (exclusively) with
    /// permission bits `mode` (exact: the sentry applied the umask), owned
    /// by `owner`, and open it with `flags`; the fd comes with the reply.
    Create { dir: Handle, name: Vec<u8>, flags: u32, mode: u32, owner: Owner },
    /// An unnamed regular file in `dir` (`O_TMPFILE`), opened with
    /// `flags`; the fd comes with the reply.
    CreateUnnamed { dir: Handle, flags: u32, mode: u32, owner: Owner },
    /// Create the directory `name` in `dir`.
    Mkdir { dir: Handle, name: Vec<u8>, mode: u32, owner: Owner },
    /// Create a FIFO, socket or empty regular file `name` in `dir`
    /// (`mode` carries the type; device nodes are refused).
    Mknod { dir: Handle, name: Vec<u8>, mode: u32, owner: Owner },
    /// Create the symlink `name` in `dir` pointing at `target`.
    Symlink { dir: Handle, name: Vec<u8>, target: Vec<u8>, owner: Owner },
    /// Hard-link the file behind `target` as `name` in `dir`.
    Link { dir: Handle, name: Vec<u8>, target: Handle },
    /// Remove `name` from `dir`: a directory when `dir_only` (rmdir),
    /// anything else otherwise (unlink).
    Unlink { dir: Handle, name: Vec<u8>, dir_only: bool },
    /// `renameat2(old_dir, old_name, new_dir, new_name, flags)` with
    /// RENAME_NOREPLACE or RENAME_EXCHANGE.
    Rename { old_dir: Handle, old_name: Vec<u8>, new_dir: Handle, new_name: Vec<u8>, flags: u32 },
    /// Change the attributes set in `change`; replies with the new ones.
    SetStat { handle: Handle, change: SetAttr },
    /// Flush a file's data (and metadata unless `data_only`) to the host.
    Fsync { handle: Handle, data_only: bool },
    /// The value of the extended attribute `name` (a `user.` name).
    GetXattr { handle: Handle, name: Vec<u8> },
    /// Set an extended attribute (`flags`: XATTR_CREATE / XATTR_REPLACE).
    SetXattr { handle: Handle, name: Vec<u8>, value: Vec<u8>, flags: u32 },
    /// The `user.` extended attribute names of a file.
    ListXattr { handle: Handle },
    /// Remove an extended attribute.
    RemoveXattr { handle: Handle, name: Vec<u8> },
}

/// Who owns a new file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// The attributes a `SetStat` changes (`None`: left alone). Times are
/// absolute; the sentry resolves `UTIME_NOW`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAttr {
    /// Permission bits (07777).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<(i64, u32)>,
    pub mtime: Option<(i64, u32)>,
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
    /// `Open`, `CreateUnnamed`: the fd comes with the message.
    Opened,
    /// `Getdents`: entries; empty at the end.
    Dirents(Vec<Dirent>),
    /// `Readlink`.
    Link(Vec<u8>),
    /// `Statfs`.
    FsStat(FsStat),
    /// `Create` (with the fd), `Mkdir`, `Mknod`, `Symlink`, `Link`: the new
    /// name's handle and attributes.
    Created(WalkStep),
    /// `GetXattr`: the value; `ListXattr`: the names, each NUL-terminated.
    Xattr(Vec<u8>),
    /// `Close` and other calls with nothing to say.
    Ok,
}

/// Largest datagram either side sends; replies bigger than this are split by
/// the caller (Getdents `count`).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// Largest extended attribute value (Linux's XATTR_SIZE_MAX).
pub const MAX_XATTR: usize = 64 * 1024;

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
