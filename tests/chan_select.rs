//! `omni::chan::Select` and `omni::select!` through the public API: fairness, `biased`, losing
//! arms that consume and send nothing, timeout and default arms, send and recv arms together,
//! select against select, and cancellation.

use omni::chan::{bounded, rendezvous, unbounded, RecvError, Select, TryRecvError};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn two_ready_arms_are_chosen_fairly() {
    let (tx1, rx1) = unbounded();
    let (tx2, rx2) = unbounded();
    let mut wins = [0u32; 2];
    let mut sent = 0;
    omni::block_on(async {
        for _ in 0..10_000 {
            // Keep both arms ready.
            if rx1.is_empty() {
                tx1.try_send(()).unwrap();
                sent += 1;
            }
            if rx2.is_empty() {
                tx2.try_send(()).unwrap();
                sent += 1;
            }
            let w = Select::new().recv(&rx1, |_| 0).recv(&rx2, |_| 1).await;
            wins[w] += 1;
        }
    });
    assert!((4_500..=5_500).contains(&wins[0]), "unfair: {wins:?}");
    assert_eq!(wins[0] + wins[1], 10_000);
    // The losing arm consumed nothing: exactly one value per select left the channels.
    assert_eq!(rx1.len() + rx2.len(), sent - 10_000);
}

#[test]
fn biased_takes_the_first_ready_arm() {
    let (tx1, rx1) = unbounded();
    let (tx2, rx2) = unbounded();
    omni::block_on(async {
        for _ in 0..1_000 {
            tx1.try_send(1).unwrap();
            if rx2.is_empty() {
                tx2.try_send(2).unwrap();
            }
            let v = omni::select! {
                biased;
                a = recv(rx1) => a.unwrap(),
                b = recv(rx2) => b.unwrap(),
            };
            assert_eq!(v, 1);
        }
    });
    assert_eq!(rx2.len(), 1);
}

#[test]
fn losing_arms_receive_and_send_nothing() {
    omni::block_on(async {
        for _ in 0..200 {
            let (tx1, rx1) = bounded(1);
            let (tx2, rx2) = bounded(1);
            tx1.try_send(10).unwrap();
            // Both ready: the recv on rx1 and the send on tx2.
            let won = Select::new()
                .recv(&rx1, |r| (1, r.ok()))
                .send(&tx2, 20, |r| (2, r.ok().map(|_| 0)))
                .await;
            match won.0 {
                1 => {
                    assert_eq!(won.1, Some(10));
                    assert_eq!(rx2.try_recv(), Err(TryRecvError::Empty), "the losing send sent");
                }
                _ => {
                    assert_eq!(rx2.try_recv(), Ok(20));
                    assert_eq!(rx1.try_recv(), Ok(10), "the losing recv consumed");
                }
            }
        }
    });
}

#[test]
fn parked_select_commits_exactly_one_arm() {
    omni::block_on(async {
        let (tx1, rx1) = rendezvous::<u32>();
        let (tx2, rx2) = bounded::<u32>(1);
        let (tx3, rx3) = rendezvous::<u32>();
        let sel = omni::spawn_local(async move {
            let r = Select::new()
                .recv(&rx1, |r| format!("rx1 {r:?}"))
                .recv(&rx2, |r| format!("rx2 {r:?}"))
                .send(&tx3, 30, |r| format!("tx3 {r:?}"))
                .await;
            (r, rx1, rx2, tx3)
        });
        omni::yield_now().await; // the select parks on all three
                                 // Two channels become ready at once: only the first served wins.
        assert_eq!(rx3.try_recv(), Ok(30), "the parked send arm is served");
        tx2.try_send(2).unwrap(); // loses: stays buffered
        assert!(tx1.try_send(1).unwrap_err().is_full(), "the select left rx1");
        let (r, _rx1, rx2, _tx3) = sel.await.unwrap();
        assert_eq!(r, "tx3 Ok(())");
        assert_eq!(rx2.try_recv(), Ok(2));
    });
}

