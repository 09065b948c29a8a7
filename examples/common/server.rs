//! The omni half shared by the example servers: the runtime their flags ask for, and a
//! listener that runs one task per connection.

use std::future::Future;
use std::io;
use std::time::Duration;

use omni::net::{TcpListener, TcpStream};

use crate::flags::Flags;

/// Builds the runtime `flags` ask for, binds `flags.addr`, prints the start line
/// (`NAME: listening on ADDR (omni, driver D, N workers)`) and spawns `serve(stream)` for every
/// connection, forever. A connection whose task fails just ends; the client sees it closed.
///
/// # Errors
///
/// If the runtime cannot be built (for example `--driver io_uring` on a kernel without it) or
/// the address cannot be bound.
pub(crate) fn run<F, Fut>(name: &str, flags: &Flags, serve: F) -> io::Result<()>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let mut builder = match flags.workers {
        1 => omni::Builder::new_current_thread(),
        n => {
            let mut b = omni::Builder::new_multi_thread();
            b.workers(n);
            b
        }
    };
    let rt = builder.driver(flags.driver).build()?;
    let (name, addr, driver, workers) =
        (name.to_owned(), flags.addr.clone(), rt.handle().driver(), flags.workers_text());
    // The accept loop is a task, so that on a multi-thread runtime it runs on a worker.
    rt.block_on(rt.spawn(async move {
        let listener = TcpListener::bind(addr.as_str()).await?;
        let local = listener.local_addr()?;
        println!("{name}: listening on {local} (omni, driver {driver}, {workers})");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => drop(omni::spawn(serve(stream))),
                Err(e) => {
                    // accept backs off on EMFILE by itself; anything else is reported, and a
                    // short pause keeps a persistent error from spinning.
                    eprintln!("{name}: accept: {e}");
                    omni::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }))?
}
