//! `Runtime`, `Builder`, `Handle` and the free functions that reach the current runtime.

use super::context::{self, Ctx, Current};
use super::current_thread::{assert_not_nested, MainSignal, Scheduler};
use super::deadlock::{self, OnDeadlock};
use super::multi::{MultiRuntime, MAX_WORKERS};
use super::shared::Shared;
use crate::task::JoinHandle;
use crate::Driver;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::pin;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// An omni runtime: a scheduler for green tasks.
///
/// Two flavours, chosen with the [`Builder`]:
/// - **current-thread** ([`Runtime::new`], [`Builder::new_current_thread`]): every task runs on
///   the thread that calls [`Runtime::block_on`], and only while it does;
/// - **multi-thread** ([`Builder::new_multi_thread`]): worker threads (one per core by default)
///   run the tasks and steal work from each other; `block_on` runs its future on the calling
///   thread while the workers run everything spawned.
///
/// Tasks spawned with [`spawn_local`] may hold `!Send` data; they stay on the thread that
/// spawned them. For that reason `Runtime` itself stays on the thread that created it (it is
/// not `Send`); a [`Handle`] is `Send + Sync` and spawns from anywhere.
///
/// Dropping the runtime cancels every task: each future (or output not yet taken) is dropped
/// exactly once (a worker's pinned tasks on that worker's thread, everything else on the
/// dropping thread), the worker threads are joined, and join handles then report a cancelled
/// task. Closures queued by [`spawn_blocking`](crate::spawn_blocking) that have not started
/// are dropped, and the drop waits for running ones to return (as with tokio;
/// [`Runtime::shutdown_timeout`] bounds the wait).
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
    flavor: Flavor,
    handle: Handle,
    /// Set once the runtime was shut down (by `shutdown_timeout`, before its drop).
    closed: bool,
    _not_send: PhantomData<*const ()>,
}

enum Flavor {
    Current(Box<Scheduler>),
    Multi(MultiRuntime),
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

    /// A builder to configure a runtime (current-thread unless told otherwise).
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

    /// Runs `fut` to completion on this thread. A current-thread runtime runs its spawned
    /// tasks here while it waits; a multi-thread runtime's workers run them meanwhile.
    ///
    /// # Panics
    ///
    /// If called from inside a running omni runtime on this thread (that would block every
    /// task of the outer runtime, or a worker): `.await` the future instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = omni::Runtime::new().unwrap();
    /// assert_eq!(rt.block_on(async { "done" }), "done");
    /// ```
    #[track_caller]
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let at = Location::caller();
        match &self.flavor {
            Flavor::Current(s) => s.block_on(fut, at),
            Flavor::Multi(m) => block_on_multi(&m.shared, fut, at),
        }
    }

    /// Spawns a `Send` task on this runtime. On a current-thread runtime it runs during
    /// `block_on`; on a multi-thread runtime the workers start it at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = omni::Runtime::new().unwrap();
    /// let h = rt.spawn(async { 7 });
    /// assert_eq!(rt.block_on(h).unwrap(), 7);
    /// ```
    #[track_caller]
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
        if std::mem::replace(&mut self.closed, true) {
            return true;
        }
        let shared = self.handle.shared.clone();
        shared.blocking.close();
        match &mut self.flavor {
            Flavor::Current(s) => s.shutdown(),
            Flavor::Multi(m) => m.shutdown(),
        }
        // Wait for the running jobs, keeping this runtime's clock going meanwhile: a job may
        // wait on one of its sleeps (through another executor), and nothing else drives the
        // timers now.
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        loop {
            let step = Duration::from_millis(10);
            let wait = match deadline {
                Some(d) => d.saturating_duration_since(std::time::Instant::now()).min(step),
                None => step,
            };
            if shared.blocking.shutdown(Some(wait)) {
                return true;
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return false;
            }
            shared.time.process();
        }
    }
}

