//! Networking: TCP, UDP and Unix domain sockets on the runtime's I/O driver.
//!
//! Every type works on both drivers (mio and io_uring, see [`Builder::driver`]) and must be
//! created inside a runtime (in `block_on` or a task): it registers with that runtime's driver.
//! Byte streams ([`TcpStream`], [`UnixStream`]) implement the futures-io traits
//! ([`futures_io::AsyncRead`], [`futures_io::AsyncWrite`]) and offer `async` methods taking
//! `&self`, so one task may read while another writes; their owned-buffer methods
//! (`read_owned`, `write_all_owned`) run as io_uring completions when that driver is in use
//! and cost one readiness wait otherwise.
//!
//! Cancellation: dropping any of these futures at any `.await` loses nothing that was not
//! already read: a borrowed-buffer read or write either completed in the system call that
//! returned or did not happen; an owned-buffer operation in flight keeps its buffer inside the
//! driver until the kernel has finished with it (a late accepted connection is closed).
//!
//! [`Builder::driver`]: crate::Builder::driver
//!
//! # Examples
//!
//! An echo server and a client in one runtime:
//!
//! ```
//! use omni::net::{TcpListener, TcpStream};
//!
//! omni::block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     omni::spawn(async move {
//!         let (s, _) = listener.accept().await.unwrap();
//!         let mut buf = vec![0; 1024];
//!         loop {
//!             match s.read(&mut buf).await.unwrap() {
//!                 0 => break,
//!                 n => s.write_all(&buf[..n]).await.unwrap(),
//!             }
//!         }
//!     });
//!     let c = TcpStream::connect(addr).await.unwrap();
//!     let (r, buf) = c.write_all_owned(b"echo".to_vec()).await;
//!     r.unwrap();
//!     let mut back = Vec::with_capacity(buf.len());
//!     while back.len() < 4 {
//!         let (r, b) = c.read_owned(back).await;
//!         back = b;
//!         assert!(r.unwrap() > 0);
//!     }
//!     assert_eq!(back, b"echo");
//! });
//! ```

mod addr;
mod src;
mod stream;
mod udp;

/// TCP sockets and the split halves of a [`TcpStream`].
pub mod tcp;
/// Unix domain sockets and the split halves of a [`UnixStream`].
pub mod unix;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

pub(crate) use src::{current_reactor, cvt, read_spare};
