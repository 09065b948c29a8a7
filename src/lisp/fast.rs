//! The fast path: calls of pure procedures, run on the host stack.
//!
//! A numeric program spends its time in procedures that only compute: they read variables, do
//! integer arithmetic and comparisons, take `car`s and `cdr`s, branch, and call procedures like
//! themselves. For those, the machine's generality is all overhead: an environment object
//! allocated on the heap per call, a heap frame per pending operand, a generational heap lookup
//! per variable, a step through the run loop per call. Nothing can capture a continuation
//! inside such a procedure, nothing observes its environments, and nothing it does changes
//! any state.
//!
//! So when the machine calls a closure whose code is *pure* (below), it first tries the call
//! here: a recursive evaluator over the same compiled code, with arguments and locals on a
//! value stack (`Fast::vals`) instead of in heap environments, tail calls as a loop (so
//! a loop runs in constant space here too), and other calls nested on the host stack.
//!
//! # Pure code
//!
//! A procedure is pure when it takes a fixed number of arguments and its body is built only
//! of constants, variable reads, `if`, `begin`, `and`, `or`, `let` (a `lambda` called in
//! place, itself pure), calls of the builtins the machine does itself (`+ - * quotient
//! remainder modulo < > <= >= = car cdr null? pair? zero? not`, with one or two operands), and
//! calls whose operator is a variable or an expression of the same kinds (checked when the
//! call runs: the value must be a pure closure taking that many arguments). A `lambda` expression, `set!`, a definition,
//! `prompt`, `control`, `guard` and every other builtin make a procedure impure. Expressions
//! nested deeper than [`MAX_NESTING`] do too, which bounds the host stack one call takes.
//! Each procedure is looked at once, on its first call, and the answer is kept in its
//! [`Lambda`].
//!
//! # Giving up is always safe
//!
//! A try gives up whenever anything is not the common case: an operand that is not an
//! integer, or a sum that overflows; a variable read before its definition; an operator that
//! is not a pure closure of the right arity; a builtin whose global was rebound; calls nested
//! deeper than the host stack allows ([`STACK_RESERVE`]) or than the frame limit leaves room
//! for. Pure code allocates nothing, writes no variable, global or object, and prints
//! nothing, so a try that gives up has changed nothing but the time, and the machine then
//! makes the same call the ordinary way, from the start: every error, with its location and
//! backtrace, the frame limit and recursion 10^6 deep all come from the machine as before.
//! A procedure whose try gave up is not tried again, so a call that would always give up (a
//! recursion too deep for the host stack) wastes its work once.
//!
//! # When it is not tried
//!
//! - Under a fuel limit: a budget counted in machine steps stays exact.
//! - While other tasks exist: a long computation here would not give them turns.
//!
//! # Invariants
//!
//! - The fast path never allocates on the heap, so no collection is due because of it and
//!   the values on `Fast::vals` need not be roots; it runs within one step of the machine.
//! - A try leaves `Fast::vals` as it found it.
//! - Within a try nothing changes, so the closure called last and the heap variable read last
//!   are kept (`Fast::memo`, `Fast::var_memo`) and cleared when the try ends.
//!
//! `tests/lisp_fast_diff.rs` runs generated programs with the fast path on and off and
//! compares everything they print and return; `tests/lisp/fast_path*.olisp` are its cases
//! written out.
//! - Continuation frames stay heap data: nothing on the host stack here is ever captured,
//!   because pure code cannot reach `control`, `call/cc` or a task switch.

use std::cell::Cell;
use std::rc::Rc;

use super::eval::{
    decoded_op, fast_op1, fast_op2, truthy, Call, Callee, Expr, Interp, Known, Lambda, Op, Operand,
    Operands, ReadOperand,
};
use super::heap::{Obj, Ref, Value};

/// What is known of a procedure's code (kept in its [`Lambda`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Purity {
    /// Not looked at yet.
    #[default]
    Unknown,
    /// Pure: its calls are tried here.
    Pure,
    /// Impure, or a try of it gave up: its calls go to the machine.
    No,
}

/// Deepest nesting of expressions in a pure body.
const MAX_NESTING: u32 = 48;
/// Host stack left below which a nested call gives up (the machine, whose frames are heap
/// data, then makes it).
const STACK_RESERVE: usize = 256 * 1024;
/// Host stack the fast path may use when the stack's size is not known.
const FALLBACK_STACK: usize = 512 * 1024;

/// A try gave up; the machine makes the call instead.
struct GiveUp;

