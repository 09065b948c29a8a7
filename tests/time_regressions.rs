//! Regression tests from the review of `omni::time` and the blocking tier, each named after
//! what broke. Hang detectors run the body on its own thread with a generous bound: they
//! detect a hang, they never measure speed.

use omni::time::{advance, sleep, timeout, Duration, Instant};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};

fn paused() -> omni::Runtime {
    omni::Builder::new_current_thread().start_paused(true).build().unwrap()
}

/// Runs `f` on its own thread and fails the test if it has not finished after a minute.
fn no_hang(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(()) => t.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => t.join().unwrap(), // re-raise its panic
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: {what}"),
    }
}

/// Always ready, and spends one unit of the cooperative budget each time.
async fn budget_burner() {
    loop {
        sleep(Duration::ZERO).await;
    }
}

#[test]
fn timeout_fires_around_a_future_that_spends_the_whole_budget() {
    paused().block_on(async {
        let h = omni::spawn(timeout(Duration::from_secs(1), budget_burner()));
        omni::yield_now().await;
        advance(Duration::from_secs(2)).await;
        for _ in 0..1000 {
            if h.is_finished() {
                break;
            }
            omni::yield_now().await;
        }
        assert!(h.is_finished(), "timeout(1s) still pending 2 s later on the paused clock");
        assert!(h.await.unwrap().is_err());
    });
}

#[test]
fn many_pending_sleeps_polled_by_one_task_do_not_spend_its_budget() {
    no_hang("200 pending sleeps polled from one task", || {
        paused().block_on(async {
            let mut sleeps: Vec<_> = (0..200).map(|_| sleep(Duration::from_secs(1))).collect();
            let first = omni::spawn(async move {
                std::future::poll_fn(|cx| {
                    for s in sleeps.iter_mut() {
                        if Pin::new(s).poll(cx).is_ready() {
                            return Poll::Ready(());
                        }
                    }
                    Poll::Pending
                })
                .await
            });
            let start = Instant::now();
            first.await.unwrap();
            assert_eq!(start.elapsed(), Duration::from_secs(1));
        })
    });
}

