//! OS threads from Lisp, and atoms that two threads share.
//!
//! `(thread-spawn thunk)` starts an OS thread (an [`omni::thread`](crate::thread), 8 MiB of
//! stack like the main thread's) with an interpreter of its own: its own heap, globals,
//! green-task scheduler and prelude. The thunk, with everything it reaches (its environment,
//! the globals its code names), is transmigrated into the new interpreter (see `migrate`),
//! and called there as a top-level program: the tasks it spawns run on that thread's
//! scheduler. `(thread-join h)` waits for the thread and transmigrates the thunk's value
//! back; only the joining task waits: it parks like a task receiving from a channel, the
//! interpreter's other green tasks run meanwhile (one the thread waits for, too), and the
//! thread's end wakes it (see [`join_op`]). An error in the thread,
//! an uncaught `raise`, its `exit`, or a panic of the Rust code under it come back as an
//! error of `thread-join` that says the thread failed and why, which `guard` can catch.
//! Joining twice is an error.
//!
//! Channels that cross become shared between the threads (see `shared_chan`), so a thread's
//! tasks and another's can talk while both run; `thread-join` itself blocks the joining
//! interpreter, so a thread that waits for a green task of its joiner must be joined after
//! that task is done.
//!
//! The child starts with the parent's limits (see `Interp::fuel_for_thread` for fuel) and
//! clock (paused or real). What it prints goes
//! to standard output when the parent's does; otherwise (tests) it is collected and added to
//! the parent's output when the thread is joined, so output stays deterministic.
//!
//! # Atoms
//!
//! An atom is local while one thread knows it: a plain cell, updated in one step so no green
//! task switch splits an update. When it crosses to another thread (reached from a thunk, a
//! result, or another shared atom's value), it becomes *shared*, in place, on both sides: the
//! value lives in one [`SharedAtom`] (a mutex over a transmigration package and a version
//! number that every write increments), and each interpreter keeps the value it last read or
//! wrote, with that version. So:
//!
//! - `atom-deref` gives the kept value when the version is still current (so `eq?` holds
//!   between two reads with no write between them), else opens the package into the heap;
//! - `atom-reset!` packs the new value, then stores it under the lock;
//! - `atom-cas! a old new` succeeds, under the lock, when `old` is the current value: `eqv?`
//!   to it for an immediate (a number, a symbol, ...), and for an object, when it is the
//!   value this thread holds for the current version (a value another thread wrote is a new
//!   object here, which nobody can hold yet). `atom-swap!` is a `cas` loop over these, so an
//!   update is never lost, whichever tasks on whichever threads make it.

use super::eval::{eqv, error_at, limit_err, Interp, LispError, Loc, State};
use super::heap::{Obj, Ref, Value};
use super::migrate::{export, import, Migrant};
use super::shared_chan::{Family, Home};
use super::tasks::{Conc, Wait};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// An atom's cell (opaque).
pub struct AtomCell {
    /// The value: the atom's own (local), or the one this thread last read or wrote (shared).
    value: Value,
    /// When shared: the cell, and the version `value` is (`None`: not read here yet).
    shared: Option<(Arc<SharedAtom>, Option<u64>)>,
}

impl fmt::Debug for AtomCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomCell")
            .field("value", &self.value)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl AtomCell {
    /// A local atom holding `value`.
    fn local(value: Value) -> AtomCell {
        AtomCell { value, shared: None }
    }

    /// A shared atom seen through `cell`, where `value` is version `seen` of it.
    pub(crate) fn shared(cell: Arc<SharedAtom>, value: Value, seen: Option<u64>) -> AtomCell {
        AtomCell { value, shared: Some((cell, seen)) }
    }

    /// Its shared cell, when it has one.
    pub(crate) fn shared_cell(&self) -> Option<Arc<SharedAtom>> {
        self.shared.as_ref().map(|(s, _)| s.clone())
    }

    /// The value kept here (see the field).
    pub(crate) fn value(&self) -> Value {
        self.value
    }

    pub(crate) fn trace(&self, f: &mut dyn FnMut(Value)) {
        f(self.value);
    }

    pub(crate) fn describe(&self) -> &'static str {
        if self.shared.is_some() {
            "#<atom shared>"
        } else {
            "#<atom>"
        }
    }
}

/// The cell of an atom that several threads hold: its value, packed, and how many writes
/// it has had.
#[derive(Debug)]
pub(crate) struct SharedAtom {
    state: Mutex<(u64, Migrant)>,
}

