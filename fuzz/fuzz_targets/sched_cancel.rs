//! Spawn / run / wake / abort / join / drop schedules on the current-thread runtime: see
//! `tests/fuzz_logic/sched_cancel.rs`.
//!
//! Run with `cargo +nightly fuzz run sched_cancel` from the repository root; with
//! `FUZZ_DESCRIBE` set in the environment, each input's schedule is printed first.
#![no_main]

#[path = "../../tests/fuzz_logic/sched_cancel.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if std::env::var_os("FUZZ_DESCRIBE").is_some() {
        eprintln!("{}", logic::describe(data));
    }
    logic::fuzz(data)
});
