//! Regressions for bugs that shipped in other runtimes: wakers firing during or after runtime
//! drop, stale keys meeting recycled chunks, handles outliving their runtime.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Parks forever, keeping its waker in a shared cell and counting polls.
struct Parked {
    polls: Rc<Cell<u32>>,
    waker: Rc<RefCell<Option<Waker>>>,
}

impl Future for Parked {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.set(self.polls.get() + 1);
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// async-executor #163: a waker fired while the executor drops its tasks.
#[test]
fn wakers_fired_by_destructors_during_runtime_drop_are_harmless() {
    let rt = omni::Runtime::new().unwrap();
    rt.block_on(async {
        let waker = Rc::new(RefCell::new(None));
        let polls = Rc::new(Cell::new(0));
        let victim = omni::spawn_local(Parked { polls: polls.clone(), waker: waker.clone() });
        drop(victim);
        struct WakeOnDrop(Rc<RefCell<Option<Waker>>>);
        impl Drop for WakeOnDrop {
            fn drop(&mut self) {
                if let Some(w) = self.0.borrow_mut().take() {
                    w.wake();
                }
            }
        }
        for _ in 0..3 {
            let g = WakeOnDrop(waker.clone());
            drop(omni::spawn_local(async move {
                let _g = g;
                std::future::pending::<()>().await
            }));
        }
        omni::yield_now().await;
        assert_eq!(polls.get(), 1);
    });
    drop(rt);
}

#[test]
fn waker_used_after_its_runtime_dropped_does_nothing_from_any_thread() {
    let rt = omni::Runtime::new().unwrap();
    let waker = Arc::new(Mutex::new(None::<Waker>));
    let w2 = waker.clone();
    rt.block_on(async move {
        drop(omni::spawn(std::future::poll_fn(move |cx| {
            *w2.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })));
        omni::yield_now().await;
    });
    drop(rt);
    let w = waker.lock().unwrap().take().expect("task parked");
    w.wake_by_ref();
    std::thread::spawn(move || w.wake()).join().unwrap();
}

/// A chunk freed with its runtime is reused by the next runtime: keys of the old tasks must
/// not reach the new ones.
#[test]
fn stale_waker_does_not_reach_a_task_in_a_recycled_chunk() {
    let old_waker = {
        let rt = omni::Runtime::new().unwrap();
        let waker = Rc::new(RefCell::new(None));
        rt.block_on({
            let waker = waker.clone();
            async move {
                for _ in 0..300 {
                    drop(omni::spawn_local(Parked { polls: Rc::default(), waker: waker.clone() }));
                }
                omni::yield_now().await;
            }
        });
        let w = waker.borrow_mut().take().expect("parked");
        w
    };
    let rt = omni::Runtime::new().unwrap();
    rt.block_on(async {
        let polls: Vec<Rc<Cell<u32>>> = (0..600).map(|_| Rc::default()).collect();
        let mut handles = Vec::new();
        for p in &polls {
            handles.push(omni::spawn_local(Parked { polls: p.clone(), waker: Rc::default() }));
        }
        // The main future is polled again after a batch of tasks: yield until all parked.
        for _ in 0..100 {
            if polls.iter().all(|p| p.get() == 1) {
                break;
            }
            omni::yield_now().await;
        }
        assert!(polls.iter().all(|p| p.get() == 1));
        old_waker.wake_by_ref();
        for _ in 0..30 {
            omni::yield_now().await;
        }
        assert!(polls.iter().all(|p| p.get() == 1), "a stale waker polled a new task");
        for h in &handles {
            h.abort();
        }
    });
}

#[test]
fn handle_outliving_its_runtime_reports_cancelled_on_another_thread() {
    let rt = omni::Runtime::new().unwrap();
    let h = rt.spawn(std::future::pending::<u8>());
    let done = rt.spawn(async { 4u8 });
    rt.block_on(async { omni::yield_now().await });
    drop(rt);
    let (a, b) =
        std::thread::spawn(move || (omni::block_on(h), omni::block_on(done))).join().unwrap();
    assert!(a.unwrap_err().is_cancelled());
    assert!(b.unwrap_err().is_cancelled(), "outputs not taken die with the runtime");
}

#[test]
fn join_handle_dropped_on_another_thread_frees_the_slot() {
    let rt = omni::Runtime::new().unwrap();
    rt.block_on(async {
        let first = omni::spawn(async { String::from("output") });
        let first_id = first.id();
        omni::yield_now().await;
        assert!(first.is_finished());
        std::thread::spawn(move || drop(first)).join().unwrap();
        omni::yield_now().await; // the scheduler frees the slot on its own thread
        let second = omni::spawn(async { String::new() });
        assert_eq!(second.id().as_u64() as u32, first_id.as_u64() as u32, "slot was reused");
        second.await.unwrap();
    });
}

#[test]
fn hot_types_stay_small() {
    use std::mem::size_of;
    assert_eq!(size_of::<omni::JoinHandle<u64>>(), 8);
    assert_eq!(size_of::<omni::Id>(), 8);
    assert_eq!(size_of::<Option<omni::Id>>(), 16);
    assert_eq!(size_of::<omni::cont::Cont<u64>>(), 16);
}

#[derive(Debug)]
struct CountDrop(Arc<std::sync::atomic::AtomicUsize>);
impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A join waker whose destructor panics must not make the runtime drop the output twice.
#[test]
fn panicking_join_waker_destructor_drops_the_output_once() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    struct PanicOnDrop;
    impl std::task::Wake for PanicOnDrop {
        fn wake(self: Arc<Self>) {}
    }
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("waker destructor panicked");
            }
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = omni::Runtime::new().unwrap();
    rt.block_on({
        let drops = drops.clone();
        async move {
            let mut h = omni::spawn_local(async move {
                omni::yield_now().await;
                CountDrop(drops)
            });
            let w = Waker::from(Arc::new(PanicOnDrop));
            let mut cx = Context::from_waker(&w);
            assert!(Pin::new(&mut h).poll(&mut cx).is_pending());
            drop(w); // the slot now holds the only reference
            for _ in 0..3 {
                omni::yield_now().await;
            }
            assert!(h.is_finished());
            drop(h); // frees the slot: drops the output, then the panicking waker (contained)
        }
    });
    drop(rt);
    assert_eq!(drops.load(SeqCst), 1);
}

