//! Running one task: the poll, the cancel, the completion and the freeing of its slot, shared
//! by the current-thread scheduler, the multi-thread workers and shutdown.
//!
//! Who may call these: a thread that popped the task's key from a run queue (so the state word
//! says `SCHEDULED` and `start_poll` makes it the only poller), or shutdown, which owns every
//! slot once no scheduler runs. The scheduler of that thread is the [`Exec`]: it says where a
//! task that must run again goes, and which pool takes a freed slot back.
//!
//! No scheduler borrow may be held across these calls: polling, waking a join waker and
//! dropping a future or output run user code, which may spawn or wake.

use super::deadlock;
use super::shared::Shared;
use crate::task::raw::{self, Header};
use crate::task::state::{
    End, Release, Snapshot, Start, COMPLETE, FOREIGN, JOIN_INTEREST, OUTPUT, RUNNING,
};
use crate::task::{gen_of, index_of, key, table, waker};
use std::cell::Cell;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::task::{Context, Poll};

/// The task key meaning "no task is being polled".
pub(crate) const NO_TASK: u64 = 0;

/// Per-poll state of the thread's scheduler: which task is being polled, whether it asked to
/// yield, and its remaining cooperative budget.
#[derive(Debug)]
pub(crate) struct PollCx {
    pub(crate) current_task: Cell<u64>,
    pub(crate) yielded: Cell<bool>,
    pub(crate) budget: Cell<u32>,
}

impl PollCx {
    pub(crate) fn new() -> PollCx {
        PollCx {
            current_task: Cell::new(NO_TASK),
            yielded: Cell::new(false),
            budget: Cell::new(super::coop::BUDGET),
        }
    }
}

/// What running a task needs from the scheduler of the thread that runs it.
pub(crate) trait Exec {
    /// The per-poll state.
    fn poll_cx(&self) -> &PollCx;
    /// The runtime's shared state.
    fn shared(&self) -> &Shared;
    /// Queues a task whose poll ended with [`End::Reschedule`] (woken, yielded or cancelled
    /// during the poll), at the back.
    fn requeue(&self, key: u64, h: &Header);
    /// Takes back a slot that was just vacated (now at generation `gen`); `pin` is the pin the
    /// task had.
    fn release(&self, index: u32, gen: u32, pin: u32);
}

/// The header of a task of the runtime whose owner id is `owner`, if `key`'s chunk is one of
/// its chunks and still allocated. The caller must be that runtime's thread (table rule 1).
#[inline]
pub(crate) fn header(owner: *const (), key: u64) -> Option<*mut Header> {
    let (chunk, slot) = table::split(index_of(key));
    let e = table::entry(chunk)?;
    if !e.is_owned_by(owner) {
        return None;
    }
    let h = e.owner_slot(slot) as *mut Header;
    (!h.is_null()).then_some(h)
}

/// Polls (or cancels) the task `key` at `h`, which the caller popped from its run queue.
pub(crate) fn run_task(e: &impl Exec, key: u64, h: *mut Header) {
    // SAFETY: the caller's slot, alive while its runtime runs; every slot has a header.
    let header = unsafe { &*h };
    let gen = gen_of(key);
    match header.state.start_poll(gen) {
        Start::Stale => {}
        Start::Cancel => cancel_running(e, key, h),
        Start::Poll => {
            let cx = e.poll_cx();
            cx.current_task.set(key);
            cx.yielded.set(false);
            cx.budget.set(super::coop::BUDGET);
            let waker = waker::for_key(key);
            let mut task_cx = Context::from_waker(&waker);
            deadlock::begin_poll();
            // SAFETY: `start_poll` made this thread the task's only poller; it is not complete.
            let res = unsafe { ((*header.vtable.get()).poll)(h, &mut task_cx) };
            cx.current_task.set(NO_TASK);
            match res {
                Poll::Ready(()) => complete(e, key, h, true),
                Poll::Pending => {
                    let (foreign, note) = deadlock::end_poll();
                    header.wait.store(note, Relaxed);
                    // Only the poller sets FOREIGN, so this look cannot race with another set.
                    if foreign && !header.state.load().has(FOREIGN) {
                        e.shared().watch.foreign_tasks.fetch_add(1, SeqCst);
                    }
                    if header.state.end_poll(gen, cx.yielded.get(), foreign) == End::Reschedule {
                        e.requeue(key, header);
                    }
                }
            }
        }
    }
}

