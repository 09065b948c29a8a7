//! Time: sleeps, timeouts and intervals on a hierarchical timer wheel, and a clock that tests
//! can pause.
//!
//! Every runtime has a time driver (`driver.rs`): a timer wheel (`wheel.rs`: levels of 64
//! slots at 1 ms, entries in a generational region, O(1) insert and cancel) and a clock.
//! Schedulers fire due timers between polls and, when nothing is runnable, sleep until the next
//! deadline. A timer never fires before its deadline; it fires within about a millisecond after
//! it when the runtime is not busy.
//!
//! # Deterministic tests: the paused clock
//!
//! [`pause`] stops the clock of the current (current-thread) runtime: [`Instant::now`] stands
//! still, [`advance`] moves it, and whenever every task is idle (and no `spawn_blocking` job
//! runs) the runtime jumps the clock straight to the next deadline instead of sleeping. So a
//! test of a one-hour timeout runs in microseconds, and runs the same every time.
//! [`Builder::start_paused`](crate::Builder::start_paused) starts a runtime paused.
//!
//! ```
//! use omni::time::{sleep, timeout, Duration, Instant};
//! let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
//! rt.block_on(async {
//!     let start = Instant::now();
//!     let r = timeout(Duration::from_secs(3600), sleep(Duration::from_secs(7200))).await;
//!     assert!(r.is_err());
//!     assert_eq!(start.elapsed(), Duration::from_secs(3600));
//! });
//! ```

mod driver;
mod error;
mod instant;
mod interval;
mod sleep;
mod timeout;
mod waker;
pub(crate) mod wheel;

pub(crate) use driver::TimeDriver;
pub use error::Elapsed;
pub use instant::Instant;
pub use interval::{interval, interval_at, Interval, MissedTickBehavior};
pub use sleep::{sleep, sleep_until, Sleep};
pub use std::time::Duration;
pub use timeout::{timeout, timeout_at, Timeout};

fn current_driver(what: &str) -> std::sync::Arc<crate::rt::RuntimeShared> {
    crate::rt::current_shared().unwrap_or_else(|| {
        panic!(
            "omni::time::{what} called outside an omni runtime: call it inside \
             Runtime::block_on (or omni::block_on)"
        )
    })
}

/// Pauses the clock of the current runtime: [`Instant::now`] stands still until [`advance`]
/// or [`resume`], and when every task is idle the runtime jumps the clock to the next timer's
/// deadline instead of sleeping.
///
/// # Panics
///
/// Outside a runtime, or on a multi-thread runtime (its workers cannot all be known idle at
/// once): use a current-thread runtime for tests with a paused clock.
///
/// # Examples
///
/// ```
/// use omni::time::{pause, sleep, Duration, Instant};
/// omni::block_on(async {
///     pause();
///     let start = Instant::now();
///     sleep(Duration::from_secs(86_400)).await; // a day, at once
///     assert_eq!(start.elapsed(), Duration::from_secs(86_400));
/// });
/// ```
pub fn pause() {
    let rt = current_driver("pause");
    assert!(
        rt.multi.is_none(),
        "omni::time::pause needs a current-thread runtime: build one with \
         Builder::new_current_thread() (and .start_paused(true))"
    );
    rt.time.pause();
}

/// Resumes the paused clock: time runs on from where it stood.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// omni::block_on(async {
///     omni::time::pause();
///     omni::time::resume();
/// });
/// ```
pub fn resume() {
    let rt = current_driver("resume");
    rt.time.resume(&rt);
}

/// Moves the paused clock forward by `duration`, fires the timers now due, and yields so the
/// tasks they woke run before this returns.
///
/// # Panics
///
/// Outside a runtime, or if the clock is not paused.
///
/// # Examples
///
/// ```
/// use omni::time::{advance, sleep, Duration};
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     let sleeper = omni::spawn(sleep(Duration::from_secs(5)));
///     advance(Duration::from_secs(4)).await;
///     assert!(!sleeper.is_finished());
///     advance(Duration::from_secs(1)).await;
///     assert!(sleeper.is_finished());
/// });
/// ```
pub async fn advance(duration: Duration) {
    let rt = current_driver("advance");
    assert!(
        rt.time.advance(duration),
        "omni::time::advance needs a paused clock: call omni::time::pause() first"
    );
    drop(rt);
    crate::yield_now().await;
}
