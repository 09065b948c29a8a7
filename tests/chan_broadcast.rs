//! `omni::chan::broadcast` through the public API: every receiver sees every value, exact lag
//! counts, closing, drop-counted values (checked against a reference model), cancellation,
//! the multi-thread runtime and OS threads.

use futures_lite::StreamExt;
use omni::chan::broadcast::{self, Lagged, RecvError, TryRecvError};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicIsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// A value that counts live instances, clones included.
#[derive(Debug)]
struct Counted(u64, Arc<AtomicIsize>);

impl Counted {
    fn new(v: u64, live: &Arc<AtomicIsize>) -> Counted {
        live.fetch_add(1, SeqCst);
        Counted(v, live.clone())
    }
}

impl Clone for Counted {
    fn clone(&self) -> Counted {
        Counted::new(self.0, &self.1)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_sub(1, SeqCst);
    }
}

fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn every_receiver_sees_every_value_in_order() {
    let (tx, mut a) = omni::chan::broadcast(16);
    let mut b = tx.subscribe();
    for i in 0..10 {
        assert_eq!(tx.send(i), Ok(2));
    }
    for rx in [&mut a, &mut b] {
        let got: Vec<i32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }
}

#[test]
fn subscribers_start_now_and_clones_start_where_their_original_is() {
    let (tx, mut a) = omni::chan::broadcast(8);
    tx.send(1).unwrap();
    let mut late = tx.subscribe();
    let mut twin = a.clone();
    tx.send(2).unwrap();
    assert_eq!(late.try_recv(), Ok(2));
    assert_eq!(a.try_recv(), Ok(1));
    assert_eq!(twin.try_recv(), Ok(1));
    assert_eq!(a.try_recv(), Ok(2));
    assert_eq!(twin.try_recv(), Ok(2));
    assert_eq!(tx.receiver_count(), 3);
}

#[test]
fn a_lagging_receiver_gets_the_exact_count_then_the_oldest_value_held() {
    let (tx, mut rx) = omni::chan::broadcast(4);
    for i in 0..10 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.len(), 4);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(6)));
    assert_eq!(rx.try_recv(), Ok(6));
    // Lag again, from the middle of the ring.
    for i in 10..20 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.recv_blocking(), Err(RecvError::Lagged(16 - 7)));
    let rest: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(rest, [16, 17, 18, 19]);
    // A clone of a lagging receiver lags the same.
    tx.send(20).unwrap();
    let mut slow = tx.subscribe();
    for i in 21..30 {
        tx.send(i).unwrap();
    }
    let mut twin = slow.clone();
    assert_eq!(slow.try_recv(), Err(TryRecvError::Lagged(5)));
    assert_eq!(twin.try_recv(), Err(TryRecvError::Lagged(5)));
    assert_eq!(slow.try_recv(), Ok(26));
    assert_eq!(twin.try_recv(), Ok(26));
}

#[test]
fn receivers_drain_then_see_closed_when_every_sender_is_gone() {
    omni::block_on(async {
        let (tx, mut rx) = omni::chan::broadcast(4);
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        drop(tx);
        tx2.send(2).unwrap();
        drop(tx2);
        assert_eq!(rx.recv().await, Ok(1));
        assert_eq!(rx.recv().await, Ok(2));
        assert_eq!(rx.recv().await, Err(RecvError::Closed));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(rx.recv_blocking(), Err(RecvError::Closed));
    });
}

#[test]
fn the_last_senders_drop_wakes_a_waiting_receiver() {
    omni::block_on(async {
        let (tx, mut rx) = omni::chan::broadcast::<u8>(4);
        let h = omni::spawn(async move { rx.recv().await });
        omni::yield_now().await;
        drop(tx);
        assert_eq!(h.await.unwrap(), Err(RecvError::Closed));
    });
}

