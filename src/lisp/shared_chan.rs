//! Channels shared between OS threads.
//!
//! A channel is local while one interpreter knows it (see `tasks`). When it crosses to
//! another thread it becomes *shared*, in place, as atoms do: its state moves into one
//! [`SharedChan`] behind a mutex, its buffered values are packed (`migrate`), and the tasks
//! of this interpreter blocked on it become waiters of the shared channel. From then on a
//! value sent is packed by the sender and opened by the receiver, in the receiver's heap.
//!
//! # Waking a task of another thread
//!
//! Each interpreter has a [`Home`]: an inbox of [`Delivery`]s and a condition variable. An
//! operation that completes a waiter of another interpreter (a send that meets a blocked
//! receiver, a receive that frees a blocked sender, a close) puts a delivery in the waiter's
//! home, under the channel's lock. The waiter's scheduler takes its deliveries whenever it
//! switches tasks (and a busy task is preempted when some arrived), and when no task can
//! run but some wait on shared channels, it sleeps on the condition variable instead of
//! reporting a deadlock at once: another thread may still complete them. A deadlock across
//! threads is found by counting the interpreters of the program that run ([`Family`]):
//! when the last one goes to sleep (or blocks in `thread-join`), every sleeper wakes and
//! reports the deadlock, as a single interpreter does, instead of hanging.
//!
//! # Nothing lost
//!
//! A value is handed to a waiter only through its home, and a home that is closed (its
//! interpreter ended) refuses it, so the value goes to the next waiter or stays in the
//! channel. Values delivered but never taken (the interpreter ended first, or the task left
//! its wait: a top-level error, a cancellation that lost the race) are put back at the front
//! of the channel's buffer, where the next receiver gets them.
//!
//! # `select`
//!
//! A `select` with a clause on a shared channel waits with a *claim*, a flag shared by all of
//! its clauses. Whatever completes one of its clauses, a thread operating on a shared channel
//! or this interpreter operating on a local channel or firing its timeout, first sets the
//! flag, and only the one that set it goes on: the others skip that waiter as if it were not
//! there, so exactly one clause happens and no value is taken by a clause that does not fire.
//! A select checks each shared channel again under the channel's lock when it queues there,
//! so a value that arrived after its first look is not missed.
//!
//! Time: under the paused clock (`Interp::pause_clock`, as the tests run), each interpreter
//! jumps to its own next deadline as soon as none of its own tasks can run; it does not wait
//! for other threads first. So a `select` timeout (or a `sleep`) racing a value that another
//! thread is about to send is decided by the real order of events there, not by the paused
//! time; the thread tests do not mix the two.

use super::eval::{error_at, Interp, LispError, Loc, State};
use super::heap::{Obj, Value};
use super::migrate::{export, import, Migrant};
use super::tasks::{Conc, Resume, Wait};
use std::collections::VecDeque;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

type Fail = Box<LispError>;

/// The interpreters of one program: the first and the threads started from it, transitively.
/// How many of them are running tells a deadlock across threads: an interpreter is not
/// running while it sleeps with no deadline until another thread delivers (`Home::wait`) or
/// while it joins a thread that has not ended. When the last one stops, nothing can wake any
/// of them, and every one asleep wakes to report the deadlock (a thread whose program then
/// fails ends, which lets its joiner go on).
///
/// Lock order: a channel's, then the family's, then a home's inbox.
#[derive(Debug)]
pub(crate) struct Family {
    st: Mutex<FamilyState>,
    /// How many deadlocks were found: an interpreter asleep that sees it change wakes.
    deadlocks: AtomicU64,
}

#[derive(Debug)]
struct FamilyState {
    running: usize,
    homes: Vec<Weak<Home>>,
    /// Threads (by `thread-spawn` id) that ended, and those a joiner is blocked on.
    ended: HashSet<u64>,
    joined: HashSet<u64>,
    /// Tasks parked in `thread-join` of a thread (by id) that has not ended: its end is
    /// delivered to each one's home.
    watchers: HashMap<u64, Vec<(Weak<Home>, u64)>>,
}