#[test]
fn timeout_arm_on_the_paused_clock() {
    let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
    rt.block_on(async {
        let (tx, rx) = bounded::<u32>(1);
        let r = omni::select! {
            v = recv(rx) => Some(v),
            timeout(Duration::from_secs(5)) => None,
        };
        assert_eq!(r, None);
        // A value that comes before the deadline wins, and the timer is dropped.
        let t = omni::spawn_local(async move {
            omni::time::sleep(Duration::from_secs(1)).await;
            tx.send(7).await.unwrap();
            tx
        });
        let r = omni::select! {
            v = recv(rx) => Some(v),
            timeout(Duration::from_secs(5)) => None,
        };
        assert_eq!(r, Some(Ok(7)));
        let tx = t.await.unwrap();
        drop(tx);
        // A timeout-only select is a sleep.
        let r = Select::new().timeout(Duration::from_millis(10), || "slept").await;
        assert_eq!(r, "slept");
    });
}

#[test]
fn default_arm_when_nothing_is_ready() {
    omni::block_on(async {
        let (tx, rx) = rendezvous::<u32>();
        let r = omni::select! {
            v = recv(rx) => v.ok(),
            r = send(tx, 1) => r.ok().map(|_| 0),
            default => Some(99),
        };
        assert_eq!(r, Some(99));
        assert!(format!("{tx:?}").contains("parked: 0"), "default left entries behind");
        tx.close();
        // Closed channels are ready: their arms win over the default.
        let r = omni::select! {
            v = recv(rx) => v == Err(RecvError),
            default => false,
        };
        assert!(r);
    });
}

#[test]
fn select_against_select_on_a_rendezvous_channel() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    rt.block_on(async {
        let (tx, rx) = rendezvous::<u64>();
        let (_otx, orx) = rendezvous::<u64>();
        let (otx2, _orx2) = rendezvous::<u64>();
        let n = 2_000;
        let sender = omni::spawn(async move {
            for i in 0..n {
                let ok = Select::new().send(&tx, i, |r| r.is_ok()).recv(&orx, |_| false).await;
                assert!(ok);
            }
        });
        let receiver = omni::spawn(async move {
            let mut sum = 0;
            for _ in 0..n {
                sum += Select::new()
                    .recv(&rx, |r| r.unwrap())
                    .send(&otx2, 0, |_| panic!("nobody receives there"))
                    .await;
            }
            sum
        });
        sender.await.unwrap();
        assert_eq!(receiver.await.unwrap(), (0..n).sum::<u64>());
    });
}

#[test]
fn cancelled_select_leaves_nothing_behind() {
    let (tx1, rx1) = bounded::<u32>(1);
    let (tx2, rx2) = rendezvous::<u32>();
    // Parked on both, then dropped.
    let mut sel = Select::new().recv(&rx1, |r| r).send(&tx2, 5, |_| Ok(0));
    assert!(poll_once(&mut sel).is_pending());
    drop(sel);
    assert!(tx2.try_send(1).unwrap_err().is_full(), "a cancelled send arm is still parked");
    assert_eq!(rx2.try_recv(), Err(TryRecvError::Empty));
    // Served, then dropped before it saw the value: the value goes back.
    let mut sel = Select::new().recv(&rx1, |r| r).send(&tx2, 5, |_| Ok(0));
    assert!(poll_once(&mut sel).is_pending());
    tx1.try_send(3).unwrap();
    drop(sel);
    assert_eq!(rx1.try_recv(), Ok(3));
    assert!(format!("{rx1:?} {rx2:?}").matches("parked: 0").count() == 2);
}

