//! `shield`: work that finishes even when whatever awaits it is cancelled.
//!
//! Cancellation in Rust is a drop, and a drop cannot be refused. So a shield does not stop the
//! cancel; it moves the rest of the work out of its way. While awaited, a [`Shield`] polls its
//! future in place, at no cost over awaiting it directly. Dropped before the future finished,
//! it hands the future to its runtime as a task of its own, which runs it to the end; the value
//! is discarded (no one is left to take it).
//!
//! The runtime is the one current when [`shield`] was called (else the one current at the
//! drop). A shield dropped with no runtime, or while its runtime shuts down, cannot go on: the
//! work is dropped then, like every other task of a runtime that is going away.

use crate::rt::Handle;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs `fut` so that it finishes even if the caller is cancelled: for cleanup that must not
/// stop half-way (flushing a file, telling a peer goodbye, releasing a lease).
///
/// # Examples
///
/// ```
/// use omni::scope::{move_on_after, shield};
/// use omni::time::{sleep, Duration};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// let flushed = Arc::new(AtomicBool::new(false));
/// rt.block_on(async {
///     let f = flushed.clone();
///     let cleanup = shield(async move {
///         sleep(Duration::from_secs(2)).await; // slow cleanup
///         f.store(true, Ordering::SeqCst);
///     });
///     // The deadline cancels the caller after 1 s, half-way through the cleanup...
///     assert!(move_on_after(Duration::from_secs(1), cleanup).await.is_none());
///     // ...which finishes anyway, as a task of its own.
///     sleep(Duration::from_secs(5)).await;
/// });
/// assert!(flushed.load(Ordering::SeqCst));
/// ```
pub fn shield<F>(fut: F) -> Shield<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Shield { fut: Some(Box::pin(fut)), handle: Handle::try_current().ok() }
}

/// The future of [`shield`].
#[must_use = "futures do nothing unless awaited"]
pub struct Shield<F: Future + Send + 'static>
where
    F::Output: Send + 'static,
{
    fut: Option<Pin<Box<F>>>,
    handle: Option<Handle>,
}

impl<F> Future for Shield<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let fut = self.fut.as_mut().expect("omni::scope::Shield polled after it returned");
        let v = std::task::ready!(fut.as_mut().poll(cx));
        self.fut = None;
        Poll::Ready(v)
    }
}

impl<F> Drop for Shield<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        let Some(fut) = self.fut.take() else { return };
        let handle = self.handle.take().or_else(|| Handle::try_current().ok());
        if let Some(h) = handle {
            drop(h.spawn(fut));
        }
    }
}

impl<F> fmt::Debug for Shield<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield").field("finished", &self.fut.is_none()).finish()
    }
}
