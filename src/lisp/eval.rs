//! The evaluator: a CEK machine whose continuation frames are heap objects.
//!
//! Source data are compiled to an expression tree ([`Expr`], shared and immutable); the
//! machine then steps between two states: *evaluate* an expression in an environment with a
//! continuation, or *return* a value to a continuation. A continuation is a chain of
//! [`Frame`]s in the Lisp heap, each saying what to do with the value that arrives, so:
//!
//! - The host stack never grows with the program: a 10^6-deep non-tail recursion is 10^6
//!   frames in the heap (up to the frame limit, which gives a Lisp error), and a call in tail
//!   position pushes no frame at all, so a loop runs in constant space.
//! - Frames are never changed once made (a frame that collects call arguments is copied with
//!   one more value), so a continuation can be resumed any number of times.
//! - `(prompt tag body)` pushes a prompt frame. `(control tag k body)` walks from the current
//!   frame to the nearest prompt with that tag and keeps the frames in between as `k` (no copy:
//!   the frames are shared); `body` runs inside the prompt. Calling `k` with a value copies those
//!   frames onto the caller's continuation, so capture costs one step per frame up to the
//!   prompt and a call of `k` one frame copy per captured frame; neither touches the frames
//!   outside the prompt. `shift`/`reset` are the same with the prompt put back around the
//!   copied frames when `k` is called (the difference the two programs of
//!   `tests/lisp/control.olisp` show).
//!
//! Garbage collection runs between steps, when the heap says one is due; its roots are the
//! machine's registers, the globals and the constants of compiled code.

use super::datum::{Datum, DatumKind, Span};
use super::heap::{Heap, HeapFull, Obj, Ref, Sym, Symbols, Value};
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

fn err(message: impl Into<String>, at: Option<&Loc>) -> LispError {
    LispError { message: message.into(), at: at.cloned(), backtrace: Vec::new() }
}

/// Compiled code.
#[derive(Debug)]
pub(crate) enum Expr {
    Const(Value),
    Var(Sym, Loc),
    If(Rc<Expr>, Rc<Expr>, Rc<Expr>),
    Define(Sym, Rc<Expr>),
    Set(Sym, Rc<Expr>, Loc),
    Lambda(Rc<Lambda>),
    /// Non-empty.
    Seq(Rc<[Rc<Expr>]>),
    /// The procedure, then the arguments.
    Call(Rc<[Rc<Expr>]>, Loc),
    And(Rc<[Rc<Expr>]>),
    Or(Rc<[Rc<Expr>]>),
    Prompt(Rc<Expr>, Rc<Expr>),
    /// Tag, the continuation's name, body, and whether it is `shift`.
    Control(Rc<Expr>, Sym, Rc<Expr>, bool, Loc),
}

/// A `lambda`'s code.
#[derive(Debug)]
pub(crate) struct Lambda {
    params: Vec<Sym>,
    rest: Option<Sym>,
    body: Rc<Expr>,
    loc: Loc,
}

/// A procedure written in Lisp (opaque): its code and the environment it closed over.
#[derive(Debug, Clone)]
pub struct Closure {
    lambda: Rc<Lambda>,
    env: Option<Ref>,
}

/// A builtin procedure (opaque).
#[derive(Clone, Copy)]
pub struct Prim {
    name: &'static str,
    arity: (usize, Option<usize>),
    f: fn(&mut Interp, &[Value]) -> Result<Value, String>,
}

impl fmt::Debug for Prim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#<procedure {}>", self.name)
    }
}

/// The variables of one call (opaque; globals live in the interpreter).
#[derive(Debug)]
pub struct Env {
    vars: Vec<(Sym, Value)>,
    parent: Option<Ref>,
}

/// A continuation frame (opaque): what to do with the value that arrives.
#[derive(Debug, Clone)]
pub struct Frame {
    kind: FrameKind,
    next: Option<Ref>,
    depth: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum FrameKind {
    If(Rc<Expr>, Rc<Expr>, Option<Ref>),
    Seq(Rc<[Rc<Expr>]>, usize, Option<Ref>),
    Args { exprs: Rc<[Rc<Expr>]>, done: Vec<Value>, env: Option<Ref>, loc: Loc },
    Define(Sym, Option<Ref>),
    Set(Sym, Option<Ref>, Loc),
    And(Rc<[Rc<Expr>]>, usize, Option<Ref>),
    Or(Rc<[Rc<Expr>]>, usize, Option<Ref>),
    PromptTag(Rc<Expr>, Option<Ref>),
    Prompt(Value),
    ControlTag { k: Sym, body: Rc<Expr>, env: Option<Ref>, shift: bool, loc: Loc },
}

impl FrameKind {
    fn trace(&self, f: &mut dyn FnMut(Value)) {
        let env = match self {
            FrameKind::If(_, _, e)
            | FrameKind::Seq(_, _, e)
            | FrameKind::Define(_, e)
            | FrameKind::Set(_, e, _)
            | FrameKind::And(_, _, e)
            | FrameKind::Or(_, _, e)
            | FrameKind::PromptTag(_, e) => *e,
            FrameKind::Args { done, env, .. } => {
                done.iter().copied().for_each(&mut *f);
                *env
            }
            FrameKind::ControlTag { env, .. } => *env,
            FrameKind::Prompt(tag) => {
                f(*tag);
                None
            }
        };
        if let Some(e) = env {
            f(Value::Ref(e));
        }
    }
}

/// A captured continuation: the frames from the capture point up to (not including) the
/// prompt, innermost first; `reinstall` is the tag of a `shift`, whose calls put the prompt
/// back.
#[derive(Debug)]
pub struct Cont {
    frames: Vec<Ref>,
    reinstall: Option<Value>,
}

impl Closure {
    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        if let Some(e) = self.env {
            f(Value::Ref(e));
        }
    }
}

