//! Which scheduler (if any) runs on this thread, and how the crate-wide entry points (wakers,
//! join handles, `spawn`, the budget) reach it.
//!
//! A thread is in one of four contexts:
//! - **none**: no omni runtime here; wakes and spawns go through a runtime's shared state;
//! - **local**: a current-thread [`Scheduler`] is inside `block_on` on this thread;
//! - **worker**: this is a worker thread of a multi-thread runtime;
//! - **main**: this thread is inside a multi-thread runtime's `block_on` (or its shutdown): it
//!   may reach the runtime's task slots directly (the runtime outlives the call) but runs no
//!   tasks, so what it schedules goes to the runtime's injector;
//! - **blocking**: a blocking-pool thread running one of the runtime's `spawn_blocking` jobs:
//!   `spawn`, `Handle::current` and the clock work there, as tokio users expect; task slots are
//!   reached as from any foreign thread.
//!
//! The pointer in the context is valid for as long as it is installed: the scheduler (or worker,
//! or shared state) installs itself with [`enter`] and the returned guard restores the previous
//! context before it goes away.

use super::current_thread::Scheduler;
use super::multi::Worker;
use super::shared::Shared;
use std::cell::Cell;

/// The scheduler context of one thread.
#[derive(Clone, Copy)]
pub(crate) enum Ctx {
    /// No omni runtime.
    None,
    /// A current-thread scheduler.
    Local(*const Scheduler),
    /// A worker of a multi-thread runtime.
    Worker(*const Worker),
    /// A thread in a multi-thread runtime's `block_on` or shutdown.
    Main(*const Shared),
    /// A blocking-pool thread running a `spawn_blocking` job of this runtime (which the job
    /// keeps alive). It may spawn and read the clock, but never reaches task slots directly:
    /// the job may outlive the runtime's shutdown (`shutdown_timeout`).
    Blocking(*const Shared),
}

thread_local! {
    static CURRENT: Cell<Ctx> = const { Cell::new(Ctx::None) };
}

/// The context of this thread.
#[inline]
pub(crate) fn get() -> Ctx {
    CURRENT.with(|c| c.get())
}

/// Installs `ctx` until the guard drops (and tells the deadlock notes which runtime polls
/// here, so a channel can tell its own runtime from another without a context look per wait).
pub(crate) fn enter(ctx: Ctx) -> Enter {
    let prev = CURRENT.with(|c| c.replace(ctx));
    let prev_runtime = super::deadlock::set_runtime(runtime_id());
    Enter(prev, prev_runtime)
}

/// Restores the previous context when dropped.
pub(crate) struct Enter(Ctx, u64);

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
        super::deadlock::set_runtime(self.1);
    }
}

