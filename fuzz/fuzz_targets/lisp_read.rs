//! The OmniLisp reader on arbitrary bytes: it must never panic or overflow the stack, every
//! error must point inside the source, and whatever it reads must print as text that reads back
//! to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let reader = omni::lisp::Reader::new(data, "fuzz").max_depth(500);
    for r in reader {
        match r {
            Ok(d) => {
                let printed = d.to_string();
                let again = omni::lisp::read_all(&printed, "fuzz-printed")
                    .unwrap_or_else(|e| panic!("printed form {printed:?} does not read back: {e}"));
                assert_eq!(again.len(), 1, "printed form {printed:?} reads as {} data", again.len());
                assert_eq!(again[0].to_string(), printed);
            }
            Err(e) => {
                assert!(e.span.offset <= data.len(), "error past the end: {e}");
                assert!(e.span.line >= 1 && e.span.col >= 1);
            }
        }
    }
});
