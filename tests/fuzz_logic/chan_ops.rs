//! `chan_ops`: scripts of channel operations over every channel kind, driven by hand with
//! counting wakers (no runtime), checked against a model.
//!
//! Multi-producer multi-consumer kinds (bounded, unbounded, rendezvous): `try_send`, `send` and
//! `recv` futures (polled when made, polled again or cancelled later: cancel after k polls),
//! `try_recv`, close from either side, clone and drop of either side (handles are shared by
//! the pending futures, as tasks share them), and biased `Select`s of a recv and a send arm or
//! of two recv arms, with or without a default. Checks:
//! - exactly once: no value is received twice, and every value is dropped exactly once by the
//!   end (a value received or handed back in an error must not have been dropped before);
//! - order: values from one sender are received in the order their sends began. A receive is
//!   linearized when it is served, which for a pending future is some time after its last
//!   pending poll: so a value taken at once must be newer than every value of its sender
//!   received so far, and a value a pending future returns newer than those received before
//!   its last pending poll. A cancelled receive may pass the value it was served back to the
//!   front (one inversion allowed for each);
//! - nothing lost: with a receiver left, draining at the end yields every value whose send
//!   completed `Ok`; cancelling a send hands its value to no one but the drop;
//! - the `VecDeque` model: while no future is pending, `len`, `try_send` (`Full`/`Closed`) and
//!   `try_recv` (`Empty`/`Closed`) agree with the count of accepted, unreceived values;
//! - no one sleeps beside work: a parked, unwoken receive while values are buffered, or a
//!   parked, unwoken send while there is room, is a lost wake-up.
//!
//! Oneshot: send / try_recv / poll / close / drop of either side against a three-state model.
//! Broadcast: send / subscribe / clone / try_recv / recv futures / drops against a ring model
//! (every receiver sees every value from its subscription on, in order, or `Lagged(n)` for
//! exactly the `n` overwritten), with clones counted so every clone is dropped once.
//!
//! Shared by `fuzz/fuzz_targets/chan_ops.rs` and `tests/fuzz_replay.rs`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};

use arbitrary::{Arbitrary, Unstructured};
use omni::chan::{self, RecvError, Select, SendError, TryRecvError, TrySendError};

/// Counts made and dropped values, and the drops of each value by id.
#[derive(Debug, Default)]
pub(crate) struct Life {
    made: AtomicU64,
    dropped: AtomicU64,
    drops: Mutex<HashMap<u64, u32>>,
}

impl Life {
    fn drops_of(&self, id: u64) -> u32 {
        self.drops.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
}

/// A value: its id, its producer and its sequence number there, and a drop counter.
#[derive(Debug)]
pub(crate) struct Item {
    id: u64,
    producer: usize,
    seq: u64,
    life: Arc<Life>,
}

impl Item {
    fn new(id: u64, producer: usize, seq: u64, life: &Arc<Life>) -> Item {
        life.made.fetch_add(1, SeqCst);
        Item { id, producer, seq, life: life.clone() }
    }
}

impl Clone for Item {
    fn clone(&self) -> Item {
        Item::new(self.id, self.producer, self.seq, &self.life)
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        self.life.dropped.fetch_add(1, SeqCst);
        *self.life.drops.lock().unwrap().entry(self.id).or_insert(0) += 1;
    }
}

/// A waker that counts its wakes.
#[derive(Debug, Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>, count: &Arc<Count>) -> Poll<F::Output> {
    let waker = Waker::from(count.clone());
    fut.poll(&mut Context::from_waker(&waker))
}

/// Which multi-producer multi-consumer channel.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// Capacity 1 to 4.
    Bounded(u8),
    Unbounded,
    Rendezvous,
}

/// One step of a multi-producer multi-consumer script; `u8` operands pick modulo the count.
#[derive(Arbitrary, Debug)]
pub(crate) enum Op {
    TrySend(u8),
    Send(u8),
    TryRecv(u8),
    Recv(u8),
    /// Polls a pending future again.
    Poll(u8),
    /// Drops a pending future (after however many polls it had).
    Cancel(u8),
    CloseTx(u8),
    CloseRx(u8),
    CloneTx(u8),
    CloneRx(u8),
    DropTx(u8),
    DropRx(u8),
    /// A biased select: recv on one receiver, send on one sender, maybe a default.
    SelectRecvSend(u8, u8, bool),
    /// A biased select over two receivers (possibly the same one), maybe a default.
    SelectRecvRecv(u8, u8, bool),
}

