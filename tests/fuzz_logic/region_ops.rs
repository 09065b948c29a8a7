//! `region_ops`: `omni::region::Region` against a `HashMap` model.
//!
//! Checks: every live key reads its value, stale keys (removed, cleared, retained away) read as
//! absent and are never handed out again, forged keys (any index, any version, including
//! versions near `u32::MAX`) read only the value they name exactly, `len` and iteration agree
//! with the model, and every value is dropped exactly once (a drop counter per value).
//!
//! Generations: `Churn` removes and re-inserts in one slot many times, pushing that slot's
//! version up, and `Near` forges keys at versions next to a real key's and next to `u32::MAX`.
//! The only way to start a slot near `u32::MAX` is `Region::set_vacant_version`, which is
//! `#[cfg(test)] pub(super)`: the crate's own unit tests reach it (`src/region/tests.rs`,
//! `slot_is_retired_when_its_version_would_wrap`), a fuzz target cannot. So wrap-around itself
//! (2^31 reuses of one slot) is out of reach here.
//!
//! Shared by `fuzz/fuzz_targets/region_ops.rs` and `tests/fuzz_replay.rs`.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use arbitrary::{Arbitrary, Unstructured};
use omni::region::{Key, KeyData, Region};

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
}

/// Stale keys remembered; older ones are forgotten (they are checked while remembered).
const STALE_KEPT: usize = 256;

/// A value that counts its drops.
#[derive(Debug)]
struct Val {
    v: u16,
    drops: Rc<Cell<u64>>,
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
    map: HashMap<u64, u16>,
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
        Val { v, drops: self.drops.clone() }
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
                    self.remove_at(i);
                    self.insert(value);
                    i = self.live.len() - 1;
                }
            }
            Op::Clear => {
                self.region.clear();
                self.map.clear();
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
                    self.went_stale(k);
                }
                self.live = self.map.keys().copied().collect();
                self.live.sort_unstable();
            }
            Op::Remove(_) | Op::Get(_) | Op::GetStale(_) | Op::Churn(..) => {
                assert!(self.region.get(FuzzKey::null()).is_none());
            }
        }
        assert_eq!(self.region.len(), self.map.len());
        assert_eq!(
            self.made - self.drops.get(),
            self.map.len() as u64,
            "values dropped twice or never"
        );
        for &k in &self.stale {
            assert!(self.region.get(key(k)).is_none(), "stale key {k:#x} reads a value");
        }
    }
}

/// Runs one script.
pub(crate) fn run(ops: Vec<Op>) {
    let drops = Rc::new(Cell::new(0));
    let mut model = Model {
        region: Region::new(),
        map: HashMap::new(),
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
