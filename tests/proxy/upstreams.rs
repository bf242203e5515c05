//! Several upstreams: round robin, least connections, Unix sockets, passive and
//! active health, and retries of idempotent requests that could not connect.

use std::sync::Arc;
use std::time::Duration;

use poco_httpd::handlers::{Balance, ProxyReport};
use poco_httpd::{Request, Response, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use crate::common::{self, Events};
use crate::{dead_address, echo_upstream, proxy_server, proxy_to};

/// An upstream of our own answering its own name.
async fn named(name: &'static str) -> common::TestServer {
    common::start(Server::builder().content("/", common::answer(name))).await
}

#[tokio::test]
async fn round_robin_takes_the_upstreams_in_turn() {
    let (a, b) = (named("a").await, named("b").await);
    let proxy = proxy_server(proxy_to(&[a.addr.to_string(), b.addr.to_string()]), |x| x).await;
    let client = common::client();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(proxy.text(&client, "/").await);
    }
    assert_eq!(seen, ["a", "b", "a", "b"]);
    proxy.stop().await;
}

#[tokio::test]
async fn least_connections_avoids_the_busy_upstream() {
    let release = Arc::new(Notify::new());
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let held = Arc::clone(&release);
    let slow = common::start(Server::builder().content(
        "/",
        move |_req: Request, res: Response| {
            let (held, arrived_tx) = (Arc::clone(&held), arrived_tx.clone());
            async move {
                let released = held.notified();
                let _ = arrived_tx.send(());
                released.await;
                res.ok("slow")
            }
        },
    ))
    .await;
    let fast = named("fast").await;
    let upstreams = [slow.addr.to_string(), fast.addr.to_string()];
    let proxy = proxy_server(
        proxy_to(&upstreams).balance(Balance::LeastConnections),
        |x| x,
    )
    .await;
    let client = common::client();
    // The first request goes to `slow` (the first; ties go in turn) and stays there.
    let pending = tokio::spawn({
        let (client, url) = (client.clone(), proxy.url("/"));
        async move { common::fetch(client.get(url)).await }
    });
    tokio::time::timeout(common::PATIENCE, arrived.recv())
        .await
        .expect("the first request reaches the slow upstream")
        .expect("a signal");
    for _ in 0..3 {
        assert_eq!(proxy.text(&client, "/").await, "fast");
    }
    release.notify_one();
    assert_eq!(pending.await.expect("task"), (200, "slow".to_owned()));
    proxy.stop().await;
}

#[tokio::test]
async fn a_unix_socket_upstream_is_reached() {
    let path = std::env::temp_dir().join(format!("proxy-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).expect("bind unix socket");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let Ok(byte) = stream.read_u8().await else {
                        return;
                    };
                    head.push(byte);
                }
                let host = String::from_utf8_lossy(&head)
                    .lines()
                    .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
                    .unwrap_or_default();
                let body = format!("unix, host {host}");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    let upstream = format!("unix:{}", path.display());
    let proxy = proxy_server(proxy_to(&[upstream]), |x| x).await;
    let response = proxy.get_with("/", &[("host", "front")]).await;
    assert_eq!(response.text().await.expect("body"), "unix, host front");
    proxy.stop().await;
    let _ = std::fs::remove_file(&path);
}

/// A Post handler noting how many upstreams each request tried.
fn attempts(events: &Events) -> impl poco_httpd::Handler + use<> {
    events.log(|req: &Request| {
        let report = req.extension::<ProxyReport>().expect("report");
        format!("{} {}", req.method(), report.attempts())
    })
}

/// A proxy to an unreachable upstream first and an echo upstream second, noting
/// the attempts of each request in `events`; returns it and the echo upstream.
async fn dead_then_alive(events: &Events) -> (common::TestServer, common::TestServer) {
    let dead = dead_address().await;
    let alive = echo_upstream().await;
    let proxy = proxy_to(&[dead.to_string(), alive.addr.to_string()]);
    let server = proxy_server(proxy, |b| b.post("/", attempts(events))).await;
    (server, alive)
}

#[tokio::test]
async fn an_idempotent_request_goes_to_the_next_upstream_when_one_is_unreachable() {
    let events = Events::default();
    let (proxy, alive) = dead_then_alive(&events).await;
    let client = common::client();
    let response = client
        .put(proxy.url("/"))
        .body("kept")
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 200);
    let echo = response.text().await.expect("body");
    assert!(
        echo.starts_with("PUT /\n") && echo.ends_with("\n\nkept"),
        "{echo}"
    );
    assert_eq!(events.wait_for(1).await, ["PUT 2"]);
    proxy.stop().await;
    alive.stop().await;
}

