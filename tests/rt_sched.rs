//! Scheduling policy: FIFO fairness, yield order, the bounded LIFO slot, the cooperative
//! budget.

use omni::cont::{suspend, Cont};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

#[test]
fn two_yielding_tasks_alternate() {
    let log = Rc::new(RefCell::new(Vec::new()));
    omni::block_on({
        let log = log.clone();
        async move {
            let mk = |name: char| {
                let log = log.clone();
                omni::spawn_local(async move {
                    for _ in 0..5 {
                        log.borrow_mut().push(name);
                        omni::yield_now().await;
                    }
                })
            };
            let (a, b) = (mk('a'), mk('b'));
            a.await.unwrap();
            b.await.unwrap();
        }
    });
    let s: String = log.borrow().iter().collect();
    assert_eq!(s, "ababababab");
}

#[test]
fn spawned_tasks_run_in_fifo_order() {
    let log = Rc::new(RefCell::new(Vec::new()));
    omni::block_on({
        let log = log.clone();
        async move {
            let hs: Vec<_> = (0..50)
                .map(|i| {
                    let log = log.clone();
                    omni::spawn_local(async move { log.borrow_mut().push(i) })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        }
    });
    assert_eq!(*log.borrow(), (0..50).collect::<Vec<_>>());
}

/// Two tasks resuming each other forever would monopolise a pure LIFO scheduler; the LIFO
/// bound makes them queue behind a third task regularly.
#[test]
fn continuation_ping_pong_cannot_starve_a_third_task() {
    const ROUNDS: u64 = 10_000;
    let third_ran_at = Rc::new(Cell::new(None));
    let progress = Rc::new(Cell::new(0u64));
    omni::block_on({
        let (third_ran_at, progress) = (third_ran_at.clone(), progress.clone());
        async move {
            type Slot = Rc<Cell<Option<Cont<u64>>>>;
            let (pa, pb): (Slot, Slot) = (Rc::default(), Rc::default());
            let player = |me: Slot, other: Slot, park_first: bool, progress: Rc<Cell<u64>>| async move {
                let mut v =
                    if park_first { suspend(|k| me.set(Some(k))).await.unwrap() } else { 0 };
                loop {
                    progress.set(v);
                    if v >= ROUNDS {
                        if let Some(k) = other.take() {
                            let _ = k.resume(v);
                        }
                        return;
                    }
                    v = suspend(|k| {
                        me.set(Some(k));
                        other.take().expect("partner parked").resume(v + 1).unwrap();
                    })
                    .await
                    .unwrap();
                }
            };
            let a = omni::spawn_local(player(pa.clone(), pb.clone(), true, progress.clone()));
            let b = omni::spawn_local(player(pb, pa, false, progress.clone()));
            let p = progress.clone();
            let third = omni::spawn_local(async move {
                omni::yield_now().await;
                third_ran_at.set(Some(p.get()));
            });
            a.await.unwrap();
            b.await.unwrap();
            third.await.unwrap();
        }
    });
    let at = third_ran_at.get().expect("third task ran");
    assert!(at < 100, "the third task waited for {at} ping-pong rounds");
    assert_eq!(progress.get(), ROUNDS);
}

/// A task that only awaits ready futures still returns to the scheduler once its budget is
/// spent, so other tasks run in between.
#[test]
fn budget_stops_an_always_ready_task_from_starving_others() {
    omni::block_on(async {
        let flag = Rc::new(Cell::new(false));
        let f2 = flag.clone();
        let ready: Vec<_> = (0..1000).map(|i| omni::spawn_local(async move { i })).collect();
        omni::yield_now().await; // all 1000 complete
        let greedy = omni::spawn_local(async move {
            let mut saw_flag_at = None;
            for (n, h) in ready.into_iter().enumerate() {
                h.await.unwrap();
                if saw_flag_at.is_none() && f2.get() {
                    saw_flag_at = Some(n);
                }
            }
            saw_flag_at
        });
        let setter = omni::spawn_local(async move { flag.set(true) });
        let at = greedy.await.unwrap().expect("the other task ran while greedy joined");
        assert!(at <= 200, "the other task waited for {at} ready joins");
        setter.await.unwrap();
    });
}

#[test]
#[allow(clippy::async_yields_async)] // the task returns the bystander's handle on purpose
fn a_task_woken_by_the_running_task_runs_next() {
    let log = Rc::new(RefCell::new(String::new()));
    omni::block_on({
        let log = log.clone();
        async move {
            let slot: Rc<Cell<Option<Cont<()>>>> = Rc::default();
            let s2 = slot.clone();
            let l2 = log.clone();
            let waiter = omni::spawn_local(async move {
                suspend(|k| s2.set(Some(k))).await.unwrap();
                l2.borrow_mut().push('w');
            });
            let l3 = log.clone();
            let s3 = slot.clone();
            let waker_task = omni::spawn_local(async move {
                omni::yield_now().await;
                let l4 = l3.clone();
                let bystander = omni::spawn_local(async move { l4.borrow_mut().push('b') });
                s3.take().expect("parked").resume(()).unwrap();
                l3.borrow_mut().push('r');
                bystander
            });
            waiter.await.unwrap();
            waker_task.await.unwrap().await.unwrap();
        }
    });
    // The resumed waiter runs right after the resumer's poll, before the bystander spawned
    // earlier in that same poll.
    assert_eq!(*log.borrow(), "rwb");
}
