//! The blocking pool: OS threads that run closures which block (FFI, file I/O, CPU work).
//!
//! One `Mutex<State>` guards everything: the job queue, the thread counts and the map of
//! thread handles. Threads are started on demand by [`Pool::spawn`], up to `max_threads`, and
//! an idle thread exits once it has waited `keep_alive` without work.
//!
//! Counting protocol (tokio's, which keeps wake-ups exact without a per-thread flag):
//! - `alive` counts started threads that have not yet decided to exit. It is incremented by
//!   the spawner when the OS thread starts and decremented by the thread itself, under the
//!   lock, in the same critical section where it decides to exit. So a spawner that sees
//!   `alive == max_threads` and queues a job can rely on some live thread to take it.
//! - A thread that waits for work counts once in `idle + notified`. A spawner that finds
//!   `idle > 0` moves one unit from `idle` to `notified` and signals the condvar; whichever
//!   waiting thread next sees `notified > 0` consumes it and goes to the queue. A thread leaving
//!   the wait for another reason (keep-alive elapsed, shutdown) gives back its `idle` unit.
//! - Shutdown sets `shutdown`, takes the queue (the jobs are dropped, not run) and wakes every
//!   idle thread; a running job finishes, then its thread exits. Waiters for the exit sleep on
//!   `changed`, signalled whenever a thread exits or becomes idle.
//!
//! Jobs run outside the lock under `catch_unwind`: a panicking job costs nothing but its own
//! result. If the thread unwinds anyway (a panic payload whose destructor panics), a guard
//! still takes it out of `alive`.
//!
//! Who owns what: the pool (shared by its threads through `Arc<Inner>`) owns queued jobs and
//! the `JoinHandle`s of its threads. A thread that exits on keep-alive removes (detaches) its
//! own handle; the handles of threads that exit on shutdown are joined by `shutdown`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A unit of blocking work.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why [`Pool::spawn`] handed a job back.
pub(crate) enum SpawnError {
    /// The pool is shut down (its runtime is being dropped).
    Shutdown(Job),
    /// The OS refused to start a thread and no thread of the pool is alive to run the job.
    NoThread(Job, io::Error),
}

impl fmt::Debug for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Shutdown(_) => f.write_str("SpawnError::Shutdown"),
            SpawnError::NoThread(_, e) => f.debug_tuple("SpawnError::NoThread").field(e).finish(),
        }
    }
}

struct State {
    queue: VecDeque<Job>,
    /// Started threads that have not decided to exit.
    alive: usize,
    /// Threads waiting for work that no spawner has claimed.
    idle: usize,
    /// Wake-ups handed out by spawners and not yet consumed by a waiting thread.
    notified: usize,
    shutdown: bool,
    next_id: usize,
    threads: HashMap<usize, JoinHandle<()>>,
}

