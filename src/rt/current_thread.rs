//! The current-thread scheduler: one thread polls every task of its runtime.
//!
//! Queues: a FIFO run queue of task keys and a one-entry LIFO slot. A task woken by the task
//! being polled goes to the LIFO slot and runs next (a message passed to a waiting task is
//! handled while it is hot in cache); at most [`MAX_LIFO_POLLS`] LIFO runs happen in a row
//! before the slot's task goes to the back of the queue, so two tasks waking each other cannot
//! starve the rest. `yield_now` and self-wakes go to the back of the queue. Spawns go to the back.
//!
//! Wakes from other threads and spawns through a `Handle` from other threads arrive through
//! `Shared::injector`, a lock-free queue, and unpark the scheduler. The scheduler drains it
//! after every [`EVENT_INTERVAL`] polls and whenever it runs out of local work, before parking.
//!
//! Ownership: the scheduler is the only code that touches task stages (futures and outputs)
//! and its pool; it never holds a borrow of its core while running user code (polling, waking a
//! join waker, dropping a future or output), because that code may spawn or wake.

use super::context::{self, Ctx};
use super::deadlock;
use super::exec::{self, Exec, PollCx, NO_TASK};
use super::shared::{alloc_task, Remote, Shared};
use crate::task::pool::Pool;
use crate::task::raw::Header;
use crate::task::{table, JoinHandle};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::Location;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// Polls between two looks at the remote queue and the `block_on` future (Go uses 61 too).
pub(crate) const EVENT_INTERVAL: u32 = 61;
/// Run-queue entries kept allocated once the queue drains after a burst (8 bytes each).
const QUEUE_KEEP: usize = 4096;
/// LIFO-slot runs in a row before the slot's task must queue like everyone else.
pub(crate) const MAX_LIFO_POLLS: u32 = 3;

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
    pub(crate) cx: PollCx,
}

/// The `block_on` future's waker: sets a flag and unparks the thread in `block_on`.
pub(crate) struct MainSignal {
    pub(crate) woken: AtomicBool,
    pub(crate) shared: Arc<Shared>,
}

impl MainSignal {
    pub(crate) fn new(shared: Arc<Shared>) -> Arc<MainSignal> {
        Arc::new(MainSignal { woken: AtomicBool::new(true), shared })
    }
}

impl MainSignal {
    fn signal(&self) {
        self.woken.store(true, Release);
        self.shared.parker.unpark();
    }

    /// The `block_on` future's waker. Its own vtable (rather than `std::task::Wake`) lets a
    /// clone be told from an omni primitive's copy (see [`keep_main_waker`]).
    pub(crate) fn waker(self: &Arc<Self>) -> Waker {
        let data = Arc::into_raw(self.clone()) as *const ();
        // SAFETY: `data` carries one strong count of an `Arc<MainSignal>`, which the vtable's
        // functions own and release exactly once (wake or drop); they are thread-safe because
        // `MainSignal` is `Send + Sync`.
        unsafe { Waker::from_raw(RawWaker::new(data, &MAIN_VTABLE)) }
    }
}

static MAIN_VTABLE: RawWakerVTable =
    RawWakerVTable::new(main_clone, main_wake, main_wake_by_ref, main_drop);

/// A strong count for a new waker with the same data.
///
/// # Safety
///
/// `data` is the data of a live waker with `MAIN_VTABLE` (one strong count of an
/// `Arc<MainSignal>`).
unsafe fn main_copy(data: *const ()) -> RawWaker {
    // SAFETY: the caller's waker keeps the `Arc` alive, so the count is above zero.
    unsafe { Arc::increment_strong_count(data as *const MainSignal) };
    RawWaker::new(data, &MAIN_VTABLE)
}

/// `Waker::clone`: someone other than an omni primitive keeps the waker.
///
/// # Safety
///
/// As for [`main_copy`] (the vtable is only reached through such a waker).
unsafe fn main_clone(data: *const ()) -> RawWaker {
    super::deadlock::mark_foreign();
    // SAFETY: called by `Waker::clone` on a live waker with this vtable.
    unsafe { main_copy(data) }
}

/// `Waker::wake`.
///
/// # Safety
///
/// `data` is the data of a live waker with `MAIN_VTABLE`, which this consumes (its count).
unsafe fn main_wake(data: *const ()) {
    // SAFETY: waking by value consumes the waker's strong count.
    let signal = unsafe { Arc::from_raw(data as *const MainSignal) };
    signal.signal();
}

/// `Waker::wake_by_ref`.
///
/// # Safety
///
/// `data` is the data of a live waker with `MAIN_VTABLE`.
unsafe fn main_wake_by_ref(data: *const ()) {
    // SAFETY: the waker is live, so its `Arc` is.
    unsafe { &*(data as *const MainSignal) }.signal();
}

