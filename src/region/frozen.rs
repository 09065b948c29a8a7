//! Frozen regions: read-only for good, shared between threads by reference count.
//!
//! A [`Frozen`] owns its region behind an `Arc` and only ever hands out shared borrows of it, so
//! no clone can change what another clone reads. `Frozen` dereferences to [`Region`], which gives
//! it every read operation (`get`, `iter`, `len`, `stats`, `transmigrate`, indexing) and none of
//! the writing ones. [`Frozen::thaw`] gives the region back when the caller holds the last clone.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::{Key, Region};

/// A region that can no longer change, shared by cheap clones (see the [module docs](super)).
///
/// It is `Send + Sync` when its values are, so it can be read from many threads at once. Every
/// read operation of [`Region`] works on it through `Deref`.
///
/// # Examples
///
/// ```
/// use omni::region::{DefaultKey, Region};
/// use std::thread;
///
/// let mut region: Region<DefaultKey, String> = Region::new();
/// let hello = region.insert("hello".to_string());
/// let frozen = region.freeze();
///
/// let readers: Vec<_> = (0..4)
///     .map(|_| {
///         let frozen = frozen.clone();
///         thread::spawn(move || frozen[hello].len())
///     })
///     .collect();
/// for reader in readers {
///     assert_eq!(reader.join().unwrap(), 5);
/// }
///
/// // The readers are gone, so the region can be written again.
/// let mut region = frozen.thaw().expect("no other clone is left");
/// region[hello].push_str(", world");
/// ```
pub struct Frozen<K: Key, V> {
    region: Arc<Region<K, V>>,
}

impl<K: Key, V> Region<K, V> {
    /// Freezes the region: it becomes read-only and shareable (see [`Frozen`]). Every key keeps
    /// naming what it named.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let mut region: Region<DefaultKey, u32> = Region::new();
    /// let key = region.insert(7);
    /// let frozen = region.freeze();
    /// assert_eq!(frozen.get(key), Some(&7));
    /// ```
    pub fn freeze(self) -> Frozen<K, V> {
        Frozen { region: Arc::new(self) }
    }
}

impl<K: Key, V> Frozen<K, V> {
    /// Gives the region back, writable, if this is the last clone; otherwise hands `self` back
    /// unchanged, so the caller can try again once the other clones are dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let frozen = Region::<DefaultKey, u32>::new().freeze();
    /// let other = frozen.clone();
    /// let frozen = frozen.thaw().expect_err("`other` still reads it");
    /// drop(other);
    /// assert!(frozen.thaw().is_ok());
    /// ```
    pub fn thaw(self) -> Result<Region<K, V>, Self> {
        Arc::try_unwrap(self.region).map_err(|region| Frozen { region })
    }

    /// How many clones of this frozen region exist, this one included.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let frozen = Region::<DefaultKey, u32>::new().freeze();
    /// let other = frozen.clone();
    /// assert_eq!(frozen.clones(), 2);
    /// drop(other);
    /// assert_eq!(frozen.clones(), 1);
    /// ```
    pub fn clones(&self) -> usize {
        Arc::strong_count(&self.region)
    }

    /// Whether `self` and `other` are clones of one frozen region.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::region::{DefaultKey, Region};
    ///
    /// let a = Region::<DefaultKey, u32>::new().freeze();
    /// let b = Region::<DefaultKey, u32>::new().freeze();
    /// assert!(a.same_region(&a.clone()));
    /// assert!(!a.same_region(&b));
    /// ```
    pub fn same_region(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.region, &other.region)
    }
}

impl<K: Key, V> Clone for Frozen<K, V> {
    fn clone(&self) -> Self {
        Frozen { region: Arc::clone(&self.region) }
    }
}

impl<K: Key, V> Deref for Frozen<K, V> {
    type Target = Region<K, V>;

    fn deref(&self) -> &Region<K, V> {
        &self.region
    }
}

impl<K: Key, V: fmt::Debug> fmt::Debug for Frozen<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Frozen").field(&*self.region).finish()
    }
}