struct Inner {
    state: Mutex<State>,
    /// Signals waiting threads: work (`notified`) or shutdown.
    work: Condvar,
    /// Signals `shutdown` and tests: a thread exited or became idle.
    changed: Condvar,
    max_threads: usize,
    keep_alive: Duration,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock, so a poisoned lock can only come from a bug in this file;
        // the state is still consistent at every unlock point, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bounded pool of OS threads for blocking jobs.
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    /// A pool that starts no thread until the first job.
    pub(crate) fn new(max_threads: usize, keep_alive: Duration) -> Pool {
        assert!(max_threads > 0, "omni: a blocking pool needs at least one thread");
        Pool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    alive: 0,
                    idle: 0,
                    notified: 0,
                    shutdown: false,
                    next_id: 0,
                    threads: HashMap::new(),
                }),
                work: Condvar::new(),
                changed: Condvar::new(),
                max_threads,
                keep_alive,
            }),
        }
    }

    /// The pool's threads that have not been joined or detached: at least every live one (a
    /// deadlock check counts them among the runtime's own threads).
    pub(crate) fn thread_count(&self) -> usize {
        self.inner.lock().threads.len()
    }

    /// Queues `job`: an idle thread takes it, or a new thread starts if fewer than the maximum
    /// are alive; otherwise it waits for a thread to finish its current job.
    ///
    /// The thread is started while the lock is held (as tokio does), so the decision "start
    /// one, or queue" and its outcome are one step for every other spawner and thread.
    pub(crate) fn spawn(&self, job: Job) -> Result<(), SpawnError> {
        let mut st = self.inner.lock();
        if st.shutdown {
            return Err(SpawnError::Shutdown(job));
        }
        st.queue.push_back(job);
        if st.idle > 0 {
            st.idle -= 1;
            st.notified += 1;
            self.inner.work.notify_one();
        } else if st.alive < self.inner.max_threads {
            let id = st.next_id;
            match start_thread(self.inner.clone(), id) {
                Ok(handle) => {
                    st.alive += 1;
                    st.next_id += 1;
                    st.threads.insert(id, handle);
                }
                // A live thread will take the job when it finishes its current one.
                Err(_) if st.alive > 0 => {}
                Err(e) => {
                    let job = st.queue.pop_back().expect("the job pushed above");
                    return Err(SpawnError::NoThread(job, e));
                }
            }
        }
        Ok(())
    }

    /// Stops accepting jobs and drops the queued ones; running jobs go on. Idempotent.
    pub(crate) fn close(&self) {
        let mut st = self.inner.lock();
        st.shutdown = true;
        let queued = std::mem::take(&mut st.queue);
        self.inner.work.notify_all();
        drop(st);
        // Outside the lock: a job's captures may run any code when dropped.
        drop(queued);
    }

    /// [`close`](Pool::close)s the pool, then waits up to `timeout` (forever with `None`) for
    /// the running jobs to finish and their threads to exit. Returns whether every thread
    /// exited. Idempotent: a later call waits again.
    pub(crate) fn shutdown(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        self.close();
        let mut st = self.inner.lock();
        while st.alive > 0 {
            st = match (timeout, deadline) {
                (Some(_), Some(d)) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.inner.changed.wait_timeout(st, left).unwrap_or_else(|e| e.into_inner()).0
                }
                // No timeout, or one too long to represent: wait for as long as it takes.
                _ => self.inner.changed.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
        }
        let threads = std::mem::take(&mut st.threads);
        drop(st);
        // Every thread has left `alive`, so it is past its last lock: the joins are short.
        for (_, t) in threads {
            let _ = t.join();
        }
        true
    }

    /// Threads started and not yet exited.
    #[cfg(test)]
    fn threads_alive(&self) -> usize {
        self.inner.lock().alive
    }

    /// Blocks until `cond` holds for `(alive, idle)`. For tests: it orders a check after a
    /// thread went idle or exited without guessing a time.
    #[cfg(test)]
    fn wait_until(&self, mut cond: impl FnMut(usize, usize) -> bool) {
        let mut st = self.inner.lock();
        while !cond(st.alive, st.idle) {
            st = self.inner.changed.wait(st).unwrap();
        }
    }
}

impl Drop for Pool {
    /// Stops the threads without waiting for them: a runtime shuts its pool down explicitly
    /// (and waits) before this runs.
    fn drop(&mut self) {
        self.shutdown(Some(Duration::ZERO));
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.lock();
        f.debug_struct("Pool")
            .field("max_threads", &self.inner.max_threads)
            .field("keep_alive", &self.inner.keep_alive)
            .field("alive", &st.alive)
            .field("idle", &st.idle)
            .field("queued", &st.queue.len())
            .field("shutdown", &st.shutdown)
            .finish()
    }
}

#[cfg(test)]
thread_local! {
    /// Makes `start_thread` fail on this (spawning) thread, to test the OS refusing a thread.
    static REFUSE_THREADS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn start_thread(inner: Arc<Inner>, id: usize) -> io::Result<JoinHandle<()>> {
    #[cfg(test)]
    if REFUSE_THREADS.with(|r| r.get()) {
        return Err(io::Error::new(io::ErrorKind::WouldBlock, "thread refused (test)"));
    }
    std::thread::Builder::new().name(format!("omni-blocking-{id}")).spawn(move || work(&inner, id))
}

/// Takes the thread out of `alive` if it unwinds (the normal exit does it under its own lock).
struct Unwinding<'a>(Option<&'a Inner>);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        if let Some(inner) = self.0 {
            inner.lock().alive -= 1;
            inner.changed.notify_all();
        }
    }
}

