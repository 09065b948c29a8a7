//! Sleeps on the paused clock against a `BTreeMap` model: see `tests/fuzz_logic/timer_ops.rs`.
//!
//! Run with `cargo +nightly fuzz run timer_ops` from the repository root; with `FUZZ_DESCRIBE`
//! set in the environment, each input's script is printed first.
#![no_main]

#[path = "../../tests/fuzz_logic/timer_ops.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if std::env::var_os("FUZZ_DESCRIBE").is_some() {
        eprintln!("{}", logic::describe(data));
    }
    logic::fuzz(data)
});
