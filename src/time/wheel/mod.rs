//! A hierarchical timing wheel (Varghese & Lauck): the data structure under `omni::time`.
//!
//! The wheel knows nothing of clocks or tasks. Time is a `u64` count of milliseconds since some
//! origin, and the wheel only learns it through [`Wheel::advance`]; the runtime supplies the
//! clock (real or paused) and uses the payload `T` (a waker) to wake whoever waits.
//!
//! # Layout
//!
//! A deadline is read as eleven 6-bit digits. Level `l` has 64 slots of `64^l` ms each, so one
//! turn of level `l` spans `64^(l+1)` ms: level 0 resolves single milliseconds within the current
//! 64 ms, level 1 64 ms slots within the current 4096 ms, ..., level 5 reaches 2^36 ms (about
//! 2.2 years), and levels 6 to 10 carry on to 2^64, the top level using 16 of its slots. An entry
//! lives at the level of the highest digit in which its deadline differs from `elapsed` (the
//! wheel's present), in the slot given by its deadline's digit at that level. Each slot is an
//! intrusive doubly-linked FIFO list threaded through the entries as keys, and each level keeps a
//! 64-bit bitmap of its non-empty slots.
//!
//! Where tokio stops at six levels and parks later deadlines in an overflow slot, this wheel just
//! has five more levels (its table of list heads is 11 KiB where tokio's is 6 KiB): every `u64`
//! deadline, up to `u64::MAX`, has a place and fires exactly when due, and no slot ever wraps
//! around into a later turn (tokio shipped bugs in both spots: PR #5710, PR #8334).
//!
//! # Invariants
//!
//! - A pending entry's `deadline` is never below `elapsed`. A deadline that had already passed
//!   when inserted (or reset) is raised to `elapsed`, so it fires at the next advance.
//! - A pending entry at level `l >= 1` agrees with `elapsed` on every digit above `l` and is in a
//!   slot strictly after the one holding `elapsed`; at level 0 its slot is at or after it. So all
//!   slots of a level are ahead of `elapsed` within the current turn (no wrap-around), every slot
//!   of level `l` comes before every slot of level `l + 1`, and the first set bit of the lowest
//!   non-empty level is the next slot due. Because of this, an entry's place is a function of its
//!   deadline and `elapsed`, and the entry need not store it.
//! - `advance` visits non-empty slots in time order. At a level-0 slot it fires the entries, in
//!   list order; at a higher slot it moves each entry down to the level its deadline now calls
//!   for (a lower one, since the slot's start and the deadline now agree on one more digit).
//!   Nothing fires from a coarse slot, so nothing fires early. An entry is moved at most ten
//!   times over its life.
//! - Each slot list is in insertion order (a reset counts as an insertion), and moving a list down
//!   keeps its order; an entry can be linked directly into a finer slot only after the coarser
//!   slot holding the same deadline has been emptied. So entries due in the same millisecond fire
//!   in the order they were inserted.
//! - A fired entry keeps its key (with its payload handed out) until it is removed, so its owner
//!   can tell "fired" from "cancelled" and from a stale key.
//!
//! # Why O(1)
//!
//! Insert computes a level and slot with a few bit operations and links at a list tail; cancel
//! and reset unlink through the entry's own links. Entries live in a [`Region`], whose freed slots
//! are reused, so a steady state of timers allocates nothing. `advance` costs O(1) per non-empty
//! slot visited plus O(1) per entry moved or fired, whatever the jump: empty slots are skipped
//! through the bitmaps, never stepped through one millisecond at a time.

mod level;
#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;

use std::fmt;
use std::mem;

use crate::region::{Region, RegionStats};
use level::{level_for, slot_for, slot_start, Level, LEVELS, NIL};

crate::region::new_key_type! {
    /// Key of a timer entry in a [`Wheel`]. Stale once the entry is removed: it never reads as
    /// another entry, even one that reuses the slot.
    pub(crate) struct TimerKey;
}

/// The entry region of a wheel.
type Entries<T> = Region<TimerKey, Entry<T>>;

/// One timer. While pending it is linked into exactly one slot list; once fired it is linked
/// nowhere and waits for [`Wheel::remove`].
struct Entry<T> {
    /// When it is due. Never below the wheel's `elapsed` while pending.
    deadline: u64,
    /// Previous entry in the slot list (its slot index in the region); `NIL` at the head or
    /// when unlinked. Indices, not keys: the wheel owns every entry it links, so a link is never
    /// stale, and 4 bytes instead of 8 keep an entry with a waker at 32 bytes.
    prev: u32,
    /// Next entry in the slot list; `NIL` at the tail or when unlinked.
    next: u32,
    /// `Some` while pending; handed out (and `None`) once fired.
    payload: Option<T>,
}

