//! Green Lisp tasks and channels, run by the interpreter's own scheduler.
//!
//! A Lisp task is a continuation of the machine: its frame stack and what to do when it next
//! runs (a value to return to its frames, a thunk to call, a state to go on with). The
//! interpreter runs one task at a time on its thread; the top-level program is the *main*
//! task. A task runs until it finishes, blocks (a channel with nobody on the other side, a
//! join of an unfinished task, `sleep`, `run-scheduler`), yields, or has run for
//! [`QUANTUM`] steps while another task is ready, so a busy loop cannot starve the others.
//! Switching is moving two vectors: no copy of any frame.
//!
//! Channels follow Go's: `(make-chan)` is a rendezvous (a send waits for a receiver),
//! `(make-chan n)` buffers `n` values; values are handed over in order and exactly once.
//! Receiving from a closed, drained channel gives the end-of-channel object (`eof-object?`);
//! sending on a closed channel is an error, and so is closing a channel a sender is blocked
//! on, for that sender. When no task can run and none is sleeping, the scheduler reports a
//! deadlock naming every task and what it waits on, instead of hanging.
//!
//! `(select clause ...)` waits on several operations at once: `(recv ch var body ...)`,
//! `(send ch value body ...)`, `(timeout ms body ...)` and `(default body ...)`. The first
//! ready clause in order happens; with none ready and no default, the task is queued on every
//! channel and the timeout at once, and the first to fire takes it out of all the others, so
//! exactly one clause happens and no value is taken that its body does not get.
//!
//! Time: `sleep` uses the real clock, or a paused one ([`Interp::pause_clock`]) that jumps
//! to the next deadline when every task waits, so tests never sleep on the wall clock.
//!
//! # Invariants
//!
//! - A task is in at most one place: running (its stack is the interpreter's), in the run
//!   queue (it has a `resume`), or parked (it has a `wait`, and exactly one channel queue,
//!   joiner list, sleeper entry or `run-scheduler` wait holds its id).
//! - Every value a task or a channel holds is a collector root (see `Interp::roots`).
//!
//! Still to come (issue 9): tasks as omni tasks on omni's runtime, channels over
//! `omni::chan`. A channel that moves to another OS thread becomes shared (`shared_chan`),
//! and a `select` takes it beside local channels (with a claim, see `shared_chan`).
//!
//! `(task-cancel t)` raises a `task N cancelled` error in `t` where it waits (or where it
//! next runs), so its `guard`s and `dynamic-wind` `after` thunks run; if nothing catches it,
//! only that task ends, and its joiners get the symbol `cancelled`.

use super::eval::{Frame, Interp, Loc, State};
use super::heap::{Obj, Value};
use super::shared_chan::{shared_chan, Home, SelectReg, SharedChan, Woke};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The main task's id: the top-level program.
pub(crate) const MAIN: u64 = 0;

/// Steps a task runs before it yields to a ready task.
pub(crate) const QUANTUM: u64 = 2_000;

/// A concurrency object in the Lisp heap (opaque).
#[derive(Debug)]
pub enum Conc {
    /// A channel.
    #[doc(hidden)]
    Chan(Box<Chan>),
    /// A task, by id.
    #[doc(hidden)]
    Task(u64),
    /// What receiving from a closed, drained channel gives.
    #[doc(hidden)]
    Eof,
    /// A generator (see `generator`).
    #[doc(hidden)]
    Gen(super::generator::Gen),
    /// The `yield` procedure of a generator's producer.
    #[doc(hidden)]
    Yield(super::heap::Ref),
    /// An atom (see `threads`).
    #[doc(hidden)]
    Atom(super::threads::AtomCell),
    /// An OS thread started by `thread-spawn`.
    #[doc(hidden)]
    Thread(super::threads::ThreadHandle),
    /// A channel shared between OS threads (see `shared_chan`).
    #[doc(hidden)]
    SharedChan(super::shared_chan::SharedChanCell),
}

/// A channel (opaque).
#[derive(Debug, Default)]
pub struct Chan {
    pub(crate) cap: usize,
    pub(crate) buf: VecDeque<Value>,
    /// Blocked senders and the value each sends, in order.
    pub(crate) senders: VecDeque<(u64, Value)>,
    /// Blocked receivers, in order.
    pub(crate) receivers: VecDeque<u64>,
    pub(crate) closed: bool,
}

impl Conc {
    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        match self {
            Conc::Chan(c) => {
                c.buf.iter().copied().for_each(&mut *f);
                c.senders.iter().for_each(|(_, v)| f(*v));
            }
            Conc::Gen(g) => g.trace(f),
            Conc::Yield(g) => f(Value::Ref(*g)),
            Conc::Atom(a) => a.trace(f),
            Conc::Task(_) | Conc::Eof | Conc::Thread(_) | Conc::SharedChan(_) => {}
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        match self {
            Conc::Chan(c) => {
                (c.buf.capacity() + c.senders.capacity() * 2 + c.receivers.capacity())
                    * std::mem::size_of::<Value>()
            }
            _ => 0,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Conc::Chan(c) => describe_chan("", c.cap, c.buf.len(), c.closed),
            Conc::Task(id) => format!("#<task {id}>"),
            Conc::Eof => "#<eof>".to_string(),
            Conc::Gen(_) => "#<generator>".to_string(),
            Conc::Yield(_) => "#<procedure yield>".to_string(),
            Conc::Atom(a) => a.describe().to_string(),
            Conc::Thread(t) => t.describe(),
            Conc::SharedChan(c) => c.describe(),
        }
    }
}

/// What a parked task waits for, and where it asked.
#[derive(Debug, Clone)]
pub(crate) enum Wait {
    Recv(Loc, Value),
    Send(Loc, Value),
    Join(u64, Loc),
    /// The sleeper entry's sequence number tells a live entry from a stale one.
    Sleep(Loc, u64),
    AllTasks(Loc),
    /// A receive on a channel shared with other threads.
    SharedRecv(Loc, Arc<SharedChan>),
    /// A send on a channel shared with other threads.
    SharedSend(Loc, Arc<SharedChan>),
    /// A `thread-join` of this OS thread (the handle) that has not ended.
    Thread(Loc, Value),
    /// A `select` waits on every clause at once: the channels it is queued on (with each
    /// clause's index and whether it sends), the channels shared with other threads it is
    /// queued on, its claim when it has any (see `shared_chan`: whoever completes a clause
    /// sets it first), and the sleeper entry of its timeout clause.
    Select {
        chans: Vec<(Value, usize, bool)>,
        shared: Vec<Arc<SharedChan>>,
        claim: Option<Arc<AtomicBool>>,
        timeout: Option<(u64, usize)>,
        loc: Loc,
    },
}

