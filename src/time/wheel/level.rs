//! One level of the wheel: 64 slots, each an intrusive FIFO list of entries, and a bitmap of the
//! slots that are not empty. Also the arithmetic that maps a deadline to its level and slot.
//!
//! The lists are threaded through the entries themselves (`Entry::prev` / `Entry::next`, as slot
//! indices of the entry region), so a slot costs two indices and linking or unlinking an entry
//! touches at most its two neighbours: O(1), no allocation.

use std::fmt;

use super::{Entries, TimerKey};
use crate::region::Key;

/// The "no entry" link.
pub(super) const NIL: u32 = u32::MAX;

/// The region slot index of `key`.
fn index(key: TimerKey) -> u32 {
    key.data().as_ffi() as u32
}

/// The entry at slot index `idx`, which the wheel linked and therefore owns.
fn at<T>(entries: &mut Entries<T>, idx: u32) -> &mut super::Entry<T> {
    entries.at_mut(idx).expect("a linked entry is in the region")
}

/// Bits of a deadline that one level resolves.
pub(super) const SLOT_BITS: u32 = 6;
/// Slots per level.
pub(super) const SLOTS: usize = 1 << SLOT_BITS;
/// Levels: enough 6-bit digits to cover all 64 bits of a `u64` deadline (the top level uses only
/// its first 16 slots). With this many levels no deadline is out of range, so the wheel needs no
/// overflow list and never wraps a slot.
pub(super) const LEVELS: usize = 64_usize.div_ceil(SLOT_BITS as usize);

/// The level of an entry due at `deadline` while the wheel stands at `elapsed`: the 6-bit digit
/// of the highest bit in which the two differ (level 0 if they differ only in the lowest digit or
/// not at all).
pub(super) fn level_for(elapsed: u64, deadline: u64) -> usize {
    debug_assert!(deadline >= elapsed, "a pending deadline is never behind the wheel");
    let masked = (elapsed ^ deadline) | (SLOTS as u64 - 1);
    let top_bit = u64::BITS - 1 - masked.leading_zeros();
    (top_bit / SLOT_BITS) as usize
}

/// The slot of `deadline` at `level`: its 6-bit digit number `level`.
pub(super) fn slot_for(deadline: u64, level: usize) -> usize {
    ((deadline >> (level as u32 * SLOT_BITS)) & (SLOTS as u64 - 1)) as usize
}

/// The first millisecond covered by `slot` of `level`, in the turn of that level that holds
/// `elapsed`. A slot of level `l` spans `64^l` ms and a turn of the level spans `64^(l+1)` ms;
/// for the top level the turn is all of `u64`, so the arithmetic never overflows.
pub(super) fn slot_start(elapsed: u64, level: usize, slot: usize) -> u64 {
    let slot_bits = level as u32 * SLOT_BITS;
    let turn_bits = slot_bits + SLOT_BITS;
    let turn_start = if turn_bits >= u64::BITS { 0 } else { elapsed & !((1 << turn_bits) - 1) };
    turn_start + ((slot as u64) << slot_bits)
}

/// Head and tail of one slot's list (slot indices); both `NIL` when the slot is empty.
#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

/// One level: its slots and the bitmap of the non-empty ones (bit `s` set iff slot `s` has an
/// entry).
pub(super) struct Level {
    occupied: u64,
    slots: [List; SLOTS],
}

impl Level {
    /// An empty level.
    pub(super) const fn new() -> Level {
        Level { occupied: 0, slots: [List { head: NIL, tail: NIL }; SLOTS] }
    }

    /// The lowest non-empty slot. The wheel keeps every entry of a level at or after the slot
    /// that holds `elapsed`, so the lowest one is also the next one due.
    pub(super) fn first_occupied(&self) -> Option<usize> {
        (self.occupied != 0).then(|| self.occupied.trailing_zeros() as usize)
    }

    /// Appends `key` to the tail of `slot`. The entry must be unlinked.
    pub(super) fn push_back<T>(&mut self, slot: usize, key: TimerKey, entries: &mut Entries<T>) {
        let idx = index(key);
        let list = &mut self.slots[slot];
        let entry = &mut entries[key];
        debug_assert!(entry.prev == NIL && entry.next == NIL, "entry linked twice");
        entry.prev = list.tail;
        match std::mem::replace(&mut list.tail, idx) {
            NIL => {
                list.head = idx;
                self.occupied |= 1 << slot;
            }
            tail => at(entries, tail).next = idx,
        }
    }

    /// Unlinks and returns the head of `slot`, or `None` if the slot is empty.
    pub(super) fn pop_front<T>(
        &mut self,
        slot: usize,
        entries: &mut Entries<T>,
    ) -> Option<TimerKey> {
        let head = self.slots[slot].head;
        if head == NIL {
            return None;
        }
        let key = entries.key_at(head).expect("a linked entry is in the region");
        self.unlink(slot, key, entries);
        Some(key)
    }

    /// Unlinks `key`, which must be in `slot`'s list.
    pub(super) fn unlink<T>(&mut self, slot: usize, key: TimerKey, entries: &mut Entries<T>) {
        let idx = index(key);
        let entry = &mut entries[key];
        let (prev, next) =
            (std::mem::replace(&mut entry.prev, NIL), std::mem::replace(&mut entry.next, NIL));
        let list = &mut self.slots[slot];
        match prev {
            NIL => {
                debug_assert_eq!(list.head, idx, "entry unlinked from the wrong slot");
                list.head = next;
            }
            prev => at(entries, prev).next = next,
        }
        let list = &mut self.slots[slot];
        match next {
            NIL => {
                debug_assert_eq!(list.tail, idx, "entry unlinked from the wrong slot");
                list.tail = prev;
            }
            next => at(entries, next).prev = prev,
        }
        if self.slots[slot].head == NIL {
            self.occupied &= !(1 << slot);
        }
    }
}

impl fmt::Debug for Level {
    /// Shows the occupancy bitmap only; the lists are in the entry region.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Level").field("occupied", &format_args!("{:#066b}", self.occupied)).finish()
    }
}
