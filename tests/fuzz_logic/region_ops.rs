//! `region_ops`: `omni::region::Region` against a `HashMap` model.
//!
//! Checks: every live key reads its value, stale keys (removed, cleared, retained away) read as
//! absent and are never handed out again, forged keys (any index, any version, including
//! versions near `u32::MAX`) read only the value they name exactly, `len` and iteration agree
//! with the model, and every value is dropped exactly once (a drop counter per value, copies
//! included).
//!
//! Generations: `Churn` removes and re-inserts in one slot many times, pushing that slot's
//! version up; `Age` raises every free slot's version to near `u32::MAX`
//! (`Region::age_free_slots`), so a few churns reach the last version and retire the slot;
//! `Near` forges keys at versions next to a real key's and next to `u32::MAX`.
//!
//! Graphs: each value holds one link, a key that may be live, stale or null (`Link`).
//! `Transmigrate` copies what some roots reach into a second region and checks that the copy is
//! the reachable graph exactly: one copy per reachable value, equal payloads, links mapped by
//! one injective map (so sharing and cycles are kept), links to absent values null, stale roots
//! null. `Freeze` freezes the region, reads it through a clone (and transmigrates from the
//! clone), then thaws it and goes on.
//!
//! Shared by `fuzz/fuzz_targets/region_ops.rs` and `tests/fuzz_replay.rs`.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use arbitrary::{Arbitrary, Unstructured};
use omni::region::{Key, KeyData, Migrate, Region};

omni::region::new_key_type! {
    /// Key of the fuzzed region.
    pub(crate) struct FuzzKey;
}

/// One operation; `u8` operands pick among the live or stale keys, modulo their number.
#[derive(Arbitrary, Debug)]
pub(crate) enum Op {
    Insert(u16),
    Remove(u8),
    Get(u8),
    GetStale(u8),
    /// A key made up from an index and a version.
    Forged(u32, u32),
    /// A key with the index of a live or stale key and a version near it or near the top.
    Near(u8, i8, bool),
    /// Removes and re-inserts the picked live value this many times (mod 64).
    Churn(u8, u8),
    Clear,
    Retain(u8),
    /// Raises every free slot's version to `u32::MAX - 1 - 2 * (n % 16)`.
    Age(u8),
    /// Sets the picked live value's link to the picked key (live, stale, or null when `None`).
    Link(u8, Option<u8>),
    /// Copies what the picked keys (live or stale) reach into the second region.
    Transmigrate(Vec<u8>),
    /// Empties the second region.
    ClearCopies,
    /// Freezes the region, reads it through a clone, transmigrates from it, and thaws it.
    Freeze(Vec<u8>),
}

/// Stale keys remembered; older ones are forgotten (they are checked while remembered).
const STALE_KEPT: usize = 256;

/// A value that counts its drops.
#[derive(Debug)]
struct Val {
    v: u16,
    link: FuzzKey,
    drops: Rc<Cell<u64>>,
}

impl Migrate<FuzzKey> for Val {
    fn each_key(&self, f: &mut dyn FnMut(FuzzKey)) {
        f(self.link);
    }

    fn migrate(&self, map: &mut dyn FnMut(FuzzKey) -> FuzzKey) -> Self {
        Val { v: self.v, link: map(self.link), drops: self.drops.clone() }
    }
}

impl Drop for Val {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

fn ffi(key: FuzzKey) -> u64 {
    key.data().as_ffi()
}

fn key(ffi: u64) -> FuzzKey {
    KeyData::from_ffi(ffi).into()
}

struct Model {
    region: Region<FuzzKey, Val>,
    /// The transmigrated copies.
    copies: Region<FuzzKey, Val>,
    map: HashMap<u64, u16>,
    /// Each live value's link (absent: null).
    links: HashMap<u64, u64>,
    live: Vec<u64>,
    stale: Vec<u64>,
    drops: Rc<Cell<u64>>,
    made: u64,
}

impl Model {
    fn went_stale(&mut self, k: u64) {
        if self.stale.len() == STALE_KEPT {
            self.stale.swap_remove(k as usize % STALE_KEPT);
        }
        self.stale.push(k);
    }

    fn val(&mut self, v: u16) -> Val {
        self.made += 1;
        Val { v, link: FuzzKey::null(), drops: self.drops.clone() }
    }

    fn insert(&mut self, value: u16) -> u64 {
        let val = self.val(value);
        let k = ffi(self.region.insert(val));
        assert!(!self.stale.contains(&k), "a stale key {k:#x} was handed out again");
        assert!(self.map.insert(k, value).is_none(), "a live key {k:#x} was handed out again");
        assert_eq!(k >> 32 & 1, 1, "a key with an even version {k:#x}");
        self.live.push(k);
        k
    }