/// An executor that polls a join handle inline from its waker: completing the task re-enters
/// the scheduler from inside the wake, freeing the slot that stored the waker.
#[test]
fn join_waker_that_polls_the_handle_inline() {
    struct Inline {
        handle: RefCell<Option<omni::JoinHandle<u32>>>,
        got: Cell<Option<u32>>,
    }
    // The test is single-threaded; the waker never leaves this thread.
    struct InlineWaker(Rc<Inline>);
    // SAFETY: test only; this waker is created, woken and dropped on the test thread alone.
    unsafe impl Send for InlineWaker {}
    // SAFETY: test only; this waker is created, woken and dropped on the test thread alone.
    unsafe impl Sync for InlineWaker {}
    impl std::task::Wake for InlineWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            let mut slot = self.0.handle.borrow_mut();
            if let Some(h) = slot.as_mut() {
                let mut cx = Context::from_waker(Waker::noop());
                if let Poll::Ready(v) = Pin::new(h).poll(&mut cx) {
                    self.0.got.set(Some(v.unwrap()));
                    *slot = None;
                }
            }
        }
    }
    let state = omni::block_on(async {
        let inline = Rc::new(Inline { handle: RefCell::new(None), got: Cell::new(None) });
        let mut h = omni::spawn_local(async {
            omni::yield_now().await;
            77
        });
        let w = Waker::from(Arc::new(InlineWaker(inline.clone())));
        assert!(Pin::new(&mut h).poll(&mut Context::from_waker(&w)).is_pending());
        drop(w);
        *inline.handle.borrow_mut() = Some(h);
        for _ in 0..3 {
            omni::yield_now().await;
        }
        inline
    });
    assert_eq!(state.got.get(), Some(77));
}
