//! POSIX message queues of the sandbox's IPC namespace. The queues are the
//! regular files of an mqueue file system: a tmpfs whose files hold a
//! queue instead of data (as Linux's mqueue is a small in-memory file
//! system). Names, modes, owners, the sticky root, unlink and the spec's
//! /dev/mqueue mount are therefore the file system's, and a queue lives
//! while it has a name or an open descriptor.
//!
//! Blocking follows Linux's pipelined hand-over: a sender that finds a
//! receiver waiting gives it the message directly (the queue never holds
//! it, and no notification fires), and a receiver that frees a slot moves
//! the first waiting sender's message into the queue.
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use syscalls::flags::mode::S_IFDIR;
use syscalls::flags::mqueue as MQ;
use syscalls::Errno;

use crate::kernel::EventQueue;
use crate::process::ThreadGroup;
use crate::task::Task;
use crate::vfs::open::may_access;
use crate::vfs::ops::NewFile;
use crate::vfs::tmpfs::{Contents, Tmpfs};
use crate::vfs::{Dentry, Node};

/// What Linux charges per possible message (a `struct msg_msg`) and per
/// possible priority node (a `struct posix_msg_tree_node`) to the
/// creator's RLIMIT_MSGQUEUE, besides the message bytes.
const MSG_OVERHEAD: u64 = 48;
const PRIO_NODE: u64 = 48;

/// The most bytes all the sandbox's queues may be charged together: a
/// guest with CAP_SYS_RESOURCE may lift RLIMIT_MSGQUEUE, but messages live
/// in the sentry's memory, so creation past this fails with ENOMEM.
const SANDBOX_MAX_BYTES: u64 = 1 << 30;

/// The IPC namespace's queues.
pub struct MqueueNamespace {
    /// The root of the mqueue file system (mode 1777, owned by root):
    /// mq_open's names are its entries, and mounts of type mqueue show it.
    pub root: Arc<Dentry>,
    accounts: Arc<Accounts>,
    events: Arc<EventQueue>,
}

/// What the namespace's queues are charged.
#[derive(Default)]
struct Accounts {
    /// Bytes charged to each user (by real uid), bounded by the creator's
    /// RLIMIT_MSGQUEUE.
    by_user: Mutex<HashMap<u32, u64>>,
    /// Queues that exist (fs.mqueue.queues_max bounds it).
    queues: AtomicU64,
    /// Bytes charged in the whole sandbox (SANDBOX_MAX_BYTES bounds it).
    total: AtomicU64,
}

/// Who creates a queue, for the limits.
pub struct Creator {
    pub uid: u32,
    /// CAP_SYS_RESOURCE: past msg_max, msgsize_max and queues_max.
    pub sys_resource: bool,
    /// RLIMIT_MSGQUEUE's soft limit.
    pub rlimit: u64,
}

impl Creator {
    pub fn of(t: &Task) -> Creator {
        use syscalls::flags::rlimit::RLIMIT_MSGQUEUE;
        Creator {
            uid: t.creds.uid,
            sys_resource: t.creds.capable(syscalls::flags::cap::CAP_SYS_RESOURCE),
            rlimit: t.rlimits[RLIMIT_MSGQUEUE as usize].rlim_cur,
        }
    }
}

impl MqueueNamespace {
    pub fn new(mf: Arc<crate::mm::MemoryFile>, events: Arc<EventQueue>) -> Result<MqueueNamespace, Errno> {
        let fs = Tmpfs::new_mqueue(mf);
        let inode = fs.inode(S_IFDIR | 0o1777, 0, 0, Contents::Dir)?;
        let root = Arc::new(Dentry::new(Vec::new(), None, gofer::Attr::default(), Node::Tmpfs(inode)));
        Ok(MqueueNamespace { root, accounts: Default::default(), events })
    }

