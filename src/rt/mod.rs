//! The runtime: schedulers, the handle, parking and the cooperative budget.

pub(crate) mod coop;
mod park;
mod runtime;
mod scheduler;
mod yield_now;

pub use runtime::{block_on, spawn, spawn_local, Builder, Handle, Runtime, TryCurrentError};
pub(crate) use scheduler::{current_owner, free_completed, schedule, spend_budget, wake_task};
pub use yield_now::{yield_now, YieldNow};
