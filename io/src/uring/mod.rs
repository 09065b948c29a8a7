//! The completion driver over io_uring (Linux 5.11 or newer).
//!
//! # Operations own their memory
//!
//! An operation (see [`op`]) is a value that owns every byte the kernel touches: the buffer,
//! the socket address, its length. Its [`Op`] future moves it in and hands it back
//! with the result. The kernel owns that memory from submission until the completion arrives,
//! *whether or not the operation was cancelled*: so when an `Op` is dropped in flight, the
//! value moves into the driver's operation table ("ignored") and stays there until its
//! completion, and only then is it dropped. The driver also asks the kernel to cancel it, so a
//! receive on a quiet socket does not keep the buffer (and the socket) forever. A completion
//! that carries a new file descriptor no one will receive (an accept) closes it.
//!
//! A dropped operation is submitted to the kernel before the drop returns: the kernel then
//! holds its own reference to the file, so closing the descriptor right after (and the number
//! being reused by a new socket) cannot redirect the operation.
//!
//! # Readiness through poll operations
//!
//! Readiness waits (the API every public type shares with the mio driver) arm a one-shot
//! `IORING_OP_POLL_ADD` per source and direction; its completion delivers the readiness. A
//! source that is deregistered cancels its armed polls, and the deregistration is submitted
//! before the descriptor closes, for the same reason as above.
//!
//! # Threads
//!
//! One thread at a time waits in the driver and reaps completions (`turn`, behind a lock).
//! Any thread may push a submission (behind the `sq` lock). Entries pushed while no one waits
//! are submitted by the next turn (one `io_uring_enter` for the batch); a thread that pushes
//! while another waits in the kernel submits them itself: the waiter sets `waiting` before it
//! reads the queue, the pusher reads `waiting` after it pushed, both `SeqCst`, so one of them
//! submits. A wake from another thread is a `NOP` submission, whose completion ends the wait.

pub mod op;

use crate::ready::Ready;
use crate::scheduled::{ScheduledIo, Waiters};
use io_uring::{opcode, squeue, types, IoUring};
use std::any::Any;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub use op::{Accept, Completion, Connect, Op, OpenAt, Operation, Recv, Send};

/// The `user_data` of a wake-up `NOP`.
const WAKE: u64 = u64::MAX;
/// The `user_data` of a cancel request (its own completion carries nothing we need).
const CANCEL: u64 = u64::MAX - 1;
const ENTRIES: u32 = 256;

/// What happens to an orphaned operation's result (for example, closing an accepted fd).
pub(crate) type Orphaned = fn(&Completion);