/// What a pending future finishes with.
enum Out {
    Send(u64, Result<(), SendError<Item>>),
    Recv(Result<Item, RecvError>),
    /// A select: which arm won (0 recv, 1 send or second recv, 2 default) and its result.
    Sel(Option<Result<Item, RecvError>>, Option<(u64, Result<(), SendError<Item>>)>),
}

type Fut = Pin<Box<dyn Future<Output = Out> + Send>>;

struct Pending {
    fut: Fut,
    count: Arc<Count>,
    /// Wakes seen at the last poll: more since means it was woken.
    wakes_at_poll: usize,
    /// Whether it is a plain receive / plain send (for the lost wake-up check).
    recv: bool,
    send: bool,
    /// The value of its send (or send arm), if any.
    send_id: Option<u64>,
    /// `last_seen` when it was last polled pending: a value it gets later was received
    /// (linearized) after that poll, so it is newer than those.
    seen_at_poll: HashMap<usize, u64>,
}

struct Mpmc {
    cap: usize,
    txs: Vec<Arc<chan::Sender<Item>>>,
    rxs: Vec<Arc<chan::Receiver<Item>>>,
    /// Every sender and receiver object made, to tell when the last one is gone.
    all_tx: Vec<(Weak<chan::Sender<Item>>, usize)>,
    all_rx: Vec<Weak<chan::Receiver<Item>>>,
    pending: Vec<Pending>,
    life: Arc<Life>,
    next_id: u64,
    /// Per producer, the next sequence number.
    seqs: Vec<u64>,
    /// Per producer, the last sequence number received.
    last_seen: HashMap<usize, u64>,
    /// Cancelled receives that may pass a value back (each allows one order inversion).
    passbacks: usize,
    /// Values whose send completed `Ok`.
    accepted: HashSet<u64>,
    /// Values received.
    received: HashSet<u64>,
    /// Whether the channel was closed (by a call or by the last handle of a side going).
    closed: bool,
    /// Whether the last receiver went (the buffer was dropped then).
    rx_gone: bool,
}

impl Mpmc {
    fn new(kind: Kind, life: &Arc<Life>) -> Mpmc {
        let (cap, (tx, rx)) = match kind {
            Kind::Bounded(c) => {
                let c = usize::from(c % 4) + 1;
                (c, chan::bounded(c))
            }
            Kind::Unbounded => (usize::MAX, chan::unbounded()),
            Kind::Rendezvous => (0, chan::rendezvous()),
        };
        let (tx, rx) = (Arc::new(tx), Arc::new(rx));
        assert_eq!(tx.capacity(), if cap == usize::MAX { None } else { Some(cap) });
        Mpmc {
            cap,
            all_tx: vec![(Arc::downgrade(&tx), 0)],
            all_rx: vec![Arc::downgrade(&rx)],
            txs: vec![tx],
            rxs: vec![rx],
            pending: Vec::new(),
            life: life.clone(),
            next_id: 0,
            seqs: vec![0],
            last_seen: HashMap::new(),
            passbacks: 0,
            accepted: HashSet::new(),
            received: HashSet::new(),
            closed: false,
            rx_gone: false,
        }
    }

    fn tx(&self, pick: u8) -> Option<(Arc<chan::Sender<Item>>, usize)> {
        if self.txs.is_empty() {
            return None;
        }
        let tx = self.txs[usize::from(pick) % self.txs.len()].clone();
        let producer = self.all_tx.iter().find(|(w, _)| w.as_ptr() == Arc::as_ptr(&tx))?.1;
        Some((tx, producer))
    }

    fn rx(&self, pick: u8) -> Option<Arc<chan::Receiver<Item>>> {
        if self.rxs.is_empty() {
            return None;
        }
        Some(self.rxs[usize::from(pick) % self.rxs.len()].clone())
    }

    fn item(&mut self, producer: usize) -> Item {
        let id = self.next_id;
        self.next_id += 1;
        let seq = self.seqs[producer];
        self.seqs[producer] += 1;
        Item::new(id, producer, seq, &self.life)
    }

    fn quiet(&self) -> bool {
        self.pending.is_empty()
    }

