//! The sentry's side of a gofer connection.
//!
//! Every method returns a host errno on failure: what the gofer replied, or
//! `EIO` once the channel is broken (logged once, then every call fails
//! fast with `EIO`).
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::channel::Channel;
use crate::protocol::{Attr, Dirent, FsStat, Handle, Owner, Request, Response, SetAttr, WalkStep, MAX_WALK};

/// A connection to one gofer mount, shareable between sentry threads; one
/// request is in flight at a time.
#[derive(Debug)]
pub struct Client {
    chan: Mutex<Channel>,
    broken: AtomicBool,
    /// Handles to forget, sent in one batch before the next request.
    dropped: Mutex<Vec<Handle>>,
}

impl Client {
    /// A client speaking over `chan`.
    pub fn new(chan: Channel) -> Self {
        Client { chan: Mutex::new(chan), broken: AtomicBool::new(false), dropped: Mutex::new(Vec::new()) }
    }

    /// The root of the mount and its attributes.
    pub fn mount(&self) -> Result<(Handle, Attr), i32> {
        match self.call(&Request::Mount)? {
            (Response::Mounted { root, attr }, _) => Ok((root, attr)),
            (other, _) => Err(self.unexpected("mount", &other)),
        }
    }

    /// Looks `names` up one after the other from directory `dir`.
    ///
    /// Returns one step per name found, in order, and whether a name was
    /// missing. The steps stop early at a missing name (`true`) or after a
    /// symlink (the last step's attr is a symlink; it is not followed). More
    /// than [`MAX_WALK`] names take several round trips; if a later one
    /// fails, the handles of the earlier ones are closed.
    pub fn walk(&self, dir: Handle, names: &[&[u8]]) -> Result<(Vec<WalkStep>, bool), i32> {
        let mut steps: Vec<WalkStep> = Vec::with_capacity(names.len());
        let mut from = dir;
        for chunk in names.chunks(MAX_WALK) {
            let req = Request::Walk { dir: from, names: chunk.iter().map(|n| n.to_vec()).collect() };
            let (got, missing) = match self.call(&req) {
                Ok((Response::Walked { steps, missing }, _)) if steps.len() <= chunk.len() => (steps, missing),
                Ok((other, _)) => {
                    let e = self.unexpected("walk", &other);
                    self.forget(&steps);
                    return Err(e);
                }
                Err(e) => {
                    self.forget(&steps);
                    return Err(e);
                }
            };
            let complete = got.len() == chunk.len() && !missing;
            steps.extend(got);
            let at_symlink = steps.last().is_some_and(|s| s.attr.mode & libc::S_IFMT == libc::S_IFLNK);
            if !complete || at_symlink {
                return Ok((steps, missing));
            }
            if let Some(last) = steps.last() {
                from = last.handle;
            }
        }
        Ok((steps, false))
    }

    /// The attributes of a handle.
    pub fn stat(&self, h: Handle) -> Result<Attr, i32> {
        match self.call(&Request::Stat { handle: h })? {
            (Response::Attr(attr), _) => Ok(attr),
            (other, _) => Err(self.unexpected("stat", &other)),
        }
    }

    /// A host fd for the file behind `h`, opened with these `open(2)` flags
    /// (no `O_CREAT`); `O_CLOEXEC` in this process.
    pub fn open(&self, h: Handle, flags: u32) -> Result<OwnedFd, i32> {
        match self.call(&Request::Open { handle: h, flags })? {
            (Response::Opened, mut fds) if fds.len() == 1 => fds.pop().ok_or(libc::EIO),
            (other, _) => Err(self.unexpected("open", &other)),
        }
    }

    /// At most `count` entries of directory `dir` from index `offset`
    /// (without `.` and `..`); fewer when the reply would be too large,
    /// empty at the end. Offset 0 starts a new scan.
    pub fn getdents(&self, dir: Handle, offset: u64, count: u32) -> Result<Vec<Dirent>, i32> {
        match self.call(&Request::Getdents { dir, offset, count })? {
            (Response::Dirents(d), _) => Ok(d),
            (other, _) => Err(self.unexpected("getdents", &other)),
        }
    }

    /// The target of a symlink.
    pub fn readlink(&self, h: Handle) -> Result<Vec<u8>, i32> {
        match self.call(&Request::Readlink { handle: h })? {
            (Response::Link(target), _) => Ok(target),
            (other, _) => Err(self.unexpected("readlink", &other)),
        }
    }

