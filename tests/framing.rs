//! What reaches the wire whatever the handlers did: a whole body's real size wins over
//! a wrong `Content-Length`, the answers the server makes itself look like every other
//! response, and a request header changed to `Connection: close` ends the connection.

mod common;

use poco_httpd::http::StatusCode;
use poco_httpd::{Outcome, Request, Response, Server};

/// A Content handler declaring `Content-Length: 3` for a ten-byte body.
fn wrong_length(_req: Request, res: Response) -> Outcome {
    res.set_header("content-length", "3");
    res.set_body("0123456789");
    Outcome::Ok
}

/// The value of header `name` (lower case) in a raw response head.
fn header_of<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[tokio::test]
async fn a_wrong_content_length_never_desynchronizes_a_keep_alive_connection() {
    let server = common::start(
        Server::builder()
            .content("/", wrong_length)
            .content("/next", common::answer("next")),
    )
    .await;
    let mut stream = server.connect(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let first = common::read_response(&mut stream).await;
    assert_eq!(header_of(&first, "content-length"), Some("10"), "{first}");
    assert!(first.ends_with("\r\n\r\n0123456789"), "{first}");
    common::send(&mut stream, b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let second = common::read_response(&mut stream).await;
    assert!(second.starts_with("HTTP/1.1 200 OK\r\n"), "{second}");
    assert!(second.ends_with("\r\n\r\nnext"), "{second}");
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_content_length_is_corrected_over_http2_too() {
    let server = common::start(Server::builder().content("/", wrong_length)).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let answer = server.response(&client, "/").await;
    assert_eq!(answer.headers()["content-length"], "10");
    assert_eq!(answer.text().await.unwrap(), "0123456789");
    server.stop().await;
}

#[tokio::test]
async fn a_head_answer_may_declare_the_size_of_the_get_body() {
    let server = common::start(
        Server::builder().content("/", |_req: Request, res: Response| {
            res.set_header("content-length", "1234");
            Outcome::Ok
        }),
    )
    .await;
    let answer = server
        .raw(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(
        header_of(&answer, "content-length"),
        Some("1234"),
        "{answer}"
    );
    assert!(answer.ends_with("\r\n\r\n"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn answers_the_server_makes_itself_carry_a_type_and_the_default_headers() {
    let server = common::start(
        Server::builder()
            .header("Server", "test-server")
            .pre("/denied", |_req: Request, _res: Response| Outcome::Deny)
            .pre("/login", |_req: Request, res: Response| {
                res.set_status(StatusCode::UNAUTHORIZED);
                res.set_header("www-authenticate", "Basic realm=\"x\"");
                Outcome::Deny
            })
            .content("/here", common::answer("here")),
    )
    .await;
    let cases: [(&[u8], &str); 5] = [
        (b"GET /nothing HTTP/1.1\r\nHost: x\r\n", "404"),
        (b"GET /denied HTTP/1.1\r\nHost: x\r\n", "403"),
        (b"GET /login HTTP/1.1\r\nHost: x\r\n", "401"),
        (b"GET /here HTTP/1.1\r\n", "400"),
        (b"GET /%00 HTTP/1.1\r\nHost: x\r\n", "400"),
    ];
    for (head, status) in cases {
        let request = [head, b"Connection: close\r\n\r\n"].concat();
        let answer = server.raw(&request).await;
        let line = answer.lines().next().unwrap_or_default();
        assert!(line.starts_with(&format!("HTTP/1.1 {status} ")), "{answer}");
        let content_type = header_of(&answer, "content-type");
        assert_eq!(content_type, Some("text/plain; charset=utf-8"), "{answer}");
        assert_eq!(
            header_of(&answer, "server"),
            Some("test-server"),
            "{answer}"
        );
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        assert!(body.starts_with(&format!("{status} ")), "{answer}");
    }
    let login = server
        .raw(b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let challenge = header_of(&login, "www-authenticate");
    assert_eq!(challenge, Some("Basic realm=\"x\""), "{login}");
    server.stop().await;
}

#[tokio::test]
async fn heads_hyper_refuses_are_answered_with_a_type_and_the_default_headers() {
    let server = common::start(
        Server::builder()
            .header("Server", "test-server")
            .content("/", common::answer("hello")),
    )
    .await;
    for (request, status) in [
        (&b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n"[..], "400"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", "400"),
    ] {
        let answer = server.raw(request).await;
        let line = answer.lines().next().unwrap_or_default();
        assert!(line.starts_with(&format!("HTTP/1.1 {status} ")), "{answer}");
        let content_type = header_of(&answer, "content-type");
        assert_eq!(content_type, Some("text/plain; charset=utf-8"), "{answer}");
        assert_eq!(
            header_of(&answer, "server"),
            Some("test-server"),
            "{answer}"
        );
        assert_eq!(header_of(&answer, "connection"), Some("close"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        assert_eq!(body, format!("{status} Bad Request\n"), "{answer}");
        let length = header_of(&answer, "content-length").map(str::to_owned);
        assert_eq!(length, Some(body.len().to_string()), "{answer}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_handler_setting_connection_close_on_the_request_ends_a_kept_alive_connection() {
    let server = common::start(
        Server::builder()
            .pre("/last", |req: Request, _res: Response| {
                req.set_header("connection", "close");
                Outcome::Ok
            })
            .content("/", |req: Request, res: Response| {
                let seen = req.header_text("connection").unwrap_or_default();
                res.set_body(format!("saw [{seen}]"));
                Outcome::Ok
            }),
    )
    .await;
    let mut stream = server
        .connect(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let first = common::read_response(&mut stream).await;
    assert!(first.ends_with("saw []"), "{first}");
    common::send(&mut stream, b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let last = common::read_to_close(&mut stream).await;
    assert_eq!(header_of(&last, "connection"), Some("close"), "{last}");
    assert!(last.ends_with("saw [close]"), "{last}");
    server.stop().await;
}

#[tokio::test]
async fn trans_and_pre_handlers_change_the_headers_later_handlers_see() {
    let server = common::start(
        Server::builder()
            .trans(|req: Request, _res: Response| {
                req.append_header("x-trace", "trans");
                Outcome::Ok
            })
            .pre("/", |req: Request, _res: Response| {
                req.remove_header("x-drop");
                req.append_header("x-trace", "pre");
                Outcome::Ok
            })
            .content("/", |req: Request, res: Response| {
                let headers = req.headers();
                let trace: Vec<_> = headers.get_all("x-trace").iter().collect();
                res.set_body(format!(
                    "{trace:?} drop={:?} keep={:?} bad={}",
                    req.header("x-drop"),
                    req.header_text("x-keep"),
                    req.try_set_header("x-bad", "a\r\nb").is_err()
                ));
                Outcome::Ok
            }),
    )
    .await;
    let answer = common::client()
        .get(server.url("/"))
        .header("x-trace", "client")
        .header("x-drop", "1")
        .header("x-keep", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.text().await.unwrap(),
        r#"["client", "trans", "pre"] drop=None keep=Some("2") bad=true"#
    );
    server.stop().await;
}
