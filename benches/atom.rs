//! `omni::Atom` (on arc-swap) against the two obvious alternatives, an `RwLock<Arc<T>>` and a
//! `Mutex<Arc<T>>`: reads and swaps of a shared `u64`, on one thread and on two.
//!
//! | id | what one operation is |
//! |---|---|
//! | `atom::deref` | one read: `atom.deref()` (a `Snapshot`); a lock, an `Arc` clone and an unlock for the peers |
//! | `atom::deref_arc` | one read kept as an `Arc<T>`: `atom.deref().into_arc()`; the same as `deref` for the peers |
//! | `atom::swap` | one increment: `atom.swap(\|n\| n + 1)`; lock, store a new `Arc`, unlock for the peers |
//! | `... x2` | the same on two threads at once; ns per operation of one thread |
//! | `atom::deref_vs_writer` | one read while another thread swaps without pause; the reader's ns per read |
//!
//! Every run spawns its threads outside the timed region, starts them together on a barrier,
//! and times each thread from the barrier to its last operation. Runs are interleaved (Atom,
//! RwLock, Mutex; repeat) and each cell is the median over the rounds.
//!
//! ```text
//! cargo bench --bench atom                 # everything, 11 rounds
//! cargo bench --bench atom -- swap         # only ids containing "swap"
//! ATOM_QUICK=1 cargo bench --bench atom    # sizes / 10, 3 rounds: a smoke run
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::time::Instant;

use omni::Atom;

/// A shared `u64` that can be read and incremented from several threads.
trait Shared: Send + Sync + Sized + 'static {
    const NAME: &'static str;
    fn new(v: u64) -> Self;
    fn read(&self) -> u64;
    fn read_arc(&self) -> Arc<u64>;
    fn incr(&self);
}

impl Shared for Atom<u64> {
    const NAME: &'static str = "omni::Atom";
    fn new(v: u64) -> Self {
        Atom::new(v)
    }
    fn read(&self) -> u64 {
        *self.deref()
    }
    fn read_arc(&self) -> Arc<u64> {
        self.deref().into_arc()
    }
    fn incr(&self) {
        self.swap(|n| n + 1).unwrap();
    }
}

impl Shared for RwLock<Arc<u64>> {
    const NAME: &'static str = "RwLock<Arc>";
    fn new(v: u64) -> Self {
        RwLock::new(Arc::new(v))
    }
    fn read(&self) -> u64 {
        *self.read_arc()
    }
    fn read_arc(&self) -> Arc<u64> {
        Arc::clone(&self.read().unwrap())
    }
    fn incr(&self) {
        let mut g = self.write().unwrap();
        *g = Arc::new(**g + 1);
    }
}

impl Shared for Mutex<Arc<u64>> {
    const NAME: &'static str = "Mutex<Arc>";
    fn new(v: u64) -> Self {
        Mutex::new(Arc::new(v))
    }
    fn read(&self) -> u64 {
        *self.read_arc()
    }
    fn read_arc(&self) -> Arc<u64> {
        Arc::clone(&self.lock().unwrap())
    }
    fn incr(&self) {
        let mut g = self.lock().unwrap();
        *g = Arc::new(**g + 1);
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Read,
    ReadArc,
    Incr,
}

fn op<S: Shared>(s: &S, op: Op) {
    match op {
        Op::Read => {
            black_box(s.read());
        }
        Op::ReadArc => {
            black_box(s.read_arc());
        }
        Op::Incr => s.incr(),
    }
}

/// ns per operation of `threads` threads each doing `n` operations `what` on one shared value;
/// the slowest thread's time counts.
fn run<S: Shared>(what: Op, threads: usize, n: usize) -> f64 {
    let shared = S::new(0);
    let start = Barrier::new(threads);
    let nanos = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let t0 = Instant::now();
                    for _ in 0..n {
                        op(&shared, what);
                    }
                    t0.elapsed().as_nanos()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).max().unwrap()
    });
    if let Op::Incr = what {
        assert_eq!(shared.read(), (threads * n) as u64, "{} lost an update", S::NAME);
    }
    nanos as f64 / n as f64
}

