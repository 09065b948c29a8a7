//! The blocking tier: [`spawn_blocking`] runs a closure on an OS thread of the runtime's pool
//! and lets green tasks await its result without blocking a worker.
//!
//! Why a pool: a green task that blocks (a synchronous FFI call, file I/O, a long computation)
//! stops every other task of its worker. The pool moves such work to OS threads, started on
//! demand up to `Builder::max_blocking_threads` and retired after `Builder::thread_keep_alive`
//! of idleness (see `pool.rs` for its protocol).
//!
//! How a call flows: `spawn_blocking(f)` queues a job on the pool *at once* (the closure runs
//! even if its handle is never awaited, as with tokio), then spawns a small green task that
//! waits on a [`Completion`] cell the job fills with `catch_unwind(f)`. The task returns the
//! value or re-raises the panic payload with `resume_unwind`, so the [`JoinHandle`] reports
//! `JoinError::is_panic` with the payload. Ownership: the job owns the producer end, the green
//! task the consumer end; dropping the task (abort, runtime shutdown) closes the cell, so a
//! job that has not started yet is skipped and a running one's result is dropped on arrival.
//!
//! Lifecycle: dropping a runtime first closes the pool (queued jobs are dropped unrun, new ones
//! refused), then cancels its tasks, then waits for the running jobs to finish (use
//! `Runtime::shutdown_timeout` to bound the wait). A task whose job was dropped sees its cell
//! abandoned and stays pending until the cancellation that follows reaches it.

mod completion;
mod pool;

pub(crate) use completion::{Completer, Completion};
pub(crate) use pool::{Pool, SpawnError};

use crate::task::JoinHandle;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Runs `f` on the current runtime's blocking pool and returns a handle to await its result.
///
/// Use it for code that blocks the OS thread: synchronous FFI, file or socket calls without an
/// async API, CPU-heavy work. The green task that awaits the handle is parked meanwhile, so the
/// runtime keeps running its other tasks. The closure starts right away (on an idle pool
/// thread, a new one if fewer than `Builder::max_blocking_threads` are alive, else when one
/// frees up), whether or not the handle is ever awaited.
///
/// A blocking closure cannot be interrupted: [`JoinHandle::abort`] cancels the waiting task
/// (the handle then reports `is_cancelled()`), which keeps the closure from starting if it has
/// not started yet; a closure already running runs to the end and its result is dropped. For
/// the same reason dropping the runtime waits for running closures (queued ones are dropped);
/// `Runtime::shutdown_timeout` bounds that wait.
///
/// # Errors
///
/// Awaiting the handle gives `Err(JoinError)` with `is_panic()` and the payload if `f`
/// panicked, and with `is_cancelled()` if the task was aborted or the runtime is shutting down.
///
/// # Panics
///
/// Outside an omni runtime (call it inside `Runtime::block_on` or `omni::block_on`), and if
/// the OS refuses to start a pool thread while none is alive to take the job.
///
/// # Examples
///
/// ```
/// let sum = omni::block_on(async {
///     let h = omni::spawn_blocking(|| (1..=100u64).sum::<u64>());
///     h.await.unwrap()
/// });
/// assert_eq!(sum, 5050);
/// ```
///
/// A panic in the closure comes back as the handle's error:
///
/// ```
/// omni::block_on(async {
///     let err = omni::spawn_blocking(|| panic!("ffi failed")).await.unwrap_err();
///     assert!(err.is_panic());
///     assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "ffi failed");
/// });
/// ```
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let handle = crate::Handle::try_current().unwrap_or_else(|_| {
        panic!(
            "omni::spawn_blocking called outside an omni runtime: call it from inside \
             Runtime::block_on (or omni::block_on), or use std::thread::spawn"
        )
    });
    spawn_blocking_on(&handle, f)
}

/// `spawn_blocking` on the runtime of `handle`.
pub(crate) fn spawn_blocking_on<F, R>(handle: &crate::Handle, f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let shared = handle.shared().clone();
    let pool = shared.blocking.clone();
    let (cell, completer) = Completion::new();
    let inflight = Inflight::new(shared);
    let job = move || {
        // On the pool thread, the job sees its runtime: `spawn` and `Handle::current` work.
        let _enter = crate::rt::enter_blocking(&inflight.0);
        run(f, completer);
        // `inflight` drops here, after the outcome (and its wake-up) was handed over.
    };
    match pool.spawn(Box::new(job)) {
        Ok(()) => handle.spawn(WaitBlocking { cell }),
        // The runtime is shutting down: the task is cancelled like any task spawned now.
        Err(SpawnError::Shutdown(job)) => {
            drop(job);
            JoinHandle::refused()
        }
        Err(SpawnError::NoThread(job, e)) => {
            drop(job);
            panic!(
                "omni::spawn_blocking: the OS refused to start a blocking-pool thread and \
                 none is running to take the job: {e}"
            )
        }
    }
}

/// Counts a job in `blocking_inflight` from submission until it ran or was dropped unrun.
struct Inflight(Arc<crate::rt::RuntimeShared>);

impl Inflight {
    fn new(shared: Arc<crate::rt::RuntimeShared>) -> Inflight {
        shared.blocking_inflight.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Inflight(shared)
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        // Release: the outcome's wake-up (pushed before this) is seen by whoever sees zero.
        self.0.blocking_inflight.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        // A paused current-thread runtime may be parked waiting for exactly this.
        self.0.parker.unpark();
    }
}

/// The pool job: runs `f` unless nobody waits for it any more, and hands over the outcome.
fn run<F: FnOnce() -> R, R>(f: F, completer: Completer<std::thread::Result<R>>) {
    if completer.is_closed() {
        return;
    }
    completer.complete(catch_unwind(AssertUnwindSafe(f)));
}

/// The green task of a `spawn_blocking` call: waits for the job's outcome.
struct WaitBlocking<R> {
    cell: Arc<Completion<std::thread::Result<R>>>,
}

impl<R> Future for WaitBlocking<R> {
    type Output = R;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        match self.cell.poll_take(cx) {
            Poll::Ready(Some(Ok(v))) => Poll::Ready(v),
            Poll::Ready(Some(Err(payload))) => resume_unwind(payload),
            // The job was dropped unrun: only a runtime shutting down does that, and it cancels
            // this task next. Staying pending lets that cancellation, not a made-up panic,
            // decide what the handle reports.
            Poll::Ready(None) => Poll::Pending,
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<R> Drop for WaitBlocking<R> {
    fn drop(&mut self) {
        self.cell.close();
    }
}

impl<R> fmt::Debug for WaitBlocking<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitBlocking").field("cell", &self.cell).finish()
    }
}
