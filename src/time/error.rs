//! The error of `timeout`.

use std::fmt;

/// The error of [`timeout`](super::timeout): the deadline passed before the future finished.
/// The future was dropped (cancelled at its current `.await`).
///
/// # Examples
///
/// ```
/// use omni::time::{timeout, Duration};
/// let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
/// let r = rt.block_on(timeout(Duration::from_secs(5), std::future::pending::<()>()));
/// assert_eq!(r.unwrap_err().to_string(), "deadline has elapsed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Elapsed(());

impl Elapsed {
    pub(crate) fn new() -> Elapsed {
        Elapsed(())
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}
