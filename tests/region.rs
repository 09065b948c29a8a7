//! Black-box tests of `omni::region`: a model test against a `HashMap`, and pinned values.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomPinned;
use std::pin::Pin;

use omni::region::{Key, KeyData, PinRegion, Region};

omni::region::new_key_type! {
    /// Key of the model region.
    struct ModelKey;
}

/// xorshift64*: small, deterministic, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn ffi(key: ModelKey) -> u64 {
    key.data().as_ffi()
}

fn key(ffi: u64) -> ModelKey {
    KeyData::from_ffi(ffi).into()
}

/// The region under test and its reference, checked against each other after every step.
struct Model {
    region: Region<ModelKey, u64>,
    map: HashMap<u64, u64>,
    /// Live keys, for picking one at random.
    live: Vec<u64>,
    /// Every key that has gone stale; versions never wrap, so none may come back.
    stale: HashSet<u64>,
    /// The most recent stale keys, checked after every step (all of them are checked at the end).
    recent_stale: Vec<u64>,
    most_live: usize,
    /// Steps run of each kind: insert, remove, get, stale get, clear, retain, null get.
    ran: [usize; 7],
}

impl Model {
    fn new() -> Self {
        Model {
            region: Region::new(),
            map: HashMap::new(),
            live: Vec::new(),
            stale: HashSet::new(),
            recent_stale: Vec::new(),
            most_live: 0,
            ran: [0; 7],
        }
    }

    fn went_stale(&mut self, k: u64) {
        assert!(self.stale.insert(k), "key {k:#x} went stale twice");
        if self.recent_stale.len() == 128 {
            self.recent_stale.swap_remove(k as usize % 128);
        }
        self.recent_stale.push(k);
    }

    fn rebuild_live(&mut self) {
        self.live = self.map.keys().copied().collect();
        self.live.sort_unstable();
    }

    /// One random step. `growing` tilts the odds toward inserts, so live sets get large enough to
    /// fill the fixed-size chunks; otherwise toward removals, so slots get reused.
    fn step(&mut self, rng: &mut Rng, growing: bool) {
        let (inserts, removes) = if growing { (7_000, 8_000) } else { (2_500, 7_500) };
        let roll = rng.below(10_000);
        let kind = match roll {
            _ if roll < inserts => {
                let value = rng.next();
                let k = if value % 2 == 0 {
                    self.region.insert(value)
                } else {
                    let mut seen = None;
                    let k = self.region.insert_with_key(|k| {
                        seen = Some(k);
                        value
                    });
                    assert_eq!(seen, Some(k), "insert_with_key passes the key it returns");
                    k
                };
                assert!(!self.stale.contains(&ffi(k)), "a stale key was handed out again");
                assert!(
                    self.map.insert(ffi(k), value).is_none(),
                    "a live key was handed out again"
                );
                self.live.push(ffi(k));
                self.most_live = self.most_live.max(self.map.len());
                0
            }
            _ if roll < removes && !self.live.is_empty() => {
                let k = self.live.swap_remove(rng.below(self.live.len()));
                assert_eq!(self.region.remove(key(k)), self.map.remove(&k));
                assert_eq!(self.region.remove(key(k)), None);
                self.went_stale(k);
                1
            }
            _ if roll < 9_000 && !self.live.is_empty() => {
                let k = self.live[rng.below(self.live.len())];
                assert_eq!(self.region.get(key(k)), self.map.get(&k));
                assert_eq!(self.region[key(k)], self.map[&k]);
                if rng.next() % 4 == 0 {
                    let bump = rng.next();
                    *self.region.get_mut(key(k)).unwrap() ^= bump;
                    *self.map.get_mut(&k).unwrap() ^= bump;
                }
                2
            }
            _ if roll < 9_970 && !self.recent_stale.is_empty() => {
                let k = self.recent_stale[rng.below(self.recent_stale.len())];
                assert_eq!(self.region.get(key(k)), None);
                assert_eq!(self.region.get_mut(key(k)), None);
                assert_eq!(self.region.remove(key(k)), None);
                3
            }
            9_970..=9_972 => {
                self.region.clear();
                for k in std::mem::take(&mut self.live) {
                    self.went_stale(k);
                }
                self.map.clear();
                4
            }
            9_973..=9_982 => {
                let modulus = 2 + rng.next() % 30;
                let mut visited = Vec::new();
                self.region.retain(|k, v| {
                    visited.push(ffi(k));
                    *v = v.wrapping_add(1);
                    *v % modulus != 0
                });
                visited.sort_unstable();
                let mut expected: Vec<_> = self.map.keys().copied().collect();
                expected.sort_unstable();
                assert_eq!(visited, expected, "retain visits every value once");
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
                self.rebuild_live();
                5
            }
            _ => {
                let k = ffi(ModelKey::null());
                assert_eq!(self.region.get(key(k)), None);
                6
            }
        };
        self.ran[kind] += 1;
        self.check_step();
    }

