//! The honest baseline: bare hyper 1.x behind hyper-util's auto builder, set up as
//! poco-httpd sets it up (TokioExecutor, a TokioTimer, `TCP_NODELAY`), with a
//! `service_fn` whose three trivial calls stand in for the three Pre handlers.
//! Usage: `bench-hyper ADDR:PORT` (`BENCH_THREADS` workers).

use std::convert::Infallible;
use std::error::Error;
use std::io;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, SERVER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use poco_bench::{HELLO_BODY, HELLO_PATH, HELLO_TYPE, SERVER_NAME, STREAM_PATH, STREAM_TYPE};
use tokio::net::TcpListener;

/// The error type `Either` gives its two body kinds.
type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> io::Result<()> {
    poco_bench::runtime().block_on(serve())
}

async fn serve() -> io::Result<()> {
    let listener = TcpListener::bind(poco_bench::listen_addr()).await?;
    poco_bench::announce(listener.local_addr()?);
    let builder = http_builder();
    loop {
        // Accept errors (a vanished client, no file descriptor left) are transient.
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(handle);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// HTTP/1.1 and HTTP/2 with timers, like poco-httpd's own builder.
fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    builder
}

async fn handle(
    req: Request<Incoming>,
) -> Result<Response<impl Body<Data = Bytes, Error = BoxError>>, Infallible> {
    // Three calls for the three Pre handlers of `/`, `/a/`, `/a/b/`.
    for _ in 0..3 {
        poco_bench::touch(req.headers().get(HOST).map(HeaderValue::as_bytes));
    }
    let response = match req.uri().path() {
        HELLO_PATH => respond(HELLO_TYPE, Either::Left(Full::new(Bytes::from(HELLO_BODY)))),
        STREAM_PATH => {
            let body = StreamBody::new(poco_bench::gib_stream().map_ok(Frame::data));
            respond(STREAM_TYPE, Either::Right(body))
        }
        _ => {
            let mut response = respond(HELLO_TYPE, Either::Left(Full::new(Bytes::new())));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    };
    Ok(response)
}

/// A `200` with the headers the other servers send (hyper adds `Date` itself).
fn respond<B>(content_type: &'static str, body: B) -> Response<B> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static(SERVER_NAME));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
