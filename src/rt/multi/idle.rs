//! Which workers sleep, and how many search for work: waking idle workers without lost
//! wake-ups and without a thundering herd.
//!
//! One word packs two counts: `searching` (workers looking for work to steal; low 16 bits) and
//! `unparked` (workers not asleep; the rest). The ids of sleeping workers sit in a list under a
//! lock, which only the slow paths take.
//!
//! Rules (the protocol of Go's `wakep` and tokio's `idle.rs`):
//! - New work (a push to a local ring or the injector) wakes a sleeper only if *nobody*
//!   searches and someone sleeps: a searching worker will find the work, and as soon as a
//!   searcher finds some it wakes a successor ([`Idle::transition_from_searching`] returning
//!   true), so work spreads one worker at a time instead of waking them all.
//! - At most half the workers search at once.
//! - A worker about to sleep gives up its counts under the lock; the *last* searcher to do so
//!   then looks at every queue once more before sleeping ([`Idle::transition_to_parked`]
//!   returning true). Either that look sees a push, or the pusher's check (after a `SeqCst`
//!   fence) sees no searcher and wakes someone: the two are ordered by the `SeqCst` operations
//!   on the word, so a wake-up is never lost.

use crate::loom::{fence, AtomicUsize, Mutex, Ordering::SeqCst};

const SEARCH_BITS: usize = 16;
const SEARCH_MASK: usize = (1 << SEARCH_BITS) - 1;
const UNPARK_ONE: usize = 1 << SEARCH_BITS;

/// Idle bookkeeping of one multi-thread runtime.
pub(crate) struct Idle {
    state: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
    workers: usize,
}

fn searching(s: usize) -> usize {
    s & SEARCH_MASK
}

fn unparked(s: usize) -> usize {
    s >> SEARCH_BITS
}

impl Idle {
    /// All `workers` start unparked and not searching.
    pub(crate) fn new(workers: usize) -> Idle {
        assert!(workers <= SEARCH_MASK, "omni: at most {SEARCH_MASK} workers");
        Idle {
            state: AtomicUsize::new(workers * UNPARK_ONE),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            workers,
        }
    }

    fn lock(&self) -> crate::loom::MutexGuard<'_, Vec<usize>> {
        self.sleepers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called after pushing work. Returns the id of a sleeping worker that the caller must
    /// unpark (it now counts as searching), or `None` if someone searches or nobody sleeps.
    pub(crate) fn worker_to_notify(&self) -> Option<usize> {
        // Orders the caller's push before the look at the counts (see the module doc).
        fence(SeqCst);
        if !self.should_notify() {
            return None;
        }
        let mut sleepers = self.lock();
        if !self.should_notify() {
            return None;
        }
        let id = sleepers.pop()?;
        self.state.fetch_add(UNPARK_ONE + 1, SeqCst);
        Some(id)
    }

    fn should_notify(&self) -> bool {
        let s = self.state.load(SeqCst);
        searching(s) == 0 && unparked(s) < self.workers
    }

    /// A worker with nothing to do wants to search. Refused when half the workers already do.
    pub(crate) fn transition_to_searching(&self) -> bool {
        self.state
            .fetch_update(SeqCst, SeqCst, |s| (2 * searching(s) < self.workers).then_some(s + 1))
            .is_ok()
    }

    /// A searching worker found work. Returns true if it was the last searcher: it must then
    /// wake another worker (if any sleeps) to keep searching for the rest.
    pub(crate) fn transition_from_searching(&self) -> bool {
        let prev = self.state.fetch_sub(1, SeqCst);
        debug_assert!(searching(prev) > 0);
        searching(prev) == 1
    }

    /// Worker `id` goes to sleep (`searching`: whether it was searching). Returns true if it
    /// was the last searcher: it must look at every queue once more before sleeping.
    pub(crate) fn transition_to_parked(&self, id: usize, searching_now: bool) -> bool {
        let mut sleepers = self.lock();
        let dec = UNPARK_ONE + usize::from(searching_now);
        let prev = self.state.fetch_sub(dec, SeqCst);
        sleepers.push(id);
        drop(sleepers);
        // Orders the count change before the caller's last look at the queues.
        fence(SeqCst);
        searching_now && searching(prev) == 1
    }

    /// Whether every worker is parked (none unparked).
    pub(crate) fn all_parked(&self) -> bool {
        unparked(self.state.load(SeqCst)) == 0
    }

