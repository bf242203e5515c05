//! What a handler learns about the request: method, version, headers, query,
//! cookies, the URL it was asked for and the connection's addresses.

use std::net::SocketAddr;

use poco_httpd::http::header;
use poco_httpd::{Handler, Server};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::{self, Raw};

#[tokio::test]
async fn method_version_headers_and_query_are_reported() {
    let report = common::body_from(|req| {
        let (method, version, query) = (req.method(), req.version(), req.query());
        let (test, missing) = (req.header_text("x-test"), req.header("x-missing"));
        format!("{method} {version:?} {test:?} {query:?} {missing:?}")
    });
    let server = common::start(Server::builder().content("/", report)).await;
    let put = common::client().put(server.url("/facts?x=1&y=two"));
    let (_, body) = common::fetch(put.header("X-Test", "hello")).await;
    assert_eq!(
        body,
        "PUT HTTP/1.1 Some(\"hello\") Some(\"x=1&y=two\") None"
    );
    let raw = server.raw_get("/facts").await;
    assert_eq!(raw.body, "GET HTTP/1.1 None None None");
    server.stop().await;
}

#[tokio::test]
async fn request_cookies_are_read_by_name() {
    let report = common::body_from(|req| {
        let name = req.cookie("name").map(|c| c.value().to_owned());
        let other = req.cookie("other").map(|c| c.value().to_owned());
        let missing = req.cookie("missing");
        format!("{name:?} {other:?} {missing:?}")
    });
    let server = common::start(Server::builder().content("/", report)).await;
    let get = common::client()
        .get(server.url("/"))
        .header(header::COOKIE, "a=1; name=value%20x")
        .header(header::COOKIE, "other=two");
    let (_, body) = common::fetch(get).await;
    assert_eq!(body, "Some(\"value x\") Some(\"two\") None");
    server.stop().await;
}

/// A Content handler answering `req.url()`.
fn url_reporter() -> impl Handler {
    common::body_from(|req| req.url())
}

#[tokio::test]
async fn url_is_built_from_the_host_header() {
    let server = common::start(Server::builder().content("/", url_reporter())).await;
    let body = server.text(&common::client(), "/u/v.html?q=1").await;
    assert_eq!(body, format!("http://{}/u/v.html?q=1", server.addr));
    let raw = server
        .raw_answer(b"GET /w HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(raw.body, "http://example.com:8080/w");
    server.stop().await;
}

#[tokio::test]
async fn url_without_a_host_header_uses_the_configured_hostname() {
    let builder = Server::builder().hostname("example.org");
    let server = common::start(builder.content("/", url_reporter())).await;
    let raw = server.raw_answer(b"GET /u?x=y HTTP/1.0\r\n\r\n").await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body, "http://example.org/u?x=y");
    server.stop().await;
}

#[tokio::test]
async fn url_without_host_header_or_hostname_uses_the_local_address() {
    let server = common::start(Server::builder().content("/", url_reporter())).await;
    let raw = server.raw_answer(b"GET /u HTTP/1.0\r\n\r\n").await;
    assert_eq!(raw.body, format!("http://{}/u", server.addr));
    server.stop().await;
}

#[tokio::test]
async fn connection_reports_remote_and_local_addresses() {
    let report = common::body_from(|req| {
        let conn = req.connection();
        format!("{} {}", conn.remote_addr(), conn.local_addr())
    });
    let server = common::start(Server::builder().content("/", report)).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let client_addr = stream.local_addr().expect("client address");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let raw = Raw::parse(&common::read_to_close(&mut stream).await);
    let (remote, local) = raw.body.split_once(' ').expect("two addresses");
    let remote: SocketAddr = remote.parse().expect("remote address");
    assert_eq!(remote.ip().to_string(), "127.0.0.1");
    assert_eq!(remote, client_addr);
    assert_eq!(local.parse::<SocketAddr>().expect("local"), server.addr);
    server.stop().await;
}
