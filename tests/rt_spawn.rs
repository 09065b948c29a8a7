//! Spawning, joining, panics, aborts and detaching, through the public API.

use omni::cont::{suspend, Cont};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

#[test]
fn spawn_and_join_many_outputs() {
    let out = omni::block_on(async {
        let hs: Vec<_> =
            (0..1000).map(|i| omni::spawn_local(async move { format!("t{i}") })).collect();
        let mut v = Vec::new();
        for h in hs {
            v.push(h.await.unwrap());
        }
        v
    });
    assert_eq!(out.len(), 1000);
    assert_eq!(out[999], "t999");
}

#[test]
fn futures_of_every_size_class_and_boxed() {
    omni::block_on(async {
        let small = omni::spawn_local(async { 1u8 });
        let mid = {
            let buf = [7u8; 100];
            omni::spawn_local(async move {
                omni::yield_now().await;
                buf.iter().map(|&b| b as u32).sum::<u32>()
            })
        };
        let huge = {
            let buf = [1u8; 8192];
            omni::spawn_local(async move {
                omni::yield_now().await;
                buf.iter().map(|&b| b as u32).sum::<u32>()
            })
        };
        #[repr(align(64))]
        struct Aligned(u8);
        let aligned = {
            let a = Aligned(3);
            omni::spawn_local(async move {
                omni::yield_now().await;
                a.0
            })
        };
        assert_eq!(small.await.unwrap(), 1);
        assert_eq!(mid.await.unwrap(), 700);
        assert_eq!(huge.await.unwrap(), 8192);
        assert_eq!(aligned.await.unwrap(), 3);
    });
}

#[test]
fn panic_is_isolated_and_payload_kept() {
    let r = omni::block_on(async {
        let bad = omni::spawn_local(async {
            omni::yield_now().await;
            panic!("task exploded")
        });
        let good = omni::spawn_local(async {
            omni::yield_now().await;
            5
        });
        let err = bad.await.unwrap_err();
        assert!(err.is_panic() && !err.is_cancelled());
        assert!(err.to_string().contains("task exploded"), "{err}");
        assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "task exploded");
        good.await.unwrap()
    });
    assert_eq!(r, 5);
}

#[derive(Debug)]
struct DropCount(Arc<AtomicUsize>);
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn abort_drops_the_future_once_and_reports_cancelled() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    omni::block_on(async move {
        let guard = DropCount(d);
        let h = omni::spawn_local(async move {
            let _g = guard;
            std::future::pending::<()>().await
        });
        omni::yield_now().await;
        assert!(!h.is_finished());
        h.abort();
        h.abort();
        let err = h.await.unwrap_err();
        assert!(err.is_cancelled());
    });
    assert_eq!(drops.load(SeqCst), 1);
}

#[test]
fn abort_after_completion_keeps_output() {
    omni::block_on(async {
        let h = omni::spawn_local(async { 9 });
        omni::yield_now().await;
        omni::yield_now().await;
        assert!(h.is_finished());
        h.abort();
        assert_eq!(h.await.unwrap(), 9);
    });
}

#[test]
fn abort_from_another_thread_drops_on_the_owner_thread() {
    let owner = std::thread::current().id();
    let dropped_on = Arc::new(std::sync::Mutex::new(None));
    let d2 = dropped_on.clone();
    omni::block_on(async move {
        struct OnDrop(Arc<std::sync::Mutex<Option<std::thread::ThreadId>>>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = Some(std::thread::current().id());
            }
        }
        let g = OnDrop(d2);
        let h = omni::spawn_local(async move {
            let _g = g;
            std::future::pending::<()>().await
        });
        omni::yield_now().await;
        let h = std::thread::spawn(move || {
            h.abort();
            h
        })
        .join()
        .unwrap();
        assert!(h.await.unwrap_err().is_cancelled());
    });
    assert_eq!(*dropped_on.lock().unwrap(), Some(owner));
}

#[test]
fn dropping_the_handle_detaches_the_task() {
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    omni::block_on(async move {
        drop(omni::spawn_local(async move {
            omni::yield_now().await;
            d.set(true);
        }));
        for _ in 0..4 {
            omni::yield_now().await;
        }
    });
    assert!(done.get());
}

