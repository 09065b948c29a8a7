//! A broadcast channel: every receiver sees every value sent after it subscribed.
//!
//! [`broadcast(n)`](crate::chan::broadcast()) makes a [`Sender`] and a first [`Receiver`]
//! over a ring of `n` slots. A send never waits: it writes the next slot, overwriting the
//! oldest value if the ring is full, and a receiver that falls more than `n` values behind
//! gets [`RecvError::Lagged`] with the number of values it missed, then continues from the
//! oldest value still held (tokio's broadcast semantics). Every receiver gets its own clone of
//! each value, except the last receiver to read a slot, which takes the value itself.
//!
//! # Who owns what
//!
//! One mutex guards the whole ring, so there is no `unsafe` here. A slot holds the value, its
//! position (the count of values sent before it) and `unseen`: how many receivers still have
//! to read it. A receiver owns only its own next position; it is counted in the `unseen` of
//! every held slot from that position on. The sender sets `unseen` to the number of receivers
//! when it writes a slot; a clone of a receiver adds itself to the slots it has yet to read;
//! a dropped receiver removes itself from them.
//!
//! # Invariants
//!
//! - A slot holds its value exactly while `unseen > 0`: the value is dropped (or moved out) by
//!   whoever brings `unseen` to zero, or when a send overwrites the slot.
//! - A receiver at position `next` has missed `oldest - next` values when `next < oldest`,
//!   where `oldest = tail - n` is the oldest position still in the ring; it reports that count
//!   once and moves to `oldest`.
//! - A poll that returns `Pending` consumes nothing; only a `Ready` moves a receiver on.
//! - Wakers are woken and values dropped after the lock is released, never under it, except
//!   `T::clone`, which runs under the lock (a panicking clone leaves the ring unchanged).
//!
//! Waiting tasks are found through one waker slot per receiver (allocated when the receiver is
//! made, reused after it is dropped), so receiving and sending allocate nothing in steady
//! state. A send wakes every parked receiver, in batches of 32 outside the lock.

use crate::chan::error::SendError;
use crate::loom::{Condvar, Mutex, MutexGuard};
use crate::rt::coop;
use crate::rt::deadlock::{keep, Kind, Origin};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Makes a broadcast channel with room for `capacity` values: a [`Sender`] (clone it for more
/// senders) and a first [`Receiver`] (more come from [`Sender::subscribe`] and `clone`).
///
/// # Panics
///
/// If `capacity` is 0.
///
/// # Examples
///
/// ```
/// let (tx, mut a) = omni::chan::broadcast(8);
/// let mut b = tx.subscribe();
/// assert_eq!(tx.send("hi"), Ok(2));
/// assert_eq!(a.try_recv(), Ok("hi"));
/// assert_eq!(b.try_recv(), Ok("hi"));
/// ```
#[track_caller]
pub fn broadcast<T: Clone>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "omni::chan::broadcast: the capacity must be at least 1");
    let slots = (0..capacity).map(|_| Slot { pos: 0, unseen: 0, value: None }).collect();
    let shared = Arc::new(Shared {
        origin: Origin::here(),
        ring: Mutex::new(Ring {
            slots,
            tail: 0,
            senders: 1,
            receivers: 0,
            held: 0,
            waiters: Vec::new(),
            parked: 0,
            blocked: 0,
        }),
        cond: Condvar::new(),
    });
    let rx = Receiver::new(&shared, &mut shared.lock(), 0);
    (Sender { shared }, rx)
}

/// The error of [`Receiver::recv`] and [`Receiver::recv_blocking`].
///
/// # Examples
///
/// ```
/// use omni::chan::broadcast::RecvError;
/// let (tx, mut rx) = omni::chan::broadcast(1);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert_eq!(rx.recv_blocking(), Err(RecvError::Lagged(1)));
/// assert_eq!(rx.recv_blocking(), Ok(2));
/// drop(tx);
/// assert_eq!(rx.recv_blocking(), Err(RecvError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecvError {
    /// Every sender is gone and this receiver has seen every value.
    Closed,
    /// The receiver fell behind: this many values were overwritten before it read them. The
    /// next receive gives the oldest value still held.
    Lagged(u64),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str("receiving on a closed and drained channel"),
            RecvError::Lagged(k) => write!(f, "the receiver lagged behind by {k} values"),
        }
    }
}

