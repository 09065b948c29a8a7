//! TCP: [`TcpListener`] and [`TcpStream`], and the stream's split halves.

use super::addr;
use super::src::{current_reactor, cvt, Src};
use super::stream::byte_stream;
use omni_io::uring::{Accept, Connect, Op};
use omni_io::Interest;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A TCP socket listening for connections.
///
/// # Examples
///
/// ```
/// use omni::net::{TcpListener, TcpStream};
///
/// omni::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = omni::spawn(async move {
///         let s = TcpStream::connect(addr).await.unwrap();
///         s.write_all(b"ping").await.unwrap();
///     });
///     let (server, _) = listener.accept().await.unwrap();
///     let mut buf = [0; 4];
///     let mut got = 0;
///     while got < 4 {
///         got += server.read(&mut buf[got..]).await.unwrap();
///     }
///     assert_eq!(&buf, b"ping");
///     client.await.unwrap();
/// });
/// ```
#[derive(Debug)]
pub struct TcpListener {
    src: Src,
    io: std::net::TcpListener,
}

/// The first pause after `accept` runs out of descriptors; it doubles up to [`MAX_BACKOFF`]
/// (Go's figures).
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest pause between two accepts that ran out of descriptors.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Whether an accept error means "out of descriptors or memory for now": the connection stays
/// queued in the kernel and a later accept may succeed.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

impl TcpListener {
    /// Binds to the first address of `addr` that works, with `SO_REUSEADDR` (as std does on
    /// Unix) and the system's default backlog. A host name is resolved on this thread.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match std::net::TcpListener::bind(a) {
                Ok(l) => return TcpListener::from_std(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "omni::net: no address to bind to")
        }))
    }

    /// Wraps a listener bound elsewhere (it is made non-blocking).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener { src: Src::new(listener.as_raw_fd())?, io: listener })
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Accepts one connection.
    ///
    /// When the process (or system) runs out of descriptors (`EMFILE`, `ENFILE`) or buffer
    /// memory, the connection stays queued in the kernel and `accept` does not fail or spin:
    /// it says so once on stderr, sleeps 5 ms, doubling up to 1 s between tries, and returns
    /// the connection once descriptors are free again. Other errors are returned.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.accept_once().await {
                Err(e) if is_resource_exhaustion(&e) => {
                    if backoff == FIRST_BACKOFF {
                        eprintln!(
                            "omni::net: accept on {}: {e}; retrying with backoff (5 ms doubling \
                             to 1 s) until descriptors are free",
                            self.local_addr().map_or_else(|_| "?".into(), |a| a.to_string())
                        );
                    }
                    crate::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                r => return r,
            }
        }
    }

    async fn accept_once(&self) -> io::Result<(TcpStream, SocketAddr)> {
        match Op::new(self.src.reactor(), Accept::new(self.src.fd())) {
            Ok(op) => {
                let (c, accept) = op.await;
                let fd = c.result? as RawFd;
                // SAFETY: the kernel just created `fd` for this accept; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                let (storage, len) = accept.peer();
                let peer = addr::from_raw(storage, len)?;
                Ok((TcpStream::from_owned_nonblocking(owned)?, peer))
            }
            Err(_) => {
                let (s, peer) =
                    poll_fn(|cx| self.src.poll_io(cx, Interest::READABLE, || self.io.accept()))
                        .await?;
                s.set_nonblocking(true)?;
                Ok((TcpStream::from_std_nonblocking(s)?, peer))
            }
        }
    }

    /// Sets the time-to-live of packets sent from accepted sockets (`IP_TTL`).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.set_ttl(ttl)
    }

    /// The `IP_TTL` of this socket.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.ttl()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

/// A TCP connection.
///
/// Read and write with the methods here (they take `&self`, so one task may read while
/// another writes), through the futures-io traits ([`futures_io::AsyncRead`],
/// [`futures_io::AsyncWrite`]) on `TcpStream` and `&TcpStream`, or with the owned-buffer
/// methods ([`read_owned`](TcpStream::read_owned), [`write_all_owned`](TcpStream::write_all_owned)),
/// which are completions on io_uring.
///
/// One task at a time should read, and one write: a second reader waiting at the same time
/// takes over the first one's wake-up.
#[derive(Debug)]
pub struct TcpStream {
    src: Src,
    io: std::net::TcpStream,
}

byte_stream!(TcpStream);

impl TcpStream {
    /// Connects to the first address of `addr` that accepts. A host name is resolved on this
    /// thread.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_addr(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "omni::net: no address to connect to")
        }))
    }

    async fn connect_addr(a: SocketAddr) -> io::Result<TcpStream> {
        let domain = if a.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
        let reactor = current_reactor()?;
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = cvt(unsafe {
            libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
        } as isize)? as RawFd;
        // SAFETY: `fd` was just created and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let (storage, len) = addr::to_raw(&a);
        match Op::new(&reactor, Connect::new(fd, storage, len)) {
            Ok(op) => {
                op.await.0.result?;
                TcpStream::from_owned_nonblocking(owned)
            }
            Err(_) => {
                // SAFETY: `storage` holds a valid address of `len` bytes.
                let r = unsafe {
                    libc::connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len)
                };
                let in_progress = r < 0 && {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EINPROGRESS) {
                        return Err(e);
                    }
                    true
                };
                // Registered only now, after connect(2) started: epoll reports a socket that
                // has not begun connecting as hung up, and a worker waiting in epoll_wait
                // would record that hang-up for good before the connect began.
                let stream = TcpStream::from_owned_nonblocking(owned)?;
                if in_progress {
                    stream.writable().await?;
                    if let Some(e) = stream.io.take_error()? {
                        return Err(e);
                    }
                    // Writable without a pending error can still mean "not connected" on
                    // some systems: ask.
                    stream.io.peer_addr()?;
                }
                Ok(stream)
            }
        }
    }

    fn from_owned_nonblocking(fd: OwnedFd) -> io::Result<TcpStream> {
        TcpStream::from_std_nonblocking(std::net::TcpStream::from(fd))
    }

    fn from_std_nonblocking(io: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream { src: Src::new(io.as_raw_fd())?, io })
    }

    /// Wraps a connected stream made elsewhere (it is made non-blocking).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_std_nonblocking(stream)
    }

    /// The local address of this connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The remote address of this connection.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// Sets `TCP_NODELAY` (send small writes at once instead of coalescing them).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.nodelay()
    }

    /// Sets the time-to-live of this socket's packets (`IP_TTL`).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.set_ttl(ttl)
    }

    /// The `IP_TTL` of this socket.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.ttl()
    }

    /// Sets `SO_LINGER`: `Some(d)` makes a close wait up to `d` for unsent data (and `Some(0)`
    /// resets the connection); `None` closes in the background.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        let l = libc::linger {
            l_onoff: linger.is_some() as libc::c_int,
            l_linger: linger.map_or(0, |d| d.as_secs().min(libc::c_int::MAX as u64) as libc::c_int),
        };
        // SAFETY: `l` is a valid `linger` for this option and outlives the call.
        let r = unsafe {
            libc::setsockopt(
                self.io.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&l as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        cvt(r as isize).map(|_| ())
    }

    /// Peeks at incoming bytes without taking them.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.src.poll_io(cx, Interest::READABLE, || self.io.peek(buf))).await
    }

    /// Gives the socket back as a std stream (still non-blocking), leaving the driver.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let TcpStream { src, io } = self;
        drop(src);
        Ok(io)
    }
}
