//! Transmigration: deep copies of Lisp values that move between interpreters on different OS
//! threads.
//!
//! An interpreter's values cannot leave its thread as they are: heap objects are keys into
//! its own region, symbols are indices into its own symbol table, globals are slots of its
//! own vector, and compiled code is `Rc<Expr>`/`Rc<Lambda>`, which is not `Send`. A
//! [`Migrant`] is a *thread-neutral* copy of a value graph:
//!
//! - every heap object reached becomes a node of a vector, and a reference becomes a node
//!   index; a map from the source `Ref` to its node, kept while copying, makes an object
//!   reached twice one node, so sharing and cycles survive (a circular list comes out
//!   circular, a vector holding itself holds its copy);
//! - symbols become indices into a table of names, interned again by name on arrival;
//! - compiled code is translated into a mirror ([`Code`]) addressed by index as well, with
//!   globals by name and locations by file index; a `lambda`'s code reached from several
//!   closures is copied once. Entries only refer to entries before them, so the receiving
//!   side rebuilds the `Rc` tree in one pass in index order, without recursion;
//! - the globals the copied code names (transitively: code reached through their values is
//!   copied too) travel with it, except those still holding what the builtins and the
//!   prelude gave them: the receiving interpreter has its own of those;
//! - builtins cross as themselves (a `Prim` is a name and function pointers).
//!
//! Why a mirror rather than a copy of the `Rc`s sent with an `unsafe impl Send`: a mirror
//! holds no `Rc` at all, so the compiler proves the package `Send` (see the test
//! `a_package_is_send`), and a package can be opened any number of times (a shared atom
//! opens its value on every thread that reads it) without ever touching the sender's
//! reference counts. The price is one translation of the code on each side, linear in its
//! size.
//!
//! What cannot cross is refused with an error that names it: a continuation (its frames
//! belong to the machine of the thread that captured it), a generator (for the same reason),
//! a green task, a thread handle (it
//! is joined once, by the thread that started it), a channel a `select` waits on.
//!
//! Atoms and channels are the exception to copying: one that crosses becomes *shared* (see
//! `threads` and `shared_chan`): both sides hold one cell, and only the values in it are
//! transmigrated, in on a read and out on a write.
//!
//! Identity is kept where a program can see it across threads ([`Identities`]): an
//! interpreter makes one object per shared atom or channel, however many times it arrives, so
//! `eq?` holds between its arrivals; and a record type that went to another thread and comes
//! back (in a record the thread returns) is the original type again, so its predicate and
//! accessors accept the record. A record type gets a process-wide id when it first leaves
//! its interpreter for that.
//!
//! Global variables are copied, not shared: a `set!` of one in a thread is not seen by the
//! thread that started it. A new thread takes the globals that come with its thunk as they
//! are; anywhere else (a thread's value coming back, an atom's value read), a global that
//! comes with a package is defined only where the receiver has none of that name: the
//! receiver's own definitions win, and copied code names them, as code linked by name does. Code constants of copied closures are kept alive by the receiving
//! interpreter for as long as it runs, like the constants of code it compiles.

