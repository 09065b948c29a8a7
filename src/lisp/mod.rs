//! OmniLisp: a small Lisp on the omni runtime.
//!
//! Built so far: the reader (source bytes to [`Datum`]s, each with the `file:line:col` it came
//! from) and the heap (Lisp objects in a region of `omni::region`, reclaimed by a mark-sweep
//! collector, with per-heap statistics). The evaluator (a CEK machine whose continuation frames
//! are heap objects, with multi-shot `prompt`/`control`) and the `omnilisp` command build on
//! them (issue 8).
//!
//! ```
//! use omni::lisp::read_all;
//!
//! let data = read_all("(define (sq x) (* x x)) ; squares\n'(1 . 2)", "demo.olisp").unwrap();
//! assert_eq!(data.len(), 2);
//! assert_eq!(data[0].to_string(), "(define (sq x) (* x x))");
//! assert_eq!(data[1].to_string(), "(quote (1 . 2))");
//! assert_eq!(data[1].span().to_string(), "2:1");
//! ```

mod datum;
pub mod heap;
mod reader;

pub use datum::{Datum, DatumKind, Span};
pub use reader::{read_all, ReadError, Reader, DEFAULT_MAX_DEPTH};