    /// mq_open of `name` (a checked entry name) by `t`: the queue, created
    /// with `attr` (maxmsg, msgsize) and permission bits `mode` under the
    /// umask if O_CREAT asks and there is none, opened with `oflag`.
    pub fn open(
        &self,
        t: &Task,
        name: &[u8],
        oflag: u32,
        mode: u32,
        attr: Option<(i64, i64)>,
    ) -> Result<Arc<crate::vfs::File>, Errno> {
        use syscalls::flags::access as A;
        use syscalls::flags::OpenFlags as O;
        let has = |f: O| oflag & f.bits() != 0;
        let acc = oflag & O::O_ACCMODE;
        let d = match self.root.child(name)? {
            Some(d) => {
                if has(O::O_CREAT) && has(O::O_EXCL) {
                    return Err(Errno::EEXIST);
                }
                // O_WRONLY|O_RDWR opens an existing queue for nothing.
                if acc == O::O_ACCMODE {
                    return Err(Errno::EINVAL);
                }
                let mask = match acc {
                    0 => A::R_OK,
                    1 => A::W_OK,
                    _ => A::R_OK | A::W_OK,
                };
                if !may_access(&t.creds, &d.attr(), mask, false) {
                    return Err(Errno::EACCES);
                }
                d
            }
            None if !has(O::O_CREAT) => return Err(Errno::ENOENT),
            None => {
                // The directory's permission comes before the queue's
                // limits (may_create, then mqueue_get_inode).
                if !may_access(&t.creds, &self.root.attr(), A::W_OK | A::X_OK, false) {
                    return Err(Errno::EACCES);
                }
                let q = self.new_queue(&Creator::of(t), attr)?;
                let perm = mode & 0o7777 & !t.fs().umask;
                self.root.create(name, NewFile::Mqueue(q), perm, &t.creds)?
            }
        };
        let q = match d.tmpfs().map(|i| &i.contents) {
            Some(Contents::Mqueue(q)) => q.clone(),
            _ => return Err(Errno::ENOENT),
        };
        let flags = oflag & !(O::O_CREAT | O::O_EXCL | O::O_NOCTTY | O::O_TRUNC | O::O_CLOEXEC).bits();
        let f = crate::vfs::File::new(crate::vfs::FileKind::Mqueue(q), flags, Some(d.clone()));
        d.notify(syscalls::flags::inotify::IN_OPEN);
        Ok(f)
    }

    /// A new queue of `attr` (maxmsg, msgsize), or the defaults, within the
    /// creator's limits (the checks of Linux's mqueue_get_inode, in order).
    pub fn new_queue(&self, who: &Creator, attr: Option<(i64, i64)>) -> Result<Arc<MessageQueue>, Errno> {
        let acc = &self.accounts;
        if acc.queues.load(Ordering::SeqCst) >= MQ::QUEUES_MAX && !who.sys_resource {
            return Err(Errno::ENOSPC);
        }
        let (maxmsg, msgsize) = attr.unwrap_or((MQ::MSG_DEFAULT, MQ::MSGSIZE_DEFAULT));
        if maxmsg <= 0 || msgsize <= 0 {
            return Err(Errno::EINVAL);
        }
        let (most_msgs, most_size) =
            if who.sys_resource { (MQ::HARD_MSGMAX, MQ::HARD_MSGSIZEMAX) } else { (MQ::MSG_MAX, MQ::MSGSIZE_MAX) };
        if maxmsg > most_msgs || msgsize > most_size {
            return Err(Errno::EINVAL);
        }
        let (maxmsg, msgsize) = (maxmsg as u64, msgsize as u64);
        let tree = maxmsg * MSG_OVERHEAD + maxmsg.min(u64::from(MQ::MQ_PRIO_MAX)) * PRIO_NODE;
        let bytes = maxmsg.checked_mul(msgsize).and_then(|b| b.checked_add(tree)).ok_or(Errno::EOVERFLOW)?;
        {
            let mut by_user = acc.by_user.lock().unwrap_or_else(|e| e.into_inner());
            let used = by_user.entry(who.uid).or_default();
            if used.checked_add(bytes).is_none_or(|n| n > who.rlimit) {
                return Err(Errno::EMFILE);
            }
            if acc.total.fetch_add(bytes, Ordering::SeqCst) + bytes > SANDBOX_MAX_BYTES {
                acc.total.fetch_sub(bytes, Ordering::SeqCst);
                return Err(Errno::ENOMEM);
            }
            *used += bytes;
        }
        acc.queues.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::new(MessageQueue {
            maxmsg: maxmsg as i64,
            msgsize: msgsize as i64,
            state: Default::default(),
            charge: (who.uid, bytes),
            accounts: acc.clone(),
            events: self.events.clone(),
            seq: AtomicU64::new(0),
        }))
    }
}

/// A message: its priority and bytes.
pub type Message = (u32, Vec<u8>);