impl Wait {
    fn loc(&self) -> &Loc {
        match self {
            Wait::Recv(l, _)
            | Wait::Send(l, _)
            | Wait::Join(_, l)
            | Wait::Sleep(l, _)
            | Wait::AllTasks(l)
            | Wait::SharedRecv(l, _)
            | Wait::SharedSend(l, _)
            | Wait::Thread(l, _)
            | Wait::Select { loc: l, .. } => l,
        }
    }
}

/// What a task does when it next runs.
pub(crate) enum Resume {
    State(State),
    Value(Value),
    /// Raise an error with this message at this place.
    Raise(String, Loc),
    /// Call this thunk (a fresh task).
    Apply(Value, Loc),
    /// Fail with this error (a `thread-join` whose thread failed; a limit stays a limit).
    Fail(Fail),
}

pub(crate) struct Task {
    resume: Option<Resume>,
    stack: Vec<Frame>,
    wait: Option<Wait>,
    result: Option<Value>,
    joiners: Vec<u64>,
    spawned_at: Option<Loc>,
    /// `task-cancel` was called: an uncaught error ends the task, not the program.
    cancelled: bool,
    /// Cancelled while ready to run: the error is raised at its next task operation (its
    /// next checkpoint), so a value it was already handed is not lost.
    cancel_pending: bool,
}

impl Task {
    fn new(spawned_at: Option<Loc>) -> Task {
        Task {
            resume: None,
            stack: Vec::new(),
            wait: None,
            result: None,
            joiners: Vec::new(),
            spawned_at,
            cancelled: false,
            cancel_pending: false,
        }
    }
}

/// The scheduler's state.
pub(crate) struct Sched {
    tasks: HashMap<u64, Task>,
    pub(crate) current: u64,
    next_id: u64,
    /// Tasks other than main that have not finished (kept, not counted, so a finish is O(1)).
    live: usize,
    run_queue: VecDeque<u64>,
    sleepers: BinaryHeap<Reverse<(u64, u64, u64)>>,
    sleep_seq: u64,
    paused: bool,
    now_ms: u64,
    start: Instant,
    /// Steps the current task has run since it was switched to.
    pub(crate) slice: u64,
    /// The end-of-channel object.
    pub(crate) eof: Value,
    /// Where other threads deliver what completes a wait on a shared channel.
    pub(crate) home: Arc<Home>,
}

impl Sched {
    /// Whether the main task is the only one.
    pub(crate) fn alone(&self) -> bool {
        self.live == 0
    }
}

impl Drop for Sched {
    fn drop(&mut self) {
        // Nothing can be delivered here any more; what was, goes back to its channels.
        self.home.close();
    }
}

impl Default for Sched {
    fn default() -> Self {
        let mut tasks = HashMap::new();
        tasks.insert(MAIN, Task::new(None));
        Sched {
            tasks,
            current: MAIN,
            next_id: 1,
            live: 0,
            run_queue: VecDeque::new(),
            sleepers: BinaryHeap::new(),
            sleep_seq: 0,
            paused: false,
            now_ms: 0,
            start: Instant::now(),
            slice: 0,
            eof: Value::Nil,
            home: Home::new(Arc::default()),
        }
    }
}

impl Sched {
    /// Whether some frame of a task other than the running one satisfies `pred`.
    pub(crate) fn any_parked_frame(&self, pred: impl Fn(&Frame) -> bool) -> bool {
        self.tasks
            .iter()
            .filter(|(id, _)| **id != self.current)
            .any(|(_, t)| t.stack.iter().any(&pred))
    }
}

impl Sched {
    fn now(&self) -> u64 {
        if self.paused {
            self.now_ms
        } else {
            self.start.elapsed().as_millis() as u64
        }
    }

    /// Whether some task other than main has not finished.
    fn others_live(&self) -> bool {
        self.live > 0
    }

    /// Counts the unfinished tasks again, after tasks were dropped wholesale.
    fn recount(&mut self) {
        self.live = self.tasks.iter().filter(|(id, t)| **id != MAIN && t.result.is_none()).count();
    }

    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        f(self.eof);
        for t in self.tasks.values() {
            t.stack.iter().for_each(|fr| fr.trace(&mut *f));
            t.result.iter().copied().for_each(&mut *f);
            match &t.resume {
                Some(Resume::State(s)) => s.trace(&mut *f),
                Some(Resume::Value(v)) | Some(Resume::Apply(v, _)) => f(*v),
                Some(Resume::Raise(..)) | Some(Resume::Fail(_)) | None => {}
            }
            // A joined thread's handle is needed when the thread ends.
            if let Some(Wait::Thread(_, h)) = &t.wait {
                f(*h);
            }
        }
    }
}

/// The task operations that may block, as builtins on the continuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskOp {
    Spawn,
    Yield,
    Join,
    RunScheduler,
    Send,
    Recv,
    Sleep,
    Select,
    Cancel,
    Close,
    Gen(super::generator::GenOp),
}

/// How a channel prints: `#<channel KIND3/4 closed>`, where `kind` is empty or ends in a
/// space, and an unbuffered one shows `unbuffered` for its fill.
pub(crate) fn describe_chan(kind: &str, cap: usize, len: usize, closed: bool) -> String {
    let fill = if cap == 0 { "unbuffered".to_string() } else { format!("{len}/{cap}") };
    format!("#<channel {kind}{fill}{}>", if closed { " closed" } else { "" })
}

fn chan_mut(i: &mut Interp, v: Value) -> Option<&mut Chan> {
    let Value::Ref(r) = v else { return None };
    match i.heap.get_mut(r) {
        Some(Obj::Conc(Conc::Chan(c))) => Some(c),
        _ => None,
    }
}

type Fail = Box<super::eval::LispError>;

impl Interp {
    /// Makes `sleep` use a paused clock that jumps to the next deadline when every task
    /// waits, as the tests do; `false` goes back to the real clock.
    pub fn pause_clock(&mut self, paused: bool) {
        let now = self.sched.now();
        self.sched.paused = paused;
        self.sched.now_ms = now;
    }

    /// Whether `sleep` uses the paused clock.
    pub(crate) fn clock_paused(&self) -> bool {
        self.sched.paused
    }

    /// Gets the scheduler ready for a top-level form: the main task runs.
    pub(crate) fn sched_enter(&mut self) {
        self.sched.current = MAIN;
        self.sched.slice = 0;
        if let Some(m) = self.sched.tasks.get_mut(&MAIN) {
            m.wait = None;
            m.resume = None;
            m.stack.clear();
        }
        self.sched.run_queue.retain(|id| *id != MAIN);
    }

    /// A task other than main failed with `e`: it is gone, and the error is the program's.
    pub(crate) fn task_failed(&mut self, mut e: Fail) -> Fail {
        let id = self.sched.current;
        if id != MAIN {
            let at = self.sched.tasks.get(&id).and_then(|t| t.spawned_at.clone());
            self.sched.tasks.remove(&id);
            self.sched.recount();
            e.message = match at {
                Some(at) => format!("in task {id} (spawned at {at}): {}", e.message),
                None => format!("in task {id}: {}", e.message),
            };
        }
        self.sched_enter();
        e
    }

