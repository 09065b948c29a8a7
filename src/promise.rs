//! Promises: a value settled once (resolved or rejected) that any number of tasks await, each
//! getting a clone; and the combinators `all`, `all_settled`, `race` and `any`.
//!
//! A [`Promise`] is a handle: clones share one cell. [`Promise::resolve`] or
//! [`Promise::reject`] settles it once (a second settle hands its value back); every wait,
//! before or after, gets a clone of the result. Waiting is cancel-safe: a dropped wait just
//! leaves the list.
//!
//! The combinators take any futures whose output is a `Result` (promises, joined tasks,
//! `async` blocks), so they work beyond promises:
//!
//! | combinator | ready when | losers |
//! |---|---|---|
//! | [`all`] | every future is `Ok` (the values in order), or the first `Err` | dropped at the first `Err` |
//! | [`all_settled`] | every future is done (every result, in order) | none |
//! | [`race`] | the first future is done, `Ok` or `Err` | dropped (cancelled) |
//! | [`any`] | the first `Ok`, or every future failed (every error, in order) | dropped at the first `Ok` |
//!
//! Dropping a future cancels it (a task's `JoinHandle` detaches; abort it if the task must
//! stop). An empty `all` is `Ok(vec![])`; an empty `any` is `Err(vec![])`; an empty `race`
//! never completes, as in JavaScript.
//!
//! # Invariants
//!
//! The result is written once, under the cell's lock, and waiters are registered under the
//! same lock after a look at it: a settle either finds a waiter in the list or the waiter finds
//! the result (loom model `loom_settle_vs_wait`; `loom_resolve_vs_reject` checks that exactly
//! one of two racing settles wins).

use crate::loom::{Mutex, MutexGuard};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// A value settled once, awaited by any number of tasks.
///
/// # Examples
///
/// ```
/// use omni::Promise;
///
/// omni::block_on(async {
///     let p: Promise<u32, String> = Promise::new();
///     let waiter = omni::spawn({
///         let p = p.clone();
///         async move { p.await }
///     });
///     p.resolve(42).unwrap();
///     assert_eq!(p.reject("late".into()), Err("late".to_string()), "settled once");
///     assert_eq!(waiter.await.unwrap(), Ok(42));
///     assert_eq!(p.get().await, Ok(42));
/// });
/// ```
pub struct Promise<T, E> {
    cell: Arc<Cell<T, E>>,
}

struct Cell<T, E> {
    state: Mutex<State<T, E>>,
}

enum State<T, E> {
    Pending { waiters: Vec<Option<Waker>>, free: Vec<usize> },
    Settled(Result<T, E>),
}

impl<T, E> Cell<T, E> {
    fn lock(&self) -> MutexGuard<'_, State<T, E>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T, E> Clone for Promise<T, E> {
    fn clone(&self) -> Self {
        Promise { cell: self.cell.clone() }
    }
}

impl<T, E> Default for Promise<T, E> {
    fn default() -> Self {
        Promise::new()
    }
}

impl<T, E> Promise<T, E> {
    /// A pending promise.
    pub fn new() -> Promise<T, E> {
        let state = State::Pending { waiters: Vec::new(), free: Vec::new() };
        Promise { cell: Arc::new(Cell { state: Mutex::new(state) }) }
    }

    /// A promise already resolved with `v`.
    pub fn resolved(v: T) -> Promise<T, E> {
        Promise { cell: Arc::new(Cell { state: Mutex::new(State::Settled(Ok(v))) }) }
    }

    /// A promise already rejected with `e`.
    pub fn rejected(e: E) -> Promise<T, E> {
        Promise { cell: Arc::new(Cell { state: Mutex::new(State::Settled(Err(e))) }) }
    }

    fn settle(&self, r: Result<T, E>) -> Result<(), Result<T, E>> {
        let wakers = {
            let mut g = self.cell.lock();
            match &mut *g {
                State::Settled(_) => return Err(r),
                State::Pending { waiters, .. } => {
                    let w = std::mem::take(waiters);
                    *g = State::Settled(r);
                    w
                }
            }
        };
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
        Ok(())
    }

    /// Resolves the promise with `v`, waking every waiter; `Err(v)` if it was already settled.
    pub fn resolve(&self, v: T) -> Result<(), T> {
        self.settle(Ok(v)).map_err(|r| r.ok().expect("handed back as given"))
    }