impl SharedAtom {
    pub(crate) fn new(value: Migrant) -> SharedAtom {
        SharedAtom { state: Mutex::new((0, value)) }
    }

    /// Its first value, once packed (the cell exists before, so that a value holding the
    /// atom finds it shared).
    pub(crate) fn set_first(&self, value: Migrant) {
        self.lock().1 = value;
    }

    fn lock(&self) -> MutexGuard<'_, (u64, Migrant)> {
        // A panic elsewhere while holding the lock left a whole package (they are replaced,
        // never edited): still a consistent value.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a thread hands back: its value, packed, or why it failed (and whether it was a
/// limit); and what it printed.
type Outcome = (Result<Migrant, (String, bool)>, String);

/// A thread started by `thread-spawn` (opaque).
pub struct ThreadHandle {
    id: u64,
    /// `None` once joined.
    handle: Option<crate::thread::JoinHandle<Outcome>>,
}

impl fmt::Debug for ThreadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadHandle").field("id", &self.id).finish()
    }
}

impl ThreadHandle {
    pub(crate) fn describe(&self) -> String {
        format!("#<thread {}>", self.id)
    }
}

/// The stack of a thread that `thread-spawn` starts.
const THREAD_STACK: usize = 8 << 20;

/// What starting a thread costs under a fuel limit, in steps (its interpreter loads the
/// prelude), so a program under limits cannot start threads without bound.
const THREAD_FUEL: u64 = 1_000;

fn atom_ref(i: &Interp, v: Value) -> Result<Ref, String> {
    match v {
        Value::Ref(r) if matches!(i.heap.get(r), Ok(Obj::Conc(Conc::Atom(_)))) => Ok(r),
        _ => Err(format!("expects an atom, got {}", i.write_string(v))),
    }
}

fn cell(i: &Interp, r: Ref) -> &AtomCell {
    match i.heap.get(r) {
        Ok(Obj::Conc(Conc::Atom(c))) => c,
        _ => unreachable!("checked to be an atom"),
    }
}

fn set_cell(i: &mut Interp, r: Ref, value: Value, seen: Option<u64>) {
    let _ = i.heap.update(r, |o| {
        if let Obj::Conc(Conc::Atom(c)) = o {
            c.value = value;
            if let Some((_, s)) = &mut c.shared {
                *s = seen;
            }
        }
    });
}

fn deref(i: &mut Interp, a: &[Value]) -> Result<Value, String> {
    let r = atom_ref(i, a[0])?;
    let c = cell(i, r);
    let Some((shared, seen)) = c.shared.clone() else { return Ok(c.value) };
    let state = shared.lock();
    if seen == Some(state.0) {
        return Ok(c.value);
    }
    let v = import(i, &state.1, false)?[0];
    let version = state.0;
    drop(state);
    set_cell(i, r, v, Some(version));
    Ok(v)
}

fn reset(i: &mut Interp, a: &[Value]) -> Result<Value, String> {
    let (r, v) = (atom_ref(i, a[0])?, a[1]);
    let Some(shared) = cell(i, r).shared_cell() else {
        set_cell(i, r, v, None);
        return Ok(v);
    };
    let pkg = export(i, &[v]).map_err(|m| format!("the value cannot be shared: {m}"))?;
    let mut state = shared.lock();
    *state = (state.0 + 1, pkg);
    let version = state.0;
    drop(state);
    set_cell(i, r, v, Some(version));
    Ok(v)
}

fn cas(i: &mut Interp, a: &[Value]) -> Result<Value, String> {
    let (r, old, new) = (atom_ref(i, a[0])?, a[1], a[2]);
    let c = cell(i, r);
    let (kept, shared) = (c.value, c.shared.clone());
    let Some((shared, seen)) = shared else {
        if !eqv(&i.heap, kept, old) {
            return Ok(Value::Bool(false));
        }
        set_cell(i, r, new, None);
        return Ok(Value::Bool(true));
    };
    // Packed before taking the lock, so the lock is never held over the program's data.
    let pkg = export(i, &[new]).map_err(|m| format!("the value cannot be shared: {m}"))?;
    let mut state = shared.lock();
    let current = if seen == Some(state.0) {
        eqv(&i.heap, kept, old)
    } else {
        state.1.immediate(i, 0).is_some_and(|v| eqv(&i.heap, v, old))
    };
    if !current {
        return Ok(Value::Bool(false));
    }
    *state = (state.0 + 1, pkg);
    let version = state.0;
    drop(state);
    set_cell(i, r, new, Some(version));
    Ok(Value::Bool(true))
}