    /// Worker `id` woke up. If it is still listed as sleeping (it was unparked directly, for a
    /// pinned task or shutdown, not by [`Idle::worker_to_notify`]), it takes itself off the list
    /// and counts as unparked but not searching: returns false. Returns true if a notifier
    /// already took it off the list: it counts as searching.
    pub(crate) fn transition_from_parked(&self, id: usize) -> bool {
        let mut sleepers = self.lock();
        if let Some(i) = sleepers.iter().position(|&s| s == id) {
            sleepers.swap_remove(i);
            self.state.fetch_add(UNPARK_ONE, SeqCst);
            false
        } else {
            true
        }
    }

    /// (searching, unparked), for `Debug`.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let s = self.state.load(SeqCst);
        (searching(s), unparked(s))
    }
}

impl std::fmt::Debug for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, u) = self.counts();
        f.debug_struct("Idle").field("searching", &s).field("unparked", &u).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_protocol() {
        let idle = Idle::new(4);
        assert_eq!(idle.worker_to_notify(), None, "nobody sleeps");
        assert!(idle.transition_to_searching());
        assert!(idle.transition_to_searching());
        assert!(!idle.transition_to_searching(), "at most half the workers search");
        assert!(!idle.transition_to_parked(0, true), "another searcher remains");
        assert!(idle.transition_to_parked(1, true), "the last searcher re-checks");
        assert_eq!(idle.counts(), (0, 2));
        assert_eq!(idle.worker_to_notify(), Some(1), "the most recent sleeper is woken");
        assert_eq!(idle.counts(), (1, 3));
        assert_eq!(idle.worker_to_notify(), None, "one searcher is enough");
        assert!(idle.transition_from_parked(1), "worker 1 was notified: it searches");
        assert!(!idle.transition_from_parked(0), "worker 0 woke on its own");
        assert_eq!(idle.counts(), (1, 4));
        assert!(idle.transition_from_searching());
        assert_eq!(idle.counts(), (0, 4));
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use crate::rt::park::Parker;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::atomic::AtomicUsize as Count;
    use loom::sync::Arc;

    /// The park protocol of a worker (see `worker.rs`), over a queue of `work` items. The
    /// worker that takes an item sets `done` and releases the other, as shutdown would.
    fn worker(id: usize, idle: &Idle, parkers: &[Parker], work: &Count, done: &AtomicBool) {
        let mut searching = idle.transition_to_searching();
        loop {
            if done.load(SeqCst) {
                return;
            }
            let n = work.load(SeqCst);
            if n > 0 && work.compare_exchange(n, n - 1, SeqCst, SeqCst).is_ok() {
                if searching {
                    idle.transition_from_searching();
                }
                done.store(true, SeqCst);
                for p in parkers {
                    p.unpark();
                }
                return;
            }
            if idle.transition_to_parked(id, searching) && work.load(SeqCst) > 0 {
                if let Some(w) = idle.worker_to_notify() {
                    parkers[w].unpark();
                }
            }
            parkers[id].park();
            searching = idle.transition_from_parked(id);
        }
    }

    /// A push racing two workers going to sleep: the item is always taken (a lost wake-up
    /// would leave both asleep, which loom reports as a deadlock).
    #[test]
    fn loom_push_wakes_a_parking_worker() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let idle = Arc::new(Idle::new(2));
            let parkers = Arc::new(vec![Parker::new(), Parker::new()]);
            let work = Arc::new(Count::new(0));
            let done = Arc::new(AtomicBool::new(false));
            let workers: Vec<_> = (0..2)
                .map(|id| {
                    let (idle, parkers, work, done) =
                        (idle.clone(), parkers.clone(), work.clone(), done.clone());
                    loom::thread::spawn(move || worker(id, &idle, &parkers, &work, &done))
                })
                .collect();
            // The pusher.
            work.fetch_add(1, SeqCst);
            if let Some(w) = idle.worker_to_notify() {
                parkers[w].unpark();
            }
            for w in workers {
                w.join().unwrap();
            }
            assert_eq!(work.load(SeqCst), 0);
        });
    }

    /// Shutdown reaching a worker that is going to sleep: the flag, then an unpark, always
    /// brings it out.
    #[test]
    fn loom_shutdown_reaches_a_parking_worker() {
        loom::model(|| {
            let idle = Arc::new(Idle::new(1));
            let parkers = Arc::new(vec![Parker::new()]);
            let shutdown = Arc::new(AtomicBool::new(false));
            let w = {
                let (idle, parkers, shutdown) = (idle.clone(), parkers.clone(), shutdown.clone());
                loom::thread::spawn(move || {
                    while !shutdown.load(SeqCst) {
                        idle.transition_to_parked(0, false);
                        parkers[0].park();
                        idle.transition_from_parked(0);
                    }
                })
            };
            shutdown.store(true, SeqCst);
            parkers[0].unpark();
            w.join().unwrap();
        });
    }
}
