//! `omni::chan` multi-producer multi-consumer channels through the public API: every kind,
//! FIFO, closing, values handed back, the try, Stream and blocking forms, cancellation at every
//! poll, and exactly-once soaks on the multi-thread runtime.

use futures_lite::StreamExt;
use omni::chan::{
    bounded, rendezvous, unbounded, Receiver, RecvError, SendError, Sender, TryRecvError,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Rendezvous,
    Bounded(usize),
    Unbounded,
}

const KINDS: [Kind; 4] = [Kind::Rendezvous, Kind::Bounded(1), Kind::Bounded(3), Kind::Unbounded];

fn make<T>(k: Kind) -> (Sender<T>, Receiver<T>) {
    match k {
        Kind::Rendezvous => rendezvous(),
        Kind::Bounded(n) => bounded(n),
        Kind::Unbounded => unbounded(),
    }
}

fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn auto_traits() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Sender<String>>();
    send_sync::<Receiver<String>>();
    send::<omni::chan::SendFuture<'static, String>>();
    send::<omni::chan::RecvFuture<'static, String>>();
    send::<omni::chan::Select<'static, u8>>();
}

#[test]
fn fifo_per_sender_every_kind() {
    for k in KINDS {
        omni::block_on(async move {
            let (tx, rx) = make::<(u32, u32)>(k);
            for p in 0..3 {
                let tx = tx.clone();
                omni::spawn_local(async move {
                    for i in 0..500 {
                        tx.send((p, i)).await.unwrap();
                    }
                });
            }
            drop(tx);
            let mut next = [0u32; 3];
            while let Ok((p, i)) = rx.recv().await {
                assert_eq!(i, next[p as usize], "{k:?}: out of order from sender {p}");
                next[p as usize] += 1;
            }
            assert_eq!(next, [500; 3], "{k:?}");
        });
    }
}

