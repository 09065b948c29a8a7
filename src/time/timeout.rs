//! `timeout`: a future with a deadline.

use super::{sleep, sleep_until, Elapsed, Instant, Sleep};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Runs `fut` until it finishes or `duration` passes, whichever comes first. On time-out the
/// future is dropped (cancelled at the `.await` it was parked on) and the result is
/// `Err(Elapsed)`.
///
/// # Errors
///
/// [`Elapsed`] if the deadline passed first.
///
/// # Examples
///
/// ```
/// use omni::time::{sleep, timeout, Duration};
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// rt.block_on(async {
///     assert_eq!(timeout(Duration::from_secs(1), async { 5 }).await, Ok(5));
///     let slow = sleep(Duration::from_secs(3600));
///     assert!(timeout(Duration::from_secs(1), slow).await.is_err());
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, fut: F) -> Timeout<F> {
    Timeout { fut, sleep: sleep(duration) }
}

/// Like [`timeout`], with a deadline instead of a duration.
///
/// # Errors
///
/// [`Elapsed`] if the deadline passed first.
///
/// # Examples
///
/// ```
/// use omni::time::{timeout_at, Duration, Instant};
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// let r = rt.block_on(timeout_at(Instant::now() + Duration::from_millis(10), std::future::pending::<()>()));
/// assert!(r.is_err());
/// ```
pub fn timeout_at<F: Future>(deadline: Instant, fut: F) -> Timeout<F> {
    Timeout { fut, sleep: sleep_until(deadline) }
}

pin_project! {
    /// The future of [`timeout`] and [`timeout_at`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        fut: F,
        sleep: Sleep,
    }
}

impl<F> Timeout<F> {
    /// The wrapped future.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{timeout, Duration};
    /// let t = timeout(Duration::from_secs(1), std::future::ready(5));
    /// let _inner: &std::future::Ready<i32> = t.get_ref();
    /// ```
    pub fn get_ref(&self) -> &F {
        &self.fut
    }

    /// Gives the wrapped future back, without a deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{timeout, Duration};
    /// let t = timeout(Duration::from_secs(1), async { 5 });
    /// assert_eq!(omni::block_on(t.into_inner()), 5);
    /// ```
    pub fn into_inner(self) -> F {
        self.fut
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The future first: a future that is ready at the deadline wins.
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        // The deadline is checked even if the future spent the task's whole budget: otherwise
        // a future that keeps the budget spent would never time out.
        match crate::rt::coop::unconstrained(|| Pin::new(this.sleep).poll(cx)) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed::new())),
            Poll::Pending => Poll::Pending,
        }
    }
}