/// `block_on` for a multi-thread runtime: this thread polls `fut` and parks between polls.
///
/// Deadlock check: before parking, this thread says so (`main_parked`) and then looks whether
/// every worker is parked; a worker that parks looks whether this thread is parked and, if
/// nothing outside the tasks could wake them, unparks it to look. Both sides use `SeqCst`
/// (store, then load the other's word), so at least one of them sees the other.
fn block_on_multi<F: Future>(
    shared: &Arc<Shared>,
    fut: F,
    at: &'static Location<'static>,
) -> F::Output {
    assert_not_nested();
    let _enter = context::enter(Ctx::Main(Arc::as_ptr(shared)));
    let signal = MainSignal::new(shared.clone());
    let main_waker = signal.waker();
    let mut cx = Context::from_waker(&main_waker);
    let mut fut = pin!(fut);
    let watch = &shared.watch;
    let mut main = deadlock::Main::start(shared, at);
    loop {
        if signal.woken.swap(false, AcqRel) {
            if let Poll::Ready(v) = main.poll(shared, fut.as_mut(), &mut cx) {
                return v;
            }
            continue;
        }
        if !main.reported && watch.enabled.load(Relaxed) {
            watch.main_parked.store(true, SeqCst);
            if let Some(report) = check_multi(shared, &main, &signal) {
                main.reported = true;
                watch.main_parked.store(false, SeqCst);
                watch.act(report);
                continue;
            }
        }
        shared.parker.park();
        watch.main_parked.store(false, SeqCst);
    }
}

/// Whether a multi-thread runtime is deadlocked (see `block_on_multi`).
fn check_multi(
    shared: &Shared,
    main: &deadlock::Main,
    signal: &MainSignal,
) -> Option<deadlock::DeadlockReport> {
    let multi = shared.multi.as_ref()?;
    // Its threads: the workers and this one, besides the blocking pool.
    if !multi.all_parked()
        || multi.work_anywhere(&shared.injector)
        || signal.woken.load(SeqCst)
        || !shared.nothing_can_wake(1 + multi.workers.len())
    {
        return None;
    }
    deadlock::scan(shared.owner_id(), main)
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.close(None);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Runtime");
        match &self.flavor {
            Flavor::Current(s) => d.field("flavor", &"current_thread").field("sched", s),
            Flavor::Multi(m) => d.field("flavor", &"multi_thread").field("sched", m),
        };
        d.finish()
    }
}

/// Configures and builds a [`Runtime`].
///
/// # Examples
///
/// ```
/// let rt = omni::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {});
///
/// let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
/// let h = rt.spawn(async { std::thread::current().name().map(str::to_owned) });
/// let name = rt.block_on(h).unwrap().unwrap();
/// assert!(name.starts_with("omni-worker-"));
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    multi: bool,
    workers: Option<usize>,
    thread_name: String,
    max_blocking_threads: usize,
    thread_keep_alive: Duration,
    start_paused: bool,
    on_deadlock: OnDeadlock,
    driver: Driver,
}

impl Builder {
    /// A builder for a runtime whose tasks all run on the thread that calls `block_on`.
    pub fn new_current_thread() -> Builder {
        Builder {
            multi: false,
            workers: None,
            thread_name: "omni-worker".to_owned(),
            max_blocking_threads: 512,
            thread_keep_alive: Duration::from_secs(10),
            start_paused: false,
            on_deadlock: OnDeadlock::Panic,
            driver: Driver::Auto,
        }
    }

    /// A builder for a work-stealing runtime with worker threads (see [`Builder::workers`]).
    pub fn new_multi_thread() -> Builder {
        Builder { multi: true, ..Builder::new_current_thread() }
    }

    /// The number of worker threads of a multi-thread runtime (default: the number of CPUs
    /// available to the process). Ignored by a current-thread runtime.
    ///
    /// # Panics
    ///
    /// If `n` is 0 or above 65,535.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = omni::Builder::new_multi_thread().workers(3).build().unwrap();
    /// assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
    /// ```
    pub fn workers(&mut self, n: usize) -> &mut Builder {
        assert!(
            (1..=MAX_WORKERS).contains(&n),
            "omni::Builder::workers: {n} workers asked for; a runtime needs 1 to {MAX_WORKERS}"
        );
        self.workers = Some(n);
        self
    }

