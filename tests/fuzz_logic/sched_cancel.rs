//! `sched_cancel`: a fuzzed schedule of spawn / run / wake / abort / join / drop over up to 8
//! tasks on a paused current-thread runtime, the tasks waiting on channels, sleeps and gates.
//!
//! Each task's future is wrapped in `Tracked`, which logs its polls, its completion and its
//! drop; its output logs its own drop. Checks:
//! - no poll after completion, and no poll after `abort` of a task that had not completed;
//! - waking a finished task's old waker (its slot may hold a new task by then) is harmless:
//!   the finished future is not polled again;
//! - a join handle yields `Ok` only for a completed task, and a cancelled error only for an
//!   aborted one;
//! - drops balanced: once the runtime is gone, every spawned future was dropped exactly once,
//!   and every output made was dropped exactly once.
//!
//! Shared by `fuzz/fuzz_targets/sched_cancel.rs` and `tests/fuzz_replay.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use arbitrary::{Arbitrary, Unstructured};
use omni::chan;
use omni::time::{advance, sleep, Duration};

/// Task slots.
const SLOTS: usize = 8;

/// What a task waits for, in turn.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum Step {
    /// A value on its channel.
    Recv,
    /// A sleep of this many ms (mod 64).
    Sleep(u8),
    /// Its gate to be opened by `Wake`.
    Gate,
    Yield,
}

/// One step of the schedule; `u8` operands pick a slot modulo 8.
#[derive(Arbitrary, Debug)]
pub(crate) enum Op {
    /// Spawns a task in a slot (the slot's previous handle, if any, is dropped).
    Spawn(u8, Vec<Step>),
    /// `try_send` on the task's channel.
    Send(u8),
    /// Opens the task's gate and wakes the waker it left there.
    Wake(u8),
    /// Wakes every waker that earlier tasks of this slot left behind.
    WakeStale(u8),
    Abort(u8),
    DropHandle(u8),
    /// Polls the join handle once by hand.
    Join(u8),
    /// Lets the runtime run ready tasks this many times (mod 8, at least once).
    Run(u8),
    /// Advances the paused clock by this many ms (mod 128).
    Advance(u8),
}

/// What one task did, shared between it and the schedule.
#[derive(Default)]
struct Log {
    polls: AtomicU32,
    completed: AtomicBool,
    aborted_pending: AtomicBool,
    future_drops: AtomicU32,
    gate_open: AtomicBool,
    gate_waker: Mutex<Option<Waker>>,
    violation: Mutex<Option<String>>,
}

impl Log {
    fn violate(&self, what: String) {
        self.violation.lock().unwrap().get_or_insert(what);
    }
}

/// Counts outputs made and dropped across the run.
#[derive(Default)]
struct Outputs {
    made: AtomicU32,
    dropped: AtomicU32,
}

struct Output(Arc<Outputs>);

impl Drop for Output {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, SeqCst);
    }
}

/// A task's future with its log.
struct Tracked<F> {
    inner: Pin<Box<F>>,
    log: Arc<Log>,
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let log = self.log.clone();
        log.polls.fetch_add(1, SeqCst);
        if log.completed.load(SeqCst) {
            log.violate("a task was polled after it completed".into());
        }
        if log.aborted_pending.load(SeqCst) {
            log.violate("a task was polled after it was aborted".into());
        }
        let r = self.inner.as_mut().poll(cx);
        if r.is_ready() {
            log.completed.store(true, SeqCst);
        }
        r
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        self.log.future_drops.fetch_add(1, SeqCst);
    }
}

/// Waits for the task's gate, leaving its waker there.
struct Gate(Arc<Log>);

