//! One-shot continuations: the seeds' `control`, in Rust.
//!
//! An `async fn`'s state machine already *is* a one-shot delimited continuation: every `.await`
//! that returns `Pending` captures the rest of the computation up to the task boundary (the
//! prompt), and the next poll resumes it. [`suspend`] makes that continuation a value: it parks
//! the task and hands a closure a [`Cont<T>`]; `k.resume(v)`, from any thread, makes the parked
//! `.await` return `Ok(v)`. Channels, promises and generators are built on it.
//!
//! Guarantees:
//! - resuming costs no allocation: the value is written straight into the suspended future
//!   (which is pinned inside its task slot) and the task is woken through its key;
//! - a continuation is one-shot by construction (`resume` takes `self`);
//! - resuming a task whose suspension is gone (the task was aborted, the future dropped)
//!   returns `Err(v)`: the value is handed back, never lost;
//! - dropping a continuation without resuming it wakes the task with [`Abandoned`], so a lost
//!   continuation is an error at the await, not a silent hang.
//!
//! See `cell.rs` for the protocol that makes a resume racing a drop safe.

mod cell;

use crate::loom::Backoff;
use cell::{ContCell, Finish, ABANDONED, RESUMED, UPDATING, WAITING, WRITING};
use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::marker::{PhantomData, PhantomPinned};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The error of a suspension whose continuation was dropped without being resumed.
///
/// # Examples
///
/// ```
/// use omni::cont::{suspend, Abandoned};
/// let r = omni::block_on(suspend(|k: omni::cont::Cont<i32>| drop(k)));
/// assert_eq!(r, Err(Abandoned));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Abandoned;

impl fmt::Display for Abandoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the continuation was dropped without being resumed")
    }
}

impl std::error::Error for Abandoned {}

/// Parks the current task and passes its continuation to `f`.
///
/// `f` runs once, on the first poll, while the task is being polled. It can store the
/// continuation (in a wait queue, another task's state, a callback registry) or resume it
/// right away. The returned future completes with `Ok(v)` once `k.resume(v)` was called, or
/// `Err(Abandoned)` if `k` was dropped unresumed.
///
/// # Examples
///
/// Two tasks handing a value back and forth:
///
/// ```
/// use omni::cont::{suspend, Cont};
/// use std::{cell::Cell, rc::Rc};
///
/// omni::block_on(async {
///     let parked: Rc<Cell<Option<Cont<u32>>>> = Rc::new(Cell::new(None));
///     let p = parked.clone();
///     let waiter = omni::spawn_local(async move {
///         suspend(|k| p.set(Some(k))).await.unwrap() * 2
///     });
///     omni::yield_now().await; // let the waiter park
///     let k = parked.take().expect("the waiter parked");
///     k.resume(21).unwrap();
///     assert_eq!(waiter.await.unwrap(), 42);
/// });
/// ```
pub fn suspend<T, F>(f: F) -> Suspend<T, F>
where
    F: FnOnce(Cont<T>),
{
    Suspend { f: Some(f), cell: None, value: UnsafeCell::new(None), _pin: PhantomPinned }
}

/// The future of [`suspend`].
#[must_use = "futures do nothing unless awaited"]
pub struct Suspend<T, F> {
    f: Option<F>,
    cell: Option<(&'static ContCell, u32)>,
    /// Written by the continuation while it owns the cell's `WRITING` phase, possibly while a
    /// `&mut Suspend` exists on the polling thread. That is sound because the future is
    /// `!Unpin` (`PhantomPinned`), which exempts `&mut Suspend` from `noalias`, and the poller
    /// never touches `value` during `WRITING`; the same pattern as intrusive waiter lists.
    value: UnsafeCell<Option<T>>,
    _pin: PhantomPinned,
}

// SAFETY: the future may move between threads with its closure and value; the cell is
// thread-safe.
unsafe impl<T: Send, F: Send> Send for Suspend<T, F> {}

impl<T, F> fmt::Debug for Suspend<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suspend").field("started", &self.f.is_none()).finish()
    }
}