impl std::error::Error for RecvError {}

/// The error of [`Receiver::try_recv`].
///
/// # Examples
///
/// ```
/// use omni::chan::broadcast::TryRecvError;
/// let (tx, mut rx) = omni::chan::broadcast::<u8>(4);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// Nothing new now; a sender may still send.
    Empty,
    /// Every sender is gone and this receiver has seen every value.
    Closed,
    /// The receiver fell behind by this many values (see [`RecvError::Lagged`]).
    Lagged(u64),
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Closed => f.write_str("receiving on a closed and drained channel"),
            TryRecvError::Lagged(k) => write!(f, "the receiver lagged behind by {k} values"),
        }
    }
}

impl std::error::Error for TryRecvError {}

/// The item error of the [`Stream`](futures_core::Stream) of a [`Receiver`]: this many values
/// were missed. The stream goes on after it and ends when the channel is closed and drained.
///
/// # Examples
///
/// ```
/// assert_eq!(omni::chan::broadcast::Lagged(3).to_string(), "the receiver lagged behind by 3 values");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lagged(pub u64);

impl fmt::Display for Lagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the receiver lagged behind by {} values", self.0)
    }
}

impl std::error::Error for Lagged {}

struct Shared<T> {
    /// Where it was created, for deadlock reports.
    origin: Origin,
    ring: Mutex<Ring<T>>,
    /// Signalled, while `blocked > 0`, on every send and when the last sender goes.
    cond: Condvar,
}

struct Ring<T> {
    slots: Box<[Slot<T>]>,
    /// The position of the next value sent: the number of values sent so far.
    tail: u64,
    senders: usize,
    receivers: usize,
    /// Slots that hold a value.
    held: usize,
    /// One waker slot per receiver (indexed by `Receiver::waiter`); slots of dropped
    /// receivers are reused.
    waiters: Vec<Waiter>,
    /// Waker slots that hold a waker.
    parked: usize,
    /// Threads waiting in `recv_blocking`.
    blocked: usize,
}

/// A receiver's waker slot.
struct Waiter {
    /// Owned by a live receiver.
    in_use: bool,
    /// The waker of that receiver's pending `recv`, if any.
    waker: Option<Waker>,
}

struct Slot<T> {
    pos: u64,
    /// Receivers that have yet to read this slot; the value is held while this is not zero.
    unseen: usize,
    value: Option<T>,
}

impl<T> Ring<T> {
    fn cap(&self) -> u64 {
        self.slots.len() as u64
    }

    /// The oldest position still in the ring.
    fn oldest(&self) -> u64 {
        self.tail.saturating_sub(self.cap())
    }

    fn slot(&mut self, pos: u64) -> &mut Slot<T> {
        let i = (pos % self.cap()) as usize;
        let slot = &mut self.slots[i];
        debug_assert_eq!(slot.pos, pos, "omni: broadcast slot holds another position");
        slot
    }

    /// Receives at `*next`, moving it on unless the result is `Empty` or `Closed`.
    fn try_recv(&mut self, next: &mut u64) -> Result<T, TryRecvError>
    where
        T: Clone,
    {
        if *next == self.tail {
            return Err(if self.senders == 0 { TryRecvError::Closed } else { TryRecvError::Empty });
        }
        let oldest = self.oldest();
        if *next < oldest {
            let missed = oldest - *next;
            *next = oldest;
            return Err(TryRecvError::Lagged(missed));
        }
        let slot = self.slot(*next);
        let v = if slot.unseen == 1 {
            slot.value.take()
        } else {
            // User code under the lock; if it panics nothing has changed yet.
            slot.value.clone()
        };
        let v = v.expect("omni: broadcast slot with unseen readers holds no value");
        slot.unseen -= 1;
        if slot.unseen == 0 {
            self.held -= 1;
        }
        *next += 1;
        Ok(v)
    }

