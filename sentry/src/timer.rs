//! Interval timers that fire a callback: ITIMER_REAL (alarm, setitimer)
//! and POSIX timers (timer_create). Each arming runs a host thread that a
//! re-arm or cancel retires.
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use syscalls::flags::{sa, signal};
use syscalls::structs::Siginfo;

use crate::kernel::Kernel;
use crate::process::{TaskShared, ThreadGroup};

/// `from + d`, or far in the future when that would overflow: a guest may
/// ask for any timeout, which must never panic the sentry.
pub fn instant_after(from: Instant, d: Duration) -> Instant {
    from.checked_add(d).unwrap_or_else(|| from + Duration::from_secs(1 << 40))
}

/// `base + step * n`, likewise saturating far in the future.
pub fn instant_steps(base: Instant, step: Duration, n: u64) -> Instant {
    let d = u32::try_from(n).ok().and_then(|n| step.checked_mul(n)).unwrap_or(Duration::from_secs(1 << 40));
    instant_after(base, d)
}

#[derive(Default)]
struct State {
    deadline: Option<Instant>,
    interval: Duration,
    /// Bumped on every (re)arm: a timer thread whose generation is stale
    /// exits.
    generation: u64,
    /// Expirations that found the last signal still pending (POSIX
    /// timers' overrun count), since that signal was queued.
    overrun: u64,
    /// The overrun count when the last signal was delivered
    /// (timer_getoverrun).
    overrun_last: u64,
}

/// What an expiry does; false stops the timer (its target is gone).
pub type Fire = Arc<dyn Fn(&IntervalTimer) -> bool + Send + Sync>;

/// A one-shot or periodic timer.
#[derive(Default)]
pub struct IntervalTimer {
    state: Mutex<State>,
    cv: Condvar,
}

impl IntervalTimer {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Time left and interval.
    pub fn get(&self) -> (Duration, Duration) {
        let st = self.lock();
        let left = st.deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()));
        (left, st.interval)
    }

    /// Disarms the timer.
    pub fn cancel(&self) {
        let mut st = self.lock();
        st.generation += 1;
        st.deadline = None;
        drop(st);
        self.cv.notify_all();
    }

    /// The overrun count of the last expiry that was delivered.
    pub fn last_overrun(&self) -> u64 {
        self.lock().overrun_last
    }

    /// The timer's signal is being delivered: its overrun count is
    /// settled (returned) and starts again.
    pub fn delivered(&self) -> u64 {
        let mut st = self.lock();
        st.overrun_last = std::mem::take(&mut st.overrun);
        st.overrun_last
    }

    /// Arms the timer to expire after `value` (disarms it for zero), then
    /// every `interval`; `fire` runs at each expiry. Returns the old
    /// setting.
    pub fn set(self: &Arc<IntervalTimer>, value: Duration, interval: Duration, fire: Fire) -> (Duration, Duration) {
        let old = self.get();
        let generation = {
            let mut st = self.lock();
            st.generation += 1;
            st.deadline = (!value.is_zero()).then(|| instant_after(Instant::now(), value));
            st.interval = interval;
            st.overrun = 0;
            st.overrun_last = 0;
            st.generation
        };
        self.cv.notify_all();
        if !value.is_zero() {
            let me = self.clone();
            let spawned = std::thread::Builder::new().name("timer".into()).spawn(move || me.run(generation, &fire));
            if spawned.is_err() {
                tracing::error!(target: "sentry::timer", "cannot start a timer thread");
            }
        }
        old
    }

    fn run(&self, generation: u64, fire: &Fire) {
        let mut st = self.lock();
        loop {
            if st.generation != generation {
                return;
            }
            let Some(deadline) = st.deadline else { return };
            let now = Instant::now();
            if now < deadline {
                st = self.cv.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
                continue;
            }
            // Periodic timers that fell behind count the missed periods.
            let mut next = None;
            if !st.interval.is_zero() {
                let missed = u64::try_from((now - deadline).as_nanos() / st.interval.as_nanos()).unwrap_or(u64::MAX);
                st.overrun = st.overrun.saturating_add(missed);
                next = Some(instant_steps(deadline, st.interval, missed.saturating_add(1)));
            }
            st.deadline = next;
            drop(st);
            let go_on = fire(self);
            st = self.lock();
            if !go_on {
                return;
            }
        }
    }
}

/// The SIGALRM of ITIMER_REAL and alarm(2), sent to `group`.
pub fn alarm_fire(kernel: &Arc<Kernel>, group: &Arc<ThreadGroup>) -> Fire {
    let (kernel, group) = (kernel.clone(), Arc::downgrade(group));
    Arc::new(move |_| {
        let Some(group) = group.upgrade() else { return false };
        if group.state().exit.is_some() {
            return false;
        }
        group.send(crate::signal::user_info(signal::SIGALRM, sa::SI_KERNEL, 0, 0));
        kernel.events.notify();
        true
    })
}

/// Where a POSIX timer's signal goes.
pub enum TimerTarget {
    Process(Weak<ThreadGroup>),
    Thread(Weak<TaskShared>),
    /// SIGEV_NONE: no signal.
    None,
}