    /// Accepted values not yet received (with the buffer not dropped): the model's buffer.
    fn outstanding(&self) -> usize {
        if self.rx_gone {
            0
        } else {
            self.accepted.difference(&self.received).count()
        }
    }

    /// A received value. Order: it is newer than every value of its producer received before
    /// its receive began (`since`, for one that was pending) or before now.
    fn got(&mut self, v: Item, since: Option<&HashMap<usize, u64>>) {
        assert_eq!(self.life.drops_of(v.id), 0, "received value {} was already dropped", v.id);
        assert!(self.received.insert(v.id), "value {} received twice", v.id);
        let before = since.unwrap_or(&self.last_seen).get(&v.producer).copied();
        if let Some(last) = before {
            if v.seq < last {
                assert!(
                    self.passbacks > 0,
                    "producer {}: seq {} received after seq {last}",
                    v.producer,
                    v.seq
                );
                self.passbacks -= 1;
            }
        }
        let last = self.last_seen.entry(v.producer).or_insert(v.seq);
        *last = (*last).max(v.seq);
    }

    fn handed_back(&mut self, id: u64, v: Item) {
        assert_eq!(v.id, id, "a send handed back another value");
        assert_eq!(self.life.drops_of(id), 0, "handed back value {id} was already dropped");
        assert!(!self.received.contains(&id), "value {id} received and handed back");
    }

    /// A finished operation; `since` is `last_seen` at its last pending poll, if it was pending.
    fn finish(&mut self, out: Out, since: Option<&HashMap<usize, u64>>) {
        match out {
            Out::Send(id, Ok(())) => {
                self.accepted.insert(id);
            }
            Out::Send(id, Err(SendError(v))) => self.handed_back(id, v),
            Out::Recv(Ok(v)) => self.got(v, since),
            Out::Recv(Err(RecvError)) => {}
            Out::Sel(r, s) => {
                assert!(r.is_none() || s.is_none(), "a select completed two arms");
                if let Some(r) = r {
                    self.finish(Out::Recv(r), since);
                }
                if let Some((id, s)) = s {
                    self.finish(Out::Send(id, s), since);
                }
            }
        }
    }

    /// Polls a new future once; keeps it if pending.
    fn start(&mut self, mut fut: Fut, recv: bool, send: bool, send_id: Option<u64>) {
        let count = Arc::new(Count::default());
        match poll_once(fut.as_mut(), &count) {
            Poll::Ready(out) => self.finish(out, None),
            Poll::Pending => {
                let wakes_at_poll = count.0.load(SeqCst);
                let seen_at_poll = self.last_seen.clone();
                let p = Pending { fut, count, wakes_at_poll, recv, send, send_id, seen_at_poll };
                self.pending.push(p);
            }
        }
    }

    /// Drops a pending future. A send value that it did not drop was taken by the channel
    /// (the send was served before it saw so): it counts as accepted.
    fn cancel(&mut self, p: Pending) {
        if !p.send {
            self.passbacks += 1;
        }
        let id = p.send_id;
        drop(p);
        if let Some(id) = id {
            if self.life.drops_of(id) == 0 && !self.received.contains(&id) {
                self.accepted.insert(id);
            }
        }
    }

