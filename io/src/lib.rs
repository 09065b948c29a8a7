//! I/O drivers for the omni runtime: a [`Reactor`] over mio (readiness) or io_uring
//! (completion), which omni's schedulers park in when they have nothing to run.
//!
//! # The driver contract
//!
//! Every driver (one module each: `mio_driver`, `uring`) provides:
//!
//! 1. **register / deregister** a source (a file descriptor) for both directions: a
//!    [`Registration`] whose readiness the driver keeps in a shared state word, with at most
//!    one waiting reader and one waiting writer;
//! 2. **submit** an operation (completion drivers only): an [`uring::Operation`] owns its
//!    buffer and comes back with the result; an operation whose future was dropped parks its
//!    memory in the driver until the kernel completes it;
//! 3. **wait** for events with an optional timeout (the timer wheel's next deadline) and deliver
//!    them to the waiting tasks ([`Reactor::try_turn`]; one thread at a time, the others are told
//!    the driver is busy);
//! 4. **wake** the waiting thread from any other thread ([`Reactor::wake`]), so a wake-up is
//!    never lost while a scheduler sleeps in the driver.
//!
//! The readiness API works on both drivers (io_uring serves it through one-shot poll
//! operations), so every public type of `omni::net` works on both; owned-buffer operations take
//! the completion path on io_uring.
//!
//! # Ownership
//!
//! A [`Registration`] must be dropped *before* its descriptor is closed: dropping it takes the
//! source out of the driver (and, on io_uring, cancels its armed polls with a submission the
//! kernel has seen before the close). Each registration and operation keeps the reactor alive.

#![deny(unsafe_op_in_unsafe_fn)]

mod mio_driver;
mod ready;
mod scheduled;
#[cfg(target_os = "linux")]
pub mod uring;

pub use ready::{Interest, Ready};
pub use scheduled::ReadyEvent;

use scheduled::{to_poll, ScheduledIo};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Which I/O driver a runtime should use.
///
/// # Examples
///
/// ```
/// use omni_io::Driver;
/// assert_eq!("uring".parse::<Driver>().unwrap(), Driver::IoUring);
/// assert_eq!(Driver::default(), Driver::Auto);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Driver {
    /// io_uring where the kernel allows it, else mio.
    #[default]
    Auto,
    /// Readiness-based driver over mio (epoll, kqueue).
    Mio,
    /// Completion-based driver over io_uring.
    IoUring,
}

/// The error returned when a driver name (for example from `OMNI_DRIVER`) is not recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownDriver(pub String);

impl fmt::Display for UnknownDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown I/O driver {:?}: expected one of auto, mio, io_uring", self.0)
    }
}

impl std::error::Error for UnknownDriver {}

impl FromStr for Driver {
    type Err = UnknownDriver;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Driver::Auto),
            "mio" | "epoll" => Ok(Driver::Mio),
            "io_uring" | "iouring" | "uring" => Ok(Driver::IoUring),
            _ => Err(UnknownDriver(s.to_string())),
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::Auto => "auto",
            Driver::Mio => "mio",
            Driver::IoUring => "io_uring",
        })
    }
}

/// The error of a wait or operation on a reactor whose runtime has shut down.
pub(crate) fn shutdown_error() -> io::Error {
    io::Error::other("omni: the runtime of this I/O object has shut down")
}

#[allow(clippy::large_enum_variant)] // one per runtime, never moved after creation
enum Inner {
    Mio(mio_driver::MioDriver),
    /// One ring per scheduler thread (a current-thread runtime has one).
    #[cfg(target_os = "linux")]
    Uring(Box<[uring::UringDriver]>),
}

