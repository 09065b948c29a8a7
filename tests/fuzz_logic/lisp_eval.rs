//! `lisp_eval`: arbitrary bytes as OmniLisp source, evaluated under fuel, frame and heap limits
//! on a thread with a small stack.
//!
//! Checks: no panic, no stack overflow (the thread's stack is small, so deep recursion in the
//! compiler or printer shows as a crash), no hang (the fuel bounds the steps), and every error a
//! program can cause carries a source location, except running out of fuel and `(exit)`, which
//! end the program rather than point at a mistake in it.
//!
//! Shared by `fuzz/fuzz_targets/lisp_eval.rs` and `tests/fuzz_replay.rs`.

use omni::lisp::{Interp, Limits};

/// The stack of the evaluating thread: small, so that unbounded native recursion is found.
pub(crate) const STACK: usize = 256 << 10;

/// The limits an untrusted program runs under.
pub(crate) const LIMITS: Limits =
    Limits { fuel: Some(20_000), frames: 2_000, heap_objects: 50_000 };

/// Evaluates `data` as source on a small-stack thread; panics (re-raised here) on a violation.
pub(crate) fn fuzz(data: &[u8]) {
    let src = String::from_utf8_lossy(data).into_owned();
    let t = std::thread::Builder::new().stack_size(STACK).spawn(move || eval(&src));
    if let Err(panic) = t.expect("spawn the evaluating thread").join() {
        std::panic::resume_unwind(panic);
    }
}

/// Evaluates `src` and checks the error, if any.
pub(crate) fn eval(src: &str) {
    let mut lisp = Interp::with_limits(LIMITS);
    match lisp.eval_str(src, "fuzz") {
        Ok(_) => {}
        Err(e) if e.exit_status().is_some() => {}
        Err(e) if e.is_limit() && e.message.contains("fuel") => {}
        Err(e) => {
            assert!(e.at.is_some(), "a Lisp error without a location: {e:?} ({})", e.message);
        }
    }
    // Whatever was printed is a string; taking it must not fail either.
    let _ = lisp.take_output();
}
