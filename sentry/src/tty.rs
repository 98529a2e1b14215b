//! Pseudo-terminals (devpts): /dev/ptmx makes a master and /dev/pts/N
//! names its slave, joined by Linux's line discipline (N_TTY): input
//! processing (ICRNL, INLCR, IGNCR), canonical line editing (ERASE, KILL,
//! WERASE, EOF, EOL), echo (ECHO, ECHOE, ECHOK, ECHOKE, ECHOCTL, ECHONL),
//! signal characters (ISIG: INTR, QUIT, SUSP to the foreground process
//! group), VMIN/VTIME, and output processing (OPOST: ONLCR, OCRNL). A
//! terminal is the controlling terminal of at most one session; job control
//! (TIOCSPGRP, SIGTTIN for background readers, SIGWINCH on a resize)
//! follows Linux.
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use syscalls::flags::signal as S;
use syscalls::Errno;

use crate::kernel::{EventQueue, Kernel};
use crate::task::Task;

/// Major number of devpts slaves (/dev/pts/N).
pub const PTS_MAJOR: u64 = 136;
/// Most data a queue holds before writers wait (Linux's N_TTY buffer is
/// 4 KiB of input; output is bounded the same way here).
const QUEUE_MAX: usize = 64 * 1024;

/// What one completed input line costs besides its bytes (a Vec and its
/// allocation).
const LINE_COST: usize = 32;
/// Longest canonical line (Linux: 4095 bytes plus the newline).
const LINE_MAX: usize = 4095;

// termios flag bits (asm-generic/termbits.h).
const IGNCR: u32 = 0x80;
const ICRNL: u32 = 0x100;
const INLCR: u32 = 0x40;
const ISTRIP: u32 = 0x20;
const IUCLC: u32 = 0x200;
const OPOST: u32 = 0x1;
const ONLCR: u32 = 0x4;
const OCRNL: u32 = 0x8;
const ISIG: u32 = 0x1;
const ICANON: u32 = 0x2;
const ECHO: u32 = 0x8;
const ECHOE: u32 = 0x10;
const ECHOK: u32 = 0x20;
const ECHONL: u32 = 0x40;
const NOFLSH: u32 = 0x80;
const TOSTOP: u32 = 0x100;
const ECHOCTL: u32 = 0x200;
const ECHOKE: u32 = 0x800;
const IEXTEN: u32 = 0x8000;
// c_cc indices.
const VINTR: usize = 0;
const VQUIT: usize = 1;
const VERASE: usize = 2;
const VKILL: usize = 3;
const VEOF: usize = 4;
const VTIME: usize = 5;
const VMIN: usize = 6;
const VSUSP: usize = 10;
const VEOL: usize = 11;
const VWERASE: usize = 14;
const VLNEXT: usize = 15;
const VEOL2: usize = 16;

/// The kernel's `struct termios` (TCGETS/TCSETS), 36 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; 19],
}

impl Termios {
    /// A slave's settings when made (Linux's tty_std_termios for ptys).
    fn slave_default() -> Termios {
        Termios {
            iflag: ICRNL | 0x400, // ICRNL | IXON
            oflag: OPOST | ONLCR,
            cflag: 0o17 | 0o60 | 0o200, // B38400 | CS8 | CREAD
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc: [3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0, 0, 0],
        }
    }

    pub fn to_bytes(self) -> [u8; 36] {
        let mut b = [0u8; 36];
        for (i, v) in [self.iflag, self.oflag, self.cflag, self.lflag].iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        b[16] = self.line;
        b[17..].copy_from_slice(&self.cc);
        b
    }

    pub fn from_bytes(b: &[u8; 36]) -> Termios {
        let word = |i: usize| u32::from_ne_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]]);
        let mut cc = [0u8; 19];
        cc.copy_from_slice(&b[17..]);
        Termios { iflag: word(0), oflag: word(1), cflag: word(2), lflag: word(3), line: b[16], cc }
    }

    fn l(&self, f: u32) -> bool {
        self.lflag & f != 0
    }
}