    fn check_step(&self) {
        assert_eq!(self.region.len(), self.map.len());
        assert_eq!(self.region.is_empty(), self.map.is_empty());
        for &k in &self.recent_stale {
            assert_eq!(self.region.get(key(k)), None, "stale key {k:#x} reads a value");
        }
        // Slots are reused: the region never holds many more slots than values it ever held.
        assert!(self.region.capacity() <= 2 * self.most_live + 4096);
    }

    fn check_all(&self) {
        for &k in &self.stale {
            assert!(!self.region.contains_key(key(k)), "stale key {k:#x} reads a value");
        }
        let entries: HashMap<u64, u64> = self.region.iter().map(|(k, v)| (ffi(k), *v)).collect();
        assert_eq!(entries, self.map);
        assert_eq!(self.region.iter().len(), self.map.len());
        let keys: Vec<_> = self.region.keys().map(ffi).collect();
        let indices: Vec<_> = keys.iter().map(|k| *k as u32).collect();
        assert!(indices.windows(2).all(|w| w[0] < w[1]), "iteration is in slot order");
        let values: Vec<_> = self.region.values().copied().collect();
        let by_key: Vec<_> = keys.iter().map(|k| self.map[k]).collect();
        assert_eq!(values, by_key);
        let stats = self.region.stats();
        assert_eq!(
            (stats.live, stats.slots, stats.retired),
            (self.map.len(), self.region.capacity(), 0)
        );
    }
}

#[test]
fn model_random_operations_match_a_hashmap() {
    for seed in [1, 2, 0x9e37_79b9_7f4a_7c15, 0xdead_beef, 12_345] {
        let mut rng = Rng(seed);
        let mut model = Model::new();
        for n in 0..20_000 {
            model.step(&mut rng, n / 8_000 % 2 == 0);
            if n % 1000 == 999 {
                model.check_all();
            }
        }
        model.check_all();
        eprintln!("seed {seed:#x}: steps by kind {:?}, most live {}", model.ran, model.most_live);
        assert!(model.ran.iter().all(|&n| n > 0), "every kind of step ran: {:?}", model.ran);
    }
}

#[test]
fn model_keys_from_a_cleared_region_stay_stale() {
    let mut region: Region<ModelKey, u32> = Region::new();
    let old: Vec<_> = (0..100).map(|n| region.insert(n)).collect();
    region.clear();
    let new: Vec<_> = (0..100).map(|n| region.insert(n + 100)).collect();
    assert_eq!(region.capacity(), 112, "cleared slots are reused");
    for (o, n) in old.iter().zip(&new) {
        assert!(region.get(*o).is_none());
        assert_ne!(o, n);
    }
    assert_eq!(region.values().sum::<u32>(), (100..200).sum());
}

/// A value that must not move: it records its address when pinned and checks it when dropped.
struct SelfAware {
    pinned_at: usize,
    log: std::rc::Rc<std::cell::RefCell<Vec<(usize, usize)>>>,
    _pin: PhantomPinned,
}

impl SelfAware {
    fn pin_here(self: Pin<&mut Self>) {
        let address = &*self as *const Self as usize;
        // SAFETY: `pinned_at` is plain data, not structurally pinned; nothing is moved.
        unsafe { self.get_unchecked_mut().pinned_at = address };
    }
}

impl Drop for SelfAware {
    fn drop(&mut self) {
        self.log.borrow_mut().push((self.pinned_at, self as *const Self as usize));
    }
}

#[test]
fn pin_region_keeps_unpin_less_values_in_place_until_dropped() {
    let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut region: PinRegion<ModelKey, SelfAware> = PinRegion::new();
    let make = || SelfAware { pinned_at: 0, log: log.clone(), _pin: PhantomPinned };
    let keys: Vec<_> = (0..100).map(|_| region.insert(make())).collect();
    for &k in &keys {
        region.get_pin_mut(k).unwrap().pin_here();
    }
    for _ in 0..5_000 {
        region.insert(make()); // grow: many new chunks
    }
    for &k in &keys {
        let value = region.get(k).unwrap();
        assert_eq!(value.pinned_at, value as *const SelfAware as usize);
    }
    for &k in keys.iter().step_by(2) {
        assert!(region.delete(k));
        assert!(!region.delete(k));
        assert!(region.get_pin_mut(k).is_none());
    }
    assert_eq!(log.borrow().len(), 50);
    let reused = region.insert(make());
    assert!(!keys.contains(&reused), "a deleted key is never handed out again");
    assert_eq!(region.len(), 5_051);
    drop(region);
    let log = log.borrow();
    assert_eq!(log.len(), 5_101, "every value dropped exactly once");
    for &(pinned_at, dropped_at) in log.iter().filter(|(pinned_at, _)| *pinned_at != 0) {
        assert_eq!(pinned_at, dropped_at, "a pinned value was moved before its drop");
    }
    assert_eq!(log.iter().filter(|(pinned_at, _)| *pinned_at != 0).count(), 100);
}

#[test]
fn region_types_are_send_and_sync_when_values_are() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Region<ModelKey, Vec<u8>>>();
    send_sync::<PinRegion<ModelKey, Vec<u8>>>();
    send_sync::<ModelKey>();
}
