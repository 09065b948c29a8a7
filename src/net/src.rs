//! `Src`: one registered descriptor and every I/O path the socket types share.
//!
//! Borrowed-buffer calls (`read`, `write`, the futures-io traits) wait for readiness and then
//! call the system directly; on io_uring the readiness comes from poll operations. Owned-buffer
//! calls (`read_owned`, `write_owned`, `write_all_owned`) hand the buffer to the kernel as an
//! io_uring operation when that driver runs, and use the readiness path on mio.
//!
//! `Src` does not own the descriptor: its owner (a socket type) declares `Src` first so the
//! registration is dropped, and the driver told, before the descriptor closes.

use crate::rt::coop;
use omni_io::uring::{Op, Recv, Send};
use omni_io::{Interest, Reactor, ReadyEvent, Registration};
use std::future::poll_fn;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A registered, non-blocking descriptor.
#[derive(Debug)]
pub(crate) struct Src {
    reg: Registration,
    fd: RawFd,
}

/// The reactor of the runtime this thread runs in.
pub(crate) fn current_reactor() -> io::Result<Arc<Reactor>> {
    crate::rt::context::with_shared(|s| s.map(|s| s.io.clone())).ok_or_else(|| {
        io::Error::other(
            "omni::net: no omni runtime on this thread; create sockets inside \
             Runtime::block_on or a task",
        )
    })
}

/// Turns a libc return value into a result (`-1` reads `errno`).
pub(crate) fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

impl Src {
    /// Registers `fd` (already non-blocking) with the current runtime's driver.
    pub(crate) fn new(fd: RawFd) -> io::Result<Src> {
        let reactor = current_reactor()?;
        Ok(Src { reg: Registration::new(&reactor, fd)?, fd })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn reactor(&self) -> &Arc<Reactor> {
        self.reg.reactor()
    }

    /// Runs `op` once the descriptor is ready for `interest`, until it stops saying
    /// `WouldBlock`; spends a unit of the task's budget when it completes.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
        op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        coop::budgeted(cx, |cx| self.reg.poll_io(cx, interest, op))
    }

    /// Like [`Src::poll_io`] for an operation on `want` bytes of a stream: a transfer of fewer
    /// bytes drained the socket (or filled its send buffer), so the readiness is cleared then
    /// too, and the next call waits for the driver's next event instead of meeting
    /// `WouldBlock` first (one system call saved per message; tokio does the same).
    pub(crate) fn poll_stream(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
        want: usize,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        coop::budgeted(cx, |cx| loop {
            let ev = match self.reg.poll_ready(cx, interest) {
                Poll::Ready(Ok(ev)) => ev,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.reg.clear_readiness(ev),
                Ok(n) if n > 0 && n < want => {
                    self.reg.clear_drained(ev);
                    return Poll::Ready(Ok(n));
                }
                r => return Poll::Ready(r),
            }
        })
    }

    /// Waits until the descriptor may be ready for `interest`.
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
    ) -> Poll<io::Result<ReadyEvent>> {
        self.reg.poll_ready(cx, interest)
    }

    pub(crate) async fn ready(&self, interest: Interest) -> io::Result<()> {
        poll_fn(|cx| self.poll_ready(cx, interest)).await.map(|_| ())
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let fd = self.fd;
        let want = buf.len();
        self.poll_stream(cx, Interest::READABLE, want, || {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            cvt(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
        })
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let fd = self.fd;
        self.poll_stream(cx, Interest::WRITABLE, buf.len(), || send(fd, buf))
    }

    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let fd = self.fd;
        let n = bufs.len().min(libc::c_int::MAX as usize) as libc::c_int;
        self.poll_io(cx, Interest::WRITABLE, || {
            // SAFETY: `IoSlice` is ABI-compatible with `iovec`, and the slices are valid.
            cvt(unsafe { libc::writev(fd, bufs.as_ptr().cast(), n) })
        })
    }

    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    pub(crate) async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, buf)).await
    }

    pub(crate) async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Reads into the spare capacity of `buf` (`buf.len()..buf.capacity()`) and extends its
    /// length by the bytes read; the buffer comes back whatever happens.
    pub(crate) async fn read_owned(&self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        if buf.capacity() == buf.len() {
            return (Ok(0), buf);
        }
        match Op::new(self.reactor(), Recv::socket(self.fd, buf)) {
            Ok(op) => {
                let (c, recv) = op.await;
                match c.result {
                    Ok(n) => (Ok(n as usize), recv.into_buf(n as usize)),
                    Err(e) => (Err(e), recv.into_buf(0)),
                }
            }
            Err(recv) => {
                buf = recv.into_buf(0);
                let fd = self.fd;
                let want = buf.capacity() - buf.len();
                let r = poll_fn(|cx| {
                    self.poll_stream(cx, Interest::READABLE, want, || {
                        // SAFETY: `read_spare` passes a pointer valid for writes of `n` bytes.
                        read_spare(&mut buf, |p, n| unsafe { libc::read(fd, p.cast(), n) })
                    })
                })
                .await;
                (r, buf)
            }
        }
    }

    /// Writes some of `buf[pos..]` once; returns how many bytes went, and the buffer.
    pub(crate) async fn write_owned(
        &self,
        buf: Vec<u8>,
        pos: usize,
    ) -> (io::Result<usize>, Vec<u8>) {
        if pos >= buf.len() {
            return (Ok(0), buf);
        }
        match Op::new(self.reactor(), Send::socket(self.fd, buf, pos)) {
            Ok(op) => {
                let (c, send) = op.await;
                (c.result.map(|n| n as usize), send.into_buf())
            }
            Err(send) => {
                let buf = send.into_buf();
                let r = self.write(&buf[pos..]).await;
                (r, buf)
            }
        }
    }

    /// Writes all of `buf`; on an error, the bytes before `Err` went out.
    pub(crate) async fn write_all_owned(&self, mut buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut pos = 0;
        while pos < buf.len() {
            let r;
            (r, buf) = self.write_owned(buf, pos).await;
            match r {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => pos += n,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }
}

/// Runs `read(ptr, len)` (a `read(2)`-like call) on the spare capacity of `buf` and extends
/// its length by the bytes it reports; the one place that trusts a system call's count to
/// initialise a `Vec`'s bytes.
pub(crate) fn read_spare(
    buf: &mut Vec<u8>,
    read: impl FnOnce(*mut u8, usize) -> isize,
) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let room = spare.len();
    let n = cvt(read(spare.as_mut_ptr().cast(), room))?;
    assert!(n <= room, "omni: a read reported more bytes than it was given room for");
    // SAFETY: the call initialised `n <= room` bytes at the start of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// `send(2)` without `SIGPIPE` (a peer that hung up is an `EPIPE` error, not a dead process).
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let r = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    match cvt(r) {
        // Not a socket (a pipe handed to from_raw_fd): plain write.
        Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
            // SAFETY: as above.
            cvt(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
        }
        r => r,
    }
}
