//! `omni::thread`: OS threads with their own runtime, joined from green tasks and plain code.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn handles_and_builders_are_send_and_sync() {
    assert_send_sync::<omni::thread::JoinHandle<u32>>();
    assert_send_sync::<omni::thread::Builder>();
}

#[test]
fn joined_from_a_green_task_without_blocking_its_runtime() {
    omni::block_on(async {
        // The thread finishes only after a green task of *this* runtime ran: if awaiting the
        // handle blocked the runtime, that task could never run.
        let (go_tx, go) = mpsc::channel::<u32>();
        let t = omni::thread::spawn(move || async move { go.recv().unwrap() * 2 });
        let sender = omni::spawn_local(async move {
            omni::yield_now().await;
            go_tx.send(21).unwrap();
        });
        assert_eq!(t.await.unwrap(), 42);
        sender.await.unwrap();
    });
}

#[test]
fn joined_from_a_plain_thread() {
    let h = omni::thread::spawn(|| async { String::from("hello") });
    let joiner = std::thread::spawn(move || h.join().unwrap());
    assert_eq!(joiner.join().unwrap(), "hello");
}

#[test]
fn a_panic_comes_back_as_the_payload_from_join_and_await() {
    let h = omni::thread::spawn(|| async { std::panic::panic_any(7u8) });
    assert_eq!(*h.join().unwrap_err().downcast::<u8>().unwrap(), 7);

    let payload = omni::block_on(async {
        omni::thread::spawn(|| async {
            omni::yield_now().await;
            panic!("in the future");
        })
        .await
        .unwrap_err()
    });
    assert_eq!(*payload.downcast::<&str>().unwrap(), "in the future");

    // A panic in the closure that builds the future is reported the same way.
    let h = omni::thread::spawn(|| -> std::future::Ready<()> { panic!("in the closure") });
    assert_eq!(*h.join().unwrap_err().downcast::<&str>().unwrap(), "in the closure");
}

#[test]
fn spawn_local_and_non_send_state_work_inside_the_thread() {
    let h = omni::thread::spawn(|| {
        // Built on the new thread, inside its runtime: `spawn_local` works even here.
        let log = Rc::new(RefCell::new(Vec::new()));
        let early = {
            let log = log.clone();
            omni::spawn_local(async move { log.borrow_mut().push("early") })
        };
        async move {
            let tasks: Vec<_> = (0..10)
                .map(|i| {
                    let log = log.clone();
                    omni::spawn_local(async move {
                        omni::yield_now().await;
                        log.borrow_mut().push(if i % 2 == 0 { "even" } else { "odd" });
                    })
                })
                .collect();
            early.await.unwrap();
            for t in tasks {
                t.await.unwrap();
            }
            let log = log.borrow();
            (log.len(), log.iter().filter(|s| **s == "even").count())
        }
    });
    assert_eq!(h.join().unwrap(), (11, 5));
}

#[test]
fn many_threads_joined_from_green_tasks_and_plain_code() {
    let handles: Vec<_> =
        (0..64u64).map(|i| omni::thread::spawn(move || async move { i * i })).collect();
    let (from_tasks, from_join): (Vec<_>, Vec<_>) =
        handles.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let sum_join: u64 = from_join.into_iter().map(|(_, h)| h.join().unwrap()).sum();
    let sum_tasks = omni::block_on(async {
        let waits: Vec<_> = from_tasks
            .into_iter()
            .map(|(_, h)| omni::spawn(async move { h.await.unwrap() }))
            .collect();
        let mut sum = 0;
        for w in waits {
            sum += w.await.unwrap();
        }
        sum
    });
    assert_eq!(sum_join + sum_tasks, (0..64u64).map(|i| i * i).sum());
}

#[test]
fn builder_names_the_thread_and_sets_its_stack() {
    let h = omni::thread::Builder::new()
        .name("omni-test-worker".into())
        .stack_size(512 * 1024)
        .spawn(|| async { std::thread::current().name().map(String::from) })
        .unwrap();
    assert_eq!(h.thread().name(), Some("omni-test-worker"));
    assert_eq!(h.join().unwrap().as_deref(), Some("omni-test-worker"));
}

#[test]
fn is_finished_follows_the_thread() {
    omni::block_on(async {
        let (go_tx, go) = mpsc::channel::<()>();
        let mut h = omni::thread::spawn(move || async move { go.recv().unwrap() });
        assert!(!h.is_finished(), "the thread waits for `go`");
        go_tx.send(()).unwrap();
        (&mut h).await.unwrap();
        assert!(h.is_finished());
    });
}

#[test]
fn the_threads_runtime_is_shut_down_before_the_join_returns() {
    struct SetOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = dropped.clone();
    let h = omni::thread::spawn(move || async move {
        // Left pending when the future returns: the thread's runtime cancels it.
        let guard = SetOnDrop(d);
        drop(omni::spawn_local(async move {
            let _g = guard;
            std::future::pending::<()>().await
        }));
        omni::yield_now().await;
    });
    h.join().unwrap();
    assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn spawn_blocking_works_inside_an_omni_thread() {
    let h = omni::thread::spawn(|| async {
        let here = Cell::new(1);
        let v = omni::spawn_blocking(|| 41).await.unwrap();
        v + here.get()
    });
    assert_eq!(h.join().unwrap(), 42);
}

#[test]
fn a_dropped_handle_detaches_the_thread() {
    let (done_tx, done) = mpsc::channel();
    drop(omni::thread::spawn(move || async move { done_tx.send("ran").unwrap() }));
    assert_eq!(done.recv().unwrap(), "ran");
}
