//! Completion-based operations: each owns its memory, goes into [`Op`] and comes back with
//! its [`Completion`].

use super::UringDriver;
use crate::Reactor;
use io_uring::{opcode, squeue, types};
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The result of an operation: what `io_uring` put in its completion entry.
#[derive(Debug)]
pub struct Completion {
    /// The operation's return value (a byte count, a new fd, 0) or its error.
    pub result: io::Result<u32>,
    /// The completion's flags (`IORING_CQE_F_*`).
    pub flags: u32,
}

impl Completion {
    pub(crate) fn new(res: i32, flags: u32) -> Completion {
        let result = if res < 0 { Err(io::Error::from_raw_os_error(-res)) } else { Ok(res as u32) };
        Completion { result, flags }
    }
}

/// An operation io_uring can run: it builds its submission entry from memory it owns.
///
/// # Safety
///
/// Every pointer in the entry returned by [`Operation::entry`] must point into memory owned by
/// `self` at a stable heap address (a `Vec`'s buffer, a `Box`): moving `self` must not move
/// it, and it must stay valid until `self` is dropped. The driver keeps `self` alive until the
/// kernel has completed the entry, even when the [`Op`] future is dropped first.
pub unsafe trait Operation: std::marker::Send + 'static {
    /// The submission entry (its `user_data` is set by the driver).
    fn entry(&mut self) -> squeue::Entry;

    /// Called with the completion of an operation whose future was dropped: an operation
    /// whose result is a resource (an accepted fd) releases it here.
    fn orphaned(_completion: &Completion) {}
}

enum State {
    Unsubmitted,
    /// On ring `.0`, operation `.1`.
    InFlight(usize, u32),
    Done,
}

/// A future running one [`Operation`] on the io_uring driver; yields the completion and the
/// operation (with its buffer) back.
///
/// Dropped before its first poll, nothing was submitted. Dropped in flight, the operation
/// moves into the driver until its completion (see the module doc of `uring`). Dropped after
/// the completion but before the poll that would return it, the operation and its result are
/// released at once (an accepted fd is closed).
pub struct Op<T: Operation> {
    reactor: Arc<Reactor>,
    state: State,
    data: Option<T>,
}

impl<T: Operation> Op<T> {
    /// An operation to run on `reactor`, which must use the io_uring driver
    /// (`reactor.is_uring()`); `Err` hands `data` back otherwise.
    pub fn new(reactor: &Arc<Reactor>, data: T) -> Result<Op<T>, T> {
        if reactor.uring().is_none() {
            return Err(data);
        }
        Ok(Op { reactor: reactor.clone(), state: State::Unsubmitted, data: Some(data) })
    }

    fn driver(&self, ring: usize) -> &UringDriver {
        self.reactor.ring(ring)
    }
}

impl<T: Operation> Unpin for Op<T> {}

impl<T: Operation> Future for Op<T> {
    type Output = (Completion, T);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.state {
            State::Unsubmitted => {
                let data = this.data.as_mut().expect("an Op polled after it completed");
                let (ring, d) = this.reactor.uring().expect("checked in Op::new");
                if d.is_shut() {
                    this.state = State::Done;
                    let c = Completion { result: Err(crate::shutdown_error()), flags: 0 };
                    return Poll::Ready((c, this.data.take().expect("present")));
                }
                let entry = data.entry();
                let i = d.start(entry, cx.waker());
                this.state = State::InFlight(ring, i);
                Poll::Pending
            }
            State::InFlight(ring, i) => {
                let d = this.driver(ring);
                let c = if d.is_shut() {
                    d.cancel_and_reap(i)
                } else {
                    match d.poll_op(i, cx) {
                        Poll::Ready(c) => c,
                        Poll::Pending => return Poll::Pending,
                    }
                };
                this.state = State::Done;
                Poll::Ready((c, this.data.take().expect("present")))
            }
            State::Done => panic!("an omni-io Op polled after it completed"),
        }
    }
}

impl<T: Operation> Drop for Op<T> {
    fn drop(&mut self) {
        if let State::InFlight(ring, i) = self.state {
            let data = self.data.take().expect("in flight");
            self.driver(ring).orphan(i, Box::new(data), T::orphaned);
        }
    }
}

impl<T: Operation> std::fmt::Debug for Op<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.state {
            State::Unsubmitted => "unsubmitted",
            State::InFlight(..) => "in flight",
            State::Done => "done",
        };
        f.debug_struct("Op").field("state", &s).finish()
    }
}

fn spare(buf: &mut Vec<u8>) -> (*mut u8, u32) {
    let len = buf.len();
    let n = (buf.capacity() - len).min(u32::MAX as usize) as u32;
    // SAFETY: `len <= capacity`, so the pointer stays inside (or one past) the allocation.
    (unsafe { buf.as_mut_ptr().add(len) }, n)
}

/// Receive into the spare capacity of a `Vec` (`recv(2)`, or `read(2)` at an offset for
/// files). After the completion, [`Recv::into_buf`] extends the length by the bytes read.
#[derive(Debug)]
pub struct Recv {
    fd: RawFd,
    buf: Vec<u8>,
    offset: Option<u64>,
}

impl Recv {
    /// A receive on a socket.
    pub fn socket(fd: RawFd, buf: Vec<u8>) -> Recv {
        Recv { fd, buf, offset: None }
    }

    /// A read of a file at `offset`.
    pub fn file(fd: RawFd, buf: Vec<u8>, offset: u64) -> Recv {
        Recv { fd, buf, offset: Some(offset) }
    }

