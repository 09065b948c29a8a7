//! The multi-thread runtime through the public API: spawning from inside and outside, work
//! stealing, pinned (`spawn_local`) tasks, cross-thread wakes, panics and shutdown.

use omni::cont::{suspend, Cont};
use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::Duration;

/// A generous bound on how long a step may hang before the test reports a deadlock (never a
/// speed assertion: each step takes microseconds when the runtime works).
const HANG: Duration = Duration::from_secs(60);

fn rt(workers: usize) -> omni::Runtime {
    omni::Builder::new_multi_thread().workers(workers).build().unwrap()
}

#[test]
fn hundred_thousand_tasks_from_inside_and_outside_all_complete() {
    let rt = rt(2);
    let count = Arc::new(AtomicUsize::new(0));
    // From outside: the runtime's own spawn and handles on other OS threads.
    let mut outside = Vec::new();
    for t in 0..2 {
        let (h, count) = (rt.handle().clone(), count.clone());
        outside.push(std::thread::spawn(move || {
            (0..25_000)
                .map(|i| {
                    let count = count.clone();
                    h.spawn(async move {
                        count.fetch_add(1, SeqCst);
                        i + t
                    })
                })
                .collect::<Vec<_>>()
        }));
    }
    // From inside: a task on a worker spawns 50k children.
    let inside = {
        let count = count.clone();
        rt.spawn(async move {
            let hs: Vec<_> = (0..50_000)
                .map(|i| {
                    let count = count.clone();
                    omni::spawn(async move {
                        count.fetch_add(1, SeqCst);
                        i
                    })
                })
                .collect();
            let mut sum = 0u64;
            for h in hs {
                sum += h.await.unwrap();
            }
            sum
        })
    };
    let handles: Vec<_> = outside.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let (inside_sum, outside_n) = rt.block_on(async move {
        let mut n = 0;
        for h in handles {
            h.await.unwrap();
            n += 1;
        }
        (inside.await.unwrap(), n)
    });
    assert_eq!(inside_sum, (0..50_000u64).sum());
    assert_eq!(outside_n, 50_000);
    assert_eq!(count.load(SeqCst), 100_000);
}

#[test]
fn two_tasks_queued_on_one_worker_run_in_parallel_through_stealing() {
    // Both tasks are spawned from a task on one worker, so both land in that worker's queue;
    // each blocks its thread until the other has started. That completes only if the second
    // worker steals one of them.
    let rt = rt(2);
    let (tx, rx) = mpsc::channel();
    rt.spawn(async move {
        let (a_tx, a_rx) = mpsc::channel::<()>();
        let (b_tx, b_rx) = mpsc::channel::<()>();
        let a = omni::spawn(async move {
            a_tx.send(()).unwrap();
            b_rx.recv_timeout(HANG).expect("task b never ran while a blocked its worker");
            std::thread::current().id()
        });
        let b = omni::spawn(async move {
            b_tx.send(()).unwrap();
            a_rx.recv_timeout(HANG).expect("task a never ran while b blocked its worker");
            std::thread::current().id()
        });
        tx.send((a, b)).unwrap();
    });
    let (a, b) = rx.recv_timeout(HANG).unwrap();
    let (ta, tb) = rt.block_on(async { (a.await.unwrap(), b.await.unwrap()) });
    assert_ne!(ta, tb, "the two blocking tasks ran on different workers");
}

#[test]
fn many_tasks_spread_over_every_worker() {
    let rt = rt(2);
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let gate = Arc::new(std::sync::Barrier::new(2));
    // Two tasks that each wait for the other at a barrier must sit on two workers.
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let (threads, gate) = (threads.clone(), gate.clone());
            rt.spawn(async move {
                threads.lock().unwrap().insert(std::thread::current().id());
                gate.wait();
            })
        })
        .collect();
    rt.block_on(async {
        for h in hs {
            h.await.unwrap();
        }
    });
    assert_eq!(threads.lock().unwrap().len(), 2);
}

