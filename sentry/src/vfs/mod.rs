//! The virtual file system: dentries of the gofer-served root, path
//! resolution (symlinks, `..`, cwd) done here in the sentry, and open files.
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use gofer::{Attr, Client, Handle};
use syscalls::flags::mode::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use syscalls::Errno;

pub mod anon;
pub mod cgroupfs;
pub mod devfs;
pub mod epoll;
pub mod eventfd;
pub mod fd_table;
pub mod file;
pub mod inotify;
pub mod lock;
pub mod open;
pub mod ops;
pub mod pidfd;
pub mod procfs;
pub mod signalfd;
pub mod sysfs;
pub mod timerfd;
pub mod tmpfs;
pub mod xattr;

pub use anon::AnonFile;
pub use fd_table::FdTable;
pub use file::{DirCursor, File, FileKind};

/// Longest path accepted from the guest (PATH_MAX, including the NUL).
pub const PATH_MAX: usize = 4096;
/// Most symlinks followed in one resolution.
const MAX_SYMLINKS: u32 = 40;

/// A mounted file system served by a gofer.
pub struct GoferMount {
    pub client: Arc<Client>,
    pub readonly: bool,
    /// `noexec`: nothing on it may be executed.
    pub noexec: bool,
    /// `nosuid`: exec ignores set-id bits of its files.
    pub nosuid: bool,
    /// With `--overlay=root:memory`: the tmpfs that takes every change, so
    /// the files the gofer serves are never written.
    pub upper: Option<Arc<tmpfs::Tmpfs>>,
}

impl GoferMount {
    /// Whether changes go through the gofer to the host files (a writable
    /// mount without an overlay: `--overlay=none` roots and bind mounts).
    pub fn writes_through(&self) -> bool {
        !self.readonly && self.upper.is_none()
    }
}

/// A host file mapped shared, for the memory manager: its mappings write
/// its page cache back when they go.
pub struct SharedHostFile(pub Arc<Dentry>);

impl crate::mm::MappedFile for SharedHostFile {
    fn write_back(&self) {
        self.0.write_back();
    }
}

/// A file the sentry makes up itself (devices, later /proc), as a tree.
pub trait SynthNode: Send + Sync {
    fn attr(&self) -> Attr;
    /// A child of a directory.
    fn lookup(&self, _name: &[u8]) -> Option<Arc<dyn SynthNode>> {
        None
    }
    /// A directory's entries (name and attributes), in a stable order.
    fn entries(&self) -> Vec<(Vec<u8>, Attr)> {
        Vec::new()
    }
    /// A symlink's target.
    fn readlink(&self) -> Option<Vec<u8>> {
        None
    }
    /// Opens a non-directory.
    fn open(&self, _flags: u32) -> Result<FileKind, Errno> {
        Err(Errno::ENXIO)
    }
    /// Whether lookups of its children may be cached (false for trees that
    /// change by themselves, like /proc).
    fn cacheable(&self) -> bool {
        true
    }
    /// Whether the tree is mounted read-only (writes fail with EROFS).
    fn readonly(&self) -> bool {
        false
    }
    /// For a "magic" symlink (/proc/pid/fd/N, cwd, root): what following it
    /// reaches, whatever its text says.
    fn magic(&self) -> Option<Magic> {
        None
    }
    /// The pipe a nameless pipe reached through a magic link opens.
    fn pipe(&self) -> Option<Arc<crate::pipe::Pipe>> {
        None
    }
}

/// What following a magic link reaches.
pub enum Magic {
    /// A file with a place in the tree (even if since renamed or removed).
    Dentry(Arc<Dentry>),
    /// An open file with no name: a pipe, a socket, the container's stdio.
    File(Arc<File>),
}

impl Magic {
    /// The dentry the resolution goes on from.
    fn into_dentry(self) -> Arc<Dentry> {
        match self {
            Magic::Dentry(d) => d,
            Magic::File(f) => {
                let name = b"magic".to_vec();
                let node = Arc::new(OpenFileNode(f));
                Arc::new(Dentry::new(name, None, node.attr(), Node::Synthetic(node)))
            }
        }
    }
}

/// A nameless open file reached through a magic link: opening it opens the
/// same pipe (a new end with the new access mode) or, for the container's
/// stdio, the same host file.
struct OpenFileNode(Arc<File>);

impl SynthNode for OpenFileNode {
    fn attr(&self) -> Attr {
        self.0.stat().map(|s| host_stat_like(&s)).unwrap_or_default()
    }
    fn open(&self, _flags: u32) -> Result<FileKind, Errno> {
        match &self.0.kind {
            FileKind::Host(fd) => {
                Ok(FileKind::Host(fd.try_clone().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?))
            }
            // Pipes are opened by `open_magic_pipe` (it may wait); sockets
            // and anonymous files cannot be opened by path, as on Linux.
            _ => Err(Errno::ENXIO),
        }
    }
    fn pipe(&self) -> Option<Arc<crate::pipe::Pipe>> {
        match &self.0.kind {
            FileKind::Pipe(end) => Some(end.pipe.clone()),
            _ => None,
        }
    }
}

/// A synthetic tree made read-only (`linux.readonlyPaths`, masks).
pub struct ReadOnlyNode(pub Arc<dyn SynthNode>);

