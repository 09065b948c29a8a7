//! The timer workloads of the peers table, on one thread each: omni's current-thread runtime
//! with `omni::time::sleep`, tokio's `current_thread` runtime with `tokio::time::sleep`, and
//! async-executor's `LocalExecutor` with async-io's `Timer` (driven by `async_io::block_on`, so
//! its reactor runs on the same thread).
//!
//! - `time::sleeps`: n tasks each sleep for a duration spread evenly over [1 ms, 100 ms]; the
//!   row is the wall time from the first spawn to the last wake-up, per timer (at least the
//!   100 ms the longest sleep takes, so it is CPU-bound only for large n).
//! - `time::pending_memory`: n tasks each parked on a one-hour sleep; bytes per pending timer
//!   (task included: a timer needs a task to await it).

use super::memory::{Footprint, Window};
use async_executor::LocalExecutor;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The sleep of timer `i` of `n`: spread over [1, 100] ms.
fn delay(i: usize, n: usize) -> Duration {
    Duration::from_micros(1_000 + (99_000 * i as u64) / n.max(1) as u64)
}

pub(crate) fn sleeps_omni(n: usize) -> Duration {
    let rt = omni::Runtime::new().expect("omni runtime");
    rt.block_on(async move {
        let start = Instant::now();
        let hs: Vec<_> =
            (0..n).map(|i| omni::spawn_local(omni::time::sleep(delay(i, n)))).collect();
        for h in hs {
            h.await.expect("sleeper");
        }
        start.elapsed()
    })
}

pub(crate) fn sleeps_tokio(n: usize) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("tokio");
    rt.block_on(async move {
        let start = Instant::now();
        let hs: Vec<_> = (0..n).map(|i| tokio::spawn(tokio::time::sleep(delay(i, n)))).collect();
        for h in hs {
            h.await.expect("sleeper");
        }
        start.elapsed()
    })
}

pub(crate) fn sleeps_ae(n: usize) -> Duration {
    let ex = LocalExecutor::new();
    async_io::block_on(ex.run(async {
        let start = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|i| {
                ex.spawn(async move {
                    async_io::Timer::after(delay(i, n)).await;
                })
            })
            .collect();
        for h in hs {
            h.await;
        }
        start.elapsed()
    }))
}

/// Timers registered (polled once and pending) in the current memory run.
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

pin_project_lite::pin_project! {
    /// Awaits `fut`, counting its first `Pending` in `REGISTERED`. As small as a wrapper can
    /// be (one flag beside the timer), so the row measures the timers, not the harness.
    struct Counted<F> {
        #[pin]
        fut: F,
        first: bool,
    }
}

fn counted<F: Future>(fut: F) -> Counted<F> {
    Counted { fut, first: true }
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let r = this.fut.poll(cx);
        if r.is_pending() && std::mem::take(this.first) {
            REGISTERED.fetch_add(1, Relaxed);
        }
        r
    }
}

/// Yields until `n` timers are registered.
async fn all_registered<Y: Future<Output = ()>>(n: usize, yield_now: impl Fn() -> Y) {
    for _ in 0..100 * n.max(1) {
        if REGISTERED.load(Relaxed) >= n {
            return;
        }
        yield_now().await;
    }
    panic!("time::pending_memory: only {} of {n} timers registered", REGISTERED.load(Relaxed));
}

const HOUR: Duration = Duration::from_secs(3600);

pub(crate) fn pending_memory_omni(n: usize) -> Footprint {
    REGISTERED.store(0, Relaxed);
    let window = Window::open();
    let rt = omni::Runtime::new().expect("omni runtime");
    let f = rt.block_on(async move {
        for _ in 0..n {
            drop(omni::spawn_local(counted(omni::time::sleep(HOUR))));
        }
        all_registered(n, omni::yield_now).await;
        window.close(n)
    });
    drop(rt);
    f
}

pub(crate) fn pending_memory_tokio(n: usize) -> Footprint {
    REGISTERED.store(0, Relaxed);
    let window = Window::open();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("tokio");
    let f = rt.block_on(async move {
        for _ in 0..n {
            drop(tokio::spawn(counted(tokio::time::sleep(HOUR))));
        }
        all_registered(n, tokio::task::yield_now).await;
        window.close(n)
    });
    drop(rt);
    f
}

pub(crate) fn pending_memory_ae(n: usize) -> Footprint {
    REGISTERED.store(0, Relaxed);
    let window = Window::open();
    let ex = LocalExecutor::new();
    let f = async_io::block_on(ex.run(async {
        for _ in 0..n {
            ex.spawn(counted(async_io::Timer::after(HOUR))).detach();
        }
        all_registered(n, futures_lite::future::yield_now).await;
        window.close(n)
    }));
    drop(ex);
    f
}
