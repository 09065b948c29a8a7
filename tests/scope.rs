//! Nurseries, supervision, cancel scopes and shields, through the public API.

use omni::chan;
use omni::scope::{
    fail_after, move_on_after, nursery, shield, supervise, ChildError, Failure, Nursery,
};
use omni::time::{sleep, Duration, Instant};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

fn paused() -> omni::Runtime {
    omni::Builder::new_current_thread().start_paused(true).build().unwrap()
}

/// Counts live instances: made by `new`, forgotten by `drop`.
#[derive(Clone, Default)]
struct Live(Arc<AtomicUsize>);

struct Guard(Arc<AtomicUsize>);

impl Live {
    fn guard(&self) -> Guard {
        self.0.fetch_add(1, SeqCst);
        Guard(self.0.clone())
    }
    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// Appends its name to a shared log when dropped.
struct Logged(&'static str, Arc<Mutex<Vec<&'static str>>>);

impl Drop for Logged {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(self.0);
    }
}

#[test]
fn a_nursery_returns_only_after_every_child_finished() {
    paused().block_on(async {
        let finished = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let f = finished.clone();
        let r = nursery(|n| async move {
            for i in 1..=5u64 {
                let f = f.clone();
                n.spawn(async move {
                    sleep(Duration::from_secs(i)).await;
                    f.fetch_add(1, SeqCst);
                    Ok::<_, ()>(())
                });
            }
            Ok("body done")
        })
        .await;
        assert_eq!(r.unwrap(), "body done");
        assert_eq!(finished.load(SeqCst), 5, "returned before a child finished");
        assert_eq!(start.elapsed(), Duration::from_secs(5), "waited for the slowest child");
    });
}

#[test]
fn handles_give_values_and_say_why_there_is_none() {
    paused().block_on(async {
        let r = supervise(|n| async move {
            let ok = n.spawn(async { Ok(41 + 1) });
            let failed = n.spawn(async { Err::<u32, _>("bad input") });
            let panicked = n.spawn(async {
                omni::yield_now().await;
                panic!("child blew up");
                #[allow(unreachable_code)]
                Ok(0)
            });
            assert!(!ok.is_finished(), "children start at the nursery's next poll");
            Ok::<_, &str>((ok.await, failed.await, panicked.await))
        })
        .await;
        let ((ok, failed, panicked), failures) = r.unwrap();
        assert_eq!(ok, Ok(42));
        assert_eq!(failed, Err(ChildError::Failed));
        assert_eq!(panicked, Err(ChildError::Panicked));
        assert_eq!(failures.len(), 2);
        assert_eq!(failures[0].error(), Some(&"bad input"));
        assert_eq!(failures[1].panic_message(), Some("child blew up"));
    });
}

#[test]
fn a_panicking_child_cancels_its_siblings_and_the_nursery_reports_the_panic() {
    paused().block_on(async {
        let live = Live::default();
        let l = live.clone();
        let sibling_done = Arc::new(AtomicUsize::new(0));
        let s = sibling_done.clone();
        let err = nursery(|n| async move {
            for _ in 0..3 {
                let g = l.guard();
                let s = s.clone();
                n.spawn(async move {
                    let _g = g;
                    sleep(Duration::from_secs(60)).await;
                    s.fetch_add(1, SeqCst);
                    Ok::<_, String>(())
                });
            }
            n.spawn(async {
                sleep(Duration::from_secs(1)).await;
                panic!("worker 4 failed");
                #[allow(unreachable_code)]
                Ok(())
            });
            let g = l.guard();
            let _g = g;
            sleep(Duration::from_secs(3600)).await; // the body is cancelled too
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.first().panic_message(), Some("worker 4 failed"));
        assert_eq!(err.to_string(), "a child panicked: worker 4 failed");
        assert_eq!(live.count(), 0, "siblings and body were dropped");
        assert_eq!(sibling_done.load(SeqCst), 0, "no sibling ran past the cancel");
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| err.resume_panic()));
        assert_eq!(*payload.unwrap_err().downcast::<&str>().unwrap(), "worker 4 failed");
    });
}

