//! Clients that hold responses without taking them, over HTTP/2 with the h2 crate:
//! a flow-control window kept at zero (the send timeout resets the stream and drops
//! its body), many such streams on one connection (at most `max_active_streams` are
//! answered at once), and a client that reads only a trickle (the write timeout
//! measures a minimum rate, which a trickle does not restart).

mod common;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::{Events, PATIENCE, QUIET};
use futures_util::StreamExt;
use poco_httpd::{Outcome, Request, Response, Server, ServerBuilder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

const SHORT: Duration = Duration::from_millis(300);
const BLOCK: usize = 64 * 1024;

/// Sets its flag when dropped: stands for a file a response body holds open.
struct OpenFile(Arc<AtomicBool>);

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A Content handler streaming `blocks` blocks of 64 KiB, holding an [`OpenFile`]
/// whose flag is `closed`, counting its calls in `calls`.
fn large_stream(
    blocks: usize,
    closed: &Arc<AtomicBool>,
    calls: &Arc<AtomicUsize>,
) -> impl Fn(Request, Response) -> Outcome + Send + Sync + 'static {
    let (closed, calls) = (Arc::clone(closed), Arc::clone(calls));
    move |_req: Request, res: Response| {
        calls.fetch_add(1, Ordering::SeqCst);
        let file = OpenFile(Arc::clone(&closed));
        let block = Bytes::from(vec![b'x'; BLOCK]);
        let stream =
            futures_util::stream::iter(std::iter::repeat_n(block, blocks)).map(move |block| {
                let _open = &file;
                Ok::<_, std::io::Error>(block)
            });
        res.set_body_stream(stream);
        Outcome::Ok
    }
}

/// An Error handler logging the failure's kind and message.
fn observed(builder: ServerBuilder, events: &Events) -> ServerBuilder {
    let events = events.clone();
    builder.error("/", move |req: Request, _res: Response| {
        let failure = req.failure();
        let source = failure.and_then(std::error::Error::source);
        events.push(format!(
            "error: {:?}: {}: {}",
            failure.map(poco_httpd::Failure::kind),
            failure.map(ToString::to_string).unwrap_or_default(),
            source.map(ToString::to_string).unwrap_or_default()
        ));
        Outcome::Ok
    })
}

/// An h2c connection whose client grants streams no flow-control window.
async fn zero_window_client(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake(tcp)
        .await
        .expect("h2 handshake");
    tokio::spawn(connection);
    sender
}

/// Sends `GET /` and returns the response future.
async fn get(
    sender: &h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
) -> h2::client::ResponseFuture {
    let request = poco_httpd::http::Request::get(format!("http://{addr}/"))
        .body(())
        .expect("request");
    let mut sender = sender.clone().ready().await.expect("stream slot");
    let (response, _) = sender.send_request(request, true).expect("send");
    response
}

