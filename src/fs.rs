//! Files: open, read, write, read to the end, metadata.
//!
//! On io_uring, opening, reading and writing are kernel operations like socket I/O (owned
//! buffers: the buffer goes in and comes back with the result, and stays with the driver if
//! the future is dropped in flight). On mio, where regular files have no readiness, each call
//! runs `pread`/`pwrite`/`open` on the blocking pool ([`crate::spawn_blocking`]), as tokio
//! does. Metadata comes from the blocking pool on both drivers (std's [`std::fs::Metadata`] is
//! only made by std).
//!
//! A [`File`] has a cursor: [`File::read`] and [`File::write_all`] continue where the last
//! call ended; [`File::read_at`] and [`File::write_at`] take an explicit offset and leave the
//! cursor alone.
//!
//! # Examples
//!
//! ```
//! omni::block_on(async {
//!     let path = std::env::temp_dir().join(format!("omni-fs-doc-{}", std::process::id()));
//!     omni::fs::write(&path, b"hello, file".to_vec()).await.unwrap();
//!     assert_eq!(omni::fs::read(&path).await.unwrap(), b"hello, file");
//!     assert_eq!(omni::fs::metadata(&path).await.unwrap().len(), 11);
//!     std::fs::remove_file(&path).unwrap();
//! });
//! ```

use crate::net::{current_reactor, read_spare};
use omni_io::uring::{Op, OpenAt, Recv, Send};
use omni_io::Reactor;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

/// An open file.
#[derive(Debug)]
pub struct File {
    fd: Arc<OwnedFd>,
    reactor: Arc<Reactor>,
    pos: u64,
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "omni::fs: a path with a NUL byte")
    })
}

/// Runs `f` on the blocking pool and flattens its panic into an error.
async fn blocking<R: std::marker::Send + 'static>(
    f: impl FnOnce() -> io::Result<R> + std::marker::Send + 'static,
) -> io::Result<R> {
    match crate::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(io::Error::other(format!("omni::fs: the blocking call failed: {e}"))),
    }
}

