//! Channels: CSP message passing between green tasks and OS threads, that loses nothing.
//!
//! Kinds: [`bounded`], [`unbounded`] and [`rendezvous`] make multi-producer multi-consumer
//! channels; [`oneshot()`] carries one value once; [`broadcast()`] gives every receiver every
//! value (slow receivers get `Lagged`). In the multi-producer multi-consumer kinds,
//! [`Sender`] and [`Receiver`] are both `Clone`, and `Send + Sync` when `T: Send`. Each value
//! goes to exactly one receiver. Tasks use `send(v).await` / `recv().await`; plain OS threads
//! use `send_blocking` / `recv_blocking` on the same channel; [`Select`] (and
//! [`select!`](crate::select!)) waits on several operations and completes exactly one.
//!
//! # Guarantees
//!
//! - **Nothing lost.** A value accepted by a send is received exactly once, or handed back
//!   to its sender (`SendError`, `TrySendError`) when the channel is closed.
//! - **Linearization.** A send completes at the instant its value enters the buffer or is
//!   written into a parked receiver's entry, or, if the sender had to park, at the instant a
//!   receiver claims the parked entry under the channel lock (on a rendezvous channel that is
//!   the only way). A receive completes when it takes a value from the buffer or a parked
//!   sender, or when a sender writes into its entry.
//! - **Cancellation.** Dropping a send future before it completed removes its entry: no
//!   receiver ever gets the value. Dropping a receive future consumes nothing: a value that was
//!   written into its entry but never returned is passed to the next parked receiver, or back
//!   to the front of the buffer, so no receiver sleeps while a value waits.
//! - **Order.** Values from one sender are received in the order sent; parked senders and
//!   receivers are served first-come-first-served.
//! - **Closing.** The channel closes on [`Sender::close`] / [`Receiver::close`], when the last
//!   sender is dropped, or when the last receiver is dropped (the buffer is then dropped).
//!   Receivers drain the buffer, then get [`RecvError`]; sends get their value back. While a
//!   receiver that was served a value has neither returned it nor been dropped, the closed
//!   channel is not yet drained (that value may come back): other receivers wait for it.
//!
//! # Design
//!
//! One lock per channel guards the buffer (`VecDeque`, capacity kept), the two FIFO queues
//! of parked waiters and the closed flag (`core.rs`). It is a spin lock that yields its CPU
//! after a few spins (`lock.rs`): the critical sections are short and run no user code but
//! waker clones and drops, and its unlock is a plain store where a `Mutex` needs an atomic
//! swap. A parked waiter is an entry in a slab
//! reused from a free list (`waiters.rs`), owned by the future that parked it: the channel
//! only unlinks entries and marks them served, so parking and handing off allocate nothing in
//! steady state. A sender serves a parked receiver by writing the value into its entry and
//! waking it; a receiver serves a parked sender by taking the value from its entry (and, in a
//! bounded channel, moving it into the room it just made). Wakers are woken and values
//! dropped after the lock is released. The blocking forms poll the same futures with a
//! thread parker as waker (`blocking.rs`). `select.rs` writes down the select protocol.

mod blocking;
pub(crate) use blocking::park_on;
pub mod broadcast;
mod core;
mod error;
mod lock;
mod mpmc;
pub mod oneshot;
mod select;
mod waiters;

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;

pub use broadcast::broadcast;
pub use error::{RecvError, SendError, TryRecvError, TrySendError};
pub use mpmc::{bounded, rendezvous, unbounded, Receiver, RecvFuture, SendFuture, Sender};
pub use oneshot::oneshot;
pub use select::Select;