#[tokio::test]
async fn a_post_is_not_sent_to_another_upstream() {
    let events = Events::default();
    let (proxy, alive) = dead_then_alive(&events).await;
    let (status, _) = proxy.post(&common::client(), "/", "once").await;
    assert_eq!(status, 502);
    assert_eq!(events.wait_for(1).await, ["POST 1"]);
    proxy.stop().await;
    alive.stop().await;
}

/// After `max_fails` failures the dead upstream is left out: later requests go
/// straight to the live one (one attempt each, nothing retried).
#[tokio::test]
async fn an_upstream_failing_repeatedly_is_left_out() {
    let dead = dead_address().await;
    let alive = named("alive").await;
    let events = Events::default();
    let proxy = proxy_to(&[dead.to_string(), alive.addr.to_string()])
        .passive_health(2, Duration::from_secs(60));
    let server = proxy_server(proxy, |b| b.post("/", attempts(&events))).await;
    let client = common::client();
    for _ in 0..6 {
        assert_eq!(server.text(&client, "/").await, "alive");
    }
    let seen = events.wait_for(6).await;
    let retried = seen.iter().filter(|e| *e == "GET 2").count();
    assert_eq!(retried, 2, "{seen:?}");
    assert_eq!(&seen[seen.len() - 2..], ["GET 1", "GET 1"], "{seen:?}");
    server.stop().await;
}

#[tokio::test]
async fn active_health_checks_leave_out_an_unhealthy_upstream() {
    let sick = common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            if req.path() == "/health" {
                return res.deny(poco_httpd::http::StatusCode::SERVICE_UNAVAILABLE);
            }
            res.ok("sick")
        }),
    )
    .await;
    let well = named("well").await;
    let proxy = proxy_to(&[sick.addr.to_string(), well.addr.to_string()])
        .health_check("/health", Duration::from_millis(50))
        .expect("a valid path");
    let server = proxy_server(proxy, |x| x).await;
    let client = common::client();
    // The first request starts the checks. Round robin alone alternates, so eight
    // `well` in a row show `sick` was left out.
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    let mut in_a_row = 0;
    while in_a_row < 8 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sick is still asked"
        );
        if server.text(&client, "/").await == "well" {
            in_a_row += 1;
        } else {
            in_a_row = 0;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    server.stop().await;
}

/// What a raw upstream saw of one health check: its request head, and how the
/// connection went after a large answer (`"closed"` if the proxy read it all and
/// closed, else what failed).
#[derive(Debug)]
struct Probe {
    head: String,
    after: String,
}

#[tokio::test]
async fn a_health_check_asks_in_origin_form_and_reads_the_answer_before_closing() {
    let (probes_tx, mut probes) = tokio::sync::mpsc::unbounded_channel();
    let upstream = crate::raw_upstream(move |mut stream| {
        let probes = probes_tx.clone();
        async move {
            let head = crate::read_head(&mut stream).await;
            let body = vec![b'x'; 1 << 20];
            let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let mut written = stream.write_all(answer.as_bytes()).await;
            if written.is_ok() {
                written = stream.write_all(&body).await;
            }
            if !head.contains("poco-httpd health check") {
                return;
            }
            let after = match written {
                Err(error) => format!("answer not taken: {error}"),
                Ok(()) => match stream.read(&mut [0_u8; 64]).await {
                    Ok(0) => "closed".to_owned(),
                    Ok(_) => "more data".to_owned(),
                    Err(error) => format!("reset: {error}"),
                },
            };
            let _ = probes.send(Probe { head, after });
        }
    })
    .await;
    let proxy = proxy_to(&[upstream.to_string()])
        .health_check("/health?deep=1", Duration::from_millis(50))
        .expect("a valid path");
    let server = proxy_server(proxy, |x| x).await;
    // The first request starts the checks.
    let (status, _) = server.get(&common::client(), "/").await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        let probe = crate::next_report(&mut probes).await;
        let request_line = probe.head.lines().next().unwrap_or_default();
        assert_eq!(request_line, "GET /health?deep=1 HTTP/1.1", "{probe:?}");
        let head = probe.head.to_ascii_lowercase();
        assert!(
            head.contains(&format!("\r\nhost: {upstream}\r\n")),
            "{probe:?}"
        );
        assert!(head.contains("\r\nconnection: close\r\n"), "{probe:?}");
        assert_eq!(probe.after, "closed", "{probe:?}");
    }
    server.stop().await;
}
