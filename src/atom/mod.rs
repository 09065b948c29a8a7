//! Atoms: one shared value that OS threads and green tasks read without locks and change
//! atomically, with Clojure's semantics.
//!
//! An [`Atom<T>`] holds an immutable `T` behind an atomic pointer. Reading it
//! ([`deref`](Atom::deref)) takes a [`Snapshot`] of the current value; changing it replaces the
//! value as a whole: [`reset`](Atom::reset) stores a value, [`swap`](Atom::swap) stores
//! `f(current)` and retries when another change came in between, and
//! [`compare_and_set`](Atom::compare_and_set) stores a value only if the atom still holds a
//! given snapshot. A *validator* can refuse values; *watches* hear about every change.
//!
//! Nothing here blocks or suspends, so the same atom serves OS threads and green tasks alike:
//! reads never wait for writers, a writer never waits for a lock (under contention `swap` only
//! retries), and no lock is held while user code (a `swap` function, the validator, a watch)
//! runs, so all of them may use the atom themselves.
//!
//! # Invariants
//!
//! - A change stores exactly one new value. The old value it reports is the value it
//!   replaced, so the old/new pairs of all changes chain into the atom's history: no update is
//!   lost and none is seen twice.
//! - Every watch whose `add_watch` returned before a change began is called exactly once for
//!   that change, on the changing thread, with that change's old and new values, before the
//!   changing call returns. (A change racing `add_watch` or `remove_watch` may or may not call
//!   that watch.) An operation that stores nothing (refused by the validator, or a failed
//!   `compare_and_set`) calls no watch and changes nothing.
//! - Whatever is not stored is handed back: [`ValidationError`] and [`CasError`] carry the
//!   refused value, [`SetValidatorError`] the refused validator.
//! - Identity, not equality, decides `compare_and_set`, as in Clojure. A snapshot keeps its
//!   value alive, so the value's address cannot be reused while it can be compared against:
//!   there is no ABA problem.
//! - A panic in user code leaves the atom consistent: a panicking `swap` function or
//!   validator stores nothing, and a panicking watch runs after its change was stored (the
//!   other watches still run; then the panic resumes in the changing call).
//!
//! # Why arc-swap
//!
//! The value lives in an [`arc_swap::ArcSwap`]: an atomic `Arc` whose loads usually touch no
//! shared reference count (a per-thread "debt" slot protects the pointer instead), so readers
//! on many threads do not contend on one cache line, and old values are freed as soon as the
//! last snapshot drops. Its compare-and-swap takes the expected pointer, which is exactly
//! Clojure's identity comparison. Doing the same by hand means writing memory reclamation
//! (epochs or hazard pointers) in `unsafe` code with a loom model; with arc-swap this module has
//! no `unsafe` at all.
//!
//! The price is on the write side. `cargo bench --bench atom` compares it with an
//! `RwLock<Arc<T>>` and a `Mutex<Arc<T>>` (2-core development machine): a `deref` costs about
//! 0.7x an uncontended lock-and-clone, and stays cheap when other threads read or write at the
//! same time (where the locks' cost grows several-fold), but an uncontended `swap` costs about
//! 4 to 5x a locked store, because arc-swap's compare-and-swap must settle the readers'
//! debts. Atoms are for state that is read far more often than it changes, as in Clojure.
//!
//! The validator and the watches sit in a second `ArcSwap`, replaced as a whole when they
//! change (copy on write), so a change reads them without a lock too; an atom that never had
//! a hook skips even that load.

mod error;
mod hooks;
mod snapshot;

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

pub use error::{CasError, SetValidatorError, ValidationError};
pub use snapshot::Snapshot;

use hooks::{Hooks, Validator, WatchFn};

