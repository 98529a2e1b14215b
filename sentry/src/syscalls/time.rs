//! Time, sleeping, randomness and system information.
use std::sync::Arc;
use std::time::{Duration, Instant};

use syscalls::flags::{clock as C, getrandom as GR, signal};
use syscalls::structs::{Sysinfo, Timespec, Timeval, Timezone};
use syscalls::Errno;

use super::SysResult;
use crate::task::Task;

/// A host clock id for a guest one; CPU-time clocks measure the stub.
fn host_clock(t: &Task, id: i32) -> Result<libc::clockid_t, Errno> {
    match id {
        C::CLOCK_REALTIME
        | C::CLOCK_MONOTONIC
        | C::CLOCK_MONOTONIC_RAW
        | C::CLOCK_REALTIME_COARSE
        | C::CLOCK_MONOTONIC_COARSE
        | C::CLOCK_BOOTTIME
        | C::CLOCK_TAI => Ok(id),
        C::CLOCK_PROCESS_CPUTIME_ID => t.mm.cpu_clock().ok_or(Errno::EINVAL),
        _ => Err(Errno::EINVAL),
    }
}

pub fn now(clock: libc::clockid_t) -> Result<Timespec, Errno> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::from_raw(clock)).map_err(|e| Errno::from_raw(e as i32))?;
    Ok(Timespec { tv_sec: ts.tv_sec(), tv_nsec: ts.tv_nsec() })
}

pub fn sys_clock_gettime(t: &mut Task, id: i32, tp: u64) -> SysResult {
    let ts = if id == C::CLOCK_THREAD_CPUTIME_ID {
        let d = thread_cpu_time(t);
        Timespec { tv_sec: d.as_secs() as i64, tv_nsec: i64::from(d.subsec_nanos()) }
    } else {
        now(host_clock(t, id)?)?
    };
    t.write_obj(tp, &ts)?;
    Ok(0)
}

pub fn sys_clock_getres(t: &mut Task, id: i32, tp: u64) -> SysResult {
    let clock = if id == C::CLOCK_THREAD_CPUTIME_ID { C::CLOCK_MONOTONIC } else { host_clock(t, id)? };
    if tp != 0 {
        let r = nix::time::clock_getres(nix::time::ClockId::from_raw(clock)).map_err(|e| Errno::from_raw(e as i32))?;
        t.write_obj(tp, &Timespec { tv_sec: r.tv_sec(), tv_nsec: r.tv_nsec() })?;
    }
    Ok(0)
}

pub fn sys_gettimeofday(t: &mut Task, tv: u64, tz: u64) -> SysResult {
    let ts = now(C::CLOCK_REALTIME)?;
    if tv != 0 {
        t.write_obj(tv, &Timeval { tv_sec: ts.tv_sec, tv_usec: ts.tv_nsec / 1000 })?;
    }
    if tz != 0 {
        t.write_obj(tz, &Timezone::default())?;
    }
    Ok(0)
}

pub fn sys_time(t: &mut Task, tloc: u64) -> SysResult {
    let ts = now(C::CLOCK_REALTIME)?;
    if tloc != 0 {
        t.write_obj(tloc, &ts.tv_sec)?;
    }
    Ok(ts.tv_sec as u64)
}

pub(crate) fn read_timespec(t: &Task, addr: u64) -> Result<Timespec, Errno> {
    let ts: Timespec = t.read_obj(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(ts)
}

/// Sleeps until `deadline`; a signal to handle cuts it short with EINTR,
/// writing the time left to `rem` (if not 0).
fn sleep_until(t: &mut Task, deadline: Instant, rem: u64) -> SysResult {
    match t.block_on(Some(deadline), || None::<()>) {
        Err(e) if e == Errno::ETIMEDOUT => Ok(0),
        _ => {
            if rem != 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                t.write_obj(rem, &Timespec { tv_sec: left.as_secs() as i64, tv_nsec: i64::from(left.subsec_nanos()) })?;
            }
            // A handler makes it EINTR; otherwise (a stop and continue) the
            // sleep goes on for the time left.
            t.restart_block = Some(crate::task::RestartBlock::Sleep { deadline, rem });
            Err(super::ERESTART_RESTARTBLOCK)
        }
    }
}