    fn remove_at(&mut self, i: usize) {
        let k = self.live.swap_remove(i);
        let got = self.region.remove(key(k)).map(|v| v.v);
        assert_eq!(got, self.map.remove(&k));
        self.links.remove(&k);
        self.went_stale(k);
    }

    fn check_forged(&self, k: u64) {
        // `KeyData::from_ffi` makes the version odd, as slotmap does: compare that key.
        let k = ffi(key(k));
        let want = self.map.get(&k);
        assert_eq!(self.region.get(key(k)).map(|v| &v.v), want, "forged key {k:#x}");
        assert_eq!(self.region.contains_key(key(k)), want.is_some(), "forged key {k:#x}");
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Insert(value) => {
                self.insert(value);
            }
            Op::Remove(pick) if !self.live.is_empty() => {
                self.remove_at(usize::from(pick) % self.live.len());
            }
            Op::Get(pick) if !self.live.is_empty() => {
                let k = self.live[usize::from(pick) % self.live.len()];
                assert_eq!(self.region.get(key(k)).map(|v| &v.v), self.map.get(&k));
            }
            Op::GetStale(pick) if !self.stale.is_empty() => {
                let k = self.stale[usize::from(pick) % self.stale.len()];
                assert!(self.region.get(key(k)).is_none(), "stale key {k:#x} reads a value");
                assert!(self.region.remove(key(k)).is_none(), "stale key {k:#x} removes a value");
            }
            Op::Forged(index, version) => {
                self.check_forged(u64::from(version) << 32 | u64::from(index));
            }
            Op::Near(pick, delta, top) => {
                let all = self.live.len() + self.stale.len();
                if all > 0 {
                    let i = usize::from(pick) % all;
                    let k = if i < self.live.len() {
                        self.live[i]
                    } else {
                        self.stale[i - self.live.len()]
                    };
                    let version = if top {
                        u32::MAX.wrapping_add_signed(i32::from(delta))
                    } else {
                        ((k >> 32) as u32).wrapping_add_signed(i32::from(delta))
                    };
                    self.check_forged(u64::from(version) << 32 | (k & 0xffff_ffff));
                }
            }
            Op::Churn(pick, times) if !self.live.is_empty() => {
                let mut i = usize::from(pick) % self.live.len();
                for _ in 0..usize::from(times % 64) {
                    let value = self.map[&self.live[i]];
                    let link = self.links.get(&self.live[i]).copied();
                    self.remove_at(i);
                    let k = self.insert(value);
                    if let Some(link) = link {
                        self.region[key(k)].link = key(link);
                        self.links.insert(k, link);
                    }
                    i = self.live.len() - 1;
                }
            }
            Op::Clear => {
                self.region.clear();
                self.map.clear();
                self.links.clear();
                for k in std::mem::take(&mut self.live) {
                    self.went_stale(k);
                }
            }
            Op::Retain(modulus) => {
                let modulus = u16::from(modulus) + 1;
                self.region.retain(|_, v| {
                    v.v = v.v.wrapping_add(1);
                    v.v % modulus != 0
                });
                let mut dropped = Vec::new();
                self.map.retain(|k, v| {
                    *v = v.wrapping_add(1);
                    let keep = *v % modulus != 0;
                    if !keep {
                        dropped.push(*k);
                    }
                    keep
                });
                for k in dropped {
                    self.links.remove(&k);
                    self.went_stale(k);
                }
                self.live = self.map.keys().copied().collect();
                self.live.sort_unstable();
            }
            Op::Age(n) => {
                self.region.age_free_slots(u32::MAX - 1 - 2 * u32::from(n % 16));
            }
            Op::Link(from, to) if !self.live.is_empty() => {
                let k = self.live[usize::from(from) % self.live.len()];
                let to = to.map_or(ffi(FuzzKey::null()), |t| self.pick_any(t));
                self.region[key(k)].link = key(to);
                self.links.insert(k, to);
            }
            Op::Transmigrate(picks) => {
                let roots: Vec<u64> = picks.iter().map(|&p| self.pick_any(p)).collect();
                let region = std::mem::take(&mut self.region);
                self.transmigrate(&region, &roots);
                self.region = region;
            }
            Op::ClearCopies => self.copies.clear(),
            Op::Freeze(picks) => {
                let frozen = std::mem::take(&mut self.region).freeze();
                let reader = frozen.clone();
                assert_eq!(reader.len(), self.map.len());
                for (&k, v) in &self.map {
                    assert_eq!(reader.get(key(k)).map(|x| x.v), Some(*v), "frozen read {k:#x}");
                }
                for &k in &self.stale {
                    assert!(reader.get(key(k)).is_none(), "stale key {k:#x} reads when frozen");
                }
                let roots: Vec<u64> = picks.iter().map(|&p| self.pick_any(p)).collect();
                self.transmigrate(&reader, &roots);
                let frozen = frozen.thaw().expect_err("a clone still reads the frozen region");
                drop(reader);
                self.region = frozen.thaw().expect("the last clone thaws");
            }
            Op::Remove(_) | Op::Get(_) | Op::GetStale(_) | Op::Churn(..) | Op::Link(..) => {
                assert!(self.region.get(FuzzKey::null()).is_none());
            }
        }
        assert_eq!(self.region.len(), self.map.len());
        assert_eq!(
            self.made - self.drops.get(),
            (self.map.len() + self.copies.len()) as u64,
            "values dropped twice or never"
        );
        for &k in &self.stale {
            assert!(self.region.get(key(k)).is_none(), "stale key {k:#x} reads a value");
        }
        assert_eq!(self.region.stats().live, self.map.len());
    }

