//! The channel lock: a spin lock whose unlock is a plain release store.
//!
//! Why not `std::sync::Mutex`: its unlock is an atomic swap (it must learn whether a thread
//! sleeps on the futex), so every channel operation paid two locked instructions where one
//! does. A channel's critical sections are a few dozen instructions and run no user code
//! except `Waker::clone`, `will_wake` and waker drops (see `core.rs`), so a waiter spins a
//! little and then yields its CPU ([`Backoff`]) rather than sleeping. There is no poisoning:
//! a panic under the lock unlocks it on unwind, which is what the channels did with the
//! poisoned `Mutex` before (`into_inner`).
//!
//! Contract: `locked` is true exactly while one [`LockGuard`] exists, and only through that
//! guard is `value` touched. Taking the lock is an `Acquire` compare-exchange from false to
//! true; the guard's drop stores false with `Release`, so each holder sees every write of
//! the holders before it.
//!
//! Under loom the flag is a loom atomic and the value a loom `UnsafeCell`, and the model
//! `loom_chan_lock_excludes` checks this contract. The channel models, though, run on loom's
//! own `Mutex` ([`Lock`] is an alias): a spinning waiter inside those larger models makes
//! loom explore ever longer spins until it gives up (its branch limit), so they check the
//! protocol above the lock, and the spin lock is checked on its own.

use std::ops::{Deref, DerefMut};

/// The channel lock.
#[cfg(not(loom))]
pub(crate) type Lock<T> = SpinLock<T>;
/// The channel lock's guard.
#[cfg(not(loom))]
pub(crate) type LockGuard<'a, T> = SpinGuard<'a, T>;
#[cfg(loom)]
pub(crate) use loom_lock::{Lock, LockGuard};

/// Under loom the channel models lock a loom `Mutex` (see the module doc).
#[cfg(loom)]
mod loom_lock {
    pub(crate) type LockGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    pub(crate) struct Lock<T>(loom::sync::Mutex<T>);

    impl<T> Lock<T> {
        pub(crate) fn new(value: T) -> Lock<T> {
            Lock(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> LockGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

use crate::loom::{AtomicBool, Backoff, Ordering::*};

#[cfg(loom)]
use loom::cell::{MutPtr, UnsafeCell};
#[cfg(not(loom))]
use std::cell::UnsafeCell;

pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one thread at a time (module contract), so
// sharing a `Lock` between threads only ever moves the `T` between them: `T: Send` suffices.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: owning a `SpinLock<T>` is owning a `T`.
unsafe impl<T: Send> Send for SpinLock<T> {}

/// Exclusive access to the locked value; unlocks on drop.
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    #[cfg(loom)]
    ptr: MutPtr<T>,
}

impl<T> SpinLock<T> {
    pub(crate) fn new(value: T) -> SpinLock<T> {
        SpinLock { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        if self.locked.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            self.lock_contended();
        }
        self.guard()
    }

    #[cold]
    fn lock_contended(&self) {
        let mut backoff = Backoff::default();
        // A compare-exchange each time rather than spinning on a load: a read-modify-write
        // always sees the latest value, where a load may keep reading an old `true` (loom
        // explores exactly that, and a model of a load loop never ends). Contention is rare;
        // `snooze` spaces the attempts out.
        while self.locked.compare_exchange(false, true, Acquire, Relaxed).is_err() {
            backoff.snooze();
        }
    }

    /// The guard of a lock this thread just took.
    #[inline]
    fn guard(&self) -> SpinGuard<'_, T> {
        SpinGuard {
            lock: self,
            #[cfg(loom)]
            ptr: self.value.get_mut(),
        }
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        #[cfg(not(loom))]
        // SAFETY: this guard exists, so this thread holds the lock (module contract): no other
        // reference to `value` exists outside this guard, and `&self` forbids `&mut` through it.
        return unsafe { &*self.lock.value.get() };
        #[cfg(loom)]
        // SAFETY: as above; loom checks that no other thread accesses the cell meanwhile.
        return unsafe { self.ptr.deref() };
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        #[cfg(not(loom))]
        // SAFETY: this guard exists, so this thread holds the lock (module contract), and
        // `&mut self` makes this the only reference to `value` through the guard.
        return unsafe { &mut *self.lock.value.get() };
        #[cfg(loom)]
        // SAFETY: as above; loom checks that no other thread accesses the cell meanwhile.
        return unsafe { self.ptr.deref() };
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Release);
    }
}
