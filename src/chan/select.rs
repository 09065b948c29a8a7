//! `Select`: wait on several channel operations and commit exactly one.
//!
//! # Protocol
//!
//! 1. **Try.** Every arm is tried once under its channel's lock, in random order (`biased`:
//!    in the order given). The first that can complete now completes; nothing was registered
//!    anywhere, so nothing else has to be undone.
//! 2. **Default.** If none was ready and there is a `default` arm, it is taken.
//! 3. **Register.** A shared [`Token`] is made: one `selected` word, initially `NONE`, and the
//!    select's waker. Each arm, in the same order, tries again and otherwise parks an entry
//!    that points at the token. From here on the select may be served by any channel.
//! 4. **Commit.** Whoever completes an arm first CASes `selected` from `NONE` to that arm's
//!    index, under that channel's lock, before touching any value: a channel serving a parked
//!    entry (it then delivers into it or takes from it), the select itself when an arm it
//!    retries is ready, the timeout arm when its sleep fires. Whoever loses the CAS does
//!    nothing: the channel unlinks the stale entry (`Lost`) and serves the next waiter,
//!    keeping its value or its sender's value. So at most one arm ever completes.
//! 5. **Abort.** When `selected` is set, the select finishes the winning arm (reading its
//!    entry under its channel's lock) and removes its entries from every other channel. A
//!    select dropped at any point removes all its entries; a value its winning recv arm was
//!    served but never saw is passed on as for a dropped `recv`.
//!
//! One case needs more: on a rendezvous channel, a registered select (step 3) that finds a
//! parked *select* on the other side must win both tokens. It claims its own first, then the
//! peer's; if the peer is taken it drops that entry and tries the next, and if no peer is
//! left it puts its own word back to `NONE`. While its word was claimed, other channels may
//! have unlinked its entries as `Lost`; it therefore rescans every arm before it parks. Only
//! the select that is running does this, so no one ever waits for anyone's word.
//!
//! A losing send arm sends nothing: its value drops with the `Select`. A losing recv arm
//! receives nothing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::core::{fire, fire_all, Chan, State};
use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::mpmc::{Receiver, Sender};
use super::waiters::{Queue, Slab, Status, Wake};
use crate::loom::{AtomicUsize, Mutex, Ordering::*};
use crate::rt::deadlock::{keep, Kind};
use crate::time::Sleep;

/// `selected` before any arm committed.
const NONE: usize = usize::MAX;

/// The word that the arms of one select race for, and the waker of the select.
pub(crate) struct Token {
    selected: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl Token {
    /// Commits arm `arm`; false if another arm already did.
    pub(crate) fn try_select(&self, arm: usize) -> bool {
        self.selected.compare_exchange(NONE, arm, AcqRel, Acquire).is_ok()
    }

    /// Undoes our own claim (only the running select, only after its own `try_select`).
    fn revert(&self) {
        self.selected.store(NONE, Release);
    }

    fn selected(&self) -> usize {
        self.selected.load(Acquire)
    }

    /// Wakes the select (after a channel committed one of its arms).
    pub(crate) fn wake(&self) {
        let w = self.waker.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(keep);
        if let Some(w) = w {
            w.wake();
        }
    }

    fn set_waker(&self, new: &Waker) {
        let mut w = self.waker.lock().unwrap_or_else(|e| e.into_inner());
        if !w.as_ref().is_some_and(|w| w.will_wake(new)) {
            *w = Some(keep(new));
        }
    }
}

/// The outcome of one attempt at an arm.
enum Step {
    /// The arm completed (and, with a token, committed the select).
    Done,
    /// Not ready and not parked (no token: the try phase).
    NotReady,
    /// Parked (or still parked).
    Parked,
    /// Parked after putting back its own claim: rescan every arm.
    Reverted,
    /// `selected` is set by someone: read it.
    Taken,
}

/// One arm over a channel, with its type erased.
trait Arm<R> {
    fn attempt(&mut self, token: Option<(&Arc<Token>, usize)>) -> Step;
    fn finish(&mut self) -> R;
    /// Notes the wait for a deadlock report (the select is parked on this arm).
    fn note(&self);
}

struct RecvArm<'a, T, F> {
    chan: &'a Chan<T>,
    slot: Option<u32>,
    out: Option<Result<T, RecvError>>,
    f: Option<F>,
}

