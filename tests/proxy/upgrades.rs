//! Protocol switches pass through: an HTTP/1.1 `Upgrade` tunnelled both ways, and an
//! HTTP/2 extended CONNECT reaching the HTTP/1.1 upstream as an `Upgrade`.

use bytes::Bytes;
use poco_httpd::http::StatusCode;
use poco_httpd::{Request, Response, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{common, proxy_server, proxy_to};

/// An upstream of our own that switches to whatever protocol is asked and echoes
/// the bytes after; it tells whether a `Sec-WebSocket-Key` came along.
async fn echo_switcher() -> common::TestServer {
    common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            let Some(protocol) = req.upgrade_protocol() else {
                return res.ok("no switch asked");
            };
            let Ok(upgrade) = req.upgrade() else {
                return res.deny(StatusCode::INTERNAL_SERVER_ERROR);
            };
            let key = req.header("sec-websocket-key").is_some();
            req.spawn(async move {
                let Ok(io) = upgrade.await else { return };
                let (mut reader, mut writer) = tokio::io::split(io);
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
            res.set_header("x-had-key", key.to_string());
            res.switch_protocols(&protocol)
        }),
    )
    .await
}

#[tokio::test]
async fn an_http1_upgrade_is_tunnelled_both_ways() {
    let upstream = echo_switcher().await;
    let proxy = proxy_server(proxy_to(&[upstream.addr.to_string()]), |b| b).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .expect("write");
    let head = common::read_head(&mut stream).await.to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.1 101 switching protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains("upgrade: echo\r\n") && head.contains("x-had-key: false\r\n"),
        "{head}"
    );
    for message in [&b"ping"[..], b"HTTP/1.1 200 not a response"] {
        stream.write_all(message).await.expect("write");
        let mut echoed = vec![0; message.len()];
        tokio::time::timeout(common::PATIENCE, stream.read_exact(&mut echoed))
            .await
            .expect("the echo arrives")
            .expect("read");
        assert_eq!(echoed, message);
    }
    proxy.stop().await;
    upstream.stop().await;
}

/// A WebSocket over HTTP/2 (RFC 8441) becomes an HTTP/1.1 upgrade with the key the
/// upstream's handshake needs.
#[tokio::test]
async fn an_http2_websocket_reaches_an_http1_upstream_as_an_upgrade() {
    let upstream = echo_switcher().await;
    let proxy = proxy_server(proxy_to(&[upstream.addr.to_string()]), |b| b).await;
    let tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
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
        .uri(format!("http://{}/ws", proxy.addr))
        .header("sec-websocket-version", "13")
        .extension(h2::ext::Protocol::from("websocket"))
        .body(())
        .expect("request");
    let (response, mut outgoing) = client.send_request(request, false).expect("send");
    let response = tokio::time::timeout(common::PATIENCE, response)
        .await
        .expect("the answer arrives")
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-had-key"], "true");
    assert!(response.headers().get("sec-websocket-accept").is_none());
    outgoing
        .send_data(Bytes::from_static(b"frame"), false)
        .expect("send");
    let mut incoming = response.into_body();
    let echoed = tokio::time::timeout(common::PATIENCE, incoming.data())
        .await
        .expect("the echo arrives")
        .expect("a data frame")
        .expect("data");
    assert_eq!(&echoed[..], b"frame");
    proxy.stop().await;
    upstream.stop().await;
}

/// The Python interpreter that has the `websockets` package (Debian's
/// python3-websockets goes with /usr/bin/python3).
fn python_with_websockets() -> &'static str {
    for python in ["/usr/bin/python3", "python3"] {
        let found = std::process::Command::new(python)
            .args(["-c", "import websockets"])
            .status()
            .is_ok_and(|status| status.success());
        if found {
            return python;
        }
    }
    panic!("the WebSocket test needs Python's websockets: apt-get install python3-websockets");
}

const WS_ECHO_SERVER: &str = r#"
import asyncio, sys, websockets
async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)
async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1])):
        print("ready", flush=True)
        await asyncio.Future()
asyncio.run(main())
"#;

const WS_CLIENT: &str = r#"
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1]) as ws:
        for text in ["hello", "through the proxy"]:
            await ws.send(text)
            print(await ws.recv())
asyncio.run(main())
"#;

/// Python's websockets on both ends: a real handshake (the client checks
/// `Sec-WebSocket-Accept`) and frames both ways through the proxy.
#[tokio::test]
async fn a_python_websocket_client_talks_to_a_python_websocket_server_through_the_proxy() {
    let python = python_with_websockets();
    let port = crate::dead_address().await.port();
    let mut server = tokio::process::Command::new(python)
        .args(["-c", WS_ECHO_SERVER, &port.to_string()])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Python WebSocket server");
    let upstream = format!("127.0.0.1:{port}");
    crate::wait_for_listener(&upstream).await;
    let proxy = proxy_server(proxy_to(&[upstream]), |b| b).await;
    let url = format!("ws://{}/chat", proxy.addr);
    let client = tokio::process::Command::new(python)
        .args(["-c", WS_CLIENT, &url])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(common::PATIENCE, client)
        .await
        .expect("the client finishes")
        .expect("run the Python WebSocket client");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "hello\nthrough the proxy\n"
    );
    proxy.stop().await;
    let _ = server.kill().await;
}
