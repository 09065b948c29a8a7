//! Loom models of the channel protocol. Futures are polled by hand (`Waker::noop`) or through
//! the blocking forms, whose parker is a loom mutex and condvar: a lost wake-up shows up as a
//! loom deadlock. Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --lib
//! --release --target-dir target/loom loom_chan`.

use super::blocking;
use super::mpmc::{bounded, rendezvous};
use super::{Select, TryRecvError};
use loom::thread;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

fn poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
}

/// bounded(1), two blocked senders and one receiver: every value exactly once, FIFO per
/// sender.
#[test]
fn loom_chan_bounded1_two_senders_one_receiver() {
    loom::model(|| {
        let (tx, rx) = bounded::<(u8, u8)>(1);
        let tx2 = tx.clone();
        let a = thread::spawn(move || {
            tx.send_blocking((0, 0)).unwrap();
            tx.send_blocking((0, 1)).unwrap();
        });
        let b = thread::spawn(move || tx2.send_blocking((1, 0)).unwrap());
        let mut got = Vec::new();
        while let Ok(v) = blocking::wait(rx.recv(), "recv") {
            got.push(v);
        }
        a.join().unwrap();
        b.join().unwrap();
        let from_a: Vec<_> = got.iter().filter(|v| v.0 == 0).collect();
        assert_eq!(from_a, [&(0, 0), &(0, 1)]);
        assert_eq!(got.len(), 3);
    });
}

/// A blocked send racing the last receiver's drop: the value is buffered (and dropped with
/// the buffer) or handed back; never leaked, the sender never hangs.
#[test]
fn loom_chan_send_vs_receiver_drop() {
    loom::model(|| {
        let v = Arc::new(());
        let (tx, rx) = rendezvous::<Arc<()>>();
        let v2 = v.clone();
        let t = thread::spawn(move || tx.send_blocking(v2).map_err(|e| e.0));
        drop(rx);
        let r = t.join().unwrap();
        assert!(r.is_err(), "a rendezvous send completed without a receiver");
        drop(r);
        assert_eq!(Arc::strong_count(&v), 1);
    });
}

/// A parked receiver racing the last sender's drop right after a send: it gets the value,
/// then the closed error; it never sleeps through the close.
#[test]
fn loom_chan_recv_vs_last_sender_drop() {
    loom::model(|| {
        let (tx, rx) = bounded::<u8>(1);
        let t = thread::spawn(move || {
            tx.try_send(1).unwrap();
            drop(tx);
        });
        assert_eq!(blocking::wait(rx.recv(), "recv"), Ok(1));
        assert!(blocking::wait(rx.recv(), "recv").is_err());
        t.join().unwrap();
    });
}

/// Rendezvous handoff with the sending side cancelled: the receiver gets the value only if
/// it claimed the parked entry before the drop removed it; otherwise the value drops with the
/// future. Never both, never a leak.
#[test]
fn loom_chan_rendezvous_send_cancelled() {
    loom::model(|| {
        let v = Arc::new(());
        let (tx, rx) = rendezvous::<Arc<()>>();
        let v2 = v.clone();
        let t = thread::spawn(move || {
            let mut s = tx.send(v2);
            let r = poll(&mut s);
            drop(s);
            r.is_ready()
        });
        let got = rx.try_recv().ok();
        let _ = t.join().unwrap();
        // The future dropped unserved: nothing delivered later.
        assert_eq!(rx.try_recv().err(), Some(TryRecvError::Closed));
        drop(got);
        assert_eq!(Arc::strong_count(&v), 1);
    });
}

/// Rendezvous handoff with the receiving side cancelled: a value written into the parked
/// receiver's entry goes back to the channel when the receiver is dropped unseen.
#[test]
fn loom_chan_rendezvous_recv_cancelled() {
    loom::model(|| {
        let (tx, rx) = rendezvous::<u8>();
        let rx2 = rx.clone();
        let t = thread::spawn(move || {
            let mut r = rx2.recv();
            let got = poll(&mut r);
            drop(r);
            drop(rx2);
            got
        });
        let sent = tx.try_send(7).is_ok();
        let got = t.join().unwrap();
        let left = rx.try_recv().ok();
        match got {
            Poll::Ready(Ok(v)) => assert_eq!((sent, v, left), (true, 7, None)),
            _ => assert_eq!(left.is_some(), sent, "a sent value was lost or invented"),
        }
    });
}

/// A receiver served a value and dropped before it saw it passes the value on to a receiver
/// blocked beside it (else that one would sleep with a value waiting: a loom deadlock). The
/// sender stays alive, so no close can rescue a lost wake.
#[test]
fn loom_chan_woken_receiver_dropped_passes_the_wake_on() {
    loom::model(|| {
        let (tx, rx) = bounded::<u8>(1);
        let rx2 = rx.clone();
        let mut r1 = rx.recv();
        assert!(poll(&mut r1).is_pending()); // first in line
        let t = thread::spawn(move || blocking::wait(rx2.recv(), "recv"));
        let s = thread::spawn(move || {
            tx.try_send(5).unwrap();
            tx
        });
        drop(r1);
        let tx = s.join().unwrap();
        assert_eq!(t.join().unwrap(), Ok(5));
        drop(tx);
    });
}