/// A shared value that threads and tasks read without locks and change atomically: Clojure's
/// atom.
///
/// Share it as `Arc<Atom<T>>`. What it guarantees:
///
/// - A change stores exactly one value, and the old value it reports (to watches, and from
///   [`reset`](Atom::reset)) is exactly the one it replaced: no update is lost.
/// - Each watch is called exactly once per change; refused and failed operations store
///   nothing, call no watch, and hand the value back in their error.
/// - Reads never lock, writes never block (contended `swap`s retry), and no lock is held
///   while a `swap` function, the validator or a watch runs: they may use the atom too.
/// - A panic in user code leaves the atom consistent (see each method's `# Panics`).
///
/// A note on method lookup: `Atom` does not implement [`std::ops::Deref`], but `Arc` does, so
/// with that trait imported `arc.deref()` on an `Arc<Atom<T>>` means the `Arc`'s; write
/// `Atom::deref(&arc)` there.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// let hits = Arc::new(omni::Atom::new(0u64));
/// let threads: Vec<_> = (0..4)
///     .map(|_| {
///         let hits = Arc::clone(&hits);
///         std::thread::spawn(move || {
///             for _ in 0..1000 {
///                 hits.swap(|n| n + 1).unwrap();
///             }
///         })
///     })
///     .collect();
/// for t in threads {
///     t.join().unwrap();
/// }
/// assert_eq!(*hits.deref(), 4000);
/// ```
pub struct Atom<T> {
    value: ArcSwap<T>,
    hooks: ArcSwap<Hooks<T>>,
    /// Whether a validator or a watch was ever installed. Until then changes skip loading
    /// `hooks`, which costs about as much as a read. Set (release) after the first hook is
    /// stored and before that call returns, read with acquire, never cleared: a change that
    /// starts after a hook was installed sees the flag and so the hook.
    hooked: AtomicBool,
}

impl<T> Atom<T> {
    /// An atom holding `value`, with no validator and no watches.
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::new("ready");
    /// assert_eq!(*atom.deref(), "ready");
    /// ```
    pub fn new(value: T) -> Self {
        Atom::with_hooks(value, Hooks::new(None), false)
    }

