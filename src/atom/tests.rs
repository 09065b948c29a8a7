//! Unit tests of the hooks and of identity; the black-box tests are in `tests/atom.rs`.

use super::hooks::{Hooks, WatchFn};
use super::{Atom, CasError, Snapshot};
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

fn recorder(log: &Arc<Mutex<Vec<String>>>, name: &'static str) -> WatchFn<i32> {
    let log = Arc::clone(log);
    Arc::new(move |old: &i32, new: &i32| log.lock().unwrap().push(format!("{name}:{old}->{new}")))
}

#[test]
fn watches_keep_insertion_order_and_replace_in_place() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let h = Hooks::new(None);
    let (h, r1) = h.with_watch(Cow::Borrowed("a"), recorder(&log, "a"));
    let (h, r2) = h.with_watch(Cow::Borrowed("b"), recorder(&log, "b"));
    let (h, r3) = h.with_watch(Cow::Owned("a".to_string()), recorder(&log, "A"));
    assert_eq!((r1, r2, r3), (false, false, true));
    h.notify(&1, &2);
    assert_eq!(*log.lock().unwrap(), ["A:1->2", "b:1->2"]);
    let h = h.without_watch("A").map_or(h, |_| panic!("keys are case-sensitive"));
    let h = h.without_watch("a").unwrap();
    assert!(h.without_watch("a").is_none());
    assert_eq!(format!("{h:?}"), r#"Hooks { validator: false, watches: ["b"] }"#);
}

#[test]
fn notify_runs_every_watch_then_resumes_the_first_panic() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut h = Hooks::new(None);
    for (key, panics) in [("p1", Some("first")), ("ok", None), ("p2", Some("second"))] {
        let calls = Arc::clone(&calls);
        let f: WatchFn<i32> = Arc::new(move |_: &i32, _: &i32| {
            calls.fetch_add(1, SeqCst);
            if let Some(msg) = panics {
                std::panic::panic_any(msg);
            }
        });
        h = h.with_watch(Cow::Borrowed(key), f).0;
    }
    let payload = catch_unwind(AssertUnwindSafe(|| h.notify(&0, &1))).unwrap_err();
    assert_eq!(*payload.downcast::<&str>().unwrap(), "first");
    assert_eq!(calls.load(SeqCst), 3);
}

#[test]
fn validator_swaps_keep_watches() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let h = Hooks::new(None).with_watch(Cow::Borrowed("w"), recorder(&log, "w")).0;
    let h = h.with_validator(Some(Arc::new(|v: &i32| *v > 0)));
    assert!(h.accepts(&1) && !h.accepts(&0));
    let h = h.with_validator(None);
    assert!(h.accepts(&0) && h.has_watches());
}

#[test]
fn a_snapshot_of_an_unstored_arc_never_matches() {
    let atom = Atom::new(1);
    let foreign = Snapshot::from(Arc::new(1));
    assert!(matches!(atom.compare_and_set(&foreign, 2), Err(CasError::Changed(2))));
    let own = Snapshot::from(atom.deref().into_arc());
    atom.compare_and_set(&own, 3).unwrap();
    assert_eq!(*atom.deref(), 3);
}

#[test]
fn debug_shows_value_and_hook_keys() {
    let atom = Atom::with_validator(1, |_: &i32| true).unwrap();
    atom.add_watch(String::from("k"), |_: &i32, _: &i32| {});
    assert_eq!(
        format!("{atom:?}"),
        r#"Atom { value: 1, hooks: Hooks { validator: true, watches: ["k"] } }"#
    );
}
