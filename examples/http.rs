//! A minimal HTTP/1.1 server on omni that answers `hello` to every request: keep-alive,
//! pipelined requests answered from one read with one write, `Connection: close` and HTTP/1.0
//! honoured.
//!
//! ```text
//! cargo run --release --example http -- [--addr 127.0.0.1:8080] [--driver auto|mio|io_uring] [--workers N]
//! curl http://127.0.0.1:8080/
//! wrk -t2 -c50 -d10s http://127.0.0.1:8080/
//! ```
//!
//! The request framing lives in `http/proto.rs`, shared with the tokio twin
//! `benches/http_tokio.rs` so that `benches/real_clients.sh` compares the runtimes on identical
//! work.

use std::io;

use omni::net::TcpStream;

#[path = "common/flags.rs"]
mod flags;
#[path = "http/proto.rs"]
mod proto;
#[path = "common/server.rs"]
mod server;

/// Initial capacity of each connection's input and output buffers; they grow as needed.
const BUF: usize = 16 * 1024;

fn main() {
    let flags = flags::Flags::from_args_or_exit("http", "127.0.0.1:8080", std::env::args().skip(1));
    if let Err(e) = server::run("http", &flags, connection) {
        eprintln!("http: {e}");
        std::process::exit(1);
    }
}

/// Serves one client until it closes or a request asks to close.
async fn connection(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
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
        let served = proto::serve(&input, &mut out);
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
