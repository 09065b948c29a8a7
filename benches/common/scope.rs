//! `scope::nursery_fanout` (a row of the main table) and `gen::yield` (a table of its own).
//!
//! `scope::nursery_fanout`: one nursery starts n trivial children and returns when all have
//! finished; tokio: a `JoinSet` of n `spawn`s drained with `join_next`; async-executor: n
//! `spawn`s on a `LocalExecutor`, each handle awaited. All on one thread.
//!
//! `gen::yield`: ns per item of a generator counting up with a wrapping add, driven as an
//! iterator: omni's `Gen`, a hand-written `Iterator`, and genawaiter's `rc::Gen` (its fastest
//! flavour without macros). Every item goes through `black_box`.

use super::report::{median, Config};
use async_executor::LocalExecutor;
use futures_lite::future;
use std::hint::black_box;
use std::time::{Duration, Instant};

pub(crate) fn nursery_fanout_omni(n: usize) -> Duration {
    let rt = omni::Runtime::new().expect("omni runtime");
    rt.block_on(async move {
        let start = Instant::now();
        omni::scope::nursery(|nursery| {
            for i in 0..n {
                nursery.spawn(async move {
                    black_box(i);
                    Ok::<_, ()>(())
                });
            }
            async { Ok(()) }
        })
        .await
        .expect("a child failed");
        start.elapsed()
    })
}

pub(crate) fn nursery_fanout_tokio(n: usize) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime");
    rt.block_on(async move {
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..n {
            set.spawn(async move {
                black_box(i);
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("task failed");
        }
        start.elapsed()
    })
}

pub(crate) fn nursery_fanout_ae(n: usize) -> Duration {
    let ex = LocalExecutor::new();
    future::block_on(ex.run(async {
        let start = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            handles.push(ex.spawn(async move {
                black_box(i);
            }));
        }
        for h in handles {
            h.await;
        }
        start.elapsed()
    }))
}

pub(crate) const GEN_ID: &str = "gen::yield";
const GEN_N: usize = 10_000_000;

/// The hand-written twin of the generators below.
struct Counter(u64);

impl Iterator for Counter {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let v = self.0;
        self.0 = self.0.wrapping_add(0x9e37_79b9);
        Some(v)
    }
}

fn drain(it: impl Iterator<Item = u64>, n: usize) -> Duration {
    let start = Instant::now();
    for x in it.take(n) {
        black_box(x);
    }
    start.elapsed()
}

fn gen_omni(n: usize) -> Duration {
    let g = omni::gen::Gen::new(|co| async move {
        let mut v = 0u64;
        loop {
            co.yield_(v).await;
            v = v.wrapping_add(0x9e37_79b9);
        }
    });
    drain(g.into_iter(), n)
}

fn gen_hand(n: usize) -> Duration {
    drain(Counter(0), n)
}

fn gen_genawaiter(n: usize) -> Duration {
    let g = genawaiter::rc::Gen::new(|co| async move {
        let mut v = 0u64;
        loop {
            co.yield_(v).await;
            v = v.wrapping_add(0x9e37_79b9);
        }
    });
    drain(g.into_iter(), n)
}

/// One column's measurement: the time for n items.
type Run = fn(usize) -> Duration;

/// Measures and prints the `gen::yield` table.
pub(crate) fn report(cfg: &Config) {
    let n = cfg.size(GEN_N);
    eprintln!("peers: {GEN_ID} (n = {n} items, {} rounds)", cfg.rounds);
    let runs: [(&str, Run); 3] = [
        ("omni Gen", gen_omni),
        ("hand-written Iterator", gen_hand),
        ("genawaiter rc", gen_genawaiter),
    ];
    let mut samples = vec![Vec::new(); runs.len()];
    for _ in 0..cfg.rounds {
        for ((_, run), s) in runs.iter().zip(&mut samples) {
            s.push(run(n).as_nanos() as f64 / n as f64);
        }
    }
    let med: Vec<f64> = samples.iter().map(|s| median(s)).collect();
    println!();
    println!("{GEN_ID}: ns per item, driven as an iterator (median of {} rounds)", cfg.rounds);
    println!();
    let header = ["", runs[0].0, runs[1].0, runs[2].0, "omni/hand", "omni/genawaiter"];
    let cells = [
        GEN_ID.to_string(),
        format!("{:.2}", med[0]),
        format!("{:.2}", med[1]),
        format!("{:.2}", med[2]),
        format!("{:.2}", med[0] / med[1]),
        format!("{:.2}", med[0] / med[2]),
    ];
    let width: Vec<usize> = header.iter().zip(&cells).map(|(h, c)| h.len().max(c.len())).collect();
    let line = |cols: Vec<String>| {
        let parts: Vec<String> =
            cols.iter().zip(&width).map(|(c, w)| format!("{c:>w$}", w = *w)).collect();
        println!("| {} |", parts.join(" | "));
    };
    line(header.iter().map(|s| s.to_string()).collect());
    line(width.iter().map(|w| "-".repeat(*w)).collect());
    line(cells.to_vec());
}
