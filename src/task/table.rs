//! The process-wide chunk table: how a task key finds its slot from any thread.
//!
//! Task slots live in *chunks* of [`SLOTS_PER_CHUNK`] fixed-size slots, owned by one runtime's
//! pool. A task key's 32-bit index is `chunk_id << 8 | slot`, its upper 32 bits the slot
//! generation. Waker data is exactly that key, so a waker is a plain `u64`: cloning it touches no
//! reference count.
//!
//! A key may outlive its task, its chunk and its runtime, so the path from a key to memory must
//! never touch freed memory. The table's *entries* are immortal (allocated in blocks of 4,096 and
//! never freed); the chunks they point to are not. Each entry holds:
//!
//! - `base`: the chunk's memory, or null once the chunk was freed;
//! - `owner`: an opaque pointer identifying the owning runtime (its `Shared`), or null;
//! - `readers`: how many foreign threads are inside the chunk right now.
//!
//! Protocol (the invariant every unsafe block here relies on):
//!
//! 1. **Owner thread.** A thread whose current runtime is the entry's `owner` may use the chunk
//!    directly: only that runtime frees its chunks, and it does so only after it stopped being
//!    the current runtime of the thread.
//! 2. **Foreign threads** increment `readers`, then load `base`; if it is non-null the chunk (and
//!    the `Shared` that `owner` names, which outlives its chunks) stays valid until they
//!    decrement `readers`.
//! 3. **Freeing** stores null into `base`, then waits for `readers` to reach zero, then frees
//!    the memory. Both sides use `SeqCst`, so either the reader sees null or the freer sees the
//!    reader (the store-load pattern of Dekker's algorithm).
//!
//! A recycled chunk id starts its slots at a generation above every generation its previous
//! chunk handed out, so a key of a freed chunk never names a task of the new one. An id whose
//! generations are nearly exhausted is retired, never recycled.

use std::alloc::{alloc, dealloc, Layout};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering::*};
use std::sync::Mutex;

/// Slots per chunk; the low 8 bits of a task index.
pub(crate) const SLOT_BITS: u32 = 8;
/// Number of slots in one chunk.
pub(crate) const SLOTS_PER_CHUNK: usize = 1 << SLOT_BITS;
const L2_BITS: u32 = 12;
const L2_LEN: usize = 1 << L2_BITS;
const L1_LEN: usize = 1 << (32 - SLOT_BITS - L2_BITS);
/// Chunk alignment; slot sizes are multiples of it.
pub(crate) const SLOT_ALIGN: usize = 16;
/// Set in a chunk's recorded slot size when it belongs to a runtime's locked remote pool.
pub(crate) const REMOTE_FLAG: u32 = 1 << 31;
/// A chunk id whose next generation passes this is retired instead of recycled.
pub(crate) const GEN_RETIRE: u32 = u32::MAX - (1 << 20);

/// One immortal table entry.
pub(crate) struct Entry {
    base: AtomicPtr<u8>,
    owner: AtomicPtr<()>,
    readers: AtomicUsize,
    slot_size: AtomicU32,
    /// Even generation the next chunk under this id starts its slots at. Guarded by `IDS`.
    next_gen: AtomicU32,
}

static L1: [AtomicPtr<Entry>; L1_LEN] = [const { AtomicPtr::new(ptr::null_mut()) }; L1_LEN];

struct Ids {
    next: u32,
    free: Vec<u32>,
}

static IDS: Mutex<Ids> = Mutex::new(Ids { next: 0, free: Vec::new() });

/// Splits a task index into (chunk id, slot).
#[inline]
pub(crate) fn split(index: u32) -> (u32, usize) {
    (index >> SLOT_BITS, (index as usize) & (SLOTS_PER_CHUNK - 1))
}

/// The entry for `chunk_id`, if its block was ever allocated.
#[inline]
pub(crate) fn entry(chunk_id: u32) -> Option<&'static Entry> {
    let block = L1.get((chunk_id >> L2_BITS) as usize)?.load(Acquire);
    if block.is_null() {
        return None;
    }
    // SAFETY: blocks are allocated with `L2_LEN` entries and never freed (immortal), and the
    // index is masked below `L2_LEN`.
    Some(unsafe { &*block.add((chunk_id as usize) & (L2_LEN - 1)) })
}

impl Entry {
    /// Whether `owner` owns this chunk (the owner-thread fast path of rule 1).
    #[inline]
    pub(crate) fn is_owned_by(&self, owner: *const ()) -> bool {
        !owner.is_null() && ptr::eq(self.owner.load(Relaxed), owner)
    }

    /// The slot's address, for the owner thread (rule 1). Null if the chunk is gone.
    #[inline]
    pub(crate) fn owner_slot(&self, slot: usize) -> *mut u8 {
        let base = self.base.load(Relaxed);
        if base.is_null() {
            return base;
        }
        // SAFETY: `slot < SLOTS_PER_CHUNK` and the chunk holds that many slots of `slot_size`.
        unsafe { base.add(slot * self.size()) }
    }

    /// The slot size in bytes.
    #[inline]
    fn size(&self) -> usize {
        (self.slot_size.load(Relaxed) & !REMOTE_FLAG) as usize
    }

    /// The slot's size class and whether the chunk belongs to a remote (locked) pool.
    pub(crate) fn class(&self) -> (usize, bool) {
        let raw = self.slot_size.load(Relaxed);
        let size = (raw & !REMOTE_FLAG) as usize;
        let class = super::raw::CLASSES.iter().position(|&c| c == size).unwrap_or(0);
        (class, raw & REMOTE_FLAG != 0)
    }