    fn update_closed(&mut self) {
        let senders = self.all_tx.iter().filter(|(w, _)| w.strong_count() > 0).count();
        let receivers = self.all_rx.iter().filter(|w| w.strong_count() > 0).count();
        if receivers == 0 {
            self.rx_gone = true;
        }
        if senders == 0 || receivers == 0 {
            self.closed = true;
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::TrySend(p) => {
                let Some((tx, producer)) = self.tx(p) else { return };
                let v = self.item(producer);
                let id = v.id;
                let (quiet, closed, out) = (self.quiet(), self.closed, self.outstanding());
                match tx.try_send(v) {
                    Ok(()) => {
                        assert!(!closed, "try_send succeeded on a closed channel");
                        if quiet {
                            assert!(out < self.cap, "try_send into a full buffer ({out})");
                        }
                        self.accepted.insert(id);
                    }
                    Err(TrySendError::Full(v)) => {
                        assert!(!closed, "Full from a closed channel");
                        if quiet {
                            assert!(out >= self.cap, "Full with {out} of {} buffered", self.cap);
                        }
                        self.handed_back(id, v);
                    }
                    Err(TrySendError::Closed(v)) => {
                        assert!(closed, "Closed from an open channel");
                        self.handed_back(id, v);
                    }
                }
            }
            Op::Send(p) => {
                let Some((tx, producer)) = self.tx(p) else { return };
                let v = self.item(producer);
                let id = v.id;
                let fut = Box::pin(async move { Out::Send(id, tx.send(v).await) });
                self.start(fut, false, true, Some(id));
            }
            Op::TryRecv(p) => {
                let Some(rx) = self.rx(p) else { return };
                let (quiet, closed, out) = (self.quiet(), self.closed, self.outstanding());
                match rx.try_recv() {
                    Ok(v) => self.got(v, None),
                    Err(TryRecvError::Empty) => {
                        if quiet {
                            assert_eq!(out, 0, "Empty with values buffered");
                            assert!(!closed, "Empty from a closed, drained channel");
                        }
                    }
                    Err(TryRecvError::Closed) => {
                        assert!(closed, "try_recv: Closed from an open channel");
                        if quiet {
                            assert_eq!(out, 0, "Closed with values buffered");
                        }
                    }
                }
            }
            Op::Recv(p) => {
                let Some(rx) = self.rx(p) else { return };
                self.start(Box::pin(async move { Out::Recv(rx.recv().await) }), true, false, None);
            }
            Op::Poll(i) if !self.pending.is_empty() => {
                let i = usize::from(i) % self.pending.len();
                let p = &mut self.pending[i];
                match poll_once(p.fut.as_mut(), &p.count) {
                    Poll::Ready(out) => {
                        let p = self.pending.swap_remove(i);
                        self.finish(out, Some(&p.seen_at_poll));
                    }
                    Poll::Pending => {
                        p.wakes_at_poll = p.count.0.load(SeqCst);
                        p.seen_at_poll = self.last_seen.clone();
                    }
                }
            }
            Op::Cancel(i) if !self.pending.is_empty() => {
                let p = self.pending.swap_remove(usize::from(i) % self.pending.len());
                self.cancel(p);
            }
            Op::Poll(_) | Op::Cancel(_) => {}
            Op::CloseTx(p) => {
                if let Some((tx, _)) = self.tx(p) {
                    assert_eq!(tx.close(), !self.closed, "close says whether it closed");
                    self.closed = true;
                }
            }
            Op::CloseRx(p) => {
                if let Some(rx) = self.rx(p) {
                    assert_eq!(rx.close(), !self.closed, "close says whether it closed");
                    self.closed = true;
                }
            }
            Op::CloneTx(p) => {
                if let Some((tx, _)) = self.tx(p) {
                    let tx = Arc::new((*tx).clone());
                    self.all_tx.push((Arc::downgrade(&tx), self.seqs.len()));
                    self.seqs.push(0);
                    self.txs.push(tx);
                }
            }
            Op::CloneRx(p) => {
                if let Some(rx) = self.rx(p) {
                    let rx = Arc::new((*rx).clone());
                    self.all_rx.push(Arc::downgrade(&rx));
                    self.rxs.push(rx);
                }
            }
            Op::DropTx(p) if !self.txs.is_empty() => {
                self.txs.swap_remove(usize::from(p) % self.txs.len());
            }
            Op::DropRx(p) if !self.rxs.is_empty() => {
                self.rxs.swap_remove(usize::from(p) % self.rxs.len());
            }
            Op::DropTx(_) | Op::DropRx(_) => {}
            Op::SelectRecvSend(r, s, default) => {
                let (Some(rx), Some((tx, producer))) = (self.rx(r), self.tx(s)) else { return };
                let v = self.item(producer);
                let id = v.id;
                self.start(
                    Box::pin(async move {
                        let mut sel = Select::new()
                            .biased()
                            .recv(&rx, |r| Out::Sel(Some(r), None))
                            .send(&tx, v, move |s| Out::Sel(None, Some((id, s))));
                        if default {
                            sel = sel.default(|| Out::Sel(None, None));
                        }
                        sel.await
                    }),
                    false,
                    false,
                    Some(id),
                );
            }
            Op::SelectRecvRecv(a, b, default) => {
                let (Some(ra), Some(rb)) = (self.rx(a), self.rx(b)) else { return };
                self.start(
                    Box::pin(async move {
                        let mut sel = Select::new()
                            .biased()
                            .recv(&ra, |r| Out::Sel(Some(r), None))
                            .recv(&rb, |r| Out::Sel(Some(r), None));
                        if default {
                            sel = sel.default(|| Out::Sel(None, None));
                        }
                        sel.await
                    }),
                    false,
                    false,
                    None,
                );
            }
        }
        self.update_closed();
        self.check_wakeups();
    }

