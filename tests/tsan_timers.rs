//! ThreadSanitizer target (`harness = false`; `.ci/run` runs it under `-Zsanitizer=thread`,
//! and `cargo test` runs it as a plain test): timers on a 2-worker runtime, where a timer is
//! inserted on one thread, fired by the driver of another and cancelled from a third.
//!
//! Short sleeps of the real clock are the subject here, not a way to wait for something: each
//! sleep must not end before its deadline, each timeout must fire exactly when its inner
//! future cannot finish first, and dropped or reset timers must neither fire nor be lost.

use omni::time::{interval, sleep, sleep_until, timeout, Duration, Instant};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

const SLEEPERS: u64 = 1_000;

fn main() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    let fired = Arc::new(AtomicUsize::new(0));

    let timed_out = rt
        .block_on(rt.spawn({
            let fired = fired.clone();
            async move {
                // Sleepers of 0..20 ms, each checking it did not wake early.
                let sleepers: Vec<_> = (0..SLEEPERS)
                    .map(|i| {
                        let fired = fired.clone();
                        omni::spawn(async move {
                            let d = Duration::from_millis(i % 20);
                            let start = Instant::now();
                            sleep(d).await;
                            assert!(start.elapsed() >= d, "sleep {d:?} woke early");
                            fired.fetch_add(1, SeqCst);
                        })
                    })
                    .collect();
                // Sleeps cancelled from another task before their deadline: dropped with
                // their task.
                let doomed: Vec<_> =
                    (0..200).map(|_| omni::spawn(sleep(Duration::from_secs(3600)))).collect();
                let aborter = omni::spawn(async move {
                    for h in &doomed {
                        h.abort();
                    }
                    let mut cancelled = 0;
                    for h in doomed {
                        cancelled += usize::from(h.await.unwrap_err().is_cancelled());
                    }
                    cancelled
                });
                // Timeouts: half around a 1 ms sleep with an hour's limit (never fires), half
                // around a future that never ends with a 20 ms limit (always fires).
                let timeouts: Vec<_> = (0..200u64)
                    .map(|i| {
                        omni::spawn(async move {
                            if i % 2 == 0 {
                                let inner = sleep(Duration::from_millis(1));
                                timeout(Duration::from_secs(3600), inner).await.is_err()
                            } else {
                                let inner = std::future::pending::<()>();
                                timeout(Duration::from_millis(20), inner).await.is_err()
                            }
                        })
                    })
                    .collect();
                // A reset sleep fires at its new deadline, not its old one.
                let reset = omni::spawn(async {
                    let start = Instant::now();
                    let mut s = Box::pin(sleep(Duration::from_secs(3600)));
                    s.as_mut().reset(start + Duration::from_millis(5));
                    s.await;
                    let waited = start.elapsed();
                    assert!(waited >= Duration::from_millis(5) && waited < Duration::from_secs(60));
                });
                // An interval ticks in order.
                let ticks = omni::spawn(async {
                    let mut iv = interval(Duration::from_millis(2));
                    let mut last = iv.tick().await;
                    for _ in 0..20 {
                        let t = iv.tick().await;
                        assert!(t > last);
                        last = t;
                    }
                });
                for h in sleepers {
                    h.await.unwrap();
                }
                assert_eq!(aborter.await.unwrap(), 200, "every aborted sleep reports cancelled");
                let mut timed_out = 0;
                for h in timeouts {
                    timed_out += usize::from(h.await.unwrap());
                }
                reset.await.unwrap();
                ticks.await.unwrap();
                let deadline = Instant::now() + Duration::from_millis(1);
                sleep_until(deadline).await;
                assert!(Instant::now() >= deadline);
                timed_out
            }
        }))
        .unwrap();
    assert_eq!(fired.load(SeqCst), SLEEPERS as usize, "no sleep lost, none twice");
    assert_eq!(timed_out, 100, "exactly the endless inner futures time out");
    drop(rt);
    println!("tsan_timers: ok ({SLEEPERS} sleepers, 200 cancelled, 200 timeouts)");
}
