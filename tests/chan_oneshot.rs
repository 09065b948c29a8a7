//! `omni::chan::oneshot` through the public API: delivery, close, dropping either side at every
//! point (with drop-counted values), cancellation, the multi-thread runtime and OS threads.

use omni::chan::{oneshot, RecvError, TryRecvError};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// A value that counts its drops.
#[derive(Debug)]
struct Counted(u32, Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, SeqCst);
    }
}

fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_value_sent_before_the_await_is_received() {
    omni::block_on(async {
        let (tx, rx) = oneshot();
        tx.send(1).unwrap();
        assert_eq!(rx.await, Ok(1));
    });
}

#[test]
fn an_awaiting_receiver_is_woken_by_the_send() {
    omni::block_on(async {
        let (tx, rx) = oneshot();
        let h = omni::spawn(rx);
        omni::yield_now().await;
        tx.send("x").unwrap();
        assert_eq!(h.await.unwrap(), Ok("x"));
    });
}

#[test]
fn dropping_the_sender_unsent_ends_the_receive_with_an_error() {
    omni::block_on(async {
        let (tx, rx) = oneshot::<u8>();
        let h = omni::spawn(rx);
        omni::yield_now().await;
        drop(tx);
        assert_eq!(h.await.unwrap(), Err(RecvError));
    });
    let (tx, mut rx) = oneshot::<u8>();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(rx.recv_blocking(), Err(RecvError));
}

#[test]
fn a_send_to_a_dropped_receiver_hands_the_value_back() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot();
    drop(rx);
    assert!(tx.is_closed());
    let back = tx.send(Counted(9, drops.clone())).unwrap_err();
    assert_eq!(back.0, 9);
    assert_eq!(drops.load(SeqCst), 0, "the value came back alive");
    drop(back);
    assert_eq!(drops.load(SeqCst), 1);
}

#[test]
fn close_refuses_later_sends_but_keeps_an_earlier_value() {
    let (tx, mut rx) = oneshot();
    rx.close();
    assert!(tx.is_closed());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed), "nothing can come any more");
    assert_eq!(poll_once(&mut rx), Poll::Ready(Err(RecvError)));
    assert_eq!(tx.send(1), Err(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));

    let (tx, mut rx) = oneshot();
    tx.send(2).unwrap();
    rx.close();
    rx.close(); // twice is harmless
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn closed_completes_when_the_receiver_closes_or_goes() {
    omni::block_on(async {
        let (mut tx, mut rx) = oneshot::<u8>();
        let h = omni::spawn(async move {
            tx.closed().await;
            tx.is_closed()
        });
        omni::yield_now().await;
        rx.close();
        assert!(h.await.unwrap());

        let (mut tx, rx) = oneshot::<u8>();
        let h = omni::spawn(async move { tx.closed().await });
        omni::yield_now().await;
        drop(rx);
        h.await.unwrap();
    });
}

#[test]
fn polling_after_completion_gives_an_error_not_a_panic() {
    let (tx, mut rx) = oneshot();
    tx.send(3).unwrap();
    assert_eq!(poll_once(&mut rx), Poll::Ready(Ok(3)));
    assert_eq!(poll_once(&mut rx), Poll::Ready(Err(RecvError)));
}

/// Every order of the sender's and the receiver's steps: the value is dropped exactly once,
/// received exactly when the send succeeded and the receiver read after it, and handed back
/// exactly when the send failed.
#[test]
fn dropping_either_side_at_every_point_drops_the_value_exactly_once() {
    #[derive(Clone, Copy, Debug)]
    enum Rx {
        Close,
        TryRecv,
        Drop,
    }
    let rx_plans: &[&[Rx]] = &[
        &[Rx::Drop],
        &[Rx::TryRecv, Rx::Drop],
        &[Rx::Close, Rx::Drop],
        &[Rx::Close, Rx::TryRecv, Rx::Drop],
        &[Rx::TryRecv, Rx::Close, Rx::TryRecv, Rx::Drop],
    ];
    for send in [true, false] {
        for plan in rx_plans {
            // The sender's one step (send or drop) goes at every index of the receiver's plan.
            for at in 0..=plan.len() {
                let drops = Arc::new(AtomicUsize::new(0));
                let (tx, rx) = oneshot();
                let (mut tx, mut rx) = (Some(tx), Some(rx));
                let mut received = None;
                let mut sent = None;
                let mut closed = false;
                for step in 0..=plan.len() {
                    if step == at {
                        let tx = tx.take().unwrap();
                        if send {
                            let r = tx.send(Counted(1, drops.clone()));
                            assert_eq!(r.is_ok(), rx.is_some() && !closed, "{plan:?} at {at}");
                            sent = Some(r.is_ok());
                        } else {
                            drop(tx);
                        }
                    }
                    if let Some(&op) = plan.get(step) {
                        match op {
                            Rx::Close => {
                                rx.as_mut().unwrap().close();
                                closed = true;
                            }
                            Rx::TryRecv => {
                                if let Ok(v) = rx.as_mut().unwrap().try_recv() {
                                    assert!(received.is_none());
                                    received = Some(v.0);
                                }
                            }
                            Rx::Drop => rx = None,
                        }
                    }
                }
                if received.is_some() {
                    assert_eq!(sent, Some(true));
                }
                assert_eq!(drops.load(SeqCst), usize::from(send), "{send} {plan:?} at {at}");
            }
        }
    }
}

