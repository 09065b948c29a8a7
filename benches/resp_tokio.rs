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

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "../examples/resp/cmd.rs"]
mod cmd;
#[path = "../examples/common/flags.rs"]
mod flags;
#[path = "twins/server.rs"]
mod server;

use cmd::{Session, Store};

/// Initial size of each connection's input and output buffers, as in `examples/resp.rs`.
const BUF: usize = 16 * 1024;

fn main() {
    let store = Arc::new(Store::new());
    server::main("resp_tokio", "127.0.0.1:6380", move |s| {
        let store = store.clone();
        async move { connection(s, &store).await }
    });
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