struct TtyState {
    /// The slave's settings, which the master's TCGETS/TCSETS also reach.
    termios: Termios,
    /// rows, cols, xpixel, ypixel.
    winsize: [u16; 4],
    /// Canonical mode: complete lines (each with its terminator, or none
    /// for an EOF), ready for the slave's reads.
    lines: VecDeque<Vec<u8>>,
    /// Canonical mode: the line being edited.
    editing: Vec<u8>,
    /// Non-canonical mode: bytes ready for the slave's reads.
    raw: VecDeque<u8>,
    /// The next input byte is taken literally (after VLNEXT).
    literal_next: bool,
    /// Bytes for the master's reads: the slave's output and the echo.
    output: VecDeque<u8>,
    /// TIOCSPTLCK: the slave cannot be opened while locked.
    locked: bool,
    masters: usize,
    slaves: usize,
    slave_opened: bool,
    /// The session whose controlling terminal this is, and its foreground
    /// process group.
    session: Option<i32>,
    foreground: i32,
    /// The session's leader, which a hang-up signals.
    leader: Weak<crate::process::ThreadGroup>,
}

/// One pseudo-terminal pair.
pub struct Terminal {
    pub index: u32,
    /// (uid, gid) of /dev/pts/N: the opener of /dev/ptmx.
    pub owner: (u32, u32),
    state: Mutex<TtyState>,
    events: Arc<EventQueue>,
    /// Wakes a host console's copiers (see [`crate::console`]) on every
    /// change, without waking the whole kernel's waiters.
    changes: Condvar,
    seq: AtomicU64,
}

/// Live terminals by index (the devpts instance of the sandbox).
fn registry() -> MutexGuard<'static, BTreeMap<u32, Weak<Terminal>>> {
    static PTYS: OnceLock<Mutex<BTreeMap<u32, Weak<Terminal>>>> = OnceLock::new();
    PTYS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// The terminal /dev/pts/`index` names, if it lives.
pub fn lookup(index: u32) -> Option<Arc<Terminal>> {
    registry().get(&index).and_then(Weak::upgrade)
}

/// The indexes of the live terminals, in order.
pub fn indexes() -> Vec<u32> {
    registry().iter().filter(|(_, w)| w.strong_count() > 0).map(|(i, _)| *i).collect()
}

/// The controlling terminal of session `sid`.
pub fn of_session(sid: i32) -> Option<Arc<Terminal>> {
    registry().values().filter_map(Weak::upgrade).find(|t| t.state().session == Some(sid))
}

/// One open end of a terminal; counted while it lives.
pub struct TtyEnd {
    pub term: Arc<Terminal>,
    pub master: bool,
}

impl Drop for TtyEnd {
    fn drop(&mut self) {
        let hung_up = {
            let mut st = self.term.state();
            if self.master {
                st.masters -= 1;
                st.masters == 0 && st.session.is_some()
            } else {
                st.slaves -= 1;
                false
            }
        };
        if hung_up {
            self.term.hang_up();
        }
        self.term.changed();
    }
}

/// Session leader `sid` exited: its controlling terminal's foreground
/// group gets SIGHUP and the terminal belongs to no session any more (as
/// Linux's disassociate_ctty on exit, for a pty).
pub fn session_leader_exited(kernel: &Kernel, sid: i32) {
    let Some(term) = of_session(sid) else { return };
    let fg = {
        let mut st = term.state();
        st.session = None;
        st.leader = Weak::new();
        std::mem::take(&mut st.foreground)
    };
    signal_group(kernel, fg, S::SIGHUP);
    term.changed();
}

impl Terminal {
    /// Opens /dev/ptmx: a new terminal (the lowest free index) and its
    /// master end. The slave starts locked, as Linux's does.
    pub fn open_master(events: Arc<EventQueue>, owner: (u32, u32)) -> Result<TtyEnd, Errno> {
        let mut reg = registry();
        reg.retain(|_, w| w.strong_count() > 0);
        let index = (0u32..).find(|i| !reg.contains_key(i)).ok_or(Errno::ENOSPC)?;
        if index >= 4096 {
            return Err(Errno::ENOSPC);
        }
        let term = Arc::new(Terminal {
            index,
            owner,
            state: Mutex::new(TtyState {
                termios: Termios::slave_default(),
                winsize: [0; 4],
                lines: VecDeque::new(),
                editing: Vec::new(),
                raw: VecDeque::new(),
                literal_next: false,
                output: VecDeque::new(),
                locked: true,
                masters: 1,
                slaves: 0,
                slave_opened: false,
                session: None,
                foreground: 0,
                leader: Weak::new(),
            }),
            events,
            changes: Condvar::new(),
            seq: AtomicU64::new(0),
        });
        reg.insert(index, Arc::downgrade(&term));
        Ok(TtyEnd { term, master: true })
    }

