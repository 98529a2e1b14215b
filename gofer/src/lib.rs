//! Cordon's gofer: the file server that alone opens host files, and the
//! sentry's client for it (DESIGN.md §1, §5).
//!
//! - [`protocol`]: the messages.
//! - [`Channel`]: one end of a `SOCK_SEQPACKET` socketpair carrying them,
//!   with fds passed by `SCM_RIGHTS`.
//! - [`Client`]: what the sentry calls.
//! - [`Server`]: the request loop over one mount.
//! - [`sandbox`]: confining the gofer process to the rootfs.
#![deny(unsafe_code)]

pub mod channel;
pub mod client;
mod error;
// Raw fd ownership (adopting SCM_RIGHTS fds, wrapping openat's result,
// close_range) has no safe wrapper in nix 0.29; this module is the crate's
// only unsafe code.
#[allow(unsafe_code)]
pub mod fd;
pub mod protocol;
pub mod sandbox;
pub mod server;

use std::os::fd::OwnedFd;
use std::path::Path;

pub use channel::Channel;
pub use client::Client;
pub use error::Error;
pub use protocol::{Attr, Dirent, FsStat, Handle, Owner, Request, Response, SetAttr, WalkStep};
pub use server::Server;

/// The gofer process's main: confines itself to `rootfs` (see
/// [`sandbox::enter_rootfs`]) and serves that mount on `sock` until the
/// sentry closes its end.
pub fn run_gofer(rootfs: &Path, readonly: bool, sock: OwnedFd) -> Result<(), Error> {
    let root = sandbox::enter_rootfs(rootfs, readonly)?;
    // Modes of new files are exactly what the sentry asks (it applied the
    // guest's umask).
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    // Every handle is an open fd: allow as many as the hard limit does.
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let chan = Channel::new(sock);
    tracing::debug!(target: "gofer::rpc", rootfs = %rootfs.display(), readonly, "gofer serving");
    fd::release_free_heap();
    Server::new(root, readonly).serve(&chan)
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new() -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("gofer-test-{}-{n}", std::process::id()));
            std::fs::create_dir(&path).expect("create temp dir");
            TempDir(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
