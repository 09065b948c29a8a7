//! The channel workloads of the peers table, on one thread each (omni's current-thread
//! runtime, tokio's `current_thread`, async-executor's `LocalExecutor`):
//!
//! - `chan::pingpong`: two tasks bounce a counter over two `bounded(1)` channels; ns per round
//!   trip (two sends, two receives, two task switches).
//! - `chan::mpsc_bounded` / `chan::mpsc_unbounded`: 4 producer tasks send 250k values each into
//!   one consumer over `bounded(1024)` / an unbounded channel; ns per message.
//!
//! omni runs `omni::chan`. Each peer runtime runs tokio's mpsc, async-channel and flume, and its
//! column shows the best of the three (the per-channel rows follow, with omni's own channel in
//! the omni column each time).

use async_executor::LocalExecutor;
use futures_lite::future;
use std::future::Future;
use std::time::{Duration, Instant};

/// Channel pairs every peer runtime runs, with a uniform face.
pub(crate) trait PeerChan: 'static {
    const NAME: &'static str;
    type Tx: Clone + Send + Sync + 'static;
    type Rx: Send + 'static;
    fn bounded(n: usize) -> (Self::Tx, Self::Rx);
    fn unbounded() -> (Self::Tx, Self::Rx);
    fn send(tx: &Self::Tx, v: u64) -> impl Future<Output = ()> + Send;
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = Option<u64>> + Send;
}

/// tokio's mpsc (bounded and unbounded are different types; wrapped in one enum).
pub(crate) struct TokioMpsc;

#[derive(Clone)]
pub(crate) enum TokioTx {
    B(tokio::sync::mpsc::Sender<u64>),
    U(tokio::sync::mpsc::UnboundedSender<u64>),
}

pub(crate) enum TokioRx {
    B(tokio::sync::mpsc::Receiver<u64>),
    U(tokio::sync::mpsc::UnboundedReceiver<u64>),
}

impl PeerChan for TokioMpsc {
    const NAME: &'static str = "tokio-mpsc";
    type Tx = TokioTx;
    type Rx = TokioRx;
    fn bounded(n: usize) -> (TokioTx, TokioRx) {
        let (t, r) = tokio::sync::mpsc::channel(n);
        (TokioTx::B(t), TokioRx::B(r))
    }
    fn unbounded() -> (TokioTx, TokioRx) {
        let (t, r) = tokio::sync::mpsc::unbounded_channel();
        (TokioTx::U(t), TokioRx::U(r))
    }
    async fn send(tx: &TokioTx, v: u64) {
        match tx {
            TokioTx::B(t) => t.send(v).await.expect("receiver alive"),
            TokioTx::U(t) => t.send(v).expect("receiver alive"),
        }
    }
    async fn recv(rx: &mut TokioRx) -> Option<u64> {
        match rx {
            TokioRx::B(r) => r.recv().await,
            TokioRx::U(r) => r.recv().await,
        }
    }
}

/// smol's async-channel.
pub(crate) struct AsyncChannel;

impl PeerChan for AsyncChannel {
    const NAME: &'static str = "async-channel";
    type Tx = async_channel::Sender<u64>;
    type Rx = async_channel::Receiver<u64>;
    fn bounded(n: usize) -> (Self::Tx, Self::Rx) {
        async_channel::bounded(n)
    }
    fn unbounded() -> (Self::Tx, Self::Rx) {
        async_channel::unbounded()
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).await.expect("receiver alive")
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await.ok()
    }
}

/// flume.
pub(crate) struct Flume;

impl PeerChan for Flume {
    const NAME: &'static str = "flume";
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn bounded(n: usize) -> (Self::Tx, Self::Rx) {
        flume::bounded(n)
    }
    fn unbounded() -> (Self::Tx, Self::Rx) {
        flume::unbounded()
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send_async(v).await.expect("receiver alive")
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv_async().await.ok()
    }
}

/// omni's own channels.
pub(crate) struct OmniChan;

impl PeerChan for OmniChan {
    const NAME: &'static str = "omni::chan";
    type Tx = omni::chan::Sender<u64>;
    type Rx = omni::chan::Receiver<u64>;
    fn bounded(n: usize) -> (Self::Tx, Self::Rx) {
        omni::chan::bounded(n)
    }
    fn unbounded() -> (Self::Tx, Self::Rx) {
        omni::chan::unbounded()
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).await.expect("receiver alive")
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await.ok()
    }
}

async fn pingpong<C: PeerChan>(n: usize, spawn: fn(BoxFut) -> BoxFut) -> Duration {
    let (atx, mut arx) = C::bounded(1);
    let (btx, mut brx) = C::bounded(1);
    let start = Instant::now();
    // Both sides are tasks; the main future only waits for them.
    let echo = spawn(Box::pin(async move {
        while let Some(v) = C::recv(&mut arx).await {
            C::send(&btx, v + 1).await;
        }
    }));
    let ping = spawn(Box::pin(async move {
        let mut v = 0;
        for _ in 0..n {
            C::send(&atx, v).await;
            v = C::recv(&mut brx).await.expect("echo alive");
        }
        assert_eq!(v, n as u64);
    }));
    ping.await;
    echo.await;
    start.elapsed()
}

