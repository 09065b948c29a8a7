//! `timer_ops`: sleeps inserted, cancelled, reset and polled on the paused clock of a
//! current-thread runtime, against a `BTreeMap` model of deadlines.
//!
//! Deadlines come from a small vocabulary that reaches every level of the timer wheel: in the
//! past, now, a few milliseconds, just before / at / after a level boundary (64^k ms), 2^36 ms
//! and `Duration::MAX` (which saturates to about 30 years). Each sleep is polled by hand with a
//! counting waker of its own, renewed at each reset. Checks, after every step:
//! - never early: a sleep is ready only once the clock has reached its deadline;
//! - never lost: a sleep whose deadline the clock has reached is ready, and if it was parked,
//!   its waker was woken;
//! - never twice: a registration's waker is woken at most once, and a cancelled sleep's or a
//!   reset sleep's old waker never again;
//! - in order: within one `advance`, wakers fire in deadline order.
//!
//! Shared by `fuzz/fuzz_targets/timer_ops.rs` and `tests/fuzz_replay.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};

use arbitrary::{Arbitrary, Unstructured};
use omni::time::{advance, sleep, sleep_until, Duration, Instant, Sleep};

/// The most sleeps alive at once.
const MAX_TIMERS: usize = 64;
/// Where `Instant::far_add` saturates: deadlines and advances cap at now + 30 years.
const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
/// How far the script may move the clock in all. `Sleep` packs its deadline as i64
/// nanoseconds from a process-wide origin (±292 years), so a clock advanced beyond about 260
/// years cannot hold `now + 30 years` any more; the script stays well inside that.
const HORIZON: Duration = Duration::from_secs(86_400 * 365 * 200);

/// A deadline relative to now.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum When {
    /// This many ms ago.
    Past(u16),
    Now,
    /// A few ms ahead.
    Soon(u8),
    /// Any number of ms ahead, up to 2^32.
    Ms(u32),
    /// 64^(level % 7) ms ahead, plus `offset` ms.
    Level(u8, i8),
    /// 2^36 ms ahead, plus `offset` ms.
    Pow36(i8),
    Max,
}

impl When {
    /// The duration ahead of now, or how far back for `Past`.
    fn ahead(self) -> Result<Duration, Duration> {
        let ms = |m: i64| Duration::from_millis(m.max(0) as u64);
        match self {
            When::Past(ms) => Err(Duration::from_millis(u64::from(ms))),
            When::Now => Ok(Duration::ZERO),
            When::Soon(m) => Ok(ms(i64::from(m % 16))),
            When::Ms(m) => Ok(ms(i64::from(m))),
            When::Level(l, off) => Ok(ms(64i64.pow(u32::from(l % 7)) + i64::from(off))),
            When::Pow36(off) => Ok(ms((1i64 << 36) + i64::from(off))),
            When::Max => Ok(Duration::MAX),
        }
    }
}

/// One step; `u8` operands pick a live sleep modulo their number.
#[derive(Arbitrary, Debug)]
pub(crate) enum Op {
    /// A new sleep (via `sleep` when `by_duration`, else `sleep_until`), polled once.
    Insert(When, bool),
    Cancel(u8),
    /// Resets a sleep and polls it once.
    Reset(u8, When),
    /// Advances the paused clock (`Max` and `Past` advance by nothing).
    Advance(When),
    /// Polls every live sleep.
    PollAll,
    /// Yields to the runtime, which may move the paused clock to the next deadline when idle.
    Yield,
}

/// A waker that counts its wakes and logs them in one shared order.
struct Count {
    id: u64,
    wakes: Mutex<u32>,
    log: Arc<Mutex<Vec<(u64, usize)>>>,
}

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        *self.wakes.lock().unwrap() += 1;
        self.log.lock().unwrap().push((self.id, Arc::as_ptr(self) as usize));
    }
}

impl Count {
    fn wakes(&self) -> u32 {
        *self.wakes.lock().unwrap()
    }
}

struct Timer {
    sleep: Pin<Box<Sleep>>,
    /// The waker of this registration epoch (renewed at insert and each reset).
    count: Arc<Count>,
    /// Polled pending in this epoch.
    parked: bool,
    /// Seen ready in this epoch.
    done: bool,
}

/// Wakers that must never be woken again, with their wake counts when they were retired.
type Retired = Vec<(Arc<Count>, u32)>;

struct Model {
    timers: BTreeMap<u64, Timer>,
    /// The model: live sleep id to deadline.
    deadlines: BTreeMap<u64, Instant>,
    retired: Retired,
    /// Every wake: sleep id and which registration's waker.
    log: Arc<Mutex<Vec<(u64, usize)>>>,
    next_id: u64,
    /// The clock when the script began.
    start: Instant,
}

impl Model {
    fn count(&mut self, id: u64) -> Arc<Count> {
        Arc::new(Count { id, wakes: Mutex::new(0), log: self.log.clone() })
    }

    fn deadline(now: Instant, when: When) -> Instant {
        match when.ahead() {
            Ok(d) => now.checked_add(d.min(FAR)).unwrap_or(now),
            Err(back) => now.checked_sub(back).unwrap_or(now),
        }
    }

    fn retire(&mut self, count: Arc<Count>) {
        let n = count.wakes();
        self.retired.push((count, n));
        if self.retired.len() > 4 * MAX_TIMERS {
            self.retired.remove(0);
        }
    }