struct SendArm<'a, T, F> {
    chan: &'a Chan<T>,
    slot: Option<u32>,
    value: Option<T>,
    out: Option<Result<(), SendError<T>>>,
    f: Option<F>,
}

/// Looks at a parked entry without freeing a served one. `Some(step)` ends the attempt. A
/// send arm's value in a `Lost` entry comes back into `value`, to be parked again.
fn recheck<T>(st: &mut State<T>, slot: &mut Option<u32>, value: &mut Option<T>) -> Option<Step> {
    let i = (*slot)?;
    match st.slab.get(i).status {
        Status::Queued => Some(Step::Parked),
        Status::Done | Status::Closed => Some(Step::Taken),
        Status::Lost => {
            // Unlinked while our own word was claimed: park again below.
            let (v, _) = st.slab.free(i);
            if v.is_some() {
                *value = v;
            }
            *slot = None;
            None
        }
        Status::Free => unreachable!("omni: a select arm lost its waiter entry"),
    }
}

/// Whether `q` holds an entry of someone other than this select. An arm never pairs with
/// another arm of its own select: on a rendezvous channel, a select with a recv and a send arm
/// on the same channel would otherwise claim its own word, unlink its own entry as `Lost`, and
/// rescan for ever.
fn has_peer<T>(slab: &Slab<T>, q: &Queue, token: &Arc<Token>) -> bool {
    slab.any(q, |e| !matches!(&e.wake, Some(Wake::Select(t, _)) if Arc::ptr_eq(t, token)))
}

impl<T: Send, R, F: FnOnce(Result<T, RecvError>) -> R + Send> Arm<R> for RecvArm<'_, T, F> {
    fn note(&self) {
        self.chan.origin.note(Kind::Recv);
    }

    fn attempt(&mut self, token: Option<(&Arc<Token>, usize)>) -> Step {
        let mut st = self.chan.lock();
        let Some((token, arm)) = token else {
            // Try phase: nothing registered yet, no word to win.
            return match st.try_recv() {
                Ok((v, w)) => {
                    drop(st);
                    fire(w);
                    self.out = Some(Ok(v));
                    Step::Done
                }
                Err(TryRecvError::Closed) => {
                    self.out = Some(Err(RecvError));
                    Step::Done
                }
                Err(TryRecvError::Empty) => Step::NotReady,
            };
        };
        if let Some(step) = recheck(&mut st, &mut self.slot, &mut None) {
            return step;
        }
        let mut step = Step::Parked;
        let peer =
            !st.buf.is_empty() || st.sendq.is_empty() || has_peer(&st.slab, &st.sendq, token);
        if st.recv_ready() && peer {
            if !token.try_select(arm) {
                return Step::Taken;
            }
            match st.try_recv() {
                Ok((v, w)) => {
                    drop(st);
                    fire(w);
                    self.out = Some(Ok(v));
                    return Step::Done;
                }
                Err(TryRecvError::Closed) => {
                    self.out = Some(Err(RecvError));
                    return Step::Done;
                }
                // Only stale select senders were parked: we did not commit after all.
                Err(TryRecvError::Empty) => {
                    token.revert();
                    step = Step::Reverted;
                }
            }
        }
        let st = &mut *st;
        self.slot = Some(st.slab.push(&mut st.recvq, None, Wake::Select(token.clone(), arm)));
        step
    }

    fn finish(&mut self) -> R {
        let out = match self.out.take() {
            Some(out) => out,
            None => {
                let i = self.slot.take().expect("the winning arm is parked");
                let mut st = self.chan.lock();
                match st.slab.get(i).status {
                    Status::Done => {
                        let v = st.slab.free(i).0.expect("a served receiver holds its value");
                        let wakes = st.served_freed();
                        drop(st);
                        fire_all(wakes);
                        Ok(v)
                    }
                    Status::Closed => {
                        st.slab.free(i);
                        // Values passed back by dropped receivers are still ours to take.
                        match st.try_recv() {
                            Ok((v, w)) => {
                                drop(st);
                                fire(w);
                                Ok(v)
                            }
                            Err(_) => Err(RecvError),
                        }
                    }
                    s => unreachable!("omni: the winning recv arm is {s:?}"),
                }
            }
        };
        (self.f.take().expect("an arm finishes once"))(out)
    }
}

