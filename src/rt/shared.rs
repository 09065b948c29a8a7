//! The part of a runtime that every thread may touch: the injector (remote queue), the pool
//! for spawns from outside, the shutdown flag, and for a multi-thread runtime its workers'
//! stealable queues and idle bookkeeping.
//!
//! Its address is the runtime's *owner id* in the chunk table (see `task/table.rs`): a key's
//! chunk names the `Shared` of the runtime that owns it, and a foreign thread reaches it through
//! the table's reader protocol, which keeps it alive while the thread is inside the chunk.

use super::deadlock::Watch;
use super::multi::MultiShared;
use super::park::Parker;
use crate::blocking::Pool as BlockingPool;
use crate::task::pool::Pool;
use crate::task::raw::{self, Header, Ops};
use crate::task::{key, JoinHandle};
use crate::time::TimeDriver;
use crossbeam_queue::SegQueue;
use std::future::Future;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard};

/// A message to a runtime from a thread that cannot touch its run queues directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remote {
    /// Schedule the task (it is already marked `SCHEDULED`).
    Run(u64),
    /// A join handle dropped elsewhere gave up a completed task: free its slot.
    Free(u64),
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The part of a runtime that other threads may touch.
pub(crate) struct Shared {
    /// Current-thread: wakes and spawns from other threads. Multi-thread: the global queue of
    /// tasks any worker may run (and frees of their slots).
    pub(crate) injector: SegQueue<Remote>,
    /// Slots for tasks spawned from threads that run no worker of this runtime.
    remote_pool: Mutex<Pool>,
    /// Current-thread: the scheduler's parker. Multi-thread: the parker of the thread inside
    /// `block_on`.
    pub(crate) parker: Parker,
    pub(crate) shutdown: AtomicBool,
    /// The workers of a multi-thread runtime; `None` for a current-thread runtime.
    pub(crate) multi: Option<MultiShared>,
    /// The OS threads behind `spawn_blocking`.
    pub(crate) blocking: Arc<BlockingPool>,
    /// `spawn_blocking` jobs queued or running (a paused clock must not jump meanwhile: a job
    /// may be about to wake a task). A job's guard decrements it, run or dropped, then unparks
    /// the runtime so it looks again.
    pub(crate) blocking_inflight: std::sync::atomic::AtomicUsize,
    /// The clock and the timer wheel.
    pub(crate) time: TimeDriver,
    /// What a deadlock check needs (see `deadlock.rs`).
    pub(crate) watch: Watch,
    /// The I/O driver: the current-thread scheduler and the workers of a multi-thread runtime
    /// park in it.
    pub(crate) io: Arc<omni_io::Reactor>,
    /// A process-unique id (never 0), for channels to know their runtime without keeping a
    /// pointer that a later runtime could reuse.
    pub(crate) id: u64,
}

impl Shared {
    /// A new shared state; `multi` builds the multi-thread part given the owner id.
    pub(crate) fn new(
        blocking: BlockingPool,
        start_paused: bool,
        io: Arc<omni_io::Reactor>,
        multi: impl FnOnce(*const ()) -> Option<MultiShared>,
    ) -> Arc<Shared> {
        let blocking = Arc::new(blocking);
        Arc::new_cyclic(|weak| {
            let owner = weak.as_ptr() as *const ();
            let multi = multi(owner);
            // The `block_on` thread of a multi-thread runtime waits on its condition variable:
            // the workers wait in the driver.
            let parker =
                if multi.is_some() { Parker::new() } else { Parker::with_driver(io.clone(), 0) };
            Shared {
                injector: SegQueue::new(),
                remote_pool: Mutex::new(Pool::new(owner, true)),
                parker,
                shutdown: AtomicBool::new(false),
                multi,
                blocking,
                blocking_inflight: std::sync::atomic::AtomicUsize::new(0),
                time: TimeDriver::new(start_paused),
                watch: Watch::new(),
                io,
                id: NEXT_ID.fetch_add(1, Relaxed),
            }
        })
    }

