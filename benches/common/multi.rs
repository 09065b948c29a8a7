//! The multi-thread workloads of the peers table, on 2 workers each: omni's multi-thread
//! runtime, tokio's `multi_thread` runtime and async-executor's `Executor` run by two threads
//! (the benchmark thread and one helper, as smol users run it).
//!
//! Every workload runs inside a task spawned on the runtime (so omni and tokio spawn from a
//! worker), timed from inside that task. `mt::fan_out` uses the same channel (async-channel,
//! unbounded) on every runtime, so it compares the schedulers, not the channels.

use async_executor::Executor;
use futures_lite::future;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Workers (threads running tasks) per runtime.
pub(crate) const WORKERS: usize = 2;

fn omni_rt() -> omni::Runtime {
    omni::Builder::new_multi_thread().workers(WORKERS).build().expect("omni runtime")
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .build()
        .expect("tokio runtime")
}

/// Runs `f(ex)` on an `Executor` driven by this thread and `WORKERS - 1` helpers.
fn on_executor<F, Fut>(f: F) -> Duration
where
    F: FnOnce(Arc<Executor<'static>>) -> Fut,
    Fut: Future<Output = Duration>,
{
    let ex = Arc::new(Executor::new());
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let helpers: Vec<_> = (1..WORKERS)
        .map(|_| {
            let (ex, stopped) = (ex.clone(), stopped.clone());
            std::thread::spawn(move || future::block_on(ex.run(stopped.recv())))
        })
        .collect();
    let d = future::block_on(ex.run(f(ex.clone())));
    drop(stop);
    for h in helpers {
        let _ = h.join();
    }
    d
}

// ---- mt::spawn_join: a task spawns n trivial tasks, then awaits them in order. ------------

pub(crate) fn spawn_join_omni(n: usize) -> Duration {
    let rt = omni_rt();
    rt.block_on(rt.spawn(async move {
        let start = Instant::now();
        let hs: Vec<_> = (0..n).map(|_| omni::spawn(async {})).collect();
        for h in hs {
            h.await.expect("task failed");
        }
        start.elapsed()
    }))
    .expect("bench task")
}

pub(crate) fn spawn_join_tokio(n: usize) -> Duration {
    let rt = tokio_rt();
    rt.block_on(rt.spawn(async move {
        let start = Instant::now();
        let hs: Vec<_> = (0..n).map(|_| tokio::spawn(async {})).collect();
        for h in hs {
            h.await.expect("task failed");
        }
        start.elapsed()
    }))
    .expect("bench task")
}

pub(crate) fn spawn_join_ae(n: usize) -> Duration {
    on_executor(|ex| async move {
        let start = Instant::now();
        let hs: Vec<_> = (0..n).map(|_| ex.spawn(async {})).collect();
        for h in hs {
            h.await;
        }
        start.elapsed()
    })
}

// ---- mt::yield_pingpong: two tasks yield n times each, on two workers. --------------------

pub(crate) fn yield_pingpong_omni(n: usize) -> Duration {
    let rt = omni_rt();
    rt.block_on(rt.spawn(async move {
        let start = Instant::now();
        let y = || async move {
            for _ in 0..n {
                omni::yield_now().await;
            }
        };
        let (a, b) = (omni::spawn(y()), omni::spawn(y()));
        a.await.expect("task failed");
        b.await.expect("task failed");
        start.elapsed()
    }))
    .expect("bench task")
}

pub(crate) fn yield_pingpong_tokio(n: usize) -> Duration {
    let rt = tokio_rt();
    rt.block_on(rt.spawn(async move {
        let start = Instant::now();
        let y = || async move {
            for _ in 0..n {
                tokio::task::yield_now().await;
            }
        };
        let (a, b) = (tokio::spawn(y()), tokio::spawn(y()));
        a.await.expect("task failed");
        b.await.expect("task failed");
        start.elapsed()
    }))
    .expect("bench task")
}

pub(crate) fn yield_pingpong_ae(n: usize) -> Duration {
    on_executor(|ex| async move {
        let start = Instant::now();
        let y = || async move {
            for _ in 0..n {
                future::yield_now().await;
            }
        };
        let (a, b) = (ex.spawn(y()), ex.spawn(y()));
        a.await;
        b.await;
        start.elapsed()
    })
}

// ---- mt::fan_out: one task spawns n children that each send one message to a collector. ---

/// Receives `n` messages and returns their sum (checked by the caller).
async fn collect(rx: async_channel::Receiver<u64>, n: usize) -> u64 {
    let mut sum = 0;
    for _ in 0..n {
        sum += rx.recv().await.expect("a child's message");
    }
    sum
}

fn check(sum: u64, n: usize) {
    assert_eq!(sum, (n as u64 - 1) * n as u64 / 2, "fan-out lost messages");
}

pub(crate) fn fan_out_omni(n: usize) -> Duration {
    let rt = omni_rt();
    rt.block_on(rt.spawn(async move {
        let start = Instant::now();
        let (tx, rx) = async_channel::unbounded();
        let collector = omni::spawn(collect(rx, n));
        for i in 0..n as u64 {
            let tx = tx.clone();
            drop(omni::spawn(async move { tx.send(i).await.expect("collector alive") }));
        }
        check(collector.await.expect("collector"), n);
        start.elapsed()
    }))
    .expect("bench task")
}

pub(crate) fn fan_out_tokio(n: usize) -> Duration {
    let rt = tokio_rt();
    rt.block_on(rt.spawn(async move {
        let start = Instant::now();
        let (tx, rx) = async_channel::unbounded();
        let collector = tokio::spawn(collect(rx, n));
        for i in 0..n as u64 {
            let tx = tx.clone();
            drop(tokio::spawn(async move { tx.send(i).await.expect("collector alive") }));
        }
        check(collector.await.expect("collector"), n);
        start.elapsed()
    }))
    .expect("bench task")
}

pub(crate) fn fan_out_ae(n: usize) -> Duration {
    on_executor(|ex| async move {
        let start = Instant::now();
        let (tx, rx) = async_channel::unbounded();
        let collector = ex.spawn(collect(rx, n));
        for i in 0..n as u64 {
            let tx = tx.clone();
            ex.spawn(async move { tx.send(i).await.expect("collector alive") }).detach();
        }
        check(collector.await, n);
        start.elapsed()
    })
}
