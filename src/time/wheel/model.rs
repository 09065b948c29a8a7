//! The wheel's acceptance test: random operation sequences checked against a reference model, a
//! `BTreeMap` ordered by (deadline, insertion sequence).
//!
//! Deadlines are drawn to land on and around the level boundaries (`64^k` ms, `k` in `0..=6`, and
//! one either side, both absolute and relative to `elapsed`), at 0 and in the past, at 2^36 and
//! beyond up to `u64::MAX`, and at small random offsets. Advances step by a little, to a boundary,
//! exactly to (and one either side of) the next deadline, to the wheel's own `next_deadline`,
//! backwards, and by huge jumps. After every advance the test checks that exactly the due entries
//! fired, each once, in (deadline, insertion) order, and that `next_deadline` is the documented
//! lower bound: the start of the earliest entry's slot.

use std::collections::BTreeMap;

use super::level::level_for;
use super::{Removed, TimerKey, TimerState, Wheel};

/// Seeds run by the test; each runs `OPS` operations.
const SEEDS: [u64; 8] = [1, 2, 3, 0xdead_beef, 0x5eed, 42, 7_777_777, u64::MAX / 3];
/// Operations per seed.
const OPS: usize = 10_000;

/// xorshift64*: a tiny deterministic PRNG, enough to shuffle operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `items`.
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// `64^k + delta` for a random `k` in `0..=6` and `delta` in `-1..=1` (never below 0).
    fn boundary(&mut self) -> u64 {
        let k = self.below(7) as u32;
        (64u64.pow(k) + self.below(3)) - 1
    }
}

/// The model's record of one timer.
struct Timer {
    key: TimerKey,
    /// (deadline, sequence) while pending; `None` once fired.
    pending: Option<(u64, u64)>,
}

/// The reference: what should be pending, in firing order, and every timer not yet removed.
struct Model {
    wheel: Wheel<usize>,
    rng: Rng,
    /// Pending timers by (effective deadline, sequence) to their id.
    queue: BTreeMap<(u64, u64), usize>,
    /// Live timers (pending or fired, not removed) by id; removed ones are `None`.
    timers: Vec<Option<Timer>>,
    /// Ids of live timers, to pick from.
    live: Vec<usize>,
    /// Keys of removed timers, to probe for staleness.
    stale: Vec<TimerKey>,
    /// Next insertion sequence number.
    seq: u64,
}

impl Model {
    fn new(seed: u64) -> Model {
        Model {
            wheel: Wheel::new(),
            // splitmix64's increment, so that nearby seeds give unrelated non-zero states.
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            queue: BTreeMap::new(),
            timers: Vec::new(),
            live: Vec::new(),
            stale: Vec::new(),
            seq: 0,
        }
    }

    /// A deadline from the mix described in the module docs.
    fn draw_deadline(&mut self) -> u64 {
        let elapsed = self.wheel.elapsed();
        let rng = &mut self.rng;
        match rng.below(12) {
            0 => {
                let fixed = [0, 1, 1 << 36, (1 << 36) - 1, 1 << 40, u64::MAX / 2, u64::MAX];
                let b = rng.boundary();
                rng.pick(&fixed).max(b * rng.below(2))
            }
            1 => elapsed - rng.below(elapsed.min(1000) + 1),
            2..=5 => elapsed.saturating_add(rng.below(200)),
            6..=8 => elapsed.saturating_add(rng.boundary()),
            9 => elapsed.saturating_add(rng.pick(&[1 << 36, (1 << 36) + 1, 1 << 40, 1 << 50])),
            10 => elapsed.saturating_add(rng.next() >> rng.below(64)),
            _ => {
                // Just around the next multiple of 64^k: where coarse slots cascade.
                let unit = 64u64.pow(rng.below(7) as u32);
                let next = (elapsed / unit).saturating_add(1).saturating_mul(unit);
                next.saturating_add(rng.below(3)).saturating_sub(1)
            }
        }
    }

    /// Where the next advance goes. Jumps that chase a deadline stop at 2^38 ms ahead, so a run
    /// spends its time with far deadlines pending rather than at the end of time.
    fn draw_now(&mut self) -> u64 {
        const CHASE: u64 = 1 << 38;
        let elapsed = self.wheel.elapsed();
        let near = |at: Option<u64>| at.filter(|&at| at - elapsed <= CHASE);
        let first_due = near(self.queue.keys().next().map(|&(deadline, _)| deadline));
        let bound = near(self.wheel.next_deadline());
        let rng = &mut self.rng;
        match rng.below(10) {
            0..=2 => elapsed.saturating_add(rng.below(100)),
            3 => elapsed.saturating_add(rng.boundary()),
            4 | 5 => match first_due {
                Some(due) => due.saturating_add(rng.below(3)).saturating_sub(1),
                None => elapsed.saturating_add(rng.boundary()),
            },
            6 => bound.unwrap_or(elapsed),
            7 => elapsed.saturating_add(rng.pick(&[1 << 30, 1 << 37, 1 << 40])),
            8 => elapsed.saturating_add(rng.next() >> (24 + rng.below(40))),
            _ => elapsed.saturating_sub(rng.below(100)),
        }
    }

