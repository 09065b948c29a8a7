//! The shared state of one channel and every operation on it, under one lock.
//!
//! Invariants (checked by [`State::check`] in the tests):
//! - parked receivers only while the buffer is empty: `!recvq.is_empty() => buf.is_empty()`;
//! - parked senders only while the buffer is full: `!sendq.is_empty() => buf.len() >= cap`;
//! - no sender is parked once the channel is closed, and no receiver once it is also
//!   drained (no served receiver still holds a value that may come back: `in_flight == 0`);
//! - the buffer holds at most `cap` values, plus one per receiver that was served a value and
//!   dropped before it saw it (the value goes back to the front, see [`Chan::cancel_recv`]).
//!
//! No user code runs under the lock except `Waker::clone` (of a foreign waker; an omni task's
//! waker is copied by `rt::deadlock::keep`), `will_wake` and waker drops: values taken out of
//! the state are dropped and wakers are woken after the guard is released, so a `T` whose
//! destructor uses the same channel cannot deadlock.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::lock::{Lock, LockGuard};
use super::waiters::{Entry, Queue, Slab, Status, Wake};
use crate::loom::{AtomicUsize, Ordering::*};
use crate::rt::deadlock::{keep, Kind, Origin};

/// One channel: the state behind its lock and the handle counts.
pub(crate) struct Chan<T> {
    state: Lock<State<T>>,
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
    /// Where it was created, for deadlock reports.
    pub(crate) origin: Origin,
}

pub(crate) struct State<T> {
    pub(crate) buf: VecDeque<T>,
    /// 0 for rendezvous, `usize::MAX` for unbounded.
    pub(crate) cap: usize,
    pub(crate) closed: bool,
    /// Receivers served a value they have not returned yet (entries `Done` in the receive
    /// direction). While one exists the channel is not drained even if closed: the value may
    /// come back (its receiver dropped), so receivers wait rather than report `RecvError`.
    pub(crate) in_flight: usize,
    pub(crate) slab: Slab<T>,
    pub(crate) recvq: Queue,
    pub(crate) sendq: Queue,
}

/// Fires a wake taken out of the state, after the lock is released.
#[inline]
pub(crate) fn fire(w: Option<Wake>) {
    if let Some(w) = w {
        w.fire();
    }
}

/// Fires the wakes taken out of the state, after the lock is released.
#[inline]
pub(crate) fn fire_all(wakes: Vec<Wake>) {
    if !wakes.is_empty() {
        wakes.into_iter().for_each(Wake::fire);
    }
}

/// Claims a queued entry for serving: a select arm must win its select's token first.
fn claim<T>(e: &mut Entry<T>) -> bool {
    match &e.wake {
        Some(Wake::Select(token, arm)) => token.try_select(*arm),
        _ => true,
    }
}

impl<T> State<T> {
    /// Hands `v` to the first parked receiver that can take it; `Err(v)` if none.
    #[inline]
    pub(crate) fn give_to_receiver(&mut self, v: T) -> Result<Option<Wake>, T> {
        if self.recvq.is_empty() {
            return Err(v);
        }
        self.give_to_parked_receiver(v)
    }

    #[inline(always)]
    fn give_to_parked_receiver(&mut self, v: T) -> Result<Option<Wake>, T> {
        while let Some(i) = self.slab.pop_front(&mut self.recvq) {
            let e = self.slab.get(i);
            if !claim(e) {
                e.status = Status::Lost;
                continue;
            }
            e.value = Some(v);
            e.status = Status::Done;
            let w = e.wake.take();
            self.in_flight += 1;
            return Ok(w);
        }
        Err(v)
    }

    /// Takes the value of the first parked sender that can give one: that send completes.
    #[inline]
    pub(crate) fn take_from_sender(&mut self) -> Option<(T, Option<Wake>)> {
        if self.sendq.is_empty() {
            return None;
        }
        self.take_from_parked_sender()
    }

    fn take_from_parked_sender(&mut self) -> Option<(T, Option<Wake>)> {
        while let Some(i) = self.slab.pop_front(&mut self.sendq) {
            let e = self.slab.get(i);
            if !claim(e) {
                e.status = Status::Lost;
                continue;
            }
            let v = e.value.take().expect("a parked sender holds its value");
            e.status = Status::Done;
            return Some((v, e.wake.take()));
        }
        None
    }

