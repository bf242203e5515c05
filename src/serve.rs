//! Serving one accepted socket: the PROXY protocol header and the TLS handshake if
//! any, the per-address connection bound, the socket wrappers, hyper's
//! connection (HTTP/1.1 and HTTP/2 on the same port) with [`ConnService`] handing
//! each request to the pipeline, graceful shutdown and the cut at the deadline.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::connection::ConnectionInfo;
use crate::flush::FlushedIo;
use crate::host::KnownHost;
use crate::pipeline::{self, ActiveRequest, ConnState, WireBody};
use crate::proxy_header::{self, Rewind};
use crate::shared::Shared;
use crate::site::SiteCache;
use crate::timed_io::{IoLimits, TimedIo};
use crate::tls::TlsInfo;
use crate::until_signal::{Ended, UntilSignal};

/// The task of one accepted socket: its PROXY protocol header read first if the
/// server expects one, then served as it is, or through the TLS handshake first if the
/// server speaks HTTPS. Boxed per kind, so a plain connection's task is not sized for
/// the larger TLS state (this is memory every idle connection holds).
pub(crate) fn accept(
    shared: Arc<Shared>,
    stream: TcpStream,
    info: ConnectionInfo,
    draining: CancellationToken,
    cut: CancellationToken,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    if info.transport.proxy_protocol {
        return Box::pin(accept_proxied(shared, stream, info, draining, cut));
    }
    serve_or_handshake(shared, stream, info, draining, cut)
}

/// Reads the PROXY protocol header (bounded by the header read timeout) and takes the
/// client's address from it, then goes on with the bytes after it.
async fn accept_proxied(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    mut info: ConnectionInfo,
    draining: CancellationToken,
    cut: CancellationToken,
) {
    let timeout = info.transport.limits.header_read_timeout;
    let read = tokio::time::timeout(timeout, proxy_header::read(&mut stream));
    let header = tokio::select! {
        result = read => match result {
            Ok(Ok(header)) => header,
            Ok(Err(error)) => {
                tracing::debug!(remote = %info.remote_addr, %error, "connection closed");
                return;
            }
            Err(_) => {
                tracing::debug!(remote = %info.remote_addr, "PROXY protocol header timed out");
                return;
            }
        },
        () = draining.cancelled() => return,
    };
    if let Some(source) = header.source {
        info.client_addr = source;
    }
    let stream = Rewind::new(header.rest, stream);
    serve_or_handshake(shared, stream, info, draining, cut).await;
}

/// Takes the client's place under `max_connections_per_ip` (closing the connection
/// if there is none), then serves, through the TLS handshake if the server speaks
/// HTTPS.
fn serve_or_handshake<S>(
    shared: Arc<Shared>,
    stream: S,
    info: ConnectionInfo,
    draining: CancellationToken,
    cut: CancellationToken,
) -> Pin<Box<dyn Future<Output = ()> + Send>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let place = match info.transport.limits.max_connections_per_ip {
        None => None,
        Some(max) => match shared.per_ip.try_acquire(info.client_addr.ip(), max) {
            Some(place) => Some(place),
            None => {
                tracing::debug!(client = %info.client_addr, max, "too many connections from one address; closed");
                return Box::pin(std::future::ready(()));
            }
        },
    };
    match (info.transport.tls.clone(), place) {
        (None, None) => Box::pin(serve(shared, stream, info, draining, cut)),
        (None, Some(place)) => Box::pin(async move {
            serve(shared, stream, info, draining, cut).await;
            drop(place);
        }),
        (Some(acceptor), place) => Box::pin(async move {
            accept_tls(acceptor, shared, stream, info, draining, cut).await;
            drop(place);
        }),
    }
}

/// The TLS handshake (bounded by the header read timeout), then serving.
async fn accept_tls<S>(
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    stream: S,
    mut info: ConnectionInfo,
    draining: CancellationToken,
    cut: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = info.transport.limits.header_read_timeout;
    let handshake = tokio::time::timeout(timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(remote = %info.remote_addr, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(remote = %info.remote_addr, "TLS handshake timed out");
                return;
            }
        },
        () = draining.cancelled() => return,
    };
    info.tls = Some(TlsInfo::of(stream.get_ref().1));
    serve(shared, stream, info, draining, cut).await;
}