/// A future that parks and records its waker and how often it was polled.
struct Recorder {
    polls: Rc<Cell<usize>>,
    waker: Rc<RefCell<Option<Waker>>>,
    finish_after: usize,
}

impl Future for Recorder {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        if self.polls.get() >= self.finish_after {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn stale_waker_does_not_poll_the_task_that_reused_its_slot() {
    omni::block_on(async {
        let a_polls = Rc::new(Cell::new(0));
        let a_waker = Rc::new(RefCell::new(None));
        let a = omni::spawn_local(Recorder {
            polls: a_polls.clone(),
            waker: a_waker.clone(),
            finish_after: 2,
        });
        omni::yield_now().await;
        let stale = a_waker.borrow().clone().expect("a polled once");
        stale.wake_by_ref();
        let a_id = a.id();
        a.await.unwrap();
        assert_eq!(a_polls.get(), 2);

        // B takes A's slot (same index, newer generation) and parks forever.
        let b_polls = Rc::new(Cell::new(0));
        let b = omni::spawn_local(Recorder {
            polls: b_polls.clone(),
            waker: Rc::new(RefCell::new(None)),
            finish_after: usize::MAX,
        });
        assert_eq!(b.id().as_u64() as u32, a_id.as_u64() as u32, "B reuses A's slot");
        assert_ne!(b.id(), a_id, "with a new generation");
        omni::yield_now().await;
        assert_eq!(b_polls.get(), 1);
        stale.wake_by_ref();
        let owned = stale.clone();
        owned.wake(); // the by-value path too
        for _ in 0..3 {
            omni::yield_now().await;
        }
        assert_eq!(b_polls.get(), 1, "the stale waker must not poll B");
        b.abort();
    });
}

#[test]
fn remote_wake_from_another_thread() {
    let v = omni::block_on(async {
        let waker = Arc::new(std::sync::Mutex::new(None::<Waker>));
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (w2, f2) = (waker.clone(), flag.clone());
        let h = omni::spawn(std::future::poll_fn(move |cx| {
            if f2.load(SeqCst) {
                return Poll::Ready(11);
            }
            *w2.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }));
        omni::yield_now().await;
        let w = waker.lock().unwrap().clone().expect("task parked");
        std::thread::spawn(move || {
            flag.store(true, SeqCst);
            w.wake();
        });
        h.await.unwrap()
    });
    assert_eq!(v, 11);
}

#[test]
fn handle_spawn_from_another_thread_while_running() {
    let rt = omni::Runtime::new().unwrap();
    let handle = rt.handle().clone();
    let v = rt.block_on(async move {
        let h = std::thread::spawn(move || handle.spawn(async { 3 })).join().unwrap();
        h.await.unwrap()
    });
    assert_eq!(v, 3);
}

#[test]
fn cont_resume_from_another_thread_and_abandoned() {
    omni::block_on(async {
        let v = suspend(|k: Cont<String>| {
            std::thread::spawn(move || k.resume("hi".into()).unwrap());
        })
        .await;
        assert_eq!(v.unwrap(), "hi");
        let e = suspend(|k: Cont<u8>| {
            std::thread::spawn(move || drop(k));
        })
        .await;
        assert_eq!(e, Err(omni::cont::Abandoned));
    });
}

#[test]
fn resume_after_abort_hands_the_value_back() {
    omni::block_on(async {
        let slot: Rc<Cell<Option<Cont<String>>>> = Rc::new(Cell::new(None));
        let s2 = slot.clone();
        let h = omni::spawn_local(async move { suspend(|k| s2.set(Some(k))).await });
        omni::yield_now().await;
        let k = slot.take().expect("parked");
        assert!(k.is_pending());
        h.abort();
        assert!(h.await.unwrap_err().is_cancelled());
        assert!(!k.is_pending());
        assert_eq!(k.resume("back".to_string()), Err("back".to_string()));
    });
}

#[test]
fn runtime_drop_cancels_every_task_and_drops_each_future_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = omni::Runtime::new().unwrap();
    let (kept, finished) = rt.block_on({
        let drops = drops.clone();
        async move {
            let mut kept = Vec::new();
            for i in 0..300 {
                let g = DropCount(drops.clone());
                let h = omni::spawn_local(async move {
                    let _g = g;
                    std::future::pending::<()>().await
                });
                if i % 2 == 0 {
                    kept.push(h);
                }
            }
            let g = DropCount(drops.clone());
            let finished = omni::spawn_local(async move { g });
            omni::yield_now().await;
            omni::yield_now().await;
            (kept, finished)
        }
    });
    assert_eq!(drops.load(SeqCst), 0);
    drop(rt);
    assert_eq!(drops.load(SeqCst), 301, "300 futures and one unclaimed output, each once");
    for h in kept {
        assert!(h.is_finished());
        assert!(omni::block_on(h).unwrap_err().is_cancelled());
    }
    assert!(omni::block_on(finished).unwrap_err().is_cancelled());
    assert_eq!(drops.load(SeqCst), 301);
}

#[test]
fn spawn_while_shutting_down_is_refused_quietly() {
    let rt = omni::Runtime::new().unwrap();
    rt.block_on(async {
        struct SpawnOnDrop;
        impl Drop for SpawnOnDrop {
            fn drop(&mut self) {
                let h = omni::spawn_local(async { 1 });
                assert!(h.is_finished());
            }
        }
        let g = SpawnOnDrop;
        drop(omni::spawn_local(async move {
            let _g = g;
            std::future::pending::<()>().await
        }));
        omni::yield_now().await;
    });
    drop(rt);
}

#[test]
#[should_panic(expected = "outside an omni runtime")]
fn spawn_outside_a_runtime_says_what_to_do() {
    drop(omni::spawn(async {}));
}

#[test]
#[should_panic(expected = "block_on called from inside a running omni runtime")]
fn nested_block_on_says_what_to_do() {
    omni::block_on(async {
        omni::block_on(async {});
    });
}

#[test]
fn handle_current_and_try_current() {
    assert!(omni::Handle::try_current().is_err());
    omni::block_on(async {
        let h = omni::Handle::current();
        assert_eq!(h.spawn(async { 2 }).await.unwrap(), 2);
    });
}

#[test]
fn ids_are_distinct_and_printable() {
    omni::block_on(async {
        let a = omni::spawn_local(async {});
        let b = omni::spawn_local(async {});
        assert_ne!(a.id(), b.id());
        assert!(format!("{:?}", a).contains("JoinHandle"));
        assert!(!a.id().to_string().is_empty());
    });
}

#[test]
fn auto_traits() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<omni::JoinHandle<u32>>();
    send_sync::<omni::Handle>();
    send_sync::<Cont<u32>>();
    send_sync::<omni::JoinError>();
    fn send<T: Send>() {}
    send::<omni::cont::Suspend<u32, fn(Cont<u32>)>>();
}

