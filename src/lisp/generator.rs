//! Native generators: a producer that runs on the interpreter's own frame stack and parks its
//! frames in the generator object between items.
//!
//! `(make-generator producer)` makes a generator object. It is a procedure, as in the seeds:
//! `(g 'next)` runs the producer until its next `yield` (or its end), `(g 'done?)` and
//! `(g 'close)` do what they say. `gen-next`, `gen-done?` and `gen-close` do the same without
//! the symbol dispatch (and call `(g 'next)` and so on when `g` is some other procedure, so a
//! generator written by hand as a lambda works with them too). The producer is called once,
//! with a *yield object*: a procedure of one argument bound to its generator.
//!
//! # How a switch works
//!
//! - `next` pushes a *boundary* frame naming the generator, then either applies the producer
//!   to the yield object (the first time) or moves the producer's parked frames back onto the
//!   stack and returns `#f` into them (the value `yield` returns in the producer).
//! - Calling the yield object finds its generator's boundary frame (the nearest one naming
//!   it), moves every frame above it into the generator object, drops the boundary and returns
//!   the item to whoever asked for it.
//! - When the producer returns, the value reaches the boundary frame: the generator is done,
//!   and that `next` (and every later one) answers the symbol `done`.
//!
//! The frames move; nothing is copied (a generator is one-shot, unlike the continuation that
//! `control` makes), and the generator keeps its frame vector between items, so a steady
//! stream of items allocates nothing for the switch. This replaced a `prompt`/`control`
//! generator that copied the producer's frames twice per item.
//!
//! # Invariants
//!
//! - A generator is `Fresh` (body not started), `Running` (its boundary is on the stack),
//!   `Suspended` (its frames parked in it) or `Done`. Its parked frames are empty unless it is
//!   `Suspended`.
//! - `dynamic-wind` inside a producer behaves as with `control`: leaving at a `yield` runs the
//!   `after` thunks of the winds it leaves, innermost first, and resuming runs their `before`
//!   thunks, outermost first.
//! - A producer left by an escape (an error raised out of it, a continuation jump past its
//!   boundary) is finished: the next `next` finds no boundary for a `Running` generator, on
//!   this task's stack or any other's, and answers `done`. Asking a running generator for an
//!   item is an error, not a hang: from its own producer, or from another task while the
//!   producer waits in the task that asked first.
//! - The frame limit counts parked frames when they come back onto the stack.

use super::eval::{error_at, Frame, FrameKind, Interp, Loc, State, Then};
use super::heap::{Obj, Ref, Value};
use super::tasks::Conc;

type Fail = Box<super::eval::LispError>;

/// Where a generator's producer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Fresh,
    Running,
    Suspended,
    Done,
}

/// A generator object (opaque).
#[derive(Debug)]
pub struct Gen {
    /// The procedure of one argument (the yield object) that produces the items.
    pub(crate) producer: Value,
    /// The producer's frames while it is suspended.
    pub(crate) frames: Vec<Frame>,
    pub(crate) status: Status,
}

impl Gen {
    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        f(self.producer);
        self.frames.iter().for_each(|fr| fr.trace(f));
    }
}

impl Interp {
    /// The generator `v` is, with its status, if it is one.
    fn gen_status(&self, v: Value) -> Option<(Ref, Status)> {
        let Value::Ref(r) = v else { return None };
        match self.heap.get(r) {
            Ok(Obj::Conc(Conc::Gen(g))) => Some((r, g.status)),
            _ => None,
        }
    }

    fn gen_mut(&mut self, r: Ref) -> &mut Gen {
        match self.heap.get_mut(r) {
            Some(Obj::Conc(Conc::Gen(g))) => g,
            _ => unreachable!("checked by gen_status"),
        }
    }

    /// The index of `r`'s boundary frame on the stack, if its producer is running.
    fn gen_boundary(&self, r: Ref) -> Option<usize> {
        self.stack.iter().rposition(|f| is_boundary_of(f, r))
    }

    /// `(gen-next g)` of generator `g` (`r`, now `status`): the producer's next item, or the
    /// symbol `done`.
    fn gen_next(&mut self, g: Value, r: Ref, status: Status, loc: &Loc) -> Result<State, Fail> {
        match status {
            Status::Done => Ok(State::Return(self.done_symbol())),
            Status::Running if self.gen_abandoned(r) => {
                self.gen_mut(r).status = Status::Done;
                Ok(State::Return(self.done_symbol()))
            }
            Status::Running if self.gen_boundary(r).is_some() => Err(error_at(
                "gen-next: the generator is running: its producer asked it for an item",
                Some(loc),
            )),
            Status::Running => Err(error_at(
                "gen-next: the generator is running in another task (its producer is waiting \
                 there); give each task its own generator, or hand items on through a channel",
                Some(loc),
            )),
            Status::Fresh => {
                let y =
                    self.heap.alloc(Obj::Conc(Conc::Yield(r))).map_err(|e| self.heap_full(e))?;
                self.push(FrameKind::GenBoundary(g), Some(loc))?;
                let gen = self.gen_mut(r);
                gen.status = Status::Running;
                let producer = gen.producer;
                self.apply(producer, &[Value::Ref(y)], loc)
            }
            Status::Suspended => {
                let parked = self.gen_mut(r).frames.len();
                if self.stack.len() + 1 + parked > self.limits.frames as usize {
                    return Err(self.frame_limit(Some(loc)));
                }
                self.stack.push(Frame(FrameKind::GenBoundary(g)));
                let mut frames = std::mem::take(&mut self.gen_mut(r).frames);
                let befores: Vec<Value> = Self::winds(&frames).iter().map(|w| w.1).collect();
                self.stack.append(&mut frames);
                let gen = self.gen_mut(r);
                gen.frames = frames; // empty, keeping its capacity for the next suspension
                gen.status = Status::Running;
                self.unwind(befores, Then::Return(Value::Bool(false)), loc)
            }
        }
    }