    /// Runs `f` with the slot's address and the chunk's owner from a foreign thread (rule 2).
    /// Returns `None` if the chunk was freed.
    pub(crate) fn with_foreign<R>(
        &self,
        slot: usize,
        f: impl FnOnce(*mut u8, *const ()) -> R,
    ) -> Option<R> {
        struct Guard<'a>(&'a AtomicUsize);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Release);
            }
        }
        self.readers.fetch_add(1, SeqCst);
        let _guard = Guard(&self.readers);
        let base = self.base.load(SeqCst);
        if base.is_null() {
            return None;
        }
        let owner = self.owner.load(Acquire);
        // SAFETY: as in `owner_slot`; `readers > 0` keeps the chunk alive (rule 3).
        let slot_ptr = unsafe { base.add(slot * self.size()) };
        Some(f(slot_ptr, owner))
    }
}

/// Allocates a chunk of `slot_size`-byte slots for `owner`, calling `init(slot_ptr, gen)` on
/// each slot with the even generation it starts at. Returns the chunk id and its first index.
pub(crate) fn alloc_chunk(
    flagged_size: usize,
    owner: *const (),
    mut init: impl FnMut(*mut u8, u32),
) -> u32 {
    let slot_size = flagged_size & !(REMOTE_FLAG as usize);
    debug_assert!(slot_size % SLOT_ALIGN == 0);
    let layout = Layout::from_size_align(slot_size * SLOTS_PER_CHUNK, SLOT_ALIGN)
        .expect("task chunk layout");
    // SAFETY: the layout has non-zero size.
    let base = unsafe { alloc(layout) };
    if base.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    let mut ids = IDS.lock().unwrap_or_else(|e| e.into_inner());
    let id = match ids.free.pop() {
        Some(id) => id,
        None => {
            let id = ids.next;
            assert!(
                (id as usize) < L1_LEN * L2_LEN,
                "omni: the task region is exhausted ({} slots in use); spawn fewer concurrent tasks",
                L1_LEN * L2_LEN * SLOTS_PER_CHUNK
            );
            ids.next += 1;
            let l1 = &L1[(id >> L2_BITS) as usize];
            if l1.load(Acquire).is_null() {
                let block: Box<[Entry]> = (0..L2_LEN)
                    .map(|_| Entry {
                        base: AtomicPtr::new(ptr::null_mut()),
                        owner: AtomicPtr::new(ptr::null_mut()),
                        readers: AtomicUsize::new(0),
                        slot_size: AtomicU32::new(0),
                        next_gen: AtomicU32::new(0),
                    })
                    .collect();
                l1.store(Box::leak(block).as_mut_ptr(), Release);
            }
            id
        }
    };
    let e = entry(id).expect("block allocated above");
    let gen = e.next_gen.load(Relaxed);
    for i in 0..SLOTS_PER_CHUNK {
        // SAFETY: `i < SLOTS_PER_CHUNK`, inside the allocation.
        init(unsafe { base.add(i * slot_size) }, gen);
    }
    e.slot_size.store(flagged_size as u32, Relaxed);
    e.owner.store(owner as *mut (), Release);
    e.base.store(base, SeqCst);
    id
}

/// Unpublishes chunk `id` (rule 3): after this returns, no other thread is inside the chunk
/// and none can enter it. Returns its memory, for the caller to finish and [`free_chunk`].
///
/// # Safety
///
/// The caller owns the chunk, and nothing will use it through the owner-thread fast path again
/// (the runtime is no longer current on any thread).
pub(crate) unsafe fn unpublish(id: u32) -> *mut u8 {
    let e = entry(id).expect("unpublishing a chunk that was never allocated");
    let base = e.base.swap(ptr::null_mut(), SeqCst);
    e.owner.store(ptr::null_mut(), Release);
    while e.readers.load(SeqCst) != 0 {
        std::thread::yield_now();
    }
    base
}

/// The slot at `slot` of an unpublished chunk whose memory is `base`.
///
/// # Safety
///
/// `base` came from [`unpublish`] of chunk `id` and was not freed yet.
pub(crate) unsafe fn slot_of_unpublished(id: u32, base: *mut u8, slot: usize) -> *mut u8 {
    let e = entry(id).expect("chunk id");
    // SAFETY: caller's contract; `slot < SLOTS_PER_CHUNK`.
    unsafe { base.add(slot * e.size()) }
}

/// Frees the memory of chunk `id`, unpublished earlier with [`unpublish`] which returned
/// `base`. `max_gen` is the largest generation any of its slots reached.
///
/// # Safety
///
/// Every slot in the chunk is vacant with its stage dropped, and `base` is not used again.
pub(crate) unsafe fn free_chunk(id: u32, base: *mut u8, max_gen: u32) {
    let e = entry(id).expect("freeing a chunk that was never allocated");
    let slot_size = e.size();
    let layout = Layout::from_size_align(slot_size * SLOTS_PER_CHUNK, SLOT_ALIGN)
        .expect("task chunk layout");
    if let Some(base) = NonNull::new(base) {
        // SAFETY: allocated in `alloc_chunk` with this layout; no reader remains (rule 3).
        unsafe { dealloc(base.as_ptr(), layout) };
    }
    let next = (max_gen | 1).wrapping_add(1);
    let mut ids = IDS.lock().unwrap_or_else(|e| e.into_inner());
    e.next_gen.store(next, Relaxed);
    if next < GEN_RETIRE {
        ids.free.push(id);
    }
}