    /// A parked, unwoken plain receive beside buffered values, or send beside room, has lost
    /// its wake-up.
    fn check_wakeups(&self) {
        let Some(h) =
            self.rxs.first().map(|r| r.len()).or_else(|| self.txs.first().map(|t| t.len()))
        else {
            return;
        };
        for p in &self.pending {
            let unwoken = p.count.0.load(SeqCst) == p.wakes_at_poll;
            if unwoken && p.recv {
                assert!(h == 0, "a receive sleeps while {h} values are buffered");
            }
            if unwoken && p.send && !self.closed {
                assert!(h >= self.cap, "a send sleeps while the buffer has room ({h})");
            }
            if unwoken && p.send && self.closed {
                panic!("a send sleeps on a closed channel");
            }
        }
    }

    /// Cancels what is pending, drains with a receiver if one is left, and checks that every
    /// accepted value came out.
    fn end(mut self) {
        for p in std::mem::take(&mut self.pending) {
            self.cancel(p);
        }
        self.update_closed();
        if let Some(rx) = self.rxs.first().cloned() {
            self.txs.clear();
            self.update_closed();
            loop {
                match rx.try_recv() {
                    Ok(v) => self.got(v, None),
                    Err(TryRecvError::Closed) => break,
                    Err(TryRecvError::Empty) => panic!("Empty after every sender went"),
                }
            }
            let lost: Vec<_> = self.accepted.difference(&self.received).collect();
            assert!(lost.is_empty(), "accepted values never received: {lost:?}");
        }
    }
}

/// One step of a oneshot script.
#[derive(Arbitrary, Debug)]
pub(crate) enum OneOp {
    Send,
    TryRecv,
    Poll,
    Close,
    DropTx,
    DropRx,
    PollClosed,
}

fn oneshot(ops: Vec<OneOp>, life: &Arc<Life>) {
    let (tx, rx) = chan::oneshot::<Item>();
    let (mut tx, mut rx) = (Some(tx), Some(rx));
    let count = Arc::new(Count::default());
    // The model: sent value id (until taken), whether the receiver side is closed, and
    // whether the receive finished.
    let mut sent: Option<u64> = None;
    let mut rx_closed = false;
    let mut done = false;
    let mut next = 0;
    for op in ops {
        match op {
            OneOp::Send => {
                if let Some(tx) = tx.take() {
                    let v = Item::new(next, 0, next, life);
                    next += 1;
                    match tx.send(v) {
                        Ok(()) => {
                            assert!(!rx_closed, "oneshot send to a closed receiver succeeded");
                            sent = Some(next - 1);
                        }
                        Err(v) => {
                            assert!(rx_closed, "oneshot send to an open receiver failed");
                            assert_eq!(v.id, next - 1);
                        }
                    }
                }
            }
            OneOp::TryRecv | OneOp::Poll if rx.is_some() && !done => {
                let r = rx.as_mut().unwrap();
                let got = if matches!(op, OneOp::Poll) {
                    match poll_once(Pin::new(&mut *r), &count) {
                        Poll::Ready(r) => Some(r.map_err(|_| ())),
                        Poll::Pending => None,
                    }
                } else {
                    match r.try_recv() {
                        Ok(v) => Some(Ok(v)),
                        Err(chan::TryRecvError::Empty) => None,
                        Err(chan::TryRecvError::Closed) => Some(Err(())),
                    }
                };
                match got {
                    Some(Ok(v)) => {
                        assert_eq!(Some(v.id), sent.take(), "oneshot received what was not sent");
                        done = true;
                    }
                    Some(Err(())) => {
                        let gone = tx.is_none() || rx_closed;
                        assert!(sent.is_none() && gone, "oneshot closed early");
                        done = true;
                    }
                    None => {
                        assert!(sent.is_none(), "oneshot value sent but not received");
                        assert!(tx.is_some() && !rx_closed, "oneshot empty with no sender");
                    }
                }
            }
            OneOp::TryRecv | OneOp::Poll => {}
            OneOp::Close => {
                if let Some(r) = rx.as_mut() {
                    r.close();
                    rx_closed = true;
                }
            }
            OneOp::DropTx => {
                tx = None;
            }
            OneOp::DropRx => {
                if rx.take().is_some() {
                    rx_closed = true;
                    if let Some(id) = sent.take() {
                        assert_eq!(life.drops_of(id), 1, "an unreceived oneshot value is dropped");
                    }
                }
            }
            OneOp::PollClosed => {
                if let Some(t) = tx.as_mut() {
                    let w = Waker::from(count.clone());
                    let r = t.poll_closed(&mut Context::from_waker(&w));
                    assert_eq!(r.is_ready(), rx_closed, "poll_closed disagrees");
                    assert_eq!(t.is_closed(), rx_closed, "is_closed disagrees");
                }
            }
        }
    }
}

