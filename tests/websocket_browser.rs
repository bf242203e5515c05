//! A WebSocket opened by a page in headless Chromium (installed by `scripts/test`):
//! the browser's own client speaks to the echo and the page shows the answer.
//!
//! Chromium dumps the DOM once the page has loaded and its virtual time ran out, and
//! a WebSocket's traffic does not hold virtual time back; so the page's image is
//! answered only after the echo went out, which keeps the load event (and the dump)
//! behind the echo however slow the machine is.

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
</script>
<img src="/after-echo" alt="">"#;

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
    let (echoed, after_echo) = tokio::sync::watch::channel(false);
    let echoed = std::sync::Arc::new(echoed);
    let server = common::start(
        Server::builder()
            .content(
                "/after-echo",
                move |_req: poco_httpd::Request, res: poco_httpd::Response| {
                    let mut after_echo = after_echo.clone();
                    async move {
                        let wait = after_echo.wait_for(|sent| *sent);
                        let _ =
                            tokio::time::timeout(std::time::Duration::from_secs(20), wait).await;
                        res.set_status(http::StatusCode::NO_CONTENT);
                        poco_httpd::Outcome::Ok
                    }
                },
            )
            .content(
                "/",
                |_req: poco_httpd::Request, res: poco_httpd::Response| {
                    res.set_content_type("text/html; charset=utf-8");
                    res.ok(PAGE)
                },
            )
            .websocket("/echo", move |mut socket| {
                let echoed = std::sync::Arc::clone(&echoed);
                async move {
                    while let Some(message) = socket.recv().await {
                        if let Message::Text(_) = message {
                            if socket.send(message).await.is_err() {
                                break;
                            }
                            echoed.send_replace(true);
                        }
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