#[cfg(target_os = "linux")]
thread_local! {
    /// The reactor this thread serves as a scheduler thread, and its ring there.
    static RING: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// An I/O driver of one runtime.
pub struct Reactor {
    inner: Inner,
    /// Why `Auto` did not pick io_uring, if it did not.
    fallback: Option<String>,
    /// Set by [`Reactor::shutdown`]: every wait fails from then on.
    shut: std::sync::atomic::AtomicBool,
}

impl Reactor {
    /// Opens the driver `choice` names, for `threads` scheduler threads. `Auto` tries
    /// io_uring and falls back to mio, keeping the reason (see [`Reactor::fallback_reason`]);
    /// an explicit choice that the system refuses is an error.
    ///
    /// io_uring gets one ring per scheduler thread: the kernel completes an operation on the
    /// thread that submitted it, so a ring shared by threads would make every completion cross
    /// threads. A thread says which ring is its own with [`Reactor::bind_thread`]; other
    /// threads use ring 0. mio shares one poller among the threads, one waiting at a time.
    pub fn new(choice: Driver, threads: usize) -> io::Result<Reactor> {
        match choice {
            Driver::Mio => Ok(Reactor { inner: Inner::Mio(mio_driver::MioDriver::new()?), fallback: None, shut: Default::default() }),
            Driver::IoUring => Reactor::uring_only(threads).map_err(|e| {
                io::Error::new(e.kind(), format!("omni: the io_uring driver is unavailable: {e}; use Driver::Mio or Driver::Auto"))
            }),
            Driver::Auto => match Reactor::uring_only(threads) {
                Ok(r) => Ok(r),
                Err(e) => Ok(Reactor {
                    inner: Inner::Mio(mio_driver::MioDriver::new()?),
                    fallback: Some(format!("io_uring unavailable ({e}); using mio")),
                    shut: Default::default(),
                }),
            },
        }
    }

    #[cfg(target_os = "linux")]
    fn uring_only(threads: usize) -> io::Result<Reactor> {
        let rings = (0..threads.max(1))
            .map(|_| uring::UringDriver::new())
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Reactor {
            inner: Inner::Uring(rings.into_boxed_slice()),
            fallback: None,
            shut: Default::default(),
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn uring_only(_threads: usize) -> io::Result<Reactor> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "io_uring exists only on Linux"))
    }

    /// The driver in use (never `Auto`).
    pub fn driver(&self) -> Driver {
        match self.inner {
            Inner::Mio(_) => Driver::Mio,
            #[cfg(target_os = "linux")]
            Inner::Uring(_) => Driver::IoUring,
        }
    }

    /// Why `Auto` fell back to mio, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The calling thread's io_uring ring (its index and driver), if this reactor uses
    /// io_uring.
    #[cfg(target_os = "linux")]
    pub(crate) fn uring(&self) -> Option<(usize, &uring::UringDriver)> {
        match &self.inner {
            Inner::Uring(rings) => {
                let (owner, i) = RING.with(|r| r.get());
                let i = if owner == self as *const Reactor as usize { i } else { 0 };
                Some((i, &rings[i]))
            }
            Inner::Mio(_) => None,
        }
    }

    /// Ring `i` of an io_uring reactor.
    #[cfg(target_os = "linux")]
    pub(crate) fn ring(&self, i: usize) -> &uring::UringDriver {
        match &self.inner {
            Inner::Uring(rings) => &rings[i],
            Inner::Mio(_) => unreachable!("omni-io: a ring of a mio reactor"),
        }
    }

    /// Marks the calling thread as scheduler thread `index` of this reactor: its io_uring
    /// operations go to ring `index` (which that thread waits in, see [`Reactor::try_turn`]).
    /// Without it a thread uses ring 0. Does nothing on mio.
    pub fn bind_thread(&self, index: usize) {
        #[cfg(target_os = "linux")]
        if let Inner::Uring(rings) = &self.inner {
            let i = if index < rings.len() { index } else { 0 };
            RING.with(|r| r.set((self as *const Reactor as usize, i)));
        }
        let _ = index;
    }

    /// Whether owned-buffer operations ([`uring::Op`]) run here.
    pub fn is_uring(&self) -> bool {
        self.driver() == Driver::IoUring
    }

    /// Waits for events for at most `timeout` (`None`: until one arrives or a [`wake`]) and
    /// delivers them to the waiting tasks. Returns `None` at once if another thread is in the
    /// driver (it will deliver).
    ///
    /// [`wake`]: Reactor::wake
    ///
    /// `ring` is the scheduler thread's index (see [`Reactor::bind_thread`]): on io_uring it
    /// waits in that thread's ring; mio has one poller for all.
    pub fn try_turn(&self, ring: usize, timeout: Option<Duration>) -> Option<io::Result<()>> {
        match &self.inner {
            Inner::Mio(m) => m.try_turn(timeout),
            #[cfg(target_os = "linux")]
            Inner::Uring(rings) => rings[ring.min(rings.len() - 1)].try_turn(timeout),
        }
    }

    /// Ends the wait of the thread inside [`Reactor::try_turn`], or makes the next one return
    /// at once. Any thread.
    pub fn wake(&self, ring: usize) {
        let r = match &self.inner {
            Inner::Mio(m) => m.wake(),
            #[cfg(target_os = "linux")]
            Inner::Uring(rings) => rings[ring.min(rings.len() - 1)].wake(),
        };
        if let Err(e) = r {
            // Only a broken eventfd can fail here; a lost wake-up would hang a scheduler.
            panic!("omni: cannot wake the I/O driver: {e}");
        }
    }

    /// The runtime is shutting down: every present and future wait on this reactor fails.
    pub fn shutdown(&self) {
        self.shut.store(true, std::sync::atomic::Ordering::SeqCst);
        match &self.inner {
            Inner::Mio(m) => m.shutdown(),
            #[cfg(target_os = "linux")]
            Inner::Uring(rings) => rings.iter().for_each(|u| u.shutdown()),
        }
    }

    /// Whether [`Reactor::shutdown`] was called.
    pub fn is_shut(&self) -> bool {
        self.shut.load(std::sync::atomic::Ordering::Acquire)
    }

    /// What the driver holds now (for tests and the debugger).
    pub fn stats(&self) -> Stats {
        match &self.inner {
            Inner::Mio(m) => Stats { sources: m.sources_len(), in_flight: 0, parked: 0 },
            #[cfg(target_os = "linux")]
            Inner::Uring(rings) => Stats {
                sources: 0,
                in_flight: rings.iter().map(|u| u.in_flight()).sum(),
                parked: rings.iter().map(|u| u.parked()).sum(),
            },
        }
    }
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("driver", &self.driver())
            .field("stats", &self.stats())
            .finish()
    }
}