#[test]
fn the_first_error_wins_and_a_failing_body_cancels_the_children() {
    paused().block_on(async {
        let err = nursery(|n| async move {
            n.spawn(async {
                sleep(Duration::from_secs(2)).await;
                Err::<(), _>("second")
            });
            n.spawn(async {
                sleep(Duration::from_secs(1)).await;
                Err::<(), _>("first")
            });
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(err.first().error(), Some(&"first"));
        assert_eq!(err.failures().len(), 1, "the later child was cancelled, not run");

        let live = Live::default();
        let l = live.clone();
        let err = nursery(|n: Nursery<'_, &str>| async move {
            let g = l.guard();
            n.spawn(async move {
                let _g = g;
                std::future::pending::<()>().await;
                Ok(())
            });
            omni::yield_now().await;
            Err::<(), _>("body gave up")
        })
        .await
        .unwrap_err();
        assert_eq!(err.into_first().error(), Some(&"body gave up"));
        assert_eq!(live.count(), 0);
    });
}

#[test]
fn supervise_keeps_the_others_running() {
    paused().block_on(async {
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let (v, failures) = supervise(|n| async move {
            for i in 0..4u64 {
                let d = d.clone();
                n.spawn(async move {
                    sleep(Duration::from_secs(i)).await;
                    if i % 2 == 0 {
                        return Err(format!("child {i}"));
                    }
                    d.fetch_add(1, SeqCst);
                    Ok(())
                });
            }
            Ok("body")
        })
        .await
        .unwrap();
        assert_eq!(v, "body");
        assert_eq!(done.load(SeqCst), 2, "the successful children all finished");
        let errs: Vec<_> = failures.iter().filter_map(Failure::error).cloned().collect();
        assert_eq!(errs, ["child 0", "child 2"]);
    });
}

#[test]
fn children_borrow_a_local_vec() {
    let input: Vec<u32> = (1..=100).collect();
    let mut squares = vec![0u32; 100];
    let total = AtomicUsize::new(0);
    omni::block_on(nursery(|n| {
        for (x, out) in input.iter().zip(squares.iter_mut()) {
            let total = &total;
            n.spawn(async move {
                omni::yield_now().await;
                *out = x * x;
                total.fetch_add(*x as usize, SeqCst);
                Ok::<_, ()>(())
            });
        }
        async { Ok(()) }
    }))
    .unwrap();
    assert_eq!(squares[9], 100);
    assert_eq!(total.load(SeqCst), 5050);
    assert_eq!(input.len(), 100, "the borrowed vector is still ours");
}

#[test]
fn dropping_a_nursery_mid_way_cancels_and_joins_children_before_the_borrow_ends() {
    let rt = paused();
    let log = Arc::new(Mutex::new(Vec::new()));
    let borrowed = vec![1, 2, 3];
    rt.block_on(async {
        let fut = nursery(|n| {
            for i in 0..3 {
                let log = log.clone();
                let b = &borrowed;
                n.spawn(async move {
                    let _l = Logged(["c0", "c1", "c2"][i], log);
                    sleep(Duration::from_secs(10)).await;
                    assert_eq!(b.len(), 3);
                    Ok::<_, ()>(())
                });
            }
            async { Ok(()) }
        });
        let mut fut = pin!(fut);
        // Run a little: the children start and park on their sleeps.
        let r = move_on_after(Duration::from_secs(1), fut.as_mut()).await;
        assert!(r.is_none());
        assert!(log.lock().unwrap().is_empty(), "children still parked");
    });
    // The pinned nursery was dropped when the block ended, before `borrowed` can go.
    let mut got = log.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, ["c0", "c1", "c2"], "every child was dropped with the nursery");
    drop(borrowed);
}

#[test]
fn fail_after_and_move_on_after_with_the_paused_clock() {
    paused().block_on(async {
        let start = Instant::now();
        let live = Live::default();
        let l = live.clone();
        let r = fail_after(
            Duration::from_secs(30),
            nursery(|n| async move {
                for i in 0..10u64 {
                    let g = l.guard();
                    n.spawn(async move {
                        let _g = g;
                        sleep(Duration::from_secs(10 * i)).await;
                        Ok::<_, ()>(())
                    });
                }
                Ok(())
            }),
        )
        .await;
        assert!(r.is_err(), "children sleeping up to 90 s outlive a 30 s deadline");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert_eq!(live.count(), 0, "the deadline cancelled every child");
        let ok = move_on_after(Duration::from_secs(30), async {
            sleep(Duration::from_secs(29)).await;
            "in time"
        })
        .await;
        assert_eq!(ok, Some("in time"));
    });
}