impl<T, F: FnOnce(Cont<T>)> Future for Suspend<T, F> {
    type Output = Result<T, Abandoned>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: nothing is moved out of the pinned future; `value` stays in place.
        let this = unsafe { self.get_unchecked_mut() };
        let (cell, gen, first) = match this.cell {
            Some((cell, gen)) => (cell, gen, false),
            None => {
                let f = this.f.take().expect("Suspend polled after it completed");
                let cell = cell::alloc();
                // SAFETY: a vacant cell from the pool; `value` lives in this pinned future, whose
                // completion or drop releases the cell.
                let gen = unsafe { cell.arm(this.value.get() as *mut (), cx.waker().clone()) };
                this.cell = Some((cell, gen));
                f(Cont { cell, gen, _value: PhantomData });
                (cell, gen, true)
            }
        };
        let mut backoff = Backoff::default();
        loop {
            match cell.phase(gen) {
                Some(RESUMED) | Some(ABANDONED) => {
                    // SAFETY: we armed the cell at `gen`, and release it once (`cell` is cleared).
                    let (phase, reuse) = unsafe { cell.release(gen) };
                    this.cell = None;
                    this.f = None;
                    if reuse {
                        cell::free(cell);
                    }
                    return Poll::Ready(if phase == RESUMED {
                        // SAFETY: RESUMED means the continuation wrote the value and gave the
                        // slot back (release ordering on the phase, acquire in `phase`).
                        Ok(unsafe { &mut *this.value.get() }.take().expect("resumed value"))
                    } else {
                        Err(Abandoned)
                    });
                }
                Some(WAITING) => {
                    // On the first poll the cell was just armed with this very waker.
                    if first || cell.update_waker(gen, cx.waker()) {
                        return Poll::Pending;
                    }
                }
                // The continuation is writing (a few instructions, no user code). Wait it out
                // rather than return `Pending`: it would wake the waker stored in the cell,
                // which may not be the one this poll was given.
                Some(WRITING) | Some(UPDATING) => backoff.snooze(),
                _ => unreachable!("omni: continuation cell in an unknown phase"),
            }
        }
    }
}

impl<T, F> Drop for Suspend<T, F> {
    fn drop(&mut self) {
        if let Some((cell, gen)) = self.cell.take() {
            // Waits out a resume in progress; afterwards no continuation can touch `value`.
            // SAFETY: we armed the cell at `gen` and release it once (`take` above).
            let (_, reuse) = unsafe { cell.release(gen) };
            if reuse {
                cell::free(cell);
            }
        }
    }
}

/// A one-shot continuation: resuming it makes the suspended `.await` return.
///
/// `Cont<T>` is `Send` when `T` is: a task may be resumed from another OS thread. Dropping it
/// unresumed wakes the task with [`Abandoned`].
///
/// # Examples
///
/// Resuming from another OS thread:
///
/// ```
/// use omni::cont::suspend;
/// let v = omni::block_on(suspend(|k| {
///     std::thread::spawn(move || k.resume(9).unwrap());
/// }));
/// assert_eq!(v, Ok(9));
/// ```
pub struct Cont<T> {
    cell: &'static ContCell,
    gen: u32,
    _value: PhantomData<fn(T) -> T>,
}

// SAFETY: the cell is thread-safe; the value crosses threads, so `T: Send`.
unsafe impl<T: Send> Send for Cont<T> {}
// SAFETY: `&Cont` allows nothing but `is_pending`.
unsafe impl<T: Send> Sync for Cont<T> {}

impl<T> Cont<T> {
    /// Resumes the suspended task with `v`.
    ///
    /// # Errors
    ///
    /// `Err(v)` if the suspension no longer exists (the task was aborted or its future dropped):
    /// the value comes back to the caller.
    pub fn resume(self, v: T) -> Result<(), T> {
        let this = std::mem::ManuallyDrop::new(self);
        match this.cell.finish(this.gen) {
            Finish::Won => {
                // SAFETY: `Won` gives us the value slot, which points to the suspended
                // future's `UnsafeCell<Option<T>>` (armed with this `T`); the future cannot be
                // dropped until we publish.
                unsafe {
                    *(this.cell.value_slot() as *mut Option<T>) = Some(v);
                    this.cell.publish(this.gen, RESUMED);
                }
                Ok(())
            }
            Finish::Lost => Err(v),
        }
    }

    /// Whether the suspended task still waits for this continuation.
    pub fn is_pending(&self) -> bool {
        self.cell.phase(self.gen).is_some_and(|p| p == WAITING || p == UPDATING)
    }
}

impl<T> Drop for Cont<T> {
    fn drop(&mut self) {
        if let Finish::Won = self.cell.finish(self.gen) {
            // SAFETY: once, after `Won`.
            unsafe { self.cell.publish(self.gen, ABANDONED) };
        }
    }
}

impl<T> fmt::Debug for Cont<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cont").field("pending", &self.is_pending()).finish()
    }
}