    /// Makes parked task `id` ready, to go on with `r`. A task that is not parked (woken
    /// already by another clause of its select) is left alone: a task is woken once.
    pub(crate) fn wake_task(&mut self, id: u64, r: Resume) {
        self.wake(id, r);
    }

    /// What task `id` waits for, if it waits.
    pub(crate) fn task_wait(&self, id: u64) -> Option<&Wait> {
        self.sched.tasks.get(&id)?.wait.as_ref()
    }

    /// Replaces what task `id` waits for with what `f` makes of it, if anything.
    pub(crate) fn set_task_wait(&mut self, id: u64, f: impl FnOnce(&Wait) -> Option<Wait>) {
        if let Some(t) = self.sched.tasks.get_mut(&id) {
            if let Some(w) = t.wait.as_ref().and_then(f) {
                t.wait = Some(w);
            }
        }
    }

    /// Whether some task waits on a channel shared with other threads.
    pub(crate) fn any_shared_wait(&self) -> bool {
        self.sched.tasks.values().any(|t| {
            matches!(t.wait, Some(Wait::SharedRecv(..) | Wait::SharedSend(..) | Wait::Thread(..)))
                || matches!(&t.wait, Some(Wait::Select { claim: Some(_), .. }))
        })
    }

    /// Whether a task here is parked joining an OS thread.
    fn joins_a_thread(&self) -> bool {
        self.sched.tasks.values().any(|t| matches!(t.wait, Some(Wait::Thread(..))))
    }

    /// The current task waits for `wait`.
    pub(crate) fn park_on(&mut self, wait: Wait) -> State {
        self.park(wait)
    }

    fn wake(&mut self, id: u64, r: Resume) {
        if let Some(t) = self.sched.tasks.get_mut(&id) {
            if t.wait.is_none() {
                return;
            }
            t.wait = None;
            t.resume = Some(r);
            self.sched.run_queue.push_back(id);
        }
    }

    fn park(&mut self, wait: Wait) -> State {
        if let Some(t) = self.sched.tasks.get_mut(&self.sched.current) {
            t.wait = Some(wait);
        }
        State::Switch
    }

    /// The current task goes to the back of the run queue, to go on with `state`.
    pub(crate) fn preempt(&mut self, state: State) -> Result<State, Fail> {
        let id = self.sched.current;
        if let Some(t) = self.sched.tasks.get_mut(&id) {
            t.resume = Some(Resume::State(state));
        }
        self.sched.run_queue.push_back(id);
        self.switch()
    }

    /// Whether another task is ready to run: one in the run queue, or a sleeper whose
    /// deadline has passed (on the real clock, time moves while a task runs).
    pub(crate) fn others_ready(&self) -> bool {
        !self.sched.run_queue.is_empty()
            || self.sched.home.pending()
            || self.sched.sleepers.peek().is_some_and(|Reverse((d, _, _))| *d <= self.sched.now())
    }

    /// Moves the sleepers whose deadline has passed to the run queue.
    fn wake_due(&mut self) -> Result<(), Fail> {
        if self.sched.sleepers.is_empty() {
            return Ok(());
        }
        let now = self.sched.now();
        while let Some(Reverse((d, seq, id))) = self.sched.sleepers.peek().copied() {
            if d > now {
                break;
            }
            self.sched.sleepers.pop();
            match self.sched.tasks.get(&id).and_then(|t| t.wait.clone()) {
                Some(Wait::Sleep(_, s)) if s == seq => {
                    self.wake(id, Resume::Value(Value::Unspecified));
                }
                // Unless a clause on a shared channel happened first (it is claimed).
                Some(Wait::Select { timeout: Some((s, clause)), .. })
                    if s == seq && self.claim(id) =>
                {
                    self.select_fired(id, clause, Value::Unspecified)?;
                }
                // The task left that wait already (a select another clause won).
                _ => {}
            }
        }
        Ok(())
    }

    /// The current task (not main) returned `v`.
    pub(crate) fn task_done(&mut self, v: Value) -> Result<State, Fail> {
        let id = self.sched.current;
        self.finish(id, v);
        self.switch()
    }

    /// Saves the current task (unless it finished) and runs the next ready one, waiting for
    /// sleepers when none is ready; with nothing to wait for, a deadlock report.
    pub(crate) fn switch(&mut self) -> Result<State, Fail> {
        let cur = self.sched.current;
        let stack = std::mem::take(&mut self.stack);
        if let Some(t) = self.sched.tasks.get_mut(&cur) {
            if t.result.is_none() {
                t.stack = stack;
            }
        }
        loop {
            self.wake_due()?;
            self.take_deliveries()?;
            if let Some(id) = self.sched.run_queue.pop_front() {
                let Some(t) = self.sched.tasks.get_mut(&id) else { continue };
                let Some(resume) = t.resume.take() else { continue };
                self.stack = std::mem::take(&mut t.stack);
                self.sched.current = id;
                self.sched.slice = 0;
                return match resume {
                    Resume::State(s) => Ok(s),
                    Resume::Value(v) => Ok(State::Return(v)),
                    Resume::Raise(msg, loc) => {
                        let m = self.heap.alloc(Obj::Str(msg)).map_err(|e| self.heap_full(e))?;
                        let c = self
                            .heap
                            .alloc(Obj::Condition(Value::Ref(m), Value::Nil))
                            .map_err(|e| self.heap_full(e))?;
                        self.raise(Value::Ref(c), &loc)
                    }
                    Resume::Apply(thunk, loc) => self.apply(thunk, &[], &loc),
                    Resume::Fail(e) => Err(e),
                };
            }
            // Entries of sleeps that ended otherwise (a select won by a channel) do not count.
            while let Some(Reverse((_, seq, id))) = self.sched.sleepers.peek().copied() {
                let live = match self.sched.tasks.get(&id).and_then(|t| t.wait.as_ref()) {
                    Some(Wait::Sleep(_, s)) => *s == seq,
                    Some(Wait::Select { timeout: Some((s, _)), .. }) => *s == seq,
                    _ => false,
                };
                if live {
                    break;
                }
                self.sched.sleepers.pop();
            }
            let Some(Reverse((deadline, _, _))) = self.sched.sleepers.peek().copied() else {
                // Another thread may still complete a wait on a shared channel.
                match self.wait_for_other_threads(None) {
                    Woke::Arrived => continue,
                    // Every thread of the program waits, but one that a task here joins
                    // reports that itself and ends, and its end wakes the joiner: the report
                    // comes from the threads that wait on something else (a join cannot wait
                    // for its own joiner, so some do).
                    Woke::Deadlock if self.joins_a_thread() => continue,
                    _ => return Err(self.deadlock()),
                }
            };
            let now = self.sched.now();
            if deadline > now {
                if self.sched.paused {
                    self.sched.now_ms = deadline;
                } else {
                    let d = Duration::from_millis(deadline - now);
                    if self.wait_for_other_threads(Some(d)) == Woke::Nothing {
                        std::thread::sleep(d);
                    }
                }
            }
        }
    }

