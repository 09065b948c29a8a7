//! The errors of [`Atom`](super::Atom): each hands back what was refused, so nothing is lost.

use std::error::Error;
use std::fmt;

/// The atom's validator refused a new value: the atom is unchanged and the value is handed back.
///
/// Returned by [`Atom::reset`](super::Atom::reset), [`Atom::swap`](super::Atom::swap) and
/// [`Atom::with_validator`](super::Atom::with_validator).
///
/// # Examples
///
/// ```
/// let atom = omni::Atom::with_validator(1, |v: &i32| *v > 0).unwrap();
/// let err = atom.reset(-5).unwrap_err();
/// assert_eq!(err.0, -5);
/// assert_eq!(*atom.deref(), 1);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ValidationError<T>(pub T);

impl<T> ValidationError<T> {
    /// The refused value.
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::with_validator(String::new(), |s: &String| s.len() < 4).unwrap();
    /// let back = atom.reset("too long".to_string()).unwrap_err().into_inner();
    /// assert_eq!(back, "too long");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for ValidationError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationError").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for ValidationError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the atom's validator refused the new value")
    }
}

impl<T> Error for ValidationError<T> {}

/// Why [`Atom::compare_and_set`](super::Atom::compare_and_set) stored nothing; either way the
/// new value is handed back.
///
/// # Examples
///
/// ```
/// use omni::{atom::CasError, Atom};
///
/// let atom = Atom::new(1);
/// let stale = atom.deref();
/// atom.reset(2).unwrap();
/// match atom.compare_and_set(&stale, 3) {
///     Err(CasError::Changed(v)) => assert_eq!(v, 3),
///     other => panic!("expected Changed, got {other:?}"),
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CasError<T> {
    /// The atom no longer holds the expected value (another change came first).
    Changed(T),
    /// The validator refused the new value.
    Invalid(T),
}

impl<T> CasError<T> {
    /// The value that was not stored.
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::with_validator(0, |v: &i32| *v >= 0).unwrap();
    /// let now = atom.deref();
    /// assert_eq!(atom.compare_and_set(&now, -1).unwrap_err().into_inner(), -1);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            CasError::Changed(v) | CasError::Invalid(v) => v,
        }
    }
}

impl<T> fmt::Debug for CasError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CasError::Changed(_) => f.write_str("Changed(..)"),
            CasError::Invalid(_) => f.write_str("Invalid(..)"),
        }
    }
}

impl<T> fmt::Display for CasError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CasError::Changed(_) => f.write_str("the atom no longer holds the expected value"),
            CasError::Invalid(_) => f.write_str("the atom's validator refused the new value"),
        }
    }
}

impl<T> Error for CasError<T> {}

/// [`Atom::set_validator`](super::Atom::set_validator) refused to install a validator that
/// rejects the atom's current value; the validator is handed back and the old one stays.
///
/// # Examples
///
/// ```
/// let atom = omni::Atom::new(-1);
/// let err = atom.set_validator(|v: &i32| *v >= 0).unwrap_err();
/// let validator = err.into_inner();
/// assert!(validator(&3));
/// ```
#[derive(Clone, Copy)]
pub struct SetValidatorError<F>(pub F);

impl<F> SetValidatorError<F> {
    /// The validator that was not installed.
    ///
    /// # Examples
    ///
    /// ```
    /// let atom = omni::Atom::new(0);
    /// let f = atom.set_validator(|v: &i32| *v != 0).unwrap_err().into_inner();
    /// assert!(!f(&0));
    /// ```
    pub fn into_inner(self) -> F {
        self.0
    }
}

impl<F> fmt::Debug for SetValidatorError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetValidatorError").finish_non_exhaustive()
    }
}

impl<F> fmt::Display for SetValidatorError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the new validator refuses the atom's current value")
    }
}

impl<F> Error for SetValidatorError<F> {}
