//! The task state word: a generation and a set of flags in one `AtomicU64`.
//!
//! Every slot of the task region carries one of these. The high 32 bits are the slot's
//! *generation* (odd while a task occupies the slot, even while it is vacant, as in slotmap's
//! `KeyData`); the low 32 bits are the flags below. Because the generation and the flags live in
//! one word, every transition checks "is this still the task my key names?" and changes the
//! flags in the same compare-and-swap: a waker whose task finished and whose slot now holds a
//! newer task fails the generation check and does nothing. That is the defence against
//! run-after-completion and wakers that resurrect finished tasks.
//!
//! Who may do what:
//! - any thread: [`State::wake`], [`State::cancel`], the join-waker transitions (through the
//!   `JoinHandle`), and reading the word;
//! - the owning scheduler only: [`State::start_poll`], [`State::end_poll`], [`State::complete`],
//!   [`State::occupy`] and [`State::vacate`], and everything that touches the future or the output.
//!
//! Transitions return enums that say what the caller must do next, never bare booleans.

use crate::loom::{AtomicU64, Ordering};
use std::fmt;

/// The task's key sits in a run queue (or is about to be polled). At most one queue entry exists
/// per task, so a task is never polled twice for one wake.
pub(crate) const SCHEDULED: u32 = 1 << 0;
/// The owning scheduler is polling the future right now, or completing it: `RUNNING` stays
/// set from [`State::complete`] until [`State::finish_complete`], so no other thread frees the
/// slot (and drops the join waker) while the completer still reads the join waker.
pub(crate) const RUNNING: u32 = 1 << 1;
/// Woken while `RUNNING`: the scheduler puts the task back in the queue when the poll returns.
pub(crate) const NOTIFIED: u32 = 1 << 2;
/// The future is gone: the stage holds the output (or nothing, for a cancelled task).
pub(crate) const COMPLETE: u32 = 1 << 3;
/// `abort()` was called: the next poll drops the future instead of polling it.
pub(crate) const CANCELLED: u32 = 1 << 4;
/// A `JoinHandle` is alive: the slot is kept after completion until the handle takes the output.
pub(crate) const JOIN_INTEREST: u32 = 1 << 5;
/// The join waker field holds a waker, and the scheduler owns it (the handle may not write it).
pub(crate) const JOIN_WAKER: u32 = 1 << 6;
/// With `COMPLETE`: the stage holds an output (a value or a panic) not yet taken. Kept as a
/// bit rather than an `Option` in the stage so a zero-sized task fits the smallest class.
pub(crate) const OUTPUT: u32 = 1 << 7;
/// Something other than an omni primitive of this runtime may wake the task: a poll cloned its
/// waker, or registered it with a primitive that can be completed from outside (see
/// `rt/deadlock.rs`). Set by the poller in [`State::end_poll`], kept until completion; a
/// deadlock check never reports such a task's runtime.
pub(crate) const FOREIGN: u32 = 1 << 8;

/// The flag bits from here up hold a *pin*: `worker index + 1` for a task spawned with
/// `spawn_local` on a multi-thread runtime, which only that worker may poll or drop; 0 for a task
/// any worker may run. Written once by [`State::occupy`]; no transition changes it.
pub(crate) const PIN_SHIFT: u32 = 16;
/// The largest pin (so at most this many workers).
pub(crate) const MAX_PIN: u32 = (1 << (32 - PIN_SHIFT)) - 1;

const FLAGS: u64 = 0xffff_ffff;

/// A decoded copy of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(u64);

impl Snapshot {
    /// The slot generation.
    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// Whether every bit of `flag` is set.
    pub(crate) fn has(self, flag: u32) -> bool {
        (self.0 as u32) & flag == flag
    }
    fn flags(self) -> u32 {
        self.0 as u32
    }
    /// The pin: `worker index + 1` for a task bound to one worker, 0 for any worker.
    pub(crate) fn pin(self) -> u32 {
        self.flags() >> PIN_SHIFT
    }
    fn with(self, set: u32, clear: u32) -> Snapshot {
        Snapshot((self.0 & !FLAGS) | u64::from((self.flags() | set) & !clear))
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 9] = [
            (SCHEDULED, "SCHEDULED"),
            (RUNNING, "RUNNING"),
            (NOTIFIED, "NOTIFIED"),
            (COMPLETE, "COMPLETE"),
            (CANCELLED, "CANCELLED"),
            (JOIN_INTEREST, "JOIN_INTEREST"),
            (JOIN_WAKER, "JOIN_WAKER"),
            (OUTPUT, "OUTPUT"),
            (FOREIGN, "FOREIGN"),
        ];
        write!(f, "State {{ gen: {}, ", self.generation())?;
        if self.pin() != 0 {
            write!(f, "pinned to worker {}, ", self.pin() - 1)?;
        }
        f.write_str("flags: ")?;
        let mut first = true;
        for (bit, name) in NAMES {
            if self.has(bit) {
                write!(f, "{}{}", if first { "" } else { "|" }, name)?;
                first = false;
            }
        }
        if first {
            f.write_str("IDLE")?;
        }
        f.write_str(" }")
    }
}

