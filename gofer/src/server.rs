//! The gofer's request loop: the only code that touches host files.
//!
//! Every host lookup is `openat(dirfd, one_name, O_PATH|O_NOFOLLOW)` from a
//! file the server already holds, starting at the mount's root; names are
//! single components other than `.` and `..`. A walk never follows a
//! symlink, so no handle can name a file outside the tree under the root
//! (short of a mount inside it).
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use libc::c_int;
use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat;

use crate::channel::Channel;
use crate::fd;
use crate::protocol::{
    valid_name, Attr, Dirent, FsStat, Handle, Owner, Request, Response, SetAttr, WalkStep, MAX_MESSAGE, MAX_WALK,
    MAX_XATTR,
};
use crate::Error;

/// Room kept in a `Dirents` reply for the enum tag and the vector length.
const DIRENTS_OVERHEAD: usize = 32;

/// Upper bound of one encoded `Dirent` besides its name: the name length
/// (varint, at most 9 bytes), `ino` (varint, at most 9) and `kind` (1).
const DIRENT_OVERHEAD: usize = 19;

/// The `open(2)` flags the sentry may ask for; others are dropped.
const OPEN_ALLOWED: c_int = libc::O_ACCMODE
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DIRECTORY
    | libc::O_NOATIME
    | libc::O_DIRECT
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_LARGEFILE
    | libc::O_PATH;

/// Where a non-directory was found: the directory holding it and its name
/// there, by which it is reopened (an `O_PATH` fd cannot be reopened
/// without /proc).
#[derive(Clone)]
struct Place {
    dir: Arc<OwnedFd>,
    /// `(st_dev, st_ino)` of `dir`.
    dir_id: (u64, u64),
    name: CString,
}

/// A file held for the sentry.
struct Node {
    /// `O_PATH|O_NOFOLLOW` fd of the file itself.
    fd: Arc<OwnedFd>,
    /// `(st_dev, st_ino)` of the file: a reopen by name must find this
    /// file, or fail with `ESTALE`.
    id: (u64, u64),
    /// Where a non-directory lives (kept up to date across renames made
    /// through this server); `None` for directories, which reopen through
    /// their own fd.
    place: Option<Place>,
    /// `st_mode & S_IFMT` when it was looked up.
    kind: u32,
    /// Directory listing of the scan in progress (Getdents).
    listing: Option<Vec<Dirent>>,
}

impl Node {
    fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }

    /// Opens the file for I/O with `flags` (which carry O_NOFOLLOW).
    ///
    /// A directory reopens through its own fd (`openat(fd, ".")`), which
    /// always names the same inode. Anything else reopens by name in its
    /// directory, without following a symlink, without blocking (a FIFO
    /// swapped in by a rename must not stall the gofer) and without
    /// truncating; the result must be the same file or the open fails with
    /// `ESTALE`.
    fn reopen(&self, flags: OFlag) -> nix::Result<OwnedFd> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let place = match &self.place {
            _ if self.is_dir() => return fd::openat(self.fd.as_fd(), c".", flags),
            Some(p) => p,
            // Replaced by a rename: the file has no name any more.
            None => return Err(Errno::ESTALE),
        };
        let f = fd::openat(place.dir.as_fd(), &place.name, (flags | OFlag::O_NONBLOCK) - OFlag::O_TRUNC)?;
        let st = stat::fstat(f.as_raw_fd())?;
        if (st.st_dev, st.st_ino) != self.id {
            return Err(Errno::ESTALE);
        }
        if !flags.contains(OFlag::O_NONBLOCK) {
            nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags & OPEN_STATUS))?;
        }
        if flags.contains(OFlag::O_TRUNC) {
            nix::unistd::ftruncate(&f, 0)?;
        }
        Ok(f)
    }

    /// An fd on which f*xattr and fsync work: the file opened read-only.
    fn data_fd(&self) -> Result<OwnedFd, i32> {
        let flags = if self.is_dir() { OFlag::O_RDONLY | OFlag::O_DIRECTORY } else { OFlag::O_RDONLY };
        self.reopen(flags).map_err(|e| e as i32)
    }
}

/// Status flags `fcntl(F_SETFL)` can set.
const OPEN_STATUS: OFlag = OFlag::O_APPEND.union(OFlag::O_NONBLOCK).union(OFlag::O_DIRECT).union(OFlag::O_NOATIME);

/// Serves one mount over one channel.
///
/// Requests are served one at a time, and every change is made relative to
/// a directory fd the server holds, by a single name, never following a
/// symlink (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `O_EXCL` creates,
/// `unlinkat`/`renameat2` act on the final name itself), so a rename (by
/// the guest or the host) can change which file a name means but never
/// make the server reach outside the tree.
pub struct Server {
    root: Arc<OwnedFd>,
    readonly: bool,
    nodes: HashMap<Handle, Node>,
    /// The next handle; handles start at 1 and are never reused.
    next: Handle,
    /// Handles of non-directories by place (directory id, name), to follow
    /// renames.
    by_place: HashMap<((u64, u64), CString), Vec<Handle>>,
    /// The ids files are created with when no change is asked.
    own: Owner,
}

impl Server {
    /// A server for the tree under `root`, an `O_PATH|O_DIRECTORY` fd of
    /// the mount's root as the gofer sees it. With `readonly`, every open
    /// for writing fails with `EROFS`.
    pub fn new(root: OwnedFd, readonly: bool) -> Self {
        let own = Owner { uid: nix::unistd::geteuid().as_raw(), gid: nix::unistd::getegid().as_raw() };
        Server { root: Arc::new(root), readonly, nodes: HashMap::new(), next: 1, by_place: HashMap::new(), own }
    }

