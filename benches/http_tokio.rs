//! The tokio twin of `examples/http.rs`: the same HTTP/1.1 `hello` server (the same
//! `examples/http/proto.rs`, so the same framing and responses) on tokio, for
//! `benches/real_clients.sh` to measure both runtimes under `wrk`.
//!
//! Not a benchmark by itself: `cargo bench` runs it with only `--bench`, and then it says how to
//! run it and exits. Run the built binary, or pass flags through cargo:
//!
//! ```text
//! cargo bench --bench http_tokio -- --addr 127.0.0.1:8080 --workers 2
//! ```
//!
//! `--workers 1` runs tokio's `current_thread` runtime, `--workers N` its `multi_thread` runtime
//! with N workers; `--driver` is checked and ignored.

// The shared modules carry unit tests, which a `harness = false` target compiles under
// `cfg(test)` but never runs (`cargo test --examples` does): here they are dead code.
#![cfg_attr(test, allow(dead_code))]

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "../examples/common/flags.rs"]
mod flags;
#[path = "../examples/http/proto.rs"]
mod proto;
#[path = "twins/server.rs"]
mod server;

/// Initial size of each connection's input and output buffers, as in `examples/http.rs`.
const BUF: usize = 16 * 1024;

fn main() {
    server::main("http_tokio", "127.0.0.1:8080", connection);
}

/// Serves one client: read what is there, answer every whole request in it, write all the
/// responses at once.
async fn connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut input = Vec::with_capacity(BUF);
    let mut out = Vec::with_capacity(BUF);
    loop {
        if input.len() == input.capacity() {
            input.reserve(input.capacity());
        }
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
        let served = proto::serve(&input, &mut out);
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
