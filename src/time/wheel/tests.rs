//! Unit tests for the timer wheel: boundaries, far deadlines, huge jumps, past deadlines, order,
//! stale keys, reset, memory reuse, panics in `fire`, sizes. The random model test is in `model`.

use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;

use super::level::{level_for, slot_for, slot_start, LEVELS, SLOTS};
use super::{Entry, Removed, TimerKey, TimerState, Wheel};

/// Advances to `now` and returns the payloads fired, in order.
fn fire<T>(wheel: &mut Wheel<T>, now: u64) -> Vec<T> {
    let mut out = Vec::new();
    let count = wheel.advance(now, |_, payload| out.push(payload));
    assert_eq!(count, out.len());
    out
}

/// Deadlines at every level boundary `64^k` and one either side, for `k` in `0..=10`.
fn boundaries() -> Vec<u64> {
    let mut out = vec![0, 1, 2];
    for k in 1..LEVELS as u32 {
        let b = 64u64.pow(k);
        out.extend([b - 1, b, b + 1]);
    }
    out.extend([1 << 36, (1 << 36) - 1, 1 << 40, u64::MAX / 2, u64::MAX - 1, u64::MAX]);
    out
}

#[test]
fn empty_wheel() {
    let mut wheel: Wheel<()> = Wheel::new();
    assert_eq!((wheel.elapsed(), wheel.len(), wheel.next_deadline()), (0, 0, None));
    assert!(wheel.is_empty());
    assert_eq!(fire(&mut wheel, 1 << 40), []);
    assert_eq!(wheel.elapsed(), 1 << 40);
}

#[test]
fn slot_arithmetic_covers_all_of_u64() {
    assert_eq!(LEVELS, 11);
    assert_eq!(level_for(0, 0), 0);
    assert_eq!(level_for(0, 63), 0);
    assert_eq!(level_for(0, 64), 1);
    assert_eq!(level_for(63, 64), 1);
    assert_eq!(level_for(64, 127), 0);
    assert_eq!(level_for(0, (1 << 36) - 1), 5);
    assert_eq!(level_for(0, 1 << 36), 6);
    assert_eq!(level_for(0, u64::MAX), 10);
    assert_eq!(slot_for(u64::MAX, 10), 15);
    assert_eq!(slot_start(0, 10, 15), 15 << 60);
    assert_eq!(slot_start(u64::MAX, 0, SLOTS - 1), u64::MAX);
    assert_eq!(slot_start(4100, 1, 3), 4096 + 3 * 64);
}

#[test]
fn every_boundary_fires_exactly_when_due_from_zero() {
    for deadline in boundaries() {
        let mut wheel = Wheel::new();
        let key = wheel.insert(deadline, deadline);
        if deadline > 0 {
            assert_eq!(fire(&mut wheel, deadline - 1), [], "deadline {deadline} fired early");
            assert_eq!(wheel.state(key), Some(TimerState::Pending));
        }
        assert_eq!(fire(&mut wheel, deadline), [deadline], "deadline {deadline}");
        assert_eq!(wheel.state(key), Some(TimerState::Fired));
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.next_deadline(), None);
    }
}

#[test]
fn every_boundary_fires_exactly_when_due_relative_to_elapsed() {
    for start in [1u64, 63, 64, 4095, 4097, (1 << 36) - 1, 1 << 36, 3 << 40] {
        for delay in boundaries() {
            let Some(deadline) = start.checked_add(delay) else { continue };
            let mut wheel = Wheel::new();
            fire(&mut wheel, start);
            wheel.insert(deadline, ());
            if deadline > start {
                assert_eq!(fire(&mut wheel, deadline - 1).len(), 0, "{start} + {delay} early");
            }
            assert_eq!(fire(&mut wheel, deadline).len(), 1, "{start} + {delay}");
        }
    }
}

#[test]
fn next_deadline_is_a_lower_bound_that_always_makes_progress() {
    for deadline in boundaries() {
        let mut wheel = Wheel::new();
        wheel.insert(deadline, ());
        let mut wakeups = 0;
        loop {
            let bound = wheel.next_deadline().expect("the entry is pending");
            assert!(bound <= deadline);
            assert!(bound >= wheel.elapsed());
            wakeups += 1;
            if fire(&mut wheel, bound).len() == 1 {
                assert_eq!(bound, deadline);
                break;
            }
            assert!(wheel.next_deadline() > Some(bound), "no progress at {bound}");
        }
        assert!(wakeups <= LEVELS, "{deadline}: {wakeups} wake-ups");
    }
}

#[test]
fn next_deadline_is_exact_within_the_current_64_ms() {
    let mut wheel = Wheel::new();
    fire(&mut wheel, 100);
    wheel.insert(127, ());
    assert_eq!(wheel.next_deadline(), Some(127));
    wheel.insert(101, ());
    assert_eq!(wheel.next_deadline(), Some(101));
    wheel.insert(3, ());
    assert_eq!(wheel.next_deadline(), Some(100), "a past deadline is due now");
}

