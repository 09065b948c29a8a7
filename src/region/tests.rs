//! Unit tests for regions: retirement, staleness, drops, slot stability, chunk layout.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use super::pool::{chunk_len, locate};
use super::{DefaultKey, Key, KeyData, PinRegion, Region};

fn split(key: DefaultKey) -> (u32, u32) {
    let ffi = key.data().as_ffi();
    (ffi as u32, (ffi >> 32) as u32)
}

fn forge(idx: u32, version: u32) -> DefaultKey {
    KeyData::from_ffi(u64::from(version) << 32 | u64::from(idx)).into()
}

/// Counts drops through a shared counter.
struct DropCounter {
    drops: Rc<Cell<usize>>,
}

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

#[test]
fn versions_are_odd_while_occupied_and_grow_by_two_per_reuse() {
    let mut region: Region<DefaultKey, u32> = Region::new();
    let mut last = 0;
    for round in 0..5 {
        let key = region.insert(round);
        let (idx, version) = split(key);
        assert_eq!(idx, 0, "the single vacant slot is reused");
        assert_eq!(version, 2 * round + 1);
        assert!(version > last);
        last = version;
        assert_eq!(region.remove(key), Some(round));
    }
}

#[test]
fn slot_is_retired_when_its_version_would_wrap() {
    let mut region: Region<DefaultKey, &str> = Region::new();
    let first = region.insert("first");
    region.remove(first);
    region.set_vacant_version(0, u32::MAX - 3);

    let near = region.insert("near");
    assert_eq!(split(near), (0, u32::MAX - 2));
    region.remove(near);
    let last = region.insert("last");
    assert_eq!(split(last), (0, u32::MAX), "the last odd version is still handed out");
    assert_eq!(region.remove(last), Some("last"));

    let stats = region.stats();
    assert_eq!((stats.live, stats.retired), (0, 1));
    let fresh = region.insert("fresh");
    assert_eq!(split(fresh), (1, 1), "a retired slot is never reused");
    for stale in [first, near, last, forge(0, 1), forge(0, u32::MAX)] {
        assert_eq!(region.get(stale), None);
        assert!(!region.contains_key(stale));
    }
    assert_eq!(region.remove(last), None);
    assert_eq!(region.iter().collect::<Vec<_>>(), [(fresh, &"fresh")]);

    // Clearing and retaining never revive a retired slot either.
    region.clear();
    let again = region.insert("again");
    assert_eq!(split(again).0, 1);
    assert_eq!(region.stats().retired, 1);
}

#[test]
fn stale_key_after_reuse_reads_as_absent_and_does_not_alias() {
    let mut region: Region<DefaultKey, String> = Region::new();
    let old = region.insert("old".into());
    assert_eq!(region.remove(old).as_deref(), Some("old"));
    let new = region.insert("new".into());
    assert_eq!(split(old).0, split(new).0, "same slot");
    assert_ne!(old, new);

    assert_eq!(region.get(old), None);
    assert_eq!(region.get_mut(old), None);
    assert_eq!(region.remove(old), None);
    assert!(!region.contains_key(old));
    assert_eq!(region[new], "new");
    assert_eq!(region.len(), 1);
}

#[test]
fn null_and_out_of_range_keys_read_as_absent() {
    let mut region: Region<DefaultKey, u8> = Region::with_capacity(64);
    region.insert(1);
    assert_eq!(region.get(DefaultKey::null()), None);
    assert_eq!(region.remove(DefaultKey::null()), None);
    assert_eq!(region.get(forge(1, 1)), None, "allocated but never handed out");
    assert_eq!(region.get(forge(10_000, 1)), None, "past the capacity");
    assert_eq!(region.get(forge(u32::MAX - 1, u32::MAX)), None);
}

#[test]
#[should_panic(expected = "is stale or from another region")]
fn index_with_stale_key_panics() {
    let mut region: Region<DefaultKey, u8> = Region::new();
    let key = region.insert(1);
    region.remove(key);
    let _ = region[key];
}

#[test]
fn free_list_is_last_in_first_out() {
    let mut region: Region<DefaultKey, usize> = Region::new();
    let keys: Vec<_> = (0..4).map(|n| region.insert(n)).collect();
    region.remove(keys[1]);
    region.remove(keys[3]);
    assert_eq!(split(region.insert(10)).0, 3);
    assert_eq!(split(region.insert(11)).0, 1);
    assert_eq!(split(region.insert(12)).0, 4, "fresh slot once the free list is empty");
}