    /// Statistics of the file system holding `h`.
    pub fn statfs(&self, h: Handle) -> Result<FsStat, i32> {
        match self.call(&Request::Statfs { handle: h })? {
            (Response::FsStat(s), _) => Ok(s),
            (other, _) => Err(self.unexpected("statfs", &other)),
        }
    }

    /// Forgets a handle.
    pub fn close(&self, h: Handle) -> Result<(), i32> {
        match self.call(&Request::Close { handle: h })? {
            (Response::Ok, _) => Ok(()),
            (other, _) => Err(self.unexpected("close", &other)),
        }
    }

    /// Creates the regular file `name` in `dir` (exclusively) and opens it
    /// with `flags`: its handle and attributes, and the host fd.
    pub fn create(
        &self,
        dir: Handle,
        name: &[u8],
        flags: u32,
        mode: u32,
        owner: Owner,
    ) -> Result<(WalkStep, OwnedFd), i32> {
        let req = Request::Create { dir, name: name.to_vec(), flags, mode, owner };
        match self.call(&req)? {
            (Response::Created(step), mut fds) if fds.len() == 1 => Ok((step, fds.pop().ok_or(libc::EIO)?)),
            (other, _) => Err(self.unexpected("create", &other)),
        }
    }

    /// An unnamed regular file in `dir` (`O_TMPFILE`), opened with `flags`.
    pub fn create_unnamed(&self, dir: Handle, flags: u32, mode: u32, owner: Owner) -> Result<OwnedFd, i32> {
        match self.call(&Request::CreateUnnamed { dir, flags, mode, owner })? {
            (Response::Opened, mut fds) if fds.len() == 1 => fds.pop().ok_or(libc::EIO),
            (other, _) => Err(self.unexpected("create_unnamed", &other)),
        }
    }

    /// Creates a directory.
    pub fn mkdir(&self, dir: Handle, name: &[u8], mode: u32, owner: Owner) -> Result<WalkStep, i32> {
        self.created("mkdir", &Request::Mkdir { dir, name: name.to_vec(), mode, owner })
    }

    /// Creates a FIFO, socket or empty regular file (`mode` has the type).
    pub fn mknod(&self, dir: Handle, name: &[u8], mode: u32, owner: Owner) -> Result<WalkStep, i32> {
        self.created("mknod", &Request::Mknod { dir, name: name.to_vec(), mode, owner })
    }

    /// Creates a symlink.
    pub fn symlink(&self, dir: Handle, name: &[u8], target: &[u8], owner: Owner) -> Result<WalkStep, i32> {
        self.created("symlink", &Request::Symlink { dir, name: name.to_vec(), target: target.to_vec(), owner })
    }

    /// Hard-links the file of `target` as `name` in `dir`.
    pub fn link(&self, dir: Handle, name: &[u8], target: Handle) -> Result<WalkStep, i32> {
        self.created("link", &Request::Link { dir, name: name.to_vec(), target })
    }

    /// unlink (`dir_only` false) or rmdir (true).
    pub fn unlink(&self, dir: Handle, name: &[u8], dir_only: bool) -> Result<(), i32> {
        self.ok("unlink", &Request::Unlink { dir, name: name.to_vec(), dir_only })
    }

    /// renameat2 with RENAME_NOREPLACE / RENAME_EXCHANGE `flags`.
    pub fn rename(
        &self,
        old_dir: Handle,
        old_name: &[u8],
        new_dir: Handle,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), i32> {
        let req = Request::Rename { old_dir, old_name: old_name.to_vec(), new_dir, new_name: new_name.to_vec(), flags };
        self.ok("rename", &req)
    }

    /// Changes attributes; returns the new ones.
    pub fn setstat(&self, handle: Handle, change: SetAttr) -> Result<Attr, i32> {
        match self.call(&Request::SetStat { handle, change })? {
            (Response::Attr(a), _) => Ok(a),
            (other, _) => Err(self.unexpected("setstat", &other)),
        }
    }

    /// fsync (or fdatasync) of a file or directory.
    pub fn fsync(&self, handle: Handle, data_only: bool) -> Result<(), i32> {
        self.ok("fsync", &Request::Fsync { handle, data_only })
    }

