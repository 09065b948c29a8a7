//! A counting global allocator for the zero-allocation tests. It counts the allocations and
//! reallocations of each thread separately (libtest's other threads allocate at any time), so a
//! test compares its own thread's count before and after. A test binary takes it with
//! `#[path = "common/alloc_count.rs"] mod alloc_count;`.

#![allow(dead_code)] // each binary uses the part it needs

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the allocator also runs while this thread's locals are torn down.
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards every call to `System` unchanged, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations this thread has made so far.
pub(crate) fn now() -> usize {
    COUNT.with(Cell::get)
}

/// The allocations this thread made while running `f`.
pub(crate) fn during(f: impl FnOnce()) -> usize {
    let before = now();
    f();
    now() - before
}