/// One queue.
pub struct MessageQueue {
    pub maxmsg: i64,
    pub msgsize: i64,
    state: Mutex<QueueState>,
    /// Who was charged for the queue, and how much (given back when the
    /// queue goes).
    charge: (u32, u64),
    accounts: Arc<Accounts>,
    events: Arc<EventQueue>,
    /// Bumped by every change, for edge-triggered epoll.
    seq: AtomicU64,
}

#[derive(Default)]
struct QueueState {
    /// Messages by priority, highest first, in order of arrival within a
    /// priority.
    messages: BTreeMap<Reverse<u32>, VecDeque<Vec<u8>>>,
    count: i64,
    /// Bytes of message data (the QSIZE a read shows).
    bytes: u64,
    notify: Option<Registration>,
    receivers: VecDeque<Arc<Waiter>>,
    senders: VecDeque<Arc<Waiter>>,
}

/// A process blocked in mq_timedreceive (its slot is filled by the sender
/// that finds it waiting) or mq_timedsend (its slot holds its message until
/// a receiver moves it into the queue).
struct Waiter {
    slot: Mutex<Option<Message>>,
}

impl Waiter {
    fn slot(&self) -> MutexGuard<'_, Option<Message>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The process mq_notify registered, and what it gets.
struct Registration {
    owner: Weak<ThreadGroup>,
    pid: i32,
    /// SIGEV_SIGNAL's signal (0: none is sent) and value; None for
    /// SIGEV_NONE.
    signal: Option<(i32, u64)>,
    /// The owner's exec count at registration: a process that has since
    /// run another program is not signalled (Linux's self_exec_id check).
    execs: u64,
}

/// What mq_notify asks for.
pub enum Notification {
    /// SIGEV_NONE: the registration only holds the slot.
    None,
    /// SIGEV_SIGNAL.
    Signal { signo: i32, value: u64 },
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        let (uid, bytes) = self.charge;
        let acc = &self.accounts;
        if let Some(used) = acc.by_user.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&uid) {
            *used = used.saturating_sub(bytes);
        }
        acc.total.fetch_sub(bytes, Ordering::SeqCst);
        acc.queues.fetch_sub(1, Ordering::SeqCst);
    }
}

impl QueueState {
    fn insert(&mut self, (prio, data): Message) {
        self.count += 1;
        self.bytes += data.len() as u64;
        self.messages.entry(Reverse(prio)).or_default().push_back(data);
    }

    fn take(&mut self) -> Option<Message> {
        let mut entry = self.messages.first_entry()?;
        let data = entry.get_mut().pop_front()?;
        let prio = entry.key().0;
        if entry.get().is_empty() {
            entry.remove();
        }
        self.count -= 1;
        self.bytes -= data.len() as u64;
        Some((prio, data))
    }
}

impl MessageQueue {
    fn state(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.events.notify();
    }

    /// Messages in the queue now.
    pub fn count(&self) -> i64 {
        self.state().count
    }

    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// mq_timedsend of `msg` by `t` (checked against the size already):
    /// into the queue, or to a waiting receiver; waits while the queue is
    /// full unless `nonblock`, until `deadline` (ETIMEDOUT) or a signal.
    pub fn send(&self, t: &Task, msg: Message, nonblock: bool, deadline: Option<Instant>) -> Result<(), Errno> {
        let mut st = self.state();
        if st.count >= self.maxmsg {
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let w = Arc::new(Waiter { slot: Mutex::new(Some(msg)) });
            st.senders.push_back(w.clone());
            drop(st);
            let r = t.block_on(deadline, || w.slot().is_none().then_some(()));
            let mut st = self.state();
            return match r {
                // A receiver took the message in the meantime.
                Err(_) if w.slot().is_none() => Ok(()),
                Err(e) => {
                    st.senders.retain(|s| !Arc::ptr_eq(s, &w));
                    Err(e)
                }
                Ok(()) => Ok(()),
            };
        }
        let mut fired = None;
        match st.receivers.pop_front() {
            Some(r) => *r.slot() = Some(msg),
            None => {
                st.insert(msg);
                if st.count == 1 {
                    fired = st.notify.take();
                }
            }
        }
        drop(st);
        if let Some(reg) = fired {
            reg.fire(t);
        }
        self.changed();
        Ok(())
    }

