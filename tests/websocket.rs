//! WebSockets through the phases (HTTP/1.1, with tokio-tungstenite or raw bytes as
//! the client; HTTP/2 extended CONNECT with the `h2` crate): the handshake and what
//! refuses it, subprotocols, origins, Post and Error handlers after the socket, the
//! limits and faults (too big, bad UTF-8, idle, a client that stops reading or never
//! answers a close), shutdown, panics, and the figures.

mod common;

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use poco_httpd::handlers::websocket::{CloseCode, Message, SocketEnd};
use poco_httpd::handlers::{ServerStatus, WebSocket, WebSocketExt};
use poco_httpd::http::StatusCode;
use poco_httpd::{FailureKind, Outcome, Request, Response, Server};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{self, Message as Wire};

type Client = WebSocketStream<TcpStream>;

/// Echoes data messages until the client closes.
async fn echo_loop(mut socket: poco_httpd::handlers::websocket::Socket) {
    while let Some(message) = socket.recv().await {
        if message.is_data() && socket.send(message).await.is_err() {
            break;
        }
    }
}

/// Opens a WebSocket to `path` with `headers`; the handshake's answer on failure.
async fn open(
    server: &common::TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Client, tungstenite::handshake::client::Response), tungstenite::Error> {
    let mut request = format!("ws://{}{path}", server.addr)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            poco_httpd::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::timeout(
        common::PATIENCE,
        tokio_tungstenite::client_async(request, tcp),
    )
    .await
    .expect("the handshake ends")
}

/// The status of a refused handshake.
fn refused(
    result: Result<(Client, tungstenite::handshake::client::Response), tungstenite::Error>,
) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("refused with an HTTP answer, not {other}"),
        Ok(_) => panic!("refused, but the WebSocket opened"),
    }
}

/// The next message the client reads, within patience.
async fn next(client: &mut Client) -> Option<Wire> {
    tokio::time::timeout(common::PATIENCE, client.next())
        .await
        .expect("a message or the end arrives")
        .and_then(Result::ok)
}

/// Reads until the server's close frame; its code.
async fn close_code(client: &mut Client) -> Option<u16> {
    while let Some(message) = next(client).await {
        if let Wire::Close(frame) = message {
            return frame.map(|frame| frame.code.into());
        }
    }
    None
}

#[tokio::test]
async fn a_request_without_upgrade_gets_426_or_the_fallback() {
    let server = common::start(
        Server::builder()
            .websocket("/plain", echo_loop)
            .content("/page", WebSocket::new(echo_loop).fallback("the page\n")),
    )
    .await;
    let client = common::client();
    let plain = server.response(&client, "/plain").await;
    assert_eq!(plain.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(common::header(&plain, "upgrade"), "websocket");
    assert_eq!(server.text(&client, "/page").await, "the page\n");
    let (mut ws, _) = open(&server, "/page", &[]).await.unwrap();
    ws.send(Wire::text("both")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Wire::text("both")));
    // Hung up, so the stop need not wait out the close timeout.
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn a_pre_handler_refuses_or_installs_the_websocket() {
    let guard = |req: Request, res: Response| {
        if req.header("x-key").is_none() {
            return res.deny(StatusCode::UNAUTHORIZED);
        }
        req.set_content_handler(WebSocket::new(echo_loop));
        Outcome::Ok
    };
    let server = common::start(
        Server::builder()
            .pre("/guarded", guard)
            .content("/guarded", "not a socket"),
    )
    .await;
    assert_eq!(refused(open(&server, "/guarded", &[]).await), 401);
    let (mut ws, _) = open(&server, "/guarded", &[("x-key", "1")]).await.unwrap();
    ws.send(Wire::binary(vec![7])).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Wire::binary(vec![7])));
    // Hung up, so the stop need not wait out the close timeout.
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn the_first_offered_protocol_of_ours_is_agreed() {
    let chat = WebSocket::new(|mut socket| async move {
        let protocol = socket.protocol().unwrap_or("none").to_owned();
        let _ = socket.send(protocol).await;
    })
    .protocols(["chat.v2", "chat.v1"]);
    let server = common::start(Server::builder().content("/chat", chat)).await;
    let offered = [("sec-websocket-protocol", "chat.v1, chat.v2")];
    let (mut ws, answer) = open(&server, "/chat", &offered).await.unwrap();
    assert_eq!(answer.headers()["sec-websocket-protocol"], "chat.v2");
    assert_eq!(next(&mut ws).await, Some(Wire::text("chat.v2")));
    // A client offering none of ours gets a WebSocket without a protocol (which
    // tungstenite's client refuses, so raw bytes ask).
    let mut stream = server
        .connect(b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: other\r\n\r\n")
        .await;
    let head = common::read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
        "{head}"
    );
    let mut frame = [0; 6];
    stream.read_exact(&mut frame).await.unwrap();
    assert_eq!(&frame, b"\x81\x04none");
    // Hung up, so the stop need not wait out the close timeout.
    drop((ws, stream));
    server.stop().await;
}

