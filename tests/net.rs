//! `omni::net` on both drivers: every test here runs once on mio and once on io_uring (see
//! `common/drivers.rs`). Drop and descriptor-leak tests live in `net_drop.rs` (one test, run
//! alone, so counting descriptors is not disturbed by parallel tests).

#[path = "common/drivers.rs"]
mod drivers;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use omni::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use omni::Driver;
use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

matrix!(
    echo_borrowed_buffers,
    echo_owned_buffers,
    fifty_connections_in_parallel,
    futures_io_traits_read_to_end,
    borrowed_split_reads_while_writing,
    owned_split_write_half_drop_is_end_of_stream,
    shutdown_write_reaches_the_peer,
    socket_options_round_trip,
    connect_refused_is_an_error,
    udp_send_to_and_connected,
    unix_listener_and_pair,
    four_megabytes_each_way,
    io_is_served_while_a_task_never_waits,
    multi_thread_echo,
    a_socket_outliving_its_runtime_fails_instead_of_hanging,
    peer_reset_is_an_error_not_a_hang,
);

async fn read_exact(s: &TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]).await? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    Ok(())
}

/// Echoes every byte of every connection until EOF.
async fn echo_server(listener: TcpListener) {
    loop {
        let Ok((s, _)) = listener.accept().await else { return };
        omni::spawn(async move {
            let mut buf = vec![0; 4096];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

async fn listen() -> (TcpListener, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

fn echo_borrowed_buffers(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        omni::spawn(echo_server(l));
        let c = TcpStream::connect(addr).await.unwrap();
        for i in 0..100u32 {
            let msg = i.to_le_bytes();
            c.write_all(&msg).await.unwrap();
            let mut back = [0; 4];
            read_exact(&c, &mut back).await.unwrap();
            assert_eq!(back, msg);
        }
        assert_eq!(c.peer_addr().unwrap(), addr);
    });
}

fn echo_owned_buffers(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        omni::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut buf = Vec::with_capacity(256);
            loop {
                buf.clear();
                let (r, b) = s.read_owned(buf).await;
                buf = b;
                match r.unwrap() {
                    0 => return,
                    _ => {
                        let (r, b) = s.write_all_owned(buf).await;
                        r.unwrap();
                        buf = b;
                    }
                }
            }
        });
        let c = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::with_capacity(64);
        for i in 0..200u64 {
            let (r, out) = c.write_all_owned(i.to_le_bytes().to_vec()).await;
            r.unwrap();
            assert_eq!(out, i.to_le_bytes(), "the buffer comes back intact");
            buf.clear();
            while buf.len() < 8 {
                let (r, b) = c.read_owned(buf).await;
                buf = b;
                assert!(r.unwrap() > 0, "unexpected end of stream");
            }
            assert_eq!(buf, i.to_le_bytes());
        }
        // A full buffer reads nothing and is not an end of stream.
        let full = Vec::new();
        let (r, full) = c.read_owned(full).await;
        assert_eq!((r.unwrap(), full.len()), (0, 0));
    });
}

fn fifty_connections_in_parallel(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        omni::spawn(echo_server(l));
        let clients: Vec<_> = (0..50u32)
            .map(|id| {
                omni::spawn(async move {
                    let c = TcpStream::connect(addr).await.unwrap();
                    c.set_nodelay(true).unwrap();
                    for round in 0..100u32 {
                        let msg = [id.to_le_bytes(), round.to_le_bytes()].concat();
                        c.write_all(&msg).await.unwrap();
                        let mut back = [0; 8];
                        read_exact(&c, &mut back).await.unwrap();
                        assert_eq!(back[..], msg[..]);
                    }
                    id
                })
            })
            .collect();
        let mut sum = 0;
        for c in clients {
            sum += c.await.unwrap();
        }
        assert_eq!(sum, (0..50).sum::<u32>());
    });
}

fn futures_io_traits_read_to_end(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        let server = omni::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            all
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        c.write_all(&data).await.unwrap();
        c.close().await.unwrap();
        assert_eq!(server.await.unwrap(), data);
    });
}

