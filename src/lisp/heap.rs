//! The Lisp heap: objects in a generational region, reclaimed by a mark-sweep collector.
//!
//! Immediate values (`()`, booleans, integers, floats, characters, symbols) live in [`Value`]
//! itself; everything else is an [`Obj`] in the heap's region, named by a [`Ref`] (the region's
//! generational key). A `Ref` to an object the collector freed is stale: reading it gives an
//! error, never another object, because the slot's version moved on.
//!
//! # Collection
//!
//! [`Heap::collect`] marks from the roots it is given, with an explicit stack (a list a million
//! long or a million deep marks on any thread), then sweeps every unmarked object. Cycles are
//! reclaimed like anything else unreachable. The owner (the evaluator) decides when to collect:
//! [`Heap::should_collect`] says when the objects allocated since the last collection reach the
//! number that survived it (so the work per allocation stays constant), and the cap set by
//! [`Heap::with_limit`] makes allocation fail with [`HeapFull`] instead of growing without
//! bound, which the evaluator turns into a Lisp error.
//!
//! # What the limit counts
//!
//! The limit is in objects, and an object that owns a buffer whose length the program chooses
//! (a string's text, the items of a vector, a record or a `values`, a hash table's entries)
//! counts one more for every [`BYTES_PER_OBJECT`] bytes of it: a vector of 1000 items counts as
//! 251 objects. So a limit of N bounds the memory of the live data to about N cells plus
//! N × 64 bytes, whether the program makes many small objects or a few huge ones. Environments
//! and continuations count one each (the frame limit bounds their size). The collector is paced
//! by the same weight, so big garbage is reclaimed as soon as small garbage of that size would be.
//! The count of live objects in [`HeapStats::objects`] is a plain count.
//!
//! # Printing
//!
//! [`Heap::write`] and [`Heap::display`] terminate on cyclic data. They print without any
//! bookkeeping first; a proper list has no more items, and acyclic data no more nesting, than
//! there are live objects, so a list longer or nesting deeper than that is cyclic. Then the value
//! is printed again keeping the set of objects being printed (the enclosing ones, and the pairs of
//! the lists being printed), and a reference back to one of those prints as `...`: a circular
//! list `(1 2 ...)`, a vector holding itself `#(1 ...)`. Shared structure that is not cyclic
//! prints in full.
//!
//! # Invariants
//!
//! - Every `Ref` inside a live object points at a live object after a collection whose roots
//!   reached the container (the mark phase follows every `Ref` an object holds; see
//!   [`Obj::trace`]).
//! - Mark bits are clear outside `collect`.
//! - [`HeapStats`] counts live objects, an estimate of their bytes, collections and objects
//!   freed, for the debugger's per-region memory view.
//! - The heap's weight (what the limit counts, see above) is the sum of its objects' weights,
//!   kept up to date by `alloc`, `update` and `collect`.

use crate::region::Region;
use std::collections::{HashMap, HashSet};
use std::fmt;

crate::region::new_key_type! {
    /// A reference to a heap object: a generational key of the heap's region.
    pub struct Ref;
}

/// An interned symbol: equal names, equal `Sym`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(u32);

/// Symbol names, interned.
#[derive(Debug, Default)]
pub struct Symbols {
    ids: HashMap<Box<str>, Sym>,
    names: Vec<Box<str>>,
}

impl Symbols {
    /// The symbol named `name`, made on first use.
    pub fn intern(&mut self, name: &str) -> Sym {
        if let Some(&s) = self.ids.get(name) {
            return s;
        }
        let s = Sym(u32::try_from(self.names.len()).expect("over 2^32 symbols"));
        self.names.push(name.into());
        self.ids.insert(name.into(), s);
        s
    }

    /// Whether a symbol named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.ids.contains_key(name)
    }

    /// The symbol named `name`, if one was made.
    pub fn lookup(&self, name: &str) -> Option<Sym> {
        self.ids.get(name).copied()
    }

    /// The name of `s`.
    pub fn name(&self, s: Sym) -> &str {
        &self.names[s.0 as usize]
    }
}

/// A Lisp value: an immediate, or a reference to a heap object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// The empty list.
    Nil,
    /// `#t` / `#f`.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A character.
    Char(char),
    /// A symbol.
    Sym(Sym),
    /// What a form with no useful value gives (`set!`, `display`).
    Unspecified,
    /// A heap object.
    Ref(Ref),
    /// The value of a variable whose definition has not run yet. Programs never see it:
    /// reading such a variable is an error.
    Undefined,
}

