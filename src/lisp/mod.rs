//! OmniLisp: a small Lisp on the omni runtime.
//!
//! This is the language's first layer, the reader: source bytes to [`Datum`]s, each with the
//! `file:line:col` it came from. The evaluator (a CEK machine with heap-allocated continuation
//! frames and multi-shot `prompt`/`control`), the region heap and the `omnilisp` command build
//! on it (issue 8).
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
mod reader;

pub use datum::{Datum, DatumKind, Span};
pub use reader::{read_all, ReadError, Reader, DEFAULT_MAX_DEPTH};
