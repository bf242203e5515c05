//! Bodies stream through with backpressure: a 1 GiB upload and a 1 GiB download
//! pass in bounded memory; Server-Sent Events arrive one by one, unbuffered; an
//! upstream answering before the upload ended stops it and loses its connection.

use std::sync::Arc;

use futures_util::StreamExt;
use poco_httpd::{Bytes, Event, Outcome, Request, Response, Server};
use tokio::sync::Notify;

use crate::{common, proxy_server, proxy_to, rss_bytes};

const GIB: u64 = 1 << 30;
const BLOCK: usize = 64 * 1024;
/// Generous: the proxy holds a few blocks per direction, not the body.
const MAX_GROWTH: u64 = 64 << 20;

/// A client without the helpers' 10 s bound: a gibibyte through a debug build
/// takes a while on a busy machine.
fn patient_client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

/// `count` blocks of `BLOCK` bytes, all sharing one buffer, and the peak RSS seen
/// while they were produced written to `peak`.
fn blocks(
    count: u64,
    peak: Arc<std::sync::atomic::AtomicU64>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
    let block = Bytes::from(vec![b'x'; BLOCK]);
    futures_util::stream::iter(0..count).map(move |i| {
        if i % 256 == 0 {
            peak.fetch_max(rss_bytes(), std::sync::atomic::Ordering::Relaxed);
        }
        Ok(block.clone())
    })
}

#[tokio::test]
async fn a_gibibyte_download_passes_in_bounded_memory() {
    let upstream = common::start(
        Server::builder().content("/", |_req: Request, res: Response| {
            let unused = Arc::new(std::sync::atomic::AtomicU64::new(0));
            res.set_header("content-length", GIB.to_string());
            res.set_body_stream(blocks(GIB / BLOCK as u64, unused));
            Outcome::Ok
        }),
    )
    .await;
    let proxy = proxy_server(proxy_to(&[upstream.addr.to_string()]), |b| b).await;
    let before = rss_bytes();
    let response = patient_client()
        .get(proxy.url("/big"))
        .send()
        .await
        .expect("GET");
    assert_eq!(common::header(&response, "content-length"), GIB.to_string());
    let mut body = response.bytes_stream();
    let (mut total, mut peak, mut blocks_seen) = (0_u64, before, 0_u64);
    while let Some(block) = body.next().await {
        total += block.expect("a block").len() as u64;
        blocks_seen += 1;
        if blocks_seen % 256 == 0 {
            peak = peak.max(rss_bytes());
        }
    }
    assert_eq!(total, GIB);
    let growth = peak.saturating_sub(before);
    assert!(growth < MAX_GROWTH, "RSS grew by {} MiB", growth >> 20);
    proxy.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn a_gibibyte_upload_passes_in_bounded_memory() {
    let upstream = common::start(Server::builder().max_body_size(2 << 30).content(
        "/",
        |req: Request, res: Response| async move {
            let mut body = req.take_body().expect("the body");
            let mut total = 0_u64;
            while let Some(block) = body.next().await {
                match block {
                    Ok(block) => total += block.len() as u64,
                    Err(error) => return res.deny(error.status()),
                }
            }
            res.ok(total.to_string())
        },
    ))
    .await;
    let proxy = common::start(
        Server::builder()
            .max_body_size(2 << 30)
            .content("/", proxy_to(&[upstream.addr.to_string()])),
    )
    .await;
    let before = rss_bytes();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(before));
    let body = reqwest::Body::wrap_stream(blocks(GIB / BLOCK as u64, Arc::clone(&peak)));
    let response = patient_client()
        .post(proxy.url("/upload"))
        .header("content-length", GIB.to_string())
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), GIB.to_string());
    let growth = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before);
    assert!(growth < MAX_GROWTH, "RSS grew by {} MiB", growth >> 20);
    proxy.stop().await;
    upstream.stop().await;
}