#[cfg_attr(not(test), allow(dead_code))] // tests and, later, omni::debug
/// Where an entry stands, from [`Wheel::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerState {
    /// Not yet due, or due but the wheel has not been advanced past it yet.
    Pending,
    /// Fired: its payload was handed to the `fire` callback of [`Wheel::advance`].
    Fired,
}

/// What [`Wheel::remove`] took out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Removed<T> {
    /// The entry was still pending: it is cancelled and will never fire. Here is its payload.
    Cancelled(T),
    /// The entry had fired already (its payload was handed out then); its key is now released.
    Fired,
}

#[cfg_attr(not(test), allow(dead_code))] // tests and, later, omni::debug
/// Memory use of a wheel, from [`Wheel::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WheelStats {
    /// Pending entries.
    pub(crate) pending: usize,
    /// Fired entries not removed yet.
    pub(crate) fired: usize,
    /// The entry region: `entries.bytes / pending` is the heap cost of a pending timer.
    pub(crate) entries: RegionStats,
    /// All heap bytes of the wheel: the entry region plus the fixed table of slot lists.
    pub(crate) bytes: usize,
}

/// A hierarchical timing wheel over millisecond deadlines. See the [module docs](self).
///
/// `T` is what the wheel hands back when an entry fires (the runtime stores a waker).
pub(crate) struct Wheel<T> {
    /// Every entry, pending or fired-but-not-removed.
    entries: Entries<T>,
    /// The levels, boxed because they are an 11 KiB table.
    levels: Box<[Level; LEVELS]>,
    /// The wheel's present: the greatest `now` passed to `advance` (0 at first).
    elapsed: u64,
    /// Number of pending entries.
    pending: usize,
    /// Non-empty slots visited by `advance`, for the test that huge jumps skip empty ones.
    #[cfg(test)]
    visits: usize,
}

impl<T> Wheel<T> {
    /// Creates an empty wheel standing at time 0.
    pub(crate) fn new() -> Wheel<T> {
        const EMPTY: Level = Level::new();
        Wheel {
            entries: Region::new(),
            levels: Box::new([EMPTY; LEVELS]),
            elapsed: 0,
            pending: 0,
            #[cfg(test)]
            visits: 0,
        }
    }

    #[cfg_attr(not(test), allow(dead_code))] // tests and, later, omni::debug
    /// Returns the wheel's present: the greatest `now` passed to [`advance`](Self::advance), or 0.
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    #[cfg_attr(not(test), allow(dead_code))] // tests and, later, omni::debug
    /// Returns the number of pending entries (fired ones awaiting removal are not counted).
    pub(crate) fn len(&self) -> usize {
        self.pending
    }

    #[cfg_attr(not(test), allow(dead_code))] // tests and, later, omni::debug
    /// Returns whether no entry is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Adds an entry due at `deadline_ms` and returns its key. O(1).
    ///
    /// A deadline at or before [`elapsed`](Self::elapsed) is raised to it: the entry fires at the
    /// next advance, after entries inserted earlier with such a deadline. `u64::MAX` is a valid
    /// deadline (in practice "never").
    pub(crate) fn insert(&mut self, deadline_ms: u64, payload: T) -> TimerKey {
        let deadline = deadline_ms.max(self.elapsed);
        let entry = Entry { deadline, prev: NIL, next: NIL, payload: Some(payload) };
        let key = self.entries.insert(entry);
        self.link(key, deadline);
        self.pending += 1;
        key
    }

    /// Moves a pending entry to `deadline_ms` (raised to `elapsed` if it has passed), behind the
    /// entries already due then. O(1). Returns `false`, and does nothing, if the entry has fired
    /// or the key is stale.
    pub(crate) fn reset(&mut self, key: TimerKey, deadline_ms: u64) -> bool {
        let Some(old) = self.pending_deadline(key) else { return false };
        self.unlink(key, old);
        let deadline = deadline_ms.max(self.elapsed);
        self.entries[key].deadline = deadline;
        self.link(key, deadline);
        true
    }

    #[cfg_attr(not(test), allow(dead_code))] // tests and, later, omni::debug
    /// Returns whether the entry is pending or fired, or `None` if the key is stale.
    pub(crate) fn state(&self, key: TimerKey) -> Option<TimerState> {
        let entry = self.entries.get(key)?;
        Some(if entry.payload.is_some() { TimerState::Pending } else { TimerState::Fired })
    }

    #[cfg_attr(not(test), allow(dead_code))] // tests and, later, omni::debug
    /// Returns the entry's deadline (as raised to `elapsed` if it was in the past when set), or
    /// `None` if the key is stale. A fired entry keeps its deadline.
    pub(crate) fn deadline(&self, key: TimerKey) -> Option<u64> {
        self.entries.get(key).map(|entry| entry.deadline)
    }

