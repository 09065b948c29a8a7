//! ThreadSanitizer target (`harness = false`; `.ci/run` runs it under `-Zsanitizer=thread`,
//! and `cargo test` runs it as a plain test): work stealing on a 4-worker runtime.
//!
//! One task spawns every task onto its own worker, so the other three workers get work only by
//! stealing it; each task yields between steps (so it is requeued, and may be stolen again) and
//! carries heap data from poll to poll. Then plain OS threads wake parked tasks, and a handle
//! spawns from outside. Checks every sum.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread::ThreadId;

const TASKS: u64 = 2_000;
const STEPS: u64 = 8;

fn main() {
    let rt = omni::Builder::new_multi_thread().workers(4).build().unwrap();
    let pollers: Arc<Mutex<HashSet<ThreadId>>> = Arc::default();

    // Stealing: everything starts on the spawning task's worker.
    let p = pollers.clone();
    let total = rt
        .block_on(rt.spawn(async move {
            let handles: Vec<_> = (0..TASKS)
                .map(|i| {
                    let p = p.clone();
                    omni::spawn(async move {
                        let mut acc = Vec::new();
                        for k in 0..STEPS {
                            acc.push(i * STEPS + k);
                            p.lock().unwrap().insert(std::thread::current().id());
                            omni::yield_now().await;
                        }
                        acc.iter().sum::<u64>()
                    })
                })
                .collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        }))
        .unwrap();
    let n = TASKS * STEPS;
    assert_eq!(total, n * (n - 1) / 2);

    // Remote wakes: each task parks until an OS thread sets its flag and wakes it.
    type Slot = Arc<(AtomicBool, Mutex<Option<Waker>>)>;
    let slots: Vec<Slot> = (0..200).map(|_| Slot::default()).collect();
    let handles: Vec<_> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.clone();
            rt.spawn(std::future::poll_fn(move |cx| {
                *s.1.lock().unwrap() = Some(cx.waker().clone());
                if s.0.load(SeqCst) {
                    Poll::Ready(i)
                } else {
                    Poll::Pending
                }
            }))
        })
        .collect();
    let wakers: Vec<_> = slots
        .chunks(50)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            std::thread::spawn(move || {
                for s in chunk {
                    s.0.store(true, SeqCst);
                    let w = s.1.lock().unwrap().take();
                    if let Some(w) = w {
                        w.wake();
                    }
                }
            })
        })
        .collect();
    for w in wakers {
        w.join().unwrap();
    }
    let sum: usize = rt.block_on(async {
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 199 * 200 / 2);

    // Spawning through a handle from other threads while the workers run.
    let handle = rt.handle().clone();
    let spawned: Vec<_> = (0..4u64)
        .map(|t| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                (0..100u64).map(|i| handle.spawn(async move { t * 100 + i })).collect::<Vec<_>>()
            })
        })
        .flat_map(|t| t.join().unwrap())
        .collect();
    let sum: u64 = rt.block_on(async {
        let mut sum = 0;
        for h in spawned {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 399 * 400 / 2);
    drop(rt);
    println!("tsan_steal: ok ({} threads polled the stolen tasks)", pollers.lock().unwrap().len());
}
