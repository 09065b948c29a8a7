//! The per-source state shared by a driver and the tasks using the source: readiness bits, a
//! tick, and at most one waiting reader and one waiting writer.
//!
//! The state word packs the [`Ready`] bits (low byte), a shutdown flag and a tick (high bits)
//! that the driver bumps with every event it delivers. A task that saw readiness, tried the
//! operation and got `WouldBlock` clears readiness only if the tick is still the one it saw:
//! an event that arrived in between is never lost (tokio's `ScheduledIo` does the same).
//!
//! Wakers live under a small lock. Lock order: a driver never holds its own locks while it
//! takes this one (it collects, releases, then wakes), so a task may hold this lock while it
//! asks the driver to arm a poll operation.

use crate::ready::{Interest, Ready};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

const READY_MASK: usize = 0xff;
const SHUTDOWN: usize = 1 << 8;
const TICK_SHIFT: u32 = 16;

/// Readiness observed by [`Registration::poll_ready`](crate::Registration::poll_ready), with the
/// tick it was seen at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyEvent {
    /// The readiness bits that satisfied the interest.
    pub ready: Ready,
    tick: usize,
}

/// Who waits, and (io_uring) which poll operations are in flight.
#[derive(Default)]
pub(crate) struct Waiters {
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// io_uring only: the ring and operation index of the poll armed for reading (0) and
    /// writing (1).
    pub(crate) polls: [Option<(usize, u32)>; 2],
}

/// The state of one registered source.
pub(crate) struct ScheduledIo {
    state: AtomicUsize,
    waiters: Mutex<Waiters>,
}

/// What [`ScheduledIo::poll_ready`] found.
pub(crate) enum Readiness {
    Ready(ReadyEvent),
    /// Not ready; the waker is stored. `arm` is true when the caller must arm a poll operation
    /// for the direction (io_uring), having recorded it in `Waiters::polls` under the lock.
    Pending,
    Shutdown,
}

