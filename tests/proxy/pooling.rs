//! The proxy's own keep-alive pool of upstream connections: a connection is used
//! again for the next request, one the upstream closed while it sat idle is noticed
//! and the request still goes through, and a client going away mid-answer closes
//! the upstream connection rather than leaving it in the pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

use crate::{
    closed_by_proxy, common, next_report, proxy_server, proxy_to, raw_upstream, read_head,
};

/// A raw upstream counting the connections it accepted; on each it answers up to
/// `per_connection` requests (`served N`, N counting from 1 on that connection)
/// and then, once `release` is notified, closes it, telling `closed` so.
async fn counting_upstream(
    per_connection: usize,
    release: Arc<Notify>,
    closed: mpsc::UnboundedSender<()>,
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let addr = raw_upstream(move |mut stream| {
        counter.fetch_add(1, Ordering::SeqCst);
        let (closed, release) = (closed.clone(), Arc::clone(&release));
        async move {
            for served in 1..=per_connection {
                let head = read_head(&mut stream).await;
                if head.is_empty() {
                    return;
                }
                let length = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .map_or(0, |v| v.parse::<usize>().expect("a numeric length"));
                let mut body = vec![0_u8; length];
                if stream.read_exact(&mut body).await.is_err() {
                    return;
                }
                let text = format!("served {served}");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                );
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
            release.notified().await;
            drop(stream);
            let _ = closed.send(());
        }
    })
    .await;
    (addr, accepted)
}

#[tokio::test]
async fn a_kept_alive_upstream_connection_serves_the_next_requests() {
    let (closed_tx, _closed) = mpsc::unbounded_channel();
    let (upstream, accepted) = counting_upstream(100, Arc::default(), closed_tx).await;
    let proxy = proxy_server(proxy_to(&[upstream.to_string()]), |b| b).await;
    let client = common::client();
    for round in 1..=3 {
        let (status, body) = proxy.get(&client, "/").await;
        assert_eq!(
            (status, body.as_str()),
            (200, format!("served {round}").as_str())
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one upstream connection for all"
    );
    proxy.stop().await;
}

/// The upstream closes each connection after one answer (without saying so in the
/// answer) once the answer has come through, so the proxy has pooled it: the next
/// request finds it closed and takes another. A `POST` is never sent twice once it
/// went out, so its success shows the closed connection was noticed before.
#[tokio::test]
async fn an_upstream_closing_a_pooled_connection_is_noticed_and_the_request_still_succeeds() {
    let (closed_tx, mut closed) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let (upstream, accepted) = counting_upstream(1, Arc::clone(&release), closed_tx).await;
    let proxy = proxy_server(proxy_to(&[upstream.to_string()]), |b| b).await;
    let client = common::client();
    for round in 1..=3 {
        let (status, body) = proxy.post(&client, "/", "data").await;
        assert_eq!((status, body.as_str()), (200, "served 1"), "round {round}");
        release.notify_one();
        next_report(&mut closed).await;
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "a new connection each time"
    );
    proxy.stop().await;
}

/// A raw upstream that answers the first request on each connection with
/// `answer` and then reports whether the proxy closes the connection.
async fn answering_then_watching(
    answer: &'static str,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<&'static str>) {
    let (reports_tx, reports) = mpsc::unbounded_channel();
    let upstream = raw_upstream(move |mut stream| {
        let reports_tx = reports_tx.clone();
        async move {
            read_head(&mut stream).await;
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = reports_tx.send(closed_by_proxy(&mut stream).await);
        }
    })
    .await;
    (upstream, reports)
}

#[tokio::test]
async fn a_client_going_away_mid_answer_closes_the_upstream_connection() {
    // A long answer, of which only the start comes.
    let start = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nthe start";
    let (upstream, mut events) = answering_then_watching(start).await;
    let proxy = proxy_server(proxy_to(&[upstream.to_string()]), |b| b).await;
    let mut client = proxy
        .connect(b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("the start") {
        let mut buffer = [0_u8; 256];
        let read = tokio::time::timeout(common::PATIENCE, client.read(&mut buffer))
            .await
            .expect("the start of the answer arrives")
            .expect("read");
        assert_ne!(read, 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..read]);
    }
    drop(client);
    assert_eq!(
        next_report(&mut events).await,
        "closed",
        "the proxy closes the upstream connection"
    );
    proxy.stop().await;
}

/// An upstream that answers the first request on each connection and closes the
/// connection on reading the second, unanswered: as one whose keep-alive timeout
/// ends just as a request arrives.
async fn answering_once_upstream() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let addr = raw_upstream(move |mut stream| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            read_head(&mut stream).await;
            let answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst";
            if stream.write_all(answer.as_bytes()).await.is_ok() {
                read_head(&mut stream).await;
            }
        }
    })
    .await;
    (addr, accepted)
}