impl SynthNode for ReadOnlyNode {
    fn attr(&self) -> Attr {
        self.0.attr()
    }
    fn lookup(&self, name: &[u8]) -> Option<Arc<dyn SynthNode>> {
        self.0.lookup(name).map(|n| Arc::new(ReadOnlyNode(n)) as Arc<dyn SynthNode>)
    }
    fn entries(&self) -> Vec<(Vec<u8>, Attr)> {
        self.0.entries()
    }
    fn readlink(&self) -> Option<Vec<u8>> {
        self.0.readlink()
    }
    fn open(&self, flags: u32) -> Result<FileKind, Errno> {
        let writes = flags & 3 != 0 || flags & syscalls::flags::OpenFlags::O_TRUNC.bits() != 0;
        if writes {
            return Err(Errno::EROFS);
        }
        self.0.open(flags)
    }
    fn cacheable(&self) -> bool {
        self.0.cacheable()
    }
    fn readonly(&self) -> bool {
        true
    }
}

/// Where a dentry's file lives.
pub enum Node {
    /// A file of a gofer-served mount.
    Gofer { handle: Handle, mount: Arc<GoferMount> },
    /// A file the sentry makes up.
    Synthetic(Arc<dyn SynthNode>),
    /// A file of a tmpfs: the dentry tree is the file system.
    Tmpfs(Arc<tmpfs::Inode>),
    /// An overlay whiteout: the name was removed from the upper layer's
    /// view of a gofer directory.
    Whiteout,
}

/// A name in the tree, and the file it names.
pub struct Dentry {
    /// The name and the directory holding it (changed by rename).
    place: Mutex<(Vec<u8>, Option<Arc<Dentry>>)>,
    pub attr: Mutex<Attr>,
    pub node: Node,
    children: Mutex<HashMap<Vec<u8>, Arc<Dentry>>>,
    link: Mutex<Option<Vec<u8>>>,
    /// Host fds the gofer donated for this file, by access mode, shared by
    /// every open file description: data I/O is pread/pwrite at offsets the
    /// sentry keeps, so descriptions need no host fd of their own.
    host_fds: Mutex<[Option<Arc<OwnedFd>>; 3]>,
    /// The root of a file system mounted on this directory.
    mounted: Mutex<Option<Arc<Dentry>>>,
    /// In an overlay directory: this upper entry hides a lower one of the
    /// same name (its removal must leave a whiteout).
    covers_lower: std::sync::atomic::AtomicBool,
    /// A gofer file whose host attributes changed (a change through the
    /// gofer touched it): the next `attr` asks the gofer again.
    attr_stale: std::sync::atomic::AtomicBool,
    /// The pipe of a FIFO of a gofer mount: FIFOs carry data between the
    /// sandbox's processes inside the sentry, never through the host.
    fifo: Mutex<Option<Arc<crate::pipe::Pipe>>>,
    /// A host file mapped MAP_SHARED: its data in the memory file, which
    /// every mapping shares and reads and writes go through (see
    /// `page_cache`).
    cache: Mutex<Option<Arc<tmpfs::Inode>>>,
    /// For the root of a mount: the mount it covers at the same place (a
    /// mount on a mount point), restored by umount.
    covered: Mutex<Option<Arc<Dentry>>>,
    /// The root of a mount made where nothing was (removed by umount).
    placed_mount: std::sync::atomic::AtomicBool,
    /// The root of a mount (not of the whole tree).
    /// For the root of a mount (not of the whole tree): the mount's id
    /// (0 for any other dentry).
    mount_id: std::sync::atomic::AtomicU64,
    /// A gofer directory's entries, read once (see `lower_entries`).
    listing: Mutex<Option<Arc<Vec<gofer::Dirent>>>>,
    /// A view of another dentry's gofer file (a read-only remount): the
    /// handle belongs to that one, and is not forgotten with this one.
    borrowed_handle: bool,
    /// inotify watches on this file.
    watches: inotify::Watches,
}

/// The mount id of the container's root file system.
pub const ROOT_MOUNT_ID: u64 = 2;