/// What a wake asks of the waker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The task was idle and is now `SCHEDULED`: the caller must push its key to a run queue.
    Schedule,
    /// Nothing to do: already queued, running (now `NOTIFIED`), complete, or a stale key.
    Nothing,
}

/// The outcome of [`State::start_poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Poll the future.
    Poll,
    /// `abort()` was called: drop the future and complete as cancelled.
    Cancel,
    /// The key is stale or the task already completed: do nothing.
    Stale,
}

/// The outcome of [`State::end_poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Nobody woke the task: it waits for a waker.
    Idle,
    /// Woken (or cancelled, or yielded) during the poll: push it to the back of the queue.
    Reschedule,
}

/// The outcome of [`State::drop_join_interest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// The task completed earlier: the handle's owner must free the slot (and drop the output).
    Free,
    /// The task is still alive: it frees its own slot when it completes.
    Detached,
    /// The key is stale (the runtime was dropped): nothing to do.
    Stale,
}

/// The state word of one task slot.
pub(crate) struct State(AtomicU64);

impl State {
    /// A vacant slot with generation `gen` (even).
    pub(crate) fn vacant(gen: u32) -> State {
        debug_assert!(gen % 2 == 0);
        State(AtomicU64::new(u64::from(gen) << 32))
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Acquire))
    }

    /// Applies `f` to the word while the generation is `gen`; `f` returns the new word and a
    /// result, or `Err` to stop without writing.
    #[inline]
    fn update<R>(&self, gen: u32, mut f: impl FnMut(Snapshot) -> Result<(Snapshot, R), R>) -> R {
        let mut cur = self.load();
        loop {
            // An even generation never names a task (it marks a vacant slot, or a refused
            // handle's key).
            if cur.generation() != gen || gen % 2 == 0 {
                // The caller passes a fallback through `f` for a stale key.
                return match f(Snapshot(u64::MAX)) {
                    Ok((_, r)) | Err(r) => r,
                };
            }
            match f(cur) {
                Err(r) => return r,
                Ok((next, r)) => {
                    match self.0.compare_exchange_weak(
                        cur.0,
                        next.0,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return r,
                        Err(actual) => cur = Snapshot(actual),
                    }
                }
            }
        }
    }

    /// Marks a vacant slot occupied by a new task that is scheduled and has a join handle,
    /// pinned to `pin` (see [`PIN_SHIFT`]; 0 for none). Returns the new generation. Owner only;
    /// the slot must be vacant.
    pub(crate) fn occupy(&self, pin: u32) -> u32 {
        let cur = self.load();
        debug_assert!(cur.generation() % 2 == 0, "occupy of an occupied slot: {cur:?}");
        debug_assert!(pin <= MAX_PIN);
        let gen = cur.generation().wrapping_add(1);
        self.0.store(
            (u64::from(gen) << 32) | u64::from(SCHEDULED | JOIN_INTEREST | (pin << PIN_SHIFT)),
            Ordering::Release,
        );
        gen
    }

    /// Marks the slot vacant with the next (even) generation, so every outstanding key for the
    /// old task reads as stale. Owner only, after the stage was dropped.
    pub(crate) fn vacate(&self) -> u32 {
        let gen = self.load().generation().wrapping_add(1);
        self.0.store(u64::from(gen) << 32, Ordering::Release);
        gen
    }

    /// Test hook: jumps the slot to generation `gen` (to reach retirement without 2^32 spawns).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn set_generation_for_test(&self, gen: u32) {
        let flags = self.0.load(Ordering::Relaxed) & FLAGS;
        self.0.store((u64::from(gen) << 32) | flags, Ordering::Release);
    }

    /// A waker fired.
    #[inline]
    pub(crate) fn wake(&self, gen: u32) -> Wake {
        self.update(gen, |s| {
            if s.0 == u64::MAX || s.has(COMPLETE) || s.has(SCHEDULED) || s.has(NOTIFIED) {
                Err(Wake::Nothing)
            } else if s.has(RUNNING) {
                Ok((s.with(NOTIFIED, 0), Wake::Nothing))
            } else {
                Ok((s.with(SCHEDULED, 0), Wake::Schedule))
            }
        })
    }

    /// `abort()`: set `CANCELLED` and schedule the task if it is idle.
    pub(crate) fn cancel(&self, gen: u32) -> Wake {
        self.update(gen, |s| {
            if s.0 == u64::MAX || s.has(COMPLETE) || s.has(CANCELLED) {
                Err(Wake::Nothing)
            } else if s.has(RUNNING) || s.has(SCHEDULED) {
                Ok((s.with(CANCELLED, 0), Wake::Nothing))
            } else {
                Ok((s.with(CANCELLED | SCHEDULED, 0), Wake::Schedule))
            }
        })
    }

    /// The scheduler popped the task's key and is about to poll it.
    #[inline]
    pub(crate) fn start_poll(&self, gen: u32) -> Start {
        self.update(gen, |s| {
            // RUNNING here would mean a poll unwound half-way; never touch such a task again.
            if s.0 == u64::MAX || s.has(COMPLETE) || s.has(RUNNING) {
                debug_assert!(s.0 == u64::MAX || !s.has(RUNNING), "start_poll of a running task");
                return Err(Start::Stale);
            }
            let next = s.with(RUNNING, SCHEDULED | NOTIFIED);
            Ok((next, if s.has(CANCELLED) { Start::Cancel } else { Start::Poll }))
        })
    }

    /// The poll returned `Pending`. `yielded` asks for a reschedule regardless of wakers;
    /// `foreign` sets [`FOREIGN`].
    #[inline]
    pub(crate) fn end_poll(&self, gen: u32, yielded: bool, foreign: bool) -> End {
        let mark = if foreign { FOREIGN } else { 0 };
        self.update(gen, |s| {
            debug_assert!(s.has(RUNNING), "end_poll of a task not running: {s:?}");
            if yielded || s.has(NOTIFIED) || s.has(CANCELLED) {
                Ok((s.with(SCHEDULED | mark, RUNNING | NOTIFIED), End::Reschedule))
            } else {
                Ok((s.with(mark, RUNNING), End::Idle))
            }
        })
    }

    /// The future finished (or was dropped by a cancel); the stage now holds the output if
    /// `has_output`. Returns the state after the transition, for the caller to read
    /// `JOIN_INTEREST` and `JOIN_WAKER`, and whether the task was [`FOREIGN`] (cleared here).
    #[inline]
    pub(crate) fn complete(&self, gen: u32, has_output: bool) -> (Snapshot, bool) {
        let out = if has_output { OUTPUT } else { 0 };
        self.update(gen, |s| {
            // With a join waker to read, RUNNING stays until `finish_complete`, so nobody frees
            // the slot during the read. Without one (none can be registered after COMPLETE),
            // the completion is finished in this one step.
            let done = if s.has(JOIN_INTEREST | JOIN_WAKER) { 0 } else { RUNNING };
            let next = s.with(COMPLETE | out, NOTIFIED | SCHEDULED | FOREIGN | done);
            Ok((next, (next, s.has(FOREIGN))))
        })
    }

    /// The completer is done with the join waker: clears `RUNNING`. Returns `Free` if the join
    /// handle already gave up its interest, in which case the completer frees the slot.
    #[inline]
    pub(crate) fn finish_complete(&self, gen: u32) -> Release {
        self.update(gen, |s| {
            if s.0 == u64::MAX {
                return Err(Release::Stale);
            }
            debug_assert!(s.has(COMPLETE | RUNNING), "finish_complete of {s:?}");
            let r = if s.has(JOIN_INTEREST) { Release::Detached } else { Release::Free };
            Ok((s.with(0, RUNNING), r))
        })
    }

    /// Claims the output of a completed task (clears `OUTPUT`). Returns whether it was there:
    /// exactly one claimant (the join handle, or a worker dropping a pinned output at shutdown)
    /// then owns it. The caller observed `COMPLETE` for its generation.
    #[inline]
    pub(crate) fn claim_output(&self) -> bool {
        // No generation check is needed: both claimants keep the slot from being freed (the
        // join handle holds its interest; a worker frees its pinned slots itself).
        let prev = Snapshot(self.0.fetch_and(!u64::from(OUTPUT), Ordering::AcqRel));
        prev.has(COMPLETE | OUTPUT)
    }

    /// The join handle stores a waker: sets `JOIN_WAKER`. Fails (returning the snapshot) if the
    /// task completed meanwhile, in which case the handle reads the output instead.
    pub(crate) fn set_join_waker(&self, gen: u32) -> Result<(), Snapshot> {
        self.update(gen, |s| {
            if s.0 == u64::MAX || s.has(COMPLETE) {
                Err(Err(s))
            } else {
                Ok((s.with(JOIN_WAKER, 0), Ok(())))
            }
        })
    }

    /// The join handle wants to replace its waker: clears `JOIN_WAKER` so it may write the field.
    /// Fails if the task completed meanwhile.
    pub(crate) fn unset_join_waker(&self, gen: u32) -> Result<(), Snapshot> {
        self.update(gen, |s| {
            if s.0 == u64::MAX || s.has(COMPLETE) {
                Err(Err(s))
            } else {
                Ok((s.with(0, JOIN_WAKER), Ok(())))
            }
        })
    }

    /// The join handle is dropped (or has taken the output).
    #[inline]
    pub(crate) fn drop_join_interest(&self, gen: u32) -> Release {
        self.update(gen, |s| {
            if s.0 == u64::MAX {
                return Err(Release::Stale);
            }
            // A completer still at work (RUNNING) frees the slot itself in `finish_complete`.
            let r =
                if s.has(COMPLETE) && !s.has(RUNNING) { Release::Free } else { Release::Detached };
            Ok((s.with(0, JOIN_INTEREST), r))
        })
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.load().fmt(f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn foreign_is_kept_until_completion_reports_it() {
        let s = State::vacant(0);
        let g = s.occupy(0);
        assert_eq!(s.start_poll(g), Start::Poll);
        assert_eq!(s.end_poll(g, false, true), End::Idle);
        assert!(s.load().has(FOREIGN));
        assert_eq!(s.wake(g), Wake::Schedule);
        assert_eq!(s.start_poll(g), Start::Poll);
        assert_eq!(s.end_poll(g, false, false), End::Idle);
        assert!(s.load().has(FOREIGN), "a later quiet poll does not clear it");
        assert_eq!(s.wake(g), Wake::Schedule);
        assert_eq!(s.start_poll(g), Start::Poll);
        let (snap, was) = s.complete(g, false);
        assert!(was, "completion reports the mark so the runtime's count goes down once");
        assert!(!snap.has(FOREIGN));
    }

    #[test]
    fn lifecycle_and_stale_generation() {
        let s = State::vacant(0);
        let g = s.occupy(0);
        assert_eq!(g, 1);
        assert_eq!(s.start_poll(g), Start::Poll);
        assert_eq!(s.wake(g), Wake::Nothing, "a wake while running only notifies");
        assert!(s.load().has(NOTIFIED));
        assert_eq!(s.end_poll(g, false, false), End::Reschedule);
        assert_eq!(s.wake(g), Wake::Nothing, "already scheduled");
        assert_eq!(s.start_poll(g), Start::Poll);
        assert_eq!(s.end_poll(g, false, false), End::Idle);
        assert_eq!(s.wake(g), Wake::Schedule);
        assert_eq!(s.start_poll(g), Start::Poll);
        let (snap, _) = s.complete(g, true);
        assert!(snap.has(COMPLETE | JOIN_INTEREST));
        assert_eq!(s.wake(g), Wake::Nothing, "no wake after completion");
        assert!(!snap.has(RUNNING), "no join waker to read: completion is one step");
        assert!(s.claim_output());
        assert!(!s.claim_output(), "an output is claimed once");
        assert_eq!(s.drop_join_interest(g), Release::Free);
        let g2 = s.vacate();
        assert_eq!(g2, 2);
        let g3 = s.occupy(0);
        assert_eq!(s.wake(g), Wake::Nothing, "stale key does not touch the new task");
        assert_eq!(s.start_poll(g), Start::Stale);
        assert_eq!(s.load().generation(), g3);
        assert!(format!("{:?}", s).contains("SCHEDULED|JOIN_INTEREST"));
    }

    #[test]
    fn cancel_schedules_idle_task_once() {
        let s = State::vacant(4);
        let g = s.occupy(0);
        assert_eq!(s.start_poll(g), Start::Poll);
        assert_eq!(s.end_poll(g, false, false), End::Idle);
        assert_eq!(s.cancel(g), Wake::Schedule);
        assert_eq!(s.cancel(g), Wake::Nothing);
        assert_eq!(s.start_poll(g), Start::Cancel);
    }

    #[test]
    fn join_waker_fails_after_completion() {
        let s = State::vacant(0);
        let g = s.occupy(0);
        assert_eq!(s.set_join_waker(g), Ok(()));
        assert_eq!(s.unset_join_waker(g), Ok(()));
        s.start_poll(g);
        s.complete(g, true);
        assert!(s.set_join_waker(g).is_err());
        assert_eq!(s.drop_join_interest(g + 2), Release::Stale);
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// A remote wake racing the owner's poll: the task is queued again exactly once, so the
    /// wake is neither lost nor doubled.
    #[test]
    fn loom_wake_during_poll_is_not_lost() {
        loom::model(|| {
            let s = Arc::new(State::vacant(0));
            let g = s.occupy(0);
            assert_eq!(s.start_poll(g), Start::Poll);
            let s2 = s.clone();
            let t = loom::thread::spawn(move || s2.wake(g));
            let end = s.end_poll(g, false, false);
            let woke = t.join().unwrap();
            let queued = (end == End::Reschedule) as u32 + (woke == Wake::Schedule) as u32;
            assert_eq!(queued, 1, "exactly one queue entry after one wake");
        });
    }

    /// Completion racing a join handle registering its waker: either the handle sees
    /// `COMPLETE`, or the scheduler sees `JOIN_WAKER` and wakes it. Never neither.
    #[test]
    fn loom_join_waker_vs_complete() {
        loom::model(|| {
            let s = Arc::new(State::vacant(0));
            let g = s.occupy(0);
            s.start_poll(g);
            let s2 = s.clone();
            let t = loom::thread::spawn(move || s2.set_join_waker(g).is_ok());
            let (snap, _) = s.complete(g, true);
            let registered = t.join().unwrap();
            if registered {
                assert!(snap.has(JOIN_WAKER), "a registered waker must be seen by completion");
            }
        });
    }

    /// A completer reading the join waker while the join handle is dropped on another thread
    /// (a multi-thread runtime): exactly one of them frees the slot, and only after the
    /// completer's read. loom flags the free (a write of the waker cell) racing the read.
    #[test]
    fn loom_complete_vs_join_handle_drop_on_another_thread() {
        use loom::cell::UnsafeCell;
        loom::model(|| {
            let s = Arc::new(State::vacant(0));
            let waker_cell = Arc::new(UnsafeCell::new(7u32));
            let g = s.occupy(0);
            assert_eq!(s.set_join_waker(g), Ok(()));
            s.start_poll(g);
            let (s2, cell2) = (s.clone(), waker_cell.clone());
            let handle = loom::thread::spawn(move || {
                if s2.drop_join_interest(g) == Release::Free {
                    // SAFETY (model): `Free` grants exclusive access to the slot.
                    cell2.with_mut(|p| unsafe { *p = 0 });
                    return true;
                }
                false
            });
            let (snap, _) = s.complete(g, true);
            if snap.has(JOIN_INTEREST | JOIN_WAKER) {
                // SAFETY (model): RUNNING keeps the slot from being freed during this read.
                let w = waker_cell.with(|p| unsafe { *p });
                assert_eq!(w, 7, "the waker was freed under the completer");
            }
            let completer_frees = s.finish_complete(g) == Release::Free;
            if completer_frees {
                // SAFETY (model): as above.
                waker_cell.with_mut(|p| unsafe { *p = 0 });
            }
            let handle_freed = handle.join().unwrap();
            assert_eq!(u32::from(completer_frees) + u32::from(handle_freed), 1, "freed once");
        });
    }

    /// A join handle and a worker at shutdown both try to claim a completed task's output:
    /// exactly one gets it (the other must not read or drop it).
    #[test]
    fn loom_output_is_claimed_once() {
        loom::model(|| {
            let s = Arc::new(State::vacant(0));
            let g = s.occupy(0);
            s.start_poll(g);
            s.complete(g, true);
            let s2 = s.clone();
            let t = loom::thread::spawn(move || s2.claim_output());
            let mine = s.claim_output();
            let theirs = t.join().unwrap();
            assert_eq!(u32::from(mine) + u32::from(theirs), 1, "claimed exactly once");
        });
    }

    /// Abort from another thread while the owner polls: the cancel is seen by the next poll.
    #[test]
    fn loom_cancel_during_poll() {
        loom::model(|| {
            let s = Arc::new(State::vacant(0));
            let g = s.occupy(0);
            s.start_poll(g);
            let s2 = s.clone();
            let t = loom::thread::spawn(move || s2.cancel(g));
            let end = s.end_poll(g, false, false);
            let c = t.join().unwrap();
            assert!(end == End::Reschedule || c == Wake::Schedule);
            assert_eq!(s.start_poll(g), Start::Cancel);
        });
    }
}