use super::datum::Span;
use super::eval::{Closure, Env, Expr, Interp, Lambda, Loc, Prim};
use super::heap::{Obj, Ref, Sym, Table, Value};
use super::shared_chan::{SharedChan, SharedChanCell};
use super::tasks::Conc;
use super::threads::{AtomCell, SharedAtom};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Which object of an interpreter stands for a shared atom or channel (by the address of its
/// cell) and for a record type (by its process-wide id). An entry whose object was collected is
/// stale: its `Ref` reads as gone, and a new object takes its place.
#[derive(Debug, Default)]
pub(crate) struct Identities {
    /// Shared atoms and channels, by the address of their cell.
    atoms: HashMap<usize, Ref>,
    types: HashMap<u64, Ref>,
    type_ids: HashMap<Ref, u64>,
}

/// The next record type id.
static TYPE_IDS: AtomicU64 = AtomicU64::new(1);

impl Identities {
    /// The object standing for shared atom `cell` in `i`, if it is alive.
    fn atom(i: &Interp, cell: &Arc<SharedAtom>) -> Option<Ref> {
        let r = *i.identities.atoms.get(&(Arc::as_ptr(cell) as usize))?;
        match i.heap.get(r) {
            Ok(Obj::Conc(Conc::Atom(a)))
                if a.shared_cell().is_some_and(|c| Arc::ptr_eq(&c, cell)) =>
            {
                Some(r)
            }
            _ => None,
        }
    }

    /// The object standing for shared channel `c` in `i`, if it is alive.
    fn chan(i: &Interp, c: &Arc<SharedChan>) -> Option<Ref> {
        let r = *i.identities.atoms.get(&(Arc::as_ptr(c) as usize))?;
        match i.heap.get(r) {
            Ok(Obj::Conc(Conc::SharedChan(x))) if Arc::ptr_eq(&x.0, c) => Some(r),
            _ => None,
        }
    }

    /// The record type with process-wide id `id` in `i`, if it is alive.
    fn record_type(i: &Interp, id: u64) -> Option<Ref> {
        let r = *i.identities.types.get(&id)?;
        matches!(i.heap.get(r), Ok(Obj::RecordType(..))).then_some(r)
    }

    /// The process-wide id of record type `r`, given now if it has none.
    fn type_id(&mut self, r: Ref) -> u64 {
        if let Some(&id) = self.type_ids.get(&r) {
            return id;
        }
        let id = TYPE_IDS.fetch_add(1, Ordering::Relaxed);
        self.types.insert(id, r);
        self.type_ids.insert(r, id);
        id
    }
}

/// A value in a package: an immediate, or a node of the package.
#[derive(Clone, Copy, Debug, PartialEq)]
enum MVal {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Char(char),
    /// A symbol, by its index in the package's names.
    Sym(u32),
    Unspecified,
    Undefined,
    Node(u32),
}

/// A heap object in a package; references are node indices.
#[derive(Debug)]
enum Node {
    /// Not filled yet (only while copying).
    Pending,
    Pair(MVal, MVal),
    Str(String),
    Vector(Vec<MVal>),
    Box(MVal),
    /// The code entry of its `lambda`, and its environment.
    Closure(u32, Option<u32>),
    Prim(Prim),
    Env(Vec<MVal>, Option<u32>),
    Condition(MVal, MVal),
    Values(Vec<MVal>),
    /// Process-wide id, name and field names (as symbol indices).
    RecordType(u64, u32, Vec<u32>),
    Record(u32, Vec<MVal>),
    Table(Vec<(MVal, MVal)>),
    /// The end-of-channel object: the receiver's own.
    Eof,
    /// A shared atom: the one cell both sides hold.
    Atom(Arc<SharedAtom>),
    /// A shared channel, likewise.
    Chan(Arc<SharedChan>),
}

/// A location: file index and position.
#[derive(Clone, Copy, Debug)]
struct MLoc {
    file: u32,
    span: Span,
}

/// Compiled code in a package: an entry refers to earlier entries by index.
#[derive(Debug)]
enum Code {
    Const(MVal),
    Local(u32, u32),
    LocalDef(u32, u32, u32, MLoc),
    /// A global, by the index of its name.
    Global(u32, MLoc),
    If(u32, u32, u32),
    DefGlobal(u32, u32),
    SetLocal(u32, u32, u32),
    SetGlobal(u32, u32, MLoc),
    /// A `lambda` expression: the entry of its code (a `Proc`).
    Lambda(u32),
    Seq(Vec<u32>),
    Call(Vec<u32>, MLoc),
    And(Vec<u32>),
    Or(Vec<u32>),
    Prompt(u32, u32),
    Control(u32, u32, usize, bool, MLoc),
    Guard(u32, u32),
    /// A `lambda`'s code (not an expression).
    Proc {
        params: usize,
        rest: bool,
        size: usize,
        body: u32,
        loc: MLoc,
    },
}

/// A deep copy of some values, in a form that may move to another thread and be opened
/// there (any number of times) by another interpreter.
#[derive(Debug)]
pub(crate) struct Migrant {
    syms: Vec<Box<str>>,
    files: Vec<Box<str>>,
    nodes: Vec<Node>,
    code: Vec<Code>,
    /// Globals the code names whose values travel: (name, value).
    globals: Vec<(u32, MVal)>,
    roots: Vec<MVal>,
}

/// Copies `roots` (and everything they reach) out of `i` into a package.
///
/// Local atoms reached become shared atoms (the object in `i` too), so both sides hold one
/// atom.
///
/// # Errors
///
/// When the values reach something that cannot move to another thread: a message naming it.
pub(crate) fn export(i: &mut Interp, roots: &[Value]) -> Result<Migrant, String> {
    let mut x = Exporter {
        i,
        m: Migrant {
            syms: Vec::new(),
            files: Vec::new(),
            nodes: Vec::new(),
            code: Vec::new(),
            globals: Vec::new(),
            roots: Vec::new(),
        },
        nodes: HashMap::new(),
        todo: Vec::new(),
        syms: HashMap::new(),
        files: HashMap::new(),
        exprs: HashMap::new(),
        lambdas: HashMap::new(),
        globals: HashSet::new(),
    };
    for v in roots {
        let mv = x.val(*v);
        x.m.roots.push(mv);
    }
    while let Some((r, n)) = x.todo.pop() {
        let node = x.node(r)?;
        x.m.nodes[n as usize] = node;
    }
    Ok(x.m)
}

struct Exporter<'a> {
    i: &'a mut Interp,
    m: Migrant,
    nodes: HashMap<Ref, u32>,
    /// Objects given a node not yet filled.
    todo: Vec<(Ref, u32)>,
    syms: HashMap<Sym, u32>,
    files: HashMap<Rc<str>, u32>,
    /// Code already copied, by address (the source keeps every `Rc` alive meanwhile).
    exprs: HashMap<*const Expr, u32>,
    lambdas: HashMap<*const Lambda, u32>,
    /// Global slots already looked at.
    globals: HashSet<u32>,
}

