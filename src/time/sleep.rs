//! `Sleep`: a future that completes at a deadline, registered in the runtime's timer wheel.

use super::instant::Packed;
use super::Instant;
use crate::rt::RuntimeShared;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::wheel::TimerKey;

/// Waits until `duration` has passed on the runtime's clock.
///
/// The timer is registered on the first poll, which must happen inside an omni runtime; it
/// fires no earlier than the deadline and usually within a millisecond after it. Dropping the
/// future cancels the timer. `Duration::MAX` (or any duration too large to add) means "about
/// 30 years", never an overflow.
///
/// # Panics
///
/// When polled outside an omni runtime.
///
/// # Examples
///
/// ```
/// use omni::time::{sleep, Duration, Instant};
/// // A paused clock makes the hour pass at once (and deterministically).
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let start = Instant::now();
///     sleep(Duration::from_secs(3600)).await;
///     assert!(start.elapsed() >= Duration::from_secs(3600));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    Sleep::new(Instant::now().far_add(duration))
}

/// Waits until `deadline` on the runtime's clock; a deadline in the past completes on the
/// first poll.
///
/// # Panics
///
/// When polled outside an omni runtime.
///
/// # Examples
///
/// ```
/// use omni::time::{sleep_until, Duration, Instant};
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let deadline = Instant::now() + Duration::from_millis(250);
///     sleep_until(deadline).await;
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new(deadline)
}

/// The future of [`sleep`] and [`sleep_until`]. It is `Unpin`, so it can be polled through
/// `&mut` and kept across loop iterations without pinning.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Packed,
    entry: Option<Registered>,
}

/// A timer in a runtime's wheel.
struct Registered {
    rt: Arc<RuntimeShared>,
    key: TimerKey,
}

impl Sleep {
    fn new(deadline: Instant) -> Sleep {
        Sleep { deadline: Packed::pack(deadline), entry: None }
    }

    /// The deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{sleep_until, Duration, Instant};
    /// let at = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(sleep_until(at).deadline(), at);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline.unpack()
    }

    /// Whether the deadline has passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{sleep, Duration};
    /// assert!(sleep(Duration::ZERO).is_elapsed());
    /// assert!(!sleep(Duration::from_secs(3600)).is_elapsed());
    /// ```
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline()
    }

    /// Moves the deadline (earlier or later), whether or not the sleep already completed: the
    /// next poll waits for the new deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{sleep, Duration, Instant};
    /// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
    /// rt.block_on(async {
    ///     let start = Instant::now();
    ///     let mut s = sleep(Duration::from_secs(10));
    ///     s.reset(start + Duration::from_secs(1));
    ///     (&mut s).await;
    ///     assert_eq!(Instant::now() - start, Duration::from_secs(1));
    /// });
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = Packed::pack(deadline);
        if let Some(r) = &self.entry {
            // A deadline already reached: release the entry, so the next poll finds it passed
            // and is ready at once (the wheel would fire it only at its next tick).
            let passed = r.rt.time.now() >= deadline.into_std();
            if passed || !r.rt.time.reset(&r.rt, r.key, deadline.into_std()) {
                // It fired already: release it; the next poll registers anew.
                self.unregister();
            }
        }
    }

    fn unregister(&mut self) {
        if let Some(r) = self.entry.take() {
            r.rt.time.remove(r.key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        crate::rt::coop::budgeted(cx, |cx| self.poll_timer(cx))
    }
}

impl Sleep {
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let this = self;
        if let Some(r) = &this.entry {
            // Polled on another runtime than the one it registered with (moved between
            // runtimes): the old runtime may not drive its clock any more. Register anew here.
            let here = crate::rt::with_shared(|s| s.map(|s| s as *const _));
            if here.is_some_and(|h| !std::ptr::eq(h, Arc::as_ptr(&r.rt))) {
                this.unregister();
            }
        }
        match &this.entry {
            Some(r) => {
                if r.rt.time.poll_fired(r.key, cx.waker()) {
                    this.entry = None;
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }
            None => {
                let rt = crate::rt::current_shared().unwrap_or_else(|| {
                    panic!(
                        "omni::time::Sleep polled outside an omni runtime: await it inside \
                         Runtime::block_on (or omni::block_on) or a task spawned on one"
                    )
                });
                let deadline = this.deadline.unpack().into_std();
                if rt.time.now() >= deadline {
                    return Poll::Ready(());
                }
                let key = rt.time.insert(&rt, deadline, crate::rt::deadlock::keep(cx.waker()));
                this.entry = Some(Registered { rt, key });
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline())
            .field("registered", &self.entry.is_some())
            .finish()
    }
}