impl Env {
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.vars.capacity() * std::mem::size_of::<(Sym, Value)>()
    }

    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        self.vars.iter().for_each(|(_, v)| f(*v));
        if let Some(p) = self.parent {
            f(Value::Ref(p));
        }
    }
}

impl Frame {
    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        self.kind.trace(f);
        if let Some(n) = self.next {
            f(Value::Ref(n));
        }
    }
}

impl Cont {
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.frames.capacity() * std::mem::size_of::<Ref>()
    }

    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        self.frames.iter().for_each(|r| f(Value::Ref(*r)));
        if let Some(t) = self.reinstall {
            f(t);
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
    /// Live heap objects.
    pub heap_objects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { fuel: None, frames: 10_000_000, heap_objects: usize::MAX }
    }
}

enum State {
    Eval(Rc<Expr>, Option<Ref>, Option<Ref>),
    Return(Value, Option<Ref>),
}

/// An OmniLisp interpreter: a heap, the globals, and what the program printed.
pub struct Interp {
    pub(crate) heap: Heap,
    pub(crate) syms: Symbols,
    globals: HashMap<Sym, Value>,
    /// Values compiled code refers to (quoted data): always reachable.
    constants: Vec<Value>,
    limits: Limits,
    steps: u64,
    out: String,
    /// Print straight to standard output instead of collecting it.
    to_stdout: bool,
    s: Specials,
    compile_depth: usize,
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
    cond_tmp: Sym,
    quasiquote: Sym,
    unquote: Sym,
    unquote_splicing: Sym,
    case: Sym,
    r#do: Sym,
    do_loop: Sym,
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
            cond_tmp: i(" cond"),
            quasiquote: i("quasiquote"),
            unquote: i("unquote"),
            unquote_splicing: i("unquote-splicing"),
            case: i("case"),
            r#do: i("do"),
            do_loop: i(" do"),
        };
        // The builtins and the prelude load without limits; the caller's apply from then on.
        let mut interp = Interp {
            heap: Heap::new(),
            syms,
            globals: HashMap::new(),
            constants: Vec::new(),
            limits: Limits::default(),
            steps: 0,
            out: String::new(),
            to_stdout: false,
            s,
            compile_depth: 0,
        };
        super::builtins::install(&mut interp);
        interp.eval_str(super::builtins::PRELUDE, "prelude").expect("the prelude evaluates");
        interp.steps = 0;
        interp.limits = limits;
        interp.heap.set_limit(limits.heap_objects);
        interp
    }

    /// Defines the global `name` as the builtin `f`.
    pub(crate) fn def_prim(
        &mut self,
        name: &'static str,
        arity: (usize, Option<usize>),
        f: fn(&mut Interp, &[Value]) -> Result<Value, String>,
    ) {
        let r = self.heap.alloc(Obj::Prim(Prim { name, arity, f })).expect("no limit yet");
        self.constants.push(Value::Ref(r));
        let s = self.syms.intern(name);
        self.globals.insert(s, Value::Ref(r));
    }

    /// The heap's counts: live objects, bytes, collections.
    pub fn heap_stats(&self) -> super::heap::HeapStats {
        self.heap.stats()
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
    /// The first read or Lisp error, with its location.
    pub fn eval_str(&mut self, src: &str, file: &str) -> Result<String, LispError> {
        let file: Rc<str> = file.into();
        let mut last = Value::Unspecified;
        for d in super::Reader::new(src.as_bytes(), &file) {
            let d = d.map_err(|e| LispError {
                message: format!("read error: {}", e.message),
                at: Some(Loc { file: file.clone(), span: e.span }),
                backtrace: Vec::new(),
            })?;
            let e = self.compile(&d, &file)?;
            last = self.run(e)?;
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

    fn alloc(&mut self, obj: Obj) -> Result<Ref, LispError> {
        self.heap.alloc(obj).map_err(|e: HeapFull| err(e.to_string(), None))
    }

    // --- the compiler ----------------------------------------------------------------------

    fn loc(file: &Rc<str>, d: &Datum) -> Loc {
        Loc { file: file.clone(), span: d.span() }
    }

    /// A datum as a constant value (quoted data).
    fn datum_value(&mut self, d: &Datum) -> Result<Value, LispError> {
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

    fn bad(&self, what: &str, d: &Datum, file: &Rc<str>) -> LispError {
        err(format!("bad syntax: {what}; got {d}"), Some(&Self::loc(file, d)))
    }

    fn body(
        &mut self,
        items: &[Datum],
        file: &Rc<str>,
        whole: &Datum,
    ) -> Result<Rc<Expr>, LispError> {
        if items.is_empty() {
            return Err(self.bad("a body needs at least one expression", whole, file));
        }
        let mut exprs = Vec::with_capacity(items.len());
        for it in items {
            exprs.push(self.compile(it, file)?);
        }
        Ok(if exprs.len() == 1 {
            exprs.pop().expect("one")
        } else {
            Rc::new(Expr::Seq(exprs.into()))
        })
    }

    fn lambda(
        &mut self,
        params: &Datum,
        body: &[Datum],
        file: &Rc<str>,
        whole: &Datum,
    ) -> Result<Rc<Lambda>, LispError> {
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
    ) -> Result<(Vec<Sym>, Option<Sym>), LispError> {
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
    ) -> Result<Rc<Lambda>, LispError> {
        let body = self.body(body, file, whole)?;
        Ok(Rc::new(Lambda { params: ps, rest, body, loc: Self::loc(file, whole) }))
    }

    /// `((name init) ...)` of a `let` form.
    fn bindings(&mut self, d: &Datum, file: &Rc<str>) -> Result<Vec<(Sym, Rc<Expr>)>, LispError> {
        let DatumKind::List(items, None) = d.kind() else {
            return Err(self.bad("expected a list of bindings `((name value) ...)`", d, file));
        };
        let mut out = Vec::new();
        for b in items {
            let [name, init] = b.items() else {
                return Err(self.bad("a binding is `(name value)`", b, file));
            };
            let s = self
                .sym_of(name)
                .ok_or_else(|| self.bad("a binding's name must be a symbol", name, file))?;
            out.push((s, self.compile(init, file)?));
        }
        Ok(out)
    }

    /// `((lambda () (define name (lambda params body)) name) inits ...)`: a local recursive
    /// procedure called at once, as named `let` and `do` are.
    fn local_loop(
        name: Sym,
        params: Vec<Sym>,
        body: Rc<Expr>,
        inits: Vec<Rc<Expr>>,
        loc: Loc,
    ) -> Rc<Expr> {
        let lam =
            Rc::new(Expr::Lambda(Rc::new(Lambda { params, rest: None, body, loc: loc.clone() })));
        let def = Rc::new(Expr::Define(name, lam));
        let get = Rc::new(Expr::Var(name, loc.clone()));
        let make = Self::call_lambda(
            Vec::new(),
            Rc::new(Expr::Seq(vec![def, get].into())),
            Vec::new(),
            loc.clone(),
        );
        let mut call = vec![make];
        call.extend(inits);
        Rc::new(Expr::Call(call.into(), loc))
    }

    fn call_lambda(params: Vec<Sym>, body: Rc<Expr>, args: Vec<Rc<Expr>>, loc: Loc) -> Rc<Expr> {
        let lam =
            Rc::new(Expr::Lambda(Rc::new(Lambda { params, rest: None, body, loc: loc.clone() })));
        let mut call = vec![lam];
        call.extend(args);
        Rc::new(Expr::Call(call.into(), loc))
    }

    /// Compiles one datum.
    pub(crate) fn compile(&mut self, d: &Datum, file: &Rc<str>) -> Result<Rc<Expr>, LispError> {
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
        let r = stacker::maybe_grow(64 << 10, 1 << 20, || self.compile_inner(d, file));
        self.compile_depth -= 1;
        r
    }

    fn compile_inner(&mut self, d: &Datum, file: &Rc<str>) -> Result<Rc<Expr>, LispError> {
        let loc = Self::loc(file, d);
        let items = match d.kind() {
            DatumKind::Symbol(s) => return Ok(Rc::new(Expr::Var(self.syms.intern(s), loc))),
            DatumKind::List(items, None) if !items.is_empty() => items,
            DatumKind::List(_, Some(_)) => {
                return Err(self.bad("a call cannot be a dotted list", d, file))
            }
            DatumKind::List(..) => {
                return Err(self.bad("`()` is not an expression; quote it: '()", d, file))
            }
            _ => return Ok(Rc::new(Expr::Const(self.datum_value(d)?))),
        };
        let head = self.sym_of(&items[0]);
        let s = &self.s;
        let args = &items[1..];
        let Some(h) = head else { return self.call(items, file, loc) };
        // A special form's name bound as a variable by the program would shadow it; the
        // prelude and the tests never do, so the check is left for the macro expander.
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
            let e = match e {
                Some(e) => self.compile(e, file)?,
                None => Rc::new(Expr::Const(Value::Unspecified)),
            };
            return Ok(Rc::new(Expr::If(self.compile(c, file)?, self.compile(t, file)?, e)));
        }
        if h == s.define {
            return match args {
                [name, value] if name.as_symbol().is_some() => {
                    let n = self.sym_of(name).expect("a symbol");
                    Ok(Rc::new(Expr::Define(n, self.compile(value, file)?)))
                }
                [sig, body @ ..] => match sig.kind() {
                    DatumKind::List(sig_items, tail) if !sig_items.is_empty() => {
                        let n = self.sym_of(&sig_items[0]).ok_or_else(|| self.bad("a procedure's name must be a symbol", &sig_items[0], file))?;
                        let (ps, rest) = self.params(&sig_items[1..], tail.as_deref(), file)?;
                        let lam = self.lambda_from(ps, rest, body, file, d)?;
                        Ok(Rc::new(Expr::Define(n, Rc::new(Expr::Lambda(lam)))))
                    }
                    _ => Err(self.bad("`define` is `(define name value)` or `(define (name params ...) body ...)`", d, file)),
                },
                _ => Err(self.bad("`define` is `(define name value)` or `(define (name params ...) body ...)`", d, file)),
            };
        }
        if h == s.set {
            let [name, value] = args else {
                return Err(self.bad("`set!` is `(set! name value)`", d, file));
            };
            let n = self
                .sym_of(name)
                .ok_or_else(|| self.bad("`set!` needs a variable name", name, file))?;
            return Ok(Rc::new(Expr::Set(n, self.compile(value, file)?, loc)));
        }
        if h == s.lambda {
            let [params, body @ ..] = args else {
                return Err(self.bad("`lambda` is `(lambda params body ...)`", d, file));
            };
            return Ok(Rc::new(Expr::Lambda(self.lambda(params, body, file, d)?)));
        }
        if h == s.begin {
            return self.body(args, file, d);
        }
        if h == s.and || h == s.or {
            let is_and = h == s.and;
            if args.is_empty() {
                return Ok(Rc::new(Expr::Const(Value::Bool(is_and))));
            }
            let exprs: Vec<Rc<Expr>> =
                args.iter().map(|a| self.compile(a, file)).collect::<Result<_, _>>()?;
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
                    let bs = self.bindings(bindings, file)?;
                    let (params, inits): (Vec<Sym>, Vec<Rc<Expr>>) = bs.into_iter().unzip();
                    let body = self.body(body, file, d)?;
                    return Ok(Self::local_loop(n, params, body, inits, loc));
                }
            }
            let [bindings, body @ ..] = args else {
                return Err(self.bad("`let` is `(let ((name value) ...) body ...)`", d, file));
            };
            let bs = self.bindings(bindings, file)?;
            let (params, inits) = bs.into_iter().unzip();
            let body = self.body(body, file, d)?;
            return Ok(Self::call_lambda(params, body, inits, loc));
        }
        if h == s.let_star {
            let [bindings, body @ ..] = args else {
                return Err(self.bad("`let*` is `(let* ((name value) ...) body ...)`", d, file));
            };
            let bs = self.bindings(bindings, file)?;
            let mut e = self.body(body, file, d)?;
            for (n, init) in bs.into_iter().rev() {
                e = Self::call_lambda(vec![n], e, vec![init], loc.clone());
            }
            if let DatumKind::List(b, _) = bindings.kind() {
                if b.is_empty() {
                    return Ok(Self::call_lambda(Vec::new(), e, Vec::new(), loc));
                }
            }
            return Ok(e);
        }
        if h == s.letrec || h == s.letrec_star {
            let [bindings, body @ ..] = args else {
                return Err(self.bad(
                    "`letrec` is `(letrec ((name value) ...) body ...)`",
                    d,
                    file,
                ));
            };
            let bs = self.bindings(bindings, file)?;
            let mut seq: Vec<Rc<Expr>> =
                bs.into_iter().map(|(n, init)| Rc::new(Expr::Define(n, init))).collect();
            seq.push(self.body(body, file, d)?);
            return Ok(Self::call_lambda(
                Vec::new(),
                Rc::new(Expr::Seq(seq.into())),
                Vec::new(),
                loc,
            ));
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
            let tmp = self.s.cond_tmp;
            let memv = self.global_const("memv");
            let mut e: Rc<Expr> = Rc::new(Expr::Const(Value::Unspecified));
            for clause in clauses.iter().rev() {
                let parts = clause.items();
                let Some(data) = parts.first() else {
                    return Err(self.bad(
                        "a `case` clause is `((datum ...) body ...)`",
                        clause,
                        file,
                    ));
                };
                let body = self.body(&parts[1..], file, clause)?;
                if self.sym_of(data) == Some(self.s.r#else) {
                    e = body;
                    continue;
                }
                if !matches!(data.kind(), DatumKind::List(_, None)) {
                    return Err(self.bad("a `case` clause starts with a list of data", data, file));
                }
                let list = Rc::new(Expr::Const(self.datum_value(data)?));
                let get = Rc::new(Expr::Var(tmp, loc.clone()));
                let test = Rc::new(Expr::Call(
                    vec![memv.clone(), get, list].into(),
                    Self::loc(file, clause),
                ));
                e = Rc::new(Expr::If(test, body, e));
            }
            return Ok(Self::call_lambda(vec![tmp], e, vec![key], loc));
        }
        if h == s.r#do {
            // (do ((var init step) ...) (test result ...) body ...) is a named-let loop.
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
                    _ => {
                        return Err(self.bad("a `do` variable is `(var init [step])`", spec, file))
                    }
                };
                let v = self
                    .sym_of(name)
                    .ok_or_else(|| self.bad("a `do` variable must be a symbol", name, file))?;
                vars.push(v);
                inits.push(self.compile(init, file)?);
                steps.push(match step {
                    Some(st) => self.compile(st, file)?,
                    None => Rc::new(Expr::Var(v, loc.clone())),
                });
            }
            let [test, results @ ..] = end.items() else {
                return Err(self.bad("`do` needs `(test result ...)`", end, file));
            };
            let test = self.compile(test, file)?;
            let done = if results.is_empty() {
                Rc::new(Expr::Const(Value::Unspecified))
            } else {
                self.body(results, file, end)?
            };
            let lp = self.s.do_loop;
            let mut again: Vec<Rc<Expr>> = vec![Rc::new(Expr::Var(lp, loc.clone()))];
            again.extend(steps);
            let again = Rc::new(Expr::Call(again.into(), loc.clone()));
            let mut seq = Vec::new();
            for b in body {
                seq.push(self.compile(b, file)?);
            }
            seq.push(again);
            let step = Rc::new(Expr::If(test, done, Rc::new(Expr::Seq(seq.into()))));
            return Ok(Self::local_loop(lp, vars, step, inits, loc));
        }
        if h == s.cond {
            let mut e: Rc<Expr> = Rc::new(Expr::Const(Value::Unspecified));
            for clause in args.iter().rev() {
                let parts = clause.items();
                let Some(first) = parts.first() else {
                    return Err(self.bad("a `cond` clause is `(test body ...)`", clause, file));
                };
                if self.sym_of(first) == Some(self.s.r#else) {
                    e = self.body(&parts[1..], file, clause)?;
                    continue;
                }
                let test = self.compile(first, file)?;
                if parts.len() == 3 && self.sym_of(&parts[1]) == Some(self.s.arrow) {
                    let f = self.compile(&parts[2], file)?;
                    let tmp = self.s.cond_tmp;
                    let get = Rc::new(Expr::Var(tmp, loc.clone()));
                    let call =
                        Rc::new(Expr::Call(vec![f, get.clone()].into(), Self::loc(file, clause)));
                    let body = Rc::new(Expr::If(get, call, e));
                    e = Self::call_lambda(vec![tmp], body, vec![test], loc.clone());
                } else if parts.len() == 1 {
                    e = Rc::new(Expr::Or(vec![test, e].into()));
                } else {
                    e = Rc::new(Expr::If(test, self.body(&parts[1..], file, clause)?, e));
                }
            }
            return Ok(e);
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
            return Ok(Rc::new(Expr::Control(tag, k, self.body(body, file, d)?, is_shift, loc)));
        }
        self.call(items, file, loc)
    }

    /// The builtin `name` as a constant, so code the compiler writes keeps working when a
    /// program rebinds the name.
    fn global_const(&mut self, name: &str) -> Rc<Expr> {
        let s = self.syms.intern(name);
        Rc::new(Expr::Const(self.globals.get(&s).copied().unwrap_or(Value::Unspecified)))
    }

    /// `quasiquote` at nesting `depth`: data stay constant, `unquote` is evaluated, and
    /// `unquote-splicing` is appended.
    fn quasi(&mut self, d: &Datum, depth: u32, file: &Rc<str>) -> Result<Rc<Expr>, LispError> {
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

    fn quasi_inner(
        &mut self,
        d: &Datum,
        depth: u32,
        file: &Rc<str>,
    ) -> Result<Rc<Expr>, LispError> {
        let loc = Self::loc(file, d);
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
                    acc = Rc::new(Expr::Call(
                        vec![append.clone(), spliced, acc].into(),
                        Self::loc(file, item),
                    ));
                    continue;
                }
            }
            let v = self.quasi(item, depth, file)?;
            acc = Rc::new(Expr::Call(vec![cons.clone(), v, acc].into(), loc.clone()));
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
    ) -> Result<Rc<Expr>, LispError> {
        let list = self.global_const("list");
        let inner = self.quasi(x, depth, file)?;
        let head = Rc::new(Expr::Const(Value::Sym(name)));
        Ok(Rc::new(Expr::Call(vec![list, head, inner].into(), loc.clone())))
    }

    fn call(&mut self, items: &[Datum], file: &Rc<str>, loc: Loc) -> Result<Rc<Expr>, LispError> {
        let exprs: Vec<Rc<Expr>> =
            items.iter().map(|a| self.compile(a, file)).collect::<Result<_, _>>()?;
        Ok(Rc::new(Expr::Call(exprs.into(), loc)))
    }

    // --- the machine -----------------------------------------------------------------------

    fn push(
        &mut self,
        kind: FrameKind,
        next: Option<Ref>,
        at: Option<&Loc>,
    ) -> Result<Option<Ref>, LispError> {
        let depth = match next {
            Some(n) => match self.heap.get(n) {
                Ok(Obj::Frame(f)) => f.depth + 1,
                _ => 1,
            },
            None => 1,
        };
        if depth > self.limits.frames {
            return Err(err(
                format!("frame limit reached ({} frames of pending calls and forms): unbounded recursion?", self.limits.frames),
                at,
            ));
        }
        Ok(Some(self.alloc(Obj::Frame(Frame { kind, next, depth }))?))
    }

    fn lookup(&self, s: Sym, mut env: Option<Ref>) -> Option<Value> {
        while let Some(e) = env {
            let Ok(Obj::Env(en)) = self.heap.get(e) else { break };
            if let Some((_, v)) = en.vars.iter().rev().find(|(n, _)| *n == s) {
                return Some(*v);
            }
            env = en.parent;
        }
        self.globals.get(&s).copied()
    }

    fn assign(&mut self, s: Sym, mut env: Option<Ref>, v: Value) -> bool {
        while let Some(e) = env {
            let found = self
                .heap
                .update(e, |o| match o {
                    Obj::Env(en) => match en.vars.iter_mut().rev().find(|(n, _)| *n == s) {
                        Some(slot) => {
                            slot.1 = v;
                            Ok(true)
                        }
                        None => Err(en.parent),
                    },
                    _ => Err(None),
                })
                .unwrap_or(Err(None));
            match found {
                Ok(_) => return true,
                Err(parent) => env = parent,
            }
        }
        match self.globals.get_mut(&s) {
            Some(slot) => {
                *slot = v;
                true
            }
            None => false,
        }
    }

    fn define(&mut self, s: Sym, env: Option<Ref>, v: Value) {
        match env {
            None => {
                self.globals.insert(s, v);
            }
            Some(e) => {
                let _ = self.heap.update(e, |o| {
                    if let Obj::Env(en) = o {
                        match en.vars.iter_mut().find(|(n, _)| *n == s) {
                            Some(slot) => slot.1 = v,
                            None => en.vars.push((s, v)),
                        }
                    }
                });
            }
        }
    }

    fn frame(&self, k: Ref) -> Frame {
        match self.heap.get(k) {
            Ok(Obj::Frame(f)) => f.clone(),
            _ => unreachable!("a continuation holds frames only"),
        }
    }

    fn backtrace(&self, mut k: Option<Ref>) -> Vec<(Loc, u32)> {
        let mut out: Vec<(Loc, u32)> = Vec::new();
        while let Some(r) = k {
            let Ok(Obj::Frame(f)) = self.heap.get(r) else { break };
            if let FrameKind::Args { loc, .. } = &f.kind {
                let full = out.len() == 20;
                match out.last_mut() {
                    Some((last, n)) if last == loc => *n += 1,
                    _ if full => break,
                    _ => out.push((loc.clone(), 1)),
                }
            }
            k = f.next;
        }
        out
    }

    fn roots(&self, state: &State) -> Vec<Value> {
        let mut roots: Vec<Value> = self.globals.values().copied().collect();
        roots.extend(self.constants.iter().copied());
        match state {
            State::Eval(_, env, k) => {
                roots.extend(env.map(Value::Ref));
                roots.extend(k.map(Value::Ref));
            }
            State::Return(v, k) => {
                roots.push(*v);
                roots.extend(k.map(Value::Ref));
            }
        }
        roots
    }

    /// Runs compiled code to its value.
    fn run(&mut self, e: Rc<Expr>) -> Result<Value, LispError> {
        let mut state = State::Eval(e, None, None);
        loop {
            self.steps += 1;
            if let Some(fuel) = self.limits.fuel {
                if self.steps > fuel {
                    return Err(err(format!("out of fuel after {fuel} steps"), None));
                }
            }
            if self.heap.should_collect() {
                let roots = self.roots(&state);
                self.heap.collect(roots);
            }
            let k_now = match &state {
                State::Eval(_, _, k) | State::Return(_, k) => *k,
            };
            state = match state {
                State::Eval(e, env, k) => self.eval(e, env, k),
                State::Return(v, None) => return Ok(v),
                State::Return(v, Some(k)) => self.resume(v, k),
            }
            .map_err(|mut e| {
                if e.backtrace.is_empty() {
                    e.backtrace = self.backtrace(k_now);
                    // The innermost call is the error's own location already.
                    if let Some((first, n)) = e.backtrace.first_mut() {
                        if Some(&*first) == e.at.as_ref() {
                            *n -= 1;
                            if *n == 0 {
                                e.backtrace.remove(0);
                            }
                        }
                    }
                }
                e
            })?;
        }
    }

    fn eval(&mut self, e: Rc<Expr>, env: Option<Ref>, k: Option<Ref>) -> Result<State, LispError> {
        Ok(match &*e {
            Expr::Const(v) => State::Return(*v, k),
            Expr::Var(s, loc) => match self.lookup(*s, env) {
                Some(v) => State::Return(v, k),
                None => {
                    return Err(err(
                        format!("unbound variable `{}`", self.syms.name(*s)),
                        Some(loc),
                    ))
                }
            },
            Expr::If(c, t, f) => {
                let k = self.push(FrameKind::If(t.clone(), f.clone(), env), k, None)?;
                State::Eval(c.clone(), env, k)
            }
            Expr::Define(s, v) => {
                let k = self.push(FrameKind::Define(*s, env), k, None)?;
                State::Eval(v.clone(), env, k)
            }
            Expr::Set(s, v, loc) => {
                let k = self.push(FrameKind::Set(*s, env, loc.clone()), k, Some(loc))?;
                State::Eval(v.clone(), env, k)
            }
            Expr::Lambda(l) => {
                let r = self.alloc(Obj::Closure(Closure { lambda: l.clone(), env }))?;
                State::Return(Value::Ref(r), k)
            }
            Expr::Seq(es) => {
                let k = if es.len() > 1 {
                    self.push(FrameKind::Seq(es.clone(), 1, env), k, None)?
                } else {
                    k
                };
                State::Eval(es[0].clone(), env, k)
            }
            Expr::And(es) | Expr::Or(es) => {
                let kind = if matches!(&*e, Expr::And(_)) {
                    FrameKind::And(es.clone(), 1, env)
                } else {
                    FrameKind::Or(es.clone(), 1, env)
                };
                let k = if es.len() > 1 { self.push(kind, k, None)? } else { k };
                State::Eval(es[0].clone(), env, k)
            }
            Expr::Call(es, loc) => {
                let k = self.push(
                    FrameKind::Args { exprs: es.clone(), done: Vec::new(), env, loc: loc.clone() },
                    k,
                    Some(loc),
                )?;
                State::Eval(es[0].clone(), env, k)
            }
            Expr::Prompt(tag, body) => {
                let k = self.push(FrameKind::PromptTag(body.clone(), env), k, None)?;
                State::Eval(tag.clone(), env, k)
            }
            Expr::Control(tag, ks, body, shift, loc) => {
                let k = self.push(
                    FrameKind::ControlTag {
                        k: *ks,
                        body: body.clone(),
                        env,
                        shift: *shift,
                        loc: loc.clone(),
                    },
                    k,
                    Some(loc),
                )?;
                State::Eval(tag.clone(), env, k)
            }
        })
    }

    fn resume(&mut self, v: Value, k: Ref) -> Result<State, LispError> {
        let Frame { kind, next, .. } = self.frame(k);
        let is_and = matches!(&kind, FrameKind::And(..));
        Ok(match kind {
            FrameKind::If(t, f, env) => State::Eval(if truthy(v) { t } else { f }, env, next),
            FrameKind::Seq(es, i, env) => {
                let next = if i + 1 < es.len() {
                    self.push(FrameKind::Seq(es.clone(), i + 1, env), next, None)?
                } else {
                    next
                };
                State::Eval(es[i].clone(), env, next)
            }
            FrameKind::And(es, i, env) | FrameKind::Or(es, i, env) => {
                if truthy(v) != is_and {
                    return Ok(State::Return(v, next));
                }
                let kind = if is_and {
                    FrameKind::And(es.clone(), i + 1, env)
                } else {
                    FrameKind::Or(es.clone(), i + 1, env)
                };
                let next = if i + 1 < es.len() { self.push(kind, next, None)? } else { next };
                State::Eval(es[i].clone(), env, next)
            }
            FrameKind::Define(s, env) => {
                self.define(s, env, v);
                State::Return(Value::Unspecified, next)
            }
            FrameKind::Set(s, env, loc) => {
                if !self.assign(s, env, v) {
                    return Err(err(
                        format!("`set!` of an unbound variable `{}`", self.syms.name(s)),
                        Some(&loc),
                    ));
                }
                State::Return(Value::Unspecified, next)
            }
            FrameKind::Args { exprs, mut done, env, loc } => {
                done.push(v);
                if done.len() == exprs.len() {
                    let f = done.remove(0);
                    return self.apply(f, done, next, &loc);
                }
                let i = done.len();
                let next = self.push(
                    FrameKind::Args { exprs: exprs.clone(), done, env, loc: loc.clone() },
                    next,
                    Some(&loc),
                )?;
                State::Eval(exprs[i].clone(), env, next)
            }
            FrameKind::PromptTag(body, env) => {
                let k = self.push(FrameKind::Prompt(v), next, None)?;
                State::Eval(body, env, k)
            }
            FrameKind::Prompt(_) => State::Return(v, next),
            FrameKind::ControlTag { k: name, body, env, shift, loc } => {
                // Walk to the nearest prompt with this tag, keeping the frames on the way.
                let mut frames = Vec::new();
                let mut at = next;
                let prompt = loop {
                    let Some(r) = at else {
                        let mut tag = String::new();
                        self.heap.write(v, &self.syms, &mut tag);
                        let what = if shift {
                            "`shift` outside any `reset`".to_string()
                        } else {
                            format!("`control` with no enclosing `prompt` tagged {tag}")
                        };
                        return Err(err(what, Some(&loc)));
                    };
                    let f = self.frame(r);
                    if let FrameKind::Prompt(t) = f.kind {
                        if eqv(&self.heap, t, v) {
                            break r;
                        }
                    }
                    frames.push(r);
                    at = f.next;
                };
                let cont = self.alloc(Obj::Cont(Cont { frames, reinstall: shift.then_some(v) }))?;
                let env =
                    Some(self.alloc(Obj::Env(Env {
                        vars: vec![(name, Value::Ref(cont))],
                        parent: env,
                    }))?);
                State::Eval(body, env, Some(prompt))
            }
        })
    }

    fn apply(
        &mut self,
        f: Value,
        args: Vec<Value>,
        k: Option<Ref>,
        loc: &Loc,
    ) -> Result<State, LispError> {
        let Value::Ref(r) = f else {
            return Err(err(format!("not a procedure: {}", self.write_string(f)), Some(loc)));
        };
        enum Callee {
            Prim(Prim),
            Closure(Closure),
            Cont(Vec<Ref>, Option<Value>),
        }
        let callee = match self.heap.get(r) {
            Ok(Obj::Prim(p)) => Callee::Prim(*p),
            Ok(Obj::Closure(c)) => Callee::Closure(c.clone()),
            Ok(Obj::Cont(c)) => Callee::Cont(c.frames.clone(), c.reinstall),
            _ => return Err(err(format!("not a procedure: {}", self.write_string(f)), Some(loc))),
        };
        match callee {
            Callee::Prim(p) => {
                let (min, max) = p.arity;
                if args.len() < min || max.is_some_and(|m| args.len() > m) {
                    return Err(err(
                        format!("`{}` takes {}, got {}", p.name, arity_text(p.arity), args.len()),
                        Some(loc),
                    ));
                }
                if p.name == "apply" {
                    let mut spread = args[1..args.len() - 1].to_vec();
                    let mut l = args[args.len() - 1];
                    while let Some((a, d)) = self.heap.pair(l) {
                        spread.push(a);
                        l = d;
                    }
                    if l != Value::Nil {
                        return Err(err("`apply`'s last argument must be a list", Some(loc)));
                    }
                    return self.apply(args[0], spread, k, loc);
                }
                let v =
                    (p.f)(self, &args).map_err(|m| err(format!("{}: {m}", p.name), Some(loc)))?;
                Ok(State::Return(v, k))
            }
            Callee::Closure(c) => {
                let l = &c.lambda;
                let n = l.params.len();
                if args.len() < n || (l.rest.is_none() && args.len() > n) {
                    let want =
                        if l.rest.is_some() { format!("at least {n}") } else { format!("{n}") };
                    return Err(err(
                        format!(
                            "the procedure defined at {} takes {want} argument{}, got {}",
                            l.loc,
                            if n == 1 { "" } else { "s" },
                            args.len()
                        ),
                        Some(loc),
                    ));
                }
                let mut vars: Vec<(Sym, Value)> =
                    l.params.iter().copied().zip(args.iter().copied()).collect();
                if let Some(rest) = l.rest {
                    let mut list = Value::Nil;
                    for v in args[n..].iter().rev() {
                        list = Value::Ref(self.alloc(Obj::Pair(*v, list))?);
                    }
                    vars.push((rest, list));
                }
                let env = self.alloc(Obj::Env(Env { vars, parent: c.env }))?;
                Ok(State::Eval(l.body.clone(), Some(env), k))
            }
            Callee::Cont(frames, reinstall) => {
                let [v] = args[..] else {
                    return Err(err(
                        format!("a continuation takes 1 argument, got {}", args.len()),
                        Some(loc),
                    ));
                };
                let mut next = k;
                if let Some(tag) = reinstall {
                    next = self.push(FrameKind::Prompt(tag), next, Some(loc))?;
                }
                for r in frames.iter().rev() {
                    let kind = self.frame(*r).kind;
                    next = self.push(kind, next, Some(loc))?;
                }
                Ok(State::Return(v, next))
            }
        }
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
