//! The pool region: chunked slot storage with a free list and generational keys.
//!
//! Storage is a table of heap chunks, `Vec<Box<[Slot<V>]>>`. Chunk `c` holds `16 << c` slots up
//! to 4096, and every chunk after that holds 4096. Doubling keeps a small region small (one value
//! costs 16 slots, not 256) and reaches large sizes in few chunks; the cap bounds the unused tail
//! to 4095 slots and keeps each allocation a modest size. Growing pushes a new chunk and never
//! touches the old ones, and moving the `Region` moves only the chunk table, so a value's address
//! is fixed from insert to removal.
//!
//! Slots `[0, used)` have been handed out at least once; slots past `used` are fresh, vacant at
//! version 0, and not on the free list. The free list threads vacant slots through `next_free`,
//! last freed first, and ends at `NONE`.

use std::fmt;
use std::marker::PhantomData;
use std::mem;
use std::ops::{Index, IndexMut};

use super::iter::{Iter, IterMut, Keys, Values};
use super::{Key, KeyData, RegionStats};

/// End of the free list; also the index of the null key, which is never handed out.
pub(super) const NONE: u32 = u32::MAX;
/// Slots in chunk 0; chunk `c` holds `FIRST_CHUNK << c` until that reaches `MAX_CHUNK`.
const FIRST_CHUNK: usize = 16;
/// Slots in every chunk from `GROW_CHUNKS` on.
const MAX_CHUNK: usize = 4096;
/// Number of doubling chunks: 16, 32, ..., 4096.
const GROW_CHUNKS: usize = 9;
/// Slots in the doubling chunks together: 16 * (2^9 - 1).
const GROW_SLOTS: usize = FIRST_CHUNK * ((1 << GROW_CHUNKS) - 1);

/// One slot. The version is odd in `Occupied` and even in `Vacant`; `Retired` is final.
#[derive(Debug)]
pub(super) enum Slot<V> {
    /// Holds a value; keys with this version find it.
    Occupied { version: u32, value: V },
    /// Empty and on the free list (or fresh, past `used`).
    Vacant { version: u32, next_free: u32 },
    /// Empty for good: its version reached `u32::MAX`.
    Retired,
}

/// A pool region: values in fixed-size slots that never move, addressed by generational keys.
///
/// See the [module docs](super) for the invariants. The key type `K` is usually one made with
/// [`new_key_type!`](super::new_key_type), one per kind of region.
///
/// Slots live in heap chunks of 16, 32, 64, ... 4096 slots, then 4096 each. Doubling keeps a
/// small region small (its first value costs 16 slots) and a large one in few allocations; the
/// cap bounds the unused tail to 4095 slots. Growing adds a chunk and never moves the others, so
/// a value keeps its address from insert to removal, even when the `Region` itself is moved.
/// A lookup is a bounds check, a version compare, and a little arithmetic to find the chunk.
///
/// # Examples
///
/// ```
/// use omni::region::{DefaultKey, Region};
///
/// let mut region: Region<DefaultKey, String> = Region::new();
/// let key = region.insert("hello".to_string());
/// region[key].push_str(", world");
/// assert_eq!(region.get(key).map(String::as_str), Some("hello, world"));
/// assert_eq!(region.remove(key).as_deref(), Some("hello, world"));
/// assert_eq!(region.get(key), None); // the key is stale now
/// ```
pub struct Region<K: Key, V> {
    chunks: Vec<Box<[Slot<V>]>>,
    capacity: usize,
    used: u32,
    free_head: u32,
    len: usize,
    retired: usize,
    _key: PhantomData<fn(K) -> K>,
}

/// Builds the key for slot `idx` at `version`.
pub(super) fn make_key<K: Key>(idx: u32, version: u32) -> K {
    KeyData::from_ffi(u64::from(version) << 32 | u64::from(idx)).into()
}

/// Splits a key into (index, version).
fn split_key<K: Key>(key: K) -> (u32, u32) {
    let ffi = key.data().as_ffi();
    (ffi as u32, (ffi >> 32) as u32)
}

