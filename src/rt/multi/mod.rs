//! The multi-thread runtime: N worker threads that run green tasks and steal from each other.
//!
//! Each worker owns a local run queue (a 256-entry ring with a LIFO slot, `queue.rs`) that it
//! pushes and pops without contention and that idle workers steal half of. Tasks spawned or
//! woken from threads outside the runtime go to the global *injector* (`Shared::injector`), a
//! lock-free queue every worker pulls from when its own queue is empty and, for fairness, every
//! [`EVENT_INTERVAL`] polls. Idle workers sleep on their own parker; `idle.rs` decides whom to
//! wake so that new work wakes one searcher at a time (no thundering herd) and none is lost.
//!
//! **Pinned tasks.** `spawn_local` on a worker makes a task that may be `!Send`: its state word
//! carries a *pin* (worker index + 1), it never enters a stealable queue, and every wake,
//! abort or slot free of it from anywhere else is routed to its worker's *inbox* (a lock-free
//! queue) with a direct unpark. So its future is polled and dropped on its worker only, even
//! when `abort()` is called from another thread (the bug class of RUSTSEC-2021-0072).
//!
//! **Task slots.** Every worker has two pools of slots (one for stealable tasks, one for its
//! pinned tasks); spawns from outside use the runtime's locked remote pool. A stealable task
//! may finish on any worker; that worker takes the slot into its own free list, and a worker
//! with more than [`SPARE_HIGH`] free slots of a size class moves a batch to a shared spare
//! list that spawning workers refill from before they allocate a new chunk, so a producer/
//! consumer pair (one worker spawns, another finishes) reuses slots instead of growing.
//!
//! **Shutdown.** Dropping the runtime sets the shutdown flag (spawns are refused from then on)
//! and unparks every worker. Each worker stops polling, cancels (drops) its pinned tasks on its
//! own thread, hands its pools over and exits. The dropping thread joins the workers, then
//! cancels every remaining task (their futures are `Send`) and frees every chunk, so each
//! future and output is dropped exactly once.

mod idle;
mod queue;
mod worker;

pub(crate) use worker::Worker;

use super::exec::{self, Exec, PollCx};
use super::park::Parker;
use super::shared::{Remote, Shared};
use crate::task::pool::Pool;
use crate::task::raw::{Header, CLASSES};
use crate::task::table::SLOTS_PER_CHUNK;
use crossbeam_queue::SegQueue;
use idle::Idle;
use queue::Local;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The most workers a runtime may have (a pin is 16 bits).
pub(crate) const MAX_WORKERS: usize = crate::task::state::MAX_PIN as usize;
/// Polls between two looks at the injector and the inbox.
pub(crate) const EVENT_INTERVAL: u32 = 61;
/// A worker keeps at most this many free slots of one class before giving a batch away.
pub(crate) const SPARE_HIGH: usize = 2 * SLOTS_PER_CHUNK;

/// What other threads may touch of one worker.
pub(crate) struct WorkerShared {
    /// The local run queue (owner pushes and pops, thieves steal).
    pub(crate) run: Local,
    /// Wakes and frees of tasks pinned to this worker, from other threads.
    pub(crate) inbox: SegQueue<Remote>,
    pub(crate) parker: Parker,
}

/// The multi-thread part of a runtime's shared state.
pub(crate) struct MultiShared {
    pub(crate) workers: Box<[WorkerShared]>,
    pub(crate) idle: Idle,
    /// Batches of free slot indices per size class, given away by workers with too many.
    spare: Mutex<[Vec<Vec<u32>>; CLASSES.len()]>,
    /// How many batches `spare` holds (checked without the lock).
    spare_batches: AtomicUsize,
    /// The pools of workers that exited, for shutdown to free their chunks.
    retired: Mutex<Vec<Pool>>,
}

impl MultiShared {
    pub(crate) fn new(workers: usize, io: &Arc<omni_io::Reactor>) -> MultiShared {
        MultiShared {
            workers: (0..workers)
                .map(|i| WorkerShared {
                    run: Local::new(),
                    inbox: SegQueue::new(),
                    parker: Parker::with_driver(io.clone(), i),
                })
                .collect(),
            idle: Idle::new(workers),
            spare: Mutex::new(Default::default()),
            spare_batches: AtomicUsize::new(0),
            retired: Mutex::new(Vec::new()),
        }
    }

    /// Sends a message about a task pinned to worker `pin - 1` and wakes that worker.
    pub(crate) fn push_pinned(&self, m: Remote, pin: u32) {
        let w = &self.workers[pin as usize - 1];
        w.inbox.push(m);
        w.parker.unpark();
    }

    /// New work was pushed: wake a sleeping worker if nobody is searching.
    pub(crate) fn notify_parked(&self) {
        if let Some(id) = self.idle.worker_to_notify() {
            self.workers[id].parker.unpark();
        }
    }