/// ns per read of one thread reading `n` times while another increments until it is done.
fn run_vs_writer<S: Shared>(n: usize) -> f64 {
    let shared = S::new(0);
    let start = Barrier::new(2);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            start.wait();
            while !done.load(Relaxed) {
                shared.incr();
            }
        });
        start.wait();
        let t0 = Instant::now();
        for _ in 0..n {
            black_box(shared.read());
        }
        let nanos = t0.elapsed().as_nanos();
        done.store(true, Relaxed);
        nanos as f64 / n as f64
    })
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        (samples[mid - 1] + samples[mid]) / 2.0
    }
}

/// What a workload does: `threads` threads doing `Op`, or one reader beside a busy writer.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Ops(Op, usize),
    VsWriter,
}

/// ns per operation of one run of `kind` with `n` operations per thread, on `S`.
fn measure<S: Shared>(kind: Kind, n: usize) -> f64 {
    match kind {
        Kind::Ops(what, threads) => run::<S>(what, threads, n),
        Kind::VsWriter => run_vs_writer::<S>(n),
    }
}

fn main() {
    let quick = std::env::var("ATOM_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let rounds = std::env::var("ATOM_ROUNDS")
        .ok()
        .map(|v| v.parse::<usize>().expect("ATOM_ROUNDS must be a positive integer"))
        .unwrap_or(if quick { 3 } else { 11 });
    let shrink = if quick { 10 } else { 1 };
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();

    type A = Atom<u64>;
    type R = RwLock<Arc<u64>>;
    type M = Mutex<Arc<u64>>;
    let peers: [fn(Kind, usize) -> f64; 3] = [measure::<A>, measure::<R>, measure::<M>];
    let workloads = [
        ("atom::deref", Kind::Ops(Op::Read, 1), 4_000_000),
        ("atom::deref_arc", Kind::Ops(Op::ReadArc, 1), 4_000_000),
        ("atom::swap", Kind::Ops(Op::Incr, 1), 1_000_000),
        ("atom::deref x2", Kind::Ops(Op::Read, 2), 2_000_000),
        ("atom::swap x2", Kind::Ops(Op::Incr, 2), 500_000),
        ("atom::deref_vs_writer", Kind::VsWriter, 2_000_000),
    ];

    let names = [A::NAME, R::NAME, M::NAME];
    let mut rows = Vec::new();
    for (id, kind, n) in workloads {
        if !filters.is_empty() && !filters.iter().any(|f| id.contains(f.as_str())) {
            continue;
        }
        let mut samples = [(); 3].map(|()| Vec::new());
        for _ in 0..rounds {
            for (f, s) in peers.iter().zip(&mut samples) {
                s.push(f(kind, n / shrink));
            }
        }
        rows.push((id, samples.map(median)));
    }

    let header = ["workload, ns/op", names[0], names[1], names[2], "Atom/RwLock", "Atom/Mutex"];
    let lines: Vec<[String; 6]> = rows
        .iter()
        .map(|(id, [a, r, m])| {
            let f = |v: f64| format!("{v:.1}");
            [id.to_string(), f(*a), f(*r), f(*m), format!("{:.2}", a / r), format!("{:.2}", a / m)]
        })
        .collect();
    let mut width = header.map(str::len);
    for line in &lines {
        for (w, cell) in width.iter_mut().zip(line) {
            *w = (*w).max(cell.len());
        }
    }
    let print = |cells: [&str; 6]| {
        let mut out = format!("{:<w$}", cells[0], w = width[0]);
        for (cell, w) in cells.iter().zip(width).skip(1) {
            out.push_str(&format!(" | {cell:>w$}"));
        }
        println!("{out}");
    };
    println!();
    print(header);
    println!("{}", width.map(|w| "-".repeat(w)).join("-|-"));
    for line in &lines {
        print(line.each_ref().map(String::as_str));
    }
    println!();
    let sizes = if quick { ", sizes / 10" } else { "" };
    println!("Medians over {rounds} rounds{sizes}; ratios below 1.00: Atom is faster.");
}