    fn deadlock(&mut self) -> Fail {
        let mut ids: Vec<u64> = self.sched.tasks.keys().copied().collect();
        ids.sort_unstable();
        let mut lines = Vec::new();
        for id in ids {
            let t = &self.sched.tasks[&id];
            let who =
                if id == MAIN { "the main program".to_string() } else { format!("task {id}") };
            let what = match &t.wait {
                Some(Wait::Recv(l, _)) => format!("waits at {l} to receive from a channel"),
                Some(Wait::Send(l, _)) => format!("waits at {l} to send on a channel"),
                Some(Wait::Join(j, l)) => format!("waits at {l} for task {j} to finish"),
                Some(Wait::Sleep(l, _)) => format!("sleeps at {l}"),
                Some(Wait::Select { loc, .. }) => format!("waits at {loc} in a select"),
                Some(Wait::AllTasks(l)) => format!("waits at {l} for every task to finish"),
                Some(Wait::SharedRecv(l, _)) => {
                    format!("waits at {l} to receive from a channel shared with other threads")
                }
                Some(Wait::SharedSend(l, _)) => {
                    format!("waits at {l} to send on a channel shared with other threads")
                }
                Some(Wait::Thread(l, h)) => {
                    format!("waits at {l} for {} to finish", self.write_string(*h))
                }
                None => continue,
            };
            lines.push(format!("  {who} {what}"));
        }
        let main_loc =
            self.sched.tasks.get(&MAIN).and_then(|t| t.wait.as_ref().map(|w| w.loc().clone()));
        // Every parked task is dropped: nothing can wake them.
        self.sched.tasks.retain(|id, t| *id == MAIN || t.result.is_some() || t.wait.is_none());
        self.sched.recount();
        self.sched.current = MAIN;
        let mut e = super::eval::error_at(
            format!("deadlock: no task can run\n{}", lines.join("\n")),
            main_loc.as_ref(),
        );
        e.backtrace.clear();
        e
    }

    /// A builtin of tasks and channels that may block.
    pub(crate) fn task_op(&mut self, op: TaskOp, args: &[Value], loc: &Loc) -> Result<State, Fail> {
        let cur = self.sched.current;
        // Every blocking operation is a checkpoint where a pending cancellation is raised.
        let checkpoint =
            !matches!(op, TaskOp::Spawn | TaskOp::Cancel | TaskOp::Close | TaskOp::Gen(_));
        if checkpoint {
            if let Some(t) = self.sched.tasks.get_mut(&cur) {
                if t.cancel_pending {
                    t.cancel_pending = false;
                    return Err(super::eval::error_at(format!("task {cur} cancelled"), Some(loc)));
                }
            }
        }
        match op {
            TaskOp::Spawn => {
                let id = self.sched.next_id;
                self.sched.next_id += 1;
                let mut t = Task::new(Some(loc.clone()));
                t.resume = Some(Resume::Apply(args[0], loc.clone()));
                self.sched.tasks.insert(id, t);
                self.sched.live += 1;
                self.sched.run_queue.push_back(id);
                let v =
                    self.heap.alloc(Obj::Conc(Conc::Task(id))).map_err(|e| self.heap_full(e))?;
                Ok(State::Return(Value::Ref(v)))
            }
            TaskOp::Yield => {
                if !self.others_ready() {
                    return Ok(State::Return(Value::Unspecified));
                }
                self.preempt(State::Return(Value::Unspecified))
            }
            TaskOp::Join => {
                let Some(id) = self.task_id(args[0]) else {
                    return Err(super::eval::error_at(
                        format!("task-join: expects a task, got {}", self.write_string(args[0])),
                        Some(loc),
                    ));
                };
                if id == cur {
                    return Err(super::eval::error_at(
                        "task-join: a task cannot wait for itself",
                        Some(loc),
                    ));
                }
                match self.sched.tasks.get_mut(&id) {
                    Some(t) => match t.result {
                        Some(v) => Ok(State::Return(v)),
                        None => {
                            t.joiners.push(cur);
                            Ok(self.park(Wait::Join(id, loc.clone())))
                        }
                    },
                    None => Err(super::eval::error_at(
                        format!("task-join: task {id} failed"),
                        Some(loc),
                    )),
                }
            }
            TaskOp::RunScheduler => {
                if cur != MAIN {
                    return Err(super::eval::error_at(
                        "run-scheduler: only the main program may run the scheduler",
                        Some(loc),
                    ));
                }
                if !self.sched.others_live() {
                    return Ok(State::Return(Value::Sym(self.syms.intern("done"))));
                }
                Ok(self.park(Wait::AllTasks(loc.clone())))
            }
            TaskOp::Sleep => {
                let ms = match args[0] {
                    Value::Int(n) if n >= 0 => n as u64,
                    Value::Float(x) if x >= 0.0 => x as u64,
                    v => {
                        return Err(super::eval::error_at(
                            format!(
                                "sleep: expects milliseconds (a number >= 0), got {}",
                                self.write_string(v)
                            ),
                            Some(loc),
                        ))
                    }
                };
                let deadline = self.sched.now().saturating_add(ms);
                self.sched.sleep_seq += 1;
                let seq = self.sched.sleep_seq;
                self.sched.sleepers.push(Reverse((deadline, seq, cur)));
                Ok(self.park(Wait::Sleep(loc.clone(), seq)))
            }
            TaskOp::Send => {
                let (ch, v) = (args[0], args[1]);
                if let Some(c) = shared_chan(self, ch) {
                    return self.shared_send(c, v, loc);
                }
                let Some(c) = chan_mut(self, ch) else {
                    return Err(self.not_chan("chan-send", ch, loc));
                };
                if c.closed {
                    return Err(super::eval::error_at(
                        "chan-send: the channel is closed",
                        Some(loc),
                    ));
                }
                if let Some(r) = self.pop_receiver(ch) {
                    self.deliver(r, ch, false, v)?;
                    return Ok(State::Return(Value::Unspecified));
                }
                let c = chan_mut(self, ch).expect("checked");
                if c.buf.len() < c.cap {
                    c.buf.push_back(v);
                    return Ok(State::Return(Value::Unspecified));
                }
                c.senders.push_back((cur, v));
                Ok(self.park(Wait::Send(loc.clone(), ch)))
            }
            TaskOp::Recv => {
                let ch = args[0];
                if let Some(c) = shared_chan(self, ch) {
                    return Ok(self.shared_recv(c, true, loc)?.expect("a receive that waits"));
                }
                if chan_mut(self, ch).is_none() {
                    return Err(self.not_chan("chan-recv", ch, loc));
                }
                match self.recv_now(ch)? {
                    Some(v) => Ok(State::Return(v)),
                    None => {
                        if let Some(c) = chan_mut(self, ch) {
                            c.receivers.push_back(cur);
                        }
                        Ok(self.park(Wait::Recv(loc.clone(), ch)))
                    }
                }
            }
            TaskOp::Select => self.select(args[0], args[1] != Value::Bool(false), loc),
            TaskOp::Gen(g) => self.gen_op(g, args[0], loc),
            TaskOp::Close => {
                self.chan_close(args[0], loc)
                    .map_err(|m| super::eval::error_at(format!("chan-close: {m}"), Some(loc)))?;
                Ok(State::Return(Value::Unspecified))
            }
            TaskOp::Cancel => {
                let Some(id) = self.task_id(args[0]) else {
                    return Err(super::eval::error_at(
                        format!("task-cancel: expects a task, got {}", self.write_string(args[0])),
                        Some(loc),
                    ));
                };
                self.cancel(id, loc)
            }
        }
    }

