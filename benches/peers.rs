//! omni side by side with tokio and async-executor: the same workloads, one process.
//!
//! Each workload has one function per runtime: omni (`omni::Runtime`), tokio (a `current_thread`
//! runtime) and async-executor (a `LocalExecutor` driven by `futures_lite::future::block_on`). Every
//! run builds a fresh runtime outside the timed region and times only the workload, with `Instant`,
//! from inside the main future. Runs are interleaved (round r: omni, tokio, async-executor; repeat) so
//! that drift in the machine hits all three alike, and each cell of the table is the median over the
//! rounds.
//!
//! | id | what one operation is |
//! |---|---|
//! | `rt::spawn_join` | spawning a trivial task (`async {}`) and later awaiting its handle |
//! | `rt::yield_pingpong` | one `yield_now().await` of one of two tasks yielding in turn |
//! | `cont::pingpong` | one resume of a parked partner task: `cont::suspend` and `Cont::resume` on omni, a tokio `oneshot` per park on the peers |
//! | `rt::parked_memory` | bytes per task parked on a never-ready zero-sized future: live heap from a counting allocator, and RSS growth from `/proc/self/statm` |
//! | `chan::pingpong` | one round trip of a counter between two tasks over two `bounded(1)` channels; the peer columns show the best of tokio mpsc, async-channel and flume on that runtime, and the `[channel]` rows each of them |
//! | `chan::mpsc_bounded` | one message of 4 producer tasks × n/4 into one consumer over `bounded(1024)` (peers: best of the three channels, then each) |
//! | `chan::mpsc_unbounded` | the same over an unbounded channel |
//! | `mt::spawn_join` | on 2 workers (tokio `multi_thread`, async-executor `Executor` on 2 threads): a task spawns a trivial task and later awaits its handle |
//! | `mt::yield_pingpong` | on 2 workers: one `yield_now().await` of one of two tasks yielding n times each |
//! | `time::sleeps` | one timer of n tasks each sleeping a duration spread over [1, 100] ms (tokio `time::sleep`, async-io `Timer` on the async-executor side): wall time from the first spawn to the last wake-up, per timer |
//! | `time::pending_memory` | bytes per task parked on a one-hour sleep (heap from the counting allocator, and RSS) |
//! | `mt::fan_out` | on 2 workers: one task spawns n children that each send one message (async-channel, the same on every runtime) to a collector task |
//! | `scope::nursery_fanout` | one child of n trivial children started in one nursery and joined when it returns; tokio: a `JoinSet` spawned into and drained; async-executor: spawned tasks whose handles are awaited |
//! | `gen::yield` | one item of an endless counting generator driven as an iterator, omni's `Gen` beside a hand-written `Iterator` and genawaiter's `rc::Gen`: a table of its own |
//! | `tcp::echo` | one round trip of 64 bytes on one of 50 loopback TCP connections (server and clients in one runtime), on omni with each I/O driver and on tokio, at 1 and 2 workers: a table of its own, in round trips per second (async-executor has no reactor of its own here, so no column) |
//!
//! Read the ratio columns as omni's median divided by the peer's: lower is better, and below 1.00
//! omni is faster (or smaller) than that peer.
//!
//! ```text
//! cargo bench --bench peers                    # everything, 15 rounds
//! cargo bench --bench peers -- cont::          # only ids containing "cont::"
//! PEERS_QUICK=1 cargo bench --bench peers      # sizes / 10, 3 rounds: a smoke run
//! PEERS_ROUNDS=31 cargo bench --bench peers    # more rounds
//! ```

mod common;

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::io::IsTerminal;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use futures_lite::future;
use omni::cont::{suspend, Cont};
use tokio::sync::oneshot;

use common::memory::{CountingAlloc, Footprint, Window};
use common::report::{median, print_table, Config, Row, PEERS};
use common::{chan, multi, scope, tcp, timers};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// rt::spawn_join: spawn n trivial tasks, keep the handles, await them in order.

fn spawn_join_omni(n: usize) -> Duration {
    let rt = omni::Runtime::new().expect("omni runtime");
    rt.block_on(async move {
        let mut handles = Vec::with_capacity(n);
        let start = Instant::now();
        for _ in 0..n {
            handles.push(omni::spawn_local(async {}));
        }
        for h in handles {
            h.await.expect("task failed");
        }
        start.elapsed()
    })
}

