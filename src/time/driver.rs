//! A runtime's time driver: its clock (real or paused) and its timer wheel, and how the
//! schedulers fire timers and sleep until the next one.
//!
//! The wheel counts whole milliseconds since the driver's `origin`. A deadline is rounded *up*
//! to its millisecond and "now" *down*, so an entry fires only once the clock has passed its
//! deadline: never early, at most about a millisecond late (plus scheduling).
//!
//! Who does what:
//! - a task polling a `Sleep` inserts, resets or removes its entry (under the lock) and, if the
//!   new deadline is earlier than the one the sleeping scheduler thread planned to wake at,
//!   unparks that thread so it plans again;
//! - schedulers call [`TimeDriver::process`] between polls (a lock-free check of `next_due`
//!   first) and before parking ask [`TimeDriver::plan_park`] how long they may sleep. On a
//!   multi-thread runtime one parked worker at a time holds the *driver role* and sleeps with
//!   that timeout; the others sleep until woken;
//! - with the clock paused, time stands still until `advance` moves it, or until every task is
//!   idle and no blocking job runs, when the scheduler jumps it to the next deadline
//!   ([`TimeDriver::auto_advance`]) instead of sleeping.
//!
//! Wakers are woken after the lock is released: a woken task may poll a `Sleep` of its own.

use super::waker::{Slab, TimerWaker};
use super::wheel::{Removed, TimerKey, Wheel};
use crate::rt::RuntimeShared;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant as StdInstant};

/// No deadline / nobody parked with a timeout.
const NEVER: u64 = u64::MAX;
/// No worker holds the driver role.
const NO_DRIVER: usize = usize::MAX;

/// The clock of one runtime.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// `Some(now)` while paused.
    frozen: Option<StdInstant>,
    /// Virtual time = `base_virtual + (real now - base_real)` while running.
    base_real: StdInstant,
    base_virtual: StdInstant,
}

impl Clock {
    fn now(&self) -> StdInstant {
        match self.frozen {
            Some(t) => t,
            None => self.base_virtual + (StdInstant::now() - self.base_real),
        }
    }
}

struct Inner {
    wheel: Wheel<TimerWaker>,
    /// Wakers that are not task keys (see `waker.rs`).
    wakers: Slab,
    clock: Clock,
    /// The wheel millisecond the parked driver thread plans to wake at, or `NEVER`.
    planned_wake: u64,
    /// A buffer for the wakers of fired timers, reused so firing allocates nothing in steady
    /// state (taken out while the wakers are woken outside the lock).
    fired: Vec<Waker>,
}

/// The time driver of one runtime.
pub(crate) struct TimeDriver {
    inner: Mutex<Inner>,
    /// Lower bound of the earliest pending deadline (wheel ms), `NEVER` if none: lets
    /// `process` skip the lock while nothing is due.
    next_due: AtomicU64,
    /// Whether the clock was ever paused (while false, `now` is the system clock).
    virtual_clock: AtomicBool,
    paused: AtomicBool,
    /// The worker holding the driver role (multi-thread), or `NO_DRIVER`.
    driver: AtomicUsize,
    origin: StdInstant,
}

impl TimeDriver {
    pub(crate) fn new(start_paused: bool) -> TimeDriver {
        let origin = StdInstant::now();
        TimeDriver {
            inner: Mutex::new(Inner {
                wheel: Wheel::new(),
                wakers: Slab::default(),
                clock: Clock {
                    frozen: start_paused.then_some(origin),
                    base_real: origin,
                    base_virtual: origin,
                },
                planned_wake: NEVER,
                fired: Vec::new(),
            }),
            next_due: AtomicU64::new(NEVER),
            virtual_clock: AtomicBool::new(start_paused),
            paused: AtomicBool::new(start_paused),
            driver: AtomicUsize::new(NO_DRIVER),
            origin,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // User code never runs under this lock; a poisoned lock means a bug here, and the wheel
        // is consistent at every unlock point.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The clock's current time.
    pub(crate) fn now(&self) -> StdInstant {
        if !self.virtual_clock.load(Acquire) {
            return StdInstant::now();
        }
        self.lock().clock.now()
    }

    /// Whether the clock is paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Acquire)
    }

    /// The wheel millisecond of a deadline, rounded up (so it never fires early).
    fn deadline_ms(&self, deadline: StdInstant) -> u64 {
        let d = deadline.saturating_duration_since(self.origin);
        let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
        u64::try_from(ms).unwrap_or(NEVER - 1)
    }

    /// The wheel millisecond of `now`, rounded down.
    fn now_ms(&self, now: StdInstant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_millis()).unwrap_or(NEVER - 1)
    }