/// A pool thread's life: run queued jobs, wait for more, exit on keep-alive or shutdown.
fn work(inner: &Inner, id: usize) {
    let mut unwinding = Unwinding(Some(inner));
    let mut st = inner.lock();
    let timed_out = 'run: loop {
        while let Some(job) = st.queue.pop_front() {
            drop(st);
            // The payload is dropped here, outside the lock; `unwinding` covers its drop.
            drop(catch_unwind(AssertUnwindSafe(job)));
            st = inner.lock();
        }
        if st.shutdown {
            break false;
        }
        st.idle += 1;
        inner.changed.notify_all();
        let deadline = Instant::now().checked_add(inner.keep_alive);
        loop {
            st = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    inner.work.wait_timeout(st, left).unwrap_or_else(|e| e.into_inner()).0
                }
                None => inner.work.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
            if st.notified > 0 {
                // Our `idle` unit was claimed by a spawner: go and take the job.
                st.notified -= 1;
                continue 'run;
            }
            if st.shutdown {
                st.idle -= 1;
                break 'run false;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                st.idle -= 1;
                break 'run true;
            }
            // A spurious wake-up: wait out the rest of the keep-alive.
        }
    };
    st.alive -= 1;
    if timed_out {
        // Nobody will join this thread: detach it.
        st.threads.remove(&id);
    }
    unwinding.0 = None;
    drop(st);
    inner.changed.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::mpsc;

    const LONG: Duration = Duration::from_secs(3600);

    fn job(f: impl FnOnce() + Send + 'static) -> Job {
        Box::new(f)
    }

    #[test]
    fn blocking_pool_runs_a_job_and_reuses_the_idle_thread() {
        let pool = Pool::new(4, LONG);
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        pool.spawn(job(move || tx.send(std::thread::current().name().map(String::from)).unwrap()))
            .unwrap();
        let first = rx.recv().unwrap();
        assert_eq!(first.as_deref(), Some("omni-blocking-0"));
        pool.wait_until(|_, idle| idle == 1);
        pool.spawn(job(move || tx2.send(std::thread::current().name().map(String::from)).unwrap()))
            .unwrap();
        assert_eq!(rx.recv().unwrap(), first);
        assert_eq!(pool.threads_alive(), 1);
        assert!(pool.shutdown(None));
        assert_eq!(pool.threads_alive(), 0);
    }

    #[test]
    fn blocking_pool_never_exceeds_its_bound_and_runs_every_job() {
        let pool = Pool::new(3, LONG);
        let running = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for _ in 0..500 {
            let (running, max_seen, done, tx) =
                (running.clone(), max_seen.clone(), done.clone(), tx.clone());
            pool.spawn(job(move || {
                let now = running.fetch_add(1, SeqCst) + 1;
                max_seen.fetch_max(now, SeqCst);
                std::thread::yield_now();
                running.fetch_sub(1, SeqCst);
                done.fetch_add(1, SeqCst);
                tx.send(()).unwrap();
            }))
            .unwrap();
            assert!(pool.threads_alive() <= 3);
        }
        for _ in 0..500 {
            rx.recv().unwrap();
        }
        assert_eq!(done.load(SeqCst), 500);
        assert!(max_seen.load(SeqCst) <= 3, "max concurrency {}", max_seen.load(SeqCst));
        assert!(pool.shutdown(None));
    }

    #[test]
    fn blocking_pool_thread_survives_a_panicking_job() {
        let pool = Pool::new(1, LONG);
        pool.spawn(job(|| panic!("job panics"))).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.spawn(job(move || tx.send(std::thread::current().name().map(String::from)).unwrap()))
            .unwrap();
        assert_eq!(rx.recv().unwrap().as_deref(), Some("omni-blocking-0"));
        assert_eq!(pool.threads_alive(), 1);
        assert!(pool.shutdown(None));
    }

    #[test]
    fn blocking_pool_idle_thread_exits_after_keep_alive() {
        // A zero keep-alive elapses as soon as the thread waits: the exit is certain, and the
        // test waits for it on the pool's own signal instead of guessing a time.
        let pool = Pool::new(2, Duration::ZERO);
        let (tx, rx) = mpsc::channel();
        pool.spawn(job(move || tx.send(()).unwrap())).unwrap();
        rx.recv().unwrap();
        pool.wait_until(|alive, _| alive == 0);
        assert_eq!(pool.threads_alive(), 0);
        // The pool starts a fresh thread for the next job.
        let (tx, rx) = mpsc::channel();
        pool.spawn(job(move || tx.send(std::thread::current().name().map(String::from)).unwrap()))
            .unwrap();
        assert_eq!(rx.recv().unwrap().as_deref(), Some("omni-blocking-1"));
        assert!(pool.shutdown(None));
    }

    /// Gives `pool` a job that runs until the returned sender is used (or dropped), and waits
    /// until it has started.
    fn occupy(pool: &Pool) -> mpsc::Sender<()> {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        pool.spawn(job(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv();
        }))
        .unwrap();
        started.recv().unwrap();
        release
    }

    #[test]
    fn blocking_pool_shutdown_drops_queued_jobs_and_waits_for_running_ones() {
        let pool = Pool::new(1, LONG);
        let release = occupy(&pool);
        struct Flag(Arc<AtomicUsize>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.fetch_add(1, SeqCst);
            }
        }
        let dropped = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let (flag, ran2) = (Flag(dropped.clone()), ran.clone());
        pool.spawn(job(move || {
            let _f = flag;
            ran2.fetch_add(1, SeqCst);
        }))
        .unwrap();

        // The running job is stuck: a zero timeout reports that not every thread exited.
        assert!(!pool.shutdown(Some(Duration::ZERO)));
        assert_eq!(dropped.load(SeqCst), 1, "the queued job was dropped");
        assert_eq!(ran.load(SeqCst), 0, "the queued job never ran");
        assert!(matches!(pool.spawn(job(|| {})), Err(SpawnError::Shutdown(_))));
        assert_eq!(pool.threads_alive(), 1);

        release.send(()).unwrap();
        assert!(pool.shutdown(None));
        assert_eq!(pool.threads_alive(), 0);
        assert!(pool.shutdown(Some(Duration::ZERO)), "idempotent");
    }

    #[test]
    fn blocking_pool_hands_the_job_back_when_no_thread_can_start() {
        let pool = Pool::new(2, LONG);
        REFUSE_THREADS.with(|r| r.set(true));
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        match pool.spawn(job(move || {
            r.fetch_add(1, SeqCst);
        })) {
            Err(SpawnError::NoThread(job, e)) => {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                job(); // the job came back intact
            }
            other => panic!("expected NoThread, got {other:?}"),
        }
        assert_eq!(ran.load(SeqCst), 1);
        assert_eq!(pool.threads_alive(), 0);

        // With one thread alive (busy), a refused start queues the job for that thread.
        REFUSE_THREADS.with(|r| r.set(false));
        let release = occupy(&pool);
        REFUSE_THREADS.with(|r| r.set(true));
        let (tx, rx) = mpsc::channel();
        pool.spawn(job(move || tx.send(()).unwrap())).unwrap();
        REFUSE_THREADS.with(|r| r.set(false));
        assert_eq!(pool.threads_alive(), 1);
        release.send(()).unwrap();
        rx.recv().unwrap();
        assert!(pool.shutdown(None));
    }

    #[test]
    fn blocking_pool_drop_does_not_wait_for_a_stuck_job() {
        let pool = Pool::new(1, LONG);
        let release = occupy(&pool);
        drop(pool);
        release.send(()).unwrap();
    }

    #[test]
    #[should_panic(expected = "at least one thread")]
    fn blocking_pool_of_zero_threads_panics() {
        let _ = Pool::new(0, LONG);
    }
}
