//! The honest baseline: bare hyper 1.x behind hyper-util's auto builder, set up as
//! poco-httpd sets it up (TokioExecutor, a TokioTimer, `TCP_NODELAY`), with a
//! `service_fn` whose three trivial calls stand in for the three Pre handlers
//! (`/hold` answers after 30 s, for the memory test).
//! With `BENCH_TLS_CERT` and `BENCH_TLS_KEY`, HTTPS through tokio-rustls (ring, ALPN
//! `h2` and `http/1.1`), as poco-httpd sets it up.
//! Usage: `bench-hyper ADDR:PORT` (`BENCH_THREADS` workers).

use std::convert::Infallible;
use std::error::Error;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, SERVER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use poco_bench::{
    HELLO_BODY, HELLO_PATH, HELLO_TYPE, HOLD_FOR, HOLD_PATH, SERVER_NAME, STREAM_PATH, STREAM_TYPE,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ServerConfig, crypto::ring};

/// The error type `Either` gives its two body kinds.
type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> io::Result<()> {
    poco_bench::runtime().block_on(serve())
}

async fn serve() -> io::Result<()> {
    let listener = TcpListener::bind(poco_bench::listen_addr()).await?;
    poco_bench::announce(listener.local_addr()?);
    let builder = http_builder();
    let tls = poco_bench::tls_paths().map(|(cert, key)| tls_acceptor(&cert, &key));
    loop {
        // Accept errors (a vanished client, no file descriptor left) are transient.
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_one(builder.clone(), tls.clone(), stream));
    }
}

async fn serve_one(
    builder: auto::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    stream: TcpStream,
) {
    let service = hyper::service::service_fn(handle);
    match tls {
        None => {
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
        Some(acceptor) => {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    }
}

/// The TLS set-up poco-httpd makes: ring, TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`.
///
/// # Panics
/// When the certificate or key cannot be read: the benchmark must not run without.
fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> TlsAcceptor {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .expect("cannot read BENCH_TLS_CERT");
    let key = PrivateKeyDer::from_pem_file(key).expect("cannot read BENCH_TLS_KEY");
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring offers the default versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the certificate and key do not match");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
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
        HOLD_PATH => {
            tokio::time::sleep(HOLD_FOR).await;
            respond(HELLO_TYPE, Either::Left(Full::new(Bytes::from(HELLO_BODY))))
        }
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