#[tokio::test]
async fn a_get_whose_reused_connection_closes_unanswered_goes_again_on_a_fresh_one() {
    let (upstream, accepted) = answering_once_upstream().await;
    let proxy = proxy_server(proxy_to(&[upstream.to_string()]), |b| b).await;
    let client = common::client();
    for round in 1..=2 {
        let (status, body) = proxy.get(&client, "/").await;
        assert_eq!((status, body.as_str()), (200, "first"), "round {round}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "the second GET went again"
    );
    // A POST that went out is not sent twice: the client hears of the failure.
    let (status, _) = proxy.post(&client, "/", "data").await;
    assert_eq!(status, 502);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "the POST was not sent again"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn an_idle_upstream_connection_is_closed_after_the_pool_idle_timeout_without_traffic() {
    // No more requests come: the proxy should close the connection itself.
    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let (upstream, mut events) = answering_then_watching(answer).await;
    let proxy_handler =
        proxy_to(&[upstream.to_string()]).pool_idle_timeout(std::time::Duration::from_millis(200));
    let proxy = proxy_server(proxy_handler, |b| b).await;
    let (status, body) = proxy.get(&common::client(), "/").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(
        next_report(&mut events).await,
        "closed",
        "the idle connection is closed by the proxy"
    );
    proxy.stop().await;
}

/// A raw upstream answering every request on a connection, by its request line:
/// `HEAD` → a head declaring 5 bytes; `/none` → `204`; `/unchanged` → `304`;
/// `/empty` → `Content-Length: 0`; `/close` → `Connection: close`; `/old` → an
/// HTTP/1.0 answer; anything else → `name`. It never closes a connection itself,
/// so only the proxy's choice decides whether one is used again. Returns its
/// address and the count of connections it accepted.
async fn answering_by_path(name: &'static str) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let addr = raw_upstream(move |mut stream| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            loop {
                let head = read_head(&mut stream).await;
                let Some(line) = head.lines().next().filter(|line| !line.is_empty()) else {
                    return;
                };
                let answer = match line.split(' ').take(2).collect::<Vec<_>>()[..] {
                    ["HEAD", _] => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_owned(),
                    [_, "/none"] => "HTTP/1.1 204 No Content\r\n\r\n".to_owned(),
                    [_, "/unchanged"] => {
                        "HTTP/1.1 304 Not Modified\r\nETag: \"1\"\r\n\r\n".to_owned()
                    }
                    [_, "/empty"] => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_owned(),
                    [_, "/close"] => {
                        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
                            .to_owned()
                    }
                    [_, "/old"] => "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_owned(),
                    _ => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
                        name.len()
                    ),
                };
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    (addr, accepted)
}

#[tokio::test]
async fn answers_without_a_body_keep_their_connection_and_closing_ones_do_not() {
    let (upstream, accepted) = answering_by_path("x").await;
    let proxy = proxy_server(proxy_to(&[upstream.to_string()]), |b| b).await;
    let client = common::client();
    // (request, connections accepted once it was answered)
    let steps = [
        ("GET /empty", 1),
        ("HEAD /", 1),
        ("GET /none", 1),
        ("GET /unchanged", 1),
        ("GET /empty", 1),
        ("GET /close", 1),
        ("GET /empty", 2),
        ("GET /old", 2),
        ("GET /empty", 3),
    ];
    for (step, connections) in steps {
        let (method, path) = step.split_once(' ').expect("method and path");
        let method = poco_httpd::http::Method::from_bytes(method.as_bytes()).expect("method");
        let response = client
            .request(method, proxy.url(path))
            .send()
            .await
            .expect("an answer");
        assert!(response.status().as_u16() < 400, "{step}: {response:?}");
        let _ = response.bytes().await.expect("the body");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            connections,
            "connections accepted once {step} was answered"
        );
    }
    proxy.stop().await;
}

#[tokio::test]
async fn least_connections_counts_end_with_answers_without_a_body() {
    let (a, _) = answering_by_path("a").await;
    let (b, _) = answering_by_path("b").await;
    let proxy = proxy_to(&[a.to_string(), b.to_string()])
        .balance(poco_httpd::handlers::Balance::LeastConnections);
    let proxy = proxy_server(proxy, |x| x).await;
    let client = common::client();
    for first in ["HEAD /", "GET /none", "GET /unchanged", "GET /empty"] {
        let (method, path) = first.split_once(' ').expect("method and path");
        let method = poco_httpd::http::Method::from_bytes(method.as_bytes()).expect("method");
        let response = client
            .request(method, proxy.url(path))
            .send()
            .await
            .expect("an answer");
        let _ = response.bytes().await.expect("the body");
        // Should the one answered still count, every request would go to the other.
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(proxy.text(&client, "/").await);
        }
        seen.sort();
        assert_eq!(seen, ["a", "a", "b", "b"], "after {first}");
    }
    proxy.stop().await;
}
