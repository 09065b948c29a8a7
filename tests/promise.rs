//! `Promise` and the combinators: every mix of resolved, rejected and pending inputs, clones for
//! every waiter, `then`, and cancellation that loses nothing.

use omni::promise::{all, all_settled, any, race};
use omni::Promise;
use std::future::{Future, IntoFuture};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

#[derive(Clone, Copy, Debug, PartialEq)]
enum S {
    Resolve,
    Reject,
    Pending,
}

fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    let mut f = pin!(f);
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

/// Three promises settled as `mix` says: index `i` resolves to `10 * i` or rejects with `i`.
fn make(mix: [S; 3]) -> Vec<Promise<u32, u32>> {
    (0..3)
        .map(|i| {
            let p = Promise::new();
            match mix[i] {
                S::Resolve => p.resolve(10 * i as u32).unwrap(),
                S::Reject => p.reject(i as u32).unwrap(),
                S::Pending => {}
            }
            p
        })
        .collect()
}

#[test]
fn every_mix_of_resolve_reject_and_pending() {
    use S::*;
    let states = [Resolve, Reject, Pending];
    let mut mixes = 0;
    for a in states {
        for b in states {
            for c in states {
                let mix = [a, b, c];
                mixes += 1;
                let first = |s: S| mix.iter().position(|&m| m == s);
                let any_pending = first(Pending).is_some();

                let want_all = match first(Reject) {
                    Some(i) => Poll::Ready(Err(i as u32)),
                    None if any_pending => Poll::Pending,
                    None => Poll::Ready(Ok(vec![0, 10, 20])),
                };
                assert_eq!(poll_once(all(make(mix))), want_all, "all {mix:?}");

                let want_settled =
                    if any_pending {
                        Poll::Pending
                    } else {
                        Poll::Ready(
                            (0..3)
                                .map(|i| {
                                    if mix[i] == Resolve {
                                        Ok(10 * i as u32)
                                    } else {
                                        Err(i as u32)
                                    }
                                })
                                .collect::<Vec<_>>(),
                        )
                    };
                assert_eq!(poll_once(all_settled(make(mix))), want_settled, "all_settled {mix:?}");

                let want_race = match mix.iter().position(|&m| m != Pending) {
                    Some(i) if mix[i] == Resolve => Poll::Ready(Ok(10 * i as u32)),
                    Some(i) => Poll::Ready(Err(i as u32)),
                    None => Poll::Pending,
                };
                assert_eq!(poll_once(race(make(mix))), want_race, "race {mix:?}");

                let want_any = match first(Resolve) {
                    Some(i) => Poll::Ready(Ok(10 * i as u32)),
                    None if any_pending => Poll::Pending,
                    None => Poll::Ready(Err(vec![0, 1, 2])),
                };
                assert_eq!(poll_once(any(make(mix))), want_any, "any {mix:?}");
            }
        }
    }
    assert_eq!(mixes, 27);
    // Empty inputs: all is Ok, any is Err, race never completes.
    let none: Vec<Promise<u32, u32>> = Vec::new();
    assert_eq!(poll_once(all(none.clone())), Poll::Ready(Ok(vec![])));
    assert_eq!(poll_once(any(none.clone())), Poll::Ready(Err(vec![])));
    assert_eq!(poll_once(race(none)), Poll::Pending);
}

#[test]
fn a_pending_combinator_finishes_when_the_last_input_settles() {
    omni::block_on(async {
        let ps: Vec<Promise<u32, String>> = (0..3).map(|_| Promise::new()).collect();
        let h = omni::spawn(all(ps.clone()));
        for (i, p) in ps.iter().enumerate().rev() {
            omni::yield_now().await;
            assert!(!h.is_finished(), "finished before input {i} settled");
            p.resolve(i as u32).unwrap();
        }
        assert_eq!(h.await.unwrap(), Ok(vec![0, 1, 2]));
    });
}

#[test]
fn every_waiter_gets_a_clone_and_a_second_settle_is_refused() {
    omni::block_on(async {
        let p: Promise<Vec<u8>, ()> = Promise::new();
        let waiters: Vec<_> = (0..10).map(|_| omni::spawn(p.clone().into_future())).collect();
        omni::yield_now().await;
        assert!(!p.is_settled());
        p.resolve(vec![1, 2, 3]).unwrap();
        assert_eq!(p.resolve(vec![9]), Err(vec![9]));
        assert_eq!(p.reject(()), Err(()));
        for w in waiters {
            assert_eq!(w.await.unwrap(), Ok(vec![1, 2, 3]));
        }
        assert_eq!(p.try_get(), Some(Ok(vec![1, 2, 3])));
    });
}

#[test]
fn then_maps_the_result_into_a_new_promise() {
    omni::block_on(async {
        let p: Promise<u32, String> = Promise::new();
        let q = p.then(|r| r.map(|v| v * 2).map_err(|e| e.len()));
        let r = Promise::<u32, String>::rejected("four".into()).then(|r| r.map_err(|e| e.len()));
        p.resolve(21).unwrap();
        assert_eq!(q.await, Ok(42));
        assert_eq!(r.await, Err(4));
    });
}

#[test]
fn combinators_take_any_futures_and_race_drops_the_losers() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    omni::block_on(async {
        let drops = Arc::new(AtomicUsize::new(0));
        let slow = {
            let c = Counted(drops.clone());
            Box::pin(async move {
                let _c = c;
                std::future::pending::<Result<u32, ()>>().await
            }) as std::pin::Pin<Box<dyn Future<Output = Result<u32, ()>> + Send>>
        };
        let fast = Box::pin(async {
            omni::yield_now().await;
            Ok::<u32, ()>(5)
        }) as std::pin::Pin<Box<dyn Future<Output = Result<u32, ()>> + Send>>;
        assert_eq!(race(vec![slow, fast]).await, Ok(5));
        assert_eq!(drops.load(SeqCst), 1, "the losing future was dropped");
        // Tasks' results through their join handles.
        let hs = (0..4u32).map(|i| omni::spawn(async move { i }));
        let joined = all_settled(hs).await;
        assert_eq!(joined.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [0, 1, 2, 3]);
    });
}

#[test]
fn waits_dropped_after_0_to_64_polls_leave_the_promise_intact() {
    omni::block_on(async {
        let p: Promise<u32, ()> = Promise::new();
        for polls in 0..64 {
            let mut w = pin!(p.get());
            for _ in 0..polls {
                assert!(w.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
            }
        }
        let late = omni::spawn(p.clone().into_future());
        omni::yield_now().await;
        p.resolve(3).unwrap();
        assert_eq!(late.await.unwrap(), Ok(3), "nothing lost to the dropped waits");
    });
}
