//! The Send phase: default headers (`Server` among them), `Date`, a correct
//! `Content-Length`, and one `Set-Cookie` per cookie.

use std::time::Duration;

use poco_httpd::cookie::Cookie;
use poco_httpd::{Outcome, Request, Response, Server, ServerBuilder};

use crate::common::{self, Raw};

const DEFAULT_SERVER: &str = concat!("poco-httpd/", env!("CARGO_PKG_VERSION"));

/// The answer to `GET /` of `builder` with a Content handler answering `hi`.
async fn hello(builder: ServerBuilder) -> Raw {
    common::get_once(builder.content("/", common::answer("hi")), "/").await
}

#[tokio::test]
async fn server_header_is_sent_by_default() {
    let answer = hello(Server::builder()).await;
    assert_eq!(answer.all("server"), [DEFAULT_SERVER]);
}

#[tokio::test]
async fn server_header_can_be_replaced() {
    let answer = hello(Server::builder().header("Server", "My Server")).await;
    assert_eq!(answer.all("server"), ["My Server"]);
}

#[tokio::test]
async fn server_header_can_be_removed() {
    let answer = hello(Server::builder().remove_header("Server")).await;
    assert_eq!(answer.status, 200);
    assert!(answer.all("server").is_empty(), "{answer:?}");
}

#[tokio::test]
async fn default_headers_are_added_unless_the_handler_set_its_own() {
    let own = |_req: Request, res: Response| {
        res.set_header("X-Frame-Options", "SAMEORIGIN");
        res.set_header("Server", "Handler Server");
        res.set_body("own");
        Outcome::Ok
    };
    let server = common::start(
        Server::builder()
            .header("X-Frame-Options", "DENY")
            .header("Server", "Default Server")
            .content("/", common::answer("defaults"))
            .content("/own", own),
    )
    .await;
    let defaults = server.raw_get("/").await;
    assert_eq!(defaults.all("x-frame-options"), ["DENY"]);
    assert_eq!(defaults.all("server"), ["Default Server"]);
    let own = server.raw_get("/own").await;
    assert_eq!(own.body, "own");
    assert_eq!(own.all("x-frame-options"), ["SAMEORIGIN"]);
    assert_eq!(own.all("server"), ["Handler Server"]);
    server.stop().await;
}

#[tokio::test]
async fn date_and_a_correct_content_length_are_sent() {
    let server = common::start(
        Server::builder()
            .content("/", common::answer("twelve bytes"))
            .content("/empty", common::answer("")),
    )
    .await;
    let answer = server.raw_get("/").await;
    assert_eq!(answer.body, "twelve bytes");
    assert_eq!(answer.all("content-length"), ["12"]);
    let date = answer.header("date").expect("a Date header");
    let sent = httpdate::parse_http_date(date).expect("an HTTP date");
    let age = std::time::SystemTime::now()
        .duration_since(sent)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "stale Date {date}");

    // HEAD: the same Content-Length, no body.
    let head = server
        .raw_answer(b"HEAD / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(head.all("content-length"), ["12"]);
    assert_eq!(head.body, "");

    let empty = server.raw_get("/empty").await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.all("content-length"), ["0"]);
    assert_eq!(empty.body, "");
    server.stop().await;
}

#[tokio::test]
async fn each_cookie_becomes_its_own_set_cookie_header() {
    let cookies = |_req: Request, res: Response| {
        res.add_cookie(Cookie::build(("a", "1")).path("/"));
        res.add_cookie(Cookie::build(("b", "2")).http_only(true));
        res.set_body("cookies");
        Outcome::Ok
    };
    let answer = common::get_once(Server::builder().content("/", cookies), "/").await;
    let cookies = answer.all("set-cookie");
    assert_eq!(cookies.len(), 2, "{answer:?}");
    let a = Cookie::parse(cookies[0]).expect("a cookie");
    assert_eq!((a.name(), a.value(), a.path()), ("a", "1", Some("/")));
    let b = Cookie::parse(cookies[1]).expect("a cookie");
    assert_eq!((b.name(), b.value(), b.http_only()), ("b", "2", Some(true)));
}
