//! The runtime: schedulers, the handle, parking and the cooperative budget.
//!
//! Files: `runtime.rs` the public `Runtime`, `Builder` and `Handle`; `context.rs` which
//! scheduler runs on this thread and the entry points wakers and join handles use; `shared.rs`
//! what other threads may touch of a runtime; `exec.rs` running one task; `current_thread.rs`
//! the current-thread scheduler; `multi/` the multi-thread scheduler; `park.rs` the parker;
//! `coop.rs` the budget; `yield_now.rs`.

pub(crate) mod context;
pub(crate) mod coop;
mod current_thread;
pub(crate) mod deadlock;
mod exec;
mod multi;
mod park;
mod runtime;
mod shared;
mod yield_now;

pub(crate) use context::{
    current_owner, current_shared, enter_blocking, free_completed, schedule, spend_budget,
    wake_task, with_shared,
};
pub use deadlock::{BlockedTask, DeadlockReport, OnDeadlock, WaitsOn};
pub use runtime::{block_on, spawn, spawn_local, Builder, Handle, Runtime, TryCurrentError};
pub(crate) use shared::Shared as RuntimeShared;
pub use yield_now::{yield_now, YieldNow};

/// The remote-wake protocol end to end: a foreign thread wakes a task (state transition, then
/// queue push, then unpark) while the owner finishes polling it, drains its remote queue and
/// parks when both are empty. The model checks the task is always polled again, exactly once
/// per wake that found it idle, and the owner never sleeps through the wake.
#[cfg(loom)]
mod loom_remote {
    use super::park::Parker;
    use crate::task::state::{End, Start, State, Wake};
    use loom::sync::{Arc, Mutex};
    use std::collections::VecDeque;

    #[test]
    fn loom_remote_wake_reaches_a_parking_owner() {
        loom::model(|| {
            let state = Arc::new(State::vacant(0));
            let queue = Arc::new(Mutex::new(VecDeque::new()));
            let parker = Arc::new(Parker::new());
            let gen = state.occupy(0);
            assert_eq!(state.start_poll(gen), Start::Poll);

            let (s2, q2, p2) = (state.clone(), queue.clone(), parker.clone());
            let waker = loom::thread::spawn(move || {
                if s2.wake(gen) == Wake::Schedule {
                    q2.lock().unwrap().push_back(gen);
                    p2.unpark();
                }
            });

            // Owner: the poll returns Pending.
            let mut polls_due = u32::from(state.end_poll(gen, false, false) == End::Reschedule);
            if polls_due == 0 {
                // Idle: drain the remote queue, park while it is empty.
                loop {
                    if let Some(g) = queue.lock().unwrap().pop_front() {
                        assert_eq!(g, gen);
                        polls_due += 1;
                        break;
                    }
                    parker.park();
                }
            }
            waker.join().unwrap();
            assert_eq!(polls_due, 1);
            assert!(queue.lock().unwrap().is_empty(), "no duplicate queue entry");
            assert_eq!(state.start_poll(gen), Start::Poll);
        });
    }
}
