//! Abusive input over loopback, in bounded loops: slowloris, request smuggling, bad
//! methods and URIs, and handlers trying to split a response with CR/LF.

mod common;

use std::time::Duration;

use common::PATIENCE;
use poco_httpd::cookie::Cookie;
use poco_httpd::{Outcome, Request, Response, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A Content handler that reads the body, so body framing errors surface.
async fn echo_length(req: Request, res: Response) -> Outcome {
    match req.body().await {
        Ok(body) => res.set_body(format!("{} bytes", body.len())),
        Err(error) => res.set_status(error.status()),
    }
    Outcome::Ok
}

#[tokio::test]
async fn smuggling_attempts_get_400_and_the_connection_closed() {
    let server = common::start(Server::builder().content("/", echo_length)).await;
    let attempts: [&[u8]; 5] = [
        // Two different lengths.
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcdGET /smuggled HTTP/1.1\r\n\r\n",
        // A header folded onto a second line (obs-fold).
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
        // A chunk size that is not hex.
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        // Transfer-Encoding that does not end in chunked.
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabcd",
        // A space before the colon.
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 4\r\n\r\nabcd",
    ];
    for attempt in attempts {
        let answer = server.raw(attempt).await;
        let shown = String::from_utf8_lossy(attempt);
        assert!(answer.starts_with("HTTP/1.1 400"), "{shown:?} -> {answer}");
        assert_eq!(
            answer.matches("HTTP/1.1").count(),
            1,
            "{shown:?} -> {answer}"
        );
        assert!(!answer.contains("smuggled"), "{shown:?} -> {answer}");
    }
    server.stop().await;
}

/// hyper drops the `Content-Length` of such a request before it reaches the pipeline
/// and reads the body as chunked, then closes the connection (RFC 9112 §6.3): the
/// bytes a length-framing proxy would have taken as a second request are never read.
#[tokio::test]
async fn content_length_with_transfer_encoding_is_read_chunked_and_the_connection_closed() {
    let server = common::start(Server::builder().content("/", echo_length)).await;
    let answer = server.raw(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    .await;
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.ends_with("0 bytes"), "{answer}");
    assert_eq!(server.stats.requests(), 1);
    server.stop().await;
}

#[tokio::test]
async fn invalid_methods_versions_and_uris_get_4xx() {
    // Blank lines alone are not a request yet: hyper waits for one, so the header
    // timeout is what ends that connection.
    let server = common::start(
        Server::builder()
            .header_read_timeout(Duration::from_secs(1))
            .content("/", echo_length),
    )
    .await;
    for request in [
        "G@T / HTTP/1.1\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET http://[::1 HTTP/1.1\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n",
        "GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /..%2f..%2fetc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        "\r\n\r\n\r\n",
    ] {
        let answer = server.raw(request.as_bytes()).await;
        let status: u16 = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(
            answer.is_empty() || (400..500).contains(&status),
            "{request:?} -> {answer}"
        );
    }
    let fine = server
        .raw(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert!(fine.starts_with("HTTP/1.1 200"), "{fine}");
    server.stop().await;
}

#[tokio::test]
async fn a_handler_cannot_split_the_response_with_cr_or_lf() {
    let server = common::start(
        Server::builder().content("/", |_req: Request, res: Response| {
            let set = res.try_set_header("x-name", "a\r\nX-Injected: set");
            let appended = res.try_append_header("x-name", "a\nX-Injected: appended");
            res.add_cookie(Cookie::new("c", "v\r\nX-Injected: cookie"));
            res.set_body(format!(
                "set {} appended {}",
                set.is_err(),
                appended.is_err()
            ));
            Outcome::Ok
        }),
    )
    .await;
    let answer = server
        .raw(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The cookie's value is percent-encoded, so the text survives, but never as a
    // header line of its own.
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    assert!(
        !head
            .lines()
            .any(|line| line.to_lowercase().starts_with("x-injected")),
        "{answer}"
    );
    assert!(answer.ends_with("set true appended true"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn slowloris_clients_are_cut_and_do_not_stop_normal_clients() {
    const SLOW_CLIENTS: usize = 200;
    let server = common::start(
        Server::builder()
            .header_read_timeout(Duration::from_millis(800))
            .content("/", |_req: Request, res: Response| {
                res.set_body("served");
                Outcome::Ok
            }),
    )
    .await;
    let addr = server.addr;
    // Each slow client trickles a byte of its head every 100 ms, for at most 5 s.
    let slow: Vec<_> = (0..SLOW_CLIENTS)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
                for byte in head.iter().cycle().take(50) {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // Cut means: the server closed (EOF or reset) without answering 200.
                let mut rest = Vec::new();
                let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await;
                matches!(read, Ok(Err(_)) | Ok(Ok(_))) && !String::from_utf8_lossy(&rest).contains("200")
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = common::client();
    for _ in 0..50 {
        let answer = server.response(&client, "/").await;
        assert_eq!(answer.text().await.unwrap(), "served");
    }
    let mut cut = 0;
    for handle in slow {
        cut += usize::from(handle.await.unwrap());
    }
    assert_eq!(cut, SLOW_CLIENTS);
    assert!(
        server.stats.open_connections() <= 1,
        "{}",
        server.stats.open_connections()
    );
    server.stop().await;
}

#[tokio::test]
async fn http_1_1_requests_without_one_valid_host_get_400_and_the_connection_closed() {
    let server = common::start(Server::builder().content("/", common::answer("hello"))).await;
    for request in [
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\n\r\n",
    ] {
        let answer = server.raw(request.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 "),
            "{request:?} -> {answer}"
        );
        assert!(
            answer.contains("connection: close\r\n"),
            "{request:?} -> {answer}"
        );
    }
    // HTTP/1.0 may leave Host out.
    let answer = server.raw(b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.0 200 "), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_bad_host_after_good_ones_on_one_connection_still_gets_400() {
    // The connection remembers its last valid Host: a different value that follows
    // (however alike) is checked again, a second Host field counted again.
    let server = common::start(Server::builder().content("/", common::answer("hello"))).await;
    let good = "GET / HTTP/1.1\r\nHost: example.org:8080\r\n\r\n";
    for bad in [
        "GET / HTTP/1.1\r\nHost: example.org:8080/\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: example.org:8080\r\nHost: example.org:8080\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
    ] {
        let answer = server.raw(format!("{good}{good}{bad}").as_bytes()).await;
        // The bodies end without a newline: status lines are found by their start.
        let statuses: Vec<&str> = answer
            .match_indices("HTTP/1.1 ")
            .map(|(at, _)| &answer[at + "HTTP/1.1 ".len()..][..3])
            .collect();
        assert_eq!(statuses, ["200", "200", "400"], "{bad:?} -> {answer}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_absolute_form_target_wins_over_the_host_header() {
    let server = common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            res.set_body(format!("{} {}", req.host(), req.url()));
            Outcome::Ok
        }),
    )
    .await;
    let answer = server.raw(b"GET http://target.example:81/p?q HTTP/1.1\r\nHost: header.example\r\nConnection: close\r\n\r\n")
    .await;
    assert!(
        answer.ends_with("target.example:81 http://target.example:81/p?q"),
        "{answer}"
    );
    server.stop().await;
}
