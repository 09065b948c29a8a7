//! Nurseries: a scope that owns every child started in it and returns only when all of them
//! have finished.
//!
//! # How it works
//!
//! A nursery is one future. Its children are boxed futures kept in a generational slab *inside*
//! that future, and the nursery polls them itself, within its own poll. Children therefore run
//! concurrently with each other and with the body, on the thread that polls the nursery; for
//! parallelism, a child `omni::spawn`s a task and awaits its `JoinHandle`.
//!
//! Each child gets a small waker node (its slab key and a flag) at its first poll; waking it
//! pushes the key onto the nursery's ready list and wakes the task polling the nursery. When a
//! child finishes and no clone of its waker survives, the node goes back to a short spare list
//! for the next child, so a nursery whose children finish as they start allocates only their
//! boxes and result slots. A stale wake (the child finished, or its slot holds a newer child)
//! fails the generation check and is ignored.
//!
//! # Why borrowing children are sound
//!
//! `Nursery<'a, E>::spawn` accepts futures that live for `'a`, and the nursery future itself is
//! bounded by `'a`, so it cannot outlive what its children borrow. The children are owned by
//! that future, not by the runtime:
//!
//! - When it completes, every child has completed.
//! - When it is dropped mid-way (a timeout, a `select!` that took another arm, a cancelled
//!   parent), its `Drop` drops every child there and then, before the borrow it lives under
//!   can end. Dropping a child is cancelling it at the `.await` it was parked on, and a child's
//!   own nurseries are dropped with it: cancellation runs depth first.
//! - When it is leaked (`mem::forget`), its children are leaked with it and never polled
//!   again: nothing runs on borrowed data that is gone.
//!
//! What children may borrow is what outlives the nursery: the caller's locals, not the body's
//! own. A body written `async move` moves what it captures into itself, so take a reference
//! first (`let data = &data;`) and let the body move the reference.
//!
//! No lifetime is erased and no `unsafe` is involved: this is the design `std::thread::scope`
//! cannot use (threads run by themselves), and the reason children here are polled by their
//! nursery rather than handed to the scheduler.
//!
//! # Failure policies
//!
//! [`nursery`] fails fast: the first child that returns `Err` or panics gets every other child,
//! and the body, dropped, and the nursery returns that failure in a [`NurseryError`]. A body
//! that returns `Err` does the same. [`supervise`] keeps the others running and hands the
//! failures back beside the body's value.
//!
//! # Invariants
//!
//! - A child is polled only by the nursery that owns it, and only from the nursery's poll.
//! - Every child's handle resolves: with the child's value, or [`ChildError`] saying it failed,
//!   panicked or was cancelled (its nursery failed fast, was dropped, or had finished when the
//!   child was spawned).
//! - Wake lists and spawn lists are guarded by their own locks, never held while a child or
//!   the body is polled or dropped; wakers are woken after the lock is released.

use crate::loom::{AtomicBool, Mutex, MutexGuard, Ordering::*};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

type ChildFut<'a, E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send + 'a>>;

/// The key of the body in the ready list (children use `generation << 32 | index`).
const BODY: u64 = u64::MAX;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// --- wakeups: shared with wakers, so free of the nursery's lifetime ---------------------------

#[derive(Default)]
struct Wakeups {
    state: Mutex<WakeState>,
    /// Something was spawned since the nursery last looked. Outside the lock, so a burst of
    /// spawns takes it once: only the spawn that sets the flag goes on to wake the nursery.
    spawned: AtomicBool,
}

#[derive(Default)]
struct WakeState {
    /// Keys of the children (and body) woken since the nursery last looked.
    ready: Vec<u64>,
    /// The nursery is inside its poll and will look again before it sleeps.
    polling: bool,
    /// The waker of the task polling the nursery, while it sleeps.
    parent: Option<Waker>,
}

