//! `omni::Atom` through the public API: contention from threads and green tasks, validators,
//! watches, identity, panics, and a model test against a plain value.

use omni::atom::{CasError, SetValidatorError, Snapshot, ValidationError};
use omni::Atom;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};

/// A watch that appends `(old, new)` to a shared log; returns the log.
fn logged<T: Clone + Send + Sync + 'static>(
    atom: &Atom<T>,
    key: &'static str,
) -> Arc<Mutex<Vec<(T, T)>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    atom.add_watch(key, move |old: &T, new: &T| {
        sink.lock().unwrap().push((old.clone(), new.clone()))
    });
    log
}

fn taken<T>(log: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[test]
fn auto_traits() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Atom<u64>>();
    send_sync::<Atom<Vec<String>>>();
    send_sync::<Snapshot<String>>();
    send_sync::<ValidationError<String>>();
    send_sync::<CasError<String>>();
    fn error<E: std::error::Error + Send + Sync + 'static>() {}
    error::<ValidationError<String>>();
    error::<CasError<String>>();
    error::<SetValidatorError<fn(&u8) -> bool>>();
}

/// The acceptance test: 4 OS threads and 1,000 green tasks increment one atom at once. Every
/// increment lands (the count), and the watch hears each change exactly once with its own old
/// and new value (the chain 0 -> 1 -> ... -> total, each link once).
#[test]
fn contention_from_threads_and_green_tasks_loses_no_update() {
    contention(omni::Runtime::new().unwrap());
}

/// The same on the multi-thread runtime, where the green tasks run on two workers in parallel.
#[test]
fn contention_from_threads_and_green_tasks_on_workers_loses_no_update() {
    contention(omni::Builder::new_multi_thread().workers(2).build().unwrap());
}