/// A snapshot of what a driver holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Sources registered with the kernel (mio).
    pub sources: usize,
    /// Operations and polls whose completion has not arrived (io_uring).
    pub in_flight: usize,
    /// Operations whose future was dropped, their memory parked until the completion
    /// (io_uring).
    pub parked: usize,
}

/// A source registered with a [`Reactor`]; drop it before closing the descriptor.
pub struct Registration {
    reactor: Arc<Reactor>,
    io: Arc<ScheduledIo>,
    fd: RawFd,
    token: usize,
}

impl Registration {
    /// Registers `fd` (non-blocking, open until this registration is dropped) for both
    /// directions.
    pub fn new(reactor: &Arc<Reactor>, fd: RawFd) -> io::Result<Registration> {
        if reactor.is_shut() {
            return Err(shutdown_error());
        }
        let io = Arc::new(ScheduledIo::new());
        let token = match &reactor.inner {
            Inner::Mio(m) => m.register(fd, &io)?,
            #[cfg(target_os = "linux")]
            Inner::Uring(_) => 0,
        };
        Ok(Registration { reactor: reactor.clone(), io, fd, token })
    }

    /// The reactor this source is registered with.
    pub fn reactor(&self) -> &Arc<Reactor> {
        &self.reactor
    }

    /// Ready when `interest` may be satisfied; otherwise stores the waker (one reader and one
    /// writer at a time: a second task waiting in the same direction replaces the first).
    pub fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
    ) -> Poll<io::Result<ReadyEvent>> {
        if self.reactor.is_shut() {
            return Poll::Ready(Err(shutdown_error()));
        }
        let r = self.io.poll_ready(cx, interest, |w, dir| {
            #[cfg(target_os = "linux")]
            if let Some((ring, u)) = self.reactor.uring() {
                u.arm_poll(ring, self.fd, dir, &self.io, w);
            }
            let _ = (w, dir);
        });
        to_poll(r)
    }

    /// Forgets the readiness of `ev` (the operation said `WouldBlock`), unless an event
    /// arrived since it was observed.
    ///
    /// Every bit of `ev` is forgotten, the closed and error bits too: no closed or failed
    /// socket says `WouldBlock`, so such a bit was spurious (epoll reports a socket that has
    /// not started connecting as hung up), and keeping it would make every later wait return
    /// at once.
    pub fn clear_readiness(&self, ev: ReadyEvent) {
        self.io.clear_readiness(ev);
    }

    /// Forgets the readable and writable bits of `ev` (unless an event arrived since it was
    /// observed) after a transfer shorter than asked: the socket is drained, or its send
    /// buffer full, so the next call waits for the driver instead of meeting `WouldBlock`
    /// first. Closed bits stay: an end of stream that came with the data is still there.
    pub fn clear_drained(&self, ev: ReadyEvent) {
        self.io.clear_drained(ev);
    }

    /// Runs `op` when the source is ready for `interest`, until it does not say `WouldBlock`.
    pub fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let ev = match self.poll_ready(cx, interest) {
                Poll::Ready(Ok(ev)) => ev,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_readiness(ev),
                r => return Poll::Ready(r),
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        match &self.reactor.inner {
            Inner::Mio(m) => m.deregister(self.fd, self.token),
            #[cfg(target_os = "linux")]
            Inner::Uring(rings) => uring::disarm(rings, &self.io),
        }
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.fd)
            .field("driver", &self.reactor.driver())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_unknown() {
        assert_eq!("MIO".parse::<Driver>(), Ok(Driver::Mio));
        assert_eq!("io_uring".parse::<Driver>(), Ok(Driver::IoUring));
        let err = "kqueue2".parse::<Driver>().unwrap_err();
        assert!(err.to_string().contains("expected one of"));
    }
}
