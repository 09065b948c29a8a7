//! `CancelToken`: cancel reaches waiters and descendants, never ancestors; late children start
//! cancelled; waits are cancel-safe.

use omni::CancelToken;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

#[test]
fn cancel_wakes_every_waiting_task_on_both_runtimes() {
    for multi in [false, true] {
        let rt = if multi {
            omni::Builder::new_multi_thread().workers(2).build().unwrap()
        } else {
            omni::Builder::new_current_thread().build().unwrap()
        };
        rt.block_on(async {
            let token = CancelToken::new();
            let woken = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..50)
                .map(|_| {
                    let (t, w) = (token.clone(), woken.clone());
                    omni::spawn(async move {
                        t.cancelled().await;
                        w.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            omni::yield_now().await;
            assert_eq!(woken.load(SeqCst), 0, "nobody wakes before the cancel");
            token.cancel();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(woken.load(SeqCst), 50);
        });
    }
}

#[test]
fn a_cancel_reaches_descendants_but_not_ancestors() {
    let root = CancelToken::new();
    let a = root.child();
    let a1 = a.child();
    let b = root.child();
    a.cancel();
    assert!(a.is_cancelled() && a1.is_cancelled());
    assert!(!root.is_cancelled() && !b.is_cancelled(), "a child's cancel stays below it");
    root.cancel();
    assert!(b.is_cancelled());
    let late = root.child();
    assert!(late.is_cancelled(), "a child of a cancelled token starts cancelled");
    // Cancelling twice is harmless.
    root.cancel();
}

#[test]
fn a_deep_chain_cancels_without_deep_recursion() {
    let root = CancelToken::new();
    let mut chain = Vec::with_capacity(300_000);
    let mut last = root.clone();
    for _ in 0..300_000 {
        last = last.child();
        chain.push(last.clone());
    }
    root.cancel();
    assert!(last.is_cancelled());
    assert!(chain.iter().all(CancelToken::is_cancelled));
}

#[test]
fn run_until_cancelled_drops_the_work_and_says_so() {
    omni::block_on(async {
        let token = CancelToken::new();
        assert_eq!(token.run_until_cancelled(async { 7 }).await, Some(7));
        struct Dropped(Arc<AtomicUsize>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.fetch_add(1, SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let t2 = token.clone();
        omni::spawn(async move {
            omni::yield_now().await;
            t2.cancel();
        });
        let guard = Dropped(drops.clone());
        let r = token
            .run_until_cancelled(async move {
                let _g = guard;
                std::future::pending::<()>().await
            })
            .await;
        assert_eq!(r, None);
        assert_eq!(drops.load(SeqCst), 1, "the cancelled work was dropped");
    });
}

#[test]
fn owned_waits_are_static_and_a_dropped_wait_is_not_woken() {
    omni::block_on(async {
        let token = CancelToken::new();
        let h = omni::spawn(token.clone().cancelled_owned());
        {
            // A wait polled once and dropped: the later cancel must not touch it.
            let mut w = std::pin::pin!(token.cancelled());
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            assert!(std::future::Future::poll(w.as_mut(), &mut cx).is_pending());
        }
        token.cancel();
        h.await.unwrap();
        token.cancelled().await; // already cancelled: ready at once
    });
}