impl Default for Family {
    fn default() -> Family {
        let st = FamilyState {
            running: 1,
            homes: Vec::new(),
            ended: HashSet::new(),
            joined: HashSet::new(),
            watchers: HashMap::new(),
        };
        Family { st: Mutex::new(st), deadlocks: AtomicU64::new(0) }
    }
}

impl Family {
    /// [`Family::stop_one`], and when that finds the deadlock, wakes every sleeper (after
    /// letting go of the lock).
    fn stop(&self, mut st: MutexGuard<'_, FamilyState>) {
        if self.stop_one(&mut st) {
            drop(st);
            self.wake_all();
        }
    }

    /// One running less: when none is left, a deadlock, and every sleeper wakes.
    fn stop_one(&self, st: &mut FamilyState) -> bool {
        st.running = st.running.saturating_sub(1);
        if st.running > 0 {
            return false;
        }
        self.deadlocks.fetch_add(1, Ordering::AcqRel);
        true
    }

    fn wake_all(&self) {
        let homes: Vec<Arc<Home>> = lock(&self.st).homes.iter().filter_map(Weak::upgrade).collect();
        for h in homes {
            let _inbox = lock(&h.inbox);
            h.arrived.notify_all();
        }
    }

    /// A thread is starting: it runs.
    pub(crate) fn thread_starts(&self) {
        lock(&self.st).running += 1;
    }

    /// Thread `id` ended (or never started): its joiner, if one is blocked, runs again, and
    /// the tasks parked joining it are told, before the thread stops counting as running (so
    /// an idle joiner is running again first, and no deadlock is seen in between).
    pub(crate) fn thread_ends(&self, id: u64) {
        let mut st = lock(&self.st);
        for (home, task) in st.watchers.remove(&id).unwrap_or_default() {
            if let Some(home) = home.upgrade() {
                // A closed home refuses it: its interpreter ended, nobody waits there.
                let _ =
                    home.deliver_locked(&mut st, Delivery { task, what: Delivered::ThreadEnded });
            }
        }
        if st.joined.remove(&id) {
            return;
        }
        st.ended.insert(id);
        self.stop(st);
    }

    /// Task `task` of the interpreter at `home` parks joining thread `id`; `false` when the
    /// thread ended already (join it now: that does not block).
    pub(crate) fn watch(&self, id: u64, home: &Arc<Home>, task: u64) -> bool {
        let mut st = lock(&self.st);
        if st.ended.contains(&id) {
            return false;
        }
        st.watchers.entry(id).or_default().push((Arc::downgrade(home), task));
        true
    }

    /// The caller is about to block joining thread `id`.
    pub(crate) fn joins(&self, id: u64) {
        let mut st = lock(&self.st);
        if st.ended.remove(&id) {
            return;
        }
        st.joined.insert(id);
        self.stop(st);
    }
}

/// Where the deliveries for one interpreter's tasks arrive.
#[derive(Debug)]
pub(crate) struct Home {
    /// `None` once the interpreter ended.
    inbox: Mutex<Option<Vec<Delivery>>>,
    /// Whether the inbox may hold something: read without the lock on the hot path.
    pending: AtomicBool,
    arrived: Condvar,
    family: Arc<Family>,
    /// Asleep with no deadline, counted as not running; changed under the family's lock.
    blocked: AtomicBool,
}

/// How a wait for other threads ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Woke {
    /// No task waits on a shared channel: nothing to wait for.
    Nothing,
    /// Something arrived, or the time passed.
    Arrived,
    /// Every interpreter of the program waits: a deadlock.
    Deadlock,
}

/// What completes a task's wait on a shared channel.
#[derive(Debug)]
pub(crate) struct Delivery {
    task: u64,
    what: Delivered,
}

