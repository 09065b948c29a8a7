//! `Runtime`, `Builder`, `Handle` and the free functions that reach the current runtime.

use super::scheduler::{with_current, Scheduler, Shared};
use crate::task::JoinHandle;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;

/// An omni runtime: a scheduler for green tasks.
///
/// Today's flavour is the current-thread runtime: every task runs on the thread that calls
/// [`Runtime::block_on`]. Tasks spawned with [`spawn_local`] may hold `!Send` data, so the
/// runtime stays on the thread that created it (`Runtime` is not `Send`); a [`Handle`] is
/// `Send + Sync` and spawns from anywhere.
///
/// Dropping the runtime cancels every task: each future (or output not yet taken) is dropped
/// exactly once, on the dropping thread, and join handles then report a cancelled task.
///
/// # Examples
///
/// ```
/// let rt = omni::Runtime::new()?;
/// let v = rt.block_on(async {
///     let h = omni::spawn_local(async { 1 + 1 });
///     h.await.unwrap()
/// });
/// assert_eq!(v, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A `Runtime` cannot be sent to another thread (its tasks may be `!Send`):
///
/// ```compile_fail
/// let rt = omni::Runtime::new().unwrap();
/// std::thread::spawn(move || drop(rt));
/// ```
pub struct Runtime {
    sched: Box<Scheduler>,
    handle: Handle,
    _not_send: PhantomData<*const ()>,
}

impl Runtime {
    /// A current-thread runtime with default settings.
    ///
    /// # Errors
    ///
    /// If the runtime's resources cannot be created (the reactor, once it lands, can fail to
    /// open its driver).
    pub fn new() -> io::Result<Runtime> {
        Builder::new_current_thread().build()
    }

    /// A builder to configure a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = omni::Runtime::builder().build().unwrap();
    /// assert_eq!(rt.block_on(async { 3 }), 3);
    /// ```
    pub fn builder() -> Builder {
        Builder::new_current_thread()
    }

    /// Runs `fut` to completion on this thread, running spawned tasks while it waits.
    ///
    /// # Panics
    ///
    /// If called from inside a running omni runtime on this thread (that would block every
    /// task of the outer runtime): `.await` the future instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = omni::Runtime::new().unwrap();
    /// assert_eq!(rt.block_on(async { "done" }), "done");
    /// ```
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.sched.block_on(fut)
    }

    /// Spawns a `Send` task on this runtime; it runs during `block_on`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = omni::Runtime::new().unwrap();
    /// let h = rt.spawn(async { 7 });
    /// assert_eq!(rt.block_on(h).unwrap(), 7);
    /// ```
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut)
    }

    /// A handle to this runtime, to spawn from other threads.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.sched.shutdown();
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("flavor", &"current_thread")
            .field("sched", &self.sched)
            .finish()
    }
}

/// Configures and builds a [`Runtime`].
///
/// # Examples
///
/// ```
/// let rt = omni::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {});
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    _private: (),
}

impl Builder {
    /// A builder for a runtime whose tasks all run on the thread that calls `block_on`.
    pub fn new_current_thread() -> Builder {
        Builder { _private: () }
    }

    /// Builds the runtime.
    ///
    /// # Errors
    ///
    /// If the runtime's resources cannot be created.
    pub fn build(&self) -> io::Result<Runtime> {
        let sched = Box::new(Scheduler::new());
        let handle = Handle { shared: sched.shared.clone() };
        Ok(Runtime { sched, handle, _not_send: PhantomData })
    }
}

/// A cloneable, `Send + Sync` reference to a runtime, for spawning from any thread.
///
/// # Examples
///
/// ```
/// let rt = omni::Runtime::new().unwrap();
/// let handle = rt.handle().clone();
/// let h = std::thread::spawn(move || handle.spawn(async { 5 })).join().unwrap();
/// assert_eq!(rt.block_on(h).unwrap(), 5);
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

/// The error of [`Handle::try_current`]: no omni runtime is running on this thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryCurrentError(());

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no omni runtime is running on this thread (call this inside Runtime::block_on)",
        )
    }
}

impl std::error::Error for TryCurrentError {}

impl Handle {
    /// The handle of the runtime running on this thread.
    ///
    /// # Panics
    ///
    /// Outside a runtime; use [`Handle::try_current`] to check.
    ///
    /// # Examples
    ///
    /// ```
    /// omni::block_on(async {
    ///     let h = omni::Handle::current();
    ///     assert_eq!(h.spawn(async { 1 }).await.unwrap(), 1);
    /// });
    /// ```
    pub fn current() -> Handle {
        Handle::try_current().unwrap_or_else(|e| panic!("omni::Handle::current: {e}"))
    }

    /// The handle of the runtime running on this thread, or an error outside one.
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        with_current(|s| s.map(|s| Handle { shared: s.shared.clone() })).ok_or(TryCurrentError(()))
    }

    /// Spawns a `Send` task on the runtime, from any thread.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut fut = Some(fut);
        let local = with_current(|s| match s {
            Some(s) if Arc::ptr_eq(&s.shared, &self.shared) => {
                Some(s.spawn(fut.take().expect("taken once")))
            }
            _ => None,
        });
        local.unwrap_or_else(|| self.shared.spawn_remote(fut.take().expect("taken once")))
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("shared", &self.shared).finish()
    }
}

fn outside(what: &str) -> ! {
    panic!(
        "omni::{what} called outside an omni runtime: call it from inside Runtime::block_on \
         (or omni::block_on), or spawn through a Handle (Runtime::handle)"
    )
}

/// Spawns a `Send` task on the current runtime.
///
/// # Panics
///
/// Outside a runtime (use [`Handle::spawn`] from other threads).
///
/// # Examples
///
/// ```
/// omni::block_on(async {
///     let h = omni::spawn(async { "hi" });
///     assert_eq!(h.await.unwrap(), "hi");
/// });
/// ```
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_inner(fut, "spawn")
}

/// Spawns a task that may be `!Send` on the current runtime's thread.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// omni::block_on(async {
///     let shared = Rc::new(5);
///     let s2 = shared.clone();
///     let h = omni::spawn_local(async move { *s2 + 1 });
///     assert_eq!(h.await.unwrap(), 6);
/// });
/// ```
pub fn spawn_local<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    spawn_inner(fut, "spawn_local")
}

fn spawn_inner<F: Future + 'static>(fut: F, what: &str) -> JoinHandle<F::Output> {
    let mut fut = Some(fut);
    let h = with_current(|s| s.map(|s| s.spawn(fut.take().expect("taken once"))));
    h.unwrap_or_else(|| outside(what))
}

/// Runs `fut` to completion on a fresh current-thread runtime.
///
/// # Panics
///
/// If called inside a running omni runtime, or if the runtime cannot be created.
///
/// # Examples
///
/// ```
/// assert_eq!(omni::block_on(async { 40 + 2 }), 42);
/// ```
pub fn block_on<F: Future>(fut: F) -> F::Output {
    Runtime::new().expect("omni: could not create a runtime").block_on(fut)
}
