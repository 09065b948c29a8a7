//! The tokio twin of `examples/resp.rs`: the same RESP server (the same `examples/resp/cmd.rs`
//! and `proto.rs`, so the same parsing, store and replies) on tokio, for
//! `benches/real_clients.sh` to measure both runtimes under `redis-benchmark`.
//!
//! Not a benchmark by itself: `cargo bench` runs it with only `--bench`, and then it says how to
//! run it and exits. Run the built binary, or pass flags through cargo:
//!
//! ```text
//! cargo bench --bench resp_tokio -- --addr 127.0.0.1:6380 --workers 2
//! ```
//!
//! `--workers 1` runs tokio's `current_thread` runtime, `--workers N` its `multi_thread` runtime
//! with N workers; `--driver` is checked and ignored.

// The shared modules carry unit tests, which a `harness = false` target compiles under
// `cfg(test)` but never runs (`cargo test --examples` does): here they are dead code.
#![cfg_attr(test, allow(dead_code))]

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "../examples/resp/cmd.rs"]
mod cmd;
#[path = "../examples/common/flags.rs"]
mod flags;

use cmd::{Session, Store};
use flags::Flags;

/// Initial size of each connection's input and output buffers, as in `examples/resp.rs`.
const BUF: usize = 16 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.is_empty() && std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "resp_tokio: a server for benches/real_clients.sh, not a benchmark; \
             run `cargo bench --bench resp_tokio -- --addr 127.0.0.1:6380` to start it"
        );
        return;
    }
    let flags = Flags::from_args_or_exit("resp_tokio", "127.0.0.1:6380", args);
    if let Err(e) = run(&flags) {
        eprintln!("resp_tokio: {e}");
        std::process::exit(1);
    }
}

fn run(flags: &Flags) -> io::Result<()> {
    let rt = match flags.workers {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()?,
    };
    let addr = flags.addr.clone();
    let workers = flags.workers_text();
    rt.block_on(async move {
        // The accept loop is a task, so that on a multi-thread runtime it runs on a worker as
        // omni's does.
        tokio::spawn(async move {
            let listener = TcpListener::bind(addr.as_str()).await?;
            let local = listener.local_addr()?;
            println!("resp_tokio: listening on {local} (tokio, --driver ignored, {workers})");
            let store = Arc::new(Store::new());
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let store = store.clone();
                        // A connection that fails just ends: the client sees it closed.
                        tokio::spawn(async move { connection(stream, &store).await.ok() });
                    }
                    Err(e) => {
                        // omni's accept backs off on EMFILE by itself; tokio's does not.
                        eprintln!("resp_tokio: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
        .await
        .map_err(io::Error::other)?
    })
}

/// Serves one client: read what is there, run every whole request in it, write all the replies
/// at once.
async fn connection(mut stream: TcpStream, store: &Store) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut session = Session::default();
    let mut input = Vec::with_capacity(BUF);
    let mut out = Vec::with_capacity(BUF);
    loop {
        if input.len() == input.capacity() {
            input.reserve(input.capacity());
        }
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
        let served = session.serve(&input, &mut out, store);
        input.drain(..served.consumed);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if served.close {
            return Ok(());
        }
    }
}
