//! Isolation of the sentry process itself (DESIGN.md §1): fresh mount, IPC,
//! UTS and network namespaces and an empty, read-only root, so that once the
//! guest runs the sentry can reach no host path.
use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Where the empty root is mounted before pivoting into it (inside the new
/// mount namespace only).
const EMPTY_ROOT: &str = "/tmp";

/// Moves this process into new namespaces and pivots into an empty root.
pub fn isolate_sentry() -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWNET)
        .context("unsharing the sentry's namespaces")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("making mounts private")?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("cordon-sentry"), EMPTY_ROOT, Some("tmpfs"), flags, Some("size=4k,nr_inodes=1,mode=0555"))
        .context("mounting the sentry's empty root")?;
    std::env::set_current_dir(EMPTY_ROOT).context("entering the empty root")?;
    nix::unistd::pivot_root(".", ".").context("pivot_root into the empty root")?;
    umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
    std::env::set_current_dir("/")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags, None::<&str>)
        .context("making the sentry's root read-only")?;
    Ok(())
}
