//! Heap and RSS accounting for the memory workloads.
//!
//! [`CountingAlloc`] wraps the system allocator. While a [`Window`] is open it adds the size of each
//! allocation to a counter and subtracts the size of each free, so the counter read when the window
//! closes is the change in live heap bytes over the window. While no window is open it costs one
//! relaxed load per call, so the timed workloads run at the system allocator's speed.
//!
//! RSS comes from `/proc/self/statm` (Linux only; elsewhere the RSS row reads `n/a`). Before a window
//! opens, freed memory is handed back to the OS (`malloc_trim` on glibc) so that pages kept by the
//! allocator from an earlier run do not hide this run's growth.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

/// Whether a window is open.
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Live heap bytes allocated since the window opened (negative if more was freed).
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting live heap bytes while a [`Window`] is open.
pub(crate) struct CountingAlloc;

fn count(delta: isize) {
    if COUNTING.load(Relaxed) {
        LIVE.fetch_add(delta, Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the bookkeeping beside it touches only two atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: our caller upholds `alloc`'s contract (non-zero size), which is `System`'s too.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`: the caller's contract is `System`'s.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller promises `ptr` came from this allocator (hence from `System`) with
        // `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller promises `ptr` came from this allocator (hence from `System`) with
        // `layout`, and that `new_size` is valid for it.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// Heap and RSS growth over a window, in bytes per task.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Footprint {
    /// Live heap bytes per task, from the counting allocator.
    pub(crate) heap: f64,
    /// Resident memory per task, from `/proc/self/statm`; NaN where that file does not exist.
    pub(crate) rss: f64,
}

/// An open measurement window: heap counting is on, and the RSS at the start is kept.
#[derive(Debug)]
pub(crate) struct Window {
    rss_start: Option<u64>,
}

impl Window {
    /// Hands freed memory back to the OS, zeroes the heap counter and starts counting.
    pub(crate) fn open() -> Window {
        release_free_memory();
        LIVE.store(0, Relaxed);
        COUNTING.store(true, Relaxed);
        Window { rss_start: rss_bytes() }
    }

    /// Stops counting and returns the growth since [`Window::open`], divided by `tasks`.
    pub(crate) fn close(self, tasks: usize) -> Footprint {
        COUNTING.store(false, Relaxed);
        let heap = LIVE.load(Relaxed) as f64;
        let rss = match (self.rss_start, rss_bytes()) {
            (Some(start), Some(end)) => end as f64 - start as f64,
            _ => f64::NAN,
        };
        let tasks = tasks.max(1) as f64;
        Footprint { heap: heap / tasks, rss: rss / tasks }
    }
}

/// Resident set size in bytes (resident pages, 4 KiB each), or `None` off Linux.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Asks the C allocator to return free pages to the OS, so the next RSS delta starts clean.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: `malloc_trim` takes no pointers and may be called at any time; it only releases
    // memory that glibc's malloc holds free.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}
