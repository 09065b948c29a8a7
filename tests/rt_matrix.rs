//! The task lifecycle matrix: every combination of runtime kind, spawn function, task outcome,
//! output destructor, join interest, the point at which the join handle is dropped and the
//! point at which the task is aborted, each on a fresh runtime that is dropped at the end.
//!
//! Each combination asserts that the process survives (a double panic or an unwind out of the
//! scheduler would abort it), that the future and its output (when one was made) are each
//! dropped exactly once, counted by their destructors after the runtime is gone, and that a
//! handle that is awaited yields exactly what the combination calls for: `Ok`, cancelled, or
//! the panic payload of the poll or of the future's destructor.
//!
//! "While pending" is reached without the wall clock: the task parks on a gate (a flag with a
//! waker, a one-bit channel) after telling the driver, through another flag, that it was
//! polled; the driver opens the gate when the timeline says so. Run under AddressSanitizer by
//! `.ci/run`.

use omni::{Builder, JoinError, JoinHandle};
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

const POLL_PANIC: &str = "matrix: panic in poll";
const DROP_PANIC: &str = "matrix: panic in the future's drop";
const OUTPUT_PANIC: &str = "matrix: panic in the output's drop";
const VALUE: u64 = 0x5eed;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Current,
    Multi(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum SpawnFn {
    Spawn,
    SpawnLocal,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Ok,
    PanicInPoll,
    PanicInDrop,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Interest {
    /// Polled at every step while the task is not finished (its waker is the join waker), and
    /// awaited to the end if the handle is never dropped.
    Awaited,
    /// Never polled; a handle that is never dropped is forgotten.
    NotAwaited,
}

/// A point in the task's life, in timeline order.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
enum Point {
    BeforeFirstPoll,
    WhilePending,
    AfterCompletion,
    Never,
}

const POINTS: [Point; 4] =
    [Point::BeforeFirstPoll, Point::WhilePending, Point::AfterCompletion, Point::Never];

#[derive(Clone, Copy, Debug)]
struct Combo {
    kind: Kind,
    spawn: SpawnFn,
    outcome: Outcome,
    output_panics: bool,
    interest: Interest,
    drop_at: Point,
    abort_at: Point,
}

impl Combo {
    /// Every combination that can happen: a task is aborted through its handle, so never after
    /// the handle was dropped.
    fn all() -> Vec<Combo> {
        let mut v = Vec::new();
        for kind in [Kind::Current, Kind::Multi(1), Kind::Multi(2)] {
            for spawn in [SpawnFn::Spawn, SpawnFn::SpawnLocal] {
                for outcome in [Outcome::Ok, Outcome::PanicInPoll, Outcome::PanicInDrop] {
                    for output_panics in [false, true] {
                        for interest in [Interest::Awaited, Interest::NotAwaited] {
                            for drop_at in POINTS {
                                for abort_at in POINTS {
                                    if abort_at != Point::Never && abort_at > drop_at {
                                        continue;
                                    }
                                    v.push(Combo {
                                        kind,
                                        spawn,
                                        outcome,
                                        output_panics,
                                        interest,
                                        drop_at,
                                        abort_at,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
        v
    }

    /// Aborted before the task could finish (at the latest while it waits at its gate).
    fn aborted_early(&self) -> bool {
        matches!(self.abort_at, Point::BeforeFirstPoll | Point::WhilePending)
    }

    /// Whether the task makes an output (it is dropped with the future if the future's
    /// destructor then panics, else handed to the join handle).
    fn makes_output(&self) -> bool {
        !self.aborted_early() && self.outcome != Outcome::PanicInPoll
    }

    fn expected(&self) -> Expect {
        match (self.aborted_early(), self.outcome) {
            (_, Outcome::PanicInDrop) => Expect::Panic(DROP_PANIC),
            (true, _) => Expect::Cancelled,
            (false, Outcome::Ok) => Expect::Ok,
            (false, Outcome::PanicInPoll) => Expect::Panic(POLL_PANIC),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Expect {
    Ok,
    Cancelled,
    Panic(&'static str),
}

/// A one-bit channel: set once, awaited by one task at a time.
#[derive(Default)]
struct Flag {
    set: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Flag {
    fn set(&self) {
        self.set.store(true, SeqCst);
        let w = self.waker.lock().unwrap().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    fn is_set(&self) -> bool {
        self.set.load(SeqCst)
    }

    fn poll_set(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_set() {
            return Poll::Ready(());
        }
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.is_set() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    async fn wait(&self) {
        poll_fn(|cx| self.poll_set(cx)).await
    }
}

/// What one combination's task reports.
#[derive(Default)]
struct Probe {
    polls: AtomicUsize,
    future_drops: AtomicUsize,
    outputs_made: AtomicUsize,
    output_drops: AtomicUsize,
    first_poll: Flag,
    gate: Flag,
    dropped: Flag,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

/// The task: parks at the gate on its first poll, then ends as its outcome says.
struct Task {
    probe: Arc<Probe>,
    outcome: Outcome,
    output_panics: bool,
}

impl Future for Task {
    type Output = Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Output> {
        let this = self.get_mut();
        let first = this.probe.polls.fetch_add(1, SeqCst) == 0;
        if this.probe.gate.poll_set(cx).is_pending() {
            // Told only once the gate was seen shut: this poll can no longer finish the task.
            if first {
                this.probe.first_poll.set();
            }
            return Poll::Pending;
        }
        if this.outcome == Outcome::PanicInPoll {
            panic!("matrix: panic in poll");
        }
        this.probe.outputs_made.fetch_add(1, SeqCst);
        Poll::Ready(Output { probe: this.probe.clone(), panics: this.output_panics, value: VALUE })
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.probe.future_drops.fetch_add(1, SeqCst);
        self.probe.dropped.set();
        if self.outcome == Outcome::PanicInDrop && !std::thread::panicking() {
            panic!("matrix: panic in the future's drop");
        }
    }
}

#[derive(Debug)]
struct Output {
    probe: Arc<Probe>,
    panics: bool,
    value: u64,
}

impl Drop for Output {
    fn drop(&mut self) {
        self.probe.output_drops.fetch_add(1, SeqCst);
        if self.panics && !std::thread::panicking() {
            panic!("matrix: panic in the output's drop");
        }
    }
}

/// The driver's view of the join handle.
struct Join {
    handle: Option<JoinHandle<Output>>,
    result: Option<Result<Output, JoinError>>,
}

impl Join {
    /// Polls the handle once with the driver's waker, keeping a result if it is ready.
    async fn poll_once(&mut self) {
        let Some(h) = self.handle.as_mut().filter(|_| self.result.is_none()) else { return };
        let res = poll_fn(|cx| Poll::Ready(Pin::new(&mut *h).poll(cx))).await;
        if let Poll::Ready(r) = res {
            self.result = Some(r);
        }
    }
}

/// Runs one step of the timeline: the abort, the join poll and the handle drop due at `at`.
async fn step(c: &Combo, at: Point, join: &mut Join) {
    if c.abort_at == at {
        join.handle.as_ref().expect("aborted through a live handle").abort();
    }
    if c.interest == Interest::Awaited && at < Point::AfterCompletion && at <= c.drop_at {
        join.poll_once().await;
    }
    if c.drop_at == at {
        drop(join.handle.take());
    }
}

/// Whether a step found the task not yet polled (the before-first-poll steps ran as named).
static TRULY_BEFORE_FIRST_POLL: AtomicUsize = AtomicUsize::new(0);

/// The timeline of one combination, run on the runtime (a task on a multi-thread runtime, so
/// that `spawn_local` is allowed). Returns what an awaited handle yielded.
async fn drive(c: Combo, probe: Arc<Probe>) -> Option<Result<Output, JoinError>> {
    let task = Task { probe: probe.clone(), outcome: c.outcome, output_panics: c.output_panics };
    let handle = match c.spawn {
        SpawnFn::Spawn => omni::spawn(task),
        SpawnFn::SpawnLocal => omni::spawn_local(task),
    };
    let mut join = Join { handle: Some(handle), result: None };

    if probe.polls.load(SeqCst) == 0 {
        TRULY_BEFORE_FIRST_POLL.fetch_add(1, SeqCst);
    }
    step(&c, Point::BeforeFirstPoll, &mut join).await;

    if c.abort_at != Point::BeforeFirstPoll {
        probe.first_poll.wait().await;
    }
    step(&c, Point::WhilePending, &mut join).await;

    // An abort that reaches a task while it is being polled lets that poll finish (the
    // documented contract): open the gate only once the abort has dropped the future, or the
    // task could still complete in a poll that was running when the abort came.
    if c.aborted_early() {
        probe.dropped.wait().await;
    }
    probe.gate.set();
    // The future is dropped before the task completes; a live handle tells when it has.
    probe.dropped.wait().await;
    if let Some(h) = &join.handle {
        let mut spins = 0u32;
        while !h.is_finished() {
            spins += 1;
            assert!(spins < 1_000_000, "{c:?}: the task never finished");
            omni::yield_now().await;
        }
    }
    step(&c, Point::AfterCompletion, &mut join).await;

    if let Some(h) = join.handle.take() {
        match c.interest {
            Interest::Awaited if join.result.is_none() => join.result = Some(h.await),
            Interest::Awaited => {}
            Interest::NotAwaited => std::mem::forget(h),
        }
    }
    join.result
}

/// Checks what an awaited handle yielded, and drops the output (its destructor may panic).
fn check_result(c: &Combo, res: Result<Output, JoinError>) {
    match (c.expected(), res) {
        (Expect::Ok, Ok(out)) => {
            assert_eq!(out.value, VALUE, "{c:?}");
            match catch_unwind(AssertUnwindSafe(move || drop(out))) {
                Ok(()) => assert!(!c.output_panics, "{c:?}: the output's destructor ran?"),
                Err(p) => assert_eq!(p.downcast_ref::<&str>(), Some(&OUTPUT_PANIC), "{c:?}"),
            }
        }
        (Expect::Cancelled, Err(e)) if e.is_cancelled() => {}
        (Expect::Panic(msg), Err(e)) if e.is_panic() => {
            let payload = e.into_panic();
            let got = payload.downcast_ref::<&str>().copied().unwrap_or("<not a &str>");
            assert_eq!(got, msg, "{c:?}: the panic payload");
        }
        (want, got) => panic!("{c:?}: expected {want:?}, the handle gave {got:?}"),
    }
}

fn run(c: Combo) {
    let rt = match c.kind {
        Kind::Current => Builder::new_current_thread().build(),
        Kind::Multi(n) => Builder::new_multi_thread().workers(n).build(),
    }
    .unwrap();
    let probe = Arc::new(Probe::default());
    let result = match c.kind {
        Kind::Current => rt.block_on(drive(c, probe.clone())),
        Kind::Multi(_) => rt
            .block_on(rt.spawn(drive(c, probe.clone())))
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
    };
    if let Some(res) = result {
        check_result(&c, res);
    } else {
        assert!(
            c.interest == Interest::NotAwaited || c.drop_at != Point::Never,
            "{c:?}: a handle awaited to the end gave nothing"
        );
    }
    drop(rt);

    let made = usize::from(c.makes_output());
    assert_eq!(probe.future_drops.load(SeqCst), 1, "{c:?}: future drops");
    assert_eq!(probe.outputs_made.load(SeqCst), made, "{c:?}: outputs made");
    assert_eq!(probe.output_drops.load(SeqCst), made, "{c:?}: output drops");
    if c.aborted_early() {
        assert!(probe.polls.load(SeqCst) <= 1, "{c:?}: polled after its abort");
    }
}

/// Silences the panics the matrix raises on purpose; any other panic prints as usual.
fn quiet_expected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
        if !msg.starts_with("matrix: ") {
            default(info);
        }
    }));
}

/// A hang (a task never finished, a waker lost) names its combination and fails the run
/// instead of stalling CI.
fn watchdog(current: Arc<Mutex<(usize, Option<Combo>)>>) {
    std::thread::spawn(move || {
        let mut last = (usize::MAX, Instant::now());
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let (n, c) = *current.lock().unwrap();
            if n != last.0 {
                last = (n, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(120) {
                eprintln!("rt_matrix: combination {n} ({c:?}) made no progress for 120 s");
                std::process::exit(1);
            }
        }
    });
}

#[test]
fn every_task_lifecycle_drops_once_and_reports_what_happened() {
    quiet_expected_panics();
    let combos = Combo::all();
    let current = Arc::new(Mutex::new((0, None)));
    watchdog(current.clone());
    let started = Instant::now();
    for (i, &c) in combos.iter().enumerate() {
        *current.lock().unwrap() = (i, Some(c));
        run(c);
    }
    let before_first_poll = combos
        .iter()
        .filter(|c| {
            c.abort_at == Point::BeforeFirstPoll
                || c.drop_at == Point::BeforeFirstPoll
                || c.interest == Interest::Awaited
        })
        .count();
    eprintln!(
        "rt_matrix: {} combinations (3 runtime kinds x 2 spawn fns x 3 outcomes x 2 output \
         drops x 2 join interests x 13 handle-drop/abort points) in {:.1?}; the first step \
         found the task unpolled in {} of them ({} act there)",
        combos.len(),
        started.elapsed(),
        TRULY_BEFORE_FIRST_POLL.load(SeqCst),
        before_first_poll,
    );
    assert_eq!(combos.len(), 936, "the matrix lost or gained combinations");
}