#[test]
fn a_send_without_receivers_hands_the_value_back() {
    let live = Arc::new(AtomicIsize::new(0));
    let (tx, rx) = omni::chan::broadcast(4);
    drop(rx);
    let back = tx.send(Counted::new(5, &live)).unwrap_err().into_inner();
    assert_eq!(back.0, 5);
    assert_eq!(live.load(SeqCst), 1);
    drop(back);
    assert_eq!(live.load(SeqCst), 0);
    // A new subscriber reopens it.
    let mut rx = tx.subscribe();
    tx.send(Counted::new(6, &live)).unwrap();
    assert_eq!(rx.try_recv().unwrap().0, 6);
    assert_eq!(live.load(SeqCst), 0, "the last reader took the value itself");
}

#[test]
fn values_are_dropped_once_every_receiver_has_seen_them_or_they_are_overwritten() {
    let live = Arc::new(AtomicIsize::new(0));
    let (tx, mut a) = omni::chan::broadcast(2);
    let mut b = tx.subscribe();
    tx.send(Counted::new(0, &live)).unwrap();
    assert_eq!(live.load(SeqCst), 1, "one copy held for both receivers");
    let v = a.try_recv().unwrap();
    assert_eq!(live.load(SeqCst), 2, "a got a clone");
    drop(v);
    let v = b.try_recv().unwrap();
    assert_eq!(live.load(SeqCst), 1, "b, the last reader, took the held value");
    drop(v);
    assert_eq!((live.load(SeqCst), tx.len()), (0, 0));

    for i in 1..=3 {
        tx.send(Counted::new(i, &live)).unwrap();
    }
    assert_eq!(live.load(SeqCst), 2, "the overwritten value was dropped");
    drop(b);
    assert_eq!(live.load(SeqCst), 2, "a still has to read them");
    assert_eq!(a.try_recv().unwrap_err(), TryRecvError::Lagged(1));
    drop(a);
    assert_eq!((live.load(SeqCst), tx.len()), (0, 0), "dropping the last reader frees them");
    drop(tx);
}

/// Random operations against a reference: what each receiver gets (values, lag counts,
/// empty, closed), `len`, and the number of live values after every step.
#[test]
fn random_operations_match_a_reference_model() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for cap in [1usize, 2, 3, 8] {
        let live = Arc::new(AtomicIsize::new(0));
        let (tx, rx) = omni::chan::broadcast::<Counted>(cap);
        let mut tx = Some(tx);
        let mut sent = 0u64; // values sent = the tail position
        let mut rxs: Vec<(broadcast::Receiver<Counted>, u64)> = vec![(rx, 0)];
        for _ in 0..3000 {
            match rand(10) {
                0..=3 => {
                    if let Some(tx) = &tx {
                        let r = tx.send(Counted::new(sent, &live));
                        if rxs.is_empty() {
                            assert!(r.is_err());
                        } else {
                            assert_eq!(r.unwrap(), rxs.len());
                            sent += 1;
                        }
                    }
                }
                4..=6 if !rxs.is_empty() => {
                    let i = rand(rxs.len() as u64) as usize;
                    let (rx, next) = &mut rxs[i];
                    let oldest = sent.saturating_sub(cap as u64);
                    let expected = if *next == sent {
                        Err(if tx.is_some() { TryRecvError::Empty } else { TryRecvError::Closed })
                    } else if *next < oldest {
                        let k = oldest - *next;
                        *next = oldest;
                        Err(TryRecvError::Lagged(k))
                    } else {
                        *next += 1;
                        Ok(*next - 1)
                    };
                    assert_eq!(rx.try_recv().map(|c| c.0), expected);
                }
                7 if !rxs.is_empty() => {
                    let i = rand(rxs.len() as u64) as usize;
                    if rand(2) == 0 {
                        rxs.swap_remove(i);
                    } else {
                        let twin = (rxs[i].0.clone(), rxs[i].1);
                        rxs.push(twin);
                    }
                }
                8 => {
                    if let Some(tx) = &tx {
                        rxs.push((tx.subscribe(), sent));
                    }
                }
                9 if rand(50) == 0 => tx = None,
                _ => {}
            }
            // Held values: positions in the ring that some receiver has yet to read.
            let oldest = sent.saturating_sub(cap as u64);
            let held = (oldest..sent).filter(|&p| rxs.iter().any(|(_, n)| *n <= p)).count();
            assert_eq!(live.load(SeqCst), held as isize);
            if let Some(tx) = &tx {
                assert_eq!(tx.len(), held);
                assert_eq!(tx.receiver_count(), rxs.len());
            }
            for (rx, next) in &rxs {
                assert_eq!(rx.len() as u64, sent - (*next).max(oldest));
            }
        }
        drop(rxs);
        drop(tx);
        assert_eq!(live.load(SeqCst), 0);
    }
}