#[test]
fn values_are_dropped_exactly_once() {
    let drops = Rc::new(Cell::new(0));
    let counter = || DropCounter { drops: drops.clone() };
    let mut region: Region<DefaultKey, DropCounter> = Region::new();
    let keys: Vec<_> = (0..100).map(|_| region.insert(counter())).collect();

    let removed = region.remove(keys[0]).unwrap();
    assert_eq!(drops.get(), 0, "remove hands the value back");
    drop(removed);
    assert_eq!(drops.get(), 1);
    assert!(region.remove(keys[0]).is_none());
    assert_eq!(drops.get(), 1);

    let mut visited = 0;
    region.retain(|_, _| {
        visited += 1;
        visited % 2 == 0
    });
    assert_eq!((drops.get(), region.len()), (51, 49));

    region.clear();
    assert_eq!((drops.get(), region.len()), (100, 0));
    region.clear();
    assert_eq!(drops.get(), 100);

    for _ in 0..30 {
        region.insert(counter());
    }
    drop(region);
    assert_eq!(drops.get(), 130);

    let mut pinned: PinRegion<DefaultKey, DropCounter> = PinRegion::new();
    let key = pinned.insert(counter());
    pinned.insert(counter());
    assert!(pinned.delete(key));
    assert!(!pinned.delete(key));
    assert_eq!(drops.get(), 131);
    drop(pinned);
    assert_eq!(drops.get(), 132);
}

#[test]
fn values_do_not_move_while_the_region_grows() {
    let mut region: Region<DefaultKey, [u64; 3]> = Region::new();
    let first = region.insert([1, 2, 3]);
    let address = region.get(first).unwrap() as *const [u64; 3];
    let keys: Vec<_> = (0..10_000).map(|n| region.insert([n; 3])).collect();
    assert!(region.capacity() >= 10_001);
    assert_eq!(region.get(first).unwrap() as *const _, address);
    assert_eq!(region[first], [1, 2, 3]);

    let mid = keys[5_000];
    let mid_address = &region[mid] as *const [u64; 3];
    let moved = region; // moving the region moves only its chunk table
    assert_eq!(&moved[mid] as *const _, mid_address);
    assert_eq!(&moved[first] as *const _, address);
}

#[test]
fn panicking_drop_during_clear_leaves_region_consistent() {
    struct Bomb(bool);
    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.0 {
                panic!("boom");
            }
        }
    }
    let mut region: Region<DefaultKey, Bomb> = Region::new();
    let a = region.insert(Bomb(false));
    let b = region.insert(Bomb(true));
    let c = region.insert(Bomb(false));
    let result = panic::catch_unwind(AssertUnwindSafe(|| region.clear()));
    assert!(result.is_err());
    assert!(region.get(a).is_none() && region.get(b).is_none());
    assert!(region.get(c).is_some(), "the clear stopped at the panic");
    assert_eq!(region.len(), 1);
    assert_eq!(region.iter().count(), 1);
    let d = region.insert(Bomb(false));
    assert_eq!(split(d).0, split(b).0, "the slot of the panicking value is reusable");
}

#[test]
fn panicking_drop_during_pinned_delete_still_frees_the_slot() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("boom");
        }
    }
    let mut region: PinRegion<DefaultKey, Bomb> = PinRegion::new();
    let key = region.insert(Bomb);
    let result = panic::catch_unwind(AssertUnwindSafe(|| region.delete(key)));
    assert!(result.is_err());
    // Assignment writes the vacant slot even when the old value's drop unwinds.
    assert!(region.get(key).is_none() && region.is_empty());
    let again = region.insert_with_key(|_| Bomb);
    assert_eq!(split(again), (0, 3));
    std::mem::forget(region); // its remaining value would panic again on drop
}

#[test]
fn panicking_insert_with_key_leaves_region_unchanged() {
    let mut region: Region<DefaultKey, u8> = Region::new();
    let a = region.insert(1);
    region.remove(a);
    let result = panic::catch_unwind(AssertUnwindSafe(|| region.insert_with_key(|_| panic!())));
    assert!(result.is_err());
    assert!(region.is_empty());
    let b = region.insert(2);
    assert_eq!(split(b), (0, 3), "the vacant slot is still first on the free list");
}

