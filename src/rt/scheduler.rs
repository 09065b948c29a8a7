//! The current-thread scheduler: one thread polls every task of its runtime.
//!
//! Queues: a FIFO run queue of task keys and a one-entry LIFO slot. A task woken by the task
//! being polled goes to the LIFO slot and runs next (a message passed to a waiting task is
//! handled while it is hot in cache); at most [`MAX_LIFO_POLLS`] LIFO runs happen in a row
//! before the slot's task goes to the back of the queue, so two tasks waking each other cannot
//! starve the rest. `yield_now` and self-wakes go to the back of the queue. Spawns go to the back.
//!
//! Wakes from other threads and spawns through a `Handle` from other threads arrive through
//! `Shared::remote`, a lock-free queue, and unpark the scheduler. The scheduler drains it after
//! every [`EVENT_INTERVAL`] polls and whenever it runs out of local work, before parking.
//!
//! Ownership: the scheduler is the only code that touches task stages (futures and outputs)
//! and its pool; it never holds a borrow of its core while running user code (polling, waking a
//! join waker, dropping a future or output), because that code may spawn or wake.

use super::park::Parker;
use crate::task::pool::Pool;
use crate::task::raw::{self, Header, Ops};
use crate::task::state::{End, Start, Wake, COMPLETE, JOIN_INTEREST, JOIN_WAKER};
use crate::task::{gen_of, index_of, key, table, waker, with_slot, Access, JoinHandle};
use crossbeam_queue::SegQueue;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake as StdWake, Waker};

/// Polls between two looks at the remote queue and the `block_on` future (Go uses 61 too).
pub(crate) const EVENT_INTERVAL: u32 = 61;
/// LIFO-slot runs in a row before the slot's task must queue like everyone else.
pub(crate) const MAX_LIFO_POLLS: u32 = 3;
const NO_TASK: u64 = 0;

thread_local! {
    static CURRENT: Cell<*const Scheduler> = const { Cell::new(ptr::null()) };
}

/// A message from another thread.
enum Remote {
    /// Schedule the task (it is already marked `SCHEDULED`).
    Run(u64),
    /// A join handle dropped on another thread gave up a completed task: free its slot.
    Free(u64),
}

/// The part of a runtime that other threads may touch.
pub(crate) struct Shared {
    remote: SegQueue<Remote>,
    remote_pool: Mutex<Pool>,
    parker: Parker,
    shutdown: AtomicBool,
}

impl Shared {
    fn owner_id(self: &Arc<Self>) -> *const () {
        Arc::as_ptr(self) as *const ()
    }

    fn push(&self, m: Remote) {
        self.remote.push(m);
        self.parker.unpark();
    }

    fn lock_pool(&self) -> MutexGuard<'_, Pool> {
        self.remote_pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns from a thread that does not run this runtime.
    pub(crate) fn spawn_remote<F>(self: &Arc<Self>, fut: F) -> JoinHandle<F::Output>
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
        let key = alloc_task(|class| pool.alloc(class), fut);
        drop(pool);
        self.push(Remote::Run(key));
        JoinHandle::new(key)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("remote_len", &self.remote.len())
            .field("shutdown", &self.shutdown.load(Relaxed))
            .finish()
    }
}

/// Writes `fut` into a fresh slot from `alloc` (a pool's `alloc`) and returns the task's key.
/// The task starts `SCHEDULED` with a join interest; the caller queues it.
fn alloc_task<F: Future>(mut alloc: impl FnMut(usize) -> (u32, *mut Header), fut: F) -> u64 {
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
    gen = unsafe { (*h).state.occupy() };
    key(index, gen)
}

struct Core {
    queue: VecDeque<u64>,
    lifo: Option<u64>,
    lifo_polls: u32,
    pool: Pool,
}

/// A current-thread scheduler.
pub(crate) struct Scheduler {
    pub(crate) shared: Arc<Shared>,
    owner: *const (),
    core: RefCell<Core>,
    current_task: Cell<u64>,
    yielded: Cell<bool>,
    budget: Cell<u32>,
}

/// Restores the thread's previous scheduler when dropped.
struct Enter(*const Scheduler);

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// The `block_on` future's waker.
struct MainSignal {
    woken: AtomicBool,
    shared: Arc<Shared>,
}

impl StdWake for MainSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Release);
        self.shared.parker.unpark();
    }
}

