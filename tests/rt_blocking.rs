//! `spawn_blocking` and the blocking pool, through the public API. Every ordering comes from a
//! channel or a destructor, never from the clock.

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(3600);

/// Sends on its channel when dropped.
#[derive(Debug)]
struct SignalOnDrop(mpsc::Sender<()>);

impl Drop for SignalOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[test]
fn a_blocked_closure_does_not_stall_green_tasks() {
    const ROUNDS: u32 = 10_000;
    omni::block_on(async {
        let (release, stuck) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel();
        let blocked = omni::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            stuck.recv().unwrap();
            "released"
        });
        // The closure now holds its pool thread until the ping-pong below is over.
        started.recv().unwrap();

        // Two green tasks take turns: each round needs both to run on the runtime thread.
        let turn = Rc::new(Cell::new(0u32));
        let player = |parity: u32| {
            let turn = turn.clone();
            omni::spawn_local(async move {
                for _ in 0..ROUNDS {
                    while turn.get() % 2 != parity {
                        omni::yield_now().await;
                    }
                    turn.set(turn.get() + 1);
                }
            })
        };
        let (ping, pong) = (player(0), player(1));
        ping.await.unwrap();
        pong.await.unwrap();
        assert_eq!(turn.get(), 2 * ROUNDS);
        assert!(!blocked.is_finished(), "the closure is still blocked on its channel");

        release.send(()).unwrap();
        assert_eq!(blocked.await.unwrap(), "released");
    });
}

#[test]
fn ten_thousand_closures_on_four_threads_all_complete() {
    const JOBS: usize = 10_000;
    let rt = omni::Runtime::builder().max_blocking_threads(4).thread_keep_alive(LONG).build();
    let rt = rt.unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let max_running = Arc::new(AtomicUsize::new(0));
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let sum = rt.block_on(async {
        let handles: Vec<_> = (0..JOBS)
            .map(|i| {
                let (running, max_running, threads) =
                    (running.clone(), max_running.clone(), threads.clone());
                omni::spawn_blocking(move || {
                    let now = running.fetch_add(1, SeqCst) + 1;
                    max_running.fetch_max(now, SeqCst);
                    threads.lock().unwrap().insert(std::thread::current().id());
                    std::thread::yield_now();
                    running.fetch_sub(1, SeqCst);
                    i
                })
            })
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, JOBS * (JOBS - 1) / 2, "every closure ran once");
    assert!(max_running.load(SeqCst) <= 4, "{} ran at once", max_running.load(SeqCst));
    // With an hour's keep-alive no thread retires, so every thread ever started is counted.
    let n = threads.lock().unwrap().len();
    assert!((1..=4).contains(&n), "{n} pool threads");
}

#[test]
fn a_panicking_closure_gives_a_join_error_with_its_payload() {
    omni::block_on(async {
        let err = omni::spawn_blocking(|| std::panic::panic_any(42u32)).await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(*err.into_panic().downcast::<u32>().unwrap(), 42);

        let n = std::hint::black_box(7);
        let err =
            omni::spawn_blocking(move || -> () { panic!("formatted {n}") }).await.unwrap_err();
        assert_eq!(*err.into_panic().downcast::<String>().unwrap(), "formatted 7");

        // The pool and the runtime carry on.
        assert_eq!(omni::spawn_blocking(|| 1).await.unwrap(), 1);
    });
}

#[test]
fn abort_cancels_the_wait_and_the_running_closure_finishes_with_its_result_dropped() {
    omni::block_on(async {
        let (release, stuck) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel();
        let (dropped_tx, dropped) = mpsc::channel();
        let h = omni::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            stuck.recv().unwrap();
            SignalOnDrop(dropped_tx)
        });
        started.recv().unwrap();
        h.abort();
        assert!(h.await.unwrap_err().is_cancelled());
        release.send(()).unwrap();
        // The closure returns on its pool thread, where nobody wants the result any more.
        dropped.recv().unwrap();
    });
}

#[test]
fn abort_before_the_closure_starts_keeps_it_from_running() {
    let rt = omni::Runtime::builder().max_blocking_threads(1).build().unwrap();
    rt.block_on(async {
        let (release, stuck) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel();
        let first = omni::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            stuck.recv().unwrap();
        });
        started.recv().unwrap();
        // The only thread is busy: this closure waits in the queue.
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let queued = omni::spawn_blocking(move || r.store(true, SeqCst));
        queued.abort();
        assert!(queued.await.unwrap_err().is_cancelled());
        // One thread, FIFO: once `last` has run, the aborted closure had its turn.
        let last = omni::spawn_blocking(|| ());
        release.send(()).unwrap();
        first.await.unwrap();
        last.await.unwrap();
        assert!(!ran.load(SeqCst), "an aborted closure that had not started never runs");
    });
}

