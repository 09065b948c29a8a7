//! The evaluator: a compiler to an expression tree, and a CEK machine whose continuation is
//! data (a stack of frames), never the host stack.
//!
//! # Compilation
//!
//! Source data are compiled to an expression tree ([`Expr`], shared and immutable) after
//! macro expansion ([`super::syntax`]). Variables are resolved at compile time: a local is a
//! `(depth, index)` address into the chain of environments (an environment is a vector, one
//! per procedure call), a global is an index into the interpreter's global vector. A body's
//! internal `define`s are found before the body is compiled and given slots in its
//! environment, so mutually recursive local procedures work, and reading one before its
//! definition ran is an error, not a wrong value.
//!
//! # The machine
//!
//! It steps between two states: *evaluate* an expression in an environment, or *return* a
//! value to the continuation. The continuation is a stack of [`Frame`]s owned by the
//! interpreter (a vector on the Rust heap, never the host stack), each saying what to do with
//! the value that arrives; environments and everything else live in the Lisp heap. So:
//!
//! - The host stack never grows with the program: a 10^6-deep non-tail recursion is 10^6
//!   frames in that vector (up to the frame limit, which gives a Lisp error), and a call in
//!   tail position pushes no frame at all, so a loop runs in constant space.
//! - Expressions that cannot capture a continuation (constants, variables, `lambda`, and a
//!   call of a builtin on such operands, like `(- n 1)`) are evaluated in place when they are
//!   a call's operand or a test: no frame, no step. Only an operand that calls a procedure
//!   written in Lisp gets a frame.
//! - A frame is popped to be resumed, so resuming never copies it; a captured continuation
//!   owns its own copy of its frames, so it can be resumed any number of times.
//! - A step goes on into an `if`'s chosen branch, and into a sequence's last item, when what
//!   comes before them evaluates in place: code has no loop without a call, so a step stays
//!   bounded by the size of the code, and a loop still takes at least one step per iteration
//!   (which is what fuel counts and where the collector and the scheduler get their turn).
//!
//! # What the compiler knows of a call
//!
//! Each call records what its operator was when it was compiled ([`Callee`]), and uses it only
//! to go faster, never to behave differently:
//!
//! - A global that held a builtin: the call checks that the global still holds that builtin
//!   (one compare of a generational reference) and calls it without looking it up in the heap.
//!   For `+ - * quotient remainder modulo`, the comparisons, `car`, `cdr`, `null?`, `pair?`,
//!   `zero?` and `not`, the common case (integers that do not overflow or divide by zero, a
//!   pair) is done in the machine, on operands decoded
//!   at compile time when they are variables or constants; anything else (floats, overflow, a
//!   wrong type or count, a rebound global) goes to the builtin as before, with its errors.
//! - A `lambda` written in place, as `let` compiles: its body runs in a new environment and no
//!   closure is made.
//! - A global that held no builtin (a procedure written in Lisp, or one not defined yet): the
//!   call is not tried in place.
//!
//! `tests/lisp/known_builtins.olisp` checks these against the general path.
//!
//! # The fast path
//!
//! A call of a *pure* procedure (one that only computes: variables, `if`, `let`, the builtins
//! above, calls of procedures like itself) is first tried by a second evaluator,
//! [`super::fast`], that keeps arguments on a value stack and nests calls on the host stack,
//! with no environment objects and no frames. It gives up on anything but the common case,
//! and on calls nested deeper than the host stack or the frame limit allows; since pure code
//! changes nothing, the machine then makes the call from the start, so every answer, error,
//! backtrace and limit is the machine's. Nothing on the host stack is ever captured: pure code
//! cannot reach `control` or `call/cc`.
//!
//! # Delimited continuations: what they cost
//!
//! `(prompt tag body)` pushes a prompt frame. `(control tag k body)` finds the nearest prompt
//! with that tag and moves the frames above it into `k`: one scan and one move of the frames
//! between `control` and its prompt, nothing for the frames below the prompt. Calling `k`
//! pushes a copy of them onto the caller's continuation: again one frame copy per captured
//! frame, whatever the depth outside. `shift`/`reset` are the same with the prompt put back
//! around the copied frames when `k` is called (the difference the two programs of
//! `tests/lisp/control.olisp` show). `call/cc` copies the frames above the nearest `reset`
//! (all of them when there is none), and calling it replaces the frames above the caller's
//! nearest `reset` with a copy. `benches/lisp_peers.sh` measures 10^5 captures and resumes
//! against Guile and Racket.
//!
//! # Dynamic extent
//!
//! `dynamic-wind` pushes a wind frame. Whenever control leaves frames by a jump (`control`
//! capturing, a continuation called, `raise` reaching a `guard`), the `after` thunks of the
//! wind frames left run, innermost first, and the `before` thunks of the wind frames entered
//! run, outermost first, before the jump completes. A wind keeps its identity in copies, so a
//! `call/cc` escape that stays inside a `dynamic-wind` runs neither thunk. A `guard` is a frame too: `raise` (and any
//! error of a builtin, as a condition object) finds the nearest one.
//!
//! Garbage collection runs between steps, when the heap says one is due; its roots are the
//! machine's registers, the frames, the globals and the constants of compiled code.

use super::datum::{Datum, DatumKind, Span};
use super::heap::{Heap, HeapFull, Obj, Ref, Sym, Symbols, Value};
use super::syntax::{self, Macro};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

/// Where something is in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    /// The file name.
    pub file: Rc<str>,
    /// Line and column.
    pub span: Span,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.span)
    }
}

/// A Lisp error: what went wrong, where, and the calls that were in progress.
#[derive(Clone, Debug)]
pub struct LispError {
    /// What went wrong.
    pub message: String,
    /// Where, when known.
    pub at: Option<Loc>,
    /// The calls in progress, innermost first: each location with how many times in a row
    /// it repeats (recursion), at most 20 entries.
    pub backtrace: Vec<(Loc, u32)>,
    kind: ErrorKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorKind {
    /// An error a `guard` may catch.
    Error,
    /// A limit (fuel, frames, heap): never caught, so an untrusted program cannot outlive it.
    Limit,
    /// `(exit code)`.
    Exit(i32),
}

impl LispError {
    /// The status `(exit status)` asked for, when this is the program exiting rather than an
    /// error.
    pub fn exit_status(&self) -> Option<i32> {
        match self.kind {
            ErrorKind::Exit(code) => Some(code),
            _ => None,
        }
    }

    /// Whether this is a limit of [`Limits`] being reached (which `guard` cannot catch).
    pub fn is_limit(&self) -> bool {
        self.kind == ErrorKind::Limit
    }
}

impl fmt::Display for LispError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: error: {}", self.message)?,
            None => write!(f, "error: {}", self.message)?,
        }
        for (l, n) in &self.backtrace {
            write!(f, "\n  in the call at {l}")?;
            if *n > 1 {
                write!(f, " ({n} times)")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for LispError {}

/// A Lisp error on its way out of the machine: boxed, so the machine's results stay small.
type Fail = Box<LispError>;

/// A Lisp error with `message` at `at`.
#[cold]
pub(crate) fn error_at(message: impl Into<String>, at: Option<&Loc>) -> Fail {
    err(message, at)
}

#[cold]
fn err(message: impl Into<String>, at: Option<&Loc>) -> Fail {
    Box::new(LispError {
        message: message.into(),
        at: at.cloned(),
        backtrace: Vec::new(),
        kind: ErrorKind::Error,
    })
}

#[cold]
pub(crate) fn limit_err(message: impl Into<String>, at: Option<&Loc>) -> Fail {
    let mut e = err(message, at);
    e.kind = ErrorKind::Limit;
    e
}

/// Compiled code.
#[derive(Debug)]
pub(crate) enum Expr {
    Const(Value),
    /// A parameter: environments up, slot.
    Local(u32, u32),
    /// A variable of a body's `define`: an error to read before the definition ran.
    LocalDef(u32, u32, Sym, Loc),
    /// A global's slot.
    Global(u32, Loc),
    If(Rc<Expr>, Rc<Expr>, Rc<Expr>),
    DefGlobal(u32, Rc<Expr>),
    SetLocal(u32, u32, Rc<Expr>),
    SetGlobal(u32, Rc<Expr>, Loc),
    Lambda(Rc<Lambda>),
    /// Non-empty.
    Seq(Rc<[Rc<Expr>]>),
    /// A call (see [`Call`]).
    Call(Rc<Call>),
    And(Rc<[Rc<Expr>]>),
    Or(Rc<[Rc<Expr>]>),
    Prompt(Rc<Expr>, Rc<Expr>),
    /// Tag, body (in an environment of its own holding `k`, of this many slots), whether it
    /// is `shift`.
    Control(Rc<Expr>, Rc<Expr>, usize, bool, Loc),
    /// Body, and the handler (one parameter: what was raised).
    Guard(Rc<Expr>, Rc<Lambda>),
}

thread_local! {
    /// Stand-ins put in place of an expression's children while it drops (see `Drop`).
    static STAND_INS: (Rc<Expr>, Rc<[Rc<Expr>]>, Rc<Lambda>) = {
        let leaf = Rc::new(Expr::Const(Value::Nil));
        let loc = Loc { file: "".into(), span: Span::default() };
        let lambda = Rc::new(Lambda::new(0, false, 0, leaf.clone(), loc));
        (leaf, Rc::from(Vec::new()), lambda)
    };
}

/// Compiled code can be as deep as the compiler's nesting limit; dropping it recursively
/// would overflow a small thread stack. Each expression moves its children out and drops
/// them on a stack that grows onto the heap when little is left.
impl Drop for Expr {
    fn drop(&mut self) {
        if matches!(self, Expr::Const(_) | Expr::Local(..) | Expr::LocalDef(..) | Expr::Global(..))
        {
            return;
        }
        let Ok((leaf, none, lambda)) = STAND_INS.try_with(|s| s.clone()) else { return };
        let mut kids: Vec<Rc<Expr>> = Vec::new();
        let mut lists: Vec<Rc<[Rc<Expr>]>> = Vec::new();
        let mut lambdas: Vec<Rc<Lambda>> = Vec::new();
        let mut take = |e: &mut Rc<Expr>| kids.push(std::mem::replace(e, leaf.clone()));
        match self {
            Expr::If(a, b, c) => {
                take(a);
                take(b);
                take(c);
            }
            Expr::DefGlobal(_, a) | Expr::SetLocal(_, _, a) | Expr::SetGlobal(_, a, _) => take(a),
            Expr::Prompt(a, b) | Expr::Control(a, b, ..) => {
                take(a);
                take(b);
            }
            Expr::Guard(a, l) => {
                take(a);
                lambdas.push(std::mem::replace(l, lambda.clone()));
            }
            Expr::Lambda(l) => lambdas.push(std::mem::replace(l, lambda.clone())),
            Expr::Seq(es) | Expr::And(es) | Expr::Or(es) => {
                lists.push(std::mem::replace(es, none.clone()));
            }
            Expr::Call(c) => {
                // Shared calls are dropped by their last owner.
                if let Some(c) = Rc::get_mut(c) {
                    lists.push(std::mem::replace(&mut c.parts, none.clone()));
                    if let Callee::Lambda(l) = &mut c.callee {
                        lambdas.push(std::mem::replace(l, lambda.clone()));
                    }
                }
            }
            Expr::Const(_) | Expr::Local(..) | Expr::LocalDef(..) | Expr::Global(..) => {}
        }
        stacker::maybe_grow(32 << 10, 1 << 20, move || drop((kids, lists, lambdas)));
    }
}

/// Whether `e` is evaluated without a step: no call of Lisp code, no jump.
fn simple(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Const(_) | Expr::Local(..) | Expr::LocalDef(..) | Expr::Global(..) | Expr::Lambda(_)
    )
}

/// A `lambda`'s code.
#[derive(Debug)]
pub(crate) struct Lambda {
    pub(crate) params: usize,
    pub(crate) rest: bool,
    /// Slots of its environment: parameters, rest, then the body's definitions.
    pub(crate) size: usize,
    pub(crate) body: Rc<Expr>,
    pub(crate) loc: Loc,
    /// Whether calls of it may take the fast path (see [`super::fast`]): not looked at yet,
    /// yes, or no.
    pub(crate) fast: std::cell::Cell<super::fast::Purity>,
}

impl Lambda {
    /// Code of a procedure not looked at by the fast path yet.
    pub(crate) fn new(params: usize, rest: bool, size: usize, body: Rc<Expr>, loc: Loc) -> Lambda {
        Lambda { params, rest, size, body, loc, fast: Default::default() }
    }
}

/// A call: the operator, then the operands, and what the compiler knew of the operator.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) parts: Rc<[Rc<Expr>]>,
    pub(crate) loc: Loc,
    /// Whether every part is simple (see [`simple`]): a call of a builtin is then evaluated in
    /// place.
    pub(crate) simple: bool,
    pub(crate) callee: Callee,
}

/// What the compiler knew of a call's operator. It only ever makes a call faster, never
/// different: each shortcut checks that it still holds and takes the general path when not.
#[derive(Debug)]
pub(crate) enum Callee {
    /// Nothing: the operator's value is looked at on each call (a local, an expression).
    Unknown,
    /// A `lambda` written in place, as `let` compiles: its body runs in a new environment and
    /// no closure is made.
    Lambda(Rc<Lambda>),
    /// A global that held no builtin when the call was compiled (a procedure written in Lisp,
    /// or one not defined yet): the call is not tried in place.
    Global,
    /// A builtin, named by a constant or by a global that held it when the call was compiled:
    /// called directly, without a heap lookup, while the global still holds it.
    Prim(Known),
}

/// A builtin a call is known to make (see [`Callee::Prim`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known {
    /// The global the operator reads, checked on each call; `None` for a constant.
    global: Option<u32>,
    /// The builtin: a generational reference, so a global rebound to anything else, even
    /// another builtin, compares unequal (and a freed one's slot, reused, has a new version).
    value: Ref,
    f: fn(&mut Interp, &[Value]) -> Result<Value, String>,
    name: &'static str,
    /// Whether the call's operand count suits the builtin (when not, the general path reports
    /// it).
    arity_ok: bool,
    pub(super) op: Op,
    pub(super) operands: Operands,
}

