//! Limits against abusive or broken clients: head size and count, the header, body,
//! write, idle and handler timeouts, the connection cap, HTTP/2 streams.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{Events, PATIENCE};
use poco_httpd::{Outcome, Request, Response, Server, ServerBuilder};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const SHORT: Duration = Duration::from_millis(300);

fn hello(_req: Request, res: Response) -> Outcome {
    res.set_body("hello");
    Outcome::Ok
}

/// Error and Post handlers that log what they were told.
fn observed(builder: ServerBuilder, events: &Events) -> ServerBuilder {
    let (on_error, on_post) = (events.clone(), events.clone());
    builder
        .error("/", move |req: Request, _res: Response| {
            let failure = req.failure();
            let kind = failure.map(poco_httpd::Failure::kind);
            let source = failure.and_then(std::error::Error::source);
            on_error.push(format!(
                "error: {kind:?}: {}: {}",
                failure.map(ToString::to_string).unwrap_or_default(),
                source.map(ToString::to_string).unwrap_or_default()
            ));
            Outcome::Ok
        })
        .post("/", move |req: Request, res: Response| {
            on_post.push(format!(
                "post: {} {}",
                res.status().as_u16(),
                req.is_error()
            ));
            Outcome::Ok
        })
}

/// Reads until the server closes the connection, or `None` if it stays open.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut answer = Vec::new();
    match tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn oversized_heads_and_too_many_headers_get_431() {
    let server = common::start(
        Server::builder()
            .max_header_size(8 * 1024)
            .max_headers(10)
            .content("/", hello),
    )
    .await;
    // Just over the limit (the pipeline's check), and far over it (hyper's read
    // buffer, which is larger so that responses can be written in big batches).
    for size in [10_000, 500_000] {
        let long = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(size));
        let answer = server.raw(long.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{size}: {answer}");
    }
    let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(9_000));
    let answer = server.raw(long_target.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let many: String = (0..20).map(|i| format!("X-H{i}: v\r\n")).collect();
    let answer = server
        .raw(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes())
        .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let fine = server
        .raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\nConnection: close\r\n\r\n")
        .await;
    assert!(fine.starts_with("HTTP/1.1 200"), "{fine}");
    server.stop().await;
}

