//! signalfd: pending signals of the reading task (and its process) in a
//! mask, read as `struct signalfd_siginfo` instead of run as handlers.
use std::sync::Mutex;

use syscalls::flags::{poll as P, signal as S};
use syscalls::structs::{Siginfo, SignalfdSiginfo};
use syscalls::Errno;
use zerocopy::IntoBytes;

use super::AnonFile;
use crate::task::Task;

pub struct SignalFd {
    mask: Mutex<u64>,
}

impl SignalFd {
    pub fn new(mask: u64) -> SignalFd {
        SignalFd { mask: Mutex::new(mask) }
    }

    pub fn mask(&self) -> u64 {
        *self.mask.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_mask(&self, mask: u64) {
        *self.mask.lock().unwrap_or_else(|e| e.into_inner()) = mask;
    }
}

/// The signalfd form of a queued siginfo.
fn ssi_of(info: &Siginfo) -> SignalfdSiginfo {
    let f0 = info.fields[0];
    let f1 = info.fields[1];
    let mut ssi = SignalfdSiginfo {
        ssi_signo: info.signo as u32,
        ssi_errno: info.errno,
        ssi_code: info.code,
        ..Default::default()
    };
    match info.signo {
        S::SIGSEGV | S::SIGBUS | S::SIGILL | S::SIGFPE | S::SIGTRAP if info.code > 0 => ssi.ssi_addr = f0,
        _ => {
            ssi.ssi_pid = f0 as u32;
            ssi.ssi_uid = (f0 >> 32) as u32;
            ssi.ssi_int = f1 as i32;
            ssi.ssi_ptr = f1;
            if info.signo == S::SIGCHLD {
                ssi.ssi_status = f1 as i32;
            }
        }
    }
    ssi
}

impl AnonFile for SignalFd {
    fn name(&self) -> &'static str {
        "signalfd"
    }

    fn read(&self, t: &Task, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        const SIZE: usize = std::mem::size_of::<SignalfdSiginfo>();
        if buf.len() < SIZE {
            return Err(Errno::EINVAL);
        }
        let mask = self.mask();
        let first = t.block_on(None, || match t.take_signal(mask) {
            Some(info) => Some(Ok(info)),
            None => nonblock.then_some(Err(Errno::EAGAIN)),
        })??;
        buf[..SIZE].copy_from_slice(ssi_of(&first).as_bytes());
        let mut n = SIZE;
        while n + SIZE <= buf.len() {
            let Some(info) = t.take_signal(mask) else { break };
            buf[n..n + SIZE].copy_from_slice(ssi_of(&info).as_bytes());
            n += SIZE;
        }
        Ok(n)
    }

    fn readiness(&self, t: &Task) -> i16 {
        if t.pending_signals() & self.mask() != 0 {
            P::POLLIN
        } else {
            0
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