#[test]
fn nested_nurseries_cancel_depth_first() {
    let log = Arc::new(Mutex::new(Vec::new()));
    paused().block_on(async {
        let l = log.clone();
        let r = nursery(|outer| async move {
            let l2 = l.clone();
            outer.spawn(async move {
                let _mid = Logged("middle child", l2.clone());
                let l3 = l2.clone();
                nursery(|inner: Nursery<'_, ()>| async move {
                    let l4 = l3.clone();
                    inner.spawn(async move {
                        let _leaf = Logged("grandchild", l4);
                        std::future::pending::<()>().await;
                        Ok(())
                    });
                    let _body = Logged("inner body", l3);
                    std::future::pending::<()>().await;
                    Ok(())
                })
                .await
                .map_err(|_| "inner")
            });
            outer.spawn(async {
                sleep(Duration::from_secs(1)).await;
                Err::<(), _>("boom")
            });
            let _outer_body = Logged("outer body", l);
            std::future::pending::<()>().await;
            Ok(())
        })
        .await;
        assert_eq!(r.unwrap_err().first().error(), Some(&"boom"));
    });
    let log = log.lock().unwrap().clone();
    let pos = |s| log.iter().position(|x| *x == s).unwrap_or_else(|| panic!("{s} not dropped"));
    assert!(pos("grandchild") < pos("middle child"), "{log:?}");
    assert!(pos("inner body") < pos("middle child"), "{log:?}");
}

#[test]
fn a_child_spawns_grandchildren_into_the_same_nursery() {
    let n_done = AtomicUsize::new(0);
    omni::block_on(nursery(|n| {
        let n2 = n.clone();
        let done = &n_done;
        n.spawn(async move {
            for _ in 0..10 {
                n2.spawn(async move {
                    omni::yield_now().await;
                    done.fetch_add(1, SeqCst);
                    Ok::<_, ()>(())
                });
            }
            Ok(())
        });
        async { Ok(()) }
    }))
    .unwrap();
    assert_eq!(n_done.load(SeqCst), 10, "the nursery waited for children spawned by a child");
}

#[test]
fn a_spawn_after_the_nursery_finished_is_cancelled() {
    omni::block_on(async {
        let escaped =
            nursery(|n: Nursery<'static, ()>| async move { Ok(n.clone()) }).await.unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let h = escaped.spawn(async move {
            r.fetch_add(1, SeqCst);
            Ok(())
        });
        assert_eq!(h.await, Err(ChildError::Cancelled));
        assert_eq!(ran.load(SeqCst), 0);
    });
}

#[test]
fn children_woken_from_other_threads_on_a_multi_thread_runtime() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    let sum = rt.block_on(async {
        omni::spawn(async {
            let (tx, rx) = chan::bounded::<u64>(4);
            let producer = std::thread::spawn(move || {
                for i in 0..1000 {
                    tx.send_blocking(i).unwrap();
                }
            });
            let r = nursery(|n| async move {
                let rx2 = rx.clone();
                let a = n.spawn(async move {
                    let mut s = 0;
                    while let Ok(v) = rx.recv().await {
                        s += v;
                    }
                    Ok::<_, ()>(s)
                });
                let b = n.spawn(async move {
                    let mut s = 0;
                    while let Ok(v) = rx2.recv().await {
                        s += v;
                    }
                    Ok(s)
                });
                Ok(a.await.unwrap() + b.await.unwrap())
            })
            .await;
            producer.join().unwrap();
            r.unwrap()
        })
        .await
        .unwrap()
    });
    assert_eq!(sum, 999 * 1000 / 2, "every value was received once");
}

