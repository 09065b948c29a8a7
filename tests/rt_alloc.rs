//! Zero heap allocations per `spawn_local` + join in steady state, for futures of up to 128
//! bytes: task slots are reused from the pool's free lists, wakers are keys, continuations use
//! recycled cells. This binary counts allocations per thread (`tests/common/alloc_count.rs`).

#[path = "common/alloc_count.rs"]
mod alloc_count;

use alloc_count::during as measure;

async fn round(n: usize) -> u64 {
    let mut hs = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let payload = [i; 15]; // 120 bytes captured, plus the state byte: a ~128-byte future
        hs.push(omni::spawn_local(async move {
            omni::yield_now().await;
            payload.iter().sum::<u64>()
        }));
    }
    let mut sum = 0;
    for h in hs {
        sum += h.await.unwrap();
    }
    sum
}

async fn cont_round(n: usize) {
    use omni::cont::{suspend, Cont};
    use std::cell::Cell;
    use std::rc::Rc;
    let slot: Rc<Cell<Option<Cont<u64>>>> = Rc::new(Cell::new(None));
    let s2 = slot.clone();
    let waiter = omni::spawn_local(async move {
        let mut total = 0;
        for _ in 0..n {
            total += suspend(|k| s2.set(Some(k))).await.unwrap();
        }
        total
    });
    for i in 0..n as u64 {
        omni::yield_now().await;
        slot.take().expect("waiter parked").resume(i).unwrap();
    }
    assert_eq!(waiter.await.unwrap(), (0..n as u64).sum::<u64>());
}

#[test]
fn steady_state_spawn_join_and_resume_allocate_nothing() {
    fn future_size<F: std::future::Future>(_: &F) -> usize {
        std::mem::size_of::<F>()
    }
    let payload = [0u64; 15];
    let probe = async move {
        omni::yield_now().await;
        payload.iter().sum::<u64>()
    };
    let size = future_size(&probe);
    assert!(size <= 128, "the test future should be at most 128 bytes, is {size}");
    drop(probe);

    let rt = omni::Runtime::new().unwrap();
    rt.block_on(async {
        // Warm up: grows the run queue, the pool's chunks and free lists, the cell pool.
        round(2000).await;
        cont_round(100).await;
        let mut hs = Vec::with_capacity(2000);
        let allocs = measure(|| {
            // Spawn + join inside the measured region, with the handle vector preallocated.
            for i in 0..2000u64 {
                let payload = [i; 15];
                hs.push(omni::spawn_local(async move {
                    omni::yield_now().await;
                    payload.iter().sum::<u64>()
                }));
            }
        });
        assert_eq!(allocs, 0, "spawn_local allocated {allocs} times for 2000 spawns");
        let mut sum = 0;
        let before = alloc_count::now();
        for h in hs.drain(..) {
            sum += h.await.unwrap();
        }
        let allocs = alloc_count::now() - before;
        assert_eq!(allocs, 0, "running and joining 2000 tasks allocated {allocs} times");
        assert!(sum > 0);
    });
    // Whole rounds in steady state, scheduler included: the count must not grow with the number
    // of tasks (each round allocates its handle vector, an `Rc` and `block_on`'s waker).
    let small = measure(|| {
        rt.block_on(async {
            round(1000).await;
            cont_round(50).await;
        })
    });
    let large = measure(|| {
        rt.block_on(async {
            round(2000).await;
            cont_round(100).await;
        })
    });
    assert_eq!(small, large, "allocations grew with the number of tasks: {small} vs {large}");
    assert!(large <= 3, "a steady-state round allocated {large} times");
}

#[test]
fn steady_state_sleeps_allocate_nothing() {
    use omni::time::{sleep, Duration};
    let rt = omni::Builder::new_current_thread().start_paused(true).build().unwrap();
    rt.block_on(async {
        let round = |hs: &mut Vec<omni::JoinHandle<()>>| {
            for i in 0..2000u64 {
                hs.push(omni::spawn_local(sleep(Duration::from_millis(1 + i % 50))));
            }
        };
        // Warm up: grows the task pool, the wheel's region and the fired-waker buffer.
        let mut hs = Vec::with_capacity(2000);
        round(&mut hs);
        for h in hs.drain(..) {
            h.await.unwrap();
        }
        let allocs = measure(|| round(&mut hs));
        assert_eq!(allocs, 0, "spawning 2000 sleepers allocated {allocs} times");
        let before = alloc_count::now();
        for h in hs.drain(..) {
            h.await.unwrap();
        }
        let allocs = alloc_count::now() - before;
        assert_eq!(allocs, 0, "2000 sleeps registering and firing allocated {allocs} times");
    });
}
