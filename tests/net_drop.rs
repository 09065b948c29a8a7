//! Cancellation of every in-flight I/O operation, on both drivers: each operation (read,
//! owned read, owned write, accept, connect, UDP recv and send) is dropped before it was
//! submitted, while in flight, and after its completion arrived but before the poll that
//! would return it. Afterwards: no descriptor leaked, no buffer left parked in the driver, and
//! the sockets still work. Memory errors (a buffer freed while the kernel owns it) are the job
//! of the sanitizer and valgrind runs of `.ci/run`, which run this file.
//!
//! One test function, so no parallel test opens descriptors while these count them.

#[path = "common/drivers.rs"]
mod drivers;

use omni::net::{TcpListener, TcpStream, UdpSocket};
use omni::Driver;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Polls `fut` exactly once; returns whether it finished.
async fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> bool {
    let mut fut = Some(fut);
    poll_fn(|cx| Poll::Ready(fut.take().unwrap().poll(cx).is_ready())).await
}

/// Runs the scheduler (and so the driver) until no dropped operation's memory is parked in
/// the driver and nothing but armed polls is in flight.
async fn settle() {
    for _ in 0..100_000 {
        let s = omni::Handle::current().io_stats();
        if s.parked == 0 {
            return;
        }
        omni::yield_now().await;
    }
    panic!("a dropped operation never completed: {:?}", omni::Handle::current().io_stats());
}

/// Lets the kernel deliver (a short sleep of the real clock lets loopback packets land; the
/// scheduler runs the driver meanwhile). Not a synchronisation: `settle` and the assertions
/// that follow hold whether or not anything arrived in time.
async fn let_kernel_run() {
    for _ in 0..200 {
        omni::yield_now().await;
    }
}

async fn pair(l: &TcpListener) -> (TcpStream, TcpStream) {
    let addr = l.local_addr().unwrap();
    let c = omni::spawn(async move { TcpStream::connect(addr).await.unwrap() });
    let (s, _) = l.accept().await.unwrap();
    (c.await.unwrap(), s)
}

async fn read_all(s: &TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    let mut k = 0;
    while k < n {
        let r = s.read(&mut got[k..]).await.unwrap();
        assert!(r > 0, "end of stream after {k} of {n} bytes");
        k += r;
    }
    got
}

/// `single`: a current-thread runtime, where no other thread reaps completions meanwhile.
async fn scenarios(single: bool) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (c, s) = pair(&l).await;

    // Borrowed read: never loses bytes, whichever stage it is dropped at.
    drop(c.read(&mut [0; 8]));
    {
        let mut buf = [0; 8];
        let mut f = pin!(c.read(&mut buf));
        assert!(!poll_once(f.as_mut()).await, "nothing was sent yet");
    }
    {
        let mut buf = [0; 8];
        let mut f = pin!(c.read(&mut buf));
        assert!(!poll_once(f.as_mut()).await);
        s.write_all(b"kept").await.unwrap();
        let_kernel_run().await;
    }
    assert_eq!(read_all(&c, 4).await, b"kept", "a dropped borrowed read consumed nothing");

    // Owned read: dropped unsubmitted, in flight, and completed-but-unpolled.
    drop(c.read_owned(Vec::with_capacity(64)));
    {
        let mut f = pin!(c.read_owned(Vec::with_capacity(64)));
        assert!(!poll_once(f.as_mut()).await);
    }
    if single && omni::Handle::current().driver() == Driver::IoUring {
        // Dropped in flight: the kernel still owns the buffer, so the driver keeps it until
        // the (cancelled) completion arrives, and not a moment less.
        assert_eq!(omni::Handle::current().io_stats().parked, 1, "the buffer was freed early");
    }
    settle().await;
    {
        let mut f = pin!(c.read_owned(Vec::with_capacity(64)));
        assert!(!poll_once(f.as_mut()).await);
        s.write_all(b"maybe").await.unwrap();
        let_kernel_run().await;
    }
    settle().await;
    // Whatever the dropped read took (io_uring may have received it into the dropped
    // buffer), the stream still works.
    s.write_all(b"after").await.unwrap();
    let mut tail = Vec::new();
    while !tail.ends_with(b"after") {
        tail.reserve(16);
        let (r, b) = c.read_owned(std::mem::take(&mut tail)).await;
        tail = b;
        assert!(r.unwrap() > 0);
    }

    // Owned write: a large write that cannot finish (the peer does not read), dropped in
    // flight; then one dropped unsubmitted.
    drop(c.write_all_owned(vec![1; 16]));
    {
        let mut f = pin!(c.write_all_owned(vec![7; 32 << 20]));
        assert!(!poll_once(f.as_mut()).await, "32 MiB cannot fit in loopback buffers");
        let_kernel_run().await;
    }
    settle().await;

    // Accept: unsubmitted, in flight, and completed-but-unpolled (its fd must be closed).
    drop(l.accept());
    {
        let mut f = pin!(l.accept());
        assert!(!poll_once(f.as_mut()).await);
    }
    settle().await;
    let held = {
        let mut f = pin!(l.accept());
        assert!(!poll_once(f.as_mut()).await);
        let late = std::net::TcpStream::connect(addr).unwrap();
        let_kernel_run().await;
        late
    };
    settle().await;
    drop(held);

    // Connect: unsubmitted and in flight.
    drop(TcpStream::connect(addr));
    {
        let mut f = pin!(TcpStream::connect(addr));
        let _ = poll_once(f.as_mut()).await;
    }
    settle().await;

    // UDP: a receive in flight, and a send dropped unsubmitted.
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    {
        let mut buf = [0; 16];
        let mut f = pin!(u.recv_from(&mut buf));
        assert!(!poll_once(f.as_mut()).await);
    }
    drop(u.send_to(b"x", addr));
    let v = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    v.send_to(b"still here", u.local_addr().unwrap()).await.unwrap();
    let mut buf = [0; 16];
    let (n, _) = u.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"still here", "a dropped UDP receive consumed nothing");

    // Drain whatever the accept backlog still holds, so every socket is ours to close.
    drop((c, s, l, u, v));
    settle().await;
}

fn run(d: Driver) {
    let before = fd_count();
    {
        let Some(rt) = drivers::current(d) else { return };
        rt.block_on(scenarios(true));
        assert_eq!(rt.handle().io_stats().parked, 0, "{d}: a buffer is still parked");
        // A runtime dropped with an operation in flight: the driver cancels it and waits for
        // the completion before freeing the buffer.
        rt.block_on(async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let (c, _s) = pair(&l).await;
            omni::spawn(async move {
                let (r, _) = c.read_owned(Vec::with_capacity(1 << 16)).await;
                r.unwrap();
            });
            let_kernel_run().await;
        });
    }
    let after = fd_count();
    assert_eq!(before, after, "{d}: descriptors leaked (before {before}, after {after})");
}

#[test]
fn every_operation_dropped_at_every_stage_leaks_nothing() {
    run(Driver::Mio);
    run(Driver::IoUring);
    // And on a multi-thread runtime, where the operation may complete on another worker.
    let before = fd_count();
    for d in [Driver::Mio, Driver::IoUring] {
        let Some(rt) = drivers::multi(d, 2) else { continue };
        rt.block_on(async { omni::spawn(scenarios(false)).await.unwrap() });
    }
    assert_eq!(before, fd_count(), "multi-thread: descriptors leaked");
}