impl Wakeups {
    fn notify(&self, f: impl FnOnce(&mut WakeState)) {
        let parent = {
            let mut s = lock(&self.state);
            f(&mut s);
            if s.polling {
                None
            } else {
                s.parent.take()
            }
        };
        if let Some(p) = parent {
            p.wake();
        }
    }
}

/// The waker of one child: its key, and whether it is already on the ready list.
struct Node {
    wakeups: Arc<Wakeups>,
    key: u64,
    queued: AtomicBool,
}

impl Node {
    fn new(wakeups: &Arc<Wakeups>, key: u64) -> Arc<Node> {
        Arc::new(Node { wakeups: wakeups.clone(), key, queued: AtomicBool::new(true) })
    }
}

impl Wake for Node {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, AcqRel) {
            let key = self.key;
            self.wakeups.notify(|s| s.ready.push(key));
        }
    }
}

// --- the spawn list and the handle -----------------------------------------------------------

struct Spawner<'a, E> {
    incoming: Mutex<Incoming<'a, E>>,
    wakeups: Arc<Wakeups>,
}

struct Incoming<'a, E> {
    list: Vec<ChildFut<'a, E>>,
    /// The nursery finished or was dropped: later spawns are cancelled at once.
    closed: bool,
}

impl<E> Spawner<'_, E> {
    /// Refuses further spawns and drops what was spawned but never polled (outside the lock).
    fn close(&self) {
        let late = {
            let mut inc = lock(&self.incoming);
            inc.closed = true;
            std::mem::take(&mut inc.list)
        };
        drop(late);
    }
}

/// The handle a nursery's body and children use to start children in it.
///
/// Cloning it is cheap; clones may be moved into children, which may start children of their
/// own in the same nursery.
pub struct Nursery<'a, E> {
    spawner: Arc<Spawner<'a, E>>,
}

impl<E> Clone for Nursery<'_, E> {
    fn clone(&self) -> Self {
        Nursery { spawner: self.spawner.clone() }
    }
}

impl<E> fmt::Debug for Nursery<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inc = lock(&self.spawner.incoming);
        f.debug_struct("Nursery")
            .field("unstarted", &inc.list.len())
            .field("closed", &inc.closed)
            .finish()
    }
}

impl<'a, E: Send + 'a> Nursery<'a, E> {
    /// Starts `fut` as a child of this nursery and returns a handle to await its value.
    ///
    /// The child may borrow anything that outlives the nursery. It starts running at the
    /// nursery's next poll (right after the body's current step when the body spawns it). An
    /// `Err` it returns, or a panic, is a failure under the nursery's policy; its handle then
    /// says [`ChildError::Failed`] or [`ChildError::Panicked`]. Dropping the handle does not
    /// stop the child.
    ///
    /// A child spawned after its nursery finished is dropped at once, and its handle says
    /// [`ChildError::Cancelled`].
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::scope::nursery;
    ///
    /// let words = vec!["a", "bb", "ccc"];
    /// let words = &words; // the body moves the reference, the children borrow the vector
    /// let total = omni::block_on(nursery(|n| async move {
    ///     let handles: Vec<_> = words.iter().map(|w| n.spawn(async move { Ok(w.len()) })).collect();
    ///     let mut total = 0;
    ///     for h in handles {
    ///         total += h.await.unwrap();
    ///     }
    ///     Ok::<_, ()>(total)
    /// }));
    /// assert_eq!(total.unwrap(), 6);
    /// ```
    pub fn spawn<F, T>(&self, fut: F) -> ChildHandle<T>
    where
        F: Future<Output = Result<T, E>> + Send + 'a,
        T: Send + 'a,
    {
        let slot = Arc::new(Slot { state: Mutex::new(SlotState::Running(None)) });
        let child: ChildFut<'a, E> = Box::pin(Child { fut, slot: SlotGuard(Some(slot.clone())) });
        let refused = {
            let mut inc = lock(&self.spawner.incoming);
            if inc.closed {
                Some(child)
            } else {
                inc.list.push(child);
                None
            }
        };
        match refused {
            Some(child) => drop(child),
            None => {
                let w = &self.spawner.wakeups;
                if !w.spawned.swap(true, SeqCst) {
                    w.notify(|_| {});
                }
            }
        }
        ChildHandle { slot }
    }
}

