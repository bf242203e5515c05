//! Panic isolation, one test per phase: a panicking handler answers 500 (or cuts its
//! own response once that has started), the panic is logged with its phase and
//! message, the rest of the request's phases still run where they should, and the
//! server keeps serving.

mod common;

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use common::{Events, PATIENCE, answer};
use poco_httpd::{Outcome, Request, Response, Server};
use tokio::io::AsyncReadExt;

/// Everything the server logged, from all tests of this binary.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the server's logs to [`LOG`] (once per test binary).
fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .with_max_level(tracing::Level::ERROR)
            .init();
    });
}

/// Waits (bounded) for a log line holding all of `parts`.
async fn logged(parts: &[&str]) -> String {
    let found = async {
        loop {
            let log = String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned();
            if let Some(line) = log
                .lines()
                .find(|line| parts.iter().all(|part| line.contains(part)))
            {
                return line.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, found)
        .await
        .unwrap_or_else(|_| panic!("no log line with {parts:?}"))
}

/// Checks the server still answers an ordinary request after a panic.
async fn still_serving(server: &common::TestServer) {
    let body = server.text(&common::client(), "/").await;
    assert_eq!(body, "fine");
}

#[tokio::test]
async fn a_panic_in_trans_pre_content_or_post_answers_500_and_is_logged() {
    capture_logs();
    let events = Events::default();
    let post_log = events.clone();
    let server = common::start(
        Server::builder()
            .trans(|req: Request, _res: Response| {
                assert!(req.path() != "/trans", "trans panics");
                Outcome::Ok
            })
            .pre("/pre/", |_req: Request, _res: Response| -> Outcome {
                panic!("pre panics")
            })
            .content("/", answer("fine"))
            .content("/content", |_req: Request, _res: Response| async move {
                tokio::task::yield_now().await;
                panic!("async content panics after an await")
            })
            .post("/", |req: Request, _res: Response| {
                assert!(req.path() != "/post-panic", "post panics");
                Outcome::Ok
            })
            .post("/", move |req: Request, _res: Response| {
                post_log.push(format!("later post {}", req.path()));
                Outcome::Ok
            }),
    )
    .await;
    let client = common::client();
    for path in ["/trans", "/pre/x", "/content"] {
        let status = server.response(&client, path).await.status();
        assert_eq!(status, 500, "{path}");
    }
    let status = server.response(&client, "/post-panic").await.status();
    assert_eq!(status, 200, "Post runs after the response went out");
    let seen = events.wait_for(4).await;
    assert!(
        seen.contains(&"later post /post-panic".to_owned()),
        "{seen:?}"
    );
    logged(&["phase=\"Trans\"", "trans panics"]).await;
    logged(&["phase=\"Pre\"", "pre panics"]).await;
    logged(&["phase=\"Content\"", "async content panics after an await"]).await;
    logged(&["phase=\"Post\"", "post panics"]).await;
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_panic_in_a_before_send_hook_answers_500_and_is_logged() {
    capture_logs();
    let server = common::start(Server::builder().content("/", answer("fine")).content(
        "/hooked",
        |req: Request, res: Response| {
            res.set_body("never sent");
            req.before_send(|_req: Request, _res: Response| -> Outcome {
                panic!("send hook panics")
            });
            Outcome::Ok
        },
    ))
    .await;
    let response = server.response(&common::client(), "/hooked").await;
    assert_eq!(response.status(), 500);
    assert!(!response.text().await.unwrap().contains("never sent"));
    logged(&["phase=\"Send\"", "send hook panics"]).await;
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_panic_in_a_stream_handler_cuts_that_response_only() {
    capture_logs();
    let server = common::start(
        Server::builder()
            .content("/", answer("fine"))
            .content("/streamed", |_req: Request, res: Response| {
                res.set_streaming(true);
                Outcome::Ok
            })
            .stream_at("/streamed", |_req: Request, res: Response| {
                // The first call sends a block; the next, once it is flushed, panics.
                assert!(res.peak_buffered_bytes() == 0, "stream handler panics");
                res.send("first block").expect("room for one block");
                Outcome::Ok
            }),
    )
    .await;
    let mut stream = server
        .connect(b"GET /streamed HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut received)).await;
    let received = String::from_utf8_lossy(&received);
    assert!(read.is_ok(), "the cut response ends: {received}");
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(received.contains("first block"), "{received}");
    // A cut chunked body never gets its terminating zero-size chunk.
    assert!(!received.ends_with("0\r\n\r\n"), "{received}");
    logged(&["phase=\"Stream\"", "stream handler panics"]).await;
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_panic_in_an_error_handler_is_logged_and_post_handlers_still_run() {
    capture_logs();
    let events = Events::default();
    let post_log = events.clone();
    let server = common::start(
        Server::builder()
            .content("/", answer("fine"))
            .content("/endless", |_req: Request, res: Response| {
                let blocks = futures_util::stream::repeat_with(|| {
                    Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024]))
                });
                res.set_body_stream(blocks);
                Outcome::Ok
            })
            .error("/endless", |_req: Request, _res: Response| -> Outcome {
                panic!("error handler panics")
            })
            .post("/endless", move |req: Request, _res: Response| {
                post_log.push(format!("post after error: {}", req.is_error()));
                Outcome::Ok
            }),
    )
    .await;
    let mut stream = server
        .connect(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    drop(stream);
    assert_eq!(events.wait_for(1).await, ["post after error: true"]);
    logged(&["phase=\"Error\"", "error handler panics"]).await;
    still_serving(&server).await;
    server.stop().await;
}