    fn not_chan(&self, who: &str, v: Value, loc: &Loc) -> Fail {
        super::eval::error_at(
            format!("{who}: expects a channel, got {}", self.write_string(v)),
            Some(loc),
        )
    }

    fn task_id(&self, v: Value) -> Option<u64> {
        let Value::Ref(r) = v else { return None };
        match self.heap.get(r) {
            Ok(Obj::Conc(Conc::Task(id))) => Some(*id),
            _ => None,
        }
    }

    /// Closes channel `ch`: blocked receivers get the end-of-channel object, blocked senders
    /// an error.
    pub(crate) fn chan_close(&mut self, ch: Value, loc: &Loc) -> Result<(), String> {
        if let Some(c) = shared_chan(self, ch) {
            Interp::shared_close(&c);
            return Ok(());
        }
        let eof = self.sched.eof;
        let Some(c) = chan_mut(self, ch) else {
            return Err(format!("expects a channel, got {}", self.write_string(ch)));
        };
        c.closed = true;
        // One at a time: a select queued here twice leaves every queue when its first
        // clause fires.
        while let Some(r) = self.pop_receiver(ch) {
            self.deliver(r, ch, false, eof).map_err(|e| e.message)?;
        }
        while let Some((s, _)) = self.pop_sender(ch) {
            self.leave_select(s);
            self.wake(
                s,
                Resume::Raise(
                    "chan-send: the channel was closed while this send waited".into(),
                    loc.clone(),
                ),
            );
        }
        Ok(())
    }

    /// Cancels task `id`: a `task cancelled` error is raised in it where it waits (or where
    /// it is), so its `guard`s and `dynamic-wind` thunks run; uncaught, it ends the task,
    /// whose joiners get the symbol `cancelled`. A finished task is left as it is.
    fn cancel(&mut self, id: u64, loc: &Loc) -> Result<State, Fail> {
        let cur = self.sched.current;
        let Some(t) = self.sched.tasks.get_mut(&id) else {
            return Ok(State::Return(Value::Bool(false)));
        };
        if t.result.is_some() || id == MAIN {
            return Ok(State::Return(Value::Bool(false)));
        }
        t.cancelled = true;
        let msg = format!("task {id} cancelled");
        if id == cur {
            return Err(super::eval::error_at(msg, Some(loc)));
        }
        if matches!(t.resume, Some(Resume::Apply(..))) {
            // Never started: it just ends.
            t.resume = None;
            self.sched.run_queue.retain(|r| *r != id);
            let cancelled = Value::Sym(self.syms.intern("cancelled"));
            self.finish(id, cancelled);
            return Ok(State::Return(Value::Bool(true)));
        }
        match t.wait.clone() {
            Some(wait) => {
                // Out of whatever queue holds it (a stale sleeper entry is ignored).
                match wait {
                    Wait::Recv(_, ch) | Wait::Send(_, ch) => {
                        if let Some(c) = chan_mut(self, ch) {
                            c.receivers.retain(|r| *r != id);
                            c.senders.retain(|(s, _)| *s != id);
                        }
                    }
                    Wait::Join(j, _) => {
                        if let Some(jt) = self.sched.tasks.get_mut(&j) {
                            jt.joiners.retain(|r| *r != id);
                        }
                    }
                    Wait::Select { .. } => {
                        if !self.claim(id) {
                            // A clause happened on another thread already: it raises once
                            // it has what was delivered, at its next checkpoint.
                            if let Some(t) = self.sched.tasks.get_mut(&id) {
                                t.cancel_pending = true;
                            }
                            return Ok(State::Return(Value::Bool(true)));
                        }
                        self.leave_select(id)
                    }
                    Wait::SharedRecv(_, chan) | Wait::SharedSend(_, chan) => {
                        if !self.shared_leave(&chan, id) {
                            // Completed by another thread already: it raises once it has
                            // what was delivered, at its next checkpoint.
                            if let Some(t) = self.sched.tasks.get_mut(&id) {
                                t.cancel_pending = true;
                            }
                            return Ok(State::Return(Value::Bool(true)));
                        }
                    }
                    // The thread's end is still delivered; a task that no longer waits
                    // for it ignores it, and the thread can be joined again.
                    Wait::Sleep(..) | Wait::AllTasks(_) | Wait::Thread(..) => {}
                }
                self.wake(id, Resume::Raise(msg, loc.clone()));
            }
            None => {
                // Ready to run, maybe with a value a channel handed it: it raises at its next
                // checkpoint, after it has that value.
                if let Some(t) = self.sched.tasks.get_mut(&id) {
                    t.cancel_pending = true;
                }
            }
        }
        Ok(State::Return(Value::Bool(true)))
    }

    /// Task `id` ended with `v`: its joiners get `v`, and `run-scheduler` returns once no
    /// task is left.
    fn finish(&mut self, id: u64, v: Value) {
        let joiners = match self.sched.tasks.get_mut(&id) {
            Some(t) => {
                if t.result.is_none() && id != MAIN {
                    self.sched.live -= 1;
                }
                t.result = Some(v);
                t.stack = Vec::new();
                std::mem::take(&mut t.joiners)
            }
            None => Vec::new(),
        };
        for j in joiners {
            self.wake(j, Resume::Value(v));
        }
        if !self.sched.others_live() {
            let main_waits_all = self
                .sched
                .tasks
                .get(&MAIN)
                .is_some_and(|m| matches!(m.wait, Some(Wait::AllTasks(_))));
            if main_waits_all {
                let done = Value::Sym(self.syms.intern("done"));
                self.wake(MAIN, Resume::Value(done));
            }
        }
    }

    /// Whether the running task was cancelled (its uncaught error ends only it).
    pub(crate) fn current_cancelled(&self) -> bool {
        self.sched.current != MAIN
            && self.sched.tasks.get(&self.sched.current).is_some_and(|t| t.cancelled)
    }