/// `Waker::drop`.
///
/// # Safety
///
/// `data` is the data of a live waker with `MAIN_VTABLE`, which this ends (its count).
unsafe fn main_drop(data: *const ()) {
    // SAFETY: dropping the waker releases its strong count, once.
    drop(unsafe { Arc::from_raw(data as *const MainSignal) });
}

/// A copy of `w` for an omni primitive, if it is a `block_on` waker: made without its `clone`,
/// so the `block_on` future does not count as foreign.
pub(crate) fn keep_main_waker(w: &Waker) -> Option<Waker> {
    if !std::ptr::eq(w.vtable(), &MAIN_VTABLE) {
        return None;
    }
    // SAFETY: `w` is a live waker with `MAIN_VTABLE`; the new waker owns the new count.
    Some(unsafe { Waker::from_raw(main_copy(w.data())) })
}

/// Panics if this thread is already inside an omni runtime.
pub(crate) fn assert_not_nested() {
    assert!(
        matches!(context::get(), Ctx::None | Ctx::Blocking(_)),
        "omni: block_on called from inside a running omni runtime. Blocking here would \
         freeze every task of that runtime: `.await` the future instead, or run the \
         blocking code on its own OS thread"
    );
}

impl Exec for Scheduler {
    fn poll_cx(&self) -> &PollCx {
        &self.cx
    }

    fn shared(&self) -> &Shared {
        &self.shared
    }

    fn requeue(&self, key: u64, _: &Header) {
        self.core.borrow_mut().queue.push_back(key);
    }

    fn release(&self, index: u32, gen: u32, _pin: u32) {
        let (class, remote) = table::entry(table::split(index).0).expect("own chunk").class();
        if remote {
            self.shared.lock_pool().release(index, class, gen);
        } else {
            self.core.borrow_mut().pool.release(index, class, gen);
        }
    }
}

