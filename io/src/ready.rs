//! What a task waits for ([`Interest`]) and what a source became ([`Ready`]).

use std::fmt;
use std::ops::BitOr;

/// The directions a task can wait on: readable, writable, or both.
///
/// # Examples
///
/// ```
/// use omni_io::Interest;
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

impl Interest {
    /// Wait until the source can be read (or has hung up, or failed).
    pub const READABLE: Interest = Interest(1);
    /// Wait until the source can be written (or has hung up, or failed).
    pub const WRITABLE: Interest = Interest(2);

    /// Whether this interest includes reading.
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }

    /// Whether this interest includes writing.
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }

    /// The readiness bits that satisfy this interest: for reading, readable, read-closed and
    /// error; for writing, writable, write-closed and error.
    pub const fn mask(self) -> Ready {
        let mut bits = Ready::ERROR.0;
        if self.is_readable() {
            bits |= Ready::READABLE.0 | Ready::READ_CLOSED.0;
        }
        if self.is_writable() {
            bits |= Ready::WRITABLE.0 | Ready::WRITE_CLOSED.0;
        }
        Ready(bits)
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest(self.0 | rhs.0)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            (false, true) => f.write_str("WRITABLE"),
            (false, false) => f.write_str("(none)"),
        }
    }
}

/// A set of readiness bits reported by a driver.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ready(u8);

impl Ready {
    /// Nothing is ready.
    pub const EMPTY: Ready = Ready(0);
    /// Data (or a connection) can be read.
    pub const READABLE: Ready = Ready(1);
    /// Data can be written.
    pub const WRITABLE: Ready = Ready(2);
    /// The peer will send no more (end of stream).
    pub const READ_CLOSED: Ready = Ready(4);
    /// The peer accepts no more.
    pub const WRITE_CLOSED: Ready = Ready(8);
    /// An error is pending on the source.
    pub const ERROR: Ready = Ready(16);
    pub(crate) const ALL: Ready = Ready(31);

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every bit of `other` is set here.
    pub const fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits set in both.
    pub const fn intersection(self, other: Ready) -> Ready {
        Ready(self.0 & other.0)
    }

    /// Whether any bit that satisfies a reader is set.
    pub const fn is_readable(self) -> bool {
        !self.intersection(Interest::READABLE.mask()).is_empty()
    }

    /// Whether any bit that satisfies a writer is set.
    pub const fn is_writable(self) -> bool {
        !self.intersection(Interest::WRITABLE.mask()).is_empty()
    }

    pub(crate) const fn bits(self) -> u8 {
        self.0
    }

    pub(crate) const fn from_bits(bits: u8) -> Ready {
        Ready(bits & Ready::ALL.0)
    }

    /// Readiness from a `poll(2)` event mask, as io_uring's poll operation reports it.
    pub(crate) fn from_poll_mask(mask: u32) -> Ready {
        let mut r = 0;
        if mask & (libc::POLLIN as u32 | libc::POLLPRI as u32) != 0 {
            r |= Ready::READABLE.0;
        }
        if mask & libc::POLLOUT as u32 != 0 {
            r |= Ready::WRITABLE.0;
        }
        if mask & libc::POLLRDHUP as u32 != 0 {
            r |= Ready::READ_CLOSED.0;
        }
        if mask & libc::POLLHUP as u32 != 0 {
            r |= Ready::READ_CLOSED.0 | Ready::WRITE_CLOSED.0;
        }
        if mask & libc::POLLERR as u32 != 0 {
            r |= Ready::ERROR.0;
        }
        Ready(r)
    }
}

impl BitOr for Ready {
    type Output = Ready;
    fn bitor(self, rhs: Ready) -> Ready {
        Ready(self.0 | rhs.0)
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Ready::READABLE, "READABLE"),
            (Ready::WRITABLE, "WRITABLE"),
            (Ready::READ_CLOSED, "READ_CLOSED"),
            (Ready::WRITE_CLOSED, "WRITE_CLOSED"),
            (Ready::ERROR, "ERROR"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.contains(bit) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("EMPTY")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_select_the_bits_of_each_direction() {
        assert!(Ready::READ_CLOSED.is_readable());
        assert!(!Ready::READ_CLOSED.is_writable());
        assert!(Ready::ERROR.is_readable() && Ready::ERROR.is_writable());
        assert!(!Ready::WRITABLE.is_readable());
        let r = Ready::from_poll_mask(libc::POLLHUP as u32);
        assert!(r.contains(Ready::READ_CLOSED | Ready::WRITE_CLOSED));
        assert_eq!(format!("{:?}", Ready::READABLE | Ready::ERROR), "READABLE | ERROR");
    }
}
