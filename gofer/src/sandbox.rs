//! Confining the gofer process to the container's rootfs.
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use libc::c_uint;
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{chdir, pivot_root};

use crate::fd;
use crate::Error;

const NONE: Option<&str> = None;

fn step<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> Error + 'a {
    move |source| Error::Sandbox { step, path: path.to_owned(), source }
}

/// Moves the calling process into a new mount namespace whose root is
/// `rootfs`, and returns an `O_PATH|O_DIRECTORY` fd of that root.
///
/// Needs `CAP_SYS_ADMIN`. Only the calling thread changes namespace, so call
/// it while the process is single-threaded (the gofer does, at start-up).
/// Every mount it makes is inside the new namespace, made private first, so
/// nothing is left in (or propagates to) the caller's namespace; the old
/// root is detached. With `readonly`, the rootfs and every mount under it
/// are remounted read-only.
pub fn enter_rootfs(rootfs: &Path, readonly: bool) -> Result<OwnedFd, Error> {
    let rootfs = rootfs.canonicalize().map_err(|source| Error::SandboxIo {
        step: "resolve the rootfs",
        path: rootfs.to_owned(),
        source,
    })?;
    let rootfs = rootfs.as_path();
    unshare(CloneFlags::CLONE_NEWNS).map_err(step("unshare the mount namespace", rootfs))?;
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .map_err(step("make the mounts private", Path::new("/")))?;
    if !rootfs.is_dir() {
        return enter_single_file(rootfs, readonly);
    }
    mount(Some(rootfs), rootfs, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE)
        .map_err(step("bind-mount the rootfs", rootfs))?;
    if readonly {
        remount_readonly(rootfs)?;
    }
    chdir(rootfs).map_err(step("enter the rootfs", rootfs))?;
    pivot_root(".", ".").map_err(step("pivot into the rootfs", rootfs))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(step("detach the old root", rootfs))?;
    chdir("/").map_err(step("enter the new root", Path::new("/")))?;
    let root = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open("/")
        .map_err(|source| Error::SandboxIo { step: "open the new root", path: PathBuf::from("/"), source })?;
    Ok(OwnedFd::from(root))
}

/// The name under which a served single file appears in its root.
pub const SINGLE_FILE: &str = "f";

/// Serving one file (a bind mount of a file): a small tmpfs, private to
/// this mount namespace, mounted over the file's directory, holds only
/// [`SINGLE_FILE`], onto which the file is bind-mounted; the tmpfs becomes
/// the root. Nothing else of the host directory is reachable.
fn enter_single_file(file: &Path, readonly: bool) -> Result<OwnedFd, Error> {
    let io = |step: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| Error::SandboxIo { step, path, source }
    };
    let parent = file.parent().unwrap_or(Path::new("/"));
    // Held across the tmpfs mount that hides the file's name.
    let held = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(file)
        .map_err(io("open the file to serve", file))?;
    let held_path = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&held)));
    mount(Some("tmpfs"), parent, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("size=16k,mode=755"))
        .map_err(step("mount a tmpfs for the file", parent))?;
    let target = parent.join(SINGLE_FILE);
    std::fs::File::create(&target).map_err(io("create the mount point", &target))?;
    mount(Some(&held_path), &target, NONE, MsFlags::MS_BIND, NONE).map_err(step("bind-mount the file", file))?;
    drop(held);
    if readonly {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mount(NONE, &target, NONE, flags, NONE).map_err(step("remount read-only", &target))?;
    }
    chdir(parent).map_err(step("enter the file's tmpfs", parent))?;
    pivot_root(".", ".").map_err(step("pivot into the file's tmpfs", parent))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(step("detach the old root", parent))?;
    chdir("/").map_err(step("enter the new root", Path::new("/")))?;
    let root = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open("/")
        .map_err(|source| Error::SandboxIo { step: "open the new root", path: PathBuf::from("/"), source })?;
    Ok(OwnedFd::from(root))
}

/// Remounts `root` and every mount below it read-only, keeping their other
/// per-mount flags.
fn remount_readonly(root: &Path) -> Result<(), Error> {
    let info_path = Path::new("/proc/self/mountinfo");
    let info = std::fs::read_to_string(info_path).map_err(|source| Error::SandboxIo {
        step: "read the mount table",
        path: info_path.to_owned(),
        source,
    })?;
    // Later lines mount on top of earlier ones at the same point; the flags
    // of the visible (last) one are what a remount by path changes.
    let mut points: Vec<(PathBuf, MsFlags)> = Vec::new();
    let mut seen = BTreeSet::new();
    for line in info.lines().rev() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(opts)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let point = PathBuf::from(OsString::from_vec(unescape(point)));
        if point.starts_with(root) && seen.insert(point.clone()) {
            points.push((point, mount_flags(opts)));
        }
    }
    // Parents first (shorter paths), though the order does not matter.
    points.reverse();
    for (point, flags) in points {
        let flags = flags | MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mount(NONE, &point, NONE, flags, NONE).map_err(step("remount read-only", &point))?;
    }
    Ok(())
}

