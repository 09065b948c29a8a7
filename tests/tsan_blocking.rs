//! ThreadSanitizer target (`harness = false`; `.ci/run` runs it under `-Zsanitizer=thread`,
//! and `cargo test` runs it as a plain test): the blocking pool under load from a 2-worker
//! runtime and from plain threads.
//!
//! Four pool threads that retire after 1 ms idle (so threads start and retire throughout),
//! closures that return values, panic, or whose handles are dropped or aborted, and a runtime
//! dropped with closures still queued. Checks every result and that no closure runs twice.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

const JOBS: u64 = 2_000;

fn main() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<String>().map_or("", String::as_str);
        if !msg.starts_with("tsan: ") {
            default(info);
        }
    }));
    let ran = Arc::new(AtomicUsize::new(0));
    let rt = omni::Builder::new_multi_thread()
        .workers(2)
        .max_blocking_threads(4)
        .thread_keep_alive(Duration::from_millis(1))
        .build()
        .unwrap();

    let (sum, panics) = rt
        .block_on(rt.spawn({
            let ran = ran.clone();
            async move {
                let handles: Vec<_> = (0..JOBS)
                    .map(|i| {
                        let ran = ran.clone();
                        omni::spawn_blocking(move || {
                            ran.fetch_add(1, SeqCst);
                            if i % 100 == 99 {
                                panic!("tsan: job {i} panics on purpose");
                            }
                            let v: Vec<u64> = (0..16).map(|k| i * 16 + k).collect();
                            v.iter().sum::<u64>()
                        })
                    })
                    .collect();
                let (mut sum, mut panics) = (0, 0);
                for (i, h) in handles.into_iter().enumerate() {
                    if i % 7 == 3 {
                        drop(h); // detached: the closure still runs
                        continue;
                    }
                    match h.await {
                        Ok(v) => sum += v,
                        Err(e) => {
                            assert!(e.is_panic());
                            panics += 1;
                        }
                    }
                }
                (sum, panics)
            }
        }))
        .unwrap();
    let expect: u64 = (0..JOBS)
        .filter(|i| i % 100 != 99 && i % 7 != 3)
        .map(|i| (0..16).map(|k| i * 16 + k).sum::<u64>())
        .sum();
    assert_eq!(sum, expect);
    let expect_panics = (0..JOBS as usize).filter(|i| i % 100 == 99 && i % 7 != 3).count();
    assert_eq!(panics, expect_panics);

    // From plain threads through a handle, then shutdown with some still queued.
    let handle = rt.handle().clone();
    let from_threads: Vec<_> = (0..4)
        .map(|_| {
            let (handle, ran) = (handle.clone(), ran.clone());
            std::thread::spawn(move || {
                (0..50)
                    .map(|_| {
                        let ran = ran.clone();
                        handle.spawn_blocking(move || ran.fetch_add(1, SeqCst))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .flat_map(|t| t.join().unwrap())
        .collect();
    let half = from_threads.len() / 2;
    let mut rest = from_threads;
    let tail = rest.split_off(half);
    rt.block_on(async {
        for h in rest {
            h.await.unwrap();
        }
    });
    drop(rt); // the tail may be queued, running or done: each runs at most once
    let ran = ran.load(SeqCst);
    assert!(ran >= JOBS as usize + half && ran <= JOBS as usize + half + tail.len());
    drop(tail);
    println!("tsan_blocking: ok ({ran} closures ran, {panics} panicked)");
}