fn spawn_join_tokio(n: usize) -> Duration {
    let rt = tokio_rt();
    rt.block_on(async move {
        let mut handles = Vec::with_capacity(n);
        let start = Instant::now();
        for _ in 0..n {
            handles.push(tokio::spawn(async {}));
        }
        for h in handles {
            h.await.expect("task failed");
        }
        start.elapsed()
    })
}

fn spawn_join_ae(n: usize) -> Duration {
    let ex = LocalExecutor::new();
    future::block_on(ex.run(async {
        let mut handles = Vec::with_capacity(n);
        let start = Instant::now();
        for _ in 0..n {
            handles.push(ex.spawn(async {}));
        }
        for h in handles {
            h.await;
        }
        start.elapsed()
    }))
}

// ---------------------------------------------------------------------------------------------
// rt::yield_pingpong: two tasks each yield n times; both spawned, then both joined.

fn yield_pingpong_omni(n: usize) -> Duration {
    let rt = omni::Runtime::new().expect("omni runtime");
    rt.block_on(async move {
        let start = Instant::now();
        let yielder = || async move {
            for _ in 0..n {
                omni::yield_now().await;
            }
        };
        let (a, b) = (omni::spawn_local(yielder()), omni::spawn_local(yielder()));
        a.await.expect("task failed");
        b.await.expect("task failed");
        start.elapsed()
    })
}

fn yield_pingpong_tokio(n: usize) -> Duration {
    let rt = tokio_rt();
    rt.block_on(async move {
        let start = Instant::now();
        let yielder = || async move {
            for _ in 0..n {
                tokio::task::yield_now().await;
            }
        };
        let (a, b) = (tokio::spawn(yielder()), tokio::spawn(yielder()));
        a.await.expect("task failed");
        b.await.expect("task failed");
        start.elapsed()
    })
}

fn yield_pingpong_ae(n: usize) -> Duration {
    let ex = LocalExecutor::new();
    future::block_on(ex.run(async {
        let start = Instant::now();
        let yielder = || async move {
            for _ in 0..n {
                future::yield_now().await;
            }
        };
        let (a, b) = (ex.spawn(yielder()), ex.spawn(yielder()));
        a.await;
        b.await;
        start.elapsed()
    }))
}

// ---------------------------------------------------------------------------------------------
// cont::pingpong: two tasks resume each other n round trips (2n resumes).
//
// Each side parks by leaving its resumer in its own cell, then resumes the partner parked in the
// other cell, if any. The side that starts first finds no partner and just parks. Both sides park n
// times; the side that finishes first then resumes its still-parked partner once more, without
// parking, and the partner finds an empty cell when it finishes. Either side may start first.

/// One side's cell: where it leaves its resumer while parked.
type Slot<K> = Rc<Cell<Option<K>>>;

async fn cont_side(n: usize, mine: Slot<Cont<u64>>, theirs: Slot<Cont<u64>>) -> u64 {
    let mut sum = 0;
    for i in 0..n as u64 {
        sum += suspend(|k| {
            mine.set(Some(k));
            if let Some(partner) = theirs.take() {
                partner.resume(i).ok();
            }
        })
        .await
        .expect("partner dropped its continuation");
    }
    if let Some(partner) = theirs.take() {
        partner.resume(n as u64).ok();
    }
    sum
}

async fn oneshot_side(
    n: usize,
    mine: Slot<oneshot::Sender<u64>>,
    theirs: Slot<oneshot::Sender<u64>>,
) -> u64 {
    let mut sum = 0;
    for i in 0..n as u64 {
        let (tx, rx) = oneshot::channel();
        mine.set(Some(tx));
        if let Some(partner) = theirs.take() {
            partner.send(i).ok();
        }
        sum += rx.await.expect("partner dropped its sender");
    }
    if let Some(partner) = theirs.take() {
        partner.send(n as u64).ok();
    }
    sum
}