/// A future that records the thread of every poll and of its drop.
struct Recorder {
    polls: Rc<Cell<usize>>,
    threads: Arc<Mutex<Vec<ThreadId>>>,
    dropped_on: Arc<Mutex<Option<ThreadId>>>,
}

impl Future for Recorder {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.threads.lock().unwrap().push(std::thread::current().id());
        self.polls.set(self.polls.get() + 1);
        // Ask to run again a few times, then wait for ever (until aborted).
        if self.polls.get() < 50 {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        *self.dropped_on.lock().unwrap() = Some(std::thread::current().id());
    }
}

#[test]
fn spawn_local_task_stays_on_its_worker_and_is_dropped_there_when_aborted_elsewhere() {
    let rt = rt(2);
    let threads = Arc::new(Mutex::new(Vec::new()));
    let dropped_on = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel();
    {
        let (threads, dropped_on) = (threads.clone(), dropped_on.clone());
        rt.spawn(async move {
            let owner = std::thread::current().id();
            // `Rc` makes the future `!Send`: only spawn_local accepts it.
            let h =
                omni::spawn_local(Recorder { polls: Rc::new(Cell::new(0)), threads, dropped_on });
            // Keep this worker busy for a while so the other one would steal if it could.
            for _ in 0..100 {
                omni::yield_now().await;
            }
            tx.send((owner, h)).unwrap();
        });
    }
    let (owner, h) = rx.recv_timeout(HANG).unwrap();
    // Abort from a plain thread that is no worker.
    std::thread::spawn({
        let id = h.id();
        let h = h;
        move || {
            h.abort();
            let _ = id;
            h
        }
    })
    .join()
    .map(|h| {
        let err = rt.block_on(h).unwrap_err();
        assert!(err.is_cancelled());
    })
    .unwrap();
    let threads = threads.lock().unwrap();
    assert!(!threads.is_empty());
    assert!(threads.iter().all(|&t| t == owner), "a pinned task was polled on another thread");
    assert_eq!(*dropped_on.lock().unwrap(), Some(owner), "dropped on its owner worker");
}

#[test]
fn pinned_tasks_are_dropped_on_their_worker_at_shutdown() {
    let rt = rt(2);
    let dropped_on = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel();
    {
        let dropped_on = dropped_on.clone();
        rt.spawn(async move {
            let owner = std::thread::current().id();
            let threads = Arc::new(Mutex::new(Vec::new()));
            let h =
                omni::spawn_local(Recorder { polls: Rc::new(Cell::new(0)), threads, dropped_on });
            drop(h); // detached
            tx.send(owner).unwrap();
        });
    }
    let owner = rx.recv_timeout(HANG).unwrap();
    drop(rt);
    assert_eq!(*dropped_on.lock().unwrap(), Some(owner));
}

struct CountDrops(Arc<AtomicUsize>);

impl Drop for CountDrops {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn shutdown_with_full_queues_drops_every_future_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let outputs = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let n = 10_000;
    {
        let rt = rt(2);
        let (drops2, outputs2) = (drops.clone(), outputs.clone());
        rt.spawn(async move {
            let mut hs = Vec::new();
            for i in 0..n {
                let guard = CountDrops(drops2.clone());
                let out = CountDrops(outputs2.clone());
                hs.push(omni::spawn(async move {
                    let _guard = guard;
                    if i % 2 == 0 {
                        std::future::pending::<()>().await;
                    }
                    out
                }));
                if i % 3 == 0 {
                    omni::yield_now().await;
                }
            }
            // Keep the handles: completed outputs stay in their slots until shutdown.
            tx.send(hs).unwrap();
            std::future::pending::<()>().await;
        });
        let hs = rx.recv_timeout(HANG).unwrap();
        std::mem::forget(hs); // handles leaked: the runtime must still free the slots
    }
    assert_eq!(drops.load(SeqCst), n, "every future dropped exactly once");
    assert_eq!(outputs.load(SeqCst), n, "every output (or unfinished future's value) once");
}

