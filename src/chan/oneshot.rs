//! A one-shot channel: one value, from one sender to one receiver.
//!
//! [`oneshot()`](crate::chan::oneshot()) makes a [`Sender`] and a [`Receiver`] that share one
//! heap block (an `Arc` holding a mutex-guarded state and a condition variable); nothing else
//! is ever allocated. The receiver is a future, and it also has [`Receiver::try_recv`] and
//! [`Receiver::recv_blocking`] for OS threads.
//!
//! # Who owns what
//!
//! Every field of the shared state is read and written under its one mutex, so there is no
//! `unsafe` here and no window in which one side reads a field that the other writes. That is
//! the design answer to RUSTSEC-2021-0124 (tokio's oneshot read the value cell after `close()`
//! without owning it): here ownership of the value *is* holding the lock. The lock is held
//! only for a few field moves; wakers are woken, and values dropped, after it is released, so
//! `Waker::wake` and `Drop for T` never run under it (only a waker's clone, or the drop of a
//! waker being replaced).
//!
//! # Invariants
//!
//! - The value is moved exactly once: into the state by `send` (only if the receiver is neither
//!   closed nor dropped, else it goes back to the caller), and out of it by the receiver or
//!   by the receiver's drop (which drops it); it is never left for the shared block's drop.
//! - Each side's destructor locks only if that side has not finished: a sender consumed by
//!   `send`, or a receiver that already got its value or the news that none will come, has
//!   nothing left to tell the other side.
//! - A closed receiver still receives a value that was sent before `close`; a send after
//!   `close` hands the value back.
//! - The receiver's waker is woken when the value arrives or the sender goes; the sender's
//!   `closed()` waker when the receiver closes or goes. A thread in `recv_blocking` is
//!   notified through the condition variable, which is signalled only while one waits.

use crate::chan::error::{RecvError, TryRecvError};
use crate::loom::{Condvar, Mutex, MutexGuard};
use crate::rt::coop;
use crate::rt::deadlock::{keep, Kind, Origin};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Makes a one-shot channel: a [`Sender`] that sends one value and a [`Receiver`] that is a
/// future of it.
///
/// # Examples
///
/// ```
/// omni::block_on(async {
///     let (tx, rx) = omni::chan::oneshot();
///     omni::spawn(async move { tx.send("done").unwrap() });
///     assert_eq!(rx.await, Ok("done"));
/// });
/// ```
#[track_caller]
pub fn oneshot<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        origin: Origin::here(),
        state: Mutex::new(State {
            value: None,
            sender: true,
            receiver: true,
            rx_waker: None,
            tx_waker: None,
            blocked: false,
        }),
        cond: Condvar::new(),
    });
    (Sender { shared: Some(shared.clone()) }, Receiver { shared, done: false })
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Where it was created, for deadlock reports.
    origin: Origin,
    /// Signalled when the receiver may stop waiting in `recv_blocking`.
    cond: Condvar,
}

struct State<T> {
    /// The value sent and not yet received.
    value: Option<T>,
    /// The sender exists and has not sent.
    sender: bool,
    /// The receiver exists and has not been closed.
    receiver: bool,
    /// Woken when a value arrives or the sender goes.
    rx_waker: Option<Waker>,
    /// Woken when the receiver closes or goes (`Sender::closed`).
    tx_waker: Option<Waker>,
    /// A thread waits in `recv_blocking`.
    blocked: bool,
}

