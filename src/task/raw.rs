//! A task slot: the header and the type-erased functions that reach the future inside it.
//!
//! Layout of a slot (`#[repr(C)]`, 16-byte aligned):
//!
//! ```text
//! | Header (48 bytes): state word | vtable | join waker | spawn site | wait note | stage ... |
//! ```
//!
//! The stage is a union: the future while the task runs, `thread::Result<T>` once the state
//! word has `COMPLETE | OUTPUT` (a cancelled task, or one whose output the join handle took,
//! has `COMPLETE` without `OUTPUT`).
//! Futures whose stage does not fit the biggest size class (or needs more than 16-byte
//! alignment) are boxed: the slot then holds the stage's pointer.
//!
//! Ownership: the thread that `start_poll` made the task's poller (one worker at a time on a
//! multi-thread runtime) alone touches the future and the vtable. The join waker field belongs
//! to the join handle while `JOIN_WAKER` is clear and to the scheduler while it is set (see
//! `state.rs`); the completer reads it while `RUNNING` still holds off every freer. After
//! `COMPLETE`, the output belongs to whoever claims it (`State::claim_output`): the join handle,
//! or at shutdown the worker of a pinned task, which drops it on its own thread. Freeing a slot
//! needs `COMPLETE`, no `RUNNING` and no join interest, and one thread gets to do it.

use super::state::State;
use std::any::Any;
use std::cell::UnsafeCell;
use std::future::Future;
use std::mem::{self, ManuallyDrop};
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};

/// The fixed part of every task slot.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    pub(crate) vtable: UnsafeCell<&'static Vtable>,
    pub(crate) join_waker: UnsafeCell<Option<Waker>>,
    /// Where the task was spawned (`Location` address), for task dumps and deadlock reports.
    /// Written before the slot is published as occupied; relaxed: it is only ever reported.
    spawned_at: AtomicPtr<Location<'static>>,
    /// What the task's last `Pending` poll waited on (see `rt/deadlock.rs`); relaxed, written
    /// by the poller, read by a deadlock check.
    pub(crate) wait: AtomicU64,
}

impl Header {
    /// Records the spawn site of the task about to occupy this slot (owner only).
    pub(crate) fn set_spawned_at(&self, at: &'static Location<'static>) {
        self.spawned_at.store(at as *const Location<'static> as *mut Location<'static>, Relaxed);
        self.wait.store(0, Relaxed);
    }

    /// The spawn site of the task in this slot, if one was recorded.
    pub(crate) fn spawned_at(&self) -> Option<&'static Location<'static>> {
        let p = self.spawned_at.load(Relaxed);
        // SAFETY: the field only ever holds null or a `&'static Location<'static>` address.
        (!p.is_null()).then(|| unsafe { &*p })
    }
}

/// Bytes before the stage.
pub(crate) const STAGE_OFFSET: usize = mem::size_of::<Header>();

/// Slot sizes of the size classes (header included), smallest first.
pub(crate) const CLASSES: [usize; 10] = [64, 80, 96, 112, 144, 176, 240, 304, 560, 1072];

/// A panic payload, as `std::thread::Result` carries it.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// What the stage holds.
union Stage<F: Future> {
    future: ManuallyDrop<F>,
    output: ManuallyDrop<Result<F::Output, Panic>>,
}

/// The type-erased operations on one task type.
pub(crate) struct Vtable {
    /// Polls the future; on `Ready` (or a panic) replaces it with the output.
    ///
    /// Safety: owner only, the slot is occupied by this task type and not `COMPLETE`.
    pub(crate) poll: unsafe fn(*mut Header, &mut Context<'_>) -> Poll<()>,
    /// Drops the future in place (cancellation). Returns whether an output was stored: the
    /// panic of a destructor that panicked.
    ///
    /// Safety: as for `poll`.
    pub(crate) cancel: unsafe fn(*mut Header) -> bool,
    /// Drops what the stage holds (the future if `complete` is false, else the output if
    /// `has_output`) and frees a boxed stage.
    ///
    /// Safety: owner only, the slot is occupied by this task type; called once before vacating.
    pub(crate) drop_stage: unsafe fn(*mut Header, bool, bool),
    /// Moves the output out into `dst`, a `*mut Option<Result<T, Panic>>`.
    ///
    /// Safety: the caller claimed the output ([`State::claim_output`] returned true), the slot
    /// is not freed meanwhile, and `dst` points to the right type.
    pub(crate) read_output: unsafe fn(*mut Header, *mut ()),
    /// Drops the output in place (a panicking destructor is contained and reported).
    ///
    /// Safety: as for `read_output`, without `dst`.
    pub(crate) drop_output: unsafe fn(*mut Header),
}

/// Chooses the size class for a future type: `Some(class)` inline, `None` for a boxed stage.
pub(crate) fn class_of<F: Future>() -> Option<usize> {
    let size = STAGE_OFFSET + mem::size_of::<Stage<F>>();
    if mem::align_of::<Stage<F>>() > super::table::SLOT_ALIGN {
        return None;
    }
    CLASSES.iter().position(|&c| c >= size)
}

/// The smallest class, used for boxed stages (the slot holds one pointer).
pub(crate) const BOXED_CLASS: usize = 0;

/// Operations for future type `F`, stored inline (`BOXED = false`) or behind a box.
pub(crate) struct Ops<F, const BOXED: bool>(F);

impl<F: Future, const BOXED: bool> Ops<F, BOXED> {
    pub(crate) const VTABLE: Vtable = Vtable {
        poll: Self::poll,
        cancel: Self::cancel,
        drop_stage: Self::drop_stage,
        read_output: Self::read_output,
        drop_output: Self::drop_output,
    };

