//! timerfd: a timer whose expirations are read as a count.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use syscalls::flags::poll as P;
use syscalls::structs::{Itimerspec, Timespec};
use syscalls::Errno;

use super::AnonFile;
use crate::kernel::{EventQueue, Wakeups};
use crate::task::Task;

pub struct TimerFd {
    /// The host clock absolute times are read against.
    clock: i32,
    state: Mutex<TimerState>,
    events: Arc<EventQueue>,
    wakeups: Arc<Wakeups>,
    seq: AtomicU64,
}

#[derive(Default)]
struct TimerState {
    next: Option<Instant>,
    interval: Duration,
    /// Expirations not read yet.
    ticks: u64,
}

impl TimerState {
    /// Counts the expirations up to now.
    fn update(&mut self) {
        let Some(next) = self.next else { return };
        let now = Instant::now();
        if now < next {
            return;
        }
        if self.interval.is_zero() {
            self.ticks += 1;
            self.next = None;
        } else {
            let missed =
                u64::try_from((now - next).as_nanos() / self.interval.as_nanos()).unwrap_or(u64::MAX).saturating_add(1);
            self.ticks = self.ticks.saturating_add(missed);
            self.next = Some(crate::timer::instant_steps(next, self.interval, missed));
        }
    }
}

pub fn duration_of(ts: &Timespec) -> Result<Duration, Errno> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

pub fn timespec_of(d: Duration) -> Timespec {
    Timespec { tv_sec: d.as_secs() as i64, tv_nsec: i64::from(d.subsec_nanos()) }
}

impl TimerFd {
    pub fn new(clock: i32, events: Arc<EventQueue>, wakeups: Arc<Wakeups>) -> TimerFd {
        TimerFd { clock, state: Mutex::new(TimerState::default()), events, wakeups, seq: AtomicU64::new(0) }
    }

    fn state(&self) -> MutexGuard<'_, TimerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(st: &TimerState) -> Itimerspec {
        let left = st.next.map_or(Duration::ZERO, |n| n.saturating_duration_since(Instant::now()));
        // An armed timer due now still shows a little time left.
        let left = if st.next.is_some() && left.is_zero() { Duration::from_nanos(1) } else { left };
        Itimerspec { it_interval: timespec_of(st.interval), it_value: timespec_of(left) }
    }

    /// timerfd_gettime.
    pub fn get(&self) -> Itimerspec {
        let mut st = self.state();
        st.update();
        Self::current(&st)
    }

    /// timerfd_settime: arms (or with a zero value disarms) the timer;
    /// returns the old setting.
    pub fn set(&self, new: &Itimerspec, absolute: bool) -> Result<Itimerspec, Errno> {
        let value = duration_of(&new.it_value)?;
        let interval = duration_of(&new.it_interval)?;
        let next = if value.is_zero() {
            None
        } else if absolute {
            let now = crate::syscalls::time::now(self.clock)?;
            let now = Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec as u32);
            Some(crate::timer::instant_after(Instant::now(), value.saturating_sub(now)))
        } else {
            Some(crate::timer::instant_after(Instant::now(), value))
        };
        let old = {
            let mut st = self.state();
            st.update();
            let old = Self::current(&st);
            *st = TimerState { next, interval, ticks: 0 };
            old
        };
        if let Some(n) = next {
            self.wakeups.at(n);
        }
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.events.notify();
        Ok(old)
    }

    /// Expirations so far, asking for a wake-up at the next one when there
    /// are none.
    fn ticks(&self) -> u64 {
        let mut st = self.state();
        let before = st.ticks;
        st.update();
        if st.ticks != before {
            self.seq.fetch_add(1, Ordering::SeqCst);
        }
        if st.ticks == 0 {
            if let Some(n) = st.next {
                self.wakeups.at(n);
            }
        }
        st.ticks
    }
}

impl AnonFile for TimerFd {
    fn name(&self) -> &'static str {
        "timerfd"
    }

    fn read(&self, t: &Task, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let n = t.block_on(None, || {
            if self.ticks() > 0 {
                return Some(Ok(std::mem::take(&mut self.state().ticks)));
            }
            nonblock.then_some(Err(Errno::EAGAIN))
        })??;
        buf[..8].copy_from_slice(&n.to_ne_bytes());
        Ok(8)
    }

    fn readiness(&self, _t: &Task) -> i16 {
        if self.ticks() > 0 {
            P::POLLIN
        } else {
            0
        }
    }

    fn seq(&self) -> Option<u64> {
        self.ticks();
        Some(self.seq.load(Ordering::SeqCst))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
