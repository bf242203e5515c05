//! One client connection: the task that serves it with hyper (HTTP/1.1 and HTTP/2 on
//! the same port), and the [`Connection`] facts every request carries.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Wake;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::body::ResponseBody;
use crate::exchange::{ERROR_PAGE_TYPE, error_page};
use crate::sync::lock;
use crate::failure::Failure;
use crate::flush::{FlushTracker, FlushedIo};
use crate::limits::Limits;
use crate::pipeline;
use crate::refusal_io::{RefusalIo, Refusals, encode_response};
use crate::shared::Shared;
use crate::site::SiteCache;
use crate::stats::Stats;
use crate::timed_io::TimedIo;
use crate::tls::TlsInfo;
use crate::transport::Transport;
use crate::until_signal::{Alarm, AlarmWaker, Ended, UntilSignal};

/// Facts about one connection, shared by all its requests.
#[derive(Debug)]
pub(crate) struct ConnectionInfo {
    pub(crate) id: u64,
    pub(crate) remote_addr: SocketAddr,
    pub(crate) local_addr: SocketAddr,
    pub(crate) tls: Option<TlsInfo>,
    /// The server's transport when the connection was accepted: a reload after that
    /// does not change its limits.
    pub(crate) transport: Arc<Transport>,
}

/// The connection a request arrived on, as handlers see it: its addresses, and the
/// `user` and `authtype` an authentication handler established.
///
/// `user` and `authtype` belong to the request, not to the socket: every request on a
/// keep-alive or HTTP/2 connection starts without them, so one request's login never
/// leaks into the next.
pub struct Connection {
    info: Arc<ConnectionInfo>,
    auth: Mutex<Auth>,
}

#[derive(Debug, Default)]
struct Auth {
    user: Option<String>,
    authtype: Option<String>,
}

impl Connection {
    pub(crate) fn new(info: Arc<ConnectionInfo>) -> Self {
        Self {
            info,
            auth: Mutex::default(),
        }
    }

    /// A number identifying the connection, unique within the server's lifetime.
    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.info.remote_addr
    }

    /// The server's address this connection was accepted on.
    pub fn local_addr(&self) -> SocketAddr {
        self.info.local_addr
    }

    /// What the TLS handshake settled, on an HTTPS connection.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.info.tls.as_ref()
    }

    /// The limits this connection was accepted with.
    pub(crate) fn limits(&self) -> &Limits {
        &self.info.transport.limits
    }

    /// The authenticated user name, once an authentication handler set one.
    pub fn user(&self) -> Option<String> {
        lock(&self.auth).user.clone()
    }

    /// Records the authenticated user name.
    pub fn set_user(&self, user: impl Into<String>) {
        lock(&self.auth).user = Some(user.into());
    }

    /// The authentication scheme that established [`Connection::user`], e.g. `Basic`.
    pub fn authtype(&self) -> Option<String> {
        lock(&self.auth).authtype.clone()
    }

    /// Records the authentication scheme.
    pub fn set_authtype(&self, authtype: impl Into<String>) {
        lock(&self.auth).authtype = Some(authtype.into());
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = lock(&self.auth);
        f.debug_struct("Connection")
            .field("id", &self.info.id)
            .field("remote_addr", &self.info.remote_addr)
            .field("local_addr", &self.info.local_addr)
            .field("tls", &self.info.tls)
            .field("user", &auth.user)
            .field("authtype", &auth.authtype)
            .finish()
    }
}

/// What the requests of one connection share with its socket wrapper.
#[derive(Debug)]
pub(crate) struct ConnState {
    pub(crate) info: Arc<ConnectionInfo>,
    pub(crate) flush: FlushTracker,
    pub(crate) stats: Stats,
    /// Set once a request of this connection has run its Error handler, so a failure
    /// is not reported a second time as a failure of the connection.
    pub(crate) error_reported: AtomicBool,
    /// Requests between their head arriving and their response being done with.
    active: AtomicUsize,
    /// Set by the socket wrapper once the connection has been idle too long; it then
    /// rings `alarm`.
    idle: AtomicBool,
    /// Wakes the connection task to look at `idle` and at the server's shutdown.
    alarm: Alarm,
    /// The first write error, to tell Error handlers why a response was cut.
    pub(crate) write_failure: OnceLock<Failure>,
    /// Set when a request's response is done with and its last bytes may still sit
    /// in hyper's buffer; cleared by the next successful flush.
    unflushed: AtomicBool,
    /// The server, for the default headers of the refusals hyper makes itself.
    shared: Arc<Shared>,
}