    fn insert(&mut self) {
        let deadline = self.draw_deadline();
        let due = deadline.max(self.wheel.elapsed());
        let id = self.timers.len();
        let key = self.wheel.insert(deadline, id);
        assert_eq!(self.wheel.deadline(key), Some(due));
        self.queue.insert((due, self.seq), id);
        self.timers.push(Some(Timer { key, pending: Some((due, self.seq)) }));
        self.live.push(id);
        self.seq += 1;
    }

    fn remove(&mut self) {
        if self.live.is_empty() {
            return;
        }
        let id = self.live.swap_remove(self.rng.below(self.live.len() as u64) as usize);
        let timer = self.timers[id].take().expect("live");
        let expected = match timer.pending {
            Some(at) => {
                self.queue.remove(&at);
                Removed::Cancelled(id)
            }
            None => Removed::Fired,
        };
        assert_eq!(self.wheel.remove(timer.key), Some(expected));
        self.stale.push(timer.key);
    }

    fn reset(&mut self) {
        if self.live.is_empty() {
            return;
        }
        let id = self.rng.pick(&self.live);
        let deadline = self.draw_deadline();
        let due = deadline.max(self.wheel.elapsed());
        let timer = self.timers[id].as_mut().expect("live");
        let moved = self.wheel.reset(timer.key, deadline);
        assert_eq!(moved, timer.pending.is_some(), "reset succeeds exactly when pending");
        if let Some(at) = timer.pending {
            self.queue.remove(&at);
            self.queue.insert((due, self.seq), id);
            timer.pending = Some((due, self.seq));
            self.seq += 1;
        }
    }

    fn probe(&mut self) {
        if !self.live.is_empty() {
            let id = self.rng.pick(&self.live);
            let timer = self.timers[id].as_ref().expect("live");
            let state =
                if timer.pending.is_some() { TimerState::Pending } else { TimerState::Fired };
            assert_eq!(self.wheel.state(timer.key), Some(state));
            assert_eq!(self.wheel.payload_mut(timer.key).copied(), timer.pending.map(|_| id));
        }
        if !self.stale.is_empty() {
            let key = self.rng.pick(&self.stale);
            assert_eq!(self.wheel.state(key), None);
            assert_eq!(self.wheel.payload_mut(key), None);
            assert!(!self.wheel.reset(key, 5));
            assert_eq!(self.wheel.remove(key), None);
        }
    }

    fn advance(&mut self, now: u64) {
        let limit = now.max(self.wheel.elapsed());
        let due = match limit.checked_add(1) {
            Some(after) => {
                let later = self.queue.split_off(&(after, 0));
                std::mem::replace(&mut self.queue, later)
            }
            None => std::mem::take(&mut self.queue),
        };
        let mut fired = Vec::new();
        let timers = &self.timers;
        self.wheel.advance(now, |key, id| {
            let timer = timers[id].as_ref().expect("a removed timer fired");
            assert_eq!(key, timer.key);
            fired.push(id);
        });
        let expected: Vec<usize> = due.values().copied().collect();
        assert_eq!(fired, expected, "advance to {now} (limit {limit})");
        for id in fired {
            self.timers[id].as_mut().expect("live").pending = None;
        }
        assert_eq!(self.wheel.elapsed(), limit);
        self.check_next_deadline();
    }

    /// `next_deadline` is the start of the earliest pending entry's slot: exact at level 0,
    /// rounded down to a multiple of `64^l` at level `l`.
    fn check_next_deadline(&self) {
        let elapsed = self.wheel.elapsed();
        let expected = self.queue.keys().next().map(|&(first, _)| {
            let level = level_for(elapsed, first) as u32;
            first & !(64u64.pow(level) - 1)
        });
        assert_eq!(self.wheel.next_deadline(), expected, "elapsed {elapsed}");
    }

    fn run(&mut self, ops: usize) {
        for _ in 0..ops {
            match self.rng.below(20) {
                0..=6 => self.insert(),
                7..=9 => self.remove(),
                10..=12 => self.reset(),
                13 => self.probe(),
                _ => {
                    // The end of time, rarely: everything fires, later inserts are all past.
                    let now = if self.rng.below(4000) == 0 { u64::MAX } else { self.draw_now() };
                    self.advance(now);
                }
            }
            assert_eq!(self.wheel.len(), self.queue.len());
        }
        // Drain: advancing to each lower bound in turn fires everything, in order.
        while let Some(bound) = self.wheel.next_deadline() {
            self.advance(bound);
        }
        assert!(self.queue.is_empty());
        for id in std::mem::take(&mut self.live) {
            let key = self.timers[id].take().expect("live").key;
            assert_eq!(self.wheel.remove(key), Some(Removed::Fired));
        }
        assert_eq!(self.wheel.stats().entries.live, 0);
    }
}

#[test]
fn wheel_matches_the_reference_model() {
    for seed in SEEDS {
        let mut model = Model::new(seed);
        model.run(OPS);
        // Each seed must exercise the wheel, not idle in an empty one.
        assert!(model.seq > OPS as u64 / 4, "seed {seed}: {} inserts", model.seq);
    }
}