/// Why a child's handle has no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildError {
    /// The child returned `Err`; the error went to the nursery (see [`NurseryError`]).
    Failed,
    /// The child panicked; the payload went to the nursery.
    Panicked,
    /// The child was dropped before it finished: a sibling failed, the nursery was dropped, or
    /// the nursery had already finished when the child was spawned.
    Cancelled,
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChildError::Failed => "the child failed; its error went to the nursery",
            ChildError::Panicked => "the child panicked; the payload went to the nursery",
            ChildError::Cancelled => "the child was cancelled before it finished",
        })
    }
}

impl std::error::Error for ChildError {}

struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

enum SlotState<T> {
    /// Not finished; the waker of a task awaiting the handle.
    Running(Option<Waker>),
    Done(Result<T, ChildError>),
    Taken,
}

impl<T> Slot<T> {
    fn finish(&self, r: Result<T, ChildError>) {
        let waiter = {
            let mut s = lock(&self.state);
            match std::mem::replace(&mut *s, SlotState::Done(r)) {
                SlotState::Running(w) => w,
                other => {
                    *s = other;
                    None
                }
            }
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

/// A handle to one child of a nursery: awaiting it gives the child's value.
///
/// # Errors
///
/// [`ChildError`] when the child failed, panicked or was cancelled.
pub struct ChildHandle<T> {
    slot: Arc<Slot<T>>,
}

impl<T> ChildHandle<T> {
    /// Whether the child has finished (its value or error is waiting).
    pub fn is_finished(&self) -> bool {
        !matches!(*lock(&self.slot.state), SlotState::Running(_))
    }
}

impl<T> Future for ChildHandle<T> {
    type Output = Result<T, ChildError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = lock(&self.slot.state);
        match std::mem::replace(&mut *s, SlotState::Taken) {
            SlotState::Done(r) => Poll::Ready(r),
            SlotState::Running(w) => {
                let w = match w {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                *s = SlotState::Running(Some(w));
                Poll::Pending
            }
            SlotState::Taken => panic!("omni::scope::ChildHandle polled after it returned"),
        }
    }
}

impl<T> fmt::Debug for ChildHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildHandle").field("finished", &self.is_finished()).finish()
    }
}

pin_project_lite::pin_project! {
    /// A child as the nursery stores it (one allocation): the user's future, then the slot its
    /// handle reads. Fields drop in order, so a cancelled child's destructors have run before
    /// its handle hears that it was cancelled.
    struct Child<F, T> {
        #[pin]
        fut: F,
        slot: SlotGuard<T>,
    }
}

/// Tells the handle `Cancelled` if the child is dropped before it finished.
struct SlotGuard<T>(Option<Arc<Slot<T>>>);

impl<T> Drop for SlotGuard<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            slot.finish(Err(ChildError::Cancelled));
        }
    }
}

impl<F, T, E> Future for Child<F, T>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<(), E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let this = self.project();
        let fut = this.fut;
        let r = match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(r)) => r,
            Err(payload) => {
                if let Some(slot) = this.slot.0.take() {
                    slot.finish(Err(ChildError::Panicked));
                }
                resume_unwind(payload);
            }
        };
        let slot = this.slot.0.take();
        Poll::Ready(match r {
            Ok(v) => {
                if let Some(slot) = slot {
                    slot.finish(Ok(v));
                }
                Ok(())
            }
            Err(e) => {
                if let Some(slot) = slot {
                    slot.finish(Err(ChildError::Failed));
                }
                Err(e)
            }
        })
    }
}