    fn waiter_slot(&mut self) -> usize {
        // Scanning is fine here: this runs once per receiver made, not per message.
        if let Some(i) = self.waiters.iter().position(|w| !w.in_use) {
            self.waiters[i].in_use = true;
            return i;
        }
        self.waiters.push(Waiter { in_use: true, waker: None });
        self.waiters.len() - 1
    }

    fn clear_waker(&mut self, waiter: usize) {
        if self.waiters[waiter].waker.take().is_some() {
            self.parked -= 1;
        }
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Ring<T>> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every parked receiver and blocked thread, releasing the lock.
    fn wake_all<'a>(&'a self, mut ring: MutexGuard<'a, Ring<T>>) {
        if ring.blocked > 0 {
            self.cond.notify_all();
        }
        let mut from = 0;
        // Waker slots before `from` that fill again while the lock is released belong to
        // polls that came after this wake-up, and saw its effect.
        while ring.parked > 0 && from < ring.waiters.len() {
            let mut batch: [Option<Waker>; 32] = Default::default();
            let mut n = 0;
            while n < batch.len() && from < ring.waiters.len() {
                if let Some(w) = ring.waiters[from].waker.take() {
                    ring.parked -= 1;
                    batch[n] = Some(w);
                    n += 1;
                }
                from += 1;
            }
            let more = ring.parked > 0 && from < ring.waiters.len();
            drop(ring);
            batch.into_iter().flatten().for_each(Waker::wake);
            if !more {
                return;
            }
            ring = self.lock();
        }
    }
}

/// The sending half of a [`broadcast`](crate::chan::broadcast()) channel. Clone it for more
/// senders; the channel closes when the last one is dropped.
///
/// # Examples
///
/// ```
/// let (tx, rx) = omni::chan::broadcast::<u32>(2);
/// let tx2 = tx.clone();
/// assert_eq!(tx2.receiver_count(), 1);
/// drop(rx);
/// assert_eq!(tx.receiver_count(), 0);
/// ```
///
/// It is `Send` and `Sync` when `T` is `Send`; a value that must stay on its thread cannot be
/// broadcast to another:
///
/// ```compile_fail
/// let (tx, rx) = omni::chan::broadcast::<std::rc::Rc<u8>>(1);
/// std::thread::spawn(move || drop(rx));
/// ```
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Sends `v` to every receiver, without waiting: if the ring is full the oldest value is
    /// overwritten, and receivers that had not read it will get [`RecvError::Lagged`].
    /// Returns the number of receivers that will see `v` (unless they lag).
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value when there is no receiver.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = omni::chan::broadcast(4);
    /// assert_eq!(tx.send(1), Ok(1));
    /// drop(rx);
    /// assert_eq!(tx.send(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn send(&self, v: T) -> Result<usize, SendError<T>> {
        let mut ring = self.shared.lock();
        if ring.receivers == 0 {
            return Err(SendError(v));
        }
        let pos = ring.tail;
        let receivers = ring.receivers;
        let i = (pos % ring.cap()) as usize;
        let slot = &mut ring.slots[i];
        let overwritten = slot.value.replace(v);
        slot.pos = pos;
        slot.unseen = receivers;
        if overwritten.is_none() {
            ring.held += 1;
        }
        ring.tail = pos + 1;
        self.shared.wake_all(ring);
        drop(overwritten);
        Ok(receivers)
    }

    /// Makes a new receiver that sees every value sent from now on.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = omni::chan::broadcast(4);
    /// tx.send(1).unwrap();
    /// let mut late = tx.subscribe();
    /// tx.send(2).unwrap();
    /// assert_eq!(late.try_recv(), Ok(2));
    /// ```
    pub fn subscribe(&self) -> Receiver<T> {
        let mut ring = self.shared.lock();
        let tail = ring.tail;
        Receiver::new(&self.shared, &mut ring, tail)
    }

    /// The number of receivers alive.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = omni::chan::broadcast::<u8>(1);
    /// let rx2 = rx.clone();
    /// assert_eq!(tx.receiver_count(), 2);
    /// ```
    pub fn receiver_count(&self) -> usize {
        self.shared.lock().receivers
    }

    /// The number of values held: sent, not yet overwritten, and not yet read by every
    /// receiver. At most the capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = omni::chan::broadcast(2);
    /// for i in 0..3 {
    ///     tx.send(i).unwrap();
    /// }
    /// assert_eq!(tx.len(), 2);
    /// assert!(rx.try_recv().is_err()); // lagged by one
    /// rx.try_recv().unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.shared.lock().held
    }

    /// Whether no value is held (see [`len`](Self::len)).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = omni::chan::broadcast::<u8>(2);
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.shared.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut ring = self.shared.lock();
        ring.senders -= 1;
        if ring.senders == 0 {
            self.shared.wake_all(ring);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ring = self.shared.lock();
        f.debug_struct("broadcast::Sender")
            .field("capacity", &ring.slots.len())
            .field("held", &ring.held)
            .field("senders", &ring.senders)
            .field("receivers", &ring.receivers)
            .finish()
    }
}