/// A known builtin's operands, decoded at compile time when there are one or two and each is
/// a variable or a constant, so the common case reads them without walking expressions.
#[derive(Debug, Clone, Copy)]
pub(super) enum Operands {
    Other,
    One(Operand),
    Two(Operand, Operand),
}

/// A variable or a constant (see [`Operands`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum Operand {
    Const(Value),
    /// A parameter or a body's definition: environments up, slot (`Undefined` before the
    /// definition ran: then the general path reports it).
    Local(u32, u32),
    Global(u32),
}

impl Operand {
    fn of(e: &Expr) -> Option<Operand> {
        Some(match e {
            Expr::Const(v) => Operand::Const(*v),
            Expr::Local(d, i) | Expr::LocalDef(d, i, ..) => Operand::Local(*d, *i),
            Expr::Global(g, _) => Operand::Global(*g),
            _ => return None,
        })
    }
}

/// The common cases of a few builtins, done in the machine itself (see [`fast_op`]); the
/// builtin is called for everything else, so every error and float case stays its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Other,
    Add,
    Sub,
    Mul,
    Quotient,
    Remainder,
    Modulo,
    Lt,
    Gt,
    Le,
    Ge,
    NumEq,
    Car,
    Cdr,
    NullP,
    PairP,
    Not,
    ZeroP,
}

impl Op {
    fn of(name: &str) -> Op {
        match name {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "quotient" => Op::Quotient,
            "remainder" => Op::Remainder,
            "modulo" => Op::Modulo,
            "zero?" => Op::ZeroP,
            "<" => Op::Lt,
            ">" => Op::Gt,
            "<=" => Op::Le,
            ">=" => Op::Ge,
            "=" => Op::NumEq,
            "car" => Op::Car,
            "cdr" => Op::Cdr,
            "null?" => Op::NullP,
            "pair?" => Op::PairP,
            "not" => Op::Not,
            _ => Op::Other,
        }
    }
}

/// `op` on `args` when it is one of its common cases: two integers that do not overflow, a
/// pair; `None` sends the call to the builtin itself.
#[inline(always)]
fn fast_op(heap: &Heap, op: Op, args: &[Value]) -> Option<Value> {
    match *args {
        [x] => fast_op1(heap, op, x),
        [x, y] => fast_op2(op, x, y),
        _ => None,
    }
}

/// [`fast_op`] of one argument, which must not be `Undefined`.
#[inline(always)]
pub(super) fn fast_op1(heap: &Heap, op: Op, x: Value) -> Option<Value> {
    Some(match (op, x) {
        (Op::Car | Op::Cdr | Op::PairP, Value::Ref(r)) => match (op, heap.get(r)) {
            (Op::Car, Ok(Obj::Pair(a, _))) => *a,
            (Op::Cdr, Ok(Obj::Pair(_, d))) => *d,
            (Op::PairP, Ok(o)) => Value::Bool(matches!(o, Obj::Pair(..))),
            _ => return None,
        },
        (Op::NullP, v) => Value::Bool(v == Value::Nil),
        (Op::ZeroP, Value::Int(n)) => Value::Bool(n == 0),
        (Op::Not, v) => Value::Bool(!truthy(v)),
        _ => return None,
    })
}

/// [`fast_op`] of two arguments.
#[inline(always)]
pub(super) fn fast_op2(op: Op, x: Value, y: Value) -> Option<Value> {
    use Value::{Bool, Int};
    let (Int(x), Int(y)) = (x, y) else { return None };
    Some(match op {
        Op::Add => Int(x.checked_add(y)?),
        Op::Sub => Int(x.checked_sub(y)?),
        Op::Mul => Int(x.checked_mul(y)?),
        // Division by zero and `i64::MIN / -1` go to the builtin, which reports them.
        Op::Quotient if y != 0 => Int(x.checked_div(y)?),
        // As the builtins do: `i64::MIN % -1` is 0.
        Op::Remainder if y != 0 => Int(x.checked_rem(y).unwrap_or(0)),
        Op::Modulo if y != 0 => {
            let r = x.checked_rem(y).unwrap_or(0);
            // The sign of the divisor.
            Int(if r != 0 && (r < 0) != (y < 0) { r + y } else { r })
        }
        Op::Lt => Bool(x < y),
        Op::Gt => Bool(x > y),
        Op::Le => Bool(x <= y),
        Op::Ge => Bool(x >= y),
        Op::NumEq => Bool(x == y),
        _ => return None,
    })
}

/// [`fast_op`] of a known builtin on its operands decoded at compile time (see [`Operands`]),
/// each read by `read`; `None` when they are not decoded or not the common case.
#[inline(always)]
pub(super) fn decoded_op(heap: &Heap, k: &Known, read: &impl ReadOperand) -> Option<Value> {
    match k.operands {
        // Two integers or nothing: an undefined variable is not an integer.
        Operands::Two(a, b) => fast_op2(k.op, read.read(a), read.read(b)),
        Operands::One(a) => match read.read(a) {
            Value::Undefined => None,
            x => fast_op1(heap, k.op, x),
        },
        Operands::Other => None,
    }
}

/// Where [`decoded_op`] reads operands: the machine's environments, or the fast path's locals.
/// (A trait rather than a closure, so that the read is inlined.)
pub(super) trait ReadOperand {
    /// The value of `o`; `Undefined` for a variable not defined yet.
    fn read(&self, o: Operand) -> Value;
}

/// The machine's operands: those of the environment `.1`.
struct InEnv<'a>(&'a Interp, Option<Ref>);

impl ReadOperand for InEnv<'_> {
    #[inline(always)]
    fn read(&self, o: Operand) -> Value {
        self.0.operand(o, self.1)
    }
}

/// A procedure written in Lisp (opaque): its code and the environment it closed over.
#[derive(Debug, Clone)]
pub struct Closure {
    pub(crate) lambda: Rc<Lambda>,
    pub(crate) env: Option<Ref>,
}

/// What a builtin does.
#[derive(Clone, Copy)]
pub(crate) enum PrimFn {
    /// A function of the arguments.
    Plain(fn(&mut Interp, &[Value]) -> Result<Value, String>),
    /// One that works on the machine's continuation.
    Control(Ctl),
}

/// The builtins that work on the continuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ctl {
    Apply,
    CallCc,
    DynamicWind,
    Raise,
    Error,
    Exit,
    Task(super::tasks::TaskOp),
    /// `thread-join`: its errors may be limits, which a builtin's errors are not.
    ThreadJoin,
}

/// A builtin procedure (opaque).
#[derive(Clone, Copy)]
pub struct Prim {
    name: &'static str,
    arity: (usize, Option<usize>),
    f: PrimFn,
}

impl fmt::Debug for Prim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#<procedure {}>", self.name)
    }
}

/// The variables of one call (opaque; globals live in the interpreter).
#[derive(Debug)]
pub struct Env {
    vals: Slots,
    parent: Option<Ref>,
}

/// How many slots an environment holds in place; a bigger one has a vector of its own.
const SMALL_ENV: usize = 3;

/// An environment's slots: most calls have few variables, and keeping them in place saves an
/// allocation and a free per call.
#[derive(Debug)]
enum Slots {
    Small(u8, [Value; SMALL_ENV]),
    Big(Vec<Value>),
}

impl Slots {
    /// `size` slots, all undefined, then filled by `fill`.
    #[inline]
    fn build(size: usize, fill: impl FnOnce(&mut [Value])) -> Slots {
        if size <= SMALL_ENV {
            let mut a = [Value::Undefined; SMALL_ENV];
            fill(&mut a[..size]);
            Slots::Small(size as u8, a)
        } else {
            let mut v = vec![Value::Undefined; size];
            fill(&mut v);
            Slots::Big(v)
        }
    }

    #[inline]
    fn get(&self) -> &[Value] {
        match self {
            Slots::Small(n, a) => &a[..*n as usize],
            Slots::Big(v) => v,
        }
    }

    #[inline]
    fn get_mut(&mut self) -> &mut [Value] {
        match self {
            Slots::Small(n, a) => &mut a[..*n as usize],
            Slots::Big(v) => v,
        }
    }
}

/// A continuation frame (opaque): what to do with the value that arrives. The continuation is
/// a stack of them in the interpreter; a captured continuation holds a copy of some.
#[derive(Debug, Clone)]
pub struct Frame(pub(crate) FrameKind);

/// What to do once the thunks of a jump have run.
#[derive(Debug, Clone)]
pub(crate) enum Then {
    Return(Value),
    Eval(Rc<Expr>, Option<Ref>),
    Apply(Value, Vec<Value>),
}

impl Then {
    fn trace(&self, f: &mut dyn FnMut(Value)) {
        match self {
            Then::Return(v) => f(*v),
            Then::Eval(_, env) => env.iter().for_each(|e| f(Value::Ref(*e))),
            Then::Apply(p, args) => {
                f(*p);
                args.iter().copied().for_each(&mut *f);
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum FrameKind {
    If(Rc<Expr>, Rc<Expr>, Option<Ref>),
    Seq(Rc<[Rc<Expr>]>, usize, Option<Ref>),
    Args {
        call: Rc<Call>,
        done: Vec<Value>,
        env: Option<Ref>,
    },
    DefGlobal(u32),
    SetLocal(u32, u32, Option<Ref>),
    SetGlobal(u32),
    And(Rc<[Rc<Expr>]>, usize, Option<Ref>),
    Or(Rc<[Rc<Expr>]>, usize, Option<Ref>),
    PromptTag(Rc<Expr>, Option<Ref>),
    Prompt(Value),
    ControlTag {
        body: Rc<Expr>,
        size: usize,
        env: Option<Ref>,
        shift: bool,
        loc: Loc,
    },
    Guard(Value),
    /// `dynamic-wind` after its `before` ran: run the thunk inside a wind frame.
    WindEnter {
        thunk: Value,
        before: Value,
        after: Value,
        loc: Loc,
    },
    /// Inside a `dynamic-wind`; `id` tells this wind from others when continuations are
    /// compared (copies of a frame keep its id).
    Wind {
        before: Value,
        after: Value,
        id: u64,
        loc: Loc,
    },
    /// Return this value once the `after` thunk returned.
    ReturnValue(Value),
    /// The boundary of a running generator's producer (see `generator`): the producer's
    /// frames lie above it.
    GenBoundary(Value),
    /// The thunks of a jump, from `i` on, then the jump itself.
    Winding {
        thunks: Rc<[Value]>,
        i: usize,
        then: Rc<Then>,
        loc: Loc,
    },
}

impl Frame {
    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        let env = match &self.0 {
            FrameKind::If(_, _, e)
            | FrameKind::Seq(_, _, e)
            | FrameKind::SetLocal(_, _, e)
            | FrameKind::And(_, _, e)
            | FrameKind::Or(_, _, e)
            | FrameKind::PromptTag(_, e)
            | FrameKind::ControlTag { env: e, .. } => *e,
            FrameKind::Args { done, env, .. } => {
                done.iter().copied().for_each(&mut *f);
                *env
            }
            FrameKind::DefGlobal(_) | FrameKind::SetGlobal(_) => None,
            FrameKind::Prompt(v)
            | FrameKind::Guard(v)
            | FrameKind::ReturnValue(v)
            | FrameKind::GenBoundary(v) => {
                f(*v);
                None
            }
            FrameKind::WindEnter { thunk, before, after, .. } => {
                f(*thunk);
                f(*before);
                f(*after);
                None
            }
            FrameKind::Wind { before, after, .. } => {
                f(*before);
                f(*after);
                None
            }
            FrameKind::Winding { thunks, then, .. } => {
                thunks.iter().copied().for_each(&mut *f);
                then.trace(f);
                None
            }
        };
        if let Some(e) = env {
            f(Value::Ref(e));
        }
    }
}

/// A captured continuation (a procedure): a copy of the frames it continues with.
#[derive(Debug)]
pub enum Cont {
    /// From `control`/`shift`: the frames from the capture point up to (not including) the
    /// prompt, outermost first; `reinstall` is the tag of a `shift`, whose calls put the
    /// prompt back.
    #[doc(hidden)]
    Composable { frames: Vec<Frame>, reinstall: Option<Value> },
    /// From `call/cc`: the frames above the nearest `reset` prompt (or all of them), outermost
    /// first. Calling it replaces the frames above the caller's nearest `reset`.
    #[doc(hidden)]
    Escape { frames: Vec<Frame> },
}

impl Closure {
    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        if let Some(e) = self.env {
            f(Value::Ref(e));
        }
    }
}

impl Env {
    /// An environment holding `vals`, inside `parent`.
    pub(crate) fn new(vals: &[Value], parent: Option<Ref>) -> Env {
        Env { vals: Slots::build(vals.len(), |s| s.copy_from_slice(vals)), parent }
    }

    /// Its variables' values.
    pub(crate) fn values(&self) -> &[Value] {
        self.vals.get()
    }

    /// The environment it is inside.
    pub(crate) fn parent(&self) -> Option<Ref> {
        self.parent
    }

    pub(crate) fn capacity_bytes(&self) -> usize {
        match &self.vals {
            Slots::Small(..) => 0,
            Slots::Big(v) => v.capacity() * std::mem::size_of::<Value>(),
        }
    }

    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        self.vals.get().iter().copied().for_each(&mut *f);
        if let Some(p) = self.parent {
            f(Value::Ref(p));
        }
    }
}

impl Cont {
    fn frames(&self) -> &[Frame] {
        match self {
            Cont::Composable { frames, .. } | Cont::Escape { frames } => frames,
        }
    }

    pub(crate) fn capacity_bytes(&self) -> usize {
        std::mem::size_of_val(self.frames())
    }

    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        self.frames().iter().for_each(|fr| fr.trace(&mut *f));
        if let Cont::Composable { reinstall: Some(t), .. } = self {
            f(*t);
        }
    }
}

/// Limits for untrusted programs.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Steps of the machine before "out of fuel" (`None`: no limit).
    pub fuel: Option<u64>,
    /// Continuation frames (the depth of non-tail calls and pending forms).
    pub frames: u32,
    /// Live heap objects, a big one (string, vector, record, hash table) counting one per 64
    /// bytes it holds, so the cap bounds memory, not only the number of objects.
    pub heap_objects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { fuel: None, frames: 10_000_000, heap_objects: usize::MAX }
    }
}

