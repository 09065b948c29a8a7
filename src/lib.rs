//! Omni: an async runtime whose green tasks live in generational regions.
//!
//! (crate doc is written in full once the core lands)

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod region;
