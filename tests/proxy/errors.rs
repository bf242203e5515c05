//! When the upstream fails: refused → 502, too slow → 504, broken off mid-body → the
//! client's response cut; each with a report the Error and Post handlers read; and a
//! client that goes away cancels the upstream request.

use std::time::Duration;

use poco_httpd::Request;
use poco_httpd::handlers::{ProxyFailure, ProxyReport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::common::{self, Events};
use crate::{
    closed_by_proxy, dead_address, next_report, proxy_server, proxy_to, raw_upstream, read_head,
};

/// A Post (or Error) handler logging the proxy's report as `label failure upstream`.
fn log_report(events: &Events, label: &'static str) -> impl poco_httpd::Handler + use<> {
    events.log(move |req: &Request| {
        let report = req.extension::<ProxyReport>().expect("the proxy's report");
        format!(
            "{label} {:?} {} {}",
            report.failure(),
            report.upstream().unwrap_or_default(),
            report.attempts()
        )
    })
}

#[tokio::test]
async fn a_refusing_upstream_gives_502_with_a_clear_body_and_a_log_line_naming_it() {
    crate::capture_logs();
    let dead = dead_address().await;
    let events = Events::default();
    let proxy = proxy_server(proxy_to(&[dead.to_string()]), |b| {
        b.post("/", log_report(&events, "post"))
    })
    .await;
    let (status, body) = proxy.get(&common::client(), "/").await;
    assert_eq!(status, 502);
    assert_eq!(
        body,
        "502 Bad Gateway: the upstream server could not be reached.\n"
    );
    assert_eq!(
        events.wait_for(1).await,
        [format!("post Some(ConnectFailed) {dead} 1")]
    );
    let line = crate::logged(&[&format!("proxy: upstream {dead}"), "could not be reached"]).await;
    assert!(line.contains("WARN") && line.contains("GET /"), "{line}");
    proxy.stop().await;
}

#[tokio::test]
async fn an_upstream_that_never_answers_gives_504() {
    let upstream = raw_upstream(|mut stream| async move {
        read_head(&mut stream).await;
        tokio::time::sleep(common::PATIENCE * 2).await;
    })
    .await;
    let events = Events::default();
    let slow = proxy_to(&[upstream.to_string()]).head_timeout(Duration::from_millis(300));
    let proxy = proxy_server(slow, |b| b.post("/", log_report(&events, "post"))).await;
    let (status, body) = proxy.get(&common::client(), "/").await;
    assert_eq!(status, 504);
    assert!(body.contains("did not answer in time"), "{body}");
    assert_eq!(
        events.wait_for(1).await,
        [format!("post Some(HeadTimeout) {upstream} 1")]
    );
    proxy.stop().await;
}

/// Answers a head promising 1000 bytes, sends 100, then does `after`.
async fn partial_answer(stream: &mut tokio::net::TcpStream) {
    read_head(stream).await;
    let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&[b'x'; 100]).await.expect("part");
}