/// A mount id never used before in the sandbox.
pub fn new_mount_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(ROOT_MOUNT_ID + 1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Drop for Dentry {
    fn drop(&mut self) {
        // The gofer holds an fd per handle: a dentry that goes (removed,
        // replaced, or a lookup that lost a race) lets its handle go too.
        if let (Node::Gofer { handle, mount }, false) = (&self.node, self.borrowed_handle) {
            mount.client.forget_later(*handle);
        }
    }
}

impl Dentry {
    /// The root dentry of a gofer mount.
    pub fn root(mount: Arc<GoferMount>) -> Result<Arc<Dentry>, Errno> {
        let (handle, attr) = mount.client.mount().map_err(Errno::from_raw)?;
        Ok(Arc::new(Dentry::new(Vec::new(), None, attr, Node::Gofer { handle, mount })))
    }

    pub(crate) fn new(name: Vec<u8>, parent: Option<Arc<Dentry>>, attr: Attr, node: Node) -> Dentry {
        Dentry {
            place: Mutex::new((name, parent)),
            attr: Mutex::new(attr),
            node,
            children: Mutex::new(HashMap::new()),
            link: Mutex::new(None),
            host_fds: Mutex::new([None, None, None]),
            mounted: Mutex::new(None),
            covers_lower: Default::default(),
            attr_stale: Default::default(),
            fifo: Mutex::new(None),
            cache: Mutex::new(None),
            covered: Mutex::new(None),
            placed_mount: Default::default(),
            mount_id: Default::default(),
            borrowed_handle: false,
            listing: Mutex::new(None),
            watches: Default::default(),
        }
    }

    fn synthetic(name: &[u8], parent: Option<Arc<Dentry>>, node: Arc<dyn SynthNode>) -> Arc<Dentry> {
        Arc::new(Dentry::new(name.to_vec(), parent, node.attr(), Node::Synthetic(node)))
    }

    /// Mounts a synthetic file system at the directory `name` of `self`
    /// (which need not exist in the underlying file system).
    pub fn mount_synthetic(self: &Arc<Dentry>, name: &[u8], fs: Arc<dyn SynthNode>) {
        self.mount_root(name, Dentry::synthetic(name, Some(self.clone()), fs));
    }

    /// Mounts the root of a gofer mount (a bind mount) at `name` of `self`.
    pub fn mount_gofer(self: &Arc<Dentry>, name: &[u8], mount: Arc<GoferMount>) -> Result<(), Errno> {
        let root = Dentry::root(mount)?;
        root.set_place(name, self);
        self.mount_root(name, root);
        Ok(())
    }

    /// Mounts the single file a gofer serves (its root holds only `f`) at
    /// `name` of `self`, over the file there or as a new name.
    pub fn mount_gofer_file(self: &Arc<Dentry>, name: &[u8], mount: Arc<GoferMount>) -> Result<(), Errno> {
        let root = Dentry::root(mount)?;
        let (found, _) = root.walk(&[b"f"])?;
        let file = found.into_iter().next().ok_or(Errno::ENOENT)?;
        file.set_place(name, self);
        self.mount_root(name, file);
        Ok(())
    }

    /// Mounts a new tmpfs of at most `limit` bytes, root mode `mode`, at
    /// the directory `name` of `self`.
    pub fn mount_tmpfs(
        self: &Arc<Dentry>,
        name: &[u8],
        mf: Arc<crate::mm::MemoryFile>,
        limit: u64,
        mode: u32,
    ) -> Option<Arc<tmpfs::Tmpfs>> {
        // The first inode of a new file system is always within its limit.
        let fs = tmpfs::Tmpfs::new(mf, limit);
        let inode = fs.inode(S_IFDIR | (mode & 0o7777), 0, 0, tmpfs::Contents::Dir).ok()?;
        let root = Arc::new(Dentry::new(name.to_vec(), Some(self.clone()), Attr::default(), Node::Tmpfs(inode)));
        self.mount_root(name, root);
        Some(fs)
    }

    /// Mounts the file system whose root is `root` at `name` of `self`:
    /// over the directory there, or as a new entry.
    fn mount_root(self: &Arc<Dentry>, name: &[u8], root: Arc<Dentry>) {
        root.mount_id.store(new_mount_id(), std::sync::atomic::Ordering::Relaxed);
        let existing =
            self.cached(name).or_else(|| self.walk(&[name]).ok().and_then(|(found, _)| found.into_iter().next()));
        match existing {
            Some(d) if d.is_dir() && !d.placed_mount.load(std::sync::atomic::Ordering::Relaxed) => {
                let mut m = d.mounted.lock().unwrap_or_else(|e| e.into_inner());
                *root.covered.lock().unwrap_or_else(|e| e.into_inner()) = m.take();
                *m = Some(root);
            }
            prev => {
                // A file, or nothing: the mount takes the name (and hides
                // what was there until umount).
                if let Some(p) = prev {
                    *root.covered.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
                }
                root.placed_mount.store(true, std::sync::atomic::Ordering::Relaxed);
                self.children.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_vec(), root);
            }
        }
    }

    /// Removes the mount on `name` of this directory (umount): what it
    /// covered comes back. EINVAL if nothing is mounted there.
    pub fn unmount(self: &Arc<Dentry>, name: &[u8]) -> Result<(), Errno> {
        let u = self.cached(name).ok_or(Errno::EINVAL)?;
        if u.placed_mount.load(std::sync::atomic::Ordering::Relaxed) {
            let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
            match u.covered.lock().unwrap_or_else(|e| e.into_inner()).take() {
                Some(prev) => children.insert(name.to_vec(), prev),
                None => children.remove(name),
            };
            return Ok(());
        }
        let mut m = u.mounted.lock().unwrap_or_else(|e| e.into_inner());
        let top = m.take().ok_or(Errno::EINVAL)?;
        *m = top.covered.lock().unwrap_or_else(|e| e.into_inner()).take();
        Ok(())
    }

    /// Mounts the tree of `source` at `name` of this directory (a bind
    /// mount inside the sandbox).
    pub fn mount_bind(self: &Arc<Dentry>, name: &[u8], source: Arc<Dentry>) {
        self.mount_root(name, source);
    }

    /// Mounts the IPC namespace's mqueue file system, whose root is `root`,
    /// at the directory `name` of `self`.
    pub fn mount_mqueue(self: &Arc<Dentry>, name: &[u8], root: Arc<Dentry>) {
        if root.parent().is_none() {
            // Its first mount gives its files a path (/proc/pid/fd).
            root.set_place(name, self);
        }
        self.mount_root(name, root);
    }

    /// Mounts a new proc file system at `name`.
    /// Lets go of the whole tree under this root, which no process will
    /// walk again (a pod's container that ended): children point back to
    /// their directories, so the directories' links to their children and
    /// mounts are what keeps the tree (and its gofers' connections) alive.
    /// A file still open somewhere keeps its own path up to the root.
    pub fn release_tree(self: &Arc<Dentry>) {
        let mut stack = vec![self.clone()];
        while let Some(d) = stack.pop() {
            stack.extend(std::mem::take(&mut *d.children.lock().unwrap_or_else(|e| e.into_inner())).into_values());
            stack.extend(d.mounted.lock().unwrap_or_else(|e| e.into_inner()).take());
            stack.extend(d.covered.lock().unwrap_or_else(|e| e.into_inner()).take());
        }
    }

    /// Mounts a procfs showing PID namespace `ns` at `name`.
    pub fn mount_proc(self: &Arc<Dentry>, name: &[u8], kernel: &Arc<crate::kernel::Kernel>, ns: crate::kernel::PidNs) {
        let slot: procfs::KernelSlot = Default::default();
        let _ = slot.set(Arc::downgrade(kernel));
        self.mount_synthetic(name, procfs::new_procfs(slot, ns));
    }

    /// Whether this name was taken out of its directory (its directory
    /// lists another file, or nothing, under it).
    pub fn unlinked(&self) -> bool {
        let Some(dir) = self.parent() else { return false };
        dir.cached(&self.name()).is_none_or(|c| !std::ptr::eq(Arc::as_ptr(&c), self))
    }

    /// The name in its directory.
    pub fn name(&self) -> Vec<u8> {
        self.place.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// The directory holding this dentry (None for a root).
    pub fn parent(&self) -> Option<Arc<Dentry>> {
        self.place.lock().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    fn set_place(&self, name: &[u8], parent: &Arc<Dentry>) {
        *self.place.lock().unwrap_or_else(|e| e.into_inner()) = (name.to_vec(), Some(parent.clone()));
    }

    /// The root of what is mounted here, or this dentry.
    pub fn crossed_root(self: &Arc<Dentry>) -> Arc<Dentry> {
        self.clone().crossed()
    }

    /// Whether a file system is mounted with this as its root.
    fn is_mount_root(&self) -> bool {
        self.mount_id.load(std::sync::atomic::Ordering::Relaxed) != 0
    }

    /// The id (as /proc/pid/mountinfo and statx's stx_mnt_id show it) and
    /// device number of the mount this dentry is on, and whether the
    /// dentry is that mount's root.
    pub fn mount_identity(self: &Arc<Dentry>) -> (u64, u64, bool) {
        let root = self.mount();
        let id = match root.mount_id.load(std::sync::atomic::Ordering::Relaxed) {
            0 => ROOT_MOUNT_ID,
            id => id,
        };
        (id, root.attr().dev, Arc::ptr_eq(&root, self))
    }

    /// The root of the mount this dentry is on.
    fn mount(self: &Arc<Dentry>) -> Arc<Dentry> {
        let mut d = self.clone();
        while !d.is_mount_root() {
            match d.parent() {
                Some(p) => d = p,
                None => break,
            }
        }
        d
    }

    /// What following this magic link reaches (None for a plain symlink).
    pub fn magic(&self) -> Option<Magic> {
        match &self.node {
            Node::Synthetic(n) => n.magic(),
            _ => None,
        }
    }

    /// The root of what is mounted here, or this dentry.
    fn crossed(self: Arc<Dentry>) -> Arc<Dentry> {
        let m = self.mounted.lock().unwrap_or_else(|e| e.into_inner()).clone();
        m.unwrap_or(self)
    }

    /// The gofer handle and mount of a gofer-served file.
    pub fn gofer(&self) -> Option<(Handle, &Arc<GoferMount>)> {
        match &self.node {
            Node::Gofer { handle, mount } => Some((*handle, mount)),
            _ => None,
        }
    }

    /// The tmpfs inode of a tmpfs file.
    pub fn tmpfs(&self) -> Option<&Arc<tmpfs::Inode>> {
        match &self.node {
            Node::Tmpfs(i) => Some(i),
            _ => None,
        }
    }

    /// Whether the file's mount is read-only.
    pub fn readonly(&self) -> bool {
        match &self.node {
            Node::Gofer { mount, .. } => mount.readonly,
            Node::Synthetic(n) => n.readonly(),
            Node::Tmpfs(i) => i.fs.readonly.load(std::sync::atomic::Ordering::Relaxed),
            Node::Whiteout => false,
        }
    }

    /// Whether exec ignores the set-id bits of this file (a `nosuid` mount).
    pub fn nosuid(&self) -> bool {
        match &self.node {
            Node::Gofer { mount, .. } => mount.nosuid,
            Node::Tmpfs(i) => i.fs.nosuid.load(std::sync::atomic::Ordering::Relaxed),
            _ => true,
        }
    }

    /// Mounts over the file or directory `name` of this directory a
    /// read-only view of the same file (`linux.readonlyPaths`).
    pub fn remount_readonly(self: &Arc<Dentry>, name: &[u8]) -> Result<(), Errno> {
        let cur = self.child(name)?.ok_or(Errno::ENOENT)?.crossed();
        let view = match &cur.node {
            Node::Synthetic(n) => Node::Synthetic(Arc::new(ReadOnlyNode(n.clone()))),
            Node::Gofer { handle, mount } => Node::Gofer {
                handle: *handle,
                mount: Arc::new(GoferMount {
                    client: mount.client.clone(),
                    readonly: true,
                    noexec: mount.noexec,
                    nosuid: mount.nosuid,
                    upper: None,
                }),
            },
            Node::Tmpfs(i) if cur.is_dir() && cur.parent().is_some_and(|p| p.mounted_here(&cur)) => {
                // A tmpfs mount's root: the whole file system goes read-only.
                i.fs.readonly.store(true, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            _ => return Err(Errno::EINVAL),
        };
        let mut root = Dentry::new(name.to_vec(), Some(self.clone()), cur.attr(), view);
        root.borrowed_handle = matches!(root.node, Node::Gofer { .. });
        self.mount_root(name, Arc::new(root));
        Ok(())
    }

    /// Whether `d` is the root of what is mounted on a child of this one.
    fn mounted_here(&self, d: &Arc<Dentry>) -> bool {
        self.children.lock().unwrap_or_else(|e| e.into_inner()).values().any(|c| {
            c.mounted.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|m| Arc::ptr_eq(m, d))
                || Arc::ptr_eq(c, d)
        })
    }

    /// Masks `name` of this directory (`linux.maskedPaths`): an empty
    /// read-only directory over a directory, /dev/null over anything else.
    pub fn mask(self: &Arc<Dentry>, name: &[u8]) -> Result<(), Errno> {
        let cur = self.child(name)?.ok_or(Errno::ENOENT)?.crossed();
        let node = if cur.is_dir() { devfs::empty_dir() } else { devfs::null_device() };
        self.mount_root(name, Dentry::synthetic(name, Some(self.clone()), node));
        Ok(())
    }

    /// Whether this is an overlay whiteout (a removed name).
    pub fn is_whiteout(&self) -> bool {
        matches!(self.node, Node::Whiteout)
    }

    /// The overlay's upper layer, for a gofer file under one.
    pub fn overlay_upper(&self) -> Option<&Arc<tmpfs::Tmpfs>> {
        match &self.node {
            Node::Gofer { mount, .. } => mount.upper.as_ref(),
            _ => None,
        }
    }

    /// The file's attributes. A gofer file on a mount that writes through
    /// is kept current: a regular file the sentry holds a host fd of is
    /// `fstat`ed (its size and times change with every write), and one a
    /// change marked stale is asked of the gofer again.
    pub fn attr(&self) -> Attr {
        use std::sync::atomic::Ordering;
        match &self.node {
            Node::Tmpfs(i) => *i.attr(),
            Node::Gofer { handle, mount } if mount.writes_through() => {
                let mut a = self.attr.lock().unwrap_or_else(|e| e.into_inner());
                if self.attr_stale.swap(false, Ordering::AcqRel) {
                    match mount.client.stat(*handle) {
                        Ok(fresh) => *a = fresh,
                        Err(e) => tracing::debug!(target: "sentry::vfs", errno = e, "refreshing attributes"),
                    }
                } else if a.mode & S_IFMT == S_IFREG {
                    let fd = self.host_fds.lock().unwrap_or_else(|e| e.into_inner()).iter().flatten().next().cloned();
                    if let Some(fd) = fd {
                        if let Ok(s) = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(fd.as_ref())) {
                            let fresh = host_stat_to_attr(&s);
                            a.size = fresh.size;
                            a.blocks = fresh.blocks;
                            a.atime = fresh.atime;
                            a.mtime = fresh.mtime;
                            a.ctime = fresh.ctime;
                            a.mode = fresh.mode;
                            a.nlink = fresh.nlink;
                            a.uid = fresh.uid;
                            a.gid = fresh.gid;
                        }
                    }
                }
                *a
            }
            _ => *self.attr.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// The page cache of a host file, if it has been mapped shared.
    pub fn cached_pages(&self) -> Option<Arc<tmpfs::Inode>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The page cache of a host file for a shared mapping, loaded from the
    /// host file the first time. While it exists, the sentry reads the file
    /// from it and writes to both; what mappings change reaches the host
    /// file on msync, fsync and when the mapping goes (coherent inside the
    /// sandbox at once, on the host from then on).
    /// The cache lives in `fs`, whose size bounds all of them (ENOMEM past
    /// it, as for a mapping the kernel cannot back).
    pub fn page_cache(&self, fs: &Arc<tmpfs::Tmpfs>) -> Result<Arc<tmpfs::Inode>, Errno> {
        let mut slot = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let fd = self.host_fd(0)?;
        let a = self.attr();
        let nospace = |e: Errno| if e == Errno::ENOSPC { Errno::ENOMEM } else { e };
        let inode = fs.inode(a.mode, a.uid, a.gid, tmpfs::Contents::File(Default::default())).map_err(nospace)?;
        inode.fill_from_host(fd.as_ref()).map_err(nospace)?;
        *slot = Some(inode.clone());
        Ok(inode)
    }

    /// Writes a shared-mapped host file's cached data back to the host.
    pub fn write_back(&self) {
        let Some(cache) = self.cached_pages() else { return };
        let fd = match self.host_fd(1) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::debug!(target: "sentry::vfs", ?e, "no writable host fd to write a mapping back");
                return;
            }
        };
        let size = cache.attr().size;
        let mut buf = vec![0u8; crate::mm::MAX_COPY];
        let mut off = 0u64;
        while off < size {
            let want = buf.len().min((size - off) as usize);
            let Ok(n) = cache.read(off, &mut buf[..want]) else { break };
            if n == 0 {
                break;
            }
            if let Err(e) = nix::sys::uio::pwrite(fd.as_ref(), &buf[..n], off as i64) {
                tracing::warn!(target: "sentry::vfs", %e, "writing a shared mapping back to its host file");
                return;
            }
            off += n as u64;
        }
    }

    /// The pipe of a FIFO file, made at its first open.
    pub fn named_pipe(&self, events: &Arc<crate::kernel::EventQueue>) -> Result<Arc<crate::pipe::Pipe>, Errno> {
        let slot = match &self.node {
            Node::Synthetic(n) => return n.pipe().ok_or(Errno::ENXIO),
            Node::Tmpfs(i) => match &i.contents {
                tmpfs::Contents::Fifo(p) => p,
                _ => return Err(Errno::ENXIO),
            },
            _ => &self.fifo,
        };
        let mut p = slot.lock().unwrap_or_else(|e| e.into_inner());
        Ok(p.get_or_insert_with(|| crate::pipe::Pipe::named(events.clone(), self.attr().ino)).clone())
    }

    /// Notes that a gofer file's host attributes changed.
    pub fn mark_stale(&self) {
        self.attr_stale.store(true, std::sync::atomic::Ordering::Release);
        self.forget_listing();
    }

    /// Replaces a gofer file's cached attributes.
    pub fn set_attr(&self, a: Attr) {
        *self.attr.lock().unwrap_or_else(|e| e.into_inner()) = a;
    }

    pub fn file_type(&self) -> u32 {
        self.attr().mode & S_IFMT
    }

    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }

    pub fn is_regular(&self) -> bool {
        self.file_type() == S_IFREG
    }

    fn cached(&self, name: &[u8]) -> Option<Arc<Dentry>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    fn cache(&self, name: &[u8], d: Arc<Dentry>) -> Arc<Dentry> {
        self.children.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_vec()).or_insert(d).clone()
    }

    /// Looks up `names` one after another below `self` (for a gofer
    /// directory, in one round trip), caching every dentry found. Returns
    /// the dentries found, which may be fewer than the names (a missing name
    /// or a symlink ends it).
    fn walk(self: &Arc<Dentry>, names: &[&[u8]]) -> Result<(Vec<Arc<Dentry>>, bool), Errno> {
        let (handle, mount) = match &self.node {
            Node::Gofer { handle, mount } => (*handle, mount.clone()),
            // A tmpfs directory holds all its entries: not cached means none.
            Node::Tmpfs(_) | Node::Whiteout => return Ok((Vec::new(), true)),
            Node::Synthetic(n) => {
                let name = names.first().ok_or(Errno::ENOENT)?;
                return Ok(match n.lookup(name) {
                    Some(child) => {
                        let d = Dentry::synthetic(name, Some(self.clone()), child);
                        (vec![if n.cacheable() { self.cache(name, d) } else { d }], false)
                    }
                    None => (Vec::new(), true),
                });
            }
        };
        let (steps, missing) = mount.client.walk(handle, names).map_err(Errno::from_raw)?;
        let mut out = Vec::with_capacity(steps.len());
        let mut parent = self.clone();
        for (step, name) in steps.into_iter().zip(names) {
            let node = Node::Gofer { handle: step.handle, mount: mount.clone() };
            let d = parent.cache(name, Arc::new(Dentry::new(name.to_vec(), Some(parent.clone()), step.attr, node)));
            out.push(d.clone());
            parent = d;
        }
        Ok((out, missing))
    }

    /// A host fd for the file's data opened with access mode `acc`
    /// (O_RDONLY, O_WRONLY or O_RDWR), asking the gofer only the first time.
    pub fn host_fd(&self, acc: u32) -> Result<Arc<OwnedFd>, Errno> {
        let slot = (acc & 3) as usize;
        if slot > 2 {
            return Err(Errno::EINVAL);
        }
        let (handle, mount) = self.gofer().ok_or(Errno::ENODEV)?;
        let mut fds = self.host_fds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fd) = &fds[slot] {
            return Ok(fd.clone());
        }
        // A read-write fd serves reads and writes alike.
        if let Some(fd) = &fds[2] {
            return Ok(fd.clone());
        }
        let fd = Arc::new(mount.client.open(handle, acc).map_err(Errno::from_raw)?);
        fds[slot] = Some(fd.clone());
        Ok(fd)
    }

    /// Keeps `fd`, opened read-write, as this file's host fd.
    pub fn keep_host_fd(&self, fd: Arc<OwnedFd>) {
        self.host_fds.lock().unwrap_or_else(|e| e.into_inner())[2].get_or_insert(fd);
    }

    /// Directory entries `[from, from+count)` of a directory (without "."
    /// and ".."); empty at the end.
    pub fn dir_entries(&self, from: u64, count: u32) -> Result<Vec<gofer::Dirent>, Errno> {
        match &self.node {
            Node::Gofer { .. } => {
                let upper: Vec<(Vec<u8>, Arc<Dentry>)> = self
                    .children
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .filter(|(_, d)| matches!(d.node, Node::Tmpfs(_) | Node::Whiteout))
                    .map(|(n, d)| (n.clone(), d.clone()))
                    .collect();
                let lower = self.lower_entries()?;
                let skip = usize::try_from(from).unwrap_or(usize::MAX);
                if upper.is_empty() {
                    return Ok(lower.iter().skip(skip).take(count as usize).cloned().collect());
                }
                // An overlay directory: the lower entries the upper layer
                // does not hide or replace, then the upper ones.
                let mut all: Vec<gofer::Dirent> = lower.as_ref().clone();
                all.retain(|e| !upper.iter().any(|(n, _)| *n == e.name));
                let mut added: Vec<gofer::Dirent> = upper
                    .iter()
                    .filter(|(_, d)| !d.is_whiteout())
                    .map(|(n, d)| {
                        let a = d.clone().crossed().attr();
                        gofer::Dirent { name: n.clone(), ino: a.ino, kind: dtype_of(a.mode) }
                    })
                    .collect();
                added.sort_by(|a, b| a.name.cmp(&b.name));
                all.extend(added);
                Ok(all.into_iter().skip(usize::try_from(from).unwrap_or(usize::MAX)).take(count as usize).collect())
            }
            Node::Synthetic(n) => Ok(n
                .entries()
                .into_iter()
                .skip(usize::try_from(from).unwrap_or(usize::MAX))
                .take(count as usize)
                .map(|(name, a)| gofer::Dirent { name, ino: a.ino, kind: dtype_of(a.mode) })
                .collect()),
            Node::Whiteout => Err(Errno::ENOENT),
            Node::Tmpfs(_) => {
                let mut names: Vec<(Vec<u8>, Arc<Dentry>)> = self
                    .children
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(n, d)| (n.clone(), d.clone()))
                    .collect();
                names.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(names
                    .into_iter()
                    .skip(usize::try_from(from).unwrap_or(usize::MAX))
                    .take(count as usize)
                    .map(|(name, d)| {
                        let a = d.clone().crossed().attr();
                        gofer::Dirent { name, ino: a.ino, kind: dtype_of(a.mode) }
                    })
                    .collect())
            }
        }
    }

    /// A gofer directory's entries as the host has them, read in full the
    /// first time and kept (the dentry cache's coherence rule: the sandbox
    /// owns its mounts; a change made on the host after the first listing
    /// is not seen, while every change made through the sentry drops the
    /// kept listing).
    fn lower_entries(&self) -> Result<Arc<Vec<gofer::Dirent>>, Errno> {
        let Node::Gofer { handle, mount } = &self.node else { return Ok(Arc::new(Vec::new())) };
        let mut slot = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = &*slot {
            return Ok(l.clone());
        }
        let mut all = Vec::new();
        loop {
            let batch = mount.client.getdents(*handle, all.len() as u64, u32::MAX).map_err(Errno::from_raw)?;
            if batch.is_empty() {
                break;
            }
            all.extend(batch);
        }
        let all = Arc::new(all);
        *slot = Some(all.clone());
        Ok(all)
    }

    /// Forgets a gofer directory's kept listing (its entries changed).
    pub fn forget_listing(&self) {
        *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The target of a symlink.
    pub fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if !self.is_symlink() {
            return Err(Errno::EINVAL);
        }
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = &*link {
            return Ok(t.clone());
        }
        let t = match &self.node {
            Node::Gofer { handle, mount } => mount.client.readlink(*handle).map_err(Errno::from_raw)?,
            Node::Synthetic(n) => n.readlink().ok_or(Errno::EINVAL)?,
            Node::Tmpfs(i) => match &i.contents {
                tmpfs::Contents::Symlink(t) => t.clone(),
                _ => return Err(Errno::EINVAL),
            },
            Node::Whiteout => return Err(Errno::ENOENT),
        };
        *link = Some(t.clone());
        Ok(t)
    }

    /// The absolute path of this dentry below `root`.
    pub fn path_from(self: &Arc<Dentry>, root: &Arc<Dentry>) -> Vec<u8> {
        let mut parts = Vec::new();
        let mut d = self.clone();
        while !Arc::ptr_eq(&d, root) {
            let Some(p) = d.parent() else { break };
            parts.push(d.name());
            d = p;
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        out
    }
}

