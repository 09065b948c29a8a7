//! What every byte-stream socket type (TCP, Unix) shares: the read and write methods, the
//! futures-io traits, and its split halves. One macro writes them for each type, so the two
//! stay identical.

/// Writes the stream methods, the futures-io impls, the split halves, `shutdown`,
/// `take_error` and the descriptor traits of `$ty`: a struct with exactly the fields
/// `src: Src` and `io` (a std socket with `shutdown`, `take_error` and `into_raw_fd`).
macro_rules! byte_stream {
    ($ty:ident) => {
        impl $ty {
            /// Reads some bytes into `buf`; `Ok(0)` means the peer closed its side (or `buf`
            /// is empty).
            pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.src.read(buf).await
            }

            /// Writes some of `buf`; returns how many bytes went.
            pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
                self.src.write(buf).await
            }

            /// Writes all of `buf`.
            pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
                self.src.write_all(buf).await
            }

            /// Reads into the spare capacity of `buf` (`len..capacity`) and extends its length
            /// by the bytes read; the buffer comes back whatever happens. On io_uring the
            /// kernel writes straight into `buf` (one completion, no readiness round trip); if
            /// this future is dropped in flight, the buffer stays with the driver until the
            /// kernel is done with it.
            ///
            /// `Ok(0)` with spare capacity means the peer closed its side.
            pub async fn read_owned(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
                self.src.read_owned(buf).await
            }

            /// Writes some of `buf[pos..]` (an owned-buffer write, see
            /// [`read_owned`](Self::read_owned)); returns how many bytes went.
            pub async fn write_owned(
                &self,
                buf: Vec<u8>,
                pos: usize,
            ) -> (io::Result<usize>, Vec<u8>) {
                self.src.write_owned(buf, pos).await
            }

            /// Writes all of `buf` (an owned-buffer write), handing the buffer back.
            pub async fn write_all_owned(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
                self.src.write_all_owned(buf).await
            }

            /// Waits until the socket may be readable (a read may still say `WouldBlock`).
            pub async fn readable(&self) -> io::Result<()> {
                self.src.ready(omni_io::Interest::READABLE).await
            }

            /// Waits until the socket may be writable.
            pub async fn writable(&self) -> io::Result<()> {
                self.src.ready(omni_io::Interest::WRITABLE).await
            }

            /// Borrowed halves, one to read and one to write, usable from two tasks of a
            /// scope (or two branches of a `join`) at once.
            pub fn split(&self) -> (ReadHalf<'_>, WriteHalf<'_>) {
                (ReadHalf(self), WriteHalf(self))
            }

            /// Owned halves, each `Send + 'static`, for two tasks. Dropping the write half
            /// shuts the write direction down (the peer reads end of stream).
            pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
                let s = std::sync::Arc::new(self);
                (OwnedReadHalf(s.clone()), OwnedWriteHalf(s))
            }
        }

        $crate::net::stream::async_io!($ty, s => s);
        $crate::net::stream::async_io!(&$ty, s => *s);

        #[doc = concat!("The read half of a borrowed [`", stringify!($ty), "`], from [`", stringify!($ty), "::split`].")]
        #[derive(Debug)]
        pub struct ReadHalf<'a>(&'a $ty);

        #[doc = concat!("The write half of a borrowed [`", stringify!($ty), "`], from [`", stringify!($ty), "::split`].")]
        #[derive(Debug)]
        pub struct WriteHalf<'a>(&'a $ty);

        #[doc = concat!("The read half of an [`", stringify!($ty), "`], from [`", stringify!($ty), "::into_split`].")]
        #[derive(Debug)]
        pub struct OwnedReadHalf(std::sync::Arc<$ty>);

        #[doc = concat!("The write half of an [`", stringify!($ty), "`], from [`", stringify!($ty), "::into_split`]; dropping it shuts the write direction down.")]
        #[derive(Debug)]
        pub struct OwnedWriteHalf(std::sync::Arc<$ty>);

        impl ReadHalf<'_> {
            /// Reads some bytes into `buf` (see the stream's `read`).
            pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf).await
            }

            /// Reads into the spare capacity of `buf` (see the stream's `read_owned`).
            pub async fn read_owned(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
                self.0.read_owned(buf).await
            }
        }

        impl WriteHalf<'_> {
            /// Writes some of `buf` (see the stream's `write`).
            pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
                self.0.write(buf).await
            }

            /// Writes all of `buf`.
            pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
                self.0.write_all(buf).await
            }

            /// Writes all of `buf`, handing it back (see the stream's `write_all_owned`).
            pub async fn write_all_owned(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
                self.0.write_all_owned(buf).await
            }
        }

        impl OwnedReadHalf {
            /// Reads some bytes into `buf` (see the stream's `read`).
            pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf).await
            }

            /// Reads into the spare capacity of `buf` (see the stream's `read_owned`).
            pub async fn read_owned(&self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
                self.0.read_owned(buf).await
            }
        }

        impl OwnedWriteHalf {
            /// Writes some of `buf` (see the stream's `write`).
            pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
                self.0.write(buf).await
            }

            /// Writes all of `buf`.
            pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
                self.0.write_all(buf).await
            }

            /// Writes all of `buf`, handing it back (see the stream's `write_all_owned`).
            pub async fn write_all_owned(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
                self.0.write_all_owned(buf).await
            }
        }

        impl Drop for OwnedWriteHalf {
            fn drop(&mut self) {
                let _ = self.0.shutdown_write();
            }
        }

        $crate::net::stream::async_read!(ReadHalf<'_>, s => s.0);
        $crate::net::stream::async_read!(OwnedReadHalf, s => &*s.0);
        $crate::net::stream::async_write!(WriteHalf<'_>, s => s.0);
        $crate::net::stream::async_write!(OwnedWriteHalf, s => &*s.0);

        impl $ty {
            /// Shuts down the read side, the write side, or both (`shutdown(2)`).
            pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
                self.io.shutdown(how)
            }

            /// Shuts the write side down; a socket whose peer is already gone counts as done.
            fn shutdown_write(&self) -> io::Result<()> {
                match self.io.shutdown(std::net::Shutdown::Write) {
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                    r => r,
                }
            }

            /// Takes the pending socket error (`SO_ERROR`), if any.
            pub fn take_error(&self) -> io::Result<Option<io::Error>> {
                self.io.take_error()
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.io.as_raw_fd()
            }
        }

        impl std::os::fd::IntoRawFd for $ty {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                let $ty { src, io } = self;
                // Leave the driver before the descriptor changes hands.
                drop(src);
                io.into_raw_fd()
            }
        }
    };
}

/// `futures_io::AsyncRead` for `$t`, whose stream `$s => $stream` names (a `&` of it).
macro_rules! async_read {
    ($t:ty, $s:ident => $stream:expr) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let $s = &*self;
                $stream.src.poll_read(cx, buf)
            }
        }
    };
}

/// `futures_io::AsyncWrite` for `$t`, like [`async_read`]; closing shuts the write side down.
macro_rules! async_write {
    ($t:ty, $s:ident => $stream:expr) => {
        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let $s = &*self;
                $stream.src.poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let $s = &*self;
                $stream.src.poll_write_vectored(cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let $s = &*self;
                std::task::Poll::Ready($stream.shutdown_write())
            }
        }
    };
}

/// Both futures-io traits for `$t`.
macro_rules! async_io {
    ($t:ty, $s:ident => $stream:expr) => {
        $crate::net::stream::async_read!($t, $s => $stream);
        $crate::net::stream::async_write!($t, $s => $stream);
    };
}

pub(crate) use {async_io, async_read, async_write, byte_stream};
