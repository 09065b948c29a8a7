//! The 8-byte waker a timer entry stores, so a pending timer costs 32 bytes in the wheel.
//!
//! Most timers are awaited by omni tasks, whose waker is just the task key. Those are stored
//! as the key rotated by 32 bits: a task key's generation is odd, so bit 0 of the rotated key is
//! always 1. Any other waker (the `block_on` future's, another executor's) goes to a small slab
//! owned by the driver and is stored as `(index + 1) << 1`, so bit 0 is 0. Neither encoding is
//! zero, so `Option<TimerWaker>` is 8 bytes too.
//!
//! Ownership: a `TimerWaker` is a plain number; the slab entry it may name belongs to the
//! driver, which frees it when the timer fires, is cancelled, or gets a new waker. No `unsafe`.

use crate::task::waker;
use std::num::NonZeroU64;
use std::task::Waker;

/// A compact waker: a task key, or an index into a [`Slab`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerWaker(NonZeroU64);

/// Wakers that are not omni task wakers, for the timers that wait on them.
#[derive(Debug, Default)]
pub(crate) struct Slab {
    slots: Vec<Option<Waker>>,
    free: Vec<u32>,
}

impl Slab {
    /// Encodes `w`, storing it here if it is not a task waker.
    pub(crate) fn store(&mut self, w: Waker) -> TimerWaker {
        if let Some(key) = waker::key_of(&w) {
            let rotated = NonZeroU64::new(key.rotate_right(32)).filter(|r| r.get() & 1 == 1);
            return TimerWaker(rotated.expect("task keys have odd generations"));
        }
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(w);
                i
            }
            None => {
                self.slots.push(Some(w));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 foreign timer wakers")
            }
        };
        TimerWaker(NonZeroU64::new((u64::from(idx) + 1) << 1).expect("non-zero"))
    }

    /// Whether `t` would wake the same task as `w`.
    pub(crate) fn will_wake(&self, t: TimerWaker, w: &Waker) -> bool {
        match self.decode(t) {
            Decoded::Task(k) => waker::key_of(w) == Some(k),
            Decoded::Foreign(i) => self.slots[i].as_ref().is_some_and(|s| s.will_wake(w)),
        }
    }

    /// Releases `t` and returns the waker to wake.
    pub(crate) fn take(&mut self, t: TimerWaker) -> Waker {
        match self.decode(t) {
            Decoded::Task(k) => waker::for_key(k),
            Decoded::Foreign(i) => {
                self.free.push(i as u32);
                self.slots[i].take().expect("a stored foreign waker")
            }
        }
    }

    fn decode(&self, t: TimerWaker) -> Decoded {
        let v = t.0.get();
        if v & 1 == 1 {
            Decoded::Task(v.rotate_left(32))
        } else {
            Decoded::Foreign((v >> 1) as usize - 1)
        }
    }
}

enum Decoded {
    Task(u64),
    Foreign(usize),
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn task_and_foreign_wakers_round_trip_in_eight_bytes() {
        assert_eq!(std::mem::size_of::<Option<TimerWaker>>(), 8);
        let mut slab = Slab::default();
        let key = crate::task::key(7, 3);
        let t = slab.store(waker::for_key(key));
        assert!(slab.will_wake(t, &waker::for_key(key)));
        assert!(!slab.will_wake(t, &waker::for_key(crate::task::key(7, 5))));
        assert_eq!(waker::key_of(&slab.take(t)), Some(key));
        struct Count(std::sync::atomic::AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let count = std::sync::Arc::new(Count(Default::default()));
        let foreign = Waker::from(count.clone());
        let f = slab.store(foreign.clone());
        let g = slab.store(foreign.clone());
        assert_ne!(f, g);
        assert!(!slab.will_wake(f, &waker::for_key(key)));
        slab.take(f).wake();
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1, "the stored waker");
        let h = slab.store(foreign.clone());
        assert_eq!(h, f, "a freed slab slot is reused");
        let _ = (slab.take(g), slab.take(h));
        assert!(slab.slots.iter().all(Option::is_none), "nothing left behind");
    }
}