impl<T, F> Drop for RecvArm<'_, T, F> {
    fn drop(&mut self) {
        self.chan.cancel_recv(&mut self.slot);
    }
}

impl<T: Send, R, F: FnOnce(Result<(), SendError<T>>) -> R + Send> Arm<R> for SendArm<'_, T, F> {
    fn note(&self) {
        self.chan.origin.note(Kind::Send);
    }

    fn attempt(&mut self, token: Option<(&Arc<Token>, usize)>) -> Step {
        let mut st = self.chan.lock();
        let Some((token, arm)) = token else {
            let v = self.value.take().expect("a send arm holds its value");
            return match st.try_send(v) {
                Ok(w) => {
                    drop(st);
                    fire(w);
                    self.out = Some(Ok(()));
                    Step::Done
                }
                Err(TrySendError::Closed(v)) => {
                    self.out = Some(Err(SendError(v)));
                    Step::Done
                }
                Err(TrySendError::Full(v)) => {
                    self.value = Some(v);
                    Step::NotReady
                }
            };
        };
        if let Some(step) = recheck(&mut st, &mut self.slot, &mut self.value) {
            return step;
        }
        let mut v = self.value.take().expect("a send arm holds its value");
        let mut step = Step::Parked;
        if st.closed || has_peer(&st.slab, &st.recvq, token) || st.buf.len() < st.cap {
            if !token.try_select(arm) {
                self.value = Some(v);
                return Step::Taken;
            }
            match st.try_send(v) {
                Ok(w) => {
                    drop(st);
                    fire(w);
                    self.out = Some(Ok(()));
                    return Step::Done;
                }
                Err(TrySendError::Closed(v)) => {
                    self.out = Some(Err(SendError(v)));
                    return Step::Done;
                }
                // Only stale select receivers were parked: we did not commit after all.
                Err(TrySendError::Full(back)) => {
                    token.revert();
                    v = back;
                    step = Step::Reverted;
                }
            }
        }
        let st = &mut *st;
        self.slot = Some(st.slab.push(&mut st.sendq, Some(v), Wake::Select(token.clone(), arm)));
        step
    }

    fn finish(&mut self) -> R {
        let out = match self.out.take() {
            Some(out) => out,
            None => {
                let i = self.slot.take().expect("the winning arm is parked");
                let mut st = self.chan.lock();
                let status = st.slab.get(i).status;
                let (v, _) = st.slab.free(i);
                drop(st);
                match status {
                    Status::Done => Ok(()),
                    Status::Closed => Err(SendError(v.expect("a closed sender keeps its value"))),
                    s => unreachable!("omni: the winning send arm is {s:?}"),
                }
            }
        };
        (self.f.take().expect("an arm finishes once"))(out)
    }
}

impl<T, F> Drop for SendArm<'_, T, F> {
    fn drop(&mut self) {
        self.chan.cancel_send(&mut self.slot);
    }
}

type Thunk<'a, R> = Box<dyn FnOnce() -> R + Send + 'a>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Parked,
    Done,
}

/// Waits on several channel operations and completes exactly one of them.
///
/// Each arm has a closure that turns its outcome into the select's output `R`; only the
/// winning arm's closure runs. Arms: [`recv`](Select::recv), [`send`](Select::send),
/// [`timeout`](Select::timeout) and [`default`](Select::default) (taken at once if no
/// other arm is ready). Arms are tried in a random order unless [`biased`](Select::biased).
/// The protocol is in the module source; in short: a losing recv arm receives nothing, a
/// losing send arm sends nothing (its value drops with the select), and dropping the select
/// future cancels every arm. [`select!`](crate::select!) is a thin macro over this type.
///
/// # Panics
///
/// Polling a `Select` without any arm panics, as does polling it after it completed.
///
/// # Examples
///
/// ```
/// use omni::chan::{bounded, Select};
/// use std::time::Duration;
///
/// omni::block_on(async {
///     let (tx1, rx1) = bounded::<u32>(1);
///     let (tx2, rx2) = bounded::<&str>(1);
///     tx2.send("hi").await.unwrap();
///     let got = Select::new()
///         .recv(&rx1, |r| format!("one: {r:?}"))
///         .recv(&rx2, |r| format!("two: {r:?}"))
///         .timeout(Duration::from_secs(1), || "timed out".to_string())
///         .await;
///     assert_eq!(got, "two: Ok(\"hi\")");
///
///     // A send arm and a default arm: the full channel makes the send wait, so the
///     // default wins and 9 is sent to no one.
///     tx1.send(1).await.unwrap();
///     let sent = Select::new().send(&tx1, 9, |r| r.is_ok()).default(|| false).await;
///     assert!(!sent);
///     assert_eq!(rx1.try_recv(), Ok(1));
///     assert!(rx1.try_recv().is_err());
/// });
/// ```
#[must_use = "a select does nothing unless awaited"]
pub struct Select<'a, R> {
    arms: Vec<Box<dyn Arm<R> + Send + 'a>>,
    timeout: Option<(Sleep, Thunk<'a, R>)>,
    default: Option<Thunk<'a, R>>,
    biased: bool,
    phase: Phase,
    token: Option<Arc<Token>>,
}

