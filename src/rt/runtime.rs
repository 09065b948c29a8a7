//! `Runtime`, `Builder`, `Handle` and the free functions that reach the current runtime.

use super::scheduler::{with_current, Scheduler, Shared};
use crate::blocking::Pool;
use crate::task::JoinHandle;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// An omni runtime: a scheduler for green tasks.
///
/// Today's flavour is the current-thread runtime: every task runs on the thread that calls
/// [`Runtime::block_on`]. Tasks spawned with [`spawn_local`] may hold `!Send` data, so the
/// runtime stays on the thread that created it (`Runtime` is not `Send`); a [`Handle`] is
/// `Send + Sync` and spawns from anywhere.
///
/// Dropping the runtime cancels every task: each future (or output not yet taken) is dropped
/// exactly once, on the dropping thread, and join handles then report a cancelled task. Then
/// it shuts down the blocking pool: closures queued by [`spawn_blocking`](crate::spawn_blocking)
/// that have not started are dropped, and the drop waits for running ones to return (as with
/// tokio; [`Runtime::shutdown_timeout`] bounds the wait).
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
    /// `None` once the runtime was shut down (by `shutdown_timeout`, before its drop).
    blocking: Option<Arc<Pool>>,
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
        let _pool = EnterPool::new(self.blocking.as_ref());
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

    /// Shuts the runtime down as dropping it does, but waits at most `timeout` for blocking
    /// closures that are still running. Returns whether they all finished in time.
    ///
    /// Every task is cancelled and queued blocking closures are dropped, as on drop. A closure
    /// still running after `timeout` is left to finish on its pool thread (it cannot be
    /// interrupted); its result is dropped there. `Duration::ZERO` does not wait at all.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = omni::Runtime::new().unwrap();
    /// let (release, stuck) = std::sync::mpsc::channel::<()>();
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// rt.block_on(async move {
    ///     drop(omni::spawn_blocking(move || {
    ///         started_tx.send(()).unwrap();
    ///         let _ = stuck.recv(); // blocks until `release` is used or dropped
    ///     }));
    /// });
    /// started.recv().unwrap();
    /// // The closure is stuck: shutdown gives up waiting instead of hanging.
    /// assert!(!rt.shutdown_timeout(Duration::ZERO));
    /// drop(release);
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> bool {
        self.close(Some(timeout))
    }

    /// Drops the queued blocking closures, cancels every task, then waits up to `timeout` for
    /// the running closures. (Closing the pool first means no queued closure starts while the
    /// tasks are being cancelled, and none can be queued from a destructor.)
    fn close(&mut self, timeout: Option<Duration>) -> bool {
        let Some(pool) = self.blocking.take() else { return true };
        pool.close();
        {
            // Destructors of cancelled tasks still see this runtime's pool.
            let _pool = EnterPool::new(Some(&pool));
            self.sched.shutdown();
        }
        pool.shutdown(timeout)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.close(None);
    }
}

thread_local! {
    /// The blocking pool of the runtime running on this thread. A stand-in until the pool
    /// moves into the scheduler's `Shared`, where `with_current` reaches it.
    static BLOCKING: RefCell<Option<Arc<Pool>>> = const { RefCell::new(None) };
}

/// Makes a runtime's pool current on this thread; restores the previous one when dropped.
struct EnterPool(Option<Arc<Pool>>);

impl EnterPool {
    fn new(pool: Option<&Arc<Pool>>) -> EnterPool {
        let prev = BLOCKING.try_with(|b| b.replace(pool.cloned())).ok().flatten();
        EnterPool(prev)
    }
}

impl Drop for EnterPool {
    fn drop(&mut self) {
        let prev = self.0.take();
        let _ = BLOCKING.try_with(|b| b.replace(prev));
    }
}

/// The blocking pool of the runtime current on this thread (`None` outside a runtime).
pub(crate) fn blocking_pool() -> Option<Arc<Pool>> {
    BLOCKING.try_with(|b| b.borrow().clone()).ok().flatten()
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("flavor", &"current_thread")
            .field("sched", &self.sched)
            .field("blocking", &self.blocking)
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
    max_blocking_threads: usize,
    thread_keep_alive: Duration,
}

impl Builder {
    /// A builder for a runtime whose tasks all run on the thread that calls `block_on`.
    pub fn new_current_thread() -> Builder {
        Builder { max_blocking_threads: 512, thread_keep_alive: Duration::from_secs(10) }
    }

    /// The most OS threads the blocking pool ([`spawn_blocking`](crate::spawn_blocking)) runs
    /// at once; further closures wait in a queue. Default 512.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = omni::Runtime::builder().max_blocking_threads(2).build().unwrap();
    /// let v = rt.block_on(async { omni::spawn_blocking(|| 4).await.unwrap() });
    /// assert_eq!(v, 4);
    /// ```
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Builder {
        assert!(
            n > 0,
            "omni::Builder::max_blocking_threads: the blocking pool needs at least one thread \
             (got 0)"
        );
        self.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking-pool thread waits for work before it exits. Default 10 s.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = omni::Runtime::builder().thread_keep_alive(Duration::from_millis(100)).build();
    /// assert!(rt.is_ok());
    /// ```
    pub fn thread_keep_alive(&mut self, keep_alive: Duration) -> &mut Builder {
        self.thread_keep_alive = keep_alive;
        self
    }

    /// Builds the runtime.
    ///
    /// # Errors
    ///
    /// If the runtime's resources cannot be created.
    pub fn build(&self) -> io::Result<Runtime> {
        let sched = Box::new(Scheduler::new());
        let handle = Handle { shared: sched.shared.clone() };
        let blocking = Arc::new(Pool::new(self.max_blocking_threads, self.thread_keep_alive));
        Ok(Runtime { sched, handle, blocking: Some(blocking), _not_send: PhantomData })
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