    /// The name prefix of worker threads (default `omni-worker`; threads are named
    /// `{prefix}-{index}`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = omni::Builder::new_multi_thread().workers(1).thread_name("db").build().unwrap();
    /// let name = rt.block_on(rt.spawn(async { std::thread::current().name().unwrap().to_owned() }));
    /// assert_eq!(name.unwrap(), "db-0");
    /// ```
    pub fn thread_name(&mut self, prefix: impl Into<String>) -> &mut Builder {
        self.thread_name = prefix.into();
        self
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

    /// Starts the runtime with its clock paused (see [`time::pause`](crate::time::pause)):
    /// time stands still except when every task is idle, when it jumps to the next timer.
    /// Only for current-thread runtimes: `build` refuses it on a multi-thread one.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{sleep, Duration, Instant};
    /// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
    /// let slept = rt.block_on(async {
    ///     let t = Instant::now();
    ///     sleep(Duration::from_secs(60)).await;
    ///     t.elapsed()
    /// });
    /// assert_eq!(slept, Duration::from_secs(60));
    /// ```
    pub fn start_paused(&mut self, paused: bool) -> &mut Builder {
        self.start_paused = paused;
        self
    }

    /// What `block_on` does when every task waits on omni primitives that only those tasks
    /// could complete, and nothing else (a timer, a blocking job, an OS thread, a handle) could
    /// wake any of them: panic with a report (the default), call a function, or wait on. See
    /// [`OnDeadlock`] for the choices and what counts as a deadlock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use omni::{Builder, OnDeadlock};
    ///
    /// let seen = Arc::new(Mutex::new(None));
    /// let seen2 = seen.clone();
    /// let rt = Builder::new_current_thread()
    ///     .on_deadlock(OnDeadlock::call(move |report| {
    ///         *seen2.lock().unwrap() = Some(report.tasks().len());
    ///         panic!("stop here"); // or log it and let the runtime wait on
    ///     }))
    ///     .build()
    ///     .unwrap();
    /// let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
    ///     rt.block_on(async {
    ///         let (_tx, rx) = omni::chan::bounded::<u8>(1);
    ///         let _ = rx.recv().await; // `_tx` is right here, unused: this never ends
    ///     })
    /// }));
    /// assert!(r.is_err());
    /// assert_eq!(*seen.lock().unwrap(), Some(1));
    /// ```
    pub fn on_deadlock(&mut self, action: OnDeadlock) -> &mut Builder {
        self.on_deadlock = action;
        self
    }

    /// The I/O driver (default [`Driver::Auto`]: io_uring where the kernel allows it, else mio,
    /// with one line on stderr saying why). With `Auto`, the environment variable
    /// `OMNI_DRIVER` (`auto`, `mio` or `io_uring`) decides instead, so a deployment can switch
    /// drivers without a rebuild; an explicit choice here wins over the variable.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = omni::Builder::new_current_thread().driver(omni::Driver::Mio).build().unwrap();
    /// assert_eq!(rt.handle().driver(), omni::Driver::Mio);
    /// ```
    pub fn driver(&mut self, driver: Driver) -> &mut Builder {
        self.driver = driver;
        self
    }

    /// Builds the runtime.
    ///
    /// # Errors
    ///
    /// If the runtime's resources cannot be created (for a multi-thread runtime: the OS refused
    /// to start a worker thread), and `InvalidInput` for `start_paused` on a multi-thread
    /// runtime.
    pub fn build(&self) -> io::Result<Runtime> {
        if self.multi && self.start_paused {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "omni::Builder: start_paused needs a current-thread runtime \
                 (Builder::new_current_thread()); a paused clock cannot know that every worker \
                 of a multi-thread runtime is idle",
            ));
        }
        let workers = if self.multi {
            self.workers.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_WORKERS)
            })
        } else {
            1
        };
        let io = Arc::new(open_driver(self.driver, workers)?);
        let blocking =
            crate::blocking::Pool::new(self.max_blocking_threads, self.thread_keep_alive);
        let flavor = if self.multi {
            Flavor::Multi(MultiRuntime::start(workers, &self.thread_name, blocking, io)?)
        } else {
            Flavor::Current(Box::new(Scheduler::new(blocking, self.start_paused, io)))
        };
        let shared = match &flavor {
            Flavor::Current(s) => s.shared.clone(),
            Flavor::Multi(m) => m.shared.clone(),
        };
        shared.watch.set_policy(self.on_deadlock.clone());
        Ok(Runtime { flavor, handle: Handle::new(shared), closed: false, _not_send: PhantomData })
    }
}