/// A value, or a give-up (16 bytes: `Value`'s spare tags hold the error, so it comes back in
/// registers).
type Fx<T> = Result<T, GiveUp>;

/// What an expression in tail position gives when it ends in a call: the call is not made but
/// left in `Fast::tail` for the procedure's loop to make in its place. Pure code never
/// has this value otherwise (reading a variable that holds it gives up).
const TAIL: Value = Value::Undefined;

/// The variables of one procedure call or `let`: slots from `base` on the value stack.
struct Locals<'a> {
    base: usize,
    parent: Parent<'a>,
}

#[derive(Clone, Copy)]
enum Parent<'a> {
    /// The environment a closure closed over: heap data.
    Heap(Option<Ref>),
    /// The enclosing `let` or call, here.
    Fast(&'a Locals<'a>),
}

/// The fast path's state in an interpreter.
#[derive(Default)]
pub(crate) struct Fast {
    /// Arguments and locals of the calls in progress; empty between tries.
    vals: Vec<Value>,
    /// The call in tail position, waiting for its procedure's loop.
    tail: Option<TailCall>,
    /// The lowest host stack address a try may reach (0 outside a try).
    limit: usize,
    /// The closure called last, with its code and environment.
    memo: Option<(Ref, Rc<Lambda>, Option<Ref>)>,
    /// The variable of a heap environment read last.
    var_memo: Cell<Option<HeapVar>>,
    /// Tries that completed, and tries that gave up.
    tries: (u64, u64),
}

/// A variable of a heap environment and its value: the environment, the depth from the
/// procedure's own environment, the slot.
type HeapVar = (Option<Ref>, u32, u32, Value);

/// Operands decoded at compile time, read from the fast path's locals (see [`decoded_op`]).
struct InLocals<'a>(&'a Interp, &'a Locals<'a>);

impl ReadOperand for InLocals<'_> {
    #[inline(always)]
    fn read(&self, o: Operand) -> Value {
        let (interp, l) = (self.0, self.1);
        match o {
            Operand::Const(v) => v,
            Operand::Local(0, i) => {
                interp.fast.vals.get(l.base + i as usize).copied().unwrap_or(Value::Undefined)
            }
            Operand::Local(d, i) => interp.fast_outer(l, d, i).unwrap_or(Value::Undefined),
            Operand::Global(g) => interp.globals[g as usize],
        }
    }
}

/// A call in tail position, waiting for its procedure's loop: the procedure, the environment
/// it closed over, and where its arguments begin on the value stack.
struct TailCall(Rc<Lambda>, Option<Ref>, usize);

impl Lambda {
    /// Whether calls of this procedure are tried on the fast path (looked at once).
    #[inline(always)]
    pub(crate) fn is_pure(&self) -> bool {
        match self.fast.get() {
            Purity::Pure => true,
            Purity::No => false,
            Purity::Unknown => self.look(),
        }
    }

    #[cold]
    fn look(&self) -> bool {
        let p = !self.rest && pure(&self.body, 0);
        self.fast.set(if p { Purity::Pure } else { Purity::No });
        p
    }
}

/// Whether `e`, nested `depth` deep, is pure code (see the module documentation).
fn pure(e: &Expr, depth: u32) -> bool {
    if depth > MAX_NESTING {
        return false;
    }
    let d = depth + 1;
    match e {
        Expr::Const(_) | Expr::Local(..) | Expr::LocalDef(..) | Expr::Global(..) => true,
        Expr::If(c, t, f) => pure(c, d) && pure(t, d) && pure(f, d),
        Expr::Seq(es) | Expr::And(es) | Expr::Or(es) => es.iter().all(|e| pure(e, d)),
        Expr::Call(c) => {
            let operands = &c.parts[1..];
            operands.iter().all(|e| pure(e, d))
                && match &c.callee {
                    Callee::Prim(k) => k.op != Op::Other && matches!(operands.len(), 1 | 2),
                    Callee::Lambda(l) => !l.rest && l.params == operands.len() && pure(&l.body, d),
                    Callee::Global | Callee::Unknown => pure(&c.parts[0], d),
                }
        }
        _ => false,
    }
}

/// `v`, or a give-up when it is a variable not defined yet.
#[inline(always)]
fn defined(v: Value) -> Fx<Value> {
    match v {
        Value::Undefined => Err(GiveUp),
        v => Ok(v),
    }
}

impl Interp {
    /// Whether calls may be tried on the fast path now: no fuel limit, no other task.
    #[inline]
    pub(super) fn fast_allowed(&self) -> bool {
        self.limits.fuel.is_none() && self.sched.alone()
    }

