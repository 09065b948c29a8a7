//! A small Redis-protocol (RESP2) server on omni: `PING`, `GET`, `SET`, `DEL`, `INCR`, `QUIT`,
//! and enough of `COMMAND` and `CONFIG GET` for `redis-cli` and `redis-benchmark`.
//!
//! ```text
//! cargo run --release --example resp -- [--addr 127.0.0.1:6380] [--driver auto|mio|io_uring] [--workers N]
//! redis-cli -p 6380 set greeting hello
//! redis-benchmark -p 6380 -t ping,set,get -P 16 -q
//! ```
//!
//! Each connection reads what the client sent, runs every whole command in it (pipelining) and
//! writes all the replies with one write. The protocol and the store live in `resp/cmd.rs` and
//! `resp/proto.rs`, shared with the tokio twin `benches/resp_tokio.rs` so that
//! `benches/real_clients.sh` compares the runtimes on identical work.

use std::io;
use std::sync::Arc;

use omni::net::TcpStream;

#[path = "resp/cmd.rs"]
mod cmd;
#[path = "common/flags.rs"]
mod flags;
#[path = "common/server.rs"]
mod server;

use cmd::{Session, Store};

/// Initial capacity of each connection's input and output buffers; they grow as needed.
const BUF: usize = 16 * 1024;

fn main() {
    let flags = flags::Flags::from_args_or_exit("resp", "127.0.0.1:6380", std::env::args().skip(1));
    let store = Arc::new(Store::new());
    if let Err(e) = server::run("resp", &flags, move |s| connection(s, store.clone())) {
        eprintln!("resp: {e}");
        std::process::exit(1);
    }
}

/// Serves one client until it closes, sends `QUIT` or breaks the protocol.
async fn connection(stream: TcpStream, store: Arc<Store>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut session = Session::default();
    let mut input = Vec::with_capacity(BUF);
    let mut out = Vec::with_capacity(BUF);
    loop {
        if input.len() == input.capacity() {
            input.reserve(input.capacity()); // a request larger than the buffer
        }
        let (read, buf) = stream.read_owned(input).await;
        input = buf;
        if read? == 0 {
            return Ok(());
        }
        let served = session.serve(&input, &mut out, &store);
        input.drain(..served.consumed);
        if !out.is_empty() {
            let (written, buf) = stream.write_all_owned(out).await;
            written?;
            out = buf;
            out.clear();
        }
        if served.close {
            return Ok(());
        }
    }
}