fn contention(rt: omni::Runtime) {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 5_000;
    const TASKS: u64 = 1_000;
    const PER_TASK: u64 = 10;
    let total = THREADS * PER_THREAD + TASKS * PER_TASK;

    let atom = Arc::new(Atom::new(0u64));
    let changes = logged(&atom, "chain");
    let runs = Arc::new(AtomicUsize::new(0)); // swap function runs, retries included
    let start = Arc::new(Barrier::new(THREADS as usize + 1));

    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (atom, runs, start) = (Arc::clone(&atom), Arc::clone(&runs), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..PER_THREAD {
                    atom.swap(|n| {
                        runs.fetch_add(1, SeqCst);
                        n + 1
                    })
                    .unwrap();
                }
            })
        })
        .collect();

    start.wait();
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (atom, runs) = (Arc::clone(&atom), Arc::clone(&runs));
                omni::spawn(async move {
                    for _ in 0..PER_TASK {
                        atom.swap(|n| {
                            runs.fetch_add(1, SeqCst);
                            n + 1
                        })
                        .unwrap();
                        omni::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    for t in threads {
        t.join().unwrap();
    }

    assert_eq!(*atom.deref(), total);
    let mut changes = taken(&changes);
    assert_eq!(changes.len() as u64, total);
    changes.sort_unstable();
    for (i, &(old, new)) in changes.iter().enumerate() {
        assert_eq!((old, new), (i as u64, i as u64 + 1), "change {i}");
    }
    assert!(runs.load(SeqCst) as u64 >= total);
}

#[test]
fn a_green_task_holds_a_snapshot_across_await() {
    let atom = Arc::new(Atom::new(String::from("before")));
    let taken = Arc::new(AtomicUsize::new(0));
    let seen = omni::block_on({
        let atom = Arc::clone(&atom);
        async move {
            let h = omni::spawn({
                let (atom, taken) = (Arc::clone(&atom), Arc::clone(&taken));
                async move {
                    let snap = atom.deref();
                    taken.store(1, SeqCst);
                    // Yield until the change lands, whichever order the scheduler picks.
                    while Snapshot::ptr_eq(&snap, &atom.deref()) {
                        omni::yield_now().await;
                    }
                    (snap.to_string(), atom.deref().to_string())
                }
            });
            // Change the atom only once the task holds its snapshot, whatever the order of turns.
            while taken.load(SeqCst) == 0 {
                omni::yield_now().await;
            }
            atom.reset(String::from("after")).unwrap();
            h.await.unwrap()
        }
    });
    assert_eq!(seen, ("before".to_string(), "after".to_string()));
}

#[test]
fn reset_returns_the_replaced_value() {
    let atom = Atom::new(1);
    let first = atom.deref();
    let old = atom.reset(2).unwrap();
    assert!(Snapshot::ptr_eq(&first, &old));
    assert_eq!((*first, *atom.deref()), (1, 2));
}

#[test]
fn swap_retries_when_another_change_comes_first() {
    let atom = Atom::new(0);
    let changes = logged(&atom, "w");
    let mut runs = Vec::new();
    let now = atom
        .swap(|n| {
            runs.push(*n);
            if runs.len() == 1 {
                // A change between this run's read and its store: this result must be dropped.
                atom.reset(100).unwrap();
            }
            n + 1
        })
        .unwrap();
    assert_eq!(runs, [0, 100]);
    assert_eq!((*now, *atom.deref()), (101, 101));
    assert_eq!(taken(&changes), [(0, 100), (100, 101)]);
}

#[test]
fn compare_and_set_compares_identity() {
    let atom = Atom::new(5);
    let changes = logged(&atom, "w");
    let current = atom.deref();
    atom.compare_and_set(&current, 6).unwrap();
    // `current` was replaced; an equal value stored later is still another value.
    atom.reset(5).unwrap();
    assert!(matches!(atom.compare_and_set(&current, 7), Err(CasError::Changed(7))));
    assert_eq!(*atom.deref(), 5);
    // A snapshot built from an equal value that was never stored never matches either.
    assert!(atom.compare_and_set(&Snapshot::from(Arc::new(5)), 8).is_err());
    assert_eq!(taken(&changes), [(5, 6), (6, 5)]);
    let fresh = atom.deref();
    atom.compare_and_set(&fresh, 9).unwrap();
    assert_eq!(taken(&changes), [(5, 9)]);
}

#[test]
fn a_refused_value_is_handed_back_and_changes_nothing() {
    let atom = Atom::with_validator(vec![1], |v: &Vec<i32>| v.len() <= 2).unwrap();
    let changes = logged(&atom, "w");
    let before = atom.deref();

    let ValidationError(back) = atom.reset(vec![1, 2, 3]).unwrap_err();
    assert_eq!(back, [1, 2, 3]);
    let ValidationError(back) = atom.swap(|v| [v.as_slice(), &[2, 3]].concat()).unwrap_err();
    assert_eq!(back, [1, 2, 3]);
    match atom.compare_and_set(&before, vec![9, 9, 9]) {
        Err(CasError::Invalid(back)) => assert_eq!(back, [9, 9, 9]),
        other => panic!("expected Invalid, got {other:?}"),
    }

    assert!(Snapshot::ptr_eq(&before, &atom.deref()), "the very same value is still stored");
    assert!(taken(&changes).is_empty(), "no watch for a refused value");
    atom.reset(vec![1, 2]).unwrap();
    assert_eq!(taken(&changes), [(vec![1], vec![1, 2])]);
}

#[test]
fn a_refused_initial_value_is_handed_back() {
    let err = Atom::with_validator(String::from("x"), |s: &String| s.is_empty()).unwrap_err();
    assert_eq!(err.into_inner(), "x");
    assert_eq!(err_text(&ValidationError(())), "the atom's validator refused the new value");
}

fn err_text(e: &dyn std::error::Error) -> String {
    e.to_string()
}

#[test]
fn set_validator_checks_the_current_value_and_keeps_the_old_one_on_refusal() {
    let atom = Atom::new(3);
    atom.set_validator(|n: &i32| *n < 10).unwrap();
    let SetValidatorError(f) = atom.set_validator(|n: &i32| *n > 3).unwrap_err();
    assert!(f(&4), "the refused validator is handed back intact");
    // The first validator is still the one in force.
    assert!(atom.reset(20).is_err());
    atom.reset(1).unwrap();
    atom.clear_validator();
    atom.reset(20).unwrap();
    assert_eq!(*atom.deref(), 20);
}

#[test]
fn watches_are_called_once_per_change_and_never_for_failures() {
    let atom = Atom::with_validator(0, |n: &i32| *n >= 0).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    for key in ["a", "b"] {
        let calls = Arc::clone(&calls);
        atom.add_watch(key, move |_: &i32, _: &i32| {
            calls.fetch_add(1, SeqCst);
        });
    }
    let stale = atom.deref();
    atom.reset(1).unwrap(); // 2 calls
    atom.swap(|n| n + 1).unwrap(); // 2
    atom.compare_and_set(&atom.deref(), 3).unwrap(); // 2
    atom.reset(-1).unwrap_err();
    atom.swap(|_| -1).unwrap_err();
    atom.compare_and_set(&stale, 4).unwrap_err();
    atom.compare_and_set(&atom.deref(), -4).unwrap_err();
    assert_eq!(calls.load(SeqCst), 6);

    // Replacing a watch under its key keeps one watch; removing it stops the calls.
    assert!(atom.add_watch("a", |_: &i32, _: &i32| {}));
    atom.reset(5).unwrap(); // only "b" counts now
    assert_eq!(calls.load(SeqCst), 7);
    assert!(atom.remove_watch("b"));
    assert!(!atom.remove_watch("b"));
    atom.reset(6).unwrap();
    assert_eq!(calls.load(SeqCst), 7);
}

#[test]
fn a_panicking_watch_leaves_the_atom_consistent() {
    let atom = Atom::new(0);
    atom.add_watch("bomb", |_: &i32, new: &i32| assert!(*new != 1, "watch refuses to see 1"));
    let after = logged(&atom, "after");

    let payload = catch_unwind(AssertUnwindSafe(|| atom.reset(1))).unwrap_err();
    assert_eq!(*payload.downcast_ref::<&str>().unwrap(), "watch refuses to see 1");
    // The change happened, and the watch after the panicking one still heard about it.
    assert_eq!(*atom.deref(), 1);
    assert_eq!(taken(&after), [(0, 1)]);

    // The atom works on: swaps, CAS and watches as before.
    atom.swap(|n| n + 1).unwrap();
    let now = atom.deref();
    atom.compare_and_set(&now, 3).unwrap();
    assert_eq!(taken(&after), [(1, 2), (2, 3)]);
}

#[test]
fn a_panicking_swap_function_or_validator_stores_nothing() {
    let atom =
        Atom::with_validator(0, |n: &i32| if *n == 13 { panic!("unlucky") } else { true }).unwrap();
    let changes = logged(&atom, "w");
    let before = atom.deref();
    catch_unwind(AssertUnwindSafe(|| atom.swap(|_| panic!("in swap")))).unwrap_err();
    catch_unwind(AssertUnwindSafe(|| atom.reset(13))).unwrap_err();
    catch_unwind(AssertUnwindSafe(|| atom.compare_and_set(&before, 13))).unwrap_err();
    assert!(Snapshot::ptr_eq(&before, &atom.deref()));
    assert!(taken(&changes).is_empty());
    atom.reset(1).unwrap();
    assert_eq!(taken(&changes), [(0, 1)]);
}

/// A watch that changes the atom starts a nested change: its watches run at once, before the
/// outer change's remaining watches.
#[test]
fn a_watch_may_change_the_atom() {
    let atom = Arc::new(Atom::new(0));
    let clamp = Arc::clone(&atom);
    atom.add_watch("clamp", move |_: &i32, new: &i32| {
        if *new > 10 {
            clamp.reset(10).unwrap();
        }
    });
    let log = logged(&atom, "log");
    atom.reset(50).unwrap();
    assert_eq!(*atom.deref(), 10);
    // The nested change (50 -> 10) is heard before the outer one (0 -> 50) reaches "log".
    assert_eq!(taken(&log), [(50, 10), (0, 50)]);

    // Watches may also add and remove watches (no lock is held while they run).
    let inner = Arc::clone(&atom);
    atom.add_watch("once", move |_: &i32, _: &i32| {
        inner.remove_watch("once");
        inner.add_watch("added", |_: &i32, _: &i32| {});
    });
    atom.reset(1).unwrap();
    assert!(!atom.remove_watch("once"));
    assert!(atom.remove_watch("added"));
}

/// A model test: random operation sequences against a plain value, a plain validator limit and
/// a map of watch logs. Watches must report exactly the changes the reference makes.
#[test]
fn random_operations_match_a_plain_value() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let atom = Atom::new(0i64);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut value = 0i64;
    let mut limit: Option<i64> = None;
    let mut keys: BTreeMap<u64, ()> = BTreeMap::new();
    let mut held = atom.deref();

    for step in 0..5_000 {
        let arg = next(40) as i64 - 20;
        let ok = |v: i64, limit: Option<i64>| limit.is_none_or(|l| v <= l);
        let mut expected = Vec::new();
        let mut change = |old: i64, new: i64, keys: &BTreeMap<u64, ()>| {
            expected.extend(keys.keys().map(|&k| (k, old, new)));
        };
        match next(8) {
            0 => {
                let r = atom.reset(arg);
                assert_eq!(r.is_ok(), ok(arg, limit), "step {step}");
                if let Ok(old) = r {
                    assert_eq!(*old, value);
                    change(value, arg, &keys);
                    value = arg;
                }
            }
            1 => {
                let r = atom.swap(|n| n + arg);
                assert_eq!(r.is_ok(), ok(value + arg, limit), "step {step}");
                if r.is_ok() {
                    change(value, value + arg, &keys);
                    value += arg;
                }
            }
            2 => {
                let fresh = Snapshot::ptr_eq(&held, &atom.deref());
                match atom.compare_and_set(&held, arg) {
                    Ok(()) => {
                        assert!(fresh && ok(arg, limit), "step {step}");
                        change(value, arg, &keys);
                        value = arg;
                    }
                    Err(CasError::Invalid(v)) => assert!(v == arg && !ok(arg, limit)),
                    Err(CasError::Changed(v)) => assert!(v == arg && ok(arg, limit) && !fresh),
                }
            }
            3 => held = atom.deref(),
            4 => {
                let l = arg.abs();
                let r = atom.set_validator(move |n: &i64| *n <= l);
                assert_eq!(r.is_ok(), value <= l, "step {step}");
                if r.is_ok() {
                    limit = Some(l);
                }
            }
            5 => {
                atom.clear_validator();
                limit = None;
            }
            6 => {
                let k = next(4);
                let sink = Arc::clone(&log);
                let replaced = atom.add_watch(format!("k{k}"), move |o: &i64, n: &i64| {
                    sink.lock().unwrap().push((k, *o, *n))
                });
                assert_eq!(replaced, keys.insert(k, ()).is_some());
            }
            _ => {
                let k = next(4);
                assert_eq!(atom.remove_watch(&format!("k{k}")), keys.remove(&k).is_some());
            }
        }
        assert_eq!(*atom.deref(), value, "step {step}");
        let mut heard = taken(&log);
        heard.sort_unstable(); // watches run in insertion order; the reference keeps key order
        assert_eq!(heard, expected, "step {step}");
    }
}

#[test]
fn debug_and_conversions() {
    let atom: Atom<Vec<u8>> = Atom::default();
    assert_eq!(
        format!("{atom:?}"),
        "Atom { value: [], hooks: Hooks { validator: false, watches: [] } }"
    );
    let atom = Atom::from(7u8);
    let snap = atom.deref();
    assert_eq!((format!("{snap:?}"), format!("{snap}")), ("7".to_string(), "7".to_string()));
    let copy = snap.clone();
    assert!(Snapshot::ptr_eq(&snap, &copy));
    drop(snap);
    assert_eq!(*atom.into_inner(), 7);
    assert_eq!(format!("{:?}", CasError::Changed(1)), "Changed(..)");
    assert_eq!(format!("{:?}", ValidationError(1)), "ValidationError { .. }");
}