    /// A yield object of `r` called with `v`: parks the producer's frames in `r` and hands
    /// `v` to whoever asked for the item.
    pub(crate) fn gen_yield(&mut self, r: Ref, v: Value, loc: &Loc) -> Result<State, Fail> {
        let Some(p) = self.gen_boundary(r) else {
            return Err(error_at(
                "yield: called outside its generator's producer (the generator is not running)",
                Some(loc),
            ));
        };
        // Leaving the producer runs the `after` thunks of its winds, innermost first.
        let afters = Self::afters(&self.stack[p + 1..]);
        let mut frames = std::mem::take(&mut self.gen_mut(r).frames);
        frames.extend(self.stack.drain(p + 1..));
        self.stack.pop(); // the boundary
        let gen = self.gen_mut(r);
        if gen.status == Status::Running {
            gen.frames = frames;
            gen.status = Status::Suspended;
        }
        self.unwind(afters, Then::Return(v), loc)
    }

    /// The producer returned to its boundary frame: the generator is done.
    pub(crate) fn gen_finished(&mut self, g: Value) -> Value {
        if let Value::Ref(r) = g {
            if let Some(Obj::Conc(Conc::Gen(gen))) = self.heap.get_mut(r) {
                gen.status = Status::Done;
                gen.frames.clear();
            }
        }
        self.done_symbol()
    }

    fn done_symbol(&mut self) -> Value {
        Value::Sym(self.syms.intern("done"))
    }

    /// Whether `r` is `Running` but its boundary frame is on no task's stack: its producer
    /// was left by an escape.
    fn gen_abandoned(&self, r: Ref) -> bool {
        self.gen_boundary(r).is_none() && !self.sched.any_parked_frame(|f| is_boundary_of(f, r))
    }

    /// `(g 'done?)`, `(gen-done? g)` of generator `r`, now `status`.
    fn gen_done(&mut self, r: Ref, status: Status) -> Value {
        let done = status == Status::Done || (status == Status::Running && self.gen_abandoned(r));
        if done {
            self.gen_mut(r).status = Status::Done;
        }
        Value::Bool(done)
    }

    /// `(g 'close)`, `(gen-close g)`: the producer will not run again.
    fn gen_close(&mut self, r: Ref) -> Value {
        let gen = self.gen_mut(r);
        gen.status = Status::Done;
        gen.frames = Vec::new();
        Value::Unspecified
    }

    /// `gen-next`, `gen-done?`, `gen-close`: the generator operation `op` on `g`, or `(g op)`
    /// when `g` is some other procedure.
    pub(crate) fn gen_op(&mut self, op: GenOp, g: Value, loc: &Loc) -> Result<State, Fail> {
        match self.gen_status(g) {
            Some((r, status)) => self.gen_native(op, g, r, status, loc),
            None => {
                let cmd = Value::Sym(self.syms.intern(op.symbol()));
                self.apply(g, &[cmd], loc)
            }
        }
    }

    /// Operation `op` on generator `g` (`r`, now `status`).
    fn gen_native(
        &mut self,
        op: GenOp,
        g: Value,
        r: Ref,
        status: Status,
        loc: &Loc,
    ) -> Result<State, Fail> {
        match op {
            GenOp::Next => self.gen_next(g, r, status, loc),
            GenOp::Done => Ok(State::Return(self.gen_done(r, status))),
            GenOp::Close => Ok(State::Return(self.gen_close(r))),
        }
    }

    /// Generator `r` (now `status`) applied to `args`: `(g 'next)`, `(g 'done?)` or
    /// `(g 'close)`.
    pub(crate) fn apply_gen(
        &mut self,
        r: Ref,
        status: Status,
        args: &[Value],
        loc: &Loc,
    ) -> Result<State, Fail> {
        let op = match args {
            [Value::Sym(s)] => match self.syms.name(*s) {
                "next" => Some(GenOp::Next),
                "done?" => Some(GenOp::Done),
                "close" => Some(GenOp::Close),
                _ => None,
            },
            _ => None,
        };
        let Some(op) = op else {
            let got: Vec<String> = args.iter().map(|a| self.write_string(*a)).collect();
            return Err(error_at(
                format!("a generator answers 'next, 'done? or 'close, not ({})", got.join(" ")),
                Some(loc),
            ));
        };
        self.gen_native(op, Value::Ref(r), r, status, loc)
    }
}

/// Whether `f` is the boundary frame of generator `r`.
fn is_boundary_of(f: &Frame, r: Ref) -> bool {
    matches!(f.0, FrameKind::GenBoundary(Value::Ref(x)) if x == r)
}

/// What `gen-next`, `gen-done?` and `gen-close` ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GenOp {
    Next,
    Done,
    Close,
}

impl GenOp {
    fn symbol(self) -> &'static str {
        match self {
            GenOp::Next => "next",
            GenOp::Done => "done?",
            GenOp::Close => "close",
        }
    }
}

/// `make-generator`, `generator?`.
pub(crate) fn install(i: &mut Interp) {
    i.def_prim("make-generator", (1, Some(1)), |i, a| {
        let gen = Gen { producer: a[0], frames: Vec::new(), status: Status::Fresh };
        i.heap.alloc(Obj::Conc(Conc::Gen(gen))).map(Value::Ref).map_err(|e| e.to_string())
    });
    i.def_prim("generator?", (1, Some(1)), |i, a| {
        Ok(Value::Bool(matches!(a[0], Value::Ref(r)
            if matches!(i.heap.get(r), Ok(Obj::Conc(Conc::Gen(_)))))))
    });
}