/// A heap object.
#[derive(Debug)]
pub enum Obj {
    /// A pair (`cons`).
    Pair(Value, Value),
    /// A string.
    Str(String),
    /// A vector.
    Vector(Vec<Value>),
    /// A box: one mutable cell.
    Box(Value),
    /// A procedure written in Lisp: its code and the environment it closed over.
    Closure(super::eval::Closure),
    /// A builtin procedure.
    Prim(super::eval::Prim),
    /// The variables of one call.
    Env(super::eval::Env),
    /// A captured continuation (a procedure).
    Cont(super::eval::Cont),
    /// An error object (from `error`, or a builtin's error caught by `guard`): the message
    /// (a string) and the irritants (a list).
    Condition(Value, Value),
    /// Several values, from `(values a b ...)`.
    Values(Vec<Value>),
    /// A record type: its name and field names.
    RecordType(Sym, Vec<Sym>),
    /// A record: its type (a `RecordType`) and its fields.
    Record(Ref, Vec<Value>),
    /// A hash table keyed by `equal?`.
    Table(Table),
    /// A channel, a task, the end-of-channel object (see `tasks`), an atom or an OS thread
    /// (see `threads`).
    Conc(super::tasks::Conc),
}

/// A hash table (opaque): entries bucketed by a structural hash of the key, compared with
/// `equal?`.
#[derive(Debug, Default)]
pub struct Table {
    pub(crate) buckets: HashMap<u64, Vec<(Value, Value)>>,
    pub(crate) len: usize,
}

impl Obj {
    /// Hands every value this object holds to `f` (the collector follows the references).
    pub fn trace(&self, mut f: impl FnMut(Value)) {
        match self {
            Obj::Pair(a, d) => {
                f(*a);
                f(*d);
            }
            Obj::Vector(items) | Obj::Values(items) => items.iter().copied().for_each(f),
            Obj::Box(v) => f(*v),
            Obj::Condition(m, i) => {
                f(*m);
                f(*i);
            }
            Obj::RecordType(..) => {}
            Obj::Record(t, fields) => {
                f(Value::Ref(*t));
                fields.iter().copied().for_each(f);
            }
            Obj::Conc(c) => c.trace(&mut f),
            Obj::Table(t) => t.buckets.values().flatten().for_each(|(k, v)| {
                f(*k);
                f(*v);
            }),
            Obj::Str(_) | Obj::Prim(_) => {}
            Obj::Closure(c) => c.trace(&mut f),
            Obj::Env(e) => e.trace(&mut f),
            Obj::Cont(k) => k.trace(&mut f),
        }
    }

    /// The bytes of the buffer this object owns whose size the program chooses: a string's
    /// text, the items of a vector, record or `values`, a table's entries.
    #[inline]
    fn owned_bytes(&self) -> usize {
        match self {
            Obj::Str(s) => s.capacity(),
            Obj::Vector(v) | Obj::Values(v) | Obj::Record(_, v) => {
                v.capacity() * std::mem::size_of::<Value>()
            }
            Obj::Table(t) => t.len * 2 * std::mem::size_of::<Value>(),
            _ => 0,
        }
    }

    /// What this object counts toward the heap's limit: one, plus one per
    /// [`BYTES_PER_OBJECT`] bytes of [`Obj::owned_bytes`].
    #[inline]
    fn weight(&self) -> usize {
        weight_of(self.owned_bytes())
    }

    /// An estimate of the bytes this object occupies: its slot plus what it owns.
    #[inline]
    fn bytes(&self) -> usize {
        let own = match self {
            Obj::Str(s) => s.capacity(),
            Obj::Vector(v) | Obj::Values(v) | Obj::Record(_, v) => {
                v.capacity() * std::mem::size_of::<Value>()
            }
            Obj::RecordType(_, f) => f.capacity() * std::mem::size_of::<Sym>(),
            Obj::Table(t) => t.len * 2 * std::mem::size_of::<Value>(),
            Obj::Conc(c) => c.bytes(),
            Obj::Env(e) => e.capacity_bytes(),
            Obj::Cont(k) => k.capacity_bytes(),
            Obj::Pair(..) | Obj::Box(_) | Obj::Closure(_) | Obj::Prim(_) | Obj::Condition(..) => 0,
        };
        std::mem::size_of::<Cell>() + own
    }
}

