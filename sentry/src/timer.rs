//! ITIMER_REAL (alarm, setitimer): a per-process real-time timer that
//! sends SIGALRM, run by a host thread per arming that a re-arm retires.
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use syscalls::flags::{sa, signal};

use crate::kernel::Kernel;
use crate::process::ThreadGroup;

#[derive(Default)]
struct State {
    deadline: Option<Instant>,
    interval: Duration,
    /// Bumped on every (re)arm: a timer thread whose generation is stale
    /// exits.
    generation: u64,
}

/// A process's ITIMER_REAL.
#[derive(Default)]
pub struct RealTimer {
    state: Mutex<State>,
    cv: Condvar,
}

impl RealTimer {
    /// Time left and interval.
    pub fn get(&self) -> (Duration, Duration) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let left = st.deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()));
        (left, st.interval)
    }

    /// Disarms the timer for good (the process exited).
    pub fn cancel(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.generation += 1;
        st.deadline = None;
        drop(st);
        self.cv.notify_all();
    }

    /// Arms (or with a zero value disarms) the timer; returns the old
    /// setting.
    pub fn set(
        self: &Arc<RealTimer>,
        kernel: &Arc<Kernel>,
        group: &Arc<ThreadGroup>,
        value: Duration,
        interval: Duration,
    ) -> (Duration, Duration) {
        let old = self.get();
        let generation = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.generation += 1;
            st.deadline = (!value.is_zero()).then(|| Instant::now() + value);
            st.interval = interval;
            st.generation
        };
        self.cv.notify_all();
        if !value.is_zero() {
            let (me, kernel, group) = (self.clone(), kernel.clone(), Arc::downgrade(group));
            let spawned =
                std::thread::Builder::new().name("itimer".into()).spawn(move || me.run(generation, &kernel, &group));
            if spawned.is_err() {
                tracing::error!(target: "sentry::timer", "cannot start a timer thread");
            }
        }
        old
    }

    fn run(&self, generation: u64, kernel: &Kernel, group: &std::sync::Weak<ThreadGroup>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
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
            let Some(group) = group.upgrade() else { return };
            if group.state().exit.is_some() {
                return;
            }
            group.send(crate::signal::user_info(signal::SIGALRM, sa::SI_KERNEL, 0, 0));
            kernel.events.notify();
            st.deadline = (!st.interval.is_zero()).then(|| deadline + st.interval);
        }
    }
}
