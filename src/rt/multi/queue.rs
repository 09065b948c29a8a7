//! A worker's local run queue: a bounded ring of task keys that its owner pushes and pops at
//! and that other workers steal half of, plus a one-entry LIFO slot that thieves may take too.
//!
//! The algorithm is the classic single-producer, multi-consumer work-stealing ring (as in Go's
//! `runqsteal` and tokio's `queue.rs`), written over atomics only: a task key is a `u64`, so
//! every buffer cell is an `AtomicU64` and the queue needs no `unsafe` at all.
//!
//! `head` packs two 32-bit positions: `real`, the next entry to pop, and `steal`, the first
//! entry a thief is still copying out (equal to `real` when nobody steals). `tail` is the next
//! free cell; only the owner writes it. Invariants:
//! - `steal <= real <= tail` (mod 2^32) and `tail - steal <= CAPACITY`, so the owner never
//!   overwrites a cell a thief is still reading;
//! - at most one thief at a time: a thief claims `[real, real + n)` by moving `real` while
//!   leaving `steal` behind, and other thieves back off while `steal != real`;
//! - every key pushed is popped or stolen exactly once, or moved to the injector on overflow.
//!
//! Overflow: when the ring is full the owner moves half of it (plus the new key) to the
//! injector in one claim, so a burst of spawns costs one claim per `CAPACITY / 2` keys.
//!
//! The LIFO slot holds the task most recently woken by the running task; the owner runs it
//! next (see the worker), and a thief takes it with one swap when the ring is empty, so a task
//! parked there behind a long poll is never stranded (tokio #4941).

use crate::loom::{AtomicU32, AtomicU64, Ordering::*};

/// Entries in the ring (shrunk under loom so the model reaches the overflow path).
#[cfg(not(loom))]
pub(crate) const CAPACITY: usize = 256;
#[cfg(loom)]
pub(crate) const CAPACITY: usize = 4;
const MASK: u32 = CAPACITY as u32 - 1;
/// The LIFO slot's "empty" value: no task key is 0 (an occupied slot has an odd generation).
const EMPTY: u64 = 0;

/// One worker's run queue: the ring and the LIFO slot.
pub(crate) struct Local {
    head: AtomicU64,
    tail: AtomicU32,
    buf: Box<[AtomicU64]>,
    lifo: AtomicU64,
}

fn pack(steal: u32, real: u32) -> u64 {
    (u64::from(steal) << 32) | u64::from(real)
}

fn unpack(head: u64) -> (u32, u32) {
    ((head >> 32) as u32, head as u32)
}

impl Local {
    pub(crate) fn new() -> Local {
        Local {
            head: AtomicU64::new(0),
            tail: AtomicU32::new(0),
            buf: (0..CAPACITY).map(|_| AtomicU64::new(EMPTY)).collect(),
            lifo: AtomicU64::new(EMPTY),
        }
    }

    /// Entries in the ring (a racy estimate for other threads), not counting the LIFO slot.
    pub(crate) fn len(&self) -> usize {
        let (_, real) = unpack(self.head.load(Acquire));
        self.tail.load(Acquire).wrapping_sub(real) as usize
    }