    /// Registers a timer; the caller has checked the deadline is still ahead.
    pub(crate) fn insert(
        &self,
        rt: &RuntimeShared,
        deadline: StdInstant,
        waker: Waker,
    ) -> TimerKey {
        let ms = self.deadline_ms(deadline);
        let mut inner = self.lock();
        let w = inner.wakers.store(waker);
        let key = inner.wheel.insert(ms, w);
        self.note_deadline(rt, inner, ms);
        key
    }

    /// Moves a pending timer. Returns false if it already fired (or is gone).
    pub(crate) fn reset(&self, rt: &RuntimeShared, key: TimerKey, deadline: StdInstant) -> bool {
        let ms = self.deadline_ms(deadline);
        let mut inner = self.lock();
        if !inner.wheel.reset(key, ms) {
            return false;
        }
        self.note_deadline(rt, inner, ms);
        true
    }

    /// A new deadline `ms` is pending: lower `next_due`, and if the parked driver thread plans
    /// to wake later than that, unpark it so it plans again.
    fn note_deadline(&self, rt: &RuntimeShared, mut inner: MutexGuard<'_, Inner>, ms: u64) {
        // SeqCst pairs with the load in `plan_park`: a worker that parks after this either sees
        // the new deadline or was still searching when the notifier looked (see `idle.rs`).
        self.next_due.fetch_min(ms, SeqCst);
        if ms < inner.planned_wake {
            inner.planned_wake = NEVER;
            drop(inner);
            self.unpark_driver(rt);
        }
    }

    fn unpark_driver(&self, rt: &RuntimeShared) {
        match &rt.multi {
            None => rt.parker.unpark(),
            Some(multi) => {
                let d = self.driver.load(Acquire);
                if d != NO_DRIVER {
                    multi.workers[d].parker.unpark();
                } else {
                    // No worker sleeps on a timeout: wake a sleeping one (if nobody searches),
                    // which takes the driver role when it parks again.
                    multi.notify_parked();
                }
            }
        }
    }

    /// Polls a registered timer: `true` if it fired (the entry is then released), else the
    /// stored waker is replaced by `waker` if it would not wake the same task.
    pub(crate) fn poll_fired(&self, key: TimerKey, waker: &Waker) -> bool {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(w) = inner.wheel.payload_mut(key) else {
            // Fired (or gone): release the entry so its slot is reused.
            inner.wheel.remove(key);
            return true;
        };
        if inner.wakers.will_wake(*w, waker) {
            return false;
        }
        // A new waker: clone it outside the lock (a foreign waker's clone is user code).
        drop(guard);
        let new = crate::rt::deadlock::keep(waker);
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(w) = inner.wheel.payload_mut(key) else {
            inner.wheel.remove(key);
            return true;
        };
        let old = std::mem::replace(w, inner.wakers.store(new));
        let old = inner.wakers.take(old);
        drop(guard);
        drop(old);
        false
    }

    /// Cancels a timer (a dropped `Sleep`), or releases a fired one.
    pub(crate) fn remove(&self, key: TimerKey) {
        let mut inner = self.lock();
        let waker = match inner.wheel.remove(key) {
            Some(Removed::Cancelled(w)) => Some(inner.wakers.take(w)),
            _ => None,
        };
        drop(inner);
        // A waker's destructor runs outside the lock.
        drop(waker);
    }

    /// Fires every timer that is due. Cheap when none is: one atomic load and a clock read.
    pub(crate) fn process(&self) {
        if self.next_due.load(Acquire) == NEVER {
            return;
        }
        let now = self.now();
        if self.now_ms(now) < self.next_due.load(Acquire) {
            return;
        }
        self.fire_until(now);
    }

