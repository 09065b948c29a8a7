//! `Instant`: a point in time that follows the runtime's clock, paused or not.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::Duration;

/// A measurement of a monotonic clock, like [`std::time::Instant`], except that
/// [`Instant::now`] inside an omni runtime whose clock is paused (see [`pause`](super::pause))
/// reads the paused clock. Outside a runtime, or with a clock that was never paused, it is the
/// system's monotonic clock.
///
/// # Examples
///
/// ```
/// use omni::time::{Duration, Instant};
/// let start = Instant::now();
/// let later = start + Duration::from_millis(5);
/// assert_eq!(later - start, Duration::from_millis(5));
/// assert!(later > start);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(std::time::Instant);

impl Instant {
    /// The current time of the runtime's clock (the paused clock while it is paused).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = omni::time::Instant::now();
    /// let b = omni::time::Instant::now();
    /// assert!(b >= a);
    /// ```
    pub fn now() -> Instant {
        Instant(super::driver::now())
    }

    /// Wraps a `std` instant.
    ///
    /// # Examples
    ///
    /// ```
    /// let std_now = std::time::Instant::now();
    /// assert_eq!(omni::time::Instant::from_std(std_now).into_std(), std_now);
    /// ```
    pub fn from_std(i: std::time::Instant) -> Instant {
        Instant(i)
    }

    /// The `std` instant (see [`Instant::from_std`] for an example).
    pub fn into_std(self) -> std::time::Instant {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{Duration, Instant};
    /// let a = Instant::now();
    /// let b = a + Duration::from_millis(3);
    /// assert_eq!(b.duration_since(a), Duration::from_millis(3));
    /// assert_eq!(a.duration_since(b), Duration::ZERO);
    /// ```
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    /// Time elapsed since this instant, on the runtime's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = omni::time::Instant::now();
    /// assert!(t.elapsed() < std::time::Duration::from_secs(3600));
    /// ```
    pub fn elapsed(&self) -> Duration {
        Instant::now().duration_since(*self)
    }

    /// `self + d`, or `None` if it does not fit.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{Duration, Instant};
    /// assert!(Instant::now().checked_add(Duration::MAX).is_none());
    /// assert!(Instant::now().checked_add(Duration::from_secs(1)).is_some());
    /// ```
    pub fn checked_add(&self, d: Duration) -> Option<Instant> {
        self.0.checked_add(d).map(Instant)
    }

    /// `self - d`, or `None` if it does not fit.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::time::{Duration, Instant};
    /// assert!(Instant::now().checked_sub(Duration::MAX).is_none());
    /// ```
    pub fn checked_sub(&self, d: Duration) -> Option<Instant> {
        self.0.checked_sub(d).map(Instant)
    }

    /// `self + d`, saturating at a point about 30 years ahead instead of overflowing, so a
    /// deadline like `now + Duration::MAX` means "never" rather than a panic.
    pub(crate) fn far_add(self, d: Duration) -> Instant {
        const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
        self.checked_add(d.min(FAR)).unwrap_or(self)
    }
}

/// A process-wide reference point for [`Packed`] deadlines.
fn process_origin() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

/// An instant packed into 8 bytes: signed nanoseconds from a process-wide origin (±292 years),
/// so a `Sleep` is 24 bytes and a task sleeping on one fits a 64-byte slot.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Packed(i64);

impl Packed {
    pub(crate) fn pack(i: Instant) -> Packed {
        let origin = process_origin();
        let ns = if i.0 >= origin {
            i64::try_from(i.0.duration_since(origin).as_nanos()).unwrap_or(i64::MAX)
        } else {
            -i64::try_from((origin - i.0).as_nanos()).unwrap_or(i64::MAX)
        };
        Packed(ns)
    }

    pub(crate) fn unpack(self) -> Instant {
        let origin = process_origin();
        let d = Duration::from_nanos(self.0.unsigned_abs());
        // Both directions stay within what `pack` was given, so they cannot overflow.
        Instant(if self.0 >= 0 { origin + d } else { origin - d })
    }
}

impl From<std::time::Instant> for Instant {
    fn from(i: std::time::Instant) -> Instant {
        Instant(i)
    }
}

impl From<Instant> for std::time::Instant {
    fn from(i: Instant) -> std::time::Instant {
        i.0
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// # Panics
    ///
    /// On overflow, as `std::time::Instant` does; use [`Instant::checked_add`] to avoid it.
    fn add(self, d: Duration) -> Instant {
        Instant(self.0 + d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        self.0 += d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0 - d)
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, d: Duration) {
        self.0 -= d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturates at zero, as [`Instant::duration_since`].
    fn sub(self, earlier: Instant) -> Duration {
        self.duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