/// Opens the driver `choice` names (`Auto` defers to `OMNI_DRIVER`), saying once per process
/// on stderr when `Auto` falls back to mio.
fn open_driver(choice: Driver, threads: usize) -> io::Result<omni_io::Reactor> {
    let choice = match (choice, std::env::var("OMNI_DRIVER")) {
        (Driver::Auto, Ok(v)) => v.parse::<Driver>().map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("omni: OMNI_DRIVER: {e}"))
        })?,
        (c, _) => c,
    };
    let reactor = omni_io::Reactor::new(choice, threads)?;
    if let Some(why) = reactor.fallback_reason() {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| eprintln!("omni: {why}"));
    }
    Ok(reactor)
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
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// A handle; the runtime counts its handles (one may spawn from another thread, so a
    /// runtime with a handle out is never reported deadlocked).
    fn new(shared: Arc<Shared>) -> Handle {
        shared.watch.handles.fetch_add(1, SeqCst);
        Handle { shared }
    }
}

impl Clone for Handle {
    fn clone(&self) -> Handle {
        Handle::new(self.shared.clone())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.shared.watch.handles.fetch_sub(1, SeqCst) == 2 {
            // Only the runtime's own handle is left: let `block_on` look again.
            self.shared.parker.unpark();
        }
    }
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
        let shared = context::current_shared().ok_or(TryCurrentError(()))?;
        Ok(Handle::new(shared))
    }

    /// Runs `f` on the runtime's blocking pool, from any thread: [`spawn_blocking`] through a
    /// handle.
    ///
    /// [`spawn_blocking`]: crate::spawn_blocking
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = omni::Runtime::new().unwrap();
    /// let handle = rt.handle().clone();
    /// let h = std::thread::spawn(move || handle.spawn_blocking(|| 6 * 7)).join().unwrap();
    /// assert_eq!(rt.block_on(h).unwrap(), 42);
    /// ```
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::blocking::spawn_blocking_on(self, f)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The I/O driver this runtime uses (never [`Driver::Auto`]).
    pub fn driver(&self) -> Driver {
        self.shared.io.driver()
    }

    /// What the I/O driver holds now: registered sources (mio), operations in flight and
    /// operations whose future was dropped, their buffers parked until the kernel completes
    /// them (io_uring).
    pub fn io_stats(&self) -> crate::IoStats {
        self.shared.io.stats()
    }

    /// Spawns a `Send` task on the runtime, from any thread.
    #[track_caller]
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let at = Location::caller();
        context::with(|c| match c {
            Current::Local(s) if Arc::ptr_eq(&s.shared, &self.shared) => s.spawn(fut, at),
            Current::Worker(w) if Arc::ptr_eq(&w.shared, &self.shared) => w.spawn(fut, at),
            _ => self.shared.spawn_remote(fut, at),
        })
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
#[track_caller]
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let at = Location::caller();
    context::with(|c| match c {
        Current::Local(s) => s.spawn(fut, at),
        Current::Worker(w) => w.spawn(fut, at),
        Current::Main(s) | Current::Blocking(s) => s.spawn_remote(fut, at),
        Current::None => outside("spawn"),
    })
}

/// Spawns a task that may be `!Send` on the current thread: on a current-thread runtime, its
/// thread; on a multi-thread runtime, the worker running the caller, which is the only thread
/// that will ever poll or drop the task (even if it is aborted from elsewhere).
///
/// # Panics
///
/// Outside a runtime, and in a multi-thread runtime's `block_on` future (which runs on no
/// worker): spawn a task with [`spawn`] and call `spawn_local` from it.
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
#[track_caller]
pub fn spawn_local<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    let at = Location::caller();
    context::with(|c| match c {
        Current::Local(s) => s.spawn(fut, at),
        Current::Worker(w) => w.spawn_pinned(fut, at),
        Current::Main(_) => panic!(
            "omni::spawn_local called in a multi-thread runtime's block_on future, which runs \
             on no worker: spawn a task with omni::spawn and call spawn_local from inside it, \
             or use a current-thread runtime"
        ),
        Current::Blocking(_) => panic!(
            "omni::spawn_local called on a blocking-pool thread, which runs no tasks: use \
             omni::spawn, or omni::block_on to run a local runtime on this thread"
        ),
        Current::None => outside("spawn_local"),
    })
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
#[track_caller]
pub fn block_on<F: Future>(fut: F) -> F::Output {
    Runtime::new().expect("omni: could not create a runtime").block_on(fut)
}