    /// What a receive on `ch` gets without waiting: a value, the end-of-channel object when
    /// it is closed and drained, or `None` when it would wait.
    fn recv_now(&mut self, ch: Value) -> Result<Option<Value>, Fail> {
        if let Some(v) = self.take_from(ch)? {
            return Ok(Some(v));
        }
        let eof = self.sched.eof;
        Ok(chan_mut(self, ch).is_some_and(|c| c.closed).then_some(eof))
    }

    /// Takes a value from channel `ch` if one is there: from its buffer (a blocked sender's
    /// value then takes the freed place) or from a blocked sender.
    fn take_from(&mut self, ch: Value) -> Result<Option<Value>, Fail> {
        let Some(c) = chan_mut(self, ch) else { return Ok(None) };
        if let Some(v) = c.buf.pop_front() {
            if let Some((s, sv)) = self.pop_sender(ch) {
                if let Some(c) = chan_mut(self, ch) {
                    c.buf.push_back(sv);
                }
                self.deliver(s, ch, true, Value::Unspecified)?;
            }
            return Ok(Some(v));
        }
        if let Some((s, sv)) = self.pop_sender(ch) {
            self.deliver(s, ch, true, Value::Unspecified)?;
            return Ok(Some(sv));
        }
        Ok(None)
    }

    /// Completes the channel operation parked task `id` waited for on `ch` (a send when
    /// `is_send`): a plain wait gets `v`; a `select` gets `(clause . v)` and leaves its other
    /// queues.
    fn deliver(&mut self, id: u64, ch: Value, is_send: bool, v: Value) -> Result<(), Fail> {
        let clause = match self.sched.tasks.get(&id).and_then(|t| t.wait.as_ref()) {
            Some(Wait::Select { chans, .. }) => {
                chans.iter().find(|(c, _, s)| *c == ch && *s == is_send).map(|(_, i, _)| *i)
            }
            _ => None,
        };
        match clause {
            Some(i) => self.select_fired(id, i, v),
            None => {
                self.wake(id, Resume::Value(v));
                Ok(())
            }
        }
    }

    /// Clause `clause` of the select task `id` waits in happened with `v`.
    pub(crate) fn select_fired(&mut self, id: u64, clause: usize, v: Value) -> Result<(), Fail> {
        self.leave_select(id);
        let pair = self.heap.cons(Value::Int(clause as i64), v).map_err(|e| self.heap_full(e))?;
        self.wake(id, Resume::Value(pair));
        Ok(())
    }

    /// Takes task `id` out of every channel queue its select put it in.
    pub(crate) fn leave_select(&mut self, id: u64) {
        let (chans, shared) = match self.sched.tasks.get(&id).and_then(|t| t.wait.as_ref()) {
            Some(Wait::Select { chans, shared, .. }) => (chans.clone(), shared.clone()),
            _ => return,
        };
        for (ch, _, _) in chans {
            if let Some(c) = chan_mut(self, ch) {
                c.receivers.retain(|r| *r != id);
                c.senders.retain(|(s, _)| *s != id);
            }
        }
        for chan in shared {
            self.shared_leave(&chan, id);
        }
    }

    /// Claims parked task `id` for completion here: always for a plain wait; for a `select`
    /// with clauses on shared channels, only if none of its clauses happened already (then
    /// that clause's delivery is on the way, and the task must be left alone).
    pub(crate) fn claim(&self, id: u64) -> bool {
        match self.sched.tasks.get(&id).and_then(|t| t.wait.as_ref()) {
            Some(Wait::Select { claim: Some(c), .. }) => {
                c.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
            }
            _ => true,
        }
    }

    /// The first task blocked receiving on local channel `ch` that can still receive.
    fn pop_receiver(&mut self, ch: Value) -> Option<u64> {
        loop {
            let r = chan_mut(self, ch)?.receivers.pop_front()?;
            if self.claim(r) {
                return Some(r);
            }
        }
    }

    /// The first task blocked sending on local channel `ch` that can still send, with its
    /// value.
    fn pop_sender(&mut self, ch: Value) -> Option<(u64, Value)> {
        loop {
            let (s, v) = chan_mut(self, ch)?.senders.pop_front()?;
            if self.claim(s) {
                return Some((s, v));
            }
        }
    }

