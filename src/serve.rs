//! Serving one accepted socket: the TLS handshake if any, the socket wrappers, hyper's
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
use crate::pipeline::{self, ActiveRequest, ConnState, WireBody};
use crate::refusal_io::RefusalIo;
use crate::shared::Shared;
use crate::site::SiteCache;
use crate::timed_io::{IoLimits, TimedIo};
use crate::tls::TlsInfo;
use crate::until_signal::{Ended, UntilSignal};

/// The task of one accepted socket: served as it is, or through the TLS handshake
/// first if the server speaks HTTPS. Boxed per kind, so a plain connection's task is
/// not sized for the larger TLS state (this is memory every idle connection holds).
pub(crate) fn accept(
    shared: Arc<Shared>,
    stream: TcpStream,
    info: ConnectionInfo,
    draining: CancellationToken,
    cut: CancellationToken,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    match info.transport.tls.clone() {
        None => Box::pin(serve(shared, stream, info, draining, cut)),
        Some(acceptor) => Box::pin(accept_tls(acceptor, shared, stream, info, draining, cut)),
    }
}

/// The TLS handshake (bounded by the header read timeout), then serving.
async fn accept_tls(
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    stream: TcpStream,
    mut info: ConnectionInfo,
    draining: CancellationToken,
    cut: CancellationToken,
) {
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
    };
    let timed = TimedIo::new(stream, Arc::clone(&state), io_limits);
    let flushed = FlushedIo::new(timed, Arc::clone(&state));
    let io = TokioIo::new(RefusalIo::new(flushed, Arc::clone(&state)));
    let service = ConnService {
        shared: Arc::clone(&shared),
        site: SiteCache::new(Arc::clone(&shared)),
        conn: Arc::clone(&state),
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
            pipeline::respond(shared, site, active, request)
        }
    }
}