#[test]
fn close_drains_then_errors_and_hands_values_back() {
    for k in [Kind::Bounded(2), Kind::Unbounded] {
        let (tx, rx) = make::<u32>(k);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert!(rx.close());
        assert!(!tx.close(), "already closed");
        assert!(tx.is_closed() && rx.is_closed());
        assert_eq!(tx.try_send(3).unwrap_err().into_inner(), 3);
        assert_eq!(omni::block_on(tx.send(4)), Err(SendError(4)));
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(omni::block_on(rx.recv()), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(omni::block_on(rx.recv()), Err(RecvError));
    }
}

#[test]
fn parked_sender_gets_its_value_back_on_close() {
    for k in [Kind::Rendezvous, Kind::Bounded(1)] {
        let (tx, rx) = make::<u32>(k);
        if let Kind::Bounded(_) = k {
            tx.try_send(0).unwrap();
        }
        let mut send = tx.send(7);
        assert!(poll_once(&mut send).is_pending());
        rx.close();
        assert_eq!(poll_once(&mut send), Poll::Ready(Err(SendError(7))));
    }
}

#[test]
fn parked_receiver_wakes_with_error_when_last_sender_drops() {
    for k in KINDS {
        omni::block_on(async move {
            let (tx, rx) = make::<u32>(k);
            let t = omni::spawn_local(async move { rx.recv().await });
            omni::yield_now().await;
            drop(tx);
            assert_eq!(t.await.unwrap(), Err(RecvError), "{k:?}");
        });
    }
}

#[test]
fn last_receiver_drop_closes_and_drops_the_buffer() {
    let v = Arc::new(());
    let (tx, rx) = bounded(4);
    tx.try_send(v.clone()).unwrap();
    let rx2 = rx.clone();
    drop(rx);
    assert!(!tx.is_closed());
    drop(rx2);
    assert!(tx.is_closed());
    assert_eq!(Arc::strong_count(&v), 1, "the buffered value was dropped");
    assert!(tx.try_send(v).unwrap_err().is_closed());
}

#[test]
fn try_forms_and_introspection() {
    let (tx, rx) = bounded(2);
    assert_eq!((tx.capacity(), tx.len(), tx.is_empty()), (Some(2), 0, true));
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    let e = tx.try_send(3).unwrap_err();
    assert!(e.is_full() && !e.is_closed());
    assert_eq!(e.into_inner(), 3);
    assert_eq!(rx.len(), 2);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(unbounded::<u8>().0.capacity(), None);
    assert_eq!(bounded::<u8>(0).0.capacity(), Some(0), "bounded(0) is a rendezvous channel");
    assert!(format!("{tx:?}").contains("capacity: Some(2)"));
}

#[test]
fn rendezvous_send_completes_only_when_a_receiver_takes_it() {
    let (tx, rx) = rendezvous();
    assert!(tx.try_send(1).unwrap_err().is_full());
    let mut send = tx.send(1);
    for _ in 0..3 {
        assert!(poll_once(&mut send).is_pending());
    }
    assert_eq!(rx.len(), 0);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(poll_once(&mut send), Poll::Ready(Ok(())));
    // A parked receiver takes a try_send at once.
    let mut recv = rx.recv();
    assert!(poll_once(&mut recv).is_pending());
    tx.try_send(2).unwrap();
    assert_eq!(poll_once(&mut recv), Poll::Ready(Ok(2)));
}

#[test]
fn receiver_is_a_stream() {
    omni::block_on(async {
        let (tx, mut rx) = bounded(2);
        omni::spawn_local(async move {
            for i in 0..100 {
                tx.send(i).await.unwrap();
            }
        });
        let got: Vec<i32> = (&mut rx).collect().await;
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(rx.next().await, None);
    });
}

#[test]
fn blocking_forms_between_threads_and_tasks_both_ways() {
    for k in KINDS {
        // OS thread -> task.
        let (tx, rx) = make::<u32>(k);
        let t = std::thread::spawn(move || {
            for i in 0..1000 {
                tx.send_blocking(i).unwrap();
            }
        });
        omni::block_on(async {
            for i in 0..1000 {
                assert_eq!(rx.recv().await, Ok(i));
            }
            assert_eq!(rx.recv().await, Err(RecvError));
        });
        t.join().unwrap();
        // Task -> OS thread.
        let (tx, rx) = make::<u32>(k);
        let t = std::thread::spawn(move || {
            let mut n = 0;
            while let Ok(i) = rx.recv_blocking() {
                assert_eq!(i, n);
                n += 1;
            }
            n
        });
        omni::block_on(async move {
            for i in 0..1000 {
                tx.send(i).await.unwrap();
            }
        });
        assert_eq!(t.join().unwrap(), 1000);
        // OS thread -> OS thread, and a send handed back after the receiver went away.
        let (tx, rx) = make::<u32>(k);
        let t = std::thread::spawn(move || rx.recv_blocking());
        tx.send_blocking(5).unwrap();
        assert_eq!(t.join().unwrap(), Ok(5));
        assert_eq!(tx.send_blocking(6), Err(SendError(6)));
    }
}

#[test]
fn blocking_inside_a_runtime_panics_with_a_clear_message() {
    let (tx, rx) = bounded::<u8>(1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        omni::block_on(async { rx.recv_blocking() })
    }));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<String>().expect("a formatted message");
    assert!(msg.contains("recv_blocking called from inside an omni runtime"), "{msg}");
    drop(tx);
}

#[test]
fn multi_thread_runtime_many_producers_and_consumers() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    for k in KINDS {
        let sum = rt.block_on(async move {
            let (tx, rx) = make::<u64>(k);
            for p in 0..4u64 {
                let tx = tx.clone();
                omni::spawn(async move {
                    for i in 0..5000 {
                        tx.send(p * 10_000 + i).await.unwrap();
                    }
                });
            }
            drop(tx);
            let consumers: Vec<_> = (0..3)
                .map(|_| {
                    let rx = rx.clone();
                    omni::spawn(async move {
                        let mut s = 0;
                        while let Ok(v) = rx.recv().await {
                            s += v;
                        }
                        s
                    })
                })
                .collect();
            drop(rx);
            let mut s = 0;
            for c in consumers {
                s += c.await.unwrap();
            }
            s
        });
        let want: u64 = (0..4u64).map(|p| (0..5000).map(|i| p * 10_000 + i).sum::<u64>()).sum();
        assert_eq!(sum, want, "{k:?}");
    }
}

// ---- Cancellation at every poll ------------------------------------------------------------

