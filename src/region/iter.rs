//! Iterators over a region's entries, in slot order.
//!
//! Each walks the chunks slot by slot, skips slots that hold no value, and stops as soon as it has
//! yielded every live value, so the untouched tail of the last chunk costs nothing.

use std::fmt;
use std::iter::{Enumerate, Flatten, FusedIterator};
use std::marker::PhantomData;
use std::slice;

use super::pool::{make_key, Slot};
use super::Key;

/// Every slot of a region, numbered, chunk after chunk.
type Slots<'a, V> = Enumerate<Flatten<slice::Iter<'a, Box<[Slot<V>]>>>>;
/// As `Slots`, mutably.
type SlotsMut<'a, V> = Enumerate<Flatten<slice::IterMut<'a, Box<[Slot<V>]>>>>;

/// Iterator over `(key, &value)`, from [`Region::iter`](super::Region::iter).
///
/// # Examples
///
/// ```
/// use omni::region::{DefaultKey, Region};
///
/// let mut region: Region<DefaultKey, u32> = Region::new();
/// region.insert(5);
/// for (key, value) in &region {
///     assert_eq!(region[key], *value);
/// }
/// ```
pub struct Iter<'a, K, V> {
    slots: Slots<'a, V>,
    remaining: usize,
    _key: PhantomData<fn() -> K>,
}

impl<'a, K, V> Iter<'a, K, V> {
    pub(super) fn new(chunks: &'a [Box<[Slot<V>]>], len: usize) -> Self {
        Iter { slots: chunks.iter().flatten().enumerate(), remaining: len, _key: PhantomData }
    }
}

impl<'a, K: Key, V> Iterator for Iter<'a, K, V> {
    type Item = (K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        for (idx, slot) in self.slots.by_ref() {
            if let Slot::Occupied { version, value } = slot {
                self.remaining -= 1;
                return Some((make_key(idx as u32, *version), value));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<K: Key, V> ExactSizeIterator for Iter<'_, K, V> {}
impl<K: Key, V> FusedIterator for Iter<'_, K, V> {}

impl<K, V> Clone for Iter<'_, K, V> {
    fn clone(&self) -> Self {
        Iter { slots: self.slots.clone(), remaining: self.remaining, _key: PhantomData }
    }
}

impl<K, V> fmt::Debug for Iter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("remaining", &self.remaining).finish_non_exhaustive()
    }
}

/// Iterator over `(key, &mut value)`, from [`Region::iter_mut`](super::Region::iter_mut).
///
/// # Examples
///
/// ```
/// use omni::region::{DefaultKey, Region};
///
/// let mut region: Region<DefaultKey, u32> = Region::new();
/// let key = region.insert(5);
/// for (_, value) in &mut region {
///     *value *= 2;
/// }
/// assert_eq!(region[key], 10);
/// ```
pub struct IterMut<'a, K, V> {
    slots: SlotsMut<'a, V>,
    remaining: usize,
    _key: PhantomData<fn() -> K>,
}

impl<'a, K, V> IterMut<'a, K, V> {
    pub(super) fn new(chunks: &'a mut [Box<[Slot<V>]>], len: usize) -> Self {
        IterMut {
            slots: chunks.iter_mut().flatten().enumerate(),
            remaining: len,
            _key: PhantomData,
        }
    }
}

impl<'a, K: Key, V> Iterator for IterMut<'a, K, V> {
    type Item = (K, &'a mut V);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        for (idx, slot) in self.slots.by_ref() {
            if let Slot::Occupied { version, value } = slot {
                self.remaining -= 1;
                return Some((make_key(idx as u32, *version), value));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<K: Key, V> ExactSizeIterator for IterMut<'_, K, V> {}
impl<K: Key, V> FusedIterator for IterMut<'_, K, V> {}

impl<K, V> fmt::Debug for IterMut<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterMut").field("remaining", &self.remaining).finish_non_exhaustive()
    }
}

/// Iterator over keys, from [`Region::keys`](super::Region::keys).
///
/// # Examples
///
/// ```
/// use omni::region::{DefaultKey, Region};
///
/// let mut region: Region<DefaultKey, u32> = Region::new();
/// let key = region.insert(5);
/// assert_eq!(region.keys().next(), Some(key));
/// ```
pub struct Keys<'a, K, V> {
    inner: Iter<'a, K, V>,
}

impl<'a, K, V> Keys<'a, K, V> {
    pub(super) fn new(inner: Iter<'a, K, V>) -> Self {
        Keys { inner }
    }
}

impl<K: Key, V> Iterator for Keys<'_, K, V> {
    type Item = K;

    fn next(&mut self) -> Option<K> {
        self.inner.next().map(|(key, _)| key)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K: Key, V> ExactSizeIterator for Keys<'_, K, V> {}
impl<K: Key, V> FusedIterator for Keys<'_, K, V> {}

impl<K, V> Clone for Keys<'_, K, V> {
    fn clone(&self) -> Self {
        Keys { inner: self.inner.clone() }
    }
}

impl<K, V> fmt::Debug for Keys<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").field("remaining", &self.inner.remaining).finish_non_exhaustive()
    }
}

/// Iterator over values, from [`Region::values`](super::Region::values).
///
/// # Examples
///
/// ```
/// use omni::region::{DefaultKey, Region};
///
/// let mut region: Region<DefaultKey, u32> = Region::new();
/// region.insert(5);
/// assert_eq!(region.values().max(), Some(&5));
/// ```
pub struct Values<'a, K, V> {
    inner: Iter<'a, K, V>,
}

impl<'a, K, V> Values<'a, K, V> {
    pub(super) fn new(inner: Iter<'a, K, V>) -> Self {
        Values { inner }
    }
}

impl<'a, K: Key, V> Iterator for Values<'a, K, V> {
    type Item = &'a V;

    fn next(&mut self) -> Option<&'a V> {
        self.inner.next().map(|(_, value)| value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K: Key, V> ExactSizeIterator for Values<'_, K, V> {}
impl<K: Key, V> FusedIterator for Values<'_, K, V> {}

impl<K, V> Clone for Values<'_, K, V> {
    fn clone(&self) -> Self {
        Values { inner: self.inner.clone() }
    }
}

impl<K, V> fmt::Debug for Values<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values").field("remaining", &self.inner.remaining).finish_non_exhaustive()
    }
}