/// Where a resolution starts and what bounds it.
pub struct Resolver<'a> {
    pub root: &'a Arc<Dentry>,
    pub start: &'a Arc<Dentry>,
    /// openat2's RESOLVE_* restrictions.
    pub restrict: Restrict,
}

/// openat2(2)'s restrictions on a path walk.
#[derive(Clone, Copy, Debug, Default)]
pub struct Restrict {
    /// RESOLVE_BENEATH: never leave the start directory (EXDEV).
    pub beneath: bool,
    /// RESOLVE_NO_SYMLINKS: no symlink anywhere (ELOOP).
    pub no_symlinks: bool,
    /// RESOLVE_NO_MAGICLINKS: no /proc magic link (ELOOP).
    pub no_magiclinks: bool,
    /// RESOLVE_NO_XDEV: never cross a mount (EXDEV).
    pub no_xdev: bool,
    /// RESOLVE_IN_ROOT: the start directory is the root (`/` and `..`
    /// stop there).
    pub in_root: bool,
    /// RESOLVE_BENEATH or RESOLVE_IN_ROOT: magic links are refused (EXDEV).
    pub scoped: bool,
}

impl<'a> Resolver<'a> {
    /// A resolution of paths relative to `start`, `/` meaning `root`.
    pub fn new(root: &'a Arc<Dentry>, start: &'a Arc<Dentry>) -> Resolver<'a> {
        Resolver { root, start, restrict: Restrict::default() }
    }

    /// Resolves `path`; follows a final symlink when `follow` is set.
    pub fn resolve(&self, path: &[u8], follow: bool) -> Result<Arc<Dentry>, Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let mut budget = MAX_SYMLINKS;
        self.resolve_from(self.start, path, follow, &mut budget, false)
    }

    /// Resolves all but the last component; returns the parent directory and
    /// the last name (empty for "/").
    pub fn resolve_parent(&self, path: &[u8]) -> Result<(Arc<Dentry>, Vec<u8>), Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        let trimmed = trim_trailing_slashes(path);
        let (dir, name) = match trimmed.iter().rposition(|b| *b == b'/') {
            Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let parent = if dir.is_empty() { self.start.clone() } else { self.resolve(dir, true)? };
        Ok((parent, name.to_vec()))
    }

    fn resolve_from(
        &self,
        start: &Arc<Dentry>,
        path: &[u8],
        follow: bool,
        budget: &mut u32,
        symlink: bool,
    ) -> Result<Arc<Dentry>, Errno> {
        let r = self.restrict;
        let absolute = path.first() == Some(&b'/');
        if absolute && r.beneath {
            return Err(Errno::EXDEV);
        }
        // An absolute symlink jumps to the root: a mount crossing if the
        // root is on another mount.
        if absolute && symlink && r.no_xdev && !Arc::ptr_eq(&start.mount(), &self.root.mount()) {
            return Err(Errno::EXDEV);
        }
        let mut cur = if absolute { self.root.clone() } else { start.clone() };
        let must_be_dir = path.last() == Some(&b'/');
        let names: Vec<&[u8]> = path.split(|b| *b == b'/').filter(|c| !c.is_empty()).collect();
        let mut i = 0;
        while i < names.len() {
            if !cur.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let name = names[i];
            if name.len() > 255 {
                return Err(Errno::ENAMETOOLONG);
            }
            if name == b"." {
                i += 1;
                continue;
            }
            if name == b".." {
                if r.beneath && Arc::ptr_eq(&cur, self.start) {
                    return Err(Errno::EXDEV);
                }
                if !Arc::ptr_eq(&cur, self.root) {
                    if let Some(p) = cur.parent() {
                        if r.no_xdev && cur.is_mount_root() {
                            return Err(Errno::EXDEV);
                        }
                        cur = p;
                    }
                }
                i += 1;
                continue;
            }
            let child = match cur.cached(name) {
                Some(c) if c.is_whiteout() => return Err(Errno::ENOENT),
                Some(c) => c,
                None => {
                    // Walk the run of plain names ahead in one round trip.
                    let run: Vec<&[u8]> =
                        names[i..].iter().take_while(|n| **n != b"." && **n != b"..").copied().collect();
                    let (found, _missing) = cur.walk(&run)?;
                    match found.into_iter().next() {
                        Some(c) if !c.is_whiteout() => c,
                        _ => return Err(Errno::ENOENT),
                    }
                }
            };
            if r.no_xdev && (child.is_mount_root() || child.mounted.lock().unwrap_or_else(|e| e.into_inner()).is_some())
            {
                return Err(Errno::EXDEV);
            }
            let child = child.crossed();
            let last = i + 1 == names.len();
            if child.is_symlink() && (!last || follow || must_be_dir) {
                if r.no_symlinks {
                    return Err(Errno::ELOOP);
                }
                if *budget == 0 {
                    return Err(Errno::ELOOP);
                }
                *budget -= 1;
                cur = match child.magic() {
                    Some(_) if r.no_magiclinks => return Err(Errno::ELOOP),
                    Some(_) if r.scoped => return Err(Errno::EXDEV),
                    // A magic link jumps to what it names, not to its text.
                    Some(m) => m.into_dentry().crossed(),
                    None => {
                        let target = child.readlink()?;
                        self.resolve_from(&cur, &target, true, budget, true)?.crossed()
                    }
                };
            } else {
                cur = child;
            }
            i += 1;
        }
        if must_be_dir && !cur.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(cur)
    }
}