/// A `recv` cancelled after any number of `Pending` polls consumes nothing and leaves no
/// waiter behind.
#[test]
fn a_cancelled_receive_consumes_nothing() {
    for polls in 0..=16u64 {
        let (tx, mut rx) = omni::chan::broadcast(4);
        let mut other = tx.subscribe();
        {
            let mut fut = rx.recv();
            for _ in 0..polls {
                assert_eq!(poll_once(&mut fut), Poll::Pending);
            }
        }
        tx.send(polls).unwrap();
        assert_eq!(rx.try_recv(), Ok(polls), "after {polls} polls");
        assert_eq!(other.try_recv(), Ok(polls));
        // And with a value already waiting: cancelling before the first poll takes nothing.
        tx.send(polls + 100).unwrap();
        drop(rx.recv());
        assert_eq!(rx.try_recv(), Ok(polls + 100));
    }
    // The same inside a runtime, cancelling through `timeout` on the paused clock.
    let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = omni::chan::broadcast(4);
        let r = omni::time::timeout(omni::time::Duration::from_secs(1), rx.recv()).await;
        assert!(r.is_err(), "nothing was sent, so the receive times out");
        tx.send(5).unwrap();
        assert_eq!(rx.recv().await, Ok(5));
    });
}

#[test]
fn the_stream_yields_values_and_lags_and_ends_when_closed() {
    omni::block_on(async {
        let (tx, rx) = omni::chan::broadcast(2);
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        drop(tx);
        let items: Vec<Result<i32, Lagged>> = rx.collect().await;
        assert_eq!(items, [Err(Lagged(3)), Ok(3), Ok(4)]);
    });
}

#[test]
fn fan_out_on_the_multi_thread_runtime() {
    const N: u64 = 2000;
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    rt.block_on(async {
        let (tx, rx) = omni::chan::broadcast::<u64>(8);
        let mut hs = Vec::new();
        for _ in 0..3 {
            let mut rx = rx.clone();
            hs.push(omni::spawn(async move {
                // Values arrive in order; lags account for every gap.
                let (mut expect, mut got) = (0u64, 0u64);
                loop {
                    match rx.recv().await {
                        Ok(v) => {
                            assert_eq!(v, expect);
                            expect += 1;
                            got += 1;
                        }
                        Err(RecvError::Lagged(k)) => expect += k,
                        Err(RecvError::Closed) => break,
                    }
                }
                assert_eq!(expect, N);
                got
            }));
        }
        drop(rx);
        let sender = omni::spawn(async move {
            for i in 0..N {
                tx.send(i).unwrap();
                if i % 4 == 0 {
                    omni::yield_now().await;
                }
            }
        });
        sender.await.unwrap();
        for h in hs {
            assert!(h.await.unwrap() > 0);
        }
    });
}

