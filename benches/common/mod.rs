//! Helpers shared by the bench files: memory accounting and the report.

pub(crate) mod chan;
pub(crate) mod memory;
pub(crate) mod multi;
pub(crate) mod report;
pub(crate) mod scope;
pub(crate) mod tcp;
pub(crate) mod timers;
