//! `yield_now`: let the other tasks run.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields to the scheduler: the task goes to the back of the run queue, so two tasks that
/// yield in a loop alternate.
///
/// Inside an omni task this costs no wake-up: the scheduler is told directly to requeue the
/// task. Under another executor (or inside a combinator with its own waker) it wakes the waker,
/// as any future would.
///
/// # Examples
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// let log = Rc::new(RefCell::new(Vec::new()));
/// omni::block_on(async {
///     let mut hs = Vec::new();
///     for name in ["a", "b"] {
///         let log = log.clone();
///         hs.push(omni::spawn_local(async move {
///             for _ in 0..2 {
///                 log.borrow_mut().push(name);
///                 omni::yield_now().await;
///             }
///         }));
///     }
///     for h in hs {
///         h.await.unwrap();
///     }
/// });
/// assert_eq!(*log.borrow(), ["a", "b", "a", "b"]);
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        if !super::context::request_yield(cx.waker()) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
