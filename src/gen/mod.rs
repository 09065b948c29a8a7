//! Generators: a sequence written as an async body that yields.
//!
//! ```
//! use omni::gen::Gen;
//!
//! let fib = Gen::new(|co| async move {
//!     let (mut a, mut b) = (0u64, 1u64);
//!     loop {
//!         co.yield_(a).await;
//!         (a, b) = (b, a + b);
//!     }
//! });
//! let first: Vec<u64> = fib.into_iter().take(10).collect();
//! assert_eq!(first, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
//! ```
//!
//! A [`Gen`] is an [`IntoIterator`] when its body only yields (it is driven synchronously, each
//! `next` resuming the body to its next yield), and a [`Stream`] when the body awaits other
//! things too (channels, sockets, timers): the stream's task sleeps while the body waits.
//! [`StreamExt`] gives streams the combinators of iterators (`next`, `map`, `filter`, `take`,
//! `zip`, `fold`, `collect`). Dropping a generator drops its body where it stopped, running
//! its destructors, so an infinite generator is just a generator nobody finishes.
//!
//! # How a yield travels
//!
//! The generator owns its body (one allocation, when it is made) and a one-item slot that it
//! shares with the body's [`Co`]. `co.yield_(v).await` puts `v` in the slot and returns
//! `Pending` once; the generator's poll of the body returns, finds the item, and hands it out.
//! No allocation, lock or atomic operation happens per item.
//!
//! # Invariants
//!
//! - Only the thread inside a generator's own poll of its body touches the slot. The
//!   generator marks itself (a thread-local pointer to its slot) for the length of that poll;
//!   a yield checks the mark and panics, with a message saying what went wrong, when it is
//!   awaited anywhere else (a `Co` moved into another task, or into another generator's body).
//!   So the slot is never shared between two threads at once, which makes `Gen` and `Co`
//!   sound to send between threads.
//! - A yield that finds the slot still full (two yields polled in one step, by `join`) waits
//!   for the next step; no item is overwritten.

mod stream;

pub use futures_core::Stream;
pub use stream::{Filter, Map, Next, StreamExt, Take, Zip};

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

thread_local! {
    /// The slot of the generator whose body this thread is polling, if any.
    static CURRENT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
}

/// The one-item handoff between a generator and its body.
struct Slot<T> {
    item: UnsafeCell<Option<T>>,
}

// SAFETY: the item is only reached by the thread that is inside the owning generator's poll of
// its body (checked through `CURRENT` by `Yield`, and by construction in `Gen::resume`, which
// takes `&mut Gen`), so no two threads ever touch it at once. Moving a `T` between threads
// needs `T: Send`.
unsafe impl<T: Send> Send for Slot<T> {}
// SAFETY: as above: a shared `&Slot` on two threads never gives both access to the item.
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    fn as_ptr(&self) -> *const () {
        (self as *const Slot<T>).cast()
    }
}

/// The body's side of a generator: it yields items with [`Co::yield_`].
pub struct Co<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Co<T> {
    /// Hands `item` to whoever drives the generator, and waits until they ask for the next
    /// one.
    ///
    /// # Panics
    ///
    /// When awaited outside its own generator's body (a `Co` moved into a spawned task, or
    /// into another generator): there is no one there to take the item.
    #[inline]
    pub fn yield_(&self, item: T) -> Yield<'_, T> {
        Yield { co: self, item: Some(item) }
    }
}

impl<T> fmt::Debug for Co<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Co").finish_non_exhaustive()
    }
}

/// The future of [`Co::yield_`].
#[must_use = "an item is only yielded when the future is awaited"]
pub struct Yield<'a, T> {
    co: &'a Co<T>,
    item: Option<T>,
}

impl<T> Unpin for Yield<'_, T> {}

impl<T> Future for Yield<'_, T> {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let Some(item) = self.item.take() else {
            return Poll::Ready(()); // taken by the generator: resume the body
        };
        let slot = &*self.co.slot;
        assert!(
            CURRENT.with(Cell::get) == slot.as_ptr(),
            "omni::gen: `Co::yield_` awaited outside its generator's body (was the `Co` moved \
             into a spawned task or another generator?); yield only from the body it was given to"
        );
        // SAFETY: `CURRENT` names this slot, so this thread is inside the owning generator's
        // poll of its body (the module invariant): no one else touches the item now.
        let cell = unsafe { &mut *slot.item.get() };
        if cell.is_some() {
            // Another yield of this step came first: go in the next step.
            self.item = Some(item);
            return Poll::Pending;
        }
        *cell = Some(item);
        Poll::Pending
    }
}

impl<T> fmt::Debug for Yield<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yield").field("pending_item", &self.item.is_some()).finish()
    }
}

