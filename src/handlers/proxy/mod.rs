//! [`Proxy`]: the reverse proxy, a Content handler that forwards each request to one
//! of its upstreams and streams the answer back.
//!
//! - `upstream.rs` — [`Upstream`](upstream::Upstream) addresses (`host:port`,
//!   `unix:/path`) and [`UpstreamError`].
//! - `connector.rs` — how a connection is opened (TCP or Unix, within the connect
//!   timeout).
//! - `conn.rs` — the own pool of HTTP/1.1 connections, each driven by the request
//!   using it rather than by a task of its own.
//! - `pool.rs` — the upstreams with their connections, [`Balance`], passive health.
//! - `health.rs` — the optional active health checks.
//! - `headers.rs` — hop-by-hop removal, `X-Forwarded-*`, `Forwarded`, `Via`.
//! - `body.rs` — the request and response bodies as they stream through.
//! - `forward.rs` — one request: the upstream request, retries, timeouts, the answer.
//! - `tunnel.rs` — protocol switches (WebSocket) tunnelled both ways.
//! - `report.rs` — [`ProxyReport`] and [`ProxyFailure`], what Error and Post
//!   handlers are told.

mod body;
mod conn;
mod connector;
mod forward;
mod headers;
mod health;
mod pool;
mod report;
mod tunnel;
mod upstream;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use self::health::HealthCheck;
use self::pool::{ClientSettings, HealthRules, Pool};
use self::upstream::Upstream;
use crate::http::HeaderValue;
use crate::{Handler, HandlerFuture, Request, Response};

pub use self::pool::Balance;
pub use self::report::{ProxyFailure, ProxyReport};
pub use self::upstream::UpstreamError;

/// Which `Host` header the upstream gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostHeader {
    /// The one the client sent (for HTTP/2, its `:authority`): what most
    /// applications behind a proxy expect.
    #[default]
    Pass,
    /// The upstream's own `host:port` (`localhost` for a Unix socket), as nginx's
    /// `proxy_pass` sends by default.
    Upstream,
    /// This value.
    Fixed(HeaderValue),
}

/// A reverse proxy: the Content handler of a directory that forwards each request —
/// method, path, query, headers and the body as it streams in — to one of its
/// upstreams over pooled keep-alive connections, and streams the upstream's answer
/// back.
///
/// - The path goes on unchanged, as nginx's `proxy_pass` without a URI does, or
///   relative to the directory with [`Proxy::strip_prefix`].
/// - Hop-by-hop headers are removed both ways; `X-Forwarded-For`, `-Proto`, `-Host`
///   and `Via` are added, and `Forwarded` (RFC 7239) with [`Proxy::forwarded`].
/// - Refused or broken upstreams answer `502`, slow ones `504`, with a plain text
///   body and a log line naming the upstream. A [`ProxyReport`] in the request's
///   extensions tells Error and Post handlers what happened.
/// - An idempotent request whose upstream could not be reached goes to the next
///   upstream; a request is never sent again once any of its body went out.
/// - The request body streams up while the answer is awaited and read: when the
///   upstream answers before the upload ended (an early `413` or `401`), the rest
///   of the upload is not sent and that upstream connection is closed, as nginx
///   does.
/// - An answer declaring at most 64 KiB is taken whole before it is passed on (it
///   is written with the head); a larger or unsized one streams.
/// - Protocol switches (WebSocket) are tunnelled both ways; a WebSocket over HTTP/2
///   (extended CONNECT) reaches an HTTP/1.1 upstream as an `Upgrade`.
///
/// ```
/// use std::time::Duration;
///
/// use poco_httpd::Server;
/// use poco_httpd::handlers::{Balance, Proxy};
///
/// # fn main() -> Result<(), poco_httpd::handlers::UpstreamError> {
/// let app = Proxy::new(["127.0.0.1:3000", "unix:/run/app.sock"])?
///     .balance(Balance::LeastConnections)
///     .strip_prefix("/app")
///     .connect_timeout(Duration::from_secs(2));
/// let builder = Server::builder()
///     .content("/app", app.clone())
///     .content("/app/", app);
/// # drop(builder);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Proxy {
    settings: Arc<Settings>,
    pool: Arc<Pool>,
    health_started: Arc<AtomicBool>,
}

/// Everything a [`Proxy`] is configured with.
#[derive(Debug, Clone)]
struct Settings {
    upstreams: Vec<Upstream>,
    balance: Balance,
    health: HealthRules,
    client: ClientSettings,
    check: Option<HealthCheck>,
    strip_prefix: Option<String>,
    host: HostHeader,
    forwarded: bool,
    head_timeout: Duration,
    idle_timeout: Duration,
}