impl Scheduler {
    pub(crate) fn new() -> Scheduler {
        let shared = Arc::new_cyclic(|weak| Shared {
            remote: SegQueue::new(),
            remote_pool: Mutex::new(Pool::new(weak.as_ptr() as *const (), true)),
            parker: Parker::new(),
            shutdown: AtomicBool::new(false),
        });
        let owner = shared.owner_id();
        Scheduler {
            shared,
            owner,
            core: RefCell::new(Core {
                queue: VecDeque::new(),
                lifo: None,
                lifo_polls: 0,
                pool: Pool::new(owner, false),
            }),
            current_task: Cell::new(NO_TASK),
            yielded: Cell::new(false),
            budget: Cell::new(super::coop::BUDGET),
        }
    }

    fn enter(&self) -> Enter {
        Enter(CURRENT.with(|c| c.replace(self)))
    }

    /// Spawns on this scheduler from its own thread.
    pub(crate) fn spawn<F: Future + 'static>(&self, fut: F) -> JoinHandle<F::Output> {
        if self.shared.shutdown.load(Relaxed) {
            drop(fut);
            return JoinHandle::refused();
        }
        // The borrow covers only the slot allocation: if that panics (region exhausted), the
        // future is dropped after the borrow ends, so its destructor may spawn or wake.
        let key = alloc_task(|class| self.core.borrow_mut().pool.alloc(class), fut);
        self.core.borrow_mut().queue.push_back(key);
        JoinHandle::new(key)
    }

    pub(crate) fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let prev = CURRENT.with(|c| c.get());
        assert!(
            prev.is_null(),
            "omni: block_on called from inside a running omni runtime. Blocking here would \
             freeze every task of that runtime: `.await` the future instead, or run the \
             blocking code on its own OS thread"
        );
        let _enter = self.enter();
        let signal =
            Arc::new(MainSignal { woken: AtomicBool::new(true), shared: self.shared.clone() });
        let main_waker = Waker::from(signal.clone());
        let mut cx = Context::from_waker(&main_waker);
        let mut fut = pin!(fut);
        loop {
            if signal.woken.swap(false, AcqRel) {
                self.budget.set(super::coop::BUDGET);
                if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                    return v;
                }
            }
            let mut ran = 0;
            while ran < EVENT_INTERVAL {
                match self.next_task() {
                    Some(k) => self.run_task(k),
                    None => break,
                }
                ran += 1;
            }
            let pulled = self.pull_remote();
            if ran == 0 && !pulled && !signal.woken.load(Acquire) {
                self.shared.parker.park();
            }
        }
    }

    fn next_task(&self) -> Option<u64> {
        let mut core = self.core.borrow_mut();
        if let Some(k) = core.lifo.take() {
            if core.lifo_polls < MAX_LIFO_POLLS {
                core.lifo_polls += 1;
                return Some(k);
            }
            core.queue.push_back(k);
        }
        core.lifo_polls = 0;
        core.queue.pop_front()
    }

    /// Moves remote messages into the local queue. Returns whether there were any.
    fn pull_remote(&self) -> bool {
        let mut any = false;
        while let Some(m) = self.shared.remote.pop() {
            any = true;
            match m {
                Remote::Run(k) => self.core.borrow_mut().queue.push_back(k),
                Remote::Free(k) => self.free_if_released(k),
            }
        }
        any
    }

    /// The header of one of this runtime's own tasks.
    fn header(&self, key: u64) -> Option<*mut Header> {
        let (chunk, slot) = table::split(index_of(key));
        let e = table::entry(chunk)?;
        if !e.is_owned_by(self.owner) {
            return None;
        }
        let h = e.owner_slot(slot) as *mut Header;
        (!h.is_null()).then_some(h)
    }

    fn run_task(&self, key: u64) {
        let Some(h) = self.header(key) else { return };
        // SAFETY: our own chunk, alive while we are current; every slot has a header.
        let header = unsafe { &*h };
        let gen = gen_of(key);
        match header.state.start_poll(gen) {
            Start::Stale => {}
            Start::Cancel => self.cancel_running(key, h),
            Start::Poll => {
                self.current_task.set(key);
                self.yielded.set(false);
                self.budget.set(super::coop::BUDGET);
                let waker = waker::for_key(key);
                let mut cx = Context::from_waker(&waker);
                // SAFETY: we own the running task; it is not complete.
                let res = unsafe { ((*header.vtable.get()).poll)(h, &mut cx) };
                self.current_task.set(NO_TASK);
                match res {
                    Poll::Ready(()) => self.complete(key, h, true),
                    Poll::Pending => {
                        if header.state.end_poll(gen, self.yielded.get()) == End::Reschedule {
                            self.core.borrow_mut().queue.push_back(key);
                        }
                    }
                }
            }
        }
    }

    /// Drops the future of a task that `start_poll` just marked running, and completes it as
    /// cancelled.
    fn cancel_running(&self, key: u64, h: *mut Header) {
        // SAFETY: our own slot; the task is RUNNING under us and its future is live.
        let has_output = unsafe { ((*(*h).vtable.get()).cancel)(h) };
        self.complete(key, h, has_output);
    }

    /// The stage now holds the output: tell the join handle, or free the slot if detached.
    fn complete(&self, key: u64, h: *mut Header, has_output: bool) {
        // SAFETY: our own live slot.
        let header = unsafe { &*h };
        let snap = header.state.complete(gen_of(key), has_output);
        if snap.has(JOIN_INTEREST) {
            if snap.has(JOIN_WAKER) {
                // SAFETY: JOIN_WAKER was set when COMPLETE went in, so the handle no longer
                // writes the field; only this thread frees it. The waker is cloned first:
                // waking may re-enter (an inline executor polling the handle, which frees the
                // slot and drops the stored waker).
                let w = unsafe { &*header.join_waker.get() }.clone();
                if let Some(w) = w {
                    w.wake();
                }
            }
        } else {
            self.free_slot(key, h);
        }
    }

    /// Drops the stage (output) of a completed task and returns the slot to its pool (see
    /// `raw::vacate_and_drop` for why the slot is vacated before any destructor runs).
    fn free_slot(&self, key: u64, h: *mut Header) {
        // SAFETY: our own completed slot with no join interest left: nobody else touches it.
        let gen = unsafe { raw::vacate_and_drop(h) };
        let index = index_of(key);
        let (class, remote) = table::entry(table::split(index).0).expect("own chunk").class();
        if remote {
            self.shared.lock_pool().release(index, class, gen);
        } else {
            self.core.borrow_mut().pool.release(index, class, gen);
        }
    }

    fn free_if_released(&self, key: u64) {
        let Some(h) = self.header(key) else { return };
        // SAFETY: own chunk.
        let s = unsafe { &*h }.state.load();
        if s.generation() == gen_of(key) && s.has(COMPLETE) && !s.has(JOIN_INTEREST) {
            self.free_slot(key, h);
        }
    }

    fn schedule_local(&self, key: u64) {
        let mut core = self.core.borrow_mut();
        if self.current_task.get() != NO_TASK {
            if let Some(prev) = core.lifo.replace(key) {
                core.queue.push_back(prev);
            }
        } else {
            core.queue.push_back(key);
        }
    }

    /// Cancels every task, drops every future and output exactly once, and frees the chunks.
    pub(crate) fn shutdown(&self) {
        // Futures and outputs are dropped under `catch_unwind`, but a user waker may still
        // panic. Unwinding out of here would leave chunks published with an owner that is about
        // to be freed, so a panic aborts instead.
        // (A runtime dropped while the thread is already unwinding, e.g. `block_on`'s future
        // panicked, is shut down normally: only a panic that starts in here aborts.)
        struct AbortOnUnwind(bool);
        impl Drop for AbortOnUnwind {
            fn drop(&mut self) {
                if std::thread::panicking() && !self.0 {
                    eprintln!(
                        "omni: a panic escaped runtime shutdown (a waker panicked); aborting"
                    );
                    std::process::abort();
                }
            }
        }
        let _abort = AbortOnUnwind(std::thread::panicking());
        {
            let _pool = self.shared.lock_pool();
            self.shared.shutdown.store(true, Release);
        }
        let enter = self.enter();
        loop {
            self.pull_remote();
            let mut chunks = self.core.borrow().pool.chunks().to_vec();
            chunks.extend_from_slice(self.shared.lock_pool().chunks());
            let mut progressed = false;
            for &chunk in &chunks {
                let e = table::entry(chunk).expect("own chunk");
                for slot in 0..table::SLOTS_PER_CHUNK {
                    let h = e.owner_slot(slot) as *mut Header;
                    // SAFETY: own chunk, alive while current.
                    let header = unsafe { &*h };
                    let s = header.state.load();
                    let gen = s.generation();
                    if gen % 2 == 1
                        && !s.has(COMPLETE)
                        && header.state.start_poll(gen) != Start::Stale
                    {
                        let index = (chunk << table::SLOT_BITS) | slot as u32;
                        self.cancel_running(key(index, gen), h);
                        progressed = true;
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        {
            let mut core = self.core.borrow_mut();
            core.queue.clear();
            core.lifo = None;
        }
        drop(enter);
        let mut chunks = self.core.borrow_mut().pool.take_chunks();
        chunks.extend(self.shared.lock_pool().take_chunks());
        for chunk in chunks {
            // SAFETY: our chunk; this runtime is no longer current anywhere.
            let base = unsafe { table::unpublish(chunk) };
            let mut max_gen = 0;
            for slot in 0..table::SLOTS_PER_CHUNK {
                // SAFETY: `base` is the unpublished chunk's memory, still allocated.
                let h = unsafe { table::slot_of_unpublished(chunk, base, slot) } as *mut Header;
                // SAFETY: nobody else can reach the chunk any more.
                let mut gen = unsafe { &*h }.state.load().generation();
                if gen % 2 == 1 {
                    // SAFETY: phase one completed every task, and the chunk is unpublished, so
                    // the slot is exclusively ours.
                    gen = unsafe { raw::vacate_and_drop(h) };
                }
                max_gen = max_gen.max(gen);
            }
            // SAFETY: every slot is vacant with its stage dropped.
            unsafe { table::free_chunk(chunk, base, max_gen) };
        }
        while self.shared.remote.pop().is_some() {}
    }
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = self.core.try_borrow();
        let mut d = f.debug_struct("Scheduler");
        if let Ok(core) = core {
            d.field("queued", &core.queue.len()).field("lifo", &core.lifo.is_some());
        }
        d.field("shared", &self.shared).finish()
    }
}

/// The running scheduler of this thread, if any.
#[inline]
fn current() -> *const Scheduler {
    CURRENT.with(|c| c.get())
}

/// The identity of the runtime running on this thread (null if none).
#[inline]
pub(crate) fn current_owner() -> *const () {
    let s = current();
    if s.is_null() {
        ptr::null()
    } else {
        // SAFETY: CURRENT is set only while the scheduler is alive (an `Enter` guard scope).
        unsafe { (*s).owner }
    }
}

/// Runs `f` with the current scheduler, if any.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Scheduler>) -> R) -> R {
    let s = current();
    // SAFETY: CURRENT is set only while the scheduler is alive.
    f(unsafe { s.as_ref() })
}

/// Queues a task that a state transition just marked `SCHEDULED`.
pub(crate) fn schedule(key: u64, access: Access) {
    match access {
        Access::Owner => with_current(|s| {
            if let Some(s) = s {
                s.schedule_local(key);
            }
        }),
        // SAFETY: `owner` came from the chunk table under its reader protocol, which keeps the
        // `Shared` alive for the duration of the `with_slot` closure that called us.
        Access::Foreign(owner) => unsafe { &*(owner as *const Shared) }.push(Remote::Run(key)),
    }
}

/// The waker entry point: schedules the task if `key` still names it and it is idle.
pub(crate) fn wake_task(key: u64) {
    with_slot(key, |h, _, access| {
        if h.state.wake(gen_of(key)) == Wake::Schedule {
            schedule(key, access);
        }
    });
}

/// A join handle gave up a completed task: free its slot on the owner thread.
pub(crate) fn free_completed(key: u64, h: *mut Header, access: Access) {
    match access {
        Access::Owner => with_current(|s| {
            if let Some(s) = s {
                s.free_slot(key, h);
            }
        }),
        // SAFETY: as in `schedule`.
        Access::Foreign(owner) => unsafe { &*(owner as *const Shared) }.push(Remote::Free(key)),
    }
}

/// Spends one unit of the current task's budget; false when it is spent.
#[inline]
pub(crate) fn spend_budget() -> bool {
    with_current(|s| match s {
        None => true,
        Some(s) => {
            let b = s.budget.get();
            if b == 0 {
                false
            } else {
                s.budget.set(b - 1);
                true
            }
        }
    })
}

/// If `w` is the waker of the task being polled, asks the scheduler to requeue it at the back
/// after this poll (without a wake-up round trip). Returns false otherwise.
#[inline]
pub(crate) fn request_yield(w: &Waker) -> bool {
    with_current(|s| match (s, waker::key_of(w)) {
        (Some(s), Some(k)) if k == s.current_task.get() => {
            s.yielded.set(true);
            true
        }
        _ => false,
    })
}