impl Scheduler {
    pub(crate) fn new(
        blocking: crate::blocking::Pool,
        start_paused: bool,
        io: Arc<omni_io::Reactor>,
    ) -> Scheduler {
        let shared = Shared::new(blocking, start_paused, io, |_| None);
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
            cx: PollCx::new(),
        }
    }

    /// The identity of this runtime in the chunk table.
    pub(crate) fn owner(&self) -> *const () {
        self.owner
    }

    /// Spawns on this scheduler from its own thread.
    pub(crate) fn spawn<F: Future + 'static>(
        &self,
        fut: F,
        at: &'static Location<'static>,
    ) -> JoinHandle<F::Output> {
        if self.shared.shutdown.load(Relaxed) {
            drop(fut);
            return JoinHandle::refused();
        }
        // The borrow covers only the slot allocation: if that panics (region exhausted), the
        // future is dropped after the borrow ends, so its destructor may spawn or wake.
        let key = alloc_task(|class| self.core.borrow_mut().pool.alloc(class), fut, 0, at);
        self.core.borrow_mut().queue.push_back(key);
        JoinHandle::new(key)
    }

    pub(crate) fn block_on<F: Future>(&self, fut: F, at: &'static Location<'static>) -> F::Output {
        assert_not_nested();
        let _enter = context::enter(Ctx::Local(self));
        let signal = MainSignal::new(self.shared.clone());
        let main_waker = signal.waker();
        let mut cx = Context::from_waker(&main_waker);
        let mut fut = pin!(fut);
        let mut main = deadlock::Main::start(&self.shared, at);
        // Polls (tasks and the main future) since the driver was last looked at.
        let mut since_driver = 0;
        loop {
            if signal.woken.swap(false, AcqRel) {
                since_driver += 1;
                self.cx.budget.set(super::coop::BUDGET);
                if let Poll::Ready(v) = main.poll(&self.shared, fut.as_mut(), &mut cx) {
                    return v;
                }
            }
            let mut ran = 0;
            while ran < EVENT_INTERVAL {
                match self.next_task() {
                    Some(k) => {
                        if let Some(h) = exec::header(self.owner, k) {
                            exec::run_task(self, k, h);
                        }
                    }
                    None => break,
                }
                ran += 1;
            }
            if ran > 0 {
                main.reported = false;
            }
            since_driver += ran;
            if since_driver >= EVENT_INTERVAL {
                // Busy: deliver the I/O events that are ready now, so sockets are served
                // even when the tasks or the main future never run out of work (the park
                // below does it otherwise).
                since_driver = 0;
                self.shared.parker.poll_driver();
            }
            let pulled = self.pull_remote();
            let time = &self.shared.time;
            time.process();
            if ran == 0 && !pulled && !signal.woken.load(Acquire) && !self.has_work() {
                if time.is_paused() {
                    // Nothing can run: with the clock paused, jump to the next timer rather
                    // than sleep, unless a blocking job could still wake someone. The job count
                    // first, then the remote queue: a job pushes its wake-up before it leaves
                    // the count, so a finished job's wake-up is seen here. I/O that is ready
                    // now (or completes as it is submitted) comes first too: the driver is
                    // polled without sleeping, and any task it wakes runs before time moves.
                    self.shared.parker.poll_driver();
                    if self.has_work() || signal.woken.load(Acquire) {
                        continue;
                    }
                    if self.shared.blocking_inflight.load(Acquire) == 0
                        && self.shared.injector.is_empty()
                        && time.auto_advance()
                    {
                        continue;
                    }
                    self.check_deadlock(&mut main, &signal);
                    self.shared.parker.park();
                } else {
                    self.check_deadlock(&mut main, &signal);
                    match time.plan_park(None) {
                        Some(t) => self.shared.parker.park_timeout(t),
                        None => self.shared.parker.park(),
                    }
                    let _ = time.after_park(None);
                }
            }
        }
    }

    /// About to park with nothing to run: if nothing can ever wake a task again, report it.
    fn check_deadlock(&self, main: &mut deadlock::Main, signal: &MainSignal) {
        // This thread is the runtime's only one besides its blocking pool.
        if main.reported || signal.woken.load(SeqCst) || !self.shared.nothing_can_wake(1) {
            return;
        }
        if let Some(report) = deadlock::scan(self.owner, main) {
            main.reported = true;
            self.shared.watch.act(report);
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
        let next = core.queue.pop_front();
        let cap = core.queue.capacity();
        if cap > QUEUE_KEEP && core.queue.len() < cap / 4 {
            // A burst of spawns grew the queue; as it drains, give the memory back (halving at
            // a quarter full keeps the copying amortised, as `Vec` growth does).
            core.queue.shrink_to(cap / 2);
        }
        next
    }

    /// Whether a task is queued (timers fired just now may have queued some).
    fn has_work(&self) -> bool {
        let core = self.core.borrow();
        !core.queue.is_empty() || core.lifo.is_some()
    }

    /// Moves remote messages into the local queue. Returns whether there were any.
    fn pull_remote(&self) -> bool {
        let mut any = false;
        while let Some(m) = self.shared.injector.pop() {
            any = true;
            match m {
                Remote::Run(k) => self.core.borrow_mut().queue.push_back(k),
                Remote::Free(k) => exec::free_if_released(self, self.owner, k),
            }
        }
        any
    }

    /// Queues a task woken on this thread.
    pub(crate) fn schedule_local(&self, key: u64) {
        let mut core = self.core.borrow_mut();
        if self.cx.current_task.get() != NO_TASK {
            if let Some(prev) = core.lifo.replace(key) {
                core.queue.push_back(prev);
            }
        } else {
            core.queue.push_back(key);
        }
    }

    /// Frees a slot given up by a join handle on this thread.
    pub(crate) fn free_slot(&self, key: u64, h: *mut Header) {
        exec::free_slot(self, key, h);
    }

    /// Cancels every task, drops every future and output exactly once, and frees the chunks.
    pub(crate) fn shutdown(&self) {
        // Futures and outputs are dropped under `catch_unwind`, but a user waker may still
        // panic: abort rather than unwind out of half-freed chunks.
        let _abort = exec::AbortOnUnwind::new();
        self.shared.begin_shutdown();
        let enter = context::enter(Ctx::Local(self));
        loop {
            self.pull_remote();
            let mut chunks = self.core.borrow().pool.chunks().to_vec();
            chunks.extend_from_slice(self.shared.lock_pool().chunks());
            if !exec::cancel_all(self, &chunks, |_| true) {
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
        // SAFETY: this runtime is no longer current anywhere, and `cancel_all` made no progress:
        // every task completed.
        unsafe { exec::free_chunks(chunks) };
        while self.shared.injector.pop().is_some() {}
        // I/O objects that outlived their tasks (moved out of the runtime) fail from now on.
        self.shared.io.shutdown();
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn test_reactor() -> Arc<omni_io::Reactor> {
        Arc::new(omni_io::Reactor::new(omni_io::Driver::Mio, 1).expect("a mio driver"))
    }

    #[test]
    fn the_main_waker_counts_its_arc_and_tells_a_clone_from_a_kept_copy() {
        let blocking = crate::blocking::Pool::new(1, std::time::Duration::from_secs(1));
        let signal = MainSignal::new(Shared::new(blocking, false, test_reactor(), |_| None));
        signal.woken.store(false, SeqCst);
        let w = signal.waker();
        assert_eq!(Arc::strong_count(&signal), 2);
        deadlock::begin_poll();
        let kept = deadlock::keep(&w);
        assert!(!deadlock::end_poll().0, "an omni primitive's copy is not foreign");
        assert_eq!(Arc::strong_count(&signal), 3);
        let cloned = w.clone();
        assert!(deadlock::end_poll().0, "a plain clone is foreign");
        assert_eq!(Arc::strong_count(&signal), 4);
        kept.wake_by_ref();
        assert!(signal.woken.swap(false, SeqCst));
        cloned.wake();
        assert!(signal.woken.load(SeqCst));
        drop((kept, w));
        assert_eq!(Arc::strong_count(&signal), 1, "every copy gave its count back");
    }
}
