//! Taking over a connection: HTTP/1.1 `Upgrade` answered `101` (raw bytes), and
//! HTTP/2 extended CONNECT answered `200` (the `h2` crate as the client), through the
//! same handler; Pre handlers still refuse with a normal answer first.

mod common;

use bytes::Bytes;
use poco_httpd::http::StatusCode;
use poco_httpd::{Failure, FailureKind, Outcome, Request, Response, Server, UpgradeError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Switches to "echo" when asked, and sends back whatever arrives after.
fn echo(req: Request, res: Response) -> Outcome {
    if req.upgrade_protocol().as_deref() != Some("echo") {
        let refused = req.upgrade().err().map(|error| error.to_string());
        return res.ok(format!("not switching: {}", refused.unwrap_or_default()));
    }
    let Ok(upgrade) = req.upgrade() else {
        return res.deny(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let taken_twice = matches!(req.upgrade(), Err(UpgradeError::NotRequested));
    let shutdown = req.shutdown_handle();
    req.spawn(async move {
        let Ok(io) = upgrade.await else { return };
        let (mut reader, mut writer) = tokio::io::split(io);
        // Ends at shutdown, so the server's stop does not wait for the deadline.
        tokio::select! {
            _ = tokio::io::copy(&mut reader, &mut writer) => {}
            () = shutdown.requested() => {}
        }
    });
    res.set_header("x-taken-twice", taken_twice.to_string());
    res.switch_protocols("echo")
}

/// Refuses an upgrade without the key, as an auth handler would.
fn needs_key(req: Request, res: Response) -> Outcome {
    if req.upgrade_protocol().is_some() && req.header("x-key").is_none() {
        return res.deny(StatusCode::UNAUTHORIZED);
    }
    Outcome::Ok
}

async fn echo_server() -> common::TestServer {
    common::start(Server::builder().pre("/", needs_key).content("/echo", echo)).await
}

#[tokio::test]
async fn an_http1_upgrade_gets_101_and_the_socket() {
    let server = echo_server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Key: 1\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let head = common::read_head(&mut stream).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("upgrade: echo\r\n"), "{head}");
    assert!(head.contains("x-taken-twice: true\r\n"), "{head}");
    // Bytes that would look like an HTTP answer pass untouched once upgraded.
    for message in [&b"ping"[..], b"HTTP/1.1 400 not ours"] {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0; message.len()];
        tokio::time::timeout(common::PATIENCE, stream.read_exact(&mut echoed))
            .await
            .expect("the echo arrives")
            .unwrap();
        assert_eq!(echoed, message);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_pre_handler_refuses_an_upgrade_with_a_normal_answer() {
    let server = echo_server().await;
    let answer = common::raw(
        server.addr,
        b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: echo\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    let plain = common::client()
        .get(server.url("/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        plain.text().await.unwrap(),
        "not switching: the request asked for no protocol switch, or it was already taken"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_http2_extended_connect_gets_200_and_the_stream() {
    let server = echo_server().await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    // The server's SETTINGS may arrive a moment after the handshake.
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    while !client.is_extended_connect_protocol_enabled() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "SETTINGS_ENABLE_CONNECT_PROTOCOL"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let request = poco_httpd::http::Request::builder()
        .method("CONNECT")
        .uri(format!("http://{}/echo", server.addr))
        .header("x-key", "1")
        .extension(h2::ext::Protocol::from("echo"))
        .body(())
        .unwrap();
    let (response, mut outgoing) = client.send_request(request, false).unwrap();
    let response = tokio::time::timeout(common::PATIENCE, response)
        .await
        .expect("the answer arrives")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    outgoing
        .send_data(Bytes::from_static(b"ping"), false)
        .unwrap();
    let mut incoming = response.into_body();
    let echoed = tokio::time::timeout(common::PATIENCE, incoming.data())
        .await
        .expect("the echo arrives")
        .expect("a data frame")
        .unwrap();
    assert_eq!(&echoed[..], b"ping");
    server.stop().await;
}

/// Echoes after switching, holding the Post phase until the client hangs up; a
/// client that sends "fail" makes the hold report a failure.
fn held_echo(req: Request, res: Response) -> Outcome {
    let Ok(upgrade) = req.upgrade() else {
        return res.deny(StatusCode::BAD_REQUEST);
    };
    let hold = req.hold_post();
    let stats = req.server_stats();
    req.spawn(async move {
        let Ok(mut io) = upgrade.await else { return };
        let mut seen = Vec::new();
        let mut buffer = [0; 64];
        while let Ok(read @ 1..) = io.read(&mut buffer).await {
            seen.extend_from_slice(&buffer[..read]);
            let reply = format!("open upgraded: {}\n", stats.open_upgraded());
            if io.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
        if seen.ends_with(b"fail") {
            hold.fail(Failure::new(FailureKind::UpgradedBroken, "told to fail"));
        }
    });
    res.switch_protocols("echo")
}

async fn held_echo_server(events: &common::Events) -> common::TestServer {
    let post = events.log(|req| format!("post, failed: {}", req.is_error()));
    let error = events.log(|req| {
        format!(
            "error: {}",
            req.failure().map(ToString::to_string).unwrap_or_default()
        )
    });
    common::start(
        Server::builder()
            .content("/echo", held_echo)
            .post("/", post)
            .error("/", error),
    )
    .await
}

/// Opens the held echo, sends `last`, reads the reply, hangs up.
async fn talk_then_hang_up(server: &common::TestServer, last: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let head = common::read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    stream.write_all(last).await.unwrap();
    let mut reply = [0; 64];
    let read = tokio::time::timeout(common::PATIENCE, stream.read(&mut reply))
        .await
        .expect("the reply arrives")
        .unwrap();
    String::from_utf8_lossy(&reply[..read]).into_owned()
}

#[tokio::test]
async fn a_post_hold_delays_post_handlers_until_the_upgraded_task_ends() {
    let events = common::Events::default();
    let server = held_echo_server(&events).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    common::read_head(&mut stream).await;
    stream.write_all(b"hi").await.unwrap();
    let mut reply = [0; 64];
    let read = stream.read(&mut reply).await.unwrap();
    assert_eq!(&reply[..read], b"open upgraded: 1\n");
    tokio::time::sleep(common::QUIET).await;
    assert_eq!(
        events.all(),
        Vec::<String>::new(),
        "Post ran while the tunnel was open"
    );
    drop(stream);
    assert_eq!(events.settle(1).await, ["post, failed: false"]);
    assert_eq!(server.stats.open_upgraded(), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_failed_post_hold_runs_the_error_handler_first() {
    let events = common::Events::default();
    let server = held_echo_server(&events).await;
    let reply = talk_then_hang_up(&server, b"fail").await;
    assert_eq!(reply, "open upgraded: 1\n");
    assert_eq!(
        events.settle(2).await,
        ["error: told to fail", "post, failed: true"]
    );
    server.stop().await;
}
