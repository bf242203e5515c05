//! Graceful shutdown under load: many keep-alive clients, idle connections, HTTP/2
//! streams and an endless event stream at once, then a shutdown. Nothing accepted is
//! lost, idle connections close at once, new ones are refused, HTTP/2 clients are
//! told with GOAWAY, and the endless stream is cut (and counted) at the deadline.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::PATIENCE;
use poco_httpd::{Event, Outcome, Request, Response, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEEP_ALIVE_CLIENTS: usize = 64;
const IDLE_CLIENTS: usize = 32;
const HTTP2_STREAMS: usize = 4;
const DEADLINE: Duration = Duration::from_secs(3);
const WORK_REQUEST: &[u8] = b"GET /work HTTP/1.1\r\nHost: x\r\n\r\n";

/// How one HTTP/1.1 exchange of a client ended.
#[derive(Debug)]
enum Exchange {
    /// A whole `200` with the body `done`.
    Answered,
    /// The connection closed before any byte of an answer: the request was not taken.
    NotTaken,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_finishes_every_accepted_request() {
    let work_started = Arc::new(AtomicUsize::new(0));
    let server = common::start(load_server(Arc::clone(&work_started))).await;
    let addr = server.addr;

    let busy: Vec<_> = (0..KEEP_ALIVE_CLIENTS)
        .map(|_| tokio::spawn(keep_alive_client(addr)))
        .collect();
    let mut idle = Vec::new();
    for _ in 0..IDLE_CLIENTS {
        idle.push(idle_client(addr).await);
    }
    let events = endless_events_client(addr).await;
    let http2 = Http2Client::connect(addr).await;
    let slow_streams: Vec<_> = (0..HTTP2_STREAMS).map(|_| http2.get("/slow")).collect();
    // Let the load build up, and the HTTP/2 streams reach their handler.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server.stats.requests() > 0, "the load is being served");

    let shutdown_at = Instant::now();
    server.shutdown.shutdown();

    // New connections are refused once the listener is closed.
    assert!(refused_soon(addr).await, "new connections still accepted");
    // Idle keep-alive connections close at once, long before the deadline.
    for idle in idle {
        let closed_at = tokio::time::timeout(PATIENCE, idle).await.unwrap().unwrap();
        assert!(
            closed_at - shutdown_at < DEADLINE,
            "an idle connection lingered"
        );
    }
    // HTTP/2: the streams taken before the shutdown complete; a new one is refused.
    for stream in slow_streams {
        let body = stream.await.unwrap().expect("an accepted stream completes");
        assert_eq!(body, "slow done");
    }
    let refused = http2
        .get("/slow")
        .await
        .unwrap()
        .expect_err("no stream after GOAWAY");
    assert!(refused.is_go_away(), "{refused}");
    // Every request a handler started was answered whole.
    let mut answered = 0;
    for client in busy {
        answered += tokio::time::timeout(PATIENCE, client)
            .await
            .expect("the keep-alive client ends")
            .unwrap();
    }
    // The idle clients' one request each went to `/work` too.
    assert_eq!(answered + IDLE_CLIENTS, work_started.load(Ordering::SeqCst));
    assert!(answered >= KEEP_ALIVE_CLIENTS, "every client got an answer");

    eprintln!(
        "{answered} keep-alive requests answered by {KEEP_ALIVE_CLIENTS} clients, \
         {IDLE_CLIENTS} idle connections closed, {HTTP2_STREAMS} HTTP/2 streams completed"
    );
    // The endless stream holds shutdown only until the deadline, then is cut.
    let stats = server.stats.clone();
    server.stop().await;
    let stopped_after = shutdown_at.elapsed();
    assert!(stopped_after >= DEADLINE, "the event stream was not cut");
    assert!(
        stopped_after < DEADLINE + Duration::from_secs(5),
        "{stopped_after:?}"
    );
    assert_eq!(
        stats.requests_cut(),
        1,
        "the event stream is counted as cut"
    );
    let received = tokio::time::timeout(PATIENCE, events)
        .await
        .unwrap()
        .unwrap();
    assert!(received.contains("data: tick"), "{received}");
}

/// `/work` answers after a short, varying delay; `/slow` after 600 ms; `/events` is an
/// event stream that never ends by itself.
fn load_server(work_started: Arc<AtomicUsize>) -> poco_httpd::ServerBuilder {
    Server::builder()
        .shutdown_deadline(DEADLINE)
        .content("/work", move |_req: Request, res: Response| {
            let nth = work_started.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis((nth % 7) as u64 * 5)).await;
                res.set_body("done");
                Outcome::Ok
            }
        })
        .content(
            "/slow",
            common::slow_answer(Duration::from_millis(600), "slow done"),
        )
        .content("/events", |_req: Request, res: Response| {
            res.start_event_stream();
            tokio::spawn(async move {
                while res.write(Event::data("tick")).await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            Outcome::Ok
        })
}

/// Sends `/work` requests one after another on one connection until the server
/// closes it; returns how many were answered. Panics on a response cut in the middle.
async fn keep_alive_client(addr: SocketAddr) -> usize {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut answered = 0;
    loop {
        if stream.write_all(WORK_REQUEST).await.is_err() {
            return answered;
        }
        match read_exchange(&mut stream).await {
            Exchange::Answered => answered += 1,
            Exchange::NotTaken => return answered,
        }
    }
}

/// Reads one answer to `/work`: `done` with its `Content-Length`.
async fn read_exchange(stream: &mut TcpStream) -> Exchange {
    let mut buffer = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&buffer).into_owned();
        if text.ends_with("\r\n\r\ndone") {
            assert!(text.starts_with("HTTP/1.1 200"), "{text}");
            return Exchange::Answered;
        }
        let read = tokio::time::timeout(PATIENCE, stream.read_buf(&mut buffer))
            .await
            .expect("an answer or a close");
        match read {
            Ok(0) | Err(_) if buffer.is_empty() => return Exchange::NotTaken,
            Ok(0) | Err(_) => panic!("a response was cut: {text}"),
            Ok(_) => {}
        }
    }
}