/// What happened to each value of a cancellation run.
#[derive(Default)]
struct Ledger {
    drops: Mutex<Vec<u32>>,
    received: Mutex<Vec<u32>>,
    acked: Mutex<Vec<bool>>,
}

struct Tracked {
    id: usize,
    ledger: Arc<Ledger>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.drops.lock().unwrap()[self.id] += 1;
    }
}

/// One cancellation run: 3 sender slots and 3 receiver slots poll their current future in
/// turn; a future is dropped after `limit` polls if it has not completed, and the slot moves
/// on. With `close_at`, the channel closes after that many rounds.
fn cancellation_run(k: Kind, n: usize, close_at: Option<usize>) {
    const PER_SENDER: usize = 12;
    let ledger = Arc::new(Ledger::default());
    let total = 3 * PER_SENDER;
    *ledger.drops.lock().unwrap() = vec![0; total];
    *ledger.received.lock().unwrap() = vec![0; total];
    *ledger.acked.lock().unwrap() = vec![false; total];
    let (tx, rx) = make::<Tracked>(k);
    let txs: Vec<_> = (0..3).map(|_| tx.clone()).collect();
    let rxs: Vec<_> = (0..3).map(|_| rx.clone()).collect();
    let limit = |slot: usize, op: usize| (n + slot * 5 + op * 3) % 65;

    let mut sends: Vec<Option<(usize, usize, omni::chan::SendFuture<'_, Tracked>)>> =
        (0..3).map(|_| None).collect();
    let mut next_value = [0usize; 3];
    let mut recvs: Vec<Option<(usize, omni::chan::RecvFuture<'_, Tracked>)>> =
        (0..3).map(|_| None).collect();
    let mut recv_ops = [0usize; 3];
    let mut round = 0;
    while next_value.iter().any(|&v| v < PER_SENDER) || sends.iter().any(Option::is_some) {
        if Some(round) == close_at {
            tx.close();
        }
        round += 1;
        assert!(round < 100_000, "cancellation run does not progress");
        for s in 0..3 {
            if sends[s].is_none() && next_value[s] < PER_SENDER {
                let id = s * PER_SENDER + next_value[s];
                next_value[s] += 1;
                let v = Tracked { id, ledger: ledger.clone() };
                sends[s] = Some((id, 0, txs[s].send(v)));
            }
            if let Some((id, polls, fut)) = &mut sends[s] {
                if *polls >= limit(s, *id) {
                    sends[s] = None; // cancelled
                } else {
                    *polls += 1;
                    match poll_once(fut) {
                        Poll::Pending => {}
                        Poll::Ready(Ok(())) => {
                            ledger.acked.lock().unwrap()[*id] = true;
                            sends[s] = None;
                        }
                        Poll::Ready(Err(SendError(v))) => {
                            assert_eq!(v.id, *id, "handed back another value");
                            sends[s] = None;
                        }
                    }
                }
            }
        }
        for r in 0..3 {
            if recvs[r].is_none() {
                recv_ops[r] += 1;
                recvs[r] = Some((0, rxs[r].recv()));
            }
            let (polls, fut) = recvs[r].as_mut().unwrap();
            if *polls >= limit(r + 3, recv_ops[r]) {
                recvs[r] = None;
            } else {
                *polls += 1;
                match poll_once(fut) {
                    Poll::Pending => {}
                    Poll::Ready(Ok(v)) => {
                        ledger.received.lock().unwrap()[v.id] += 1;
                        recvs[r] = None;
                    }
                    Poll::Ready(Err(RecvError)) => recvs[r] = None,
                }
            }
        }
    }
    drop(recvs);
    drop(sends);
    // Everything still in the channel is received now.
    while let Ok(v) = rx.try_recv() {
        ledger.received.lock().unwrap()[v.id] += 1;
    }
    assert!(rx.is_empty(), "{k:?} n={n}: values left behind");
    let dbg = format!("{rx:?}");
    assert!(dbg.contains("parked: 0"), "{k:?} n={n}: waiters left parked: {dbg}");
    drop((tx, rx, txs, rxs));
    let drops = ledger.drops.lock().unwrap();
    let received = ledger.received.lock().unwrap();
    let acked = ledger.acked.lock().unwrap();
    for id in 0..total {
        if id % PER_SENDER >= next_value[id / PER_SENDER] {
            continue;
        }
        assert_eq!(
            drops[id], 1,
            "{k:?} n={n} close={close_at:?}: value {id} dropped {} times",
            drops[id]
        );
        assert!(received[id] <= 1, "{k:?} n={n}: value {id} received {} times", received[id]);
        if acked[id] {
            assert_eq!(received[id], 1, "{k:?} n={n}: acknowledged value {id} never received");
        }
    }
}

#[test]
fn cancelling_any_future_after_any_number_of_polls_loses_nothing() {
    for k in KINDS {
        for n in 0..=64 {
            cancellation_run(k, n, None);
            cancellation_run(k, n, Some(n % 7 + 1));
        }
    }
}

#[test]
fn a_served_receiver_dropped_passes_the_value_on() {
    for k in KINDS {
        let (tx, rx) = make::<u32>(k);
        let mut r1 = rx.recv();
        let mut r2 = rx.recv();
        assert!(poll_once(&mut r1).is_pending());
        assert!(poll_once(&mut r2).is_pending());
        tx.try_send(1).unwrap(); // written into r1's entry
        drop(r1); // never saw it: r2 gets it
        assert_eq!(poll_once(&mut r2), Poll::Ready(Ok(1)), "{k:?}");
        // With nobody else parked, the value goes back to the buffer.
        let mut r3 = rx.recv();
        assert!(poll_once(&mut r3).is_pending());
        tx.try_send(2).unwrap();
        drop(r3);
        assert_eq!(rx.try_recv(), Ok(2), "{k:?}");
    }
}

#[test]
fn a_cancelled_send_delivers_nothing() {
    for k in [Kind::Rendezvous, Kind::Bounded(1)] {
        let (tx, rx) = make::<u32>(k);
        if let Kind::Bounded(_) = k {
            tx.try_send(0).unwrap();
        }
        let mut s = tx.send(9);
        assert!(poll_once(&mut s).is_pending());
        drop(s);
        if let Kind::Bounded(_) = k {
            assert_eq!(rx.try_recv(), Ok(0));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "{k:?}");
    }
}

// ---- Soaks ---------------------------------------------------------------------------------

fn bitmap(n: usize) -> Arc<Vec<AtomicU64>> {
    Arc::new((0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
}

fn mark(map: &[AtomicU64], v: usize) {
    let old = map[v / 64].fetch_or(1 << (v % 64), Relaxed);
    assert!(old & (1 << (v % 64)) == 0, "value {v} received twice");
}

fn all_marked(map: &[AtomicU64], n: usize) {
    for v in 0..n {
        assert!(map[v / 64].load(Relaxed) & (1 << (v % 64)) != 0, "value {v} never received");
    }
}

/// `n` values from 2 producer tasks to 2 consumer tasks on 2 workers, exactly once.
fn soak_tasks(k: Kind, n: usize) {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    let map = bitmap(n);
    let m = map.clone();
    rt.block_on(async move {
        let (tx, rx) = make::<usize>(k);
        for p in 0..2 {
            let tx = tx.clone();
            omni::spawn(async move {
                for v in (p..n).step_by(2) {
                    tx.send(v).await.unwrap();
                }
            });
        }
        drop(tx);
        let cs: Vec<_> = (0..2)
            .map(|_| {
                let (rx, m) = (rx.clone(), m.clone());
                omni::spawn(async move {
                    while let Ok(v) = rx.recv().await {
                        mark(&m, v);
                    }
                })
            })
            .collect();
        drop(rx);
        for c in cs {
            c.await.unwrap();
        }
    });
    all_marked(&map, n);
}

/// About 10 s in debug on 2 cores.
#[test]
fn soak_ten_million_through_bounded_1024() {
    soak_tasks(Kind::Bounded(1024), 10_000_000);
}

/// Values per kind and direction.
const PER_DIRECTION: usize = 1_000_000;

#[test]
fn soak_every_kind_async_to_async() {
    for k in [Kind::Rendezvous, Kind::Bounded(16), Kind::Unbounded] {
        soak_tasks(k, PER_DIRECTION);
    }
}

#[test]
fn soak_every_kind_thread_to_async_and_async_to_thread() {
    let n = PER_DIRECTION;
    for k in [Kind::Rendezvous, Kind::Bounded(16), Kind::Unbounded] {
        // OS thread -> tasks.
        let map = bitmap(n);
        let (tx, rx) = make::<usize>(k);
        let t = std::thread::spawn(move || {
            for v in 0..n {
                tx.send_blocking(v).unwrap();
            }
        });
        let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
        let m = map.clone();
        rt.block_on(async move {
            let cs: Vec<_> = (0..2)
                .map(|_| {
                    let (rx, m) = (rx.clone(), m.clone());
                    omni::spawn(async move {
                        let mut last = None;
                        while let Ok(v) = rx.recv().await {
                            assert!(last < Some(v), "FIFO from one sender");
                            last = Some(v);
                            mark(&m, v);
                        }
                    })
                })
                .collect();
            drop(rx);
            for c in cs {
                c.await.unwrap();
            }
        });
        t.join().unwrap();
        all_marked(&map, n);
        // Tasks -> OS thread.
        let (tx, rx) = make::<usize>(k);
        let count = Arc::new(AtomicUsize::new(0));
        let c2 = count.clone();
        let t = std::thread::spawn(move || {
            let map = bitmap(n);
            while let Ok(v) = rx.recv_blocking() {
                mark(&map, v);
                c2.fetch_add(1, Relaxed);
            }
            all_marked(&map, n);
        });
        rt.block_on(async move {
            let ps: Vec<_> = (0..2)
                .map(|p| {
                    let tx = tx.clone();
                    omni::spawn(async move {
                        for v in (p..n).step_by(2) {
                            tx.send(v).await.unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);
            for p in ps {
                p.await.unwrap();
            }
        });
        t.join().unwrap();
        assert_eq!(count.load(Relaxed), n);
    }
}

/// Regression (found by loom): a receiver got `RecvError` after the last sender dropped
/// while another receiver still held a served value it then passed back, so the value was
/// never received.
#[test]
fn closed_channel_is_not_drained_while_a_served_receiver_may_pass_back() {
    for k in KINDS {
        let (tx, rx) = make::<u32>(k);
        let mut r1 = rx.recv();
        let mut r2 = rx.recv();
        assert!(poll_once(&mut r1).is_pending());
        assert!(poll_once(&mut r2).is_pending());
        tx.try_send(5).unwrap(); // into r1's entry
        drop(tx);
        assert!(poll_once(&mut r2).is_pending(), "{k:?}: r2 gave up beside a value in flight");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(r1);
        assert_eq!(poll_once(&mut r2), Poll::Ready(Ok(5)), "{k:?}");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    }
}

// ---- No allocation per message or per park ------------------------------------------------

#[path = "common/alloc_count.rs"]
mod alloc_count;

#[test]
fn ping_pong_allocates_nothing_in_steady_state() {
    for k in [Kind::Rendezvous, Kind::Bounded(1)] {
        omni::block_on(async move {
            let (tx1, rx1) = make::<u32>(k);
            let (tx2, rx2) = make::<u32>(k);
            let echo = omni::spawn_local(async move {
                while let Ok(v) = rx1.recv().await {
                    tx2.send(v).await.unwrap();
                }
            });
            let round = |n: u32| {
                let (tx1, rx2) = (&tx1, &rx2);
                async move {
                    for i in 0..n {
                        tx1.send(i).await.unwrap();
                        assert_eq!(rx2.recv().await, Ok(i));
                    }
                }
            };
            round(100).await; // warm up: slab entries, queues, continuation cells
            let before = alloc_count::now();
            round(1000).await;
            let allocs = alloc_count::now() - before;
            assert_eq!(allocs, 0, "{k:?}: allocations in 1000 round trips");
            drop(tx1);
            echo.await.unwrap();
        });
    }
}

#[test]
fn blocking_forms_work_inside_spawn_blocking() {
    let (tx, rx) = bounded::<u32>(1);
    let got = omni::block_on(async move {
        let h = omni::spawn_blocking(move || rx.recv_blocking());
        tx.send(3).await.unwrap();
        h.await.unwrap()
    });
    assert_eq!(got, Ok(3));
}