    /// Polls one sleep with its epoch's waker and checks the result against the model.
    fn poll(&mut self, id: u64) {
        let now = Instant::now();
        let deadline = self.deadlines[&id];
        let t = self.timers.get_mut(&id).unwrap();
        if t.done {
            return;
        }
        let waker = Waker::from(t.count.clone());
        let ready = t.sleep.as_mut().poll(&mut Context::from_waker(&waker)).is_ready();
        assert_eq!(t.sleep.is_elapsed(), now >= deadline, "is_elapsed of sleep {id}");
        if ready {
            assert!(now >= deadline, "sleep {id} ready {:?} early", deadline - now);
            t.done = true;
        } else {
            assert!(now < deadline, "sleep {id} pending {:?} after its deadline", now - deadline);
            t.parked = true;
        }
    }

    fn apply(&mut self, op: Op) -> Option<Duration> {
        let now = Instant::now();
        match op {
            Op::Insert(when, by_duration) => {
                if self.timers.len() >= MAX_TIMERS {
                    return None;
                }
                let id = self.next_id;
                self.next_id += 1;
                let deadline = Self::deadline(now, when);
                let s = match (when.ahead(), by_duration) {
                    (Ok(d), true) => sleep(d),
                    _ => sleep_until(deadline),
                };
                assert_eq!(s.deadline(), deadline, "deadline of sleep {id} ({when:?})");
                let count = self.count(id);
                let t = Timer { sleep: Box::pin(s), count, parked: false, done: false };
                self.timers.insert(id, t);
                self.deadlines.insert(id, deadline);
                self.poll(id);
            }
            Op::Cancel(pick) if !self.timers.is_empty() => {
                let id = *self.timers.keys().nth(usize::from(pick) % self.timers.len()).unwrap();
                let t = self.timers.remove(&id).unwrap();
                self.deadlines.remove(&id);
                drop(t.sleep);
                self.retire(t.count);
            }
            Op::Reset(pick, when) if !self.timers.is_empty() => {
                let id = *self.timers.keys().nth(usize::from(pick) % self.timers.len()).unwrap();
                let deadline = Self::deadline(now, when);
                let fresh = self.count(id);
                let t = self.timers.get_mut(&id).unwrap();
                t.sleep.as_mut().reset(deadline);
                assert_eq!(t.sleep.deadline(), deadline);
                let old = std::mem::replace(&mut t.count, fresh);
                t.parked = false;
                t.done = false;
                self.deadlines.insert(id, deadline);
                self.retire(old);
                self.poll(id);
            }
            Op::Advance(when) => {
                let left = HORIZON.saturating_sub(now - self.start);
                return Some(match when.ahead() {
                    Ok(d) if d <= left => d,
                    _ => Duration::ZERO,
                });
            }
            Op::Cancel(_) | Op::Reset(..) | Op::PollAll | Op::Yield => {}
        }
        None
    }

    /// After the clock moved from `before` to now: the wakes since `mark` in the log came in
    /// deadline order, every parked sleep now due was woken once, and retired wakers stayed
    /// quiet.
    fn check_fired(&mut self, mark: usize) {
        let now = Instant::now();
        let log = self.log.lock().unwrap()[mark..].to_vec();
        let mut last: Option<Instant> = None;
        for (id, epoch) in &log {
            let Some(&d) = self.deadlines.get(id) else { continue };
            if Arc::as_ptr(&self.timers[id].count) as usize != *epoch {
                continue; // a retired waker of a live sleep (checked below)
            }
            if let Some(last) = last {
                assert!(d >= last, "sleep {id} (deadline {d:?}) woken after a later one");
            }
            last = Some(d);
        }
        for (id, t) in &self.timers {
            let due = now >= self.deadlines[id];
            let wakes = t.count.wakes();
            assert!(wakes <= 1, "sleep {id} woken {wakes} times in one registration");
            if t.parked && !t.done && due {
                assert_eq!(wakes, 1, "sleep {id} is due but its waker was never woken");
            }
            if !due {
                assert_eq!(wakes, 0, "sleep {id} woken before its deadline");
            }
        }
        for (c, n) in &self.retired {
            assert_eq!(c.wakes(), *n, "a cancelled or reset registration of sleep {} fired", c.id);
        }
    }
}

/// Runs one script on a fresh paused current-thread runtime.
pub(crate) fn run(ops: Vec<Op>) {
    let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
    rt.block_on(async {
        let mut m = Model {
            timers: BTreeMap::new(),
            deadlines: BTreeMap::new(),
            retired: Vec::new(),
            log: Arc::new(Mutex::new(Vec::new())),
            next_id: 0,
            start: Instant::now(),
        };
        for op in ops {
            let poll_all = matches!(op, Op::PollAll | Op::Advance(_) | Op::Yield);
            let yield_now = matches!(op, Op::Yield);
            let mark = m.log.lock().unwrap().len();
            if let Some(d) = m.apply(op) {
                advance(d).await;
            } else if yield_now {
                omni::yield_now().await;
            }
            m.check_fired(mark);
            if poll_all {
                let ids: Vec<u64> = m.timers.keys().copied().collect();
                for id in ids {
                    m.poll(id);
                }
                // A fresh cooperative budget for the next step.
                omni::yield_now().await;
            }
        }
        let ids: Vec<u64> = m.timers.keys().copied().collect();
        for id in ids {
            m.poll(id);
        }
        let mark = m.log.lock().unwrap().len();
        m.check_fired(mark);
    });
}

/// Decodes a script from fuzzer bytes and runs it.
pub(crate) fn fuzz(data: &[u8]) {
    if let Ok(ops) = Vec::<Op>::arbitrary_take_rest(Unstructured::new(data)) {
        run(ops);
    }
}

/// The script that `data` decodes to, for reading a crash reproducer.
pub(crate) fn describe(data: &[u8]) -> String {
    format!("{:#?}", Vec::<Op>::arbitrary_take_rest(Unstructured::new(data)))
}
