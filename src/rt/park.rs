//! Parking the scheduler's thread until there is work, without lost wake-ups.
//!
//! The state is one byte: `EMPTY`, `PARKED` (the owner sleeps on the condition variable, or is
//! about to), `PARKED_DRIVER` (the owner waits inside the I/O driver) or `NOTIFIED` (a wake-up
//! arrived; the next `park` returns at once). `unpark` swaps in `NOTIFIED` and only does more
//! when it found the owner asleep: for `PARKED` it takes the lock and signals, for
//! `PARKED_DRIVER` it wakes the driver. So the common case, waking a scheduler that is busy,
//! is a single atomic swap. The lock is held across the check-and-wait so a notification can
//! never slip between the parker's last check and its sleep; the driver keeps a wake that
//! comes before its wait for the next one (an eventfd, or a `NOP` completion).
//!
//! A parker made `with_driver` sleeps in the I/O driver when it can: the driver delivers I/O
//! events while it waits, and the timeout is the timer wheel's next deadline. One thread of a
//! runtime at a time can be in the driver; a parker that finds it taken sleeps on its
//! condition variable as before (the thread in the driver delivers the events, and the tasks
//! they wake are pushed and announced like any other wake).

use crate::loom::{AtomicU8, Condvar, Mutex, Ordering::SeqCst};
use omni_io::Reactor;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

const EMPTY: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;
const PARKED_DRIVER: u8 = 3;

/// A one-owner park/unpark pair.
pub(crate) struct Parker {
    state: AtomicU8,
    lock: Mutex<()>,
    cvar: Condvar,
    driver: Option<Arc<Reactor>>,
    /// This thread's ring in `driver` (io_uring has one per scheduler thread).
    ring: usize,
}

impl Parker {
    /// A parker that sleeps on a condition variable only.
    pub(crate) fn new() -> Parker {
        Parker {
            state: AtomicU8::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
            driver: None,
            ring: 0,
        }
    }

    /// A parker that sleeps in `driver` (in ring `ring`, for io_uring) when no other thread
    /// is in it.
    pub(crate) fn with_driver(driver: Arc<Reactor>, ring: usize) -> Parker {
        Parker { driver: Some(driver), ring, ..Parker::new() }
    }

    /// Delivers the I/O events that are ready now, without sleeping (the scheduler calls this
    /// at a bounded interval while tasks keep it busy, so I/O is never starved). Does nothing
    /// if another thread is in the driver: that thread delivers.
    pub(crate) fn poll_driver(&self) {
        if let Some(d) = &self.driver {
            if let Some(Err(e)) = d.try_turn(self.ring, Some(Duration::ZERO)) {
                driver_failed(e);
            }
        }
    }

    /// Sleeps until [`Parker::unpark`] is called (returns at once if it already was since the
    /// last `park`). Owner thread only.
    pub(crate) fn park(&self) {
        self.park_until(None);
    }

    /// Like [`Parker::park`], but returns after `timeout` at the latest.
    pub(crate) fn park_timeout(&self, timeout: std::time::Duration) {
        match std::time::Instant::now().checked_add(timeout) {
            Some(deadline) => self.park_until(Some(deadline)),
            None => self.park_until(None),
        }
    }

    fn park_until(&self, deadline: Option<std::time::Instant>) {
        if self.state.compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst).is_ok() {
            return;
        }
        if let Some(d) = &self.driver {
            match self.state.compare_exchange(EMPTY, PARKED_DRIVER, SeqCst, SeqCst) {
                Ok(_) => {}
                Err(NOTIFIED) => {
                    self.state.store(EMPTY, SeqCst);
                    return;
                }
                Err(other) => unreachable!("omni parker in state {other} at park"),
            }
            let timeout = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            let turned = d.try_turn(self.ring, timeout);
            // An unpark meanwhile woke the driver (or will end its next wait early: harmless).
            let was = self.state.swap(EMPTY, SeqCst);
            match turned {
                Some(Ok(())) => return,
                Some(Err(e)) => driver_failed(e),
                // Another thread is in the driver: sleep on the condition variable instead,
                // unless a notification already came.
                None if was == NOTIFIED => return,
                None => {}
            }
        }
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match self.state.compare_exchange(EMPTY, PARKED, SeqCst, SeqCst) {
            Ok(_) => {}
            Err(NOTIFIED) => {
                self.state.store(EMPTY, SeqCst);
                return;
            }
            Err(other) => unreachable!("omni parker in state {other} at park"),
        }
        loop {
            guard = match deadline {
                None => self.cvar.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        // Timed out. A notification that slipped in meanwhile is consumed here:
                        // the caller looks for work right after anyway.
                        self.state.store(EMPTY, SeqCst);
                        return;
                    }
                    self.cvar.wait_timeout(guard, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
            if self.state.compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst).is_ok() {
                return;
            }
        }
    }

    /// Wakes the owner (now, or at its next `park`). Any thread.
    pub(crate) fn unpark(&self) {
        match self.state.swap(NOTIFIED, SeqCst) {
            EMPTY | NOTIFIED => {}
            PARKED => {
                // Taking the lock orders this notify after the parker's wait began.
                drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
                self.cvar.notify_one();
            }
            PARKED_DRIVER => {
                if let Some(d) = &self.driver {
                    d.wake(self.ring);
                }
            }
            other => unreachable!("omni parker in state {other} at unpark"),
        }
    }
}

/// The driver failed in a way no retry mends (its fd is gone): a scheduler that cannot wait
/// for I/O cannot go on.
fn driver_failed(e: std::io::Error) -> ! {
    panic!("omni: the I/O driver failed: {e}")
}

impl fmt::Debug for Parker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.state.load(SeqCst) {
            EMPTY => "empty",
            PARKED => "parked",
            PARKED_DRIVER => "parked in the driver",
            _ => "notified",
        };
        f.debug_struct("Parker").field("state", &s).finish()
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;

    /// A producer publishes work then unparks; the owner checks for work then parks. The owner
    /// always sees the work: no lost wake-up.
    #[test]
    fn loom_no_lost_wakeup() {
        loom::model(|| {
            let p = Arc::new(Parker::new());
            let work = Arc::new(AtomicBool::new(false));
            let (p2, w2) = (p.clone(), work.clone());
            let t = loom::thread::spawn(move || {
                w2.store(true, SeqCst);
                p2.unpark();
            });
            while !work.load(SeqCst) {
                p.park();
            }
            t.join().unwrap();
        });
    }
}
