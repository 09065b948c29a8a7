//! `Snapshot`: one value an atom held, kept alive for as long as the snapshot lives.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::Guard;

/// A value that an [`Atom`](super::Atom) held at some moment, read without a lock.
///
/// It dereferences to the value and keeps it alive, as an `Arc<T>` would, however the atom
/// changes meanwhile. Taking one from [`Atom::deref`](super::Atom::deref) usually touches no
/// shared reference count (arc-swap's `Guard` inside): cheap enough for every read. A thread
/// that holds many snapshots at once still gets correct ones, each then costing a reference
/// count increment; for a value to keep for long, [`into_arc`](Snapshot::into_arc) is the
/// plain `Arc`.
///
/// Its identity is what [`Atom::compare_and_set`](super::Atom::compare_and_set) compares.
///
/// # Examples
///
/// ```
/// let atom = omni::Atom::new(vec![1, 2]);
/// let before = atom.deref();
/// atom.swap(|v| [v.as_slice(), &[3]].concat()).unwrap();
/// assert_eq!(*before, [1, 2]); // the snapshot is unaffected by the change
/// assert_eq!(*atom.deref(), [1, 2, 3]);
/// ```
pub struct Snapshot<T>(Guard<Arc<T>>);

impl<T> Snapshot<T> {
    pub(super) fn from_guard(guard: Guard<Arc<T>>) -> Self {
        Snapshot(guard)
    }

    /// The snapshot as the `Arc<T>` it refers to (usually no atomic operation at all).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let atom = omni::Atom::new("hello");
    /// let arc: Arc<&str> = atom.deref().into_arc();
    /// assert_eq!(*arc, "hello");
    /// ```
    pub fn into_arc(self) -> Arc<T> {
        Guard::into_inner(self.0)
    }

    /// Whether two snapshots refer to the same stored value (identity, not equality).
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::atom::Snapshot;
    /// let atom = omni::Atom::new(7);
    /// let a = atom.deref();
    /// assert!(Snapshot::ptr_eq(&a, &atom.deref()));
    /// atom.reset(7).unwrap(); // an equal value, but a new one
    /// assert!(!Snapshot::ptr_eq(&a, &atom.deref()));
    /// ```
    pub fn ptr_eq(this: &Self, other: &Self) -> bool {
        Arc::ptr_eq(&this.0, &other.0)
    }

    /// The `Arc` inside, for arc-swap's identity comparison.
    pub(super) fn as_arc(&self) -> &Arc<T> {
        &self.0
    }
}

impl<T> Deref for Snapshot<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Clone for Snapshot<T> {
    fn clone(&self) -> Self {
        Snapshot(Guard::from_inner(Arc::clone(&self.0)))
    }
}

impl<T> From<Arc<T>> for Snapshot<T> {
    /// A snapshot of `arc`'s value: [`Atom::compare_and_set`](super::Atom::compare_and_set)
    /// treats it as the atom's value if the atom holds this very `Arc`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let atom = omni::Atom::new(1);
    /// let arc = atom.deref().into_arc();
    /// atom.compare_and_set(&arc.into(), 2).unwrap();
    /// assert_eq!(*atom.deref(), 2);
    /// ```
    fn from(arc: Arc<T>) -> Self {
        Snapshot(Guard::from_inner(arc))
    }
}

impl<T> AsRef<T> for Snapshot<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: fmt::Debug> fmt::Debug for Snapshot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: fmt::Display> fmt::Display for Snapshot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
