//! Bodies stream through with backpressure: a 1 GiB upload and a 1 GiB download
//! pass in bounded memory; Server-Sent Events arrive one by one, unbuffered.

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