#[derive(Debug)]
enum Delivered {
    /// A value received, and the channel it goes back to if nobody takes it.
    Value(Box<Migrant>, Arc<SharedChan>),
    /// A blocked send happened.
    Sent,
    /// The channel was closed while the task waited to receive.
    Eof,
    /// The channel was closed while the task waited to send.
    Closed,
    /// The thread the task joins ended.
    ThreadEnded,
    /// Clause `.2` of a `select` received a value (given back to the channel if unused).
    SelectValue(Box<Migrant>, Arc<SharedChan>, usize),
    /// Clause `.0` of a `select` sent its value.
    SelectSent(usize),
    /// The channel of receive clause `.0` of a `select` was closed.
    SelectEof(usize),
}

impl Home {
    /// A home for an interpreter of `family`.
    pub(crate) fn new(family: Arc<Family>) -> Arc<Home> {
        let h = Arc::new(Home {
            inbox: Mutex::new(Some(Vec::new())),
            pending: AtomicBool::new(false),
            arrived: Condvar::new(),
            family,
            blocked: AtomicBool::new(false),
        });
        let mut family = lock(&h.family.st);
        family.homes.retain(|w| w.strong_count() > 0);
        family.homes.push(Arc::downgrade(&h));
        drop(family);
        h
    }

    /// The family of the interpreter it is the home of.
    pub(crate) fn family(&self) -> &Arc<Family> {
        &self.family
    }

    /// Puts `d` in the inbox; a closed home hands it back.
    fn deliver(&self, d: Delivery) -> Result<(), Delivery> {
        let mut family = lock(&self.family.st);
        self.deliver_locked(&mut family, d)
    }

    /// [`Home::deliver`] with the family's lock held already.
    fn deliver_locked(&self, family: &mut FamilyState, d: Delivery) -> Result<(), Delivery> {
        let mut inbox = lock(&self.inbox);
        match inbox.as_mut() {
            None => Err(d),
            Some(v) => {
                v.push(d);
                if self.blocked.swap(false, Ordering::AcqRel) {
                    family.running += 1;
                }
                self.pending.store(true, Ordering::Release);
                self.arrived.notify_one();
                Ok(())
            }
        }
    }

