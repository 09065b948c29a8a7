//! Time: sleeps, timeouts and intervals on a hierarchical timer wheel (placeholder: the `time`
//! module proper is written around [`wheel`] when it is wired into the schedulers).

pub(crate) mod wheel;