/// What the machine does next.
pub(crate) enum State {
    /// Evaluate an expression in an environment.
    Eval(Rc<Expr>, Option<Ref>),
    /// Return a value to the continuation.
    Return(Value),
    /// The current task parked itself: run another (see `tasks`).
    Switch,
}

impl State {
    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        match self {
            State::Eval(_, env) => env.iter().for_each(|e| f(Value::Ref(*e))),
            State::Return(v) => f(*v),
            State::Switch => {}
        }
    }
}

/// The variables the compiler knows in one environment.
#[derive(Default)]
struct Scope {
    vars: Vec<Sym>,
    /// Whether each is a `define`d variable (checked on reading) rather than a parameter.
    defs: Vec<bool>,
}

impl Scope {
    fn params(vars: Vec<Sym>) -> Scope {
        let defs = vec![false; vars.len()];
        Scope { vars, defs }
    }
}

/// An OmniLisp interpreter: a heap, the globals, and what the program printed.
pub struct Interp {
    pub(crate) heap: Heap,
    pub(crate) syms: Symbols,
    /// Global values by slot; `Value::Undefined` until defined.
    pub(crate) globals: Vec<Value>,
    global_slots: HashMap<Sym, u32>,
    pub(crate) global_names: Vec<Sym>,
    /// The globals as the builtins and the prelude left them (see `migrate`: a thread gets
    /// its own, and only the globals a program changed are copied to it).
    pub(crate) prelude_globals: Vec<Value>,
    /// Which objects here stand for shared atoms and record types of other threads (see
    /// `migrate`).
    pub(crate) identities: super::migrate::Identities,
    macros: HashMap<Sym, Rc<Macro>>,
    /// Values compiled code refers to (quoted data): always reachable.
    pub(crate) constants: Vec<Value>,
    pub(crate) limits: Limits,
    pub(super) steps: u64,
    out: String,
    /// Print straight to standard output instead of collecting it.
    pub(crate) to_stdout: bool,
    s: Specials,
    compile_depth: usize,
    scopes: Vec<Scope>,
    /// Vectors for call operands, reused from call to call.
    arg_pool: Vec<Vec<Value>>,
    /// The fast path's state (see [`super::fast`]).
    pub(super) fast: super::fast::Fast,
    /// The running task's continuation: frames, innermost last.
    pub(crate) stack: Vec<Frame>,
    /// The green tasks and their scheduler.
    pub(crate) sched: super::tasks::Sched,
    /// The last `dynamic-wind` id given out.
    wind_ids: u64,
    /// Whether the prelude is being compiled.
    loading_prelude: bool,
}

/// How deeply expressions (not quoted data) may nest.
const MAX_COMPILE_DEPTH: usize = 10_000;

/// The symbols the compiler looks for.
struct Specials {
    quote: Sym,
    r#if: Sym,
    define: Sym,
    set: Sym,
    lambda: Sym,
    begin: Sym,
    r#let: Sym,
    let_star: Sym,
    letrec: Sym,
    letrec_star: Sym,
    and: Sym,
    or: Sym,
    cond: Sym,
    r#else: Sym,
    arrow: Sym,
    when: Sym,
    unless: Sym,
    prompt: Sym,
    control: Sym,
    reset: Sym,
    shift: Sym,
    reset_tag: Sym,
    tmp: Sym,
    quasiquote: Sym,
    unquote: Sym,
    unquote_splicing: Sym,
    case: Sym,
    r#do: Sym,
    do_loop: Sym,
    define_syntax: Sym,
    define_record_type: Sym,
    let_values: Sym,
    let_star_values: Sym,
    guard: Sym,
    select: Sym,
}

impl Default for Interp {
    fn default() -> Self {
        Interp::new()
    }
}

impl fmt::Debug for Interp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interp").field("heap", &self.heap).field("steps", &self.steps).finish()
    }
}

/// A body's forms after macro expansion: borrowed from the source, or made by a macro.
enum Form<'d> {
    Src(&'d Datum),
    Made(Datum),
}

impl Form<'_> {
    fn get(&self) -> &Datum {
        match self {
            Form::Src(d) => d,
            Form::Made(d) => d,
        }
    }
}

impl Interp {
    /// A fresh interpreter with the builtins and the prelude, and no limits.
    pub fn new() -> Interp {
        Interp::with_limits(Limits::default())
    }

    /// A fresh interpreter under `limits`.
    pub fn with_limits(limits: Limits) -> Interp {
        let mut syms = Symbols::default();
        let mut i = |n: &str| syms.intern(n);
        let s = Specials {
            quote: i("quote"),
            r#if: i("if"),
            define: i("define"),
            set: i("set!"),
            lambda: i("lambda"),
            begin: i("begin"),
            r#let: i("let"),
            let_star: i("let*"),
            letrec: i("letrec"),
            letrec_star: i("letrec*"),
            and: i("and"),
            or: i("or"),
            cond: i("cond"),
            r#else: i("else"),
            arrow: i("=>"),
            when: i("when"),
            unless: i("unless"),
            prompt: i("prompt"),
            control: i("control"),
            reset: i("reset"),
            shift: i("shift"),
            reset_tag: i(" reset"),
            tmp: i(" tmp"),
            quasiquote: i("quasiquote"),
            unquote: i("unquote"),
            unquote_splicing: i("unquote-splicing"),
            case: i("case"),
            r#do: i("do"),
            do_loop: i(" do"),
            define_syntax: i("define-syntax"),
            define_record_type: i("define-record-type"),
            let_values: i("let-values"),
            let_star_values: i("let*-values"),
            guard: i("guard"),
            select: i("select"),
        };
        // The builtins and the prelude load without limits; the caller's apply from then on.
        let mut interp = Interp {
            heap: Heap::new(),
            syms,
            globals: Vec::new(),
            global_slots: HashMap::new(),
            global_names: Vec::new(),
            prelude_globals: Vec::new(),
            identities: Default::default(),
            macros: HashMap::new(),
            constants: Vec::new(),
            limits: Limits::default(),
            steps: 0,
            out: String::new(),
            to_stdout: false,
            s,
            compile_depth: 0,
            scopes: Vec::new(),
            arg_pool: Vec::new(),
            fast: Default::default(),
            stack: Vec::new(),
            sched: super::tasks::Sched::default(),
            wind_ids: 0,
            loading_prelude: true,
        };
        super::builtins::install(&mut interp);
        interp.eval_str(super::builtins::PRELUDE, "prelude").expect("the prelude evaluates");
        interp.eval_str(super::tasks::PRELUDE, "prelude").expect("the prelude evaluates");
        interp.loading_prelude = false;
        interp.prelude_globals = interp.globals.clone();
        interp.steps = 0;
        interp.limits = limits;
        interp.heap.set_limit(limits.heap_objects);
        interp
    }

    /// The slot of the global named `s`, made (undefined) on first use.
    pub(crate) fn global_slot(&mut self, s: Sym) -> u32 {
        if let Some(&g) = self.global_slots.get(&s) {
            return g;
        }
        let g = u32::try_from(self.globals.len()).expect("under 2^32 globals");
        self.globals.push(Value::Undefined);
        self.global_names.push(s);
        self.global_slots.insert(s, g);
        g
    }

    /// The value of the global `name`, if it is defined.
    pub(crate) fn global(&self, name: &str) -> Option<Value> {
        let s = self.syms.lookup(name)?;
        let g = *self.global_slots.get(&s)?;
        Some(self.globals[g as usize]).filter(|v| *v != Value::Undefined)
    }

    fn def_builtin(&mut self, name: &'static str, arity: (usize, Option<usize>), f: PrimFn) {
        let r = self.heap.alloc(Obj::Prim(Prim { name, arity, f })).expect("no limit yet");
        self.constants.push(Value::Ref(r));
        let s = self.syms.intern(name);
        let g = self.global_slot(s);
        self.globals[g as usize] = Value::Ref(r);
    }

    /// Defines the global `name` as the builtin `f`.
    pub(crate) fn def_prim(
        &mut self,
        name: &'static str,
        arity: (usize, Option<usize>),
        f: fn(&mut Interp, &[Value]) -> Result<Value, String>,
    ) {
        self.def_builtin(name, arity, PrimFn::Plain(f));
    }

    /// Defines the global `name` as a builtin that works on the continuation.
    pub(crate) fn def_control(
        &mut self,
        name: &'static str,
        arity: (usize, Option<usize>),
        c: Ctl,
    ) {
        self.def_builtin(name, arity, PrimFn::Control(c));
    }

    /// The heap's counts: live objects, bytes, collections.
    pub fn heap_stats(&self) -> super::heap::HeapStats {
        self.heap.stats()
    }

    /// The fuel for a thread this interpreter starts (`Ok(None)`: no fuel limit). Under a
    /// limit, starting it costs `cost` steps and it gets half of what is left then, taken
    /// from this interpreter, so all the threads of a program together never run more steps
    /// than its limit; `Err` when too little is left.
    pub(crate) fn fuel_for_thread(&mut self, cost: u64) -> Result<Option<u64>, String> {
        let Some(fuel) = self.limits.fuel else { return Ok(None) };
        let left = fuel.saturating_sub(self.steps);
        if left <= cost {
            return Err(format!("out of fuel: starting a thread takes {cost} steps"));
        }
        let given = (left - cost) / 2;
        self.limits.fuel = Some(fuel - cost - given);
        Ok(Some(given))
    }

    /// Machine steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Takes what the program printed so far.
    pub fn take_output(&mut self) -> String {
        std::mem::take(&mut self.out)
    }

    pub(crate) fn print(&mut self, s: &str) {
        if self.to_stdout {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            // A closed stdout (a pipe whose reader went away) is not the program's error.
            let _ = out.write_all(s.as_bytes());
            if s.contains('\n') {
                let _ = out.flush();
            }
        } else {
            self.out.push_str(s);
        }
    }

    /// Sends what the program prints (`display`, `write`, `newline`) straight to standard
    /// output, as the `omnilisp` command does, instead of collecting it for
    /// [`take_output`](Interp::take_output).
    pub fn print_to_stdout(&mut self, on: bool) {
        self.to_stdout = on;
    }

    /// Reads and evaluates every datum of `src`, returning the last value printed with
    /// `write` (empty for an unspecified value).
    ///
    /// # Errors
    ///
    /// The first read or Lisp error, with its location; [`LispError::exit_status`] says
    /// whether it is the program calling `exit`.
    pub fn eval_str(&mut self, src: &str, file: &str) -> Result<String, LispError> {
        let file: Rc<str> = file.into();
        let mut last = Value::Unspecified;
        for d in super::Reader::new(src.as_bytes(), &file) {
            let d = d.map_err(|e| {
                *err(
                    format!("read error: {}", e.message),
                    Some(&Loc { file: file.clone(), span: e.span }),
                )
            })?;
            self.scopes.clear();
            self.compile_depth = 0;
            let e = self.compile(&d, &file).map_err(|e| *e)?;
            last = self.run(e).map_err(|e| *e)?;
        }
        Ok(self.write_string(last))
    }

    /// `v` as `write` prints it.
    pub fn write_string(&self, v: Value) -> String {
        let mut s = String::new();
        self.heap.write(v, &self.syms, &mut s);
        s
    }

    /// `v` as `display` prints it.
    pub fn display_string(&self, v: Value) -> String {
        let mut s = String::new();
        self.heap.display(v, &self.syms, &mut s);
        s
    }

    fn alloc(&mut self, obj: Obj) -> Result<Ref, Fail> {
        self.heap.alloc(obj).map_err(|e: HeapFull| limit_err(e.to_string(), None))
    }

    // --- the compiler ----------------------------------------------------------------------

    fn loc(file: &Rc<str>, d: &Datum) -> Loc {
        Loc { file: file.clone(), span: d.span() }
    }

    /// A datum as a constant value (quoted data).
    fn datum_value(&mut self, d: &Datum) -> Result<Value, Fail> {
        // Iterative: build lists from the end, with an explicit stack of pending work.
        enum Work<'d> {
            Datum(&'d Datum),
            List(usize, bool),
            Vector(usize),
        }
        let mut work = vec![Work::Datum(d)];
        let mut vals: Vec<Value> = Vec::new();
        while let Some(w) = work.pop() {
            match w {
                Work::Datum(d) => match d.kind() {
                    DatumKind::Int(n) => vals.push(Value::Int(*n)),
                    DatumKind::Float(x) => vals.push(Value::Float(*x)),
                    DatumKind::Bool(b) => vals.push(Value::Bool(*b)),
                    DatumKind::Char(c) => vals.push(Value::Char(*c)),
                    DatumKind::Symbol(s) => {
                        let s = self.syms.intern(s);
                        vals.push(Value::Sym(s));
                    }
                    DatumKind::Str(s) => {
                        let r = self.alloc(Obj::Str(s.clone()))?;
                        vals.push(Value::Ref(r));
                    }
                    DatumKind::List(items, tail) => {
                        work.push(Work::List(items.len(), tail.is_some()));
                        if let Some(t) = tail {
                            work.push(Work::Datum(t));
                        }
                        for it in items.iter().rev() {
                            work.push(Work::Datum(it));
                        }
                    }
                    DatumKind::Vector(items) => {
                        work.push(Work::Vector(items.len()));
                        for it in items.iter().rev() {
                            work.push(Work::Datum(it));
                        }
                    }
                },
                Work::List(n, dotted) => {
                    let mut tail =
                        if dotted { vals.pop().unwrap_or(Value::Nil) } else { Value::Nil };
                    for _ in 0..n {
                        let v = vals.pop().unwrap_or(Value::Nil);
                        tail = Value::Ref(self.alloc(Obj::Pair(v, tail))?);
                    }
                    vals.push(tail);
                }
                Work::Vector(n) => {
                    let items = vals.split_off(vals.len() - n);
                    let r = self.alloc(Obj::Vector(items))?;
                    vals.push(Value::Ref(r));
                }
            }
        }
        let v = vals.pop().unwrap_or(Value::Nil);
        self.constants.push(v);
        Ok(v)
    }

    fn sym_of(&mut self, d: &Datum) -> Option<Sym> {
        d.as_symbol().map(|s| self.syms.intern(s))
    }

    fn bad(&self, what: &str, d: &Datum, file: &Rc<str>) -> Fail {
        err(format!("bad syntax: {what}; got {d}"), Some(&Self::loc(file, d)))
    }

    fn is_local(&self, s: Sym) -> bool {
        self.scopes.iter().any(|sc| sc.vars.contains(&s))
    }