    /// Calls made on the fast path from the machine (each with the calls nested in it), and
    /// tries that gave up to the machine.
    ///
    /// # Examples
    ///
    /// ```
    /// use omni::lisp::Interp;
    ///
    /// let mut lisp = Interp::new();
    /// lisp.eval_str("(define (sq x) (* x x)) (sq 7)", "demo").unwrap();
    /// assert_eq!(lisp.fast_calls(), (1, 0));
    /// // A float is not the common case: the try gives up, and the machine answers.
    /// assert_eq!(lisp.eval_str("(define (sq2 x) (* x x)) (sq2 1.5)", "demo").unwrap(), "2.25");
    /// assert_eq!(lisp.fast_calls(), (1, 1));
    /// ```
    pub fn fast_calls(&self) -> (u64, u64) {
        self.fast.tries
    }

    /// Tries the call of `lambda` (pure, taking `args.len()` arguments) closed over `cenv`.
    /// `None` when it gave up: nothing has changed, and the machine makes the call.
    pub(super) fn try_fast(
        &mut self,
        lambda: &Rc<Lambda>,
        cenv: Option<Ref>,
        args: &[Value],
    ) -> Option<Value> {
        // The lowest address the host stack may reach here: a local's address is the stack
        // pointer near enough, and a call nested below the limit gives up.
        let here = &args as *const _ as usize;
        let limit = match stacker::remaining_stack() {
            // Too little host stack left to try at all (the machine needs none).
            Some(left) if left <= STACK_RESERVE => return None,
            Some(left) => here.saturating_sub(left - STACK_RESERVE),
            None => here.saturating_sub(FALLBACK_STACK),
        };
        let outer = std::mem::replace(&mut self.fast.limit, limit.max(1));
        let base = self.fast.vals.len();
        self.fast.vals.extend_from_slice(args);
        let r = self.fast_run(lambda.clone(), cenv, base, 0);
        self.fast.vals.truncate(base);
        self.fast.tail = None;
        self.fast.memo = None;
        self.fast.var_memo.set(None);
        self.fast.limit = outer;
        match r {
            Ok(v) => {
                self.fast.tries.0 += 1;
                Some(v)
            }
            Err(GiveUp) => {
                self.fast.tries.1 += 1;
                lambda.fast.set(Purity::No);
                None
            }
        }
    }

    /// Runs a procedure whose arguments are on the value stack from `base`, `depth` calls
    /// deep, and each procedure it tail-calls in its place.
    fn fast_run(
        &mut self,
        mut lambda: Rc<Lambda>,
        mut cenv: Option<Ref>,
        base: usize,
        depth: usize,
    ) -> Fx<Value> {
        loop {
            self.steps += 1;
            let v = self.fast_body(&lambda, base, Parent::Heap(cenv), depth, true)?;
            if v != TAIL {
                return Ok(v);
            }
            let TailCall(next, env, at) = self.fast.tail.take().expect("a tail call is left");
            let n = next.params;
            // A loop, not `copy_within`: for a few values a call of `memmove` costs more.
            for k in 0..n {
                self.fast.vals[base + k] = self.fast.vals[at + k];
            }
            self.fast.vals.truncate(base + n);
            (lambda, cenv) = (next, env);
        }
    }

    /// Runs `lambda`'s body in new variables from `base` (its arguments are there) whose
    /// parent is `parent`; they are dropped after, unless the body left a tail call.
    #[inline(always)]
    fn fast_body(
        &mut self,
        lambda: &Lambda,
        base: usize,
        parent: Parent<'_>,
        depth: usize,
        tail: bool,
    ) -> Fx<Value> {
        // The arguments fill the parameters (the callers check the count): slots for the
        // body's definitions, if any, come after.
        if lambda.size != lambda.params {
            self.fast.vals.resize(base + lambda.size, Value::Undefined);
        }
        let locals = Locals { base, parent };
        let v = self.fx(&lambda.body, &locals, depth, tail)?;
        if v != TAIL {
            self.fast.vals.truncate(base);
        }
        Ok(v)
    }

    /// The value of `e`, not in tail position.
    #[inline(always)]
    fn fv(&mut self, e: &Expr, l: &Locals<'_>, depth: usize) -> Fx<Value> {
        match e {
            Expr::Const(v) => defined(*v),
            Expr::Local(d, i) | Expr::LocalDef(d, i, ..) => self.fast_local(l, *d, *i),
            Expr::Global(g, _) => defined(self.globals[*g as usize]),
            Expr::Call(c) => match &c.callee {
                Callee::Prim(k) => self.fast_builtin(c, k, l, depth),
                _ => self.fast_call(c, l, depth, false),
            },
            _ => self.fx(e, l, depth, false),
        }
    }