#[test]
fn many_pending_join_handles_polled_by_one_task_do_not_spend_its_budget() {
    no_hang("200 pending join handles polled from one task", || {
        paused().block_on(async {
            let mut hs: Vec<_> =
                (0..200).map(|_| omni::spawn(sleep(Duration::from_secs(1)))).collect();
            let waiter = omni::spawn(async move {
                std::future::poll_fn(|cx| {
                    hs.retain_mut(|h| Pin::new(h).poll(cx).is_pending());
                    if hs.is_empty() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await
            });
            waiter.await.unwrap();
        })
    });
}

#[test]
fn paused_clock_moves_on_after_an_aborted_blocking_job_ends() {
    no_hang("paused clock after an aborted running job", || {
        paused().block_on(async {
            let (started_tx, started) = mpsc::channel();
            let (release, wait) = mpsc::channel::<()>();
            let h = omni::spawn_blocking(move || {
                started_tx.send(()).unwrap();
                let _ = wait.recv();
            });
            started.recv().unwrap();
            h.abort();
            // The job ends only after the runtime has gone idle on the paused clock.
            std::thread::spawn(move || release.send(()).unwrap());
            let start = Instant::now();
            sleep(Duration::from_secs(1)).await;
            assert_eq!(start.elapsed(), Duration::from_secs(1));
        })
    });
    no_hang("paused clock after a job aborted before it started", || {
        let rt = omni::Builder::new_current_thread()
            .start_paused(true)
            .max_blocking_threads(1)
            .build()
            .unwrap();
        rt.block_on(async {
            let (release, wait) = mpsc::channel::<()>();
            let first = omni::spawn_blocking(move || {
                let _ = wait.recv();
            });
            let second = omni::spawn_blocking(|| ());
            second.abort();
            first.abort();
            std::thread::spawn(move || release.send(()).unwrap());
            sleep(Duration::from_secs(1)).await;
        })
    });
}

#[test]
fn a_sleep_moved_to_another_runtime_fires_there() {
    no_hang("a sleep registered on a dropped runtime", || {
        let rt1 = omni::Runtime::new().unwrap();
        let mut s = Box::pin(sleep(Duration::from_millis(10)));
        rt1.block_on(std::future::poll_fn(|cx| {
            let _ = s.as_mut().poll(cx); // registers it on rt1
            Poll::Ready(())
        }));
        drop(rt1);
        omni::Runtime::new().unwrap().block_on(s);
    });
}

#[test]
fn dropping_a_runtime_keeps_its_clock_for_a_blocking_job_waiting_on_a_sleep() {
    no_hang("runtime drop while a blocking job waits on its sleep", || {
        let rt = omni::Runtime::new().unwrap();
        rt.block_on(async {
            let (tx, rx) = mpsc::channel();
            drop(omni::spawn_blocking(move || {
                tx.send(()).unwrap();
                futures_lite::future::block_on(sleep(Duration::from_millis(20)));
            }));
            while rx.try_recv().is_err() {
                omni::yield_now().await;
            }
        });
        drop(rt); // waits for the job, whose sleep must still fire
    });
}

#[test]
#[allow(clippy::async_yields_async)] // the outer task hands out the pinned task's handle
fn a_due_timer_does_not_wait_for_the_worker_that_held_the_driver_role() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    for _ in 0..5 {
        let ok = rt.block_on(async {
            let (tx, rx) = mpsc::channel::<()>();
            let b = omni::spawn(async move {
                sleep(Duration::from_millis(10)).await;
                let _ = tx.send(());
            });
            let s = omni::spawn(async move {
                omni::spawn_local(async move {
                    sleep(Duration::from_millis(5)).await;
                    // Blocks this worker until B's timer fired on the other one.
                    rx.recv_timeout(std::time::Duration::from_secs(60)).is_ok()
                })
            });
            let ok = s.await.unwrap().await.unwrap();
            b.await.unwrap();
            ok
        });
        assert!(ok, "a due timer waited for a busy worker while the other one slept");
    }
}

#[test]
fn a_panicking_foreign_timer_waker_does_not_lose_other_wakes_or_a_worker() {
    struct Bomb(AtomicBool);
    impl Wake for Bomb {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.store(true, SeqCst);
            panic!("a foreign waker panics when woken");
        }
    }
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    rt.block_on(async {
        omni::spawn_blocking(|| {
            // A foreign executor's poll on a blocking thread registers a timer whose waker
            // panics when the runtime fires it.
            let bomb = Arc::new(Bomb(AtomicBool::new(false)));
            let waker = Waker::from(bomb.clone());
            let mut cx = Context::from_waker(&waker);
            let mut s = Box::pin(sleep(Duration::from_millis(5)));
            assert!(s.as_mut().poll(&mut cx).is_pending());
            while !bomb.0.load(SeqCst) {
                std::thread::yield_now();
            }
        })
        .await
        .unwrap();
        // The workers survived, and timers still fire.
        assert_eq!(omni::spawn(async { 1 }).await.unwrap(), 1);
        sleep(Duration::from_millis(5)).await;
    });
}

/// Regression (found by the `timer_ops` fuzz target): resetting a registered sleep to a
/// deadline already reached moved its wheel entry to the next tick, so the sleep stayed
/// pending (while `is_elapsed` said true) until the clock moved again.
#[test]
fn sleep_reset_to_a_reached_deadline_is_ready_at_once() {
    paused().block_on(async {
        let mut s = Box::pin(sleep(Duration::from_secs(3600)));
        let waker = Waker::noop();
        assert!(s.as_mut().poll(&mut Context::from_waker(waker)).is_pending());
        s.as_mut().reset(Instant::now());
        assert!(s.is_elapsed());
        assert!(s.as_mut().poll(&mut Context::from_waker(waker)).is_ready());
    });
}