impl<R> Unpin for Select<'_, R> {}

impl<R> Default for Select<'_, R> {
    fn default() -> Self {
        Select::new()
    }
}

impl<'a, R> Select<'a, R> {
    /// A select without arms.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = omni::chan::unbounded::<u8>();
    /// let r = omni::block_on(omni::chan::Select::new().recv(&rx, |_| 1).default(|| 2));
    /// assert_eq!(r, 2);
    /// ```
    pub fn new() -> Select<'a, R> {
        Select {
            arms: Vec::new(),
            timeout: None,
            default: None,
            biased: false,
            phase: Phase::Start,
            token: None,
        }
    }

    /// Tries the arms in the order they were added instead of a random order.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx1, rx1) = omni::chan::unbounded();
    /// let (tx2, rx2) = omni::chan::unbounded();
    /// tx1.try_send(1).unwrap();
    /// tx2.try_send(2).unwrap();
    /// let sel = omni::chan::Select::new().biased().recv(&rx1, |r| r).recv(&rx2, |r| r);
    /// assert_eq!(omni::block_on(sel), Ok(1));
    /// ```
    pub fn biased(mut self) -> Self {
        self.biased = true;
        self
    }

    /// An arm that receives from `rx`; `f` gets the value, or [`RecvError`] if the channel is
    /// closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = omni::chan::bounded(1);
    /// drop(tx);
    /// let r = omni::block_on(omni::chan::Select::new().recv(&rx, |r: Result<u8, _>| r));
    /// assert!(r.is_err());
    /// ```
    pub fn recv<T, F>(mut self, rx: &'a Receiver<T>, f: F) -> Self
    where
        T: Send + 'a,
        F: FnOnce(Result<T, RecvError>) -> R + Send + 'a,
    {
        self.arms.push(Box::new(RecvArm { chan: &rx.chan, slot: None, out: None, f: Some(f) }));
        self
    }

    /// An arm that sends `v` on `tx`; `f` gets `Ok(())`, or [`SendError`] with the value if
    /// the channel is closed. If another arm wins, `v` is sent to no one and dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = omni::chan::bounded(1);
    /// omni::block_on(omni::chan::Select::new().send(&tx, 5, |r| r.unwrap()));
    /// assert_eq!(rx.try_recv(), Ok(5));
    /// ```
    pub fn send<T, F>(mut self, tx: &'a Sender<T>, v: T, f: F) -> Self
    where
        T: Send + 'a,
        F: FnOnce(Result<(), SendError<T>>) -> R + Send + 'a,
    {
        let arm = SendArm { chan: &tx.chan, slot: None, value: Some(v), out: None, f: Some(f) };
        self.arms.push(Box::new(arm));
        self
    }

    /// An arm that wins if no other arm completed within `d` (an [`omni::time::sleep`]
    /// started now). A second call replaces the first.
    ///
    /// # Panics
    ///
    /// When the select is polled outside an omni runtime (as `sleep` does).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
    /// let (_tx, rx) = omni::chan::bounded::<u8>(1);
    /// let r = rt.block_on(async {
    ///     omni::chan::Select::new().recv(&rx, |_| "value").timeout(Duration::from_secs(5), || "late").await
    /// });
    /// assert_eq!(r, "late");
    /// ```
    ///
    /// [`omni::time::sleep`]: crate::time::sleep
    pub fn timeout<F>(mut self, d: Duration, f: F) -> Self
    where
        F: FnOnce() -> R + Send + 'a,
    {
        self.timeout = Some((crate::time::sleep(d), Box::new(f)));
        self
    }

    /// An arm taken at once if no other arm is ready on the first poll. A second call
    /// replaces the first.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = omni::chan::rendezvous();
    /// let r = omni::block_on(omni::chan::Select::new().send(&tx, 1, |_| "sent").default(|| "busy"));
    /// assert_eq!(r, "busy");
    /// ```
    pub fn default<F>(mut self, f: F) -> Self
    where
        F: FnOnce() -> R + Send + 'a,
    {
        self.default = Some(Box::new(f));
        self
    }

    fn order(&self) -> (usize, usize) {
        let n = self.arms.len();
        let start = if self.biased || n < 2 { 0 } else { (random() % n as u64) as usize };
        (start, n)
    }

    /// Runs the winner `k` and cancels every other arm.
    fn finish(&mut self, k: usize) -> R {
        self.phase = Phase::Done;
        let n = self.arms.len();
        let mut arms = std::mem::take(&mut self.arms);
        let timeout = self.timeout.take();
        // Cancel the losers (their drops remove their entries) before the winner runs.
        let winner = if k < n { Some(arms.swap_remove(k)) } else { None };
        drop(arms);
        match winner {
            Some(mut arm) => arm.finish(),
            None => (timeout.expect("the timeout arm won").1)(),
        }
    }

    /// Registers every arm with the token; returns the winner if one completed meanwhile.
    fn register(&mut self, token: &Arc<Token>) -> Option<usize> {
        let (start, n) = self.order();
        loop {
            let mut rescan = false;
            for k in 0..n {
                let i = (start + k) % n;
                match self.arms[i].attempt(Some((token, i))) {
                    Step::Done => return Some(i),
                    Step::Taken => return Some(token.selected()),
                    Step::Reverted => rescan = true,
                    Step::Parked | Step::NotReady => {}
                }
            }
            if !rescan {
                return None;
            }
        }
    }
}

impl<R> Future for Select<'_, R> {
    type Output = R;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let this = self.get_mut();
        assert!(this.phase != Phase::Done, "omni: Select polled after it completed");
        assert!(
            !this.arms.is_empty() || this.timeout.is_some() || this.default.is_some(),
            "omni: a Select needs at least one arm"
        );
        crate::rt::coop::budgeted(cx, |cx| this.poll_parts(cx))
    }
}

