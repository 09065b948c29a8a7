//! Green tasks: futures stored inline in the slots of generational regions.
//!
//! A spawned future is written into a slot of its runtime's task pool beside a 48-byte header
//! (state word with generation, vtable, join waker, spawn site, wait note). Slots never move, so the future is pinned
//! in place; a finished task's slot is reused by the next spawn of its size class, so spawning
//! and joining in steady state allocates nothing. Futures too big for the largest class are
//! boxed.
//!
//! A task is named by its *key*, `generation << 32 | index`, the same layout as slotmap's
//! `KeyData`. The key is the waker's data word and the task's [`Id`]. Everything that reaches a
//! slot from a key checks the generation first, so a stale key never touches a newer task.
//!
//! Files: `state.rs` the state word, `raw.rs` the slot layout and vtable, `table.rs` how a key
//! finds its slot from any thread, `pool.rs` a runtime's slots, `waker.rs` the waker, `join.rs`
//! the join handle.

mod join;
pub(crate) mod pool;
pub(crate) mod raw;
pub(crate) mod state;
pub(crate) mod table;
pub(crate) mod waker;

pub use join::{Id, JoinError, JoinHandle};

/// Packs an index and a generation into a key.
#[inline]
pub(crate) fn key(index: u32, gen: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(index)
}

/// The index of a key.
#[inline]
pub(crate) fn index_of(key: u64) -> u32 {
    key as u32
}

/// The generation of a key.
#[inline]
pub(crate) fn gen_of(key: u64) -> u32 {
    (key >> 32) as u32
}

/// Where a slot was reached from.
#[derive(Clone, Copy)]
pub(crate) enum Access {
    /// From a thread of the owning runtime (its current-thread scheduler, one of its workers,
    /// or its `block_on` thread): the chunk stays allocated while that thread is in the runtime
    /// (table rule 1). Which of those threads may touch the stage is still decided by the state
    /// word (`RUNNING`, output claims), since several share one owner id.
    Owner,
    /// From another thread (or after the runtime stopped being current): only the state word
    /// and the join waker protocol; `owner` is the owning runtime's shared state.
    Foreign(*const ()),
}

/// Runs `f` on the header of the slot that `key` names, if its chunk still exists. The
/// generation is *not* checked here: every state transition checks it.
pub(crate) fn with_slot<R>(
    key: u64,
    f: impl FnOnce(&raw::Header, *mut raw::Header, Access) -> R,
) -> Option<R> {
    let (chunk, slot) = table::split(index_of(key));
    let e = table::entry(chunk)?;
    let owner = crate::rt::current_owner();
    if e.is_owned_by(owner) {
        let p = e.owner_slot(slot) as *mut raw::Header;
        if p.is_null() {
            return None;
        }
        // SAFETY: the owner thread's chunks stay allocated while it is current (table rule 1);
        // every slot holds an initialised header.
        return Some(f(unsafe { &*p }, p, Access::Owner));
    }
    e.with_foreign(slot, |p, owner| {
        let p = p as *mut raw::Header;
        // SAFETY: `with_foreign` keeps the chunk allocated for the closure (table rule 2).
        f(unsafe { &*p }, p, Access::Foreign(owner))
    })
}
