//! The parked senders and receivers of one channel: entries in a slab reused from a free list,
//! linked into two FIFO queues by index.
//!
//! Everything here is accessed under the channel lock. An entry is *owned by the future* that
//! allocated it (a send, a recv, a select arm, a stream): only that future frees it. The
//! channel side only unlinks an entry from its queue and moves its [`Status`] forward, so a
//! future's index can never dangle or alias another waiter. The slab grows to the peak number
//! of waiters parked at once and is reused afterwards: parking allocates nothing in steady
//! state.

use std::sync::Arc;
use std::task::Waker;

use super::select::Token;

/// No entry (end of a list).
pub(crate) const NIL: u32 = u32::MAX;

/// Where a waiter stands. The channel moves an entry from `Queued` to one of the others and
/// unlinks it in the same critical section; the owning future frees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// In the slab's free list.
    Free,
    /// Linked in its queue, waiting.
    Queued,
    /// Served: a receiver's value is in `value`; a sender's value was taken.
    Done,
    /// Woken because the channel closed; a sender's value is still in `value`.
    Closed,
    /// Unlinked without being served: its select already committed another arm.
    Lost,
}

/// Who to wake.
pub(crate) enum Wake {
    /// A plain future or a blocked thread (through its parker's waker).
    Task(Waker),
    /// One arm of a select: the channel must win the select's token before serving it.
    Select(Arc<Token>, usize),
}

impl Wake {
    /// Wakes whoever waits (after the channel lock is released).
    pub(crate) fn fire(self) {
        match self {
            Wake::Task(w) => w.wake(),
            Wake::Select(token, _) => token.wake(),
        }
    }
}

pub(crate) struct Entry<T> {
    prev: u32,
    next: u32,
    pub(crate) status: Status,
    pub(crate) value: Option<T>,
    pub(crate) wake: Option<Wake>,
}

/// A FIFO queue of entries (head is served first).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Queue {
    head: u32,
    tail: u32,
}

impl Queue {
    pub(crate) const fn new() -> Queue {
        Queue { head: NIL, tail: NIL }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

/// The slab of entries with its free list.
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: u32,
    /// Entries not free (for invariant checks and `Debug`).
    live: usize,
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Slab<T> {
        Slab { entries: Vec::new(), free: NIL, live: 0 }
    }

    pub(crate) fn live(&self) -> usize {
        self.live
    }

    #[inline]
    pub(crate) fn get(&mut self, i: u32) -> &mut Entry<T> {
        &mut self.entries[i as usize]
    }

    /// A fresh entry, queued at the back of `q`.
    #[inline(always)]
    pub(crate) fn push(&mut self, q: &mut Queue, value: Option<T>, wake: Wake) -> u32 {
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.entries[i as usize].next;
            i
        } else {
            let i = u32::try_from(self.entries.len()).expect("omni: too many parked waiters");
            assert!(i != NIL, "omni: too many parked waiters");
            self.entries.push(Entry {
                prev: NIL,
                next: NIL,
                status: Status::Free,
                value: None,
                wake: None,
            });
            i
        };
        self.live += 1;
        let e = &mut self.entries[i as usize];
        e.status = Status::Queued;
        e.value = value;
        e.wake = Some(wake);
        e.prev = q.tail;
        e.next = NIL;
        if q.tail == NIL {
            q.head = i;
        } else {
            self.entries[q.tail as usize].next = i;
        }
        q.tail = i;
        i
    }

    /// Unlinks the head of `q` (leaving its status to the caller).
    /// Whether some entry of `q` satisfies `f`, looking from the front.
    pub(crate) fn any(&self, q: &Queue, mut f: impl FnMut(&Entry<T>) -> bool) -> bool {
        let mut i = q.head;
        while i != NIL {
            let e = &self.entries[i as usize];
            if f(e) {
                return true;
            }
            i = e.next;
        }
        false
    }

    #[inline]
    pub(crate) fn pop_front(&mut self, q: &mut Queue) -> Option<u32> {
        let i = q.head;
        if i == NIL {
            return None;
        }
        self.unlink(q, i);
        Some(i)
    }

    /// Unlinks entry `i` from `q`.
    #[inline]
    pub(crate) fn unlink(&mut self, q: &mut Queue, i: u32) {
        let (prev, next) = {
            let e = &mut self.entries[i as usize];
            debug_assert_eq!(e.status, Status::Queued);
            let links = (e.prev, e.next);
            e.prev = NIL;
            e.next = NIL;
            links
        };
        if prev == NIL {
            q.head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            q.tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
    }

    /// Returns an unlinked entry to the free list, with what it still held (dropped by the
    /// caller after the lock is released).
    #[inline]
    pub(crate) fn free(&mut self, i: u32) -> (Option<T>, Option<Wake>) {
        let e = &mut self.entries[i as usize];
        debug_assert_ne!(e.status, Status::Queued, "freeing a queued waiter");
        debug_assert_ne!(e.status, Status::Free, "double free of a waiter");
        e.status = Status::Free;
        let held = (e.value.take(), e.wake.take());
        e.next = self.free;
        self.free = i;
        self.live -= 1;
        held
    }
}