/// The upstream sends one event and waits until the client has it: a proxy that
/// buffered would never deliver it.
#[tokio::test]
async fn server_sent_events_pass_unbuffered() {
    let go_on = Arc::new(Notify::new());
    let upstream_go_on = Arc::clone(&go_on);
    let upstream = common::start(Server::builder().content(
        "/",
        move |_req: Request, res: Response| {
            res.start_event_stream();
            let go_on = Arc::clone(&upstream_go_on);
            tokio::spawn(async move {
                res.write(Event::data("first")).await.expect("first");
                go_on.notified().await;
                res.write(Event::data("second")).await.expect("second");
                res.close();
            });
            Outcome::Ok
        },
    ))
    .await;
    let proxy = proxy_server(proxy_to(&[upstream.addr.to_string()]), |b| b).await;
    let response = common::client()
        .get(proxy.url("/events"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        common::header(&response, "content-type"),
        "text/event-stream"
    );
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(common::PATIENCE, body.next())
        .await
        .expect("the first event arrives before the upstream sends more")
        .expect("a block")
        .expect("read");
    assert_eq!(&first[..], b"data: first\n\n");
    go_on.notify_one();
    let mut rest = Vec::new();
    while let Some(block) = tokio::time::timeout(common::PATIENCE, body.next())
        .await
        .expect("more")
    {
        rest.extend_from_slice(&block.expect("read"));
    }
    assert_eq!(rest, b"data: second\n\n");
    proxy.stop().await;
    upstream.stop().await;
}

/// What the upstream of [`an_early_answer_ends_the_upload_and_the_connection`]
/// saw on the connection it answered early: how much of the body came, and
/// whether the proxy then closed the connection.
#[derive(Debug)]
struct EarlyAnswered {
    body_bytes: u64,
    closed: bool,
}

#[tokio::test]
async fn an_early_answer_ends_the_upload_and_the_connection() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const UPLOAD: u64 = 64 << 20;
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let (reports_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let upstream = crate::raw_upstream(move |mut stream| {
        let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
        let reports = reports_tx.clone();
        async move {
            crate::read_head(&mut stream).await;
            if !first {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                let _ = stream.read(&mut [0_u8; 64]).await;
                return;
            }
            // Refuses the upload at once, keeping the connection open.
            let refusal: &[u8] = b"HTTP/1.1 413 Payload Too Large\r\n\
                X-Refused-By: upstream\r\nContent-Length: 9\r\n\r\ntoo large";
            stream.write_all(refusal).await.expect("write");
            let mut body_bytes = 0;
            let mut buffer = vec![0_u8; BLOCK];
            let read_all = async {
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => body_bytes += read as u64,
                    }
                }
            };
            let closed = tokio::time::timeout(common::PATIENCE, read_all)
                .await
                .is_ok();
            let _ = reports.send(EarlyAnswered { body_bytes, closed });
        }
    })
    .await;
    // The proxy's own server takes the whole upload: the 413 is the upstream's.
    let proxy = proxy_server(proxy_to(&[upstream.to_string()]), |b| {
        b.max_body_size(1 << 30)
    })
    .await;

    let client = tokio::net::TcpStream::connect(proxy.addr)
        .await
        .expect("connect");
    let (mut from_proxy, mut to_proxy) = client.into_split();
    let head = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {UPLOAD}\r\n\r\n");
    let uploader = tokio::spawn(async move {
        to_proxy.write_all(head.as_bytes()).await?;
        let block = vec![b'u'; BLOCK];
        for _ in 0..UPLOAD / BLOCK as u64 {
            to_proxy.write_all(&block).await?;
        }
        Ok::<_, std::io::Error>(to_proxy)
    });
    let mut answer = Vec::new();
    let read_head = async {
        while !answer.ends_with(b"\r\n\r\n") {
            let byte = from_proxy.read_u8().await.expect("an answer head");
            answer.push(byte);
        }
    };
    tokio::time::timeout(common::PATIENCE, read_head)
        .await
        .expect("the early answer reaches the client");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 413")
            && answer
                .to_ascii_lowercase()
                .contains("x-refused-by: upstream"),
        "the client gets the upstream's 413: {answer}"
    );

    let early = crate::next_report(&mut reports).await;
    assert!(
        early.closed,
        "the proxy closes the upstream connection: {early:?}"
    );
    assert!(
        early.body_bytes < UPLOAD,
        "the rest of the upload is not sent: {early:?}"
    );

    let (status, body) = proxy.get(&common::client(), "/next").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "the next request goes on a new connection"
    );
    uploader.abort();
    proxy.stop().await;
}