    /// Evaluates `e`; a call in tail position (`tail`) is left in `Fast::tail` and gives
    /// [`TAIL`].
    fn fx(&mut self, mut e: &Expr, l: &Locals<'_>, depth: usize, tail: bool) -> Fx<Value> {
        loop {
            return match e {
                Expr::Const(v) => defined(*v),
                Expr::Local(d, i) | Expr::LocalDef(d, i, ..) => self.fast_local(l, *d, *i),
                Expr::Global(g, _) => defined(self.globals[*g as usize]),
                Expr::If(c, t, f) => {
                    e = if truthy(self.fv(c, l, depth)?) { t } else { f };
                    continue;
                }
                Expr::Call(c) => match &c.callee {
                    Callee::Prim(k) => self.fast_builtin(c, k, l, depth),
                    _ => self.fast_call(c, l, depth, tail),
                },
                Expr::Seq(es) => {
                    let (last, init) = es.split_last().ok_or(GiveUp)?;
                    for x in init {
                        self.fv(x, l, depth)?;
                    }
                    e = last;
                    continue;
                }
                Expr::And(es) | Expr::Or(es) => {
                    let is_and = matches!(e, Expr::And(_));
                    let (last, init) = es.split_last().ok_or(GiveUp)?;
                    for x in init {
                        let v = self.fv(x, l, depth)?;
                        if truthy(v) != is_and {
                            return Ok(v);
                        }
                    }
                    e = last;
                    continue;
                }
                _ => Err(GiveUp),
            };
        }
    }

    /// Variable `i` of the environment `d` up from `l`.
    #[inline(always)]
    fn fast_local(&self, l: &Locals<'_>, d: u32, i: u32) -> Fx<Value> {
        if d == 0 {
            return defined(*self.fast.vals.get(l.base + i as usize).ok_or(GiveUp)?);
        }
        self.fast_outer(l, d, i)
    }

    /// [`Interp::fast_local`] of an enclosing environment.
    fn fast_outer(&self, l: &Locals<'_>, mut d: u32, i: u32) -> Fx<Value> {
        let mut at = l;
        loop {
            if d == 0 {
                return defined(*self.fast.vals.get(at.base + i as usize).ok_or(GiveUp)?);
            }
            match at.parent {
                Parent::Fast(p) => {
                    at = p;
                    d -= 1;
                }
                Parent::Heap(env) => {
                    // Nothing writes a variable within a try: the last read still holds.
                    if let Some((e, dd, ii, v)) = self.fast.var_memo.get() {
                        if e == env && dd == d && ii == i {
                            return Ok(v);
                        }
                    }
                    let v = defined(self.local(env, d - 1, i))?;
                    self.fast.var_memo.set(Some((env, d, i, v)));
                    return Ok(v);
                }
            }
        }
    }

    /// A call of a builtin the machine does itself (see [`fast_op1`], [`fast_op2`]): on
    /// operands decoded at compile time, done where it is called; on others, in
    /// [`Interp::fast_prim`].
    #[inline(always)]
    fn fast_builtin(&mut self, c: &Call, k: &Known, l: &Locals<'_>, depth: usize) -> Fx<Value> {
        if !self.still(k) {
            return Err(GiveUp);
        }
        match decoded_op(&self.heap, k, &InLocals(self, l)) {
            Some(v) => Ok(v),
            None if matches!(k.operands, Operands::Other) => self.fast_prim(c, k, l, depth),
            None => Err(GiveUp),
        }
    }

    /// [`Interp::fast_builtin`] of operands that are not decoded: they are evaluated here.
    fn fast_prim(&mut self, c: &Call, k: &Known, l: &Locals<'_>, depth: usize) -> Fx<Value> {
        let v = match &c.parts[1..] {
            [a] => {
                let x = self.fv(a, l, depth)?;
                fast_op1(&self.heap, k.op, x)
            }
            [a, b] => {
                let x = self.fv(a, l, depth)?;
                let y = self.fv(b, l, depth)?;
                fast_op2(k.op, x, y)
            }
            _ => None,
        };
        v.ok_or(GiveUp)
    }

