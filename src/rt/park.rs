//! Parking the scheduler's thread until there is work, without lost wake-ups.
//!
//! The state is one byte: `EMPTY`, `PARKED` (the owner sleeps, or is about to) or `NOTIFIED`
//! (a wake-up arrived; the next `park` returns at once). `unpark` swaps in `NOTIFIED` and only
//! takes the lock when it found `PARKED`, so the common case, waking a scheduler that is busy,
//! is a single atomic swap. The lock is held across the check-and-wait so a notification can
//! never slip between the parker's last check and its sleep.

use crate::loom::{AtomicU8, Condvar, Mutex, Ordering::SeqCst};
use std::fmt;

const EMPTY: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;

/// A one-owner park/unpark pair.
pub(crate) struct Parker {
    state: AtomicU8,
    lock: Mutex<()>,
    cvar: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker { state: AtomicU8::new(EMPTY), lock: Mutex::new(()), cvar: Condvar::new() }
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
            other => unreachable!("omni parker in state {other} at unpark"),
        }
    }
}

impl fmt::Debug for Parker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.state.load(SeqCst) {
            EMPTY => "empty",
            PARKED => "parked",
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