    /// The buffer, its length extended by `n` bytes the kernel wrote.
    pub fn into_buf(mut self, n: usize) -> Vec<u8> {
        let len = self.buf.len();
        assert!(n <= self.buf.capacity() - len, "omni-io: the kernel wrote past the buffer");
        // SAFETY: the kernel initialised `n` bytes of the spare capacity (checked in bounds).
        unsafe { self.buf.set_len(len + n) };
        self.buf
    }
}

// SAFETY: the entry points at the `Vec`'s heap buffer, owned by `self` and unmoved by moving it.
unsafe impl Operation for Recv {
    fn entry(&mut self) -> squeue::Entry {
        let (ptr, n) = spare(&mut self.buf);
        match self.offset {
            None => opcode::Recv::new(types::Fd(self.fd), ptr, n).build(),
            Some(off) => opcode::Read::new(types::Fd(self.fd), ptr, n).offset(off).build(),
        }
    }
}

/// Send (`send(2)`, or `write(2)` at an offset for files) the bytes `buf[pos..]`.
#[derive(Debug)]
pub struct Send {
    fd: RawFd,
    buf: Vec<u8>,
    pos: usize,
    offset: Option<u64>,
}

impl Send {
    /// A send on a socket of `buf[pos..]`.
    pub fn socket(fd: RawFd, buf: Vec<u8>, pos: usize) -> Send {
        Send { fd, buf, pos, offset: None }
    }

    /// A write of `buf[pos..]` to a file at `offset`.
    pub fn file(fd: RawFd, buf: Vec<u8>, pos: usize, offset: u64) -> Send {
        Send { fd, buf, pos, offset: Some(offset) }
    }

    /// The buffer back.
    pub fn into_buf(self) -> Vec<u8> {
        self.buf
    }
}

// SAFETY: the entry points at the `Vec`'s heap buffer, owned by `self` and unmoved by moving it.
unsafe impl Operation for Send {
    fn entry(&mut self) -> squeue::Entry {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        let n = rest.len().min(u32::MAX as usize) as u32;
        match self.offset {
            None => opcode::Send::new(types::Fd(self.fd), rest.as_ptr(), n)
                .flags(libc::MSG_NOSIGNAL)
                .build(),
            Some(off) => {
                opcode::Write::new(types::Fd(self.fd), rest.as_ptr(), n).offset(off).build()
            }
        }
    }
}

/// Accept a connection (`accept4(2)` with `SOCK_CLOEXEC | SOCK_NONBLOCK`); the completion's
/// result is the new fd. An orphaned accept closes the fd it produced.
#[derive(Debug)]
pub struct Accept {
    fd: RawFd,
    addr: Box<(libc::sockaddr_storage, libc::socklen_t)>,
}

impl Accept {
    /// An accept on a listening socket.
    pub fn new(fd: RawFd) -> Accept {
        // SAFETY: all-zero bytes are a valid `sockaddr_storage`.
        let storage = unsafe { std::mem::zeroed::<libc::sockaddr_storage>() };
        let len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        Accept { fd, addr: Box::new((storage, len)) }
    }

    /// The peer's address as the kernel wrote it (storage and length).
    pub fn peer(&self) -> (&libc::sockaddr_storage, libc::socklen_t) {
        (&self.addr.0, self.addr.1)
    }
}

// SAFETY: the address and its length live in a `Box` owned by `self`.
unsafe impl Operation for Accept {
    fn entry(&mut self) -> squeue::Entry {
        let (storage, len) = &mut *self.addr;
        opcode::Accept::new(types::Fd(self.fd), storage as *mut _ as *mut libc::sockaddr, len)
            .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
            .build()
    }

    fn orphaned(c: &Completion) {
        if let Ok(fd) = c.result {
            // SAFETY: the kernel just created this fd for us and no one else knows it.
            unsafe { libc::close(fd as RawFd) };
        }
    }
}

/// Connect a socket to an address (`connect(2)`).
#[derive(Debug)]
pub struct Connect {
    fd: RawFd,
    addr: Box<(libc::sockaddr_storage, libc::socklen_t)>,
}

impl Connect {
    /// A connect of `fd` to the address in `storage` (`len` bytes of it).
    pub fn new(fd: RawFd, storage: libc::sockaddr_storage, len: libc::socklen_t) -> Connect {
        Connect { fd, addr: Box::new((storage, len)) }
    }
}

// SAFETY: the address lives in a `Box` owned by `self`.
unsafe impl Operation for Connect {
    fn entry(&mut self) -> squeue::Entry {
        let (storage, len) = &*self.addr;
        opcode::Connect::new(types::Fd(self.fd), storage as *const _ as *const libc::sockaddr, *len)
            .build()
    }
}

/// Open a file (`openat(2)` relative to the working directory); the completion's result is
/// the new fd. An orphaned open closes the fd it produced.
#[derive(Debug)]
pub struct OpenAt {
    path: std::ffi::CString,
    flags: i32,
    mode: u32,
}

impl OpenAt {
    /// An open of `path` with `flags` (`O_*`, `O_CLOEXEC` is added) and `mode` for a new file.
    pub fn new(path: std::ffi::CString, flags: i32, mode: u32) -> OpenAt {
        OpenAt { path, flags: flags | libc::O_CLOEXEC, mode }
    }
}

// SAFETY: the path lives in a `CString` (heap) owned by `self`.
unsafe impl Operation for OpenAt {
    fn entry(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .mode(self.mode)
            .build()
    }

    fn orphaned(c: &Completion) {
        if let Ok(fd) = c.result {
            // SAFETY: the kernel just created this fd for us and no one else knows it.
            unsafe { libc::close(fd as RawFd) };
        }
    }
}