impl<T> State<T> {
    /// Whether a value may still arrive: the sender is there and the receiver is not closed.
    fn may_send(&self) -> bool {
        self.sender && self.receiver
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing that can panic runs under the lock but a waker's clone, which leaves the state
        // as it was; so a poisoned lock still guards a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the sender's part (send or drop) and wakes the receiver; called with the lock held.
    fn sender_done(&self, mut st: MutexGuard<'_, State<T>>) {
        st.sender = false;
        let waker = st.rx_waker.take();
        if st.blocked {
            self.cond.notify_one();
        }
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Ends the receiver's interest (close or drop) and wakes the sender's `closed()`.
    fn receiver_done(&self, st: &mut State<T>) -> Option<Waker> {
        st.receiver = false;
        st.tx_waker.take()
    }
}

/// The sending half of a [`oneshot`] channel.
///
/// # Examples
///
/// ```
/// let (tx, rx) = omni::chan::oneshot::<u8>();
/// assert!(!tx.is_closed());
/// drop(rx);
/// assert!(tx.is_closed());
/// ```
///
/// It is `Send` and `Sync` when `T` is `Send`; a value that must stay on its thread cannot be
/// sent through it to another:
///
/// ```compile_fail
/// let (tx, rx) = omni::chan::oneshot::<std::rc::Rc<u8>>();
/// std::thread::spawn(move || tx.send(std::rc::Rc::new(1)));
/// ```
pub struct Sender<T> {
    /// `None` once `send` has ended the sender's part, so that its drop takes no lock.
    shared: Option<Arc<Shared<T>>>,
}

impl<T> Sender<T> {
    fn shared(&self) -> &Shared<T> {
        self.shared.as_deref().expect("omni: oneshot sender used after send")
    }

    /// Sends `v` to the receiver, without waiting.
    ///
    /// # Errors
    ///
    /// `Err(v)` when the receiver was dropped or closed: the value comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = omni::chan::oneshot();
    /// tx.send(5).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(5));
    ///
    /// let (tx, rx) = omni::chan::oneshot();
    /// drop(rx);
    /// assert_eq!(tx.send(5), Err(5));
    /// ```
    pub fn send(mut self, v: T) -> Result<(), T> {
        let shared = self.shared.take().expect("omni: oneshot sender used after send");
        let mut st = shared.lock();
        let r = if st.receiver {
            st.value = Some(v);
            Ok(())
        } else {
            Err(v)
        };
        shared.sender_done(st);
        r
    }

    /// Whether the receiver was dropped or closed, so that a send would hand its value back.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = omni::chan::oneshot::<u8>();
    /// rx.close();
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        !self.shared().lock().receiver
    }

    /// Waits until the receiver is dropped or closed: the way a producer learns that nobody
    /// wants its result any more, so it can stop computing it.
    ///
    /// Dropping the returned future (before it completes) is harmless.
    ///
    /// # Examples
    ///
    /// ```
    /// omni::block_on(async {
    ///     let (mut tx, rx) = omni::chan::oneshot::<u8>();
    ///     omni::spawn(async move { drop(rx) });
    ///     tx.closed().await;
    ///     assert!(tx.is_closed());
    /// });
    /// ```
    pub fn closed(&mut self) -> Closed<'_, T> {
        Closed { sender: self }
    }

    /// Polls for the receiver being dropped or closed; the poll form of [`closed`](Self::closed).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// let (mut tx, rx) = omni::chan::oneshot::<u8>();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(tx.poll_closed(&mut cx).is_pending());
    /// drop(rx);
    /// assert!(tx.poll_closed(&mut cx).is_ready());
    /// ```
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        coop::budgeted(cx, |cx| {
            let mut st = self.shared().lock();
            if !st.receiver {
                return Poll::Ready(());
            }
            store_waker(&mut st.tx_waker, cx.waker());
            drop(st);
            self.shared().origin.note(Kind::Oneshot);
            Poll::Pending
        })
    }
}

/// Keeps `w` in `slot` unless the stored waker already wakes the same task.
fn store_waker(slot: &mut Option<Waker>, w: &Waker) {
    match slot {
        Some(old) if old.will_wake(w) => {}
        slot => *slot = Some(keep(w)),
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.sender_done(shared.lock());
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender").field("closed", &self.is_closed()).finish()
    }
}

/// The future of [`Sender::closed`].
#[must_use = "futures do nothing unless awaited"]
pub struct Closed<'a, T> {
    sender: &'a mut Sender<T>,
}