fn index(n: usize) -> u32 {
    u32::try_from(n).expect("under 2^32 parts in one package")
}

impl Exporter<'_> {
    fn sym(&mut self, s: Sym) -> u32 {
        if let Some(&k) = self.syms.get(&s) {
            return k;
        }
        let k = index(self.m.syms.len());
        self.m.syms.push(self.i.syms.name(s).into());
        self.syms.insert(s, k);
        k
    }

    fn loc(&mut self, l: &Loc) -> MLoc {
        let file = match self.files.get(&l.file) {
            Some(&k) => k,
            None => {
                let k = index(self.m.files.len());
                self.m.files.push((*l.file).into());
                self.files.insert(l.file.clone(), k);
                k
            }
        };
        MLoc { file, span: l.span }
    }

    /// `v` in the package; an object not seen yet gets a node, filled later.
    fn val(&mut self, v: Value) -> MVal {
        match v {
            Value::Nil => MVal::Nil,
            Value::Bool(b) => MVal::Bool(b),
            Value::Int(n) => MVal::Int(n),
            Value::Float(x) => MVal::Float(x),
            Value::Char(c) => MVal::Char(c),
            Value::Sym(s) => MVal::Sym(self.sym(s)),
            Value::Unspecified => MVal::Unspecified,
            Value::Undefined => MVal::Undefined,
            Value::Ref(r) => MVal::Node(self.node_of(r)),
        }
    }

    fn node_of(&mut self, r: Ref) -> u32 {
        if let Some(&n) = self.nodes.get(&r) {
            return n;
        }
        let n = index(self.m.nodes.len());
        self.m.nodes.push(Node::Pending);
        self.nodes.insert(r, n);
        self.todo.push((r, n));
        n
    }

    fn vals(&mut self, vs: &[Value]) -> Vec<MVal> {
        vs.iter().map(|v| self.val(*v)).collect()
    }

    /// The node for object `r`.
    fn node(&mut self, r: Ref) -> Result<Node, String> {
        let Ok(obj) = self.i.heap.get(r) else {
            return Err("a collected object cannot move to another thread".into());
        };
        Ok(match obj {
            Obj::Pair(a, d) => {
                let (a, d) = (*a, *d);
                Node::Pair(self.val(a), self.val(d))
            }
            Obj::Str(s) => Node::Str(s.clone()),
            Obj::Vector(items) => {
                let items = items.clone();
                Node::Vector(self.vals(&items))
            }
            Obj::Values(items) => {
                let items = items.clone();
                Node::Values(self.vals(&items))
            }
            Obj::Box(v) => {
                let v = *v;
                Node::Box(self.val(v))
            }
            Obj::Condition(m, irritants) => {
                let (m, irritants) = (*m, *irritants);
                Node::Condition(self.val(m), self.val(irritants))
            }
            Obj::RecordType(name, fields) => {
                let (name, fields) = (*name, fields.clone());
                let id = self.i.identities.type_id(r);
                let fields = fields.into_iter().map(|f| self.sym(f)).collect();
                Node::RecordType(id, self.sym(name), fields)
            }
            Obj::Record(t, fields) => {
                let (t, fields) = (*t, fields.clone());
                Node::Record(self.node_of(t), self.vals(&fields))
            }
            Obj::Table(t) => {
                let entries: Vec<(Value, Value)> = t.buckets.values().flatten().copied().collect();
                Node::Table(entries.into_iter().map(|(k, v)| (self.val(k), self.val(v))).collect())
            }
            Obj::Prim(p) => Node::Prim(*p),
            Obj::Env(e) => {
                let (vals, parent) = (e.values().to_vec(), e.parent());
                Node::Env(self.vals(&vals), parent.map(|p| self.node_of(p)))
            }
            Obj::Closure(c) => {
                let (lambda, env) = (c.lambda.clone(), c.env);
                let code = self.lambda(&lambda)?;
                Node::Closure(code, env.map(|e| self.node_of(e)))
            }
            Obj::Cont(_) => return Err("a continuation cannot move to another thread".into()),
            Obj::Conc(Conc::Eof) => Node::Eof,
            Obj::Conc(Conc::Chan(_)) => {
                let c = self.i.share_chan(r)?;
                self.i.identities.atoms.insert(Arc::as_ptr(&c) as usize, r);
                Node::Chan(c)
            }
            Obj::Conc(Conc::SharedChan(c)) => Node::Chan(c.0.clone()),
            Obj::Conc(Conc::Task(id)) => {
                return Err(format!("green task {id} cannot move to another thread"))
            }
            Obj::Conc(Conc::Thread(_)) => {
                return Err("a thread handle cannot move to another thread".into())
            }
            Obj::Conc(Conc::Gen(_) | Conc::Yield(_)) => {
                return Err("a generator cannot move to another thread (its producer's frames \
                            belong to this thread's machine); send its items instead"
                    .into())
            }
            Obj::Conc(Conc::Atom(cell)) => Node::Atom(self.share(r, cell.shared_cell())?),
        })
    }

    /// The shared cell of atom `r`: its own, or one made now from its value (and the atom
    /// in this interpreter uses it from now on).
    fn share(
        &mut self,
        r: Ref,
        shared: Option<Arc<SharedAtom>>,
    ) -> Result<Arc<SharedAtom>, String> {
        if let Some(s) = shared {
            return Ok(s);
        }
        let Ok(Obj::Conc(Conc::Atom(cell))) = self.i.heap.get(r) else { unreachable!("an atom") };
        let v = cell.value();
        // Shared first, so a value that holds the atom itself finds it shared.
        let s = Arc::new(SharedAtom::new(Migrant::of_nil()));
        let _ = self.i.heap.update(r, |o| {
            if let Obj::Conc(Conc::Atom(cell)) = o {
                *cell = AtomCell::shared(s.clone(), v, Some(0));
            }
        });
        self.i.identities.atoms.insert(Arc::as_ptr(&s) as usize, r);
        // Its value is a package of its own: it is opened alone, on every read.
        let pkg = stacker::maybe_grow(64 << 10, 1 << 20, || export(self.i, &[v]))?;
        s.set_first(pkg);
        Ok(s)
    }

    fn global(&mut self, g: u32) -> u32 {
        let name = self.sym(self.i.global_names[g as usize]);
        if self.globals.insert(g) {
            let v = self.i.globals[g as usize];
            let from_prelude = self.i.prelude_globals.get(g as usize) == Some(&v);
            if v != Value::Undefined && !from_prelude {
                let mv = self.val(v);
                self.m.globals.push((name, mv));
            }
        }
        name
    }

    fn lambda(&mut self, l: &Rc<Lambda>) -> Result<u32, String> {
        if let Some(&k) = self.lambdas.get(&Rc::as_ptr(l)) {
            return Ok(k);
        }
        let body = self.expr(&l.body)?;
        let loc = self.loc(&l.loc);
        let k = index(self.m.code.len());
        self.m.code.push(Code::Proc { params: l.params, rest: l.rest, size: l.size, body, loc });
        self.lambdas.insert(Rc::as_ptr(l), k);
        Ok(k)
    }

    fn expr(&mut self, e: &Rc<Expr>) -> Result<u32, String> {
        if let Some(&k) = self.exprs.get(&Rc::as_ptr(e)) {
            return Ok(k);
        }
        // Code nests as deep as the compiler allows: grow the stack onto the heap when low.
        let c = stacker::maybe_grow(64 << 10, 1 << 20, || self.expr_inner(e))?;
        let k = index(self.m.code.len());
        self.m.code.push(c);
        self.exprs.insert(Rc::as_ptr(e), k);
        Ok(k)
    }

    fn exprs(&mut self, es: &[Rc<Expr>]) -> Result<Vec<u32>, String> {
        es.iter().map(|e| self.expr(e)).collect()
    }

    fn expr_inner(&mut self, e: &Expr) -> Result<Code, String> {
        Ok(match e {
            Expr::Const(v) => Code::Const(self.val(*v)),
            Expr::Local(d, i) => Code::Local(*d, *i),
            Expr::LocalDef(d, i, s, l) => Code::LocalDef(*d, *i, self.sym(*s), self.loc(l)),
            Expr::Global(g, l) => Code::Global(self.global(*g), self.loc(l)),
            Expr::If(a, b, c) => Code::If(self.expr(a)?, self.expr(b)?, self.expr(c)?),
            Expr::DefGlobal(g, v) => Code::DefGlobal(self.global(*g), self.expr(v)?),
            Expr::SetLocal(d, i, v) => Code::SetLocal(*d, *i, self.expr(v)?),
            Expr::SetGlobal(g, v, l) => {
                Code::SetGlobal(self.global(*g), self.expr(v)?, self.loc(l))
            }
            Expr::Lambda(l) => Code::Lambda(self.lambda(l)?),
            Expr::Seq(es) => Code::Seq(self.exprs(es)?),
            Expr::Call(c) => Code::Call(self.exprs(&c.parts)?, self.loc(&c.loc)),
            Expr::And(es) => Code::And(self.exprs(es)?),
            Expr::Or(es) => Code::Or(self.exprs(es)?),
            Expr::Prompt(t, b) => Code::Prompt(self.expr(t)?, self.expr(b)?),
            Expr::Control(t, b, size, shift, l) => {
                Code::Control(self.expr(t)?, self.expr(b)?, *size, *shift, self.loc(l))
            }
            Expr::Guard(b, h) => Code::Guard(self.expr(b)?, self.lambda(h)?),
        })
    }
}

