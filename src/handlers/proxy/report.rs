//! [`ProxyReport`]: what happened to one proxied request — which upstream answered
//! (or failed), after how many tries, how long the head and the whole answer took,
//! and [`ProxyFailure`] when it went wrong. The proxy puts it in the request's
//! extensions, so Error and Post handlers (an access log) read it with
//! `req.extension::<ProxyReport>()`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::http::StatusCode;

/// What went wrong between the proxy and its upstream. More kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyFailure {
    /// The upstream refused the connection, or it could not be opened (`502`).
    ConnectFailed,
    /// The connection was not open within the connect timeout (`504`).
    ConnectTimeout,
    /// The upstream sent no response head within the head timeout after the request
    /// was sent, or took no request body for the idle timeout (`504`).
    HeadTimeout,
    /// The upstream closed the connection or sent something that is not HTTP before
    /// its response head was complete (`502`).
    Broken,
    /// The upstream went quiet for the idle timeout in the middle of its response
    /// body; the client's response was cut.
    IdleTimeout,
    /// The upstream's response body broke off; the client's response was cut.
    BrokeMidBody,
    /// Every upstream is marked down by the health checks (`502`).
    NoLiveUpstream,
}

impl ProxyFailure {
    /// The status the client gets when this happens before the response head.
    pub fn status(self) -> StatusCode {
        match self {
            Self::ConnectTimeout | Self::HeadTimeout | Self::IdleTimeout => {
                StatusCode::GATEWAY_TIMEOUT
            }
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// What the client is told, in words.
    pub(super) fn message(self) -> &'static str {
        match self {
            Self::ConnectFailed => "the upstream server could not be reached",
            Self::ConnectTimeout => "the upstream server did not accept a connection in time",
            Self::HeadTimeout => "the upstream server did not answer in time",
            Self::Broken => "the upstream server closed the connection without a valid answer",
            Self::IdleTimeout => "the upstream server stopped sending its answer",
            Self::BrokeMidBody => "the upstream server broke off its answer",
            Self::NoLiveUpstream => "every upstream server is marked down",
        }
    }
}

impl fmt::Display for ProxyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// What happened to one proxied request; see the module docs.
///
/// ```
/// use poco_httpd::handlers::ProxyReport;
/// use poco_httpd::{Outcome, Request, Response};
///
/// // A Post handler that logs which upstream answered, and how fast.
/// let log = |req: Request, res: Response| {
///     if let Some(report) = req.extension::<ProxyReport>() {
///         println!(
///             "{} {} via {} in {:?} ({:?})",
///             req.path(),
///             res.status(),
///             report.upstream().unwrap_or_default(),
///             report.total_time(),
///             report.failure(),
///         );
///     }
///     Outcome::Ok
/// };
/// # fn assert_handler(_: impl poco_httpd::Handler) {}
/// # assert_handler(log);
/// ```
#[derive(Clone)]
pub struct ProxyReport {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    started: Instant,
    upstream: Option<Arc<str>>,
    attempts: u32,
    status: Option<StatusCode>,
    head_time: Option<Duration>,
    total_time: Option<Duration>,
    failure: Option<ProxyFailure>,
}

impl ProxyReport {
    pub(super) fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                started: Instant::now(),
                upstream: None,
                attempts: 0,
                status: None,
                head_time: None,
                total_time: None,
                failure: None,
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The upstream tried last (as written in the proxy's list), if any was tried.
    pub fn upstream(&self) -> Option<String> {
        self.state().upstream.as_deref().map(str::to_owned)
    }

    /// How many upstreams were tried: more than one after a retry.
    pub fn attempts(&self) -> u32 {
        self.state().attempts
    }

    /// The status the upstream answered with (before any change by later handlers).
    pub fn status(&self) -> Option<StatusCode> {
        self.state().status
    }

    /// From the start of forwarding to the upstream's response head.
    pub fn head_time(&self) -> Option<Duration> {
        self.state().head_time
    }

    /// From the start of forwarding to the end of the upstream's response body, or
    /// to the failure; `None` while the body is still streaming.
    pub fn total_time(&self) -> Option<Duration> {
        self.state().total_time
    }

    /// What went wrong, if anything.
    pub fn failure(&self) -> Option<ProxyFailure> {
        self.state().failure
    }

    pub(super) fn note_attempt(&self, upstream: &Arc<str>) {
        let mut state = self.state();
        state.upstream = Some(Arc::clone(upstream));
        state.attempts += 1;
    }

    pub(super) fn note_head(&self, status: StatusCode) {
        let mut state = self.state();
        state.status = Some(status);
        state.head_time = Some(state.started.elapsed());
    }

    pub(super) fn note_end(&self) {
        let mut state = self.state();
        state.total_time = Some(state.started.elapsed());
    }

    pub(super) fn note_failure(&self, failure: ProxyFailure) {
        let mut state = self.state();
        state.failure = Some(failure);
        state.total_time = Some(state.started.elapsed());
    }
}

impl fmt::Debug for ProxyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.state().fmt(f)
    }
}
