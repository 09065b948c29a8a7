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
//! - `readers`: how many foreign threads are inside the chunk right now, and whether the gate
//!   is closed.
//!
//! Protocol (the invariant every unsafe block here relies on):
//!
//! 1. **Owner thread.** A thread whose current runtime is the entry's `owner` may use the chunk
//!    directly: only that runtime frees its chunks, and it does so only after it stopped being
//!    the current runtime of the thread.
//! 2. **Foreign threads** increment `readers`, then load `base`; if it is non-null the chunk (and
//!    the `Shared` that `owner` names, which outlives its chunks) stays valid until they
//!    decrement `readers`.
//! 3. **Freeing** closes the gate, then waits for `readers` to reach zero, then clears `base`
//!    and `owner` and frees the memory. Closing and entering are read-modify-writes of one word
//!    (a closed bit beside the reader count), so either the reader entered first and the freer
//!    waits for it, or the reader sees the gate closed. Publishing stores `base` and `owner`
//!    (release) before opening the gate, so a thread that sees itself as owner (acquire) or
//!    enters also sees the chunk and its initialised headers.
//!
//! Rules 2 and 3 live in [`Gate`], which goes through `crate::loom` and has a loom model.
//!
//! A recycled chunk id starts its slots at a generation above every generation its previous
//! chunk handed out, so a key of a freed chunk never names a task of the new one. An id whose
//! generations are nearly exhausted is retired, never recycled.

use crate::loom::{AtomicPtr as GatePtr, AtomicUsize as GateCount, Backoff};
use std::alloc::{alloc, dealloc, Layout};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering::*};
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
/// A chunk's recorded slot size also holds its size class from this bit up (below
/// `REMOTE_FLAG`), so freeing a slot finds its class without a search.
pub(crate) const CLASS_SHIFT: u32 = 24;
const SIZE_MASK: u32 = (1 << CLASS_SHIFT) - 1;
/// A chunk id whose next generation passes this is retired instead of recycled.
pub(crate) const GEN_RETIRE: u32 = u32::MAX - (1 << 20);

/// The publication state of one chunk: rules 2 and 3 of the module doc.
///
/// `word` packs a `CLOSED` bit and the number of foreign readers inside, so entering and
/// closing are read-modify-writes of one location: they are totally ordered without relying on
/// sequentially consistent loads (a store-load pattern across two locations, which an earlier
/// version used, is exactly what loom flagged).
pub(crate) struct Gate {
    word: GateCount,
    base: GatePtr<u8>,
    owner: GatePtr<()>,
}

const CLOSED: usize = 1 << (usize::BITS - 1);

/// A foreign thread inside a published chunk; leaving drops the reader count.
pub(crate) struct Inside<'a> {
    gate: &'a Gate,
    pub(crate) base: *mut u8,
    pub(crate) owner: *const (),
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        let before = self.gate.word.fetch_sub(1, Release);
        debug_assert!(before & !CLOSED > 0, "chunk reader count underflow");
    }
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate {
            word: GateCount::new(CLOSED),
            base: GatePtr::new(ptr::null_mut()),
            owner: GatePtr::new(ptr::null_mut()),
        }
    }

    /// Publishes `base` for `owner` and opens the gate. Everything written before is visible
    /// to a thread that sees `owner` (acquire) or enters (rule 2).
    pub(crate) fn publish(&self, base: *mut u8, owner: *const ()) {
        self.base.store(base, Release);
        self.owner.store(owner as *mut (), Release);
        // `fetch_and`, not a store: a stale reader may be passing through the closed gate.
        self.word.fetch_and(!CLOSED, Release);
    }

    /// Whether `owner` owns the chunk (rule 1's check).
    #[inline]
    pub(crate) fn is_owned_by(&self, owner: *const ()) -> bool {
        !owner.is_null() && ptr::eq(self.owner.load(Acquire), owner)
    }

    /// The chunk's memory, for its owner thread (rule 1). May be null.
    #[inline]
    pub(crate) fn owner_base(&self) -> *mut u8 {
        self.base.load(Acquire)
    }

    /// Enters the chunk from a foreign thread (rule 2): `None` if it is not published.
    pub(crate) fn enter(&self) -> Option<Inside<'_>> {
        let before = self.word.fetch_add(1, Acquire);
        // From here on exactly one `Inside` exists, and its drop is the one decrement.
        let mut inside = Inside { gate: self, base: ptr::null_mut(), owner: ptr::null() };
        if before & CLOSED != 0 {
            return None;
        }
        inside.base = self.base.load(Acquire);
        inside.owner = self.owner.load(Acquire);
        if inside.base.is_null() || inside.owner.is_null() {
            return None;
        }
        Some(inside)
    }

    /// Unpublishes the chunk (rule 3): on return no foreign thread is inside and none can
    /// enter. Returns the memory that was published.
    pub(crate) fn unpublish(&self) -> *mut u8 {
        self.word.fetch_or(CLOSED, AcqRel);
        let mut backoff = Backoff::default();
        while self.word.load(Acquire) & !CLOSED != 0 {
            backoff.snooze();
        }
        self.owner.store(ptr::null_mut(), Release);
        self.base.swap(ptr::null_mut(), AcqRel)
    }
}

