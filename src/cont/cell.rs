//! The rendezvous cell between a suspended future and its one-shot continuation.
//!
//! A `Cont<T>` may be resumed from any thread, while the task that owns the `Suspend` future may
//! be aborted (its future dropped) at the same moment. The two sides meet in a `ContCell` whose
//! memory is *immortal*: cells are allocated in blocks that are never freed and are reused
//! through free lists, so a continuation can always read its cell's state word, even long after
//! the suspension ended. The word holds a generation (odd while armed) and a phase, so a stale
//! continuation fails its compare-and-swap instead of touching a newer suspension.
//!
//! Phases and who may move between them:
//!
//! ```text
//! WAITING --resume/drop (Cont)--> WRITING --> RESUMED | ABANDONED   (Cont side)
//! WAITING --poll with a new waker--> UPDATING --> WAITING           (future side)
//! WAITING | RESUMED | ABANDONED --future done or dropped--> next generation (vacant)
//! ```
//!
//! While the phase is `WRITING` the continuation owns the waker field and the value slot inside
//! the pinned future; the future's destructor waits (spins) for it to finish, which takes a
//! handful of instructions. While `UPDATING`, the future owns the waker field and the
//! continuation waits. In every other phase the future owns both. Memory held: one cell (40
//! bytes) per suspension alive at the peak; no allocation per suspend or resume in steady state.

use crate::loom::{AtomicU64, Backoff, Ordering::*};
use std::cell::{RefCell, UnsafeCell};
use std::sync::Mutex;
use std::task::Waker;

pub(crate) const WAITING: u32 = 1;
pub(crate) const WRITING: u32 = 2;
pub(crate) const UPDATING: u32 = 3;
pub(crate) const RESUMED: u32 = 4;
pub(crate) const ABANDONED: u32 = 5;

/// Generations past this retire the cell instead of wrapping.
const GEN_RETIRE: u32 = u32::MAX - 2;

pub(crate) struct ContCell {
    state: AtomicU64,
    waker: UnsafeCell<Option<Waker>>,
    value: UnsafeCell<*mut ()>,
}

// SAFETY: the waker and value fields are accessed only by the side that owns them under the
// phase protocol above, with acquire/release transitions on `state` between owners.
unsafe impl Sync for ContCell {}
// SAFETY: as above.
unsafe impl Send for ContCell {}

fn word(gen: u32, phase: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(phase)
}

/// The outcome of [`ContCell::finish`].
pub(crate) enum Finish {
    /// The continuation side now owns the value slot and waker: write, then [`ContCell::publish`].
    Won,
    /// The suspension is gone or already finished: hand the value back.
    Lost,
}

impl ContCell {
    pub(crate) fn new() -> ContCell {
        ContCell {
            state: AtomicU64::new(0),
            waker: UnsafeCell::new(None),
            value: UnsafeCell::new(std::ptr::null_mut()),
        }
    }

    /// Future side: arms a vacant cell with the value slot and waker. Returns the generation.
    ///
    /// # Safety
    ///
    /// The cell is vacant and was handed to the caller by [`alloc`]; `value` points to an
    /// `UnsafeCell<Option<T>>` inside a pinned future that calls [`ContCell::release`] before it
    /// goes away.
    pub(crate) unsafe fn arm(&self, value: *mut (), waker: Waker) -> u32 {
        let gen = (self.state.load(Relaxed) >> 32) as u32 + 1;
        // SAFETY: the cell is vacant and ours (caller's contract): nobody else reads the fields.
        unsafe {
            *self.value.get() = value;
            *self.waker.get() = Some(waker);
        }
        self.state.store(word(gen, WAITING), Release);
        gen
    }

    /// The phase, if the cell is still at generation `gen`.
    pub(crate) fn phase(&self, gen: u32) -> Option<u32> {
        let w = self.state.load(Acquire);
        ((w >> 32) as u32 == gen).then_some(w as u32)
    }

    /// Future side: makes `waker` the one to wake, if the phase is still `WAITING`. Returns
    /// false if the continuation finished meanwhile. No user code runs while the cell is
    /// `UPDATING`: the waker is cloned before and the old one dropped after.
    pub(crate) fn update_waker(&self, gen: u32, waker: &Waker) -> bool {
        let new = waker.clone();
        let mut backoff = Backoff::default();
        loop {
            match self.state.compare_exchange(
                word(gen, WAITING),
                word(gen, UPDATING),
                Acquire,
                Acquire,
            ) {
                Ok(_) => {
                    // SAFETY: UPDATING gives the future side the waker field.
                    let slot = unsafe { &mut *self.waker.get() };
                    // `will_wake` compares data and vtable pointers: no user code.
                    let old = if slot.as_ref().is_some_and(|w| w.will_wake(&new)) {
                        Some(new)
                    } else {
                        slot.replace(new)
                    };
                    self.state.store(word(gen, WAITING), Release);
                    drop(old);
                    return true;
                }
                Err(w) if w as u32 == WRITING => backoff.snooze(),
                Err(_) => return false,
            }
        }
    }

    /// Continuation side: claims the cell to resume or abandon it.
    pub(crate) fn finish(&self, gen: u32) -> Finish {
        let mut backoff = Backoff::default();
        loop {
            match self.state.compare_exchange(
                word(gen, WAITING),
                word(gen, WRITING),
                Acquire,
                Acquire,
            ) {
                Ok(_) => return Finish::Won,
                Err(w) if (w >> 32) as u32 == gen && w as u32 == UPDATING => backoff.snooze(),
                Err(_) => return Finish::Lost,
            }
        }
    }