    /// A call of a procedure written in Lisp: a `let`, or a closure.
    fn fast_call(&mut self, c: &Call, l: &Locals<'_>, depth: usize, tail: bool) -> Fx<Value> {
        let operands = &c.parts[1..];
        match &c.callee {
            Callee::Prim(k) => return self.fast_builtin(c, k, l, depth),
            Callee::Lambda(lambda) => {
                // A `let`: its variables' parent is this call's.
                let base = self.fast.vals.len();
                for a in operands {
                    let v = self.fv(a, l, depth)?;
                    self.fast.vals.push(v);
                }
                return self.fast_body(lambda, base, Parent::Fast(l), depth, tail);
            }
            Callee::Global | Callee::Unknown => {}
        }
        let Value::Ref(r) = self.fv(&c.parts[0], l, depth)? else { return Err(GiveUp) };
        let (lambda, cenv) = match &self.fast.memo {
            // The same closure as the last call: nothing can have changed it within a try.
            Some((m, lambda, cenv)) if *m == r => (lambda.clone(), *cenv),
            _ => match self.heap.get(r) {
                Ok(Obj::Closure(f)) if f.lambda.is_pure() => {
                    let (lambda, cenv) = (f.lambda.clone(), f.env);
                    self.fast.memo = Some((r, lambda.clone(), cenv));
                    (lambda, cenv)
                }
                _ => return Err(GiveUp),
            },
        };
        if lambda.params != operands.len() {
            return Err(GiveUp);
        }
        let at = self.fast.vals.len();
        for a in operands {
            let v = self.fv(a, l, depth)?;
            self.fast.vals.push(v);
        }
        if tail {
            self.fast.tail = Some(TailCall(lambda, cenv, at));
            return Ok(TAIL);
        }
        // The machine would hold at least one frame per call in progress here; the host
        // stack must have room for one more.
        let here = &at as *const usize as usize;
        if self.stack.len() + depth + 1 >= self.limits.frames as usize || here < self.fast.limit {
            return Err(GiveUp);
        }
        // `fast_run` leaves the value stack as it was below `at`.
        self.fast_run(lambda, cenv, at, depth + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> (String, (u64, u64)) {
        let mut i = Interp::new();
        let v = i.eval_str(src, "t").unwrap_or_else(|e| format!("error: {}", e.message));
        (v, i.fast_calls())
    }

    #[test]
    fn a_pure_recursion_runs_on_the_fast_path() {
        let fib = "(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))";
        let (v, tries) = run(&format!("{fib} (fib 15)"));
        assert_eq!((v.as_str(), tries), ("610", (1, 0)));
        // The same procedure on a float gives up, and the machine answers.
        let (v, tries) = run(&format!("{fib} (fib 5.5)"));
        assert_eq!((v.as_str(), tries), ("9.0", (0, 1)));
        // It is not tried again after giving up.
        let (v, tries) = run(&format!("{fib} (fib 5.5) (fib 10)"));
        assert_eq!((v.as_str(), tries), ("55", (0, 1)));
    }

    #[test]
    fn impure_code_is_never_tried() {
        let (v, tries) = run("(define (f n) (display n) n) (f 1)");
        assert_eq!((v.as_str(), tries), ("1", (0, 0)));
        let (v, tries) = run("(define (g n) (lambda () n)) (procedure? (g 1))");
        assert_eq!((v.as_str(), tries), ("#t", (0, 0)));
        let (_, tries) = run("(define (h . xs) 1) (h 1 2)");
        assert_eq!(tries, (0, 0));
    }

    #[test]
    fn fuel_limits_and_other_tasks_turn_it_off() {
        let mut i = Interp::with_limits(super::super::eval::Limits {
            fuel: Some(1_000_000),
            ..Default::default()
        });
        let v = i.eval_str("(define (sq x) (+ x x)) (sq 4)", "t").unwrap();
        assert_eq!((v.as_str(), i.fast_calls()), ("8", (0, 0)));
        let mut i = Interp::new();
        let src = "(define (sq x) (+ x x)) (define t (spawn (lambda () (sleep 1) 0))) (sq 4)";
        let v = i.eval_str(src, "t").unwrap();
        assert_eq!((v.as_str(), i.fast_calls()), ("8", (0, 0)));
    }

    #[test]
    fn recursion_deeper_than_the_host_stack_gives_up_to_the_machine() {
        // A 512 KiB thread: the fast path has little room, the machine's frames are data.
        let out = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(|| run("(define (count n) (if (= n 0) 0 (+ 1 (count (- n 1))))) (count 100000)"))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(out, ("100000".to_string(), (0, 1)));
    }
}