fn thread_spawn(i: &mut Interp, a: &[Value]) -> Result<Value, String> {
    static IDS: AtomicU64 = AtomicU64::new(1);
    let thunk = a[0];
    let is_proc = matches!(thunk, Value::Ref(r)
        if matches!(i.heap.get(r), Ok(Obj::Closure(_) | Obj::Prim(_) | Obj::Cont(_))));
    if !is_proc {
        return Err(format!("expects a procedure of no arguments, got {}", i.write_string(thunk)));
    }
    let pkg = export(i, &[thunk])?;
    let mut limits = i.limits;
    limits.fuel = i.fuel_for_thread(THREAD_FUEL)?;
    let (paused, to_stdout) = (i.clock_paused(), i.to_stdout);
    let id = IDS.fetch_add(1, Ordering::Relaxed);
    let family = i.sched.home.family().clone();
    family.thread_starts();
    let f = family.clone();
    let handle = crate::thread::Builder::new()
        .name(format!("omnilisp-{id}"))
        .stack_size(THREAD_STACK)
        .spawn(move || async move {
            let ends = Ends(f, id);
            run_thread(pkg, limits, paused, to_stdout, &ends.0)
        })
        .map_err(|e| {
            family.thread_ends(id);
            format!("cannot start a thread: {e}")
        })?;
    let h = ThreadHandle { id, handle: Some(handle) };
    i.heap.alloc(Obj::Conc(Conc::Thread(h))).map(Value::Ref).map_err(|e| e.to_string())
}

/// Tells the family that thread `.1` ended, however it ends (a panic too), once its
/// interpreter is gone.
struct Ends(Arc<Family>, u64);

impl Drop for Ends {
    fn drop(&mut self) {
        self.0.thread_ends(self.1);
    }
}

/// A thread's body: a fresh interpreter opens the thunk, calls it, and packs its value.
fn run_thread(
    pkg: Migrant,
    limits: super::Limits,
    paused: bool,
    to_stdout: bool,
    family: &Arc<Family>,
) -> Outcome {
    let mut child = Interp::with_limits(limits);
    child.sched.home = Home::new(family.clone());
    child.pause_clock(paused);
    child.print_to_stdout(to_stdout);
    let thunk = import(&mut child, &pkg, true);
    drop(pkg);
    let r = match thunk {
        Err(m) => Err((m.clone(), m.starts_with("heap limit"))),
        Ok(roots) => match child.call_thunk(roots[0]) {
            Ok(v) => export(&mut child, &[v])
                .map_err(|m| (format!("its value cannot move back to its parent: {m}"), false)),
            Err(e) => Err(failure(&e)),
        },
    };
    (r, child.take_output())
}

/// Why a thread's program failed, and whether it was a limit.
fn failure(e: &LispError) -> (String, bool) {
    let why = match (e.exit_status(), &e.at) {
        (Some(code), _) => format!("it called (exit {code})"),
        (None, Some(at)) => format!("{at}: {}", e.message),
        (None, None) => e.message.clone(),
    };
    (why, e.is_limit())
}

/// `(thread-join h)`: waits for thread `h` and gives its value. A limit the thread reached
/// is a limit here too, which no `guard` catches.
/// `(thread-join h)`. A thread that is still running parks the calling task (`Wait::Thread`),
/// so the interpreter's other green tasks run meanwhile, a task that the thread waits for
/// included; the thread's end is delivered to this interpreter's home (see
/// `shared_chan::Family::watch`), and the task wakes with [`join`]'s result, which no longer
/// blocks. A thread that has ended is joined at once.
pub(crate) fn join_op(i: &mut Interp, h: Value, loc: &Loc) -> Result<State, Box<LispError>> {
    let running = match h {
        Value::Ref(r) => match i.heap.get(r) {
            Ok(Obj::Conc(Conc::Thread(t))) => {
                t.handle.as_ref().map(|handle| (t.id, handle.is_finished()))
            }
            _ => None,
        },
        _ => None,
    };
    if let Some((id, false)) = running {
        let home = i.sched.home.clone();
        if home.family().watch(id, &home, i.sched.current) {
            return Ok(i.park_on(Wait::Thread(loc.clone(), h)));
        }
    }
    join(i, h, loc).map(State::Return)
}

