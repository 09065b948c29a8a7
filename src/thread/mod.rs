//! Dedicated OS threads that each run their own omni runtime: the seeds' `thread-spawn` and
//! `thread-join`.
//!
//! Why: some work wants a thread of its own (a long-lived event loop, a subsystem with
//! `!Send` state, isolation from the caller's runtime) but should still be written as async
//! code. [`spawn`] starts an OS thread, builds a current-thread [`Runtime`] on
//! it and runs the future that the closure returns, so the future and the tasks it spawns with
//! [`spawn_local`](crate::spawn_local) may be `!Send`: they never leave that thread.
//!
//! Joining: the thread's outcome travels through a completion cell (a mutex, a condvar and a
//! waker), so the [`JoinHandle`] is awaited from a green task without blocking its runtime, or
//! joined with [`JoinHandle::join`] from plain code. Either way the result is a
//! [`std::thread::Result`]: `Err` holds the panic payload, as with
//! [`std::thread::JoinHandle::join`]. The outcome is published after the thread's runtime is
//! dropped, so by then every task it spawned is finished or cancelled and its blocking
//! closures have returned.
//!
//! # Examples
//!
//! ```
//! use std::rc::Rc;
//!
//! let h = omni::thread::spawn(|| async {
//!     let state = Rc::new(20); // !Send, fine: it stays on the new thread
//!     let s = state.clone();
//!     let t = omni::spawn_local(async move { *s + 1 });
//!     t.await.unwrap() + *state + 1
//! });
//! assert_eq!(h.join().unwrap(), 42);
//! ```

use crate::blocking::{Completer, Completion};
use crate::Runtime;
use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Starts an OS thread that runs the future built by `f` on a runtime of its own.
///
/// `f` runs on the new thread, inside its runtime, so the future it returns may be `!Send`
/// and may use [`spawn_local`](crate::spawn_local); only `f` and the output cross threads.
/// Use [`Builder`] to name the thread, set its stack size, or handle a failure to start it.
///
/// # Panics
///
/// If the OS cannot start a thread (as [`std::thread::spawn`] does); use [`Builder::spawn`]
/// to get the error instead. A panic *in* the thread does not propagate: it comes back from
/// joining the handle.
///
/// # Examples
///
/// Joined from a green task, which waits without blocking its own runtime:
///
/// ```
/// let v = omni::block_on(async {
///     let h = omni::thread::spawn(|| async { "from another thread" });
///     h.await.unwrap()
/// });
/// assert_eq!(v, "from another thread");
/// ```
pub fn spawn<F, Fut>(f: F) -> JoinHandle<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    Builder::new()
        .spawn(f)
        .unwrap_or_else(|e| panic!("omni::thread::spawn: failed to spawn thread: {e}"))
}

/// Configures an omni thread before starting it: its name and stack size.
///
/// # Examples
///
/// ```
/// let h = omni::thread::Builder::new()
///     .name("worker".into())
///     .stack_size(256 * 1024)
///     .spawn(|| async { std::thread::current().name().map(String::from) })?;
/// assert_eq!(h.thread().name(), Some("worker"));
/// assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with std's defaults: an unnamed thread with the default stack size.
    ///
    /// # Examples
    ///
    /// ```
    /// let h = omni::thread::Builder::new().spawn(|| async { 5 }).unwrap();
    /// assert_eq!(h.thread().name(), None);
    /// assert_eq!(h.join().unwrap(), 5);
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the thread (shown in panic messages and debuggers), as
    /// [`std::thread::Builder::name`].
    ///
    /// # Examples
    ///
    /// ```
    /// let b = omni::thread::Builder::new().name("loop".into());
    /// let h = b.spawn(|| async { std::thread::current().name() == Some("loop") }).unwrap();
    /// assert!(h.join().unwrap());
    /// ```
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// The thread's stack size in bytes, as [`std::thread::Builder::stack_size`].
    ///
    /// # Examples
    ///
    /// ```
    /// let b = omni::thread::Builder::new().stack_size(4 * 1024 * 1024);
    /// assert_eq!(b.spawn(|| async { "deep" }).unwrap().join().unwrap(), "deep");
    /// ```
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Starts the thread; see [`spawn`].
    ///
    /// # Errors
    ///
    /// If the OS cannot start the thread. `f` is dropped unrun.
    ///
    /// # Examples
    ///
    /// ```
    /// let h = omni::thread::Builder::new().spawn(|| async { 1 + 1 })?;
    /// assert_eq!(h.join().unwrap(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn<F, Fut>(self, f: F) -> io::Result<JoinHandle<Fut::Output>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let mut std_builder = std::thread::Builder::new();
        if let Some(name) = self.name {
            std_builder = std_builder.name(name);
        }
        if let Some(size) = self.stack_size {
            std_builder = std_builder.stack_size(size);
        }
        let (cell, completer) = Completion::new();
        // A runtime that starts an OS thread is never reported deadlocked while the thread
        // lives: the thread may hold channel ends and complete any wait.
        let parent = crate::rt::current_shared().map(Alive::new);
        let native = std_builder.spawn(move || {
            let _alive = parent;
            main(f, completer)
        })?;
        let thread = native.thread().clone();
        Ok(JoinHandle { cell, native: Some(native), thread })
    }
}

