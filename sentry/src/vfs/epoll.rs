//! epoll: an interest list of (fd, file) pairs, polled for readiness when
//! the guest waits. Level-triggered entries report while ready;
//! edge-triggered ones report again only after their file changed (its
//! change count moved, or new readiness bits appeared); one-shot entries
//! are disarmed once reported until EPOLL_CTL_MOD re-arms them.
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use syscalls::flags::{epoll as E, poll as P};
use syscalls::structs::EpollEvent;
use syscalls::Errno;

use super::{AnonFile, File};
use crate::task::Task;

struct Interest {
    fd: i32,
    /// The open file description: the entry goes when it is closed (not
    /// merely when this fd is, as on Linux).
    file: Weak<File>,
    events: u32,
    data: u64,
    armed: bool,
    /// For edge-triggered entries: what was last reported.
    last_seq: Option<u64>,
    last_ready: u32,
}

#[derive(Default)]
pub struct Epoll {
    interest: Mutex<Vec<Interest>>,
}

/// Events that are always reported when present.
const ALWAYS: u32 = E::EPOLLERR | E::EPOLLHUP;

/// The epoll bits of a file's poll readiness.
fn epoll_bits(r: i16) -> u32 {
    let mut e = u32::from(r as u16) & (E::EPOLLIN | E::EPOLLPRI | E::EPOLLOUT | E::EPOLLERR | E::EPOLLHUP);
    if r & P::POLLIN != 0 {
        e |= E::EPOLLRDNORM;
    }
    if r & P::POLLOUT != 0 {
        e |= E::EPOLLWRNORM;
    }
    e
}

impl Epoll {
    fn list(&self) -> MutexGuard<'_, Vec<Interest>> {
        self.interest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// epoll_ctl.
    pub fn ctl(&self, op: i32, fd: i32, file: &Arc<File>, ev: Option<EpollEvent>) -> Result<(), Errno> {
        let mut list = self.list();
        list.retain(|i| i.file.strong_count() > 0);
        let pos = list.iter().position(|i| i.fd == fd && std::ptr::eq(i.file.as_ptr(), Arc::as_ptr(file)));
        match op {
            E::EPOLL_CTL_ADD => {
                let ev = ev.ok_or(Errno::EFAULT)?;
                if pos.is_some() {
                    return Err(Errno::EEXIST);
                }
                list.push(Interest {
                    fd,
                    file: Arc::downgrade(file),
                    events: ev.events,
                    data: ev.data,
                    armed: true,
                    last_seq: None,
                    last_ready: 0,
                });
            }
            E::EPOLL_CTL_MOD => {
                let ev = ev.ok_or(Errno::EFAULT)?;
                let i = pos.ok_or(Errno::ENOENT)?;
                let it = &mut list[i];
                if ev.events & E::EPOLLEXCLUSIVE != 0 || it.events & E::EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                it.events = ev.events;
                it.data = ev.data;
                it.armed = true;
                it.last_seq = None;
                it.last_ready = 0;
            }
            E::EPOLL_CTL_DEL => {
                list.remove(pos.ok_or(Errno::ENOENT)?);
            }
            _ => return Err(Errno::EINVAL),
        }
        Ok(())
    }

    /// Whether a host fd (which cannot wake the event queue) is watched.
    pub fn has_host_files(&self) -> bool {
        self.list().iter().any(|i| i.file.upgrade().is_some_and(|f| matches!(f.kind, super::FileKind::Host(_))))
    }

    /// Up to `max` ready events. With `consume`, edge-triggered and
    /// one-shot entries are updated as reported (epoll_wait); without, it
    /// only looks (polling the epoll fd itself).
    pub fn collect(&self, t: &Task, max: usize, consume: bool) -> Vec<EpollEvent> {
        let mut out = Vec::new();
        let mut list = self.list();
        list.retain(|i| i.file.strong_count() > 0);
        let mut reported = Vec::new();
        for (idx, it) in list.iter_mut().enumerate() {
            if out.len() >= max {
                break;
            }
            if !it.armed {
                continue;
            }
            let Some(file) = it.file.upgrade() else { continue };
            // An epoll set inside itself cannot recurse forever.
            if file.anon::<Epoll>().is_some_and(|e| std::ptr::eq(e, self)) {
                continue;
            }
            let got = epoll_bits(file.readiness(t)) & (it.events | ALWAYS);
            if it.events & E::EPOLLET != 0 {
                let seq = file.change_seq();
                let fire = got != 0
                    && match seq {
                        Some(s) => it.last_seq != Some(s) || got & !it.last_ready != 0,
                        None => got & !it.last_ready != 0,
                    };
                if consume {
                    it.last_seq = seq;
                    it.last_ready = got;
                }
                if !fire {
                    continue;
                }
            } else if got == 0 {
                continue;
            }
            if consume && it.events & E::EPOLLONESHOT != 0 {
                it.armed = false;
            }
            out.push(EpollEvent { events: got, data: it.data });
            reported.push(idx);
        }
        if consume {
            // Reported entries go to the back, so that with a small
            // maxevents every ready entry gets its turn.
            for (n, idx) in reported.into_iter().enumerate() {
                let it = list.remove(idx - n);
                list.push(it);
            }
        }
        out
    }
}

impl AnonFile for Epoll {
    fn name(&self) -> &'static str {
        "eventpoll"
    }

    fn readiness(&self, t: &Task) -> i16 {
        if self.collect(t, 1, false).is_empty() {
            0
        } else {
            P::POLLIN
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