    /// Continuation side, after [`Finish::Won`]: the value slot to write.
    ///
    /// # Safety
    ///
    /// Only between `Won` and `publish`.
    pub(crate) unsafe fn value_slot(&self) -> *mut () {
        // SAFETY: WRITING gives the continuation side the value field (caller's contract).
        unsafe { *self.value.get() }
    }

    /// Continuation side, after [`Finish::Won`]: publishes `phase` (`RESUMED` or `ABANDONED`)
    /// and wakes the suspended task.
    ///
    /// # Safety
    ///
    /// Only once, after `Won`.
    pub(crate) unsafe fn publish(&self, gen: u32, phase: u32) {
        // SAFETY: WRITING gives the continuation side the waker field (caller's contract).
        let waker = unsafe { (*self.waker.get()).take() };
        self.state.store(word(gen, phase), Release);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Future side, when the future completes or is dropped: waits out a continuation in the
    /// middle of `WRITING`, then vacates the cell (next generation) and returns it to the pool.
    /// Returns the phase it ended in and whether the cell may be reused (else it is retired).
    ///
    /// # Safety
    ///
    /// Called once, by the future side that armed the cell at `gen`.
    pub(crate) unsafe fn release(&self, gen: u32) -> (u32, bool) {
        let mut w = self.state.load(Acquire);
        let mut backoff = Backoff::default();
        loop {
            let phase = w as u32;
            debug_assert_eq!((w >> 32) as u32, gen, "release of a cell armed by someone else");
            if phase == WRITING || phase == UPDATING {
                backoff.snooze();
                w = self.state.load(Acquire);
                continue;
            }
            match self.state.compare_exchange(w, word(gen + 1, 0), AcqRel, Acquire) {
                Ok(_) => {
                    // SAFETY: the cell is vacant again and the continuation can no longer win
                    // it (its generation is stale), so the fields are ours.
                    drop(unsafe { (*self.waker.get()).take() });
                    return (phase, gen + 1 < GEN_RETIRE);
                }
                Err(now) => w = now,
            }
        }
    }
}

/// Cells freed by threads that exited, for other threads to reuse.
static GLOBAL: Mutex<Vec<&'static ContCell>> = Mutex::new(Vec::new());
const BLOCK: usize = 64;

struct LocalCells(Vec<&'static ContCell>);

impl Drop for LocalCells {
    fn drop(&mut self) {
        if let Ok(mut g) = GLOBAL.lock() {
            g.append(&mut self.0);
        }
    }
}

thread_local! {
    static LOCAL: RefCell<LocalCells> = const { RefCell::new(LocalCells(Vec::new())) };
}

/// A vacant cell from this thread's free list, the global one, or a new block.
pub(crate) fn alloc() -> &'static ContCell {
    let local = LOCAL.try_with(|l| l.borrow_mut().0.pop()).ok().flatten();
    if let Some(c) = local {
        return c;
    }
    let mut batch: Vec<&'static ContCell> = {
        let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
        let n = g.len().saturating_sub(BLOCK);
        g.split_off(n)
    };
    if batch.is_empty() {
        let block: &'static [ContCell] = Box::leak((0..BLOCK).map(|_| ContCell::new()).collect());
        batch = block.iter().collect();
    }
    let c = batch.pop().expect("non-empty batch");
    let leftover = LOCAL.try_with(|l| l.borrow_mut().0.append(&mut batch));
    if leftover.is_err() {
        // The thread is exiting: give the batch back for other threads.
        GLOBAL.lock().unwrap_or_else(|e| e.into_inner()).append(&mut batch);
    }
    c
}

/// Returns a vacant cell to this thread's free list.
pub(crate) fn free(c: &'static ContCell) {
    if LOCAL.try_with(|l| l.borrow_mut().0.push(c)).is_err() {
        GLOBAL.lock().unwrap_or_else(|e| e.into_inner()).push(c);
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    fn noop_waker() -> Waker {
        Waker::noop().clone()
    }

    /// A resume racing the future's drop: either the resume wins and its value is in the slot
    /// when `release` returns, or it loses and gets its value back. Never both, never neither.
    #[test]
    fn loom_resume_vs_drop() {
        loom::model(|| {
            let cell = Arc::new(ContCell::new());
            let slot = Arc::new(std::sync::Mutex::new(None::<u32>));
            let slot_ptr = &*slot as *const std::sync::Mutex<Option<u32>> as *mut ();
            // SAFETY: a fresh cell; the slot outlives the model iteration.
            let gen = unsafe { cell.arm(slot_ptr, noop_waker()) };
            let c2 = cell.clone();
            let s2 = slot.clone();
            let t = loom::thread::spawn(move || match c2.finish(gen) {
                Finish::Won => {
                    // SAFETY: between Won and publish.
                    let p = unsafe { c2.value_slot() } as *const std::sync::Mutex<Option<u32>>;
                    // SAFETY: the slot outlives the cell protocol (held by `s2`).
                    *unsafe { &*p }.lock().unwrap() = Some(7);
                    drop(s2);
                    // SAFETY: once, after Won.
                    unsafe { c2.publish(gen, RESUMED) };
                    true
                }
                Finish::Lost => false,
            });
            // SAFETY: the future side, once.
            let (phase, _) = unsafe { cell.release(gen) };
            let resumed = t.join().unwrap();
            assert_eq!(resumed, phase == RESUMED);
            assert_eq!(slot.lock().unwrap().is_some(), resumed);
        });
    }
}
