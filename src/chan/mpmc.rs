//! The multi-producer multi-consumer channel: constructors, `Sender`, `Receiver` and their
//! futures. The state and its protocol live in `core.rs`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::blocking;
use super::core::Chan;
use super::error::{RecvError, SendError, TryRecvError, TrySendError};

/// A channel that buffers up to `cap` values; a send waits while it is full.
///
/// `bounded(0)` is a [`rendezvous`] channel.
///
/// # Examples
///
/// ```
/// omni::block_on(async {
///     let (tx, rx) = omni::chan::bounded(2);
///     tx.send(1).await.unwrap();
///     tx.send(2).await.unwrap();
///     assert!(tx.try_send(3).unwrap_err().is_full());
///     assert_eq!(rx.recv().await, Ok(1));
///     assert_eq!(rx.capacity(), Some(2));
/// });
/// ```
#[track_caller]
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    // `usize::MAX` means unbounded inside; nobody can buffer that many values anyway.
    pair(cap.min(usize::MAX - 1))
}

/// A channel without a bound: a send never waits (until memory runs out).
///
/// # Examples
///
/// ```
/// let (tx, rx) = omni::chan::unbounded();
/// for i in 0..1000 {
///     tx.try_send(i).unwrap();
/// }
/// assert_eq!(rx.len(), 1000);
/// assert_eq!(rx.capacity(), None);
/// ```
#[track_caller]
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    pair(usize::MAX)
}

/// A channel without a buffer: a send completes only when a receiver takes its value.
///
/// # Examples
///
/// ```
/// omni::block_on(async {
///     let (tx, rx) = omni::chan::rendezvous();
///     assert!(tx.try_send(1).unwrap_err().is_full()); // nobody is receiving
///     let t = omni::spawn_local(async move { rx.recv().await });
///     tx.send(7).await.unwrap(); // returns once the task took it
///     assert_eq!(t.await.unwrap(), Ok(7));
/// });
/// ```
#[track_caller]
pub fn rendezvous<T>() -> (Sender<T>, Receiver<T>) {
    pair(0)
}

#[track_caller]
fn pair<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap));
    (Sender { chan: chan.clone() }, Receiver { chan, stream_slot: None })
}

/// The sending half of a channel. Clone it for more producers; the channel closes when the
/// last sender is dropped (receivers then drain the buffer and get [`RecvError`]).
///
/// # Examples
///
/// ```
/// omni::block_on(async {
///     let (tx, rx) = omni::chan::unbounded();
///     let tx2 = tx.clone();
///     tx.send("a").await.unwrap();
///     tx2.send("b").await.unwrap();
///     drop((tx, tx2));
///     assert_eq!(rx.recv().await, Ok("a"));
///     assert_eq!(rx.recv().await, Ok("b"));
///     assert!(rx.recv().await.is_err());
/// });
/// ```
pub struct Sender<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

/// The receiving half of a channel. Clone it for more consumers (each value goes to one of
/// them); the channel closes when the last receiver is dropped. It is also a
/// [`Stream`](futures_core::Stream) that ends when the channel is closed and drained.
///
/// # Examples
///
/// ```
/// omni::block_on(async {
///     let (tx, rx) = omni::chan::bounded(4);
///     tx.send(5).await.unwrap();
///     drop(tx);
///     assert_eq!(rx.recv().await, Ok(5));
///     assert_eq!(rx.recv().await, Err(omni::chan::RecvError));
/// });
/// ```
pub struct Receiver<T> {
    pub(crate) chan: Arc<Chan<T>>,
    /// The parked entry of `poll_next`, if the stream is waiting.
    stream_slot: Option<u32>,
}

macro_rules! common_methods {
    () => {
        /// Closes the channel. Buffered values can still be received; sends fail and give
        /// their value back; parked senders are woken with their value. Returns whether this
        /// call closed it (false if it was already closed).
        ///
        /// # Examples
        ///
        /// ```
        /// let (tx, rx) = omni::chan::bounded(1);
        /// tx.try_send(1).unwrap();
        /// assert!(tx.close());
        /// assert!(rx.is_closed());
        /// assert_eq!(tx.try_send(2).unwrap_err().into_inner(), 2);
        /// assert_eq!(rx.try_recv(), Ok(1));
        /// assert!(rx.try_recv().is_err());
        /// ```
        pub fn close(&self) -> bool {
            self.chan.close()
        }

        /// Whether the channel is closed.
        ///
        /// # Examples
        ///
        /// ```
        /// let (tx, rx) = omni::chan::unbounded::<u8>();
        /// drop(rx);
        /// assert!(tx.is_closed());
        /// ```
        pub fn is_closed(&self) -> bool {
            self.chan.is_closed()
        }

        /// The number of buffered values (values held by parked senders are not counted).
        ///
        /// # Examples
        ///
        /// ```
        /// let (tx, rx) = omni::chan::bounded(3);
        /// tx.try_send('x').unwrap();
        /// assert_eq!((tx.len(), rx.len()), (1, 1));
        /// ```
        pub fn len(&self) -> usize {
            self.chan.len()
        }

        /// Whether no value is buffered.
        ///
        /// # Examples
        ///
        /// ```
        /// let (tx, _rx) = omni::chan::bounded::<u8>(3);
        /// assert!(tx.is_empty());
        /// ```
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// The bound: `Some(n)` for `bounded(n)`, `Some(0)` for a rendezvous channel, `None`
        /// for an unbounded one.
        ///
        /// # Examples
        ///
        /// ```
        /// assert_eq!(omni::chan::rendezvous::<u8>().0.capacity(), Some(0));
        /// ```
        pub fn capacity(&self) -> Option<usize> {
            self.chan.capacity()
        }
    };
}

