//! The pinned region: the pool's storage, with an API that never moves a value once inserted.

use std::fmt;
use std::pin::Pin;

use super::{Key, Region, RegionStats};

/// A region whose values are pinned from insert until they are dropped in place.
///
/// Use it for values that must not move: futures polled in their slot, nodes that other values
/// point into. It wraps a [`Region`] and offers only operations that keep values where they are,
/// so [`get_pin_mut`](Self::get_pin_mut) can hand out `Pin<&mut V>` for any `V`, `!Unpin`
/// included.
///
/// Why this is sound, point by point against the `Pin` contract (a pinned value must stay at its
/// address until its destructor has run):
///
/// - Slots never move. They live in heap chunks that are never reallocated; growing the region
///   adds a chunk, and moving the `PinRegion` itself moves only the table of chunk pointers.
/// - No API moves a value out. There is no by-value removal, no `&mut V`, no iterator over
///   `&mut V`, and the inner `Region` is private; values go in by value once, before any pin
///   exists.
/// - A value is dropped in place before its slot is reused or freed: [`delete`](Self::delete)
///   and dropping the region run the destructor where the value lies, and only then can an insert
///   write the slot again or the chunk be deallocated. Leaking the region (`mem::forget`) leaks
///   the chunks too, so their memory is never reused.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::marker::PhantomPinned;
/// use std::pin::Pin;
/// use omni::region::{DefaultKey, PinRegion};
///
/// struct Pinned {
///     count: Cell<u32>,
///     _pin: PhantomPinned,
/// }
///
/// let mut region: PinRegion<DefaultKey, Pinned> = PinRegion::new();
/// let key = region.insert(Pinned { count: Cell::new(0), _pin: PhantomPinned });
/// let pinned: Pin<&mut Pinned> = region.get_pin_mut(key).unwrap();
/// pinned.count.set(1);
/// assert_eq!(region.get(key).unwrap().count.get(), 1);
/// assert!(region.delete(key));
/// assert!(region.get(key).is_none());
/// ```
pub struct PinRegion<K: Key, V> {
    region: Region<K, V>,
}

impl<K: Key, V> PinRegion<K, V> {
    /// Creates an empty pinned region; it allocates nothing until the first insert.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, PinRegion};
    ///
    /// let region: PinRegion<DefaultKey, u8> = PinRegion::new();
    /// assert!(region.is_empty());
    /// ```
    pub fn new() -> Self {
        PinRegion { region: Region::new() }
    }

    /// Creates an empty pinned region with room for at least `capacity` values.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, PinRegion};
    ///
    /// let region: PinRegion<DefaultKey, u8> = PinRegion::with_capacity(10);
    /// assert!(region.stats().slots >= 10);
    /// ```
    pub fn with_capacity(capacity: usize) -> Self {
        PinRegion { region: Region::with_capacity(capacity) }
    }

    /// Moves `value` into a slot, where it stays until deleted, and returns its key.
    ///
    /// # Panics
    ///
    /// Panics if all `u32::MAX` slot indices are occupied or retired.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, PinRegion};
    ///
    /// let mut region: PinRegion<DefaultKey, &str> = PinRegion::new();
    /// let key = region.insert("stays put");
    /// assert_eq!(region.get(key), Some(&"stays put"));
    /// ```
    pub fn insert(&mut self, value: V) -> K {
        self.region.insert(value)
    }

    /// Moves the value that `f` builds from its own key into a slot, and returns that key.
    ///
    /// # Panics
    ///
    /// Panics if the region is full (as [`insert`](Self::insert)) or if `f` panics; in the
    /// latter case the region is left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, PinRegion};
    ///
    /// let mut region: PinRegion<DefaultKey, DefaultKey> = PinRegion::new();
    /// let key = region.insert_with_key(|me| me);
    /// assert_eq!(region.get(key), Some(&key));
    /// ```
    pub fn insert_with_key<F: FnOnce(K) -> V>(&mut self, f: F) -> K {
        self.region.insert_with_key(f)
    }

    /// Returns a shared reference to the value of `key`, or `None` if the key is stale.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, PinRegion};
    ///
    /// let mut region: PinRegion<DefaultKey, u32> = PinRegion::new();
    /// let key = region.insert(3);
    /// assert_eq!(region.get(key), Some(&3));
    /// ```
    pub fn get(&self, key: K) -> Option<&V> {
        self.region.get(key)
    }

    /// Returns the value of `key` pinned for mutation, or `None` if the key is stale.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::Future;
    /// use std::task::{Context, Poll, Waker};
    /// use omni::region::{DefaultKey, PinRegion};
    ///
    /// let mut futures: PinRegion<DefaultKey, _> = PinRegion::new();
    /// let key = futures.insert(async { 7 });
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let poll = futures.get_pin_mut(key).unwrap().poll(&mut cx);
    /// assert_eq!(poll, Poll::Ready(7));
    /// ```
    pub fn get_pin_mut(&mut self, key: K) -> Option<Pin<&mut V>> {
        let value = self.region.get_mut(key)?;
        // SAFETY: the `Pin` contract, per the type's docs: (1) `value` lies in a slot of a heap
        // chunk that is never reallocated or freed while the value lives; (2) no method of
        // `PinRegion` moves a value or hands out `&mut V`, and this `&mut V` goes straight into
        // the `Pin`; (3) the value is dropped in place before its slot is rewritten or freed:
        // `delete` assigns a vacant slot over it (the assignment runs the destructor in place, and
        // writes the slot even if that unwinds), and dropping the region drops each chunk's slots
        // in place.
        Some(unsafe { Pin::new_unchecked(value) })
    }

    /// Returns whether `key` refers to a value in this region.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, PinRegion};
    ///
    /// let mut region: PinRegion<DefaultKey, u32> = PinRegion::new();
    /// let key = region.insert(3);
    /// assert!(region.contains_key(key));
    /// ```
    pub fn contains_key(&self, key: K) -> bool {
        self.region.contains_key(key)
    }

    /// Drops the value of `key` in place and frees its slot; returns whether there was a value.
    ///
    /// There is no by-value removal: a pinned value is never moved out.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, PinRegion};
    ///
    /// let mut region: PinRegion<DefaultKey, String> = PinRegion::new();
    /// let key = region.insert("bye".to_string());
    /// assert!(region.delete(key));
    /// assert!(!region.delete(key)); // stale now
    /// ```
    pub fn delete(&mut self, key: K) -> bool {
        self.region.delete_in_place(key)
    }

    /// Returns the number of values in the region.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, PinRegion};
    ///
    /// let mut region: PinRegion<DefaultKey, u32> = PinRegion::new();
    /// region.insert(1);
    /// assert_eq!(region.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Returns whether the region holds no values.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, PinRegion};
    ///
    /// let region: PinRegion<DefaultKey, u32> = PinRegion::default();
    /// assert!(region.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.region.is_empty()
    }

    /// Returns how many values, slots and bytes the region holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, PinRegion};
    ///
    /// let mut region: PinRegion<DefaultKey, u32> = PinRegion::new();
    /// region.insert(1);
    /// assert_eq!(region.stats().live, 1);
    /// ```
    pub fn stats(&self) -> RegionStats {
        self.region.stats()
    }
}

impl<K: Key, V> Default for PinRegion<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Key, V: fmt::Debug> fmt::Debug for PinRegion<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.region.fmt(f)
    }
}