    /// The value of a `user.` extended attribute.
    pub fn get_xattr(&self, handle: Handle, name: &[u8]) -> Result<Vec<u8>, i32> {
        self.xattr("getxattr", &Request::GetXattr { handle, name: name.to_vec() })
    }

    /// The `user.` extended attribute names, each NUL-terminated.
    pub fn list_xattr(&self, handle: Handle) -> Result<Vec<u8>, i32> {
        self.xattr("listxattr", &Request::ListXattr { handle })
    }

    /// Sets an extended attribute.
    pub fn set_xattr(&self, handle: Handle, name: &[u8], value: &[u8], flags: u32) -> Result<(), i32> {
        self.ok("setxattr", &Request::SetXattr { handle, name: name.to_vec(), value: value.to_vec(), flags })
    }

    /// Removes an extended attribute.
    pub fn remove_xattr(&self, handle: Handle, name: &[u8]) -> Result<(), i32> {
        self.ok("removexattr", &Request::RemoveXattr { handle, name: name.to_vec() })
    }

    fn created(&self, op: &str, req: &Request) -> Result<WalkStep, i32> {
        match self.call(req)? {
            (Response::Created(step), _) => Ok(step),
            (other, _) => Err(self.unexpected(op, &other)),
        }
    }

    fn ok(&self, op: &str, req: &Request) -> Result<(), i32> {
        match self.call(req)? {
            (Response::Ok, _) => Ok(()),
            (other, _) => Err(self.unexpected(op, &other)),
        }
    }

    fn xattr(&self, op: &str, req: &Request) -> Result<Vec<u8>, i32> {
        match self.call(req)? {
            (Response::Xattr(v), _) => Ok(v),
            (other, _) => Err(self.unexpected(op, &other)),
        }
    }

    /// Forgets a handle the next time the channel is used (no round trip
    /// of its own: callable from a destructor).
    pub fn forget_later(&self, h: Handle) {
        self.dropped.lock().unwrap_or_else(|e| e.into_inner()).push(h);
    }

    /// Whether the channel has failed (every call now returns `EIO`).
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// One round trip. `Response::Error` becomes `Err`.
    fn call(&self, req: &Request) -> Result<(Response, Vec<OwnedFd>), i32> {
        if self.is_broken() {
            return Err(libc::EIO);
        }
        let Ok(chan) = self.chan.lock() else {
            // A thread panicked between send and recv: the next reply on the
            // channel may not be ours.
            return Err(self.fail(&"channel lock poisoned"));
        };
        let dropped = std::mem::take(&mut *self.dropped.lock().unwrap_or_else(|e| e.into_inner()));
        if !dropped.is_empty() {
            // At most MAX_WALK handles per message keep it small.
            for chunk in dropped.chunks(MAX_WALK) {
                let close = Request::CloseMany { handles: chunk.to_vec() };
                if let Err(e) = chan.send(&close, &[]).and_then(|()| chan.recv::<Response>()) {
                    drop(chan);
                    return Err(self.fail(&ErrorChain(&e)));
                }
            }
        }
        let reply = chan.send(req, &[]).and_then(|()| chan.recv::<Response>());
        drop(chan);
        match reply {
            Ok((Response::Error(e), _)) if e > 0 => Err(e),
            Ok((Response::Error(e), _)) => Err(self.fail(&format!("invalid errno {e} in a reply"))),
            Ok(reply) => Ok(reply),
            Err(e) => Err(self.fail(&ErrorChain(&e))),
        }
    }

    fn unexpected(&self, op: &str, resp: &Response) -> i32 {
        self.fail(&format!("unexpected reply to {op}: {resp:?}"))
    }

    /// Marks the channel broken, logging the first cause only.
    fn fail(&self, cause: &dyn std::fmt::Display) -> i32 {
        if !self.broken.swap(true, Ordering::AcqRel) {
            tracing::error!(target: "gofer::rpc", "gofer channel broken, every further call fails with EIO: {cause}");
        }
        libc::EIO
    }

    /// Best-effort close of handles the caller will not get.
    fn forget(&self, steps: &[WalkStep]) {
        for s in steps {
            let _ = self.close(s.handle);
        }
    }
}

/// Displays an error with its sources: "a: b: c".
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cur = self.0.source();
        while let Some(e) = cur {
            write!(f, ": {e}")?;
            cur = e.source();
        }
        Ok(())
    }
}