fn trim_trailing_slashes(p: &[u8]) -> &[u8] {
    let mut end = p.len();
    while end > 1 && p[end - 1] == b'/' {
        end -= 1;
    }
    &p[..end]
}

/// `struct stat` of gofer attributes.
pub fn attr_to_stat(a: &Attr) -> syscalls::structs::Stat {
    syscalls::structs::Stat {
        st_dev: a.dev,
        st_ino: a.ino,
        st_nlink: a.nlink,
        st_mode: a.mode,
        st_uid: a.uid,
        st_gid: a.gid,
        st_rdev: a.rdev,
        st_size: a.size as i64,
        st_blksize: a.blksize as i64,
        st_blocks: a.blocks as i64,
        st_atime: a.atime.0,
        st_atime_nsec: i64::from(a.atime.1),
        st_mtime: a.mtime.0,
        st_mtime_nsec: i64::from(a.mtime.1),
        st_ctime: a.ctime.0,
        st_ctime_nsec: i64::from(a.ctime.1),
        ..Default::default()
    }
}

/// Gofer attributes of a `struct stat` (the host's or the guest's: the
/// fields are named alike).
macro_rules! attr_of_stat {
    ($s:expr) => {{
        let s = $s;
        Attr {
            mode: s.st_mode,
            nlink: s.st_nlink,
            uid: s.st_uid,
            gid: s.st_gid,
            rdev: s.st_rdev,
            size: s.st_size as u64,
            blksize: s.st_blksize as u64,
            blocks: s.st_blocks as u64,
            atime: (s.st_atime, s.st_atime_nsec as u32),
            mtime: (s.st_mtime, s.st_mtime_nsec as u32),
            ctime: (s.st_ctime, s.st_ctime_nsec as u32),
            btime: None,
            ino: s.st_ino,
            dev: s.st_dev,
        }
    }};
}

/// Gofer attributes of a host `struct stat`.
pub fn host_stat_to_attr(s: &libc::stat) -> Attr {
    attr_of_stat!(s)
}

/// Gofer-style attributes of a guest `struct stat`.
pub fn host_stat_like(s: &syscalls::structs::Stat) -> Attr {
    attr_of_stat!(s)
}

/// The `d_type` of a mode.
pub fn dtype_of(mode: u32) -> u8 {
    use syscalls::flags::{dtype, mode as m};
    match mode & S_IFMT {
        m::S_IFDIR => dtype::DT_DIR,
        m::S_IFREG => dtype::DT_REG,
        m::S_IFLNK => dtype::DT_LNK,
        m::S_IFCHR => dtype::DT_CHR,
        m::S_IFBLK => dtype::DT_BLK,
        m::S_IFIFO => dtype::DT_FIFO,
        m::S_IFSOCK => dtype::DT_SOCK,
        _ => dtype::DT_UNKNOWN,
    }
}
