//! The tokio half shared by the bench-only twins of the example servers: the `--bench` guard,
//! the flags, the runtime they ask for and an accept loop with one task per connection (the
//! tokio mirror of `examples/common/server.rs`).

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::flags::Flags;

/// The twin's `main`: parses the flags (defaults to `default_addr`), builds tokio's
/// `current_thread` runtime for `--workers 1` or its `multi_thread` runtime for more, prints
/// the start line and spawns `serve(stream)` for every connection, forever. Run by `cargo
/// bench` with nothing but `--bench`, it says how to start it and returns.
pub(crate) fn main<F, Fut>(name: &str, default_addr: &str, serve: F)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.is_empty() && std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "{name}: a server for benches/real_clients.sh, not a benchmark; \
             run `cargo bench --bench {name} -- --addr {default_addr}` to start it"
        );
        return;
    }
    let flags = Flags::from_args_or_exit(name, default_addr, args);
    if let Err(e) = run(name, &flags, serve) {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    }
}

fn run<F, Fut>(name: &str, flags: &Flags, serve: F) -> io::Result<()>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let rt = match flags.workers {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()?,
    };
    let (name, addr, workers) = (name.to_owned(), flags.addr.clone(), flags.workers_text());
    rt.block_on(async move {
        // The accept loop is a task, so that on a multi-thread runtime it runs on a worker as
        // omni's does.
        tokio::spawn(async move {
            let listener = TcpListener::bind(addr.as_str()).await?;
            let local = listener.local_addr()?;
            println!("{name}: listening on {local} (tokio, --driver ignored, {workers})");
            loop {
                match listener.accept().await {
                    // A connection that fails just ends: the client sees it closed.
                    Ok((stream, _)) => drop(tokio::spawn(serve(stream))),
                    Err(e) => {
                        // omni's accept backs off on EMFILE by itself; tokio's does not.
                        eprintln!("{name}: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
        .await
        .map_err(io::Error::other)?
    })
}