    /// Rejects the promise with `e`, waking every waiter; `Err(e)` if it was already settled.
    pub fn reject(&self, e: E) -> Result<(), E> {
        self.settle(Err(e)).map_err(|r| r.err().expect("handed back as given"))
    }

    /// Whether the promise is settled.
    pub fn is_settled(&self) -> bool {
        matches!(*self.cell.lock(), State::Settled(_))
    }
}

impl<T: Clone, E: Clone> Promise<T, E> {
    /// The result, if settled.
    pub fn try_get(&self) -> Option<Result<T, E>> {
        match &*self.cell.lock() {
            State::Settled(r) => Some(r.clone()),
            State::Pending { .. } => None,
        }
    }

    /// Waits for the result (a clone of it).
    pub fn get(&self) -> Wait<T, E> {
        Wait { cell: self.cell.clone(), slot: None }
    }

    /// A promise settled with `f` of this one's result, by a task spawned on the current
    /// runtime (which must exist).
    ///
    /// # Panics
    ///
    /// Outside an omni runtime.
    pub fn then<U, F2, F>(&self, f: F) -> Promise<U, F2>
    where
        T: Send + 'static,
        E: Send + 'static,
        U: Send + 'static,
        F2: Send + 'static,
        F: FnOnce(Result<T, E>) -> Result<U, F2> + Send + 'static,
    {
        let next = Promise::new();
        let (wait, out) = (self.get(), next.clone());
        drop(crate::spawn(async move {
            let _ = out.settle(f(wait.await));
        }));
        next
    }
}

impl<T: Clone, E: Clone> IntoFuture for Promise<T, E> {
    type Output = Result<T, E>;
    type IntoFuture = Wait<T, E>;
    fn into_future(self) -> Wait<T, E> {
        Wait { cell: self.cell, slot: None }
    }
}

impl<T, E> fmt::Debug for Promise<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise").field("settled", &self.is_settled()).finish()
    }
}

/// A wait for a [`Promise`]'s result, from [`Promise::get`] or `.await` on a promise.
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<T, E> {
    cell: Arc<Cell<T, E>>,
    slot: Option<usize>,
}

