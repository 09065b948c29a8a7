//! A tour of omni's core: a million green tasks, continuations passed between tasks and
//! threads, panics and aborts, each step timed and printed.
//!
//! Run it with `cargo run --release --example tour`.

use omni::cont::{suspend, Cont};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

fn step(name: &str, n: u64, unit: &str, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    let el = t.elapsed();
    println!(
        "  {name:<44} {n:>9} {unit:<8} {:>9.2} ms  {:>8.1} ns/{unit}",
        el.as_secs_f64() * 1e3,
        el.as_nanos() as f64 / n as f64
    );
}

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    println!("omni tour: green tasks in generational regions, one-shot continuations\n");
    let rt = omni::Runtime::new().expect("runtime");

    const N: u64 = 1_000_000;
    step("spawn + join trivial tasks", N, "task", || {
        rt.block_on(async {
            let hs: Vec<_> = (0..N).map(|i| omni::spawn_local(async move { i })).collect();
            let mut sum = 0;
            for h in hs {
                sum += h.await.unwrap();
            }
            assert_eq!(sum, N * (N - 1) / 2);
        })
    });

    let before = rss_bytes();
    let parked = omni::Runtime::new().expect("runtime");
    step("park tasks on a never-ready future", N, "task", || {
        parked.block_on(async {
            for _ in 0..N {
                drop(omni::spawn_local(std::future::pending::<()>()));
            }
            omni::yield_now().await;
        })
    });
    if let (Some(a), Some(b)) = (before, rss_bytes()) {
        println!(
            "  {:<44} {:>9} bytes of RSS per parked task",
            "memory",
            (b.saturating_sub(a)) / N
        );
    }
    step("drop the runtime (cancels every parked task)", N, "task", || drop(parked));

    const R: u64 = 1_000_000;
    step("yield ping-pong between two tasks", 2 * R, "yield", || {
        rt.block_on(async {
            let a = omni::spawn_local(async {
                for _ in 0..R {
                    omni::yield_now().await;
                }
            });
            let b = omni::spawn_local(async {
                for _ in 0..R {
                    omni::yield_now().await;
                }
            });
            a.await.unwrap();
            b.await.unwrap();
        })
    });

    step("continuation ping-pong between two tasks", R, "resume", || {
        rt.block_on(async {
            type Slot = Rc<Cell<Option<Cont<u64>>>>;
            let (pa, pb): (Slot, Slot) = (Rc::default(), Rc::default());
            // Each player parks, handing its continuation to the other, and resumes the other's.
            let player = |me: Slot, other: Slot, park_first: bool| async move {
                let mut v =
                    if park_first { suspend(|k| me.set(Some(k))).await.unwrap() } else { 0 };
                loop {
                    if v >= R {
                        if let Some(k) = other.take() {
                            let _ = k.resume(v);
                        }
                        return v;
                    }
                    v = suspend(|k| {
                        me.set(Some(k));
                        other.take().expect("partner parked").resume(v + 1).unwrap();
                    })
                    .await
                    .unwrap();
                }
            };
            let a = omni::spawn_local(player(pa.clone(), pb.clone(), true));
            let b = omni::spawn_local(player(pb, pa, false));
            assert!(a.await.unwrap() >= R && b.await.unwrap() >= R);
        })
    });

    println!("\nwhat the runtime guarantees, shown:");
    rt.block_on(async {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {})); // the demo panic is expected: keep stderr quiet
        let bad = omni::spawn_local(async { panic!("a task panicked") });
        let err = bad.await.unwrap_err();
        std::panic::set_hook(hook);
        println!("  a panicking task is isolated: {err}");
        let stuck = omni::spawn_local(std::future::pending::<()>());
        stuck.abort();
        println!("  abort cancels a parked task: {}", stuck.await.unwrap_err());
        let k = suspend(|k: Cont<&str>| {
            std::thread::spawn(move || k.resume("from another OS thread").unwrap());
        })
        .await
        .unwrap();
        println!("  a continuation resumed {k}");
        let lost = suspend(|k: Cont<()>| drop(k)).await.unwrap_err();
        println!("  a dropped continuation is reported, not a hang: {lost}");
    });
}