impl<T> Sender<T> {
    /// Sends `v`, waiting while the channel is full (for a rendezvous channel: until a
    /// receiver takes it).
    ///
    /// The send completes at the instant its value enters the buffer or a receiver's entry,
    /// or, if it had to wait, when a receiver claims its parked entry under the channel lock.
    /// Dropping the future before that removes the entry: nobody receives the value, which
    /// drops with the future.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the channel is (or gets) closed before the send
    /// completes.
    ///
    /// # Examples
    ///
    /// ```
    /// omni::block_on(async {
    ///     let (tx, rx) = omni::chan::bounded(1);
    ///     tx.send(1).await.unwrap();
    ///     drop(rx);
    ///     assert_eq!(tx.send(2).await.unwrap_err().0, 2);
    /// });
    /// ```
    pub fn send(&self, v: T) -> SendFuture<'_, T> {
        SendFuture { chan: &self.chan, slot: None, value: Some(v) }
    }

    /// Sends `v` if that is possible without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the buffer is full (a rendezvous channel: no receiver is
    /// waiting), [`TrySendError::Closed`] if the channel is closed; both hand `v` back.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = omni::chan::bounded(1);
    /// tx.try_send(1).unwrap();
    /// assert!(tx.try_send(2).unwrap_err().is_full());
    /// drop(rx);
    /// assert!(tx.try_send(3).unwrap_err().is_closed());
    /// ```
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(v)
    }

    /// Sends `v` from a plain OS thread, blocking it while the channel is full. No runtime is
    /// needed; the other side may be tasks or threads.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the channel is closed.
    ///
    /// # Panics
    ///
    /// If called on a thread that runs an omni runtime (it would freeze that runtime).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = omni::chan::rendezvous();
    /// let t = std::thread::spawn(move || tx.send_blocking(3));
    /// assert_eq!(omni::block_on(rx.recv()), Ok(3));
    /// t.join().unwrap().unwrap();
    /// ```
    pub fn send_blocking(&self, v: T) -> Result<(), SendError<T>> {
        self.chan.origin.set_external();
        blocking::wait(self.send(v), "send_blocking")
    }

    common_methods!();
}

impl<T> Receiver<T> {
    /// Receives a value, waiting while the channel is empty.
    ///
    /// Dropping the future consumes nothing: if a value was handed to it and it never saw it,
    /// the value goes to the next waiting receiver, or back to the front of the buffer.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// omni::block_on(async {
    ///     let (tx, rx) = omni::chan::unbounded();
    ///     omni::spawn_local(async move { tx.send(4).await });
    ///     assert_eq!(rx.recv().await, Ok(4));
    ///     assert!(rx.recv().await.is_err()); // the task ended, dropping the sender
    /// });
    /// ```
    pub fn recv(&self) -> RecvFuture<'_, T> {
        RecvFuture { chan: &self.chan, slot: None }
    }

    /// Receives a value if one is ready.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing is ready, [`TryRecvError::Closed`] if the channel is
    /// closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::chan::TryRecvError;
    /// let (tx, rx) = omni::chan::bounded(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.try_send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Receives from a plain OS thread, blocking it while the channel is empty. No runtime is
    /// needed.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is closed and drained.
    ///
    /// # Panics
    ///
    /// If called on a thread that runs an omni runtime (it would freeze that runtime).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = omni::chan::bounded(1);
    /// let t = std::thread::spawn(move || rx.recv_blocking());
    /// omni::block_on(tx.send(8)).unwrap();
    /// assert_eq!(t.join().unwrap(), Ok(8));
    /// ```
    pub fn recv_blocking(&self) -> Result<T, RecvError> {
        self.chan.origin.set_external();
        blocking::wait(self.recv(), "recv_blocking")
    }

    common_methods!();
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.add_sender();
        Sender { chan: self.chan.clone() }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        self.chan.add_receiver();
        Receiver { chan: self.chan.clone(), stream_slot: None }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.cancel_recv(&mut self.stream_slot);
        self.chan.drop_receiver();
    }
}

impl<T> Unpin for Receiver<T> {}

impl<T> futures_core::Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        this.chan.poll_recv(&mut this.stream_slot, cx).map(Result::ok)
    }
}

fn fmt_chan<T>(name: &str, chan: &Chan<T>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (len, parked, closed) = chan.debug_counts();
    f.debug_struct(name)
        .field("len", &len)
        .field("capacity", &chan.capacity())
        .field("parked", &parked)
        .field("closed", &closed)
        .finish()
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_chan("Sender", &self.chan, f)
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_chan("Receiver", &self.chan, f)
    }
}

/// The future of [`Sender::send`].
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a, T> {
    chan: &'a Chan<T>,
    slot: Option<u32>,
    value: Option<T>,
}

// The value is never pinned: it is moved into the channel.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.chan.poll_send(&mut this.slot, &mut this.value, cx)
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        self.chan.cancel_send(&mut self.slot);
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture").field("parked", &self.slot.is_some()).finish()
    }
}

/// The future of [`Receiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a, T> {
    chan: &'a Chan<T>,
    slot: Option<u32>,
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.chan.poll_recv(&mut this.slot, cx)
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        self.chan.cancel_recv(&mut self.slot);
    }
}

impl<T> fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFuture").field("parked", &self.slot.is_some()).finish()
    }
}