    fn resolve(&mut self, s: Sym, loc: Loc) -> Expr {
        for (depth, scope) in self.scopes.iter().rev().enumerate() {
            if let Some(i) = scope.vars.iter().rposition(|v| *v == s) {
                let (d, i) = (depth as u32, i as u32);
                return if scope.defs[i as usize] {
                    Expr::LocalDef(d, i, s, loc)
                } else {
                    Expr::Local(d, i)
                };
            }
        }
        Expr::Global(self.global_slot(s), loc)
    }

    /// Compiles `f` with `scope` pushed, giving the code and the scope's final size.
    fn in_scope<T>(
        &mut self,
        scope: Scope,
        f: impl FnOnce(&mut Self) -> Result<T, Fail>,
    ) -> Result<(T, usize), Fail> {
        self.scopes.push(scope);
        let r = f(self);
        let size = self.scopes.pop().map_or(0, |s| s.vars.len());
        r.map(|t| (t, size))
    }

    /// The head symbol of `d` when it names a macro or a special form (not a local).
    fn keyword(&mut self, d: &Datum) -> Option<Sym> {
        let DatumKind::List(items, _) = d.kind() else { return None };
        let h = self.sym_of(items.first()?)?;
        (!self.is_local(h)).then_some(h)
    }

    /// Expands the macro use `d`, if it is one (repeatedly, until its head is no macro).
    fn expand(&mut self, d: &Datum, file: &Rc<str>) -> Result<Option<Datum>, Fail> {
        let mut out: Option<Datum> = None;
        for _ in 0..MAX_COMPILE_DEPTH {
            let cur = out.as_ref().unwrap_or(d);
            let Some(h) = self.keyword(cur) else { break };
            let next = if let Some(m) = self.macros.get(&h).cloned() {
                m.expand(cur)
            } else if h == self.s.define_record_type {
                syntax::record_type(cur)
            } else if h == self.s.let_values || h == self.s.let_star_values {
                syntax::let_values(cur)
            } else if h == self.s.select {
                syntax::select(cur)
            } else {
                break;
            };
            out = Some(next.map_err(|m| err(m, Some(&Self::loc(file, cur))))?);
        }
        Ok(out)
    }