/// A generator: a body that yields items of type `T`.
///
/// See the [module documentation](self) for how to drive it.
///
/// # Examples
///
/// As a stream, with a body that awaits between yields:
///
/// ```
/// use omni::gen::{Gen, StreamExt};
///
/// omni::block_on(async {
///     let (tx, rx) = omni::chan::bounded(4);
///     omni::spawn(async move {
///         for i in 0..5 {
///             tx.send(i).await.unwrap();
///         }
///     });
///     let doubled = Gen::new(|co| async move {
///         while let Ok(v) = rx.recv().await {
///             co.yield_(v * 2).await;
///         }
///     });
///     assert_eq!(doubled.collect::<Vec<_>>().await, [0, 2, 4, 6, 8]);
/// });
/// ```
pub struct Gen<T, F> {
    slot: Arc<Slot<T>>,
    body: Pin<Box<F>>,
    done: bool,
}

impl<T, F: Future<Output = ()>> Gen<T, F> {
    /// A generator whose body is `body(co)`. Nothing runs until the first item is asked for.
    pub fn new(body: impl FnOnce(Co<T>) -> F) -> Gen<T, F> {
        let slot = Arc::new(Slot { item: UnsafeCell::new(None) });
        let body = Box::pin(body(Co { slot: slot.clone() }));
        Gen { slot, body, done: false }
    }

    /// Runs the body to its next yield (`Some`), its end (`None`), or a wait on something
    /// else (`Pending`; `cx` is woken when it is worth resuming).
    #[inline(always)]
    pub fn resume(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if self.done {
            return Poll::Ready(None);
        }
        struct Restore(*const ());
        impl Drop for Restore {
            #[inline]
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let r = {
            let _restore = Restore(CURRENT.with(|c| c.replace(self.slot.as_ptr())));
            self.body.as_mut().poll(cx)
        };
        // SAFETY: this thread holds `&mut self` and has finished polling the body, and no
        // other thread's `CURRENT` can name this slot (only `resume` sets it, under `&mut`).
        let item = unsafe { (*self.slot.item.get()).take() };
        if r.is_ready() {
            self.done = true;
        }
        match (item, r) {
            (Some(v), _) => Poll::Ready(Some(v)),
            (None, Poll::Ready(())) => Poll::Ready(None),
            (None, Poll::Pending) => Poll::Pending,
        }
    }

    /// Whether the body has run to its end.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl<T, F: Future<Output = ()>> Stream for Gen<T, F> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().resume(cx)
    }
}

// The body is boxed, and the slot is behind an `Arc`: nothing of a `Gen` is pinned in place.
impl<T, F> Unpin for Gen<T, F> {}

impl<T, F: Future<Output = ()>> IntoIterator for Gen<T, F> {
    type Item = T;
    type IntoIter = Iter<T, F>;

    fn into_iter(self) -> Iter<T, F> {
        Iter { gen: self }
    }
}

impl<T, F> fmt::Debug for Gen<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gen").field("done", &self.done).finish_non_exhaustive()
    }
}

/// A generator driven synchronously: the [`Iterator`] of [`Gen::into_iter`].
///
/// Each `next` resumes the body to its next yield. When the body waits on something else (a
/// channel fed by another thread, say), `next` blocks this thread until it is woken; a body
/// that waits on the runtime's own timers or sockets needs the runtime to run, so drive it as
/// a [`Stream`] from a task instead.
pub struct Iter<T, F> {
    gen: Gen<T, F>,
}

impl<T, F: Future<Output = ()>> Iterator for Iter<T, F> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        // A body that only yields never looks at the waker.
        if let Poll::Ready(v) = self.gen.resume(&mut Context::from_waker(Waker::noop())) {
            return v;
        }
        // It waits on something else: park this thread until that wakes it (the blocking
        // forms of the channels do the same).
        let gen = &mut self.gen;
        crate::chan::park_on(std::future::poll_fn(|cx| gen.resume(cx)))
    }
}

impl<T, F> fmt::Debug for Iter<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("gen", &self.gen).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_co_used_outside_its_body_panics_and_touches_no_slot() {
        let mut escaped = None;
        let mut g = Gen::new(|co: Co<u32>| {
            escaped = Some(Co { slot: co.slot.clone() });
            async move {
                co.yield_(1).await;
            }
        });
        let co = escaped.take().unwrap();
        let mut y = std::pin::pin!(co.yield_(9));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = y.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        }));
        let err = r.unwrap_err();
        let msg = err
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| err.downcast_ref::<&str>().copied())
            .unwrap();
        assert!(msg.contains("outside its generator's body"), "{msg}");
        assert_eq!(g.resume(&mut Context::from_waker(Waker::noop())), Poll::Ready(Some(1)));
        assert_eq!(g.resume(&mut Context::from_waker(Waker::noop())), Poll::Ready(None));
    }
}