/// One immortal table entry.
pub(crate) struct Entry {
    gate: Gate,
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

/// The ids of the published chunks that `owner` owns (a deadlock check walks them; rare).
pub(crate) fn chunks_owned_by(owner: *const ()) -> Vec<u32> {
    let next = IDS.lock().unwrap_or_else(|e| e.into_inner()).next;
    (0..next).filter(|&id| entry(id).is_some_and(|e| e.is_owned_by(owner))).collect()
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
        self.gate.is_owned_by(owner)
    }

    /// The slot's address, for the owner thread (rule 1). Null if the chunk is gone.
    #[inline]
    pub(crate) fn owner_slot(&self, slot: usize) -> *mut u8 {
        let base = self.gate.owner_base();
        if base.is_null() {
            return base;
        }
        // SAFETY: `slot < SLOTS_PER_CHUNK` and the chunk holds that many slots of `slot_size`.
        unsafe { base.add(slot * self.size()) }
    }

    /// The slot size in bytes.
    #[inline]
    fn size(&self) -> usize {
        (self.slot_size.load(Relaxed) & SIZE_MASK) as usize
    }

    /// The slot's size class and whether the chunk belongs to a remote (locked) pool.
    #[inline]
    pub(crate) fn class(&self) -> (usize, bool) {
        let raw = self.slot_size.load(Relaxed);
        (((raw & !REMOTE_FLAG) >> CLASS_SHIFT) as usize, raw & REMOTE_FLAG != 0)
    }

    /// Runs `f` with the slot's address and the chunk's owner from a foreign thread (rule 2).
    /// Returns `None` if the chunk was freed.
    pub(crate) fn with_foreign<R>(
        &self,
        slot: usize,
        f: impl FnOnce(*mut u8, *const ()) -> R,
    ) -> Option<R> {
        let inside = self.gate.enter()?;
        // SAFETY: as in `owner_slot`; `inside` keeps the chunk allocated (rule 3).
        let slot_ptr = unsafe { inside.base.add(slot * self.size()) };
        Some(f(slot_ptr, inside.owner))
    }
}

/// Allocates a chunk of `slot_size`-byte slots for `owner`, calling `init(slot_ptr, gen)` on
/// each slot with the even generation it starts at. Returns the chunk id and its first index.
pub(crate) fn alloc_chunk(
    flagged_size: usize,
    owner: *const (),
    mut init: impl FnMut(*mut u8, u32),
) -> u32 {
    let slot_size = flagged_size & SIZE_MASK as usize;
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
                        gate: Gate::new(),
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
    e.gate.publish(base, owner);
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
    entry(id).expect("unpublishing a chunk that was never allocated").gate.unpublish()
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

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    /// A foreign reader racing the owner's unpublish-then-free: the reader either sees the chunk
    /// absent or finishes reading before the memory is freed. loom flags a read concurrent with
    /// the "free" (a write to the cell) as a data race.
    #[test]
    fn loom_reader_never_touches_a_freed_chunk() {
        loom::model(|| {
            let chunk = Box::into_raw(Box::new(UnsafeCell::new(7u32)));
            let gate = Arc::new(Gate::new());
            let owner = 0x10 as *const ();
            gate.publish(chunk as *mut u8, owner);
            let g2 = gate.clone();
            let reader = loom::thread::spawn(move || {
                if let Some(inside) = g2.enter() {
                    assert_eq!(inside.owner, owner, "a reader inside sees the owner");
                    let cell = inside.base as *const UnsafeCell<u32>;
                    // SAFETY: `inside` keeps the chunk allocated.
                    let v = unsafe { &*cell }.with(|p| unsafe { *p });
                    assert_eq!(v, 7);
                }
            });
            let base = gate.unpublish() as *mut UnsafeCell<u32>;
            // "Free": poison the memory, then release it.
            // SAFETY: unpublished, so no reader is inside.
            unsafe { &*base }.with_mut(|p| unsafe { *p = 0 });
            // SAFETY: allocated above with `Box::into_raw`.
            drop(unsafe { Box::from_raw(base) });
            reader.join().unwrap();
        });
    }
}
