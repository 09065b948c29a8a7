//! The readiness driver over mio: epoll here, kqueue on the BSDs and macOS.
//!
//! Every source is registered once, for both directions, edge-triggered (mio's only mode): the
//! kernel reports a change of readiness, the driver records it in the source's
//! [`ScheduledIo`] and wakes its waiters, and the source stays registered until it is dropped.
//!
//! Sources live in a generational table: the token handed to the kernel packs the slot index
//! (low 32 bits) and the slot's generation (high bits), so an event still queued in the kernel
//! for a source that was deregistered, and whose slot was reused since, is recognised and
//! dropped instead of waking the new owner.
//!
//! A `mio::Waker` (an eventfd on Linux) interrupts a thread blocked in [`MioDriver::try_turn`].

use crate::ready::Ready;
use crate::scheduled::ScheduledIo;
use mio::unix::SourceFd;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAKE: mio::Token = mio::Token(usize::MAX);
const EVENTS: usize = 1024;

struct Slot {
    gen: u32,
    io: Option<Arc<ScheduledIo>>,
}

#[derive(Default)]
struct Sources {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

/// The thread inside the driver owns these.
struct Turn {
    poll: mio::Poll,
    events: mio::Events,
    wakes: Vec<(Arc<ScheduledIo>, Ready)>,
}

/// A mio-backed readiness driver.
pub(crate) struct MioDriver {
    turn: Mutex<Turn>,
    registry: mio::Registry,
    waker: mio::Waker,
    sources: Mutex<Sources>,
}

impl MioDriver {
    pub(crate) fn new() -> io::Result<MioDriver> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKE)?;
        Ok(MioDriver {
            turn: Mutex::new(Turn {
                poll,
                events: mio::Events::with_capacity(EVENTS),
                wakes: Vec::new(),
            }),
            registry,
            waker,
            sources: Mutex::new(Sources::default()),
        })
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `fd` for both directions; returns its token.
    pub(crate) fn register(&self, fd: RawFd, io: &Arc<ScheduledIo>) -> io::Result<usize> {
        let token = {
            let mut s = self.sources();
            let index = match s.free.pop() {
                Some(i) => i,
                None => {
                    let i = u32::try_from(s.slots.len())
                        .map_err(|_| io::Error::other("omni-io: more than 2^32 sources"))?;
                    s.slots.push(Slot { gen: 0, io: None });
                    i
                }
            };
            let slot = &mut s.slots[index as usize];
            slot.io = Some(io.clone());
            ((slot.gen as usize) << 32) | index as usize
        };
        let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
        if let Err(e) = self.registry.register(&mut SourceFd(&fd), mio::Token(token), interest) {
            self.release(token);
            return Err(e);
        }
        Ok(token)
    }

    /// Deregisters `fd` (still open) and frees its slot.
    pub(crate) fn deregister(&self, fd: RawFd, token: usize) {
        // An error here means the fd was already closed (and so left the epoll set): nothing
        // more to undo.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        self.release(token);
    }

    fn release(&self, token: usize) {
        let mut s = self.sources();
        let index = token as u32;
        if let Some(slot) = s.slots.get_mut(index as usize) {
            slot.io = None;
            slot.gen = slot.gen.wrapping_add(1);
            s.free.push(index);
        }
    }

    /// Waits for events (at most `timeout`; `None` waits until one arrives or a wake) and
    /// delivers them. Returns `None` without waiting if another thread is in the driver.
    pub(crate) fn try_turn(&self, timeout: Option<Duration>) -> Option<io::Result<()>> {
        let mut turn = self.turn.try_lock().ok()?;
        let Turn { poll, events, wakes } = &mut *turn;
        match poll.poll(events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Some(Ok(())),
            Err(e) => return Some(Err(e)),
        }
        {
            let s = self.sources();
            for ev in events.iter() {
                let token = ev.token();
                if token == WAKE {
                    continue;
                }
                let (index, gen) = (token.0 as u32, (token.0 >> 32) as u32);
                let Some(Slot { gen: g, io: Some(io) }) = s.slots.get(index as usize) else {
                    continue;
                };
                if *g != gen {
                    continue; // a stale event for a source that left this slot
                }
                let mut ready = Ready::EMPTY;
                if ev.is_readable() {
                    ready = ready | Ready::READABLE;
                }
                if ev.is_writable() {
                    ready = ready | Ready::WRITABLE;
                }
                if ev.is_read_closed() {
                    ready = ready | Ready::READ_CLOSED;
                }
                if ev.is_write_closed() {
                    ready = ready | Ready::WRITE_CLOSED;
                }
                if ev.is_error() {
                    ready = ready | Ready::ERROR;
                }
                wakes.push((io.clone(), ready));
            }
        }
        // Wake with no driver lock held: a waker may run arbitrary code.
        for (io, ready) in wakes.drain(..) {
            io.deliver(ready);
        }
        Some(Ok(()))
    }

    /// Interrupts the thread blocked in [`MioDriver::try_turn`] (or makes its next turn return
    /// at once).
    pub(crate) fn wake(&self) -> io::Result<()> {
        self.waker.wake()
    }

    /// Fails every registered source's present and future waits.
    pub(crate) fn shutdown(&self) {
        let ios: Vec<_> = self.sources().slots.iter().filter_map(|s| s.io.clone()).collect();
        for io in ios {
            io.shutdown();
        }
    }

    /// Registered sources (for statistics and leak tests).
    pub(crate) fn sources_len(&self) -> usize {
        let s = self.sources();
        s.slots.len() - s.free.len()
    }
}