impl Future for Gate {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.gate_open.swap(false, SeqCst) {
            return Poll::Ready(());
        }
        *self.0.gate_waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

#[derive(Default)]
struct Slot {
    handle: Option<omni::JoinHandle<Output>>,
    tx: Option<chan::Sender<u32>>,
    log: Option<Arc<Log>>,
    /// Wakers left behind by the earlier tasks of this slot.
    stale: Vec<Waker>,
}

/// Runs one schedule on a fresh paused current-thread runtime.
pub(crate) fn run(ops: Vec<Op>) {
    let outputs = Arc::new(Outputs::default());
    let logs: Arc<Mutex<Vec<Arc<Log>>>> = Arc::default();
    let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
    let (o, l) = (outputs.clone(), logs.clone());
    rt.block_on(async move {
        let mut slots: Vec<Slot> = (0..SLOTS).map(|_| Slot::default()).collect();
        for op in ops {
            apply(&mut slots, op, &o, &l).await;
            for log in l.lock().unwrap().iter() {
                if let Some(v) = log.violation.lock().unwrap().as_ref() {
                    panic!("{v}");
                }
            }
        }
        // Keep some handles and senders alive into the runtime's drop.
        drop(slots);
    });
    drop(rt);
    for (i, log) in logs.lock().unwrap().iter().enumerate() {
        if let Some(v) = log.violation.lock().unwrap().as_ref() {
            panic!("task {i}: {v}");
        }
        let drops = log.future_drops.load(SeqCst);
        assert_eq!(drops, 1, "task {i}: its future was dropped {drops} times");
    }
    let (made, dropped) = (outputs.made.load(SeqCst), outputs.dropped.load(SeqCst));
    assert_eq!(made, dropped, "outputs made vs dropped");
}

async fn apply(slots: &mut [Slot], op: Op, outputs: &Arc<Outputs>, logs: &Mutex<Vec<Arc<Log>>>) {
    let slot = |k: u8| usize::from(k) % SLOTS;
    match op {
        Op::Spawn(k, steps) => {
            let s = &mut slots[slot(k)];
            if let Some(old) = s.log.take() {
                if let Some(w) = old.gate_waker.lock().unwrap().take() {
                    s.stale.push(w);
                }
            }
            let log = Arc::new(Log::default());
            logs.lock().unwrap().push(log.clone());
            let (tx, rx) = chan::bounded::<u32>(1);
            let out = outputs.clone();
            let gate = log.clone();
            let body = async move {
                for step in steps.into_iter().take(16) {
                    match step {
                        Step::Recv => {
                            let _ = rx.recv().await;
                        }
                        Step::Sleep(ms) => sleep(Duration::from_millis(u64::from(ms % 64))).await,
                        Step::Gate => Gate(gate.clone()).await,
                        Step::Yield => omni::yield_now().await,
                    }
                }
                out.made.fetch_add(1, SeqCst);
                Output(out)
            };
            let tracked = Tracked { inner: Box::pin(body), log: log.clone() };
            s.handle = Some(omni::spawn(tracked));
            s.tx = Some(tx);
            s.log = Some(log);
        }
        Op::Send(k) => {
            if let Some(tx) = &slots[slot(k)].tx {
                let _ = tx.try_send(7);
            }
        }
        Op::Wake(k) => {
            if let Some(log) = &slots[slot(k)].log {
                log.gate_open.store(true, SeqCst);
                let w = log.gate_waker.lock().unwrap().clone();
                if let Some(w) = w {
                    w.wake();
                }
            }
        }
        Op::WakeStale(k) => {
            for w in &slots[slot(k)].stale {
                w.wake_by_ref();
            }
        }
        Op::Abort(k) => {
            let s = &slots[slot(k)];
            if let (Some(h), Some(log)) = (&s.handle, &s.log) {
                if !log.completed.load(SeqCst) {
                    log.aborted_pending.store(true, SeqCst);
                }
                h.abort();
            }
        }
        Op::DropHandle(k) => {
            slots[slot(k)].handle = None;
        }
        Op::Join(k) => {
            let s = &mut slots[slot(k)];
            if let (Some(h), Some(log)) = (&mut s.handle, &s.log) {
                let waker = Waker::from(Arc::new(Noop));
                if let Poll::Ready(r) = Pin::new(&mut *h).poll(&mut Context::from_waker(&waker)) {
                    let completed = log.completed.load(SeqCst);
                    match r {
                        Ok(out) => {
                            assert!(completed, "Ok from a task that never completed");
                            drop(out);
                        }
                        Err(e) => {
                            assert!(e.is_cancelled(), "a task panicked: {e}");
                            assert!(!completed, "cancelled, but the task had completed");
                            assert!(log.aborted_pending.load(SeqCst), "cancelled without an abort");
                        }
                    }
                    s.handle = None;
                }
            }
        }
        Op::Run(n) => {
            for _ in 0..=(n % 8) {
                omni::yield_now().await;
            }
        }
        Op::Advance(ms) => advance(Duration::from_millis(u64::from(ms % 128))).await,
    }
}

/// Decodes a schedule from fuzzer bytes and runs it.
pub(crate) fn fuzz(data: &[u8]) {
    if let Ok(ops) = Vec::<Op>::arbitrary_take_rest(Unstructured::new(data)) {
        run(ops);
    }
}

/// The schedule that `data` decodes to, for reading a crash reproducer.
pub(crate) fn describe(data: &[u8]) -> String {
    format!("{:#?}", Vec::<Op>::arbitrary_take_rest(Unstructured::new(data)))
}
