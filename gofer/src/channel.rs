//! One end of a gofer connection: a `SOCK_SEQPACKET` unix socket carrying
//! one bincode message per datagram, with fds beside it (`SCM_RIGHTS`).
//!
//! Encoding: bincode's `DefaultOptions` (varint integers, little endian,
//! trailing bytes rejected) limited to [`MAX_MESSAGE`] bytes. Both ends use
//! this module, so the encoding is a private detail of the crate.
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Mutex, PoisonError};

use bincode::Options;
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::fd;
use crate::protocol::MAX_MESSAGE;

/// Most fds one gofer message carries (the protocol uses at most one).
pub(crate) const MAX_FDS: usize = 8;
use crate::Error;

/// The send buffer asked of the kernel. Linux caps the request at
/// `net.core.wmem_max` and doubles it; the default cap (208 KiB) doubled
/// still leaves room for a [`MAX_MESSAGE`] datagram, which the default
/// buffer (208 KiB) would refuse with `EMSGSIZE`.
const SEND_BUFFER: usize = 2 * MAX_MESSAGE;

fn codec() -> impl Options {
    bincode::DefaultOptions::new().with_limit(MAX_MESSAGE as u64)
}

/// One end of a gofer connection.
///
/// `send` and `recv` take `&self`; a datagram is sent and received whole,
/// so concurrent callers never interleave bytes, but pairing requests with
/// replies is the caller's business (the [`Client`](crate::Client) keeps one
/// request in flight).
#[derive(Debug)]
pub struct Channel {
    sock: OwnedFd,
    /// Scratch buffers, reused across messages to avoid a 256 KiB
    /// allocation per datagram (the receive buffer made on first use).
    send_buf: Mutex<Vec<u8>>,
    recv_buf: Mutex<Option<fd::MessageBuffer>>,
}

impl Channel {
    /// Wraps a connected `SOCK_SEQPACKET` unix socket (which should be
    /// `O_CLOEXEC`). Raises its send buffer so that a [`MAX_MESSAGE`]
    /// datagram fits.
    pub fn new(sock: OwnedFd) -> Self {
        if let Err(e) = socket::setsockopt(&sock, socket::sockopt::SndBuf, &SEND_BUFFER) {
            tracing::warn!(target: "gofer::rpc", error = %e, "cannot raise the channel's send buffer");
        }
        Channel { sock, send_buf: Mutex::new(Vec::new()), recv_buf: Mutex::new(None) }
    }

