//! I/O drivers for the omni runtime.
//!
//! This crate is where omni's reactor lives. Today it holds the driver *contract* and the
//! selection type; the mio and io_uring drivers that fill it in land with the reactor issue.
//!
//! # The driver contract
//!
//! Every driver (one module each, no `cfg` at call sites) must provide:
//!
//! 1. **register / deregister** a source (a file descriptor or handle) with an interest
//!    (readable, writable), returning a token the scheduler maps back to the waiting task;
//! 2. **submit** an operation (completion drivers such as io_uring): the operation owns its buffer
//!    and hands it back with the result; an operation whose future was dropped parks its buffer in
//!    the driver until the kernel completes it;
//! 3. **wait** for events with an optional timeout (the timer wheel's next deadline), returning the
//!    tokens that became ready;
//! 4. **wake** the waiting thread from any other thread, so a remote wake-up is never lost while
//!    the scheduler is parked in the driver.
//!
//! Until the reactor lands, the current-thread scheduler parks its thread directly
//! (`std::thread::park`) and treats every [`Driver`] choice alike.

#![deny(unsafe_op_in_unsafe_fn)]

use std::fmt;
use std::str::FromStr;

/// Which I/O driver a runtime should use.
///
/// # Examples
///
/// ```
/// use omni_io::Driver;
/// assert_eq!("uring".parse::<Driver>().unwrap(), Driver::IoUring);
/// assert_eq!(Driver::default(), Driver::Auto);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Driver {
    /// io_uring where the kernel allows it, else mio.
    #[default]
    Auto,
    /// Readiness-based driver over mio (epoll, kqueue).
    Mio,
    /// Completion-based driver over io_uring.
    IoUring,
}

/// The error returned when a driver name (for example from `OMNI_DRIVER`) is not recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownDriver(pub String);

impl fmt::Display for UnknownDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown I/O driver {:?}: expected one of auto, mio, io_uring", self.0)
    }
}

impl std::error::Error for UnknownDriver {}

impl FromStr for Driver {
    type Err = UnknownDriver;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Driver::Auto),
            "mio" | "epoll" => Ok(Driver::Mio),
            "io_uring" | "iouring" | "uring" => Ok(Driver::IoUring),
            _ => Err(UnknownDriver(s.to_string())),
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::Auto => "auto",
            Driver::Mio => "mio",
            Driver::IoUring => "io_uring",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_unknown() {
        assert_eq!("MIO".parse::<Driver>(), Ok(Driver::Mio));
        assert_eq!("io_uring".parse::<Driver>(), Ok(Driver::IoUring));
        let err = "kqueue2".parse::<Driver>().unwrap_err();
        assert!(err.to_string().contains("expected one of"));
    }
}