// --- failures --------------------------------------------------------------------------------

/// One failure in a nursery: an error a child (or the body) returned, or a panic.
pub enum Failure<E> {
    /// A child or the body returned `Err`.
    Error(E),
    /// A child panicked; the payload, as `std::panic::catch_unwind` gives it.
    Panic(Box<dyn Any + Send + 'static>),
}

impl<E> Failure<E> {
    /// Whether this failure is a panic.
    pub fn is_panic(&self) -> bool {
        matches!(self, Failure::Panic(_))
    }

    /// The error, if this failure is one.
    pub fn error(&self) -> Option<&E> {
        match self {
            Failure::Error(e) => Some(e),
            Failure::Panic(_) => None,
        }
    }

    /// The panic's message, when the payload is a string (as `panic!` with a message makes).
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            Failure::Panic(p) => p
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str)),
            Failure::Error(_) => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => f.debug_tuple("Error").field(e).finish(),
            Failure::Panic(_) => f
                .debug_tuple("Panic")
                .field(&self.panic_message().unwrap_or("<non-string payload>"))
                .finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => write!(f, "a child failed: {e}"),
            Failure::Panic(_) => match self.panic_message() {
                Some(m) => write!(f, "a child panicked: {m}"),
                None => f.write_str("a child panicked"),
            },
        }
    }
}

/// Why a nursery failed: the failure that stopped it first, then any others that happened
/// before the cancellation took hold (or, under [`supervise`], every failure).
pub struct NurseryError<E> {
    failures: Vec<Failure<E>>,
}

impl<E> NurseryError<E> {
    /// The failure that came first.
    pub fn first(&self) -> &Failure<E> {
        &self.failures[0]
    }

    /// Whether the first failure is a panic.
    pub fn is_panic(&self) -> bool {
        self.first().is_panic()
    }

    /// Every failure, first one first.
    pub fn failures(&self) -> &[Failure<E>] {
        &self.failures
    }

    /// Every failure, first one first.
    pub fn into_failures(self) -> Vec<Failure<E>> {
        self.failures
    }

    /// The first failure.
    pub fn into_first(self) -> Failure<E> {
        self.failures.into_iter().next().expect("a NurseryError holds at least one failure")
    }

    /// Continues the first panic on this thread (as if the child's panic had crossed the
    /// nursery), or returns the error when the first failure is one.
    pub fn resume_panic(self) -> E {
        match self.into_first() {
            Failure::Panic(p) => resume_unwind(p),
            Failure::Error(e) => e,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for NurseryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NurseryError").field("failures", &self.failures).finish()
    }
}

impl<E: fmt::Display> fmt::Display for NurseryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.first())?;
        match self.failures.len() {
            1 => Ok(()),
            n => write!(f, " (and {} more failure{})", n - 1, if n == 2 { "" } else { "s" }),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for NurseryError<E> {}

// --- the nursery future ----------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Policy {
    FailFast,
    Supervise,
}

struct Entry<'a, E> {
    generation: u32,
    child: Option<ChildFut<'a, E>>,
    /// The child's waker node, bound at its first poll.
    node: Option<Arc<Node>>,
}

/// Waker nodes kept for reuse: enough for a nursery whose children finish as fast as they
/// start, without hoarding the nodes of a burst.
const SPARE_NODES: usize = 64;

/// The future behind [`nursery`] and [`supervise`].
struct Scope<'a, Fut, T, E> {
    policy: Policy,
    body: Option<Pin<Box<Fut>>>,
    body_node: Arc<Node>,
    value: Option<T>,
    entries: Vec<Entry<'a, E>>,
    free: Vec<u32>,
    /// Nodes no waker refers to any more, ready for the next child.
    spare: Vec<Arc<Node>>,
    live: usize,
    /// Keys to poll in this round.
    run: Vec<u64>,
    failures: Vec<Failure<E>>,
    spawner: Arc<Spawner<'a, E>>,
    wakeups: Arc<Wakeups>,
    /// Everything was cancelled (the body failed, or fail-fast): return at once.
    stopped: bool,
    done: bool,
}