impl File {
    /// Opens an existing file for reading.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        File::open_with(path.as_ref(), libc::O_RDONLY, 0).await
    }

    /// Creates a file for writing (truncating it if it exists), mode `0o666` before umask.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        File::open_with(path.as_ref(), libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o666).await
    }

    /// Opens `path` with raw `open(2)` flags (`O_CLOEXEC` is always added) and a mode for a
    /// file it creates.
    pub async fn open_with(path: &Path, flags: i32, mode: u32) -> io::Result<File> {
        let reactor = current_reactor()?;
        let cpath = c_path(path)?;
        let fd = match Op::new(&reactor, OpenAt::new(cpath, flags, mode)) {
            Ok(op) => op.await.0.result? as RawFd,
            Err(_) => {
                let cpath = c_path(path)?;
                blocking(move || {
                    // SAFETY: `cpath` is a valid C string for the duration of the call.
                    let fd = unsafe { libc::open(cpath.as_ptr(), flags | libc::O_CLOEXEC, mode) };
                    if fd < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(fd)
                    }
                })
                .await?
            }
        };
        // SAFETY: the kernel just created `fd` for this open; nothing else owns it.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(File { fd, reactor, pos: 0 })
    }

    /// Reads into the spare capacity of `buf` at `offset` and extends its length by the bytes
    /// read (0 at the end of the file). The cursor does not move.
    pub async fn read_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
        if buf.len() == buf.capacity() {
            return (Ok(0), buf);
        }
        match Op::new(&self.reactor, Recv::file(self.fd.as_raw_fd(), buf, offset)) {
            Ok(op) => {
                let (c, recv) = op.await;
                match c.result {
                    Ok(n) => (Ok(n as usize), recv.into_buf(n as usize)),
                    Err(e) => (Err(e), recv.into_buf(0)),
                }
            }
            Err(recv) => {
                let mut buf = recv.into_buf(0);
                let fd = self.fd.clone();
                let r = blocking(move || {
                    let r = read_spare(&mut buf, |p, n| {
                        // SAFETY: `read_spare` passes a pointer valid for writes of `n` bytes.
                        unsafe { libc::pread(fd.as_raw_fd(), p.cast(), n, offset as libc::off_t) }
                    });
                    Ok((r, buf))
                })
                .await;
                match r {
                    Ok(pair) => pair,
                    Err(e) => (Err(e), Vec::new()),
                }
            }
        }
    }

    /// Writes some of `buf` at `offset`; returns how many bytes went. The cursor does not move.
    pub async fn write_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
        self.write_some_at(buf, 0, offset).await
    }

    async fn write_some_at(
        &self,
        buf: Vec<u8>,
        pos: usize,
        offset: u64,
    ) -> (io::Result<usize>, Vec<u8>) {
        match Op::new(&self.reactor, Send::file(self.fd.as_raw_fd(), buf, pos, offset)) {
            Ok(op) => {
                let (c, send) = op.await;
                (c.result.map(|n| n as usize), send.into_buf())
            }
            Err(send) => {
                let buf = send.into_buf();
                let fd = self.fd.clone();
                let r = blocking(move || {
                    let rest = &buf[pos.min(buf.len())..];
                    // SAFETY: `rest` is valid for reads of its length.
                    let n = unsafe {
                        libc::pwrite(
                            fd.as_raw_fd(),
                            rest.as_ptr().cast(),
                            rest.len(),
                            offset as libc::off_t,
                        )
                    };
                    Ok((crate::net::cvt(n), buf))
                })
                .await;
                match r {
                    Ok(pair) => pair,
                    Err(e) => (Err(e), Vec::new()),
                }
            }
        }
    }

    /// Reads at the cursor into the spare capacity of `buf` and moves the cursor.
    pub async fn read(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let (r, buf) = self.read_at(buf, self.pos).await;
        if let Ok(n) = r {
            self.pos += n as u64;
        }
        (r, buf)
    }

    /// Writes all of `buf` at the cursor and moves the cursor past it.
    pub async fn write_all(&mut self, mut buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut done = 0;
        while done < buf.len() {
            let r;
            (r, buf) = self.write_some_at(buf, done, self.pos).await;
            match r {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => {
                    done += n;
                    self.pos += n as u64;
                }
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Reads from the cursor to the end of the file, appending to `buf`.
    pub async fn read_to_end(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let start = buf.len();
        let hint = self.metadata().await.map_or(0, |m| m.len().saturating_sub(self.pos));
        buf.reserve((hint as usize).max(4096) + 1);
        loop {
            if buf.len() == buf.capacity() {
                buf.reserve(buf.capacity().max(4096));
            }
            let r;
            (r, buf) = self.read(buf).await;
            match r {
                Ok(0) => return (Ok(buf.len() - start), buf),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
    }

    /// The file's metadata (from the blocking pool).
    pub async fn metadata(&self) -> io::Result<std::fs::Metadata> {
        let fd = self.fd.clone();
        blocking(move || {
            // SAFETY: borrowing the fd as a `std::fs::File` that is never dropped (forgotten
            // below), so the fd stays owned by `fd`.
            let f =
                std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd.as_raw_fd()) });
            f.metadata()
        })
        .await
    }

    /// Flushes data and metadata to the device (`fsync(2)`, from the blocking pool).
    pub async fn sync_all(&self) -> io::Result<()> {
        let fd = self.fd.clone();
        blocking(move || {
            // SAFETY: plain fsync on an fd kept open by `fd`.
            crate::net::cvt(unsafe { libc::fsync(fd.as_raw_fd()) } as isize).map(|_| ())
        })
        .await
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Reads a whole file.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let mut f = File::open(path).await?;
    let (r, buf) = f.read_to_end(Vec::new()).await;
    r.map(|_| buf)
}

/// Reads a whole file as UTF-8.
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let bytes = read(path).await?;
    String::from_utf8(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("omni::fs: {e}")))
}

/// Writes `data` as the whole content of `path`, creating or truncating it.
pub async fn write(path: impl AsRef<Path>, data: impl Into<Vec<u8>>) -> io::Result<()> {
    let mut f = File::create(path).await?;
    f.write_all(data.into()).await.0
}

/// The metadata of `path`, following symlinks (from the blocking pool).
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    let path = path.as_ref().to_owned();
    blocking(move || std::fs::metadata(path)).await
}