async fn mpsc<C: PeerChan>(
    per_producer: usize,
    bounded: bool,
    spawn: fn(BoxFut) -> BoxFut,
) -> Duration {
    let (tx, mut rx) = if bounded { C::bounded(1024) } else { C::unbounded() };
    let start = Instant::now();
    let consumer = spawn(Box::pin(async move {
        let mut count = 0;
        while let Some(v) = C::recv(&mut rx).await {
            std::hint::black_box(v);
            count += 1;
        }
        assert_eq!(count, 4 * per_producer, "messages lost");
    }));
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let tx = tx.clone();
            spawn(Box::pin(async move {
                for i in 0..per_producer as u64 {
                    C::send(&tx, p * 1_000_000_000 + i).await;
                }
            }))
        })
        .collect();
    drop(tx);
    for p in producers {
        p.await;
    }
    consumer.await;
    start.elapsed()
}

type BoxFut = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn spawn_omni(fut: BoxFut) -> BoxFut {
    let h = omni::spawn(fut);
    Box::pin(async move { h.await.expect("task") })
}

fn spawn_tokio(fut: BoxFut) -> BoxFut {
    let h = tokio::spawn(fut);
    Box::pin(async move { h.await.expect("task") })
}

thread_local! {
    static EX: LocalExecutor<'static> = const { LocalExecutor::new() };
}

fn spawn_ae(fut: BoxFut) -> BoxFut {
    Box::pin(EX.with(|ex| ex.spawn(fut)))
}

fn on_omni<F: Future<Output = Duration>>(f: impl FnOnce(fn(BoxFut) -> BoxFut) -> F) -> Duration {
    omni::Runtime::new().expect("omni runtime").block_on(f(spawn_omni))
}

fn on_tokio<F: Future<Output = Duration>>(f: impl FnOnce(fn(BoxFut) -> BoxFut) -> F) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("tokio");
    rt.block_on(f(spawn_tokio))
}

fn on_ae<F: Future<Output = Duration>>(f: impl FnOnce(fn(BoxFut) -> BoxFut) -> F) -> Duration {
    EX.with(|ex| future::block_on(ex.run(f(spawn_ae))))
}

/// ns per operation of `w` for channel `C` on each runtime.
macro_rules! runs {
    ($name:ident, $work:ident, $($arg:expr),*) => {
        pub(crate) fn $name<C: PeerChan>(n: usize, rt: usize) -> Duration {
            match rt {
                0 => on_omni(|s| $work::<C>(n, $($arg,)* s)),
                1 => on_tokio(|s| $work::<C>(n, $($arg,)* s)),
                _ => on_ae(|s| $work::<C>(n, $($arg,)* s)),
            }
        }
    };
}
runs!(pingpong_on, pingpong,);
runs!(mpsc_bounded_on, mpsc, true);
runs!(mpsc_unbounded_on, mpsc, false);

/// A workload on one runtime (0 omni, 1 tokio, 2 async-executor) with one channel.
pub(crate) type Run = fn(usize, usize) -> Duration;

/// The runs of one workload: omni's channel on omni, then each peer channel (on tokio and on
/// async-executor), in the order of [`PEER_CHANNELS`].
pub(crate) struct ChanRuns {
    pub(crate) omni: Run,
    pub(crate) peers: [Run; 3],
}

/// The peer channels, in the order of `ChanRuns::peers`.
pub(crate) const PEER_CHANNELS: [&str; 3] = [TokioMpsc::NAME, AsyncChannel::NAME, Flume::NAME];

/// `chan::pingpong`: n round trips.
pub(crate) const PINGPONG: ChanRuns = ChanRuns {
    omni: pingpong_on::<OmniChan>,
    peers: [pingpong_on::<TokioMpsc>, pingpong_on::<AsyncChannel>, pingpong_on::<Flume>],
};

/// `chan::mpsc_bounded`: n/4 messages from each of 4 producers.
pub(crate) const MPSC_BOUNDED: ChanRuns = ChanRuns {
    omni: |n, rt| mpsc_bounded_on::<OmniChan>(n / 4, rt),
    peers: [
        |n, rt| mpsc_bounded_on::<TokioMpsc>(n / 4, rt),
        |n, rt| mpsc_bounded_on::<AsyncChannel>(n / 4, rt),
        |n, rt| mpsc_bounded_on::<Flume>(n / 4, rt),
    ],
};

/// `chan::mpsc_unbounded`: n/4 messages from each of 4 producers.
pub(crate) const MPSC_UNBOUNDED: ChanRuns = ChanRuns {
    omni: |n, rt| mpsc_unbounded_on::<OmniChan>(n / 4, rt),
    peers: [
        |n, rt| mpsc_unbounded_on::<TokioMpsc>(n / 4, rt),
        |n, rt| mpsc_unbounded_on::<AsyncChannel>(n / 4, rt),
        |n, rt| mpsc_unbounded_on::<Flume>(n / 4, rt),
    ],
};