#[tokio::test]
async fn a_zero_window_stream_is_reset_after_the_send_timeout_and_its_body_dropped() {
    let events = Events::default();
    let (closed, calls) = (Arc::default(), Arc::default());
    let server = common::start(observed(
        Server::builder()
            .send_timeout(SHORT)
            .content("/", large_stream(1024, &closed, &calls)),
        &events,
    ))
    .await;
    let client = zero_window_client(server.addr).await;
    let response = tokio::time::timeout(PATIENCE, get(&client, server.addr).await)
        .await
        .expect("the head in time")
        .expect("a head");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let ended = tokio::time::timeout(PATIENCE, body.data())
        .await
        .expect("the stream ends in time instead of hanging");
    let error = ended.expect("no clean end").expect_err("a reset, not data");
    assert_eq!(error.reason(), Some(h2::Reason::CANCEL), "{error}");
    common::poll(
        || "the body dropped".into(),
        || closed.load(Ordering::Acquire).then_some(()),
    )
    .await;
    let told = common::poll(
        || format!("the Error handler told, got {:?}", events.all()),
        || (!events.all().is_empty()).then(|| events.all()),
    )
    .await;
    assert!(
        told[0].starts_with("error: Some(SendTimeout): the client took nothing"),
        "{told:?}"
    );
    // The connection itself goes on serving.
    let again = tokio::time::timeout(PATIENCE, get(&client, server.addr).await)
        .await
        .expect("a second head in time")
        .expect("a second head");
    assert_eq!(again.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn a_connection_gets_at_most_max_active_streams_answered_at_once() {
    let (closed, calls) = (Arc::default(), Arc::<AtomicUsize>::default());
    let server = common::start(
        Server::builder()
            .max_active_streams(2)
            // The streams still stalled at the end are cut when the test stops.
            .shutdown_deadline(SHORT)
            .content("/", large_stream(1024, &closed, &calls)),
    )
    .await;
    let client = zero_window_client(server.addr).await;
    let mut pending = Vec::new();
    for _ in 0..5 {
        pending.push(get(&client, server.addr).await);
    }
    let mut heads = Vec::new();
    for response in pending.drain(..2) {
        let head = tokio::time::timeout(PATIENCE, response)
            .await
            .expect("in time")
            .expect("a head");
        heads.push(head);
    }
    // The other three wait for a slot: their handlers have not run (no file opened).
    tokio::time::sleep(QUIET).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The client gives one stream up (RST_STREAM): its slot goes to the next stream.
    drop(heads.remove(0));
    let third = tokio::time::timeout(PATIENCE, pending.remove(0))
        .await
        .expect("in time")
        .expect("a head");
    assert_eq!(third.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    server.stop().await;
}

/// A socket the client reads in bursts: up to `burst` bytes, then nothing until
/// `every` has passed.
struct Bursty {
    tcp: TcpStream,
    burst: usize,
    left: usize,
    every: Duration,
    next: Pin<Box<Sleep>>,
}

impl AsyncRead for Bursty {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            std::task::ready!(self.next.as_mut().poll(cx));
            let next = Instant::now() + self.every;
            self.next.as_mut().reset(next);
            self.left = self.burst;
        }
        let mut part = vec![0; buf.remaining().min(self.left)];
        let mut read = ReadBuf::new(&mut part);
        std::task::ready!(Pin::new(&mut self.tcp).poll_read(cx, &mut read))?;
        buf.put_slice(read.filled());
        self.left -= read.filled().len();
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Bursty {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn an_http2_client_reading_below_the_minimum_rate_is_cut_after_the_write_timeout() {
    let events = Events::default();
    let (closed, calls) = (Arc::default(), Arc::default());
    let server = common::start(observed(
        Server::builder()
            .write_timeout(SHORT)
            // 64 MiB/s: the bursts below (1 MiB every 50 ms, some 20 MB/s) keep the
            // socket's writes succeeding — with the old rule, any write that
            // succeeded restarting the clock, this client was never cut — but are
            // well under it.
            .min_write_rate(64 * 1024 * 1024)
            .content("/", large_stream(16 * 1024, &closed, &calls)),
        &events,
    ))
    .await;
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let bursty = Bursty {
        tcp,
        burst: 1024 * 1024,
        left: 0,
        every: Duration::from_millis(50),
        next: Box::pin(tokio::time::sleep(Duration::ZERO)),
    };
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(64 * 1024 * 1024)
        .initial_connection_window_size(64 * 1024 * 1024)
        .handshake(bursty)
        .await
        .expect("h2 handshake");
    tokio::spawn(connection);
    let response = tokio::time::timeout(PATIENCE, get(&sender, server.addr).await)
        .await
        .expect("the head in time")
        .expect("a head");
    let mut body = response.into_body();
    // Take what arrives (so flow control never holds the server back) until the
    // stream breaks off; the 1 GiB body would take minutes at this pace.
    let ended = tokio::time::timeout(PATIENCE, async {
        while let Some(block) = body.data().await {
            match block {
                Ok(block) => {
                    let _ = body.flow_control().release_capacity(block.len());
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    })
    .await
    .expect("cut in time instead of trickling on");
    assert!(ended.is_err(), "the body ended cleanly");
    let told = common::poll(
        || format!("the Error handler told, got {:?}", events.all()),
        || (!events.all().is_empty()).then(|| events.all()),
    )
    .await;
    assert!(
        told[0].contains("WriteTimeout") && told[0].contains("the client read less than"),
        "{told:?}"
    );
    server.stop().await;
}