/// Serves one accepted socket until the client leaves, it stays idle too long, or the
/// server shuts down.
pub(crate) async fn serve<S>(
    shared: Arc<Shared>,
    stream: S,
    info: ConnectionInfo,
    draining: CancellationToken,
    cut: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _open = shared.stats.connection_opened();
    let transport = Arc::clone(&info.transport);
    let state = Arc::new(ConnState::new(info, &shared));
    let released = state.on_release();
    let limits = &transport.limits;
    let io_limits = IoLimits {
        write_timeout: limits.write_timeout,
        min_write_rate: limits.min_write_rate,
        idle_timeout: limits.keep_alive_timeout,
        head_timeout: limits.header_read_timeout,
    };
    let timed = TimedIo::new(stream, Arc::clone(&state), io_limits);
    let io = TokioIo::new(FlushedIo::new(timed, Arc::clone(&state)));
    let service = ConnService {
        shared: Arc::clone(&shared),
        site: SiteCache::new(Arc::clone(&shared)),
        conn: Arc::clone(&state),
        known_host: KnownHost::default(),
    };
    // The block ends hyper's connection (and with it any request still in flight)
    // before the outcome is looked at, so such requests have reported first.
    let outcome = {
        let connection = transport.http.serve_connection_with_upgrades(io, service);
        tokio::pin!(connection);
        let mut drained = std::pin::pin!(draining.cancelled());
        let signal = std::pin::pin!(std::future::poll_fn(|cx| {
            if state.is_idle() {
                tracing::debug!(connection = state.info.id, "closing an idle connection");
                return std::task::Poll::Ready(());
            }
            drained.as_mut().poll(cx)
        }));
        match UntilSignal::new(connection.as_mut(), signal, Arc::clone(&state)).await {
            Ended::Finished(result) => Ok(result),
            Ended::Signalled => {
                // Requests in flight finish; hyper answers no new ones (GOAWAY on h2).
                connection.as_mut().graceful_shutdown();
                tokio::select! {
                    result = connection.as_mut() => Ok(result),
                    () = cut.cancelled() => Err(state.active_requests()),
                }
            }
        }
    };
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => report_failure(&shared, &state, &*error),
        Err(requests) => {
            shared.stats.cut_at_deadline(requests);
            tracing::warn!(
                connection = state.info.id,
                requests,
                "connection cut: still busy at the shutdown deadline"
            );
        }
    }
    // hyper is done with a connection it handed over after a `101`, but the socket
    // lives on in the task serving it: the connection keeps its `max_connections`
    // slot and its place in the open count until that task lets go of it.
    if state.is_upgraded() {
        drop(state);
        tokio::select! {
            () = released => {}
            () = cut.cancelled() => {}
        }
    }
}

/// A connection that failed with no request left to blame: the client sent part of a
/// request head, then went away. The Error handler of `/` hears of it.
fn report_failure(
    shared: &Arc<Shared>,
    state: &Arc<ConnState>,
    error: &(dyn std::error::Error + Send + Sync + 'static),
) {
    let incomplete = error
        .downcast_ref::<hyper::Error>()
        .is_some_and(hyper::Error::is_incomplete_message);
    tracing::debug!(connection = state.info.id, %error, "connection ended with an error");
    if incomplete && !state.error_reported.load(Ordering::Acquire) {
        pipeline::report_aborted_head(shared, state, error.to_string());
    }
}

/// The hyper service of one connection: each request goes through the pipeline.
#[derive(Debug, Clone)]
struct ConnService {
    shared: Arc<Shared>,
    site: SiteCache,
    conn: Arc<ConnState>,
    /// The last valid `Host` of this connection's HTTP/1 requests, which are answered
    /// in this task one at a time.
    known_host: KnownHost,
}

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = http::Response<WireBody>;
    type Error = Infallible;
    type Future = pipeline::Responding;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let active = ActiveRequest::new(&self.conn);
        let shared = Arc::clone(&self.shared);
        let site = self.site.current();
        if request.version() == http::Version::HTTP_2 {
            self.conn.note_http2();
            pipeline::respond_in_stream(shared, site, active, request)
        } else {
            // HTTP/1 answers one request at a time: run the handlers right here.
            pipeline::respond(shared, site, active, request, Some(&self.known_host))
        }
    }
}
