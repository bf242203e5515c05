//! WebSockets against an independent client: the Python `websockets` package over
//! HTTP/1.1 (installed by `scripts/test` as Debian's python3-websockets) — text,
//! binary, a fragmented message, ping/pong, close codes both ways, and a 16 MiB
//! message at and over the limit.

mod common;

use std::process::Command;

use poco_httpd::Server;
use poco_httpd::handlers::WebSocket;
use poco_httpd::handlers::websocket::{CloseCode, Message, SocketEnd};

/// Runs `tests/fixtures/ws_client.py SCENARIO URL` and returns its output lines.
async fn python(scenario: &str, url: String) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ws_client.py");
    let scenario = scenario.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("/usr/bin/python3")
            .args([script, &scenario, &url])
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'websockets'"),
        "install python3-websockets (scripts/test does)"
    );
    assert!(output.status.success(), "ws_client.py failed: {stderr}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Echoes data messages; "close me" makes it close with 4000.
fn echo() -> WebSocket {
    WebSocket::new(|mut socket| async move {
        while let Some(message) = socket.recv().await {
            if let Message::Text(text) = &message
                && &**text == "close me"
            {
                let _ = socket.close(CloseCode(4000), "asked to").await;
                continue;
            }
            if message.is_data() && socket.send(message).await.is_err() {
                break;
            }
        }
    })
}

fn ws_url(server: &common::TestServer, path: &str) -> String {
    format!("ws://{}{path}", server.addr)
}

#[tokio::test]
async fn python_websockets_echoes_text_binary_fragments_and_pings() {
    let events = common::Events::default();
    let post = events.log(|req| format!("{:?}", SocketEnd::of(req)));
    let server = common::start(
        Server::builder()
            .content("/echo", echo())
            .post("/echo", post),
    )
    .await;
    let lines = python("echo", ws_url(&server, "/echo")).await;
    assert_eq!(
        lines,
        [
            "text hello",
            "binary 000102",
            "fragmented fragmented",
            "pong ok",
            "closed 4001 done here"
        ]
    );
    let ended = events.wait_for(1).await;
    assert!(ended[0].contains("client_closed: true"), "{ended:?}");
    assert!(ended[0].contains("code: CloseCode(4001)"), "{ended:?}");
    assert!(ended[0].contains("received: 3, sent: 3"), "{ended:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_16_mib_message_passes_and_one_byte_more_closes_with_1009() {
    let server = common::start(Server::builder().content("/echo", echo())).await;
    let lines = python("big", ws_url(&server, "/echo")).await;
    assert_eq!(
        lines,
        [
            "at limit echoed 16777216",
            "over limit closed 1009 message too big"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_close_code_from_the_handler_reaches_python() {
    let server = common::start(Server::builder().content("/echo", echo())).await;
    let lines = python("server_close", ws_url(&server, "/echo")).await;
    assert_eq!(lines, ["closed by server 4000 asked to"]);
    server.stop().await;
}
