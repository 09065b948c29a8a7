//! A one-value completion cell between an OS thread that produces a result and one consumer
//! that awaits it (from a green task, without blocking) or blocks on it (from plain code).
//!
//! The producer holds a [`Completer`]: completing consumes it, and dropping it unfinished
//! marks the cell abandoned, so a consumer never waits for a producer that is gone. The
//! consumer side is the [`Completion`] itself; [`Completion::close`] says nobody will take the
//! value (a producer may check [`Completion::is_closed`] to skip work nobody wants).
//!
//! Everything sits under one mutex; the waker is woken and the value dropped outside it.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

enum Slot<T> {
    Empty,
    Ready(T),
    Taken,
    Abandoned,
}

struct State<T> {
    slot: Slot<T>,
    waker: Option<Waker>,
    closed: bool,
}

/// The shared cell; see the module doc.
pub(crate) struct Completion<T> {
    state: Mutex<State<T>>,
    done: Condvar,
}

impl<T> Completion<T> {
    /// An empty cell and the producer's end of it.
    pub(crate) fn new() -> (Arc<Completion<T>>, Completer<T>) {
        let cell = Arc::new(Completion {
            state: Mutex::new(State { slot: Slot::Empty, waker: None, closed: false }),
            done: Condvar::new(),
        });
        (cell.clone(), Completer(Some(cell)))
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs under the lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the final slot state, wakes the consumer; drops `v` if the consumer is gone.
    fn finish(&self, slot: Slot<T>) {
        let mut st = self.lock();
        let (waker, unwanted) = if st.closed {
            (None, Some(slot))
        } else {
            st.slot = slot;
            (st.waker.take(), None)
        };
        drop(st);
        self.done.notify_all();
        drop(unwanted);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The value once it is there: `Ready(Some(v))`, or `Ready(None)` if the producer gave up
    /// (and again on every later call).
    ///
    /// # Panics
    ///
    /// If the value was already taken.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut st = self.lock();
        match std::mem::replace(&mut st.slot, Slot::Taken) {
            Slot::Ready(v) => Poll::Ready(Some(v)),
            Slot::Abandoned => {
                st.slot = Slot::Abandoned;
                Poll::Ready(None)
            }
            Slot::Taken => panic!("omni: a completion was polled after it returned its value"),
            Slot::Empty => {
                st.slot = Slot::Empty;
                match &mut st.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    w => *w = Some(crate::rt::deadlock::keep(cx.waker())),
                }
                Poll::Pending
            }
        }
    }

    /// Blocks the calling thread until the value is there; `None` if the producer gave up.
    ///
    /// # Panics
    ///
    /// If the value was already taken.
    pub(crate) fn wait_take(&self) -> Option<T> {
        let mut st = self.lock();
        while matches!(st.slot, Slot::Empty) {
            st = self.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        match std::mem::replace(&mut st.slot, Slot::Taken) {
            Slot::Ready(v) => Some(v),
            Slot::Abandoned => {
                st.slot = Slot::Abandoned;
                None
            }
            _ => panic!("omni: a completion was waited on after it returned its value"),
        }
    }

    /// Whether the producer finished (with a value or by giving up).
    pub(crate) fn is_done(&self) -> bool {
        !matches!(self.lock().slot, Slot::Empty)
    }

    /// The consumer is gone: drops a value already there, and any later one on arrival.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        let slot = std::mem::replace(&mut st.slot, Slot::Taken);
        let waker = st.waker.take();
        drop(st);
        drop((slot, waker));
    }

    /// Whether the consumer is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

impl<T> fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        let slot = match st.slot {
            Slot::Empty => "empty",
            Slot::Ready(_) => "ready",
            Slot::Taken => "taken",
            Slot::Abandoned => "abandoned",
        };
        f.debug_struct("Completion").field("slot", &slot).field("closed", &st.closed).finish()
    }
}

/// The producer's end: [`Completer::complete`] once, or drop it to abandon the cell.
pub(crate) struct Completer<T>(Option<Arc<Completion<T>>>);

impl<T> Completer<T> {
    /// Hands `v` to the consumer (or drops it if the consumer is gone).
    pub(crate) fn complete(mut self, v: T) {
        if let Some(cell) = self.0.take() {
            cell.finish(Slot::Ready(v));
        }
    }

    /// Whether the consumer is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.as_ref().is_none_or(|c| c.is_closed())
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(cell) = self.0.take() {
            cell.finish(Slot::Abandoned);
        }
    }
}

impl<T> fmt::Debug for Completer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Completer").field(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn blocking_completion_wakes_the_awaiting_consumer_once() {
        let (cell, tx) = Completion::<u32>::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(cell.poll_take(&mut cx).is_pending());
        assert!(cell.poll_take(&mut cx).is_pending());
        assert!(!cell.is_done());
        tx.complete(5);
        assert_eq!(count.0.load(SeqCst), 1);
        assert!(cell.is_done());
        assert_eq!(cell.poll_take(&mut cx), Poll::Ready(Some(5)));
    }

    #[test]
    fn blocking_completion_wait_take_blocks_until_another_thread_completes() {
        let (cell, tx) = Completion::<String>::new();
        let t = std::thread::spawn(move || tx.complete("hi".into()));
        assert_eq!(cell.wait_take().as_deref(), Some("hi"));
        t.join().unwrap();
    }

    #[test]
    fn blocking_completion_dropped_completer_reads_as_abandoned() {
        let (cell, tx) = Completion::<u32>::new();
        drop(tx);
        assert_eq!(cell.wait_take(), None);
    }

    #[test]
    fn blocking_completion_close_drops_the_value_and_tells_the_producer() {
        let (cell, tx) = Completion::<Arc<()>>::new();
        let v = Arc::new(());
        cell.close();
        assert!(tx.is_closed());
        tx.complete(v.clone());
        assert_eq!(Arc::strong_count(&v), 1, "the unwanted value was dropped");
    }
}
