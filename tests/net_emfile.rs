//! An accept loop that runs out of descriptors backs off and serves again once some are free
//! (libuv #690, bun PR #32705: loops that spun at 100% CPU on EMFILE).
//!
//! The test runs a child process per driver (this binary again, with `OMNI_EMFILE_CHILD` set)
//! whose descriptor limit is lowered to a few above what it has open. The parent connects 20
//! clients first (they wait in the child's accept backlog), then tells the child to serve. The
//! child's runtime runs on the paused clock: its accept task takes connections until `EMFILE`,
//! then backs off; the main task waits 5 s of virtual time, frees the accepted sockets and
//! awaits the accept task, which must take all 20.
//!
//! Why this catches a spinning loop: the paused clock only moves when every task waits. An
//! accept loop that retried without sleeping would never let it move, the main task's 5 s
//! would never pass, and the child would hang (the parent kills it after 60 s and fails).

use omni::net::TcpListener;
use omni::Driver;
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

const CLIENTS: usize = 20;

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn child(d: Driver) {
    let rt = match omni::Builder::new_current_thread().driver(d).start_paused(true).build() {
        Ok(rt) => rt,
        Err(e) => {
            println!("SKIP {e}");
            return;
        }
    };
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    println!("PORT {}", std_listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    assert_eq!(go.trim(), "go");
    rt.block_on(async move {
        let listener = TcpListener::from_std(std_listener).unwrap();
        // Room for 4 accepted sockets (read_dir's own descriptor is closed again).
        let limit = (fd_count() + 3) as libc::rlim_t;
        let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
        // SAFETY: plain setrlimit(2) on this process with a valid struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
        let held = Rc::new(RefCell::new(Vec::new()));
        let h2 = held.clone();
        let server = omni::spawn_local(async move {
            let mut total = 0;
            while total < CLIENTS {
                let (s, _) = listener.accept().await.expect("accept fails only by EMFILE here");
                h2.borrow_mut().push(s);
                total += 1;
            }
            total
        });
        omni::time::sleep(Duration::from_secs(5)).await;
        let before = held.borrow().len();
        assert!(before > 0 && before < CLIENTS, "accepted {before} before the limit");
        let freed_at = omni::time::Instant::now();
        held.borrow_mut().clear();
        // The limit stays: accepted sockets are freed as they come, so all fit now.
        let h3 = held.clone();
        let drainer = omni::spawn_local(async move {
            loop {
                h3.borrow_mut().clear();
                omni::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let total = server.await.unwrap();
        drainer.abort();
        let waited = freed_at.elapsed();
        assert_eq!(total, CLIENTS);
        // The backoff is capped at 1 s: serving resumes at most that long after descriptors
        // are free (virtual time, exact on the paused clock).
        assert!(waited <= Duration::from_millis(1001), "resumed {waited:?} after the free");
        println!("OK accepted {before} before the limit, {total} in all, resumed after {waited:?}");
    });
}

fn parent(d: Driver) -> Result<(), String> {
    let exe = std::env::current_exe().unwrap();
    let mut c = Command::new(exe)
        .env("OMNI_EMFILE_CHILD", d.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut out = BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).map_err(|e| e.to_string())?;
    if let Some(why) = line.strip_prefix("SKIP ") {
        println!("emfile on {d}: SKIPPED, the kernel refuses it ({})", why.trim());
        return Ok(());
    }
    let port: u16 = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .ok_or(format!("child said {line:?}"))?;
    let clients: Vec<_> =
        (0..CLIENTS).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    writeln!(c.stdin.take().unwrap(), "go").map_err(|e| e.to_string())?;
    // A watchdog, not a synchronisation: a child that spins never finishes on its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = c.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = c.kill();
            return Err(format!("{d}: the accept loop never resumed (killed after 60 s)"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(clients);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).map_err(|e| e.to_string())?;
    let mut err = String::new();
    std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
    if !status.success() || !rest.contains("OK accepted") {
        return Err(format!("{d}: child failed ({status}):\n{rest}\n{err}"));
    }
    if !err.contains("retrying with backoff") {
        return Err(format!("{d}: no line said the accept loop backs off:\n{err}"));
    }
    print!("emfile on {d}: {rest}");
    Ok(())
}

fn main() {
    if let Ok(d) = std::env::var("OMNI_EMFILE_CHILD") {
        child(d.parse().unwrap());
        return;
    }
    let mut failed = 0;
    for d in [Driver::Mio, Driver::IoUring] {
        match parent(d) {
            Ok(()) => println!("test emfile_{d} ... ok"),
            Err(e) => {
                failed += 1;
                println!("test emfile_{d} ... FAILED\n{e}");
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        2 - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
