//! `omni::time` through the public API: sleeps, timeouts, intervals and the paused clock.
//! Every test that checks *when* something happens runs on a paused clock; the few tests on the
//! real clock only check that nothing fires early, never how fast anything is.

use omni::time::{
    advance, interval, pause, resume, sleep, sleep_until, timeout, Duration, Instant,
    MissedTickBehavior,
};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

fn paused() -> omni::Runtime {
    omni::Builder::new_current_thread().start_paused(true).build().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn sleep_takes_exactly_its_duration_on_the_paused_clock() {
    paused().block_on(async {
        let start = Instant::now();
        sleep(Duration::from_secs(3600)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3600));
        sleep(ms(0)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3600), "a zero sleep takes no time");
    });
}

#[test]
fn sleepers_wake_in_deadline_order_at_their_deadlines() {
    let log = Rc::new(RefCell::new(Vec::new()));
    paused().block_on({
        let log = log.clone();
        async move {
            let start = Instant::now();
            // Deadlines around the wheel's level boundaries (64^k ms), shuffled.
            let delays = [4096u64, 1, 63, 262_144, 64, 0, 65, 4095, 4097, 262_143, 5];
            let hs: Vec<_> = delays
                .iter()
                .map(|&d| {
                    let log = log.clone();
                    omni::spawn_local(async move {
                        sleep(ms(d)).await;
                        log.borrow_mut().push((d, start.elapsed()));
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        }
    });
    let log = log.borrow();
    let mut sorted = log.clone();
    sorted.sort();
    assert_eq!(*log, sorted, "woken in deadline order");
    for &(d, at) in log.iter() {
        assert_eq!(at, ms(d), "woken exactly at its deadline on the paused clock");
    }
}

#[test]
fn deadlines_years_ahead_and_duration_max_do_not_overflow() {
    paused().block_on(async {
        let start = Instant::now();
        let years = Duration::from_secs(86_400 * 365 * 3); // past the wheel's 2^36 ms
        sleep(years).await;
        assert_eq!(start.elapsed(), years);
        assert!(timeout(ms(10), sleep(Duration::MAX)).await.is_err());
        assert!(timeout(Duration::MAX, async { 1 }).await.is_ok());
    });
}

#[test]
fn a_deadline_in_the_past_completes_on_the_first_poll() {
    paused().block_on(async {
        let past = Instant::now();
        advance(ms(5)).await;
        let t = Instant::now();
        sleep_until(past).await;
        assert_eq!(Instant::now(), t);
    });
}

struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn timeout_returns_the_value_or_elapsed_and_drops_the_loser() {
    let drops = Arc::new(AtomicUsize::new(0));
    paused().block_on({
        let drops = drops.clone();
        async move {
            assert_eq!(timeout(ms(100), async { 7 }).await, Ok(7));
            let guard = DropCount(drops.clone());
            let start = Instant::now();
            let r = timeout(ms(100), async move {
                let _g = guard;
                sleep(ms(1000)).await;
            })
            .await;
            assert!(r.is_err());
            assert_eq!(start.elapsed(), ms(100));
            assert_eq!(drops.load(SeqCst), 1, "the timed-out future was dropped");
        }
    });
}

#[test]
fn a_ready_future_wins_over_an_elapsed_deadline() {
    paused().block_on(async {
        let r = timeout(ms(0), async { "ready" }).await;
        assert_eq!(r, Ok("ready"));
    });
}

#[test]
fn sleep_reset_moves_the_deadline_both_ways() {
    paused().block_on(async {
        let start = Instant::now();
        let mut s = sleep(ms(500));
        // Register it, then move it earlier.
        assert!(timeout(ms(10), &mut s).await.is_err());
        s.reset(start + ms(50));
        (&mut s).await;
        assert_eq!(start.elapsed(), ms(50));
        // Reset after it fired: it waits again.
        s.reset(start + ms(300));
        assert!(!s.is_elapsed());
        (&mut s).await;
        assert_eq!(start.elapsed(), ms(300));
    });
}

#[test]
fn dropping_sleeps_cancels_their_timers() {
    paused().block_on(async {
        let start = Instant::now();
        for i in 0..10_000u64 {
            let mut s = sleep(ms(1 + i % 100));
            // Poll once so it is registered, then drop it.
            assert!(futures_poll_once(&mut s).is_pending());
        }
        // With every timer cancelled, the next sleep is the only deadline: the paused clock
        // jumps straight to it.
        sleep(ms(1000)).await;
        assert_eq!(start.elapsed(), ms(1000));
    });
}

fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
    // A waker that does nothing: the runtime's timer still records it, then the sleep is
    // dropped.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    std::pin::Pin::new(f).poll(&mut cx)
}

#[test]
fn interval_ticks_on_schedule_and_bursts_after_a_stall() {
    paused().block_on(async {
        let start = Instant::now();
        let mut i = interval(ms(100));
        let mut at = Vec::new();
        for _ in 0..3 {
            at.push(i.tick().await - start);
        }
        assert_eq!(at, [ms(0), ms(100), ms(200)]);
        // Stall for 350 ms (now 550): Burst fires the missed ticks at once, keeping the phase.
        advance(ms(350)).await;
        let mut got = Vec::new();
        for _ in 0..4 {
            let t = i.tick().await - start;
            got.push((t, Instant::now() - start));
        }
        assert_eq!(
            got,
            [(ms(300), ms(550)), (ms(400), ms(550)), (ms(500), ms(550)), (ms(600), ms(600))]
        );
    });
}

#[test]
fn interval_delay_and_skip_policies() {
    for (policy, expect) in [
        (MissedTickBehavior::Delay, [ms(100), ms(450), ms(550)]),
        (MissedTickBehavior::Skip, [ms(100), ms(400), ms(500)]),
    ] {
        paused().block_on(async move {
            let start = Instant::now();
            let mut i = interval(ms(100));
            i.set_missed_tick_behavior(policy);
            i.tick().await; // at 0
            advance(ms(350)).await;
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push(i.tick().await - start);
            }
            assert_eq!(got, expect, "{policy:?}");
        });
    }
}

#[test]
fn pause_advance_resume_inside_a_running_runtime() {
    omni::block_on(async {
        pause();
        let t0 = Instant::now();
        let sleeper = omni::spawn(sleep(Duration::from_secs(5)));
        omni::yield_now().await; // let it register
        advance(Duration::from_secs(4)).await;
        assert!(!sleeper.is_finished());
        advance(Duration::from_secs(1)).await;
        assert!(sleeper.is_finished());
        assert_eq!(t0.elapsed(), Duration::from_secs(5));
        resume();
        assert!(Instant::now() >= t0 + Duration::from_secs(5), "time runs on from the pause");
    });
}

#[test]
fn auto_advance_waits_for_running_blocking_jobs() {
    paused().block_on(async {
        // While the job runs (on real time), the paused clock must not jump to the time-out.
        let job = omni::spawn_blocking(|| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            5
        });
        let r = timeout(Duration::from_secs(1), job).await;
        assert_eq!(r.expect("the clock jumped while a blocking job ran").unwrap(), 5);
    });
}

#[test]
fn real_clock_sleeps_never_end_early() {
    omni::block_on(async {
        for d in [0u64, 1, 2, 3] {
            let start = std::time::Instant::now();
            sleep(ms(d)).await;
            assert!(start.elapsed() >= ms(d), "a {d} ms sleep ended early");
        }
    });
}

#[test]
fn sleeps_on_a_multi_thread_runtime_fire_from_the_workers() {
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    let fired = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let hs: Vec<_> = (0..200u64)
            .map(|i| {
                let fired = fired.clone();
                omni::spawn(async move {
                    let start = std::time::Instant::now();
                    sleep(ms(i % 4)).await;
                    assert!(start.elapsed() >= ms(i % 4), "fired early");
                    fired.fetch_add(1, SeqCst);
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        // The block_on thread's own sleep is served by the workers too.
        sleep(ms(2)).await;
    });
    assert_eq!(fired.load(SeqCst), 200);
}

#[test]
fn misuse_is_reported_clearly() {
    let err = omni::Builder::new_multi_thread().workers(1).start_paused(true).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("start_paused needs a current-thread runtime"));
    let p = std::panic::catch_unwind(|| futures_poll_once(&mut sleep(ms(1)))).unwrap_err();
    let msg = p.downcast_ref::<String>().map(String::as_str).or(p.downcast_ref::<&str>().copied());
    assert!(msg.unwrap().contains("Sleep polled outside an omni runtime"), "{msg:?}");
    let rt = omni::Builder::new_multi_thread().workers(1).build().unwrap();
    let h = rt.spawn(async { pause() });
    let msg = *rt.block_on(h).unwrap_err().into_panic().downcast::<&str>().unwrap();
    assert!(msg.contains("pause needs a current-thread runtime"), "{msg}");
}

#[test]
fn hot_time_types_stay_small() {
    // A task parked on a sleep fits the 64-byte task slot class (32-byte header + 32).
    assert_eq!(std::mem::size_of::<omni::time::Sleep>(), 24);
    assert_eq!(std::mem::size_of::<Instant>(), 16);
}

#[test]
fn sleep_and_interval_are_send_sync_and_unpin() {
    fn check<T: Send + Sync + Unpin>() {}
    check::<omni::time::Sleep>();
    check::<omni::time::Interval>();
    check::<omni::time::Timeout<std::future::Ready<()>>>();
}

#[test]
fn timers_dropped_while_they_fire_on_other_threads_are_safe() {
    // Each timeout's inner sleep and its deadline fall in the same millisecond, so the driver
    // (on one worker) fires entries that their owners (on another) are dropping.
    let rt = omni::Builder::new_multi_thread().workers(2).build().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let hs: Vec<_> = (0..2_000u64)
            .map(|i| {
                let done = done.clone();
                omni::spawn(async move {
                    let d = ms(i % 3);
                    let _ = timeout(d, sleep(d)).await;
                    done.fetch_add(1, SeqCst);
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    });
    assert_eq!(done.load(SeqCst), 2_000);
}