    /// # Safety
    ///
    /// `h` is an occupied slot of this task type (so the stage, or the box pointer, is there).
    unsafe fn stage(h: *mut Header) -> *mut Stage<F> {
        // SAFETY: the stage follows the header inside the slot (caller's contract).
        let at = unsafe { (h as *mut u8).add(STAGE_OFFSET) };
        if BOXED {
            // SAFETY: a boxed slot stores the stage pointer at the stage offset.
            unsafe { *(at as *mut *mut Stage<F>) }
        } else {
            at as *mut Stage<F>
        }
    }

    /// Writes `future` into the slot at `h`.
    ///
    /// # Safety
    ///
    /// `h` is a vacant slot of a class that fits this task type (see [`class_of`]), owned by
    /// the caller.
    pub(crate) unsafe fn init(h: *mut Header, future: F) {
        let stage = Stage { future: ManuallyDrop::new(future) };
        // SAFETY: the slot is large and aligned enough for the header and the stage (or the box
        // pointer), and owned by the caller.
        unsafe {
            *(*h).vtable.get() = &Self::VTABLE;
            let at = (h as *mut u8).add(STAGE_OFFSET);
            if BOXED {
                ptr::write(at as *mut *mut Stage<F>, Box::into_raw(Box::new(stage)));
            } else {
                ptr::write(at as *mut Stage<F>, stage);
            }
        }
    }

    /// # Safety
    ///
    /// [`Vtable::poll`]'s contract.
    unsafe fn poll(h: *mut Header, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: caller's contract: occupied, this type, not complete, so `future` is live.
        let stage = unsafe { &mut *Self::stage(h) };
        // SAFETY: the slot never moves while occupied (chunks never move; boxed stages are
        // freed only when the slot is vacated), so the future is pinned.
        let fut = unsafe { Pin::new_unchecked(&mut *stage.future) };
        let res = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
        let out = match res {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(v)) => Ok(v),
            Err(p) => Err(p),
        };
        // SAFETY: the future is live and is dropped exactly once, here.
        let dropped =
            catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(&mut stage.future) }));
        // Nothing may unwind out of here: the future is gone, and the state still says RUNNING.
        let out = match (out, dropped) {
            (out, Ok(())) => out,
            (Ok(v), Err(p)) => {
                drop_contained(Some(v));
                Err(p)
            }
            (Err(p), Err(second)) => {
                drop_panic(second);
                Err(p)
            }
        };
        stage.output = ManuallyDrop::new(out);
        Poll::Ready(())
    }

    /// # Safety
    ///
    /// [`Vtable::cancel`]'s contract.
    unsafe fn cancel(h: *mut Header) -> bool {
        // SAFETY: caller's contract: the future is live.
        let stage = unsafe { &mut *Self::stage(h) };
        // SAFETY: dropped exactly once; a panic in drop is contained and reported as such.
        let dropped =
            catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(&mut stage.future) }));
        match dropped {
            Ok(()) => false,
            Err(p) => {
                stage.output = ManuallyDrop::new(Err(p));
                true
            }
        }
    }

    /// # Safety
    ///
    /// [`Vtable::drop_stage`]'s contract.
    unsafe fn drop_stage(h: *mut Header, complete: bool, has_output: bool) {
        // SAFETY: caller's contract: occupied by this type; `complete` says which field is live.
        unsafe {
            let stage = Self::stage(h);
            let res = catch_unwind(AssertUnwindSafe(|| {
                if complete {
                    if has_output {
                        ManuallyDrop::drop(&mut (*stage).output);
                    }
                } else {
                    ManuallyDrop::drop(&mut (*stage).future);
                }
            }));
            if BOXED {
                drop(Box::from_raw(stage));
            }
            // A destructor that panics during cleanup is reported, never unwound into the
            // scheduler's half-updated state.
            if let Err(p) = res {
                drop_panic(p);
            }
        }
    }

    /// # Safety
    ///
    /// [`Vtable::read_output`]'s contract.
    unsafe fn read_output(h: *mut Header, dst: *mut ()) {
        // SAFETY: caller's contract: complete, so `output` is live; `dst` has the right type.
        unsafe {
            let stage = &mut *Self::stage(h);
            let out = ManuallyDrop::take(&mut stage.output);
            *(dst as *mut Option<Result<F::Output, Panic>>) = Some(out);
        }
    }
}