/// restart_syscall: goes on with what a signal interrupted.
pub fn sys_restart_syscall(t: &mut Task) -> SysResult {
    match t.restart_block.take() {
        Some(crate::task::RestartBlock::Sleep { deadline, rem }) => sleep_until(t, deadline, rem),
        None => Err(Errno::EINTR),
    }
}

/// The instant at which `clock` reads `ts` (an absolute time; now if it
/// has passed).
pub(crate) fn absolute_deadline(clock: i32, ts: &Timespec) -> Result<Instant, Errno> {
    let n = now(clock)?;
    let want = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    let have = n.tv_sec as i128 * 1_000_000_000 + n.tv_nsec as i128;
    let left = (want - have).max(0);
    Ok(crate::timer::instant_after(Instant::now(), Duration::from_nanos(left.min(u64::MAX as i128) as u64)))
}

fn deadline_after(ts: &Timespec) -> Instant {
    let d = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    crate::timer::instant_after(Instant::now(), d)
}

pub fn sys_nanosleep(t: &mut Task, req: u64, rem: u64) -> SysResult {
    let ts = read_timespec(t, req)?;
    sleep_until(t, deadline_after(&ts), rem)
}

pub fn sys_clock_nanosleep(t: &mut Task, id: i32, flags: u32, req: u64, rem: u64) -> SysResult {
    if id == C::CLOCK_THREAD_CPUTIME_ID {
        return Err(Errno::EINVAL);
    }
    let clock = host_clock(t, id)?;
    let ts = read_timespec(t, req)?;
    if flags & C::TIMER_ABSTIME != 0 {
        let n = now(clock)?;
        let want = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
        let have = n.tv_sec as i128 * 1_000_000_000 + n.tv_nsec as i128;
        let left = Timespec {
            tv_sec: ((want - have).max(0) / 1_000_000_000) as i64,
            tv_nsec: ((want - have).max(0) % 1_000_000_000) as i64,
        };
        // An absolute sleep restarts with the same arguments.
        return match sleep_until(t, deadline_after(&left), 0) {
            Err(e) if e == super::ERESTART_RESTARTBLOCK => {
                t.restart_block = None;
                Err(super::ERESTARTNOHAND)
            }
            r => r,
        };
    }
    sleep_until(t, deadline_after(&ts), rem)
}

pub fn sys_getrandom(t: &mut Task, buf: u64, len: usize, flags: u32) -> SysResult {
    if flags & !(GR::GRND_NONBLOCK | GR::GRND_RANDOM | GR::GRND_INSECURE) != 0
        || flags & (GR::GRND_RANDOM | GR::GRND_INSECURE) == (GR::GRND_RANDOM | GR::GRND_INSECURE)
    {
        return Err(Errno::EINVAL);
    }
    // Linux returns at most 32 MiB - 1 per call; we return at most 1 MiB.
    let n = len.min(crate::mm::MAX_COPY);
    t.mm.check_writable(buf, n)?;
    let mut data = vec![0u8; n];
    let got = crate::host::getrandom(&mut data, flags & GR::GRND_NONBLOCK)?;
    t.mm.copy_out(buf, &data[..got])?;
    Ok(got as u64)
}

pub fn sys_sysinfo(t: &mut Task, buf: u64) -> SysResult {
    let h = crate::host::sysinfo();
    let s = Sysinfo {
        uptime: t.kernel.boot_time.elapsed().as_secs() as i64,
        loads: [0; 3],
        totalram: h.totalram,
        freeram: h.freeram,
        sharedram: h.sharedram,
        bufferram: h.bufferram,
        totalswap: 0,
        freeswap: 0,
        procs: 1,
        mem_unit: h.mem_unit,
        ..Default::default()
    };
    t.write_obj(buf, &s)?;
    Ok(0)
}