/// An object owning a buffer counts toward the heap limit as one more object per this many bytes
/// of it (four vector items).
pub const BYTES_PER_OBJECT: usize = 64;

/// The weight of an object owning `owned_bytes` bytes: see [`BYTES_PER_OBJECT`].
fn weight_of(owned_bytes: usize) -> usize {
    1 + owned_bytes / BYTES_PER_OBJECT
}

/// A slot of the heap: the object and its mark bit.
#[derive(Debug)]
struct Cell {
    marked: bool,
    obj: Obj,
}

/// Allocation refused: the heap holds as many objects as its limit allows, even after a
/// collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapFull {
    /// The limit, in objects.
    pub limit: usize,
}

impl fmt::Display for HeapFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "heap limit reached ({} live objects)", self.limit)
    }
}

impl std::error::Error for HeapFull {}

/// A stale or wrong reference: the object was collected, or is of another kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRef;

/// Counts of one heap, for the debugger and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Objects alive now.
    pub objects: usize,
    /// Estimated bytes of the live objects.
    pub bytes: usize,
    /// Collections run.
    pub collections: u64,
    /// Objects freed by collections, in all.
    pub freed: u64,
    /// Objects allocated, in all.
    pub allocated: u64,
}

/// The Lisp heap.
pub struct Heap {
    cells: Region<Ref, Cell>,
    limit: usize,
    bytes: usize,
    /// The sum of the live objects' weights (what the limit counts).
    weight: usize,
    /// Weight allocated since the last collection.
    since_collect: usize,
    /// The weight that survived the last collection.
    survivors: usize,
    /// The weight of the heaviest object allocated since the last collection.
    heaviest: usize,
    /// [`Heap::should_collect`], kept up to date by everything that changes what it reads, so
    /// the evaluator's check between steps is one load.
    due: bool,
    stats: HeapStats,
}

/// The fewest allocations between collections, so a small heap is not collected constantly.
const MIN_INTERVAL: usize = 32_768;

impl Default for Heap {
    fn default() -> Self {
        Heap::new()
    }
}

impl Heap {
    /// An empty heap with no limit.
    pub fn new() -> Heap {
        Heap::with_limit(usize::MAX)
    }

    /// An empty heap that refuses to hold more than `limit` live objects.
    pub fn with_limit(limit: usize) -> Heap {
        Heap {
            cells: Region::new(),
            limit,
            bytes: 0,
            weight: 0,
            since_collect: 0,
            survivors: 0,
            heaviest: 0,
            due: false,
            stats: HeapStats::default(),
        }
    }