/// A connection with one request answered, then left idle; the task returns when the
/// server closes it.
async fn idle_client(addr: SocketAddr) -> tokio::task::JoinHandle<Instant> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(WORK_REQUEST).await.unwrap();
    assert!(matches!(
        read_exchange(&mut stream).await,
        Exchange::Answered
    ));
    tokio::spawn(async move {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "nothing more was sent: {rest:?}");
        Instant::now()
    })
}

/// Subscribes to `/events`; the task returns everything received until the server
/// cut the stream.
async fn endless_events_client(addr: SocketAddr) -> tokio::task::JoinHandle<String> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    common::send(&mut stream, b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n").await;
    tokio::spawn(async move {
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received).await;
        String::from_utf8_lossy(&received).into_owned()
    })
}

/// Waits until connecting to `addr` fails; false if it never does within patience.
async fn refused_soon(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// An h2c (prior knowledge) client on one connection, which reports GOAWAY the way
/// the protocol has it: streams above the last one the server took are refused.
struct Http2Client {
    sender: h2::client::SendRequest<bytes::Bytes>,
    addr: SocketAddr,
}

impl Http2Client {
    async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        Self { sender, addr }
    }

    /// Starts a GET; the task yields the body, or the error that refused the stream.
    fn get(&self, path: &str) -> tokio::task::JoinHandle<Result<String, h2::Error>> {
        let request = poco_httpd::http::Request::get(format!("http://{}{path}", self.addr))
            .body(())
            .unwrap();
        let sender = self.sender.clone();
        tokio::spawn(async move {
            let mut sender = sender.ready().await?;
            let (response, _) = sender.send_request(request, true)?;
            let mut body = response.await?.into_body();
            let mut text = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk?;
                let _ = body.flow_control().release_capacity(chunk.len());
                text.extend_from_slice(&chunk);
            }
            Ok(String::from_utf8_lossy(&text).into_owned())
        })
    }
}
