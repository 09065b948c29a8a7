//! `tcp::echo`: round trips over loopback TCP, server and clients in one runtime.
//!
//! One run binds a listener on `127.0.0.1:0`, spawns a server task that accepts [`CONNS`]
//! connections and spawns an echo task for each, then spawns [`CONNS`] client tasks that each
//! connect and do `n` round trips: write [`MSG`] bytes, read the [`MSG`] bytes echoed back. The
//! time runs from just before the first connect to the last client's last reply. Every socket
//! has `TCP_NODELAY`, so each round trip is one segment each way.
//!
//! The workload has its own table (its shape differs from the main one): round trips per second
//! for omni on each I/O driver and for tokio, at 1 worker (current-thread runtimes) and at 2
//! workers (omni multi-thread, tokio `multi_thread`), with omni / tokio ratios for the same
//! worker count. A run takes seconds, so it does at most [`MAX_ROUNDS`] rounds.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::report::{median, Config};

/// The workload id, for the filters.
pub(crate) const ID: &str = "tcp::echo";
/// Round trips per connection at full scale.
pub(crate) const N: usize = 10_000;
/// Connections, each with its client task and its server-side echo task.
const CONNS: usize = 50;
/// Bytes per message.
const MSG: usize = 64;
/// Most rounds: each run is `CONNS * n` round trips, seconds at full scale.
const MAX_ROUNDS: usize = 5;

// ---------------------------------------------------------------------------------------------
// tokio

fn tokio_rt(workers: usize) -> io::Result<tokio::runtime::Runtime> {
    match workers {
        1 => tokio::runtime::Builder::new_current_thread().enable_io().build(),
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_io().build(),
    }
}

/// One run on tokio with `workers` workers (1: `current_thread`).
fn echo_tokio(n: usize, workers: usize) -> Result<Duration, String> {
    let rt = tokio_rt(workers).map_err(|e| format!("tokio runtime: {e}"))?;
    let elapsed = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            for _ in 0..CONNS {
                let (stream, _) = listener.accept().await?;
                tokio::spawn(echo_conn_tokio(stream));
            }
            io::Result::Ok(())
        });
        let start = Instant::now();
        let clients: Vec<_> = (0..CONNS).map(|_| tokio::spawn(client_tokio(addr, n))).collect();
        for c in clients {
            c.await??;
        }
        let elapsed = start.elapsed();
        server.await??;
        io::Result::Ok(elapsed)
    });
    Ok(elapsed.expect("tcp::echo on tokio failed"))
}