    /// Returns the payload of a pending entry, to replace or update it (a new waker); `None` if
    /// the entry has fired or the key is stale.
    pub(crate) fn payload_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        self.entries.get_mut(key)?.payload.as_mut()
    }

    /// Removes an entry and releases its key: cancels a pending entry (O(1)) and hands its payload
    /// back, or releases a fired one. Returns `None`, and does nothing, if the key is stale.
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<Removed<T>> {
        if let Some(deadline) = self.pending_deadline(key) {
            self.unlink(key, deadline);
            self.pending -= 1;
        }
        Some(match self.entries.remove(key)?.payload {
            Some(payload) => Removed::Cancelled(payload),
            None => Removed::Fired,
        })
    }

    /// Returns a lower bound on the earliest pending deadline, or `None` if nothing is pending.
    ///
    /// The bound is the first millisecond of the slot that holds the earliest pending entry. It
    /// is exact when that entry is at level 0, that is, when its deadline differs from `elapsed`
    /// only in the low 6 bits (due within the current aligned 64 ms, past deadlines included).
    /// Otherwise it is the deadline rounded down to a multiple of `64^l`, `l` being the entry's
    /// level. It is never below `elapsed`.
    ///
    /// Sleeping until the bound and then advancing to it always makes progress: `advance(bound)`
    /// fires the earliest entry or moves it down a level, after which the bound is strictly
    /// later. So a scheduler that parks until this value is never late, and wakes early at most
    /// once per level the earliest entry descends: ten times at worst, once at most for a
    /// deadline in the current aligned 4096 ms.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.next_slot().map(|(_, _, start)| start)
    }

    /// Advances the wheel to `now_ms` and fires every pending entry due at or before it, each
    /// exactly once, in deadline order and, within one millisecond, in insertion order (a reset
    /// counts as an insertion). Firing marks the entry [`Fired`](TimerState::Fired) and hands its
    /// key and payload to `fire`. Returns the number fired.
    ///
    /// Time never goes back: a `now_ms` below [`elapsed`](Self::elapsed) advances to `elapsed`,
    /// which fires only entries that were inserted or reset with a deadline already passed.
    ///
    /// If `fire` panics, the wheel stays consistent: the entries not yet fired stay pending and
    /// fire on the next advance.
    pub(crate) fn advance(&mut self, now_ms: u64, mut fire: impl FnMut(TimerKey, T)) -> usize {
        let now = now_ms.max(self.elapsed);
        let mut fired = 0;
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            debug_assert!(start >= self.elapsed, "a slot behind the wheel");
            self.elapsed = start;
            #[cfg(test)]
            {
                self.visits += 1;
            }
            while let Some(key) = self.levels[level].pop_front(slot, &mut self.entries) {
                let entry = &mut self.entries[key];
                if level == 0 {
                    let payload = entry.payload.take().expect("a linked entry is pending");
                    self.pending -= 1;
                    fired += 1;
                    fire(key, payload);
                } else {
                    let deadline = entry.deadline;
                    self.link(key, deadline);
                }
            }
        }
        self.elapsed = now;
        fired
    }

    #[cfg_attr(not(test), allow(dead_code))] // tests and, later, omni::debug
    /// Returns the wheel's memory use.
    pub(crate) fn stats(&self) -> WheelStats {
        let entries = self.entries.stats();
        WheelStats {
            pending: self.pending,
            fired: entries.live - self.pending,
            entries,
            bytes: entries.bytes + mem::size_of::<[Level; LEVELS]>(),
        }
    }

    /// The deadline of `key` if it names a pending entry.
    fn pending_deadline(&self, key: TimerKey) -> Option<u64> {
        self.entries.get(key).filter(|entry| entry.payload.is_some()).map(|entry| entry.deadline)
    }

    /// The level and slot where an entry due at `deadline` belongs now.
    fn place(&self, deadline: u64) -> (usize, usize) {
        let level = level_for(self.elapsed, deadline);
        (level, slot_for(deadline, level))
    }

    /// Links unlinked entry `key`, due at `deadline`, at the tail of its slot.
    fn link(&mut self, key: TimerKey, deadline: u64) {
        let (level, slot) = self.place(deadline);
        self.levels[level].push_back(slot, key, &mut self.entries);
    }

    /// Unlinks pending entry `key`, due at `deadline`, from its slot.
    fn unlink(&mut self, key: TimerKey, deadline: u64) {
        let (level, slot) = self.place(deadline);
        self.levels[level].unlink(slot, key, &mut self.entries);
    }

    /// The next non-empty slot as (level, slot, first millisecond): the first set bit of the
    /// lowest non-empty level.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        self.levels.iter().enumerate().find_map(|(level, slots)| {
            let slot = slots.first_occupied()?;
            Some((level, slot, slot_start(self.elapsed, level, slot)))
        })
    }
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Wheel<T> {
    /// Shows the clock and counts, not the payloads (so `T` need not be `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("elapsed", &self.elapsed)
            .field("pending", &self.pending)
            .field("fired", &(self.entries.len() - self.pending))
            .field("next_deadline", &self.next_deadline())
            .finish_non_exhaustive()
    }
}