    fn fire_until(&self, now: StdInstant) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut fired = std::mem::take(&mut inner.fired);
        let now_ms = self.now_ms(now);
        let wakers = &mut inner.wakers;
        inner.wheel.advance(now_ms, |_, w| fired.push(wakers.take(w)));
        self.next_due.store(inner.wheel.next_deadline().unwrap_or(NEVER), Release);
        drop(guard);
        if fired.capacity() == 0 {
            return;
        }
        for w in fired.drain(..) {
            // A foreign waker may panic: the other timers' wake-ups must not be lost with it,
            // nor a worker thread.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.wake())).is_err() {
                eprintln!("omni: a timer's waker panicked while being woken; ignored");
            }
        }
        let mut inner = self.lock();
        if inner.fired.capacity() < fired.capacity() {
            inner.fired = fired;
        }
    }

    /// Before a scheduler thread parks: how long it may sleep before the next timer is due
    /// (`None`: until woken). `worker` is the multi-thread worker index, `None` for a
    /// current-thread runtime. On a multi-thread runtime only the worker that takes the driver
    /// role gets a timeout; it must call [`TimeDriver::after_park`] when it wakes.
    pub(crate) fn plan_park(&self, worker: Option<usize>) -> Option<Duration> {
        if self.next_due.load(SeqCst) == NEVER || self.is_paused() {
            return None;
        }
        if let Some(w) = worker {
            if self.driver.compare_exchange(NO_DRIVER, w, AcqRel, Acquire).is_err() {
                return None;
            }
        }
        let mut inner = self.lock();
        let Some(next) = inner.wheel.next_deadline() else {
            inner.planned_wake = NEVER;
            drop(inner);
            if let Some(w) = worker {
                let _ = self.driver.compare_exchange(w, NO_DRIVER, AcqRel, Acquire);
            }
            return None;
        };
        inner.planned_wake = next;
        let due = self.origin + Duration::from_millis(next);
        Some(due.saturating_duration_since(inner.clock.now()))
    }

    /// After a parked scheduler thread woke: give up the driver role and fire due timers.
    /// Returns true if a multi-thread worker gave up the role while timers are still pending:
    /// it must then wake a sleeping worker to take the role over, or the timers would wait for
    /// this worker's next park (it may be about to run a long poll; tokio PR #8345).
    pub(crate) fn after_park(&self, worker: Option<usize>) -> bool {
        let held = worker
            .is_none_or(|w| self.driver.compare_exchange(w, NO_DRIVER, AcqRel, Acquire).is_ok());
        if held {
            self.lock().planned_wake = NEVER;
        }
        self.process();
        held && worker.is_some() && self.next_due.load(SeqCst) != NEVER
    }

    /// Whether any timer is armed (a deadlock check: a timer will wake someone).
    pub(crate) fn has_timers(&self) -> bool {
        self.lock().wheel.next_deadline().is_some()
    }

    /// With the clock paused and nothing else to do: jumps the clock to the next deadline and
    /// fires what is due. Returns false if no timer is pending.
    pub(crate) fn auto_advance(&self) -> bool {
        let mut inner = self.lock();
        let Some(frozen) = inner.clock.frozen else { return false };
        let Some(next) = inner.wheel.next_deadline() else { return false };
        let due = self.origin + Duration::from_millis(next);
        let now = frozen.max(due);
        inner.clock.frozen = Some(now);
        drop(inner);
        self.fire_until(now);
        true
    }

    /// `time::pause`.
    pub(crate) fn pause(&self) {
        let mut inner = self.lock();
        if inner.clock.frozen.is_none() {
            // Snap forward to a whole wheel millisecond, so that a sleep of whole milliseconds
            // started while paused has an exact deadline, and `advance` by its duration fires
            // it (a deadline is rounded up to its millisecond).
            let now = inner.clock.now();
            let snapped = self.origin + Duration::from_millis(self.deadline_ms(now));
            inner.clock.frozen = Some(snapped.max(now));
        }
        self.virtual_clock.store(true, Release);
        self.paused.store(true, Release);
    }

    /// `time::resume`: time runs on from where the paused clock stood. Unparks the runtime's
    /// sleeping thread, which slept without a timeout while the clock stood still.
    pub(crate) fn resume(&self, rt: &RuntimeShared) {
        let mut inner = self.lock();
        if let Some(frozen) = inner.clock.frozen.take() {
            inner.clock.base_real = StdInstant::now();
            inner.clock.base_virtual = frozen;
        }
        self.paused.store(false, Release);
        drop(inner);
        self.unpark_driver(rt);
    }

    /// `time::advance`: moves the paused clock forward by `d` and fires what is due. Returns
    /// false if the clock is not paused.
    pub(crate) fn advance(&self, d: Duration) -> bool {
        let mut inner = self.lock();
        let Some(frozen) = inner.clock.frozen else { return false };
        // A duration too large to add moves the clock to the far future (30 years on).
        let now = super::Instant::from_std(frozen).far_add(d).into_std();
        inner.clock.frozen = Some(now);
        drop(inner);
        self.fire_until(now);
        true
    }
}

impl std::fmt::Debug for TimeDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeDriver")
            .field("paused", &self.is_paused())
            .field("next_due_ms", &self.next_due.load(Relaxed))
            .finish()
    }
}

/// `Instant::now()`: the current runtime's clock, or the system clock outside a runtime.
pub(crate) fn now() -> StdInstant {
    crate::rt::with_shared(|s| s.map_or_else(StdInstant::now, |s| s.time.now()))
}