/// Per-mount flags from a mountinfo options field ("rw,nosuid,relatime").
fn mount_flags(opts: &str) -> MsFlags {
    opts.split(',').fold(MsFlags::empty(), |acc, o| {
        acc | match o {
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "noatime" => MsFlags::MS_NOATIME,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "relatime" => MsFlags::MS_RELATIME,
            "strictatime" => MsFlags::MS_STRICTATIME,
            _ => MsFlags::empty(),
        }
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (b[i], octal) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Closes every fd from 3 up, except those in `keep` (stdin, stdout and
/// stderr are left alone).
///
/// Call it first thing in a fresh process, before anything else owns an
/// fd: any `File`/`OwnedFd` alive for a closed number would later close
/// whatever reuses it.
pub fn close_other_fds(keep: &[RawFd]) {
    let keep: BTreeSet<c_uint> = keep.iter().filter_map(|&k| c_uint::try_from(k).ok()).filter(|&k| k > 2).collect();
    let mut first: c_uint = 3;
    for k in keep.into_iter().chain([c_uint::MAX]) {
        if k > first {
            if let Err(e) = fd::close_range(first, k - 1) {
                tracing::warn!(target: "gofer::rpc", error = %e, first, last = k - 1, "close_range failed");
            }
        }
        first = k.saturating_add(1);
    }
    // `close_range(first, c_uint::MAX - 1)` leaves fd c_uint::MAX, which
    // cannot exist (RLIMIT_NOFILE is far below it).
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape(r"/a\040b\134c\011"), b"/a b\\c\t");
        assert_eq!(unescape(r"/plain\"), b"/plain\\");
    }

    fn mounts_mentioning(dir: &Path) -> Vec<String> {
        let needle = dir.to_str().unwrap();
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// What the child checks inside the rootfs; `Err` describes a failure.
    fn child_checks(rootfs: &Path, readonly: bool) -> Result<(), String> {
        // A submount, made in a namespace of the child's own, must become
        // read-only too.
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare: {e}"))?;
        mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE).map_err(|e| format!("private: {e}"))?;
        mount(Some("tmpfs"), &rootfs.join("sub"), Some("tmpfs"), MsFlags::empty(), NONE)
            .map_err(|e| format!("tmpfs: {e}"))?;
        let root = enter_rootfs(rootfs, readonly).map_err(|e| format!("enter_rootfs: {e}"))?;
        let marker = fs::read("/marker").map_err(|e| format!("read /marker: {e}"))?;
        if marker != b"cordon" {
            return Err("wrong /marker".into());
        }
        let st = nix::sys::stat::fstat(root.as_raw_fd()).map_err(|e| format!("fstat: {e}"))?;
        let want = fs::metadata("/").map_err(|e| e.to_string())?;
        if st.st_ino != std::os::unix::fs::MetadataExt::ino(&want) {
            return Err("root fd is not /".into());
        }
        if Path::new(rootfs).join("marker").exists() && rootfs != Path::new("/") {
            return Err("the host path is still visible".into());
        }
        for path in ["/new", "/sub/new"] {
            match (fs::write(path, b"x"), readonly) {
                (Err(e), true) if e.raw_os_error() == Some(libc::EROFS) => {}
                (Ok(()), false) => {}
                (r, _) => return Err(format!("write {path}: {r:?} (readonly {readonly})")),
            }
        }
        Ok(())
    }

    fn run_in_child(rootfs: &Path, readonly: bool) -> i32 {
        // SAFETY: the child only runs `child_checks` (mount syscalls and
        // plain file I/O; glibc's malloc is fork-safe) and leaves with
        // `_exit`, never returning into the test harness.
        #[allow(unsafe_code)]
        let forked = unsafe { fork() }.unwrap();
        match forked {
            ForkResult::Child => {
                let ok = std::panic::catch_unwind(|| child_checks(rootfs, readonly));
                let code = match ok {
                    Ok(Ok(())) => 0,
                    Ok(Err(msg)) => {
                        let _ = nix::unistd::write(std::io::stderr(), format!("child: {msg}\n").as_bytes());
                        1
                    }
                    Err(_) => 2,
                };
                // SAFETY: `_exit` ends this forked child at once, skipping the
                // harness's atexit handlers and destructors that belong to
                // the parent.
                #[allow(unsafe_code)]
                unsafe {
                    libc::_exit(code)
                }
            }
            ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, code) => code,
                other => panic!("child: {other:?}"),
            },
        }
    }

    #[test]
    fn enter_rootfs_in_a_child() {
        let dir = TempDir::new();
        fs::write(dir.path().join("marker"), b"cordon").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let before = mounts_mentioning(dir.path());
        assert!(before.is_empty(), "{before:?}");
        assert_eq!(run_in_child(dir.path(), true), 0, "read-only");
        assert_eq!(run_in_child(dir.path(), false), 0, "read-write");
        // Nothing was mounted in our namespace, and the read-only child
        // wrote nothing through.
        assert_eq!(mounts_mentioning(dir.path()), Vec::<String>::new());
        assert!(dir.path().join("new").exists());
        assert!(!dir.path().join("sub/new").exists());
    }

    #[test]
    fn close_other_fds_keeps_what_it_is_told() {
        // In a child, so the harness's own fds are not closed under it.
        let dir = TempDir::new();
        let a = fs::File::create(dir.path().join("a")).unwrap();
        let b = fs::File::create(dir.path().join("b")).unwrap();
        let (ka, kb) = (a.as_raw_fd(), b.as_raw_fd());
        // SAFETY: the child only makes fcntl calls and leaves with `_exit`.
        #[allow(unsafe_code)]
        let forked = unsafe { fork() }.unwrap();
        match forked {
            ForkResult::Child => {
                close_other_fds(&[ka]);
                let alive = |fd| nix::fcntl::fcntl(fd, nix::fcntl::F_GETFD).is_ok();
                let code = i32::from(!(alive(ka) && !alive(kb) && alive(2)));
                // SAFETY: as above: end the forked child at once.
                #[allow(unsafe_code)]
                unsafe {
                    libc::_exit(code)
                }
            }
            ForkResult::Parent { child } => {
                assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
            }
        }
    }
}