#[test]
fn chunks_double_from_16_to_4096_then_stay_fixed() {
    let mut start = 0;
    for chunk in 0..20 {
        let len = chunk_len(chunk);
        assert_eq!(len, if chunk < 9 { 16 << chunk } else { 4096 });
        for offset in [0, 1, len / 2, len - 1] {
            assert_eq!(locate(start + offset), (chunk, offset), "slot {}", start + offset);
        }
        start += len;
    }
    let capacities: Vec<_> = [0, 1, 16, 17, 48, 49, 8176, 8177]
        .map(|n| Region::<DefaultKey, u8>::with_capacity(n).capacity())
        .to_vec();
    assert_eq!(capacities, [0, 16, 16, 48, 48, 112, 8176, 12272]);
}

#[test]
fn stats_count_slot_memory() {
    let mut region: Region<DefaultKey, u64> = Region::new();
    assert_eq!(region.stats().bytes, 0);
    region.insert(1);
    let stats = region.stats();
    assert_eq!((stats.live, stats.slots, stats.retired), (1, 16, 0));
    assert!(stats.bytes >= 16 * std::mem::size_of::<u64>());
}

#[test]
fn debug_shows_entries_like_a_map() {
    let mut region: Region<DefaultKey, &str> = Region::new();
    let key = region.insert("a");
    assert_eq!(format!("{region:?}"), format!("{{{key:?}: \"a\"}}"));
}

#[test]
fn keys_are_8_bytes_and_regions_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Region<DefaultKey, String>>();
    send_sync::<PinRegion<DefaultKey, String>>();
    assert_eq!(std::mem::size_of::<DefaultKey>(), 8);
    assert_eq!(std::mem::size_of::<Option<DefaultKey>>(), 8);
}

/// A node of a test graph: a label and edges by key, counting drops.
struct Node {
    label: u32,
    edges: Vec<DefaultKey>,
    drops: Rc<Cell<usize>>,
    /// `migrate` panics on this node when set.
    poison: bool,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

impl super::Migrate<DefaultKey> for Node {
    fn each_key(&self, f: &mut dyn FnMut(DefaultKey)) {
        self.edges.iter().copied().for_each(f);
    }