impl<T: Clone, E: Clone> Future for Wait<T, E> {
    type Output = Result<T, E>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        let this = self.get_mut();
        let mut g = this.cell.lock();
        match &mut *g {
            State::Settled(r) => {
                this.slot = None;
                Poll::Ready(r.clone())
            }
            State::Pending { waiters, free } => {
                match this.slot {
                    Some(i) => match &mut waiters[i] {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        w => *w = Some(cx.waker().clone()),
                    },
                    None => {
                        let w = Some(cx.waker().clone());
                        this.slot = Some(match free.pop() {
                            Some(i) => {
                                waiters[i] = w;
                                i
                            }
                            None => {
                                waiters.push(w);
                                waiters.len() - 1
                            }
                        });
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl<T, E> Drop for Wait<T, E> {
    fn drop(&mut self) {
        if let Some(i) = self.slot.take() {
            if let State::Pending { waiters, free } = &mut *self.cell.lock() {
                waiters[i] = None;
                free.push(i);
            }
        }
    }
}

impl<T, E> fmt::Debug for Wait<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait").field("waiting", &self.slot.is_some()).finish()
    }
}

type Boxed<'a, O> = Pin<Box<dyn Future<Output = O> + Send + 'a>>;

fn boxed<'a, I>(futs: I) -> Vec<Option<Boxed<'a, <I::Item as IntoFuture>::Output>>>
where
    I: IntoIterator,
    I::Item: IntoFuture,
    <I::Item as IntoFuture>::IntoFuture: Send + 'a,
{
    futs.into_iter().map(|f| Some(Box::pin(f.into_future()) as Boxed<'a, _>)).collect()
}

/// Polls every unfinished future in `futs` once, in order, handing each output to
/// `done(index, output)`, which may end the combinator with `Some`. `Ready(None)` once every
/// future has finished; finished futures are dropped at once.
fn poll_each<O, R>(
    futs: &mut [Option<Boxed<'_, O>>],
    cx: &mut Context<'_>,
    mut done: impl FnMut(usize, O) -> Option<R>,
) -> Poll<Option<R>> {
    let mut pending = false;
    for (i, slot) in futs.iter_mut().enumerate() {
        if let Some(f) = slot {
            match f.as_mut().poll(cx) {
                Poll::Ready(out) => {
                    *slot = None;
                    if let Some(r) = done(i, out) {
                        return Poll::Ready(Some(r));
                    }
                }
                Poll::Pending => pending = true,
            }
        }
    }
    if pending {
        Poll::Pending
    } else {
        Poll::Ready(None)
    }
}

/// Takes every collected value, in order (each was filled exactly once).
fn collected<V>(slots: &mut [Option<V>]) -> Vec<V> {
    slots.iter_mut().map(|v| v.take().expect("every output arrived")).collect()
}

/// Every value in order once all futures are `Ok`, or the first `Err` (the others are
/// dropped then).
pub async fn all<'a, I, T, E>(futs: I) -> Result<Vec<T>, E>
where
    I: IntoIterator,
    I::Item: IntoFuture<Output = Result<T, E>>,
    <I::Item as IntoFuture>::IntoFuture: Send + 'a,
{
    let mut futs = boxed(futs);
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let step = poll_each(&mut futs, cx, |i, r| match r {
            Ok(v) => {
                out[i] = Some(v);
                None
            }
            Err(e) => Some(e),
        });
        step.map(|first_err| first_err.map_or_else(|| Ok(collected(&mut out)), Err))
    })
    .await
}

/// Every result in order, once every future is done.
pub async fn all_settled<'a, I, T, E>(futs: I) -> Vec<Result<T, E>>
where
    I: IntoIterator,
    I::Item: IntoFuture<Output = Result<T, E>>,
    <I::Item as IntoFuture>::IntoFuture: Send + 'a,
{
    let mut futs = boxed(futs);
    let mut out: Vec<Option<Result<T, E>>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let step = poll_each(&mut futs, cx, |i, r| {
            out[i] = Some(r);
            None::<()>
        });
        step.map(|_| collected(&mut out))
    })
    .await
}

/// The result of the first future to finish (earlier futures win ties); the others are
/// dropped.
pub async fn race<'a, I, T, E>(futs: I) -> Result<T, E>
where
    I: IntoIterator,
    I::Item: IntoFuture<Output = Result<T, E>>,
    <I::Item as IntoFuture>::IntoFuture: Send + 'a,
{
    let mut futs = boxed(futs);
    std::future::poll_fn(move |cx| match poll_each(&mut futs, cx, |_, r| Some(r)) {
        Poll::Ready(Some(r)) => Poll::Ready(r),
        // No input at all: like JavaScript's `Promise.race([])`, never settles.
        Poll::Ready(None) | Poll::Pending => Poll::Pending,
    })
    .await
}

/// The first `Ok` (the others are dropped then), or every error in order if all failed.
pub async fn any<'a, I, T, E>(futs: I) -> Result<T, Vec<E>>
where
    I: IntoIterator,
    I::Item: IntoFuture<Output = Result<T, E>>,
    <I::Item as IntoFuture>::IntoFuture: Send + 'a,
{
    let mut futs = boxed(futs);
    let mut errs: Vec<Option<E>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let step = poll_each(&mut futs, cx, |i, r| match r {
            Ok(v) => Some(v),
            Err(e) => {
                errs[i] = Some(e);
                None
            }
        });
        step.map(|first_ok| first_ok.ok_or_else(|| collected(&mut errs)))
    })
    .await
}

#[cfg(loom)]
mod loom_tests {
    use super::*;

    /// A settle racing a wait's registration: the waiter always gets the value (loom reports
    /// a deadlock if it sleeps through the settle).
    #[test]
    fn loom_settle_vs_wait() {
        loom::model(|| {
            let p: Promise<u32, ()> = Promise::new();
            let p2 = p.clone();
            let t = loom::thread::spawn(move || p2.resolve(7).unwrap());
            assert_eq!(crate::loom::block_on(p.get()), Ok(7));
            t.join().unwrap();
        });
    }

    /// Resolve racing reject, with a wait dropped meanwhile: exactly one settle wins, and the
    /// loser gets its value back.
    #[test]
    fn loom_resolve_vs_reject() {
        loom::model(|| {
            let p: Promise<u32, u32> = Promise::new();
            let (a, b) = (p.clone(), p.clone());
            let t = loom::thread::spawn(move || a.resolve(1).is_ok());
            let rejected = b.reject(2).is_ok();
            drop(p.get());
            let resolved = t.join().unwrap();
            assert!(resolved ^ rejected, "exactly one settle wins");
            let r = p.try_get().unwrap();
            assert_eq!(r, if resolved { Ok(1) } else { Err(2) });
        });
    }
}