/// Joins thread `h`, blocking until it ends, and brings its value (or its failure) back.
pub(crate) fn join(i: &mut Interp, h: Value, loc: &Loc) -> Result<Value, Box<LispError>> {
    let err = |m: String| error_at(format!("thread-join: {m}"), Some(loc));
    let r = match h {
        Value::Ref(r) if matches!(i.heap.get(r), Ok(Obj::Conc(Conc::Thread(_)))) => r,
        _ => return Err(err(format!("expects a thread, got {}", i.write_string(h)))),
    };
    let mut taken = None;
    let _ = i.heap.update(r, |o| {
        if let Obj::Conc(Conc::Thread(t)) = o {
            taken = t.handle.take().map(|h| (t.id, h));
        }
    });
    let Some((id, handle)) = taken else {
        return Err(err("the thread was joined already".into()));
    };
    // Blocked here, this interpreter is not running (see `shared_chan::Family`).
    i.sched.home.family().joins(id);
    match handle.join() {
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(err(format!("the thread failed: it panicked: {why}")))
        }
        Ok((result, out)) => {
            i.print(&out);
            match result {
                Ok(pkg) => match import(i, &pkg, false) {
                    Ok(roots) => Ok(roots[0]),
                    Err(m) => Err(limit_err(format!("thread-join: {m}"), Some(loc))),
                },
                Err((why, false)) => Err(err(format!("the thread failed: {why}"))),
                Err((why, true)) => {
                    Err(limit_err(format!("thread-join: the thread failed: {why}"), Some(loc)))
                }
            }
        }
    }
}

/// The builtins of atoms and threads.
pub(crate) fn install(i: &mut Interp) {
    i.def_prim("make-atom", (1, Some(1)), |i, a| {
        let c = AtomCell::local(a[0]);
        i.heap.alloc(Obj::Conc(Conc::Atom(c))).map(Value::Ref).map_err(|e| e.to_string())
    });
    i.def_prim("atom?", (1, Some(1)), |i, a| Ok(Value::Bool(atom_ref(i, a[0]).is_ok())));
    i.def_prim("atom-deref", (1, Some(1)), deref);
    i.def_prim("atom-reset!", (2, Some(2)), reset);
    i.def_prim("atom-cas!", (3, Some(3)), cas);
    i.def_prim("thread-spawn", (1, Some(1)), thread_spawn);
    i.def_control("thread-join", (1, Some(1)), super::eval::Ctl::ThreadJoin);
    i.def_prim("thread?", (1, Some(1)), |i, a| {
        Ok(Value::Bool(matches!(a[0], Value::Ref(r)
            if matches!(i.heap.get(r), Ok(Obj::Conc(Conc::Thread(_)))))))
    });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// An interpreter with the global `h` naming a thread that runs `body`.
    fn with_thread(body: fn() -> Outcome) -> Interp {
        let mut i = Interp::new();
        let family = i.sched.home.family().clone();
        family.thread_starts();
        let handle = crate::thread::spawn(move || async move {
            let _ends = Ends(family, 0);
            body()
        });
        let h = ThreadHandle { id: 0, handle: Some(handle) };
        let v = Value::Ref(i.heap.alloc(Obj::Conc(Conc::Thread(h))).unwrap());
        i.eval_str("(define h #f)", "t").unwrap();
        let s = i.syms.intern("h");
        let g = i.global_slot(s);
        i.globals[g as usize] = v;
        i
    }

    #[test]
    fn a_panic_in_a_thread_is_an_error_of_thread_join() {
        let mut i = with_thread(|| panic!("boom"));
        let got = i.eval_str("(guard (e (#t (error-object-message e))) (thread-join h))", "t");
        assert_eq!(got.unwrap(), "\"thread-join: the thread failed: it panicked: boom\"");
    }

    #[test]
    fn a_limit_in_a_thread_is_a_limit_of_its_joiner() {
        let mut i = with_thread(|| (Err(("out of fuel after 5 steps".into(), true)), "hi".into()));
        let e = i.eval_str("(guard (e (#t 'caught)) (thread-join h))", "t").unwrap_err();
        assert!(e.is_limit(), "{e}");
        assert_eq!(e.message, "thread-join: the thread failed: out of fuel after 5 steps");
        // What the thread printed is not lost.
        assert_eq!(i.take_output(), "hi");
    }
}
