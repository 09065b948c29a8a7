//! `JoinHandle`: awaiting a task's output, aborting it, or detaching it.

use super::raw::Panic;
use super::state::{Release, Wake, COMPLETE, JOIN_WAKER, OUTPUT};
use super::{gen_of, index_of, with_slot, Access};
use crate::rt::deadlock::keep;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A task's identity: unique among the tasks alive in the process, and never reused while a
/// handle or waker could still name the old task (it is the task's generational key).
///
/// # Examples
///
/// ```
/// let (a, b) = omni::block_on(async {
///     let a = omni::spawn_local(async {});
///     let b = omni::spawn_local(async {});
///     (a.id(), b.id())
/// });
/// assert_ne!(a, b);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub(crate) u64);

impl Id {
    /// The id as a number (generation in the high 32 bits, slot index in the low 32).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({}v{})", self.0 as u32, (self.0 >> 32) as u32)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}v{}", self.0 as u32, (self.0 >> 32) as u32)
    }
}

/// Why a task produced no output: it was cancelled, or it panicked.
///
/// # Examples
///
/// ```
/// let err = omni::block_on(async {
///     omni::spawn_local(async { panic!("boom") }).await.unwrap_err()
/// });
/// assert!(err.is_panic());
/// assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
/// ```
pub struct JoinError {
    id: Id,
    panic: Option<Panic>,
}

// SAFETY: through `&JoinError` the payload is only read by `panic_message`, which calls
// `downcast_ref` (the vtable's `type_id`, not the data) and then reads a `&str` or `String`,
// both `Sync`. Every other access takes the error by value.
unsafe impl Sync for JoinError {}

impl JoinError {
    pub(crate) fn cancelled(id: Id) -> JoinError {
        JoinError { id, panic: None }
    }

    /// The task was cancelled (`abort()`, or its runtime shut down).
    pub fn is_cancelled(&self) -> bool {
        self.panic.is_none()
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        self.panic.is_some()
    }

    /// The id of the task.
    pub fn id(&self) -> Id {
        self.id
    }

    /// The panic payload, to re-raise with `std::panic::resume_unwind`.
    ///
    /// # Panics
    ///
    /// If the task was cancelled rather than panicked; check [`JoinError::is_panic`] or use
    /// [`JoinError::try_into_panic`].
    pub fn into_panic(self) -> Box<dyn std::any::Any + Send + 'static> {
        self.try_into_panic().unwrap_or_else(|e| {
            panic!("JoinError::into_panic on a cancelled task ({}): check is_panic() first", e.id)
        })
    }

    /// The panic payload, or the error back if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn std::any::Any + Send + 'static>, JoinError> {
        match self.panic {
            Some(p) => Ok(p),
            None => Err(self),
        }
    }
}

