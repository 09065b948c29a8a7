//! epoll reports a TCP socket that has not started connecting as hung up. A connect that
//! registers its socket first can have that hang-up recorded (by a worker waiting in
//! epoll_wait) before connect(2) runs; the reads after it then say `WouldBlock` while the
//! readiness says "closed". This test stages that order by hand and checks that the
//! `WouldBlock` clears the false hang-up, so the next wait sleeps instead of spinning (it spun
//! for good before, and hung the sanitizer run of CI).

use omni_io::{Driver, Interest, Reactor, Ready, Registration};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[test]
fn a_would_block_clears_the_hang_up_of_a_socket_registered_before_connect() {
    let reactor = Arc::new(Reactor::new(Driver::Mio, 1).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
    };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just created and nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let reg = Registration::new(&reactor, fd).unwrap();
    let mut cx = Context::from_waker(Waker::noop());

    // The fresh source is assumed ready; the first attempt says it is not (not connected).
    let Poll::Ready(Ok(ev)) = reg.poll_ready(&mut cx, Interest::READABLE) else { panic!() };
    reg.clear_readiness(ev);
    // The driver turns before connect(2): epoll says the socket hung up.
    reactor.try_turn(0, Some(Duration::ZERO)).unwrap().unwrap();
    let Poll::Ready(Ok(ev)) = reg.poll_ready(&mut cx, Interest::READABLE) else {
        panic!("the unconnected socket was not reported hung up; this kernel differs")
    };
    assert!(ev.ready.contains(Ready::READ_CLOSED), "{:?}", ev.ready);

    let mut stream = std::net::TcpStream::from(owned);
    match stream.connect_timeout_nonblocking(listener.local_addr().unwrap()) {
        Ok(()) => {}
        Err(e) => panic!("connect: {e}"),
    }
    let (mut peer, _) = listener.accept().unwrap();
    // Connected, nothing sent: the read says WouldBlock despite the recorded hang-up.
    let err = stream.read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    reg.clear_readiness(ev);
    // Drain the connect's own events, then the wait must sleep.
    reactor.try_turn(0, Some(Duration::ZERO)).unwrap().unwrap();
    while let Poll::Ready(Ok(ev)) = reg.poll_ready(&mut cx, Interest::READABLE) {
        assert!(!ev.ready.contains(Ready::READ_CLOSED), "the false hang-up came back");
        assert_eq!(stream.read(&mut [0; 8]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
        reg.clear_readiness(ev);
    }
    // And data still wakes it.
    peer.write_all(b"hi").unwrap();
    reactor.try_turn(0, Some(Duration::from_secs(5))).unwrap().unwrap();
    let Poll::Ready(Ok(_)) = reg.poll_ready(&mut cx, Interest::READABLE) else {
        panic!("data arrived but the source is not readable")
    };
    assert_eq!(stream.read(&mut [0; 8]).unwrap(), 2);
    drop(reg);
    let _ = stream.as_raw_fd();
}

trait ConnectNonblocking {
    fn connect_timeout_nonblocking(&self, addr: std::net::SocketAddr) -> std::io::Result<()>;
}

impl ConnectNonblocking for std::net::TcpStream {
    /// connect(2) on the non-blocking socket; loopback accepts at once or says EINPROGRESS,
    /// and the listener's backlog completes it.
    fn connect_timeout_nonblocking(&self, addr: std::net::SocketAddr) -> std::io::Result<()> {
        let std::net::SocketAddr::V4(v4) = addr else { unreachable!() };
        // SAFETY: all-zero bytes are a valid `sockaddr_in`.
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_port = v4.port().to_be();
        sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
        // SAFETY: `sin` is a valid address of the given length for the call's duration.
        let r = unsafe {
            libc::connect(
                self.as_raw_fd(),
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINPROGRESS) {
            Ok(())
        } else {
            Err(e)
        }
    }
}
