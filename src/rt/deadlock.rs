//! Deadlock reports: when every task of a runtime waits on omni primitives that only those
//! tasks could ever complete, `block_on` says so (by default it panics with a report naming each
//! task, where it was spawned and what it waits on) instead of hanging without a word, in the
//! spirit of Go's "all goroutines are asleep - deadlock!".
//!
//! # What counts as deadlocked
//!
//! The runtime is deadlocked when, all at once:
//! - nothing is runnable: the run queues and the injector are empty, the `block_on` future was
//!   not woken, and on a multi-thread runtime every worker is parked;
//! - no timer is armed (a sleep, timeout or interval would wake someone), no `spawn_blocking`
//!   job is queued or running, no OS thread started with `omni::thread` from inside the runtime
//!   is alive, and no [`Handle`](crate::Handle) clone other than the runtime's own exists (a
//!   handle can spawn from another thread);
//! - the process runs no thread but the runtime's own (its `block_on` thread, its workers and
//!   its blocking-pool threads): any other thread may hold a channel end it has not used yet,
//!   which nothing in omni can see. So a test harness, a second runtime or a library's
//!   background thread turns reports off (conservatively); a plain program that runs one
//!   runtime from `main` gets them. Linux only (the count is read from `/proc/self/stat`).
//! - and every live task, and the `block_on` future, is *omni-parked*: its last poll returned
//!   `Pending` having registered its waker only with omni primitives of this runtime (channels,
//!   oneshots, broadcasts, selects and join handles created inside it), and no waker of it was
//!   ever kept by anything else.
//!
//! # How a task is known to be omni-parked
//!
//! Omni primitives keep a task's waker through [`keep`], which copies it without calling the
//! waker's `clone`. Every other way to keep a waker calls `clone`, and the `clone` of an omni
//! task waker (and of the `block_on` waker) sets a thread-local flag, read when the poll ends:
//! a poll that cloned its waker marks the task `FOREIGN` in its state word, for good (a foreign
//! future may keep the waker across polls without cloning it again). A primitive that may be
//! completed from outside the runtime marks the task the same way when it registers: a channel
//! created on another runtime, or one used by a `*_blocking` call, and a
//! continuation (`cont::suspend`), whose `Cont` may be on any thread. The runtime counts its
//! `FOREIGN` tasks, so the usual idle runtime (one waiting on I/O or another thread) knows at
//! once that it is not deadlocked, without looking at any task.
//!
//! Each primitive also leaves a *note* of what it waits on (a thread-local word, stored into the
//! task's header when the poll returns `Pending`) for the report.
//!
//! # What omni cannot see
//!
//! Whether a parked task's channel end will ever be used: an end held by another thread (or
//! by a runtime's task that has not parked on it) looks the same as one held by a parked task.
//! That is why any thread outside the runtime turns the check off, rather than risk a report
//! on a program that was only waiting.

use super::shared::Shared;
use crate::task::Id;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// What a runtime does when it finds itself deadlocked (see [`Builder::on_deadlock`]).
///
/// [`Builder::on_deadlock`]: crate::Builder::on_deadlock
///
/// # Examples
///
/// ```
/// use omni::{Builder, OnDeadlock};
///
/// let rt = Builder::new_current_thread().on_deadlock(OnDeadlock::Panic).build().unwrap();
/// let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
///     rt.block_on(async {
///         // Each task waits for the other's message: neither can ever go on.
///         let (tx_a, rx_a) = omni::chan::oneshot::<()>();
///         let (tx_b, rx_b) = omni::chan::oneshot::<()>();
///         let a = omni::spawn(async move { let _ = rx_b.await; drop(tx_a) });
///         let b = omni::spawn(async move { let _ = rx_a.await; drop(tx_b) });
///         let _ = (a.await, b.await);
///     })
/// }));
/// let msg = *result.unwrap_err().downcast::<String>().unwrap();
/// assert!(msg.contains("deadlock"), "{msg}");
/// ```
#[derive(Clone, Default)]
pub enum OnDeadlock {
    /// `block_on` panics with the report as its message (the default).
    #[default]
    Panic,
    /// The runtime waits on, as if it had not noticed.
    Ignore,
    /// The function gets the report on the `block_on` thread, then the runtime waits on (as
    /// with `Ignore`); it may panic to end `block_on` instead. It is called once per
    /// deadlock: again only after some task ran in between.
    Call(Arc<dyn Fn(&DeadlockReport) + Send + Sync>),
}