async fn echo_conn_tokio(mut stream: tokio::net::TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

async fn client_tokio(addr: SocketAddr, n: usize) -> io::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let msg = [7u8; MSG];
    let mut reply = [0u8; MSG];
    for _ in 0..n {
        stream.write_all(&msg).await?;
        stream.read_exact(&mut reply).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// omni

/// One run on omni with `driver` and `workers` workers (1: current-thread). `Err` if the runtime
/// cannot be built with that driver (io_uring refused by the kernel): the cell shows n/a.
fn echo_omni(n: usize, workers: usize, driver: omni::Driver) -> Result<Duration, String> {
    let mut builder = match workers {
        1 => omni::Builder::new_current_thread(),
        w => {
            let mut b = omni::Builder::new_multi_thread();
            b.workers(w);
            b
        }
    };
    let rt = builder.driver(driver).build().map_err(|e| e.to_string())?;
    let elapsed = rt.block_on(async move {
        let listener = omni::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = omni::spawn(async move {
            for _ in 0..CONNS {
                let (stream, _) = listener.accept().await?;
                drop(omni::spawn(echo_conn_omni(stream)));
            }
            io::Result::Ok(())
        });
        let start = Instant::now();
        let clients: Vec<_> = (0..CONNS).map(|_| omni::spawn(client_omni(addr, n))).collect();
        for c in clients {
            c.await??;
        }
        let elapsed = start.elapsed();
        server.await??;
        io::Result::Ok(elapsed)
    });
    Ok(elapsed.expect("tcp::echo on omni failed"))
}

fn echo_omni_mio(n: usize, workers: usize) -> Result<Duration, String> {
    echo_omni(n, workers, omni::Driver::Mio)
}

fn echo_omni_uring(n: usize, workers: usize) -> Result<Duration, String> {
    echo_omni(n, workers, omni::Driver::IoUring)
}

/// Echoes with one owned buffer that travels into each operation and back.
async fn echo_conn_omni(stream: omni::net::TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (read, b) = stream.read_owned(buf).await;
        if read? == 0 {
            return Ok(());
        }
        let (written, b) = stream.write_all_owned(b).await;
        written?;
        buf = b;
        buf.clear();
    }
}

async fn client_omni(addr: SocketAddr, n: usize) -> io::Result<()> {
    let stream = omni::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut msg = vec![7u8; MSG];
    let mut reply = Vec::with_capacity(MSG);
    for _ in 0..n {
        let (written, m) = stream.write_all_owned(msg).await;
        written?;
        msg = m;
        reply.clear();
        while reply.len() < MSG {
            let (read, r) = stream.read_owned(reply).await;
            reply = r;
            if read? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The table.

/// One column of the table: a runtime, and how to run the workload on it with `workers`.
struct Column {
    name: &'static str,
    /// The name in a ratio's header.
    short: &'static str,
    run: fn(usize, usize) -> Result<Duration, String>,
}

/// The columns: omni's first, then tokio's, which the ratios divide by.
const COLUMNS: [Column; 3] = [
    Column { name: "omni (mio)", short: "mio", run: echo_omni_mio },
    Column { name: "omni (io_uring)", short: "io_uring", run: echo_omni_uring },
    Column { name: "tokio", short: "tokio", run: echo_tokio },
];

/// The tokio column's index in [`COLUMNS`].
const TOKIO: usize = 2;

/// The medians of one worker count, per column: round trips per second, or why the column could
/// not run.
struct Row {
    workers: usize,
    cells: Vec<Result<f64, String>>,
}

/// Measures `tcp::echo` at 1 and 2 workers, interleaving the runtimes round by round, and prints
/// its table to stdout.
pub(crate) fn report(cfg: &Config) {
    let n = cfg.size(N);
    let rounds = cfg.rounds.min(MAX_ROUNDS);
    eprintln!("peers: {ID} ({CONNS} connections x {n} round trips, {rounds} rounds)");
    let started = Instant::now();
    let rows: Vec<Row> = [1, 2].into_iter().map(|workers| measure(n, rounds, workers)).collect();
    eprintln!("peers: {ID} done in {:.1?}", started.elapsed());
    print(&rows, n, rounds);
}

fn measure(n: usize, rounds: usize, workers: usize) -> Row {
    let trips = (CONNS * n) as f64;
    let mut samples: Vec<Result<Vec<f64>, String>> = vec![Ok(Vec::new()); COLUMNS.len()];
    for _ in 0..rounds {
        for (col, s) in COLUMNS.iter().zip(&mut samples) {
            if let Ok(rates) = s {
                match (col.run)(n, workers) {
                    Ok(d) => rates.push(trips / d.as_secs_f64()),
                    Err(why) => *s = Err(why),
                }
            }
        }
    }
    Row { workers, cells: samples.into_iter().map(|s| s.map(|rates| median(&rates))).collect() }
}

fn print(rows: &[Row], n: usize, rounds: usize) {
    let mut header = vec!["workers".to_string()];
    header.extend(COLUMNS.iter().map(|c| c.name.to_string()));
    header.extend(COLUMNS[..TOKIO].iter().map(|c| format!("{}/tokio", c.short)));
    let mut lines = vec![header];
    let mut notes = Vec::new();
    for Row { workers, cells } in rows {
        let mut line = vec![match workers {
            1 => "1 (current-thread)".to_string(),
            w => format!("{w} (multi-thread)"),
        }];
        for (col, cell) in COLUMNS.iter().zip(cells) {
            line.push(match cell {
                Ok(v) => format!("{v:.0}"),
                Err(why) => {
                    notes.push(format!("{}, {workers} workers: {why}", col.name));
                    "n/a".to_string()
                }
            });
        }
        for cell in &cells[..TOKIO] {
            line.push(match (cell, &cells[TOKIO]) {
                (Ok(o), Ok(t)) => format!("{:.2}", o / t),
                _ => "n/a".to_string(),
            });
        }
        lines.push(line);
    }
    let widths: Vec<usize> =
        (0..lines[0].len()).map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0)).collect();
    println!();
    println!(
        "{ID}: {CONNS} connections x {n} round trips of {MSG} bytes on loopback, \
         server and clients in one runtime"
    );
    for (i, line) in lines.iter().enumerate() {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(
                |(j, (cell, w))| if j == 0 { format!("{cell:<w$}") } else { format!("{cell:>w$}") },
            )
            .collect();
        println!("{}", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
            println!("{}", rule.join("-|-"));
        }
    }
    println!();
    println!("Round trips per second, medians over {rounds} rounds (runs interleaved), higher is better.");
    println!("Ratios are omni / tokio at the same worker count: above 1.00 omni is faster.");
    for note in notes {
        println!("  n/a: {note}");
    }
}