#[test]
fn cancelling_selects_at_every_poll_loses_nothing() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    let n = 20_000u64;
    let seen = Arc::new((0..2 * n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
    let s2 = seen.clone();
    rt.block_on(async move {
        let (tx1, rx1) = bounded::<u64>(2);
        let (tx2, rx2) = rendezvous::<u64>();
        let p1 = omni::spawn(async move {
            for i in 0..n {
                tx1.send(i).await.unwrap();
            }
        });
        let p2 = omni::spawn(async move {
            for i in n..2 * n {
                tx2.send(i).await.unwrap();
            }
        });
        let consumers: Vec<_> = (0..3u64)
            .map(|c| {
                let (rx1, rx2, seen) = (rx1.clone(), rx2.clone(), s2.clone());
                omni::spawn(async move {
                    let mut k = c;
                    loop {
                        k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        let mut sel = Select::new().recv(&rx1, |r| r.ok()).recv(&rx2, |r| r.ok());
                        // Sometimes give up after a few polls (the select is dropped).
                        let polls = (k >> 33) % 4;
                        let mut got = None;
                        let mut done = false;
                        for _ in 0..polls.max(1) {
                            let r = std::future::poll_fn(|cx| match Pin::new(&mut sel).poll(cx) {
                                Poll::Ready(v) => Poll::Ready(Some(v)),
                                Poll::Pending => Poll::Ready(None),
                            })
                            .await;
                            if let Some(v) = r {
                                got = v;
                                done = true;
                                break;
                            }
                            omni::yield_now().await;
                        }
                        drop(sel);
                        match (done, got) {
                            (true, Some(v)) => {
                                assert_eq!(seen[v as usize].fetch_add(1, Relaxed), 0);
                            }
                            // Both closed and drained is the end; one closed is not.
                            (true, None)
                                if rx1.is_closed()
                                    && rx2.is_closed()
                                    && rx1.is_empty()
                                    && rx2.is_empty() =>
                            {
                                return;
                            }
                            _ => {}
                        }
                    }
                })
            })
            .collect();
        drop((rx1, rx2));
        p1.await.unwrap();
        p2.await.unwrap();
        for c in consumers {
            c.await.unwrap();
        }
    });
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.load(Relaxed), 1, "value {i}");
    }
}

/// Runs `f` on its own thread and fails if it has not finished within a minute (a livelock).
fn no_hang(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("hung"),
        _ => t.join().unwrap(),
    }
}

/// Regression (found by the `chan_ops` fuzz target): on a rendezvous channel, a select with a
/// recv and a send arm on the same channel paired its arms with each other while registering:
/// it claimed its own word, unlinked its own entry as `Lost`, and rescanned for ever (or, when
/// the send arm's entry was the one unlinked, dropped the value in it and panicked with "a send
/// arm holds its value"). Now the arms park, and a peer completes one of them.
#[test]
fn select_send_and_recv_on_one_rendezvous_channel_do_not_pair_with_each_other() {
    no_hang(|| {
        let (tx, rx) = rendezvous::<u32>();
        let mut a = Select::new().biased().recv(&rx, |r| (0, r.ok())).send(&tx, 1, |_| (1, None));
        assert!(poll_once(&mut a).is_pending(), "a select does not pair with itself");
        assert_eq!(rx.try_recv(), Ok(1), "its send arm is parked");
        assert_eq!(poll_once(&mut a), Poll::Ready((1, None)));
    });
}

/// Regression (found by the `chan_ops` fuzz target): the same, with a plain send and a second
/// select parked too; the send arm's entry was unlinked as `Lost` by its own recv arm and the
/// rescan freed it with the value inside (panic "a send arm holds its value"). Every value comes
/// out once.
#[test]
fn select_send_arm_lost_on_rescan_keeps_its_value() {
    no_hang(|| {
        let (tx, rx) = rendezvous::<u32>();
        let mut a = Select::new().biased().recv(&rx, |r| r.ok()).send(&tx, 1, |_| None);
        assert!(poll_once(&mut a).is_pending());
        let mut s = tx.send(2);
        let s_done = poll_once(&mut s).is_ready();
        let mut got = Vec::new();
        if let Poll::Ready(Some(v)) = poll_once(&mut a) {
            got.push(v);
        }
        let mut b = Select::new().biased().recv(&rx, |r| r.ok()).send(&tx, 3, |_| None);
        let b_first = poll_once(&mut b);
        if let Poll::Ready(Some(v)) = b_first {
            got.push(v);
        }
        while let Ok(v) = rx.try_recv() {
            got.push(v);
        }
        if s_done {
            assert!(got.contains(&2), "the completed send's value came out: {got:?}");
        }
        let mut once = got.clone();
        once.sort_unstable();
        once.dedup();
        assert_eq!(once.len(), got.len(), "a value came out twice: {got:?}");
    });
}
