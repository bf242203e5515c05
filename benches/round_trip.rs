//! One request's whole trip through the server, socket included: a keep-alive
//! HTTP/1.1 client sends `GET /a/b/c.txt` and reads the 13-byte answer, against
//! poco-httpd (Pre handlers at `/`, `/a/`, `/a/b/`, a Content and a Post handler) and
//! against bare hyper answering the same, side by side in one run. Client and
//! servers share one runtime thread, so the difference is the servers' own work.
//!
//! Run with `cargo bench --bench round_trip`. For throughput under load with
//! servers and client on separate cores, see `bench/compare`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use poco_httpd::{Outcome, Request, Response, Server};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const PATH: &str = "/a/b/c.txt";
const BODY: &str = "Hello, world!";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn start_ours() -> SocketAddr {
    let pre = |_req: Request, _res: Response| Outcome::Ok;
    let server = Server::builder()
        .listen("127.0.0.1:0")
        .pre("/", pre)
        .pre("/a/", pre)
        .pre("/a/b/", pre)
        .content("/a/b/", |_req: Request, res: Response| {
            res.set_content_type("text/plain");
            res.set_body(BODY);
            Outcome::Ok
        })
        .post("/", |_req: Request, _res: Response| Outcome::Ok)
        .build()
        .expect("server")
        .bind()
        .await
        .expect("bind");
    let addr = server.local_addr();
    tokio::spawn(server.run());
    addr
}

async fn start_hyper() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        // Timers as poco-httpd sets them, for its header read timeout.
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    let mut response = hyper::Response::new(Full::new(Bytes::from(BODY)));
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain"),
                    );
                    Ok::<_, Infallible>(response)
                });
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// One request, its whole answer read; panics on anything but `200 Hello, world!`.
async fn round_trip(sender: &mut SendRequest<Empty<Bytes>>) {
    let request = hyper::Request::get(PATH)
        .header(hyper::header::HOST, "bench")
        .body(Empty::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert_eq!(response.status(), 200);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(body, BODY);
}

fn compare(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("round trip, one keep-alive connection");
    group.measurement_time(Duration::from_secs(5));
    for (name, addr) in [
        ("poco-httpd", runtime.block_on(start_ours())),
        ("bare hyper", runtime.block_on(start_hyper())),
    ] {
        let mut sender = runtime.block_on(connect(addr));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        round_trip(&mut sender).await;
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, compare);
criterion_main!(benches);