#[test]
#[should_panic(expected = "omni::spawn_blocking called outside an omni runtime")]
fn spawn_blocking_outside_a_runtime_panics_with_advice() {
    drop(omni::spawn_blocking(|| ()));
}

#[test]
#[should_panic(expected = "needs at least one thread")]
fn zero_max_blocking_threads_is_refused() {
    omni::Runtime::builder().max_blocking_threads(0);
}

#[test]
fn an_idle_pool_thread_exits_after_its_keep_alive() {
    // With a zero keep-alive the thread exits as soon as it is idle; the test learns of the
    // exit from a thread-local destructor on that thread, not from a clock.
    thread_local! {
        static ON_EXIT: Cell<Option<SignalOnDrop>> = const { Cell::new(None) };
    }
    let rt = omni::Runtime::builder().thread_keep_alive(Duration::ZERO).build().unwrap();
    let (exited_tx, exited) = mpsc::channel();
    let name = rt.block_on(async move {
        let h = omni::spawn_blocking(move || {
            ON_EXIT.with(|e| e.set(Some(SignalOnDrop(exited_tx))));
            std::thread::current().name().map(String::from)
        });
        h.await.unwrap()
    });
    assert!(name.is_some_and(|n| n.starts_with("omni-blocking-")));
    // The runtime is still alive: the exit is the keep-alive's doing, not shutdown's.
    exited.recv().unwrap();
    drop(rt);
}

#[test]
fn dropping_the_runtime_waits_for_running_closures_and_drops_queued_ones() {
    let rt = omni::Runtime::builder().max_blocking_threads(1).build().unwrap();
    let finished = Arc::new(AtomicBool::new(false));
    let (started_tx, started) = mpsc::channel();
    let (release_tx, release) = mpsc::channel::<()>();
    let (queued_dropped_tx, queued_dropped) = mpsc::channel();
    let queued_ran = Arc::new(AtomicBool::new(false));
    {
        let (finished, queued_ran) = (finished.clone(), queued_ran.clone());
        rt.block_on(async move {
            drop(omni::spawn_blocking(move || {
                started_tx.send(()).unwrap();
                release.recv().unwrap();
                finished.store(true, SeqCst);
            }));
            let guard = SignalOnDrop(queued_dropped_tx);
            drop(omni::spawn_blocking(move || {
                let _g = guard;
                queued_ran.store(true, SeqCst);
            }));
            // A task whose cancellation, during the runtime's drop, releases the closure: the
            // release happens only once the drop is under way.
            let release_on_cancel = SignalOnDrop(release_tx);
            drop(omni::spawn(async move {
                let _r = release_on_cancel;
                std::future::pending::<()>().await
            }));
            omni::yield_now().await;
        });
    }
    started.recv().unwrap();
    drop(rt);
    assert!(finished.load(SeqCst), "the drop waited for the running closure");
    queued_dropped.recv().unwrap();
    assert!(!queued_ran.load(SeqCst), "the queued closure was dropped, not run");
}

#[test]
fn shutdown_timeout_returns_while_a_closure_is_stuck() {
    let rt = omni::Runtime::new().unwrap();
    let (release, stuck) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let h = rt.block_on(async move {
        let h = omni::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            stuck.recv().unwrap();
            done_tx.send(()).unwrap();
        });
        Some(h)
    });
    started.recv().unwrap();
    assert!(!rt.shutdown_timeout(Duration::from_millis(10)), "the closure is still stuck");
    // The shutdown cancelled the waiting task; the closure itself is still blocked.
    assert!(done.try_recv().is_err());
    release.send(()).unwrap();
    done.recv().unwrap();
    // The handle outlives its runtime and reports the task cancelled.
    assert!(omni::block_on(h.unwrap()).unwrap_err().is_cancelled());
}

#[test]
fn shutdown_timeout_reports_a_clean_finish() {
    let rt = omni::Runtime::new().unwrap();
    let v = rt.block_on(async { omni::spawn_blocking(|| 3).await.unwrap() });
    assert_eq!(v, 3);
    assert!(rt.shutdown_timeout(LONG));
}

