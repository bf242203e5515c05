//! poco-httpd's side of the WebSocket comparison: an echo of text and binary
//! messages at `/echo`, registered with `websocket(path, handler)`.
//! Usage: `bench-ws-ours ADDR:PORT` (`BENCH_THREADS` workers).

use poco_httpd::Server;
use poco_httpd::handlers::WebSocketExt;
use poco_httpd::handlers::websocket::Socket;

fn main() -> Result<(), poco_httpd::Error> {
    poco_bench::runtime().block_on(serve())
}

async fn serve() -> Result<(), poco_httpd::Error> {
    let server = Server::builder()
        .listen(poco_bench::listen_addr())
        .websocket(poco_bench::ECHO_PATH, echo)
        .build()?
        .bind()
        .await?;
    poco_bench::announce(server.local_addr());
    server.run().await;
    Ok(())
}

async fn echo(mut socket: Socket) {
    while let Some(message) = socket.recv().await {
        if message.is_data() && socket.send(message).await.is_err() {
            break;
        }
    }
}