#[test]
fn a_panicking_block_on_future_still_shuts_the_runtime_down() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        omni::block_on(async move {
            let g = DropCount(d);
            drop(omni::spawn_local(async move {
                let _g = g;
                std::future::pending::<()>().await
            }));
            omni::yield_now().await;
            panic!("main future failed");
        })
    }));
    assert!(r.is_err());
    assert_eq!(drops.load(SeqCst), 1, "the parked task's future was dropped once");
}

#[test]
fn a_task_aborted_while_it_runs_is_dropped_at_its_next_turn() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    omni::block_on(async move {
        let slot: Rc<RefCell<Option<omni::JoinHandle<()>>>> = Rc::default();
        let s2 = slot.clone();
        let g = DropCount(d.clone());
        let h = omni::spawn_local(async move {
            let _g = g;
            omni::yield_now().await;
            // Abort ourselves mid-poll: the poll finishes, the next turn drops the future.
            s2.borrow().as_ref().expect("handle stored").abort();
            assert_eq!(d.load(SeqCst), 0, "not dropped while running");
            omni::yield_now().await;
            unreachable!("an aborted task is never polled again");
        });
        *slot.borrow_mut() = Some(h);
        for _ in 0..4 {
            omni::yield_now().await;
        }
        let h = slot.borrow_mut().take().unwrap();
        assert!(h.await.unwrap_err().is_cancelled());
    });
    assert_eq!(drops.load(SeqCst), 1);
}
