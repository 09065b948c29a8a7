//! `StreamExt`: the iterator combinators users reach for, on any [`Stream`].
//!
//! Only what generators need most: `next`, `map`, `filter`, `take`, `zip`, `fold` and
//! `collect`. The adapters poll their inner stream directly and allocate nothing.

use futures_core::Stream;
use pin_project_lite::pin_project;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// Combinators for [`Stream`]s (generators among them), named after their `Iterator` twins.
///
/// # Examples
///
/// ```
/// use omni::gen::{Gen, StreamExt};
///
/// omni::block_on(async {
///     let naturals = Gen::new(|co| async move {
///         let mut n = 0u32;
///         loop {
///             co.yield_(n).await;
///             n += 1;
///         }
///     });
///     let v: Vec<u32> = naturals.filter(|n| n % 3 == 0).map(|n| n * n).take(4).collect().await;
///     assert_eq!(v, [0, 9, 36, 81]);
/// });
/// ```
pub trait StreamExt: Stream {
    /// The next item, or `None` at the end.
    fn next(&mut self) -> Next<'_, Self>
    where
        Self: Unpin,
    {
        Next { stream: self }
    }

    /// Each item passed through `f`.
    fn map<U, F: FnMut(Self::Item) -> U>(self, f: F) -> Map<Self, F>
    where
        Self: Sized,
    {
        Map { stream: self, f }
    }

    /// Only the items for which `pred` holds.
    fn filter<P: FnMut(&Self::Item) -> bool>(self, pred: P) -> Filter<Self, P>
    where
        Self: Sized,
    {
        Filter { stream: self, pred }
    }

    /// At most the first `n` items.
    fn take(self, n: usize) -> Take<Self>
    where
        Self: Sized,
    {
        Take { stream: self, left: n }
    }

    /// Pairs of items from `self` and `other`, until either ends.
    fn zip<S: Stream>(self, other: S) -> Zip<Self, S>
    where
        Self: Sized,
    {
        Zip { a: self, b: other, held: None }
    }

    /// Folds every item into an accumulator, starting from `init`.
    fn fold<B, F: FnMut(B, Self::Item) -> B>(self, init: B, mut f: F) -> impl Future<Output = B>
    where
        Self: Sized,
    {
        let mut stream = Box::pin(self);
        let mut acc = Some(init);
        poll_fn(move |cx| loop {
            match ready!(stream.as_mut().poll_next(cx)) {
                Some(item) => {
                    let a = acc.take().expect("fold polled after it returned");
                    acc = Some(f(a, item));
                }
                None => return Poll::Ready(acc.take().expect("fold polled after it returned")),
            }
        })
    }

    /// Every item, gathered into a collection.
    fn collect<C: Default + Extend<Self::Item>>(self) -> impl Future<Output = C>
    where
        Self: Sized,
    {
        self.fold(C::default(), |mut c, item| {
            c.extend(Some(item));
            c
        })
    }
}

impl<S: Stream + ?Sized> StreamExt for S {}

/// The future of [`StreamExt::next`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Next<'a, S: ?Sized> {
    stream: &'a mut S,
}

impl<S: Stream + Unpin + ?Sized> Future for Next<'_, S> {
    type Output = Option<S::Item>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut *self.stream).poll_next(cx)
    }
}

pin_project! {
    /// The stream of [`StreamExt::map`].
    #[derive(Debug)]
    #[must_use = "streams do nothing unless polled"]
    pub struct Map<S, F> {
        #[pin]
        stream: S,
        f: F,
    }
}

impl<S: Stream, U, F: FnMut(S::Item) -> U> Stream for Map<S, F> {
    type Item = U;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<U>> {
        let this = self.project();
        this.stream.poll_next(cx).map(|o| o.map(this.f))
    }
}

pin_project! {
    /// The stream of [`StreamExt::filter`].
    #[derive(Debug)]
    #[must_use = "streams do nothing unless polled"]
    pub struct Filter<S, P> {
        #[pin]
        stream: S,
        pred: P,
    }
}

impl<S: Stream, P: FnMut(&S::Item) -> bool> Stream for Filter<S, P> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let mut this = self.project();
        loop {
            match ready!(this.stream.as_mut().poll_next(cx)) {
                Some(item) if (this.pred)(&item) => return Poll::Ready(Some(item)),
                Some(_) => {}
                None => return Poll::Ready(None),
            }
        }
    }
}

pin_project! {
    /// The stream of [`StreamExt::take`].
    #[derive(Debug)]
    #[must_use = "streams do nothing unless polled"]
    pub struct Take<S> {
        #[pin]
        stream: S,
        left: usize,
    }
}

impl<S: Stream> Stream for Take<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        if *this.left == 0 {
            return Poll::Ready(None);
        }
        let r = ready!(this.stream.poll_next(cx));
        *this.left = if r.is_some() { *this.left - 1 } else { 0 };
        Poll::Ready(r)
    }
}

pin_project! {
    /// The stream of [`StreamExt::zip`].
    #[derive(Debug)]
    #[must_use = "streams do nothing unless polled"]
    pub struct Zip<A: Stream, B> {
        #[pin]
        a: A,
        #[pin]
        b: B,
        // An item of `a` waiting for its partner from `b`.
        held: Option<A::Item>,
    }
}

impl<A: Stream, B: Stream> Stream for Zip<A, B> {
    type Item = (A::Item, B::Item);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if this.held.is_none() {
            match ready!(this.a.poll_next(cx)) {
                Some(x) => *this.held = Some(x),
                None => return Poll::Ready(None),
            }
        }
        match ready!(this.b.poll_next(cx)) {
            Some(y) => Poll::Ready(Some((this.held.take().expect("held above"), y))),
            None => {
                *this.held = None;
                Poll::Ready(None)
            }
        }
    }
}