impl<R> Select<'_, R> {
    fn poll_parts(&mut self, cx: &mut Context<'_>) -> Poll<R> {
        let this = self;
        if this.phase == Phase::Start {
            let (start, n) = this.order();
            for k in 0..n {
                let i = (start + k) % n;
                if let Step::Done = this.arms[i].attempt(None) {
                    return Poll::Ready(this.finish(i));
                }
            }
            if let Some(d) = this.default.take() {
                this.phase = Phase::Done;
                this.arms.clear();
                return Poll::Ready(d());
            }
            let token =
                Arc::new(Token { selected: AtomicUsize::new(NONE), waker: Mutex::new(None) });
            token.set_waker(cx.waker());
            this.phase = Phase::Parked;
            this.token = Some(token.clone());
            if let Some(k) = this.register(&token) {
                return Poll::Ready(this.finish(k));
            }
        }
        let token = this.token.clone().expect("a parked select has a token");
        token.set_waker(cx.waker());
        let k = token.selected();
        if k != NONE {
            return Poll::Ready(this.finish(k));
        }
        if let Some((sleep, _)) = &mut this.timeout {
            if Pin::new(sleep).poll(cx).is_ready() {
                let n = this.arms.len();
                let k = if token.try_select(n) { n } else { token.selected() };
                return Poll::Ready(this.finish(k));
            }
        }
        this.arms.iter().for_each(|a| a.note());
        crate::rt::deadlock::note_arms(this.arms.len());
        Poll::Pending
    }
}

impl<R> fmt::Debug for Select<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("arms", &self.arms.len())
            .field("timeout", &self.timeout.is_some())
            .field("default", &self.default.is_some())
            .field("biased", &self.biased)
            .field("phase", &self.phase)
            .finish()
    }
}