/// One step of a broadcast script.
#[derive(Arbitrary, Debug)]
pub(crate) enum CastOp {
    Send(u8),
    Subscribe(u8),
    CloneRx(u8),
    TryRecv(u8),
    /// Starts (or polls again) the receive future of a receiver.
    Recv(u8),
    /// Drops a receiver (cancelling its receive future if it has one).
    DropRx(u8),
    CloneTx(u8),
    DropTx(u8),
}

type CastFut = Pin<Box<dyn Future<Output = (chan::broadcast::Receiver<Item>, CastOut)> + Send>>;
type CastOut = Result<Item, chan::broadcast::RecvError>;

enum CastRx {
    Idle(chan::broadcast::Receiver<Item>),
    /// A receive future, its waker's count, and the count at its last poll.
    Waiting(CastFut, Arc<Count>, usize),
}

fn broadcast(cap: u8, ops: Vec<CastOp>, life: &Arc<Life>) {
    use chan::broadcast::{RecvError as BRecv, TryRecvError as BTry};
    let cap = u64::from(cap % 8) + 1;
    let (tx, rx) = chan::broadcast::<Item>(cap as usize);
    let mut txs = vec![tx];
    // Each receiver with its model position.
    let mut rxs: Vec<(Option<CastRx>, u64)> = vec![(Some(CastRx::Idle(rx)), 0)];
    let mut tail = 0u64;
    // What a receiver at `next` gets now, per the model.
    let want = |next: &mut u64, tail: u64, senders: usize| -> Option<Result<u64, BTry>> {
        let oldest = tail.saturating_sub(cap);
        if *next < oldest {
            let n = oldest - *next;
            *next = oldest;
            Some(Err(BTry::Lagged(n)))
        } else if *next < tail {
            *next += 1;
            Some(Ok(*next - 1))
        } else if senders == 0 {
            Some(Err(BTry::Closed))
        } else {
            None
        }
    };
    for op in ops {
        let senders = txs.len();
        match op {
            CastOp::Send(p) if !txs.is_empty() => {
                let v = Item::new(tail, 0, tail, life);
                match txs[usize::from(p) % txs.len()].send(v) {
                    Ok(n) => {
                        assert_eq!(n, rxs.len(), "broadcast send counts the receivers");
                        tail += 1;
                    }
                    Err(SendError(v)) => {
                        assert!(rxs.is_empty(), "broadcast send failed with receivers");
                        assert_eq!(v.id, tail);
                    }
                }
            }
            CastOp::Subscribe(p) if !txs.is_empty() => {
                let rx = txs[usize::from(p) % txs.len()].subscribe();
                rxs.push((Some(CastRx::Idle(rx)), tail));
            }
            CastOp::CloneRx(p) if !rxs.is_empty() => {
                let i = usize::from(p) % rxs.len();
                if let (Some(CastRx::Idle(rx)), next) = &rxs[i] {
                    let (rx, next) = (rx.clone(), *next);
                    rxs.push((Some(CastRx::Idle(rx)), next));
                }
            }
            CastOp::TryRecv(p) if !rxs.is_empty() => {
                let i = usize::from(p) % rxs.len();
                if let (Some(CastRx::Idle(rx)), next) = &mut rxs[i] {
                    let got = rx.try_recv();
                    let w = want(next, tail, senders);
                    match (got, w) {
                        (Ok(v), Some(Ok(pos))) => assert_eq!(v.id, pos, "broadcast order"),
                        (Err(BTry::Empty), None) => {}
                        (Err(e), Some(Err(m))) => assert_eq!(e, m),
                        (got, w) => panic!("broadcast try_recv: got {got:?}, model {w:?}"),
                    }
                }
            }
            CastOp::Recv(p) if !rxs.is_empty() => {
                let i = usize::from(p) % rxs.len();
                let (slot, next) = &mut rxs[i];
                let (mut fut, count) = match slot.take().expect("a receiver") {
                    CastRx::Idle(mut rx) => {
                        let fut: CastFut = Box::pin(async move {
                            let r = rx.recv().await;
                            (rx, r)
                        });
                        (fut, Arc::new(Count::default()))
                    }
                    CastRx::Waiting(fut, count, _) => (fut, count),
                };
                match poll_once(fut.as_mut(), &count) {
                    Poll::Ready((rx, got)) => {
                        *slot = Some(CastRx::Idle(rx));
                        let w = want(next, tail, senders);
                        match (got, w) {
                            (Ok(v), Some(Ok(pos))) => assert_eq!(v.id, pos, "broadcast order"),
                            (Err(BRecv::Closed), Some(Err(BTry::Closed))) => {}
                            (Err(BRecv::Lagged(n)), Some(Err(BTry::Lagged(m)))) => {
                                assert_eq!(n, m)
                            }
                            (got, w) => panic!("broadcast recv: got {got:?}, model {w:?}"),
                        }
                    }
                    Poll::Pending => {
                        let mut n = *next;
                        assert!(want(&mut n, tail, senders).is_none(), "broadcast recv waits");
                        let seen = count.0.load(SeqCst);
                        *slot = Some(CastRx::Waiting(fut, count, seen));
                    }
                }
            }
            CastOp::DropRx(p) if !rxs.is_empty() => {
                rxs.swap_remove(usize::from(p) % rxs.len());
            }
            CastOp::CloneTx(p) if !txs.is_empty() => {
                let tx = txs[usize::from(p) % txs.len()].clone();
                txs.push(tx);
            }
            CastOp::DropTx(p) if !txs.is_empty() => {
                txs.swap_remove(usize::from(p) % txs.len());
            }
            _ => {}
        }
        // A waiting receive with something to get must have been woken.
        for (slot, next) in &rxs {
            if let Some(CastRx::Waiting(_, count, seen)) = slot {
                let mut n = *next;
                if want(&mut n, tail, txs.len()).is_some() {
                    let woken = count.0.load(SeqCst) > *seen;
                    assert!(woken, "a broadcast receive sleeps beside a value");
                }
            }
        }
    }
}