    fn migrate(&self, map: &mut dyn FnMut(DefaultKey) -> DefaultKey) -> Self {
        assert!(!self.poison, "poisoned node");
        Node {
            label: self.label,
            edges: self.edges.iter().map(|&k| map(k)).collect(),
            drops: self.drops.clone(),
            poison: false,
        }
    }
}

fn node(drops: &Rc<Cell<usize>>, label: u32, edges: Vec<DefaultKey>) -> Node {
    Node { label, edges, drops: drops.clone(), poison: false }
}

#[test]
fn next_keys_are_the_keys_inserts_hand_out() {
    let mut region: Region<DefaultKey, u32> = Region::new();
    let keys: Vec<_> = (0..40).map(|n| region.insert(n)).collect();
    for &k in keys.iter().step_by(3) {
        region.remove(k);
    }
    let planned = region.next_keys(30);
    let got: Vec<_> = (0..30).map(|n| region.insert(n)).collect();
    assert_eq!(planned, got);
}

#[test]
fn transmigrate_keeps_sharing_cycles_and_maps_absent_keys_to_null() {
    let drops = Rc::new(Cell::new(0));
    let mut src: Region<DefaultKey, Node> = Region::new();
    let gone = src.insert(node(&drops, 99, vec![]));
    src.remove(gone);
    let a = src.insert(node(&drops, 1, vec![]));
    let b = src.insert(node(&drops, 2, vec![a, a, gone, DefaultKey::null()]));
    src[a].edges.push(b);
    src[a].edges.push(a);
    let unreached = src.insert(node(&drops, 3, vec![a]));

    // A destination with a used free list, so planned keys come from it and from fresh slots.
    let mut dst: Region<DefaultKey, Node> = Region::new();
    let old: Vec<_> = (0..3).map(|n| dst.insert(node(&drops, 100 + n, vec![]))).collect();
    dst.remove(old[1]);

    let roots = src.transmigrate(&[b, gone, a], &mut dst);
    assert_eq!(roots[1], DefaultKey::null());
    assert_eq!(dst.len(), 2 + 2, "a and b once each, beside the two old values");
    let (a2, b2) = (roots[2], roots[0]);
    assert_eq!(dst[b2].label, 2);
    assert_eq!(dst[b2].edges, [a2, a2, DefaultKey::null(), DefaultKey::null()]);
    assert_eq!(dst[a2].edges, [b2, a2]);
    assert!(!dst.contains_key(old[1]), "the stale key of the reused slot stays stale");
    assert_eq!(src.len(), 3, "the source is unchanged");
    let _ = unreached;

    let before = drops.get();
    drop(dst);
    assert_eq!(drops.get() - before, 4, "copies are dropped with their region, once each");
}

#[test]
fn transmigrate_a_million_long_chain_needs_no_host_stack() {
    let drops = Rc::new(Cell::new(0));
    let mut src: Region<DefaultKey, Node> = Region::new();
    let mut head = DefaultKey::null();
    for n in 0..1_000_000 {
        head = src.insert(node(&drops, n, vec![head]));
    }
    let mut dst = Region::new();
    let root = src.transmigrate(&[head], &mut dst)[0];
    assert_eq!(dst.len(), 1_000_000);
    let (mut at, mut n) = (root, 1_000_000);
    while let Some(v) = dst.get(at) {
        n -= 1;
        assert_eq!(v.label, n);
        at = v.edges[0];
    }
    assert_eq!(n, 0);
}

#[test]
fn transmigrate_that_panics_leaves_the_destination_as_it_was() {
    let drops = Rc::new(Cell::new(0));
    let mut src: Region<DefaultKey, Node> = Region::new();
    let c = src.insert(node(&drops, 3, vec![]));
    let b = src.insert(node(&drops, 2, vec![c]));
    let a = src.insert(node(&drops, 1, vec![b]));
    src[c].poison = true;

    let mut dst: Region<DefaultKey, Node> = Region::new();
    let kept = dst.insert(node(&drops, 7, vec![]));
    let planned = dst.next_keys(3);
    let made = drops.get();
    let result = panic::catch_unwind(AssertUnwindSafe(|| src.transmigrate(&[a], &mut dst)));
    assert!(result.is_err());
    assert_eq!(dst.len(), 1, "the copies made before the panic are removed");
    assert_eq!(drops.get() - made, 2, "and dropped");
    assert!(dst.contains_key(kept));
    for k in planned {
        assert!(!dst.contains_key(k), "no planned key names a value");
    }
    // Later inserts never get a key a removed copy held: its slot's version moved on.
    let fresh = dst.insert(node(&drops, 8, vec![]));
    assert_eq!(dst.len(), 2);
    assert_eq!(dst[fresh].label, 8);
}

#[test]
fn aged_free_slots_retire_and_keep_stale_keys_stale() {
    let mut region: Region<DefaultKey, u32> = Region::new();
    let keys: Vec<_> = (0..4).map(|n| region.insert(n)).collect();
    for &k in &keys {
        region.remove(k);
    }
    region.age_free_slots(u32::MAX - 4);
    let mut stale = keys.clone();
    for round in 0..3 {
        let k = region.insert(round);
        assert!(!stale.contains(&k));
        assert_eq!(split(k).1 % 2, 1);
        region.remove(k);
        stale.push(k);
    }
    assert_eq!(region.stats().retired, 1, "slot 3 went to u32::MAX and retired");
    for &k in &stale {
        assert_eq!(region.get(k), None);
    }
    // Aging never lowers a version.
    region.age_free_slots(2);
    let k = region.insert(9);
    assert!(split(k).1 > u32::MAX - 8);
}

#[test]
fn frozen_regions_are_shared_read_only_and_thaw_when_alone() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<super::Frozen<DefaultKey, String>>();

    let mut region: Region<DefaultKey, String> = Region::new();
    let live = region.insert("live".into());
    let stale = region.insert("stale".into());
    region.remove(stale);
    let frozen = region.freeze();
    let clone = frozen.clone();
    assert!(frozen.same_region(&clone));
    assert_eq!(clone[live], "live");
    assert_eq!(clone.get(stale), None);
    let frozen = frozen.thaw().expect_err("a clone still reads it");
    assert_eq!(frozen.clones(), 2);
    drop(clone);
    let mut region = frozen.thaw().expect("the last clone thaws");
    region[live].push('!');
    assert_eq!(region[live], "live!");
}