impl<T> Future for Closed<'_, T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.sender.poll_closed(cx)
    }
}

impl<T> fmt::Debug for Closed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Closed").finish_non_exhaustive()
    }
}

/// The receiving half of a [`oneshot`] channel: a future of the value.
///
/// Awaiting it gives `Ok(v)`, or `Err(RecvError)` when the sender was dropped without sending.
/// It is `Unpin`, so `(&mut rx).await` works and leaves the receiver usable if that await is
/// cancelled: a poll that returns `Pending` consumes nothing. Once it has given its value,
/// further polls give `Err(RecvError)`.
///
/// # Examples
///
/// ```
/// omni::block_on(async {
///     let (tx, rx) = omni::chan::oneshot::<u8>();
///     drop(tx);
///     assert_eq!(rx.await, Err(omni::chan::RecvError));
/// });
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// A final result was given (the value, or the news that none will come): the state
    /// will not change any more in a way the receiver's drop must handle, so it takes no lock.
    done: bool,
}

impl<T> Receiver<T> {
    /// Takes the value if it has arrived, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] while the sender may still send; [`TryRecvError::Closed`] when
    /// it was dropped without sending, the receiver was closed before a send, or the value was
    /// already received.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::chan::TryRecvError;
    /// let (tx, mut rx) = omni::chan::oneshot();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut st = self.shared.lock();
        let r = Self::take(&mut st).ok_or(if st.may_send() {
            TryRecvError::Empty
        } else {
            TryRecvError::Closed
        });
        self.done = !matches!(r, Err(TryRecvError::Empty));
        r
    }

    /// Waits for the value, blocking this OS thread. For threads outside the runtime (or in
    /// [`spawn_blocking`](crate::spawn_blocking)); in a task, `.await` the receiver instead.
    /// Called from a task it blocks the worker thread, and on a current-thread runtime it
    /// waits forever if the sender is a task of that runtime: it is not detected (yet).
    ///
    /// # Errors
    ///
    /// [`RecvError`] when the sender was dropped without sending (or the receiver was closed
    /// before a send).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = omni::chan::oneshot();
    /// let t = std::thread::spawn(move || rx.recv_blocking());
    /// tx.send(3).unwrap();
    /// assert_eq!(t.join().unwrap(), Ok(3));
    /// ```
    pub fn recv_blocking(mut self) -> Result<T, RecvError> {
        let shared = self.shared.clone();
        shared.origin.set_external();
        let mut st = shared.lock();
        loop {
            if let Some(v) = Self::take(&mut st) {
                self.done = true;
                return Ok(v);
            }
            if !st.may_send() {
                self.done = true;
                return Err(RecvError);
            }
            st.blocked = true;
            st = shared.cond.wait(st).unwrap_or_else(|e| e.into_inner());
            st.blocked = false;
        }
    }

    /// Closes the receiver without dropping it: from now on a send hands its value back and
    /// [`Sender::is_closed`] is true. A value sent before the close can still be received.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::chan::TryRecvError;
    /// let (tx, mut rx) = omni::chan::oneshot();
    /// rx.close();
    /// assert_eq!(tx.send(4), Err(4));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn close(&mut self) {
        let waker = {
            let mut st = self.shared.lock();
            if !st.receiver {
                return;
            }
            self.shared.receiver_done(&mut st)
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn take(st: &mut State<T>) -> Option<T> {
        st.value.take()
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        coop::budgeted(cx, |cx| this.poll_value(cx))
    }
}

