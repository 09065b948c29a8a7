//! ThreadSanitizer target (`harness = false`; `.ci/run` runs it under `-Zsanitizer=thread`,
//! and `cargo test` runs it as a plain test): regions frozen and shared between threads.
//!
//! A region is frozen with `Region::freeze` and read by several threads at once through clones
//! of the `Frozen`, each thread also transmigrating a part of it into a region of its own; the
//! last clone then thaws it and writes it again. A region is shared as it changes by publishing
//! whole versions through an [`omni::Atom`]: readers on other threads check that live keys read
//! their values and stale keys read as absent in every version they see, while the writer
//! builds the next one. A region is also moved to another thread, changed there, and moved back.

use omni::region::{DefaultKey, Key, Migrate, Region};
use omni::Atom;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

const N: u64 = 2_000;
const VERSIONS: u64 = 200;
const READERS: usize = 3;

/// A region with its live keys (and their values) and its stale keys.
type Version = (Region<DefaultKey, u64>, Vec<(DefaultKey, u64)>, Vec<DefaultKey>);

/// Version `v`: values `0..N + v` inserted, then every third one removed.
fn build(v: u64) -> Version {
    let mut r = Region::new();
    let keys: Vec<_> = (0..N + v).map(|i| (r.insert(i), i)).collect();
    let (mut live, mut stale) = (Vec::new(), Vec::new());
    for (k, i) in keys {
        if i % 3 == 0 {
            assert_eq!(r.remove(k), Some(i));
            stale.push(k);
        } else {
            live.push((k, i));
        }
    }
    (r, live, stale)
}

fn check(r: &Region<DefaultKey, u64>, live: &[(DefaultKey, u64)], stale: &[DefaultKey]) {
    assert_eq!(r.len(), live.len());
    for &(k, i) in live {
        assert_eq!(r.get(k), Some(&i));
    }
    for &k in stale {
        assert_eq!(r.get(k), None, "a stale key reads as absent");
    }
    assert_eq!(r.values().sum::<u64>(), live.iter().map(|&(_, i)| i).sum::<u64>());
}

/// A node of a linked chain, for transmigration.
struct Link {
    value: u64,
    next: DefaultKey,
}

impl Migrate<DefaultKey> for Link {
    fn each_key(&self, f: &mut dyn FnMut(DefaultKey)) {
        f(self.next);
    }

    fn migrate(&self, map: &mut dyn FnMut(DefaultKey) -> DefaultKey) -> Self {
        Link { value: self.value, next: map(self.next) }
    }
}

fn main() {
    // Frozen: built on this thread, then read by several threads at once through clones.
    let (r, live, stale) = build(0);
    let (live, stale) = (Arc::new(live), Arc::new(stale));
    let frozen = r.freeze();
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (f, live, stale) = (frozen.clone(), live.clone(), stale.clone());
            std::thread::spawn(move || check(&f, &live, &stale))
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    let mut r = frozen.thaw().expect("the readers' clones are gone");
    r.insert(u64::MAX);

    // A frozen chain, transmigrated from by every reader at once, each into its own region.
    let mut chain: Region<DefaultKey, Link> = Region::new();
    let mut heads = Vec::new();
    let mut head = DefaultKey::null();
    for value in 0..N {
        head = chain.insert(Link { value, next: head });
        heads.push(head);
    }
    let chain = chain.freeze();
    let movers: Vec<_> = (0..READERS)
        .map(|t| {
            let (chain, from) = (chain.clone(), heads[heads.len() - 1 - t * 100]);
            std::thread::spawn(move || {
                let mut mine = Region::new();
                let mut at = chain.transmigrate(&[from], &mut mine)[0];
                let mut sum = 0;
                while let Some(link) = mine.get(at) {
                    sum += link.value;
                    at = link.next;
                }
                (mine.len(), sum)
            })
        })
        .collect();
    for (t, m) in movers.into_iter().enumerate() {
        let top = N - t as u64 * 100;
        assert_eq!(m.join().unwrap(), (top as usize, top * (top - 1) / 2));
    }

    // Shared as it changes: each version published whole through an atom.
    let atom: Arc<Atom<Version>> = Arc::new(Atom::new(build(0)));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (atom, done) = (atom.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = 0u64;
                let mut last_len = 0;
                while !done.load(SeqCst) || seen == 0 {
                    let snap = atom.deref();
                    check(&snap.0, &snap.1, &snap.2);
                    assert!(snap.0.len() >= last_len, "versions only grow");
                    last_len = snap.0.len();
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    for v in 1..=VERSIONS {
        atom.reset(build(v)).unwrap();
    }
    done.store(true, SeqCst);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let last = atom.deref();
    assert_eq!(last.0.len() as u64, (N + VERSIONS) - (N + VERSIONS).div_ceil(3));

    // Moved: changed on another thread, then back here.
    let (mut r, mut live, stale) = build(0);
    let (r2, live2) = std::thread::spawn(move || {
        for (k, i) in live.iter_mut() {
            *r.get_mut(*k).unwrap() += 1;
            *i += 1;
        }
        (r, live)
    })
    .join()
    .unwrap();
    check(&r2, &live2, &stale);
    println!("tsan_region: ok ({VERSIONS} versions published, {reads} snapshots checked)");
}
