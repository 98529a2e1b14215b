//! A container's file systems: its root from its gofer (under an overlay
//! in memory when writable), the sentry's /dev, and the spec's mounts, with
//! the mount table its processes see. The sandbox's first container gets
//! them at boot; each further container of a pod gets its own when it is
//! added (through the control socket), in the same kernel.
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use crate::kernel::{self, ContainerFs, Kernel};
use crate::{config, vfs, BootError, DEFAULT_TMPFS_SIZE};

impl ContainerFs {
    /// Builds the file systems of a container whose root the gofer at the
    /// other end of `gofer` serves, with `cfg`'s mounts; `gofer_fd` gives
    /// the socket of each bind mount's gofer by the number the mount names.
    pub fn build(
        kernel: &Arc<Kernel>,
        cfg: &config::BootConfig,
        pidns: kernel::PidNs,
        gofer: OwnedFd,
        gofer_fd: &mut dyn FnMut(i32) -> Option<OwnedFd>,
    ) -> Result<ContainerFs, BootError> {
        let memory = &kernel.memory;
        // A writable root gets an overlay in memory (the gofer's files are
        // never written); a read-only root stays read-only, as runc's.
        let upper = (!cfg.root_readonly && cfg.root_overlay)
            .then(|| vfs::tmpfs::Tmpfs::new(memory.clone(), DEFAULT_TMPFS_SIZE));
        let root_mount = Arc::new(vfs::GoferMount {
            client: Arc::new(gofer::Client::new(gofer::Channel::new(gofer))),
            readonly: cfg.root_readonly,
            noexec: false,
            nosuid: false,
            upper,
        });
        let root = vfs::Dentry::root(root_mount).map_err(BootError::Mount)?;
        root.mount_synthetic(b"dev", vfs::devfs::new_devfs(kernel.events.clone()));
        let slot: vfs::procfs::KernelSlot = Default::default();
        let _ = slot.set(Arc::downgrade(kernel));
        let flags = (cfg.root_readonly, cfg.root_overlay);
        let mounts = mount_filesystems(&root, kernel, (&slot, pidns), &cfg.mounts, flags, gofer_fd);
        restrict_paths(&root, &cfg.masked_paths, &cfg.readonly_paths);
        Ok(ContainerFs { root, mounts: Arc::new(Mutex::new(mounts)) })
    }
}

