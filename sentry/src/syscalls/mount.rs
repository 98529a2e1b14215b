//! mount(2) and umount2(2) inside the sandbox: the guest's root (with
//! CAP_SYS_ADMIN) may mount tmpfs, proc, sysfs and mqueue, bind-mount its own
//! trees, remount read-only and unmount; all of it lives in the sentry's
//! mount tree, and the host never sees it.
use syscalls::flags::cap::CAP_SYS_ADMIN;
use syscalls::flags::mount::*;
use syscalls::flags::AT_FDCWD;
use syscalls::Errno;

use super::SysResult;
use crate::kernel::MountInfo;
use crate::task::Task;
use crate::vfs::{tmpfs, Resolver};

/// The directory holding `path`'s last name, and the name.
fn place(t: &Task, path: &[u8]) -> Result<(std::sync::Arc<crate::vfs::Dentry>, Vec<u8>), Errno> {
    let start = t.start_dir(AT_FDCWD, path)?;
    let root = t.fs().root.clone();
    let (dir, name) = Resolver::new(&root, &start).resolve_parent(path)?;
    if name.is_empty() || name == b"/" || name == b"." || name == b".." {
        return Err(Errno::EBUSY);
    }
    Ok((dir.crossed_root(), name))
}

/// The absolute path of `name` in `dir`, as the mount table shows it.
fn path_of(t: &Task, dir: &std::sync::Arc<crate::vfs::Dentry>, name: &[u8]) -> String {
    let root = t.fs().root.clone();
    let mut p = dir.path_from(&root);
    if p != b"/" {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    String::from_utf8_lossy(&p).into_owned()
}

fn record(t: &Task, path: &str, fstype: &str, source: &str, options: &str) {
    let entry = MountInfo::at(&t.fs().root, path, fstype, source, options);
    let table = t.fs().mounts.clone();
    table.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
}

pub fn sys_mount(t: &mut Task, source: u64, target: u64, fstype: u64, flags: u64, data: u64) -> SysResult {
    if !t.creds.capable(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let tp = t.read_path(target)?;
    let target_d = t.lookup(AT_FDCWD, &tp, true)?;
    let root = t.fs().root.clone();
    let (tdir, tname) = place(t, &tp)?;
    let abs = path_of(t, &tdir, &tname);
    let propagation = MS_PRIVATE | MS_SHARED | MS_SLAVE | MS_UNBINDABLE;
    if flags & propagation != 0 {
        // A mount namespace per container and no peers: propagation has
        // nothing to do.
        return Ok(0);
    }
    if flags & MS_REMOUNT != 0 {
        if flags & MS_RDONLY != 0 {
            tdir.remount_readonly(&tname)?;
        }
        return Ok(0);
    }
    if flags & MS_MOVE != 0 {
        return Err(Errno::EINVAL);
    }
    let table = t.fs().mounts.clone();
    if table.lock().unwrap_or_else(|e| e.into_inner()).len() >= t.kernel.max_mounts {
        // fs.mount-max: each mount costs the sentry memory.
        return Err(Errno::ENOSPC);
    }
    if flags & MS_BIND != 0 {
        let sp = t.read_path(source)?;
        let src = t.lookup(AT_FDCWD, &sp, true)?;
        if src.is_dir() != target_d.is_dir() {
            return Err(if src.is_dir() { Errno::ENOTDIR } else { Errno::EISDIR });
        }
        let src_path = String::from_utf8_lossy(&src.path_from(&root)).into_owned();
        tdir.mount_bind(&tname, src);
        record(t, &abs, "none", &src_path, "rw,bind");
        return Ok(0);
    }
    if !target_d.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let kind = t.mm.copy_in_cstr(fstype, 64)?;
    let options = if data == 0 { Vec::new() } else { t.mm.copy_in_cstr(data, 4096)? };
    let options: Vec<String> =
        String::from_utf8_lossy(&options).split(',').filter(|o| !o.is_empty()).map(str::to_owned).collect();
    let src_name = if source == 0 {
        String::new()
    } else {
        String::from_utf8_lossy(&t.mm.copy_in_cstr(source, 4096)?).into_owned()
    };
    let (dir, name) = (tdir, tname);
    match &kind[..] {
        b"tmpfs" => {
            let (limit, mode) = tmpfs::parse_options(&options, crate::DEFAULT_TMPFS_SIZE, 0o1777);
            if let Some(fs) = dir.mount_tmpfs(&name, t.kernel.memory.clone(), limit, mode) {
                fs.readonly.store(flags & MS_RDONLY != 0, std::sync::atomic::Ordering::Relaxed);
                fs.nosuid.store(flags & MS_NOSUID != 0, std::sync::atomic::Ordering::Relaxed);
            }
            let opts =
                format!("{},size={}k,mode={mode:o}", if flags & MS_RDONLY != 0 { "ro" } else { "rw" }, limit / 1024);
            record(t, &abs, "tmpfs", &src_name, &opts);
        }
        b"proc" => {
            dir.mount_proc(&name, &t.kernel, t.pidns());
            record(t, &abs, "proc", &src_name, "rw,nosuid,nodev,noexec,relatime");
        }
        b"sysfs" => {
            dir.mount_synthetic(&name, crate::vfs::sysfs::new_sysfs(t.kernel.ncpus));
            record(t, &abs, "sysfs", &src_name, "ro,nosuid,nodev,noexec,relatime");
        }
        b"mqueue" => {
            dir.mount_mqueue(&name, t.kernel.mqueues.root.clone());
            record(t, &abs, "mqueue", &src_name, "rw,relatime");
        }
        _ => {
            tracing::info!(target: "sentry::syscall", "mount of {:?} in the sandbox: ENODEV", String::from_utf8_lossy(&kind));
            return Err(Errno::ENODEV);
        }
    }
    Ok(0)
}

pub fn sys_umount2(t: &mut Task, target: u64, flags: u32) -> SysResult {
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0
        || (flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0)
    {
        return Err(Errno::EINVAL);
    }
    if !t.creds.capable(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let tp = t.read_path(target)?;
    let d = t.lookup(AT_FDCWD, &tp, flags & UMOUNT_NOFOLLOW == 0)?;
    let root = t.fs().root.clone();
    if std::sync::Arc::ptr_eq(&d, &root) {
        return Err(Errno::EINVAL);
    }
    let (dir, name) = place(t, &tp).map_err(|_| Errno::EINVAL)?;
    let abs = path_of(t, &dir, &name);
    dir.unmount(&name)?;
    let table = t.fs().mounts.clone();
    let mut table = table.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = table.iter().rposition(|m| m.path == abs) {
        table.remove(i);
    }
    Ok(0)
}