impl<T> Receiver<T> {
    fn poll_value(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        let this = self;
        let mut st = this.shared.lock();
        if let Some(v) = Self::take(&mut st) {
            this.done = true;
            return Poll::Ready(Ok(v));
        }
        if !st.may_send() {
            this.done = true;
            return Poll::Ready(Err(RecvError));
        }
        store_waker(&mut st.rx_waker, cx.waker());
        drop(st);
        this.shared.origin.note(Kind::Oneshot);
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.done {
            // The value was taken or will never come, and the sender has finished or sees the
            // receiver closed: nothing to give up.
            return;
        }
        let (value, waker) = {
            let mut st = self.shared.lock();
            let waker = if st.receiver { self.shared.receiver_done(&mut st) } else { None };
            st.rx_waker = None;
            (st.value.take(), waker)
        };
        // Outside the lock: the unreceived value's destructor and the sender's waker.
        drop(value);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("oneshot::Receiver")
            .field("ready", &st.value.is_some())
            .field("sender", &st.sender)
            .field("closed", &!st.receiver)
            .finish()
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use crate::loom::block_on;

    /// Counts its drops, so a model can check every value is dropped exactly once.
    #[derive(Debug)]
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    /// RUSTSEC-2021-0124's shape: a send racing the receiver's `close`, then a receive. The
    /// send succeeds exactly when the receive gets the value; otherwise the value comes back.
    /// Either way it is dropped exactly once.
    #[test]
    fn loom_chan_oneshot_send_close_recv() {
        loom::model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let (tx, mut rx) = oneshot();
            let d = drops.clone();
            let t = loom::thread::spawn(move || tx.send(Counted(d)).is_ok());
            rx.close();
            let got = rx.try_recv();
            let sent = t.join().unwrap();
            assert_eq!(sent, got.is_ok(), "a successful send is received, a failed one is not");
            if !sent {
                assert_eq!(got.as_ref().unwrap_err(), &TryRecvError::Closed);
            }
            drop(got);
            drop(rx);
            assert_eq!(drops.load(SeqCst), 1);
        });
    }

    /// A send racing the receiver's drop: the value is dropped exactly once, by the sender's
    /// caller (handed back) or by the receiver's drop; never left in the shared state, which
    /// the model keeps alive to check that.
    #[test]
    fn loom_chan_oneshot_send_vs_receiver_drop() {
        loom::model(|| {
            let drops = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = oneshot();
            let keep = rx.shared.clone();
            let d = drops.clone();
            let t = loom::thread::spawn(move || {
                let r = tx.send(Counted(d.clone()));
                // A value handed back is still alive here.
                (r.is_err(), d.load(SeqCst))
            });
            drop(rx);
            let (returned, drops_seen) = t.join().unwrap();
            if returned {
                assert_eq!(drops_seen, 0, "the value came back intact");
            }
            assert_eq!(drops.load(SeqCst), 1, "dropped once, and not left in the channel");
            drop(keep);
        });
    }

    /// A receiver awaiting in a task-like poll loop never misses the sender's wake-up (loom
    /// reports a deadlock if it does), whether the sender sends or drops.
    #[test]
    fn loom_chan_oneshot_await_is_woken() {
        loom::model(|| {
            let (tx, rx) = oneshot::<u32>();
            let (tx2, rx2) = oneshot::<u32>();
            let t = loom::thread::spawn(move || {
                tx.send(1).unwrap();
                drop(tx2);
            });
            assert_eq!(block_on(rx), Ok(1));
            assert_eq!(block_on(rx2), Err(RecvError));
            t.join().unwrap();
        });
    }

    /// A thread blocked in `recv_blocking` is notified by the send, or by the sender's drop
    /// (loom reports a deadlock if a notification is lost).
    #[test]
    fn loom_chan_oneshot_recv_blocking_is_notified() {
        loom::model(|| {
            let (tx, rx) = oneshot::<u32>();
            let (tx2, rx2) = oneshot::<u32>();
            let t = loom::thread::spawn(move || {
                tx.send(1).unwrap();
                drop(tx2);
            });
            assert_eq!(rx.recv_blocking(), Ok(1));
            assert_eq!(rx2.recv_blocking(), Err(RecvError));
            t.join().unwrap();
        });
    }
}