#[test]
fn huge_jumps_skip_empty_slots() {
    let mut wheel = Wheel::new();
    for deadline in [5, 1 << 20, 1 << 36, 1 << 37, (1 << 37) + 1] {
        wheel.insert(deadline, deadline);
    }
    assert_eq!(fire(&mut wheel, 1 << 37), [5, 1 << 20, 1 << 36, 1 << 37]);
    assert_eq!(wheel.elapsed(), 1 << 37);
    assert!(wheel.visits <= 4 * LEVELS, "visited {} slots", wheel.visits);
    assert_eq!(wheel.next_deadline(), Some((1 << 37) + 1));

    // All the way to the end of time: at most one visit per level per entry.
    let mut wheel = Wheel::new();
    wheel.insert(u64::MAX, 1);
    wheel.insert(u64::MAX / 2, 0);
    assert_eq!(fire(&mut wheel, u64::MAX - 1), [0]);
    assert_eq!(fire(&mut wheel, u64::MAX), [1]);
    assert!(wheel.visits <= 2 * LEVELS, "visited {} slots", wheel.visits);
    assert_eq!(fire(&mut wheel, u64::MAX), []);
    assert_eq!(wheel.elapsed(), u64::MAX);
}

#[test]
fn past_deadlines_fire_at_the_next_advance_in_insertion_order() {
    let mut wheel = Wheel::new();
    fire(&mut wheel, 1000);
    let late = wheel.insert(1001, "later");
    wheel.insert(999, "past");
    wheel.insert(0, "zero");
    let now = wheel.insert(1000, "now");
    assert_eq!(wheel.deadline(now), Some(1000));
    assert_eq!(wheel.deadline(late), Some(1001));
    assert_eq!(wheel.len(), 4);
    // Time does not go back: an advance to the past only fires what is due at `elapsed`.
    assert_eq!(fire(&mut wheel, 10), ["past", "zero", "now"]);
    assert_eq!(wheel.elapsed(), 1000);
    assert_eq!(fire(&mut wheel, 1001), ["later"]);

    // A reset into the past behaves the same.
    let key = wheel.insert(5000, "reset");
    assert!(wheel.reset(key, 3));
    assert_eq!(wheel.deadline(key), Some(1001));
    assert_eq!(fire(&mut wheel, 1001), ["reset"]);
}

#[test]
fn fire_order_is_by_deadline_then_insertion_across_levels() {
    let mut wheel = Wheel::new();
    // The same deadlines inserted at different times land at different levels first.
    let mut expected = Vec::new();
    let mut seq = 0;
    for step in [0, 1, 63, 64, 100, 4095, 4096, 4100, 4159] {
        fire(&mut wheel, step);
        for deadline in [4160, 4200, 4159 + 64] {
            if deadline >= step {
                wheel.insert(deadline, (deadline, seq));
                expected.push((deadline, seq));
                seq += 1;
            }
        }
    }
    expected.sort();
    assert_eq!(fire(&mut wheel, 1 << 20), expected);
}

#[test]
fn cancel_from_the_middle_of_a_slot_keeps_the_rest_in_order() {
    let mut wheel = Wheel::new();
    let keys: Vec<TimerKey> = (0..5).map(|i| wheel.insert(300, i)).collect();
    assert_eq!(wheel.remove(keys[2]), Some(Removed::Cancelled(2)));
    assert_eq!(wheel.remove(keys[0]), Some(Removed::Cancelled(0)));
    assert_eq!(wheel.remove(keys[4]), Some(Removed::Cancelled(4)));
    assert_eq!(wheel.len(), 2);
    assert_eq!(fire(&mut wheel, 300), [1, 3]);
}

#[test]
fn reset_moves_a_pending_entry_and_refuses_a_fired_one() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(10, 'a');
    let b = wheel.insert(10, 'b');
    assert!(wheel.reset(a, 10), "a reset to the same deadline moves it behind");
    assert_eq!(fire(&mut wheel, 10), ['b', 'a']);
    assert!(!wheel.reset(a, 20), "a fired entry is not re-armed");
    assert_eq!(wheel.state(a), Some(TimerState::Fired));
    assert_eq!(wheel.deadline(a), Some(10));

    let c = wheel.insert(1 << 30, 'c');
    assert!(wheel.reset(c, 12));
    assert_eq!(fire(&mut wheel, 11), []);
    assert!(wheel.reset(c, (1 << 40) + 5), "later again");
    assert_eq!(wheel.next_deadline(), Some(1 << 40), "a lower bound: the level-6 slot's start");
    assert_eq!(fire(&mut wheel, (1 << 40) + 4), []);
    assert_eq!(wheel.next_deadline(), Some((1 << 40) + 5), "exact once moved to level 0");
    assert_eq!(fire(&mut wheel, (1 << 40) + 5), ['c']);
    let _ = b;
}