#[test]
fn a_nursery_dropped_after_0_to_64_polls_leaks_nothing_and_loses_nothing() {
    for polls in 0..64 {
        let live = Live::default();
        let (tx, rx) = chan::unbounded::<u32>();
        let spare = rx.clone();
        let received = Arc::new(Mutex::new(Vec::new()));
        {
            let l = live.clone();
            let got = received.clone();
            let fut = nursery(|n| async move {
                for i in 0..4u32 {
                    let g = l.guard();
                    let rx = rx.clone();
                    let got = got.clone();
                    n.spawn(async move {
                        let _g = g;
                        for _ in 0..i {
                            omni::yield_now().await;
                        }
                        while let Ok(v) = rx.recv().await {
                            got.lock().unwrap().push(v);
                        }
                        Ok::<_, ()>(())
                    });
                }
                let _g = l.guard();
                std::future::pending::<()>().await;
                Ok(())
            });
            let mut fut = pin!(fut);
            let mut cx = Context::from_waker(Waker::noop());
            for k in 0..polls {
                if k % 3 == 0 {
                    tx.try_send(k).unwrap();
                }
                assert!(fut.as_mut().poll(&mut cx).is_pending());
            }
        }
        assert_eq!(live.count(), 0, "after {polls} polls: a child or the body leaked");
        // Nothing lost: what the children did not receive is still in the channel.
        let mut all = received.lock().unwrap().clone();
        while let Ok(v) = spare.try_recv() {
            all.push(v);
        }
        let sent: Vec<u32> = (0..polls).filter(|k| k % 3 == 0).collect();
        all.sort();
        assert_eq!(all, sent, "after {polls} polls: a value was lost");
    }
}

#[test]
fn a_shield_finishes_its_work_when_the_caller_is_cancelled() {
    let done = Arc::new(AtomicUsize::new(0));
    paused().block_on(async {
        let d = done.clone();
        let r = move_on_after(Duration::from_secs(1), async move {
            shield(async move {
                sleep(Duration::from_secs(3)).await;
                d.fetch_add(1, SeqCst);
            })
            .await;
            "not reached"
        })
        .await;
        assert_eq!(r, None);
        assert_eq!(done.load(SeqCst), 0, "cancelled half-way");
        sleep(Duration::from_secs(10)).await;
        assert_eq!(done.load(SeqCst), 1, "the shielded work finished on its own");
        // Awaited to the end, a shield is just the future.
        assert_eq!(shield(async { 5 }).await, 5);
    });
}

#[test]
fn a_nursery_future_is_send_when_its_body_is() {
    fn is_send<T: Send>(_: &T) {}
    let f = nursery(|n| async move {
        n.spawn(async { Ok::<_, ()>(1) }).await.ok();
        Ok(())
    });
    is_send(&f);
    let _ = Poll::<()>::Pending;
    omni::block_on(f).unwrap();
}

#[test]
fn children_that_keep_yielding_do_not_hold_the_thread() {
    // A child that only ever yields wakes itself at once; the nursery must still hand the
    // thread back, or the task that would stop it never runs (this hung before the nursery
    // bounded its work per poll).
    omni::block_on(async {
        let stop = Arc::new(AtomicUsize::new(0));
        let s = stop.clone();
        let stopper = omni::spawn(async move {
            s.store(1, SeqCst);
        });
        let spins = nursery(|n| {
            let stop = stop.clone();
            async move {
                let spinner = n.spawn(async move {
                    let mut spins = 0u64;
                    while stop.load(SeqCst) == 0 {
                        omni::yield_now().await;
                        spins += 1;
                    }
                    Ok::<_, ()>(spins)
                });
                Ok(spinner.await.unwrap())
            }
        })
        .await
        .unwrap();
        stopper.await.unwrap();
        assert!(spins > 0);
    });
}

#[test]
fn a_runtime_dropped_with_a_shield_in_flight_neither_hangs_nor_leaks() {
    let live = Live::default();
    let rt = paused();
    let l = live.clone();
    rt.block_on(async move {
        let g = l.guard();
        omni::spawn(async move {
            shield(async move {
                let _g = g;
                sleep(Duration::from_secs(3600)).await;
            })
            .await;
        });
        omni::yield_now().await;
    });
    drop(rt);
    assert_eq!(live.count(), 0, "the shielded work went with its runtime");
}