/// Drops the future of a task that `start_poll` just marked running, and completes it as
/// cancelled.
#[inline]
pub(crate) fn cancel_running(e: &impl Exec, key: u64, h: *mut Header) {
    // SAFETY: the task is RUNNING under the caller and its future is live.
    let has_output = unsafe { ((*(*h).vtable.get()).cancel)(h) };
    complete(e, key, h, has_output);
}

/// The stage now holds the output: tell the join handle, or free the slot if detached.
#[inline]
fn complete(e: &impl Exec, key: u64, h: *mut Header, has_output: bool) {
    // SAFETY: a live slot that the caller is running.
    let header = unsafe { &*h };
    let gen = gen_of(key);
    let (snap, was_foreign) = header.state.complete(gen, has_output);
    if was_foreign {
        e.shared().watch.foreign_tasks.fetch_sub(1, SeqCst);
    }
    if !snap.has(RUNNING) {
        // Finished in one step: no join waker to wake. Free the slot if detached.
        if !snap.has(JOIN_INTEREST) {
            free_slot(e, key, h);
        }
        return;
    }
    // SAFETY: JOIN_WAKER was set when COMPLETE went in, so the handle no longer writes the
    // field; and RUNNING stays set until `finish_complete` below, so no thread (the handle's,
    // on a multi-thread runtime) frees the slot and drops the waker during this read. The
    // waker is cloned, and woken only after `finish_complete`: waking may re-enter (an inline
    // executor polling the handle, which frees the slot).
    let waker = unsafe { &*header.join_waker.get() }.clone();
    if header.state.finish_complete(gen) == Release::Free {
        // The handle was dropped while the task completed.
        free_slot(e, key, h);
    }
    if let Some(w) = waker {
        w.wake();
    }
}

/// Drops the stage (output) of a completed task and gives the slot back to a pool (see
/// `raw::vacate_and_drop` for why the slot is vacated before any destructor runs).
#[inline]
pub(crate) fn free_slot(e: &impl Exec, key: u64, h: *mut Header) {
    // SAFETY: a completed slot with no join interest left: nobody else touches it.
    let pin = unsafe { &*h }.state.load().pin();
    // SAFETY: as above.
    let gen = unsafe { raw::vacate_and_drop(h) };
    e.release(index_of(key), gen, pin);
}

/// Frees the slot of `key` if its task completed and no join handle holds it any more (a
/// `Remote::Free` message).
pub(crate) fn free_if_released(e: &impl Exec, owner: *const (), key: u64) {
    let Some(h) = header(owner, key) else { return };
    // SAFETY: own chunk, alive while the runtime runs.
    let s = unsafe { &*h }.state.load();
    if s.generation() == gen_of(key) && s.has(COMPLETE) && !s.has(JOIN_INTEREST) && !s.has(RUNNING)
    {
        free_slot(e, key, h);
    }
}

/// Calls `f(key, header pointer, state)` for every occupied slot of `chunks` whose pin `keep`
/// accepts. Returns whether `f` reported progress for any.
fn scan(
    chunks: &[u32],
    keep: impl Fn(u32) -> bool,
    mut f: impl FnMut(u64, *mut Header, Snapshot) -> bool,
) -> bool {
    let mut progressed = false;
    for &chunk in chunks {
        let entry = table::entry(chunk).expect("own chunk");
        for slot in 0..table::SLOTS_PER_CHUNK {
            let h = entry.owner_slot(slot) as *mut Header;
            // SAFETY: own chunk, alive while the runtime runs.
            let s = unsafe { &*h }.state.load();
            if s.generation() % 2 == 1 && keep(s.pin()) {
                let index = (chunk << table::SLOT_BITS) | slot as u32;
                progressed |= f(key(index, s.generation()), h, s);
            }
        }
    }
    progressed
}