#[test]
fn continuation_resumed_from_plain_threads_wakes_tasks_on_workers() {
    let rt = rt(2);
    let total = rt.block_on(async {
        let hs: Vec<_> = (0..1000u64)
            .map(|i| {
                omni::spawn(async move {
                    let v = suspend(|k: Cont<u64>| {
                        std::thread::spawn(move || k.resume(i).unwrap());
                    })
                    .await
                    .unwrap();
                    v * 2
                })
            })
            .collect();
        let mut sum = 0;
        for h in hs {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(total, (0..1000u64).map(|i| i * 2).sum());
}

#[test]
fn ping_pong_between_tasks_on_workers() {
    let rt = rt(2);
    type Slot = Arc<Mutex<Option<Cont<u32>>>>;
    let (a_slot, b_slot): (Slot, Slot) = Default::default();
    let rounds = 10_000u32;
    let pong = {
        let (a_slot, b_slot) = (a_slot.clone(), b_slot.clone());
        rt.spawn(async move {
            loop {
                let v = suspend(|k| *b_slot.lock().unwrap() = Some(k)).await.unwrap();
                // Hand the ball back: wait until the pinger parked, then resume it.
                let k = loop {
                    if let Some(k) = a_slot.lock().unwrap().take() {
                        break k;
                    }
                    omni::yield_now().await;
                };
                k.resume(v + 1).unwrap();
                if v + 1 >= rounds {
                    return v;
                }
            }
        })
    };
    let ping = rt.spawn(async move {
        let mut v = 0;
        while v < rounds {
            let k = loop {
                if let Some(k) = b_slot.lock().unwrap().take() {
                    break k;
                }
                omni::yield_now().await;
            };
            let fut = suspend(|k2| *a_slot.lock().unwrap() = Some(k2));
            k.resume(v).unwrap();
            v = fut.await.unwrap();
        }
        v
    });
    let (a, b) = rt.block_on(async { (ping.await.unwrap(), pong.await.unwrap()) });
    assert_eq!(a, rounds);
    assert_eq!(b, rounds - 1, "pong saw every odd-numbered round");
}

#[test]
fn panics_are_isolated_on_workers() {
    let rt = rt(2);
    let r = rt.block_on(async {
        let bad = omni::spawn(async { panic!("boom on a worker") });
        let good = omni::spawn(async { 5 });
        (bad.await, good.await)
    });
    let err = r.0.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom on a worker");
    assert_eq!(r.1.unwrap(), 5);
    // The workers survived.
    assert_eq!(rt.block_on(rt.spawn(async { 6 })).unwrap(), 6);
}

#[test]
fn handle_current_and_misuse_messages_on_workers() {
    let rt = rt(2);
    let ok = rt.block_on(rt.spawn(async {
        let h = omni::Handle::current();
        h.spawn(async { 1 }).await.unwrap()
    }));
    assert_eq!(ok.unwrap(), 1);
    let nested = rt.block_on(rt.spawn(async { omni::block_on(async {}) }));
    let msg = *nested.unwrap_err().into_panic().downcast::<&str>().unwrap();
    assert!(msg.contains("block_on called from inside a running omni runtime"), "{msg}");
    let local = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { drop(omni::spawn_local(async {})) })
    }));
    let msg = *local.unwrap_err().downcast::<&str>().unwrap();
    assert!(msg.contains("spawn_local called in a multi-thread runtime's block_on"), "{msg}");
}