    /// Sends without waiting: to a parked receiver first, else into the buffer if it has room.
    pub(crate) fn try_send(&mut self, v: T) -> Result<Option<Wake>, TrySendError<T>> {
        if self.closed {
            return Err(TrySendError::Closed(v));
        }
        match self.give_to_receiver(v) {
            Ok(w) => Ok(w),
            Err(v) if self.buf.len() < self.cap => {
                self.buf.push_back(v);
                Ok(None)
            }
            Err(v) => Err(TrySendError::Full(v)),
        }
    }

    /// Receives without waiting: from the buffer (admitting the first parked sender into the
    /// room made), else straight from a parked sender (rendezvous).
    pub(crate) fn try_recv(&mut self) -> Result<(T, Option<Wake>), TryRecvError> {
        if let Some(v) = self.buf.pop_front() {
            let mut w = None;
            if self.buf.len() < self.cap {
                if let Some((s, sw)) = self.take_from_sender() {
                    self.buf.push_back(s);
                    w = sw;
                }
            }
            return Ok((v, w));
        }
        if let Some((v, w)) = self.take_from_sender() {
            return Ok((v, w));
        }
        Err(if self.drained() { TryRecvError::Closed } else { TryRecvError::Empty })
    }

    /// Closed, and no value can come back from a served receiver.
    fn drained(&self) -> bool {
        self.closed && self.in_flight == 0
    }

    /// A served receiver entry was freed (its value returned or passed on): once the last
    /// one is gone on a closed channel, receivers parked meanwhile learn it is drained.
    #[inline]
    pub(crate) fn served_freed(&mut self) -> Vec<Wake> {
        self.in_flight -= 1;
        if self.drained() {
            self.wake_closed()
        } else {
            Vec::new()
        }
    }

    /// Whether a receive would complete now (a value or the closed error).
    pub(crate) fn recv_ready(&self) -> bool {
        !self.buf.is_empty() || !self.sendq.is_empty() || self.drained()
    }

    /// Closes the channel: every parked waiter is unlinked and marked `Closed` (a select arm
    /// only if it wins its token). Returns the wakes to fire.
    fn close(&mut self) -> Vec<Wake> {
        if self.closed {
            return Vec::new();
        }
        self.closed = true;
        self.wake_closed()
    }

    /// Unlinks the parked senders, and the parked receivers if the channel is drained, marking
    /// them `Closed` (a select arm only if it wins its token). Returns the wakes to fire.
    fn wake_closed(&mut self) -> Vec<Wake> {
        let mut wakes = Vec::new();
        let recvq = if self.in_flight == 0 { &mut self.recvq } else { &mut Queue::new() };
        for q in [recvq, &mut self.sendq] {
            while let Some(i) = self.slab.pop_front(q) {
                let e = self.slab.get(i);
                if claim(e) {
                    e.status = Status::Closed;
                    wakes.extend(e.wake.take());
                } else {
                    e.status = Status::Lost;
                }
            }
        }
        wakes
    }

    /// Asserts the invariants of the module doc.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn check(&self) {
        if !self.recvq.is_empty() {
            assert!(self.buf.is_empty(), "receivers parked beside buffered values");
        }
        if !self.sendq.is_empty() {
            assert!(self.buf.len() >= self.cap, "senders parked beside room in the buffer");
        }
        if self.closed {
            assert!(self.sendq.is_empty(), "a sender parked on a closed channel");
            assert!(self.recvq.is_empty() || self.in_flight > 0, "parked on a drained channel");
        }
    }
}

/// What a waiter's owner does when it looks at its entry again.
pub(crate) enum Seen<T> {
    /// Still queued (the waker was refreshed).
    Waiting,
    /// Served: a receiver's value, or `None` for a sender.
    Done(Option<T>),
    /// The channel closed: a sender's value comes back.
    Closed(Option<T>),
    /// Unlinked unserved (its select committed another arm).
    Lost,
}