impl Proxy {
    /// A proxy to `upstreams`: each `host:port` (`"127.0.0.1:3000"`,
    /// `"[::1]:3000"`, `"app.internal:8080"`) or `unix:/absolute/path`.
    ///
    /// Defaults: round robin; connect timeout 5 s, head timeout 60 s, idle timeout
    /// 60 s; an upstream failing 3 times in a row is left out for 10 s; upstream
    /// HTTP/1.1; `Host` passed on.
    ///
    /// # Errors
    /// [`UpstreamError`] for an empty list or an address that does not parse.
    pub fn new<I>(upstreams: I) -> Result<Self, UpstreamError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let upstreams = upstreams
            .into_iter()
            .map(|text| Upstream::parse(text.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if upstreams.is_empty() {
            return Err(UpstreamError::NoUpstream);
        }
        let settings = Settings {
            upstreams,
            balance: Balance::default(),
            health: HealthRules {
                max_fails: 3,
                fail_timeout: Duration::from_secs(10),
            },
            client: ClientSettings {
                connect_timeout: Duration::from_secs(5),
                http2: false,
                pool_idle_timeout: Duration::from_secs(30),
            },
            check: None,
            strip_prefix: None,
            host: HostHeader::Pass,
            forwarded: false,
            head_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
        };
        Ok(Self::build(settings))
    }

    fn build(settings: Settings) -> Self {
        let pool = Pool::new(
            &settings.upstreams,
            settings.balance,
            settings.health,
            &settings.client,
        );
        Self {
            settings: Arc::new(settings),
            pool: Arc::new(pool),
            health_started: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A new proxy with `change` applied to the settings (and new, empty pools:
    /// builder methods are for before the proxy serves).
    fn with(self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings::clone(&self.settings);
        change(&mut settings);
        Self::build(settings)
    }

    /// How requests are spread over the upstreams (default round robin).
    #[must_use]
    pub fn balance(self, balance: Balance) -> Self {
        self.with(|s| s.balance = balance)
    }

    /// Sends the path relative to `prefix`, the directory the proxy is mounted at:
    /// with `"/app"`, `/app/users?x=1` goes upstream as `/users?x=1` and `/app` as
    /// `/`. By default the path goes on unchanged.
    #[must_use]
    pub fn strip_prefix(self, prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/').to_owned();
        self.with(|s| s.strip_prefix = (!prefix.is_empty()).then_some(prefix))
    }

    /// Which `Host` header the upstream gets (default: the client's).
    #[must_use]
    pub fn host_header(self, host: HostHeader) -> Self {
        self.with(|s| s.host = host)
    }

    /// Also adds an RFC 7239 `Forwarded` header (`for=…;proto=…;host=…`), after
    /// any the request carried.
    #[must_use]
    pub fn forwarded(self, on: bool) -> Self {
        self.with(|s| s.forwarded = on)
    }

    /// How long opening a connection to an upstream may take (default 5 s); past
    /// it the client gets `504`, or an idempotent request goes to the next upstream.
    #[must_use]
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.with(|s| s.client.connect_timeout = timeout)
    }

    /// How long the upstream may take to send its response head once the request
    /// was sent (default 60 s); past it the client gets `504`.
    #[must_use]
    pub fn head_timeout(self, timeout: Duration) -> Self {
        self.with(|s| s.head_timeout = timeout)
    }

    /// How long the upstream may keep the next block waiting — of its response
    /// body, or taking the request body (default 60 s). A response cut this way
    /// ends the client's connection, as the answer is incomplete.
    #[must_use]
    pub fn idle_timeout(self, timeout: Duration) -> Self {
        self.with(|s| s.idle_timeout = timeout)
    }

    /// Passive health: an upstream that fails `max_fails` times in a row (cannot
    /// be reached, times out, breaks off before answering) is left out for
    /// `fail_timeout` (defaults 3 and 10 s). A lone upstream is never left out.
    #[must_use]
    pub fn passive_health(self, max_fails: u32, fail_timeout: Duration) -> Self {
        self.with(|s| {
            s.health = HealthRules {
                max_fails: max_fails.max(1),
                fail_timeout,
            }
        })
    }

    /// Active health checks: every `interval`, each upstream is asked for `path`
    /// (`GET`); one that does not answer `2xx` or `3xx` within the connect and head
    /// timeouts is left out until it does. The checks start with the first request.
    ///
    /// # Errors
    /// [`UpstreamError::BadHealthPath`] when `path` does not start with `/`.
    pub fn health_check(self, path: &str, interval: Duration) -> Result<Self, UpstreamError> {
        if !path.starts_with('/') {
            return Err(UpstreamError::BadHealthPath(path.to_owned()));
        }
        Ok(self.with(|s| {
            s.check = Some(HealthCheck {
                path: path.to_owned(),
                interval,
            });
        }))
    }

    /// Speaks HTTP/2 to the upstreams (prior knowledge, h2c) instead of HTTP/1.1.
    /// Protocol switches (WebSocket) then cannot be forwarded.
    #[must_use]
    pub fn http2(self, on: bool) -> Self {
        self.with(|s| s.client.http2 = on)
    }

    /// How long an idle keep-alive connection to an upstream is kept (default 30 s).
    /// At most 256 are kept per HTTP/1.1 upstream, the most recently used taken
    /// first; one the upstream closed meanwhile is noticed and left.
    #[must_use]
    pub fn pool_idle_timeout(self, timeout: Duration) -> Self {
        self.with(|s| s.client.pool_idle_timeout = timeout)
    }

    /// Starts the health checks once, on the runtime serving the first request.
    fn start_health_checks(&self) {
        let Some(check) = &self.settings.check else {
            return;
        };
        if !self.health_started.swap(true, Ordering::Relaxed) {
            let timeout = self.settings.client.connect_timeout + self.settings.head_timeout;
            health::spawn(Arc::downgrade(&self.pool), check.clone(), timeout);
        }
    }
}

impl Handler for Proxy {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        self.start_health_checks();
        let proxy = self.clone();
        HandlerFuture::new(async move { forward::forward(&proxy, &request, &response).await })
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
