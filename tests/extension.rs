//! The public extension API, used as a user's crate would: the request body taken as
//! a stream, the response body taken and wrapped before the head goes out, headers
//! handed on, the server's figures read from a handler.

mod common;

use futures_util::StreamExt;
use poco_httpd::http::StatusCode;
use poco_httpd::{Body, Bytes, Outcome, Request, Response, Server, StreamError};

/// A Send hook that upper-cases whatever body the response has, whole or streamed.
fn shout(req: Request, _res: Response) -> Outcome {
    req.before_send(|_req: Request, res: Response| {
        let body = res.take_body();
        let loud = body
            .into_stream()
            .map(|block| block.map(|block| Bytes::from(block.to_ascii_uppercase())));
        res.set_body(Body::from_stream(loud));
        Outcome::Ok
    });
    Outcome::Ok
}

#[tokio::test]
async fn a_handler_wraps_whole_streamed_and_pushed_bodies_alike() {
    let server = common::start(
        Server::builder()
            .pre("/", shout)
            .content("/whole", "whole body")
            .content("/stream", |_req: Request, res: Response| {
                let blocks = ["streamed ", "body"].map(|b| Ok(Bytes::from_static(b.as_bytes())));
                res.set_body(Body::from_stream(futures_util::stream::iter(blocks)));
                Outcome::Ok
            })
            .content("/pushed", |_req: Request, res: Response| {
                res.set_streaming(true);
                tokio::spawn(async move {
                    for block in ["pushed ", "body"] {
                        res.write(block).await.expect("the client reads");
                    }
                    res.close();
                });
                Outcome::Ok
            }),
    )
    .await;
    let client = common::client();
    for (path, expected) in [
        ("/whole", "WHOLE BODY"),
        ("/stream", "STREAMED BODY"),
        ("/pushed", "PUSHED BODY"),
    ] {
        let answer = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(answer.text().await.unwrap(), expected, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_request_body_is_taken_as_a_stream_within_the_limit() {
    let server = common::start(Server::builder().max_body_size(1000).content(
        "/",
        |req: Request, res: Response| async move {
            let mut body = match req.take_body() {
                Ok(body) => body,
                Err(error) => return res.deny(error.status()),
            };
            let (mut blocks, mut bytes) = (0, 0);
            while let Some(block) = body.next().await {
                match block {
                    Ok(block) => (blocks, bytes) = (blocks + 1, bytes + block.len()),
                    Err(error) => return res.deny(error.status()),
                }
            }
            let again = req
                .take_body()
                .map(|_| ())
                .map_err(|error| error.to_string());
            res.ok(format!(
                "{bytes} bytes, {} blocks; again: {again:?}",
                blocks > 0
            ))
        },
    ))
    .await;
    let client = common::client();
    let fits = client.post(server.url("/")).body(vec![b'x'; 600]);
    let answer = fits.send().await.unwrap();
    assert_eq!(
        answer.text().await.unwrap(),
        "600 bytes, true blocks; again: Err(\"the request body was already read by an earlier handler\")"
    );
    // Chunked, so no Content-Length refuses it before the handler reads.
    let chunks = futures_util::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; 400]))),
    );
    let too_big = client
        .post(server.url("/"))
        .body(reqwest::Body::wrap_stream(chunks));
    let answer = too_big.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}

#[tokio::test]
async fn headers_are_handed_on_and_the_figures_read_from_a_handler() {
    let server = common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            let mut upstream = poco_httpd::http::HeaderMap::new();
            upstream.append("x-upstream", "one".parse().expect("a header value"));
            upstream.append("x-upstream", "two".parse().expect("a header value"));
            res.set_header("x-upstream", "ours");
            res.extend_headers(upstream);
            let stats = req.server_stats();
            res.ok(format!(
                "open {} in flight {}",
                stats.open_connections(),
                stats.in_flight()
            ))
        }),
    )
    .await;
    let answer = common::client().get(server.url("/")).send().await.unwrap();
    let values: Vec<_> = answer.headers().get_all("x-upstream").iter().collect();
    assert_eq!(values, ["ours", "one", "two"]);
    assert_eq!(answer.text().await.unwrap(), "open 1 in flight 1");
    server.stop().await;
}

#[tokio::test]
async fn set_headers_replaces_the_names_it_sets_and_keeps_the_others() {
    let server = common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            if req.path() == "/over" {
                res.set_header("x-kept", "kept");
                res.set_header("x-replaced", "old");
            }
            let mut ready = poco_httpd::http::HeaderMap::new();
            ready.append("x-replaced", "new one".parse().expect("a header value"));
            ready.append("x-replaced", "new two".parse().expect("a header value"));
            ready.insert("x-ready", "ready".parse().expect("a header value"));
            res.set_headers(ready);
            res.ok("body")
        }),
    )
    .await;
    for path in ["/empty", "/over"] {
        let answer = common::client().get(server.url(path)).send().await.unwrap();
        let replaced: Vec<_> = answer.headers().get_all("x-replaced").iter().collect();
        assert_eq!(replaced, ["new one", "new two"], "{path}");
        assert_eq!(common::header(&answer, "x-ready"), "ready", "{path}");
        let kept = answer
            .headers()
            .get("x-kept")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            kept.as_deref(),
            (path == "/over").then_some("kept"),
            "{path}"
        );
        assert_eq!(answer.text().await.unwrap(), "body");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_whole_body_set_after_streaming_ends_the_stream_instead_of_being_lost() {
    let server = common::start(
        Server::builder().content("/", |_req: Request, res: Response| {
            res.set_streaming(true);
            res.set_body("whole after all");
            let refused = res.send("block");
            res.set_header("x-refused", format!("{:?}", refused.err()));
            Outcome::Ok
        }),
    )
    .await;
    let answer = common::client().get(server.url("/")).send().await.unwrap();
    assert_eq!(answer.headers()["content-length"], "15");
    let expected = format!("{:?}", Some(StreamError::NotStreaming));
    assert_eq!(answer.headers()["x-refused"], expected.as_str());
    assert_eq!(answer.text().await.unwrap(), "whole after all");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_the_tasks_a_handler_spawned_on_the_server() {
    let events = common::Events::default();
    let log = events.clone();
    let server = common::start(Server::builder().content(
        "/",
        move |req: Request, res: Response| {
            let (log, shutdown) = (log.clone(), req.shutdown_handle());
            req.spawn(async move {
                shutdown.requested().await;
                // Work after shutdown was asked for, still within the deadline.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                log.push("task finished");
            });
            res.ok("spawned")
        },
    ))
    .await;
    let answer = common::client().get(server.url("/")).send().await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "spawned");
    assert!(events.all().is_empty());
    server.stop().await;
    assert_eq!(events.all(), ["task finished"]);
}