#[tokio::test]
async fn an_upstream_dying_mid_body_cuts_the_response_and_the_error_handler_knows() {
    let upstream = raw_upstream(|mut stream| async move {
        partial_answer(&mut stream).await;
        drop(stream);
    })
    .await;
    let events = Events::default();
    let proxy = proxy_server(proxy_to(&[upstream.to_string()]), |b| {
        b.error("/", log_report(&events, "error"))
            .post("/", log_report(&events, "post"))
    })
    .await;
    let answer = common::raw(proxy.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let raw = common::Raw::parse(&answer);
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-length"), Some("1000"));
    assert!(
        raw.body.len() < 1000,
        "the answer was cut: {} bytes",
        raw.body.len()
    );
    let expected = format!("Some(BrokeMidBody) {upstream} 1");
    assert_eq!(
        events.wait_for(2).await,
        [format!("error {expected}"), format!("post {expected}")]
    );
    proxy.stop().await;
}

#[tokio::test]
async fn an_upstream_going_quiet_mid_body_is_cut_after_the_idle_timeout() {
    let upstream = raw_upstream(|mut stream| async move {
        partial_answer(&mut stream).await;
        tokio::time::sleep(common::PATIENCE * 2).await;
    })
    .await;
    let events = Events::default();
    let quiet = proxy_to(&[upstream.to_string()]).idle_timeout(Duration::from_millis(300));
    let proxy = proxy_server(quiet, |b| b.post("/", log_report(&events, "post"))).await;
    let answer = common::raw(proxy.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert_eq!(
        events.wait_for(1).await,
        [format!("post Some(IdleTimeout) {upstream} 1")]
    );
    assert_eq!(ProxyFailure::IdleTimeout.status().as_u16(), 504);
    proxy.stop().await;
}

#[tokio::test]
async fn a_client_going_away_cancels_the_upstream_request() {
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let upstream = raw_upstream(move |mut stream| {
        let reports_tx = reports_tx.clone();
        async move {
            read_head(&mut stream).await;
            let _ = reports_tx.send("arrived");
            // Never answers; tells when the proxy closes the connection.
            let _ = reports_tx.send(closed_by_proxy(&mut stream).await);
        }
    })
    .await;
    let proxy = proxy_server(proxy_to(&[upstream.to_string()]), |b| b).await;
    let client = proxy
        .connect(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(next_report(&mut reports).await, "arrived");
    drop(client);
    assert_eq!(
        next_report(&mut reports).await,
        "closed",
        "the proxy closes the upstream connection"
    );
    proxy.stop().await;
}

/// A listener whose accept queue is full drops new SYNs, so connecting hangs:
/// the proxy gives up at its connect timeout and answers 504.
#[tokio::test]
async fn an_upstream_that_does_not_accept_in_time_gives_504() {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let addr = socket.local_addr().expect("addr");
    let _listener = socket.listen(1).expect("listen");
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(stream)) = tokio::time::timeout(common::QUIET, connect).await {
            fillers.push(stream);
        }
    }
    let events = Events::default();
    let hanging = proxy_to(&[addr.to_string()]).connect_timeout(Duration::from_millis(200));
    let proxy = proxy_server(hanging, |b| b.post("/", log_report(&events, "post"))).await;
    let (status, body) = proxy.get(&common::client(), "/").await;
    assert_eq!(status, 504, "{body}");
    assert!(
        body.contains("did not accept a connection in time"),
        "{body}"
    );
    assert_eq!(
        events.wait_for(1).await,
        [format!("post Some(ConnectTimeout) {addr} 1")]
    );
    proxy.stop().await;
}

/// A client that breaks off a chunked upload: the upstream's connection is closed
/// without the last chunk, so it can never take the part for a whole body.
#[tokio::test]
async fn a_client_breaking_off_its_upload_never_gives_the_upstream_a_complete_body() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let upstream = raw_upstream(move |mut stream| {
        let seen_tx = seen_tx.clone();
        async move {
            // Tells when the first block arrived, then what came until the close.
            let mut received = read_head(&mut stream).await.into_bytes();
            while !String::from_utf8_lossy(&received).contains("hello") {
                match stream.read_u8().await {
                    Ok(byte) => received.push(byte),
                    Err(_) => break,
                }
            }
            let _ = seen_tx.send(None);
            let read =
                tokio::time::timeout(common::PATIENCE, stream.read_to_end(&mut received)).await;
            let text = String::from_utf8_lossy(&received).into_owned();
            let _ = seen_tx.send(Some((read.is_ok(), text)));
        }
    })
    .await;
    let proxy = proxy_server(proxy_to(&[upstream.to_string()]), |b| b).await;
    let mut client = proxy
        .connect(
            b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        )
        .await;
    assert_eq!(
        next_report(&mut seen).await,
        None,
        "the first block reaches the upstream"
    );
    client.shutdown().await.expect("shutdown");
    drop(client);
    let (closed, received) = next_report(&mut seen)
        .await
        .expect("the end of the connection");
    assert!(closed, "the proxy closed the upstream connection");
    assert!(received.contains("hello"), "{received}");
    assert!(
        !received.contains("\r\n0\r\n\r\n"),
        "a last chunk was sent: {received}"
    );
    proxy.stop().await;
}