/// Chunk number and offset within the chunk of slot `idx`.
pub(super) fn locate(idx: usize) -> (usize, usize) {
    if idx < GROW_SLOTS {
        // Chunk c starts at 16 * (2^c - 1), so idx + 16 lies in [16 << c, 32 << c).
        let shifted = idx + FIRST_CHUNK;
        let log = shifted.ilog2() as usize;
        (log - FIRST_CHUNK.ilog2() as usize, shifted - (1 << log))
    } else {
        let rest = idx - GROW_SLOTS;
        (GROW_CHUNKS + rest / MAX_CHUNK, rest % MAX_CHUNK)
    }
}

/// Slots in chunk `chunk`.
pub(super) fn chunk_len(chunk: usize) -> usize {
    if chunk < GROW_CHUNKS {
        FIRST_CHUNK << chunk
    } else {
        MAX_CHUNK
    }
}

impl<K: Key, V> Region<K, V> {
    /// Creates an empty region; it allocates nothing until the first insert.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let region: Region<DefaultKey, u8> = Region::new();
    /// assert!(region.is_empty());
    /// assert_eq!(region.capacity(), 0);
    /// ```
    pub fn new() -> Self {
        Region {
            chunks: Vec::new(),
            capacity: 0,
            used: 0,
            free_head: NONE,
            len: 0,
            retired: 0,
            _key: PhantomData,
        }
    }