#[test]
fn fan_out_reuses_slots_across_workers() {
    // One task spawns many short children that other workers finish: slots freed on the
    // finishing worker flow back to the spawner, so the peak stays far below the total.
    let rt = rt(2);
    let done = Arc::new(AtomicUsize::new(0));
    let d2 = done.clone();
    rt.block_on(rt.spawn(async move {
        for round in 0..20 {
            let hs: Vec<_> = (0..5_000)
                .map(|_| {
                    let d = d2.clone();
                    omni::spawn(async move {
                        d.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
            let _ = round;
        }
    }))
    .unwrap();
    assert_eq!(done.load(SeqCst), 100_000);
}

#[test]
fn dropping_an_idle_runtime_joins_its_workers() {
    for workers in [1, 2, 4] {
        let rt = rt(workers);
        assert_eq!(rt.block_on(async { 1 }), 1);
        drop(rt);
    }
}

// ---- Regression tests from the concurrency review -------------------------------------------

use std::future::poll_fn;
use std::sync::atomic::AtomicBool;
use std::task::{RawWaker, RawWakerVTable, Waker};

struct Signal {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

struct FireOnDrop(Arc<Signal>);

impl Drop for FireOnDrop {
    fn drop(&mut self) {
        self.0.fired.store(true, SeqCst);
        if let Some(w) = self.0.waker.lock().unwrap().take() {
            w.wake();
        }
    }
}

/// A pinned task woken by user code that runs while its worker frees a slot for the injector
/// (an output's destructor) was queued, and then the worker went to sleep on it.
#[test]
fn pinned_task_woken_by_an_output_dropped_during_a_free_still_runs() {
    for _ in 0..5 {
        let rt = rt(1);
        let sig = Arc::new(Signal { fired: AtomicBool::new(false), waker: Mutex::new(None) });
        let (done_tx, done_rx) = mpsc::channel();
        let (parked_tx, parked_rx) = mpsc::channel();
        {
            let sig = sig.clone();
            rt.spawn(async move {
                drop(omni::spawn_local(async move {
                    poll_fn(|cx| {
                        *sig.waker.lock().unwrap() = Some(cx.waker().clone());
                        let _ = parked_tx.send(());
                        if sig.fired.load(SeqCst) {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    })
                    .await;
                    done_tx.send(()).unwrap();
                }));
            });
        }
        parked_rx.recv_timeout(HANG).unwrap();
        let h = rt.spawn({
            let sig = sig.clone();
            async move { FireOnDrop(sig) }
        });
        while !h.is_finished() {
            std::thread::yield_now();
        }
        // Dropped on a plain thread: the free goes through the injector to the worker, whose
        // drop of the output wakes the pinned task.
        drop(h);
        done_rx.recv_timeout(HANG).expect("the woken pinned task never ran");
    }
}

/// One worker running a pinned task and a stealable task that both yield for ever must still
/// serve tasks spawned from outside.
#[test]
fn injector_is_served_while_pinned_and_local_tasks_yield() {
    let rt = rt(1);
    let stop = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel();
    {
        let stop = stop.clone();
        rt.spawn(async move {
            let s2 = stop.clone();
            drop(omni::spawn_local(async move {
                while !s2.load(SeqCst) {
                    omni::yield_now().await;
                }
            }));
            started_tx.send(()).unwrap();
            while !stop.load(SeqCst) {
                omni::yield_now().await;
            }
        });
    }
    started_rx.recv_timeout(HANG).unwrap();
    let (ran_tx, ran_rx) = mpsc::channel();
    drop(rt.spawn(async move { ran_tx.send(()).unwrap() }));
    let ran = ran_rx.recv_timeout(HANG).is_ok();
    stop.store(true, SeqCst);
    assert!(ran, "a task spawned from outside was starved by yielding local tasks");
}

struct NotSendOut {
    _rc: Rc<()>,
    dropped_on: Arc<Mutex<Option<ThreadId>>>,
}

impl Drop for NotSendOut {
    fn drop(&mut self) {
        *self.dropped_on.lock().unwrap() = Some(std::thread::current().id());
    }
}

/// The `!Send` output of a pinned task whose handle was leaked is dropped on its worker at
/// shutdown, not on the thread that drops the runtime.
#[test]
fn pinned_not_send_output_is_dropped_on_its_worker_when_the_handle_leaks() {
    let rt = rt(2);
    let dropped_on = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel();
    {
        let dropped_on = dropped_on.clone();
        rt.spawn(async move {
            drop(omni::spawn_local(async move {
                let owner = std::thread::current().id();
                let h =
                    omni::spawn_local(async move { NotSendOut { _rc: Rc::new(()), dropped_on } });
                while !h.is_finished() {
                    omni::yield_now().await;
                }
                std::mem::forget(h);
                tx.send(owner).unwrap();
            }));
        });
    }
    let owner = rx.recv_timeout(HANG).unwrap();
    drop(rt);
    assert_eq!(dropped_on.lock().unwrap().unwrap(), owner);
}

/// A waker whose clone is slow, so the completer is still cloning the join waker when the
/// handle, dropped on another thread, lets a worker free the slot. Counts clones made after
/// the last reference was dropped (the probe is leaked, so the test itself stays sound).
struct Probe {
    refs: AtomicUsize,
    clone_after_free: AtomicUsize,
}

static PROBE_VTABLE: RawWakerVTable = RawWakerVTable::new(p_clone, p_wake, p_wake_by_ref, p_drop);

unsafe fn p_clone(p: *const ()) -> RawWaker {
    // SAFETY: `p` is the leaked `Probe` (see `probe_waker`).
    let probe = unsafe { &*(p as *const Probe) };
    if std::thread::current().name().is_some_and(|n| n.starts_with("omni-worker")) {
        // Widen the window in which the completer holds a reference to the waker field.
        std::thread::sleep(Duration::from_millis(20));
    }
    if probe.refs.fetch_add(1, SeqCst) == 0 {
        probe.clone_after_free.fetch_add(1, SeqCst);
    }
    RawWaker::new(p, &PROBE_VTABLE)
}

unsafe fn p_wake(p: *const ()) {
    // SAFETY: as in `p_clone`.
    unsafe { p_drop(p) }
}

unsafe fn p_wake_by_ref(_: *const ()) {}

unsafe fn p_drop(p: *const ()) {
    // SAFETY: as in `p_clone`.
    let probe = unsafe { &*(p as *const Probe) };
    probe.refs.fetch_sub(1, SeqCst);
}

fn probe_waker(probe: &'static Probe) -> Waker {
    probe.refs.fetch_add(1, SeqCst);
    // SAFETY: the vtable's functions only count references on the leaked, immortal `Probe`.
    unsafe { Waker::from_raw(RawWaker::new(probe as *const Probe as *const (), &PROBE_VTABLE)) }
}

#[test]
fn join_waker_is_not_freed_while_the_completer_reads_it() {
    let probe: &'static Probe = Box::leak(Box::new(Probe {
        refs: AtomicUsize::new(0),
        clone_after_free: AtomicUsize::new(0),
    }));
    for _ in 0..5 {
        let rt = rt(2);
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let mut h = rt.spawn(async move {
            go_rx.recv().unwrap();
            7u32
        });
        {
            let w = probe_waker(probe);
            let mut cx = Context::from_waker(&w);
            assert!(Pin::new(&mut h).poll(&mut cx).is_pending(), "registers the join waker");
        }
        go_tx.send(()).unwrap();
        while !h.is_finished() {
            std::hint::spin_loop();
        }
        // Dropped here, on a plain thread, while the completer may still clone the waker.
        drop(h);
        // Wait for the stored waker (and any clone) to be dropped, by whichever thread frees.
        while probe.refs.load(SeqCst) != 0 {
            std::thread::yield_now();
        }
        drop(rt); // joins the workers: the completer is done
    }
    assert_eq!(probe.clone_after_free.load(SeqCst), 0, "the join waker was freed under a read");
    assert_eq!(probe.refs.load(SeqCst), 0, "every clone dropped once");
}