    /// Opens the slave (/dev/pts/N, TIOCGPTPEER, /dev/tty). Unless
    /// `noctty`, a session leader without a controlling terminal gets this
    /// one if it is free.
    pub fn open_slave(self: &Arc<Terminal>, noctty: bool) -> Result<TtyEnd, Errno> {
        {
            let mut st = self.state();
            if st.locked || st.masters == 0 {
                return Err(Errno::EIO);
            }
            st.slaves += 1;
            st.slave_opened = true;
        }
        if !noctty {
            if let Some(cur) = crate::process::current() {
                let (pid, sid, pgid) = {
                    let g = cur.group.state();
                    (cur.group.pid, g.sid, g.pgid)
                };
                if pid == sid && of_session(sid).is_none() {
                    let mut st = self.state();
                    if st.session.is_none() {
                        st.session = Some(sid);
                        st.foreground = pgid;
                        st.leader = Arc::downgrade(&cur.group);
                    }
                }
            }
        }
        self.changed();
        Ok(TtyEnd { term: self.clone(), master: false })
    }

    fn state(&self) -> MutexGuard<'_, TtyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.events.notify();
        self.changes.notify_all();
    }

    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// `struct stat`'s st_rdev of the slave.
    pub fn rdev(&self) -> u64 {
        libc::makedev(PTS_MAJOR as u32, self.index) as u64
    }

    /// A terminal the sandbox makes for a process started from outside
    /// with `process.terminal` (its console): a devpts terminal like any,
    /// unlocked; returns its master end, which the sentry keeps.
    pub fn open_console(events: Arc<EventQueue>, owner: (u32, u32)) -> Result<TtyEnd, Errno> {
        let master = Terminal::open_master(events, owner)?;
        master.term.state().locked = false;
        Ok(master)
    }

    /// Makes this the controlling terminal of session `sid`, with `pgid`
    /// in the foreground (what the process's TIOCSCTTY would do).
    pub fn set_controlling(&self, leader: &Arc<crate::process::ThreadGroup>, pgid: i32) {
        let mut st = self.state();
        st.session = Some(leader.pid);
        st.foreground = pgid;
        st.leader = Arc::downgrade(leader);
    }

    /// A hang-up (the last master closed): the terminal stops being its
    /// session's controlling terminal, and the session leader gets SIGHUP
    /// and SIGCONT, as Linux's tty_vhangup does.
    fn hang_up(&self) {
        let leader = {
            let mut st = self.state();
            st.session = None;
            st.foreground = 0;
            std::mem::take(&mut st.leader)
        };
        if let Some(g) = leader.upgrade().filter(|g| g.state().exit.is_none()) {
            for sig in [S::SIGHUP, S::SIGCONT] {
                g.send(syscalls::structs::Siginfo {
                    signo: sig,
                    code: syscalls::flags::sa::SI_KERNEL,
                    ..Default::default()
                });
            }
        }
        self.changed();
    }

    /// A new window size (TIOCSWINSZ): the foreground group gets SIGWINCH
    /// if it changed.
    pub fn set_winsize(&self, kernel: &Kernel, ws: [u16; 4]) {
        let (changed, fg) = {
            let mut st = self.state();
            let changed = st.winsize != ws;
            st.winsize = ws;
            (changed, st.foreground)
        };
        if changed {
            signal_group(kernel, fg, S::SIGWINCH);
        }
    }

    /// Input from outside the sandbox, as a write to the master: through
    /// the line discipline, signals to the foreground group included.
    /// Waits while the input queue is full; drops the rest if the terminal
    /// loses its master or every slave.
    pub fn input(&self, kernel: &Kernel, mut data: &[u8]) {
        while !data.is_empty() {
            let mut st = self.state();
            while st.input_room() == 0 {
                if st.masters == 0 || (st.slave_opened && st.slaves == 0) {
                    return;
                }
                st = self.changes.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            let n = st.input_room().min(data.len());
            let sigs = receive_all(&mut st, &data[..n]);
            let fg = st.foreground;
            drop(st);
            data = &data[n..];
            self.changed();
            signal_input(kernel, fg, sigs);
        }
    }

    /// Waits for output for the master and moves it to `out`, counting
    /// the bytes in `taken` (under the terminal's lock, so that a reader of
    /// `taken` who then sees the queue empty knows every byte was taken).
    /// False once no more can come: the master is gone, or every slave
    /// opened was closed and the queue is empty.
    pub fn take_output(&self, out: &mut Vec<u8>, taken: &AtomicU64) -> bool {
        let mut st = self.state();
        loop {
            if !st.output.is_empty() {
                taken.fetch_add(st.output.len() as u64, Ordering::SeqCst);
                out.extend(st.output.drain(..));
                drop(st);
                self.changed();
                return true;
            }
            if st.masters == 0 || (st.slave_opened && st.slaves == 0) {
                return false;
            }
            st = self.changes.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether output waits for the master.
    pub fn output_pending(&self) -> bool {
        !self.state().output.is_empty()
    }
}

/// `struct winsize` (rows, cols, xpixel, ypixel) from its 8 bytes.
pub fn winsize_from_bytes(b: &[u8; 8]) -> [u16; 4] {
    [0, 1, 2, 3].map(|i| u16::from_ne_bytes([b[i * 2], b[i * 2 + 1]]))
}

/// Sends `sig` from the terminal to every process of group `pgrp`.
fn signal_group(kernel: &Kernel, pgrp: i32, sig: i32) {
    if pgrp <= 0 {
        return;
    }
    let groups: Vec<_> = kernel.pids().groups.values().filter(|g| g.state().pgid == pgrp).cloned().collect();
    for g in groups.iter().filter(|g| g.state().exit.is_none()) {
        let info =
            syscalls::structs::Siginfo { signo: sig, code: syscalls::flags::sa::SI_KERNEL, ..Default::default() };
        g.send(info);
    }
    kernel.events.notify();
}

/// Queues echo for the master. Echo nobody reads is dropped once the
/// queue is full (Linux's echo buffer is bounded too): a slave that keeps
/// reading must not grow it without end.
fn echo_bytes(st: &mut TtyState, bytes: &[u8]) {
    if st.output.len() < QUEUE_MAX {
        st.output.extend(bytes);
    }
}

/// Echoes `c`, as ECHOCTL shows it: `^X` for control characters.
fn echo_char(st: &mut TtyState, c: u8) {
    if st.output.len() >= QUEUE_MAX {
        return;
    }
    if st.termios.l(ECHOCTL) && (c < 0x20 && c != b'\t' && c != b'\n' || c == 0x7f) {
        st.output.extend([b'^', c ^ 0x40]);
    } else {
        out_byte(st, c);
    }
}

/// Output processing of one byte (OPOST) into the master's queue.
fn out_byte(st: &mut TtyState, c: u8) {
    let o = st.termios.oflag;
    if o & OPOST != 0 {
        if c == b'\n' && o & ONLCR != 0 {
            st.output.extend(b"\r\n");
            return;
        }
        if c == b'\r' && o & OCRNL != 0 {
            st.output.push_back(b'\n');
            return;
        }
    }
    st.output.push_back(c);
}

/// Erases the last character of the line being edited (ERASE).
fn erase_one(st: &mut TtyState) -> bool {
    let Some(c) = st.editing.pop() else { return false };
    if st.termios.l(ECHO) && st.termios.l(ECHOE) {
        let width = if st.termios.l(ECHOCTL) && (c < 0x20 && c != b'\t' || c == 0x7f) { 2 } else { 1 };
        for _ in 0..width {
            echo_bytes(st, b"\x08 \x08");
        }
    }
    true
}

/// The line discipline's handling of one input byte from the master.
/// Returns a signal to send to the foreground group.
fn receive(st: &mut TtyState, mut c: u8) -> Option<i32> {
    let tio = st.termios;
    if std::mem::take(&mut st.literal_next) {
        return literal(st, c);
    }
    if tio.iflag & ISTRIP != 0 {
        c &= 0x7f;
    }
    if c == b'\r' {
        if tio.iflag & IGNCR != 0 {
            return None;
        }
        if tio.iflag & ICRNL != 0 {
            c = b'\n';
        }
    } else if c == b'\n' && tio.iflag & INLCR != 0 {
        c = b'\r';
    }
    if tio.iflag & IUCLC != 0 && tio.l(IEXTEN) {
        c = c.to_ascii_lowercase();
    }
    let is = |i: usize| tio.cc[i] != 0 && c == tio.cc[i];
    if tio.l(ISIG) {
        let sig = if is(VINTR) {
            Some(S::SIGINT)
        } else if is(VQUIT) {
            Some(S::SIGQUIT)
        } else if is(VSUSP) {
            Some(S::SIGTSTP)
        } else {
            None
        };
        if let Some(sig) = sig {
            if !tio.l(NOFLSH) {
                st.lines.clear();
                st.editing.clear();
                st.raw.clear();
                st.output.clear();
            }
            if tio.l(ECHO) {
                echo_char(st, c);
            }
            return Some(sig);
        }
    }
    if tio.l(ICANON) {
        if tio.l(IEXTEN) && is(VLNEXT) {
            st.literal_next = true;
            return None;
        }
        if is(VERASE) {
            erase_one(st);
            return None;
        }
        if is(VWERASE) && tio.l(IEXTEN) {
            while st.editing.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
                erase_one(st);
            }
            while st.editing.last().is_some_and(|b| *b != b' ' && *b != b'\t') {
                erase_one(st);
            }
            return None;
        }
        if is(VKILL) {
            if tio.l(ECHO) && tio.l(ECHOKE) {
                while erase_one(st) {}
            } else {
                st.editing.clear();
                if tio.l(ECHO) {
                    echo_char(st, c);
                    if tio.l(ECHOK) {
                        echo_char(st, b'\n');
                    }
                }
            }
            return None;
        }
        if is(VEOF) {
            let line = std::mem::take(&mut st.editing);
            st.lines.push_back(line);
            return None;
        }
        if c == b'\n' || is(VEOL) || is(VEOL2) {
            if tio.l(ECHO) || tio.l(ECHONL) {
                echo_char(st, c);
            }
            let mut line = std::mem::take(&mut st.editing);
            line.push(c);
            st.lines.push_back(line);
            return None;
        }
        return literal(st, c);
    }
    if tio.l(ECHO) {
        echo_char(st, c);
    }
    st.raw.push_back(c);
    None
}

/// Input bytes through the line discipline; returns the signals they
/// raised, a bit per signal number (see [`signal_input`]).
fn receive_all(st: &mut TtyState, data: &[u8]) -> u64 {
    data.iter().filter_map(|&c| receive(st, c)).fold(0, |sigs, s| sigs | 1 << s)
}

/// Sends the signals input raised (`receive_all`) to foreground group `fg`.
fn signal_input(kernel: &Kernel, fg: i32, sigs: u64) {
    for s in [S::SIGINT, S::SIGQUIT, S::SIGTSTP].into_iter().filter(|s| sigs & (1 << s) != 0) {
        signal_group(kernel, fg, s);
    }
}

/// An ordinary input byte: into the line (canonical) or the queue.
fn literal(st: &mut TtyState, c: u8) -> Option<i32> {
    if st.termios.l(ICANON) {
        if st.editing.len() < LINE_MAX {
            st.editing.push(c);
            if st.termios.l(ECHO) {
                echo_char(st, c);
            }
        }
    } else {
        if st.termios.l(ECHO) {
            echo_char(st, c);
        }
        st.raw.push_back(c);
    }
    None
}

impl TtyState {
    /// Bytes a slave read could take now (an EOF line counts none).
    fn readable(&self) -> usize {
        if self.termios.l(ICANON) {
            self.lines.iter().map(Vec::len).sum::<usize>()
        } else {
            self.raw.len()
        }
    }

    /// What input holds, for the QUEUE_MAX bound: bytes, plus what a
    /// line costs the sentry (its Vec), so that a flood of empty lines
    /// (or EOFs, which hold no byte) is bounded in memory too.
    fn pending_input(&self) -> usize {
        self.lines.iter().map(|l| l.len() + LINE_COST).sum::<usize>() + self.editing.len() + self.raw.len()
    }

    /// How many bytes surely fit in the input now: each may end a line.
    fn input_room(&self) -> usize {
        QUEUE_MAX.saturating_sub(self.pending_input()) / (LINE_COST + 1)
    }
}

impl TtyEnd {
    /// read(2) on this end.
    pub fn read(&self, t: &Task, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = if self.master { self.read_master(t, buf, nonblock)? } else { self.read_slave(t, buf, nonblock)? };
        self.term.changed();
        Ok(n)
    }

    fn read_master(&self, t: &Task, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        t.block_on(None, || {
            let mut st = self.term.state();
            if !st.output.is_empty() {
                let n = buf.len().min(st.output.len());
                for (i, b) in st.output.drain(..n).enumerate() {
                    buf[i] = b;
                }
                return Some(Ok(n));
            }
            if st.slave_opened && st.slaves == 0 {
                return Some(Err(Errno::EIO));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        })?
    }

    fn read_slave(&self, t: &Task, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        self.job_control(t, S::SIGTTIN, true)?;
        let (vmin, vtime, canon) = {
            let st = self.term.state();
            (st.termios.cc[VMIN] as usize, st.termios.cc[VTIME], st.termios.l(ICANON))
        };
        // VMIN/VTIME (non-canonical): VTIME without VMIN is a timeout for
        // the first byte; with VMIN it is an inter-byte timer, approximated
        // here as a timeout for the whole read once a byte came.
        let deadline = (!canon && vtime > 0).then(|| Instant::now() + Duration::from_millis(u64::from(vtime) * 100));
        let want = if canon { 1 } else { vmin.clamp(1, buf.len()) };
        let r = t.block_on(deadline, || {
            let mut st = self.term.state();
            if canon {
                if let Some(mut line) = st.lines.pop_front() {
                    let n = line.len().min(buf.len());
                    buf[..n].copy_from_slice(&line[..n]);
                    if n < line.len() {
                        st.lines.push_front(line.split_off(n));
                    }
                    return Some(Ok(n));
                }
            } else if st.raw.len() >= want || (!st.raw.is_empty() && (vmin == 0 || nonblock)) {
                let n = buf.len().min(st.raw.len());
                for (i, b) in st.raw.drain(..n).enumerate() {
                    buf[i] = b;
                }
                return Some(Ok(n));
            } else if vmin == 0 && vtime == 0 {
                return Some(Ok(0));
            }
            if st.masters == 0 {
                return Some(Ok(0));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        });
        match r {
            Ok(v) => v,
            // VTIME ran out: whatever came (possibly nothing).
            Err(e) if e == Errno::ETIMEDOUT => {
                let mut st = self.term.state();
                let n = buf.len().min(st.raw.len());
                for (i, b) in st.raw.drain(..n).enumerate() {
                    buf[i] = b;
                }
                Ok(n)
            }
            Err(e) => Err(e),
        }
    }

    /// A background process of the terminal's session touching it: Linux
    /// stops its group (SIGTTIN for reads, SIGTTOU for writes with TOSTOP
    /// and for changes), or fails with EIO if the signal is ignored or
    /// blocked (for reads; a write or change then just goes ahead).
    fn job_control(&self, t: &Task, sig: i32, read: bool) -> Result<(), Errno> {
        let (sid, pgid) = {
            let g = t.group().state();
            (g.sid, g.pgid)
        };
        {
            let st = self.term.state();
            if st.session != Some(sid) || st.foreground == pgid || st.foreground == 0 {
                return Ok(());
            }
        }
        let ignored = t.group().actions()[(sig - 1) as usize].handler == syscalls::flags::sa::SIG_IGN
            || t.signals.mask & (1u64 << (sig - 1)) != 0;
        if ignored {
            return if read { Err(Errno::EIO) } else { Ok(()) };
        }
        signal_group(&t.kernel, pgid, sig);
        Err(crate::syscalls::ERESTARTSYS)
    }

    /// write(2) on this end.
    pub fn write(&self, t: &Task, data: &[u8], nonblock: bool) -> Result<usize, Errno> {
        if !self.master {
            let tostop = self.term.state().termios.l(TOSTOP);
            if tostop {
                self.job_control(t, S::SIGTTOU, false)?;
            }
        }
        let mut done = 0;
        while done < data.len() {
            let step = t.block_on(None, || {
                let mut st = self.term.state();
                if self.master {
                    let room = st.input_room();
                    if room == 0 {
                        return nonblock.then_some(Err(Errno::EAGAIN));
                    }
                    let n = room.min(data.len() - done);
                    let sigs = receive_all(&mut st, &data[done..done + n]);
                    Some(Ok((n, sigs, st.foreground)))
                } else {
                    if st.masters == 0 {
                        return Some(Err(Errno::EIO));
                    }
                    if st.output.len() >= QUEUE_MAX {
                        return nonblock.then_some(Err(Errno::EAGAIN));
                    }
                    let room = QUEUE_MAX - st.output.len();
                    let n = room.min(data.len() - done);
                    for &c in &data[done..done + n] {
                        out_byte(&mut st, c);
                    }
                    Some(Ok((n, 0, 0)))
                }
            });
            match step {
                Ok(Ok((n, sigs, fg))) => {
                    done += n;
                    self.term.changed();
                    signal_input(&t.kernel, fg, sigs);
                }
                Ok(Err(e)) | Err(e) if done == 0 => return Err(e),
                _ => break,
            }
        }
        Ok(done)
    }

    /// poll(2) readiness.
    pub fn poll(&self) -> i16 {
        use syscalls::flags::poll as P;
        let st = self.term.state();
        if self.master {
            let mut r = P::POLLOUT;
            if !st.output.is_empty() {
                r |= P::POLLIN;
            }
            if st.slave_opened && st.slaves == 0 {
                r |= P::POLLHUP;
            }
            r
        } else {
            let mut r = 0;
            if st.readable() > 0 || !st.lines.is_empty() {
                r |= P::POLLIN;
            }
            if st.masters == 0 {
                r |= P::POLLHUP | P::POLLIN;
            } else {
                r |= P::POLLOUT;
            }
            r
        }
    }

    /// Bytes waiting for this end's reads (FIONREAD).
    pub fn available(&self) -> usize {
        let st = self.term.state();
        if self.master {
            st.output.len()
        } else {
            st.readable()
        }
    }
}

/// Terminal ioctls on either end.
pub fn ioctl(t: &mut Task, end: &TtyEnd, req: u32, arg: u64) -> Result<u64, Errno> {
    use syscalls::flags::ioctl as I;
    let term = &end.term;
    match req {
        I::TCGETS => {
            // Both ends show the slave's settings, as on Linux.
            let tio = term.state().termios;
            t.mm.copy_out(arg, &tio.to_bytes())?;
        }
        I::TCSETS | I::TCSETSW | I::TCSETSF => {
            let mut b = [0u8; 36];
            t.mm.copy_in(arg, &mut b)?;
            if !end.master {
                end.job_control(t, S::SIGTTOU, false)?;
            }
            let new = Termios::from_bytes(&b);
            let mut st = term.state();
            {
                let was_canon = st.termios.l(ICANON);
                st.termios = new;
                if req == I::TCSETSF {
                    st.lines.clear();
                    st.editing.clear();
                    st.raw.clear();
                }
                // Switching modes keeps typed data: out of canonical mode
                // every byte becomes readable; into it they start a line.
                if was_canon && !new.l(ICANON) {
                    let lines: Vec<u8> = st.lines.drain(..).flatten().collect();
                    let editing = std::mem::take(&mut st.editing);
                    st.raw.extend(lines.into_iter().chain(editing));
                } else if !was_canon && new.l(ICANON) {
                    let raw: Vec<u8> = st.raw.drain(..).collect();
                    st.editing.extend(raw);
                }
            }
            drop(st);
            term.changed();
        }
        I::TIOCGWINSZ => {
            let ws = term.state().winsize;
            let mut b = [0u8; 8];
            for (i, v) in ws.iter().enumerate() {
                b[i * 2..i * 2 + 2].copy_from_slice(&v.to_ne_bytes());
            }
            t.mm.copy_out(arg, &b)?;
        }
        I::TIOCSWINSZ => {
            let mut b = [0u8; 8];
            t.mm.copy_in(arg, &mut b)?;
            term.set_winsize(&t.kernel, winsize_from_bytes(&b));
        }
        I::FIONREAD | TIOCOUTQ => {
            let n = if req == I::FIONREAD { end.available() } else { 0 };
            t.write_obj(arg, &(n.min(i32::MAX as usize) as i32))?;
        }
        TIOCGPTN if end.master => t.write_obj(arg, &term.index)?,
        TIOCSPTLCK if end.master => {
            let lock: i32 = t.read_obj(arg)?;
            term.state().locked = lock != 0;
        }
        TIOCGPTLCK if end.master => {
            let locked = i32::from(term.state().locked);
            t.write_obj(arg, &locked)?;
        }
        TIOCGPTPEER if end.master => {
            use syscalls::flags::OpenFlags as O;
            let flags = arg as u32;
            let slave = term.open_slave(true)?;
            let fl = flags & (O::O_ACCMODE | O::O_NONBLOCK.bits()) | O::O_LARGEFILE.bits();
            let file = crate::vfs::File::new(crate::vfs::FileKind::Tty(slave), fl, None);
            let cloexec = flags & O::O_CLOEXEC.bits() != 0;
            return Ok(t.fds.insert(file, cloexec, 0, t.nofile())? as u64);
        }
        TIOCSCTTY => {
            let (pid, sid, pgid) = {
                let g = t.group().state();
                (t.group().pid, g.sid, g.pgid)
            };
            if pid != sid || of_session(sid).is_some_and(|c| !Arc::ptr_eq(&c, term)) {
                return Err(Errno::EPERM);
            }
            let mut st = term.state();
            match st.session {
                Some(s) if s == sid => {}
                Some(_) if arg == 1 && t.creds.capable(syscalls::flags::cap::CAP_SYS_ADMIN) => {}
                Some(_) => return Err(Errno::EPERM),
                None => {}
            }
            st.session = Some(sid);
            st.foreground = pgid;
            st.leader = Arc::downgrade(t.group());
        }
        TIOCNOTTY => {
            let sid = t.group().state().sid;
            let mut st = term.state();
            if st.session != Some(sid) {
                return Err(Errno::ENOTTY);
            }
            if t.group().pid == sid {
                st.session = None;
                st.foreground = 0;
                st.leader = Weak::new();
            }
        }
        I::TIOCGPGRP | TIOCGSID => {
            let sid = t.group().state().sid;
            let st = term.state();
            // The master answers for its slave, as on Linux.
            if st.session.is_none() || (!end.master && st.session != Some(sid)) {
                return Err(Errno::ENOTTY);
            }
            let v = if req == I::TIOCGPGRP { st.foreground } else { st.session.unwrap_or(0) };
            drop(st);
            t.write_obj(arg, &t.vpid(v))?;
        }
        I::TIOCSPGRP => {
            let pgrp: i32 = t.read_obj(arg)?;
            let sid = t.group().state().sid;
            if term.state().session != Some(sid) {
                return Err(Errno::ENOTTY);
            }
            if pgrp < 0 {
                return Err(Errno::EINVAL);
            }
            if !end.master {
                end.job_control(t, S::SIGTTOU, false)?;
            }
            // A group of the caller's namespace (none there: no such group).
            let pgrp = t.global_id(pgrp).ok_or(Errno::ESRCH)?;
            let exists = t.kernel.pids().groups.values().any(|g| {
                let s = g.state();
                s.pgid == pgrp && s.sid == sid
            });
            if !exists {
                return Err(Errno::EPERM);
            }
            term.state().foreground = pgrp;
        }
        TCFLSH => {
            let mut st = term.state();
            let (input, output) = match arg {
                0 => (true, false),
                1 => (false, true),
                2 => (true, true),
                _ => return Err(Errno::EINVAL),
            };
            // The master's input queue is the slave's output and so on.
            let (flush_in, flush_out) = if end.master { (output, input) } else { (input, output) };
            if flush_in {
                st.lines.clear();
                st.editing.clear();
                st.raw.clear();
            }
            if flush_out {
                st.output.clear();
            }
            drop(st);
            term.changed();
        }
        TCSBRK | TCSBRKP | TCXONC => {}
        TIOCGDEV if !end.master => t.write_obj(arg, &(term.rdev() as u32))?,
        _ => return Err(Errno::ENOTTY),
    }
    Ok(0)
}

const TCSBRK: u32 = 0x5409;
const TCXONC: u32 = 0x540A;
const TCFLSH: u32 = 0x540B;
const TIOCSCTTY: u32 = 0x540E;
const TIOCOUTQ: u32 = 0x5411;
const TIOCNOTTY: u32 = 0x5422;
const TCSBRKP: u32 = 0x5425;
const TIOCGSID: u32 = 0x5429;
const TIOCGPTN: u32 = 0x8004_5430;
const TIOCSPTLCK: u32 = 0x4004_5431;
const TIOCGDEV: u32 = 0x8004_5432;
const TIOCGPTLCK: u32 = 0x8004_5439;
const TIOCGPTPEER: u32 = 0x5441;
