//! Futexes: tasks waiting on a 32-bit word of guest memory until another
//! task wakes them. Private futexes are keyed by address space and address,
//! shared ones by the memory-file offset behind the address, so processes
//! sharing a MAP_SHARED page meet on the same key.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use syscalls::Errno;

use crate::task::Task;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum FutexKey {
    Private(usize, u64),
    Shared(u64),
}

struct Waiter {
    woken: AtomicBool,
    bitset: u32,
}

/// Every futex with waiters.
#[derive(Default)]
pub struct FutexTable {
    queues: Mutex<HashMap<FutexKey, Vec<Arc<Waiter>>>>,
}

pub use syscalls::flags::futex::FUTEX_BITSET_MATCH_ANY;

impl FutexTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<FutexKey, Vec<Arc<Waiter>>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// FUTEX_WAIT: sleeps while the word at `addr` holds `val`.
    pub fn wait(
        &self,
        t: &Task,
        addr: u64,
        private: bool,
        val: u32,
        deadline: Option<Instant>,
        bitset: u32,
    ) -> Result<u64, Errno> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let key = t.futex_key(addr, private)?;
        let me = Arc::new(Waiter { woken: AtomicBool::new(false), bitset });
        {
            // Checking the word and queueing happen under the table lock, so a
            // waker that changes the word and then wakes cannot be missed.
            let mut q = self.lock();
            let cur: u32 = t.read_obj(addr)?;
            if cur != val {
                return Err(Errno::EAGAIN);
            }
            q.entry(key).or_default().push(me.clone());
        }
        let r = t.block_on(deadline, || me.woken.load(Ordering::SeqCst).then_some(()));
        if r.is_err() {
            let mut q = self.lock();
            if let Some(v) = q.get_mut(&key) {
                v.retain(|w| !Arc::ptr_eq(w, &me));
                if v.is_empty() {
                    q.remove(&key);
                }
            }
            drop(q);
            if me.woken.load(Ordering::SeqCst) {
                return Ok(0);
            }
        }
        match r {
            // A timed wait is not restarted after a handler (Linux's
            // restart block), only after a stop.
            Err(e) if e == crate::syscalls::ERESTARTSYS && deadline.is_some() => Err(crate::syscalls::ERESTARTNOHAND),
            r => r.map(|_| 0),
        }
    }

    /// Wakes up to `n` waiters of `key` whose bitset meets `bitset`.
    pub fn wake(&self, t: &Task, key: FutexKey, n: u32, bitset: u32) -> Result<u64, Errno> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let woke = {
            let mut q = self.lock();
            Self::wake_locked(&mut q, key, n, bitset)
        };
        if woke > 0 {
            t.kernel.events.notify();
        }
        Ok(u64::from(woke))
    }

    fn wake_locked(q: &mut HashMap<FutexKey, Vec<Arc<Waiter>>>, key: FutexKey, n: u32, bitset: u32) -> u32 {
        let Some(v) = q.get_mut(&key) else { return 0 };
        let mut woke = 0;
        v.retain(|w| {
            if woke < n && w.bitset & bitset != 0 {
                w.woken.store(true, Ordering::SeqCst);
                woke += 1;
                false
            } else {
                true
            }
        });
        if v.is_empty() {
            q.remove(&key);
        }
        woke
    }

    /// FUTEX_REQUEUE / FUTEX_CMP_REQUEUE.
    pub fn requeue(
        &self,
        t: &Task,
        from: u64,
        to: u64,
        private: bool,
        (nwake, nmove): (u32, u32),
        cmp: Option<u32>,
    ) -> Result<u64, Errno> {
        let k1 = t.futex_key(from, private)?;
        let k2 = t.futex_key(to, private)?;
        let total = {
            let mut q = self.lock();
            if let Some(expected) = cmp {
                let cur: u32 = t.read_obj(from)?;
                if cur != expected {
                    return Err(Errno::EAGAIN);
                }
            }
            let woke = Self::wake_locked(&mut q, k1, nwake, FUTEX_BITSET_MATCH_ANY);
            let mut moved = Vec::new();
            if let Some(v) = q.get_mut(&k1) {
                let n = (nmove as usize).min(v.len());
                moved.extend(v.drain(..n));
                if v.is_empty() {
                    q.remove(&k1);
                }
            }
            let m = moved.len() as u32;
            if m > 0 {
                q.entry(k2).or_default().extend(moved);
            }
            woke + m
        };
        t.kernel.events.notify();
        Ok(u64::from(total))
    }

    /// FUTEX_WAKE_OP: updates the word at `addr2`, wakes on `addr1`, and on
    /// `addr2` too if the word's old value meets the condition.
    pub fn wake_op(
        &self,
        t: &Task,
        addr1: u64,
        addr2: u64,
        private: bool,
        (n1, n2): (u32, u32),
        op: u32,
    ) -> Result<u64, Errno> {
        let k1 = t.futex_key(addr1, private)?;
        let k2 = t.futex_key(addr2, private)?;
        let shift = op >> 31 != 0;
        let kind = (op >> 28) & 7;
        let cmp = (op >> 24) & 15;
        let mut oparg = (op >> 12) & 0xfff;
        let cmparg = op & 0xfff;
        if shift {
            oparg = 1u32.checked_shl(oparg).unwrap_or(0);
        }
        if kind > 4 {
            return Err(Errno::ENOSYS);
        }
        let total = {
            let mut q = self.lock();
            let old = t.mm.lock().update_u32(addr2, |old| {
                Some(match kind {
                    0 => oparg,
                    1 => old.wrapping_add(oparg),
                    2 => old | oparg,
                    3 => old & !oparg,
                    _ => old ^ oparg,
                })
            })?;
            let mut woke = Self::wake_locked(&mut q, k1, n1, FUTEX_BITSET_MATCH_ANY);
            let (o, c) = (old as i32, cmparg as i32);
            let hit = match cmp {
                0 => o == c,
                1 => o != c,
                2 => o < c,
                3 => o <= c,
                4 => o > c,
                5 => o >= c,
                _ => return Err(Errno::ENOSYS),
            };
            if hit {
                woke += Self::wake_locked(&mut q, k2, n2, FUTEX_BITSET_MATCH_ANY);
            }
            woke
        };
        t.kernel.events.notify();
        Ok(u64::from(total))
    }
}