    /// Creates an empty region with room for at least `capacity` values before it allocates again.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let region: Region<DefaultKey, u8> = Region::with_capacity(100);
    /// assert!(region.capacity() >= 100);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        let mut region = Self::new();
        while region.capacity < capacity.min(NONE as usize) {
            region.add_chunk();
        }
        region
    }

    /// Inserts `value` and returns its key.
    ///
    /// # Panics
    ///
    /// Panics if all `u32::MAX` slot indices are occupied or retired (index `u32::MAX` is the
    /// null key's).
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, char> = Region::new();
    /// let key = region.insert('x');
    /// assert_eq!(region[key], 'x');
    /// ```
    pub fn insert(&mut self, value: V) -> K {
        // `insert_with_key` without the closure: nothing can fail between choosing the slot and
        // filling it, so the slot is found once.
        if self.free_head == NONE {
            assert!(self.used < NONE, "region is full: all u32::MAX slot indices are taken");
            if self.used as usize == self.capacity {
                self.add_chunk();
            }
            let idx = self.used;
            *self.slot_mut(idx) = Slot::Occupied { version: 1, value };
            self.used += 1;
            self.len += 1;
            return make_key(idx, 1);
        }
        let idx = self.free_head;
        let slot = self.slot_mut(idx);
        let Slot::Vacant { version, next_free } = *slot else {
            unreachable!("the free list holds only vacant slots")
        };
        *slot = Slot::Occupied { version: version + 1, value };
        self.free_head = next_free;
        self.len += 1;
        make_key(idx, version + 1)
    }

    /// Inserts the value that `f` builds from the value's own key, and returns that key.
    ///
    /// If `f` panics, the region is left as it was.
    ///
    /// # Panics
    ///
    /// Panics if all `u32::MAX` slot indices are occupied or retired, or if `f` panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, (DefaultKey, &str)> = Region::new();
    /// let key = region.insert_with_key(|me| (me, "knows its key"));
    /// assert_eq!(region[key].0, key);
    /// ```
    pub fn insert_with_key<F: FnOnce(K) -> V>(&mut self, f: F) -> K {
        let (idx, version) = match self.free_head {
            NONE => {
                assert!(self.used < NONE, "region is full: all u32::MAX slot indices are taken");
                if self.used as usize == self.capacity {
                    self.add_chunk();
                }
                (self.used, 1)
            }
            head => match self.slot(head) {
                Slot::Vacant { version, .. } => (head, version + 1),
                _ => unreachable!("the free list holds only vacant slots"),
            },
        };
        let key = make_key(idx, version);
        let value = f(key);
        // Only the capacity can have changed so far; commit the slot now that `f` has returned.
        if idx == self.used {
            self.used += 1;
        } else if let Slot::Vacant { next_free, .. } = *self.slot(idx) {
            self.free_head = next_free;
        }
        *self.slot_mut(idx) = Slot::Occupied { version, value };
        self.len += 1;
        key
    }

    /// Returns a reference to the value of `key`, or `None` if the key is stale, null or from a
    /// region that has not handed it out.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Key, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// let key = region.insert(1);
    /// assert_eq!(region.get(key), Some(&1));
    /// assert_eq!(region.get(DefaultKey::null()), None);
    /// ```
    #[inline]
    pub fn get(&self, key: K) -> Option<&V> {
        let (idx, version) = split_key(key);
        match self.used_slot(idx)? {
            Slot::Occupied { version: v, value } if *v == version => Some(value),
            _ => None,
        }
    }

    /// Returns a mutable reference to the value of `key`, or `None` if the key is stale.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// let key = region.insert(1);
    /// *region.get_mut(key).unwrap() += 1;
    /// assert_eq!(region[key], 2);
    /// ```
    pub fn get_mut(&mut self, key: K) -> Option<&mut V> {
        let (idx, version) = split_key(key);
        self.used_slot(idx)?;
        match self.slot_mut(idx) {
            Slot::Occupied { version: v, value } if *v == version => Some(value),
            _ => None,
        }
    }

    /// Returns whether `key` refers to a value in this region.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// let key = region.insert(1);
    /// assert!(region.contains_key(key));
    /// region.remove(key);
    /// assert!(!region.contains_key(key));
    /// ```
    pub fn contains_key(&self, key: K) -> bool {
        self.get(key).is_some()
    }

    /// Removes the value of `key` and hands it back, or returns `None` if the key is stale.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// let key = region.insert(1);
    /// assert_eq!(region.remove(key), Some(1));
    /// assert_eq!(region.remove(key), None);
    /// ```
    pub fn remove(&mut self, key: K) -> Option<V> {
        let (idx, version) = self.live(key)?;
        let vacated = self.release(idx, version);
        match mem::replace(self.slot_mut(idx), vacated) {
            Slot::Occupied { value, .. } => Some(value),
            _ => unreachable!("`live` checked that the slot is occupied"),
        }
    }

    /// Drops the value of `key` where it lies, without moving it; returns whether there was one.
    ///
    /// This is the removal that [`PinRegion`](super::PinRegion) relies on.
    pub(super) fn delete_in_place(&mut self, key: K) -> bool {
        let Some((idx, version)) = self.live(key) else { return false };
        let vacated = self.release(idx, version);
        // Assigning drops the old value in place; the new slot is written even if that drop
        // unwinds, and the bookkeeping is already done, so a panicking drop leaves no damage.
        *self.slot_mut(idx) = vacated;
        true
    }

    /// Returns the number of values in the region.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// region.insert(1);
    /// assert_eq!(region.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns whether the region holds no values.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let region: Region<DefaultKey, u32> = Region::default();
    /// assert!(region.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns the number of slots allocated, occupied or not.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// region.insert(1);
    /// assert!(region.capacity() >= 1);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Drops every value in place, keeping the slots for reuse. Keys handed out so far go stale.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// let key = region.insert(1);
    /// region.clear();
    /// assert!(region.is_empty());
    /// assert_eq!(region.get(key), None);
    /// ```
    pub fn clear(&mut self) {
        self.retain(|_, _| false);
    }

    /// Keeps the values for which `f` returns `true` and drops the others in place, visiting
    /// values in slot order.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// for n in 0..10 {
    ///     region.insert(n);
    /// }
    /// region.retain(|_, n| {
    ///     *n *= 10;
    ///     *n % 20 == 0
    /// });
    /// assert_eq!(region.values().copied().collect::<Vec<_>>(), [0, 20, 40, 60, 80]);
    /// ```
    pub fn retain<F: FnMut(K, &mut V) -> bool>(&mut self, mut f: F) {
        // Chunk by chunk, so a slot is not located from its index each time (a collector
        // sweeps every slot of its heap this way).
        let Region { chunks, used, free_head, len, retired, .. } = self;
        let mut idx = 0u32;
        for chunk in chunks.iter_mut() {
            for slot in chunk.iter_mut() {
                if idx == *used || *len == 0 {
                    return;
                }
                let i = idx;
                idx += 1;
                let Slot::Occupied { version, value } = slot else { continue };
                let version = *version;
                if f(make_key(i, version), value) {
                    continue;
                }
                // As in `release`, and as in `delete_in_place`: the bookkeeping first, then
                // the value is dropped in place.
                *len -= 1;
                let vacated = if version == u32::MAX {
                    *retired += 1;
                    Slot::Retired
                } else {
                    Slot::Vacant { version: version + 1, next_free: mem::replace(free_head, i) }
                };
                *slot = vacated;
            }
        }
    }

    /// Returns an iterator over keys and values, in slot order.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// let a = region.insert(1);
    /// let b = region.insert(2);
    /// assert_eq!(region.iter().collect::<Vec<_>>(), [(a, &1), (b, &2)]);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter::new(&self.chunks, self.len)
    }

    /// Returns an iterator over keys and mutable values, in slot order.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// let key = region.insert(1);
    /// for (_, value) in region.iter_mut() {
    ///     *value += 1;
    /// }
    /// assert_eq!(region[key], 2);
    /// ```
    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        IterMut::new(&mut self.chunks, self.len)
    }

    /// Returns an iterator over the keys, in slot order.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// let key = region.insert(1);
    /// assert_eq!(region.keys().collect::<Vec<_>>(), [key]);
    /// ```
    pub fn keys(&self) -> Keys<'_, K, V> {
        Keys::new(self.iter())
    }

    /// Returns an iterator over the values, in slot order.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// region.insert(1);
    /// region.insert(2);
    /// assert_eq!(region.values().sum::<u32>(), 3);
    /// ```
    pub fn values(&self) -> Values<'_, K, V> {
        Values::new(self.iter())
    }

    /// Returns how many values, slots and bytes the region holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// region.insert(1);
    /// let stats = region.stats();
    /// assert_eq!((stats.live, stats.slots, stats.retired), (1, region.capacity(), 0));
    /// ```
    pub fn stats(&self) -> RegionStats {
        RegionStats {
            live: self.len,
            slots: self.capacity,
            retired: self.retired,
            bytes: self.capacity * mem::size_of::<Slot<V>>()
                + self.chunks.capacity() * mem::size_of::<Box<[Slot<V>]>>(),
        }
    }

    /// Returns (index, version) of `key` if it names a live value.
    fn live(&self, key: K) -> Option<(u32, u32)> {
        let (idx, version) = split_key(key);
        match self.used_slot(idx)? {
            Slot::Occupied { version: v, .. } if *v == version => Some((idx, version)),
            _ => None,
        }
    }

    /// Books occupied slot `idx` (at `version`) as freed and returns the slot to write over it:
    /// vacant and on the free list, or retired if the version cannot grow further.
    fn release(&mut self, idx: u32, version: u32) -> Slot<V> {
        self.len -= 1;
        if version == u32::MAX {
            self.retired += 1;
            return Slot::Retired;
        }
        let next_free = mem::replace(&mut self.free_head, idx);
        Slot::Vacant { version: version + 1, next_free }
    }

    /// Appends the next chunk of fresh vacant slots.
    fn add_chunk(&mut self) {
        let len = chunk_len(self.chunks.len());
        let chunk = (0..len).map(|_| Slot::Vacant { version: 0, next_free: NONE }).collect();
        self.chunks.push(chunk);
        self.capacity += len;
    }

    /// The slot at `idx` if it has been handed out.
    /// The key of the value in slot `idx`, or `None` if the slot is not occupied. For
    /// structures inside omni that link their values by slot index (4 bytes) instead of by key
    /// (8 bytes) and own every value they link, so an index can never be stale.
    pub(crate) fn key_at(&self, idx: u32) -> Option<K> {
        match self.used_slot(idx)? {
            Slot::Occupied { version, .. } => Some(make_key(idx, *version)),
            _ => None,
        }
    }

    /// The value in slot `idx`, whatever its version (see [`Region::key_at`]).
    pub(crate) fn at_mut(&mut self, idx: u32) -> Option<&mut V> {
        self.used_slot(idx)?;
        match self.slot_mut(idx) {
            Slot::Occupied { value, .. } => Some(value),
            _ => None,
        }
    }

    fn used_slot(&self, idx: u32) -> Option<&Slot<V>> {
        (idx < self.used).then(|| self.slot(idx))
    }

    fn slot(&self, idx: u32) -> &Slot<V> {
        let (chunk, offset) = locate(idx as usize);
        &self.chunks[chunk][offset]
    }

    fn slot_mut(&mut self, idx: u32) -> &mut Slot<V> {
        let (chunk, offset) = locate(idx as usize);
        &mut self.chunks[chunk][offset]
    }

    /// The keys that the next `n` inserts will hand out, in order, without changing anything:
    /// the free list first (last freed first), then fresh slots. Transmigration uses it to know
    /// every copy's key before it builds the copies.
    ///
    /// # Panics
    ///
    /// Panics, as `insert` would, if the region cannot hold `n` more values.
    pub(super) fn next_keys(&self, n: usize) -> Vec<K> {
        let mut keys = Vec::with_capacity(n);
        let mut idx = self.free_head;
        while keys.len() < n && idx != NONE {
            match *self.slot(idx) {
                Slot::Vacant { version, next_free } => {
                    keys.push(make_key(idx, version + 1));
                    idx = next_free;
                }
                _ => unreachable!("the free list holds only vacant slots"),
            }
        }
        let fresh = n - keys.len();
        assert!(
            fresh <= (NONE - self.used) as usize,
            "region is full: all u32::MAX slot indices are taken"
        );
        keys.extend((self.used..).take(fresh).map(|idx| make_key::<K>(idx, 1)));
        keys
    }

    /// Raises every slot on the free list to at least version `version` (rounded down to even),
    /// so that a test or a fuzz target can reach version exhaustion and slot retirement without
    /// 2^31 reuses of one slot. Versions only grow, so no key that was ever handed out can name
    /// a value again; this changes which keys later inserts hand out, nothing else.
    #[doc(hidden)]
    pub fn age_free_slots(&mut self, version: u32) {
        let to = version & !1;
        let mut idx = self.free_head;
        while idx != NONE {
            match self.slot_mut(idx) {
                Slot::Vacant { version, next_free } => {
                    *version = (*version).max(to);
                    idx = *next_free;
                }
                _ => unreachable!("the free list holds only vacant slots"),
            }
        }
    }

    /// Test helper: sets the version of vacant slot `idx`, to reach retirement without 2^31 loops.
    #[cfg(test)]
    pub(super) fn set_vacant_version(&mut self, idx: u32, to: u32) {
        assert!(to % 2 == 0, "vacant versions are even");
        match self.slot_mut(idx) {
            Slot::Vacant { version, .. } => *version = to,
            _ => panic!("slot {idx} is not vacant"),
        }
    }
}

