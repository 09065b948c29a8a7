//! The hooks of an atom: its validator and its watches, replaced as a whole (copy on write) so
//! that a change reads them with one lock-free load and calls them with no lock held.

use std::borrow::Cow;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// A validator: `true` accepts a value.
pub(super) type Validator<T> = Arc<dyn Fn(&T) -> bool + Send + Sync>;

/// A watch: called with the old and the new value of each change.
pub(super) type WatchFn<T> = Arc<dyn Fn(&T, &T) + Send + Sync>;

/// One immutable version of an atom's hooks. Changing them builds a new version.
pub(super) struct Hooks<T> {
    validator: Option<Validator<T>>,
    /// In the order they were added; keys are unique.
    watches: Vec<(Cow<'static, str>, WatchFn<T>)>,
}

impl<T> Hooks<T> {
    pub(super) fn new(validator: Option<Validator<T>>) -> Self {
        Hooks { validator, watches: Vec::new() }
    }

    /// Whether the validator (if any) accepts `value`.
    pub(super) fn accepts(&self, value: &T) -> bool {
        self.validator.as_ref().is_none_or(|v| v(value))
    }

    pub(super) fn has_watches(&self) -> bool {
        !self.watches.is_empty()
    }

    /// A copy with `validator` in place of the current one.
    pub(super) fn with_validator(&self, validator: Option<Validator<T>>) -> Self {
        Hooks { validator, watches: self.watches.clone() }
    }

    /// A copy with `f` watching under `key`, in the place of an earlier watch with that key if
    /// there is one (then the `bool` is `true`).
    pub(super) fn with_watch(&self, key: Cow<'static, str>, f: WatchFn<T>) -> (Self, bool) {
        let mut watches = self.watches.clone();
        let replaced = match watches.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => {
                slot.1 = f;
                true
            }
            None => {
                watches.push((key, f));
                false
            }
        };
        (Hooks { validator: self.validator.clone(), watches }, replaced)
    }

    /// A copy without the watch under `key`, if there is one.
    pub(super) fn without_watch(&self, key: &str) -> Option<Self> {
        let at = self.watches.iter().position(|(k, _)| k == key)?;
        let mut watches = self.watches.clone();
        watches.remove(at);
        Some(Hooks { validator: self.validator.clone(), watches })
    }

    /// Calls every watch once with `old` and `new`, in the order they were added. A panicking
    /// watch does not stop the others: after all have run, the first panic resumes here.
    pub(super) fn notify(&self, old: &T, new: &T) {
        let mut first_panic = None;
        for (_, watch) in &self.watches {
            // Unwind safety: the atom's state is not touched while watches run (the change is
            // already stored), so nothing a watch sees can be left half-updated by another.
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| watch(old, new))) {
                first_panic.get_or_insert(payload);
            }
        }
        if let Some(payload) = first_panic {
            resume_unwind(payload);
        }
    }
}

impl<T> fmt::Debug for Hooks<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("validator", &self.validator.is_some())
            .field("watches", &self.watches.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}