impl<F: Future, const BOXED: bool> Ops<F, BOXED> {
    /// # Safety
    ///
    /// [`Vtable::drop_output`]'s contract.
    unsafe fn drop_output(h: *mut Header) {
        // SAFETY: caller's contract: complete and claimed, so `output` is live and ours.
        let stage = unsafe { &mut *Self::stage(h) };
        // SAFETY: dropped exactly once (the claim cleared OUTPUT, so nothing drops it again).
        let dropped =
            catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(&mut stage.output) }));
        if let Err(p) = dropped {
            drop_panic(p);
        }
    }
}

/// Vacates a completed slot and drops what it held: the output (if any) and the join waker.
///
/// The slot gets its next generation and the waker is moved out *before* any user destructor
/// runs, so a destructor that panics or re-enters the scheduler can neither reach the slot
/// through a key nor cause a second drop. Returns the new (even) generation; the caller then
/// returns the slot to its pool or frees its chunk.
///
/// # Safety
///
/// The caller owns the slot exclusively: it is occupied by a completed task with no join
/// interest left (or its chunk is unpublished), and no one else touches its fields.
pub(crate) unsafe fn vacate_and_drop(h: *mut Header) -> u32 {
    // SAFETY: exclusive access (caller's contract).
    let header = unsafe { &*h };
    let has_output = header.state.load().has(super::state::OUTPUT);
    // SAFETY: as above.
    let waker = unsafe { (*header.join_waker.get()).take() };
    // SAFETY: as above; read before vacating, the vtable stays valid for the drop below.
    let vtable = unsafe { *header.vtable.get() };
    let gen = header.state.vacate();
    // SAFETY: the stage still holds what the completed task left (the slot is not reused
    // before the caller releases it); `has_output` says whether that is an output.
    unsafe { (vtable.drop_stage)(h, true, has_output) };
    drop_contained(waker);
    gen
}

/// Drops a value whose destructor may panic, without unwinding (a panic is reported).
pub(crate) fn drop_contained<T>(v: Option<T>) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(v))) {
        drop_panic(p);
    }
}

/// Drops a panic payload whose own destructor may panic, without unwinding.
pub(crate) fn drop_panic(p: Panic) {
    if catch_unwind(AssertUnwindSafe(move || drop(p))).is_err() {
        eprintln!("omni: a panic payload panicked while being dropped; ignored");
    }
}

/// Writes a fresh vacant header at `slot`.
///
/// # Safety
///
/// `slot` is the start of a slot in a chunk being initialised, not yet visible to anyone.
pub(crate) unsafe fn init_vacant(slot: *mut u8, gen: u32) {
    static NOOP: Vtable = Ops::<std::future::Ready<()>, false>::VTABLE;
    // SAFETY: the slot is at least `STAGE_OFFSET` bytes, aligned, and exclusively ours.
    unsafe {
        ptr::write(
            slot as *mut Header,
            Header {
                state: State::vacant(gen),
                vtable: UnsafeCell::new(&NOOP),
                join_waker: UnsafeCell::new(None),
                spawned_at: AtomicPtr::new(ptr::null_mut()),
                wait: AtomicU64::new(0),
            },
        )
    };
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn header_is_48_bytes_and_zst_future_fits_smallest_class() {
        assert_eq!(STAGE_OFFSET, 48);
        assert_eq!(
            class_of::<std::future::Pending<()>>(),
            Some(0),
            "a zero-sized task fits 64 bytes"
        );
        assert_eq!(CLASSES[0], 64);
        // A 128-byte future with a small output stays inline.
        #[allow(dead_code)] // only its size matters
        struct Big([u8; 128]);
        impl Future for Big {
            type Output = ();
            fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
                Poll::Ready(())
            }
        }
        assert!(class_of::<Big>().is_some());
        #[allow(dead_code)] // only its size matters
        struct Huge([u8; 4096]);
        impl Future for Huge {
            type Output = ();
            fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
                Poll::Ready(())
            }
        }
        assert_eq!(class_of::<Huge>(), None);
    }
}
