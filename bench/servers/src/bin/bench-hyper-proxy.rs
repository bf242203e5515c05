//! A floor for a reverse proxy built on hyper: bare hyper's HTTP/1.1 server in front
//! of hyper's HTTP/1.1 client connections, one upstream connection per client
//! connection (driven by a task of its own, as hyper documents), requests and
//! answers passed on as they are — no header work, no pool, no timeouts, no
//! failure handling. Not a usable proxy: `bench/callgrind-proxy bare` counts what
//! hyper on both sides costs a proxied request at the least, to set against
//! nginx's `proxy_pass` and poco-httpd's `Proxy`.
//! Usage: `bench-hyper-proxy LISTEN UPSTREAM` (`BENCH_THREADS` workers).

use std::io;
use std::sync::Arc;

use hyper::Request;
use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

fn main() -> io::Result<()> {
    poco_bench::runtime().block_on(serve())
}

async fn serve() -> io::Result<()> {
    let upstream = std::env::args()
        .nth(2)
        .ok_or_else(|| io::Error::other("usage: bench-hyper-proxy LISTEN UPSTREAM"))?;
    let listener = TcpListener::bind(poco_bench::listen_addr()).await?;
    poco_bench::announce(listener.local_addr()?);
    loop {
        // Accept errors (a vanished client, no file descriptor left) are transient.
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_one(stream, upstream.clone()));
    }
}

/// Serves one client connection over one upstream connection of its own.
async fn serve_one(stream: TcpStream, upstream: String) {
    let Ok(upstream) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    let Ok((sender, connection)) = client::handshake::<_, Incoming>(TokioIo::new(upstream)).await
    else {
        return;
    };
    tokio::spawn(connection);
    // Requests on one client connection come one after another; the lock is never
    // contended, it only satisfies the service's `Fn`.
    let sender = Arc::new(Mutex::new(sender));
    let service = service_fn(move |request: Request<Incoming>| {
        let sender = Arc::clone(&sender);
        async move {
            let mut sender = sender.lock().await;
            sender.ready().await?;
            sender.send_request(request).await
        }
    });
    let _ = server::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
