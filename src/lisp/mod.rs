//! OmniLisp: a small Lisp on the omni runtime.
//!
//! What is here (issue 8):
//!
//! - the reader: source bytes to [`Datum`]s, each with the `file:line:col` it came from, safe on
//!   any input;
//! - the heap ([`heap`]): Lisp objects in a region of `omni::region`, reclaimed by a mark-sweep
//!   collector, with per-heap statistics;
//! - the macro expander (`syntax`): `syntax-rules` (not hygienic), `define-record-type` and
//!   `let-values` as source rewriting;
//! - the evaluator ([`Interp`]): a compiler to an expression tree with lexically addressed
//!   variables, and a CEK machine whose continuation frames are heap objects, with proper tail
//!   calls, recursion as deep as the frame limit, multi-shot `prompt`/`control` and
//!   `reset`/`shift`, `call/cc`, `dynamic-wind`, `guard`/`raise` with error objects, limits on
//!   steps, frames and heap objects that give Lisp errors, and errors with locations and a
//!   backtrace;
//! - the builtins and a prelude written in OmniLisp (`builtins`);
//! - green tasks, channels and `select` (`tasks`), and OS threads (`threads`): each runs an
//!   interpreter of its own, and the values that cross between them are transmigrated
//!   (`migrate`), deep-copied with their sharing and cycles, while atoms and channels
//!   (`shared_chan`) are shared.
//!
//! The `omnilisp` command (`src/bin/omnilisp.rs`) runs a file, evaluates `-e EXPR`, or
//! starts a REPL. Still to come: speed (the evaluator allocates an environment per call and a
//! frame per pending operand; `benches/lisp_peers.sh` compares it with Guile and Racket).
//!
//! ```
//! use omni::lisp::{read_all, Interp};
//!
//! let data = read_all("(define (sq x) (* x x)) ; squares\n'(1 . 2)", "demo.olisp").unwrap();
//! assert_eq!(data[0].to_string(), "(define (sq x) (* x x))");
//! assert_eq!(data[1].to_string(), "(quote (1 . 2))");
//! assert_eq!(data[1].span().to_string(), "2:1");
//!
//! let mut lisp = Interp::new();
//! assert_eq!(lisp.eval_str("(define (sq x) (* x x)) (map sq '(1 2 3))", "demo").unwrap(), "(1 4 9)");
//! assert_eq!(lisp.eval_str("(prompt 'p (+ 1 (control 'p k (k (k 2)))))", "demo").unwrap(), "4");
//! ```

mod builtins;
mod datum;
mod eval;
mod fast;
mod generator;
pub mod heap;
mod migrate;
mod reader;
mod shared_chan;
mod syntax;
mod tasks;
mod threads;

pub use datum::{Datum, DatumKind, Span};
pub use eval::{Closure, Cont, Env, Frame, Interp, Limits, LispError, Loc, Prim};
pub use reader::{read_all, ReadError, Reader, DEFAULT_MAX_DEPTH};
