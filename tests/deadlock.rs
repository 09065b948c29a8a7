//! Deadlock reports: a runtime whose tasks all wait on each other says so instead of hanging,
//! and a runtime that something outside its tasks can still wake (a timer, a foreign future, an
//! OS thread, a handle) is never reported.
//!
//! A runtime is only reported while its own threads are the only ones in the process, so this
//! file has no libtest harness (whose threads would turn reports off): `main` runs every
//! scenario in a child process of this binary (`OMNI_DEADLOCK_SCENARIO=name`), where the
//! scenario's `block_on` runs on the main thread, and checks how it ended. An argument filters
//! the scenarios by name, as libtest's does.

use omni::chan::{bounded, oneshot};
use omni::{Builder, OnDeadlock, Runtime, WaitsOn};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// How a scenario must end.
enum Expect {
    /// `block_on` panicked with a report containing each string.
    Report(&'static [&'static str]),
    /// It completed, and nothing was reported.
    Quiet,
    /// It completed (a report may have been printed on the way).
    Completes,
}

const SCENARIOS: &[(&str, fn(), Expect)] = &[
    (
        "crossed_oneshots_are_reported_on_the_current_thread_runtime",
        || Runtime::new().unwrap().block_on(crossed_oneshots()),
        Expect::Report(CROSSED),
    ),
    (
        "crossed_oneshots_are_reported_on_the_multi_thread_runtime",
        || {
            let rt = Builder::new_multi_thread().workers(2).build().unwrap();
            rt.block_on(crossed_oneshots());
        },
        Expect::Report(CROSSED),
    ),
    (
        "the_report_reaches_a_callback",
        report_reaches_a_callback,
        Expect::Report(&["callback saw the report"]),
    ),
    (
        "a_receiver_whose_sender_sits_in_the_same_future_is_reported",
        || {
            omni::block_on(async {
                let (_tx, rx) = bounded::<u8>(1);
                let _ = rx.recv().await;
            })
        },
        Expect::Report(&[
            "all 1 tasks are waiting",
            "waits on recv on the channel created at tests/deadlock.rs:",
        ]),
    ),
    (
        "a_channel_made_before_block_on_and_held_by_tasks_is_reported",
        || {
            let (tx, rx) = bounded::<u8>(1);
            omni::block_on(async move {
                let t = omni::spawn(async move {
                    let _keep = tx;
                    std::future::pending::<()>().await
                });
                let _ = rx.recv().await;
                drop(t);
            })
        },
        Expect::Report(&["all 2 tasks are waiting", "waits on nothing"]),
    ),
    (
        "a_future_that_keeps_no_waker_is_reported_as_waiting_on_nothing",
        || omni::block_on(async { drop(omni::spawn(std::future::pending::<()>()).await) }),
        Expect::Report(&["waits on nothing"]),
    ),
    (
        "a_select_names_its_first_arm_and_counts_the_others",
        || {
            omni::block_on(async {
                let (_t1, r1) = bounded::<u8>(1);
                let (_t2, r2) = bounded::<u8>(1);
                omni::chan::Select::new().recv(&r1, |_| ()).recv(&r2, |_| ()).biased().await;
            })
        },
        Expect::Report(&["and 1 other arm(s) of a select"]),
    ),
    ("a_task_waiting_on_a_timer_is_never_reported", timer_wait, Expect::Quiet),
    ("a_task_waiting_on_a_foreign_future_is_never_reported", foreign_wait, Expect::Quiet),
    ("a_task_waiting_on_io_is_never_reported", io_wait, Expect::Quiet),
    ("a_channel_fed_by_an_os_thread_is_never_reported", os_thread_feeds, Expect::Quiet),
    ("a_channel_fed_by_an_omni_thread_is_never_reported", omni_thread_feeds, Expect::Quiet),
    ("a_handle_on_another_thread_is_never_reported", handle_elsewhere, Expect::Quiet),
    ("a_blocking_job_is_never_reported", blocking_job, Expect::Quiet),
    (
        "a_report_does_not_stop_the_runtime_from_running_later_work",
        run_after_report,
        Expect::Completes,
    ),
];

/// What the two crossed-oneshot scenarios must report.
const CROSSED: &[&str] = &[
    "omni: deadlock: all 3 tasks are waiting",
    "block_on future (called at tests/deadlock.rs:",
    "waits on the JoinHandle of task",
    "spawned at tests/deadlock.rs:",
    "waits on the oneshot created at tests/deadlock.rs:",
];

/// Two tasks, each awaiting the other's oneshot; `block_on` awaits both.
async fn crossed_oneshots() {
    let (tx_a, rx_a) = oneshot::<()>();
    let (tx_b, rx_b) = oneshot::<()>();
    let a = omni::spawn(async move {
        let _ = rx_b.await;
        drop(tx_a);
    });
    let b = omni::spawn(async move {
        let _ = rx_a.await;
        drop(tx_b);
    });
    let _ = a.await;
    let _ = b.await;
}

fn report_reaches_a_callback() {
    let rt = Builder::new_current_thread()
        .on_deadlock(OnDeadlock::call(|report| {
            let tasks = report.tasks();
            assert_eq!(tasks.len(), 3, "{report}");
            assert_eq!(tasks[0].id(), None, "the block_on future comes first");
            assert!(matches!(tasks[0].waits_on(), WaitsOn::Join { task: Some(_) }));
            let mut lines: Vec<u32> =
                tasks[1..].iter().map(|t| t.spawned_at().unwrap().line()).collect();
            lines.sort();
            // `crossed_oneshots` spawns its two tasks 4 lines apart.
            assert_eq!(lines[1] - lines[0], 4, "{report}");
            for t in &tasks[1..] {
                assert!(t.id().is_some());
                assert!(matches!(t.waits_on(), WaitsOn::Oneshot { .. }), "{t}");
            }
            panic!("callback saw the report");
        }))
        .build()
        .unwrap();
    rt.block_on(crossed_oneshots());
}

