//! A runtime's task pool: the chunks it owns and the free slots in them, per size class.
//!
//! A pool is owned by one runtime and used by one thread at a time (the owner thread, or whoever
//! holds the lock around a pool reserved for spawns from other threads). Slots come from a free
//! list (most recently freed first, for cache warmth), then from the newest chunk of the class;
//! a new chunk is taken only when both are empty, so spawning and joining in steady state
//! allocates nothing. A slot whose generation nears `u32::MAX` is retired, never reused.

use super::raw::{init_vacant, Header, CLASSES};
use super::table::{self, SLOTS_PER_CHUNK, SLOT_BITS};

/// Free slots of one size class.
#[derive(Default)]
struct Class {
    free: Vec<u32>,
    /// The newest chunk of this class and its next never-used slot.
    fresh: Option<(u32, usize)>,
}

/// The slots one runtime owns.
pub(crate) struct Pool {
    owner: *const (),
    remote: bool,
    classes: [Class; CLASSES.len()],
    chunks: Vec<u32>,
}

// SAFETY: `owner` is an opaque identity pointer that the pool never dereferences; the chunks are
// plain memory. A pool moves between threads only behind a lock (the remote pool, or a retired
// worker's pools handed to shutdown) or with the runtime.
unsafe impl Send for Pool {}

impl Pool {
    pub(crate) fn new(owner: *const (), remote: bool) -> Pool {
        Pool { owner, remote, classes: Default::default(), chunks: Vec::new() }
    }

    /// Takes a vacant slot of `class`. Returns its index and header.
    pub(crate) fn alloc(&mut self, class: usize) -> (u32, *mut Header) {
        let c = &mut self.classes[class];
        let index = if let Some(i) = c.free.pop() {
            i
        } else {
            match c.fresh {
                Some((chunk, next)) if next < SLOTS_PER_CHUNK => {
                    c.fresh = Some((chunk, next + 1));
                    (chunk << SLOT_BITS) | next as u32
                }
                _ => {
                    let flag = if self.remote { table::REMOTE_FLAG as usize } else { 0 };
                    let tagged = CLASSES[class] | (class << table::CLASS_SHIFT) | flag;
                    let chunk = table::alloc_chunk(tagged, self.owner, |p, gen| {
                        // SAFETY: `p` is a fresh slot of the new chunk, not yet published.
                        unsafe { init_vacant(p, gen) }
                    });
                    self.chunks.push(chunk);
                    c.fresh = Some((chunk, 1));
                    chunk << SLOT_BITS
                }
            }
        };
        let (chunk, slot) = table::split(index);
        let e = table::entry(chunk).expect("own chunk");
        (index, e.owner_slot(slot) as *mut Header)
    }

    /// Returns a vacated slot (now at generation `gen`) to its class's free list.
    pub(crate) fn release(&mut self, index: u32, class: usize, gen: u32) {
        if gen < table::GEN_RETIRE {
            self.classes[class].free.push(index);
        }
    }

    /// How many freed slots of `class` wait for reuse.
    pub(crate) fn free_len(&self, class: usize) -> usize {
        self.classes[class].free.len()
    }

    /// Takes `n` (or all, if fewer) freed slots of `class`, to give to another pool of the
    /// same runtime.
    pub(crate) fn take_free(&mut self, class: usize, n: usize) -> Vec<u32> {
        let free = &mut self.classes[class].free;
        free.split_off(free.len().saturating_sub(n))
    }

    /// Adds freed slots of `class` that another pool of the same runtime gave away. They stay
    /// in their chunks' owning pools' lists for shutdown.
    pub(crate) fn add_free(&mut self, class: usize, batch: Vec<u32>) {
        self.classes[class].free.extend(batch);
    }

    /// The chunk ids this pool owns.
    pub(crate) fn chunks(&self) -> &[u32] {
        &self.chunks
    }

    /// Forgets every chunk (the caller frees them) and returns their ids.
    pub(crate) fn take_chunks(&mut self) -> Vec<u32> {
        for c in &mut self.classes {
            *c = Class::default();
        }
        std::mem::take(&mut self.chunks)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn freed_slots_are_reused_and_exhausted_ones_retired() {
        let owner = Box::new(0u8);
        let mut pool = Pool::new(&*owner as *const u8 as *const (), false);
        let (a, h) = pool.alloc(0);
        // SAFETY: `h` is the header of a slot this pool just handed out.
        let header = unsafe { &*h };
        header.state.occupy(0);
        let gen = header.state.vacate();
        pool.release(a, 0, gen);
        let (b, h) = pool.alloc(0);
        assert_eq!(a, b, "a freed slot is reused first");

        // SAFETY: as above.
        let header = unsafe { &*h };
        header.state.set_generation_for_test(table::GEN_RETIRE + 1);
        let gen = header.state.vacate();
        assert!(gen >= table::GEN_RETIRE);
        pool.release(b, 0, gen);
        let (c, _) = pool.alloc(0);
        assert_ne!(b, c, "a slot whose generation is nearly exhausted is retired");

        for chunk in pool.take_chunks() {
            // SAFETY: the chunk is ours, its slots are vacant (`c` was never occupied) and no
            // runtime uses it.
            unsafe {
                let base = table::unpublish(chunk);
                table::free_chunk(chunk, base, table::GEN_RETIRE + 2);
            }
        }
    }
}
