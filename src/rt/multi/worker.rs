//! One worker thread of the multi-thread runtime: its run loop, stealing, parking and its part
//! of shutdown.
//!
//! The loop, each turn: take the next task (the LIFO slot, at most [`MAX_LIFO_POLLS`] times in
//! a row; the local ring; pinned tasks; the inbox; the injector; and every [`EVENT_INTERVAL`]
//! turns the inbox and the injector first), else search (steal half of a random victim's
//! ring, or its LIFO slot, or take from the injector), else park. A worker that finds work
//! while searching stops searching and, if it was the last searcher, wakes another worker to
//! take over the search (see `idle.rs`).
//!
//! Ownership: `Worker` lives on its thread's stack and is reached through the thread's
//! context; only that thread touches its `core` (pools and pinned queue). Other threads reach
//! its [`WorkerShared`] only.

use super::{MultiShared, WorkerShared, EVENT_INTERVAL, SPARE_HIGH};
use crate::rt::context::{self, Ctx};
use crate::rt::current_thread::MAX_LIFO_POLLS;
use crate::rt::exec::{self, Exec, PollCx, NO_TASK};
use crate::rt::shared::{alloc_task, Remote, Shared};
use crate::task::pool::Pool;
use crate::task::raw::Header;
use crate::task::table::{self, SLOTS_PER_CHUNK};
use crate::task::JoinHandle;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

struct Core {
    /// Slots for stealable tasks.
    pool: Pool,
    /// Slots for tasks pinned to this worker; only this worker allocates or frees them.
    pinned_pool: Pool,
    /// Runnable pinned tasks.
    pinned: VecDeque<u64>,
}

/// A worker of a multi-thread runtime.
pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    index: usize,
    /// This worker's pin (index + 1).
    pin: u32,
    owner: *const (),
    core: RefCell<Core>,
    pub(crate) cx: PollCx,
    searching: Cell<bool>,
    tick: Cell<u32>,
    lifo_polls: Cell<u32>,
    rng: Cell<u64>,
}