impl<T> Chan<T> {
    #[track_caller]
    pub(crate) fn new(cap: usize) -> Chan<T> {
        Chan {
            origin: Origin::here(),
            state: Lock::new(State {
                buf: VecDeque::with_capacity(cap.min(1024)),
                cap,
                closed: false,
                in_flight: 0,
                slab: Slab::new(),
                recvq: Queue::new(),
                sendq: Queue::new(),
            }),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, State<T>> {
        self.state.lock()
    }

    pub(crate) fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let w = self.lock().try_send(v)?;
        fire(w);
        Ok(())
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let (v, w) = self.lock().try_recv()?;
        fire(w);
        Ok(v)
    }

    /// Closes the channel; returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        let mut st = self.lock();
        let was = st.closed;
        let wakes = st.close();
        drop(st);
        fire_all(wakes);
        !was
    }

    /// Closes the channel and drops what is buffered (the last receiver is gone).
    pub(crate) fn close_and_drain(&self) {
        let mut st = self.lock();
        let wakes = st.close();
        let buf = std::mem::take(&mut st.buf);
        drop(st);
        fire_all(wakes);
        drop(buf);
    }

    pub(crate) fn add_sender(&self) {
        self.senders.fetch_add(1, Relaxed);
    }

    pub(crate) fn add_receiver(&self) {
        self.receivers.fetch_add(1, Relaxed);
    }

    /// Drops a sender count; the last one closes the channel.
    pub(crate) fn drop_sender(&self) {
        if self.senders.fetch_sub(1, AcqRel) == 1 {
            self.close();
        }
    }

    /// Drops a receiver count; the last one closes the channel and drops the buffer.
    pub(crate) fn drop_receiver(&self) {
        if self.receivers.fetch_sub(1, AcqRel) == 1 {
            self.close_and_drain();
        }
    }

    /// Looks at the waiter entry `i`, freeing it unless it is still queued.
    #[inline(always)]
    fn look(st: &mut State<T>, i: u32, waker: Option<&Waker>) -> Seen<T> {
        let e = st.slab.get(i);
        match e.status {
            Status::Queued => {
                if let (Some(Wake::Task(w)), Some(new)) = (&mut e.wake, waker) {
                    if !w.will_wake(new) {
                        *w = keep(new);
                    }
                }
                Seen::Waiting
            }
            Status::Done => Seen::Done(st.slab.free(i).0),
            Status::Closed => Seen::Closed(st.slab.free(i).0),
            Status::Lost => {
                st.slab.free(i);
                Seen::Lost
            }
            Status::Free => unreachable!("omni: a channel future lost its waiter entry"),
        }
    }

    /// Polls a receive whose parked entry (if any) is `slot`. Spends a unit of the task's
    /// cooperative budget when it completes (none when it parks).
    pub(crate) fn poll_recv(
        &self,
        slot: &mut Option<u32>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        let r = crate::rt::coop::budgeted(cx, |cx| self.poll_recv_inner(slot, cx));
        if r.is_pending() {
            self.origin.note(Kind::Recv);
        }
        r
    }

