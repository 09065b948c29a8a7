//! Cooperative budget: a task that is always ready cannot starve the others.
//!
//! Each task poll gets a budget of [`BUDGET`] operations. Omni's leaf futures (join handles,
//! continuations; channels and timers later) spend one unit each time they would return
//! `Ready`; when the budget is spent they wake the task and return `Pending` instead, so a loop
//! that only ever awaits ready futures still goes back to the scheduler. Outside an omni task
//! the budget is unlimited.

use std::task::{Context, Poll};

/// Operations per task poll (tokio uses the same figure).
pub(crate) const BUDGET: u32 = 128;

/// Spends one unit of the current task's budget, or wakes the task and returns `Pending` when
/// it is spent.
#[inline]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    if super::spend_budget() {
        Poll::Ready(())
    } else {
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
