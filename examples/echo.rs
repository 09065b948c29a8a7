//! A TCP echo server on omni: one task per connection, each sending back what it reads until
//! the client closes.
//!
//! ```text
//! cargo run --release --example echo -- [--addr 127.0.0.1:7000] [--driver auto|mio|io_uring] [--workers N]
//! ```
//!
//! `--workers 1` (the default) runs a current-thread runtime, `--workers N` a multi-thread one
//! with N workers. Try it with `nc 127.0.0.1 7000`.

use std::io;

use omni::net::TcpStream;

#[path = "common/flags.rs"]
mod flags;
#[path = "common/server.rs"]
mod server;

/// Capacity of each connection's buffer: the most one read takes.
const BUF: usize = 16 * 1024;

fn main() {
    let flags = flags::Flags::from_args_or_exit("echo", "127.0.0.1:7000", std::env::args().skip(1));
    if let Err(e) = server::run("echo", &flags, echo) {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}

/// Echoes until end of stream. The buffer travels into each operation and back (the io_uring
/// driver needs the kernel to own it meanwhile), and is reused.
async fn echo(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(BUF);
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