/// Size of /dev/shm when the spec mounts none (as Docker's default).
const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// The sandbox's own file systems: /dev/shm (a tmpfs, always), then the
/// spec's mounts in order. tmpfs, proc, sysfs, cgroup, mqueue and bind
/// mounts are served; /dev is the sentry's devfs whatever the spec says;
/// other types are logged and skipped. Returns the mount table.
fn mount_filesystems(
    root: &Arc<vfs::Dentry>,
    k: &Arc<Kernel>,
    (slot, pidns): (&vfs::procfs::KernelSlot, kernel::PidNs),
    mounts: &[config::MountConfig],
    (readonly, overlay): (bool, bool),
    gofer_fd: &mut dyn FnMut(i32) -> Option<OwnedFd>,
) -> Vec<kernel::MountInfo> {
    let info = |path: &str, fstype: &str, options: &str| kernel::MountInfo {
        id: 0,
        parent: 0,
        dev: 0,
        path: path.into(),
        fstype: fstype.into(),
        source: if fstype == "9p" || fstype == "overlay" { "none".into() } else { fstype.into() },
        options: options.into(),
    };
    let mut table = vec![
        match (readonly, overlay) {
            (true, _) => info("/", "9p", "ro"),
            (false, true) => info("/", "overlay", "rw"),
            (false, false) => info("/", "9p", "rw"),
        },
        info("/dev", "tmpfs", "rw,nosuid,mode=755"),
    ];
    let resolve = |path: &str| vfs::Resolver::new(root, root).resolve_parent(path.as_bytes());
    if let Ok((dev, _)) = resolve("/dev/shm") {
        if let Some(fs) = dev.mount_tmpfs(b"shm", k.memory.clone(), DEFAULT_SHM_SIZE, 0o1777) {
            fs.nosuid.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        table.push(info("/dev/shm", "tmpfs", "rw,nosuid,nodev,size=65536k,mode=1777"));
    }
    for m in mounts {
        // /proc/mounts names a mount by the spec's source, as Linux does.
        let info = |path: &str, fstype: &str, options: &str| {
            let mut e = info(path, fstype, options);
            if !m.source.is_empty() && fstype != "9p" {
                e.source = m.source.clone();
            }
            e
        };
        // A single file's mount point: its directory, and a name there.
        let file_target = || match resolve(&m.destination) {
            Ok((dir, name)) if dir.is_dir() && !name.is_empty() && name != b"/" => Some((dir.crossed_root(), name)),
            _ => {
                tracing::warn!(target: "sentry::vfs", "bind mount of a file at {}: no such directory", m.destination);
                None
            }
        };
        let target = || match resolve(&m.destination) {
            Ok((dir, name)) if dir.is_dir() && !name.is_empty() && name != b"/" => Some((dir, name)),
            _ => {
                tracing::warn!(target: "sentry::vfs", "{} mount at {}: no such directory", m.kind, m.destination);
                None
            }
        };
        match m.kind.as_str() {
            "tmpfs" if m.destination == "/dev" => {}
            "tmpfs" => {
                let (limit, mode) = vfs::tmpfs::parse_options(&m.options, DEFAULT_TMPFS_SIZE, 0o1777);
                if let Some((dir, name)) = target() {
                    let fs = dir.mount_tmpfs(&name, k.memory.clone(), limit, mode);
                    let has = |o: &str| m.options.iter().any(|x| x == o);
                    if let Some(fs) = fs {
                        fs.nosuid.store(has("nosuid"), std::sync::atomic::Ordering::Relaxed);
                        fs.readonly.store(has("ro"), std::sync::atomic::Ordering::Relaxed);
                    }
                    let opts = format!("rw,size={}k,mode={mode:o}", limit / 1024);
                    table.retain(|e| e.path != m.destination);
                    table.push(info(&m.destination, "tmpfs", &opts));
                }
            }
            "proc" => {
                if let Some((dir, name)) = target() {
                    dir.mount_synthetic(&name, vfs::procfs::new_procfs(slot.clone(), pidns));
                    table.push(info(&m.destination, "proc", "rw,nosuid,nodev,noexec,relatime"));
                }
            }
            // devfs always serves /dev/pts; the spec's devpts mount is
            // shown in the table as runc's is.
            "devpts" if m.destination == "/dev/pts" => {
                table.push(info(&m.destination, "devpts", "rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666"));
            }
            "sysfs" => {
                if let Some((dir, name)) = target() {
                    dir.mount_synthetic(&name, vfs::sysfs::new_sysfs(k.ncpus));
                    table.push(info(&m.destination, "sysfs", "ro,nosuid,nodev,noexec,relatime"));
                }
            }
            // The IPC namespace's queues (every mqueue mount shows the same
            // ones, as in one IPC namespace on Linux).
            "mqueue" => {
                if let Some((dir, name)) = target() {
                    dir.mount_mqueue(&name, k.mqueues.root.clone());
                    table.push(info(&m.destination, "mqueue", "rw,nosuid,nodev,noexec,relatime"));
                }
            }
            // A read-only view of the container's cgroup (v2, as runc
            // mounts it on a cgroup v2 host whichever type the spec says).
            "cgroup" | "cgroup2" => {
                if let Some((dir, name)) = target() {
                    dir.mount_synthetic(&name, vfs::cgroupfs::new_cgroupfs(slot.clone(), pidns));
                    table.push(info(&m.destination, "cgroup2", "ro,nosuid,nodev,noexec,relatime"));
                }
            }
            "bind" if m.gofer_fd.is_some() => {
                let Some(fd) = m.gofer_fd.and_then(&mut *gofer_fd) else { continue };
                let has = |o: &str| m.options.iter().any(|x| x == o);
                let mount = Arc::new(vfs::GoferMount {
                    client: Arc::new(gofer::Client::new(gofer::Channel::new(fd))),
                    readonly: has("ro"),
                    noexec: has("noexec"),
                    nosuid: has("nosuid"),
                    upper: None,
                });
                if let Some((dir, name)) = if m.gofer_file { file_target() } else { target() } {
                    let mounted =
                        if m.gofer_file { dir.mount_gofer_file(&name, mount) } else { dir.mount_gofer(&name, mount) };
                    match mounted {
                        Ok(()) => table.push(info(&m.destination, "9p", if has("ro") { "ro" } else { "rw" })),
                        Err(e) => tracing::warn!(target: "sentry::vfs", "bind mount at {}: {e:?}", m.destination),
                    }
                }
            }
            kind => tracing::info!(target: "sentry::vfs", "mount of {kind} at {} not served yet", m.destination),
        }
    }
    for e in &mut table {
        e.find_ids(root);
        if e.id == e.parent {
            // devpts is served inside devfs, not as a mount of its own.
            e.id = vfs::new_mount_id();
        }
    }
    table
}

/// `linux.maskedPaths` and `linux.readonlyPaths`, after the mounts (as
/// runc applies them); paths that do not exist are skipped, as runc does.
fn restrict_paths(root: &Arc<vfs::Dentry>, masked: &[String], readonly: &[String]) {
    let resolve = |path: &str| vfs::Resolver::new(root, root).resolve_parent(path.as_bytes());
    for p in masked {
        match resolve(p).and_then(|(dir, name)| dir.crossed_root().mask(&name)) {
            Ok(()) => {}
            Err(e) if e == ::syscalls::Errno::ENOENT => {}
            Err(e) => tracing::warn!(target: "sentry::vfs", "masking {p}: {e:?}"),
        }
    }
    for p in readonly {
        match resolve(p).and_then(|(dir, name)| dir.crossed_root().remount_readonly(&name)) {
            Ok(()) => {}
            Err(e) if e == ::syscalls::Errno::ENOENT => {}
            Err(e) => tracing::warn!(target: "sentry::vfs", "making {p} read-only: {e:?}"),
        }
    }
}