pub fn sys_futex(t: &mut Task, addr: u64, op: u32, val: u32, timeout: u64, addr2: u64, val3: u32) -> SysResult {
    use syscalls::flags::futex::{FUTEX_BITSET_MATCH_ANY as ANY, *};
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    let table = &t.kernel.futexes;
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let deadline = if timeout == 0 {
                None
            } else {
                let ts = read_timespec(t, timeout)?;
                if cmd == FUTEX_WAIT {
                    Some(deadline_after(&ts))
                } else {
                    // An absolute time on CLOCK_MONOTONIC (or REALTIME).
                    let clock = if op & FUTEX_CLOCK_REALTIME != 0 { C::CLOCK_REALTIME } else { C::CLOCK_MONOTONIC };
                    Some(absolute_deadline(clock, &ts)?)
                }
            };
            let bitset = if cmd == FUTEX_WAIT { ANY } else { val3 };
            table.wait(t, addr, private, val, deadline, bitset)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let key = t.futex_key(addr, private)?;
            table.wake(t, key, val, if cmd == FUTEX_WAKE { ANY } else { val3 })
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let nmove = timeout as u32;
            let cmp = (cmd == FUTEX_CMP_REQUEUE).then_some(val3);
            table.requeue(t, addr, addr2, private, (val, nmove), cmp)
        }
        FUTEX_WAKE_OP => table.wake_op(t, addr, addr2, private, (val, timeout as u32), val3),
        _ => {
            tracing::warn!(target: "sentry::syscall", "futex operation {cmd} not supported");
            Err(Errno::ENOSYS)
        }
    }
}

/// `struct itimerval`.
#[derive(
    Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout,
)]
#[repr(C)]
struct Itimerval {
    interval: Timeval,
    value: Timeval,
}

fn tv(d: Duration) -> Timeval {
    Timeval { tv_sec: d.as_secs() as i64, tv_usec: i64::from(d.subsec_micros()) }
}

fn duration(v: &Timeval) -> Result<Duration, Errno> {
    if v.tv_sec < 0 || !(0..1_000_000).contains(&v.tv_usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(v.tv_sec as u64, (v.tv_usec * 1000) as u32))
}

const ITIMER_REAL: i32 = 0;
const ITIMER_VIRTUAL: i32 = 1;
const ITIMER_PROF: i32 = 2;

pub fn sys_getitimer(t: &mut Task, which: i32, out: u64) -> SysResult {
    let (left, interval) = match which {
        ITIMER_REAL => t.group().real_timer.get(),
        ITIMER_VIRTUAL | ITIMER_PROF => t.group().cpu_timers[(which - 1) as usize].get(),
        _ => return Err(Errno::EINVAL),
    };
    t.write_obj(out, &Itimerval { interval: tv(interval), value: tv(left) })?;
    Ok(0)
}

/// setitimer. ITIMER_VIRTUAL and ITIMER_PROF both count the guest's CPU
/// time (user and system time are not told apart).
pub fn sys_setitimer(t: &mut Task, which: i32, new: u64, old: u64) -> SysResult {
    if !(ITIMER_REAL..=ITIMER_PROF).contains(&which) {
        return Err(Errno::EINVAL);
    }
    let v: Itimerval = if new != 0 { t.read_obj(new)? } else { Itimerval::default() };
    let (value, interval) = (duration(&v.value)?, duration(&v.interval)?);
    let group = t.group().clone();
    let (left, int) = if which == ITIMER_REAL {
        let fire = crate::timer::alarm_fire(&t.kernel, &group);
        group.real_timer.set(value, interval, fire)
    } else {
        let sig = if which == ITIMER_VIRTUAL { signal::SIGVTALRM } else { signal::SIGPROF };
        let clock = t.mm.cpu_clock().ok_or(Errno::EINVAL)?;
        let fire = crate::timer::cpu_timer_fire(&t.kernel, &group, sig);
        group.cpu_timers[(which - 1) as usize].set(clock, value, interval, t.kernel.ncpus, fire)
    };
    if old != 0 {
        t.write_obj(old, &Itimerval { interval: tv(int), value: tv(left) })?;
    }
    Ok(0)
}