impl Worker {
    pub(crate) fn new(shared: Arc<Shared>, index: usize) -> Worker {
        let owner = shared.owner_id();
        Worker {
            shared,
            index,
            pin: index as u32 + 1,
            owner,
            core: RefCell::new(Core {
                pool: Pool::new(owner, false),
                pinned_pool: Pool::new(owner, false),
                pinned: VecDeque::new(),
            }),
            cx: PollCx::new(),
            searching: Cell::new(false),
            tick: Cell::new(0),
            lifo_polls: Cell::new(0),
            rng: Cell::new(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1).wrapping_mul(0x2545_f491)),
        }
    }

    /// The identity of the runtime in the chunk table.
    pub(crate) fn owner(&self) -> *const () {
        self.owner
    }

    fn multi(&self) -> &MultiShared {
        self.shared.multi.as_ref().expect("a worker belongs to a multi-thread runtime")
    }

    fn me(&self) -> &WorkerShared {
        &self.multi().workers[self.index]
    }

    /// The worker thread's body.
    pub(crate) fn run(self) {
        let _enter = context::enter(Ctx::Worker(&self));
        // This thread's I/O operations go to its own ring (io_uring), which it parks in.
        self.shared.io.bind_thread(self.index);
        while !self.shared.shutdown.load(Acquire) {
            let tick = self.tick.get().wrapping_add(1);
            self.tick.set(tick);
            let next = match self.next_task(tick) {
                Some(k) => Some(k),
                None => self.search(),
            };
            match next {
                Some(key) => self.run_key(key),
                None => self.park(),
            }
        }
        self.shutdown();
    }

    fn run_key(&self, key: u64) {
        if self.searching.replace(false) && self.multi().idle.transition_from_searching() {
            // The last searcher found work: there may be more, so hand the search on.
            self.multi().notify_parked();
        }
        let Some(h) = exec::header(self.owner, key) else { return };
        // Task code is contained by the vtable; a panic reaching here came from a user waker
        // (a join handle's) and leaves every omni structure consistent: report it and go on.
        if catch_unwind(AssertUnwindSafe(|| exec::run_task(self, key, h))).is_err() {
            self.cx.current_task.set(NO_TASK);
            eprintln!("omni: a waker panicked on worker {}; the worker goes on", self.index);
        }
    }

    fn next_task(&self, tick: u32) -> Option<u64> {
        let run = &self.me().run;
        if tick % EVENT_INTERVAL == 0 {
            // Now and then timers, the inbox and the injector come first, so a worker whose own
            // queue never empties still serves them. The injector before the pinned queue: a
            // pinned task that always requeues must not starve it.
            self.shared.time.process();
            // I/O too: a worker that never runs dry must not starve sockets (the driver is
            // polled without sleeping; if another worker is inside it, that one delivers).
            self.me().parker.poll_driver();
            self.drain_inbox();
            if let Some(k) = self.pop_injector() {
                return Some(k);
            }
        }
        if let Some(k) = run.take_lifo() {
            if self.lifo_polls.get() < MAX_LIFO_POLLS {
                self.lifo_polls.set(self.lifo_polls.get() + 1);
                return Some(k);
            }
            self.push_back(k);
        }
        self.lifo_polls.set(0);
        // The ring and the pinned queue take turns, so neither starves the other.
        let pinned = || self.core.borrow_mut().pinned.pop_front();
        let first = if tick % 2 == 0 { pinned() } else { run.pop() };
        if let Some(k) = first.or_else(|| if tick % 2 == 0 { run.pop() } else { pinned() }) {
            return Some(k);
        }
        self.drain_inbox();
        if let Some(k) = pinned() {
            return Some(k);
        }
        if let Some(k) = self.pop_injector() {
            return Some(k);
        }
        // Out of local work: fire due timers, which may queue some.
        self.shared.time.process();
        run.pop().or_else(pinned)
    }

    /// Moves the inbox's wakes to the pinned queue and performs its frees.
    fn drain_inbox(&self) {
        while let Some(m) = self.me().inbox.pop() {
            match m {
                Remote::Run(k) => self.core.borrow_mut().pinned.push_back(k),
                Remote::Free(k) => exec::free_if_released(self, self.owner, k),
            }
        }
    }

    /// Takes a task from the injector, and a fair share of the rest into the local ring.
    fn pop_injector(&self) -> Option<u64> {
        let injector = &self.shared.injector;
        let first = loop {
            match injector.pop()? {
                Remote::Run(k) => break k,
                Remote::Free(k) => exec::free_if_released(self, self.owner, k),
            }
        };
        let run = &self.me().run;
        let share = injector.len() / self.multi().workers.len();
        let room = (super::queue::CAPACITY / 2).saturating_sub(run.len());
        for _ in 0..share.min(room) {
            match injector.pop() {
                Some(Remote::Run(k)) => self.push_back(k),
                Some(Remote::Free(k)) => exec::free_if_released(self, self.owner, k),
                None => break,
            }
        }
        Some(first)
    }

    /// Looks for work elsewhere: steals from other workers, then takes from the injector.
    fn search(&self) -> Option<u64> {
        let multi = self.multi();
        if !self.searching.get() {
            if !multi.idle.transition_to_searching() {
                return None;
            }
            self.searching.set(true);
        }
        let n = multi.workers.len();
        let start = self.next_rand() as usize % n;
        let mine = &self.me().run;
        for i in 0..n {
            let victim = (start + i) % n;
            if victim == self.index {
                continue;
            }
            if let Some(k) = multi.workers[victim].run.steal_into(mine) {
                return Some(k);
            }
        }
        self.pop_injector()
    }

    /// Sleeps until woken: by a notifier with new work, a wake of a pinned task, or shutdown.
    fn park(&self) {
        // User code that ran outside a poll (an output dropped while handling a
        // `Remote::Free`, a destructor calling `spawn_local`) may have queued a pinned task
        // after `next_task` looked: never sleep on one.
        if !self.core.borrow().pinned.is_empty() {
            return;
        }
        let multi = self.multi();
        if multi.idle.transition_to_parked(self.index, self.searching.replace(false))
            && multi.work_anywhere(&self.shared.injector)
        {
            // The last searcher saw work pushed while it was giving up: wake someone (perhaps
            // itself) to take it.
            multi.notify_parked();
        }
        if self.shared.watch.main_parked.load(SeqCst)
            && multi.all_parked()
            && self.shared.quiet_outside()
        {
            // Maybe the last worker to park while every task waits: let `block_on` look.
            self.shared.parker.unpark();
        }
        let time = &self.shared.time;
        match time.plan_park(Some(self.index)) {
            Some(timeout) => self.me().parker.park_timeout(timeout),
            None => self.me().parker.park(),
        }
        self.searching.set(multi.idle.transition_from_parked(self.index));
        if time.after_park(Some(self.index)) {
            multi.notify_parked();
        }
    }

    fn next_rand(&self) -> u64 {
        // xorshift64*
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Appends to the local ring, spilling to the injector when it is full.
    fn push_back(&self, key: u64) {
        let injector = &self.shared.injector;
        self.me().run.push_back(key, &mut |k| injector.push(Remote::Run(k)));
    }

    /// Spawns a stealable task from this worker: it goes to the local ring.
    pub(crate) fn spawn<F>(&self, fut: F, at: &'static Location<'static>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.shared.shutdown.load(Relaxed) {
            drop(fut);
            return JoinHandle::refused();
        }
        let key = alloc_task(|class| self.alloc(class), fut, 0, at);
        self.push_back(key);
        self.multi().notify_parked();
        JoinHandle::new(key)
    }

    /// Spawns a task pinned to this worker (it may be `!Send`).
    pub(crate) fn spawn_pinned<F: Future + 'static>(
        &self,
        fut: F,
        at: &'static Location<'static>,
    ) -> JoinHandle<F::Output> {
        if self.shared.shutdown.load(Relaxed) {
            drop(fut);
            return JoinHandle::refused();
        }
        let key =
            alloc_task(|class| self.core.borrow_mut().pinned_pool.alloc(class), fut, self.pin, at);
        self.core.borrow_mut().pinned.push_back(key);
        JoinHandle::new(key)
    }

    /// A stealable slot of `class`: from the free list, else a spare batch, else a fresh one.
    fn alloc(&self, class: usize) -> (u32, *mut Header) {
        let mut core = self.core.borrow_mut();
        if core.pool.free_len(class) == 0 {
            if let Some(batch) = self.multi().take_spare(class) {
                core.pool.add_free(class, batch);
            }
        }
        core.pool.alloc(class)
    }

    /// Queues a task woken on this thread (`pin` from its state word).
    pub(crate) fn schedule_local(&self, key: u64, pin: u32) {
        if pin == 0 {
            if self.cx.current_task.get() != NO_TASK {
                // Woken by the running task: run it next, while its data is hot.
                if let Some(prev) = self.me().run.push_lifo(key) {
                    self.push_back(prev);
                }
            } else {
                self.push_back(key);
            }
            self.multi().notify_parked();
        } else if pin == self.pin {
            self.core.borrow_mut().pinned.push_back(key);
        } else {
            self.multi().push_pinned(Remote::Run(key), pin);
        }
    }

    /// A join handle on this thread gave up a completed task.
    pub(crate) fn free_completed(&self, key: u64, h: *mut Header, pin: u32) {
        if pin == 0 || pin == self.pin {
            exec::free_slot(self, key, h);
        } else {
            self.multi().push_pinned(Remote::Free(key), pin);
        }
    }

    /// Shutdown, on this worker's thread: drop the pinned tasks here (their futures, and the
    /// outputs nobody took, may be `!Send`), hand the pools over.
    fn shutdown(&self) {
        let _abort = exec::AbortOnUnwind::new();
        loop {
            self.drain_inbox();
            let chunks = self.core.borrow().pinned_pool.chunks().to_vec();
            let cancelled = exec::cancel_all(self, &chunks, |pin| pin == self.pin);
            let dropped = exec::drop_outputs(&chunks, |pin| pin == self.pin);
            if !cancelled && !dropped {
                break;
            }
        }
        let mut core = self.core.borrow_mut();
        core.pinned.clear();
        let pools = [
            std::mem::replace(&mut core.pool, Pool::new(self.owner, false)),
            std::mem::replace(&mut core.pinned_pool, Pool::new(self.owner, false)),
        ];
        self.multi().retired.lock().unwrap_or_else(|e| e.into_inner()).extend(pools);
    }
}

impl Exec for Worker {
    fn poll_cx(&self) -> &PollCx {
        &self.cx
    }

    fn shared(&self) -> &Shared {
        &self.shared
    }

    fn requeue(&self, key: u64, h: &Header) {
        if h.state.load().pin() == 0 {
            self.push_back(key);
            self.multi().notify_parked();
        } else {
            self.core.borrow_mut().pinned.push_back(key);
        }
    }

    fn release(&self, index: u32, gen: u32, pin: u32) {
        let (class, remote) = table::entry(table::split(index).0).expect("own chunk").class();
        if remote {
            self.shared.lock_pool().release(index, class, gen);
            return;
        }
        let mut core = self.core.borrow_mut();
        if pin != 0 {
            core.pinned_pool.release(index, class, gen);
            return;
        }
        core.pool.release(index, class, gen);
        if core.pool.free_len(class) >= SPARE_HIGH {
            let batch = core.pool.take_free(class, SLOTS_PER_CHUNK);
            drop(core);
            self.multi().give_spare(class, batch);
        }
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.index)
            .field("run", &self.me().run)
            .field("searching", &self.searching.get())
            .finish()
    }
}
