//! A WebSocket echo at `/echo`: every text and binary message comes back, over
//! HTTP/1.1 (`Upgrade: websocket`) and HTTP/2 (h2c extended CONNECT, RFC 8441).
//!
//! Run with `cargo run --example websocket [ADDR:PORT]` (default `127.0.0.1:8000`),
//! then talk to it with any WebSocket client, e.g. Python's:
//!
//! ```text
//! python3 -m websockets ws://127.0.0.1:8000/echo
//! ```

use poco_httpd::Server;
use poco_httpd::handlers::WebSocketExt;
use poco_httpd::handlers::websocket::Socket;

async fn echo(mut socket: Socket) {
    while let Some(message) = socket.recv().await {
        // Pings are answered by the socket itself; only data is echoed.
        if message.is_data() && socket.send(message).await.is_err() {
            break;
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), poco_httpd::Error> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".into());
    let server = Server::builder()
        .listen(listen)
        .websocket("/echo", echo)
        .build()?
        .bind()
        .await?;
    println!("WebSocket echo at ws://{}/echo", server.local_addr());
    server.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