impl Task {
    /// The key of the futex word at `addr` (which must be 4-aligned and
    /// mapped).
    pub fn futex_key(&self, addr: u64, private: bool) -> Result<FutexKey, Errno> {
        if !addr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        let mm = self.mm.lock();
        let (start, vma) = mm.vma_at(addr).ok_or(Errno::EFAULT)?;
        if !private && vma.shared {
            return Ok(FutexKey::Shared(vma.backing + (addr - start)));
        }
        Ok(FutexKey::Private(self.mm.identity(), addr))
    }
}

/// Bits of a robust futex word (linux/futex.h).
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Most entries walked on a robust list (the kernel's ROBUST_LIST_LIMIT).
const ROBUST_LIST_LIMIT: usize = 2048;

impl Task {
    /// At thread exit: marks every robust futex the thread still holds
    /// OWNER_DIED and wakes a waiter, as Linux's exit_robust_list does, so
    /// that a robust mutex's next locker gets EOWNERDEAD instead of
    /// hanging.
    pub fn release_robust_futexes(&mut self) {
        let (head, len) = std::mem::take(&mut self.robust_list);
        if head == 0 || len != 24 {
            return;
        }
        // struct robust_list_head { next; long futex_offset; list_op_pending; }
        let Ok(mut entry) = self.read_obj::<u64>(head) else { return };
        let Ok(offset) = self.read_obj::<i64>(head + 8) else { return };
        let Ok(pending) = self.read_obj::<u64>(head + 16) else { return };
        let pending = pending & !1;
        for _ in 0..ROBUST_LIST_LIMIT {
            entry &= !1;
            if entry == head || entry == 0 {
                break;
            }
            let Ok(next) = self.read_obj::<u64>(entry) else { break };
            if entry != pending {
                self.futex_owner_died(entry.wrapping_add_signed(offset));
            }
            entry = next;
        }
        if pending != 0 {
            self.futex_owner_died(pending.wrapping_add_signed(offset));
        }
    }

    /// handle_futex_death: the futex at `addr` held by this thread.
    fn futex_owner_died(&self, addr: u64) {
        let tid = self.vtid() as u32;
        let res = self
            .mm
            .lock()
            .update_u32(addr, |v| (v & FUTEX_TID_MASK == tid).then_some((v & FUTEX_WAITERS) | FUTEX_OWNER_DIED));
        if let Ok(old) = res {
            if old & FUTEX_TID_MASK == tid && old & FUTEX_WAITERS != 0 {
                for private in [true, false] {
                    if let Ok(key) = self.futex_key(addr, private) {
                        let _ = self.kernel.futexes.wake(self, key, 1, FUTEX_BITSET_MATCH_ANY);
                    }
                }
            }
        }
    }
}
