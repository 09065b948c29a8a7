//! OmniLisp evaluation of arbitrary source under limits: see `tests/fuzz_logic/lisp_eval.rs`.
//!
//! Run with `cargo +nightly fuzz run lisp_eval` from the repository root.
#![no_main]

#[path = "../../tests/fuzz_logic/lisp_eval.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::fuzz(data));