    /// A live or stale key, or null if there is none.
    fn pick_any(&self, pick: u8) -> u64 {
        let all = self.live.len() + self.stale.len();
        if all == 0 {
            return ffi(FuzzKey::null());
        }
        let i = usize::from(pick) % all;
        if i < self.live.len() {
            self.live[i]
        } else {
            self.stale[i - self.live.len()]
        }
    }

    /// Transmigrates `roots` from `from` (the region or a frozen clone of it) into `copies`
    /// and checks the copy against the model's graph.
    fn transmigrate(&mut self, from: &Region<FuzzKey, Val>, roots: &[u64]) {
        let before = self.copies.len();
        let old_copies: Vec<FuzzKey> = self.copies.keys().collect();
        let new_roots =
            from.transmigrate(&roots.iter().map(|&r| key(r)).collect::<Vec<_>>(), &mut self.copies);
        assert_eq!(new_roots.len(), roots.len());

        // Walk the model's graph and the copy side by side; `image` must be one injective map.
        let mut image: HashMap<u64, FuzzKey> = HashMap::new();
        let mut used: HashMap<FuzzKey, u64> = HashMap::new();
        let mut todo: Vec<(u64, FuzzKey)> = roots.iter().copied().zip(new_roots).collect();
        while let Some((src, copy)) = todo.pop() {
            if !self.map.contains_key(&src) {
                assert!(copy.is_null(), "an absent key {src:#x} was copied to {copy:?}");
                continue;
            }
            match image.get(&src) {
                Some(&seen) => {
                    assert_eq!(seen, copy, "{src:#x} copied twice: sharing lost");
                    continue;
                }
                None => {
                    assert!(!old_copies.contains(&copy), "a copy took an old value's key");
                    if let Some(other) = used.insert(copy, src) {
                        panic!("{src:#x} and {other:#x} were copied to one key");
                    }
                    image.insert(src, copy);
                }
            }
            let got = self.copies.get(copy).expect("a copy is live");
            assert_eq!(got.v, self.map[&src], "copy of {src:#x} has another payload");
            let link = self.links.get(&src).copied().unwrap_or(ffi(FuzzKey::null()));
            todo.push((link, got.link));
        }
        assert_eq!(self.copies.len(), before + image.len(), "one copy per reachable value");
        self.made += image.len() as u64;
    }
}

/// Runs one script.
pub(crate) fn run(ops: Vec<Op>) {
    let drops = Rc::new(Cell::new(0));
    let mut model = Model {
        region: Region::new(),
        copies: Region::new(),
        map: HashMap::new(),
        links: HashMap::new(),
        live: Vec::new(),
        stale: Vec::new(),
        drops: drops.clone(),
        made: 0,
    };
    for op in ops {
        model.apply(op);
    }
    let entries: HashMap<u64, u16> = model.region.iter().map(|(k, v)| (ffi(k), v.v)).collect();
    assert_eq!(entries, model.map);
    let made = model.made;
    drop(model);
    assert_eq!(drops.get(), made, "every value is dropped exactly once");
}

/// Decodes a script from fuzzer bytes and runs it.
pub(crate) fn fuzz(data: &[u8]) {
    if let Ok(ops) = Vec::<Op>::arbitrary_take_rest(Unstructured::new(data)) {
        run(ops);
    }
}