    /// `(%select ops has-default)`: the first ready clause of `ops` (each `(recv ch)`,
    /// `(send ch v)` or `(timeout ms)`) happens, giving `(index . value)`; with none ready,
    /// `(-1 . unspecified)` when there is a default clause, else the task waits on all of them
    /// and exactly one happens.
    fn select(&mut self, ops: Value, has_default: bool, loc: &Loc) -> Result<State, Fail> {
        let bad = |what: String| super::eval::error_at(format!("select: {what}"), Some(loc));
        let mut clauses = Vec::new();
        let mut l = ops;
        while let Some((op, rest)) = self.heap.pair(l) {
            let mut parts = Vec::new();
            let mut o = op;
            while let Some((a, d)) = self.heap.pair(o) {
                parts.push(a);
                o = d;
            }
            clauses.push(parts);
            l = rest;
        }
        let recv = Value::Sym(self.syms.intern("recv"));
        let send = Value::Sym(self.syms.intern("send"));
        let timeout = Value::Sym(self.syms.intern("timeout"));
        let fired = |i: &mut Self, k: usize, v: Value| -> Result<State, Fail> {
            let pair = i.heap.cons(Value::Int(k as i64), v).map_err(|e| i.heap_full(e))?;
            Ok(State::Return(pair))
        };
        // Ready now?
        for (k, c) in clauses.iter().enumerate() {
            match c[..] {
                [op, ch] if op == recv && shared_chan(self, ch).is_some() => {
                    let chan = shared_chan(self, ch).expect("checked");
                    if let Some(v) = self.shared_try_recv(&chan)? {
                        return fired(self, k, v);
                    }
                }
                [op, ch, v] if op == send && shared_chan(self, ch).is_some() => {
                    let chan = shared_chan(self, ch).expect("checked");
                    if self.shared_try_send(&chan, v, loc)? {
                        return fired(self, k, Value::Unspecified);
                    }
                }
                [op, ch] if op == recv => {
                    if chan_mut(self, ch).is_none() {
                        return Err(bad(format!(
                            "expects a channel, got {}",
                            self.write_string(ch)
                        )));
                    }
                    if let Some(v) = self.recv_now(ch)? {
                        return fired(self, k, v);
                    }
                }
                [op, ch, v] if op == send => {
                    if chan_mut(self, ch).is_none() {
                        return Err(bad(format!(
                            "expects a channel, got {}",
                            self.write_string(ch)
                        )));
                    }
                    let c = chan_mut(self, ch).expect("checked");
                    if c.closed {
                        return Err(bad("a send clause's channel is closed".into()));
                    }
                    if let Some(r) = self.pop_receiver(ch) {
                        self.deliver(r, ch, false, v)?;
                        return fired(self, k, Value::Unspecified);
                    }
                    let c = chan_mut(self, ch).expect("checked");
                    if c.buf.len() < c.cap {
                        c.buf.push_back(v);
                        return fired(self, k, Value::Unspecified);
                    }
                }
                [op, ms] if op == timeout => {
                    if !matches!(ms, Value::Int(n) if n >= 0) {
                        return Err(bad(format!(
                            "a timeout is milliseconds (an integer >= 0), got {}",
                            self.write_string(ms)
                        )));
                    }
                    if ms == Value::Int(0) {
                        return fired(self, k, Value::Unspecified);
                    }
                }
                _ => return Err(bad("a clause is (recv ch), (send ch v) or (timeout ms)".into())),
            }
        }
        if has_default {
            return fired_default(self);
        }
        // Wait on all of them: on the shared channels first, looking at each again under its
        // lock (another thread may have sent since), with a claim that every clause respects.
        let cur = self.sched.current;
        let has_shared =
            clauses.iter().any(|c| matches!(c[..], [_, ch, ..] if shared_chan(self, ch).is_some()));
        let claim = has_shared.then(|| Arc::new(AtomicBool::new(false)));
        let mut shared: Vec<Arc<SharedChan>> = Vec::new();
        let mut lost = false;
        for (k, c) in clauses.iter().enumerate() {
            let (Some(claim), [_, ch, ..]) = (&claim, &c[..]) else { continue };
            let Some(chan) = shared_chan(self, *ch) else { continue };
            let reg = match c[..] {
                [_, _] => self.shared_select_recv(&chan, k, claim),
                [_, _, v] => self.shared_select_send(&chan, k, v, claim, loc),
                _ => continue,
            };
            let reg = match reg {
                Ok(r) => r,
                Err(e) => {
                    // Out of the queues it joined before the error.
                    for c in &shared {
                        self.shared_leave(c, cur);
                    }
                    return Err(e);
                }
            };
            match reg {
                SelectReg::Queued => shared.push(chan),
                SelectReg::Fired(v) => {
                    for c in &shared {
                        self.shared_leave(c, cur);
                    }
                    return fired(self, k, v);
                }
                SelectReg::Lost => {
                    // A clause queued already happened on another thread: its delivery wakes
                    // this task; nothing more to queue.
                    lost = true;
                    break;
                }
            }
        }
        let mut chans = Vec::new();
        let mut tmo = None;
        let mut shortest: Option<(i64, usize)> = None;
        for (k, c) in clauses.iter().enumerate() {
            if lost {
                break;
            }
            match c[..] {
                [_, ch, ..] if shared_chan(self, ch).is_some() => {}
                [op, ch] if op == recv => {
                    if let Some(c) = chan_mut(self, ch) {
                        c.receivers.push_back(cur);
                    }
                    chans.push((ch, k, false));
                }
                [_, ch, v] => {
                    if let Some(c) = chan_mut(self, ch) {
                        c.senders.push_back((cur, v));
                    }
                    chans.push((ch, k, true));
                }
                // The shortest timeout is the one that can fire (the first of equals).
                [_, Value::Int(ms)] if shortest.is_none_or(|(best, _)| ms < best) => {
                    shortest = Some((ms, k));
                }
                _ => {}
            }
        }
        if let Some((ms, k)) = shortest {
            let deadline = self.sched.now().saturating_add(ms as u64);
            self.sched.sleep_seq += 1;
            let seq = self.sched.sleep_seq;
            self.sched.sleepers.push(Reverse((deadline, seq, cur)));
            tmo = Some((seq, k));
        }
        if chans.is_empty() && tmo.is_none() && shared.is_empty() && !lost {
            return Err(bad("no clauses: it would wait forever".into()));
        }
        Ok(self.park(Wait::Select { chans, shared, claim, timeout: tmo, loc: loc.clone() }))
    }
}

fn fired_default(i: &mut Interp) -> Result<State, Fail> {
    let pair = i.heap.cons(Value::Int(-1), Value::Unspecified).map_err(|e| i.heap_full(e))?;
    Ok(State::Return(pair))
}

/// The builtins of tasks and channels that never block.
pub(crate) fn install(i: &mut Interp) {
    i.def_control("%select", (2, Some(2)), super::eval::Ctl::Task(TaskOp::Select));
    i.def_control("task-cancel", (1, Some(1)), super::eval::Ctl::Task(TaskOp::Cancel));
    use super::generator::GenOp;
    i.def_control("gen-next", (1, Some(1)), super::eval::Ctl::Task(TaskOp::Gen(GenOp::Next)));
    i.def_control("gen-done?", (1, Some(1)), super::eval::Ctl::Task(TaskOp::Gen(GenOp::Done)));
    i.def_control("gen-close", (1, Some(1)), super::eval::Ctl::Task(TaskOp::Gen(GenOp::Close)));
    super::generator::install(i);
    let eof = i.heap.alloc(Obj::Conc(Conc::Eof)).expect("no limit yet");
    i.sched.eof = Value::Ref(eof);
    i.def_prim("make-chan", (0, Some(1)), |i, a| {
        let cap = match a.first() {
            None => 0,
            Some(Value::Int(n)) if *n >= 0 => *n as usize,
            Some(v) => {
                return Err(format!(
                    "expects a capacity (an integer >= 0), got {}",
                    i.write_string(*v)
                ))
            }
        };
        let c = Chan { cap, ..Chan::default() };
        i.heap.alloc(Obj::Conc(Conc::Chan(Box::new(c)))).map(Value::Ref).map_err(|e| e.to_string())
    });
    i.def_prim("chan?", (1, Some(1)), |i, a| {
        Ok(Value::Bool(chan_mut(i, a[0]).is_some() || shared_chan(i, a[0]).is_some()))
    });
    i.def_prim("chan-closed?", (1, Some(1)), |i, a| {
        if let Some(c) = shared_chan(i, a[0]) {
            return Ok(Value::Bool(Interp::shared_closed(&c)));
        }
        match chan_mut(i, a[0]) {
            Some(c) => Ok(Value::Bool(c.closed)),
            None => Err("expects a channel".into()),
        }
    });
    i.def_control("chan-close", (1, Some(1)), super::eval::Ctl::Task(TaskOp::Close));
    i.def_prim("chan-try-recv", (1, Some(2)), |i, a| {
        let default = a.get(1).copied().unwrap_or(Value::Bool(false));
        if let Some(c) = shared_chan(i, a[0]) {
            let nowhere = Loc { file: "chan-try-recv".into(), span: Default::default() };
            return Ok(match i.shared_recv(c, false, &nowhere).map_err(|e| e.message)? {
                Some(State::Return(v)) => v,
                _ => default,
            });
        }
        if chan_mut(i, a[0]).is_none() {
            return Err(format!("expects a channel, got {}", i.write_string(a[0])));
        }
        Ok(i.recv_now(a[0]).map_err(|e| e.message)?.unwrap_or(default))
    });
    i.def_prim("eof-object", (0, Some(0)), |i, _| Ok(i.sched.eof));
    i.def_prim("eof-object?", (1, Some(1)), |i, a| Ok(Value::Bool(a[0] == i.sched.eof)));
    i.def_prim("task?", (1, Some(1)), |i, a| Ok(Value::Bool(i.task_id(a[0]).is_some())));
    i.def_prim("task-done?", (1, Some(1)), |i, a| {
        let id = i.task_id(a[0]).ok_or("expects a task")?;
        Ok(Value::Bool(i.sched.tasks.get(&id).is_none_or(|t| t.result.is_some())))
    });
    i.def_prim("current-time-ms", (0, Some(0)), |i, _| Ok(Value::Int(i.sched.now() as i64)));
}

