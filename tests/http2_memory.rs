//! What one HTTP/2 connection can make the server hold (issue 19): a client opens many
//! streams on a large response, grants huge flow-control windows and then never reads
//! its socket. Every byte the server takes from a handler's body and cannot write
//! stays in its memory, so the tests count the bytes pulled from the bodies once they
//! stop moving, and compare them with what the limits allow.

mod common;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::PATIENCE;
use poco_httpd::{Outcome, Request, Response, Server, ServerBuilder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

/// The size of each block a handler's body yields.
const BLOCK: usize = 16 * 1024;
/// Each response's size: far more than any buffer, so only the limits stop the pull.
const BODY: usize = 4 * 1024 * 1024;
/// The largest flow-control window HTTP/2 allows: the client lets the server send all.
const WINDOW: u32 = (1 << 31) - 1;
/// What the server's kernel socket may absorb on top of the server's own buffers:
/// Linux autotunes a loopback send buffer up to `tcp_wmem`'s 4 MiB maximum, and the
/// client's receive buffer is kept small.
const SOCKET_SLACK: usize = 5 * 1024 * 1024;

static BLOCK_BYTES: [u8; BLOCK] = [b'x'; BLOCK];

/// Counts the requests started and the body bytes the server pulled.
#[derive(Clone, Default)]
struct Counters {
    started: Arc<AtomicUsize>,
    pulled: Arc<AtomicUsize>,
}

/// A server answering `/small` with a few bytes and anything else with a [`BODY`]-byte
/// stream whose blocks are counted as the server pulls them.
async fn start(builder: ServerBuilder, counters: &Counters) -> common::TestServer {
    let counters = counters.clone();
    // The streams never end, since the client never reads: shutdown cuts them.
    let builder = builder
        .shutdown_deadline(Duration::from_millis(200))
        .content("/small", common::answer("small"))
        .content("/", move |_req: Request, res: Response| {
            counters.started.fetch_add(1, Ordering::SeqCst);
            let pulled = Arc::clone(&counters.pulled);
            let blocks = futures_util::stream::iter(0..BODY / BLOCK);
            res.set_body_stream(futures_util::StreamExt::map(blocks, move |_| {
                pulled.fetch_add(BLOCK, Ordering::SeqCst);
                Ok::<_, io::Error>(Bytes::from_static(&BLOCK_BYTES))
            }));
            Outcome::Ok
        });
    common::start(builder).await
}

/// A socket that stops reading for good once `stopped` is set, while its writes go
/// on: the client can still open streams, but takes no more of the server's bytes.
struct StopReading {
    tcp: TcpStream,
    stopped: Arc<AtomicBool>,
}

impl AsyncRead for StopReading {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.stopped.load(Ordering::SeqCst) {
            // Never woken: this client reads nothing more.
            return Poll::Pending;
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for StopReading {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// An h2c client that stops reading once it has the server's settings (through one
/// whole small answer), then opens `streams` requests for the large body; returns
/// the open requests, which must live as long as the test needs the streams.
async fn open_unread_streams(addr: SocketAddr, streams: usize) -> Vec<h2::client::ResponseFuture> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let tcp = socket.connect(addr).await.expect("connect");
    let stopped = Arc::new(AtomicBool::new(false));
    let io = StopReading {
        tcp,
        stopped: Arc::clone(&stopped),
    };
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .handshake::<_, Bytes>(io)
        .await
        .expect("h2 handshake");
    tokio::spawn(connection);
    let small = get(&sender, addr, "/small").await;
    let mut body = tokio::time::timeout(PATIENCE, small)
        .await
        .expect("small answer in time")
        .expect("small answer")
        .into_body();
    while let Some(data) = body.data().await {
        let data = data.expect("small body");
        let _ = body.flow_control().release_capacity(data.len());
    }
    stopped.store(true, Ordering::SeqCst);
    let mut open = Vec::with_capacity(streams);
    for _ in 0..streams {
        open.push(get(&sender, addr, "/large").await);
    }
    open
}

/// Sends a `GET` on a new stream once the client may open one.
async fn get(
    sender: &h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
    path: &str,
) -> h2::client::ResponseFuture {
    let request = poco_httpd::http::Request::builder()
        .uri(format!("http://{addr}{path}"))
        .body(())
        .expect("request");
    let ready = tokio::time::timeout(PATIENCE, sender.clone().ready());
    let mut sender = ready
        .await
        .expect("stream slot in time")
        .expect("stream slot");
    sender.send_request(request, true).expect("send").0
}

/// Waits until every stream's handler ran and the bytes pulled stopped growing (no
/// change over three looks 200 ms apart); returns the bytes pulled.
async fn settled(counters: &Counters, streams: usize) -> usize {
    let started = Arc::clone(&counters.started);
    common::poll(
        || format!("{streams} handlers started"),
        || (started.load(Ordering::SeqCst) == streams).then_some(()),
    )
    .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (mut last, mut unchanged) = (usize::MAX, 0);
    while unchanged < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pull never settled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = counters.pulled.load(Ordering::SeqCst);
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
    }
    eprintln!("{streams} streams pulled {} KiB", last / KIB);
    last
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

#[tokio::test]
async fn a_connection_that_never_reads_pins_little_by_default() {
    let counters = Counters::default();
    // Every stream answered at once (by default only 32 are), so that the
    // connection's budget, not the stream slots, is what bounds the bytes pulled.
    let server = start(Server::builder().max_active_streams(128), &counters).await;
    let streams = 100;
    let _open = open_unread_streams(server.addr, streams).await;
    let pulled = settled(&counters, streams).await;
    // The connection holds at most its 4 MiB budget plus one block per stream that
    // waits for it (and each stream at most its 64 KiB send buffer plus two blocks);
    // hyper's own 400 KiB buffer let 100 streams pull about 45 MiB here.
    let per_stream = streams * (64 * KIB + 2 * BLOCK);
    let allowed = per_stream.min(4 * MIB + streams * BLOCK) + SOCKET_SLACK;
    assert!(
        pulled <= allowed,
        "pulled {} KiB, allowed {} KiB",
        pulled / KIB,
        allowed / KIB
    );
    assert!(pulled >= streams * BLOCK, "every stream sent: {pulled}");
    server.stop().await;
}

#[tokio::test]
async fn the_send_buffer_and_stream_limits_bound_each_stream() {
    let counters = Counters::default();
    let builder = Server::builder()
        .max_concurrent_streams(16)
        .http2_send_buffer(MIB)
        .http2_connection_buffer(64 * MIB);
    let server = start(builder, &counters).await;
    let _open = open_unread_streams(server.addr, 16).await;
    let pulled = settled(&counters, 16).await;
    let allowed = 16 * (MIB + 2 * BLOCK) + SOCKET_SLACK;
    assert!(pulled <= allowed, "pulled {pulled}, allowed {allowed}");
    // The larger buffer is really used: every stream filled its megabyte, which the
    // default 64 KiB would not allow.
    assert!(pulled >= 16 * MIB, "pulled only {} KiB", pulled / KIB);
    server.stop().await;
}

#[tokio::test]
async fn the_connection_buffer_bounds_all_streams_together() {
    let counters = Counters::default();
    let builder = Server::builder()
        .max_concurrent_streams(16)
        .http2_send_buffer(MIB)
        .http2_connection_buffer(MIB);
    let server = start(builder, &counters).await;
    let _open = open_unread_streams(server.addr, 16).await;
    let pulled = settled(&counters, 16).await;
    // The budget, plus a block per stream waiting for it; the streams' own buffers
    // would have let them pull 16 MiB.
    let allowed = MIB + 16 * BLOCK + SOCKET_SLACK;
    assert!(pulled <= allowed, "pulled {pulled}, allowed {allowed}");
    assert!(pulled >= MIB, "the budget is used: {pulled}");
    server.stop().await;
}