/// A receiving half of a [`broadcast`](crate::chan::broadcast()) channel.
///
/// A clone starts at the same position as the original: both will see the same values. The
/// receiver is also a [`Stream`](futures_core::Stream) of `Result<T, Lagged>`: a lag is an
/// item (so a consumer that cares can see it, and one that does not can skip `Err`s), and the
/// stream ends when the channel is closed and drained.
///
/// # Examples
///
/// ```
/// omni::block_on(async {
///     let (tx, mut rx) = omni::chan::broadcast(16);
///     omni::spawn(async move {
///         for i in 0..3 {
///             tx.send(i).unwrap();
///         }
///     });
///     let mut got = Vec::new();
///     while let Ok(v) = rx.recv().await {
///         got.push(v);
///     }
///     assert_eq!(got, [0, 1, 2]);
/// });
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The position of the next value to read.
    next: u64,
    /// This receiver's waker slot.
    waiter: usize,
    /// The waker slot may hold this receiver's waker.
    registered: bool,
}

impl<T> Receiver<T> {
    fn new(shared: &Arc<Shared<T>>, ring: &mut Ring<T>, next: u64) -> Receiver<T> {
        ring.receivers += 1;
        let waiter = ring.waiter_slot();
        Receiver { shared: shared.clone(), next, waiter, registered: false }
    }