/// Generators, promises, nurseries, `try`/`throw` and timeouts, written in OmniLisp over the
/// native tasks, channels and `prompt`/`control`; evaluated after the main prelude.
pub(crate) const PRELUDE: &str = r#"
(define (range a . more)
  (let ((start (if (null? more) 0 a))
        (end (if (null? more) a (car more)))
        (step (if (and (pair? more) (pair? (cdr more))) (cadr more) 1)))
    (make-generator
      (lambda (yield)
        (let loop ((i start))
          (when (if (> step 0) (< i end) (> i end)) (yield i) (loop (+ i step))))))))
(define (iterate f init)
  (make-generator (lambda (yield) (let loop ((x init)) (yield x) (loop (f x))))))
(define (gen-map f g)
  (make-generator
    (lambda (yield)
      (let loop () (let ((v (gen-next g))) (unless (gen-done? g) (yield (f v)) (loop)))))))
(define (gen-filter keep? g)
  (make-generator
    (lambda (yield)
      (let loop ()
        (let ((v (gen-next g))) (unless (gen-done? g) (when (keep? v) (yield v)) (loop)))))))
(define (gen-take n g)
  (make-generator
    (lambda (yield)
      (let loop ((i 0))
        (when (< i n)
          (let ((v (gen-next g))) (unless (gen-done? g) (yield v) (loop (+ i 1)))))))))
(define (gen-zip . gens)
  (make-generator
    (lambda (yield)
      (let loop ()
        (let ((vals (map gen-next gens)))
          (unless (memq #t (map gen-done? gens)) (yield vals) (loop)))))))
(define (gen->list g)
  (let loop ((acc '()))
    (let ((v (gen-next g))) (if (gen-done? g) (reverse acc) (loop (cons v acc))))))
(define (gen-fold f acc g)
  (let loop ((acc acc))
    (let ((v (gen-next g))) (if (gen-done? g) acc (loop (f acc v))))))
(define (for-each-gen f g)
  (let loop () (let ((v (gen-next g))) (unless (gen-done? g) (f v) (loop)))))
(define (chan-from-generator g)
  (let ((c (make-chan)))
    (spawn (lambda () (for-each-gen (lambda (v) (chan-send c v)) g) (chan-close c)))
    c))

(define-record-type <promise> (%make-promise state value waiters) promise?
  (state %promise-state %set-promise-state!)
  (value %promise-value %set-promise-value!)
  (waiters %promise-waiters %set-promise-waiters!))
(define (make-promise) (%make-promise 'pending #f '()))
(define (%settle! p state v)
  (when (eq? (%promise-state p) 'pending)
    (%set-promise-state! p state)
    (%set-promise-value! p v)
    (for-each (lambda (c) (chan-send c #t)) (%promise-waiters p))
    (%set-promise-waiters! p '())))
(define (promise-resolve! p v) (%settle! p 'resolved v))
(define (promise-reject! p e) (%settle! p 'rejected e))
(define (promise-settled? p) (not (eq? (%promise-state p) 'pending)))
(define (promise-value p) (%promise-value p))
(define (await p)
  (cond ((chan? p) (chan-recv p))
        ((task? p) (task-join p))
        (else
         (unless (promise-settled? p)
           (let ((c (make-chan 1)))
             (%set-promise-waiters! p (cons c (%promise-waiters p)))
             (chan-recv c)))
         (if (eq? (%promise-state p) 'rejected) (raise (%promise-value p)) (%promise-value p)))))
(define (async thunk)
  (let ((p (make-promise)))
    (spawn (lambda () (guard (e (#t (promise-reject! p (%unthrown e)))) (promise-resolve! p (thunk)))))
    p))
(define (promise-then p f) (async (lambda () (f (await p)))))
(define (promise-all ps) (async (lambda () (map await ps))))
(define (promise-race ps)
  (let ((r (make-promise)))
    (for-each
      (lambda (p) (spawn (lambda () (guard (e (#t (promise-reject! r e))) (promise-resolve! r (await p))))))
      ps)
    r))
(define (promise-any ps)
  (let ((r (make-promise)) (left (length ps)) (errors '()))
    (for-each
      (lambda (p)
        (spawn (lambda ()
          (guard (e (#t (set! errors (cons e errors))
                        (set! left (- left 1))
                        (when (= left 0) (promise-reject! r (cons 'all-rejected (reverse errors))))))
            (promise-resolve! r (await p))))))
      ps)
    r))

(define %thrown (list 'thrown))
(define (throw err) (raise (cons %thrown err)))
(define (%unthrown e) (if (and (pair? e) (eq? (car e) %thrown)) (cdr e) e))
(define (try thunk handler) (guard (e (#t (handler (%unthrown e)))) (thunk)))

(define (with-nursery body)
  (let ((tasks '()) (errors '()))
    (body (lambda (thunk)
            (let ((t (spawn (lambda () (guard (e (#t (set! errors (cons e errors)) #f)) (thunk))))))
              (set! tasks (cons t tasks))
              t)))
    (let wait ()
      (let ((pending (filter (lambda (t) (not (task-done? t))) tasks)))
        (unless (null? pending) (for-each task-join pending) (wait))))
    (if (null? errors) 'ok (raise (cons 'nursery-errors (reverse errors))))))

(define (with-timeout ms p)
  (promise-race (list p (async (lambda () (sleep ms) (throw 'timeout))))))
(define (cancellable thunk)
  (let ((cancelled (box #f)) (p (make-promise)))
    (spawn (lambda ()
             (let ((result (thunk)))
               (unless (unbox cancelled) (promise-resolve! p result)))))
    (values p (lambda () (set-box! cancelled #t) (promise-reject! p 'cancelled)))))
(define (log-error e)
  (display "error: ")
  (display (if (error-object? e) (error-object-message e) e))
  (newline))
(define (supervised-task thunk . restarts)
  (let ((left (if (null? restarts) 3 (car restarts))))
    (spawn (lambda ()
             (let loop ((left left))
               (guard (e ((> left 0) (log-error e) (loop (- left 1))))
                 (thunk)))))))
"#;
