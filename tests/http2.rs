//! HTTP/2 (h2c, prior knowledge) responses without a body: `HEAD`, `204` and an empty
//! `200`. hyper may never poll such a body; their Post handlers must still run once
//! the head has gone out, and report no error.

mod common;

use std::net::SocketAddr;

use common::Events;
use poco_httpd::http::{Method, StatusCode};
use poco_httpd::{Outcome, Request, Response, Server};
use tokio::net::TcpStream;

/// An h2c client on one connection.
async fn connect(addr: SocketAddr) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    sender
}

/// Sends a request without a body; returns the status.
async fn send(
    sender: &h2::client::SendRequest<bytes::Bytes>,
    addr: SocketAddr,
    method: Method,
    path: &str,
) -> StatusCode {
    let request = poco_httpd::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(())
        .expect("request");
    let mut sender = sender.clone().ready().await.expect("stream slot");
    let (response, _) = sender.send_request(request, true).expect("send");
    response.await.expect("response head").status()
}

#[tokio::test]
async fn post_handlers_of_bodyless_http2_responses_run_without_error() {
    let events = Events::default();
    let log = events.clone();
    let content = |req: Request, res: Response| {
        match req.path() {
            "/no-content" => res.set_status(StatusCode::NO_CONTENT),
            "/empty" => {}
            _ => res.set_body("only the head of this goes out for HEAD"),
        }
        Outcome::Ok
    };
    let post = move |req: Request, res: Response| {
        let outcome = if res.is_error() { "error" } else { "ok" };
        log.push(format!("{} {} {outcome}", req.method(), req.path()));
        Outcome::Ok
    };
    let server = common::start(Server::builder().content("/", content).post("/", post)).await;
    let sender = connect(server.addr).await;
    let cases = [
        (Method::HEAD, "/page", StatusCode::OK),
        (Method::GET, "/no-content", StatusCode::NO_CONTENT),
        (Method::GET, "/empty", StatusCode::OK),
    ];
    for (method, path, status) in cases {
        let expected = format!("{method} {path} ok");
        assert_eq!(send(&sender, server.addr, method, path).await, status);
        events.wait_for(1).await;
        assert_eq!(events.all(), [expected]);
        events.clear();
    }
    server.stop().await;
}
