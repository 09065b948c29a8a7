//! Generators through the public API: as iterators, as streams, nested, dropped early.

use omni::chan;
use omni::gen::{Co, Gen, Stream, StreamExt};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};

fn fib() -> Gen<u64, impl Future<Output = ()>> {
    Gen::new(|co| async move {
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            co.yield_(a).await;
            (a, b) = (b, a + b);
        }
    })
}

/// 2, 3, 4, ... for ever.
fn naturals_from(start: u64) -> Gen<u64, impl Future<Output = ()>> {
    Gen::new(move |co| async move {
        let mut n = start;
        loop {
            co.yield_(n).await;
            n += 1;
        }
    })
}

#[test]
fn fibonacci_first_20() {
    let v: Vec<u64> = fib().into_iter().take(20).collect();
    assert_eq!(
        v,
        [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181]
    );
}

#[test]
fn prime_sieve_over_an_infinite_generator() {
    // Each prime found puts another filter on the infinite stream of candidates: the sieve of
    // Eratosthenes as a chain of generators, each driving the one before it.
    let primes = Gen::new(|co| async move {
        let mut candidates: Box<dyn Iterator<Item = u64>> = Box::new(naturals_from(2).into_iter());
        loop {
            let p = candidates.next().expect("the naturals never end");
            co.yield_(p).await;
            let rest = candidates;
            candidates = Box::new(
                Gen::new(move |inner: Co<u64>| async move {
                    for n in rest {
                        if n % p != 0 {
                            inner.yield_(n).await;
                        }
                    }
                })
                .into_iter(),
            );
        }
    });
    let v: Vec<u64> = primes.into_iter().take(20).collect();
    assert_eq!(v, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71]);
}

#[test]
fn iterator_combinators() {
    let evens_squared: Vec<u64> =
        naturals_from(0).into_iter().filter(|n| n % 2 == 0).map(|n| n * n).take(5).collect();
    assert_eq!(evens_squared, [0, 4, 16, 36, 64]);
    let pairs: Vec<(u64, u64)> = fib().into_iter().zip(naturals_from(100)).take(3).collect();
    assert_eq!(pairs, [(0, 100), (1, 101), (1, 102)]);
    let sum = fib().into_iter().take(10).fold(0, |a, b| a + b * 2) / 2;
    assert_eq!(sum, 88);
    // A finite generator ends, and stays ended.
    let mut it = Gen::new(|co| async move {
        co.yield_("only").await;
    })
    .into_iter();
    assert_eq!(it.next(), Some("only"));
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None);
}

#[test]
fn stream_combinators_with_a_body_that_awaits() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    rt.block_on(async {
        let (tx, rx) = chan::bounded::<u64>(2);
        omni::spawn(async move {
            for i in 1..=50 {
                tx.send(i).await.unwrap();
            }
        });
        let from_chan = Gen::new(|co| async move {
            while let Ok(v) = rx.recv().await {
                omni::yield_now().await;
                co.yield_(v).await;
            }
        });
        let task = omni::spawn(async move {
            let v: Vec<(u64, u64)> =
                from_chan.filter(|v| v % 5 == 0).map(|v| v / 5).zip(fib()).take(6).collect().await;
            v
        });
        assert_eq!(task.await.unwrap(), [(1, 0), (2, 1), (3, 1), (4, 2), (5, 3), (6, 5)]);
        let mut g = fib();
        assert_eq!(g.next().await, Some(0));
        assert_eq!(g.next().await, Some(1));
        assert_eq!(fib().take(10).fold(0, |a, b| a + b).await, 88);
    });
}

#[test]
fn a_blocking_iterator_over_a_body_fed_by_another_thread() {
    let (tx, rx) = chan::unbounded::<u32>();
    let feeder = std::thread::spawn(move || {
        for i in 0..100 {
            tx.send_blocking(i).unwrap();
        }
    });
    let g = Gen::new(|co| async move {
        while let Ok(v) = rx.recv().await {
            co.yield_(v).await;
        }
    });
    let total: u32 = g.into_iter().sum();
    feeder.join().unwrap();
    assert_eq!(total, 4950);
}

struct Tracked(u32, Arc<Mutex<Vec<u32>>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(self.0);
    }
}

#[test]
fn early_drop_runs_the_body_destructors() {
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let d = dropped.clone();
    let mut it = Gen::new(|co| async move {
        let _guard = Tracked(999, d);
        let mut n = 0;
        loop {
            co.yield_(n).await;
            n += 1;
        }
    })
    .into_iter();
    assert_eq!(it.nth(5), Some(5));
    assert!(dropped.lock().unwrap().is_empty());
    drop(it);
    assert_eq!(*dropped.lock().unwrap(), [999], "the body's locals were dropped with it");
}

#[test]
fn a_generator_dropped_after_0_to_64_polls_leaks_nothing_and_loses_nothing() {
    for polls in 0..64u32 {
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = chan::unbounded::<Tracked>();
        let spare = rx.clone();
        for i in 0..80 {
            tx.try_send(Tracked(i, dropped.clone())).unwrap();
        }
        let mut received = Vec::new();
        {
            let mut g = pin!(Gen::new(|co| async move {
                while let Ok(v) = rx.recv().await {
                    if v.0 % 7 == 0 {
                        omni::yield_now().await;
                    }
                    co.yield_(v).await;
                }
            }));
            let mut cx = Context::from_waker(Waker::noop());
            for _ in 0..polls {
                if let std::task::Poll::Ready(Some(t)) = g.as_mut().poll_next(&mut cx) {
                    received.push(t.0);
                    std::mem::forget(t); // counted as received, not as dropped
                }
            }
        }
        let in_gen: Vec<u32> = dropped.lock().unwrap().clone();
        assert!(in_gen.len() <= 1, "after {polls} polls: at most the item in hand is dropped");
        let mut left = Vec::new();
        while let Ok(t) = spare.try_recv() {
            left.push(t.0);
            std::mem::forget(t);
        }
        let mut all: Vec<u32> = received.iter().chain(&in_gen).chain(&left).copied().collect();
        all.sort();
        assert_eq!(all, (0..80).collect::<Vec<_>>(), "after {polls} polls: an item was lost");
    }
}

#[test]
fn a_co_moved_out_of_its_body_says_what_went_wrong() {
    let r = std::panic::catch_unwind(|| {
        omni::block_on(async {
            let (tx, rx) = chan::oneshot::<Co<u32>>();
            let mut it = Gen::new(|co: Co<u32>| async move {
                let _ = tx.send(co);
            })
            .into_iter();
            assert_eq!(it.next(), None);
            let co = rx.await.unwrap();
            co.yield_(1).await;
        })
    });
    let err = r.unwrap_err();
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.contains("outside its generator's body"), "{msg}");
}

#[test]
fn a_generator_is_send_and_runs_in_a_task() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    let n = rt.block_on(async move {
        omni::spawn(async move {
            let mut g = fib();
            let mut n = 0;
            while let Some(v) = g.next().await {
                if v > 1_000_000 {
                    break;
                }
                c.fetch_add(1, SeqCst);
                n += 1;
            }
            n
        })
        .await
        .unwrap()
    });
    assert_eq!(n, count.load(SeqCst));
    assert_eq!(n, 31);
}
