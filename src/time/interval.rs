//! `interval`: ticks at a fixed period, with a policy for ticks that were missed.

use super::{sleep_until, Instant, Sleep};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// What an [`Interval`] does when ticks were missed (the task was busy past a tick's time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks at once, one per `tick()` call, until caught up; the schedule
    /// keeps its original phase (the default, as in tokio).
    #[default]
    Burst,
    /// Start over from now: the next tick is one period after the late one.
    Delay,
    /// Drop the missed ticks: the next tick is the next one on the original schedule that is
    /// still ahead.
    Skip,
}

/// A stream of ticks every `period`, the first one at once.
///
/// # Panics
///
/// If `period` is zero.
///
/// # Examples
///
/// ```
/// use omni::time::{interval, Duration, Instant};
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let start = Instant::now();
///     let mut every = interval(Duration::from_millis(100));
///     for i in 0..3u32 {
///         let t = every.tick().await;
///         assert_eq!(t - start, Duration::from_millis(100) * i);
///     }
/// });
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Like [`interval`], with the first tick at `start`.
///
/// # Panics
///
/// If `period` is zero.
///
/// # Examples
///
/// ```
/// use omni::time::{interval_at, Duration, Instant};
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let start = Instant::now() + Duration::from_secs(5);
///     let mut i = interval_at(start, Duration::from_secs(1));
///     assert_eq!(i.tick().await, start);
///     assert_eq!(i.tick().await, start + Duration::from_secs(1));
/// });
/// ```
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(!period.is_zero(), "omni::time::interval: the period must be greater than zero");
    Interval { period, next: start, missed: MissedTickBehavior::Burst, sleep: sleep_until(start) }
}

/// Ticks at a fixed period; see [`interval`].
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    /// The scheduled time of the next tick.
    next: Instant,
    missed: MissedTickBehavior,
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled time (see [`interval`] for an
    /// example).
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick (for hand-written futures and streams); [`Interval::tick`] is
    /// this as a future.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let scheduled = self.next;
        let now = Instant::now();
        let on_time = scheduled.far_add(self.period);
        self.next = if now < on_time {
            on_time
        } else {
            match self.missed {
                MissedTickBehavior::Burst => on_time,
                MissedTickBehavior::Delay => now.far_add(self.period),
                MissedTickBehavior::Skip => {
                    let late = now.duration_since(scheduled).as_nanos();
                    let periods = late / self.period.as_nanos() + 1;
                    let step = u32::try_from(periods).unwrap_or(u32::MAX);
                    scheduled.far_add(self.period.saturating_mul(step))
                }
            }
        };
        self.sleep.reset(self.next);
        Poll::Ready(scheduled)
    }

    /// Makes the next tick one period from now.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{advance, interval, Duration, Instant};
    /// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
    /// rt.block_on(async {
    ///     let mut i = interval(Duration::from_secs(10));
    ///     i.tick().await;
    ///     advance(Duration::from_secs(4)).await;
    ///     i.reset();
    ///     let t = Instant::now();
    ///     assert_eq!(i.tick().await - t, Duration::from_secs(10));
    /// });
    /// ```
    pub fn reset(&mut self) {
        self.next = Instant::now().far_add(self.period);
        self.sleep.reset(self.next);
    }

    /// The policy for missed ticks.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// Sets the policy for missed ticks.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{interval, Duration, MissedTickBehavior};
    /// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
    /// rt.block_on(async {
    ///     let mut i = interval(Duration::from_millis(10));
    ///     i.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ///     assert_eq!(i.missed_tick_behavior(), MissedTickBehavior::Skip);
    ///     i.tick().await;
    /// });
    /// ```
    pub fn set_missed_tick_behavior(&mut self, b: MissedTickBehavior) {
        self.missed = b;
    }

    /// The period.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{interval, Duration};
    /// omni::block_on(async {
    ///     assert_eq!(interval(Duration::from_millis(7)).period(), Duration::from_millis(7));
    /// });
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }
}