/// A select parked on two channels that become ready at once commits exactly one arm; the
/// other value stays in its channel.
#[test]
fn loom_chan_select_two_ready_consumes_exactly_one() {
    loom::model(|| {
        let (tx1, rx1) = bounded::<u8>(1);
        let (tx2, rx2) = bounded::<u8>(1);
        let a = thread::spawn(move || {
            tx1.try_send(1).unwrap();
            tx1
        });
        let b = thread::spawn(move || {
            tx2.try_send(2).unwrap();
            tx2
        });
        let sel = Select::new().recv(&rx1, |r| r.unwrap()).recv(&rx2, |r| r.unwrap());
        let got = blocking::wait(sel, "select");
        let _keep = (a.join().unwrap(), b.join().unwrap());
        let left: Vec<u8> =
            [rx1.try_recv().ok(), rx2.try_recv().ok()].into_iter().flatten().collect();
        assert_eq!(left.len(), 1, "the losing arm consumed its value");
        assert_ne!(left[0], got);
    });
}

/// A select over a recv arm and a rendezvous send arm, both served at once from two
/// threads: exactly one commits. If the send arm won, its value was taken and the recv arm
/// left its value in the channel; if the recv arm won, the send arm gave nothing.
#[test]
fn loom_chan_select_send_and_recv_arms_commit_one() {
    loom::model(|| {
        let (tx1, rx1) = bounded::<u8>(1);
        let (tx2, rx2) = rendezvous::<u8>();
        let a = thread::spawn(move || {
            tx1.try_send(1).unwrap();
            tx1
        });
        let b = thread::spawn(move || (rx2.try_recv().ok(), rx2));
        let sel = Select::new().recv(&rx1, |r| r.ok()).send(&tx2, 9, |r| r.ok().map(|_| 0));
        let won = blocking::wait(sel, "select");
        let _tx1 = a.join().unwrap();
        let (taken, _rx2) = b.join().unwrap();
        match won {
            Some(1) => {
                assert_eq!(taken, None, "the losing send arm sent");
                assert!(rx1.try_recv().is_err());
            }
            Some(0) => {
                assert_eq!(taken, Some(9));
                assert_eq!(rx1.try_recv(), Ok(1), "the losing recv arm consumed");
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    });
}

/// A blocked OS-thread sender and a receiver future on another thread, rendezvous: both
/// values arrive in order and neither side sleeps through a wake.
#[test]
fn loom_chan_blocking_sender_async_receiver() {
    loom::model(|| {
        let (tx, rx) = rendezvous::<u8>();
        let t = thread::spawn(move || {
            tx.send_blocking(1).unwrap();
            tx.send_blocking(2).unwrap();
        });
        // The receiver side is the plain future, parked through its waker.
        assert_eq!(blocking::wait(rx.recv(), "recv"), Ok(1));
        assert_eq!(blocking::wait(rx.recv(), "recv"), Ok(2));
        t.join().unwrap();
    });
}

/// Two selects over the same two rendezvous channels in opposite directions: X receives on
/// `l` or sends on `k`, Y sends on `l` or receives on `k`. They must pair on exactly one of the
/// channels, whatever the order in which they register. This reaches the path where both claim
/// their own word at once, each finds the other's claimed, unlinks the other's entry as
/// `Lost` and puts its own word back: both must then rescan and re-register, or they sleep
/// forever (a loom deadlock).
#[test]
fn loom_chan_select_against_select_on_rendezvous() {
    // Both selects must be preempted inside their critical sections to reach the dance:
    // it needs 5 preemptions (with 3 a mutant that skips the rescan survives). ~2,600
    // iterations, well under a second in release.
    let mut model = loom::model::Builder::new();
    if let Some(bound) = model.preemption_bound {
        model.preemption_bound = Some(bound.max(5));
    }
    model.check(|| {
        let (l_tx, l_rx) = rendezvous::<u8>();
        let (k_tx, k_rx) = rendezvous::<u8>();
        let y = thread::spawn(move || {
            // The opposite arm order from X's: each may register its first arm, then find
            // the other's entry on its second channel at the same moment.
            let sel = Select::new().recv(&k_rx, |r| r.ok()).send(&l_tx, 4, |r| r.map(|_| 0).ok());
            blocking::wait(sel, "select")
        });
        let sel = Select::new().recv(&l_rx, |r| r.ok()).send(&k_tx, 8, |r| r.map(|_| 0).ok());
        let x = blocking::wait(sel, "select");
        let y = y.join().unwrap();
        match (x, y) {
            (Some(4), Some(0)) | (Some(0), Some(8)) => {}
            other => panic!("the selects did not pair on exactly one channel: {other:?}"),
        }
    });
}

/// The channel lock alone: two threads each increment a counter under it twice (a
/// read-then-write, so a lost update shows if the lock ever let both in; loom's `UnsafeCell`
/// also reports the overlapping access itself).
#[test]
fn loom_chan_lock_excludes() {
    loom::model(|| {
        let lock = Arc::new(super::lock::SpinLock::new(0u32));
        let l2 = lock.clone();
        let t = thread::spawn(move || {
            for _ in 0..2 {
                let mut g = l2.lock();
                let v = *g;
                *g = v + 1;
            }
        });
        for _ in 0..2 {
            let mut g = lock.lock();
            let v = *g;
            *g = v + 1;
        }
        t.join().unwrap();
        assert_eq!(*lock.lock(), 4);
    });
}
