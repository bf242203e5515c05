//! Streaming responses and request bodies: the original module's stream test
//! scenarios, framing, backpressure, Server-Sent Events, and clients that leave.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Events, PATIENCE};
use poco_httpd::{Event, Multipart, Outcome, Request, Response, Server, StreamError};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

const GIF: &[u8] = include_bytes!("fixtures/dot.gif");
const TEXT_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hello.txt");

/// A Content handler that turns streaming on and sends nothing itself.
fn streaming_content(content_type: &'static str) -> impl poco_httpd::Handler {
    move |_req: Request, res: Response| {
        res.set_content_type(content_type);
        res.set_streaming(true);
        Outcome::Ok
    }
}

#[tokio::test]
async fn an_html_index_is_sent_one_block_per_stream_handler_call() {
    let lines = [
        "<html><body><ul>",
        "<li>one</li>",
        "<li>two</li>",
        "</ul></body></html>",
    ];
    let calls = Events::default();
    let seen = calls.clone();
    let server = common::start(
        Server::builder()
            .content("/", streaming_content("text/html"))
            .stream(move |_req: Request, res: Response| {
                // One block per call: the next call comes once it has been flushed.
                let call = seen.all().len();
                seen.push(format!("call {call}"));
                match lines.get(call) {
                    Some(line) => res.send(*line).expect("room for one block"),
                    None => res.close(),
                }
                Outcome::Ok
            }),
    )
    .await;
    let response = server.response(&common::client(), "/index.html").await;
    assert_eq!(response.headers()["content-type"], "text/html");
    assert_eq!(response.text().await.unwrap(), lines.concat());
    assert_eq!(
        calls.all().len(),
        lines.len() + 1,
        "one call per block, one to close"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_plain_text_file_is_streamed_with_its_length() {
    let server = common::start(Server::builder().content(
        "/",
        |_req: Request, res: Response| async move {
            res.set_content_type("text/plain");
            res.set_body_file(TEXT_FILE).await.expect("fixture file");
            Outcome::Ok
        },
    ))
    .await;
    let response = server.response(&common::client(), "/hello.txt").await;
    let expected = std::fs::read_to_string(TEXT_FILE).unwrap();
    assert_eq!(response.content_length(), Some(expected.len() as u64));
    assert_eq!(response.text().await.unwrap(), expected);
    server.stop().await;
}

#[tokio::test]
async fn the_first_multipart_part_arrives_before_the_delayed_last_one_is_sent() {
    let release = Arc::new(Notify::new());
    let release_in_handler = Arc::clone(&release);
    let multipart = Multipart::with_boundary("BOUNDARY");
    let server = common::start(Server::builder().content(
        "/",
        move |_req: Request, res: Response| {
            let multipart = multipart.clone();
            let release = Arc::clone(&release_in_handler);
            res.set_streaming(true);
            res.set_header("content-type", multipart.content_type("mixed"));
            res.send(multipart.part("text/plain", b"first part"))
                .unwrap();
            tokio::spawn(async move {
                release.notified().await;
                res.write(multipart.part("text/plain", b"last part"))
                    .await
                    .unwrap();
                res.write(multipart.end()).await.unwrap();
                res.close();
            });
            Outcome::Ok
        },
    ))
    .await;
    let mut response = server.response(&common::client(), "/push").await;
    assert_eq!(
        response.headers()["content-type"],
        "multipart/mixed; boundary=BOUNDARY"
    );
    let first = response.chunk().await.unwrap().expect("first part");
    assert_eq!(
        &first[..],
        b"--BOUNDARY\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
    );
    // Only now, with the first part in hand, does the server send the last one.
    release.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(
        rest,
        b"--BOUNDARY\r\nContent-Type: text/plain\r\n\r\nlast part\r\n--BOUNDARY--\r\n"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_streamed_gif_arrives_byte_for_byte() {
    let server = common::start(
        Server::builder()
            .content("/", streaming_content("image/gif"))
            .stream(|_req: Request, res: Response| {
                // Split the image to cross block boundaries.
                let _ = res.send(&GIF[..10]);
                let _ = res.send(&GIF[10..]);
                res.close();
                Outcome::Ok
            }),
    )
    .await;
    let response = server.response(&common::client(), "/dot.gif").await;
    assert_eq!(response.headers()["content-type"], "image/gif");
    assert_eq!(&response.bytes().await.unwrap()[..], GIF);
    server.stop().await;
}

/// Splits a multipart body into (content type, body) pairs.
fn parse_multipart(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delimiter = format!("--{boundary}");
    let text = body.to_vec();
    let mut parts = Vec::new();
    let mut rest: &[u8] = &text;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").expect("part head");
        let head = String::from_utf8_lossy(&rest[2..head_end]).to_string();
        let content_type = head.trim_start_matches("Content-Type: ").to_string();
        let body_start = head_end + 4;
        let next = find(&rest[body_start..], delimiter.as_bytes()).expect("next delimiter");
        parts.push((
            content_type,
            rest[body_start..body_start + next - 2].to_vec(),
        ));
        rest = &rest[body_start + next..];
        rest = &text[text.len() - rest.len()..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn multipart_server(parts: Vec<(&'static str, &'static [u8])>) -> common::TestServer {
    common::start(
        Server::builder().content("/", move |_req: Request, res: Response| {
            let parts = parts.clone();
            let multipart = Multipart::new();
            res.set_streaming(true);
            res.set_header("content-type", multipart.content_type("x-mixed-replace"));
            tokio::spawn(async move {
                for (content_type, body) in parts {
                    res.write(multipart.part(content_type, body)).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                res.write(multipart.end()).await.unwrap();
                res.close();
            });
            Outcome::Ok
        }),
    )
    .await
}

async fn fetch_parts(server: &common::TestServer) -> Vec<(String, Vec<u8>)> {
    let response = server.response(&common::client(), "/").await;
    let content_type = common::header(&response, "content-type");
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("boundary")
        .to_string();
    assert!(content_type.starts_with("multipart/x-mixed-replace"));
    parse_multipart(&response.bytes().await.unwrap(), &boundary)
}

#[tokio::test]
async fn a_multipart_response_of_a_gif_carries_the_image_unchanged() {
    let server = multipart_server(vec![("image/gif", GIF)]).await;
    let parts = fetch_parts(&server).await;
    assert_eq!(parts, vec![("image/gif".to_string(), GIF.to_vec())]);
    server.stop().await;
}

#[tokio::test]
async fn a_mixed_multipart_carries_text_then_image() {
    let server = multipart_server(vec![("text/plain", b"caption"), ("image/gif", GIF)]).await;
    let parts = fetch_parts(&server).await;
    assert_eq!(
        parts,
        vec![
            ("text/plain".to_string(), b"caption".to_vec()),
            ("image/gif".to_string(), GIF.to_vec())
        ]
    );
    server.stop().await;
}

/// A server whose Content handler streams `blocks` and closes.
async fn block_server(
    blocks: &'static [&'static str],
    content_length: Option<u64>,
) -> common::TestServer {
    common::start(
        Server::builder().content("/", move |_req: Request, res: Response| {
            res.set_streaming(true);
            if let Some(length) = content_length {
                res.set_header("content-length", length);
            }
            for block in blocks {
                res.send(*block).unwrap();
            }
            res.close();
            Outcome::Ok
        }),
    )
    .await
}

#[tokio::test]
async fn http_1_1_streams_are_chunked_and_keep_the_connection() {
    let server = block_server(&["abc", "def"], None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..2 {
        common::send(&mut stream, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut answer = Vec::new();
        while !answer.ends_with(b"0\r\n\r\n") {
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(
                n > 0,
                "connection closed early: {}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..n]);
        }
        let answer = String::from_utf8_lossy(&answer).to_lowercase();
        assert!(answer.contains("transfer-encoding: chunked"), "{answer}");
        assert!(
            answer.contains("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"),
            "{answer}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn http_1_0_streams_end_by_closing_the_connection() {
    let server = block_server(&["abc", "def"], None).await;
    let answer = server.raw(b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(!answer.to_lowercase().contains("chunked"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nabcdef"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_declared_content_length_is_honoured_and_keeps_the_connection() {
    let server = block_server(&["abc", "def"], Some(6)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..2 {
        common::send(&mut stream, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let answer = common::read_response(&mut stream).await;
        assert!(
            answer.to_lowercase().contains("content-length: 6"),
            "{answer}"
        );
        assert!(!answer.to_lowercase().contains("chunked"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nabcdef"), "{answer}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_stream_shorter_than_its_content_length_closes_the_connection() {
    let server = block_server(&["abc"], Some(10)).await;
    let answer = server.raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // The connection ends before the declared length: the client never gets a
    // response that looks complete (hyper may even drop the head it buffered).
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.len() < 10, "{answer}");
    assert!(body.is_empty() || body == "abc", "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_stream_longer_than_its_content_length_is_cut() {
    let server = block_server(&["abcdef", "ghijkl"], Some(6)).await;
    let answer = server.raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // The connection is closed (`raw` reads to the end) and nothing past the
    // declared length is ever written.
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.len() < 6 + 6, "{answer}");
    assert!("abcdef".starts_with(body), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_fast_producer_is_held_to_the_buffer_bound_by_a_slow_reader() {
    const BLOCK: usize = 4 * 1024;
    const BOUND: usize = 16 * 1024;
    const TOTAL: usize = 4 * 1024 * 1024;
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak_in_handler = Arc::clone(&peak);
    let server = common::start(Server::builder().stream_buffer(BOUND).content(
        "/",
        move |_req: Request, res: Response| {
            let peak = Arc::clone(&peak_in_handler);
            res.set_streaming(true);
            tokio::spawn(async move {
                let block = Bytes::from(vec![b'x'; BLOCK]);
                for _ in 0..TOTAL / BLOCK {
                    res.write(block.clone()).await.unwrap();
                    peak.fetch_max(res.buffered_bytes(), std::sync::atomic::Ordering::Relaxed);
                }
                peak.fetch_max(
                    res.peak_buffered_bytes(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                res.close();
            });
            Outcome::Ok
        },
    ))
    .await;
    let mut stream = server.connect(b"GET / HTTP/1.0\r\n\r\n").await;
    let mut received = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        received += n;
        // A slow reader: the producer must wait for it.
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    assert!(
        received > TOTAL,
        "the whole stream arrives (head included): {received}"
    );
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        peak <= BOUND,
        "at most {BOUND} bytes were ever buffered, saw {peak}"
    );
    assert!(peak >= BLOCK, "the buffer was used: {peak}");
    server.stop().await;
}

#[tokio::test]
async fn send_refuses_a_block_past_the_bound_instead_of_buffering_it() {
    let server = common::start(Server::builder().stream_buffer(8).content(
        "/",
        |_req: Request, res: Response| {
            res.set_streaming(true);
            res.send("12345678").unwrap();
            let refused = res.send("9");
            res.set_header("x-refused", format!("{refused:?}"));
            res.close();
            Outcome::Ok
        },
    ))
    .await;
    let response = server.response(&common::client(), "/").await;
    assert_eq!(
        response.headers()["x-refused"],
        format!("{:?}", Err::<(), _>(StreamError::Full { buffered: 8 }))
    );
    assert_eq!(response.text().await.unwrap(), "12345678");
    server.stop().await;
}

#[tokio::test]
async fn resume_calls_the_stream_handler_once_more() {
    let server = common::start(
        Server::builder()
            .content("/", streaming_content("text/plain"))
            .stream(|_req: Request, res: Response| {
                if res.header("x-called").is_none() {
                    // Nothing to send yet: come back when resumed.
                    res.set_header("x-called", "1");
                    let later = res.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(30));
                        later.resume();
                    });
                } else {
                    res.send("resumed").unwrap();
                    res.close();
                }
                Outcome::Ok
            }),
    )
    .await;
    let body = server.text(&common::client(), "/").await;
    assert_eq!(body, "resumed");
    server.stop().await;
}

#[tokio::test]
async fn a_path_stream_handler_wins_over_the_global_one() {
    let server = common::start(
        Server::builder()
            .content("/", streaming_content("text/plain"))
            .stream(|_req: Request, res: Response| {
                let _ = res.send("global");
                res.close();
                Outcome::Ok
            })
            .stream_at("/live/", |_req: Request, res: Response| {
                let _ = res.send("live");
                res.close();
                Outcome::Ok
            }),
    )
    .await;
    let client = common::client();
    let live = server.text(&client, "/live/feed").await;
    let other = server.text(&client, "/other").await;
    assert_eq!((live.as_str(), other.as_str()), ("live", "global"));
    server.stop().await;
}

#[tokio::test]
async fn server_sent_events_reach_the_client_and_see_last_event_id() {
    let server = common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            res.start_event_stream();
            let resumed_from = req.last_event_id().unwrap_or_else(|| "none".into());
            tokio::spawn(async move {
                res.write(Event::comment("keep-alive")).await.unwrap();
                res.write(
                    Event::data(format!("from {resumed_from}"))
                        .event("hello")
                        .id("7"),
                )
                .await
                .unwrap();
                res.write(Event::data("bye").retry(Duration::from_secs(3)))
                    .await
                    .unwrap();
                res.close();
            });
            Outcome::Ok
        }),
    )
    .await;
    let response = common::client()
        .get(server.url("/events"))
        .header("last-event-id", "6")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(
        response.text().await.unwrap(),
        ": keep-alive\n\nevent: hello\nid: 7\ndata: from 6\n\nretry: 3000\ndata: bye\n\n"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_body_from_a_stream_of_bytes_and_from_an_async_reader() {
    let server = common::start(
        Server::builder()
            .content("/stream", |_req: Request, res: Response| {
                let blocks = ["one ", "two ", "three"].map(|b| Ok(Bytes::from(b)));
                res.set_body_stream(futures_util::stream::iter(blocks));
                Outcome::Ok
            })
            .content("/reader", |_req: Request, res: Response| {
                res.set_body_reader(std::io::Cursor::new(b"read from a reader".to_vec()));
                Outcome::Ok
            }),
    )
    .await;
    let client = common::client();
    let streamed = server.text(&client, "/stream").await;
    let read = server.text(&client, "/reader").await;
    assert_eq!(streamed, "one two three");
    assert_eq!(read, "read from a reader");
    server.stop().await;
}

/// Counts the request body block by block, answering the error's status on failure.
async fn count_upload(req: Request, res: Response) -> Outcome {
    let mut total = 0;
    loop {
        match req.body_chunk().await {
            Ok(Some(block)) => total += block.len(),
            Ok(None) => break,
            Err(error) => {
                res.set_status(error.status());
                return Outcome::Ok;
            }
        }
    }
    res.set_body(total.to_string());
    Outcome::Ok
}

#[tokio::test]
async fn a_large_upload_is_read_block_by_block() {
    let server = common::start(
        Server::builder()
            .max_body_size(8 * 1024 * 1024)
            .content("/", count_upload),
    )
    .await;
    let blocks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![7u8; 64 * 1024]));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(blocks));
    let response = common::client()
        .post(server.url("/upload"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), (64 * 64 * 1024).to_string());
    server.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let server = common::start(
        Server::builder()
            .max_body_size(1000)
            .content("/", count_upload),
    )
    .await;
    let client = common::client();
    // Declared too long: refused before any handler runs.
    let declared = client
        .post(server.url("/"))
        .body(vec![0u8; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    // Chunked, no length declared: refused once the limit is crossed.
    let blocks = (0..5).map(|_| Ok::<_, std::io::Error>(vec![0u8; 1000]));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(blocks));
    let chunked = client
        .post(server.url("/"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);
    server.stop().await;
}

#[tokio::test]
async fn a_client_leaving_mid_stream_is_reported_everywhere_and_freed() {
    let events = Events::default();
    let (producer, error, post) = (events.clone(), events.clone(), events.clone());
    let server = common::start(
        Server::builder()
            .content("/", move |_req: Request, res: Response| {
                let producer = producer.clone();
                res.set_streaming(true);
                tokio::spawn(async move {
                    let outcome = loop {
                        if let Err(error) = res.write(vec![b'x'; 16 * 1024]).await {
                            break error;
                        }
                    };
                    producer.push(format!("send: {outcome:?}"));
                });
                Outcome::Ok
            })
            .error("/", move |req: Request, res: Response| {
                error.push(format!("error: {} {}", req.is_error(), res.is_error()));
                Outcome::Ok
            })
            .post("/", move |req: Request, _res: Response| {
                post.push(format!("post: {}", req.is_error()));
                Outcome::Ok
            }),
    )
    .await;
    let stats = server.stats.clone();
    let mut stream = server.connect(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(n > 0);
    drop(stream);
    let mut seen = events.wait_for(3).await;
    seen.sort();
    assert_eq!(seen, ["error: true true", "post: true", "send: Gone"]);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while stats.open_connections() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connection is freed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_response_still_streaming_counts_as_in_flight() {
    let finish = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = finish.clone();
    let server = common::start(Server::builder().content(
        "/",
        move |_req: Request, res: Response| {
            let finish = finish.clone();
            res.set_streaming(true);
            tokio::spawn(async move {
                let _ = res.write("first block\n").await;
                finish.notified().await;
                res.close();
            });
            Outcome::Ok
        },
    ))
    .await;
    let stats = server.stats.clone();
    let mut stream = server
        .connect(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut received = Vec::new();
    while !String::from_utf8_lossy(&received).contains("first block") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the first block arrives");
        received.extend_from_slice(&buf[..n]);
    }
    assert_eq!(stats.in_flight(), 1, "the download is still running");
    release.notify_one();
    let rest = common::read_to_close(&mut stream).await;
    assert!(rest.ends_with("0\r\n\r\n"), "{rest}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while stats.in_flight() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the count ends");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.stop().await;
}