    /// Waits for the next value.
    ///
    /// Cancel-safe: dropping the future before it completes consumes nothing.
    ///
    /// # Errors
    ///
    /// [`RecvError::Lagged`] when values were overwritten before this receiver read them
    /// (the next call gives the oldest value held); [`RecvError::Closed`] when every sender is
    /// gone and every value was read.
    ///
    /// # Examples
    ///
    /// ```
    /// omni::block_on(async {
    ///     let (tx, mut rx) = omni::chan::broadcast(4);
    ///     tx.send('a').unwrap();
    ///     assert_eq!(rx.recv().await, Ok('a'));
    /// });
    /// ```
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { rx: self }
    }

    /// Receives the next value if there is one, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] when nothing new was sent; `Lagged` and `Closed` as for
    /// [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::chan::broadcast::TryRecvError;
    /// let (tx, mut rx) = omni::chan::broadcast(4);
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError>
    where
        T: Clone,
    {
        self.shared.lock().try_recv(&mut self.next)
    }

    /// Waits for the next value, blocking this OS thread. For threads outside the runtime (or
    /// in [`spawn_blocking`](crate::spawn_blocking)); in a task, use [`recv`](Self::recv).
    /// Called from a task it blocks the worker thread, and on a current-thread runtime it
    /// waits forever if the sender is a task of that runtime: it is not detected (yet).
    ///
    /// # Errors
    ///
    /// As for [`recv`](Self::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = omni::chan::broadcast(4);
    /// let t = std::thread::spawn(move || rx.recv_blocking());
    /// tx.send(7).unwrap();
    /// assert_eq!(t.join().unwrap(), Ok(7));
    /// ```
    pub fn recv_blocking(&mut self) -> Result<T, RecvError>
    where
        T: Clone,
    {
        self.shared.origin.set_external();
        let mut ring = self.shared.lock();
        loop {
            match ring.try_recv(&mut self.next) {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Lagged(k)) => return Err(RecvError::Lagged(k)),
                Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {
                    ring.blocked += 1;
                    ring = self.shared.cond.wait(ring).unwrap_or_else(|e| e.into_inner());
                    ring.blocked -= 1;
                }
            }
        }
    }

    /// The number of values this receiver can still read now: held and not yet read by it
    /// (values it lagged past are not counted).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = omni::chan::broadcast(4);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.len(), 2);
    /// rx.try_recv().unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        let ring = self.shared.lock();
        (ring.tail - self.next.max(ring.oldest())) as usize
    }

    /// Whether this receiver has nothing to read now (see [`len`](Self::len)).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = omni::chan::broadcast::<u8>(4);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The poll behind [`recv`](Self::recv) and the `Stream` impl.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>>
    where
        T: Clone,
    {
        coop::budgeted(cx, |cx| self.poll_ring(cx))
    }

    fn poll_ring(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>>
    where
        T: Clone,
    {
        let mut ring = self.shared.lock();
        let r = match ring.try_recv(&mut self.next) {
            Ok(v) => Ok(v),
            Err(TryRecvError::Lagged(k)) => Err(RecvError::Lagged(k)),
            Err(TryRecvError::Closed) => Err(RecvError::Closed),
            Err(TryRecvError::Empty) => {
                let waiter = self.waiter;
                match &mut ring.waiters[waiter].waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    Some(w) => *w = keep(cx.waker()),
                    slot @ None => {
                        *slot = Some(keep(cx.waker()));
                        ring.parked += 1;
                    }
                }
                self.registered = true;
                drop(ring);
                self.shared.origin.note(Kind::Broadcast);
                return Poll::Pending;
            }
        };
        if self.registered {
            ring.clear_waker(self.waiter);
            self.registered = false;
        }
        Poll::Ready(r)
    }

    /// Removes this receiver's waker, if it may be registered (a cancelled `recv`).
    fn unregister(&mut self) {
        if self.registered {
            self.shared.lock().clear_waker(self.waiter);
            self.registered = false;
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        let mut ring = self.shared.lock();
        let (from, to) = (self.next.max(ring.oldest()), ring.tail);
        for pos in from..to {
            ring.slot(pos).unseen += 1;
        }
        Receiver::new(&self.shared, &mut ring, self.next)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut ring = self.shared.lock();
        ring.receivers -= 1;
        ring.clear_waker(self.waiter);
        let waiter = self.waiter;
        ring.waiters[waiter].in_use = false;
        // Sends from now on do not count this receiver; give up its part of the held values.
        let end = ring.tail;
        let mut pos = self.next.max(ring.oldest());
        while pos < end {
            // A send while the lock was released may have moved the ring on.
            pos = pos.max(ring.oldest());
            if pos >= end {
                break;
            }
            let slot = ring.slot(pos);
            slot.unseen -= 1;
            pos += 1;
            if slot.unseen == 0 {
                let v = slot.value.take();
                ring.held -= 1;
                // Drop the value outside the lock (its destructor is user code).
                drop(ring);
                drop(v);
                ring = self.shared.lock();
            }
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Receiver")
            .field("next", &self.next)
            .field("len", &self.len())
            .finish()
    }
}

impl<T: Clone> futures_core::Stream for Receiver<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_recv(cx).map(|r| match r {
            Ok(v) => Some(Ok(v)),
            Err(RecvError::Lagged(k)) => Some(Err(Lagged(k))),
            Err(RecvError::Closed) => None,
        })
    }
}

/// The future of [`Receiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T> {
    rx: &'a mut Receiver<T>,
}