impl<K: Key, V> Default for Region<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Key, V: fmt::Debug> fmt::Debug for Region<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// `region[key]` is [`Region::get`] that panics on a stale key.
///
/// # Panics
///
/// Panics if `key` is stale, null or from another region of the same key type.
///
/// # Examples
///
/// ```should_panic
/// use omni::region::{DefaultKey, Region};
///
/// let mut region: Region<DefaultKey, u32> = Region::new();
/// let key = region.insert(1);
/// assert_eq!(region[key], 1);
/// region.remove(key);
/// let _ = region[key]; // panics: the key is stale
/// ```
impl<K: Key, V> Index<K> for Region<K, V> {
    type Output = V;

    #[track_caller]
    fn index(&self, key: K) -> &V {
        match self.get(key) {
            Some(value) => value,
            None => panic!("region: key {key:?} is stale or from another region"),
        }
    }
}

/// `region[key] = value` is [`Region::get_mut`] that panics on a stale key.
///
/// # Panics
///
/// Panics if `key` is stale, null or from another region of the same key type.
///
/// # Examples
///
/// ```
/// use omni::region::{DefaultKey, Region};
///
/// let mut region: Region<DefaultKey, u32> = Region::new();
/// let key = region.insert(1);
/// region[key] = 2;
/// assert_eq!(region[key], 2);
/// ```
impl<K: Key, V> IndexMut<K> for Region<K, V> {
    #[track_caller]
    fn index_mut(&mut self, key: K) -> &mut V {
        match self.get_mut(key) {
            Some(value) => value,
            None => panic!("region: key {key:?} is stale or from another region"),
        }
    }
}

impl<'a, K: Key, V> IntoIterator for &'a Region<K, V> {
    type Item = (K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<'a, K: Key, V> IntoIterator for &'a mut Region<K, V> {
    type Item = (K, &'a mut V);
    type IntoIter = IterMut<'a, K, V>;

    fn into_iter(self) -> IterMut<'a, K, V> {
        self.iter_mut()
    }
}