/// Code rebuilt on the receiving side.
enum Built {
    Expr(Rc<Expr>),
    Lambda(Rc<Lambda>),
}

impl Migrant {
    /// A package of `()`.
    pub(crate) fn of_nil() -> Migrant {
        Migrant {
            syms: Vec::new(),
            files: Vec::new(),
            nodes: Vec::new(),
            code: Vec::new(),
            globals: Vec::new(),
            roots: vec![MVal::Nil],
        }
    }

    /// Root `k` when it is an immediate (no heap object), as a value of `i`.
    pub(crate) fn immediate(&self, i: &mut Interp, k: usize) -> Option<Value> {
        match self.roots.get(k)? {
            MVal::Node(_) => None,
            MVal::Sym(s) => Some(Value::Sym(i.syms.intern(&self.syms[*s as usize]))),
            v => Some(plain(*v)),
        }
    }
}

/// An immediate other than a symbol.
fn plain(v: MVal) -> Value {
    match v {
        MVal::Nil => Value::Nil,
        MVal::Bool(b) => Value::Bool(b),
        MVal::Int(n) => Value::Int(n),
        MVal::Float(x) => Value::Float(x),
        MVal::Char(c) => Value::Char(c),
        MVal::Unspecified => Value::Unspecified,
        MVal::Undefined | MVal::Sym(_) | MVal::Node(_) => Value::Undefined,
    }
}