    /// A body's forms, macros expanded and `begin`s spliced, and the names it defines added
    /// to the innermost scope.
    fn body_forms<'d>(
        &mut self,
        items: &'d [Datum],
        file: &Rc<str>,
    ) -> Result<Vec<Form<'d>>, Fail> {
        let mut out = Vec::new();
        let mut work: Vec<Form<'d>> = items.iter().rev().map(Form::Src).collect();
        while let Some(f) = work.pop() {
            let f = match self.expand(f.get(), file)? {
                Some(d) => Form::Made(d),
                None => f,
            };
            let head = self.keyword(f.get());
            if head == Some(self.s.begin) {
                let inner: Vec<Datum> = f.get().items()[1..].iter().map(syntax::copy).collect();
                work.extend(inner.into_iter().rev().map(Form::Made));
                continue;
            }
            if head == Some(self.s.define) && !self.scopes.is_empty() {
                let name = match f.get().items().get(1).map(Datum::kind) {
                    Some(DatumKind::Symbol(s)) => Some(s.as_str()),
                    Some(DatumKind::List(sig, _)) => sig.first().and_then(Datum::as_symbol),
                    _ => None,
                };
                if let Some(n) = name {
                    let n = self.syms.intern(n);
                    let scope = self.scopes.last_mut().expect("a scope");
                    if !scope.vars.contains(&n) {
                        scope.vars.push(n);
                        scope.defs.push(true);
                    }
                }
            }
            out.push(f);
        }
        Ok(out)
    }

    fn body(&mut self, items: &[Datum], file: &Rc<str>, whole: &Datum) -> Result<Rc<Expr>, Fail> {
        if items.is_empty() {
            return Err(self.bad("a body needs at least one expression", whole, file));
        }
        let forms = self.body_forms(items, file)?;
        let mut exprs = Vec::with_capacity(forms.len());
        for f in &forms {
            exprs.push(self.compile(f.get(), file)?);
        }
        Ok(match exprs.len() {
            0 => Rc::new(Expr::Const(Value::Unspecified)),
            1 => exprs.pop().expect("one"),
            _ => Rc::new(Expr::Seq(exprs.into())),
        })
    }

    fn lambda(
        &mut self,
        params: &Datum,
        body: &[Datum],
        file: &Rc<str>,
        whole: &Datum,
    ) -> Result<Rc<Lambda>, Fail> {
        let (ps, rest) = match params.kind() {
            DatumKind::Symbol(s) => (Vec::new(), Some(self.syms.intern(s))),
            DatumKind::List(items, tail) => self.params(items, tail.as_deref(), file)?,
            _ => return Err(self.bad("expected a parameter list", params, file)),
        };
        self.lambda_from(ps, rest, body, file, whole)
    }

    fn params(
        &mut self,
        items: &[Datum],
        tail: Option<&Datum>,
        file: &Rc<str>,
    ) -> Result<(Vec<Sym>, Option<Sym>), Fail> {
        let mut ps = Vec::new();
        for p in items {
            ps.push(self.sym_of(p).ok_or_else(|| self.bad("parameters must be symbols", p, file))?);
        }
        let rest = match tail {
            Some(t) => Some(
                self.sym_of(t)
                    .ok_or_else(|| self.bad("a rest parameter must be a symbol", t, file))?,
            ),
            None => None,
        };
        Ok((ps, rest))
    }

    fn lambda_from(
        &mut self,
        ps: Vec<Sym>,
        rest: Option<Sym>,
        body: &[Datum],
        file: &Rc<str>,
        whole: &Datum,
    ) -> Result<Rc<Lambda>, Fail> {
        let params = ps.len();
        let mut vars = ps;
        vars.extend(rest);
        let (body, size) = self.in_scope(Scope::params(vars), |c| c.body(body, file, whole))?;
        Ok(Rc::new(Lambda::new(params, rest.is_some(), size, body, Self::loc(file, whole))))
    }

    /// `((name init) ...)` of a `let` form: the names, and the inits compiled in the current
    /// scope.
    fn bindings(&mut self, d: &Datum, file: &Rc<str>) -> Result<(Vec<Sym>, Vec<Rc<Expr>>), Fail> {
        let DatumKind::List(items, None) = d.kind() else {
            return Err(self.bad("expected a list of bindings `((name value) ...)`", d, file));
        };
        let (mut names, mut inits) = (Vec::new(), Vec::new());
        for b in items {
            let [name, init] = b.items() else {
                return Err(self.bad("a binding is `(name value)`", b, file));
            };
            let s = self
                .sym_of(name)
                .ok_or_else(|| self.bad("a binding's name must be a symbol", name, file))?;
            names.push(s);
            inits.push(self.compile(init, file)?);
        }
        Ok((names, inits))
    }

    fn call_of(&self, lam: Rc<Lambda>, args: Vec<Rc<Expr>>, loc: Loc) -> Rc<Expr> {
        let mut call = vec![Rc::new(Expr::Lambda(lam))];
        call.extend(args);
        self.make_call(call, loc)
    }

    fn make_call(&self, parts: Vec<Rc<Expr>>, loc: Loc) -> Rc<Expr> {
        Rc::new(self.call_expr(parts.into(), loc))
    }

    /// The call of `parts` (the operator first), with what is known of the operator now.
    pub(crate) fn call_expr(&self, parts: Rc<[Rc<Expr>]>, loc: Loc) -> Expr {
        let simple = parts.iter().all(|p| simple(p));
        let n = parts.len() - 1;
        let mut callee = match &*parts[0] {
            Expr::Lambda(l) => Callee::Lambda(l.clone()),
            Expr::Global(g, _) => match self.known(self.globals[*g as usize], n) {
                Some(k) => Callee::Prim(Known { global: Some(*g), ..k }),
                None => Callee::Global,
            },
            Expr::Const(v) => self.known(*v, n).map_or(Callee::Unknown, Callee::Prim),
            _ => Callee::Unknown,
        };
        if let Callee::Prim(k) = &mut callee {
            k.operands = match &parts[1..] {
                [a] => Operand::of(a).map(Operands::One),
                [a, b] => Operand::of(a).zip(Operand::of(b)).map(|(a, b)| Operands::Two(a, b)),
                _ => None,
            }
            .unwrap_or(Operands::Other);
        }
        Expr::Call(Rc::new(Call { parts, loc, simple, callee }))
    }

    /// `v` as a known builtin called with `n` operands, if it is a builtin that works on its
    /// arguments only.
    fn known(&self, v: Value, n: usize) -> Option<Known> {
        let Value::Ref(r) = v else { return None };
        let Ok(Obj::Prim(Prim { name, arity: (min, max), f: PrimFn::Plain(f) })) = self.heap.get(r)
        else {
            return None;
        };
        let arity_ok = n >= *min && max.is_none_or(|m| n <= m);
        let operands = Operands::Other;
        Some(Known { global: None, value: r, f: *f, name, arity_ok, op: Op::of(name), operands })
    }

    /// A procedure of `params` whose body `f` compiles, called at once with `inits`.
    fn let_of(
        &mut self,
        params: Vec<Sym>,
        inits: Vec<Rc<Expr>>,
        loc: Loc,
        f: impl FnOnce(&mut Self) -> Result<Rc<Expr>, Fail>,
    ) -> Result<Rc<Expr>, Fail> {
        let n = params.len();
        let (body, size) = self.in_scope(Scope::params(params), f)?;
        let lam = Rc::new(Lambda::new(n, false, size, body, loc.clone()));
        Ok(self.call_of(lam, inits, loc))
    }

    /// `((lambda () (define name (lambda params body)) name) inits ...)`: a local recursive
    /// procedure called at once, as named `let` and `do` are.
    fn local_loop(
        &mut self,
        name: Sym,
        params: Vec<Sym>,
        inits: Vec<Rc<Expr>>,
        loc: Loc,
        body: impl FnOnce(&mut Self) -> Result<Rc<Expr>, Fail>,
    ) -> Result<Rc<Expr>, Fail> {
        let scope = Scope { vars: vec![name], defs: vec![true] };
        let (thunk_body, size) = self.in_scope(scope, |c| {
            let n = params.len();
            let (body, size) = c.in_scope(Scope::params(params), body)?;
            let lam = Rc::new(Lambda::new(n, false, size, body, loc.clone()));
            let set = Rc::new(Expr::SetLocal(0, 0, Rc::new(Expr::Lambda(lam))));
            let get = Rc::new(Expr::Local(0, 0));
            Ok(Rc::new(Expr::Seq(vec![set, get].into())))
        })?;
        let thunk = Rc::new(Lambda::new(0, false, size, thunk_body, loc.clone()));
        let make = self.call_of(thunk, Vec::new(), loc.clone());
        let mut call = vec![make];
        call.extend(inits);
        Ok(self.make_call(call, loc))
    }

    /// Compiles one datum.
    pub(crate) fn compile(&mut self, d: &Datum, file: &Rc<str>) -> Result<Rc<Expr>, Fail> {
        // The compiler recurses on nested expressions (not on quoted data): bound it, so deep
        // code is an error and never a host stack overflow.
        if self.compile_depth >= MAX_COMPILE_DEPTH {
            return Err(err(
                format!("expression nested deeper than {MAX_COMPILE_DEPTH} levels"),
                Some(&Self::loc(file, d)),
            ));
        }
        self.compile_depth += 1;
        // Each level takes several KiB of stack in a debug build: grow the stack onto the heap
        // when little is left, so the depth limit holds on any thread.
        let r = stacker::maybe_grow(64 << 10, 1 << 20, || match self.expand(d, file) {
            Ok(Some(x)) => self.compile_inner(&x, file),
            Ok(None) => self.compile_inner(d, file),
            Err(e) => Err(e),
        });
        self.compile_depth -= 1;
        r
    }

    fn compile_inner(&mut self, d: &Datum, file: &Rc<str>) -> Result<Rc<Expr>, Fail> {
        let loc = Self::loc(file, d);
        let items = match d.kind() {
            DatumKind::Symbol(s) => {
                let s = self.syms.intern(s);
                let var = self.resolve(s, loc);
                // The prelude's procedures use the builtins as they were when it loaded, so a
                // program that defines its own `reverse` does not change what `map` does.
                if let (true, Expr::Global(g, _)) = (self.loading_prelude, &var) {
                    let v = self.globals[*g as usize];
                    if v != Value::Undefined {
                        return Ok(Rc::new(Expr::Const(v)));
                    }
                }
                return Ok(Rc::new(var));
            }
            DatumKind::List(items, None) if !items.is_empty() => items,
            DatumKind::List(_, Some(_)) => {
                return Err(self.bad("a call cannot be a dotted list", d, file))
            }
            DatumKind::List(..) => {
                return Err(self.bad("`()` is not an expression; quote it: '()", d, file))
            }
            _ => return Ok(Rc::new(Expr::Const(self.datum_value(d)?))),
        };
        let Some(h) = self.keyword(d) else { return self.call(items, file, loc) };
        let s = &self.s;
        let args = &items[1..];
        if h == s.quote {
            let [q] = args else { return Err(self.bad("`quote` takes one datum", d, file)) };
            return Ok(Rc::new(Expr::Const(self.datum_value(q)?)));
        }
        if h == s.r#if {
            let (c, t, e) = match args {
                [c, t] => (c, t, None),
                [c, t, e] => (c, t, Some(e)),
                _ => return Err(self.bad("`if` is `(if test then [else])`", d, file)),
            };
            let c = self.compile(c, file)?;
            let t = self.compile(t, file)?;
            let e = match e {
                Some(e) => self.compile(e, file)?,
                None => Rc::new(Expr::Const(Value::Unspecified)),
            };
            return Ok(Rc::new(Expr::If(c, t, e)));
        }
        if h == s.define {
            const USAGE: &str =
                "`define` is `(define name value)` or `(define (name params ...) body ...)`";
            let (name, value) = match args {
                [name, value] if name.as_symbol().is_some() => {
                    let n = self.sym_of(name).expect("a symbol");
                    (n, self.compile(value, file)?)
                }
                [sig, body @ ..] => match sig.kind() {
                    DatumKind::List(sig_items, tail) if !sig_items.is_empty() => {
                        let n = self.sym_of(&sig_items[0]).ok_or_else(|| {
                            self.bad("a procedure's name must be a symbol", &sig_items[0], file)
                        })?;
                        let (ps, rest) = self.params(&sig_items[1..], tail.as_deref(), file)?;
                        let lam = self.lambda_from(ps, rest, body, file, d)?;
                        (n, Rc::new(Expr::Lambda(lam)))
                    }
                    _ => return Err(self.bad(USAGE, d, file)),
                },
                _ => return Err(self.bad(USAGE, d, file)),
            };
            return Ok(Rc::new(match self.scopes.last_mut() {
                None => Expr::DefGlobal(self.global_slot(name), value),
                Some(scope) => {
                    // Found by `body_forms` unless the define is somewhere a body's
                    // definitions are not looked for (inside `when`): it joins the scope then.
                    let i = match scope.vars.iter().rposition(|v| *v == name) {
                        Some(i) => i,
                        None => {
                            scope.vars.push(name);
                            scope.defs.push(true);
                            scope.vars.len() - 1
                        }
                    };
                    Expr::SetLocal(0, i as u32, value)
                }
            }));
        }
        if h == s.set {
            let [name, value] = args else {
                return Err(self.bad("`set!` is `(set! name value)`", d, file));
            };
            let n = self
                .sym_of(name)
                .ok_or_else(|| self.bad("`set!` needs a variable name", name, file))?;
            let value = self.compile(value, file)?;
            return Ok(Rc::new(match self.resolve(n, loc.clone()) {
                Expr::Local(d, i) | Expr::LocalDef(d, i, ..) => Expr::SetLocal(d, i, value),
                Expr::Global(g, _) => Expr::SetGlobal(g, value, loc),
                _ => unreachable!("resolve gives variables"),
            }));
        }
        if h == s.lambda {
            let [params, body @ ..] = args else {
                return Err(self.bad("`lambda` is `(lambda params body ...)`", d, file));
            };
            return Ok(Rc::new(Expr::Lambda(self.lambda(params, body, file, d)?)));
        }
        if h == s.begin {
            if args.is_empty() {
                return Ok(Rc::new(Expr::Const(Value::Unspecified)));
            }
            return self.body(args, file, d);
        }
        if h == s.and || h == s.or {
            let is_and = h == s.and;
            if args.is_empty() {
                return Ok(Rc::new(Expr::Const(Value::Bool(is_and))));
            }
            let exprs: Vec<Rc<Expr>> =
                args.iter().map(|a| self.compile(a, file)).collect::<Result<_, _>>()?;
            if exprs.len() == 1 {
                return Ok(exprs.into_iter().next().expect("one"));
            }
            return Ok(Rc::new(if is_and {
                Expr::And(exprs.into())
            } else {
                Expr::Or(exprs.into())
            }));
        }
        if h == s.when || h == s.unless {
            let is_when = h == s.when;
            let [test, body @ ..] = args else {
                return Err(self.bad("`when`/`unless` is `(when test body ...)`", d, file));
            };
            let (t, b) = (self.compile(test, file)?, self.body(body, file, d)?);
            let none = Rc::new(Expr::Const(Value::Unspecified));
            return Ok(Rc::new(if is_when { Expr::If(t, b, none) } else { Expr::If(t, none, b) }));
        }
        if h == s.r#let {
            // Named let: a local recursive procedure called at once.
            if let [name, bindings, body @ ..] = args {
                if let Some(n) = self.sym_of(name) {
                    let (params, inits) = self.bindings(bindings, file)?;
                    return self.local_loop(n, params, inits, loc, |c| c.body(body, file, d));
                }
            }
            let [bindings, body @ ..] = args else {
                return Err(self.bad("`let` is `(let ((name value) ...) body ...)`", d, file));
            };
            let (params, inits) = self.bindings(bindings, file)?;
            return self.let_of(params, inits, loc, |c| c.body(body, file, d));
        }
        if h == s.let_star {
            let [bindings, body @ ..] = args else {
                return Err(self.bad("`let*` is `(let* ((name value) ...) body ...)`", d, file));
            };
            let DatumKind::List(bs, None) = bindings.kind() else {
                return Err(self.bad("expected a list of bindings `((name value) ...)`", d, file));
            };
            return self.let_star(bs, body, file, d, loc);
        }
        if h == s.letrec || h == s.letrec_star {
            let [bindings, body @ ..] = args else {
                return Err(self.bad(
                    "`letrec` is `(letrec ((name value) ...) body ...)`",
                    d,
                    file,
                ));
            };
            let DatumKind::List(bs, None) = bindings.kind() else {
                return Err(self.bad("expected a list of bindings `((name value) ...)`", d, file));
            };
            let mut names = Vec::new();
            for b in bs {
                match b.items() {
                    [n, _] if n.as_symbol().is_some() => {
                        names.push(self.sym_of(n).expect("symbol"))
                    }
                    _ => return Err(self.bad("a binding is `(name value)`", b, file)),
                }
            }
            let scope = Scope { defs: vec![true; names.len()], vars: names };
            let (body, size) = self.in_scope(scope, |c| {
                let mut seq = Vec::new();
                for (i, b) in bs.iter().enumerate() {
                    let init = c.compile(&b.items()[1], file)?;
                    seq.push(Rc::new(Expr::SetLocal(0, i as u32, init)));
                }
                seq.push(c.body(body, file, d)?);
                Ok(Rc::new(Expr::Seq(seq.into())))
            })?;
            let lam = Rc::new(Lambda::new(0, false, size, body, loc.clone()));
            return Ok(self.call_of(lam, Vec::new(), loc));
        }
        if h == s.quasiquote {
            let [q] = args else { return Err(self.bad("`quasiquote` takes one datum", d, file)) };
            return self.quasi(q, 1, file);
        }
        if h == s.case {
            let [key, clauses @ ..] = args else {
                return Err(self.bad(
                    "`case` is `(case key ((datum ...) body ...) ... [(else body ...)])`",
                    d,
                    file,
                ));
            };
            let key = self.compile(key, file)?;
            let tmp = self.s.tmp;
            return self
                .let_of(vec![tmp], vec![key], loc.clone(), |c| c.case_clauses(clauses, file));
        }
        if h == s.r#do {
            return self.r#do(args, file, d, loc);
        }
        if h == s.cond {
            return self.cond_clauses(args, file, None);
        }
        if h == s.prompt || h == s.reset {
            let (tag, body) = if h == s.reset {
                (Rc::new(Expr::Const(Value::Sym(self.s.reset_tag))), args)
            } else {
                let [tag, body @ ..] = args else {
                    return Err(self.bad("`prompt` is `(prompt tag body ...)`", d, file));
                };
                (self.compile(tag, file)?, body)
            };
            return Ok(Rc::new(Expr::Prompt(tag, self.body(body, file, d)?)));
        }
        if h == s.control || h == s.shift {
            let is_shift = h == s.shift;
            let (tag, k, body) = if is_shift {
                let [k, body @ ..] = args else {
                    return Err(self.bad("`shift` is `(shift k body ...)`", d, file));
                };
                (Rc::new(Expr::Const(Value::Sym(self.s.reset_tag))), k, body)
            } else {
                let [tag, k, body @ ..] = args else {
                    return Err(self.bad("`control` is `(control tag k body ...)`", d, file));
                };
                (self.compile(tag, file)?, k, body)
            };
            let k = self
                .sym_of(k)
                .ok_or_else(|| self.bad("the continuation's name must be a symbol", k, file))?;
            let (body, size) = self.in_scope(Scope::params(vec![k]), |c| c.body(body, file, d))?;
            return Ok(Rc::new(Expr::Control(tag, body, size, is_shift, loc)));
        }
        if h == s.guard {
            // (guard (var clause ...) body ...)
            const USAGE: &str = "`guard` is `(guard (name clause ...) body ...)`";
            let [spec, body @ ..] = args else { return Err(self.bad(USAGE, d, file)) };
            let DatumKind::List(spec_items, None) = spec.kind() else {
                return Err(self.bad(USAGE, d, file));
            };
            let Some((var, clauses)) = spec_items.split_first() else {
                return Err(self.bad(USAGE, d, file));
            };
            let var = self.sym_of(var).ok_or_else(|| self.bad(USAGE, d, file))?;
            let body = self.body(body, file, d)?;
            let (handler, size) = self.in_scope(Scope::params(vec![var]), |c| {
                c.cond_clauses(clauses, file, Some((var, loc.clone())))
            })?;
            let lam = Rc::new(Lambda::new(1, false, size, handler, loc.clone()));
            return Ok(Rc::new(Expr::Guard(body, lam)));
        }
        if h == s.define_syntax {
            let [name, spec] = args else {
                return Err(self.bad(
                    "`define-syntax` is `(define-syntax name (syntax-rules ...))`",
                    d,
                    file,
                ));
            };
            let n = self
                .sym_of(name)
                .ok_or_else(|| self.bad("a macro's name must be a symbol", name, file))?;
            let m = Macro::parse(spec).map_err(|m| err(m, Some(&Self::loc(file, spec))))?;
            self.macros.insert(n, Rc::new(m));
            return Ok(Rc::new(Expr::Const(Value::Unspecified)));
        }
        self.call(items, file, loc)
    }

    fn let_star(
        &mut self,
        bs: &[Datum],
        body: &[Datum],
        file: &Rc<str>,
        whole: &Datum,
        loc: Loc,
    ) -> Result<Rc<Expr>, Fail> {
        let Some((first, rest)) = bs.split_first() else {
            return self.let_of(Vec::new(), Vec::new(), loc, |c| c.body(body, file, whole));
        };
        let [name, init] = first.items() else {
            return Err(self.bad("a binding is `(name value)`", first, file));
        };
        let n = self
            .sym_of(name)
            .ok_or_else(|| self.bad("a binding's name must be a symbol", name, file))?;
        let init = self.compile(init, file)?;
        self.let_of(vec![n], vec![init], loc.clone(), |c| {
            if rest.is_empty() {
                c.body(body, file, whole)
            } else {
                c.let_star(rest, body, file, whole, loc)
            }
        })
    }

    /// `case` clauses, with the key in local slot 0 of the innermost scope.
    fn case_clauses(&mut self, clauses: &[Datum], file: &Rc<str>) -> Result<Rc<Expr>, Fail> {
        let memv = self.global_const("memv");
        let eqv = self.global_const("eqv?");
        let mut e: Rc<Expr> = Rc::new(Expr::Const(Value::Unspecified));
        for clause in clauses.iter().rev() {
            let parts = clause.items();
            let Some(data) = parts.first() else {
                return Err(self.bad("a `case` clause is `((datum ...) body ...)`", clause, file));
            };
            let body = self.body(&parts[1..], file, clause)?;
            if self.sym_of(data) == Some(self.s.r#else) {
                e = body;
                continue;
            }
            if !matches!(data.kind(), DatumKind::List(_, None)) {
                return Err(self.bad("a `case` clause starts with a list of data", data, file));
            }
            let key = Rc::new(Expr::Local(0, 0));
            let test = if data.items().len() <= 8 {
                // A few data: `eqv?` each, a builtin evaluated in place, not a call of `memv`.
                let mut tests = Vec::new();
                for d in data.items() {
                    let v = Rc::new(Expr::Const(self.datum_value(d)?));
                    tests.push(
                        self.make_call(vec![eqv.clone(), key.clone(), v], Self::loc(file, clause)),
                    );
                }
                match tests.len() {
                    0 => Rc::new(Expr::Const(Value::Bool(false))),
                    1 => tests.pop().expect("one"),
                    _ => Rc::new(Expr::Or(tests.into())),
                }
            } else {
                let list = Rc::new(Expr::Const(self.datum_value(data)?));
                self.make_call(vec![memv.clone(), key, list], Self::loc(file, clause))
            };
            e = Rc::new(Expr::If(test, body, e));
        }
        Ok(e)
    }

    /// `cond` clauses, front to back (a `=>` clause puts its test's value in a scope that
    /// the clauses after it are inside). When none holds: unspecified, or for a `guard`'s
    /// clauses (`reraise`), the guard's variable raised again, to the next guard out.
    fn cond_clauses(
        &mut self,
        clauses: &[Datum],
        file: &Rc<str>,
        reraise: Option<(Sym, Loc)>,
    ) -> Result<Rc<Expr>, Fail> {
        let Some((clause, rest)) = clauses.split_first() else {
            return Ok(match reraise {
                Some((var, loc)) => {
                    let raise = self.global_const("raise");
                    let v = Rc::new(self.resolve(var, loc.clone()));
                    self.make_call(vec![raise, v], loc)
                }
                None => Rc::new(Expr::Const(Value::Unspecified)),
            });
        };
        let parts = clause.items();
        let Some(first) = parts.first() else {
            return Err(self.bad("a `cond` clause is `(test body ...)`", clause, file));
        };
        if self.sym_of(first) == Some(self.s.r#else) {
            return self.body(&parts[1..], file, clause);
        }
        let test = self.compile(first, file)?;
        let loc = Self::loc(file, clause);
        if parts.len() == 3 && self.sym_of(&parts[1]) == Some(self.s.arrow) {
            let tmp = self.s.tmp;
            return self.let_of(vec![tmp], vec![test], loc.clone(), |c| {
                let f = c.compile(&parts[2], file)?;
                let get = Rc::new(Expr::Local(0, 0));
                let call = c.make_call(vec![f, get.clone()], loc);
                let more = c.cond_clauses(rest, file, reraise)?;
                Ok(Rc::new(Expr::If(get, call, more)))
            });
        }
        let more =
            stacker::maybe_grow(64 << 10, 1 << 20, || self.cond_clauses(rest, file, reraise))?;
        if parts.len() == 1 {
            return Ok(Rc::new(Expr::Or(vec![test, more].into())));
        }
        Ok(Rc::new(Expr::If(test, self.body(&parts[1..], file, clause)?, more)))
    }

    /// `(do ((var init step) ...) (test result ...) body ...)`: a named-let loop.
    fn r#do(
        &mut self,
        args: &[Datum],
        file: &Rc<str>,
        d: &Datum,
        loc: Loc,
    ) -> Result<Rc<Expr>, Fail> {
        let [specs, end, body @ ..] = args else {
            return Err(self.bad(
                "`do` is `(do ((var init step) ...) (test result ...) body ...)`",
                d,
                file,
            ));
        };
        let DatumKind::List(specs, None) = specs.kind() else {
            return Err(self.bad("`do` needs a list of `(var init step)`", specs, file));
        };
        let mut vars = Vec::new();
        let mut inits = Vec::new();
        let mut steps = Vec::new();
        for spec in specs {
            let (name, init, step) = match spec.items() {
                [n, i] => (n, i, None),
                [n, i, st] => (n, i, Some(st)),
                _ => return Err(self.bad("a `do` variable is `(var init [step])`", spec, file)),
            };
            let v = self
                .sym_of(name)
                .ok_or_else(|| self.bad("a `do` variable must be a symbol", name, file))?;
            vars.push(v);
            inits.push(self.compile(init, file)?);
            steps.push(step);
        }
        let [test, results @ ..] = end.items() else {
            return Err(self.bad("`do` needs `(test result ...)`", end, file));
        };
        let lp = self.s.do_loop;
        let vars2 = vars.clone();
        self.local_loop(lp, vars, inits, loc.clone(), |c| {
            let test = c.compile(test, file)?;
            let done = if results.is_empty() {
                Rc::new(Expr::Const(Value::Unspecified))
            } else {
                c.body(results, file, end)?
            };
            let mut again: Vec<Rc<Expr>> = vec![Rc::new(c.resolve(lp, loc.clone()))];
            for (v, st) in vars2.iter().zip(&steps) {
                again.push(match st {
                    Some(st) => c.compile(st, file)?,
                    None => Rc::new(c.resolve(*v, loc.clone())),
                });
            }
            let again = c.make_call(again, loc.clone());
            let mut seq = Vec::new();
            for b in body {
                seq.push(c.compile(b, file)?);
            }
            seq.push(again);
            Ok(Rc::new(Expr::If(test, done, Rc::new(Expr::Seq(seq.into())))))
        })
    }

    /// The builtin `name` as a constant, so code the compiler writes keeps working when a
    /// program rebinds the name.
    fn global_const(&mut self, name: &str) -> Rc<Expr> {
        Rc::new(Expr::Const(self.global(name).unwrap_or(Value::Unspecified)))
    }

    /// `quasiquote` at nesting `depth`: data stay constant, `unquote` is evaluated, and
    /// `unquote-splicing` is appended.
    fn quasi(&mut self, d: &Datum, depth: u32, file: &Rc<str>) -> Result<Rc<Expr>, Fail> {
        if self.compile_depth >= MAX_COMPILE_DEPTH {
            return Err(err(
                format!("expression nested deeper than {MAX_COMPILE_DEPTH} levels"),
                Some(&Self::loc(file, d)),
            ));
        }
        self.compile_depth += 1;
        let r = stacker::maybe_grow(64 << 10, 1 << 20, || self.quasi_inner(d, depth, file));
        self.compile_depth -= 1;
        r
    }

    fn quasi_inner(&mut self, d: &Datum, depth: u32, file: &Rc<str>) -> Result<Rc<Expr>, Fail> {
        let loc = Self::loc(file, d);
        if let DatumKind::Vector(items) = d.kind() {
            // `#(a ,b): the items as a quasiquoted list, made a vector.
            let as_list = Datum::new(
                DatumKind::List(items.iter().map(syntax::copy).collect(), None),
                d.span(),
            );
            let l = self.quasi(&as_list, depth, file)?;
            if let Expr::Const(_) = &*l {
                return Ok(Rc::new(Expr::Const(self.datum_value(d)?)));
            }
            let to_vector = self.global_const("list->vector");
            return Ok(self.make_call(vec![to_vector, l], loc));
        }
        let DatumKind::List(items, tail) = d.kind() else {
            return Ok(Rc::new(Expr::Const(self.datum_value(d)?)));
        };
        // (unquote e) / nested (quasiquote e): as a two-item list with a known head.
        if let ([head, x], None) = (&items[..], tail) {
            let h = self.sym_of(head);
            if h == Some(self.s.unquote) {
                if depth == 1 {
                    return self.compile(x, file);
                }
                return self.quasi_pair(self.s.unquote, x, depth - 1, file, &loc);
            }
            if h == Some(self.s.quasiquote) {
                return self.quasi_pair(self.s.quasiquote, x, depth + 1, file, &loc);
            }
            // An inner ,@ belongs to an inner quasiquote: one level less, kept as data.
            if h == Some(self.s.unquote_splicing) && depth > 1 {
                return self.quasi_pair(self.s.unquote_splicing, x, depth - 1, file, &loc);
            }
        }
        let (cons, append) = (self.global_const("cons"), self.global_const("append"));
        let mut acc = match tail {
            Some(t) => self.quasi(t, depth, file)?,
            None => Rc::new(Expr::Const(Value::Nil)),
        };
        for item in items.iter().rev() {
            if let [head, x] = item.items() {
                if depth == 1
                    && self.sym_of(head) == Some(self.s.unquote_splicing)
                    && matches!(item.kind(), DatumKind::List(_, None))
                {
                    let spliced = self.compile(x, file)?;
                    acc = self.make_call(vec![append.clone(), spliced, acc], Self::loc(file, item));
                    continue;
                }
            }
            let v = self.quasi(item, depth, file)?;
            acc = self.make_call(vec![cons.clone(), v, acc], loc.clone());
        }
        Ok(acc)
    }

    /// `(name x)` rebuilt inside a quasiquote at `depth`.
    fn quasi_pair(
        &mut self,
        name: Sym,
        x: &Datum,
        depth: u32,
        file: &Rc<str>,
        loc: &Loc,
    ) -> Result<Rc<Expr>, Fail> {
        let list = self.global_const("list");
        let inner = self.quasi(x, depth, file)?;
        let head = Rc::new(Expr::Const(Value::Sym(name)));
        Ok(self.make_call(vec![list, head, inner], loc.clone()))
    }

    fn call(&mut self, items: &[Datum], file: &Rc<str>, loc: Loc) -> Result<Rc<Expr>, Fail> {
        let exprs: Vec<Rc<Expr>> =
            items.iter().map(|a| self.compile(a, file)).collect::<Result<_, _>>()?;
        Ok(self.make_call(exprs, loc))
    }

    // --- the machine -----------------------------------------------------------------------

    pub(crate) fn push(&mut self, kind: FrameKind, at: Option<&Loc>) -> Result<(), Fail> {
        if self.stack.len() >= self.limits.frames as usize {
            return Err(self.frame_limit(at));
        }
        self.stack.push(Frame(kind));
        Ok(())
    }

    #[cold]
    pub(crate) fn frame_limit(&self, at: Option<&Loc>) -> Fail {
        limit_err(
            format!(
                "frame limit reached ({} frames of pending calls and forms): unbounded recursion?",
                self.limits.frames
            ),
            at,
        )
    }

    #[inline]
    fn env_at(&self, mut env: Option<Ref>, depth: u32) -> Option<&Env> {
        for _ in 0..depth {
            env = match self.heap.get(env?) {
                Ok(Obj::Env(e)) => e.parent,
                _ => None,
            };
        }
        match self.heap.get(env?) {
            Ok(Obj::Env(e)) => Some(e),
            _ => None,
        }
    }

    #[inline]
    pub(super) fn local(&self, env: Option<Ref>, depth: u32, i: u32) -> Value {
        self.env_at(env, depth).map_or(Value::Undefined, |e| e.vals.get()[i as usize])
    }

    fn set_local(&mut self, mut env: Option<Ref>, depth: u32, i: u32, v: Value) {
        for _ in 0..depth {
            env = match env.map(|e| self.heap.get(e)) {
                Some(Ok(Obj::Env(e))) => e.parent,
                _ => None,
            };
        }
        if let Some(e) = env {
            let _ = self.heap.update(e, |o| {
                if let Obj::Env(en) = o {
                    en.vals.get_mut()[i as usize] = v;
                }
            });
        }
    }

    /// The calls in progress, innermost first, with repeats counted.
    fn backtrace(&self) -> Vec<(Loc, u32)> {
        let mut out: Vec<(Loc, u32)> = Vec::new();
        for f in self.stack.iter().rev() {
            if let FrameKind::Args { call, .. } = &f.0 {
                let loc = &call.loc;
                let full = out.len() == 20;
                match out.last_mut() {
                    Some((last, n)) if last == loc => *n += 1,
                    _ if full => break,
                    _ => out.push((loc.clone(), 1)),
                }
            }
        }
        out
    }

    fn roots(&self, state: &State) -> Vec<Value> {
        let mut roots: Vec<Value> = self.globals.clone();
        roots.extend(self.constants.iter().copied());
        for f in &self.stack {
            f.trace(&mut |v| roots.push(v));
        }
        state.trace(&mut |v| roots.push(v));
        self.sched.trace(&mut |v| roots.push(v));
        roots
    }

    /// Calls `thunk` with no arguments as a top-level program (a thread's body) and runs the
    /// machine to its value.
    pub(crate) fn call_thunk(&mut self, thunk: Value) -> Result<Value, LispError> {
        self.constants.push(thunk);
        let loc = Loc { file: "thread".into(), span: Span::default() };
        let call = self.make_call(vec![Rc::new(Expr::Const(thunk))], loc);
        let r = self.run(call).map_err(|e| *e);
        // The thunk stays reachable only while it runs (what it imported since stays).
        if let Some(k) = self.constants.iter().rposition(|c| *c == thunk) {
            self.constants.remove(k);
        }
        r
    }

    /// Runs compiled code to its value.
    fn run(&mut self, e: Rc<Expr>) -> Result<Value, Fail> {
        self.stack.clear();
        self.sched_enter();
        let r = self.run_loop(e);
        if r.is_err() {
            self.stack.clear();
        }
        r
    }

    fn run_loop(&mut self, e: Rc<Expr>) -> Result<Value, Fail> {
        let mut state = State::Eval(e, None);
        loop {
            // A switch between tasks is not a step of the program: a join that parks and one
            // that finds its thread ended cost the same.
            self.steps += u64::from(!matches!(state, State::Switch));
            if let Some(fuel) = self.limits.fuel {
                if self.steps > fuel {
                    return Err(limit_err(format!("out of fuel after {fuel} steps"), None));
                }
            }
            if self.heap.should_collect() {
                let roots = self.roots(&state);
                self.heap.collect(roots);
            }
            self.sched.slice += 1;
            if self.sched.slice >= super::tasks::QUANTUM {
                self.sched.slice = 0;
                if self.others_ready() {
                    // A busy task gives the others a turn.
                    state = self.preempt(state).map_err(|e| self.task_failed(e))?;
                    continue;
                }
            }
            let next = match state {
                State::Eval(e, env) => self.eval(&e, env),
                State::Return(v) => match self.stack.pop() {
                    None if self.sched.current == super::tasks::MAIN => return Ok(v),
                    None => self.task_done(v),
                    Some(Frame(f)) => self.resume(v, f),
                },
                State::Switch => self.switch(),
            };
            state = match next {
                Ok(s) => s,
                Err(e) if e.kind == ErrorKind::Error && self.guarded() => {
                    // A guard is waiting: the error becomes a condition object raised to it.
                    let msg = self.alloc(Obj::Str(e.message.clone()))?;
                    let c = self.alloc(Obj::Condition(Value::Ref(msg), Value::Nil))?;
                    let loc =
                        e.at.clone()
                            .unwrap_or_else(|| Loc { file: "".into(), span: Span::default() });
                    match self.raise(Value::Ref(c), &loc) {
                        Ok(s) => s,
                        Err(e) => {
                            let e = self.with_backtrace(e);
                            return Err(self.task_failed(e));
                        }
                    }
                }
                Err(e) if e.kind == ErrorKind::Error && self.current_cancelled() => {
                    // A cancelled task's uncaught error ends that task only.
                    self.cancelled_done(e.at.clone()).map_err(|e| self.task_failed(e))?
                }
                Err(e) => {
                    let e = self.with_backtrace(e);
                    return Err(self.task_failed(e));
                }
            };
        }
    }

    /// The running task, cancelled, ended with an uncaught error: the `after` thunks of its
    /// `dynamic-wind`s run, innermost first, then it is done with the value `cancelled`.
    pub(crate) fn cancelled_done(&mut self, at: Option<Loc>) -> Result<State, Fail> {
        let afters = Self::afters(&self.stack);
        self.stack.clear();
        let v = Value::Sym(self.syms.intern("cancelled"));
        let loc = at.unwrap_or_else(|| Loc { file: "".into(), span: Span::default() });
        self.unwind(afters, Then::Return(v), &loc)
    }

    /// The heap refused an allocation.
    pub(crate) fn heap_full(&self, e: HeapFull) -> Fail {
        limit_err(e.to_string(), None)
    }

    /// An error from an operand evaluated in place: the call it is an operand of was in
    /// progress, though it has no frame.
    #[cold]
    fn in_call(mut e: Fail, loc: &Loc) -> Fail {
        if e.at.is_none() {
            e.at = Some(loc.clone());
        } else {
            e.backtrace.push((loc.clone(), 1));
        }
        e
    }

    /// Adds the calls in progress to `e`'s backtrace, after those noted on its way out.
    #[cold]
    fn with_backtrace(&self, mut e: Fail) -> Fail {
        if matches!(e.kind, ErrorKind::Exit(_)) {
            return e;
        }
        for (l, n) in self.backtrace() {
            let full = e.backtrace.len() >= 20;
            match e.backtrace.last_mut() {
                Some((last, m)) if *last == l => *m += n,
                _ if full => break,
                _ => e.backtrace.push((l, n)),
            }
        }
        e
    }

    /// Whether a `guard` frame is on the stack.
    fn guarded(&self) -> bool {
        self.stack.iter().any(|f| matches!(f.0, FrameKind::Guard(_)))
    }

    /// The value of a simple expression (see [`simple`]).
    #[inline(always)]
    fn atom(&mut self, e: &Expr, env: Option<Ref>) -> Result<Value, Fail> {
        match e {
            Expr::Const(v) => Ok(*v),
            Expr::Local(d, i) => Ok(self.local(env, *d, *i)),
            Expr::Global(g, loc) => match self.globals[*g as usize] {
                Value::Undefined => Err(self.unbound(*g, loc)),
                v => Ok(v),
            },
            // A named `let`'s loop and a body's procedures are read here on every iteration.
            Expr::LocalDef(d, i, s, loc) => match self.local(env, *d, *i) {
                Value::Undefined => Err(self.used_before_definition(*s, loc)),
                v => Ok(v),
            },
            _ => self.atom_slow(e, env),
        }
    }

    #[inline(never)]
    fn atom_slow(&mut self, e: &Expr, env: Option<Ref>) -> Result<Value, Fail> {
        match e {
            Expr::Lambda(l) => {
                Ok(Value::Ref(self.alloc(Obj::Closure(Closure { lambda: l.clone(), env }))?))
            }
            Expr::Const(_) | Expr::Local(..) | Expr::LocalDef(..) | Expr::Global(..) => {
                self.atom(e, env)
            }
            _ => unreachable!("atom of an expression that is not simple"),
        }
    }

    #[cold]
    fn used_before_definition(&self, s: Sym, loc: &Loc) -> Fail {
        err(format!("`{}` is used before its definition", self.syms.name(s)), Some(loc))
    }

    /// Evaluates `e` in place if it is simple or a call of a builtin on simple operands;
    /// `None` (having done nothing) otherwise.
    ///
    /// The cases that need no work (a constant, a global, a call that cannot be done in place)
    /// are answered here, in the caller; the rest in [`Interp::inline_work`].
    #[inline(always)]
    fn inline(&mut self, e: &Expr, env: Option<Ref>) -> Result<Option<Value>, Fail> {
        match e {
            Expr::Const(v) => Ok(Some(*v)),
            Expr::Global(g, _) if !matches!(self.globals[*g as usize], Value::Undefined) => {
                Ok(Some(self.globals[*g as usize]))
            }
            Expr::Call(c) if c.simple => match &c.callee {
                Callee::Prim(k) => self.inline_prim(c, k, env),
                Callee::Unknown => self.inline_call(&c.parts, &c.loc, env),
                Callee::Global | Callee::Lambda(_) => Ok(None),
            },
            Expr::Call(_) => Ok(None),
            _ => self.inline_work(e, env),
        }
    }

    /// [`Interp::inline`] of a call of a known builtin.
    #[inline(never)]
    fn inline_prim(
        &mut self,
        c: &Call,
        k: &Known,
        env: Option<Ref>,
    ) -> Result<Option<Value>, Fail> {
        if let Some(v) = self.quick(k, env) {
            return Ok(Some(v));
        }
        self.inline_known(c, k, env)
    }

    /// [`Interp::inline`] of a variable, a `lambda`, an unbound global.
    #[inline(never)]
    fn inline_work(&mut self, e: &Expr, env: Option<Ref>) -> Result<Option<Value>, Fail> {
        match e {
            e if simple(e) => self.atom(e, env).map(Some),
            _ => Ok(None),
        }
    }

    /// The common case of a known builtin on decoded operands (see [`Operands`]), done with
    /// as little as it takes; `None` when it is not that case (then the general path runs,
    /// from the start: reading a variable or a constant changes nothing).
    #[inline(always)]
    fn quick(&self, k: &Known, env: Option<Ref>) -> Option<Value> {
        if !self.still(k) {
            return None;
        }
        if let Operands::Two(Operand::Local(0, i), Operand::Local(0, j)) = k.operands {
            // Two variables of the same environment: one lookup.
            let vals = self.env_at(env, 0)?.vals.get();
            return fast_op2(k.op, *vals.get(i as usize)?, *vals.get(j as usize)?);
        }
        decoded_op(&self.heap, k, &InEnv(self, env))
    }

    #[inline(always)]
    fn operand(&self, o: Operand, env: Option<Ref>) -> Value {
        match o {
            Operand::Const(v) => v,
            Operand::Local(d, i) => self.local(env, d, i),
            Operand::Global(g) => self.globals[g as usize],
        }
    }

    /// Whether the builtin `k` is still what the call makes.
    #[inline(always)]
    pub(super) fn still(&self, k: &Known) -> bool {
        k.arity_ok
            && match k.global {
                None => true,
                Some(g) => matches!(self.globals[g as usize], Value::Ref(r) if r == k.value),
            }
    }

    /// [`Interp::inline`] of a call of a known builtin on simple operands.
    #[inline]
    fn inline_known(
        &mut self,
        c: &Call,
        k: &Known,
        env: Option<Ref>,
    ) -> Result<Option<Value>, Fail> {
        let n = c.parts.len() - 1;
        if !self.still(k) || n > 4 {
            return self.inline_call(&c.parts, &c.loc, env);
        }
        let mut buf = [Value::Nil; 4];
        for (slot, a) in buf.iter_mut().zip(&c.parts[1..]) {
            *slot = self.atom(a, env)?;
        }
        let args = &buf[..n];
        if let Some(v) = fast_op(&self.heap, k.op, args) {
            return Ok(Some(v));
        }
        (k.f)(self, args).map(Some).map_err(|m| prim_error(k.name, m, &c.loc))
    }

    fn inline_call(
        &mut self,
        es: &[Rc<Expr>],
        loc: &Loc,
        env: Option<Ref>,
    ) -> Result<Option<Value>, Fail> {
        let Value::Ref(r) = self.atom(&es[0], env)? else { return Ok(None) };
        let Ok(Obj::Prim(Prim { f: PrimFn::Plain(pf), arity, name })) = self.heap.get(r) else {
            return Ok(None);
        };
        let (pf, arity, name) = (*pf, *arity, *name);
        let n = es.len() - 1;
        let mut buf = [Value::Nil; 4];
        let mut big = Vec::new();
        let args: &mut [Value] = if n <= 4 {
            &mut buf[..n]
        } else {
            big.resize(n, Value::Nil);
            &mut big
        };
        for (slot, a) in args.iter_mut().zip(&es[1..]) {
            *slot = self.atom(a, env)?;
        }
        Self::check_arity(name, arity, n, loc)?;
        pf(self, args).map(Some).map_err(|m| prim_error(name, m, loc))
    }

    #[cold]
    fn unbound(&self, g: u32, loc: &Loc) -> Fail {
        err(
            format!("unbound variable `{}`", self.syms.name(self.global_names[g as usize])),
            Some(loc),
        )
    }

    #[inline(always)]
    fn check_arity(
        name: &str,
        arity: (usize, Option<usize>),
        n: usize,
        loc: &Loc,
    ) -> Result<(), Fail> {
        let (min, max) = arity;
        if n < min || max.is_some_and(|m| n > m) {
            return Err(Self::arity_error(name, arity, n, loc));
        }
        Ok(())
    }

    #[cold]
    fn arity_error(name: &str, arity: (usize, Option<usize>), n: usize, loc: &Loc) -> Fail {
        err(format!("`{name}` takes {}, got {n}", arity_text(arity)), Some(loc))
    }

    /// Evaluates the operands of a call from `done.len()` on, in place where they allow it,
    /// then applies the procedure.
    fn args(
        &mut self,
        call: &Rc<Call>,
        mut done: Vec<Value>,
        env: Option<Ref>,
    ) -> Result<State, Fail> {
        let (exprs, loc) = (&call.parts, &call.loc);
        if done.is_empty() && matches!(call.callee, Callee::Lambda(_)) {
            // The operator is the `lambda` itself: no closure is made (see below).
            done.push(Value::Unspecified);
        }
        while done.len() < exprs.len() {
            let e = &exprs[done.len()];
            match self.inline(e, env).map_err(|e| Self::in_call(e, loc))? {
                Some(v) => done.push(v),
                None => {
                    let e = e.clone();
                    self.push(FrameKind::Args { call: call.clone(), done, env }, Some(loc))?;
                    return Ok(State::Eval(e, env));
                }
            }
        }
        let args = &done[1..];
        let r = match &call.callee {
            Callee::Lambda(l) => self.enter(l, env, args, loc),
            Callee::Prim(k) if self.still(k) => match fast_op(&self.heap, k.op, args) {
                Some(v) => Ok(State::Return(v)),
                None => {
                    (k.f)(self, args).map(State::Return).map_err(|m| prim_error(k.name, m, loc))
                }
            },
            _ => self.apply(done[0], args, loc),
        };
        let r = r.map_err(|mut e| {
            // An allocation refused by the heap limit says where it happened.
            if e.at.is_none() {
                e.at = Some(loc.clone());
            }
            e
        });
        // Keep the vector for another call's operands.
        if self.arg_pool.len() < 64 {
            done.clear();
            self.arg_pool.push(done);
        }
        r
    }

    /// One step: evaluates `e` until it needs a frame, a call or a value returned. An `if`
    /// whose test and a sequence whose leading items evaluate in place go on to the chosen
    /// branch or the last item within the step (code has no loop without a call, so a step
    /// stays bounded by the size of the code).
    fn eval(&mut self, mut e: &Rc<Expr>, env: Option<Ref>) -> Result<State, Fail> {
        Ok(loop {
            break match &**e {
                Expr::Const(_)
                | Expr::Local(..)
                | Expr::LocalDef(..)
                | Expr::Global(..)
                | Expr::Lambda(_) => State::Return(self.atom(e, env)?),
                Expr::If(c, t, f) => match self.inline(c, env)? {
                    Some(v) => {
                        e = if truthy(v) { t } else { f };
                        continue;
                    }
                    None => {
                        self.push(FrameKind::If(t.clone(), f.clone(), env), None)?;
                        State::Eval(c.clone(), env)
                    }
                },
                Expr::DefGlobal(g, v) => match self.inline(v, env)? {
                    Some(v) => {
                        self.globals[*g as usize] = v;
                        State::Return(Value::Unspecified)
                    }
                    None => {
                        self.push(FrameKind::DefGlobal(*g), None)?;
                        State::Eval(v.clone(), env)
                    }
                },
                Expr::SetLocal(d, i, v) => match self.inline(v, env)? {
                    Some(v) => {
                        self.set_local(env, *d, *i, v);
                        State::Return(Value::Unspecified)
                    }
                    None => {
                        self.push(FrameKind::SetLocal(*d, *i, env), None)?;
                        State::Eval(v.clone(), env)
                    }
                },
                Expr::SetGlobal(g, v, loc) => {
                    if self.globals[*g as usize] == Value::Undefined {
                        return Err(err(
                            format!(
                                "`set!` of an unbound variable `{}`",
                                self.syms.name(self.global_names[*g as usize])
                            ),
                            Some(loc),
                        ));
                    }
                    self.push(FrameKind::SetGlobal(*g), Some(loc))?;
                    State::Eval(v.clone(), env)
                }
                Expr::Seq(es) => match self.seq(es, 0, env)? {
                    Some(s) => s,
                    None => {
                        e = &es[es.len() - 1];
                        continue;
                    }
                },
                Expr::And(es) => self.and_or(es, 0, true, env)?,
                Expr::Or(es) => self.and_or(es, 0, false, env)?,
                Expr::Call(c) => {
                    let done = self.arg_pool.pop().unwrap_or_default();
                    self.args(c, done, env)?
                }
                Expr::Prompt(tag, body) => {
                    self.push(FrameKind::PromptTag(body.clone(), env), None)?;
                    State::Eval(tag.clone(), env)
                }
                Expr::Control(tag, body, size, shift, loc) => {
                    let kind = FrameKind::ControlTag {
                        body: body.clone(),
                        size: *size,
                        env,
                        shift: *shift,
                        loc: loc.clone(),
                    };
                    self.push(kind, Some(loc))?;
                    State::Eval(tag.clone(), env)
                }
                Expr::Guard(body, handler) => {
                    let h = self.alloc(Obj::Closure(Closure { lambda: handler.clone(), env }))?;
                    self.push(FrameKind::Guard(Value::Ref(h)), None)?;
                    State::Eval(body.clone(), env)
                }
            };
        })
    }

    /// A sequence from item `i`: items before the last that evaluate in place need no frame.
    /// The first that needs a step begins (a frame for the rest pushed); `None` when only the
    /// last is left, for the caller to evaluate.
    fn seq(
        &mut self,
        es: &Rc<[Rc<Expr>]>,
        mut i: usize,
        env: Option<Ref>,
    ) -> Result<Option<State>, Fail> {
        while i + 1 < es.len() {
            if self.inline(&es[i], env)?.is_none() {
                self.push(FrameKind::Seq(es.clone(), i + 1, env), None)?;
                return Ok(Some(State::Eval(es[i].clone(), env)));
            }
            i += 1;
        }
        Ok(None)
    }

    fn and_or(
        &mut self,
        es: &Rc<[Rc<Expr>]>,
        mut i: usize,
        is_and: bool,
        env: Option<Ref>,
    ) -> Result<State, Fail> {
        while i + 1 < es.len() {
            match self.inline(&es[i], env)? {
                Some(v) if truthy(v) != is_and => return Ok(State::Return(v)),
                Some(_) => i += 1,
                None => {
                    let kind = if is_and {
                        FrameKind::And(es.clone(), i + 1, env)
                    } else {
                        FrameKind::Or(es.clone(), i + 1, env)
                    };
                    self.push(kind, None)?;
                    return Ok(State::Eval(es[i].clone(), env));
                }
            }
        }
        Ok(State::Eval(es[i].clone(), env))
    }

    fn resume(&mut self, v: Value, f: FrameKind) -> Result<State, Fail> {
        Ok(match f {
            FrameKind::Args { call, mut done, env } => {
                done.push(v);
                self.args(&call, done, env)?
            }
            FrameKind::If(t, f, env) => State::Eval(if truthy(v) { t } else { f }, env),
            FrameKind::Seq(es, i, env) => match self.seq(&es, i, env)? {
                Some(s) => s,
                None => State::Eval(es[es.len() - 1].clone(), env),
            },
            FrameKind::And(es, i, env) => {
                if truthy(v) {
                    self.and_or(&es, i, true, env)?
                } else {
                    State::Return(v)
                }
            }
            FrameKind::Or(es, i, env) => {
                if truthy(v) {
                    State::Return(v)
                } else {
                    self.and_or(&es, i, false, env)?
                }
            }
            FrameKind::DefGlobal(g) | FrameKind::SetGlobal(g) => {
                self.globals[g as usize] = v;
                State::Return(Value::Unspecified)
            }
            FrameKind::SetLocal(d, i, env) => {
                self.set_local(env, d, i, v);
                State::Return(Value::Unspecified)
            }
            FrameKind::PromptTag(body, env) => {
                self.push(FrameKind::Prompt(v), None)?;
                State::Eval(body, env)
            }
            FrameKind::Prompt(_) | FrameKind::Guard(_) => State::Return(v),
            FrameKind::ReturnValue(r) => State::Return(r),
            FrameKind::GenBoundary(g) => State::Return(self.gen_finished(g)),
            FrameKind::ControlTag { body, size, env, shift, loc } => {
                // The frames above the nearest prompt with this tag become `k`.
                let Some(p) = self
                    .stack
                    .iter()
                    .rposition(|f| matches!(f.0, FrameKind::Prompt(t) if eqv(&self.heap, t, v)))
                else {
                    let mut tag = String::new();
                    self.heap.write(v, &self.syms, &mut tag);
                    let what = if shift {
                        "`shift` outside any `reset`".to_string()
                    } else {
                        format!("`control` with no enclosing `prompt` tagged {tag}")
                    };
                    return Err(err(what, Some(&loc)));
                };
                let frames = self.stack.split_off(p + 1);
                // Leaving them runs the `after` thunks of the winds among them, innermost first.
                let afters = Self::afters(&frames);
                let cont = self
                    .alloc(Obj::Cont(Cont::Composable { frames, reinstall: shift.then_some(v) }))?;
                let vals = Slots::build(size.max(1), |s| s[0] = Value::Ref(cont));
                let env = Some(self.alloc(Obj::Env(Env { vals, parent: env }))?);
                self.unwind(afters, Then::Eval(body, env), &loc)?
            }
            FrameKind::WindEnter { thunk, before, after, loc } => {
                self.wind_ids += 1;
                let id = self.wind_ids;
                self.push(FrameKind::Wind { before, after, id, loc: loc.clone() }, Some(&loc))?;
                self.apply(thunk, &[], &loc)?
            }
            FrameKind::Wind { after, loc, .. } => {
                self.push(FrameKind::ReturnValue(v), Some(&loc))?;
                self.apply(after, &[], &loc)?
            }
            FrameKind::Winding { thunks, i, then, loc } => {
                if i < thunks.len() {
                    self.run_thunk(thunks, i, then, &loc)?
                } else {
                    self.then((*then).clone(), &loc)?
                }
            }
        })
    }

    /// Runs `thunks` in order, then does `then`.
    pub(crate) fn unwind(
        &mut self,
        thunks: Vec<Value>,
        then: Then,
        loc: &Loc,
    ) -> Result<State, Fail> {
        if thunks.is_empty() {
            return self.then(then, loc);
        }
        self.run_thunk(thunks.into(), 0, Rc::new(then), loc)
    }

    fn run_thunk(
        &mut self,
        thunks: Rc<[Value]>,
        i: usize,
        then: Rc<Then>,
        loc: &Loc,
    ) -> Result<State, Fail> {
        let t = thunks[i];
        self.push(FrameKind::Winding { thunks, i: i + 1, then, loc: loc.clone() }, Some(loc))?;
        self.apply(t, &[], loc)
    }

    fn then(&mut self, then: Then, loc: &Loc) -> Result<State, Fail> {
        Ok(match then {
            Then::Return(v) => State::Return(v),
            Then::Eval(e, env) => State::Eval(e, env),
            Then::Apply(f, args) => return self.apply(f, &args, loc),
        })
    }

    /// Raises `obj` to the nearest `guard`, running the `after` thunks on the way.
    pub(crate) fn raise(&mut self, obj: Value, loc: &Loc) -> Result<State, Fail> {
        let Some(g) = self.stack.iter().rposition(|f| matches!(f.0, FrameKind::Guard(_))) else {
            return Err(err(self.uncaught(obj), Some(loc)));
        };
        let left = self.stack.split_off(g);
        let FrameKind::Guard(handler) = left[0].0 else { unreachable!("found a guard") };
        let afters = Self::afters(&left);
        self.unwind(afters, Then::Apply(handler, vec![obj]), loc)
    }

    /// The message of an error nobody caught.
    fn uncaught(&self, obj: Value) -> String {
        if let Value::Ref(r) = obj {
            if let Ok(Obj::Condition(msg, irritants)) = self.heap.get(r) {
                let mut m = self.display_string(*msg);
                let mut l = *irritants;
                while let Some((a, d)) = self.heap.pair(l) {
                    m.push(' ');
                    m.push_str(&self.write_string(a));
                    l = d;
                }
                return m;
            }
        }
        format!("uncaught exception: {}", self.write_string(obj))
    }

    /// Where the frames a `call/cc` continuation covers start: above the nearest `reset`
    /// prompt, or the whole stack.
    fn delimiter(&self) -> usize {
        let tag = Value::Sym(self.s.reset_tag);
        self.stack
            .iter()
            .rposition(|f| matches!(f.0, FrameKind::Prompt(t) if t == tag))
            .map_or(0, |p| p + 1)
    }

    /// The `after` thunks of the winds among `frames`, innermost first: what leaving them
    /// runs.
    pub(crate) fn afters(frames: &[Frame]) -> Vec<Value> {
        frames
            .iter()
            .rev()
            .filter_map(|f| match f.0 {
                FrameKind::Wind { after, .. } => Some(after),
                _ => None,
            })
            .collect()
    }

    /// The winds among `frames`, outermost first: (id, before, after).
    pub(crate) fn winds(frames: &[Frame]) -> Vec<(u64, Value, Value)> {
        frames
            .iter()
            .filter_map(|f| match f.0 {
                FrameKind::Wind { id, before, after, .. } => Some((id, before, after)),
                _ => None,
            })
            .collect()
    }

    /// Calls an escaping continuation with `v`: the frames above the current delimiter are
    /// replaced by a copy of `frames`, running the `after` thunks of the winds left and the
    /// `before` thunks of the winds entered (those both share are neither).
    fn escape(&mut self, v: Value, frames: Vec<Frame>, loc: &Loc) -> Result<State, Fail> {
        let d = self.delimiter();
        let left = Self::winds(&self.stack[d..]);
        let entered = Self::winds(&frames);
        let shared = left.iter().zip(&entered).take_while(|(a, b)| a.0 == b.0).count();
        let mut thunks: Vec<Value> = left[shared..].iter().rev().map(|w| w.2).collect();
        thunks.extend(entered[shared..].iter().map(|w| w.1));
        if d + frames.len() > self.limits.frames as usize {
            return Err(self.frame_limit(Some(loc)));
        }
        self.stack.truncate(d);
        self.stack.extend(frames);
        self.unwind(thunks, Then::Return(v), loc)
    }

    pub(crate) fn apply(&mut self, f: Value, args: &[Value], loc: &Loc) -> Result<State, Fail> {
        let not_proc = |i: &Self| err(format!("not a procedure: {}", i.write_string(f)), Some(loc));
        let Value::Ref(r) = f else { return Err(not_proc(self)) };
        match self.heap.get(r) {
            Ok(Obj::Closure(c)) => {
                let (lambda, cenv) = (c.lambda.clone(), c.env);
                if args.len() == lambda.params && lambda.is_pure() && self.fast_allowed() {
                    if let Some(v) = self.try_fast(&lambda, cenv, args) {
                        return Ok(State::Return(v));
                    }
                }
                self.enter(&lambda, cenv, args, loc)
            }
            Ok(Obj::Prim(p)) => {
                let p = *p;
                Self::check_arity(p.name, p.arity, args.len(), loc)?;
                match p.f {
                    PrimFn::Plain(pf) => {
                        Ok(State::Return(pf(self, args).map_err(|m| prim_error(p.name, m, loc))?))
                    }
                    PrimFn::Control(c) => self.control_prim(c, args, loc),
                }
            }
            Ok(Obj::Cont(Cont::Composable { frames, reinstall })) => {
                let [v] = args[..] else {
                    return Err(err(
                        format!("a continuation takes 1 argument, got {}", args.len()),
                        Some(loc),
                    ));
                };
                let (frames, reinstall) = (frames.clone(), *reinstall);
                let extra = frames.len() + usize::from(reinstall.is_some());
                if self.stack.len() + extra > self.limits.frames as usize {
                    return Err(self.frame_limit(Some(loc)));
                }
                if let Some(tag) = reinstall {
                    self.stack.push(Frame(FrameKind::Prompt(tag)));
                }
                // Entering them runs the `before` thunks of the winds among them, outermost first.
                let befores: Vec<Value> = Self::winds(&frames).iter().map(|w| w.1).collect();
                self.stack.extend(frames);
                self.unwind(befores, Then::Return(v), loc)
            }
            Ok(Obj::Conc(super::tasks::Conc::Gen(g))) => self.apply_gen(r, g.status, args, loc),
            Ok(Obj::Conc(super::tasks::Conc::Yield(g))) => {
                let g = *g;
                match args {
                    [v] => self.gen_yield(g, *v, loc),
                    _ => Err(err(format!("yield takes 1 argument, got {}", args.len()), Some(loc))),
                }
            }
            Ok(Obj::Cont(Cont::Escape { frames })) => {
                let frames = frames.clone();
                let v = match args {
                    [v] => *v,
                    [] => Value::Unspecified,
                    _ => Value::Ref(self.alloc(Obj::Values(args.to_vec()))?),
                };
                self.escape(v, frames, loc)
            }
            _ => Err(not_proc(self)),
        }
    }

    /// Calls the procedure of `lambda` closed over `cenv` with `args`: its body, in a new
    /// environment.
    fn enter(
        &mut self,
        lambda: &Rc<Lambda>,
        cenv: Option<Ref>,
        args: &[Value],
        loc: &Loc,
    ) -> Result<State, Fail> {
        let n = lambda.params;
        if args.len() < n || (!lambda.rest && args.len() > n) {
            let want = if lambda.rest { format!("at least {n}") } else { format!("{n}") };
            return Err(err(
                format!(
                    "the procedure defined at {} takes {want} argument{}, got {}",
                    lambda.loc,
                    if n == 1 { "" } else { "s" },
                    args.len()
                ),
                Some(loc),
            ));
        }
        let mut rest = Value::Nil;
        if lambda.rest {
            for v in args[n..].iter().rev() {
                rest = Value::Ref(self.alloc(Obj::Pair(*v, rest))?);
            }
        }
        let vals = Slots::build(lambda.size, |s| {
            // A loop, not `copy_from_slice`: for a few values a call of `memcpy` costs more.
            for (slot, a) in s.iter_mut().zip(&args[..n]) {
                *slot = *a;
            }
            if lambda.rest {
                s[n] = rest;
            }
        });
        let env = self.alloc(Obj::Env(Env { vals, parent: cenv }))?;
        Ok(State::Eval(lambda.body.clone(), Some(env)))
    }

    fn control_prim(&mut self, c: Ctl, args: &[Value], loc: &Loc) -> Result<State, Fail> {
        match c {
            Ctl::Apply => {
                let mut spread = args[1..args.len() - 1].to_vec();
                let mut l = args[args.len() - 1];
                // A proper list has no more pairs than the heap has objects: past that, it is
                // circular.
                let most = self.heap.stats().objects;
                while let Some((a, d)) = self.heap.pair(l) {
                    spread.push(a);
                    l = d;
                    if spread.len() > most {
                        return Err(err("apply: its last argument is a circular list", Some(loc)));
                    }
                }
                if l != Value::Nil {
                    return Err(err("apply: its last argument must be a list", Some(loc)));
                }
                self.apply(args[0], &spread, loc)
            }
            Ctl::CallCc => {
                let frames = self.stack[self.delimiter()..].to_vec();
                let cont = self.alloc(Obj::Cont(Cont::Escape { frames }))?;
                self.apply(args[0], &[Value::Ref(cont)], loc)
            }
            Ctl::DynamicWind => {
                let (before, thunk, after) = (args[0], args[1], args[2]);
                self.push(
                    FrameKind::WindEnter { thunk, before, after, loc: loc.clone() },
                    Some(loc),
                )?;
                self.apply(before, &[], loc)
            }
            Ctl::Raise => self.raise(args[0], loc),
            Ctl::Task(op) => self.task_op(op, args, loc),
            Ctl::ThreadJoin => super::threads::join_op(self, args[0], loc),
            Ctl::Error => {
                let msg = match args[0] {
                    Value::Ref(m) if matches!(self.heap.get(m), Ok(Obj::Str(_))) => Value::Ref(m),
                    other => Value::Ref(self.alloc(Obj::Str(self.display_string(other)))?),
                };
                let mut irritants = Value::Nil;
                for v in args[1..].iter().rev() {
                    irritants = Value::Ref(self.alloc(Obj::Pair(*v, irritants))?);
                }
                let c = self.alloc(Obj::Condition(msg, irritants))?;
                self.raise(Value::Ref(c), loc)
            }
            Ctl::Exit => {
                let code = match args.first() {
                    None | Some(Value::Bool(true)) => 0,
                    Some(Value::Bool(false)) => 1,
                    Some(Value::Int(n)) => i32::try_from(*n).unwrap_or(255),
                    Some(_) => 1,
                };
                let mut e = err(format!("exit {code}"), Some(loc));
                e.kind = ErrorKind::Exit(code);
                Err(e)
            }
        }
    }
}

/// A builtin's error: its message after its name, except for the internal `%` builtins the
/// compiler calls, whose messages name the procedure the program called.
#[cold]
fn prim_error(name: &str, message: String, loc: &Loc) -> Fail {
    if message.starts_with("heap limit reached") || message.starts_with("out of fuel") {
        // The heap refused a builtin's allocation, or the fuel ran out: a limit, which no
        // guard may catch.
        return limit_err(format!("{name}: {message}"), Some(loc));
    }
    if name.starts_with('%') {
        err(message, Some(loc))
    } else {
        err(format!("{name}: {message}"), Some(loc))
    }
}

fn arity_text((min, max): (usize, Option<usize>)) -> String {
    match max {
        Some(m) if m == min => format!("{min} argument{}", if min == 1 { "" } else { "s" }),
        Some(m) => format!("{min} to {m} arguments"),
        None => format!("at least {min} argument{}", if min == 1 { "" } else { "s" }),
    }
}

/// Everything but `#f` is true.
pub(crate) fn truthy(v: Value) -> bool {
    v != Value::Bool(false)
}

/// `eqv?`: identity for objects, value for immediates.
pub(crate) fn eqv(_heap: &Heap, a: Value, b: Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}