    /// mq_timedreceive: the oldest message of the highest priority; waits
    /// while the queue is empty unless `nonblock`.
    pub fn receive(&self, t: &Task, nonblock: bool, deadline: Option<Instant>) -> Result<Message, Errno> {
        let mut st = self.state();
        if let Some(msg) = st.take() {
            // A slot is free: the first waiting sender's message enters.
            if let Some(s) = st.senders.pop_front() {
                if let Some(m) = s.slot().take() {
                    st.insert(m);
                }
            }
            drop(st);
            self.changed();
            return Ok(msg);
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        let w = Arc::new(Waiter { slot: Mutex::new(None) });
        st.receivers.push_back(w.clone());
        drop(st);
        let r = t.block_on(deadline, || w.slot().take());
        let mut st = self.state();
        match r {
            Ok(msg) => Ok(msg),
            Err(e) => match w.slot().take() {
                // A sender handed it over in the meantime.
                Some(msg) => Ok(msg),
                None => {
                    st.receivers.retain(|s| !Arc::ptr_eq(s, &w));
                    Err(e)
                }
            },
        }
    }

    /// mq_notify: registers `group` (EBUSY if any process is registered),
    /// or with None removes the registration if `group` holds it.
    pub fn register(&self, group: &Arc<ThreadGroup>, n: Option<Notification>) -> Result<(), Errno> {
        let mut st = self.state();
        let Some(n) = n else {
            if st.notify.as_ref().is_some_and(|r| r.owned_by(group)) {
                st.notify = None;
            }
            return Ok(());
        };
        if st.notify.is_some() {
            return Err(Errno::EBUSY);
        }
        st.notify = Some(Registration {
            owner: Arc::downgrade(group),
            pid: group.pid,
            signal: match n {
                Notification::None => None,
                Notification::Signal { signo, value } => Some((signo, value)),
            },
            execs: group.execs.load(Ordering::SeqCst),
        });
        Ok(())
    }

    /// A descriptor of the queue was closed by `group`: its registration,
    /// if it has one, goes (Linux's mqueue_flush_file).
    pub fn flush(&self, group: &Arc<ThreadGroup>) {
        let mut st = self.state();
        if st.notify.as_ref().is_some_and(|r| r.owned_by(group)) {
            st.notify = None;
        }
    }

    /// What read(2) of a queue descriptor shows.
    pub fn status(&self) -> String {
        let st = self.state();
        // The owner's pid as the reader sees it (0 from another namespace).
        let reader = crate::process::current().map(|c| c.group.pidns).unwrap_or_default();
        let (notify, signo, pid) = match &st.notify {
            Some(r) => {
                let pid = match r.owner.upgrade() {
                    Some(g) => g.pid_in(reader),
                    None if reader.is_root() => r.pid,
                    None => 0,
                };
                match r.signal {
                    Some((signo, _)) => (syscalls::flags::sigev::SIGEV_SIGNAL, signo, pid),
                    None => (syscalls::flags::sigev::SIGEV_NONE, 0, pid),
                }
            }
            None => (0, 0, 0),
        };
        format!("QSIZE:{:<10} NOTIFY:{notify:<5} SIGNO:{signo:<5} NOTIFY_PID:{pid:<6}\n", st.bytes)
    }

    /// poll(2) readiness: readable with a message, writable with room,
    /// whatever the descriptor's access mode.
    pub fn readiness(&self) -> i16 {
        use syscalls::flags::poll as P;
        let st = self.state();
        let mut r = 0;
        if st.count > 0 {
            r |= P::POLLIN | P::POLLRDNORM;
        }
        if st.count < self.maxmsg {
            r |= P::POLLOUT | P::POLLWRNORM;
        }
        r
    }
}

impl Registration {
    fn owned_by(&self, group: &Arc<ThreadGroup>) -> bool {
        std::ptr::eq(self.owner.as_ptr(), Arc::as_ptr(group))
    }

    /// The queue went from empty to not: the owner gets its signal (sent
    /// by the kernel, so no permission check), with the sender's pid and
    /// uid, and the registration is used up.
    fn fire(self, sender: &Task) {
        let (Some((signo, value)), Some(group)) = (self.signal, self.owner.upgrade()) else { return };
        if signo == 0 || group.state().exit.is_some() || group.execs.load(Ordering::SeqCst) != self.execs {
            return;
        }
        let mut info = crate::signal::user_info(
            signo,
            syscalls::flags::sigev::SI_MESGQ,
            sender.group().pid_in(group.pidns),
            sender.creds.uid,
        );
        info.fields[1] = value;
        group.send(info);
        sender.kernel.events.notify();
    }
}