#[tokio::test]
async fn same_origin_refuses_another_sites_page() {
    let server =
        common::start(Server::builder().content("/ws", WebSocket::new(echo_loop).same_origin()))
            .await;
    let evil = [("origin", "http://evil.example")];
    assert_eq!(refused(open(&server, "/ws", &evil).await), 403);
    let ours = format!("http://{}", server.addr);
    assert!(open(&server, "/ws", &[("origin", &ours)]).await.is_ok());
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_version_gets_426_naming_13() {
    let server = common::start(Server::builder().websocket("/ws", echo_loop)).await;
    let answer = server
        .raw_answer(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        .await;
    assert_eq!(answer.status, 426);
    assert_eq!(answer.header("sec-websocket-version"), Some("13"));
    server.stop().await;
}

/// A server whose Post and Error handlers at `/` log how each WebSocket ended.
async fn logged(events: &common::Events, path: &str, socket: WebSocket) -> common::TestServer {
    let post = events.log(|req| {
        let end = SocketEnd::of(req).expect("the ending is known to Post handlers");
        let code = end.client_close.map(|frame| frame.code.0);
        format!(
            "post: client closed {} {code:?}, in {} out {}",
            end.client_closed, end.received, end.sent
        )
    });
    let error = events.log(|req| format!("error: {:?}", req.failure().map(|f| f.kind())));
    common::start(
        Server::builder()
            .content(path, socket)
            .post("/", post)
            .error("/", error),
    )
    .await
}

#[tokio::test]
async fn post_handlers_run_after_the_close_with_the_counts() {
    let events = common::Events::default();
    let server = logged(&events, "/echo", WebSocket::new(echo_loop)).await;
    let (mut ws, _) = open(&server, "/echo", &[]).await.unwrap();
    for text in ["a", "b"] {
        ws.send(Wire::text(text)).await.unwrap();
        next(&mut ws).await;
    }
    tokio::time::sleep(common::QUIET).await;
    assert_eq!(
        events.all(),
        Vec::<String>::new(),
        "Post ran while the socket was open"
    );
    ws.close(None).await.unwrap();
    assert_eq!(
        events.settle(1).await,
        ["post: client closed true None, in 2 out 2"]
    );
    server.stop().await;
}

#[tokio::test]
async fn the_error_handler_runs_when_the_client_vanishes() {
    let events = common::Events::default();
    let server = logged(&events, "/echo", WebSocket::new(echo_loop)).await;
    let (mut ws, _) = open(&server, "/echo", &[]).await.unwrap();
    ws.send(Wire::text("x")).await.unwrap();
    next(&mut ws).await;
    drop(ws);
    assert_eq!(
        events.settle(2).await,
        [
            "error: Some(UpgradedBroken)",
            "post: client closed false None, in 1 out 1"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let server = common::start(Server::builder().websocket("/echo", echo_loop)).await;
    let (mut ws, _) = open(&server, "/echo", &[]).await.unwrap();
    let broken = Frame::message(
        Bytes::from_static(b"\xff\xfe"),
        OpCode::Data(Data::Text),
        true,
    );
    ws.send(Wire::Frame(broken)).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1007));
    server.stop().await;
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_with_1009() {
    let small = WebSocket::new(echo_loop)
        .max_message_size(1000)
        .max_frame_size(1000);
    let server = common::start(Server::builder().content("/echo", small)).await;
    let (mut ws, _) = open(&server, "/echo", &[]).await.unwrap();
    ws.send(Wire::binary(vec![0; 1000])).await.unwrap();
    assert_eq!(next(&mut ws).await.map(|m| m.len()), Some(1000));
    ws.send(Wire::binary(vec![0; 1001])).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1009));
    server.stop().await;
}

/// Opens a WebSocket with raw bytes (a client that answers nothing by itself).
async fn open_raw(server: &common::TestServer, path: &str) -> TcpStream {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    let mut stream = server.connect(request.as_bytes()).await;
    let head = common::read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    stream
}

/// The opcodes of the frames the server sends (each short and unmasked) until it
/// closes the connection, with the close code where there is one.
async fn frames_until_closed(stream: &mut TcpStream) -> Vec<(u8, Option<u16>)> {
    let mut frames = Vec::new();
    let mut header = [0; 2];
    while let Ok(Ok(_)) =
        tokio::time::timeout(common::PATIENCE, stream.read_exact(&mut header)).await
    {
        let mut payload = vec![0; usize::from(header[1] & 0x7f)];
        stream.read_exact(&mut payload).await.unwrap();
        let opcode = header[0] & 0x0f;
        let code = (opcode == 8 && payload.len() >= 2)
            .then(|| u16::from_be_bytes([payload[0], payload[1]]));
        frames.push((opcode, code));
    }
    frames
}

#[tokio::test]
async fn a_silent_client_is_pinged_then_closed_with_1001() {
    let events = common::Events::default();
    let quick = WebSocket::new(echo_loop)
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(200))
        .close_timeout(Duration::from_millis(200));
    let server = logged(&events, "/echo", quick).await;
    let mut stream = open_raw(&server, "/echo").await;
    // A ping (9), then the close (8) with 1001, then the end of the connection.
    assert_eq!(
        frames_until_closed(&mut stream).await,
        [(9, None), (8, Some(1001))]
    );
    assert_eq!(
        events.settle(2).await,
        [
            "error: Some(UpgradedIdle)",
            "post: client closed false None, in 0 out 0"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_answering_pings_stays_open() {
    let quick = WebSocket::new(echo_loop)
        .ping_interval(Duration::from_millis(50))
        .pong_timeout(Duration::from_millis(100));
    let server = common::start(Server::builder().content("/echo", quick)).await;
    let (mut ws, _) = open(&server, "/echo", &[]).await.unwrap();
    // Reading lets tungstenite answer the pings; several idle timeouts pass.
    let mut pings = 0;
    while pings < 5 {
        if let Some(Wire::Ping(_)) = next(&mut ws).await {
            pings += 1;
        } else {
            panic!("only pings while idle");
        }
    }
    ws.send(Wire::text("still here")).await.unwrap();
    let echoed = loop {
        match next(&mut ws).await {
            Some(Wire::Ping(_)) => continue,
            other => break other,
        }
    };
    assert_eq!(echoed, Some(Wire::text("still here")));
    // Hung up, so the stop need not wait out the close timeout.
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_answers_the_close_is_cut() {
    let events = common::Events::default();
    let closing = WebSocket::new(|mut socket| async move {
        let _ = socket.close(CloseCode::NORMAL, "bye").await;
    })
    .close_timeout(Duration::from_millis(200));
    let server = logged(&events, "/bye", closing).await;
    let mut stream = open_raw(&server, "/bye").await;
    assert_eq!(frames_until_closed(&mut stream).await, [(8, Some(1000))]);
    assert_eq!(
        events.settle(2).await,
        [
            "error: Some(UpgradedBroken)",
            "post: client closed false None, in 0 out 0"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_back_the_sender_not_the_servers_memory() {
    let events = common::Events::default();
    const MESSAGE: usize = 16 * 1024;
    const TRIED: u64 = 16 * 1024; // 256 MiB, were nothing to hold it back
    let flood = WebSocket::new(|mut socket| async move {
        let block = Bytes::from(vec![0; MESSAGE]);
        for _ in 0..TRIED {
            if socket.send(block.clone()).await.is_err() {
                break;
            }
        }
    })
    .write_timeout(Duration::from_millis(300));
    let post = events.log(|req| {
        let end = SocketEnd::of(req).unwrap();
        format!("{} {:?}", end.sent, req.failure().map(|f| f.kind()))
    });
    let server = common::start(Server::builder().content("/flood", flood).post("/", post)).await;
    let _stream = open_raw(&server, "/flood").await;
    let logged = events.wait_for(1).await;
    let (sent, kind) = logged[0].split_once(' ').unwrap();
    let sent: u64 = sent.parse().unwrap();
    assert!(
        sent < TRIED,
        "all {TRIED} messages were taken: nothing held the sender back"
    );
    // What left the handler fits in the socket buffers on both sides, not 256 MiB.
    assert!(
        sent * (MESSAGE as u64) < 64 << 20,
        "{sent} messages of 16 KiB went out"
    );
    assert_eq!(kind, format!("{:?}", Some(FailureKind::WriteTimeout)));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_open_websockets_with_1001() {
    let server = common::start(Server::builder().websocket("/echo", echo_loop)).await;
    let (mut ws, _) = open(&server, "/echo", &[]).await.unwrap();
    ws.send(Wire::text("x")).await.unwrap();
    next(&mut ws).await;
    server.shutdown.shutdown();
    assert_eq!(close_code(&mut ws).await, Some(1001));
    // Hung up, so the stop need not wait out the close timeout.
    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_closes_its_socket_with_1011_and_serving_goes_on() {
    let server = common::start(
        Server::builder().websocket("/boom", |mut socket| async move {
            if let Some(Message::Text(text)) = socket.recv().await
                && &*text == "boom"
            {
                panic!("handler bug");
            }
            let _ = socket.send("fine").await;
        }),
    )
    .await;
    let (mut first, _) = open(&server, "/boom", &[]).await.unwrap();
    first.send(Wire::text("boom")).await.unwrap();
    assert_eq!(close_code(&mut first).await, Some(1011));
    let (mut second, _) = open(&server, "/boom", &[]).await.unwrap();
    second.send(Wire::text("hello")).await.unwrap();
    assert_eq!(next(&mut second).await, Some(Wire::text("fine")));
    // Hung up, so the stop need not wait out the close timeout.
    drop((first, second));
    server.stop().await;
}

#[tokio::test]
async fn open_websockets_are_counted_and_shown_on_the_status_page() {
    let server = common::start(
        Server::builder()
            .websocket("/echo", echo_loop)
            .content("/server-status", ServerStatus::new()),
    )
    .await;
    let (mut first, _) = open(&server, "/echo", &[]).await.unwrap();
    let (mut second, _) = open(&server, "/echo", &[]).await.unwrap();
    for ws in [&mut first, &mut second] {
        ws.send(Wire::text("x")).await.unwrap();
        next(ws).await;
    }
    assert_eq!(server.stats.open_upgraded(), 2);
    let json = server.text(&common::client(), "/server-status?json").await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["open_websockets"], 2, "{json}");
    first.close(None).await.unwrap();
    assert_eq!(close_code(&mut first).await, None);
    common::poll(
        || "one WebSocket left".into(),
        || (server.stats.open_upgraded() == 1).then_some(()),
    )
    .await;
    // Hung up, so the stop need not wait out the close timeout.
    drop((first, second));
    server.stop().await;
}

/// A client frame: masked with a zero key, which leaves the payload as it is.
fn masked(opcode: u8, payload: &[u8]) -> Bytes {
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame.into()
}

#[tokio::test]
async fn an_http2_extended_connect_opens_the_same_websocket() {
    let server = common::start(Server::builder().websocket("/echo", echo_loop)).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    common::poll(
        || "SETTINGS_ENABLE_CONNECT_PROTOCOL".into(),
        || client.is_extended_connect_protocol_enabled().then_some(()),
    )
    .await;
    let request = poco_httpd::http::Request::builder()
        .method("CONNECT")
        .uri(format!("http://{}/echo", server.addr))
        .header("sec-websocket-version", "13")
        .extension(h2::ext::Protocol::from("websocket"))
        .body(())
        .unwrap();
    let (response, mut outgoing) = client.send_request(request, false).unwrap();
    let response = tokio::time::timeout(common::PATIENCE, response)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    outgoing.send_data(masked(1, b"over h2"), false).unwrap();
    let mut incoming = response.into_body();
    let mut echoed = Vec::new();
    while echoed.len() < 2 + 7 {
        let data = tokio::time::timeout(common::PATIENCE, incoming.data())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let _ = incoming.flow_control().release_capacity(data.len());
        echoed.extend_from_slice(&data);
    }
    assert_eq!(echoed, b"\x81\x07over h2");
    outgoing
        .send_data(masked(8, &1000u16.to_be_bytes()), false)
        .unwrap();
    let close = tokio::time::timeout(common::PATIENCE, incoming.data())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&close[..], b"\x88\x02\x03\xe8");
    server.stop().await;
}

#[tokio::test]
async fn an_open_websocket_keeps_its_connection_slot_and_count() {
    let server = common::start(
        Server::builder()
            .max_connections(1)
            .websocket("/echo", echo_loop)
            .content("/", "plain"),
    )
    .await;
    let (mut ws, _) = open(&server, "/echo", &[]).await.unwrap();
    ws.send(Wire::text("x")).await.unwrap();
    next(&mut ws).await;
    assert_eq!(server.stats.open_connections(), 1);
    // The only slot is the WebSocket's: a second client waits in the backlog.
    let waiting = tokio::spawn(common::raw_get(server.addr, "/"));
    tokio::time::sleep(common::QUIET).await;
    assert!(
        !waiting.is_finished(),
        "a second connection was served past max_connections"
    );
    ws.close(None).await.unwrap();
    assert_eq!(close_code(&mut ws).await, None);
    let answer = tokio::time::timeout(common::PATIENCE, waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_quiet_websocket_outlives_the_keep_alive_timeout() {
    let server = common::start(
        Server::builder()
            .keep_alive_timeout(Duration::from_millis(100))
            .websocket("/echo", echo_loop),
    )
    .await;
    let (mut ws, _) = open(&server, "/echo", &[]).await.unwrap();
    // Several keep-alive timeouts of silence: the WebSocket's own ping interval
    // (30 s) governs it, not the idle rule for HTTP connections between requests.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ws.send(Wire::text("still open")).await.unwrap();
    assert_eq!(next(&mut ws).await, Some(Wire::text("still open")));
    drop(ws);
    server.stop().await;
}
