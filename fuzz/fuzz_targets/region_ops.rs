//! Fuzz `omni::region::Region` against a `HashMap` model: see `tests/fuzz_logic/region_ops.rs`.
//!
//! Run with `cargo +nightly fuzz run region_ops` from the repository root.
#![no_main]

#[path = "../../tests/fuzz_logic/region_ops.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::fuzz(data));
