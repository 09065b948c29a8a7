//! Omni: an async runtime whose green tasks live in generational regions.
//!
//! A green task is a Rust future stored inline in a slot of its runtime's task region, beside a
//! 32-byte header. A task's [`Waker`](std::task::Waker) is its generational key, so cloning a
//! waker costs nothing and waking a task that already finished (even one whose slot now holds a
//! newer task) is detected and ignored. [`cont::suspend`] turns the rest of a task into a
//! one-shot continuation that any thread can resume: the seeds' `control`, in Rust.
//!
//! # Examples
//!
//! ```
//! let total = omni::block_on(async {
//!     let handles: Vec<_> = (0..10u64).map(|i| omni::spawn_local(async move { i * i })).collect();
//!     let mut sum = 0;
//!     for h in handles {
//!         sum += h.await.unwrap();
//!     }
//!     sum
//! });
//! assert_eq!(total, 285);
//! ```
//!
//! # Misuse
//!
//! `spawn` outside a runtime and `block_on` inside `block_on` panic with a message that says
//! what to do instead.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod atom;
mod blocking;
mod cancel;
pub mod chan;
pub mod cont;
pub mod fs;
pub mod gen;
pub mod lisp;
mod loom;
pub mod net;
pub mod promise;
pub mod region;
mod rt;
pub mod scope;
pub mod task;
pub mod thread;
pub mod time;

pub use atom::Atom;
pub use blocking::spawn_blocking;
pub use cancel::{CancelToken, Cancelled, CancelledOwned};
pub use omni_io::{Driver, Stats as IoStats};
pub use promise::Promise;
pub use rt::{
    block_on, spawn, spawn_local, yield_now, BlockedTask, Builder, DeadlockReport, Handle,
    OnDeadlock, Runtime, TryCurrentError, WaitsOn, YieldNow,
};
pub use task::{Id, JoinError, JoinHandle};

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