impl OnDeadlock {
    /// `OnDeadlock::Call` with `f`.
    pub fn call(f: impl Fn(&DeadlockReport) + Send + Sync + 'static) -> OnDeadlock {
        OnDeadlock::Call(Arc::new(f))
    }
}

impl fmt::Debug for OnDeadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnDeadlock::Panic => "Panic",
            OnDeadlock::Ignore => "Ignore",
            OnDeadlock::Call(_) => "Call(..)",
        })
    }
}

/// Every task of a deadlocked runtime and what it waits on; its `Display` is the message
/// `block_on` panics with.
#[derive(Debug, Clone)]
pub struct DeadlockReport {
    tasks: Vec<BlockedTask>,
}

impl DeadlockReport {
    /// The blocked tasks: the `block_on` future first, then the spawned tasks by id.
    pub fn tasks(&self) -> &[BlockedTask] {
        &self.tasks
    }
}

impl fmt::Display for DeadlockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "omni: deadlock: all {} tasks are waiting, and nothing can wake any of them",
            self.tasks.len()
        )?;
        for t in &self.tasks {
            writeln!(f, "  {t}")?;
        }
        write!(
            f,
            "(no timer, blocking job, I/O, other thread or handle could change that; to wait \
             on regardless, build the runtime with Builder::on_deadlock(OnDeadlock::Ignore))"
        )
    }
}

/// One task of a [`DeadlockReport`].
#[derive(Debug, Clone)]
pub struct BlockedTask {
    id: Option<Id>,
    spawned_at: Option<&'static Location<'static>>,
    waits_on: WaitsOn,
    others: usize,
}

impl BlockedTask {
    /// The task's id; `None` for the `block_on` future.
    pub fn id(&self) -> Option<Id> {
        self.id
    }

    /// Where the task was spawned (for the `block_on` future, where `block_on` was called), if
    /// known.
    pub fn spawned_at(&self) -> Option<&'static Location<'static>> {
        self.spawned_at
    }

    /// What the task waits on (for a `select`, one of its arms).
    pub fn waits_on(&self) -> &WaitsOn {
        &self.waits_on
    }

    /// How many other waits the task registered in the same poll (the other arms of a
    /// `select`).
    pub fn other_waits(&self) -> usize {
        self.others
    }
}

impl fmt::Display for BlockedTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "task {id}")?,
            None => f.write_str("block_on future")?,
        }
        if let Some(at) = self.spawned_at {
            let verb = if self.id.is_some() { "spawned" } else { "called" };
            write!(f, " ({verb} at {at})")?;
        }
        write!(f, " waits on {}", self.waits_on)?;
        if self.others > 0 {
            write!(f, " and {} other arm(s) of a select", self.others)?;
        }
        Ok(())
    }
}

/// What a blocked task waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitsOn {
    /// `recv` on an `omni::chan` channel created at `channel`.
    Recv {
        /// Where the channel was created.
        channel: &'static Location<'static>,
    },
    /// `send` on an `omni::chan` channel created at `channel`.
    Send {
        /// Where the channel was created.
        channel: &'static Location<'static>,
    },
    /// A oneshot receiver (or a oneshot sender's `closed`), created at `channel`.
    Oneshot {
        /// Where the oneshot was created.
        channel: &'static Location<'static>,
    },
    /// `recv` on a broadcast channel created at `channel`.
    Broadcast {
        /// Where the channel was created.
        channel: &'static Location<'static>,
    },
    /// A `JoinHandle` of the task `task` (`None` if that task is gone).
    Join {
        /// The awaited task.
        task: Option<Id>,
    },
    /// Nothing: its last poll returned `Pending` without keeping its waker anywhere, so it
    /// can never be woken (a future that forgot to register, or `std::future::pending`).
    Nothing,
}

