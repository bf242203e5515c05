//! axum's side of the WebSocket comparison: the same echo at `/echo` with
//! `WebSocketUpgrade`, served by `axum::serve` (with `TCP_NODELAY`).
//! Usage: `bench-ws-axum ADDR:PORT` (`BENCH_THREADS` workers).

use std::io;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::{Listener, ListenerExt};
use tokio::net::TcpListener;

fn main() -> io::Result<()> {
    poco_bench::runtime().block_on(serve())
}

async fn serve() -> io::Result<()> {
    let listener = TcpListener::bind(poco_bench::listen_addr())
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    poco_bench::announce(listener.local_addr()?);
    let router = Router::new().route(poco_bench::ECHO_PATH, get(upgrade));
    axum::serve(listener, router).await
}

async fn upgrade(ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let data = matches!(message, Message::Text(_) | Message::Binary(_));
        if data && socket.send(message).await.is_err() {
            break;
        }
    }
}