/// A POSIX timer's signal: `sig` with SI_TIMER, the timer id and value;
/// an expiry while the last one is still pending counts as an overrun.
pub fn posix_fire(kernel: &Arc<Kernel>, target: TimerTarget, sig: i32, id: i32, value: u64) -> Fire {
    let kernel = kernel.clone();
    Arc::new(move |timer| {
        let pending_bit = crate::signal::bit(sig);
        // The overrun count goes into the siginfo when it is delivered
        // (see `Task::settle_timer_signal`).
        let send = |already: bool, deliver: &dyn Fn(Siginfo)| {
            if already {
                timer.lock().overrun += 1;
            } else {
                let mut info = Siginfo { signo: sig, code: SI_TIMER, ..Default::default() };
                info.fields[0] = u64::from(id as u32);
                info.fields[1] = value;
                deliver(info);
            }
        };
        match &target {
            TimerTarget::None => return true,
            TimerTarget::Process(g) => {
                let Some(group) = g.upgrade() else { return false };
                if group.state().exit.is_some() {
                    return false;
                }
                let already = group.pending().bits & pending_bit != 0;
                send(already, &|info| group.send(info));
            }
            TimerTarget::Thread(t) => {
                let Some(task) = t.upgrade() else { return false };
                if task.group.state().exit.is_some() {
                    return false;
                }
                let already = task.pending().bits & pending_bit != 0;
                send(already, &|info| {
                    task.queue(info);
                    task.interrupt();
                });
            }
        }
        kernel.events.notify();
        true
    })
}

/// A POSIX timer: its clock and what its expiries do.
pub struct PosixTimer {
    pub timer: Arc<IntervalTimer>,
    pub clock: i32,
    pub fire: Fire,
}

/// si_code of a POSIX timer's signal.
pub use syscalls::flags::sigev::SI_TIMER;

/// What a CPU-time timer's expiry does; false stops it.
pub type CpuFire = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Default)]
struct CpuState {
    /// The process CPU time at which the timer expires.
    target: Option<Duration>,
    interval: Duration,
    /// The host clock of the process's guest CPU time.
    clock: i32,
    generation: u64,
}

/// ITIMER_VIRTUAL and ITIMER_PROF: expire after the process has used CPU
/// time (the clock of its stub process). A host thread per arming checks
/// the clock, sleeping no longer than the time left could take to use up
/// on every CPU.
#[derive(Default)]
pub struct CpuTimer {
    state: Mutex<CpuState>,
    cv: Condvar,
}

/// The value of host clock `clock` (None once its process is gone).
pub fn cpu_now(clock: i32) -> Option<Duration> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::from_raw(clock)).ok()?;
    Some(Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
}

impl CpuTimer {
    fn lock(&self) -> std::sync::MutexGuard<'_, CpuState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// CPU time left and interval.
    pub fn get(&self) -> (Duration, Duration) {
        let st = self.lock();
        let left = match (st.target, cpu_now(st.clock)) {
            (Some(target), Some(now)) => target.saturating_sub(now).max(Duration::from_micros(1)),
            _ => Duration::ZERO,
        };
        (left, st.interval)
    }

    pub fn cancel(&self) {
        let mut st = self.lock();
        st.generation += 1;
        st.target = None;
        drop(st);
        self.cv.notify_all();
    }

    /// Arms the timer to expire after `value` more CPU time of `clock`
    /// (disarms it for zero), then every `interval`. Returns the old
    /// setting.
    pub fn set(
        self: &Arc<CpuTimer>,
        clock: i32,
        value: Duration,
        interval: Duration,
        ncpus: usize,
        fire: CpuFire,
    ) -> (Duration, Duration) {
        let old = self.get();
        let Some(now) = cpu_now(clock) else { return old };
        let generation = {
            let mut st = self.lock();
            st.generation += 1;
            st.target = (!value.is_zero()).then(|| now.checked_add(value).unwrap_or(Duration::MAX));
            st.interval = interval;
            st.clock = clock;
            st.generation
        };
        self.cv.notify_all();
        if !value.is_zero() {
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("cpu-timer".into())
                .spawn(move || me.run(generation, ncpus.max(1) as u32, &fire));
            if spawned.is_err() {
                tracing::error!(target: "sentry::timer", "cannot start a CPU timer thread");
            }
        }
        old
    }

    fn run(&self, generation: u64, ncpus: u32, fire: &CpuFire) {
        let mut st = self.lock();
        loop {
            if st.generation != generation {
                return;
            }
            let Some(target) = st.target else { return };
            let Some(now) = cpu_now(st.clock) else { return };
            if now < target {
                let wait = ((target - now) / ncpus).max(Duration::from_millis(1));
                st = self.cv.wait_timeout(st, wait).unwrap_or_else(|e| e.into_inner()).0;
                continue;
            }
            st.target = (!st.interval.is_zero()).then(|| {
                let missed = u32::try_from((now - target).as_nanos() / st.interval.as_nanos()).unwrap_or(u32::MAX);
                st.interval
                    .checked_mul(missed.saturating_add(1))
                    .and_then(|d| target.checked_add(d))
                    .unwrap_or(Duration::MAX)
            });
            drop(st);
            let go_on = fire();
            st = self.lock();
            if !go_on {
                return;
            }
        }
    }
}

/// The signal of a CPU-time itimer (SIGVTALRM, SIGPROF), sent to `group`.
pub fn cpu_timer_fire(kernel: &Arc<Kernel>, group: &Arc<ThreadGroup>, sig: i32) -> CpuFire {
    let (kernel, group) = (kernel.clone(), Arc::downgrade(group));
    Arc::new(move || {
        let Some(group) = group.upgrade() else { return false };
        if group.state().exit.is_some() {
            return false;
        }
        group.send(crate::signal::user_info(sig, sa::SI_KERNEL, 0, 0));
        kernel.events.notify();
        true
    })
}