impl fmt::Display for WaitsOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitsOn::Recv { channel } => write!(f, "recv on the channel created at {channel}"),
            WaitsOn::Send { channel } => write!(f, "send on the channel created at {channel}"),
            WaitsOn::Oneshot { channel } => write!(f, "the oneshot created at {channel}"),
            WaitsOn::Broadcast { channel } => {
                write!(f, "recv on the broadcast channel created at {channel}")
            }
            WaitsOn::Join { task: Some(id) } => write!(f, "the JoinHandle of task {id}"),
            WaitsOn::Join { task: None } => f.write_str("the JoinHandle of a finished task"),
            WaitsOn::Nothing => f.write_str(
                "nothing (its last poll returned Pending without keeping its waker, so it can \
                 never be woken)",
            ),
        }
    }
}

// ---- Notes: what a poll waited on --------------------------------------------------------------

/// The kind of a wait, in the top byte of a note.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Kind {
    Recv = 1,
    Send = 2,
    Oneshot = 3,
    Broadcast = 4,
    /// The payload is the joined task's key index.
    Join = 5,
}

const KIND_SHIFT: u32 = 56;
const OTHERS_SHIFT: u32 = 48;
const PAYLOAD: u64 = (1 << OTHERS_SHIFT) - 1;

/// Encodes a wait: kind, payload (a `&'static Location` address or a task index).
fn encode(kind: Kind, payload: u64) -> u64 {
    debug_assert!(payload <= PAYLOAD, "note payload does not fit 48 bits");
    (u64::from(kind as u8) << KIND_SHIFT) | (payload & PAYLOAD)
}