fn borrowed_split_reads_while_writing(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        omni::spawn(echo_server(l));
        let c = TcpStream::connect(addr).await.unwrap();
        let (r, w) = c.split();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7) as u8).collect();
        // Writing a megabyte without reading would fill both socket buffers: the halves must
        // make progress together.
        let write = async {
            w.write_all(&data).await.unwrap();
        };
        let read = async {
            let mut got = vec![0; data.len()];
            let mut n = 0;
            while n < got.len() {
                n += r.read(&mut got[n..]).await.unwrap();
            }
            got
        };
        let ((), got) = futures_lite::future::zip(write, read).await;
        assert!(got == data);
    });
}

fn owned_split_write_half_drop_is_end_of_stream(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        let server = omni::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut n = 0;
            let mut buf = [0; 64];
            loop {
                match s.read(&mut buf).await.unwrap() {
                    0 => return n,
                    k => n += k,
                }
            }
        });
        let (rh, wh) = TcpStream::connect(addr).await.unwrap().into_split();
        let writer = omni::spawn(async move {
            wh.write_all(b"0123456789").await.unwrap();
            drop(wh);
        });
        writer.await.unwrap();
        assert_eq!(server.await.unwrap(), 10);
        // The read half still works: the server closed, so it reads end of stream.
        assert_eq!(rh.read(&mut [0; 8]).await.unwrap(), 0);
    });
}

fn shutdown_write_reaches_the_peer(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        let c = TcpStream::connect(addr).await.unwrap();
        let (s, peer) = l.accept().await.unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        c.write_all(b"last words").await.unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut buf = [0; 10];
        read_exact(&s, &mut buf).await.unwrap();
        assert_eq!(&buf, b"last words");
        assert_eq!(s.read(&mut buf).await.unwrap(), 0, "end of stream after the shutdown");
        // The other direction still works.
        s.write_all(b"ok").await.unwrap();
        let mut two = [0; 2];
        read_exact(&c, &mut two).await.unwrap();
        assert_eq!(&two, b"ok");
    });
}

fn socket_options_round_trip(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        let c = TcpStream::connect(addr).await.unwrap();
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        c.set_nodelay(false).unwrap();
        assert!(!c.nodelay().unwrap());
        c.set_ttl(42).unwrap();
        assert_eq!(c.ttl().unwrap(), 42);
        l.set_ttl(7).unwrap();
        assert_eq!(l.ttl().unwrap(), 7);
        c.set_linger(Some(std::time::Duration::from_secs(1))).unwrap();
        assert!(c.take_error().unwrap().is_none());
    });
}

fn connect_refused_is_an_error(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        // Bind then drop a listener: its port is (almost surely) closed now.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    });
}

fn udp_send_to_and_connected(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // The receiver waits first, so the datagram arrives at a parked task.
        let recv = omni::spawn(async move {
            let mut buf = [0; 32];
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            (buf[..n].to_vec(), from, b)
        });
        omni::yield_now().await;
        a.send_to(b"datagram", ba).await.unwrap();
        let (got, from, b) = recv.await.unwrap();
        assert_eq!((&got[..], from), (&b"datagram"[..], aa));
        a.connect(ba).await.unwrap();
        b.connect(aa).await.unwrap();
        b.send(b"back").await.unwrap();
        let mut buf = [0; 8];
        let n = a.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"back");
        assert_eq!(a.peer_addr().unwrap(), ba);
        a.set_broadcast(true).unwrap();
        assert!(a.broadcast().unwrap());
    });
}

fn unix_listener_and_pair(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("omni-net-{}-{d}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let server = omni::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut buf = [0; 5];
            let mut n = 0;
            while n < 5 {
                n += s.read(&mut buf[n..]).await.unwrap();
            }
            s.write_all(&buf).await.unwrap();
        });
        let c = UnixStream::connect(&path).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut back = [0; 5];
        let mut n = 0;
        while n < 5 {
            n += c.read(&mut back[n..]).await.unwrap();
        }
        assert_eq!(&back, b"hello");
        server.await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        let (x, y) = UnixStream::pair().unwrap();
        let (r, b) = x.write_all_owned(b"owned".to_vec()).await;
        r.unwrap();
        assert_eq!(b, b"owned");
        let (r, got) = y.read_owned(Vec::with_capacity(16)).await;
        assert!(r.unwrap() > 0);
        assert!(b"owned".starts_with(&got));
    });
}