    /// Whether the ring and the LIFO slot look empty (racy for other threads).
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0 && self.lifo.load(Acquire) == EMPTY
    }

    /// Owner only: appends `key`. If the ring is full, moves half of it and `key` to
    /// `overflow` (the injector) instead.
    pub(crate) fn push_back(&self, key: u64, overflow: &mut impl FnMut(u64)) {
        loop {
            let (steal, real) = unpack(self.head.load(Acquire));
            // Only the owner writes `tail`.
            let tail = self.tail.load(Relaxed);
            if tail.wrapping_sub(steal) < CAPACITY as u32 {
                self.buf[(tail & MASK) as usize].store(key, Relaxed);
                self.tail.store(tail.wrapping_add(1), Release);
                return;
            }
            if steal != real {
                // A thief is copying entries out and will free room soon; this one key goes
                // to the injector rather than waiting for it.
                overflow(key);
                return;
            }
            if self.push_overflow(key, real, tail, overflow) {
                return;
            }
            // A thief claimed entries meanwhile: there may be room now.
        }
    }

    /// Claims the older half of a full ring and hands it, then `key`, to `overflow`. Fails if
    /// a thief moved `head` first.
    fn push_overflow(
        &self,
        key: u64,
        real: u32,
        tail: u32,
        overflow: &mut impl FnMut(u64),
    ) -> bool {
        let n = (CAPACITY / 2) as u32;
        debug_assert_eq!(tail.wrapping_sub(real), CAPACITY as u32, "overflow of a ring not full");
        let prev = pack(real, real);
        let next = pack(real.wrapping_add(n), real.wrapping_add(n));
        if self.head.compare_exchange(prev, next, Release, Relaxed).is_err() {
            return false;
        }
        // The claimed cells are ours now: only the owner writes cells, and thieves only read
        // cells between `steal` and `tail`, which no longer include these.
        for i in 0..n {
            overflow(self.buf[(real.wrapping_add(i) & MASK) as usize].load(Relaxed));
        }
        overflow(key);
        true
    }

    /// Owner only: takes the oldest entry of the ring.
    pub(crate) fn pop(&self) -> Option<u64> {
        let mut head = self.head.load(Acquire);
        loop {
            let (steal, real) = unpack(head);
            // Only the owner writes `tail`.
            if real == self.tail.load(Relaxed) {
                return None;
            }
            let next_real = real.wrapping_add(1);
            // While a thief copies (`steal != real`), `steal` stays where it is.
            let next =
                if steal == real { pack(next_real, next_real) } else { pack(steal, next_real) };
            match self.head.compare_exchange_weak(head, next, AcqRel, Acquire) {
                // The cell stays intact until the owner (this thread) pushes over it.
                Ok(_) => return Some(self.buf[(real & MASK) as usize].load(Relaxed)),
                Err(actual) => head = actual,
            }
        }
    }

    /// Owner only: puts `key` in the LIFO slot; returns the key it displaced.
    pub(crate) fn push_lifo(&self, key: u64) -> Option<u64> {
        let prev = self.lifo.swap(key, AcqRel);
        (prev != EMPTY).then_some(prev)
    }

    /// Takes the LIFO slot's key (owner or thief).
    pub(crate) fn take_lifo(&self) -> Option<u64> {
        if self.lifo.load(Relaxed) == EMPTY {
            return None;
        }
        let k = self.lifo.swap(EMPTY, AcqRel);
        (k != EMPTY).then_some(k)
    }

    /// Thief: moves half of `self`'s ring into `dst` (the thief's own ring) and returns one of
    /// the stolen keys to run now. Falls back to `self`'s LIFO slot when the ring is empty.
    pub(crate) fn steal_into(&self, dst: &Local) -> Option<u64> {
        // Only the thief (the owner of `dst`) writes `dst.tail`.
        let dst_tail = dst.tail.load(Relaxed);
        let (dst_steal, _) = unpack(dst.head.load(Acquire));
        if dst_tail.wrapping_sub(dst_steal) > (CAPACITY / 2) as u32 {
            // Our own ring is more than half full: no room, and no need to steal.
            return None;
        }
        let n = self.steal_half(dst, dst_tail);
        if n == 0 {
            return self.take_lifo();
        }
        // Run the newest stolen key now; publish the rest.
        let n = n - 1;
        let key = dst.buf[(dst_tail.wrapping_add(n) & MASK) as usize].load(Relaxed);
        if n > 0 {
            dst.tail.store(dst_tail.wrapping_add(n), Release);
        }
        Some(key)
    }

    /// Claims half of the ring, copies it to `dst` from `dst_tail` on, then releases the
    /// claim. Returns how many keys were copied.
    fn steal_half(&self, dst: &Local, dst_tail: u32) -> u32 {
        let mut prev = self.head.load(Acquire);
        let (first, n) = loop {
            let (steal, real) = unpack(prev);
            if steal != real {
                return 0; // another thief is at work
            }
            let tail = self.tail.load(Acquire);
            let avail = tail.wrapping_sub(real);
            let n = avail - avail / 2;
            if n == 0 || avail > CAPACITY as u32 {
                // Empty, or `head` moved between the two loads (the CAS below would fail).
                if n == 0 {
                    return 0;
                }
                prev = self.head.load(Acquire);
                continue;
            }
            let next = pack(steal, real.wrapping_add(n));
            match self.head.compare_exchange_weak(prev, next, AcqRel, Acquire) {
                Ok(_) => break (steal, n),
                Err(actual) => prev = actual,
            }
        };
        debug_assert!(n <= (CAPACITY / 2) as u32);
        for i in 0..n {
            let k = self.buf[(first.wrapping_add(i) & MASK) as usize].load(Relaxed);
            dst.buf[(dst_tail.wrapping_add(i) & MASK) as usize].store(k, Relaxed);
        }
        // Release the claim: `steal` catches up with `real` (which the owner may have moved).
        let mut prev = self.head.load(Acquire);
        loop {
            let (_, real) = unpack(prev);
            match self.head.compare_exchange_weak(prev, pack(real, real), AcqRel, Acquire) {
                Ok(_) => return n,
                Err(actual) => prev = actual,
            }
        }
    }
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("len", &self.len())
            .field("lifo", &(self.lifo.load(Relaxed) != EMPTY))
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn fifo_push_pop_and_wrap_around() {
        let q = Local::new();
        let mut spill = Vec::new();
        for round in 0..5u64 {
            for i in 0..200 {
                q.push_back(round * 1000 + i + 1, &mut |k| spill.push(k));
            }
            for i in 0..200 {
                assert_eq!(q.pop(), Some(round * 1000 + i + 1));
            }
            assert_eq!(q.pop(), None);
        }
        assert!(spill.is_empty());
    }

    #[test]
    fn overflow_moves_half_and_loses_nothing() {
        let q = Local::new();
        let mut spill = Vec::new();
        for k in 1..=(CAPACITY as u64 + 1) {
            q.push_back(k, &mut |k| spill.push(k));
        }
        assert_eq!(spill.len(), CAPACITY / 2 + 1, "half the ring plus the new key");
        assert_eq!(spill[0], 1, "the oldest half goes to the injector");
        let mut seen: HashSet<u64> = spill.into_iter().collect();
        while let Some(k) = q.pop() {
            assert!(seen.insert(k), "key {k} twice");
        }
        assert_eq!(seen.len(), CAPACITY + 1);
    }

    #[test]
    fn steal_takes_half_and_the_lifo_slot_when_the_ring_is_empty() {
        let (victim, thief) = (Local::new(), Local::new());
        for k in 1..=10 {
            victim.push_back(k, &mut |_| unreachable!());
        }
        let got = victim.steal_into(&thief).unwrap();
        assert_eq!(got, 5, "five stolen; the newest runs now");
        assert_eq!(thief.len(), 4);
        assert_eq!(victim.len(), 5);
        assert_eq!(victim.pop(), Some(6));
        let empty = Local::new();
        assert_eq!(empty.push_lifo(77), None);
        assert_eq!(empty.steal_into(&thief), Some(77), "a stranded LIFO task is stolen");
        assert_eq!(empty.take_lifo(), None);
    }

    #[test]
    fn concurrent_steals_lose_and_duplicate_nothing() {
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let victim = Arc::new(Local::new());
        let done = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let (victim, done, seen) = (victim.clone(), done.clone(), seen.clone());
                std::thread::spawn(move || {
                    let mine = Local::new();
                    let mut got = Vec::new();
                    loop {
                        let finished = done.load(SeqCst);
                        if let Some(k) = victim.steal_into(&mine) {
                            got.push(k);
                            while let Some(k) = mine.pop() {
                                got.push(k);
                            }
                        } else if finished {
                            break;
                        }
                    }
                    seen.lock().unwrap().extend(got);
                })
            })
            .collect();
        let mut mine = Vec::new();
        let mut spill = Vec::new();
        for k in 1..=100_000u64 {
            victim.push_back(k, &mut |k| spill.push(k));
            if k % 3 == 0 {
                if let Some(k) = victim.pop() {
                    mine.push(k);
                }
            }
        }
        while let Some(k) = victim.pop() {
            mine.push(k);
        }
        done.store(true, SeqCst);
        for t in thieves {
            t.join().unwrap();
        }
        let mut all = seen.lock().unwrap().clone();
        all.extend(mine);
        all.extend(spill);
        all.sort_unstable();
        assert_eq!(all, (1..=100_000u64).collect::<Vec<_>>());
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// The owner pushes past capacity (wrap-around and overflow) and pops while a thief steals:
    /// every key ends up exactly once in the owner's pops, the thief's haul or the injector.
    #[test]
    fn loom_push_pop_steal_overflow() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let victim = Arc::new(Local::new());
            let v2 = victim.clone();
            let thief = thread::spawn(move || {
                let mine = Local::new();
                let mut got = Vec::new();
                for _ in 0..2 {
                    if let Some(k) = v2.steal_into(&mine) {
                        got.push(k);
                    }
                }
                while let Some(k) = mine.pop() {
                    got.push(k);
                }
                got
            });
            let mut all = Vec::new();
            let mut spill = Vec::new();
            for k in 1..=6u64 {
                victim.push_back(k, &mut |k| spill.push(k));
            }
            if let Some(k) = victim.pop() {
                all.push(k);
            }
            all.extend(thief.join().unwrap());
            while let Some(k) = victim.pop() {
                all.push(k);
            }
            all.extend(spill);
            all.sort_unstable();
            assert_eq!(all, (1..=6).collect::<Vec<_>>());
        });
    }

    /// Shutdown with full queues: the owner overflows its ring into the injector while a thief
    /// steals into its own ring and the LIFO slot is taken; when shutdown drains every ring, the
    /// LIFO slots and the injector, each key is found exactly once (none lost to a half-done
    /// steal, none duplicated).
    #[test]
    fn loom_shutdown_drain_with_full_queues() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let victim = Arc::new(Local::new());
            let injector = Arc::new(loom::sync::Mutex::new(Vec::new()));
            assert_eq!(victim.push_lifo(100), None);
            let v2 = victim.clone();
            let thief = thread::spawn(move || {
                let mine = Local::new();
                let first = v2.steal_into(&mine);
                let mut left: Vec<u64> = first.into_iter().collect();
                // Shutdown drains the thief's ring and LIFO slot too.
                while let Some(k) = mine.pop() {
                    left.push(k);
                }
                left.extend(mine.take_lifo());
                left
            });
            for k in 1..=6u64 {
                let inj = injector.clone();
                victim.push_back(k, &mut |k| inj.lock().unwrap().push(k));
            }
            let mut all = thief.join().unwrap();
            while let Some(k) = victim.pop() {
                all.push(k);
            }
            all.extend(victim.take_lifo());
            all.extend(injector.lock().unwrap().drain(..));
            all.sort_unstable();
            assert_eq!(all, vec![1, 2, 3, 4, 5, 6, 100]);
        });
    }

    /// A key in the LIFO slot is taken exactly once, by the owner or by a thief.
    #[test]
    fn loom_lifo_slot_stolen_once() {
        loom::model(|| {
            let q = Arc::new(Local::new());
            assert_eq!(q.push_lifo(9), None);
            let q2 = q.clone();
            let thief = thread::spawn(move || q2.steal_into(&Local::new()));
            let mine = q.take_lifo();
            let stolen = thief.join().unwrap();
            assert_eq!(u32::from(mine == Some(9)) + u32::from(stolen == Some(9)), 1);
        });
    }
}