#[test]
fn a_sent_value_left_in_a_dropped_receiver_is_dropped_with_it() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot();
    tx.send(Counted(1, drops.clone())).unwrap();
    assert_eq!(drops.load(SeqCst), 0);
    drop(rx);
    assert_eq!(drops.load(SeqCst), 1);
}

/// A receive cancelled after any number of `Pending` polls consumes nothing.
#[test]
fn a_cancelled_receive_consumes_nothing() {
    for polls in 0..=16 {
        let (tx, mut rx) = oneshot();
        {
            let fut = &mut rx;
            for _ in 0..polls {
                assert_eq!(poll_once(fut), Poll::Pending);
            }
        } // the borrowing future is dropped here
        tx.send(polls).unwrap();
        assert_eq!(rx.try_recv(), Ok(polls), "after {polls} polls");
    }
    // The same inside a runtime, cancelling through `timeout` on the paused clock.
    let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = oneshot();
        let r = omni::time::timeout(omni::time::Duration::from_secs(1), &mut rx).await;
        assert!(r.is_err(), "nothing was sent, so the receive times out");
        tx.send(5).unwrap();
        assert_eq!(rx.await, Ok(5));
    });
}

#[test]
fn many_oneshots_on_the_multi_thread_runtime() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    let total = rt.block_on(async {
        let mut hs = Vec::new();
        for i in 0..500u64 {
            let (tx, rx) = oneshot();
            let (tx2, rx2) = oneshot();
            // A relay: task a waits for i, task b doubles it into the second channel.
            hs.push(omni::spawn(async move { rx2.await.unwrap() }));
            omni::spawn(async move {
                let v: u64 = rx.await.unwrap();
                tx2.send(v * 2).unwrap();
            });
            omni::spawn(async move { tx.send(i).unwrap() });
        }
        let mut total = 0;
        for h in hs {
            total += h.await.unwrap();
        }
        total
    });
    assert_eq!(total, 2 * (0..500u64).sum::<u64>());
}

#[test]
fn from_an_os_thread_to_a_task() {
    omni::block_on(async {
        let (tx, rx) = oneshot();
        let t = std::thread::spawn(move || tx.send(String::from("from a thread")).unwrap());
        assert_eq!(rx.await.unwrap(), "from a thread");
        t.join().unwrap();

        let (tx, rx) = oneshot::<u8>();
        let t = std::thread::spawn(move || drop(tx));
        assert_eq!(rx.await, Err(RecvError));
        t.join().unwrap();
    });
}

#[test]
fn from_a_task_to_an_os_thread() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    for i in 0..50u32 {
        let (tx, rx) = oneshot();
        let t = std::thread::spawn(move || rx.recv_blocking());
        rt.block_on(async move {
            omni::spawn(async move { tx.send(i).unwrap() }).await.unwrap();
        });
        assert_eq!(t.join().unwrap(), Ok(i));
    }
    let (tx, rx) = oneshot::<u8>();
    let t = std::thread::spawn(move || rx.recv_blocking());
    rt.block_on(async move { omni::spawn(async move { drop(tx) }).await.unwrap() });
    assert_eq!(t.join().unwrap(), Err(RecvError));
}

#[test]
fn sender_and_receiver_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<omni::chan::oneshot::Sender<String>>();
    send_sync::<omni::chan::oneshot::Receiver<String>>();
    send_sync::<omni::chan::oneshot::Closed<'static, String>>();
    send::<omni::chan::oneshot::Sender<std::cell::Cell<u8>>>();
    fn unpin<T: Unpin>() {}
    unpin::<omni::chan::oneshot::Receiver<std::marker::PhantomPinned>>();
}

#[test]
fn debug_shows_the_state() {
    let (tx, rx) = oneshot::<u8>();
    assert_eq!(format!("{tx:?}"), "oneshot::Sender { closed: false }");
    tx.send(1).unwrap();
    assert_eq!(
        format!("{rx:?}"),
        "oneshot::Receiver { ready: true, sender: false, closed: false }"
    );
}

#[path = "common/alloc_count.rs"]
mod alloc_count;

#[test]
fn a_channel_allocates_its_shared_state_and_nothing_else() {
    let mut cx = Context::from_waker(Waker::noop());
    let allocs = alloc_count::during(|| {
        let (tx, mut rx) = oneshot::<u64>();
        assert!(Pin::new(&mut rx).poll(&mut cx).is_pending());
        tx.send(1).unwrap();
        assert_eq!(Pin::new(&mut rx).poll(&mut cx), Poll::Ready(Ok(1)));
        let (mut tx, rx) = oneshot::<u64>();
        assert!(tx.poll_closed(&mut cx).is_pending());
        drop(rx);
        assert!(tx.poll_closed(&mut cx).is_ready());
    });
    assert_eq!(allocs, 2, "one shared block per channel");
}