fn timer_wait() {
    let rt = Builder::new_current_thread().start_paused(true).build().unwrap();
    let got = rt.block_on(async {
        let (tx, rx) = oneshot();
        omni::spawn(async move {
            omni::time::sleep(Duration::from_secs(3600)).await;
            tx.send(7).unwrap();
        });
        rx.await
    });
    assert_eq!(got, Ok(7));
}

fn foreign_wait() {
    // async-io's timer keeps the waker on its own thread: the task may be woken from outside.
    for rt in [Runtime::new().unwrap(), Builder::new_multi_thread().workers(2).build().unwrap()] {
        let done = rt.block_on(async {
            let t = omni::spawn(async {
                async_io::Timer::after(Duration::from_millis(5)).await;
                1
            });
            t.await.unwrap()
        });
        assert_eq!(done, 1);
    }
}

fn io_wait() {
    let listener = async_io::Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    let rt = Runtime::new().unwrap();
    let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).map(|_| ()));
    let accepted = rt.block_on(async move { listener.accept().await.map(|_| ()) });
    assert!(accepted.is_ok());
    client.join().unwrap().unwrap();
}

fn os_thread_feeds() {
    let rt = Runtime::new().unwrap();
    let got = rt.block_on(async {
        // Created inside, the sender moved to a raw thread that has not used it yet.
        let (tx, rx) = bounded::<u32>(1);
        let t = std::thread::spawn(move || tx.send_blocking(5));
        let v = rx.recv().await;
        t.join().unwrap().unwrap();
        v
    });
    assert_eq!(got, Ok(5));
}

fn omni_thread_feeds() {
    let rt = Runtime::new().unwrap();
    let got = rt.block_on(async {
        let (tx, rx) = bounded::<u32>(1);
        let h = omni::thread::spawn(move || async move { tx.send(6).await });
        let v = rx.recv().await;
        h.await.unwrap().unwrap();
        v
    });
    assert_eq!(got, Ok(6));
}

fn handle_elsewhere() {
    let rt = Builder::new_multi_thread().workers(2).build().unwrap();
    let handle = rt.handle().clone();
    let (to_thread, from_rt) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let tx: omni::chan::Sender<u32> = from_rt.recv().unwrap();
        drop(handle.spawn(async move { tx.send(9).await }));
    });
    let got = rt.block_on(async move {
        let (tx, rx) = bounded::<u32>(1);
        to_thread.send(tx).unwrap();
        rx.recv().await
    });
    assert_eq!(got, Ok(9));
    t.join().unwrap();
}

fn blocking_job() {
    let got = omni::block_on(async {
        let (tx, rx) = bounded::<u32>(1);
        let job = omni::spawn_blocking(move || tx.send_blocking(3));
        let v = rx.recv().await;
        job.await.unwrap().unwrap();
        v
    });
    assert_eq!(got, Ok(3));
}

fn run_after_report() {
    let rt = Runtime::new().unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let (_tx, rx) = oneshot::<()>();
            let _ = rx.await;
        })
    }));
    assert!(r.is_err(), "the first block_on is deadlocked");
    assert_eq!(rt.block_on(async { omni::spawn(async { 3 }).await.unwrap() }), 3);
}

fn main() -> ExitCode {
    if let Ok(name) = std::env::var("OMNI_DEADLOCK_SCENARIO") {
        let (_, run, _) = SCENARIOS.iter().find(|s| s.0 == name).expect("a known scenario");
        run();
        return ExitCode::SUCCESS;
    }
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let chosen: Vec<_> =
        SCENARIOS.iter().filter(|s| filter.as_deref().is_none_or(|f| s.0.contains(f))).collect();
    println!("\nrunning {} tests", chosen.len());
    let exe = std::env::current_exe().unwrap();
    let mut failed = Vec::new();
    for (name, _, expect) in chosen.iter().copied() {
        let mut child = Command::new(&exe)
            .env("OMNI_DEADLOCK_SCENARIO", name)
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A hang guard, not a timing: a scenario that is not reported would wait forever.
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if start.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        let problem = match (status, expect) {
            (None, _) => Some("hung (killed after 120 s)".to_owned()),
            (Some(st), Expect::Report(needles)) => {
                let missing: Vec<_> = needles.iter().filter(|n| !err.contains(**n)).collect();
                (st.success() || !missing.is_empty())
                    .then(|| format!("expected a report with {missing:?}; exit {st}"))
            }
            (Some(st), Expect::Quiet) => (!st.success() || err.contains("omni: deadlock"))
                .then(|| format!("expected a quiet run; exit {st}")),
            (Some(st), Expect::Completes) => {
                (!st.success()).then(|| format!("expected to complete; exit {st}"))
            }
        };
        match problem {
            None => println!("test {name} ... ok"),
            Some(p) => {
                println!("test {name} ... FAILED: {p}\n--- stderr ---\n{err}");
                failed.push(name);
            }
        }
    }
    let passed = chosen.len() - failed.len();
    println!(
        "\ntest result: {}. {passed} passed; {} failed\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
