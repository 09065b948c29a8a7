//! Generational regions: slot storage whose keys can outlive their values safely.
//!
//! # Why regions
//!
//! Omni keeps its long-lived objects (task slots, timer entries, the Lisp heap) in regions rather
//! than in one `Box` or `Arc` each. A region owns its values and hands out a *key* per value: an
//! 8-byte `Copy` handle made of a slot index and a version (a generation). The rest of the runtime
//! passes keys around instead of pointers; a waker, for instance, is a task key. Two properties
//! make that safe:
//!
//! - **Stable slots.** A slot never moves once it has been handed out. A region grows by adding a
//!   chunk of slots, never by reallocating the ones it has, so a value stays at one address for as
//!   long as it lives. That is what lets [`PinRegion`] hand out `Pin<&mut V>`, and lets a
//!   scheduler keep a future in its slot while it is polled.
//! - **Generational keys.** Removing a value bumps its slot's version, so keys to the old value no
//!   longer match. A stale key (a finished task's waker, a removed entry) reads as absent: `get`
//!   gives `None` and `remove` gives `None`. It never reads or removes the value that later reuses
//!   the slot.
//!
//! # Keys
//!
//! Keys come from the [`slotmap`](https://docs.rs/slotmap) crate: [`Key`], [`KeyData`],
//! [`DefaultKey`] and [`new_key_type!`] are re-exported here. Give each kind of region its own
//! key type, so a key from one kind of region cannot be used with another: that is a type error,
//! not a runtime surprise.
//!
//! ```
//! use omni::region::Region;
//!
//! omni::region::new_key_type! {
//!     /// Key of a node in a graph.
//!     struct NodeKey;
//! }
//!
//! let mut nodes: Region<NodeKey, &str> = Region::new();
//! let a = nodes.insert("a");
//! assert_eq!(nodes[a], "a");
//! ```
//!
//! ```compile_fail,E0308
//! use omni::region::Region;
//!
//! omni::region::new_key_type! { struct NodeKey; struct EdgeKey; }
//!
//! let mut nodes: Region<NodeKey, &str> = Region::new();
//! let edges: Region<EdgeKey, u32> = Region::new();
//! let a = nodes.insert("a");
//! let _ = edges.get(a); // error: expected `EdgeKey`, found `NodeKey`
//! ```
//!
//! A key is encoded as in slotmap: `key.data().as_ffi()` is a `u64` whose low 32 bits are the slot
//! index and whose high 32 bits are the version, and `KeyData::from_ffi` builds one back.
//!
//! # Invariants
//!
//! - A slot's version is odd while the slot is occupied and even while it is vacant. Insert bumps
//!   it to odd, remove bumps it to even, so versions only grow. Keys always carry an odd version.
//! - Versions never wrap. A slot whose version would pass `u32::MAX` is *retired*: it is never put
//!   back on the free list, and the region uses a fresh slot instead. (slotmap wraps, so a key can
//!   alias again after about 2^31 reuses of one slot; here it cannot.)
//! - Index `u32::MAX` is never handed out: that is the null key, and `get(K::null())` is `None`.
//! - Vacant slots are reused last-freed first (a LIFO free list), so a hot slot stays in cache.
//! - Each value is dropped exactly once: handed back by `remove`, dropped in place by `clear`,
//!   `retain` or [`PinRegion::delete`], or dropped with the region.
//!
//! # Who owns what
//!
//! The region owns its values. A key owns nothing: holding one keeps nothing alive, and it has no
//! lifetime. Borrowing a value borrows the region, so the borrow checker stops a value from being
//! removed while a reference to it is live; structural change (insert, remove) needs `&mut`. A
//! region is `Send`/`Sync` when its values are.
//!
//! # Kinds
//!
//! [`Region`] is the pool kind: fixed-size slots, one value type, slots reused. [`PinRegion`] is
//! the same storage with a pinning API for values that must not move (futures, intrusive nodes).
//!
//! # Freezing and sharing
//!
//! [`Region::freeze`] turns a region into a [`Frozen`] one: read-only for good, cheap to clone
//! (a reference count), and `Send + Sync` when its values are, so any number of threads read it
//! at once without a lock. Its keys stay valid: a key handed out before the freeze reads the same
//! value through every clone, and a stale key stays stale. [`Frozen::thaw`] gives the region back,
//! writable again, once the last other clone is gone. Nothing in a frozen region can change, so
//! sharing it needs no `unsafe` and no atomics beyond the reference count.
//!
//! # Transmigration
//!
//! Values in a region often refer to each other by key: a graph, a list, a Lisp heap. Moving one
//! such value to another region (another thread's, say) means moving everything it reaches and
//! rewriting every key on the way. [`Region::transmigrate`] does that for values that say which
//! keys they hold ([`Migrate`]): it copies the values reachable from some roots into another
//! region and hands back the roots' new keys.
//!
//! - **Sharing and cycles are kept.** A value reached twice is copied once, and both references
//!   point at the one copy; a cycle is copied as a cycle. The copy has exactly as many values as
//!   the source graph has reachable values.
//! - **Absent stays absent.** A key that names nothing in the source (stale, null, or from
//!   another region) becomes the null key in the copy, which reads as absent there too. It never
//!   becomes a key that names some other value of the destination.
//! - **All or nothing.** If a [`Migrate::migrate`] call panics, the values copied so far are
//!   removed from the destination again (their keys go stale) before the panic goes on.
//! - The source is only read, so a [`Frozen`] region can be transmigrated from by many threads
//!   at once.

mod frozen;
mod iter;
mod migrate;
mod pin;
mod pool;
mod stats;
#[cfg(test)]
mod tests;

pub use frozen::Frozen;
pub use iter::{Iter, IterMut, Keys, Values};
pub use migrate::Migrate;
pub use pin::PinRegion;
pub use pool::Region;
pub use slotmap::{new_key_type, DefaultKey, Key, KeyData};
pub use stats::RegionStats;