    /// The runtime's identity in the chunk table.
    pub(crate) fn owner_id(&self) -> *const () {
        self as *const Shared as *const ()
    }

    /// Delivers a message from a thread that may not touch the run queues: to the injector,
    /// or for a task pinned to one worker (`pin` = worker index + 1) to that worker's inbox.
    pub(crate) fn push(&self, m: Remote, pin: u32) {
        match &self.multi {
            None => {
                self.injector.push(m);
                self.parker.unpark();
            }
            Some(multi) if pin != 0 => multi.push_pinned(m, pin),
            Some(multi) => {
                self.injector.push(m);
                multi.notify_parked();
            }
        }
    }

    pub(crate) fn lock_pool(&self) -> MutexGuard<'_, Pool> {
        self.remote_pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns from a thread that runs no scheduler of this runtime.
    pub(crate) fn spawn_remote<F>(
        &self,
        fut: F,
        at: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let mut pool = self.lock_pool();
        if self.shutdown.load(Acquire) {
            drop(pool);
            drop(fut);
            return JoinHandle::refused();
        }
        // The lock is held until the task is written, so shutdown (which sets the flag under
        // the lock) sees every task spawned before it.
        let key = alloc_task(|class| pool.alloc(class), fut, 0, at);
        drop(pool);
        self.push(Remote::Run(key), 0);
        JoinHandle::new(key)
    }

    /// A deadlock check's cheap look (the last worker to park takes it): nothing outside the
    /// tasks (a foreign waker, a handle, an omni thread, a blocking job) can wake them.
    pub(crate) fn quiet_outside(&self) -> bool {
        self.watch.nothing_outside() && self.blocking_inflight.load(SeqCst) == 0
    }

    /// A deadlock check's full look from the `block_on` thread of a runtime with `own_threads`
    /// threads besides its blocking pool: also no remote message queued, no timer armed, and
    /// no other thread in the process.
    pub(crate) fn nothing_can_wake(&self, own_threads: usize) -> bool {
        self.quiet_outside()
            && self.injector.is_empty()
            && !self.time.has_timers()
            && super::deadlock::only_our_threads(own_threads + self.blocking.thread_count())
    }

    /// Marks the runtime shut down: from now on spawns are refused. Returns whether it already
    /// was.
    pub(crate) fn begin_shutdown(&self) -> bool {
        let _pool = self.lock_pool();
        self.shutdown.swap(true, AcqRel)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("injector_len", &self.injector.len())
            .field("shutdown", &self.shutdown.load(Relaxed))
            .field("workers", &self.multi.as_ref().map_or(0, |m| m.workers.len()))
            .finish()
    }
}

/// Writes `fut` into a fresh slot from `alloc` (a pool's `alloc`) and returns the task's key.
/// The task starts `SCHEDULED` with a join interest, pinned to `pin`, spawned at `at`; the
/// caller queues it.
pub(crate) fn alloc_task<F: Future>(
    mut alloc: impl FnMut(usize) -> (u32, *mut Header),
    fut: F,
    pin: u32,
    at: &'static Location<'static>,
) -> u64 {
    let (index, h, gen);
    match raw::class_of::<F>() {
        Some(class) => {
            (index, h) = alloc(class);
            // SAFETY: a vacant slot of a class that fits `F` inline, owned by this pool.
            unsafe { Ops::<F, false>::init(h, fut) };
        }
        None => {
            (index, h) = alloc(raw::BOXED_CLASS);
            // SAFETY: a vacant slot; the boxed layout needs only a pointer's room.
            unsafe { Ops::<F, true>::init(h, fut) };
        }
    }
    // SAFETY: `h` is the header of the slot just initialised.
    gen = unsafe {
        (*h).set_spawned_at(at);
        (*h).state.occupy(pin)
    };
    key(index, gen)
}