/// Opens package `m` in `i`: a copy of its objects in `i`'s heap, its globals defined (all of
/// them when `replace_globals`, else those `i` has not defined), and its roots' values
/// returned.
///
/// # Errors
///
/// When `i`'s heap is full: the heap's message.
pub(crate) fn import(
    i: &mut Interp,
    m: &Migrant,
    replace_globals: bool,
) -> Result<Vec<Value>, String> {
    let syms: Vec<Sym> = m.syms.iter().map(|s| i.syms.intern(s)).collect();
    let files: Vec<Rc<str>> = m.files.iter().map(|f| Rc::from(&**f)).collect();
    // Every node gets its object first (a placeholder), so references, cycles included,
    // have something to name; then the objects are filled.
    // Shared atoms and record types this interpreter has already are not made again.
    let mut refs: Vec<Value> = Vec::with_capacity(m.nodes.len());
    let mut known: Vec<bool> = Vec::with_capacity(m.nodes.len());
    for n in &m.nodes {
        let have = match n {
            Node::Eof => Some(i.sched.eof),
            Node::Atom(cell) => Identities::atom(i, cell).map(Value::Ref),
            Node::Chan(c) => Identities::chan(i, c).map(Value::Ref),
            Node::RecordType(id, ..) => Identities::record_type(i, *id).map(Value::Ref),
            _ => None,
        };
        known.push(have.is_some());
        let v = match have {
            Some(v) => v,
            None => Value::Ref(i.heap.alloc(Obj::Box(Value::Nil)).map_err(|e| e.to_string())?),
        };
        match (n, v) {
            (Node::Atom(cell), Value::Ref(r)) => {
                i.identities.atoms.insert(Arc::as_ptr(cell) as usize, r);
            }
            (Node::Chan(c), Value::Ref(r)) => {
                i.identities.atoms.insert(Arc::as_ptr(c) as usize, r);
            }
            (Node::RecordType(id, ..), Value::Ref(r)) => {
                i.identities.types.insert(*id, r);
                i.identities.type_ids.insert(r, *id);
            }
            _ => {}
        }
        refs.push(v);
    }
    let val = |v: MVal| match v {
        MVal::Node(n) => refs[n as usize],
        MVal::Sym(s) => Value::Sym(syms[s as usize]),
        v => plain(v),
    };
    let loc = |l: &MLoc| Loc { file: files[l.file as usize].clone(), span: l.span };
    let mut built: Vec<Built> = Vec::with_capacity(m.code.len());
    for c in &m.code {
        let e = |k: &u32| match &built[*k as usize] {
            Built::Expr(e) => e.clone(),
            Built::Lambda(_) => unreachable!("an expression entry"),
        };
        let lam = |k: &u32| match &built[*k as usize] {
            Built::Lambda(l) => l.clone(),
            Built::Expr(_) => unreachable!("a lambda entry"),
        };
        let es = |ks: &[u32]| -> Rc<[Rc<Expr>]> { ks.iter().map(e).collect() };
        let global = |i: &mut Interp, s: &u32| i.global_slot(syms[*s as usize]);
        let x = match c {
            Code::Proc { params, rest, size, body, loc: l } => {
                built.push(Built::Lambda(Rc::new(Lambda::new(
                    *params,
                    *rest,
                    *size,
                    e(body),
                    loc(l),
                ))));
                continue;
            }
            Code::Const(v) => {
                let v = val(*v);
                if let Value::Ref(_) = v {
                    // Constants of code live as long as the interpreter, as compiled ones do.
                    i.constants.push(v);
                }
                Expr::Const(v)
            }
            Code::Local(d, k) => Expr::Local(*d, *k),
            Code::LocalDef(d, k, s, l) => Expr::LocalDef(*d, *k, syms[*s as usize], loc(l)),
            Code::Global(s, l) => Expr::Global(global(i, s), loc(l)),
            Code::If(a, b, c) => Expr::If(e(a), e(b), e(c)),
            Code::DefGlobal(s, v) => Expr::DefGlobal(global(i, s), e(v)),
            Code::SetLocal(d, k, v) => Expr::SetLocal(*d, *k, e(v)),
            Code::SetGlobal(s, v, l) => Expr::SetGlobal(global(i, s), e(v), loc(l)),
            Code::Lambda(l) => Expr::Lambda(lam(l)),
            Code::Seq(ks) => Expr::Seq(es(ks)),
            Code::Call(ks, l) => i.call_expr(es(ks), loc(l)),
            Code::And(ks) => Expr::And(es(ks)),
            Code::Or(ks) => Expr::Or(es(ks)),
            Code::Prompt(a, b) => Expr::Prompt(e(a), e(b)),
            Code::Control(a, b, size, shift, l) => Expr::Control(e(a), e(b), *size, *shift, loc(l)),
            Code::Guard(a, h) => Expr::Guard(e(a), lam(h)),
        };
        built.push(Built::Expr(Rc::new(x)));
    }
    let node_ref = |n: u32| match refs[n as usize] {
        Value::Ref(r) => r,
        _ => unreachable!("a node other than eof is an object"),
    };
    let mut tables = Vec::new();
    for (k, n) in m.nodes.iter().enumerate() {
        if known[k] {
            continue;
        }
        let obj = match n {
            Node::Pending => unreachable!("every node is filled"),
            Node::Eof => continue,
            Node::Table(entries) => {
                tables.push((k, entries));
                Obj::Table(Table::default())
            }
            Node::Pair(a, d) => Obj::Pair(val(*a), val(*d)),
            Node::Str(s) => Obj::Str(s.clone()),
            Node::Vector(items) => Obj::Vector(items.iter().map(|v| val(*v)).collect()),
            Node::Values(items) => Obj::Values(items.iter().map(|v| val(*v)).collect()),
            Node::Box(v) => Obj::Box(val(*v)),
            Node::Condition(a, b) => Obj::Condition(val(*a), val(*b)),
            Node::RecordType(_, name, fields) => Obj::RecordType(
                syms[*name as usize],
                fields.iter().map(|f| syms[*f as usize]).collect(),
            ),
            Node::Record(t, fields) => {
                Obj::Record(node_ref(*t), fields.iter().map(|v| val(*v)).collect())
            }
            Node::Prim(p) => Obj::Prim(*p),
            Node::Env(vals, parent) => {
                let vals: Vec<Value> = vals.iter().map(|v| val(*v)).collect();
                Obj::Env(Env::new(&vals, parent.map(node_ref)))
            }
            Node::Closure(code, env) => {
                let Built::Lambda(l) = &built[*code as usize] else {
                    unreachable!("a closure's code is a lambda")
                };
                Obj::Closure(Closure { lambda: l.clone(), env: env.map(node_ref) })
            }
            Node::Atom(s) => Obj::Conc(Conc::Atom(AtomCell::shared(s.clone(), Value::Nil, None))),
            Node::Chan(c) => Obj::Conc(Conc::SharedChan(SharedChanCell(c.clone()))),
        };
        let _ = i.heap.update(node_ref(k as u32), |o| *o = obj);
    }
    // Tables last: their keys hash by content, which must be in place.
    for (k, entries) in tables {
        let t = refs[k];
        for (key, v) in entries {
            super::builtins::table_put(i, t, val(*key), Some(val(*v)))?;
        }
    }
    for (s, v) in &m.globals {
        let g = i.global_slot(syms[*s as usize]) as usize;
        if replace_globals || i.globals[g] == Value::Undefined {
            i.globals[g] = val(*v);
        }
    }
    Ok(m.roots.iter().map(|v| val(*v)).collect())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn a_package_is_send() {
        // No `Rc` and no heap key in it: the compiler checks that it may move.
        assert_send::<Migrant>();
    }

    fn set_global(i: &mut Interp, name: &str, v: Value) {
        let s = i.syms.intern(name);
        let g = i.global_slot(s);
        i.globals[g as usize] = v;
    }

    /// Evaluates `src` in `from`, moves its value to `to`, and gives it there.
    fn carry(from: &mut Interp, src: &str, to: &mut Interp) -> Value {
        from.eval_str(&format!("(define %it {src})"), "t").unwrap();
        let v = from.global("%it").unwrap();
        let pkg = export(from, &[v]).unwrap();
        import(to, &pkg, true).unwrap()[0]
    }

    #[test]
    fn sharing_and_cycles_are_kept() {
        let (mut a, mut b) = (Interp::new(), Interp::new());
        let v = carry(
            &mut a,
            "(let* ((l (list 1 2 3)) (x (list 'x)) (v (vector l x x 'sym \"s\")))
               (set-cdr! (cddr l) l) (vector-set! v 0 v) (cons v l))",
            &mut b,
        );
        b.eval_str("(define it #f)", "t").unwrap();
        set_global(&mut b, "it", v);
        let got = b
            .eval_str(
                "(let ((v (car it)) (l (cdr it)))
                   (list (eq? (vector-ref v 0) v) (eq? (vector-ref v 1) (vector-ref v 2))
                         (eq? (cdr (cdr (cdr l))) l) (vector-ref v 3) (vector-ref v 4)))",
                "t",
            )
            .unwrap();
        assert_eq!(got, "(#t #t #t sym \"s\")");
    }

    #[test]
    fn closures_carry_their_environment_and_globals_and_share_no_rc() {
        let (mut a, mut b) = (Interp::new(), Interp::new());
        a.eval_str("(define base 100) (define (add-base n) (+ n base))", "t").unwrap();
        let f = carry(&mut a, "(let ((k 5)) (lambda (n) (add-base (* k n))))", &mut b);
        let Value::Ref(r) = f else { panic!("a closure") };
        let Ok(Obj::Closure(c)) = b.heap.get(r) else { panic!("a closure") };
        // The copy's code is its own: the package holds no `Rc`, so nothing is shared.
        assert_eq!(Rc::strong_count(&c.lambda), 1);
        let Value::Ref(ra) = a.global("%it").unwrap() else { panic!("a closure") };
        let Ok(Obj::Closure(ca)) = a.heap.get(ra) else { panic!("a closure") };
        assert!(!Rc::ptr_eq(&ca.lambda, &c.lambda));
        b.constants.push(f);
        set_global(&mut b, "f", f);
        assert_eq!(b.eval_str("(f 2)", "t").unwrap(), "110");
        // The prelude's globals were not copied: `b` has its own.
        assert_eq!(b.eval_str("(map f '(1))", "t").unwrap(), "(105)");
    }

    #[test]
    fn what_cannot_cross_is_named() {
        let mut a = Interp::new();
        a.eval_str("(define k (call/cc (lambda (k) k))) (define t (spawn (lambda () 1)))", "t")
            .unwrap();
        for (name, want) in [("k", "a continuation"), ("t", "green task 1")] {
            let v = a.global(name).unwrap();
            let e = export(&mut a, &[v]).unwrap_err();
            assert!(e.starts_with(want), "{e}");
        }
    }

    #[test]
    fn a_million_long_list_crosses_on_a_small_stack() {
        let n = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| {
                let (mut a, mut b) = (Interp::new(), Interp::new());
                let v = carry(&mut a, "(iota 1000000)", &mut b);
                set_global(&mut b, "l", v);
                b.eval_str("(length l)", "t").unwrap()
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(n, "1000000");
    }
}