    /// A connected pair, both ends `O_CLOEXEC`.
    pub fn pair() -> Result<(Channel, Channel), Error> {
        let (a, b) = socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|source| Error::SocketPair { source })?;
        Ok((Channel::new(a), Channel::new(b)))
    }

    /// Sends `msg` as one datagram with `fds` beside it (duplicated into
    /// the peer by the kernel; ours stay open).
    pub fn send<T: Serialize>(&self, msg: &T, fds: &[BorrowedFd<'_>]) -> Result<(), Error> {
        if fds.len() > MAX_FDS {
            return Err(Error::TooManyFds { count: fds.len(), max: MAX_FDS });
        }
        let mut buf = self.send_buf.lock().unwrap_or_else(PoisonError::into_inner);
        buf.clear();
        codec().serialize_into(&mut *buf, msg).map_err(|source| match *source {
            bincode::ErrorKind::SizeLimit => Error::TooLarge { len: MAX_MESSAGE + 1, max: MAX_MESSAGE },
            _ => Error::Encode { source },
        })?;
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let rights = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
        let iov = [IoSlice::new(&buf)];
        loop {
            match socket::sendmsg::<()>(self.sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE | Errno::ECONNRESET) => return Err(Error::Closed),
                Err(source) => return Err(Error::Send { len: buf.len(), fds: raw.len(), source }),
            }
        }
    }

    /// Receives one datagram and the fds that came with it (all
    /// `O_CLOEXEC`). `Error::Closed` when the peer has gone. A truncated
    /// datagram or fd list is an error (and its fds are closed).
    pub fn recv<T: DeserializeOwned>(&self) -> Result<(T, Vec<OwnedFd>), Error> {
        let mut slot = self.recv_buf.lock().unwrap_or_else(PoisonError::into_inner);
        let buf = match &mut *slot {
            Some(buf) => buf,
            None => slot.insert(fd::MessageBuffer::new(MAX_MESSAGE).map_err(|source| Error::Recv { source })?),
        };
        let got = match fd::recv_with_fds(self.sock.as_fd(), buf) {
            Ok(got) => got,
            Err(Errno::ECONNRESET) => return Err(Error::Closed),
            Err(source) => return Err(Error::Recv { source }),
        };
        let data = got.flags & libc::MSG_TRUNC != 0;
        let fds = got.flags & libc::MSG_CTRUNC != 0 || got.fds.len() > MAX_FDS;
        if data || fds {
            return Err(Error::Truncated { bytes: got.bytes, data, fds });
        }
        if got.bytes == 0 {
            // A seqpacket socket reads 0 bytes at EOF; our messages are never
            // empty.
            return Err(Error::Closed);
        }
        let msg = codec().deserialize(&buf[..got.bytes]).map_err(|source| Error::Decode { len: got.bytes, source })?;
        Ok((msg, got.fds))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};

    use super::*;
    use crate::protocol::{Dirent, Request, Response};

    #[test]
    fn big_message_fits() {
        let (a, b) = Channel::pair().unwrap();
        // A reply close to the limit must go through in one datagram.
        let entries: Vec<Dirent> = (0..900)
            .map(|i| Dirent { name: format!("{i:0>250}").into_bytes(), ino: u64::MAX - i, kind: libc::DT_REG })
            .collect();
        let resp = Response::Dirents(entries);
        let t = std::thread::spawn(move || {
            a.send(&resp, &[]).unwrap();
            resp
        });
        let (got, fds): (Response, _) = b.recv().unwrap();
        assert!(fds.is_empty());
        assert_eq!(got, t.join().unwrap());
    }

    #[test]
    fn too_large_is_refused() {
        let (a, _b) = Channel::pair().unwrap();
        let resp = Response::Link(vec![b'x'; MAX_MESSAGE + 1]);
        assert!(matches!(a.send(&resp, &[]), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn eof_is_closed() {
        let (a, b) = Channel::pair().unwrap();
        drop(a);
        assert!(matches!(b.recv::<Request>(), Err(Error::Closed)));
        assert!(matches!(b.send(&Request::Mount, &[]), Err(Error::Closed)));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let (a, b) = Channel::pair().unwrap();
        a.send(&u64::MAX, &[]).unwrap();
        assert!(matches!(b.recv::<Request>(), Err(Error::Decode { .. })));
    }

    #[test]
    fn fd_travels_cloexec() {
        let (a, b) = Channel::pair().unwrap();
        let dir = crate::testutil::TempDir::new();
        let path = dir.path().join("f");
        let mut f = std::fs::File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        f.write_all(b"hello").unwrap();
        a.send(&Response::Opened, &[f.as_fd()]).unwrap();
        let (resp, mut fds): (Response, _) = b.recv().unwrap();
        assert_eq!(resp, Response::Opened);
        assert_eq!(fds.len(), 1);
        let got = fds.pop().unwrap();
        let flags = nix::fcntl::fcntl(got.as_raw_fd(), nix::fcntl::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
        let mut got = std::fs::File::from(got);
        got.rewind().unwrap();
        let mut s = String::new();
        got.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
    }

    #[test]
    fn too_many_fds_is_truncation() {
        let (a, b) = Channel::pair().unwrap();
        let dir = crate::testutil::TempDir::new();
        let f = std::fs::File::open(dir.path()).unwrap();
        let many: Vec<BorrowedFd<'_>> = (0..MAX_FDS).map(|_| f.as_fd()).collect();
        assert!(matches!(
            a.send(&Request::Mount, &[many.as_slice(), &[f.as_fd()]].concat()),
            Err(Error::TooManyFds { .. })
        ));
        // A raw sender that exceeds our control buffer: the receiver reports
        // truncation instead of silently losing fds.
        let raw: Vec<RawFd> = (0..MAX_FDS * 4).map(|_| f.as_raw_fd()).collect();
        let payload = codec().serialize(&Request::Mount).unwrap();
        socket::sendmsg::<()>(
            a.as_fd().as_raw_fd(),
            &[IoSlice::new(&payload)],
            &[ControlMessage::ScmRights(&raw)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        assert!(matches!(b.recv::<Request>(), Err(Error::Truncated { fds: true, .. })));
    }
}
