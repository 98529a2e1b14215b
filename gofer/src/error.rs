//! The crate's error type.
use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

/// What can go wrong in the gofer and on its channel.
///
/// The sentry-facing [`Client`](crate::Client) does not return this: it
/// translates every failure to a host errno at the boundary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The peer closed its end of the channel (EOF or `EPIPE`).
    #[error("channel closed by the peer")]
    Closed,
    /// `socketpair(2)` failed.
    #[error("failed to create a seqpacket socket pair")]
    SocketPair {
        #[source]
        source: Errno,
    },
    /// `sendmsg(2)` failed.
    #[error("failed to send a {len}-byte message with {fds} fds")]
    Send {
        len: usize,
        fds: usize,
        #[source]
        source: Errno,
    },
    /// `recvmsg(2)` failed.
    #[error("failed to receive a message")]
    Recv {
        #[source]
        source: Errno,
    },
    /// The message or its fds did not fit the receive buffers.
    #[error("received message truncated ({bytes} bytes, data cut: {data}, fds cut: {fds})")]
    Truncated { bytes: usize, data: bool, fds: bool },
    /// A message to send does not fit in one datagram.
    #[error("message of at least {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    /// More fds than one message may carry.
    #[error("{count} fds exceed the {max} fds one message may carry")]
    TooManyFds { count: usize, max: usize },
    /// A message could not be encoded.
    #[error("failed to encode a message")]
    Encode {
        #[source]
        source: bincode::Error,
    },
    /// A received message could not be decoded.
    #[error("failed to decode a {len}-byte message")]
    Decode {
        len: usize,
        #[source]
        source: bincode::Error,
    },
    /// A step of entering the rootfs (mount namespace, mounts, pivot) failed.
    #[error("failed to {step} ({path})")]
    Sandbox {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: Errno,
    },
    /// A file operation while entering the rootfs failed.
    #[error("failed to {step} ({path})")]
    SandboxIo {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