enum Slot {
    Free,
    /// Submitted; this waker wants the completion.
    Waiting(Waker),
    /// The completion, not yet taken by the future.
    Completed(Completion),
    /// The future is gone: the operation's memory waits here for the completion.
    Ignored(#[allow(dead_code)] Box<dyn Any + std::marker::Send>, Orphaned),
    /// A readiness poll for `dir` (0 read, 1 write) of a source.
    Poll(Arc<ScheduledIo>, usize),
}

#[derive(Default)]
struct Ops {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Ops {
    fn insert(&mut self, slot: Slot) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn remove(&mut self, i: u32) -> Slot {
        let s = std::mem::replace(&mut self.slots[i as usize], Slot::Free);
        self.free.push(i);
        s
    }
}

/// Work the reaping thread does after it releases the table's lock.
enum After {
    Wake(Waker),
    Orphan(Box<dyn Any + std::marker::Send>, Orphaned, Completion),
    Ready(Arc<ScheduledIo>, usize, Ready),
}

/// An io_uring-backed driver.
pub(crate) struct UringDriver {
    ring: IoUring,
    sq: Mutex<()>,
    turn: Mutex<Vec<After>>,
    waiting: AtomicBool,
    ops: Mutex<Ops>,
    shut: AtomicBool,
}

impl UringDriver {
    /// Sets up a ring, or says why this kernel cannot serve omni.
    pub(crate) fn new() -> io::Result<UringDriver> {
        let ring = IoUring::builder().build(ENTRIES)?;
        if !ring.params().is_feature_ext_arg() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring lacks IORING_FEAT_EXT_ARG (timed waits need Linux 5.11 or newer)",
            ));
        }
        Ok(UringDriver {
            ring,
            sq: Mutex::new(()),
            turn: Mutex::new(Vec::new()),
            waiting: AtomicBool::new(false),
            ops: Mutex::new(Ops::default()),
            shut: AtomicBool::new(false),
        })
    }

    fn ops(&self) -> MutexGuard<'_, Ops> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one submission; submits at once if a thread waits in the kernel (or the queue
    /// is full).
    fn push(&self, entry: &squeue::Entry) {
        {
            let _sq = self.sq.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                // SAFETY: the `sq` lock makes this the only submission queue handle alive, and
                // every entry pushed points at memory its operation owns until the completion
                // (see `Operation`'s contract) or at nothing.
                let pushed = unsafe { self.ring.submission_shared().push(entry).is_ok() };
                if pushed {
                    break;
                }
                // Full: hand the batch to the kernel. EBUSY (completions backed up) resolves
                // as the reaper drains; yield meanwhile.
                if self.ring.submit().is_err() {
                    std::thread::yield_now();
                }
            }
        }
        if self.waiting.load(SeqCst) {
            self.submit_now();
        }
    }

    /// Hands every queued entry to the kernel now.
    fn submit_now(&self) {
        let _ = self.ring.submit();
    }

    /// Starts an operation whose completion `waker` wants; returns its index.
    pub(crate) fn start(&self, entry: squeue::Entry, waker: &Waker) -> u32 {
        let i = self.ops().insert(Slot::Waiting(waker.clone()));
        self.push(&entry.user_data(i as u64));
        i
    }

    /// The completion of operation `i`, once it arrived (the slot is freed then).
    pub(crate) fn poll_op(&self, i: u32, cx: &mut Context<'_>) -> Poll<Completion> {
        let mut ops = self.ops();
        match &mut ops.slots[i as usize] {
            Slot::Completed(_) => match ops.remove(i) {
                Slot::Completed(c) => Poll::Ready(c),
                _ => unreachable!(),
            },
            Slot::Waiting(w) if w.will_wake(cx.waker()) => Poll::Pending,
            slot => {
                *slot = Slot::Waiting(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Operation `i` lost its future: park `data` until the completion, or drop it now if
    /// the completion already came.
    pub(crate) fn orphan(
        &self,
        i: u32,
        data: Box<dyn Any + std::marker::Send>,
        orphaned: Orphaned,
    ) {
        let mut ops = self.ops();
        if let Slot::Completed(_) = ops.slots[i as usize] {
            let Slot::Completed(c) = ops.remove(i) else { unreachable!() };
            drop(ops);
            orphaned(&c);
            drop(data);
            return;
        }
        ops.slots[i as usize] = Slot::Ignored(data, orphaned);
        drop(ops);
        self.push(&opcode::AsyncCancel::new(i as u64).build().user_data(CANCEL));
        // The caller may close the descriptor next: the kernel must have taken its own
        // reference to the file by then.
        self.submit_now();
    }

    /// Arms a readiness poll for `dir` of `fd` on this ring, number `ring` (called under the
    /// source's waiter lock).
    pub(crate) fn arm_poll(
        &self,
        ring: usize,
        fd: RawFd,
        dir: usize,
        io: &Arc<ScheduledIo>,
        w: &mut Waiters,
    ) {
        if w.polls[dir].is_some() {
            return;
        }
        let mask = if dir == 0 {
            libc::POLLIN as u32 | libc::POLLRDHUP as u32
        } else {
            libc::POLLOUT as u32
        };
        let i = self.ops().insert(Slot::Poll(io.clone(), dir));
        w.polls[dir] = Some((ring, i));
        self.push(&opcode::PollAdd::new(types::Fd(fd), mask).build().user_data(i as u64));
    }

    /// Waits for completions (at most `timeout`) and delivers them. `None` if another thread
    /// is in the driver.
    pub(crate) fn try_turn(&self, timeout: Option<Duration>) -> Option<io::Result<()>> {
        let mut after = self.turn.try_lock().ok()?;
        self.waiting.store(true, SeqCst);
        let res = match timeout {
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                let want = if t.is_zero() { 0 } else { 1 };
                self.ring.submitter().submit_with_args(want, &args)
            }
            None => self.ring.submitter().submit_and_wait(1),
        };
        self.waiting.store(false, SeqCst);
        if let Err(e) = res {
            match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => {}
                _ => return Some(Err(e)),
            }
        }
        self.reap(&mut after);
        Some(Ok(()))
    }

    /// Drains the completion queue (caller holds the turn lock).
    fn reap(&self, after: &mut Vec<After>) {
        {
            let mut ops = self.ops();
            // SAFETY: the turn lock (held by the caller) makes this the only completion queue
            // handle alive.
            let cq = unsafe { self.ring.completion_shared() };
            for cqe in cq {
                let ud = cqe.user_data();
                if ud == WAKE || ud == CANCEL {
                    continue;
                }
                let i = ud as u32;
                let c = Completion::new(cqe.result(), cqe.flags());
                match std::mem::replace(&mut ops.slots[i as usize], Slot::Free) {
                    Slot::Waiting(w) => {
                        ops.slots[i as usize] = Slot::Completed(c);
                        after.push(After::Wake(w));
                    }
                    Slot::Ignored(data, f) => {
                        ops.free.push(i);
                        after.push(After::Orphan(data, f, c));
                    }
                    Slot::Poll(io, dir) => {
                        ops.free.push(i);
                        let ready = match cqe.result() {
                            r if r >= 0 => Ready::from_poll_mask(r as u32),
                            r if r == -libc::ECANCELED || r == -libc::ENOENT => Ready::EMPTY,
                            // Any other failure: let the waiter try its operation and meet
                            // the real error.
                            _ => Ready::ALL,
                        };
                        after.push(After::Ready(io, dir, ready));
                    }
                    Slot::Completed(_) | Slot::Free => {
                        debug_assert!(false, "omni-io: a completion for a settled operation");
                    }
                }
            }
        }
        for a in after.drain(..) {
            match a {
                After::Wake(w) => w.wake(),
                After::Orphan(data, f, c) => {
                    f(&c);
                    drop(data);
                }
                After::Ready(io, dir, ready) => {
                    let rearm = {
                        let mut w = io.lock();
                        w.polls[dir] = None;
                        ready.is_empty()
                    };
                    if rearm {
                        // Cancelled (deregistration): wake anyone still waiting so they see
                        // the shutdown or re-arm.
                        io.deliver(if dir == 0 { Ready::READABLE } else { Ready::WRITABLE });
                    } else {
                        io.deliver(ready);
                    }
                }
            }
        }
    }

    /// Interrupts the thread waiting in the driver.
    pub(crate) fn wake(&self) -> io::Result<()> {
        self.push(&opcode::Nop::new().build().user_data(WAKE));
        self.submit_now();
        Ok(())
    }

    pub(crate) fn is_shut(&self) -> bool {
        self.shut.load(SeqCst)
    }

    /// Fails every present and future wait.
    pub(crate) fn shutdown(&self) {
        self.shut.store(true, SeqCst);
        let mut wakers = Vec::new();
        let mut ios = Vec::new();
        for s in self.ops().slots.iter_mut() {
            match s {
                Slot::Waiting(w) => wakers.push(w.clone()),
                Slot::Poll(io, _) => ios.push(io.clone()),
                _ => {}
            }
        }
        for w in wakers {
            w.wake();
        }
        for io in ios {
            io.shutdown();
        }
    }

    /// Cancels operation `i` and reaps until its completion arrives (used after shutdown,
    /// when no scheduler turns the driver any more).
    pub(crate) fn cancel_and_reap(&self, i: u32) -> Completion {
        self.push(&opcode::AsyncCancel::new(i as u64).build().user_data(CANCEL));
        self.submit_now();
        loop {
            if let Slot::Completed(_) = self.ops().slots[i as usize] {
                let Slot::Completed(c) = self.ops().remove(i) else { unreachable!() };
                return c;
            }
            let _ = self.try_turn(Some(Duration::from_millis(10)));
        }
    }

    /// Operations whose completion has not arrived yet, orphaned ones included.
    pub(crate) fn in_flight(&self) -> usize {
        self.ops().slots.iter().filter(|s| !matches!(s, Slot::Free | Slot::Completed(_))).count()
    }

    /// Orphaned operations still holding their memory in the driver.
    pub(crate) fn parked(&self) -> usize {
        self.ops().slots.iter().filter(|s| matches!(s, Slot::Ignored(..))).count()
    }
}

/// Cancels the armed polls of a source about to close, on the rings they were armed on, and
/// submits at once.
pub(crate) fn disarm(rings: &[UringDriver], io: &ScheduledIo) {
    let polls = std::mem::take(&mut io.lock().polls);
    for (ring, i) in polls.into_iter().flatten() {
        let r = &rings[ring];
        r.push(&opcode::PollRemove::new(i as u64).build().user_data(CANCEL));
        r.submit_now();
    }
}

impl Drop for UringDriver {
    fn drop(&mut self) {
        // No `Op` future is alive (each holds the driver), so what is in flight is orphaned
        // operations and polls. Cancel them and wait for their completions, so no memory is
        // freed while the kernel may still write it. What does not complete in time is leaked
        // rather than freed under the kernel's feet.
        let pending: Vec<u32> = {
            let ops = self.ops();
            (0..ops.slots.len() as u32)
                .filter(|&i| matches!(ops.slots[i as usize], Slot::Ignored(..) | Slot::Poll(..)))
                .collect()
        };
        for i in pending {
            self.push(&opcode::AsyncCancel::new(i as u64).build().user_data(CANCEL));
        }
        for _ in 0..100 {
            if self.in_flight() == 0 {
                break;
            }
            let _ = self.try_turn(Some(Duration::from_millis(10)));
        }
        let mut ops = self.ops();
        for s in ops.slots.iter_mut() {
            if let Slot::Ignored(..) = s {
                std::mem::forget(std::mem::replace(s, Slot::Free));
            }
        }
    }
}
