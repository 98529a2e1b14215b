//! Extended attributes. Only the `user.` namespace exists in the sandbox:
//! gofer files keep theirs on the host (read through the gofer, changed
//! through it on mounts that write through, copied up by the overlay),
//! tmpfs files in the inode. Other namespaces (security, trusted, system)
//! read as absent and cannot be set (`EOPNOTSUPP`, as a file system
//! without them).
use std::sync::Arc;

use syscalls::flags::access as A;
use syscalls::flags::mode::{S_IFDIR, S_IFMT, S_IFREG};
use syscalls::Errno;

use super::open::may_access;
use super::{Dentry, Node};
use crate::task::Credentials;

/// Largest value (XATTR_SIZE_MAX).
pub const MAX_VALUE: usize = 64 * 1024;
/// Most bytes of names and values one tmpfs inode may hold.
const TMPFS_BUDGET: usize = 128 * 1024;

pub const XATTR_CREATE: u32 = 1;
pub const XATTR_REPLACE: u32 = 2;

fn is_user(name: &[u8]) -> bool {
    name.starts_with(b"user.") && name.len() > 5
}

impl Dentry {
    /// The value of extended attribute `name`.
    pub fn get_xattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        if !is_user(name) {
            return Err(Errno::ENODATA);
        }
        match &self.node {
            Node::Gofer { handle, mount } => mount.client.get_xattr(*handle, name).map_err(Errno::from_raw),
            // mqueue has no extended attributes.
            Node::Tmpfs(i) if i.fs.mqueue => Err(Errno::EOPNOTSUPP),
            Node::Tmpfs(i) => {
                i.xattrs.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned().ok_or(Errno::ENODATA)
            }
            _ => Err(Errno::ENODATA),
        }
    }

    /// The attribute names, each NUL-terminated.
    pub fn list_xattr(&self) -> Result<Vec<u8>, Errno> {
        match &self.node {
            Node::Gofer { handle, mount } => mount.client.list_xattr(*handle).map_err(Errno::from_raw),
            Node::Tmpfs(i) => {
                let mut out = Vec::new();
                for n in i.xattrs.lock().unwrap_or_else(|e| e.into_inner()).keys() {
                    out.extend_from_slice(n);
                    out.push(0);
                }
                Ok(out)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Sets (`Some(value)`) or removes (`None`) attribute `name`.
    pub fn change_xattr(
        self: &Arc<Dentry>,
        name: &[u8],
        value: Option<&[u8]>,
        flags: u32,
        creds: &Credentials,
    ) -> Result<(), Errno> {
        if !is_user(name) {
            return Err(Errno::EOPNOTSUPP);
        }
        if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
            return Err(Errno::EINVAL);
        }
        if value.is_some_and(|v| v.len() > MAX_VALUE) {
            return Err(Errno::E2BIG);
        }
        let attr = self.attr();
        // user.* attributes live on regular files and directories only.
        if !matches!(attr.mode & S_IFMT, S_IFREG | S_IFDIR) {
            return Err(Errno::EPERM);
        }
        if self.readonly() {
            return Err(Errno::EROFS);
        }
        if !may_access(creds, &attr, A::W_OK, false) {
            return Err(Errno::EACCES);
        }
        if self.tmpfs().is_some_and(|i| i.fs.mqueue) {
            return Err(Errno::EOPNOTSUPP);
        }
        let d = match (&self.node, self.parent()) {
            // A lower file of the overlay changes its upper copy.
            (Node::Gofer { mount, .. }, Some(dir)) if mount.upper.is_some() && !self.is_dir() => dir.copy_up(self)?,
            _ => self.clone(),
        };
        d.store_xattr(name, value, flags)?;
        // The changed file (a copy-up took the lower file's watches along).
        d.notify(syscalls::flags::inotify::IN_ATTRIB);
        Ok(())
    }

    /// Sets or removes attribute `name` of this (writable) file.
    fn store_xattr(&self, name: &[u8], value: Option<&[u8]>, flags: u32) -> Result<(), Errno> {
        match &self.node {
            Node::Gofer { handle, mount } if mount.writes_through() => {
                let r = match value {
                    Some(v) => mount.client.set_xattr(*handle, name, v, flags),
                    None => mount.client.remove_xattr(*handle, name),
                };
                self.mark_stale();
                r.map_err(Errno::from_raw)
            }
            Node::Tmpfs(i) => {
                let mut map = i.xattrs.lock().unwrap_or_else(|e| e.into_inner());
                let exists = map.contains_key(name);
                let Some(v) = value else {
                    return map.remove(name).map(drop).ok_or(Errno::ENODATA);
                };
                if flags & XATTR_CREATE != 0 && exists {
                    return Err(Errno::EEXIST);
                }
                if flags & XATTR_REPLACE != 0 && !exists {
                    return Err(Errno::ENODATA);
                }
                let used: usize = map.iter().filter(|(k, _)| *k != name).map(|(k, v)| k.len() + v.len()).sum();
                if used + name.len() + v.len() > TMPFS_BUDGET {
                    return Err(Errno::ENOSPC);
                }
                map.insert(name.to_vec(), v.to_vec());
                i.attr().ctime = super::tmpfs::now();
                Ok(())
            }
            // Lower directories of the overlay keep the host's attributes.
            Node::Gofer { .. } => Err(Errno::EOPNOTSUPP),
            _ => Err(Errno::EPERM),
        }
    }
}