    /// Whether deliveries may be waiting.
    pub(crate) fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    fn take(&self) -> Vec<Delivery> {
        let mut inbox = lock(&self.inbox);
        self.pending.store(false, Ordering::Release);
        inbox.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Sleeps until a delivery arrives, or `timeout` passed, or (with no timeout) every
    /// interpreter of the family waits.
    fn wait(&self, timeout: Option<Duration>) -> Woke {
        let seen = self.family.deadlocks.load(Ordering::Acquire);
        if timeout.is_none() {
            let family = lock(&self.family.st);
            let inbox = lock(&self.inbox);
            if inbox.as_ref().is_none_or(|v| !v.is_empty()) {
                return Woke::Arrived;
            }
            drop(inbox);
            self.blocked.store(true, Ordering::Release);
            self.family.stop(family);
        }
        let mut inbox = lock(&self.inbox);
        let mut woke = Woke::Arrived;
        // Until something arrived, or the home closed.
        while inbox.as_ref().is_some_and(|v| v.is_empty()) {
            if self.family.deadlocks.load(Ordering::Acquire) != seen && timeout.is_none() {
                woke = Woke::Deadlock;
                break;
            }
            match timeout {
                None => inbox = self.arrived.wait(inbox).unwrap_or_else(|p| p.into_inner()),
                Some(t) => {
                    let (g, r) =
                        self.arrived.wait_timeout(inbox, t).unwrap_or_else(|p| p.into_inner());
                    inbox = g;
                    if r.timed_out() {
                        break;
                    }
                }
            }
        }
        drop(inbox);
        if timeout.is_none() {
            // Woken by a deadlock, it runs again to report it (a delivery counted it already).
            let mut family = lock(&self.family.st);
            if self.blocked.swap(false, Ordering::AcqRel) {
                family.running += 1;
            }
        }
        woke
    }

    /// Closes the home (its interpreter is ending): values delivered but not taken go back
    /// to their channels.
    pub(crate) fn close(&self) {
        let left = lock(&self.inbox).take().unwrap_or_default();
        for d in left {
            if let Delivered::Value(pkg, chan) | Delivered::SelectValue(pkg, chan, _) = d.what {
                give_back(&chan, *pkg);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves whole values behind: a panic in one leaves them usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A task of some interpreter blocked on a shared channel.
#[derive(Debug)]
struct Waiter {
    home: Arc<Home>,
    task: u64,
    /// For a `select`: its claim and the index of this clause.
    select: Option<(Arc<AtomicBool>, usize)>,
}

impl Waiter {
    /// Claims the waiter: always for a plain wait, and for a `select` only if no other of its
    /// clauses happened first.
    fn claim(&self) -> bool {
        self.select.as_ref().is_none_or(|(c, _)| {
            c.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
        })
    }

    /// What completes this waiter's receive with `pkg` from `chan`.
    fn received(&self, pkg: Migrant, chan: &Arc<SharedChan>) -> Delivered {
        match self.select {
            Some((_, k)) => Delivered::SelectValue(Box::new(pkg), chan.clone(), k),
            None => Delivered::Value(Box::new(pkg), chan.clone()),
        }
    }

    /// What completes this waiter's send.
    fn sent(&self) -> Delivered {
        self.select.as_ref().map_or(Delivered::Sent, |(_, k)| Delivered::SelectSent(*k))
    }
}

/// The state of a channel that several threads hold.
#[derive(Debug)]
pub(crate) struct SharedChan {
    st: Mutex<ChanState>,
}

#[derive(Debug)]
struct ChanState {
    cap: usize,
    buf: VecDeque<Migrant>,
    receivers: VecDeque<Waiter>,
    senders: VecDeque<(Waiter, Migrant)>,
    closed: bool,
}

/// Puts back a value delivered but never taken: to a receiver waiting now, or at the front
/// of the buffer, where the next receiver gets it.
fn give_back(chan: &Arc<SharedChan>, pkg: Migrant) {
    let mut st = lock(&chan.st);
    if let Some(pkg) = to_receiver(&mut st, chan, pkg) {
        st.buf.push_front(pkg);
    }
}

/// A shared channel's cell in the heap (opaque).
pub struct SharedChanCell(pub(crate) Arc<SharedChan>);

impl fmt::Debug for SharedChanCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedChanCell")
    }
}

impl SharedChanCell {
    pub(crate) fn describe(&self) -> String {
        let st = lock(&self.0.st);
        super::tasks::describe_chan("shared ", st.cap, st.buf.len(), st.closed)
    }
}

/// Hands `pkg` to the first receiver whose home takes it; gives it back when none does.
fn to_receiver(st: &mut ChanState, chan: &Arc<SharedChan>, mut pkg: Migrant) -> Option<Migrant> {
    while let Some(w) = st.receivers.pop_front() {
        if !w.claim() {
            continue; // a select another of whose clauses happened
        }
        let d = Delivery { task: w.task, what: w.received(pkg, chan) };
        match w.home.deliver(d) {
            Ok(()) => return None,
            Err(Delivery {
                what: Delivered::Value(p, _) | Delivered::SelectValue(p, _, _),
                ..
            }) => pkg = *p,
            Err(_) => unreachable!("handed back as given"),
        }
    }
    Some(pkg)
}

/// Hands `pkg` to a receiver or buffers it; gives it back when there is neither a receiver
/// nor room.
fn offer(st: &mut ChanState, chan: &Arc<SharedChan>, pkg: Migrant) -> Option<Migrant> {
    let pkg = to_receiver(st, chan, pkg)?;
    if st.buf.len() < st.cap {
        st.buf.push_back(pkg);
        return None;
    }
    Some(pkg)
}

/// Takes a value without waiting: from the buffer (a blocked sender's value then takes the
/// freed place) or from a blocked sender, whose send then happened.
fn take_now(st: &mut ChanState) -> Option<Migrant> {
    if let Some(v) = st.buf.pop_front() {
        // The freed place goes to the first blocked sender that can still send.
        if let Some((w, pkg)) = pop_sender(st) {
            st.buf.push_back(pkg);
            let _ = w.home.deliver(Delivery { task: w.task, what: w.sent() });
        }
        return Some(v);
    }
    let (w, pkg) = pop_sender(st)?;
    let _ = w.home.deliver(Delivery { task: w.task, what: w.sent() });
    Some(pkg)
}

/// The first blocked sender that can still send (claimed, if it is a `select`'s clause).
fn pop_sender(st: &mut ChanState) -> Option<(Waiter, Migrant)> {
    while let Some((w, pkg)) = st.senders.pop_front() {
        if w.claim() {
            return Some((w, pkg));
        }
    }
    None
}

/// What queuing a `select` clause on a shared channel came to.
pub(crate) enum SelectReg {
    /// Queued: the clause waits there.
    Queued,
    /// The clause happened now (the select's claim is set), with this value.
    Fired(Value),
    /// Another clause of the select happened first (its delivery is on the way).
    Lost,
}

/// Sets a select's claim: `true` if no clause of it happened before.
fn claim_own(claim: &AtomicBool) -> bool {
    claim.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
}

/// The shared channel `v` is, if it is one.
pub(crate) fn shared_chan(i: &Interp, v: Value) -> Option<Arc<SharedChan>> {
    let Value::Ref(r) = v else { return None };
    match i.heap.get(r) {
        Ok(Obj::Conc(Conc::SharedChan(c))) => Some(c.0.clone()),
        _ => None,
    }
}

impl Interp {
    /// Makes local channel `r` shared (see the module doc): its buffered values packed, its
    /// blocked tasks made waiters.
    ///
    /// # Errors
    ///
    /// When a `select` waits on it, or a buffered value cannot cross.
    pub(crate) fn share_chan(&mut self, r: super::heap::Ref) -> Result<Arc<SharedChan>, String> {
        let Ok(Obj::Conc(Conc::Chan(c))) = self.heap.get(r) else { unreachable!("a channel") };
        let waiting: Vec<u64> =
            c.receivers.iter().copied().chain(c.senders.iter().map(|(s, _)| *s)).collect();
        if waiting.iter().any(|t| matches!(self.task_wait(*t), Some(Wait::Select { .. }))) {
            return Err("a channel a select waits on cannot move to another thread".into());
        }
        let (cap, closed) = (c.cap, c.closed);
        let (buf, receivers, senders): (Vec<Value>, Vec<u64>, Vec<(u64, Value)>) = (
            c.buf.iter().copied().collect(),
            c.receivers.iter().copied().collect(),
            c.senders.iter().copied().collect(),
        );
        let mut st = ChanState {
            cap,
            buf: VecDeque::new(),
            receivers: VecDeque::new(),
            senders: VecDeque::new(),
            closed,
        };
        for v in buf {
            st.buf.push_back(export(self, &[v])?);
        }
        for (t, v) in senders {
            st.senders.push_back((
                Waiter { home: self.home(), task: t, select: None },
                export(self, &[v])?,
            ));
        }
        for t in receivers {
            st.receivers.push_back(Waiter { home: self.home(), task: t, select: None });
        }
        let shared = Arc::new(SharedChan { st: Mutex::new(st) });
        let ch = Value::Ref(r);
        for t in waiting {
            self.set_task_wait(t, |w| match w {
                Wait::Recv(l, c) if *c == ch => Some(Wait::SharedRecv(l.clone(), shared.clone())),
                Wait::Send(l, c) if *c == ch => Some(Wait::SharedSend(l.clone(), shared.clone())),
                _ => None,
            });
        }
        let cell = SharedChanCell(shared.clone());
        let _ = self.heap.update(r, |o| *o = Obj::Conc(Conc::SharedChan(cell)));
        Ok(shared)
    }

    /// `chan-send` on a shared channel.
    pub(crate) fn shared_send(
        &mut self,
        chan: Arc<SharedChan>,
        v: Value,
        loc: &Loc,
    ) -> Result<State, Fail> {
        let (mut st, pkg) = self.sending(&chan, v, "chan-send", "the channel is closed", loc)?;
        let Some(pkg) = offer(&mut st, &chan, pkg) else {
            return Ok(State::Return(Value::Unspecified));
        };
        let task = self.sched.current;
        st.senders.push_back((Waiter { home: self.home(), task, select: None }, pkg));
        drop(st);
        Ok(self.park_on(Wait::SharedSend(loc.clone(), chan)))
    }

    /// `chan-recv` on a shared channel; without waiting (`chan-try-recv`) when `wait` is
    /// false, giving `None` when it would wait.
    pub(crate) fn shared_recv(
        &mut self,
        chan: Arc<SharedChan>,
        wait: bool,
        loc: &Loc,
    ) -> Result<Option<State>, Fail> {
        let mut st = lock(&chan.st);
        if let Some(pkg) = take_now(&mut st) {
            drop(st);
            let v = import(self, &pkg, false).map_err(|m| self.heap_full_msg(m))?[0];
            return Ok(Some(State::Return(v)));
        }
        if st.closed {
            return Ok(Some(State::Return(self.sched.eof)));
        }
        if !wait {
            return Ok(None);
        }
        let task = self.sched.current;
        st.receivers.push_back(Waiter { home: self.home(), task, select: None });
        drop(st);
        Ok(Some(self.park_on(Wait::SharedRecv(loc.clone(), chan))))
    }

    /// `chan-close` on a shared channel: receivers get the end-of-channel object, senders an
    /// error, on whichever thread they wait.
    pub(crate) fn shared_close(chan: &SharedChan) {
        let mut st = lock(&chan.st);
        st.closed = true;
        for w in std::mem::take(&mut st.receivers) {
            if w.claim() {
                let what =
                    w.select.as_ref().map_or(Delivered::Eof, |(_, k)| Delivered::SelectEof(*k));
                let _ = w.home.deliver(Delivery { task: w.task, what });
            }
        }
        for (w, _) in std::mem::take(&mut st.senders) {
            if w.claim() {
                let _ = w.home.deliver(Delivery { task: w.task, what: Delivered::Closed });
            }
        }
    }

    /// Whether shared channel `chan` is closed.
    pub(crate) fn shared_closed(chan: &SharedChan) -> bool {
        lock(&chan.st).closed
    }

    /// Takes task `id` out of the queues of shared channel `chan` (it is cancelled); `false`
    /// when it is in none: a delivery for it is on its way.
    pub(crate) fn shared_leave(&mut self, chan: &SharedChan, id: u64) -> bool {
        let home = self.home();
        let mine = |w: &Waiter| w.task == id && Arc::ptr_eq(&w.home, &home);
        let mut st = lock(&chan.st);
        let before = st.receivers.len() + st.senders.len();
        st.receivers.retain(|w| !mine(w));
        st.senders.retain(|(w, _)| !mine(w));
        st.receivers.len() + st.senders.len() < before
    }

    /// Takes the deliveries that arrived from other threads: each wakes its task, and a
    /// value for a task that no longer waits for it goes back to its channel.
    pub(crate) fn take_deliveries(&mut self) -> Result<(), Fail> {
        if !self.sched.home.pending() {
            return Ok(());
        }
        for d in self.sched.home.take() {
            if let Delivered::ThreadEnded = d.what {
                if let Some(Wait::Thread(loc, h)) = self.task_wait(d.task) {
                    let (loc, h) = (loc.clone(), *h);
                    // The thread ended, so this join does not block.
                    let resume = match super::threads::join(self, h, &loc) {
                        Ok(v) => Resume::Value(v),
                        Err(e) => Resume::Fail(e),
                    };
                    self.wake_task(d.task, resume);
                }
                continue;
            }
            let d = match self.select_delivery(d)? {
                Some(d) => d,
                None => continue,
            };
            let loc = match self.task_wait(d.task) {
                Some(Wait::SharedRecv(l, _)) | Some(Wait::SharedSend(l, _)) => Some(l.clone()),
                _ => None,
            };
            let Some(loc) = loc else {
                if let Delivered::Value(pkg, chan) = d.what {
                    give_back(&chan, *pkg);
                }
                continue;
            };
            let resume = match d.what {
                Delivered::Value(pkg, _) => {
                    let v = import(self, &pkg, false).map_err(|m| self.heap_full_msg(m))?[0];
                    Resume::Value(v)
                }
                Delivered::Sent => Resume::Value(Value::Unspecified),
                Delivered::Eof => Resume::Value(self.sched.eof),
                Delivered::Closed => Resume::Raise(
                    "chan-send: the channel was closed while this send waited".into(),
                    loc,
                ),
                Delivered::ThreadEnded
                | Delivered::SelectValue(..)
                | Delivered::SelectSent(_)
                | Delivered::SelectEof(_) => unreachable!("handled above"),
            };
            self.wake_task(d.task, resume);
        }
        Ok(())
    }

    /// Completes a `select` with delivery `d` if `d` is for one (handing `None` back), or
    /// hands `d` back. A select's value whose task no longer waits (it was cancelled) goes
    /// back to its channel.
    fn select_delivery(&mut self, d: Delivery) -> Result<Option<Delivery>, Fail> {
        let (task, selecting) = match self.task_wait(d.task) {
            Some(Wait::Select { loc, .. }) => (d.task, Some(loc.clone())),
            _ => (d.task, None),
        };
        match (d.what, selecting) {
            (Delivered::SelectValue(pkg, _, k), Some(_)) => {
                let v = import(self, &pkg, false).map_err(|m| self.heap_full_msg(m))?[0];
                self.select_fired(task, k, v)?;
            }
            (Delivered::SelectValue(pkg, chan, _), None) => give_back(&chan, *pkg),
            (Delivered::SelectSent(k), Some(_)) => {
                self.select_fired(task, k, Value::Unspecified)?
            }
            (Delivered::SelectEof(k), Some(_)) => {
                let eof = self.sched.eof;
                self.select_fired(task, k, eof)?;
            }
            (Delivered::SelectSent(_) | Delivered::SelectEof(_), None) => {}
            (Delivered::Closed, Some(loc)) => {
                self.leave_select(task);
                let msg = "chan-send: the channel was closed while this send waited";
                self.wake_task(task, Resume::Raise(msg.into(), loc));
            }
            (what, _) => return Ok(Some(Delivery { task, what })),
        }
        Ok(None)
    }

    /// A `select`'s first look at a receive clause on `chan`, before it is queued anywhere:
    /// a value (or the end of the channel) if one is there now.
    pub(crate) fn shared_try_recv(
        &mut self,
        chan: &Arc<SharedChan>,
    ) -> Result<Option<Value>, Fail> {
        let mut st = lock(&chan.st);
        if let Some(pkg) = take_now(&mut st) {
            drop(st);
            return Ok(Some(import(self, &pkg, false).map_err(|m| self.heap_full_msg(m))?[0]));
        }
        Ok(st.closed.then_some(self.sched.eof))
    }

    /// A `select`'s first look at a send clause on `chan`, before it is queued anywhere:
    /// whether `v` was handed to a receiver or buffered now.
    pub(crate) fn shared_try_send(
        &mut self,
        chan: &Arc<SharedChan>,
        v: Value,
        loc: &Loc,
    ) -> Result<bool, Fail> {
        let (mut st, pkg) =
            self.sending(chan, v, "select", "a send clause's channel is closed", loc)?;
        Ok(offer(&mut st, chan, pkg).is_none())
    }

    /// Queues receive clause `k` of the current task's select on `chan`, looking again under
    /// the channel's lock: a value there now is taken, and the clause happens if the select's
    /// `claim` can be set (else the value goes back to the front of the channel).
    pub(crate) fn shared_select_recv(
        &mut self,
        chan: &Arc<SharedChan>,
        k: usize,
        claim: &Arc<AtomicBool>,
    ) -> Result<SelectReg, Fail> {
        let mut st = lock(&chan.st);
        if let Some(pkg) = take_now(&mut st) {
            if !claim_own(claim) {
                st.buf.push_front(pkg);
                return Ok(SelectReg::Lost);
            }
            drop(st);
            let v = import(self, &pkg, false).map_err(|m| self.heap_full_msg(m))?[0];
            return Ok(SelectReg::Fired(v));
        }
        if st.closed {
            return Ok(if claim_own(claim) {
                SelectReg::Fired(self.sched.eof)
            } else {
                SelectReg::Lost
            });
        }
        let w = Waiter {
            home: self.home(),
            task: self.sched.current,
            select: Some((claim.clone(), k)),
        };
        st.receivers.push_back(w);
        Ok(SelectReg::Queued)
    }

    /// Queues send clause `k` (of `v`) of the current task's select on `chan`, looking again
    /// under the channel's lock: with a receiver or room there now, the clause happens if the
    /// select's `claim` can be set. (If every receiver turns out to be a select that another
    /// clause took meanwhile, the value is buffered, one over the capacity at most: the claim
    /// cannot be given back without risking a wake-up lost elsewhere.)
    pub(crate) fn shared_select_send(
        &mut self,
        chan: &Arc<SharedChan>,
        k: usize,
        v: Value,
        claim: &Arc<AtomicBool>,
        loc: &Loc,
    ) -> Result<SelectReg, Fail> {
        let (mut st, pkg) =
            self.sending(chan, v, "select", "a send clause's channel is closed", loc)?;
        if st.receivers.is_empty() && st.buf.len() >= st.cap {
            let w = Waiter {
                home: self.home(),
                task: self.sched.current,
                select: Some((claim.clone(), k)),
            };
            st.senders.push_back((w, pkg));
            return Ok(SelectReg::Queued);
        }
        if !claim_own(claim) {
            return Ok(SelectReg::Lost);
        }
        if let Some(pkg) = to_receiver(&mut st, chan, pkg) {
            st.buf.push_back(pkg);
        }
        Ok(SelectReg::Fired(Value::Unspecified))
    }

    /// With no task ready: sleeps until another thread completes a wait on a shared channel,
    /// or `timeout` passed, or every interpreter of the program waits.
    pub(crate) fn wait_for_other_threads(&self, timeout: Option<Duration>) -> Woke {
        if !self.any_shared_wait() {
            return Woke::Nothing;
        }
        self.sched.home.wait(timeout)
    }

    /// The start of every send on `chan`: `v` copied out of this heap, and the channel locked
    /// and open. `who` names the operation in errors, `closed` says what a closed channel is.
    fn sending<'c>(
        &mut self,
        chan: &'c SharedChan,
        v: Value,
        who: &str,
        closed: &str,
        loc: &Loc,
    ) -> Result<(MutexGuard<'c, ChanState>, Migrant), Fail> {
        let pkg = export(self, &[v]).map_err(|m| error_at(format!("{who}: {m}"), Some(loc)))?;
        let st = lock(&chan.st);
        if st.closed {
            return Err(error_at(format!("{who}: {closed}"), Some(loc)));
        }
        Ok((st, pkg))
    }

    fn home(&self) -> Arc<Home> {
        self.sched.home.clone()
    }

    fn heap_full_msg(&self, m: String) -> Fail {
        super::eval::limit_err(m, None)
    }
}