#[test]
fn from_an_os_thread_to_tasks() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    let (tx, rx) = omni::chan::broadcast::<u32>(256);
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let mut rx = rx.clone();
            rt.spawn(async move {
                let mut sum = 0;
                while let Ok(v) = rx.recv().await {
                    sum += v;
                }
                sum
            })
        })
        .collect();
    drop(rx);
    let t = std::thread::spawn(move || {
        for i in 0..200 {
            tx.send(i).unwrap();
        }
    });
    t.join().unwrap();
    rt.block_on(async {
        for h in hs {
            assert_eq!(h.await.unwrap(), (0..200).sum::<u32>());
        }
    });
}

#[test]
fn from_a_task_to_os_threads() {
    let (tx, rx) = omni::chan::broadcast::<u32>(256);
    let ts: Vec<_> = (0..2)
        .map(|_| {
            let mut rx = rx.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(v) = rx.recv_blocking() {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    drop(rx);
    omni::block_on(async move {
        omni::spawn(async move {
            for i in 0..200 {
                tx.send(i).unwrap();
                omni::yield_now().await;
            }
        })
        .await
        .unwrap();
    });
    for t in ts {
        assert_eq!(t.join().unwrap(), (0..200).collect::<Vec<_>>());
    }
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn a_zero_capacity_panics() {
    let _ = omni::chan::broadcast::<u8>(0);
}

#[test]
fn sender_receiver_and_recv_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<broadcast::Sender<String>>();
    send_sync::<broadcast::Receiver<String>>();
    send_sync::<broadcast::Recv<'static, String>>();
    fn unpin<T: Unpin>() {}
    unpin::<broadcast::Receiver<String>>();
    unpin::<broadcast::Recv<'static, String>>();
}

#[test]
fn debug_shows_the_state() {
    let (tx, rx) = omni::chan::broadcast::<u8>(2);
    tx.send(1).unwrap();
    assert_eq!(
        format!("{tx:?}"),
        "broadcast::Sender { capacity: 2, held: 1, senders: 1, receivers: 1 }"
    );
    assert_eq!(format!("{rx:?}"), "broadcast::Receiver { next: 0, len: 1 }");
}

#[path = "common/alloc_count.rs"]
mod alloc_count;

#[test]
fn sending_and_receiving_allocate_nothing_in_steady_state() {
    let mut cx = Context::from_waker(Waker::noop());
    let (tx, mut a) = omni::chan::broadcast::<u64>(4);
    let mut b = tx.subscribe();
    let allocs = alloc_count::during(|| {
        for i in 0..100 {
            for rx in [&mut a, &mut b] {
                assert!(Pin::new(&mut rx.recv()).poll(&mut cx).is_pending());
            }
            tx.send(i).unwrap();
            for rx in [&mut a, &mut b] {
                assert_eq!(Pin::new(&mut rx.recv()).poll(&mut cx), Poll::Ready(Ok(i)));
            }
        }
        // A receiver made after one was dropped reuses its waker slot.
        drop(b);
        let _c = tx.subscribe();
    });
    assert_eq!(allocs, 0);
}

/// A receiver whose values are always ready spends the task's cooperative budget, so a loop
/// over it still lets the other tasks run.
#[test]
fn a_receive_loop_that_never_waits_still_yields_to_other_tasks() {
    use std::cell::Cell;
    use std::rc::Rc;
    omni::block_on(async {
        let (tx, mut rx) = omni::chan::broadcast(1024);
        for i in 0..1000 {
            tx.send(i).unwrap();
        }
        let reader = omni::spawn_local(async move {
            // Queued behind this task: it runs only if the loop below goes back to the
            // scheduler.
            let ran = Rc::new(Cell::new(false));
            let r = ran.clone();
            let other = omni::spawn_local(async move { r.set(true) });
            let mut seen_at = None;
            for i in 0..1000 {
                assert_eq!(rx.recv().await, Ok(i));
                if seen_at.is_none() && ran.get() {
                    seen_at = Some(i);
                }
            }
            other.await.unwrap();
            seen_at
        });
        let seen_at = reader.await.unwrap();
        assert!(seen_at.is_some_and(|i| i < 999), "the other task ran mid-loop: {seen_at:?}");
    });
}
