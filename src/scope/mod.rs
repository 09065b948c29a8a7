//! Structured concurrency: nurseries, cancel scopes with deadlines, and shields.
//!
//! In omni, as everywhere in async Rust, cancelling work means dropping its future: the work
//! stops at the `.await` it was parked on and its destructors run. This module gives that
//! mechanism the shape Trio and Kotlin users know:
//!
//! - [`nursery`] and [`supervise`]: a scope that starts children, owns them, and returns only
//!   when every one has finished. Children may borrow from the caller. A failure cancels the
//!   siblings (fail-fast) or is collected (supervise). Dropping the nursery cancels its
//!   children, and their own nurseries, depth first.
//! - [`move_on_after`] / [`move_on_at`]: run a future under a deadline and carry on without
//!   its result when the deadline passes; [`fail_after`] / [`fail_at`]: the same, returning
//!   [`Elapsed`] as an error. Everything inside (nurseries included) is cancelled at the
//!   deadline.
//! - [`CancelToken`](crate::CancelToken): cancellation from elsewhere, in a tree, with
//!   [`CancelToken::run_until_cancelled`](crate::CancelToken::run_until_cancelled) as its
//!   scope.
//! - [`shield`]: cleanup that must finish even if whatever awaits it is cancelled.
//!
//! # Examples
//!
//! A deadline around a nursery cancels every child in it:
//!
//! ```
//! use omni::scope::{move_on_after, nursery};
//! use omni::time::{sleep, Duration};
//!
//! let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
//! let finished = rt.block_on(move_on_after(Duration::from_secs(5), nursery(|n| async move {
//!     for i in 0..10u64 {
//!         n.spawn(async move { sleep(Duration::from_secs(i)).await; Ok::<_, ()>(()) });
//!     }
//!     Ok(())
//! })));
//! assert!(finished.is_none(), "children sleeping past the deadline were cancelled");
//! ```

mod nursery;
mod shield;

pub use nursery::{nursery, supervise, ChildError, ChildHandle, Failure, Nursery, NurseryError};
pub use shield::{shield, Shield};

use crate::time::{timeout, timeout_at, Elapsed, Instant};
use std::future::Future;
use std::time::Duration;

/// Runs `fut` for at most `duration`: its value, or `None` when the deadline passed first and
/// `fut` was cancelled (dropped, with everything it started inside: nurseries, their children,
/// operations in flight).
///
/// Trio's `move_on_after`. The deadline follows [`omni::time`](crate::time), so a paused clock
/// (tests) moves it too.
///
/// # Examples
///
/// ```
/// use omni::scope::move_on_after;
/// use omni::time::{sleep, Duration};
///
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     assert_eq!(move_on_after(Duration::from_secs(1), async { 7 }).await, Some(7));
///     let slow = async { sleep(Duration::from_secs(60)).await; 7 };
///     assert_eq!(move_on_after(Duration::from_secs(1), slow).await, None);
/// });
/// ```
pub async fn move_on_after<F: Future>(duration: Duration, fut: F) -> Option<F::Output> {
    timeout(duration, fut).await.ok()
}

/// Like [`move_on_after`], with a deadline instead of a duration.
///
/// # Examples
///
/// ```
/// use omni::scope::move_on_at;
/// use omni::time::{Duration, Instant};
///
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// let deadline = Instant::now() + Duration::from_millis(10);
/// assert_eq!(rt.block_on(move_on_at(deadline, std::future::pending::<()>())), None);
/// ```
pub async fn move_on_at<F: Future>(deadline: Instant, fut: F) -> Option<F::Output> {
    timeout_at(deadline, fut).await.ok()
}

/// Runs `fut` for at most `duration`, failing with [`Elapsed`] (after cancelling `fut`) when
/// the deadline passes first. Trio's `fail_after`; the same as
/// [`omni::time::timeout`](crate::time::timeout), under the name structured code reads.
///
/// # Errors
///
/// [`Elapsed`] when the deadline passed before `fut` finished.
///
/// # Examples
///
/// ```
/// use omni::scope::fail_after;
/// use omni::time::{sleep, Duration};
///
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// let r = rt.block_on(fail_after(Duration::from_secs(1), sleep(Duration::from_secs(2))));
/// assert_eq!(r.unwrap_err().to_string(), "deadline has elapsed");
/// ```
pub async fn fail_after<F: Future>(duration: Duration, fut: F) -> Result<F::Output, Elapsed> {
    timeout(duration, fut).await
}

/// Like [`fail_after`], with a deadline instead of a duration.
///
/// # Errors
///
/// [`Elapsed`] when the deadline passed before `fut` finished.
///
/// # Examples
///
/// ```
/// use omni::scope::fail_at;
/// use omni::time::{Duration, Instant};
///
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// let deadline = Instant::now() + Duration::from_secs(1);
/// assert!(rt.block_on(fail_at(deadline, std::future::pending::<()>())).is_err());
/// ```
pub async fn fail_at<F: Future>(deadline: Instant, fut: F) -> Result<F::Output, Elapsed> {
    timeout_at(deadline, fut).await
}