pub fn sys_alarm(t: &mut Task, secs: u32) -> SysResult {
    let group = t.group().clone();
    let fire = crate::timer::alarm_fire(&t.kernel, &group);
    let (left, _) = group.real_timer.set(Duration::from_secs(u64::from(secs)), Duration::ZERO, fire);
    // Whole seconds left, rounded up as Linux does (0 only if none).
    let s = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    Ok(s)
}

/// CPU time of the task's guest code (the stub's), as a duration.
fn cpu_time(t: &Task) -> Duration {
    t.mm.cpu_clock().and_then(crate::timer::cpu_now).unwrap_or_default()
}

/// CPU time of this thread's guest code: the stub's process clock when the
/// process has one thread, else the time the task spent in guest code.
fn thread_cpu_time(t: &Task) -> Duration {
    if t.group().state().threads.len() == 1 {
        cpu_time(t)
    } else {
        t.guest_time
    }
}

pub fn sys_getrusage(t: &mut Task, who: i32, out: u64) -> SysResult {
    const RUSAGE_SELF: i32 = 0;
    const RUSAGE_CHILDREN: i32 = -1;
    const RUSAGE_THREAD: i32 = 1;
    let user = match who {
        RUSAGE_SELF => cpu_time(t),
        RUSAGE_THREAD => thread_cpu_time(t),
        RUSAGE_CHILDREN => t.group().state().children_time,
        _ => return Err(Errno::EINVAL),
    };
    // struct rusage: utime, stime, then 14 longs; only the times are kept.
    let mut buf = [0u8; 144];
    let u = tv(user);
    buf[0..8].copy_from_slice(&u.tv_sec.to_le_bytes());
    buf[8..16].copy_from_slice(&u.tv_usec.to_le_bytes());
    t.mm.copy_out(out, &buf)?;
    Ok(0)
}

pub fn sys_times(t: &mut Task, out: u64) -> SysResult {
    let ticks = |d: Duration| (d.as_millis() / 10) as i64;
    if out != 0 {
        let children = t.group().state().children_time;
        let tms: [i64; 4] = [ticks(cpu_time(t)), 0, ticks(children), 0];
        t.write_obj(out, &tms)?;
    }
    Ok(ticks(t.kernel.boot_time.elapsed()) as u64)
}

use syscalls::flags::sigev::{SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD, SIGEV_THREAD_ID};
use syscalls::structs::Sigevent;

/// Most POSIX timers a process may have (each armed one is a host thread).
const MAX_TIMERS: usize = 256;

