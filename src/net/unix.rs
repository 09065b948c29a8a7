//! Unix domain sockets: [`UnixListener`] and [`UnixStream`], and the stream's split halves.

use super::src::Src;
use super::stream::byte_stream;
use omni_io::Interest;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{self as unet, SocketAddr};
use std::path::Path;

/// A Unix domain socket listening for connections.
///
/// # Examples
///
/// ```
/// use omni::net::{UnixListener, UnixStream};
///
/// omni::block_on(async {
///     let dir = std::env::temp_dir().join(format!("omni-doc-{}", std::process::id()));
///     std::fs::create_dir_all(&dir).unwrap();
///     let path = dir.join("sock");
///     let _ = std::fs::remove_file(&path);
///     let listener = UnixListener::bind(&path).unwrap();
///     let client = UnixStream::connect(&path).await.unwrap();
///     let (server, _) = listener.accept().await.unwrap();
///     client.write_all(b"hi").await.unwrap();
///     let mut buf = [0; 2];
///     let mut got = 0;
///     while got < 2 {
///         got += server.read(&mut buf[got..]).await.unwrap();
///     }
///     assert_eq!(&buf, b"hi");
///     std::fs::remove_dir_all(&dir).unwrap();
/// });
/// ```
#[derive(Debug)]
pub struct UnixListener {
    src: Src,
    io: unet::UnixListener,
}

impl UnixListener {
    /// Binds to `path` (which must not exist yet).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::from_std(unet::UnixListener::bind(path)?)
    }

    /// Wraps a listener bound elsewhere (it is made non-blocking).
    pub fn from_std(listener: unet::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener { src: Src::new(listener.as_raw_fd())?, io: listener })
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Accepts one connection (backing off like [`TcpListener::accept`] when out of
    /// descriptors).
    ///
    /// [`TcpListener::accept`]: super::TcpListener::accept
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let mut backoff = std::time::Duration::from_millis(5);
        loop {
            let r =
                poll_fn(|cx| self.src.poll_io(cx, Interest::READABLE, || self.io.accept())).await;
            match r {
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                    crate::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(super::tcp::MAX_BACKOFF);
                }
                Err(e) => return Err(e),
                Ok((s, addr)) => {
                    s.set_nonblocking(true)?;
                    return Ok((UnixStream::from_std_nonblocking(s)?, addr));
                }
            }
        }
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

/// A Unix domain stream socket; reads and writes as [`TcpStream`](super::TcpStream) does.
#[derive(Debug)]
pub struct UnixStream {
    src: Src,
    io: unet::UnixStream,
}

byte_stream!(UnixStream);

impl UnixStream {
    /// Connects to the socket at `path` (a local connect completes at once, or fails).
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        UnixStream::from_std(unet::UnixStream::connect(path)?)
    }

    /// A connected pair of sockets.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = unet::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    fn from_std_nonblocking(io: unet::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream { src: Src::new(io.as_raw_fd())?, io })
    }

    /// Wraps a connected stream made elsewhere (it is made non-blocking).
    pub fn from_std(stream: unet::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::from_std_nonblocking(stream)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }
}