impl ConnState {
    /// The connection has been idle too long: its task closes it.
    pub(crate) fn signal_idle(&self) {
        self.idle.store(true, Ordering::Release);
        self.alarm.ring();
    }

    /// How many requests of this connection are in progress.
    pub(crate) fn active_requests(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Everything written so far has been flushed.
    pub(crate) fn note_flushed(&self) {
        if self.unflushed.load(Ordering::Relaxed) {
            self.unflushed.store(false, Ordering::Release);
        }
    }
}

/// hyper's own answers to heads it refuses get the server's default headers.
impl Refusals for ConnState {
    fn is_between_requests(&self) -> bool {
        self.active_requests() == 0 && !self.unflushed.load(Ordering::Acquire)
    }

    fn render(&self, status: http::StatusCode) -> Bytes {
        let body = error_page(status);
        let mut headers = http::HeaderMap::new();
        let plain = http::HeaderValue::from_static(ERROR_PAGE_TYPE);
        headers.insert(http::header::CONTENT_TYPE, plain);
        headers.insert(http::header::CONTENT_LENGTH, body.len().into());
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        if let Ok(date) = http::HeaderValue::try_from(date) {
            headers.insert(http::header::DATE, date);
        }
        let close = http::HeaderValue::from_static("close");
        headers.insert(http::header::CONNECTION, close);
        self.shared.site.load().add_default_headers(&mut headers);
        encode_response(status, &headers, &body)
    }
}

/// The connection task's signals (shutdown, idleness) wake it through its state.
impl Wake for ConnState {
    fn wake(self: Arc<Self>) {
        self.alarm.ring();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.alarm.ring();
    }
}

impl AlarmWaker for ConnState {
    fn alarm(&self) -> &Alarm {
        &self.alarm
    }
}

/// Counts a request as in progress from its head until its response body is dropped
/// (sent or abandoned): the connection is not idle meanwhile.
#[derive(Debug)]
pub(crate) struct ActiveRequest(Arc<ConnState>);

impl ActiveRequest {
    fn new(conn: &Arc<ConnState>) -> Self {
        conn.active.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(conn))
    }

    /// The connection the request is counted on.
    pub(crate) fn conn(&self) -> &Arc<ConnState> {
        &self.0
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        // Before the count drops: a write seeing no request in progress must also
        // see that this one's bytes may still be on their way.
        self.0.unflushed.store(true, Ordering::Release);
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

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
    let state = Arc::new(ConnState {
        info: Arc::new(info),
        flush: FlushTracker::default(),
        stats: shared.stats.clone(),
        error_reported: AtomicBool::new(false),
        active: AtomicUsize::new(0),
        idle: AtomicBool::new(false),
        alarm: Alarm::default(),
        write_failure: OnceLock::new(),
        unflushed: AtomicBool::new(false),
        shared: Arc::clone(&shared),
    });
    let limits = &transport.limits;
    let timed = TimedIo::new(
        stream,
        Arc::clone(&state),
        limits.write_timeout,
        limits.keep_alive_timeout,
    );
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
        let connection = transport.http.serve_connection(io, service);
        tokio::pin!(connection);
        let mut drained = std::pin::pin!(draining.cancelled());
        let signal = std::pin::pin!(std::future::poll_fn(|cx| {
            if state.idle.load(Ordering::Acquire) {
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
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = pipeline::Responding;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let active = ActiveRequest::new(&self.conn);
        let shared = Arc::clone(&self.shared);
        let site = self.site.current();
        if request.version() == http::Version::HTTP_2 {
            pipeline::respond_in_stream(shared, site, active, request)
        } else {
            // HTTP/1 answers one request at a time: run the handlers right here.
            pipeline::respond(shared, site, active, request)
        }
    }
}