/// A cheap per-thread xorshift for the start arm of unbiased selects (a constant under loom,
/// whose models must be deterministic).
#[cfg(loom)]
fn random() -> u64 {
    0
}

/// A cheap per-thread xorshift for the start arm of unbiased selects.
#[cfg(not(loom))]
fn random() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = (s as *const _ as u64) ^ 0x9E37_79B9_7F4A_7C15;
            x |= 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

/// Waits on several channel operations and runs the body of the one that completes: a thin
/// front over [`Select`](crate::chan::Select), with the same protocol and guarantees.
///
/// Arms, separated by commas:
/// - `pat = recv(rx) => body`: `pat` binds `Result<T, RecvError>`;
/// - `pat = send(tx, value) => body`: `pat` binds `Result<(), SendError<T>>`;
/// - `timeout(duration) => body`;
/// - `default => body`;
///
/// and an optional leading `biased;` to try the arms in order. Bodies run in the enclosing
/// async context (`.await`, `?`, `return` and `break` work). Patterns must be irrefutable
/// (bind the `Result` and match inside the body).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// omni::block_on(async {
///     let (tx, rx) = omni::chan::bounded::<u32>(1);
///     let (done_tx, done_rx) = omni::chan::bounded::<()>(1);
///     tx.send(1).await.unwrap();
///     for _ in 0..2 {
///         omni::select! {
///             biased;
///             v = recv(rx) => assert_eq!(v, Ok(1)),
///             r = send(done_tx, ()) => r.unwrap(),
///             timeout(Duration::from_secs(1)) => unreachable!(),
///         }
///     }
///     assert_eq!(done_rx.try_recv(), Ok(()));
///     let idle = omni::select! {
///         v = recv(rx) => Some(v),
///         default => None,
///     };
///     assert_eq!(idle, None);
/// });
/// ```
#[macro_export]
macro_rules! select {
    (biased; $($arms:tt)*) => {
        $crate::__select_arms!([] [.biased()] [] $($arms)*)
    };
    ($($arms:tt)*) => {
        $crate::__select_arms!([] [] [] $($arms)*)
    };
}

/// One arm at a time: each step declares its own result slot (`__slot` is a fresh hygienic
/// name in each expansion), adds a builder call that fills it, and a dispatch branch.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_arms {
    ([$($lets:tt)*] [$($calls:tt)*] [$($disp:tt)*]
     $p:pat = recv($rx:expr) => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_arms!(
            [$($lets)* let mut __slot = ::core::option::Option::None;]
            [$($calls)* .recv(&$rx, |__v| __slot = ::core::option::Option::Some(__v))]
            [$($disp)* if let ::core::option::Option::Some($p) = __slot { $body } else]
            $($($rest)*)?)
    };
    ([$($lets:tt)*] [$($calls:tt)*] [$($disp:tt)*]
     $p:pat = send($tx:expr, $v:expr) => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_arms!(
            [$($lets)* let mut __slot = ::core::option::Option::None;]
            [$($calls)* .send(&$tx, $v, |__r| __slot = ::core::option::Option::Some(__r))]
            [$($disp)* if let ::core::option::Option::Some($p) = __slot { $body } else]
            $($($rest)*)?)
    };
    ([$($lets:tt)*] [$($calls:tt)*] [$($disp:tt)*]
     timeout($d:expr) => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_arms!(
            [$($lets)* let mut __slot = ::core::option::Option::None;]
            [$($calls)* .timeout($d, || __slot = ::core::option::Option::Some(()))]
            [$($disp)* if let ::core::option::Option::Some(()) = __slot { $body } else]
            $($($rest)*)?)
    };
    ([$($lets:tt)*] [$($calls:tt)*] [$($disp:tt)*]
     default => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_arms!(
            [$($lets)* let mut __slot = ::core::option::Option::None;]
            [$($calls)* .default(|| __slot = ::core::option::Option::Some(()))]
            [$($disp)* if let ::core::option::Option::Some(()) = __slot { $body } else]
            $($($rest)*)?)
    };
    ([$($lets:tt)*] [$($calls:tt)*] [$($disp:tt)*]) => {{
        $($lets)*
        $crate::chan::Select::new() $($calls)* .await;
        $($disp)* { ::core::unreachable!("omni::select!: no arm completed") }
    }};
}