    /// Changes the limit on live objects (a heap already over it refuses allocation until a
    /// collection brings it under).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        self.due = self.collection_due();
    }

    /// Allocates `obj`.
    ///
    /// # Errors
    ///
    /// [`HeapFull`] when the heap holds its limit of live objects, or would with this one
    /// (counted by its weight: see the module documentation). The owner should
    /// [`collect`](Heap::collect) and try again before reporting it.
    #[inline]
    pub fn alloc(&mut self, obj: Obj) -> Result<Ref, HeapFull> {
        let w = obj.weight();
        if self.weight.saturating_add(w) > self.limit {
            return Err(HeapFull { limit: self.limit });
        }
        self.bytes += obj.bytes();
        self.weight += w;
        self.since_collect += w;
        self.heaviest = self.heaviest.max(w);
        self.stats.allocated += 1;
        self.due = self.collection_due();
        Ok(self.cells.insert(Cell { marked: false, obj }))
    }

    /// Whether an object owning a buffer of `owned_bytes` bytes (a string's text, or 16 bytes
    /// per vector item) would fit under the limit now: a builtin asks before it builds a big
    /// buffer, so a refused one is never built.
    ///
    /// # Errors
    ///
    /// [`HeapFull`] when it would not; the `usize` is the weight the object would have.
    pub fn check_room(&self, owned_bytes: usize) -> Result<(), (HeapFull, usize)> {
        let w = weight_of(owned_bytes);
        if self.weight.saturating_add(w) > self.limit {
            return Err((HeapFull { limit: self.limit }, w));
        }
        Ok(())
    }

    /// The number of live objects (and of objects not yet collected): an upper bound on the
    /// length of a proper list, or the depth of acyclic data, in this heap.
    pub fn live(&self) -> usize {
        self.cells.len()
    }

    /// The object `r` names, to change; `None` when `r` is stale.
    pub fn get_mut(&mut self, r: Ref) -> Option<&mut Obj> {
        self.cells.get_mut(r).map(|c| &mut c.obj)
    }

    /// The object `r` names.
    ///
    /// # Errors
    ///
    /// [`BadRef`] when `r` is stale (its object was collected).
    #[inline]
    pub fn get(&self, r: Ref) -> Result<&Obj, BadRef> {
        self.cells.get(r).map(|c| &c.obj).ok_or(BadRef)
    }

    /// The object `r` names, to change it. Its size estimate is kept up to date.
    ///
    /// # Errors
    ///
    /// [`BadRef`] when `r` is stale.
    pub fn update<R>(&mut self, r: Ref, f: impl FnOnce(&mut Obj) -> R) -> Result<R, BadRef> {
        let cell = self.cells.get_mut(r).ok_or(BadRef)?;
        let (bytes, weight) = (cell.obj.bytes(), cell.obj.weight());
        let out = f(&mut cell.obj);
        self.bytes = self.bytes - bytes + cell.obj.bytes();
        self.weight = self.weight - weight + cell.obj.weight();
        self.due = self.collection_due();
        Ok(out)
    }

    /// Whether enough was allocated since the last collection to make one worth its cost (as
    /// much weight as survived it, and at least a few thousand objects' worth), or the limit is
    /// near: within an eighth of it, or within the heaviest object allocated since the last
    /// collection, since one step of the evaluator may allocate several objects (or another
    /// such one) before the next chance to collect. Near the limit it waits until a quarter of
    /// the room the last collection left has been allocated: when what survived is itself near
    /// the limit, collecting at every step would make each step cost a whole collection.
    #[inline]
    pub fn should_collect(&self) -> bool {
        self.due
    }

    fn collection_due(&self) -> bool {
        let headroom = (self.limit / 8).max(16).max(self.heaviest);
        let room_left = self.limit.saturating_sub(self.survivors);
        self.since_collect >= self.survivors.max(MIN_INTERVAL)
            || (self.since_collect >= (room_left / 4).max(1)
                && self.weight.saturating_add(headroom) >= self.limit)
    }

    /// Frees every object not reachable from `roots`. Returns how many were freed.
    pub fn collect(&mut self, roots: impl IntoIterator<Item = Value>) -> usize {
        let mut stack: Vec<Ref> = Vec::new();
        let push = |v: Value, stack: &mut Vec<Ref>| {
            if let Value::Ref(r) = v {
                stack.push(r);
            }
        };
        for v in roots {
            push(v, &mut stack);
        }
        while let Some(r) = stack.pop() {
            let Some(cell) = self.cells.get_mut(r) else { continue };
            if cell.marked {
                continue;
            }
            cell.marked = true;
            cell.obj.trace(|v| push(v, &mut stack));
        }
        let before = self.cells.len();
        let (mut bytes, mut weight) = (0, 0);
        self.cells.retain(|_, c| {
            let keep = std::mem::replace(&mut c.marked, false);
            if keep {
                bytes += c.obj.bytes();
                weight += c.obj.weight();
            }
            keep
        });
        let freed = before - self.cells.len();
        self.bytes = bytes;
        self.weight = weight;
        self.survivors = weight;
        self.since_collect = 0;
        self.heaviest = 0;
        self.due = self.collection_due();
        self.stats.collections += 1;
        self.stats.freed += freed as u64;
        freed
    }

    /// The heap's counts now.
    pub fn stats(&self) -> HeapStats {
        HeapStats { objects: self.cells.len(), bytes: self.bytes, ..self.stats }
    }

    /// `(a . d)`.
    ///
    /// # Errors
    ///
    /// [`HeapFull`], as [`Heap::alloc`].
    pub fn cons(&mut self, a: Value, d: Value) -> Result<Value, HeapFull> {
        self.alloc(Obj::Pair(a, d)).map(Value::Ref)
    }

    /// The car and cdr of `v`, if it is a pair.
    pub fn pair(&self, v: Value) -> Option<(Value, Value)> {
        match v {
            Value::Ref(r) => match self.get(r) {
                Ok(Obj::Pair(a, d)) => Some((*a, *d)),
                _ => None,
            },
            _ => None,
        }
    }

    /// The text of `v` if it is a string.
    pub fn get_string(&self, v: Value) -> Option<&str> {
        match v {
            Value::Ref(r) => match self.get(r) {
                Ok(Obj::Str(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// Writes `v` as `write` would (strings quoted), without recursing on the host stack.
    pub fn write(&self, v: Value, symbols: &Symbols, out: &mut String) {
        print(self, v, symbols, out, true);
    }

    /// Writes `v` as `display` would (strings and characters as they are).
    pub fn display(&self, v: Value, symbols: &Symbols, out: &mut String) {
        print(self, v, symbols, out, false);
    }
}

impl fmt::Debug for Heap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heap").field("stats", &self.stats()).finish()
    }
}

enum Step {
    Value(Value),
    /// The rest of a list after its first `n` items: ` item ...` then `)`.
    Rest(Value, usize),
    Text(&'static str),
    /// The end of an object with parts: its closing text.
    Close(&'static str),
    /// The end of an object (or list pair) being printed, in the careful pass.
    Leave(Ref),
    /// A value always written (a condition's message), whatever the mode.
    Quoted(Value),
}

/// `s` as a string literal the reader reads back: `\"`, `\\`, `\n`, `\t`, `\r`, `\a`, and
/// `\xHH;` for other control characters.
fn write_string_literal(s: &str, out: &mut String) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:x};", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `c` as `write` prints it, which the reader reads back: `#\a`, `#\space`, and `#\xHH` for a
/// control character with no name.
pub(crate) fn write_char(c: char, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    match super::reader::char_name(c) {
        Some(name) => write!(out, "#\\{name}"),
        None if c.is_control() => write!(out, "#\\x{:x}", c as u32),
        None => write!(out, "#\\{c}"),
    }
}

/// Printing met a list longer, or nesting deeper, than there are live objects: the value is
/// cyclic.
struct Cyclic;

fn print(heap: &Heap, v: Value, symbols: &Symbols, out: &mut String, write: bool) {
    let start = out.len();
    if print_walk(heap, v, symbols, out, write, None).is_err() {
        out.truncate(start);
        let mut open = HashSet::new();
        let _ = print_walk(heap, v, symbols, out, write, Some(&mut open));
    }
}

/// Prints `v`. Without `open` (the first pass), it gives up with [`Cyclic`] as soon as the value
/// shows itself cyclic. With `open` (the careful pass), it keeps there the objects being printed
/// and prints a reference back to one of them as `...`.
fn print_walk(
    heap: &Heap,
    v: Value,
    symbols: &Symbols,
    out: &mut String,
    write: bool,
    mut open: Option<&mut HashSet<Ref>>,
) -> Result<(), Cyclic> {
    use std::fmt::Write as _;
    // No proper list is longer, and no acyclic value deeper, than this.
    let most = heap.live();
    // Objects with parts being printed now, one inside the other.
    let mut depth = 0usize;
    let mut stack = vec![Step::Value(v)];
    while let Some(step) = stack.pop() {
        // An object with parts: first see whether it is being printed already.
        let enter = |r: Ref, depth: &mut usize, open: &mut Option<&mut HashSet<Ref>>| match open {
            None if *depth >= most => Err(Cyclic),
            None => {
                *depth += 1;
                Ok(true)
            }
            Some(set) => Ok(set.insert(r)),
        };
        match step {
            Step::Text(t) => out.push_str(t),
            Step::Close(t) => {
                out.push_str(t);
                depth = depth.saturating_sub(1);
            }
            Step::Leave(r) => {
                if let Some(set) = open.as_deref_mut() {
                    set.remove(&r);
                }
            }
            Step::Quoted(v) => match heap.get_string(v) {
                Some(s) => write_string_literal(s, out),
                None => stack.push(Step::Value(v)),
            },
            Step::Rest(rest, n) => match rest {
                Value::Nil => {
                    out.push(')');
                    depth = depth.saturating_sub(1);
                }
                r => match heap.pair(r) {
                    Some((a, d)) => {
                        let Value::Ref(rr) = r else { unreachable!("a pair is a reference") };
                        match open.as_deref_mut() {
                            None if n >= most => return Err(Cyclic),
                            None => {}
                            Some(set) => {
                                if !set.insert(rr) {
                                    out.push_str(" ...)");
                                    depth = depth.saturating_sub(1);
                                    continue;
                                }
                                stack.push(Step::Leave(rr));
                            }
                        }
                        out.push(' ');
                        stack.push(Step::Rest(d, n + 1));
                        stack.push(Step::Value(a));
                    }
                    None => {
                        out.push_str(" . ");
                        stack.push(Step::Close(")"));
                        stack.push(Step::Value(r));
                    }
                },
            },
            Step::Value(v) => match v {
                Value::Nil => out.push_str("()"),
                Value::Bool(b) => out.push_str(if b { "#t" } else { "#f" }),
                Value::Int(n) => {
                    let _ = write!(out, "{n}");
                }
                Value::Float(x) => {
                    let _ = super::datum::write_float(out, x);
                }
                Value::Char(c) if write => {
                    let _ = write_char(c, out);
                }
                Value::Char(c) => out.push(c),
                Value::Sym(s) => out.push_str(symbols.name(s)),
                Value::Unspecified => {}
                Value::Undefined => out.push_str("#<undefined>"),
                Value::Ref(r) => {
                    let obj = match heap.get(r) {
                        Err(BadRef) => {
                            out.push_str("#<collected>");
                            continue;
                        }
                        Ok(obj) => obj,
                    };
                    let has_parts = matches!(
                        obj,
                        Obj::Pair(..)
                            | Obj::Vector(_)
                            | Obj::Box(_)
                            | Obj::Condition(..)
                            | Obj::Values(_)
                            | Obj::Record(..)
                    );
                    if has_parts {
                        if !enter(r, &mut depth, &mut open)? {
                            out.push_str("...");
                            continue;
                        }
                        if open.is_some() {
                            stack.push(Step::Leave(r));
                        }
                    }
                    match obj {
                        Obj::Pair(a, d) => {
                            out.push('(');
                            stack.push(Step::Rest(*d, 1));
                            stack.push(Step::Value(*a));
                        }
                        Obj::Str(s) if write => write_string_literal(s, out),
                        Obj::Str(s) => out.push_str(s),
                        Obj::Vector(items) => {
                            out.push_str("#(");
                            stack.push(Step::Close(")"));
                            for (i, item) in items.iter().enumerate().rev() {
                                stack.push(Step::Value(*item));
                                if i > 0 {
                                    stack.push(Step::Text(" "));
                                }
                            }
                        }
                        Obj::Box(inner) => {
                            out.push_str("#&");
                            stack.push(Step::Close(""));
                            stack.push(Step::Value(*inner));
                        }
                        Obj::Closure(_) => out.push_str("#<procedure>"),
                        Obj::Prim(p) => {
                            let _ = write!(out, "{p:?}");
                        }
                        Obj::Cont(_) => out.push_str("#<continuation>"),
                        Obj::Env(_) => out.push_str("#<environment>"),
                        Obj::Condition(msg, irritants) => {
                            out.push_str("#<error ");
                            stack.push(Step::Close(">"));
                            if *irritants != Value::Nil {
                                stack.push(Step::Value(*irritants));
                                stack.push(Step::Text(" "));
                            }
                            stack.push(Step::Quoted(*msg));
                        }
                        Obj::Values(items) => {
                            stack.push(Step::Close(""));
                            for (i, item) in items.iter().enumerate().rev() {
                                stack.push(Step::Value(*item));
                                if i > 0 {
                                    stack.push(Step::Text(" "));
                                }
                            }
                        }
                        Obj::RecordType(name, _) => {
                            let _ = write!(out, "#<record-type {}>", symbols.name(*name));
                        }
                        Obj::Record(t, fields) => {
                            let name = match heap.get(*t) {
                                Ok(Obj::RecordType(n, _)) => symbols.name(*n),
                                _ => "record",
                            };
                            // `<point>`, as record types are often named, prints as `point`.
                            let name = name
                                .strip_prefix('<')
                                .and_then(|n| n.strip_suffix('>'))
                                .filter(|n| !n.is_empty())
                                .unwrap_or(name);
                            let _ = write!(out, "#<{name}");
                            stack.push(Step::Close(">"));
                            for item in fields.iter().rev() {
                                stack.push(Step::Value(*item));
                                stack.push(Step::Text(" "));
                            }
                        }
                        Obj::Table(t) => {
                            let _ = write!(out, "#<hash-table {}>", t.len);
                        }
                        Obj::Conc(c) => out.push_str(&c.describe()),
                    }
                }
            },
        }
    }
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn an_object_fits_in_64_bytes() {
        // Every call allocates an environment in a slot this big: keep large variants boxed.
        assert!(std::mem::size_of::<Obj>() <= 64, "Obj is {} bytes", std::mem::size_of::<Obj>());
    }

    fn list(heap: &mut Heap, items: &[Value]) -> Value {
        items.iter().rev().fold(Value::Nil, |tail, v| heap.cons(*v, tail).unwrap())
    }

    #[test]
    fn unreachable_objects_and_cycles_are_freed_reachable_ones_kept() {
        let mut heap = Heap::new();
        let syms = Symbols::default();
        let kept = list(&mut heap, &[Value::Int(1), Value::Int(2), Value::Int(3)]);
        // A cycle: a box holding a pair whose cdr is the box.
        let b = heap.alloc(Obj::Box(Value::Nil)).unwrap();
        let p = heap.cons(Value::Int(9), Value::Ref(b)).unwrap();
        heap.update(b, |o| *o = Obj::Box(p)).unwrap();
        assert_eq!(heap.stats().objects, 5);
        let freed = heap.collect([kept]);
        assert_eq!(freed, 2, "the unreachable cycle went");
        let mut out = String::new();
        heap.write(kept, &syms, &mut out);
        assert_eq!(out, "(1 2 3)");
        assert!(heap.get(b).is_err(), "a stale reference reads as gone, never as another object");
        let s = heap.stats();
        assert_eq!((s.objects, s.collections, s.freed, s.allocated), (3, 1, 2, 5));
    }

    #[test]
    fn ten_million_self_referencing_objects_in_bounded_memory() {
        let mut heap = Heap::new();
        let mut peak = 0;
        for i in 0..10_000_000i64 {
            let b = heap.alloc(Obj::Box(Value::Int(i))).unwrap();
            heap.update(b, |o| *o = Obj::Box(Value::Ref(b))).unwrap();
            if heap.should_collect() {
                heap.collect([Value::Ref(b)]);
            }
            peak = peak.max(heap.stats().objects);
        }
        assert!(peak <= 2 * MIN_INTERVAL, "peak {peak} live objects");
        assert!(heap.stats().collections >= 10_000_000 / (2 * MIN_INTERVAL as u64));
    }

    #[test]
    fn a_million_long_and_a_million_deep_mark_and_print_on_a_small_stack() {
        let (long, deep, out_len) = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let mut heap = Heap::new();
                let syms = Symbols::default();
                let mut long = Value::Nil;
                for i in 0..1_000_000 {
                    long = heap.cons(Value::Int(i), long).unwrap();
                }
                let mut deep = Value::Nil;
                for _ in 0..1_000_000 {
                    deep = heap.cons(deep, Value::Nil).unwrap();
                }
                heap.collect([long, deep]);
                let kept = heap.stats().objects;
                let mut out = String::new();
                heap.write(deep, &syms, &mut out);
                (kept, heap.collect([long]), out.len())
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(long, 2_000_000);
        assert_eq!(deep, 1_000_000);
        assert_eq!(out_len, 2_000_002);
    }

    #[test]
    fn the_limit_refuses_allocation_and_a_collection_makes_room() {
        let mut heap = Heap::with_limit(10);
        let keep = heap.cons(Value::Int(0), Value::Nil).unwrap();
        for _ in 0..9 {
            heap.cons(Value::Int(1), Value::Nil).unwrap();
        }
        let full = heap.cons(Value::Nil, Value::Nil).unwrap_err();
        assert_eq!(full.to_string(), "heap limit reached (10 live objects)");
        assert!(heap.should_collect());
        assert_eq!(heap.collect([keep]), 9);
        assert!(heap.cons(Value::Nil, Value::Nil).is_ok());
    }

    #[test]
    fn big_objects_count_by_their_size_against_the_limit() {
        let mut heap = Heap::with_limit(1000);
        // 100 items of 16 bytes: 1 + 1600 / 64 = 26.
        let v = heap.alloc(Obj::Vector(vec![Value::Nil; 100])).unwrap();
        assert_eq!((heap.weight, heap.live()), (26, 1));
        assert!(heap.check_room(974 * BYTES_PER_OBJECT).is_err());
        assert!(heap.check_room(973 * BYTES_PER_OBJECT).is_ok());
        let s = heap.alloc(Obj::Str("x".repeat(64 * 900))).unwrap();
        assert_eq!(heap.weight, 26 + 901);
        let refused = heap.alloc(Obj::Str("x".repeat(64 * 100))).unwrap_err();
        assert_eq!(refused, HeapFull { limit: 1000 });
        // Pairs still count one each, up to the limit.
        for _ in 0..73 {
            heap.cons(Value::Nil, Value::Nil).unwrap();
        }
        assert!(heap.cons(Value::Nil, Value::Nil).is_err());
        assert!(heap.should_collect());
        heap.collect([Value::Ref(v)]);
        assert_eq!((heap.weight, heap.live()), (26, 1));
        assert!(heap.get(s).is_err());
        // Growing in place (a table, a vector) is counted too.
        heap.update(v, |o| *o = Obj::Vector(vec![Value::Nil; 400])).unwrap();
        assert_eq!(heap.weight, 101);
    }

    #[test]
    fn big_garbage_is_collected_as_soon_as_small_garbage_of_its_size() {
        let mut heap = Heap::new();
        let mut collections = 0;
        for _ in 0..100 {
            // 10^6 items each: far more than `MIN_INTERVAL` objects' worth.
            heap.alloc(Obj::Vector(vec![Value::Nil; 1_000_000])).unwrap();
            if heap.should_collect() {
                heap.collect([]);
                collections += 1;
            }
        }
        assert_eq!(collections, 100);
    }

    #[test]
    fn cyclic_data_prints_with_dots_where_it_refers_back() {
        let mut heap = Heap::new();
        let syms = Symbols::default();
        let show = |heap: &Heap, v: Value| {
            let mut out = String::new();
            heap.write(v, &syms, &mut out);
            out
        };
        let l = list(&mut heap, &[Value::Int(1), Value::Int(2), Value::Int(3)]);
        let (Some((_, d)), Value::Ref(r)) = (heap.pair(l), l) else { unreachable!() };
        let (_, dd) = heap.pair(d).unwrap();
        let Value::Ref(last) = dd else { unreachable!() };
        heap.update(last, |o| *o = Obj::Pair(Value::Int(3), l)).unwrap();
        assert_eq!(show(&heap, l), "(1 2 3 ...)");
        let v = heap.alloc(Obj::Vector(vec![l, Value::Nil])).unwrap();
        heap.update(v, |o| *o = Obj::Vector(vec![l, Value::Ref(v)])).unwrap();
        assert_eq!(show(&heap, Value::Ref(v)), "#((1 2 3 ...) ...)");
        heap.update(r, |o| *o = Obj::Pair(Value::Ref(v), d)).unwrap();
        assert_eq!(show(&heap, l), "(#(... ...) 2 3 ...)");
        // Shared, not cyclic: in full.
        let x = list(&mut heap, &[Value::Int(7)]);
        let shared = list(&mut heap, &[x, x]);
        assert_eq!(show(&heap, shared), "((7) (7))");
    }

    #[test]
    fn printing_every_kind() {
        let mut heap = Heap::new();
        let mut syms = Symbols::default();
        let s = heap.alloc(Obj::Str("a\"b".into())).unwrap();
        let x = syms.intern("x");
        assert_eq!(syms.intern("x"), x);
        let v = heap
            .alloc(Obj::Vector(vec![
                Value::Ref(s),
                Value::Char(' '),
                Value::Float(2.0),
                Value::Sym(x),
            ]))
            .unwrap();
        let dotted = heap.cons(Value::Int(1), Value::Int(2)).unwrap();
        let top = list(&mut heap, &[Value::Ref(v), dotted, Value::Bool(true), Value::Nil]);
        let (mut w, mut d) = (String::new(), String::new());
        heap.write(top, &syms, &mut w);
        heap.display(top, &syms, &mut d);
        assert_eq!(w, r#"(#("a\"b" #\space 2.0 x) (1 . 2) #t ())"#);
        assert_eq!(d, r#"(#(a"b   2.0 x) (1 . 2) #t ())"#);
    }
}