/// The context of this thread with its pointer turned into a reference, valid for the call.
#[derive(Clone, Copy)]
pub(crate) enum Current<'a> {
    None,
    Local(&'a Scheduler),
    Worker(&'a Worker),
    Main(&'a Shared),
    Blocking(&'a Shared),
}

/// Runs `f` with this thread's context. The one place a context pointer is dereferenced.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(Current<'_>) -> R) -> R {
    // SAFETY: a context pointer is valid while installed (module doc): the scheduler, worker
    // or shared state lives in a frame that holds the `Enter` guard, above this call on the
    // same thread, and the guard restores the previous context before the pointee goes away.
    // `f` runs within this call, so the references cannot outlive the installation.
    let current = unsafe {
        match get() {
            Ctx::None => Current::None,
            Ctx::Local(s) => Current::Local(&*s),
            Ctx::Worker(w) => Current::Worker(&*w),
            Ctx::Main(s) => Current::Main(&*s),
            Ctx::Blocking(s) => Current::Blocking(&*s),
        }
    };
    f(current)
}

/// The shared state of the runtime this thread runs or is inside of, if any.
#[inline]
pub(crate) fn shared() -> Option<*const Shared> {
    with(|c| match c {
        Current::None => None,
        Current::Local(s) => Some(std::sync::Arc::as_ptr(&s.shared)),
        Current::Worker(w) => Some(std::sync::Arc::as_ptr(&w.shared)),
        Current::Main(s) | Current::Blocking(s) => Some(s as *const Shared),
    })
}

// ---- Entry points used by wakers, join handles and leaf futures ----------------------------

use super::exec::PollCx;
use super::shared::Remote;
use crate::task::raw::Header;
use crate::task::state::Wake;
use crate::task::{gen_of, waker, with_slot, Access};
use std::ptr;

/// Marks this thread as running a blocking job of the runtime `shared` until the guard drops.
/// The caller keeps `shared` alive meanwhile.
pub(crate) fn enter_blocking(shared: &std::sync::Arc<Shared>) -> Enter {
    enter(Ctx::Blocking(std::sync::Arc::as_ptr(shared)))
}

/// Runs `f` with the shared state of the runtime this thread runs or is inside of.
#[inline]
pub(crate) fn with_shared<R>(f: impl FnOnce(Option<&Shared>) -> R) -> R {
    with(|c| match c {
        Current::None => f(None),
        Current::Local(s) => f(Some(&s.shared)),
        Current::Worker(w) => f(Some(&w.shared)),
        Current::Main(s) | Current::Blocking(s) => f(Some(s)),
    })
}

/// A counted reference to the shared state of the runtime this thread runs or is inside of.
pub(crate) fn current_shared() -> Option<std::sync::Arc<Shared>> {
    let s = shared()?;
    // SAFETY: the context's `Shared` is alive while installed, and it always lives in an
    // `Arc` (built by `Shared::new`), so taking one more count is sound.
    unsafe {
        std::sync::Arc::increment_strong_count(s);
        Some(std::sync::Arc::from_raw(s))
    }
}

/// The identity (chunk-table owner id) of the runtime this thread runs or is inside of; null
/// if none.
#[inline]
pub(crate) fn current_owner() -> *const () {
    with(|c| match c {
        Current::Local(s) => s.owner(),
        Current::Worker(w) => w.owner(),
        Current::Main(s) => s.owner_id(),
        Current::None | Current::Blocking(_) => ptr::null(),
    })
}

/// The id of the runtime this thread runs or is inside of (`Shared::id`), 0 outside any.
#[inline]
pub(crate) fn runtime_id() -> u64 {
    with(|c| match c {
        Current::None => 0,
        Current::Local(s) => s.shared.id,
        Current::Worker(w) => w.shared.id,
        Current::Main(s) | Current::Blocking(s) => s.id,
    })
}

/// The per-poll state of the scheduler polling tasks on this thread, if any.
#[inline]
fn poll_cx<R>(f: impl FnOnce(Option<&PollCx>) -> R) -> R {
    with(|c| match c {
        Current::Local(s) => f(Some(&s.cx)),
        Current::Worker(w) => f(Some(&w.cx)),
        Current::None | Current::Main(_) | Current::Blocking(_) => f(None),
    })
}

/// Queues a task that a state transition just marked `SCHEDULED`. `h` is its header, reached
/// with `access`.
pub(crate) fn schedule(key: u64, h: &Header, access: Access) {
    match access {
        Access::Owner => with(|c| match c {
            Current::Local(s) => s.schedule_local(key),
            Current::Worker(w) => w.schedule_local(key, h.state.load().pin()),
            Current::Main(s) => s.push(Remote::Run(key), h.state.load().pin()),
            // Owner access is never given on these threads.
            Current::None | Current::Blocking(_) => {}
        }),
        Access::Foreign(owner) => {
            // SAFETY: `owner` came from the chunk table under its reader protocol, which keeps
            // the `Shared` alive for the duration of the `with_slot` closure that called us.
            let shared = unsafe { &*(owner as *const Shared) };
            shared.push(Remote::Run(key), h.state.load().pin())
        }
    }
}

/// The waker entry point: schedules the task if `key` still names it and it is idle.
///
/// A wake on the thread of the task's own scheduler (the common case: one task wakes another)
/// looks the context up once and queues the task directly; any other wake goes through
/// `with_slot` and `schedule`, which decide between the owner path and the remote queue.
#[inline]
pub(crate) fn wake_task(key: u64) {
    let woke = with(|c| match c {
        Current::Local(s) => wake_owned(key, s.owner(), |_| s.schedule_local(key)),
        Current::Worker(w) => {
            wake_owned(key, w.owner(), |h| w.schedule_local(key, h.state.load().pin()))
        }
        _ => false,
    });
    if !woke {
        with_slot(key, |h, _, access| {
            if h.state.wake(gen_of(key)) == Wake::Schedule {
                schedule(key, h, access);
            }
        });
    }
}

/// The owner-thread half of [`wake_task`]: false if `key`'s chunk is not `owner`'s.
#[inline]
fn wake_owned(key: u64, owner: *const (), queue: impl FnOnce(&Header)) -> bool {
    let Some(h) = super::exec::header(owner, key) else { return false };
    // SAFETY: a slot of this thread's own runtime, whose chunks stay allocated while it runs
    // here (table rule 1); every slot holds an initialised header.
    let h = unsafe { &*h };
    if h.state.wake(gen_of(key)) == Wake::Schedule {
        queue(h);
    }
    true
}

/// A join handle gave up a completed task: free its slot on a thread that may.
pub(crate) fn free_completed(key: u64, h: *mut Header, access: Access) {
    // The pin decides where the slot may be freed; a current-thread runtime has no pins, so
    // its (hot) path does not read it.
    // SAFETY: the caller is inside `with_slot` for this slot, so the header is readable.
    let pin = || unsafe { &*h }.state.load().pin();
    match access {
        Access::Owner => with(|c| match c {
            Current::Local(s) => s.free_slot(key, h),
            Current::Worker(w) => w.free_completed(key, h, pin()),
            Current::Main(s) => s.push(Remote::Free(key), pin()),
            // Owner access is never given on these threads.
            Current::None | Current::Blocking(_) => {}
        }),
        Access::Foreign(owner) => {
            // SAFETY: as in `schedule`.
            let shared = unsafe { &*(owner as *const Shared) };
            shared.push(Remote::Free(key), pin())
        }
    }
}

/// Spends one unit of the current task's budget; false when it is spent.
#[inline]
pub(crate) fn spend_budget() -> bool {
    poll_cx(|cx| match cx {
        None => true,
        Some(cx) => {
            let b = cx.budget.get();
            if b == 0 {
                false
            } else {
                cx.budget.set(b - 1);
                true
            }
        }
    })
}

/// Gives one unit back to the current task's budget (see `coop::refund`).
#[inline]
pub(crate) fn refund_budget() {
    poll_cx(|cx| {
        if let Some(cx) = cx {
            cx.budget.set((cx.budget.get() + 1).min(super::coop::BUDGET));
        }
    })
}

/// Sets the current task's budget to `b` and returns the old one (`None` outside a task).
pub(crate) fn replace_budget(b: u32) -> Option<u32> {
    poll_cx(|cx| cx.map(|cx| cx.budget.replace(b)))
}

/// If `w` is the waker of the task being polled, asks the scheduler to requeue it at the back
/// after this poll (without a wake-up round trip). Returns false otherwise.
#[inline]
pub(crate) fn request_yield(w: &std::task::Waker) -> bool {
    poll_cx(|cx| match (cx, waker::key_of(w)) {
        (Some(cx), Some(k)) if k == cx.current_task.get() => {
            cx.yielded.set(true);
            true
        }
        _ => false,
    })
}