/// Decodes a stored note; `index_to_id` names a joined task by its key index.
fn decode(note: u64, index_to_id: impl Fn(u32) -> Option<Id>) -> (WaitsOn, usize) {
    let others = ((note >> OTHERS_SHIFT) & 0xff) as usize;
    let payload = note & PAYLOAD;
    let loc = || {
        // SAFETY: every note of these kinds was encoded from a `&'static Location<'static>`
        // address by `Origin::note` (user space addresses fit 48 bits; checked there).
        unsafe { &*(payload as usize as *const Location<'static>) }
    };
    let w = match ((note >> KIND_SHIFT) & 0x7f) as u8 {
        1 => WaitsOn::Recv { channel: loc() },
        2 => WaitsOn::Send { channel: loc() },
        3 => WaitsOn::Oneshot { channel: loc() },
        4 => WaitsOn::Broadcast { channel: loc() },
        5 => WaitsOn::Join { task: index_to_id(payload as u32) },
        _ => WaitsOn::Nothing,
    };
    (w, others)
}

/// Set in the poll word when the poll was foreign: the waker was cloned (by something other
/// than an omni primitive), or registered with a primitive that may be completed from outside
/// the runtime.
const FOREIGN_BIT: u64 = 1 << 63;

/// What the poll running on this thread did with its waker: one word (the last wait noted,
/// with the count of a select's other arms, and [`FOREIGN_BIT`]), and the id of the runtime
/// that polls on this thread (set by `context::enter`).
struct PollNote {
    word: Cell<u64>,
    runtime: Cell<u64>,
}

thread_local! {
    static POLL: PollNote =
        const { PollNote { word: Cell::new(0), runtime: Cell::new(0) } };
}

/// Called by the `clone` of an omni task waker and of the `block_on` waker: someone other than
/// an omni primitive keeps the waker.
#[inline]
pub(crate) fn mark_foreign() {
    POLL.with(|p| p.word.set(p.word.get() | FOREIGN_BIT));
}

/// Before a task (or a `block_on` future) is polled on this thread.
#[inline]
pub(crate) fn begin_poll() {
    POLL.with(|p| p.word.set(0));
}

/// The runtime that polls on this thread from now on (`context::enter` calls it); returns the
/// one before.
pub(crate) fn set_runtime(runtime: u64) -> u64 {
    POLL.with(|p| p.runtime.replace(runtime))
}

/// After the poll: whether it was foreign, and its note.
#[inline]
pub(crate) fn end_poll() -> (bool, u64) {
    let w = POLL.with(|p| p.word.get());
    (w & FOREIGN_BIT != 0, w & !FOREIGN_BIT)
}

/// Records a wait of this poll (`word`, 0 for none worth naming; the last one noted wins),
/// marking the poll foreign too if `foreign`.
#[inline]
fn record(p: &PollNote, word: u64, foreign: bool) {
    let mark = (p.word.get() & FOREIGN_BIT) | if foreign { FOREIGN_BIT } else { 0 };
    p.word.set(word | mark);
}

/// A `select` parked on `arms` arms (after each arm noted its wait): records the count of the
/// others in the note.
pub(crate) fn note_arms(arms: usize) {
    let others = (arms.saturating_sub(1)).min(0xff) as u64;
    POLL.with(|p| {
        let w = p.word.get();
        if w & !FOREIGN_BIT != 0 {
            p.word.set((w & !(0xff << OTHERS_SHIFT)) | (others << OTHERS_SHIFT));
        }
    });
}

/// A primitive registered a waker: notes a join of the task with key index `index`; `foreign`
/// if that task belongs to another runtime.
#[inline]
pub(crate) fn note_join(index: u32, foreign: bool) {
    POLL.with(|p| record(p, encode(Kind::Join, u64::from(index)), foreign));
}

/// A copy of `w` for an omni primitive to keep: an omni task waker is copied without calling its
/// `clone` (so the poll does not count as foreign), the `block_on` waker likewise, any other
/// waker is cloned.
#[inline]
pub(crate) fn keep(w: &Waker) -> Waker {
    if let Some(key) = crate::task::waker::key_of(w) {
        return crate::task::waker::for_key(key);
    }
    super::current_thread::keep_main_waker(w).unwrap_or_else(|| w.clone())
}

/// Where a channel was created and whether it can be completed from outside its runtime.
#[derive(Debug)]
pub(crate) struct Origin {
    site: &'static Location<'static>,
    /// The id of the runtime it was created in (0: none).
    home: u64,
    /// Set for good once a `*_blocking` call used the channel.
    external: AtomicBool,
}

impl Origin {
    /// The origin of a channel created by the caller's caller.
    #[track_caller]
    pub(crate) fn here() -> Origin {
        Origin {
            site: Location::caller(),
            home: super::context::runtime_id(),
            external: AtomicBool::new(false),
        }
    }

    /// A blocking call used the channel: an OS thread holds an end.
    pub(crate) fn set_external(&self) {
        if !self.external.load(Relaxed) {
            self.external.store(true, Relaxed);
        }
    }

    /// A task registered a waker with the channel: notes the wait, and marks the poll foreign
    /// if the channel may be completed from outside the runtime polling it.
    #[inline]
    pub(crate) fn note(&self, kind: Kind) {
        let addr = self.site as *const Location<'static> as usize as u64;
        let home = self.home;
        let external = self.external.load(Relaxed);
        POLL.with(|p| {
            // Created on another runtime, whose tasks may hold its ends (created outside any
            // runtime is fine: the creating thread is either in `block_on` now, or another
            // thread, which the thread count sees).
            let foreign = external || (home != 0 && home != p.runtime.get());
            record(p, if addr <= PAYLOAD { encode(kind, addr) } else { 0 }, foreign);
        });
    }
}

// ---- The runtime's side ------------------------------------------------------------------------

/// What a runtime keeps to tell a deadlock from a wait.
pub(crate) struct Watch {
    policy: Mutex<OnDeadlock>,
    /// False with `OnDeadlock::Ignore`: nothing is checked.
    pub(crate) enabled: AtomicBool,
    /// Live tasks whose state word has `FOREIGN`.
    pub(crate) foreign_tasks: AtomicUsize,
    /// Live `Handle`s, the runtime's own included.
    pub(crate) handles: AtomicUsize,
    /// Live OS threads started with `omni::thread` from inside the runtime.
    pub(crate) threads: AtomicUsize,
    /// The `block_on` future is foreign (multi-thread: read by the workers).
    pub(crate) main_foreign: AtomicBool,
    /// The `block_on` thread is parked and wants to hear when every worker parks.
    pub(crate) main_parked: AtomicBool,
}

impl Watch {
    pub(crate) fn new() -> Watch {
        Watch {
            policy: Mutex::new(OnDeadlock::Panic),
            enabled: AtomicBool::new(true),
            foreign_tasks: AtomicUsize::new(0),
            handles: AtomicUsize::new(0),
            threads: AtomicUsize::new(0),
            main_foreign: AtomicBool::new(false),
            main_parked: AtomicBool::new(false),
        }
    }

    pub(crate) fn set_policy(&self, p: OnDeadlock) {
        self.enabled.store(!matches!(p, OnDeadlock::Ignore), Relaxed);
        *self.policy.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// What the runtime's counts say: no foreign task or `block_on` future, no handle out, no
    /// omni thread alive (`Shared::quiet_outside` adds the rest).
    pub(crate) fn nothing_outside(&self) -> bool {
        self.enabled.load(Relaxed)
            && !self.main_foreign.load(SeqCst)
            && self.foreign_tasks.load(SeqCst) == 0
            && self.handles.load(SeqCst) <= 1
            && self.threads.load(SeqCst) == 0
    }

    /// Acts on a report: panics, calls the callback, or nothing.
    pub(crate) fn act(&self, report: DeadlockReport) {
        let policy = self.policy.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match policy {
            OnDeadlock::Panic => panic!("{report}"),
            OnDeadlock::Ignore => {}
            OnDeadlock::Call(f) => f(&report),
        }
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("foreign_tasks", &self.foreign_tasks.load(Relaxed))
            .field("handles", &self.handles.load(Relaxed))
            .field("threads", &self.threads.load(Relaxed))
            .finish()
    }
}

/// Whether the process runs no thread but the runtime's own `known` ones (its `block_on`
/// thread, workers and blocking-pool threads). Any other thread may hold a channel end or a
/// `Cont` and complete a wait, so a runtime is only reported while it is alone in its process.
/// Read from `/proc/self/stat` (Linux); elsewhere omni cannot tell, and reports nothing.
pub(crate) fn only_our_threads(known: usize) -> bool {
    process_threads().is_some_and(|n| n <= known)
}

fn process_threads() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces and parentheses): state is field 3,
    // num_threads field 20.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(17)?.parse().ok()
}

/// The `block_on` future's part in a check.
pub(crate) struct Main {
    pub(crate) at: &'static Location<'static>,
    pub(crate) note: u64,
    /// A report was made and no task or future ran since.
    pub(crate) reported: bool,
}

impl Main {
    /// A `block_on` called at `at` starts on `shared`: its future is not foreign yet.
    pub(crate) fn start(shared: &Shared, at: &'static Location<'static>) -> Main {
        shared.watch.main_foreign.store(false, SeqCst);
        Main { at, note: 0, reported: false }
    }

    /// Polls the `block_on` future, noting what it waits on and whether it is foreign.
    pub(crate) fn poll<F: Future>(
        &mut self,
        shared: &Shared,
        fut: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<F::Output> {
        begin_poll();
        let r = fut.poll(cx);
        if r.is_pending() {
            let (foreign, note) = end_poll();
            self.note = note;
            self.reported = false;
            if foreign {
                shared.watch.main_foreign.store(true, SeqCst);
            }
        }
        r
    }
}

/// Looks at every task of the runtime `owner` (whose thread the caller is): returns the report
/// if every live task is idle and not foreign, `None` as soon as one is runnable or foreign.
pub(crate) fn scan(owner: *const (), main: &Main) -> Option<DeadlockReport> {
    use crate::task::raw::Header;
    use crate::task::state::{COMPLETE, FOREIGN, NOTIFIED, RUNNING, SCHEDULED};
    use crate::task::table;
    let mut tasks = Vec::new();
    let mut ids = std::collections::HashMap::new();
    for chunk in table::chunks_owned_by(owner) {
        let Some(entry) = table::entry(chunk) else { continue };
        for slot in 0..table::SLOTS_PER_CHUNK {
            let h = entry.owner_slot(slot) as *const Header;
            if h.is_null() {
                break;
            }
            // SAFETY: the caller is a thread of the owning runtime, so its chunks stay
            // allocated (table rule 1); every slot holds an initialised header.
            let header = unsafe { &*h };
            let s = header.state.load();
            if s.generation() % 2 == 0 || s.has(COMPLETE) {
                continue;
            }
            if s.has(SCHEDULED) || s.has(RUNNING) || s.has(NOTIFIED) || s.has(FOREIGN) {
                return None;
            }
            let index = (chunk << table::SLOT_BITS) | slot as u32;
            let id = Id(crate::task::key(index, s.generation()));
            ids.insert(index, id);
            tasks.push((id, header.spawned_at(), header.wait.load(Relaxed)));
        }
    }
    tasks.sort_by_key(|t| (t.0 .0 as u32, t.0 .0 >> 32));
    let name = |index: u32| ids.get(&index).copied();
    let mut report = Vec::with_capacity(tasks.len() + 1);
    let (waits_on, others) = decode(main.note, name);
    report.push(BlockedTask { id: None, spawned_at: Some(main.at), waits_on, others });
    for (id, spawned_at, note) in tasks {
        let (waits_on, others) = decode(note, name);
        report.push(BlockedTask { id: Some(id), spawned_at, waits_on, others });
    }
    Some(DeadlockReport { tasks: report })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn notes_round_trip_and_count_other_arms() {
        let at = Location::caller();
        set_runtime(1);
        begin_poll();
        let origin = Origin { site: at, home: u64::MAX, external: AtomicBool::new(false) };
        origin.note(Kind::Send);
        origin.note(Kind::Recv);
        note_arms(2);
        let (foreign, word) = end_poll();
        assert!(foreign, "a channel of another runtime may be completed from outside");
        let (w, others) = decode(word, |_| None);
        assert_eq!(w, WaitsOn::Recv { channel: at }, "the last arm noted is named");
        assert_eq!(others, 1);
        begin_poll();
        note_join(7, false);
        let (foreign, word) = end_poll();
        assert!(!foreign);
        let (w, _) = decode(word, |i| (i == 7).then_some(Id(crate::task::key(7, 1))));
        assert_eq!(w, WaitsOn::Join { task: Some(Id(crate::task::key(7, 1))) });
        assert_eq!(decode(0, |_| None).0, WaitsOn::Nothing);
    }

    #[test]
    fn ignore_turns_the_check_off() {
        let w = Watch::new();
        w.handles.store(1, SeqCst);
        assert!(w.nothing_outside());
        w.set_policy(OnDeadlock::Ignore);
        assert!(!w.nothing_outside());
        w.set_policy(OnDeadlock::call(|_| ()));
        assert!(w.nothing_outside());
        w.threads.store(1, SeqCst);
        assert!(!w.nothing_outside(), "a live omni thread may complete any wait");
    }

    #[test]
    fn this_process_has_more_threads_than_none() {
        let n = process_threads().expect("/proc/self/stat on Linux");
        assert!(n >= 1);
        assert!(!only_our_threads(n - 1));
        assert!(only_our_threads(n));
    }

    #[test]
    fn cloning_an_omni_waker_marks_the_poll_foreign_but_keep_does_not() {
        let w = crate::task::waker::for_key(crate::task::key(3, 1));
        begin_poll();
        let kept = keep(&w);
        assert!(!end_poll().0, "keep must not count as a foreign clone");
        let cloned = w.clone();
        assert!(end_poll().0, "a plain clone must count as foreign");
        drop((kept, cloned));
    }
}