    /// Whether any queue a worker could take work from looks non-empty.
    pub(crate) fn work_anywhere(&self, injector: &SegQueue<Remote>) -> bool {
        !injector.is_empty() || self.workers.iter().any(|w| !w.run.is_empty())
    }

    /// Whether every worker is parked with an empty inbox (a deadlock check's first look).
    pub(crate) fn all_parked(&self) -> bool {
        self.idle.all_parked() && self.workers.iter().all(|w| w.inbox.is_empty())
    }

    fn take_spare(&self, class: usize) -> Option<Vec<u32>> {
        if self.spare_batches.load(Relaxed) == 0 {
            return None;
        }
        let batch = self.spare.lock().unwrap_or_else(|e| e.into_inner())[class].pop();
        if batch.is_some() {
            self.spare_batches.fetch_sub(1, Relaxed);
        }
        batch
    }

    fn give_spare(&self, class: usize, batch: Vec<u32>) {
        self.spare.lock().unwrap_or_else(|e| e.into_inner())[class].push(batch);
        self.spare_batches.fetch_add(1, Relaxed);
    }
}

/// The threads of a multi-thread runtime.
pub(crate) struct MultiRuntime {
    pub(crate) shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    stopped: bool,
}

impl MultiRuntime {
    /// Starts `workers` worker threads.
    pub(crate) fn start(
        workers: usize,
        name: &str,
        blocking: crate::blocking::Pool,
        io: Arc<omni_io::Reactor>,
    ) -> std::io::Result<MultiRuntime> {
        let shared =
            Shared::new(blocking, false, io.clone(), |_| Some(MultiShared::new(workers, &io)));
        let mut rt = MultiRuntime { shared, threads: Vec::with_capacity(workers), stopped: false };
        for index in 0..workers {
            let shared = rt.shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || Worker::new(shared, index).run());
            match t {
                Ok(t) => rt.threads.push(t),
                Err(e) => {
                    // The workers already started stop again when `rt` drops.
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("omni: could not start worker thread {index}: {e}"),
                    ));
                }
            }
        }
        Ok(rt)
    }

    fn multi(&self) -> &MultiShared {
        self.shared.multi.as_ref().expect("a multi-thread runtime")
    }

    /// Stops the workers, then cancels every remaining task and frees every chunk.
    pub(crate) fn shutdown(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let _abort = exec::AbortOnUnwind::new();
        self.shared.begin_shutdown();
        for w in self.multi().workers.iter() {
            w.parker.unpark();
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                // Workers contain every panic of user code; one escaping is a bug in omni,
                // and its pools were not handed over.
                eprintln!("omni: a worker thread panicked; aborting");
                std::process::abort();
            }
        }
        let _enter = super::context::enter(super::context::Ctx::Main(Arc::as_ptr(&self.shared)));
        let sink = Drain { owner: self.shared.owner_id(), shared: &self.shared, cx: PollCx::new() };
        let mut pools =
            std::mem::take(&mut *self.multi().retired.lock().unwrap_or_else(|e| e.into_inner()));
        loop {
            while let Some(m) = self.shared.injector.pop() {
                if let Remote::Free(k) = m {
                    exec::free_if_released(&sink, sink.owner, k);
                }
            }
            let mut chunks: Vec<u32> = self.shared.lock_pool().chunks().to_vec();
            for p in &pools {
                chunks.extend_from_slice(p.chunks());
            }
            if !exec::cancel_all(&sink, &chunks, |_| true) {
                break;
            }
        }
        let mut chunks = self.shared.lock_pool().take_chunks();
        for p in &mut pools {
            chunks.extend(p.take_chunks());
        }
        drop(_enter);
        // SAFETY: every worker exited and this thread left the runtime, so it is current
        // nowhere; `cancel_all` made no progress, so every task completed.
        unsafe { exec::free_chunks(chunks) };
        // I/O objects that outlived their tasks (moved out of the runtime) fail from now on.
        self.shared.io.shutdown();
        for w in self.multi().workers.iter() {
            while w.inbox.pop().is_some() {}
        }
        while self.shared.injector.pop().is_some() {}
    }
}

impl Drop for MultiRuntime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for MultiRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiRuntime")
            .field("workers", &self.threads.len())
            .field("idle", &self.multi().idle)
            .finish()
    }
}

/// The executor of the final shutdown pass: nothing is polled, and slots are not reused (their
/// chunks are freed right after).
struct Drain<'a> {
    owner: *const (),
    shared: &'a Shared,
    cx: PollCx,
}

impl Exec for Drain<'_> {
    fn poll_cx(&self) -> &PollCx {
        &self.cx
    }
    fn shared(&self) -> &Shared {
        self.shared
    }
    fn requeue(&self, _: u64, _: &Header) {}
    fn release(&self, _: u32, _: u32, _: u32) {}
}
