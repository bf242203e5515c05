//! The axum side of the comparison: the route `/a/b/c.txt` behind three
//! `middleware::from_fn` layers doing the same trivial work as poco-httpd's Pre
//! handlers of `/`, `/a/`, `/a/b/`, plus `/stream` sending 1 GiB and `/hold` answering
//! after 30 s, served by
//! `axum::serve` (with `TCP_NODELAY`, as the other two set it).
//! Usage: `bench-axum ADDR:PORT` (`BENCH_THREADS` workers).

use std::io;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, HOST, HeaderValue, SERVER};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::{Listener, ListenerExt};
use poco_bench::{
    HELLO_BODY, HELLO_PATH, HELLO_TYPE, HOLD_FOR, HOLD_PATH, SERVER_NAME, STREAM_PATH, STREAM_TYPE,
};
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
    axum::serve(listener, router()).await
}

/// Three layers on the router, so that each request passes all three, as each
/// poco-httpd request under `/a/b/` passes the Pre handlers of `/`, `/a/`, `/a/b/`.
fn router() -> Router {
    Router::new()
        .route(HELLO_PATH, get(hello))
        .route(STREAM_PATH, get(stream))
        .route(HOLD_PATH, get(hold))
        .layer(middleware::from_fn(pre))
        .layer(middleware::from_fn(pre))
        .layer(middleware::from_fn(pre))
}

/// The same trivial work as the other servers' stand-ins.
async fn pre(req: Request, next: Next) -> Response {
    poco_bench::touch(req.headers().get(HOST).map(HeaderValue::as_bytes));
    next.run(req).await
}

async fn hello() -> impl IntoResponse {
    respond(HELLO_TYPE, Body::from(HELLO_BODY))
}

async fn hold() -> impl IntoResponse {
    tokio::time::sleep(HOLD_FOR).await;
    hello().await
}

async fn stream() -> impl IntoResponse {
    respond(STREAM_TYPE, Body::from_stream(poco_bench::gib_stream()))
}

/// The headers the other servers send (hyper adds `Date` itself).
fn respond(content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static(SERVER_NAME));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