impl ScheduledIo {
    /// A new source, assumed readable and writable: the first operation is tried at once, and
    /// its `WouldBlock` clears the assumption (saves a driver round trip on a fresh socket).
    pub(crate) fn new() -> ScheduledIo {
        ScheduledIo {
            state: AtomicUsize::new((Ready::READABLE | Ready::WRITABLE).bits() as usize),
            waiters: Mutex::new(Waiters::default()),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, interest: Interest) -> Result<Option<ReadyEvent>, ()> {
        let s = self.state.load(Acquire);
        if s & SHUTDOWN != 0 {
            return Err(());
        }
        let ready = Ready::from_bits((s & READY_MASK) as u8).intersection(interest.mask());
        Ok((!ready.is_empty()).then_some(ReadyEvent { ready, tick: s >> TICK_SHIFT }))
    }

    /// Whether `interest` is satisfied; if not, stores the waker. `arm(waiters, dir)` is called
    /// under the lock when no poll operation is in flight for a direction (io_uring only).
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
        arm: impl FnOnce(&mut Waiters, usize),
    ) -> Readiness {
        match self.event(interest) {
            Err(()) => return Readiness::Shutdown,
            Ok(Some(ev)) => return Readiness::Ready(ev),
            Ok(None) => {}
        }
        let mut w = self.lock();
        let dir = if interest.is_readable() { 0 } else { 1 };
        let slot = if dir == 0 { &mut w.reader } else { &mut w.writer };
        match slot {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        // Re-check under the lock: an event delivered before the waker was stored is seen here,
        // one delivered after finds the waker (the driver takes this lock to wake).
        match self.event(interest) {
            Err(()) => return Readiness::Shutdown,
            Ok(Some(ev)) => return Readiness::Ready(ev),
            Ok(None) => {}
        }
        arm(&mut w, dir);
        Readiness::Pending
    }

    /// Forgets the readiness of `ev` if no event arrived since it was observed.
    ///
    /// Every bit of `ev` goes, the closed and error bits too: the caller tried the operation
    /// and it said `WouldBlock`, which no closed or failed socket says (a read at end of
    /// stream returns 0, a write to a closed one fails). Keeping such a bit would make every
    /// later wait return at once and the caller spin. A real close arrives again as a new
    /// event, since the kernel reports the change.
    pub(crate) fn clear_readiness(&self, ev: ReadyEvent) {
        self.clear(ev.tick, ev.ready);
    }

    /// Forgets only the readable and writable bits of `ev` (if no event arrived since): for a
    /// transfer shorter than asked, which drained the socket or filled its buffer but proves
    /// nothing about a close. An end of stream that arrived with the data stays seen, so the
    /// next read returns 0 instead of waiting for an event that already came.
    pub(crate) fn clear_drained(&self, ev: ReadyEvent) {
        self.clear(ev.tick, ev.ready.intersection(Ready::READABLE | Ready::WRITABLE));
    }

    fn clear(&self, tick: usize, ready: Ready) {
        let clear = ready.bits() as usize;
        let _ = self
            .state
            .fetch_update(AcqRel, Acquire, |s| (s >> TICK_SHIFT == tick).then_some(s & !clear));
    }

    /// Records `ready` (a new tick) and wakes the waiters it satisfies.
    pub(crate) fn deliver(&self, ready: Ready) {
        if ready.is_empty() {
            return;
        }
        let _ = self.state.fetch_update(AcqRel, Acquire, |s| {
            let tick = (s >> TICK_SHIFT).wrapping_add(1) << TICK_SHIFT;
            Some(tick | (s & (READY_MASK | SHUTDOWN)) | ready.bits() as usize)
        });
        self.wake(ready);
    }

    /// Wakes the waiters that `ready` satisfies (all of them on shutdown).
    fn wake(&self, ready: Ready) {
        let (r, w) = {
            let mut w = self.lock();
            let r = if ready.is_readable() { w.reader.take() } else { None };
            let wr = if ready.is_writable() { w.writer.take() } else { None };
            (r, wr)
        };
        if let Some(r) = r {
            r.wake();
        }
        if let Some(w) = w {
            w.wake();
        }
    }

    /// The driver is going away: every present and future wait fails.
    pub(crate) fn shutdown(&self) {
        self.state.fetch_or(SHUTDOWN, AcqRel);
        self.wake(Ready::ALL);
    }
}

/// Maps [`Readiness`] to the public poll result.
pub(crate) fn to_poll(r: Readiness) -> Poll<std::io::Result<ReadyEvent>> {
    match r {
        Readiness::Ready(ev) => Poll::Ready(Ok(ev)),
        Readiness::Pending => Poll::Pending,
        Readiness::Shutdown => Poll::Ready(Err(crate::shutdown_error())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn a_would_block_clears_a_spurious_hang_up() {
        // epoll reports a socket that has not started connecting as hung up; the read that
        // follows says WouldBlock. The wait after it must sleep, not return at once forever.
        let io = ScheduledIo::new();
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        let Readiness::Ready(ev) = io.poll_ready(&mut cx, Interest::READABLE, |_, _| {}) else {
            unreachable!()
        };
        io.clear_readiness(ev);
        io.deliver(Ready::READ_CLOSED | Ready::WRITE_CLOSED | Ready::ERROR);
        let Readiness::Ready(ev) = io.poll_ready(&mut cx, Interest::READABLE, |_, _| {}) else {
            panic!("a hang-up satisfies a reader");
        };
        assert!(ev.ready.contains(Ready::READ_CLOSED));
        io.clear_readiness(ev);
        assert!(matches!(
            io.poll_ready(&mut cx, Interest::READABLE, |_, _| {}),
            Readiness::Pending
        ));
    }

    #[test]
    fn a_short_transfer_keeps_an_end_of_stream_that_came_with_the_data() {
        let io = ScheduledIo::new();
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        io.deliver(Ready::READABLE | Ready::READ_CLOSED);
        let Readiness::Ready(ev) = io.poll_ready(&mut cx, Interest::READABLE, |_, _| {}) else {
            unreachable!()
        };
        io.clear_drained(ev);
        let Readiness::Ready(ev) = io.poll_ready(&mut cx, Interest::READABLE, |_, _| {}) else {
            panic!("the end of stream was forgotten: the reader would wait for good");
        };
        assert_eq!(ev.ready, Ready::READ_CLOSED);
    }

    #[test]
    fn a_clear_does_not_lose_an_event_that_arrived_after_the_look() {
        let io = ScheduledIo::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let Readiness::Ready(ev) = io.poll_ready(&mut cx, Interest::READABLE, |_, _| {}) else {
            panic!("a fresh source is assumed readable");
        };
        // An event arrives between the look and the clear: the clear must not erase it.
        io.deliver(Ready::READABLE);
        io.clear_readiness(ev);
        assert!(matches!(
            io.poll_ready(&mut cx, Interest::READABLE, |_, _| {}),
            Readiness::Ready(_)
        ));
        // Without an event in between, the clear sticks and the waker is stored.
        let Readiness::Ready(ev) = io.poll_ready(&mut cx, Interest::READABLE, |_, _| {}) else {
            unreachable!()
        };
        io.clear_readiness(ev);
        let mut armed = None;
        assert!(matches!(
            io.poll_ready(&mut cx, Interest::READABLE, |_, dir| armed = Some(dir)),
            Readiness::Pending
        ));
        assert_eq!(armed, Some(0));
        io.deliver(Ready::WRITABLE);
        assert_eq!(count.0.load(SeqCst), 0, "a writable event does not wake a reader");
        io.deliver(Ready::READABLE);
        assert_eq!(count.0.load(SeqCst), 1);
        io.shutdown();
        assert!(matches!(
            io.poll_ready(&mut cx, Interest::WRITABLE, |_, _| {}),
            Readiness::Shutdown
        ));
    }
}
