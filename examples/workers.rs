//! The two tiers at work: green tasks on every core, blocking calls on the OS-thread pool,
//! a dedicated thread with its own scheduler, timers, and an atom shared by all of them.
//!
//! Run it with `cargo run --release --example workers [WORKERS]`.

use omni::time::{sleep, timeout, Duration, Instant};
use omni::Atom;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workers = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|e| format!("WORKERS must be a number ({e})"))?,
        None => std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let rt = omni::Builder::new_multi_thread().workers(workers).build()?;
    println!("omni workers: {workers} worker threads\n");

    // One task fans out a million children over every worker; an atom counts them.
    let hits = Arc::new(Atom::new(0u64));
    let n = 1_000_000u64;
    let t = Instant::now();
    let h = hits.clone();
    let sum = rt.block_on(rt.spawn(async move {
        let children: Vec<_> = (0..n)
            .map(|i| {
                let h = h.clone();
                omni::spawn(async move {
                    if i % 1000 == 0 {
                        h.swap(|c| c + 1).expect("no validator");
                    }
                    i
                })
            })
            .collect();
        let mut sum = 0;
        for c in children {
            sum += c.await.expect("child");
        }
        sum
    }))?;
    assert_eq!(sum, n * (n - 1) / 2);
    println!(
        "  fan-out: {n} tasks spawned and joined in {:.1} ms ({:.0} ns/task), atom = {}",
        t.elapsed().as_secs_f64() * 1e3,
        t.elapsed().as_nanos() as f64 / n as f64,
        *hits.deref()
    );

    // A blocking call does not stall the workers: a timer still fires on time meanwhile.
    let t = Instant::now();
    let (slept, blocked) = rt.block_on(async {
        let blocked = omni::spawn_blocking(|| std::thread::sleep(Duration::from_millis(50)));
        let timer = omni::spawn(async {
            let t = Instant::now();
            sleep(Duration::from_millis(10)).await;
            t.elapsed()
        });
        (timer.await, blocked.await)
    });
    blocked?;
    println!(
        "  a 10 ms timer fired after {:.1} ms while a blocking call held a pool thread for 50 ms \
         (total {:.1} ms)",
        slept?.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );

    // Timeouts cancel what they wrap.
    let r = rt.block_on(timeout(Duration::from_millis(5), sleep(Duration::from_secs(60))));
    println!("  timeout(5 ms, sleep(60 s)) -> {r:?}");

    // A dedicated OS thread with its own current-thread scheduler, joined from plain code.
    let t = omni::thread::spawn(|| async {
        let local = std::rc::Rc::new(21); // !Send state is fine on its own thread
        omni::spawn_local(async move { *local * 2 }).await.expect("local task")
    });
    println!("  omni::thread::spawn -> {}", t.join().map_err(|_| "the thread panicked")?);
    Ok(())
}