fn cont_pingpong_omni(n: usize) -> Duration {
    let rt = omni::Runtime::new().expect("omni runtime");
    rt.block_on(async move {
        let (x, y) = (Slot::default(), Slot::default());
        let start = Instant::now();
        let a = omni::spawn_local(cont_side(n, x.clone(), y.clone()));
        let b = omni::spawn_local(cont_side(n, y, x));
        black_box(a.await.expect("task failed") + b.await.expect("task failed"));
        start.elapsed()
    })
}

/// tokio needs a `LocalSet` for the `Rc` cells: its counterpart of `spawn_local`.
fn cont_pingpong_tokio(n: usize) -> Duration {
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let (x, y) = (Slot::default(), Slot::default());
        let start = Instant::now();
        let a = tokio::task::spawn_local(oneshot_side(n, x.clone(), y.clone()));
        let b = tokio::task::spawn_local(oneshot_side(n, y, x));
        black_box(a.await.expect("task failed") + b.await.expect("task failed"));
        start.elapsed()
    })
}

fn cont_pingpong_ae(n: usize) -> Duration {
    let ex = LocalExecutor::new();
    future::block_on(ex.run(async {
        let (x, y) = (Slot::default(), Slot::default());
        let start = Instant::now();
        let a = ex.spawn(oneshot_side(n, x.clone(), y.clone()));
        let b = ex.spawn(oneshot_side(n, y, x));
        black_box(a.await + b.await);
        start.elapsed()
    }))
}

// ---------------------------------------------------------------------------------------------
// rt::parked_memory: n detached tasks parked on a zero-sized never-ready future.

/// Times any `Parked` has been polled; reset at the start of each run.
static POLLED: AtomicUsize = AtomicUsize::new(0);

/// A zero-sized future that is never ready and stores no waker, so a task on it parks for good
/// after its first poll.
struct Parked;

const _: () = assert!(std::mem::size_of::<Parked>() == 0);

impl Future for Parked {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        POLLED.fetch_add(1, Relaxed);
        Poll::Pending
    }
}

/// Yields until every one of the `n` tasks has been polled once; panics if that never happens.
async fn all_polled<Y: Future<Output = ()>>(n: usize, yield_now: impl Fn() -> Y) {
    let limit = 100 * n.max(1);
    for _ in 0..limit {
        if POLLED.load(Relaxed) >= n {
            return;
        }
        yield_now().await;
    }
    panic!(
        "rt::parked_memory: only {} of {n} spawned tasks were polled after {limit} yields of the \
         main future; the runtime is not running spawned tasks",
        POLLED.load(Relaxed)
    );
}

fn parked_memory_omni(n: usize) -> Footprint {
    POLLED.store(0, Relaxed);
    let window = Window::open();
    let rt = omni::Runtime::new().expect("omni runtime");
    let footprint = rt.block_on(async move {
        for _ in 0..n {
            drop(omni::spawn_local(Parked));
        }
        all_polled(n, omni::yield_now).await;
        window.close(n)
    });
    drop(rt);
    footprint
}

fn parked_memory_tokio(n: usize) -> Footprint {
    POLLED.store(0, Relaxed);
    let window = Window::open();
    let rt = tokio_rt();
    let footprint = rt.block_on(async move {
        for _ in 0..n {
            drop(tokio::spawn(Parked));
        }
        all_polled(n, tokio::task::yield_now).await;
        window.close(n)
    });
    drop(rt);
    footprint
}

fn parked_memory_ae(n: usize) -> Footprint {
    POLLED.store(0, Relaxed);
    let window = Window::open();
    let ex = LocalExecutor::new();
    let footprint = future::block_on(ex.run(async {
        for _ in 0..n {
            ex.spawn(Parked).detach();
        }
        all_polled(n, future::yield_now).await;
        window.close(n)
    }));
    drop(ex);
    footprint
}

// ---------------------------------------------------------------------------------------------
// The harness.