/// Counts an omni thread in the runtime that started it, until the thread ends (after it
/// published its outcome, so a task joining it is woken before the count drops).
struct Alive(std::sync::Arc<crate::rt::RuntimeShared>);

impl Alive {
    fn new(shared: std::sync::Arc<crate::rt::RuntimeShared>) -> Alive {
        shared.watch.threads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Alive(shared)
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.watch.threads.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        // The runtime may have parked without a deadlock check because of this thread.
        self.0.parker.unpark();
    }
}

/// The body of an omni thread: a runtime, the future, then the outcome.
fn main<F, Fut>(f: F, completer: Completer<std::thread::Result<Fut::Output>>)
where
    F: FnOnce() -> Fut,
    Fut: Future,
{
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let rt = Runtime::new()
            .unwrap_or_else(|e| panic!("omni::thread: could not create the thread's runtime: {e}"));
        let out = rt.block_on(async move { f().await });
        // Shut down (cancel leftover tasks, wait for blocking closures) before publishing.
        drop(rt);
        out
    }));
    completer.complete(outcome);
}

/// An owned permission to join an omni thread: await it from a green task, or
/// [`join`](JoinHandle::join) it from plain code.
///
/// Both give a [`std::thread::Result`]: the future's output, or `Err` with the panic payload.
/// Dropping the handle detaches the thread, as with [`std::thread::JoinHandle`].
///
/// # Examples
///
/// ```
/// let h = omni::thread::spawn(|| async { panic!("oops") });
/// let payload = h.join().unwrap_err();
/// assert_eq!(*payload.downcast::<&str>().unwrap(), "oops");
/// ```
pub struct JoinHandle<T> {
    cell: Arc<Completion<std::thread::Result<T>>>,
    native: Option<std::thread::JoinHandle<()>>,
    thread: std::thread::Thread,
}

impl<T> JoinHandle<T> {
    /// Blocks the calling thread until the omni thread finishes, and returns its outcome.
    ///
    /// Inside a green task, `.await` the handle instead: `join` would block every task of the
    /// caller's runtime until the thread ends.
    ///
    /// # Errors
    ///
    /// `Err` with the panic payload if the thread's future (or its runtime) panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let h = omni::thread::spawn(|| async { 6 * 7 });
    /// assert_eq!(h.join().unwrap(), 42);
    /// ```
    pub fn join(mut self) -> std::thread::Result<T> {
        let outcome = self.cell.wait_take();
        // The thread published its outcome as its last act; joining it also waits out its
        // thread-local destructors, as std's `join` does.
        if let Some(native) = self.native.take() {
            let _ = native.join();
        }
        outcome.unwrap_or_else(|| Err(Box::new(LOST)))
    }

    /// Whether the thread's future has finished (or panicked) and its runtime shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let h = omni::thread::spawn(move || async move { rx.recv().unwrap() });
    /// assert!(!h.is_finished());
    /// tx.send(()).unwrap();
    /// h.join().unwrap();
    /// ```
    pub fn is_finished(&self) -> bool {
        self.cell.is_done()
    }

    /// The OS thread's handle (its name and id, or to unpark it).
    ///
    /// # Examples
    ///
    /// ```
    /// let h = omni::thread::spawn(|| async { std::thread::current().id() });
    /// let id = h.thread().id();
    /// assert_eq!(h.join().unwrap(), id);
    /// ```
    pub fn thread(&self) -> &std::thread::Thread {
        &self.thread
    }
}

/// The payload when a thread ended without publishing an outcome; unreachable unless the
/// outcome's hand-off itself failed.
const LOST: &str = "omni::thread: the thread ended without producing an outcome";

impl<T> Future for JoinHandle<T> {
    type Output = std::thread::Result<T>;

    /// # Panics
    ///
    /// If polled again after it returned `Ready`.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.cell.poll_take(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(outcome) => {
                // The thread is past its last step; let it finish on its own.
                self.native = None;
                Poll::Ready(outcome.unwrap_or_else(|| Err(Box::new(LOST))))
            }
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("thread", &self.thread)
            .field("finished", &self.is_finished())
            .finish()
    }
}