impl<T: Clone> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.rx.poll_recv(cx)
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        self.rx.unregister();
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("broadcast::Recv").field("next", &self.rx.next).finish()
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::{AtomicIsize, Ordering::SeqCst};

    use crate::loom::block_on;

    /// Counts live instances (clones included): a leak leaves it above zero, a double drop
    /// below.
    #[derive(Debug)]
    struct Counted(Arc<AtomicIsize>);

    impl Counted {
        fn new(live: &Arc<AtomicIsize>) -> Counted {
            live.fetch_add(1, SeqCst);
            Counted(live.clone())
        }
    }

    impl Clone for Counted {
        fn clone(&self) -> Counted {
            Counted::new(&self.0)
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_sub(1, SeqCst);
        }
    }

    /// Sends that overwrite the ring, racing the drop of a receiver that read nothing: the
    /// other receiver sees every value or an exact lag count, and once it has read everything
    /// no value is left alive, while the ring itself still exists.
    #[test]
    fn loom_chan_broadcast_send_vs_slow_receiver_drop() {
        loom::model(|| {
            let live = Arc::new(AtomicIsize::new(0));
            let (tx, mut fast) = broadcast::<Counted>(1);
            let slow = tx.subscribe();
            let keep = fast.shared.clone();
            let l = live.clone();
            let t = loom::thread::spawn(move || {
                tx.send(Counted::new(&l)).unwrap();
                tx.send(Counted::new(&l)).unwrap();
            });
            drop(slow);
            t.join().unwrap();
            let (mut got, mut missed) = (0, 0);
            loop {
                match fast.try_recv() {
                    Ok(_) => got += 1,
                    Err(TryRecvError::Lagged(k)) => missed += k,
                    Err(TryRecvError::Closed) => break,
                    Err(TryRecvError::Empty) => unreachable!("the sender is gone"),
                }
            }
            assert_eq!(got + missed, 2, "every value is read or counted as missed");
            assert_eq!(live.load(SeqCst), 0, "no value outlives its readers");
            drop(fast);
            drop(keep);
        });
    }

    /// A receiver awaiting in a poll loop is woken by a send from another thread and by the
    /// last sender's drop (loom reports a deadlock if a wake-up is lost).
    #[test]
    fn loom_chan_broadcast_await_is_woken() {
        loom::model(|| {
            let (tx, mut rx) = broadcast::<u32>(1);
            let t = loom::thread::spawn(move || {
                tx.send(1).unwrap();
            });
            let r = block_on(rx.recv());
            assert_eq!(r, Ok(1));
            assert_eq!(block_on(rx.recv()), Err(RecvError::Closed));
            t.join().unwrap();
        });
    }

    /// A clone racing sends: the clone is counted in exactly the slots it has yet to read,
    /// so both receivers get every value and nothing outlives them.
    #[test]
    fn loom_chan_broadcast_clone_vs_send() {
        loom::model(|| {
            let live = Arc::new(AtomicIsize::new(0));
            let (tx, mut a) = broadcast::<Counted>(2);
            let keep = a.shared.clone();
            let l = live.clone();
            let t = loom::thread::spawn(move || {
                tx.send(Counted::new(&l)).unwrap();
                tx.send(Counted::new(&l)).unwrap();
            });
            let mut b = a.clone();
            t.join().unwrap();
            for rx in [&mut a, &mut b] {
                let mut n = 0;
                while rx.try_recv().is_ok() {
                    n += 1;
                }
                assert_eq!(n, 2, "each receiver sees both values");
            }
            assert_eq!(live.load(SeqCst), 0, "no value outlives its readers");
            drop((a, b, keep));
        });
    }

    /// A thread blocked in `recv_blocking` is notified by a send and by the last sender's
    /// drop (loom reports a deadlock if a notification is lost).
    #[test]
    fn loom_chan_broadcast_recv_blocking_is_notified() {
        loom::model(|| {
            let (tx, mut rx) = broadcast::<u32>(1);
            let t = loom::thread::spawn(move || {
                tx.send(1).unwrap();
            });
            assert_eq!(rx.recv_blocking(), Ok(1));
            assert_eq!(rx.recv_blocking(), Err(RecvError::Closed));
            t.join().unwrap();
        });
    }
}