/// A whole script: which channel, and its steps.
#[derive(Arbitrary, Debug)]
pub(crate) enum Script {
    Mpmc(Kind, Vec<Op>),
    Oneshot(Vec<OneOp>),
    Broadcast(u8, Vec<CastOp>),
}

/// Runs one script and checks that every value made was dropped exactly once.
pub(crate) fn run(script: Script) {
    let life = Arc::new(Life::default());
    let per_value = !matches!(script, Script::Broadcast(..));
    match script {
        Script::Mpmc(kind, ops) => {
            let mut m = Mpmc::new(kind, &life);
            for op in ops {
                m.apply(op);
            }
            m.end();
        }
        Script::Oneshot(ops) => oneshot(ops, &life),
        Script::Broadcast(cap, ops) => broadcast(cap, ops, &life),
    }
    assert_eq!(life.made.load(SeqCst), life.dropped.load(SeqCst), "values made vs dropped");
    // Broadcast clones share their original's id: they are counted by the totals above.
    if per_value {
        let drops = life.drops.lock().unwrap();
        assert_eq!(drops.len() as u64, life.made.load(SeqCst), "values never dropped");
        if let Some((id, n)) = drops.iter().find(|(_, &n)| n != 1) {
            panic!("value {id} dropped {n} times");
        }
    }
}

/// Decodes a script from fuzzer bytes and runs it.
pub(crate) fn fuzz(data: &[u8]) {
    if let Ok(script) = Script::arbitrary_take_rest(Unstructured::new(data)) {
        run(script);
    }
}

/// The script that `data` decodes to, for reading a crash reproducer.
pub(crate) fn describe(data: &[u8]) -> String {
    format!("{:#?}", Script::arbitrary_take_rest(Unstructured::new(data)))
}