#[tokio::test]
async fn a_head_trickled_past_the_header_timeout_is_cut_while_others_are_served() {
    let server = common::start(
        Server::builder()
            .header_read_timeout(SHORT)
            .content("/", hello),
    )
    .await;
    let mut slow = server.connect(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    let served = server.response(&common::client(), "/").await;
    assert_eq!(served.text().await.unwrap(), "hello");
    let answer = closed_within(&mut slow, PATIENCE)
        .await
        .expect("the slow client is cut");
    assert!(!answer.contains("200 OK"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_timed_per_head_not_over_its_life() {
    // Each head comes quickly, but the connection lives ten header timeouts: only
    // the wait for each head counts, so every request is answered.
    let server = common::start(
        Server::builder()
            .header_read_timeout(SHORT)
            .content("/", hello),
    )
    .await;
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut stream = server.connect(request).await;
    for round in 0..30 {
        let answer = common::read_response(&mut stream).await;
        assert!(answer.ends_with("hello"), "round {round}: {answer}");
        tokio::time::sleep(SHORT / 3).await;
        common::send(&mut stream, request).await;
    }
    // A head that then stops halfway is still cut.
    common::read_response(&mut stream).await;
    common::send(&mut stream, b"GET / HTTP/1.1\r\nHo").await;
    let rest = closed_within(&mut stream, PATIENCE)
        .await
        .expect("the half head is cut");
    assert!(rest.is_empty(), "{rest}");
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_request_body_gets_408_and_the_error_handler_runs() {
    let events = Events::default();
    let server = common::start(observed(
        Server::builder().body_read_timeout(SHORT).content(
            "/",
            |req: Request, res: Response| async move {
                if let Err(error) = req.body().await {
                    res.set_status(error.status());
                }
                Outcome::Ok
            },
        ),
        &events,
    ))
    .await;
    let mut client = server
        .connect(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .await;
    let answer = closed_within(&mut client, PATIENCE)
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let told = events.wait_for(2).await;
    assert!(
        told[0].starts_with(
            "error: Some(BodyTimeout): the request body stopped arriving: no request body data"
        ),
        "{told:?}"
    );
    assert_eq!(told[1], "post: 408 true");
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_after_the_write_timeout() {
    let events = Events::default();
    let block = Bytes::from(vec![b'x'; 1 << 20]);
    let server = common::start(observed(
        Server::builder()
            .write_timeout(SHORT)
            .content("/", move |_req: Request, res: Response| {
                let blocks = std::iter::repeat_n(block.clone(), 256).map(Ok);
                res.set_body_stream(futures_util::stream::iter(blocks));
                Outcome::Ok
            }),
        &events,
    ))
    .await;
    let client = server.connect(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // Never read: the socket buffers fill and the server's writes stall.
    let told = events.wait_for(2).await;
    assert!(told[0].contains("the client read less than"), "{told:?}");
    assert_eq!(told[1], "post: 200 true");
    assert_eq!(server.stats.open_connections(), 0);
    drop(client);
    server.stop().await;
}

#[tokio::test]
async fn idle_connections_close_but_not_while_a_request_runs() {
    let server = common::start(Server::builder().keep_alive_timeout(SHORT).content(
        "/",
        |_req: Request, res: Response| async move {
            // Longer than the idle timeout: a busy connection is not idle.
            tokio::time::sleep(SHORT * 2).await;
            res.set_body("slow");
            Outcome::Ok
        },
    ))
    .await;
    let mut client = server.connect(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = common::read_response(&mut client).await;
    assert!(answer.ends_with("slow"), "{answer}");
    let rest = closed_within(&mut client, PATIENCE)
        .await
        .expect("the idle connection closes");
    assert_eq!(rest, "");
    server.stop().await;
}

/// The idle timer outlives each idle period: one that ends early (a request came)
/// must not close the connection at its old deadline.
#[tokio::test]
async fn each_request_restarts_the_idle_timeout() {
    let idle = Duration::from_millis(900);
    let server = common::start(
        Server::builder()
            .keep_alive_timeout(idle)
            .content("/", hello),
    )
    .await;
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    // Three pauses of half the timeout: together well past the first deadline.
    for _ in 0..3 {
        common::send(&mut client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let answer = common::read_response(&mut client).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        tokio::time::sleep(idle / 2).await;
    }
    let rest = closed_within(&mut client, PATIENCE)
        .await
        .expect("the idle connection closes in the end");
    assert_eq!(rest, "");
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let server = common::start(Server::builder().max_connections(1).content("/", hello)).await;
    let mut first = server.connect(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(common::read_response(&mut first).await.ends_with("hello"));
    let mut second = server
        .connect(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(
        closed_within(&mut second, SHORT).await,
        None,
        "served beyond the limit"
    );
    drop(first);
    let answer = closed_within(&mut second, PATIENCE)
        .await
        .expect("served once there is room");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn handlers_that_take_too_long_get_503_and_the_error_and_post_handlers_hear_of_it() {
    let events = Events::default();
    let server = common::start(observed(
        Server::builder().handler_timeout(SHORT).content(
            "/",
            |req: Request, res: Response| async move {
                if req.path() == "/slow" {
                    tokio::time::sleep(PATIENCE).await;
                }
                if req.path() == "/waits" {
                    return Outcome::Wait;
                }
                res.set_body("quick");
                Outcome::Ok
            },
        ),
        &events,
    ))
    .await;
    let client = common::client();
    for path in ["/slow", "/waits"] {
        events.clear();
        let answer = server.response(&client, path).await;
        assert_eq!(answer.status(), 503, "{path}");
        let told = events.wait_for(2).await;
        assert!(
            told[0].starts_with("error: Some(HandlerTimeout): the handlers did not answer within"),
            "{told:?}"
        );
        assert_eq!(told[1], "post: 503 true");
    }
    let quick = server.response(&client, "/").await;
    assert_eq!(quick.text().await.unwrap(), "quick");
    server.stop().await;
}

#[tokio::test]
async fn http2_clients_get_at_most_the_configured_concurrent_streams() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (now, most) = (Arc::clone(&running), Arc::clone(&peak));
    let server = common::start(Server::builder().max_concurrent_streams(2).content(
        "/",
        move |_req: Request, res: Response| {
            let (now, most) = (Arc::clone(&now), Arc::clone(&most));
            async move {
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                res.set_body("done");
                Outcome::Ok
            }
        },
    ))
    .await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    // Let the client learn the server's SETTINGS before it fans out.
    assert_eq!(
        server.response(&client, "/").await.version(),
        reqwest::Version::HTTP_2
    );
    let requests = (0..8).map(|_| client.get(server.url("/")).send());
    for answer in futures_util::future::join_all(requests).await {
        assert_eq!(answer.unwrap().text().await.unwrap(), "done");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    server.stop().await;
}