fn panic_message(p: &Panic) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "<non-string payload>"
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.panic {
            None => write!(f, "JoinError::Cancelled({:?})", self.id),
            Some(p) => write!(f, "JoinError::Panic({:?}, {:?})", self.id, panic_message(p)),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.panic {
            None => write!(f, "task {} was cancelled", self.id),
            Some(p) => write!(f, "task {} panicked: {}", self.id, panic_message(p)),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
}

const DONE: u64 = u64::MAX;

/// An owned permission to await a task's output.
///
/// Awaiting it gives `Ok(output)`, or `Err(JoinError)` if the task panicked or was cancelled.
/// Dropping it *detaches* the task: it keeps running and its output is dropped when it ends.
///
/// # Examples
///
/// ```
/// omni::block_on(async {
///     let h = omni::spawn_local(async { 6 * 7 });
///     assert_eq!(h.await.unwrap(), 42);
/// });
/// ```
pub struct JoinHandle<T> {
    key: u64,
    _output: PhantomData<fn() -> T>,
}

// The handle moves the output to whoever awaits it, so it may cross threads when `T` may.
// SAFETY: the handle itself holds only a key; the output crosses threads only if `T: Send`.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` allows only `abort`, `is_finished` and `id`, which are thread-safe.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(key: u64) -> JoinHandle<T> {
        JoinHandle { key, _output: PhantomData }
    }

    /// A handle for a task that was refused (spawned into a runtime shutting down): it reports
    /// the task cancelled.
    pub(crate) fn refused() -> JoinHandle<T> {
        // Generation 0 is even, so this key never names an occupied slot: it reads as stale.
        JoinHandle::new(u64::from(u32::MAX))
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        Id(self.key)
    }

    /// Cancels the task. Its future is dropped on the thread that owns it, at the scheduler's
    /// next turn (never while it is being polled); awaiting the handle then gives a
    /// [`JoinError`] for which `is_cancelled()` is true, unless the task had already finished.
    ///
    /// # Examples
    ///
    /// ```
    /// omni::block_on(async {
    ///     let h = omni::spawn_local(std::future::pending::<()>());
    ///     h.abort();
    ///     assert!(h.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        if self.key == DONE {
            return;
        }
        let key = self.key;
        with_slot(key, |h, _, access| {
            if h.state.cancel(gen_of(key)) == Wake::Schedule {
                crate::rt::schedule(key, h, access);
            }
        });
    }

    /// Whether the task has finished (completed, panicked, or was cancelled and dropped).
    pub fn is_finished(&self) -> bool {
        if self.key == DONE {
            return true;
        }
        with_slot(self.key, |h, _, _| {
            let s = h.state.load();
            s.generation() != gen_of(self.key) || s.has(COMPLETE)
        })
        .unwrap_or(true)
    }

    fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let key = self.key;
        let id = Id(key);
        let gen = gen_of(key);
        let res = with_slot(key, |h, p, access| {
            let mut s = h.state.load();
            loop {
                if s.generation() != gen {
                    return Poll::Ready(None);
                }
                if s.has(COMPLETE) {
                    let mut out: Option<Result<T, Panic>> = None;
                    if s.has(OUTPUT) && h.state.claim_output() {
                        // SAFETY: we claimed the output (cleared OUTPUT after COMPLETE, acquire
                        // ordering), so it is ours alone, and we hold the join interest, so the
                        // slot is not freed; `out` has the type the vtable expects (the handle
                        // was created by `spawn` for this task type). Within `with_slot` the
                        // chunk is alive.
                        unsafe {
                            ((*h.vtable.get()).read_output)(p, &mut out as *mut _ as *mut ())
                        };
                    }
                    // Give up the join interest in the same visit to the slot.
                    if h.state.drop_join_interest(gen) == Release::Free {
                        crate::rt::free_completed(key, p, access);
                    }
                    return Poll::Ready(Some(out));
                }
                // Register the waker. While JOIN_WAKER is clear the field is ours to write.
                if s.has(JOIN_WAKER) {
                    // SAFETY: with JOIN_WAKER set the scheduler reads the field only after
                    // COMPLETE, and writes it (takes the waker) only when freeing the slot, which
                    // needs our join interest gone (or, at shutdown, the chunk unpublished, which
                    // waits for this `with_slot` to end). Comparing is a shared read.
                    let same = unsafe { &*h.join_waker.get() }
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()));
                    if same {
                        note_join(key, access);
                        return Poll::Pending;
                    }
                    if let Err(now) = h.state.unset_join_waker(gen) {
                        s = now;
                        continue;
                    }
                }
                // SAFETY: JOIN_WAKER is clear, so the scheduler does not touch the field.
                unsafe { *h.join_waker.get() = Some(keep(cx.waker())) };
                match h.state.set_join_waker(gen) {
                    Ok(()) => {
                        note_join(key, access);
                        return Poll::Pending;
                    }
                    Err(now) => s = now,
                }
            }
        });
        match res {
            Some(Poll::Pending) => Poll::Pending,
            None | Some(Poll::Ready(None)) => {
                self.key = DONE;
                Poll::Ready(Err(JoinError::cancelled(id)))
            }
            Some(Poll::Ready(Some(out))) => {
                self.key = DONE;
                Poll::Ready(match out {
                    Some(Ok(v)) => Ok(v),
                    Some(Err(p)) => Err(JoinError { id, panic: Some(p) }),
                    None => Err(JoinError::cancelled(id)),
                })
            }
        }
    }

    /// Gives up the join interest; frees the slot if the task already completed.
    fn release(&mut self) {
        let key = std::mem::replace(&mut self.key, DONE);
        if key == DONE {
            return;
        }
        with_slot(key, |h, p, access| {
            if h.state.drop_join_interest(gen_of(key)) == Release::Free {
                crate::rt::free_completed(key, p, access);
            }
        });
    }
}

/// Notes a wait on the task `key` for a deadlock report: foreign if that task belongs to a
/// runtime other than the one polling the handle.
fn note_join(key: u64, access: Access) {
    crate::rt::deadlock::note_join(index_of(key), matches!(access, Access::Foreign(_)));
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(self.key != DONE, "JoinHandle polled after it returned Ready");
        crate::rt::coop::budgeted(cx, |cx| self.poll_output(cx))
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.release();
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &Id(self.key)).finish()
    }
}