/// Cancels every live task in `chunks` whose pin `keep` accepts: each future is dropped once,
/// on this thread. Returns whether any task was cancelled (dropping a future may wake or free
/// others, so callers repeat until nothing changes).
pub(crate) fn cancel_all(e: &impl Exec, chunks: &[u32], keep: impl Fn(u32) -> bool) -> bool {
    scan(chunks, keep, |key, h, s| {
        // SAFETY: own chunk, alive while the runtime runs.
        let state = &unsafe { &*h }.state;
        if s.has(COMPLETE) || state.start_poll(s.generation()) == Start::Stale {
            return false;
        }
        cancel_running(e, key, h);
        true
    })
}

/// Drops, on this thread, the outputs still stored in completed slots of `chunks` whose pin
/// `keep` accepts (a worker's pinned tasks at shutdown: their outputs may be `!Send`). Each
/// output is claimed first, so a join handle reading it at the same moment gets it instead.
/// Returns whether any output was dropped.
pub(crate) fn drop_outputs(chunks: &[u32], keep: impl Fn(u32) -> bool) -> bool {
    scan(chunks, keep, |_, h, s| {
        // SAFETY: own chunk, alive while the runtime runs.
        let header = unsafe { &*h };
        if !s.has(COMPLETE | OUTPUT) || !header.state.claim_output() {
            return false;
        }
        // SAFETY: we claimed the output, and the slot is not freed while it is occupied by a
        // completed task with its output claimed here (freeing needs this runtime's thread,
        // which is us, or the chunk unpublished, which waits for us).
        unsafe { ((*header.vtable.get()).drop_output)(h) };
        true
    })
}

/// Unpublishes and frees `chunks`, dropping what their slots still hold (outputs nobody took).
///
/// # Safety
///
/// The chunks belong to a runtime that is no longer current on any thread and whose tasks
/// all completed ([`cancel_all`] made no progress).
pub(crate) unsafe fn free_chunks(chunks: Vec<u32>) {
    for chunk in chunks {
        // SAFETY: the runtime's chunk; it is no longer current anywhere (caller's contract).
        let base = unsafe { table::unpublish(chunk) };
        let mut max_gen = 0;
        for slot in 0..table::SLOTS_PER_CHUNK {
            // SAFETY: `base` is the unpublished chunk's memory, still allocated.
            let h = unsafe { table::slot_of_unpublished(chunk, base, slot) } as *mut Header;
            // SAFETY: nobody else can reach the chunk any more.
            let mut gen = unsafe { &*h }.state.load().generation();
            if gen % 2 == 1 {
                // SAFETY: every task completed (caller's contract), and the chunk is
                // unpublished, so the slot is exclusively ours.
                gen = unsafe { raw::vacate_and_drop(h) };
            }
            max_gen = max_gen.max(gen);
        }
        // SAFETY: every slot is vacant with its stage dropped.
        unsafe { table::free_chunk(chunk, base, max_gen) };
    }
}

/// Aborts the process if a panic starts while this guard lives (see its uses: unwinding out of
/// a half-done shutdown would leave chunks published with an owner about to be freed). A
/// runtime dropped while the thread is already unwinding is shut down normally.
pub(crate) struct AbortOnUnwind(bool);

impl AbortOnUnwind {
    pub(crate) fn new() -> AbortOnUnwind {
        AbortOnUnwind(std::thread::panicking())
    }
}

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.0 {
            eprintln!("omni: a panic escaped runtime shutdown (a waker panicked); aborting");
            std::process::abort();
        }
    }
}