#[test]
fn spawn_blocking_from_a_task_spawned_through_a_handle() {
    let rt = omni::Runtime::new().unwrap();
    let handle = rt.handle().clone();
    let h = std::thread::spawn(move || {
        handle.spawn(async { omni::spawn_blocking(|| 5).await.unwrap() * 2 })
    })
    .join()
    .unwrap();
    assert_eq!(rt.block_on(h).unwrap(), 10);
}

#[test]
fn a_closure_blocked_in_sleep_does_not_stall_a_ping_pong_on_the_workers() {
    const ROUNDS: u32 = 10_000;
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    let (release, stuck) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let blocked = rt.spawn(async move {
        omni::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            // Sleep in slices until released: the thread stays blocked in `sleep` throughout.
            while stuck.try_recv().is_err() {
                std::thread::sleep(Duration::from_millis(1));
            }
            "released"
        })
        .await
        .unwrap()
    });
    started.recv().unwrap();
    // Two tasks on the workers take turns; each round needs both to run.
    let turn = Arc::new(AtomicUsize::new(0));
    let player = |parity: usize| {
        let turn = turn.clone();
        rt.spawn(async move {
            for _ in 0..ROUNDS {
                while turn.load(SeqCst) % 2 != parity {
                    omni::yield_now().await;
                }
                turn.fetch_add(1, SeqCst);
            }
        })
    };
    let (ping, pong) = (player(0), player(1));
    rt.block_on(async {
        ping.await.unwrap();
        pong.await.unwrap();
    });
    assert_eq!(turn.load(SeqCst), 2 * ROUNDS as usize);
    assert!(!blocked.is_finished(), "the closure is still blocked");
    release.send(()).unwrap();
    assert_eq!(rt.block_on(blocked).unwrap(), "released");
}

#[test]
fn ten_thousand_closures_from_workers_on_four_threads_all_complete() {
    const JOBS: usize = 10_000;
    let rt = omni::Builder::new_multi_thread()
        .workers(2)
        .max_blocking_threads(4)
        .thread_keep_alive(LONG)
        .build()
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let max_running = Arc::new(AtomicUsize::new(0));
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let (r, m, t) = (running.clone(), max_running.clone(), threads.clone());
    let sum = rt.block_on(rt.spawn(async move {
        let handles: Vec<_> = (0..JOBS)
            .map(|i| {
                let (running, max_running, threads) = (r.clone(), m.clone(), t.clone());
                omni::spawn_blocking(move || {
                    let now = running.fetch_add(1, SeqCst) + 1;
                    max_running.fetch_max(now, SeqCst);
                    threads.lock().unwrap().insert(std::thread::current().id());
                    running.fetch_sub(1, SeqCst);
                    i
                })
            })
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    }));
    assert_eq!(sum.unwrap(), JOBS * (JOBS - 1) / 2, "every closure ran once");
    assert!(max_running.load(SeqCst) <= 4);
    let n = threads.lock().unwrap().len();
    assert!((1..=4).contains(&n), "{n} pool threads, at most 4 allowed");
}

#[test]
fn a_blocking_job_can_spawn_on_its_runtime_and_run_its_own_block_on() {
    for rt in [
        omni::Runtime::new().unwrap(),
        omni::Builder::new_multi_thread().workers(2).build().unwrap(),
    ] {
        let v = rt.block_on(async {
            let job = omni::spawn_blocking(|| {
                // As in tokio: the job sees its runtime.
                let h = omni::Handle::current().spawn(async { 20 });
                let also = omni::spawn(async { 1 });
                // A runtime of its own on this pool thread is fine too.
                let local =
                    omni::block_on(async { omni::spawn_local(async { 21 }).await.unwrap() });
                (h, also, local)
            });
            let (h, also, local) = job.await.unwrap();
            h.await.unwrap() + also.await.unwrap() + local
        });
        assert_eq!(v, 42);
    }
}

#[test]
fn spawn_local_on_a_blocking_thread_says_what_to_do() {
    let err = omni::block_on(async {
        omni::spawn_blocking(|| drop(omni::spawn_local(async {}))).await.unwrap_err()
    });
    let msg = *err.into_panic().downcast::<&str>().unwrap();
    assert!(msg.contains("spawn_local called on a blocking-pool thread"), "{msg}");
}
