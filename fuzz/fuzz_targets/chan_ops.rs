//! Channel scripts over every channel kind against a model: see `tests/fuzz_logic/chan_ops.rs`.
//!
//! Run with `cargo +nightly fuzz run chan_ops` from the repository root; with `FUZZ_DESCRIBE`
//! set in the environment, each input's script is printed first.
#![no_main]

#[path = "../../tests/fuzz_logic/chan_ops.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if std::env::var_os("FUZZ_DESCRIBE").is_some() {
        eprintln!("{}", logic::describe(data));
    }
    logic::fuzz(data)
});
