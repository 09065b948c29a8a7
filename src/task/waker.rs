//! A task's `Waker` is its key: the waker's data word *is* the `u64` key (index and
//! generation), so cloning or dropping a waker touches no reference count and no memory.
//!
//! Waking finds the slot through the chunk table (see `table.rs`) and asks the state word to
//! schedule the task *if the generation still matches*: a waker that outlived its task, or
//! whose slot now holds a newer task, is detected and ignored. Wakes from the thread that runs
//! the owning scheduler go straight to its run queue; wakes from other threads go through the
//! runtime's remote queue and unpark it.

use std::task::{RawWaker, RawWakerVTable, Waker};

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);

/// `Waker::clone`: someone other than an omni primitive keeps the waker (omni primitives copy
/// it with `rt::deadlock::keep`), so the task may be woken from outside omni.
fn clone(data: *const ()) -> RawWaker {
    crate::rt::deadlock::mark_foreign();
    RawWaker::new(data, &VTABLE)
}

fn wake(data: *const ()) {
    crate::rt::wake_task(data as usize as u64);
}

fn drop(_: *const ()) {}

/// The waker for the task with key `key`.
#[inline]
pub(crate) fn for_key(key: u64) -> Waker {
    const _: () = assert!(std::mem::size_of::<usize>() == 8, "omni needs a 64-bit target");
    // SAFETY: the vtable's functions treat the data word as a plain integer key and never
    // dereference it, so any value is a valid data word, and they are thread-safe.
    unsafe { Waker::from_raw(RawWaker::new(key as usize as *const (), &VTABLE)) }
}

/// The key, if `w` is an omni task waker.
#[inline]
pub(crate) fn key_of(w: &Waker) -> Option<u64> {
    if std::ptr::eq(w.vtable(), &VTABLE) {
        Some(w.data() as usize as u64)
    } else {
        None
    }
}