pub fn sys_timer_create(t: &mut Task, clock: i32, sevp: u64, out: u64) -> SysResult {
    use crate::timer::TimerTarget;
    match clock {
        C::CLOCK_REALTIME
        | C::CLOCK_MONOTONIC
        | C::CLOCK_BOOTTIME
        | C::CLOCK_REALTIME_ALARM
        | C::CLOCK_BOOTTIME_ALARM => {}
        C::CLOCK_PROCESS_CPUTIME_ID | C::CLOCK_THREAD_CPUTIME_ID => {
            tracing::warn!(target: "sentry::time", "timers on CPU-time clocks are not supported yet");
            return Err(Errno::EINVAL);
        }
        _ => return Err(Errno::EINVAL),
    }
    let group = t.group().clone();
    let mut timers = group.timers.lock().unwrap_or_else(|e| e.into_inner());
    if timers.len() >= MAX_TIMERS {
        return Err(Errno::EAGAIN);
    }
    let id = (0..).find(|i| !timers.contains_key(i)).unwrap_or(0);
    let ev = if sevp != 0 {
        t.read_obj::<Sigevent>(sevp)?
    } else {
        Sigevent {
            value: id as u64,
            signo: syscalls::flags::signal::SIGALRM,
            notify: SIGEV_SIGNAL,
            ..Default::default()
        }
    };
    let target = match ev.notify {
        SIGEV_NONE => TimerTarget::None,
        SIGEV_SIGNAL | SIGEV_THREAD => TimerTarget::Process(Arc::downgrade(&group)),
        SIGEV_THREAD_ID => {
            let task = t.task_by_id(ev.tid).ok_or(Errno::EINVAL)?;
            if !Arc::ptr_eq(&task.group, &group) {
                return Err(Errno::EINVAL);
            }
            TimerTarget::Thread(Arc::downgrade(&task))
        }
        _ => return Err(Errno::EINVAL),
    };
    if !matches!(target, TimerTarget::None) && !crate::signal::valid(ev.signo) {
        return Err(Errno::EINVAL);
    }
    t.write_obj(out, &id)?;
    let timer = Arc::new(crate::timer::PosixTimer {
        timer: Default::default(),
        clock,
        fire: crate::timer::posix_fire(&t.kernel, target, ev.signo, id, ev.value),
    });
    timers.insert(id, timer);
    Ok(0)
}

fn posix_timer(t: &Task, id: i32) -> Result<Arc<crate::timer::PosixTimer>, Errno> {
    t.group().timers.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned().ok_or(Errno::EINVAL)
}

fn itimerspec_of(left: Duration, interval: Duration) -> syscalls::structs::Itimerspec {
    use crate::vfs::timerfd::timespec_of;
    syscalls::structs::Itimerspec { it_interval: timespec_of(interval), it_value: timespec_of(left) }
}

pub fn sys_timer_settime(t: &mut Task, id: i32, flags: i32, new: u64, old: u64) -> SysResult {
    use crate::vfs::timerfd::duration_of;
    let timer = posix_timer(t, id)?;
    let spec: syscalls::structs::Itimerspec = t.read_obj(new)?;
    let mut value = duration_of(&spec.it_value)?;
    let interval = duration_of(&spec.it_interval)?;
    if flags & C::TIMER_ABSTIME as i32 != 0 && !value.is_zero() {
        let clock = match timer.clock {
            C::CLOCK_REALTIME_ALARM => C::CLOCK_REALTIME,
            C::CLOCK_BOOTTIME_ALARM => C::CLOCK_BOOTTIME,
            c => c,
        };
        let n = now(clock)?;
        let now = Duration::new(n.tv_sec.max(0) as u64, n.tv_nsec as u32);
        // Already past: expire at once.
        value = value.checked_sub(now).filter(|d| !d.is_zero()).unwrap_or(Duration::from_nanos(1));
    }
    let (left, int) = timer.timer.set(value, interval, timer.fire.clone());
    if old != 0 {
        t.write_obj(old, &itimerspec_of(left, int))?;
    }
    Ok(0)
}

pub fn sys_timer_gettime(t: &mut Task, id: i32, cur: u64) -> SysResult {
    let timer = posix_timer(t, id)?;
    let (left, int) = timer.timer.get();
    t.write_obj(cur, &itimerspec_of(left, int))?;
    Ok(0)
}

pub fn sys_timer_getoverrun(t: &mut Task, id: i32) -> SysResult {
    Ok(posix_timer(t, id)?.timer.last_overrun().min(i32::MAX as u64))
}

pub fn sys_timer_delete(t: &mut Task, id: i32) -> SysResult {
    let timer = t.group().timers.lock().unwrap_or_else(|e| e.into_inner()).remove(&id).ok_or(Errno::EINVAL)?;
    timer.timer.cancel();
    Ok(0)
}