impl<'a, Fut, T, E> Scope<'a, Fut, T, E>
where
    Fut: Future<Output = Result<T, E>> + 'a,
    E: Send + 'a,
{
    fn new<B: FnOnce(Nursery<'a, E>) -> Fut>(policy: Policy, body: B) -> Self {
        let wakeups = Arc::new(Wakeups::default());
        let spawner = Arc::new(Spawner {
            incoming: Mutex::new(Incoming { list: Vec::new(), closed: false }),
            wakeups: wakeups.clone(),
        });
        let body = body(Nursery { spawner: spawner.clone() });
        Scope {
            policy,
            body: Some(Box::pin(body)),
            body_node: Node::new(&wakeups, BODY),
            value: None,
            entries: Vec::new(),
            free: Vec::new(),
            spare: Vec::new(),
            live: 0,
            run: vec![BODY],
            failures: Vec::new(),
            spawner,
            wakeups,
            stopped: false,
            done: false,
        }
    }

    fn insert(&mut self, child: ChildFut<'a, E>) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.entries.len()).expect("over 2^32 live nursery children");
                self.entries.push(Entry { generation: 0, child: None, node: None });
                i
            }
        };
        let e = &mut self.entries[index as usize];
        let key = u64::from(e.generation) << 32 | u64::from(index);
        e.child = Some(child);
        self.live += 1;
        self.run.push(key);
    }

    fn remove(&mut self, index: u32) -> Option<ChildFut<'a, E>> {
        let e = &mut self.entries[index as usize];
        let child = e.child.take();
        if let Some(mut n) = e.node.take() {
            // No waker of this child survives: the next child may have its node.
            if Arc::get_mut(&mut n).is_some() && self.spare.len() < SPARE_NODES {
                self.spare.push(n);
            }
        }
        e.generation = e.generation.wrapping_add(1);
        self.free.push(index);
        self.live -= 1;
        child
    }

    /// Takes the spawned children and the woken keys; says whether there were any.
    fn collect(&mut self) -> bool {
        {
            let mut s = lock(&self.wakeups.state);
            self.run.append(&mut s.ready);
        }
        let spawned = self.wakeups.spawned.swap(false, SeqCst);
        if spawned {
            let list = std::mem::take(&mut lock(&self.spawner.incoming).list);
            for child in list {
                self.insert(child);
            }
        }
        !self.run.is_empty()
    }

    fn fail(&mut self, f: Failure<E>) {
        self.failures.push(f);
    }

    /// Drops every child and the body (depth first: each child's own nurseries go with it).
    fn cancel_all(&mut self) {
        self.stopped = true;
        self.spawner.close();
        self.body = None;
        for i in 0..self.entries.len() {
            if self.entries[i].child.is_some() {
                drop(self.remove(i as u32));
            }
        }
        self.run.clear();
    }

    fn poll_body(&mut self) {
        let Some(body) = self.body.as_mut() else { return };
        self.body_node.queued.store(false, Release);
        let waker = Waker::from(self.body_node.clone());
        let r =
            catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(&mut Context::from_waker(&waker))));
        match r {
            Ok(Poll::Pending) => {}
            Ok(Poll::Ready(Ok(v))) => {
                self.body = None;
                self.value = Some(v);
            }
            Ok(Poll::Ready(Err(e))) => {
                self.body = None;
                self.fail(Failure::Error(e));
                self.cancel_all();
            }
            Err(p) => {
                self.body = None;
                self.fail(Failure::Panic(p));
                self.cancel_all();
            }
        }
    }

    fn poll_child(&mut self, key: u64) {
        let index = key as u32;
        let Scope { entries, spare, wakeups, .. } = self;
        let Some(e) = entries.get_mut(index as usize) else { return };
        if u64::from(e.generation) != key >> 32 {
            return; // a stale wake: that child is gone
        }
        let Some(child) = e.child.as_mut() else { return };
        let node = e.node.get_or_insert_with(|| match spare.pop() {
            Some(mut n) => {
                Arc::get_mut(&mut n).expect("spare nodes are unshared").key = key;
                n
            }
            None => Node::new(wakeups, key),
        });
        node.queued.store(false, Release);
        let waker = Waker::from(node.clone());
        let r = child.as_mut().poll(&mut Context::from_waker(&waker));
        drop(waker);
        let failure = match r {
            Poll::Pending => return,
            Poll::Ready(Ok(())) => None,
            Poll::Ready(Err(e)) => Some(Failure::Error(e)),
        };
        drop(self.remove(index));
        if let Some(f) = failure {
            self.failed(f);
        }
    }

    fn failed(&mut self, f: Failure<E>) {
        self.fail(f);
        if self.policy == Policy::FailFast {
            self.cancel_all();
        }
    }

    fn poll_scope(&mut self, cx: &mut Context<'_>) -> Poll<(Option<T>, Vec<Failure<E>>)> {
        assert!(!self.done, "a nursery polled after it returned");
        {
            let mut s = lock(&self.wakeups.state);
            s.polling = true;
        }
        // Work per poll is bounded, so children that keep waking each other (or themselves,
        // with `yield_now`) cannot hold the thread: past the bound the nursery yields.
        let mut budget = 2 * self.live + 64;
        loop {
            self.collect();
            let mut run = std::mem::take(&mut self.run);
            for key in run.drain(..) {
                if key == BODY {
                    self.poll_body();
                } else {
                    // A panic in a child: the child is dead; record it.
                    let r = catch_unwind(AssertUnwindSafe(|| self.poll_child(key)));
                    if let Err(p) = r {
                        let index = key as u32;
                        if let Some(e) = self.entries.get(index as usize) {
                            if u64::from(e.generation) == key >> 32 && e.child.is_some() {
                                drop(self.remove(index));
                            }
                        }
                        self.failed(Failure::Panic(p));
                    }
                }
                budget = budget.saturating_sub(1);
                if self.stopped {
                    break;
                }
            }
            // Keep the allocation for the next round.
            if self.run.is_empty() {
                self.run = run;
            }
            if self.stopped || (self.body.is_none() && self.live == 0 && !self.collect()) {
                self.finish();
                return Poll::Ready((self.value.take(), std::mem::take(&mut self.failures)));
            }
            if self.run.is_empty() {
                // Nothing to run: sleep unless a wake or spawn arrived meanwhile.
                let mut s = lock(&self.wakeups.state);
                if s.ready.is_empty() && !self.wakeups.spawned.load(SeqCst) {
                    s.polling = false;
                    match &s.parent {
                        Some(p) if p.will_wake(cx.waker()) => {}
                        _ => s.parent = Some(cx.waker().clone()),
                    }
                    return Poll::Pending;
                }
            }
            if budget == 0 {
                // Work is waiting but this poll did its share: go to the back of the queue.
                self.sleep(cx);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    fn sleep(&self, cx: &Context<'_>) {
        let mut s = lock(&self.wakeups.state);
        s.polling = false;
        s.parent = Some(cx.waker().clone());
    }

    fn finish(&mut self) {
        self.done = true;
        self.spawner.close();
        let mut s = lock(&self.wakeups.state);
        s.polling = false;
        s.parent = None;
        s.ready.clear();
    }
}

// The body and the children are boxed, and the value and errors are never pinned.
impl<Fut, T, E> Unpin for Scope<'_, Fut, T, E> {}

impl<'a, Fut, T, E> Future for Scope<'a, Fut, T, E>
where
    Fut: Future<Output = Result<T, E>> + 'a,
    E: Send + 'a,
{
    type Output = (Option<T>, Vec<Failure<E>>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_scope(cx)
    }
}

impl<Fut, T, E> Drop for Scope<'_, Fut, T, E> {
    fn drop(&mut self) {
        // Dropped mid-way: cancel (drop) every child now, before the borrows they hold end,
        // and refuse spawns from handles that escaped. Unstarted children go too.
        self.spawner.close();
        for e in &mut self.entries {
            e.child = None;
        }
        self.body = None;
    }
}

/// Runs `body` with a [`Nursery`] to start children in, and returns when the body and every
/// child have finished. Fails fast: the first child (or body) that returns `Err` or panics has
/// everything else in the nursery cancelled, and the nursery returns that failure.
///
/// Children may borrow from the caller (the module documentation explains why that is sound).
/// They run concurrently, polled by the nursery on the thread that awaits it.
///
/// # Errors
///
/// A [`NurseryError`] holding the first failure (and any that happened before the cancel took
/// hold). Use [`NurseryError::resume_panic`] to carry a child's panic on up.
///
/// # Examples
///
/// ```
/// use omni::scope::nursery;
///
/// let mut results = vec![0; 4];
/// omni::block_on(nursery(|n| {
///     for (i, r) in results.iter_mut().enumerate() {
///         n.spawn(async move {
///             omni::yield_now().await;
///             *r = i * 10;
///             Ok(())
///         });
///     }
///     async { Ok::<_, std::io::Error>(()) }
/// }))
/// .unwrap();
/// assert_eq!(results, [0, 10, 20, 30]);
/// ```
///
/// A failing child cancels its siblings:
///
/// ```
/// use omni::scope::nursery;
/// use omni::time::{sleep, Duration};
///
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// let err = rt.block_on(nursery(|n| async move {
///     n.spawn(async { sleep(Duration::from_secs(3600)).await; Ok(()) });
///     n.spawn(async { Err::<(), _>("disk full") });
///     Ok(())
/// }))
/// .unwrap_err();
/// assert_eq!(err.first().error(), Some(&"disk full"));
/// ```
pub fn nursery<'a, B, Fut, T, E>(body: B) -> impl Future<Output = Result<T, NurseryError<E>>> + 'a
where
    B: FnOnce(Nursery<'a, E>) -> Fut,
    Fut: Future<Output = Result<T, E>> + 'a,
    T: 'a,
    E: Send + 'a,
{
    let scope = Scope::new(Policy::FailFast, body);
    async move {
        match scope.await {
            (Some(v), failures) if failures.is_empty() => Ok(v),
            (_, failures) => Err(NurseryError { failures }),
        }
    }
}

/// Like [`nursery`], but a failing child does not cancel its siblings: every failure is
/// collected and handed back beside the body's value. A body that fails still cancels the
/// children.
///
/// # Errors
///
/// A [`NurseryError`] when the body itself returned `Err` or panicked (its failure first, then
/// the children's).
///
/// # Examples
///
/// ```
/// use omni::scope::supervise;
///
/// let (sum, failures) = omni::block_on(supervise(|n| async move {
///     let a = n.spawn(async { Ok(1) });
///     n.spawn(async { Err::<(), _>("one of them fails") });
///     let b = n.spawn(async { Ok(2) });
///     Ok::<_, &str>(a.await.unwrap() + b.await.unwrap())
/// }))
/// .unwrap();
/// assert_eq!(sum, 3);
/// assert_eq!(failures.len(), 1);
/// ```
#[allow(clippy::type_complexity)]
pub fn supervise<'a, B, Fut, T, E>(
    body: B,
) -> impl Future<Output = Result<(T, Vec<Failure<E>>), NurseryError<E>>> + 'a
where
    B: FnOnce(Nursery<'a, E>) -> Fut,
    Fut: Future<Output = Result<T, E>> + 'a,
    T: 'a,
    E: Send + 'a,
{
    let scope = Scope::new(Policy::Supervise, body);
    async move {
        match scope.await {
            (Some(v), failures) => Ok((v, failures)),
            (None, failures) => Err(NurseryError { failures }),
        }
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicBool as LoomBool;

    /// A flag another thread sets, with a waker it wakes: the leaf a child waits on.
    #[derive(Default)]
    struct Signal {
        set: LoomBool,
        waker: Mutex<Option<Waker>>,
    }

    impl Signal {
        fn fire(&self) {
            self.set.store(true, SeqCst);
            let w = lock(&self.waker).take();
            if let Some(w) = w {
                w.wake();
            }
        }

        fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
            if self.set.load(SeqCst) {
                return Poll::Ready(());
            }
            *lock(&self.waker) = Some(cx.waker().clone());
            if self.set.load(SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    /// A spawn from another thread while the nursery sleeps, waiting for its body: the child
    /// runs (and lets the body finish), whichever order the spawn, its wake and the nursery's
    /// sleep come in. A lost spawn wake-up is a loom deadlock.
    #[test]
    fn loom_spawn_from_another_thread_vs_nursery_sleep() {
        loom::model(|| {
            let sig = Arc::new(Signal::default());
            let handle = Arc::new(Mutex::new(None));
            let h2 = handle.clone();
            let r = crate::loom::block_on(nursery(move |n: Nursery<'static, ()>| {
                let n2 = n.clone();
                let s2 = sig.clone();
                // Only the spawned child fires the signal the body waits for, so the spawn's
                // own wake is all that can get the nursery going again.
                let t = loom::thread::spawn(move || {
                    *lock(&h2) = Some(n2.spawn(async move {
                        s2.fire();
                        Ok(5)
                    }));
                });
                async move {
                    std::future::poll_fn(|cx| sig.poll(cx)).await;
                    Ok(t)
                }
            }));
            r.unwrap().join().unwrap();
            let h = lock(&handle).take().unwrap();
            assert_eq!(crate::loom::block_on(h), Ok(5));
        });
    }

    /// A child that panics when its signal fires, racing a sibling that completes when its own
    /// signal fires, each fired from a thread of its own. Whatever the order: the nursery
    /// reports the panic, the sibling's handle says it finished or was cancelled, and no wake
    /// is lost (loom reports a deadlock if the nursery sleeps through one).
    #[test]
    fn loom_child_panic_vs_sibling_completion() {
        loom::model(|| {
            let (a, b) = (Arc::new(Signal::default()), Arc::new(Signal::default()));
            let (a2, b2) = (a.clone(), b.clone());
            let ta = loom::thread::spawn(move || a2.fire());
            let tb = loom::thread::spawn(move || b2.fire());
            let sibling = Arc::new(Mutex::new(None));
            let s2 = sibling.clone();
            let r = crate::loom::block_on(nursery(move |n: Nursery<'_, ()>| {
                n.spawn(async move {
                    std::future::poll_fn(|cx| a.poll(cx)).await;
                    // resume_unwind: a panic without the panic hook's message per iteration.
                    std::panic::resume_unwind(Box::new("child failed"));
                    #[allow(unreachable_code)]
                    Ok(())
                });
                let h = n.spawn(async move {
                    std::future::poll_fn(|cx| b.poll(cx)).await;
                    Ok(1)
                });
                *lock(&s2) = Some(h);
                async { Ok(()) }
            }));
            let err = r.unwrap_err();
            assert!(err.is_panic());
            assert_eq!(err.failures().len(), 1);
            let h = lock(&sibling).take().unwrap();
            let got = crate::loom::block_on(h);
            assert!(matches!(got, Ok(1) | Err(ChildError::Cancelled)), "{got:?}");
            ta.join().unwrap();
            tb.join().unwrap();
        });
    }
}
