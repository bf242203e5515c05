//! The original module's test scenarios: its handler map of `/`, `/honk/` and
//! `/bonk/zip.html`, requested on fresh connections, over one keep-alive connection
//! and pipelined.

use poco_httpd::{Handler, Outcome, Request, Response, Server, ServerBuilder};
use tokio::net::TcpStream;

use crate::common::{self, Raw};

/// A Content handler answering `before`, the connection id, then `after`.
fn page(content_type: &'static str, before: &'static str, after: &'static str) -> impl Handler {
    move |req: Request, res: Response| {
        res.set_content_type(content_type);
        res.set_body(format!("{before}{}{after}", req.connection().id()));
        Outcome::Ok
    }
}

/// The handler map of the original module's test.
fn original_module_server() -> ServerBuilder {
    Server::builder()
        .content("/", page("text/plain", "this is top; connection ", ""))
        .content(
            "/honk/",
            page("text/plain", "this is honk; connection ", ""),
        )
        .content(
            "/bonk/zip.html",
            page(
                "text/html",
                "<html><body>this is bonk2; connection ",
                "</body></html>",
            ),
        )
}

/// Checks one answer of [`original_module_server`]; returns its connection id.
fn check_original_answer(path: &str, answer: &Raw) -> String {
    assert_eq!(answer.status, 200, "{path}: {answer:?}");
    let (prefix, content_type) = match path {
        "/" => ("this is top", "text/plain"),
        "/honk/something.html" => ("this is honk", "text/plain"),
        "/bonk/zip.html" => ("<html><body>this is bonk2", "text/html"),
        other => panic!("unexpected path {other}"),
    };
    assert!(answer.body.starts_with(prefix), "{path}: {answer:?}");
    assert_eq!(
        answer.header("content-type"),
        Some(content_type),
        "{path}: {answer:?}"
    );
    let id = answer
        .body
        .split("connection ")
        .nth(1)
        .expect("connection id in body");
    id.trim_end_matches("</body></html>").to_owned()
}

const ORIGINAL_PATHS: [&str; 3] = ["/", "/honk/something.html", "/bonk/zip.html"];

/// Checks the answers to [`ORIGINAL_PATHS`], in order, and returns how many
/// connections they came over (as the handlers saw them).
fn connections(answers: &[Raw]) -> usize {
    assert_eq!(answers.len(), ORIGINAL_PATHS.len(), "{answers:?}");
    let mut ids: Vec<String> = (ORIGINAL_PATHS.iter().zip(answers))
        .map(|(path, answer)| check_original_answer(path, answer))
        .collect();
    ids.dedup();
    ids.len()
}

/// One keep-alive `GET path` request.
fn keep_alive_get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

#[tokio::test]
async fn original_module_scenarios_on_fresh_connections() {
    let server = common::start(original_module_server()).await;
    let mut answers = Vec::new();
    for path in ORIGINAL_PATHS {
        answers.push(server.raw_get(path).await);
    }
    assert_eq!(
        connections(&answers),
        3,
        "each request had its own connection"
    );
    server.stop().await;
}

#[tokio::test]
async fn original_module_scenarios_over_one_keep_alive_connection() {
    let server = common::start(original_module_server()).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let mut answers = Vec::new();
    for path in ORIGINAL_PATHS {
        common::send(&mut stream, keep_alive_get(path).as_bytes()).await;
        answers.push(Raw::parse(&common::read_response(&mut stream).await));
    }
    assert_eq!(connections(&answers), 1, "all three on one connection");
    server.stop().await;
}

#[tokio::test]
async fn original_module_scenarios_pipelined_on_one_connection() {
    let server = common::start(original_module_server()).await;
    let requests: String = ORIGINAL_PATHS.map(keep_alive_get).concat();
    let mut stream = server.connect(requests.as_bytes()).await;
    let mut answers = Vec::new();
    for _ in ORIGINAL_PATHS {
        answers.push(Raw::parse(&common::read_response(&mut stream).await));
    }
    assert_eq!(connections(&answers), 1, "all three on one connection");
    server.stop().await;
}
