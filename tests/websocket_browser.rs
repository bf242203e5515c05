//! A WebSocket opened by a page in headless Chromium (installed by `scripts/test`):
//! the browser's own client speaks to the echo and the page shows the answer.

mod common;

use poco_httpd::Server;
use poco_httpd::handlers::WebSocketExt;
use poco_httpd::handlers::websocket::{Message, SocketEnd};

const PAGE: &str = r#"<!doctype html>
<title>echo</title>
<p id="out">waiting</p>
<script>
  const out = document.getElementById("out");
  const ws = new WebSocket(`ws://${location.host}/echo`);
  ws.onopen = () => ws.send("hello from the browser");
  ws.onmessage = (event) => {
    out.textContent = "echoed: " + event.data;
    ws.close(1000, "seen");
  };
  ws.onerror = () => { out.textContent = "error"; };
</script>"#;

#[tokio::test]
async fn chromium_opens_a_websocket_from_a_page_and_gets_the_echo() {
    let events = common::Events::default();
    let post = events.log(|req| {
        let end = SocketEnd::of(req).expect("a WebSocket ended");
        format!(
            "closed {:?}, in {}",
            end.client_close.map(|f| f.code.0),
            end.received
        )
    });
    let server = common::start(
        Server::builder()
            .content(
                "/",
                |_req: poco_httpd::Request, res: poco_httpd::Response| {
                    res.set_content_type("text/html; charset=utf-8");
                    res.ok(PAGE)
                },
            )
            .websocket("/echo", |mut socket| async move {
                while let Some(message) = socket.recv().await {
                    if let Message::Text(_) = message
                        && socket.send(message).await.is_err()
                    {
                        break;
                    }
                }
            })
            .post("/echo", post),
    )
    .await;
    let url = server.url("/");
    let dom = tokio::task::spawn_blocking(move || {
        common::chromium(&["--virtual-time-budget=5000", "--dump-dom", &url])
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    assert!(
        dom.contains(r#"<p id="out">echoed: hello from the browser</p>"#),
        "the page shows the echo: {dom}"
    );
    assert_eq!(events.wait_for(1).await, ["closed Some(1000), in 1"]);
    server.stop().await;
}