fn four_megabytes_each_way(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        let data: Arc<Vec<u8>> = Arc::new((0..4u32 << 20).map(|i| (i % 251) as u8).collect());
        let d2 = data.clone();
        let server = omni::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (r, w) = s.into_split();
            let sender = omni::spawn(async move {
                let (res, _) = w.write_all_owned(d2.to_vec()).await;
                res.unwrap();
            });
            let mut got = Vec::with_capacity(4 << 20);
            loop {
                let spare = got.capacity() - got.len();
                if spare == 0 {
                    break;
                }
                let (res, g) = r.read_owned(got).await;
                got = g;
                assert!(res.unwrap() > 0, "early end of stream");
            }
            sender.await.unwrap();
            got
        });
        let c = TcpStream::connect(addr).await.unwrap();
        let (r, w) = c.split();
        let send = async {
            w.write_all(&data).await.unwrap();
        };
        let recv = async {
            let mut got = vec![0; data.len()];
            let mut n = 0;
            while n < got.len() {
                n += r.read(&mut got[n..]).await.unwrap();
            }
            got
        };
        let ((), got) = futures_lite::future::zip(send, recv).await;
        assert!(got == *data, "client received what the server sent");
        assert!(server.await.unwrap() == *data, "server received what the client sent");
    });
}

fn io_is_served_while_a_task_never_waits(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        omni::spawn(echo_server(l));
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        // Always runnable: the scheduler never runs out of work while it spins, so the
        // driver is reached only through the bounded-interval poll.
        let spinner = omni::spawn(async move {
            while !s2.load(SeqCst) {
                omni::yield_now().await;
            }
        });
        let c = TcpStream::connect(addr).await.unwrap();
        for _ in 0..20 {
            c.write_all(b"x").await.unwrap();
            let mut b = [0; 1];
            read_exact(&c, &mut b).await.unwrap();
        }
        stop.store(true, SeqCst);
        spinner.await.unwrap();
    });
}

fn multi_thread_echo(d: Driver) {
    let Some(rt) = drivers::multi(d, 2) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        omni::spawn(echo_server(l));
        let clients: Vec<_> = (0..8u8)
            .map(|id| {
                omni::spawn(async move {
                    let c = TcpStream::connect(addr).await.unwrap();
                    let mut buf = Vec::with_capacity(16);
                    for round in 0..200u8 {
                        let (r, _) = c.write_all_owned(vec![id, round]).await;
                        r.unwrap();
                        buf.clear();
                        while buf.len() < 2 {
                            let (r, b) = c.read_owned(buf).await;
                            buf = b;
                            assert!(r.unwrap() > 0);
                        }
                        assert_eq!(buf, [id, round]);
                    }
                })
            })
            .collect();
        for c in clients {
            c.await.unwrap();
        }
    });
}

fn a_socket_outliving_its_runtime_fails_instead_of_hanging(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let c = rt.block_on(async { TcpStream::connect(addr).await.unwrap() });
    let (_peer, _) = std_listener.accept().unwrap();
    drop(rt);
    let Some(rt2) = drivers::current(d) else { return };
    let e = rt2.block_on(async { c.read(&mut [0; 4]).await.unwrap_err() });
    assert!(e.to_string().contains("shut down"), "{e}");
}

fn peer_reset_is_an_error_not_a_hang(d: Driver) {
    let Some(rt) = drivers::current(d) else { return };
    rt.block_on(async {
        let (l, addr) = listen().await;
        let c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        // Linger 0: closing sends a reset.
        s.set_linger(Some(std::time::Duration::ZERO)).unwrap();
        drop(s);
        let mut buf = [0; 8];
        let r = c.read(&mut buf).await;
        assert!(
            matches!(&r, Err(e) if e.kind() == io::ErrorKind::ConnectionReset)
                || matches!(r, Ok(0)),
            "{r:?}"
        );
    });
}

#[test]
fn auto_picks_a_driver_and_the_environment_can_choose() {
    let rt = omni::Builder::new_current_thread().build().unwrap();
    assert_ne!(rt.handle().driver(), Driver::Auto);
    let rt = omni::Builder::new_current_thread().driver(Driver::Mio).build().unwrap();
    assert_eq!(rt.handle().driver(), Driver::Mio);
}

#[test]
fn sockets_outside_a_runtime_say_what_to_do() {
    let e = futures_lite::future::block_on(TcpListener::bind("127.0.0.1:0")).unwrap_err();
    assert!(e.to_string().contains("inside Runtime::block_on"), "{e}");
}