#[test]
fn stale_keys_after_remove_fire_and_reuse() {
    let mut wheel = Wheel::new();
    let cancelled = wheel.insert(5, "cancelled");
    assert_eq!(wheel.remove(cancelled), Some(Removed::Cancelled("cancelled")));
    for _ in 0..2 {
        assert_eq!(wheel.state(cancelled), None);
        assert_eq!(wheel.deadline(cancelled), None);
        assert_eq!(wheel.payload_mut(cancelled), None);
        assert!(!wheel.reset(cancelled, 7));
        assert_eq!(wheel.remove(cancelled), None);
    }

    let fired = wheel.insert(5, "fired");
    assert_eq!(fire(&mut wheel, 5), ["fired"]);
    assert_eq!(wheel.state(fired), Some(TimerState::Fired));
    assert_eq!(wheel.payload_mut(fired), None, "the payload was handed out");
    assert_eq!(wheel.stats().fired, 1);
    assert_eq!(wheel.remove(fired), Some(Removed::Fired));
    assert_eq!(wheel.remove(fired), None);
    assert_eq!(wheel.state(fired), None);

    // The slot is reused by a new entry; the old keys do not reach it.
    let fresh = wheel.insert(9, "fresh");
    assert_eq!(wheel.entries.capacity(), 16, "still the first chunk");
    for stale in [cancelled, fired] {
        assert_ne!(stale, fresh);
        assert_eq!(wheel.state(stale), None);
        assert!(!wheel.reset(stale, 100));
        assert_eq!(wheel.remove(stale), None);
    }
    assert_eq!(wheel.payload_mut(fresh), Some(&mut "fresh"));
    *wheel.payload_mut(fresh).unwrap() = "replaced";
    assert_eq!(fire(&mut wheel, 9), ["replaced"]);
}

#[test]
fn memory_is_reused() {
    let mut wheel = Wheel::new();
    for i in 0..10_000u64 {
        let key = wheel.insert(i * 7919 % 100_000, i);
        assert_eq!(wheel.remove(key), Some(Removed::Cancelled(i)));
    }
    assert_eq!(wheel.stats().entries.slots, 16, "one chunk, reused");

    let mut capacity = None;
    for round in 0..3u64 {
        let keys: Vec<TimerKey> = (0..10_000).map(|i| wheel.insert(round * 1000 + i, i)).collect();
        let bound = *capacity.get_or_insert(wheel.stats().entries.slots);
        assert_eq!(wheel.stats().entries.slots, bound, "round {round} allocated again");
        assert_eq!(wheel.len(), 10_000);
        // Fire half, cancel the rest, release all.
        assert_eq!(wheel.advance(round * 1000 + 4999, |_, _| {}), 5000);
        for key in keys {
            wheel.remove(key).expect("fired or pending");
        }
        let stats = wheel.stats();
        assert_eq!((stats.pending, stats.fired, stats.entries.live), (0, 0, 0));
    }
}

#[test]
fn a_panicking_fire_callback_loses_nothing() {
    let mut wheel = Wheel::new();
    for i in 0..4 {
        wheel.insert(50, i);
    }
    wheel.insert(60, 4);
    let mut seen = Vec::new();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        wheel.advance(100, |_, i| {
            seen.push(i);
            assert_ne!(i, 1, "boom");
        })
    }));
    assert!(result.is_err());
    assert_eq!(seen, [0, 1]);
    assert_eq!(wheel.len(), 3);
    assert_eq!(wheel.next_deadline(), Some(50));
    assert_eq!(fire(&mut wheel, 100), [2, 3, 4]);
}

#[test]
fn sizes() {
    assert_eq!(std::mem::size_of::<TimerKey>(), 8);
    assert_eq!(std::mem::size_of::<Option<TimerKey>>(), 8);
    assert_eq!(std::mem::size_of::<Entry<Waker>>(), 32, "deadline, two 4-byte links, a waker");
    assert_eq!(
        std::mem::size_of::<Entry<std::num::NonZeroU64>>(),
        24,
        "with the driver's 8-byte waker"
    );
    let mut wheel: Wheel<Waker> = Wheel::new();
    let keys: Vec<TimerKey> = (0..4096).map(|i| wheel.insert(i, Waker::noop().clone())).collect();
    let stats = wheel.stats();
    // A region slot is the entry plus its version and tag; the region's chunk slack comes on top.
    let per_slot = stats.entries.bytes / stats.entries.slots;
    assert!(per_slot <= 40, "{per_slot} heap bytes per entry slot");
    assert!(stats.bytes - stats.entries.bytes <= 12 * 1024, "the fixed table of slot lists");
    for key in keys {
        wheel.remove(key);
    }
}

#[test]
fn debug_shows_clock_and_counts() {
    let mut wheel = Wheel::new();
    wheel.insert(70, ());
    let shown = format!("{wheel:?}");
    assert!(shown.contains("elapsed: 0") && shown.contains("pending: 1"), "{shown}");
    assert!(shown.contains("next_deadline: Some(64)"), "{shown}");
    assert!(format!("{:?}", wheel.levels[1]).contains("0b"));
}