/// How a workload is measured, with one function per peer in [`PEERS`] order.
enum Measure {
    /// Each function returns the time for the workload of size n, which does `ops_per_n * n`
    /// operations; the row is ns per operation.
    Time { unit: &'static str, ops_per_n: usize, runs: [fn(usize) -> Duration; 3] },
    /// Each function returns bytes per task; the workload gives a heap row and an RSS row.
    Memory { runs: [fn(usize) -> Footprint; 3] },
    /// A channel workload: omni's channel on omni, and each peer channel on each peer runtime.
    /// Gives a row with the best peer channel per runtime, then one row per peer channel.
    Chan { unit: &'static str, runs: chan::ChanRuns },
}

struct Workload {
    id: &'static str,
    /// Size at full scale (tasks, or yields or round trips per task).
    n: usize,
    measure: Measure,
}

fn workloads() -> Vec<Workload> {
    use Measure::{Memory, Time};
    vec![
        Workload {
            id: "rt::spawn_join",
            n: 100_000,
            measure: Time {
                unit: "ns per task spawned and joined",
                ops_per_n: 1,
                runs: [spawn_join_omni, spawn_join_tokio, spawn_join_ae],
            },
        },
        Workload {
            id: "rt::yield_pingpong",
            n: 1_000_000,
            measure: Time {
                unit: "ns per yield (two tasks, n yields each)",
                ops_per_n: 2,
                runs: [yield_pingpong_omni, yield_pingpong_tokio, yield_pingpong_ae],
            },
        },
        Workload {
            id: "cont::pingpong",
            n: 1_000_000,
            measure: Time {
                unit: "ns per resume (n round trips, two resumes each)",
                ops_per_n: 2,
                runs: [cont_pingpong_omni, cont_pingpong_tokio, cont_pingpong_ae],
            },
        },
        Workload {
            id: "rt::parked_memory",
            n: 1_000_000,
            measure: Memory { runs: [parked_memory_omni, parked_memory_tokio, parked_memory_ae] },
        },
        Workload {
            id: "time::sleeps",
            n: 1_000_000,
            measure: Time {
                unit: "ns per timer (n sleeps over [1, 100] ms, all awaited)",
                ops_per_n: 1,
                runs: [timers::sleeps_omni, timers::sleeps_tokio, timers::sleeps_ae],
            },
        },
        Workload {
            id: "time::pending_memory",
            n: 1_000_000,
            measure: Memory {
                runs: [
                    timers::pending_memory_omni,
                    timers::pending_memory_tokio,
                    timers::pending_memory_ae,
                ],
            },
        },
        Workload {
            id: "chan::pingpong",
            n: 200_000,
            measure: Measure::Chan {
                unit: "ns per round trip over two bounded(1) channels",
                runs: chan::PINGPONG,
            },
        },
        Workload {
            id: "chan::mpsc_bounded",
            n: 1_000_000,
            measure: Measure::Chan {
                unit: "ns per message, 4 producers into 1 consumer, bounded(1024)",
                runs: chan::MPSC_BOUNDED,
            },
        },
        Workload {
            id: "chan::mpsc_unbounded",
            n: 1_000_000,
            measure: Measure::Chan {
                unit: "ns per message, 4 producers into 1 consumer, unbounded",
                runs: chan::MPSC_UNBOUNDED,
            },
        },
        Workload {
            id: "scope::nursery_fanout",
            n: 100_000,
            measure: Time {
                unit: "ns per child started and joined (nursery / JoinSet / spawned tasks)",
                ops_per_n: 1,
                runs: [
                    scope::nursery_fanout_omni,
                    scope::nursery_fanout_tokio,
                    scope::nursery_fanout_ae,
                ],
            },
        },
        Workload {
            id: "mt::spawn_join",
            n: 100_000,
            measure: Time {
                unit: "ns per task spawned from a worker and joined (2 workers)",
                ops_per_n: 1,
                runs: [multi::spawn_join_omni, multi::spawn_join_tokio, multi::spawn_join_ae],
            },
        },
        Workload {
            id: "mt::yield_pingpong",
            n: 1_000_000,
            measure: Time {
                unit: "ns per yield (two tasks, n yields each, 2 workers)",
                ops_per_n: 2,
                runs: [
                    multi::yield_pingpong_omni,
                    multi::yield_pingpong_tokio,
                    multi::yield_pingpong_ae,
                ],
            },
        },
        Workload {
            id: "mt::fan_out",
            n: 1_000_000,
            measure: Time {
                unit: "ns per child spawned that sent to the collector (2 workers)",
                ops_per_n: 1,
                runs: [multi::fan_out_omni, multi::fan_out_tokio, multi::fan_out_ae],
            },
        },
    ]
}

/// Runs `run` for each peer, `rounds` times interleaved, and returns the samples per peer.
fn interleave<T>(rounds: usize, n: usize, runs: &[fn(usize) -> T; 3]) -> [Vec<T>; 3] {
    let tty = std::io::stderr().is_terminal();
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        if tty {
            eprint!("\r  round {}/{rounds}", round + 1);
        }
        for (peer, run) in runs.iter().enumerate() {
            samples[peer].push(run(n));
        }
    }
    if tty {
        eprintln!();
    }
    samples
}

fn measure(w: &Workload, cfg: &Config) -> Vec<Row> {
    let n = cfg.size(w.n);
    match &w.measure {
        Measure::Time { unit, ops_per_n, runs } => {
            let ops = (n * ops_per_n) as f64;
            let samples = interleave(cfg.rounds, n, runs);
            let medians = samples
                .map(|s| median(&s.iter().map(|d| d.as_nanos() as f64 / ops).collect::<Vec<_>>()));
            vec![Row { id: w.id.to_string(), unit, medians }]
        }
        Measure::Chan { unit, runs } => {
            let ops = n as f64;
            let tty = std::io::stderr().is_terminal();
            // samples[0]: omni; samples[1 + 2c + r]: peer channel c on runtime r (tokio, ae).
            let mut samples = vec![Vec::new(); 7];
            for round in 0..cfg.rounds {
                if tty {
                    eprint!("\r  round {}/{}", round + 1, cfg.rounds);
                }
                samples[0].push((runs.omni)(n, 0));
                for (c, run) in runs.peers.iter().enumerate() {
                    for rt in 0..2 {
                        samples[1 + 2 * c + rt].push(run(n, 1 + rt));
                    }
                }
            }
            if tty {
                eprintln!();
            }
            let med: Vec<f64> = samples
                .iter()
                .map(|s| median(&s.iter().map(|d| d.as_nanos() as f64 / ops).collect::<Vec<_>>()))
                .collect();
            let best =
                |rt: usize| (0..3).map(|c| med[1 + 2 * c + rt]).fold(f64::INFINITY, f64::min);
            let mut rows =
                vec![Row { id: w.id.to_string(), unit, medians: [med[0], best(0), best(1)] }];
            for (c, name) in chan::PEER_CHANNELS.iter().enumerate() {
                rows.push(Row {
                    id: format!("{}[{name}]", w.id),
                    unit: "the same, each peer runtime running this channel",
                    medians: [med[0], med[1 + 2 * c], med[2 + 2 * c]],
                });
            }
            rows
        }
        Measure::Memory { runs } => {
            let samples = interleave(cfg.memory_rounds, n, runs);
            let heap =
                samples.each_ref().map(|s| median(&s.iter().map(|f| f.heap).collect::<Vec<_>>()));
            let rss =
                samples.each_ref().map(|s| median(&s.iter().map(|f| f.rss).collect::<Vec<_>>()));
            vec![
                Row {
                    id: format!("{} heap B/task", w.id),
                    unit: "live heap bytes per parked task (counting allocator)",
                    medians: heap,
                },
                Row {
                    id: format!("{} rss B/task", w.id),
                    unit: "resident bytes per parked task (/proc/self/statm delta)",
                    medians: rss,
                },
            ]
        }
    }
}

fn main() {
    let cfg = Config::from_env();
    let mut rows = Vec::new();
    for w in workloads().iter().filter(|w| cfg.selects(w.id)) {
        eprintln!("peers: {} (n = {}, {})", w.id, cfg.size(w.n), PEERS.join(", "));
        let start = Instant::now();
        rows.extend(measure(w, &cfg));
        eprintln!("peers: {} done in {:.1?}", w.id, start.elapsed());
    }
    let tcp = cfg.selects(tcp::ID);
    let gens = cfg.selects(scope::GEN_ID);
    if rows.is_empty() && !tcp && !gens {
        eprintln!("peers: no workload matches the filter");
        return;
    }
    if !rows.is_empty() {
        print_table(&rows, &cfg);
    }
    if gens {
        scope::report(&cfg);
    }
    if tcp {
        tcp::report(&cfg);
    }
}