    /// Answers requests until the peer closes the channel (then `Ok`).
    ///
    /// A request that cannot be decoded gets `Error(EINVAL)`; only a broken
    /// channel ends the loop with an error.
    pub fn serve(&mut self, chan: &Channel) -> Result<(), Error> {
        loop {
            let req = match chan.recv::<Request>() {
                Ok((req, fds)) => {
                    if !fds.is_empty() {
                        tracing::warn!(target: "gofer::rpc", count = fds.len(), "dropping fds sent with a request");
                    }
                    req
                }
                Err(Error::Closed) => {
                    tracing::debug!(target: "gofer::rpc", "channel closed, gofer done");
                    return Ok(());
                }
                Err(e @ (Error::Decode { .. } | Error::Truncated { .. })) => {
                    tracing::warn!(target: "gofer::rpc", error = %e, "malformed request");
                    match chan.send(&Response::Error(libc::EINVAL), &[]) {
                        Ok(()) => continue,
                        Err(Error::Closed) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
            tracing::trace!(target: "gofer::rpc", ?req, "request");
            let (resp, donated) = self.handle(req);
            tracing::trace!(target: "gofer::rpc", ?resp, "reply");
            let sent = match &donated {
                Some(f) => chan.send(&resp, &[f.as_fd()]),
                None => chan.send(&resp, &[]),
            };
            match sent {
                Ok(()) => {}
                Err(Error::Closed) => return Ok(()),
                Err(e @ Error::TooLarge { .. }) => {
                    // Replies are capped to fit; this is a bug, not the peer's.
                    tracing::error!(target: "gofer::rpc", error = %e, "reply too large");
                    match chan.send(&Response::Error(libc::EIO), &[]) {
                        Ok(()) => {}
                        Err(Error::Closed) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The reply to one request, and the fd donated with it.
    pub(crate) fn handle(&mut self, req: Request) -> (Response, Option<OwnedFd>) {
        let resp = match req {
            Request::Mount => self.mount(),
            Request::Walk { dir, names } => self.walk(dir, names),
            Request::Stat { handle } => self.node(handle).and_then(|n| stat_fd(&n.fd)).map(Response::Attr),
            Request::Open { handle, flags } => {
                return match self.open(handle, flags) {
                    Ok(f) => (Response::Opened, Some(f)),
                    Err(e) => (Response::Error(e), None),
                }
            }
            Request::Getdents { dir, offset, count } => self.getdents(dir, offset, count),
            Request::Readlink { handle } => self.readlink(handle),
            Request::Statfs { handle } => self.node(handle).and_then(|n| statfs_fd(&n.fd)).map(Response::FsStat),
            Request::Close { handle } => match self.nodes.remove(&handle) {
                Some(n) => {
                    self.unindex(handle, &n);
                    Ok(Response::Ok)
                }
                None => Err(libc::EBADF),
            },
            Request::CloseMany { handles } => {
                for h in handles {
                    if let Some(n) = self.nodes.remove(&h) {
                        self.unindex(h, &n);
                    }
                }
                Ok(Response::Ok)
            }
            Request::Create { dir, name, flags, mode, owner } => {
                return match self.create(dir, &name, flags, mode, owner) {
                    Ok((step, f)) => (Response::Created(step), Some(f)),
                    Err(e) => (Response::Error(e), None),
                }
            }
            Request::CreateUnnamed { dir, flags, mode, owner } => {
                return match self.create_unnamed(dir, flags, mode, owner) {
                    Ok(f) => (Response::Opened, Some(f)),
                    Err(e) => (Response::Error(e), None),
                }
            }
            Request::Mkdir { dir, name, mode, owner } => self.make(dir, &name, owner, mode & 0o7777, |d, n| {
                stat::mkdirat(Some(d), n, stat::Mode::from_bits_truncate(mode & 0o7777))
            }),
            Request::Mknod { dir, name, mode, owner } => {
                let kind = mode & libc::S_IFMT;
                if ![libc::S_IFIFO, libc::S_IFSOCK, libc::S_IFREG, 0].contains(&kind) {
                    // Device nodes would reach the host's devices.
                    Err(libc::EPERM)
                } else {
                    let sflag = stat::SFlag::from_bits_truncate(if kind == 0 { libc::S_IFREG } else { kind });
                    self.make(dir, &name, owner, mode & 0o7777, |d, n| {
                        stat::mknodat(Some(d), n, sflag, stat::Mode::from_bits_truncate(mode & 0o7777), 0)
                    })
                }
            }
            Request::Symlink { dir, name, target, owner } => {
                if target.is_empty() || target.contains(&0) {
                    Err(libc::ENOENT)
                } else {
                    let target = CString::new(target).unwrap_or_default();
                    self.make(dir, &name, owner, 0o777, |d, n| nix::unistd::symlinkat(target.as_c_str(), Some(d), n))
                }
            }
            Request::Link { dir, name, target } => self.link(dir, &name, target),
            Request::Unlink { dir, name, dir_only } => self.unlink(dir, &name, dir_only),
            Request::Rename { old_dir, old_name, new_dir, new_name, flags } => {
                self.rename(old_dir, &old_name, new_dir, &new_name, flags)
            }
            Request::SetStat { handle, change } => self.setstat(handle, change),
            Request::Fsync { handle, data_only } => self.fsync(handle, data_only),
            Request::GetXattr { handle, name } => self.xattr(handle, Some(&name), fd::get_xattr),
            Request::ListXattr { handle } => self.xattr(handle, None, |f, _| fd::list_xattr(f)).map(|r| match r {
                Response::Xattr(names) => Response::Xattr(user_names(&names)),
                other => other,
            }),
            Request::SetXattr { handle, name, value, flags } => {
                if value.len() > MAX_XATTR {
                    Err(libc::E2BIG)
                } else if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) as u32 != 0 {
                    Err(libc::EINVAL)
                } else if self.readonly {
                    Err(libc::EROFS)
                } else {
                    let flags = c_int::from_ne_bytes(flags.to_ne_bytes());
                    self.xattr(handle, Some(&name), |f, n| fd::set_xattr(f, n, &value, flags).map(|()| Vec::new()))
                        .map(|_| Response::Ok)
                }
            }
            Request::RemoveXattr { handle, name } => {
                if self.readonly {
                    Err(libc::EROFS)
                } else {
                    self.xattr(handle, Some(&name), |f, n| fd::remove_xattr(f, n).map(|()| Vec::new()))
                        .map(|_| Response::Ok)
                }
            }
        };
        (resp.unwrap_or_else(Response::Error), None)
    }

    fn node(&self, h: Handle) -> Result<&Node, i32> {
        self.nodes.get(&h).ok_or(libc::EBADF)
    }

    fn insert(&mut self, node: Node) -> Handle {
        let h = self.next;
        self.next += 1;
        if let Some(p) = &node.place {
            if !node.is_dir() {
                self.by_place.entry((p.dir_id, p.name.clone())).or_default().push(h);
            }
        }
        self.nodes.insert(h, node);
        h
    }

    fn unindex(&mut self, h: Handle, node: &Node) {
        if let Some(p) = &node.place {
            let key = (p.dir_id, p.name.clone());
            if let Some(v) = self.by_place.get_mut(&key) {
                v.retain(|x| *x != h);
                if v.is_empty() {
                    self.by_place.remove(&key);
                }
            }
        }
    }

    /// A directory handle that may change.
    fn writable_dir(&self, dir: Handle) -> Result<&Node, i32> {
        let d = self.node(dir)?;
        if !d.is_dir() {
            return Err(libc::ENOTDIR);
        }
        if self.readonly {
            return Err(libc::EROFS);
        }
        Ok(d)
    }

    /// A directory handle that may change, and a valid name in it.
    fn dir_for_change(&self, dir: Handle, name: &[u8]) -> Result<(&Node, CString), i32> {
        if !valid_name(name) {
            return Err(libc::EINVAL);
        }
        Ok((self.writable_dir(dir)?, CString::new(name).map_err(|_| libc::EINVAL)?))
    }

    /// Looks up the new `name` in `dir` (a directory node's fd) and records
    /// it as a node.
    fn adopt(&mut self, (dir, dir_id): &(Arc<OwnedFd>, (u64, u64)), name: CString) -> Result<WalkStep, i32> {
        let child = fd::openat(dir.as_fd(), &name, OFlag::O_PATH | OFlag::O_NOFOLLOW).map_err(|e| e as i32)?;
        let attr = stat_fd(&child)?;
        let node = Node {
            fd: Arc::new(child),
            id: (attr.dev, attr.ino),
            place: Some(Place { dir: dir.clone(), dir_id: *dir_id, name }),
            kind: attr.mode & libc::S_IFMT,
            listing: None,
        };
        Ok(WalkStep { handle: self.insert(node), attr })
    }

    /// Gives a new file its owner and exact permission bits (chown first:
    /// it clears set-id bits).
    fn settle(&self, fd: &OwnedFd, owner: Owner, perm: Option<u32>) -> Result<(), i32> {
        if owner != self.own {
            nix::unistd::fchownat(
                Some(fd.as_raw_fd()),
                c"",
                Some(nix::unistd::Uid::from_raw(owner.uid)),
                Some(nix::unistd::Gid::from_raw(owner.gid)),
                AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| e as i32)?;
        }
        if let Some(perm) = perm {
            if stat_fd(fd)?.mode & 0o7777 != perm {
                set_mode(fd, perm)?;
            }
        }
        Ok(())
    }

    fn create(
        &mut self,
        dir: Handle,
        name: &[u8],
        flags: u32,
        mode: u32,
        owner: Owner,
    ) -> Result<(WalkStep, OwnedFd), i32> {
        let (d, cname) = self.dir_for_change(dir, name)?;
        let dir = (d.fd.clone(), d.id);
        let flags = c_int::from_ne_bytes(flags.to_ne_bytes()) & (libc::O_ACCMODE | OPEN_ALLOWED) & !libc::O_TRUNC;
        if flags & libc::O_ACCMODE == libc::O_ACCMODE || flags & (libc::O_DIRECTORY | libc::O_PATH) != 0 {
            return Err(libc::EINVAL);
        }
        let f = fd::create_at(dir.0.as_fd(), &cname, OFlag::from_bits_retain(flags), mode & 0o7777)
            .map_err(|e| e as i32)?;
        let step = self.adopt(&dir, cname)?;
        let node_fd = self.node(step.handle)?.fd.clone();
        self.settle(&node_fd, owner, Some(mode & 0o7777))?;
        Ok((WalkStep { handle: step.handle, attr: stat_fd(&node_fd)? }, f))
    }

    fn create_unnamed(&mut self, dir: Handle, flags: u32, mode: u32, owner: Owner) -> Result<OwnedFd, i32> {
        let d = self.writable_dir(dir)?;
        let flags = c_int::from_ne_bytes(flags.to_ne_bytes()) & (libc::O_ACCMODE | libc::O_EXCL | OPEN_ALLOWED);
        if flags & libc::O_ACCMODE == libc::O_RDONLY || flags & libc::O_ACCMODE == libc::O_ACCMODE {
            return Err(libc::EINVAL);
        }
        let flags =
            OFlag::from_bits_retain((flags & !(libc::O_DIRECTORY | libc::O_PATH | libc::O_TRUNC)) | libc::O_TMPFILE);
        let f = fd::open_unnamed(d.fd.as_fd(), flags, mode & 0o7777).map_err(|e| e as i32)?;
        self.settle(&f, owner, Some(mode & 0o7777))?;
        Ok(f)
    }

    /// Makes a new name with `op(dir fd, name)` and records it.
    fn make(
        &mut self,
        dir: Handle,
        name: &[u8],
        owner: Owner,
        perm: u32,
        op: impl FnOnce(std::os::fd::RawFd, &std::ffi::CStr) -> nix::Result<()>,
    ) -> Result<Response, i32> {
        let (d, cname) = self.dir_for_change(dir, name)?;
        let dir = (d.fd.clone(), d.id);
        op(dir.0.as_raw_fd(), &cname).map_err(|e| e as i32)?;
        let step = self.adopt(&dir, cname)?;
        let node = self.node(step.handle)?;
        let perm = (node.kind != libc::S_IFLNK).then_some(perm);
        let fd = node.fd.clone();
        self.settle(&fd, owner, perm)?;
        let attr = stat_fd(&fd)?;
        Ok(Response::Created(WalkStep { handle: step.handle, attr }))
    }

    fn link(&mut self, dir: Handle, name: &[u8], target: Handle) -> Result<Response, i32> {
        let (d, cname) = self.dir_for_change(dir, name)?;
        let dir = (d.fd.clone(), d.id);
        let t = self.node(target)?;
        if t.is_dir() {
            return Err(libc::EPERM);
        }
        let place = t.place.clone().ok_or(libc::EPERM)?;
        let id = t.id;
        nix::unistd::linkat(
            Some(place.dir.as_raw_fd()),
            place.name.as_c_str(),
            Some(dir.0.as_raw_fd()),
            cname.as_c_str(),
            AtFlags::empty(),
        )
        .map_err(|e| e as i32)?;
        let step = self.adopt(&dir, cname.clone())?;
        if (step.attr.dev, step.attr.ino) != id {
            // The target's name meant another file by now: undo.
            let _ = nix::unistd::unlinkat(
                Some(dir.0.as_raw_fd()),
                cname.as_c_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            return Err(libc::ESTALE);
        }
        Ok(Response::Created(step))
    }

    fn unlink(&mut self, dir: Handle, name: &[u8], dir_only: bool) -> Result<Response, i32> {
        let (d, cname) = self.dir_for_change(dir, name)?;
        let flag =
            if dir_only { nix::unistd::UnlinkatFlags::RemoveDir } else { nix::unistd::UnlinkatFlags::NoRemoveDir };
        nix::unistd::unlinkat(Some(d.fd.as_raw_fd()), cname.as_c_str(), flag).map_err(|e| e as i32)?;
        Ok(Response::Ok)
    }

    fn rename(
        &mut self,
        old_dir: Handle,
        old_name: &[u8],
        new_dir: Handle,
        new_name: &[u8],
        flags: u32,
    ) -> Result<Response, i32> {
        let allowed = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE;
        if flags & !allowed != 0 || flags == allowed {
            return Err(libc::EINVAL);
        }
        let (od, oname) = self.dir_for_change(old_dir, old_name)?;
        let (ofd, oid) = (od.fd.clone(), od.id);
        let (nd, nname) = self.dir_for_change(new_dir, new_name)?;
        let (nfd, nid) = (nd.fd.clone(), nd.id);
        nix::fcntl::renameat2(
            Some(ofd.as_raw_fd()),
            oname.as_c_str(),
            Some(nfd.as_raw_fd()),
            nname.as_c_str(),
            nix::fcntl::RenameFlags::from_bits_retain(flags),
        )
        .map_err(|e| e as i32)?;
        let old_key = (oid, oname);
        let new_key = (nid, nname);
        let moved = self.by_place.remove(&old_key).unwrap_or_default();
        let back = self.by_place.remove(&new_key).unwrap_or_default();
        if flags & libc::RENAME_EXCHANGE != 0 {
            self.replace_place(&back, &ofd, &old_key);
        } else {
            // What the new name meant is gone (its handles go stale).
            for h in &back {
                if let Some(n) = self.nodes.get_mut(h) {
                    n.place = None;
                }
            }
        }
        self.replace_place(&moved, &nfd, &new_key);
        Ok(Response::Ok)
    }

    /// Records that the files of `handles` now live at `key` in `dir`.
    fn replace_place(&mut self, handles: &[Handle], dir: &Arc<OwnedFd>, key: &((u64, u64), CString)) {
        for h in handles {
            if let Some(n) = self.nodes.get_mut(h) {
                n.place = Some(Place { dir: dir.clone(), dir_id: key.0, name: key.1.clone() });
            }
        }
        if !handles.is_empty() {
            self.by_place.insert(key.clone(), handles.to_vec());
        }
    }

    fn setstat(&mut self, h: Handle, c: SetAttr) -> Result<Response, i32> {
        let node = self.node(h)?;
        if self.readonly {
            return Err(libc::EROFS);
        }
        if let Some(size) = c.size {
            if node.is_dir() {
                return Err(libc::EISDIR);
            }
            if node.kind != libc::S_IFREG {
                return Err(libc::EINVAL);
            }
            let f = node.reopen(OFlag::O_WRONLY).map_err(|e| e as i32)?;
            let size = i64::try_from(size).map_err(|_| libc::EFBIG)?;
            nix::unistd::ftruncate(&f, size).map_err(|e| e as i32)?;
        }
        if c.uid.is_some() || c.gid.is_some() {
            nix::unistd::fchownat(
                Some(node.fd.as_raw_fd()),
                c"",
                c.uid.map(nix::unistd::Uid::from_raw),
                c.gid.map(nix::unistd::Gid::from_raw),
                AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| e as i32)?;
        }
        if let Some(mode) = c.mode {
            if node.kind == libc::S_IFLNK {
                return Err(libc::EOPNOTSUPP);
            }
            set_mode(&node.fd, mode & 0o7777)?;
        }
        if c.atime.is_some() || c.mtime.is_some() {
            let ts = |t: Option<(i64, u32)>| match t {
                Some((sec, nsec)) => libc::timespec { tv_sec: sec, tv_nsec: i64::from(nsec.min(999_999_999)) },
                None => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
            };
            fd::utimens_fd(node.fd.as_fd(), &[ts(c.atime), ts(c.mtime)]).map_err(|e| e as i32)?;
        }
        stat_fd(&node.fd).map(Response::Attr)
    }

    fn fsync(&self, h: Handle, data_only: bool) -> Result<Response, i32> {
        let node = self.node(h)?;
        if !matches!(node.kind, libc::S_IFREG | libc::S_IFDIR) {
            return Ok(Response::Ok);
        }
        let f = node.data_fd()?;
        let r = if data_only { nix::unistd::fdatasync(f.as_raw_fd()) } else { nix::unistd::fsync(f.as_raw_fd()) };
        r.map(|()| Response::Ok).map_err(|e| e as i32)
    }

    /// Runs an xattr operation on a regular file or directory (user.*
    /// attributes exist only there: `EPERM` elsewhere, as Linux).
    fn xattr(
        &self,
        h: Handle,
        name: Option<&[u8]>,
        op: impl FnOnce(BorrowedFd<'_>, &std::ffi::CStr) -> nix::Result<Vec<u8>>,
    ) -> Result<Response, i32> {
        let node = self.node(h)?;
        let name = match name {
            Some(n) if !n.starts_with(b"user.") || n.len() > 255 || n.contains(&0) => return Err(libc::EOPNOTSUPP),
            Some(n) => CString::new(n).map_err(|_| libc::EINVAL)?,
            None => CString::default(),
        };
        if !matches!(node.kind, libc::S_IFREG | libc::S_IFDIR) {
            return if name.is_empty() { Ok(Response::Xattr(Vec::new())) } else { Err(libc::EPERM) };
        }
        let f = node.data_fd()?;
        op(f.as_fd(), &name).map(Response::Xattr).map_err(|e| e as i32)
    }

    fn mount(&mut self) -> Result<Response, i32> {
        let attr = stat_fd(&self.root)?;
        let root = self.insert(Node {
            fd: Arc::clone(&self.root),
            id: (attr.dev, attr.ino),
            place: None,
            kind: attr.mode & libc::S_IFMT,
            listing: None,
        });
        Ok(Response::Mounted { root, attr })
    }

    fn walk(&mut self, dir: Handle, names: Vec<Vec<u8>>) -> Result<Response, i32> {
        if names.len() > MAX_WALK || !names.iter().all(|n| valid_name(n)) {
            return Err(libc::EINVAL);
        }
        let start = self.node(dir)?;
        let mut cur = Arc::clone(&start.fd);
        let mut cur_kind = start.kind;
        let mut cur_id = start.id;
        let mut found: Vec<(Node, Attr)> = Vec::with_capacity(names.len());
        let mut missing = false;
        for name in names {
            if cur_kind != libc::S_IFDIR {
                // Dropping `found` closes what this walk opened.
                return Err(libc::ENOTDIR);
            }
            // valid_name excludes NUL bytes.
            let name = CString::new(name).map_err(|_| libc::EINVAL)?;
            let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW;
            let child = match fd::openat(cur.as_fd(), &name, flags) {
                Ok(f) => Arc::new(f),
                Err(Errno::ENOENT) => {
                    missing = true;
                    break;
                }
                Err(e) => return Err(e as i32),
            };
            let attr = stat_fd(&child)?;
            let kind = attr.mode & libc::S_IFMT;
            let place = Place { dir: cur, dir_id: cur_id, name };
            let node =
                Node { fd: Arc::clone(&child), id: (attr.dev, attr.ino), place: Some(place), kind, listing: None };
            found.push((node, attr));
            if kind == libc::S_IFLNK {
                break;
            }
            cur = child;
            cur_kind = kind;
            cur_id = (attr.dev, attr.ino);
        }
        let steps = found.into_iter().map(|(node, attr)| WalkStep { handle: self.insert(node), attr }).collect();
        Ok(Response::Walked { steps, missing })
    }

    fn open(&mut self, h: Handle, flags: u32) -> Result<OwnedFd, i32> {
        let node = self.node(h)?;
        let flags = c_int::from_ne_bytes(flags.to_ne_bytes());
        let tmpfile = libc::O_TMPFILE & !libc::O_DIRECTORY;
        if flags & (libc::O_CREAT | tmpfile) != 0 {
            return Err(libc::EINVAL);
        }
        let access = flags & libc::O_ACCMODE;
        if access == libc::O_ACCMODE {
            return Err(libc::EINVAL);
        }
        let path_only = flags & libc::O_PATH != 0;
        let writes = !path_only && (access != libc::O_RDONLY || flags & libc::O_TRUNC != 0);
        if writes && node.is_dir() {
            // Linux's order: a directory is never writable, read-only or not.
            return Err(libc::EISDIR);
        }
        if writes && self.readonly {
            return Err(libc::EROFS);
        }
        let mut flags = flags & OPEN_ALLOWED;
        match node.kind {
            libc::S_IFLNK => return Err(libc::ELOOP),
            // As if the mount were `nodev`: a device node in the rootfs must
            // not reach the host's device.
            libc::S_IFCHR | libc::S_IFBLK if !path_only => return Err(libc::EACCES),
            libc::S_IFSOCK if !path_only => return Err(libc::ENXIO),
            // Opening a FIFO blocks until the other end opens, which would
            // stall the gofer; a non-blocking open never waits.
            libc::S_IFIFO => flags |= libc::O_NONBLOCK,
            _ => {}
        }
        node.reopen(OFlag::from_bits_retain(flags)).map_err(|e| e as i32)
    }

    fn getdents(&mut self, dir: Handle, offset: u64, count: u32) -> Result<Response, i32> {
        let node = self.nodes.get_mut(&dir).ok_or(libc::EBADF)?;
        if !node.is_dir() {
            return Err(libc::ENOTDIR);
        }
        if offset == 0 || node.listing.is_none() {
            node.listing = Some(list_dir(node)?);
        }
        let listing = node.listing.as_deref().unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(listing.len());
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let mut budget = MAX_MESSAGE - DIRENTS_OVERHEAD;
        let mut out = Vec::new();
        for d in listing[start..].iter().take(count) {
            let cost = d.name.len() + DIRENT_OVERHEAD;
            if cost > budget {
                break;
            }
            budget -= cost;
            out.push(d.clone());
        }
        Ok(Response::Dirents(out))
    }

    fn readlink(&self, h: Handle) -> Result<Response, i32> {
        let node = self.node(h)?;
        if node.kind != libc::S_IFLNK {
            return Err(libc::EINVAL);
        }
        let target = nix::fcntl::readlinkat(Some(node.fd.as_raw_fd()), c"").map_err(|e| e as i32)?;
        Ok(Response::Link(std::os::unix::ffi::OsStringExt::into_vec(target)))
    }
}

/// Sets the permission bits of the file an `O_PATH` fd refers to.
fn set_mode(f: &OwnedFd, mode: u32) -> Result<(), i32> {
    match fd::chmod_fd(f.as_fd(), mode) {
        Ok(()) => Ok(()),
        Err(Errno::ENOSYS) => {
            // Before Linux 6.6: through a real fd of the (non-symlink) file.
            // Only directories reopen through their own fd.
            let real =
                fd::openat(f.as_fd(), c".", OFlag::O_RDONLY | OFlag::O_NONBLOCK).map_err(|_| libc::EOPNOTSUPP)?;
            stat::fchmod(real.as_raw_fd(), stat::Mode::from_bits_truncate(mode)).map_err(|e| e as i32)
        }
        Err(e) => Err(e as i32),
    }
}

/// The `user.` names of a NUL-separated xattr name list.
fn user_names(list: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for n in list.split(|b| *b == 0).filter(|n| n.starts_with(b"user.")) {
        out.extend_from_slice(n);
        out.push(0);
    }
    out
}

/// Every entry of a directory but `.` and `..`.
fn list_dir(node: &Node) -> Result<Vec<Dirent>, i32> {
    let fd = node.reopen(OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(|e| e as i32)?;
    let mut dir = Dir::from(fd).map_err(|e| e as i32)?;
    let mut out = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(|e| e as i32)?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        out.push(Dirent { name: name.to_vec(), ino: entry.ino(), kind: dirent_kind(entry.file_type()) });
    }
    Ok(out)
}

fn dirent_kind(t: Option<Type>) -> u8 {
    match t {
        Some(Type::Fifo) => libc::DT_FIFO,
        Some(Type::CharacterDevice) => libc::DT_CHR,
        Some(Type::Directory) => libc::DT_DIR,
        Some(Type::BlockDevice) => libc::DT_BLK,
        Some(Type::File) => libc::DT_REG,
        Some(Type::Symlink) => libc::DT_LNK,
        Some(Type::Socket) => libc::DT_SOCK,
        None => libc::DT_UNKNOWN,
    }
}

/// `statx(fd, "", AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW)` of the basic fields
/// and the birth time.
fn stat_fd(fd: &OwnedFd) -> Result<Attr, i32> {
    let sx = crate::fd::statx(fd)?;
    let ts = |t: libc::statx_timestamp| (t.tv_sec, t.tv_nsec);
    Ok(Attr {
        mode: u32::from(sx.stx_mode),
        nlink: u64::from(sx.stx_nlink),
        uid: sx.stx_uid,
        gid: sx.stx_gid,
        rdev: libc::makedev(sx.stx_rdev_major, sx.stx_rdev_minor),
        size: sx.stx_size,
        blksize: u64::from(sx.stx_blksize),
        blocks: sx.stx_blocks,
        atime: ts(sx.stx_atime),
        mtime: ts(sx.stx_mtime),
        ctime: ts(sx.stx_ctime),
        btime: (sx.stx_mask & libc::STATX_BTIME != 0).then(|| ts(sx.stx_btime)),
        ino: sx.stx_ino,
        dev: libc::makedev(sx.stx_dev_major, sx.stx_dev_minor),
    })
}

fn statfs_fd(fd: &OwnedFd) -> Result<FsStat, i32> {
    let fs = nix::sys::statfs::fstatfs(fd).map_err(|e| e as i32)?;
    // fstatfs's wrapper lacks f_frsize; statvfs has it (same syscall in glibc).
    let vfs = nix::sys::statvfs::fstatvfs(fd).map_err(|e| e as i32)?;
    let wide = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Ok(FsStat {
        fs_type: fs.filesystem_type().0,
        bsize: fs.block_size(),
        blocks: fs.blocks(),
        bfree: fs.blocks_free(),
        bavail: fs.blocks_available(),
        files: fs.files(),
        ffree: fs.files_free(),
        namelen: fs.maximum_name_length(),
        frsize: wide(vfs.fragment_size()),
        flags: wide(fs.flags().bits()),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt};
    use std::path::Path;
    use std::thread::JoinHandle;

    use super::*;
    use crate::testutil::TempDir;
    use crate::Client;

    /// A server rooted at `root` in a thread, and a client to it.
    fn start(root: &Path, readonly: bool) -> (Client, JoinHandle<Result<(), Error>>) {
        let fd = fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_DIRECTORY).open(root).unwrap();
        let (ours, theirs) = Channel::pair().unwrap();
        let t = std::thread::spawn(move || Server::new(OwnedFd::from(fd), readonly).serve(&theirs));
        (Client::new(ours), t)
    }

    fn stop(client: Client, t: JoinHandle<Result<(), Error>>) {
        drop(client);
        t.join().unwrap().unwrap();
    }

    fn is_link(s: &WalkStep) -> bool {
        s.attr.mode & libc::S_IFMT == libc::S_IFLNK
    }

    #[test]
    fn handle_lifecycle() {
        let dir = TempDir::new();
        fs::write(dir.path().join("f"), b"x").unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, attr) = c.mount().unwrap();
        assert_eq!(root, 1);
        assert_eq!(attr.mode & libc::S_IFMT, libc::S_IFDIR);
        assert_eq!(attr.ino, fs::metadata(dir.path()).unwrap().ino());
        let (steps, missing) = c.walk(root, &[b"f"]).unwrap();
        assert!(!missing);
        let f = steps[0].handle;
        assert!(f > root);
        assert_eq!(c.stat(f).unwrap(), steps[0].attr);
        assert_eq!(steps[0].attr.size, 1);
        c.close(f).unwrap();
        assert_eq!(c.close(f), Err(libc::EBADF));
        assert_eq!(c.stat(f), Err(libc::EBADF));
        assert_eq!(c.open(f, 0).unwrap_err(), libc::EBADF);
        assert_eq!(c.getdents(f, 0, 10), Err(libc::EBADF));
        assert_eq!(c.walk(f, &[b"x"]), Err(libc::EBADF));
        assert_eq!(c.stat(12345), Err(libc::EBADF));
        // Handles are never reused.
        let (again, _) = c.walk(root, &[b"f"]).unwrap();
        assert!(again[0].handle > f);
        let (root2, _) = c.mount().unwrap();
        assert!(root2 > again[0].handle);
        assert!(c.statfs(root).unwrap().bsize > 0);
        assert!(!c.is_broken());
        stop(c, t);
    }

    #[test]
    fn walk_semantics() {
        let dir = TempDir::new();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/b/file"), b"data").unwrap();
        symlink("b/file", dir.path().join("a/link")).unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();

        let (steps, missing) = c.walk(root, &[b"a", b"b", b"file"]).unwrap();
        assert!(!missing);
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[2].attr.size, 4);

        // Missing first name: no step.
        assert_eq!(c.walk(root, &[b"nope", b"x"]).unwrap(), (vec![], true));
        // Missing later name: the steps before it.
        let (steps, missing) = c.walk(root, &[b"a", b"nope", b"x"]).unwrap();
        assert!(missing);
        assert_eq!(steps.len(), 1);

        // A symlink ends the walk after its step, unfollowed.
        let (steps, missing) = c.walk(root, &[b"a", b"link", b"more"]).unwrap();
        assert!(!missing);
        assert_eq!(steps.len(), 2);
        assert!(is_link(&steps[1]));
        assert_eq!(c.readlink(steps[1].handle).unwrap(), b"b/file");
        assert_eq!(c.readlink(steps[0].handle), Err(libc::EINVAL));

        // A file followed by more names.
        assert_eq!(c.walk(root, &[b"a", b"b", b"file", b"x"]), Err(libc::ENOTDIR));

        // Invalid names.
        for bad in [&b".."[..], b".", b"", b"a/b", b"a\0"] {
            assert_eq!(c.walk(root, &[b"a", bad]), Err(libc::EINVAL), "{bad:?}");
        }
        assert_eq!(c.walk(root, &[]).unwrap(), (vec![], false));
        stop(c, t);
    }

    #[test]
    fn long_walk_is_split() {
        let dir = TempDir::new();
        let depth = MAX_WALK * 2 + 10;
        let mut path = dir.path().to_owned();
        for _ in 0..depth {
            path.push("d");
        }
        fs::create_dir_all(&path).unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let names = vec![&b"d"[..]; depth];
        let (steps, missing) = c.walk(root, &names).unwrap();
        assert!(!missing);
        assert_eq!(steps.len(), depth);
        let mut longer = names.clone();
        longer.push(b"nope");
        let (steps, missing) = c.walk(root, &longer).unwrap();
        assert!(missing);
        assert_eq!(steps.len(), depth);
        stop(c, t);
    }

    #[test]
    fn open_donates_a_readable_fd() {
        let dir = TempDir::new();
        fs::write(dir.path().join("f"), b"hello gofer").unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let (steps, _) = c.walk(root, &[b"f"]).unwrap();
        let fd = c.open(steps[0].handle, libc::O_RDONLY as u32).unwrap();
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
        let mut s = String::new();
        fs::File::from(fd).read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello gofer");
        // Writable when not read-only.
        let w = c.open(steps[0].handle, (libc::O_WRONLY | libc::O_APPEND) as u32).unwrap();
        nix::unistd::write(&w, b"!").unwrap();
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"hello gofer!");
        // No creating.
        assert_eq!(c.open(steps[0].handle, libc::O_CREAT as u32).unwrap_err(), libc::EINVAL);
        assert_eq!(c.open(root, (libc::O_TMPFILE | libc::O_RDWR) as u32).unwrap_err(), libc::EINVAL);
        // A directory opens too.
        let d = c.open(root, (libc::O_RDONLY | libc::O_DIRECTORY) as u32).unwrap();
        assert_eq!(nix::sys::stat::fstat(d.as_raw_fd()).unwrap().st_ino, fs::metadata(dir.path()).unwrap().ino());
        assert_eq!(c.open(steps[0].handle, libc::O_DIRECTORY as u32).unwrap_err(), libc::ENOTDIR);
        stop(c, t);
    }

    #[test]
    fn readonly_refuses_writes() {
        let dir = TempDir::new();
        fs::write(dir.path().join("f"), b"keep").unwrap();
        let (c, t) = start(dir.path(), true);
        let (root, _) = c.mount().unwrap();
        let (steps, _) = c.walk(root, &[b"f"]).unwrap();
        let h = steps[0].handle;
        for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_RDONLY | libc::O_TRUNC, libc::O_WRONLY | libc::O_APPEND] {
            assert_eq!(c.open(h, flags as u32).unwrap_err(), libc::EROFS, "{flags:#o}");
        }
        assert!(c.open(h, libc::O_RDONLY as u32).is_ok());
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"keep");
        assert_eq!(c.open(root, libc::O_RDWR as u32).unwrap_err(), libc::EISDIR);
        stop(c, t);
    }

    #[test]
    fn special_files() {
        let dir = TempDir::new();
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        nix::sys::stat::mknod(
            &dir.path().join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let (fifo, _) = c.walk(root, &[b"fifo"]).unwrap();
        // Does not block with no writer.
        assert!(c.open(fifo[0].handle, libc::O_RDONLY as u32).is_ok());
        let (null, _) = c.walk(root, &[b"null"]).unwrap();
        assert_eq!(c.open(null[0].handle, libc::O_RDWR as u32).unwrap_err(), libc::EACCES);
        stop(c, t);
    }

    #[test]
    fn getdents_lists_3000_entries() {
        let dir = TempDir::new();
        fs::create_dir(dir.path().join("big")).unwrap();
        // Long names, so the whole listing is several times MAX_MESSAGE.
        let name = |i: usize| format!("{i:0>200}");
        for i in 0..3000 {
            fs::write(dir.path().join("big").join(name(i)), b"").unwrap();
        }
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let (steps, _) = c.walk(root, &[b"big"]).unwrap();
        let big = steps[0].handle;
        for count in [u32::MAX, 700] {
            let mut all = Vec::new();
            let mut calls = 0;
            loop {
                let chunk = c.getdents(big, all.len() as u64, count).unwrap();
                calls += 1;
                if chunk.is_empty() {
                    break;
                }
                assert!(chunk.len() <= count as usize);
                all.extend(chunk);
            }
            assert!(calls >= 4, "{calls} calls");
            let mut names: Vec<Vec<u8>> = all.iter().map(|d| d.name.clone()).collect();
            names.sort();
            let want: Vec<Vec<u8>> = (0..3000).map(|i| name(i).into_bytes()).collect();
            assert_eq!(names, want);
            assert!(all.iter().all(|d| d.kind == libc::DT_REG && d.ino != 0));
        }
        // Offset 0 refreshes the cached listing.
        fs::write(dir.path().join("big/new"), b"").unwrap();
        let mut total = 0;
        loop {
            let chunk = c.getdents(big, total, u32::MAX).unwrap();
            if chunk.is_empty() {
                break;
            }
            total += chunk.len() as u64;
        }
        assert_eq!(total, 3001);
        assert_eq!(c.getdents(big, 1 << 40, 10).unwrap(), vec![]);
        // Not a directory.
        let (f, _) = c.walk(big, &[b"new"]).unwrap();
        assert_eq!(c.getdents(f[0].handle, 0, 10), Err(libc::ENOTDIR));
        stop(c, t);
    }

    #[test]
    fn symlinks_never_escape() {
        let dir = TempDir::new();
        let root_dir = dir.path().join("root");
        fs::create_dir_all(root_dir.join("a/b")).unwrap();
        symlink("../../..", root_dir.join("a/b/up")).unwrap();
        symlink("/etc", root_dir.join("a/b/abs")).unwrap();
        symlink("/etc", root_dir.join("abs")).unwrap();
        fs::write(dir.path().join("outside"), b"secret").unwrap();
        let (c, t) = start(&root_dir, false);
        let (root, _) = c.mount().unwrap();
        let etc_ino = fs::metadata("/etc").unwrap().ino();
        let outside_ino = fs::metadata(dir.path()).unwrap().ino();
        let walks: [&[&[u8]]; 5] = [
            &[b"a", b"b", b"up", b"outside"],
            &[b"a", b"b", b"up", b"etc", b"passwd"],
            &[b"a", b"b", b"abs", b"passwd"],
            &[b"abs", b"passwd"],
            &[b"abs"],
        ];
        for names in walks {
            let (steps, missing) = c.walk(root, names).unwrap();
            assert!(!missing);
            let last = steps.last().unwrap();
            assert!(is_link(last), "{names:?}");
            for s in &steps {
                assert_ne!(s.attr.ino, etc_ino);
                assert_ne!(s.attr.ino, outside_ino);
            }
            assert_eq!(c.open(last.handle, libc::O_RDONLY as u32).unwrap_err(), libc::ELOOP);
            assert_eq!(c.open(last.handle, (libc::O_RDONLY | libc::O_DIRECTORY) as u32).unwrap_err(), libc::ELOOP);
            // Walking on from the symlink's handle goes nowhere.
            assert_eq!(c.walk(last.handle, &[b"passwd"]), Err(libc::ENOTDIR));
            assert_eq!(c.getdents(last.handle, 0, 10), Err(libc::ENOTDIR));
        }
        // `..` is refused at every position.
        assert_eq!(c.walk(root, &[b".."]), Err(libc::EINVAL));
        assert_eq!(c.walk(root, &[b"a", b"..", b".."]), Err(libc::EINVAL));
        stop(c, t);
    }

    fn owner() -> Owner {
        Owner { uid: nix::unistd::geteuid().as_raw(), gid: nix::unistd::getegid().as_raw() }
    }

    #[test]
    fn creates_names_of_every_kind() {
        let dir = TempDir::new();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let (step, fd) = c.create(root, b"f", libc::O_RDWR as u32, 0o640, owner()).unwrap();
        nix::unistd::write(&fd, b"hello").unwrap();
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"hello");
        assert_eq!(step.attr.mode, libc::S_IFREG | 0o640);
        assert_eq!(c.create(root, b"f", libc::O_RDWR as u32, 0o640, owner()).unwrap_err(), libc::EEXIST);
        let d = c.mkdir(root, b"d", 0o2751, owner()).unwrap();
        assert_eq!(fs::metadata(dir.path().join("d")).unwrap().mode(), libc::S_IFDIR | 0o2751);
        assert_eq!(d.attr.mode, libc::S_IFDIR | 0o2751);
        let p = c.mknod(d.handle, b"p", libc::S_IFIFO | 0o600, owner()).unwrap();
        assert_eq!(p.attr.mode, libc::S_IFIFO | 0o600);
        assert_eq!(c.mknod(root, b"null", libc::S_IFCHR | 0o666, owner()).unwrap_err(), libc::EPERM);
        let l = c.symlink(d.handle, b"l", b"../f", owner()).unwrap();
        assert_eq!(l.attr.mode & libc::S_IFMT, libc::S_IFLNK);
        assert_eq!(fs::read_link(dir.path().join("d/l")).unwrap(), Path::new("../f"));
        let h = c.link(d.handle, b"hard", step.handle).unwrap();
        assert_eq!(h.attr.ino, step.attr.ino);
        assert_eq!(h.attr.nlink, 2);
        assert_eq!(c.link(root, b"x", d.handle).unwrap_err(), libc::EPERM);
        for bad in [&b".."[..], b"a/b", b"", b"."] {
            assert_eq!(c.mkdir(root, bad, 0o755, owner()).unwrap_err(), libc::EINVAL);
        }
        // Directory entries see them all.
        let names: Vec<Vec<u8>> = c.getdents(d.handle, 0, 100).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names.len(), 3);
        // Removal.
        assert_eq!(c.unlink(root, b"d", false).unwrap_err(), libc::EISDIR);
        assert_eq!(c.unlink(root, b"d", true).unwrap_err(), libc::ENOTEMPTY);
        for n in [&b"p"[..], b"l", b"hard"] {
            c.unlink(d.handle, n, false).unwrap();
        }
        c.unlink(root, b"d", true).unwrap();
        assert!(!dir.path().join("d").exists());
        stop(c, t);
    }

    #[test]
    fn chown_and_exact_modes_as_root() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = TempDir::new();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let who = Owner { uid: 1234, gid: 5678 };
        let (f, _) = c.create(root, b"f", libc::O_WRONLY as u32, 0o4755, who).unwrap();
        let m = fs::metadata(dir.path().join("f")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode()), (1234, 5678, libc::S_IFREG | 0o4755));
        assert_eq!((f.attr.uid, f.attr.gid), (1234, 5678));
        let l = c.symlink(root, b"l", b"f", who).unwrap();
        assert_eq!((l.attr.uid, l.attr.gid), (1234, 5678));
        assert_eq!(fs::metadata(dir.path().join("f")).unwrap().uid(), 1234);
        let a = c.setstat(f.handle, SetAttr { uid: Some(1), gid: None, ..Default::default() }).unwrap();
        assert_eq!((a.uid, a.gid), (1, 5678));
        stop(c, t);
    }

    #[test]
    fn setstat_changes_modes_sizes_and_times() {
        let dir = TempDir::new();
        fs::write(dir.path().join("f"), b"0123456789").unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let (steps, _) = c.walk(root, &[b"f"]).unwrap();
        let f = steps[0].handle;
        let change = SetAttr {
            mode: Some(0o600),
            size: Some(4),
            atime: Some((1_000_000_000, 123_456_789)),
            mtime: Some((1_100_000_000, 5)),
            ..Default::default()
        };
        let a = c.setstat(f, change).unwrap();
        assert_eq!(a.mode, libc::S_IFREG | 0o600);
        assert_eq!(a.size, 4);
        assert_eq!(a.atime, (1_000_000_000, 123_456_789));
        assert_eq!(a.mtime, (1_100_000_000, 5));
        let m = fs::metadata(dir.path().join("f")).unwrap();
        assert_eq!((m.len(), m.mode(), m.mtime(), m.mtime_nsec()), (4, libc::S_IFREG | 0o600, 1_100_000_000, 5));
        // Only mtime: atime stays.
        let a = c.setstat(f, SetAttr { mtime: Some((7, 0)), ..Default::default() }).unwrap();
        assert_eq!((a.atime.0, a.mtime.0), (1_000_000_000, 7));
        // A symlink's mode cannot change; a directory has no size.
        let l = c.symlink(root, b"l", b"f", owner()).unwrap();
        assert_eq!(c.setstat(l.handle, SetAttr { mode: Some(0o600), ..Default::default() }), Err(libc::EOPNOTSUPP));
        assert_eq!(c.setstat(root, SetAttr { size: Some(0), ..Default::default() }), Err(libc::EISDIR));
        c.fsync(f, false).unwrap();
        c.fsync(root, true).unwrap();
        stop(c, t);
    }

    #[test]
    fn renames_follow_the_handle() {
        let dir = TempDir::new();
        fs::create_dir(dir.path().join("a")).unwrap();
        fs::create_dir(dir.path().join("b")).unwrap();
        fs::write(dir.path().join("a/x"), b"x").unwrap();
        fs::write(dir.path().join("b/y"), b"y").unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let (a, _) = c.walk(root, &[b"a", b"x"]).unwrap();
        let (b, _) = c.walk(root, &[b"b", b"y"]).unwrap();
        let (x, y) = (a[1].handle, b[1].handle);
        // Moved to another directory: still opens the same file.
        c.rename(a[0].handle, b"x", b[0].handle, b"z", 0).unwrap();
        let read = |h| {
            let mut s = String::new();
            fs::File::from(c.open(h, libc::O_RDONLY as u32).unwrap()).read_to_string(&mut s).unwrap();
            s
        };
        assert_eq!(read(x), "x");
        // Exchanged: each handle keeps its file.
        c.rename(b[0].handle, b"z", b[0].handle, b"y", libc::RENAME_EXCHANGE).unwrap();
        assert_eq!(read(x), "x");
        assert_eq!(read(y), "y");
        assert_eq!(fs::read(dir.path().join("b/y")).unwrap(), b"x");
        assert_eq!(c.rename(b[0].handle, b"z", b[0].handle, b"y", libc::RENAME_NOREPLACE).unwrap_err(), libc::EEXIST);
        // Replaced: the handle of the file that went away is stale, the
        // moved one is not.
        c.rename(b[0].handle, b"z", b[0].handle, b"y", 0).unwrap();
        assert_eq!(c.open(x, libc::O_RDONLY as u32).unwrap_err(), libc::ESTALE);
        assert_eq!(read(y), "y");
        assert_eq!(c.rename(root, b"a", root, b"a", libc::RENAME_EXCHANGE | libc::RENAME_NOREPLACE), Err(libc::EINVAL));
        stop(c, t);
    }

    #[test]
    fn a_name_swapped_under_a_handle_is_never_followed() {
        let dir = TempDir::new();
        let root_dir = dir.path().join("root");
        fs::create_dir(&root_dir).unwrap();
        fs::write(root_dir.join("f"), b"mine").unwrap();
        fs::write(dir.path().join("secret"), b"secret").unwrap();
        let (c, t) = start(&root_dir, false);
        let (root, _) = c.mount().unwrap();
        let (steps, _) = c.walk(root, &[b"f"]).unwrap();
        // The host (or a racing rename) swaps the name for a symlink out
        // of the tree, then for a FIFO.
        fs::remove_file(root_dir.join("f")).unwrap();
        symlink(dir.path().join("secret"), root_dir.join("f")).unwrap();
        assert_eq!(c.open(steps[0].handle, libc::O_RDWR as u32).unwrap_err(), libc::ELOOP);
        let a = c.setstat(steps[0].handle, SetAttr { size: Some(0), ..Default::default() });
        assert!(a.is_err());
        assert_eq!(fs::read(dir.path().join("secret")).unwrap(), b"secret");
        fs::remove_file(root_dir.join("f")).unwrap();
        nix::unistd::mkfifo(&root_dir.join("f"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(c.open(steps[0].handle, libc::O_RDONLY as u32).unwrap_err(), libc::ESTALE);
        // Linking a symlink links the symlink itself.
        c.symlink(root, b"l", b"/etc/passwd", owner()).unwrap();
        let (l, _) = c.walk(root, &[b"l"]).unwrap();
        let h = c.link(root, b"l2", l[0].handle).unwrap();
        assert_eq!(h.attr.mode & libc::S_IFMT, libc::S_IFLNK);
        stop(c, t);
    }

    #[test]
    fn xattrs_of_user_names() {
        let dir = TempDir::new();
        fs::write(dir.path().join("f"), b"").unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        let (steps, _) = c.walk(root, &[b"f"]).unwrap();
        let f = steps[0].handle;
        match c.set_xattr(f, b"user.k", b"v1", 0) {
            // Some host file systems (old tmpfs) have no user xattrs.
            Err(libc::EOPNOTSUPP) => return stop(c, t),
            r => r.unwrap(),
        }
        assert_eq!(c.get_xattr(f, b"user.k").unwrap(), b"v1");
        assert_eq!(c.set_xattr(f, b"user.k", b"v", libc::XATTR_CREATE as u32), Err(libc::EEXIST));
        assert_eq!(c.set_xattr(f, b"user.n", b"v", libc::XATTR_REPLACE as u32), Err(libc::ENODATA));
        c.set_xattr(f, b"user.big", &vec![7u8; 1000], 0).unwrap();
        assert_eq!(c.get_xattr(f, b"user.big").unwrap().len(), 1000);
        let list = c.list_xattr(f).unwrap();
        let mut names: Vec<&[u8]> = list.split(|b| *b == 0).filter(|n| !n.is_empty()).collect();
        names.sort();
        assert_eq!(names, vec![&b"user.big"[..], b"user.k"]);
        c.remove_xattr(f, b"user.k").unwrap();
        assert_eq!(c.get_xattr(f, b"user.k"), Err(libc::ENODATA));
        assert_eq!(c.get_xattr(f, b"trusted.k"), Err(libc::EOPNOTSUPP));
        assert_eq!(c.set_xattr(f, b"user.huge", &vec![0u8; MAX_XATTR + 1], 0), Err(libc::E2BIG));
        stop(c, t);
    }

    #[test]
    fn readonly_refuses_every_change() {
        let dir = TempDir::new();
        fs::write(dir.path().join("f"), b"keep").unwrap();
        let (c, t) = start(dir.path(), true);
        let (root, _) = c.mount().unwrap();
        let (steps, _) = c.walk(root, &[b"f"]).unwrap();
        let f = steps[0].handle;
        assert_eq!(c.create(root, b"n", 1, 0o644, owner()).unwrap_err(), libc::EROFS);
        assert_eq!(c.mkdir(root, b"n", 0o755, owner()).unwrap_err(), libc::EROFS);
        assert_eq!(c.symlink(root, b"n", b"f", owner()).unwrap_err(), libc::EROFS);
        assert_eq!(c.link(root, b"n", f).unwrap_err(), libc::EROFS);
        assert_eq!(c.unlink(root, b"f", false).unwrap_err(), libc::EROFS);
        assert_eq!(c.rename(root, b"f", root, b"g", 0).unwrap_err(), libc::EROFS);
        assert_eq!(c.setstat(f, SetAttr { size: Some(0), ..Default::default() }).unwrap_err(), libc::EROFS);
        assert_eq!(c.set_xattr(f, b"user.a", b"b", 0).unwrap_err(), libc::EROFS);
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"keep");
        stop(c, t);
    }

    #[test]
    fn malformed_requests_get_einval() {
        let dir = TempDir::new();
        let fd =
            fs::OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_DIRECTORY).open(dir.path()).unwrap();
        let (ours, theirs) = Channel::pair().unwrap();
        let t = std::thread::spawn(move || Server::new(OwnedFd::from(fd), false).serve(&theirs));
        ours.send(&(200u8, "junk"), &[]).unwrap();
        let (resp, _): (Response, _) = ours.recv().unwrap();
        assert_eq!(resp, Response::Error(libc::EINVAL));
        // Too many names in one walk.
        let names = vec![b"a".to_vec(); MAX_WALK + 1];
        ours.send(&Request::Walk { dir: 1, names }, &[]).unwrap();
        let (resp, _): (Response, _) = ours.recv().unwrap();
        assert_eq!(resp, Response::Error(libc::EINVAL));
        // Still serving.
        ours.send(&Request::Mount, &[]).unwrap();
        let (resp, _): (Response, _) = ours.recv().unwrap();
        assert!(matches!(resp, Response::Mounted { root: 1, .. }));
        drop(ours);
        t.join().unwrap().unwrap();
    }

    #[test]
    fn client_fails_with_eio_when_the_gofer_is_gone() {
        let (ours, theirs) = Channel::pair().unwrap();
        drop(theirs);
        let c = Client::new(ours);
        assert_eq!(c.mount(), Err(libc::EIO));
        assert!(c.is_broken());
        assert_eq!(c.stat(1), Err(libc::EIO));
    }

    #[test]
    fn client_is_shared_between_threads() {
        let dir = TempDir::new();
        fs::write(dir.path().join("f"), b"x").unwrap();
        let (c, t) = start(dir.path(), false);
        let (root, _) = c.mount().unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let (steps, _) = c.walk(root, &[b"f"]).unwrap();
                        assert_eq!(c.stat(steps[0].handle).unwrap().size, 1);
                        c.close(steps[0].handle).unwrap();
                    }
                });
            }
        });
        stop(c, t);
    }
}
