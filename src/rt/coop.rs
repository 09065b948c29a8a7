//! Cooperative budget: a task that is always ready cannot starve the others.
//!
//! Each task poll gets a budget of [`BUDGET`] operations. Omni's leaf futures (join handles,
//! timers, channels) spend one unit each time they return `Ready`; when the budget is spent they
//! wake the task and return `Pending` instead, so a loop that only ever awaits ready futures
//! still goes back to the scheduler. Outside an omni task the budget is unlimited.
//!
//! A leaf future wraps its poll in [`budgeted`], which takes a unit (or refuses) and gives it
//! back when the poll returns `Pending` after all: a task waiting on many pending futures (200
//! sleeps polled in one poll) must not run out of budget, or it would wake itself for ever
//! without ever waiting. A combinator that must make progress whatever its inner future spent
//! (the deadline of `time::timeout`) polls under [`unconstrained`].

use std::task::{Context, Poll};

/// Operations per task poll (tokio uses the same figure).
pub(crate) const BUDGET: u32 = 128;

/// Polls a leaf future's body `f` under the budget: refuses (waking the task) when the budget is
/// spent, and spends one unit only if `f` completes.
#[inline]
pub(crate) fn budgeted<T>(
    cx: &mut Context<'_>,
    f: impl FnOnce(&mut Context<'_>) -> Poll<T>,
) -> Poll<T> {
    if poll_proceed(cx).is_pending() {
        return Poll::Pending;
    }
    let r = f(cx);
    if r.is_pending() {
        refund();
    }
    r
}

/// Spends one unit of the current task's budget, or wakes the task and returns `Pending` when
/// it is spent.
#[inline]
fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    if super::spend_budget() {
        Poll::Ready(())
    } else {
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Gives back the unit a [`poll_proceed`] took.
#[inline]
fn refund() {
    super::context::refund_budget();
}

/// Runs `f` with a fresh budget, then restores the task's budget as it was.
pub(crate) fn unconstrained<R>(f: impl FnOnce() -> R) -> R {
    let saved = super::context::replace_budget(BUDGET);
    let r = f();
    if let Some(b) = saved {
        super::context::replace_budget(b);
    }
    r
}
