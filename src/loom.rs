//! One import point for the synchronisation primitives that lock-free code uses, so the same
//! code runs on `std` normally and under the loom model checker with `RUSTFLAGS="--cfg loom"`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Waiting out another thread's short critical section: spin a little, then yield the CPU so
/// a preempted peer (on a machine with few cores) can finish. Under loom every step yields, so
/// the model checker can switch threads.
#[derive(Debug, Default)]
pub(crate) struct Backoff(u32);

impl Backoff {
    /// One wait step.
    #[inline]
    pub(crate) fn snooze(&mut self) {
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(not(loom))]
        {
            if self.0 < 6 {
                for _ in 0..(1 << self.0) {
                    std::hint::spin_loop();
                }
                self.0 += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}
