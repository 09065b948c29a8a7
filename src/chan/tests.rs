//! Unit tests that look inside: random operation sequences with hand-polled futures, checking
//! the channel's invariants (`State::check`) after every step, and that every value ends up
//! received exactly once or dropped with a cancelled send.

use super::mpmc::{bounded, rendezvous, unbounded};
use super::{Receiver, RecvFuture, SendFuture, Sender};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

fn poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
}

fn model(tx: Sender<u32>, rx: Receiver<u32>, seed: u64) {
    let mut x = seed | 1;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n) as usize
    };
    let mut sends: Vec<(u32, SendFuture<'_, u32>)> = Vec::new();
    let mut recvs: Vec<RecvFuture<'_, u32>> = Vec::new();
    let mut received = Vec::new();
    let mut next = 0u32;
    let mut acked = Vec::new();
    for _ in 0..400 {
        match rnd(8) {
            0 => {
                if tx.try_send(next).is_ok() {
                    acked.push(next);
                }
                next += 1;
            }
            1 => received.extend(rx.try_recv().ok()),
            2 => {
                sends.push((next, tx.send(next)));
                next += 1;
            }
            3 => recvs.push(rx.recv()),
            4 if !sends.is_empty() => {
                let i = rnd(sends.len() as u64);
                match poll(&mut sends[i].1) {
                    Poll::Pending => {}
                    Poll::Ready(r) => {
                        let (v, _) = sends.swap_remove(i);
                        match r {
                            Ok(()) => acked.push(v),
                            Err(e) => assert_eq!(e.0, v),
                        }
                    }
                }
            }
            5 if !recvs.is_empty() => {
                let i = rnd(recvs.len() as u64);
                if let Poll::Ready(r) = poll(&mut recvs[i]) {
                    drop(recvs.swap_remove(i));
                    received.extend(r.ok());
                }
            }
            6 if !sends.is_empty() => {
                drop(sends.swap_remove(rnd(sends.len() as u64)));
            }
            7 if !recvs.is_empty() => drop(recvs.swap_remove(rnd(recvs.len() as u64))),
            _ => {}
        }
        tx.chan.lock().check();
        if rnd(200) == 0 {
            tx.close();
        }
    }
    drop(recvs);
    drop(sends);
    while let Ok(v) = rx.try_recv() {
        received.push(v);
    }
    assert_eq!(tx.chan.check(), 0, "waiter entries leaked");
    received.sort_unstable();
    let mut dedup = received.clone();
    dedup.dedup();
    assert_eq!(dedup, received, "a value received twice");
    for v in acked {
        assert!(received.binary_search(&v).is_ok(), "acknowledged value {v} lost");
    }
    assert!(received.iter().all(|&v| v < next), "received a value never sent");
}

#[test]
fn random_operations_keep_the_invariants() {
    for seed in 1..300u64 {
        let (tx, rx) = match seed % 4 {
            0 => rendezvous(),
            1 => bounded(1),
            2 => bounded(3),
            _ => unbounded(),
        };
        model(tx, rx, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
}
