//! Fuzz `omni::region::Region` against a `HashMap` model, as `tests/region.rs` does with a PRNG.
//!
//! Run with `cargo fuzz run region_ops` from the repository root.

#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use omni::region::{Key, KeyData, Region};

omni::region::new_key_type! {
    /// Key of the fuzzed region.
    struct FuzzKey;
}

/// One operation; `u8` operands pick among the live or stale keys, modulo their number.
#[derive(Arbitrary, Debug)]
enum Op {
    Insert(u16),
    Remove(u8),
    Get(u8),
    GetStale(u8),
    Clear,
    Retain(u8),
}

/// Stale keys remembered; older ones are forgotten (they are checked while remembered).
const STALE_KEPT: usize = 256;

fn ffi(key: FuzzKey) -> u64 {
    key.data().as_ffi()
}

fn key(ffi: u64) -> FuzzKey {
    KeyData::from_ffi(ffi).into()
}

struct Model {
    region: Region<FuzzKey, u16>,
    map: HashMap<u64, u16>,
    live: Vec<u64>,
    stale: Vec<u64>,
}

impl Model {
    fn went_stale(&mut self, k: u64) {
        if self.stale.len() == STALE_KEPT {
            self.stale.swap_remove(k as usize % STALE_KEPT);
        }
        self.stale.push(k);
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Insert(value) => {
                let k = ffi(self.region.insert(value));
                assert!(!self.stale.contains(&k), "a stale key was handed out again");
                assert!(self.map.insert(k, value).is_none(), "a live key was handed out again");
                self.live.push(k);
            }
            Op::Remove(pick) if !self.live.is_empty() => {
                let k = self.live.swap_remove(usize::from(pick) % self.live.len());
                assert_eq!(self.region.remove(key(k)), self.map.remove(&k));
                self.went_stale(k);
            }
            Op::Get(pick) if !self.live.is_empty() => {
                let k = self.live[usize::from(pick) % self.live.len()];
                assert_eq!(self.region.get(key(k)), self.map.get(&k));
            }
            Op::GetStale(pick) if !self.stale.is_empty() => {
                let k = self.stale[usize::from(pick) % self.stale.len()];
                assert_eq!(self.region.get(key(k)), None);
                assert_eq!(self.region.remove(key(k)), None);
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
                    *v = v.wrapping_add(1);
                    *v % modulus != 0
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
            Op::Remove(_) | Op::Get(_) | Op::GetStale(_) => {
                assert_eq!(self.region.get(FuzzKey::null()), None);
            }
        }
        assert_eq!(self.region.len(), self.map.len());
        for &k in &self.stale {
            assert_eq!(self.region.get(key(k)), None, "stale key {k:#x} reads a value");
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut model =
        Model { region: Region::new(), map: HashMap::new(), live: Vec::new(), stale: Vec::new() };
    for op in ops {
        model.apply(op);
    }
    let entries: HashMap<u64, u16> = model.region.iter().map(|(k, v)| (ffi(k), *v)).collect();
    assert_eq!(entries, model.map);
});