    /// An atom holding `value`, whose changes must satisfy `validator` (it returns `true` for an
    /// acceptable value); see [`set_validator`](Atom::set_validator).
    ///
    /// # Errors
    ///
    /// [`ValidationError`] with `value` if `validator` refuses it.
    ///
    /// # Panics
    ///
    /// If `validator` panics.
    ///
    /// # Examples
    ///
    /// ```
    /// let even = |n: &u32| n % 2 == 0;
    /// let atom = omni::Atom::with_validator(2, even).unwrap();
    /// assert!(atom.reset(3).is_err());
    /// assert_eq!(omni::Atom::with_validator(1, even).unwrap_err().0, 1);
    /// ```
    pub fn with_validator<F>(value: T, validator: F) -> Result<Self, ValidationError<T>>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        if !validator(&value) {
            return Err(ValidationError(value));
        }
        let validator: Validator<T> = Arc::new(validator);
        Ok(Atom::with_hooks(value, Hooks::new(Some(validator)), true))
    }

    fn with_hooks(value: T, hooks: Hooks<T>, hooked: bool) -> Self {
        Atom {
            value: ArcSwap::from_pointee(value),
            hooks: ArcSwap::from_pointee(hooks),
            hooked: AtomicBool::new(hooked),
        }
    }

    /// A snapshot of the current value. It takes no lock and does not wait for writers; the
    /// snapshot stays valid (and unchanged) however the atom changes afterwards.
    ///
    /// Named after Clojure's `deref`; this is not [`std::ops::Deref`], which could only lend
    /// a reference tied to the atom, not a value that outlives the next change.
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::new(String::from("a"));
    /// let snap = atom.deref();
    /// atom.reset(String::from("b")).unwrap();
    /// assert_eq!((snap.as_str(), atom.deref().as_str()), ("a", "b"));
    /// ```
    #[allow(clippy::should_implement_trait)] // the seeds' name; it returns a value, not a borrow
    pub fn deref(&self) -> Snapshot<T> {
        Snapshot::from_guard(self.value.load())
    }

    /// Stores `value` whatever the atom holds, and returns the value it replaced.
    ///
    /// The returned snapshot is the exact value replaced (the one this change's watches see as
    /// old), which is otherwise lost to the caller.
    ///
    /// # Errors
    ///
    /// [`ValidationError`] with `value` if the validator refuses it; the atom is unchanged and
    /// no watch is called.
    ///
    /// # Panics
    ///
    /// If the validator panics (nothing is stored), or if a watch panics (the value is stored
    /// and every other watch has run; the first watch panic resumes here).
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::new(1);
    /// let old = atom.reset(2).unwrap();
    /// assert_eq!((*old, *atom.deref()), (1, 2));
    /// ```
    pub fn reset(&self, value: T) -> Result<Snapshot<T>, ValidationError<T>> {
        if !self.accepts(&value) {
            return Err(ValidationError(value));
        }
        let new = Arc::new(value);
        let old = self.value.swap(Arc::clone(&new));
        self.changed(&old, &new);
        Ok(Snapshot::from(old))
    }

    /// Stores `f(current)` atomically and returns the stored value.
    ///
    /// If another change lands between reading the current value and storing `f`'s result,
    /// the result is dropped and `f` runs again on the newer value, so **`f` may run several
    /// times** under contention and should have no side effects. Only the last run's result
    /// is stored, and it is returned, since the caller cannot tell which run won.
    ///
    /// # Errors
    ///
    /// [`ValidationError`] with `f`'s result if the validator refuses it; the atom is
    /// unchanged, no watch is called, and `f` is not retried.
    ///
    /// # Panics
    ///
    /// If `f` or the validator panics (nothing is stored), or if a watch panics (the value is
    /// stored and every other watch has run; the first watch panic resumes here).
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::new(vec!["a"]);
    /// let now = atom.swap(|v| {
    ///     let mut v = v.clone();
    ///     v.push("b");
    ///     v
    /// });
    /// assert_eq!(*now.unwrap(), ["a", "b"]);
    /// ```
    pub fn swap<F>(&self, mut f: F) -> Result<Snapshot<T>, ValidationError<T>>
    where
        F: FnMut(&T) -> T,
    {
        let mut current = self.value.load();
        loop {
            let value = f(&current);
            if !self.accepts(&value) {
                return Err(ValidationError(value));
            }
            let new = Arc::new(value);
            let previous = self.value.compare_and_swap(&current, Arc::clone(&new));
            if Arc::ptr_eq(&previous, &current) {
                self.changed(&current, &new);
                return Ok(Snapshot::from(new));
            }
            current = previous;
        }
    }

    /// Stores `new` if the atom still holds the value of `expected` (the same value, by
    /// identity, not merely an equal one), as Clojure's `compare-and-set!`.
    ///
    /// # Errors
    ///
    /// [`CasError::Invalid`] with `new` if the validator refuses it (checked first), and
    /// [`CasError::Changed`] with `new` if the atom holds another value; either way nothing is
    /// stored and no watch is called.
    ///
    /// # Panics
    ///
    /// If the validator panics (nothing is stored), or if a watch panics (the value is stored
    /// and every other watch has run; the first watch panic resumes here).
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::new(10);
    /// let seen = atom.deref();
    /// atom.compare_and_set(&seen, 11).unwrap();
    /// // `seen` is no longer current, even if the atom gets an equal value back.
    /// atom.reset(10).unwrap();
    /// assert_eq!(atom.compare_and_set(&seen, 12).unwrap_err().into_inner(), 12);
    /// assert_eq!(*atom.deref(), 10);
    /// ```
    pub fn compare_and_set(&self, expected: &Snapshot<T>, new: T) -> Result<(), CasError<T>> {
        if !self.accepts(&new) {
            return Err(CasError::Invalid(new));
        }
        let new = Arc::new(new);
        let previous = self.value.compare_and_swap(expected.as_arc(), Arc::clone(&new));
        if !Arc::ptr_eq(&previous, expected.as_arc()) {
            // The clone given to arc-swap was dropped unstored, so `new` is the only owner.
            let new = Arc::into_inner(new).expect("an Arc that was never stored has one owner");
            return Err(CasError::Changed(new));
        }
        self.changed(&previous, &new);
        Ok(())
    }

    /// Installs `validator`, in place of any earlier one: from now on every change must
    /// satisfy it (it returns `true` for an acceptable value). It is called before each store,
    /// on the changing thread, with no lock held.
    ///
    /// The validator is checked against the current value first. A change that read the old
    /// validator before this call may still store a value the new one refuses: install
    /// validators before sharing the atom (or with [`with_validator`](Atom::with_validator))
    /// when that matters.
    ///
    /// # Errors
    ///
    /// [`SetValidatorError`] with `validator` if it refuses the current value; the old
    /// validator stays.
    ///
    /// # Panics
    ///
    /// If `validator` panics on the current value (it is not installed).
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::new(5);
    /// atom.set_validator(|n: &i32| *n < 10).unwrap();
    /// assert_eq!(atom.reset(50).unwrap_err().0, 50);
    /// assert!(atom.set_validator(|n: &i32| *n > 5).is_err()); // 5 itself fails it
    /// ```
    pub fn set_validator<F>(&self, validator: F) -> Result<(), SetValidatorError<F>>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        if !validator(&self.value.load()) {
            return Err(SetValidatorError(validator));
        }
        let validator: Validator<T> = Arc::new(validator);
        self.hooks.rcu(|h| h.with_validator(Some(Arc::clone(&validator))));
        self.hooked.store(true, Ordering::Release);
        Ok(())
    }

    /// Removes the validator, if any: every value is accepted from now on.
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::with_validator(1, |n: &i32| *n > 0).unwrap();
    /// atom.clear_validator();
    /// atom.reset(-1).unwrap();
    /// ```
    pub fn clear_validator(&self) {
        self.hooks.rcu(|h| h.with_validator(None));
    }

    /// Calls `watch(old, new)` after every change from now on, once per change, under `key`;
    /// a watch already under `key` is replaced (then this returns `true`).
    ///
    /// Watches run on the thread that made the change, in the order they were added, after the
    /// new value is stored and before the changing call returns, with no lock held. They
    /// should be quick. Concurrent changes may call them in either order, but each call's
    /// `old` is exactly the value that change replaced.
    ///
    /// A watch may change the atom: that is a new change, whose watches run at once, nested in
    /// the current call, before the current change's remaining watches (so those may see the
    /// nested change first). A watch that changes the atom on every call recurses without end.
    ///
    /// A watch is guaranteed every change stored after `add_watch` returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let atom = omni::Atom::new(0);
    /// let sink = Arc::clone(&log);
    /// atom.add_watch("log", move |old: &i32, new: &i32| sink.lock().unwrap().push((*old, *new)));
    /// atom.reset(1).unwrap();
    /// atom.swap(|n| n * 10).unwrap();
    /// assert_eq!(*log.lock().unwrap(), [(0, 1), (1, 10)]);
    /// ```
    pub fn add_watch<F>(&self, key: impl Into<Cow<'static, str>>, watch: F) -> bool
    where
        F: Fn(&T, &T) + Send + Sync + 'static,
    {
        let key = key.into();
        let watch: WatchFn<T> = Arc::new(watch);
        let mut replaced = false;
        self.hooks.rcu(|h| {
            let (next, r) = h.with_watch(key.clone(), Arc::clone(&watch));
            replaced = r;
            next
        });
        self.hooked.store(true, Ordering::Release);
        replaced
    }

    /// Removes the watch under `key`; returns whether there was one.
    ///
    /// A change stored concurrently with this call may still call the watch once.
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::new(0);
    /// atom.add_watch("w", |_: &i32, _: &i32| panic!("removed watches are not called"));
    /// assert!(atom.remove_watch("w"));
    /// assert!(!atom.remove_watch("w"));
    /// atom.reset(1).unwrap();
    /// ```
    pub fn remove_watch(&self, key: &str) -> bool {
        let mut removed = false;
        self.hooks.rcu(|h| {
            let next = h.without_watch(key);
            removed = next.is_some();
            next.map_or_else(|| Arc::clone(h), Arc::new)
        });
        removed
    }

    /// The current value, consuming the atom.
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::new([1, 2]);
    /// atom.reset([3, 4]).unwrap();
    /// assert_eq!(*atom.into_inner(), [3, 4]);
    /// ```
    pub fn into_inner(self) -> Arc<T> {
        self.value.into_inner()
    }

    /// Whether the validator in force (if any) accepts `value`.
    fn accepts(&self, value: &T) -> bool {
        !self.hooked.load(Ordering::Acquire) || self.hooks.load().accepts(value)
    }

    /// Runs the watches for a change from `old` to `new` that has just been stored.
    fn changed(&self, old: &T, new: &T) {
        if self.hooked.load(Ordering::Acquire) {
            let hooks = self.hooks.load();
            if hooks.has_watches() {
                hooks.notify(old, new);
            }
        }
    }
}

impl<T: Default> Default for Atom<T> {
    /// An atom holding `T::default()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let atom: omni::Atom<Vec<u8>> = Default::default();
    /// assert!(atom.deref().is_empty());
    /// ```
    fn default() -> Self {
        Atom::new(T::default())
    }
}

impl<T> From<T> for Atom<T> {
    /// An atom holding `value`, as [`Atom::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::from('x');
    /// assert_eq!(*atom.deref(), 'x');
    /// ```
    fn from(value: T) -> Self {
        Atom::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Atom<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Atom")
            .field("value", &**self.value.load())
            .field("hooks", &**self.hooks.load())
            .finish()
    }
}

#[cfg(test)]
mod tests;