    fn poll_recv_inner(
        &self,
        slot: &mut Option<u32>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, RecvError>> {
        let mut st = self.lock();
        if let Some(i) = *slot {
            match Self::look(&mut st, i, Some(cx.waker())) {
                Seen::Waiting => return Poll::Pending,
                Seen::Done(v) => {
                    *slot = None;
                    let wakes = st.served_freed();
                    drop(st);
                    fire_all(wakes);
                    return Poll::Ready(Ok(v.expect("a served receiver holds its value")));
                }
                // Closed: drain what is left (a value passed back by a dropped receiver).
                Seen::Closed(_) | Seen::Lost => *slot = None,
            }
        }
        match st.try_recv() {
            Ok((v, w)) => {
                drop(st);
                fire(w);
                Poll::Ready(Ok(v))
            }
            Err(TryRecvError::Closed) => Poll::Ready(Err(RecvError)),
            Err(TryRecvError::Empty) => {
                let st = &mut *st;
                *slot = Some(st.slab.push(&mut st.recvq, None, Wake::Task(keep(cx.waker()))));
                Poll::Pending
            }
        }
    }

    /// Polls a send of `value` (taken on the first poll) whose parked entry is `slot`. Spends
    /// a unit of the task's cooperative budget when it completes (none when it parks).
    pub(crate) fn poll_send(
        &self,
        slot: &mut Option<u32>,
        value: &mut Option<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let r = crate::rt::coop::budgeted(cx, |cx| self.poll_send_inner(slot, value, cx));
        if r.is_pending() {
            self.origin.note(Kind::Send);
        }
        r
    }

    fn poll_send_inner(
        &self,
        slot: &mut Option<u32>,
        value: &mut Option<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError<T>>> {
        let mut st = self.lock();
        if let Some(i) = *slot {
            return match Self::look(&mut st, i, Some(cx.waker())) {
                Seen::Waiting => Poll::Pending,
                Seen::Done(_) => {
                    *slot = None;
                    Poll::Ready(Ok(()))
                }
                Seen::Closed(v) => {
                    *slot = None;
                    drop(st);
                    Poll::Ready(Err(SendError(v.expect("a closed sender keeps its value"))))
                }
                Seen::Lost => unreachable!("omni: a plain send lost a select"),
            };
        }
        let v = value.take().expect("omni: a send future polled after it completed");
        match st.try_send(v) {
            Ok(w) => {
                drop(st);
                fire(w);
                Poll::Ready(Ok(()))
            }
            Err(TrySendError::Closed(v)) => {
                drop(st);
                Poll::Ready(Err(SendError(v)))
            }
            Err(TrySendError::Full(v)) => {
                let st = &mut *st;
                let w = Wake::Task(keep(cx.waker()));
                *slot = Some(st.slab.push(&mut st.sendq, Some(v), w));
                Poll::Pending
            }
        }
    }

    /// A receive that may still be parked is dropped: its entry goes away, and a value it was
    /// served but never saw is passed on (to the next parked receiver, else to the front of
    /// the buffer), so nothing is consumed and no other receiver sleeps beside a value.
    #[inline]
    pub(crate) fn cancel_recv(&self, slot: &mut Option<u32>) {
        if let Some(i) = slot.take() {
            self.cancel_parked_recv(i);
        }
    }

    fn cancel_parked_recv(&self, i: u32) {
        let (held, wake, wakes) = {
            let mut guard = self.lock();
            let st = &mut *guard;
            match st.slab.get(i).status {
                Status::Queued => {
                    st.slab.unlink(&mut st.recvq, i);
                    st.slab.get(i).status = Status::Lost;
                    (st.slab.free(i), None, Vec::new())
                }
                Status::Done => {
                    let (v, w) = st.slab.free(i);
                    let v = v.expect("a served receiver holds its value");
                    // Pass it on first (counted in flight again), then uncount ours.
                    let next = match st.give_to_receiver(v) {
                        Ok(next) => next,
                        Err(v) => {
                            st.buf.push_front(v);
                            None
                        }
                    };
                    ((None, w), next, st.served_freed())
                }
                _ => (st.slab.free(i), None, Vec::new()),
            }
        };
        drop(held);
        fire(wake);
        fire_all(wakes);
    }

    /// A send that may still be parked is dropped: if its entry is still queued it is
    /// removed, so the value is delivered to no one (it drops with the future).
    #[inline]
    pub(crate) fn cancel_send(&self, slot: &mut Option<u32>) {
        if let Some(i) = slot.take() {
            self.cancel_parked_send(i);
        }
    }

    fn cancel_parked_send(&self, i: u32) {
        let held = {
            let mut st = self.lock();
            let st = &mut *st;
            if st.slab.get(i).status == Status::Queued {
                st.slab.unlink(&mut st.sendq, i);
                st.slab.get(i).status = Status::Lost;
            }
            st.slab.free(i)
        };
        drop(held);
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().buf.len()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        let cap = self.lock().cap;
        (cap != usize::MAX).then_some(cap)
    }

    /// Debug counts: (buffered, parked senders, parked receivers... as live entries), closed.
    pub(crate) fn debug_counts(&self) -> (usize, usize, bool) {
        let st = self.lock();
        (st.buf.len(), st.slab.live(), st.closed)
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn check(&self) -> usize {
        let st = self.lock();
        st.check();
        st.slab.live()
    }
}
