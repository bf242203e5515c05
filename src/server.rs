//! The server: [`ServerBuilder`] collects handlers and settings, [`Server`] is the
//! validated result, [`BoundServer`] owns the listening socket and runs the accept
//! loop until shut down.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, SERVER};
use http::{HeaderMap, HeaderValue};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use arc_swap::ArcSwap;

use crate::connection::ConnectionInfo;
use crate::handler::{Handler, SharedHandler};
use crate::limits::Limits;
use crate::map::DirectoryMap;
use crate::path::is_normalized;
use crate::reload::ReloadHandle;
use crate::serve;
use crate::shared::Shared;
use crate::site::Site;
use crate::tls::TlsSource;
use crate::transport::{ConnectionSlot, ConnectionSlots, Transport};
use crate::{Error, Phase, ShutdownHandle, Stats};

/// The `Server` header sent unless configured otherwise.
const DEFAULT_SERVER_HEADER: &str = concat!("poco-httpd/", env!("CARGO_PKG_VERSION"));
const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
const DEFAULT_MAX_BODY_SIZE: usize = 2 * 1024 * 1024;
const DEFAULT_STREAM_BUFFER: usize = 64 * 1024;

/// A change to the default headers, applied in order at build time.
#[derive(Debug)]
enum HeaderChange {
    Set(String, String),
    Remove(String),
}

/// Collects a server's settings and handlers; [`ServerBuilder::build`] checks them.
///
/// ```no_run
/// use poco_httpd::{Outcome, Request, Response, Server};
///
/// # async fn demo() -> Result<(), poco_httpd::Error> {
/// Server::builder()
///     .listen("127.0.0.1:8000")
///     .header("Server", "My Server")
///     .content("/", |req: Request, res: Response| {
///         res.set_body(format!("Hi, you fetched {}", req.uri()));
///         Outcome::Ok
///     })
///     .build()?
///     .run()
///     .await
/// # }
/// ```
pub struct ServerBuilder {
    /// `None` until set: a reload compares only an address it was given.
    listen: Option<String>,
    hostname: Option<String>,
    header_changes: Vec<HeaderChange>,
    trans: Vec<SharedHandler>,
    stream: Option<SharedHandler>,
    registrations: Vec<(String, Phase, SharedHandler)>,
    max_body_size: usize,
    stream_buffer: usize,
    pub(crate) limits: Limits,
    pub(crate) tls: Option<TlsSource>,
    proxy_protocol: bool,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            listen: None,
            hostname: None,
            header_changes: Vec::new(),
            trans: Vec::new(),
            stream: None,
            registrations: Vec::new(),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            stream_buffer: DEFAULT_STREAM_BUFFER,
            limits: Limits::default(),
            tls: None,
            proxy_protocol: false,
        }
    }
}

impl ServerBuilder {
    /// The address to listen on, `host:port`; port 0 picks a free port (read it back
    /// with [`BoundServer::local_addr`]). Default: `127.0.0.1:8000`. A running server
    /// cannot move: [`ReloadHandle::reload`] refuses a builder naming another address.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some(addr.into());
        self
    }

    /// Expect every connection to start with a PROXY protocol header (v1 text or v2
    /// binary, as HAProxy, AWS and Google load balancers send it) and take the client's
    /// address from it: [`Connection::client_addr`](crate::Connection::client_addr),
    /// which access logs, access control and rate limits use. A connection that does
    /// not start with a valid header within the header read timeout is closed, so
    /// only turn this on behind a balancer that sends one. The header comes before
    /// the TLS handshake. Default: off. A reload may change it, for connections
    /// accepted after it.
    pub fn proxy_protocol(mut self, on: bool) -> Self {
        self.proxy_protocol = on;
        self
    }

    /// The host name used in [`Request::url`](crate::Request::url) when a request
    /// names none. Default: the address the connection was accepted on.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Sets a default header, added to every response that does not set it itself.
    /// `Server: poco-httpd/<version>` is there unless replaced or removed.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.header_changes
            .push(HeaderChange::Set(name.into(), value.into()));
        self
    }

    /// Removes a default header, e.g. `Server`, so it is not sent at all (the config
    /// file's `[headers] Name = ""`); `header(name, "")` would send it empty instead.
    pub fn remove_header(mut self, name: impl Into<String>) -> Self {
        self.header_changes.push(HeaderChange::Remove(name.into()));
        self
    }

    /// Appends a Trans handler. Trans handlers run in order before the path is mapped
    /// and may rewrite the URI with [`Request::set_uri`](crate::Request::set_uri).
    pub fn trans(mut self, handler: impl Handler) -> Self {
        self.trans.push(SharedHandler::new(handler));
        self
    }

    /// Appends a Pre handler for `path` (a directory such as `/foo/`, or a file such as
    /// `/foo/bar.html`). Every Pre handler on a request's path runs, shallowest path
    /// first, in registration order within a path.
    pub fn pre(self, path: &str, handler: impl Handler) -> Self {
        self.handler(Phase::Pre, path, handler)
    }

    /// Sets the Content handler of `path`; a request runs the deepest one on its path.
    /// A path takes one Content handler: registering a second is refused by `build`.
    pub fn content(self, path: &str, handler: impl Handler) -> Self {
        self.handler(Phase::Content, path, handler)
    }

    /// Sets the Content handler of `/`, which answers every path without a deeper one.
    pub fn default_content(self, handler: impl Handler) -> Self {
        self.content("/", handler)
    }

    /// Appends a Post handler for `path`, run after the response has been flushed to
    /// the socket, in the same order as Pre handlers.
    pub fn post(self, path: &str, handler: impl Handler) -> Self {
        self.handler(Phase::Post, path, handler)
    }

    /// Sets the Error handler of `path`, run (the deepest one) when the socket fails
    /// during a request on that path. One per path.
    pub fn error(self, path: &str, handler: impl Handler) -> Self {
        self.handler(Phase::Error, path, handler)
    }

    /// Sets the global Stream handler, called when a streaming response starts and
    /// again each time one of its blocks has been flushed, until it is closed. Paths
    /// with their own ([`ServerBuilder::stream_at`]) use theirs instead.
    pub fn stream(mut self, handler: impl Handler) -> Self {
        self.stream = Some(SharedHandler::new(handler));
        self
    }

    /// Sets the Stream handler of `path`; the deepest one on a request's path wins over
    /// the global one. One per path.
    pub fn stream_at(self, path: &str, handler: impl Handler) -> Self {
        self.handler(Phase::Stream, path, handler)
    }

    /// The most bytes a streaming response may have queued but not yet taken by the
    /// connection; [`Response::send`](crate::Response::send) refuses more and
    /// [`Response::write`](crate::Response::write) waits. Default: 64 KiB.
    pub fn stream_buffer(mut self, bytes: usize) -> Self {
        self.stream_buffer = bytes;
        self
    }

    /// The largest request body accepted: a request declaring a longer
    /// `Content-Length` is answered `413 Payload Too Large` before any handler runs,
    /// and [`Request::body`](crate::Request::body) and
    /// [`Request::body_chunk`](crate::Request::body_chunk) refuse to read past it.
    /// Default: 2 MiB.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// Registers a handler of `phase` for `path` (a directory such as `/foo/`, or a
    /// file such as `/foo/bar.html`): what [`pre`](Self::pre),
    /// [`content`](Self::content), [`post`](Self::post), [`error`](Self::error) and
    /// [`stream_at`](Self::stream_at) do, for code that chooses the phase at run time.
    ///
    /// Trans handlers are a global list ([`trans`](Self::trans)) and the Send phase is
    /// built in ([`Request::before_send`](crate::Request::before_send) adds to it), so
    /// `build` refuses [`Phase::Trans`] and [`Phase::Send`] here with
    /// [`Error::PhaseNotByPath`].
    ///
    /// ```
    /// use poco_httpd::{Outcome, Phase, Request, Response, Server};
    ///
    /// let audit = |req: Request, _res: Response| {
    ///     println!("{}", req.path());
    ///     Outcome::Ok
    /// };
    /// let server = Server::builder()
    ///     .content("/", "hello\n")
    ///     .handler(Phase::Post, "/admin/", audit)
    ///     .build();
    /// assert!(server.is_ok());
    /// ```
    pub fn handler(mut self, phase: Phase, path: &str, handler: impl Handler) -> Self {
        self.registrations
            .push((path.to_owned(), phase, SharedHandler::new(handler)));
        self
    }

    /// Checks the settings and builds the directory map.
    ///
    /// # Errors
    /// [`Error::NoContentHandler`], [`Error::InvalidPath`] (a path must start with `/`
    /// and be in normal form: no `.`/`..` segments, no `//`, no `%` escapes),
    /// [`Error::DuplicateHandler`], [`Error::PhaseNotByPath`] and
    /// [`Error::InvalidHeader`].
    pub fn build(self) -> Result<Server, Error> {
        let parts = self.into_parts()?;
        let listen = parts.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let shared = Shared {
            site: ArcSwap::from_pointee(parts.site),
            connection_slots: ConnectionSlots::new(parts.transport.limits.max_connections),
            per_ip: Arc::default(),
            transport: ArcSwap::from_pointee(parts.transport),
            listen: listen.clone(),
            stats: Stats::default(),
            tasks: TaskTracker::new(),
            cut: CancellationToken::new(),
            draining: CancellationToken::new(),
        };
        Ok(Server {
            shared: Arc::new(shared),
            listen,
        })
    }

    /// Checks the settings: the handlers' [`Site`], the connections' [`Transport`], the
    /// address. TLS files are read here.
    pub(crate) fn into_parts(self) -> Result<BuiltParts, Error> {
        let site = Site {
            map: build_map(self.registrations)?,
            trans: self.trans,
            stream: self.stream,
            default_headers: build_headers(self.header_changes)?,
            hostname: self.hostname,
            max_body_size: self.max_body_size,
            stream_buffer: self.stream_buffer,
        };
        let tls = self.tls.as_ref().map(TlsSource::acceptor).transpose()?;
        Ok(BuiltParts {
            site,
            listen: self.listen,
            transport: Transport::new(self.limits, tls, self.proxy_protocol),
        })
    }
}

/// A checked [`ServerBuilder`], taken apart.
pub(crate) struct BuiltParts {
    pub(crate) site: Site,
    pub(crate) listen: Option<String>,
    pub(crate) transport: Transport,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("listen", &self.listen)
            .field("hostname", &self.hostname)
            .field("handlers", &(self.trans.len() + self.registrations.len()))
            .finish_non_exhaustive()
    }
}

fn build_map(registrations: Vec<(String, Phase, SharedHandler)>) -> Result<DirectoryMap, Error> {
    let mut map = DirectoryMap::default();
    for (path, phase, handler) in registrations {
        if !path.starts_with('/') {
            return Err(Error::InvalidPath {
                path,
                reason: "it must start with '/'",
            });
        }
        if !is_normalized(&path) {
            let reason =
                "it must be in normal form (no '.' or '..' segments, no '//', no '%' escapes)";
            return Err(Error::InvalidPath { path, reason });
        }
        let entry = map.entry(&path);
        let single = match phase {
            Phase::Pre => {
                entry.pre.push(handler);
                continue;
            }
            Phase::Post => {
                entry.post.push(handler);
                continue;
            }
            Phase::Content => &mut entry.content,
            Phase::Error => &mut entry.error,
            Phase::Stream => &mut entry.stream,
            Phase::Trans | Phase::Send => return Err(Error::PhaseNotByPath { phase, path }),
        };
        if single.replace(handler).is_some() {
            return Err(Error::DuplicateHandler { phase, path });
        }
    }
    if !map.has_any_content() {
        return Err(Error::NoContentHandler);
    }
    Ok(map)
}

fn build_headers(changes: Vec<HeaderChange>) -> Result<HeaderMap, Error> {
    let mut headers = HeaderMap::new();
    headers.insert(SERVER, HeaderValue::from_static(DEFAULT_SERVER_HEADER));
    for change in changes {
        match change {
            HeaderChange::Set(name, value) => {
                let invalid = |reason: String| Error::InvalidHeader {
                    name: name.clone(),
                    reason,
                };
                let header = HeaderName::try_from(name.as_str())
                    .map_err(|e| invalid(format!("bad name: {e}")))?;
                let value = HeaderValue::try_from(value.as_str()).map_err(|e| {
                    invalid(format!("bad value (no control characters allowed): {e}"))
                })?;
                headers.insert(header, value);
            }
            HeaderChange::Remove(name) => {
                headers.remove(name.as_str());
            }
        }
    }
    Ok(headers)
}

/// A built server, not yet listening.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    listen: String,
}

impl Server {
    /// Starts describing a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// A handle that replaces this server's handlers while it runs.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A handle that shuts this server down, usable before it even listens.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            draining: self.shared.draining.clone(),
        }
    }

    /// Opens the listening socket.
    ///
    /// # Errors
    /// [`Error::Resolve`] or [`Error::Listen`] (say, the port is taken).
    pub async fn bind(self) -> Result<BoundServer, Error> {
        let listen_error = |source| Error::Listen {
            addr: self.listen.clone(),
            source,
        };
        let addrs = tokio::net::lookup_host(self.listen.as_str())
            .await
            .map_err(|source| Error::Resolve {
                addr: self.listen.clone(),
                source,
            })?
            .collect::<Vec<_>>();
        let listener = TcpListener::bind(addrs.as_slice())
            .await
            .map_err(listen_error)?;
        let local_addr = listener.local_addr().map_err(listen_error)?;
        Ok(BoundServer {
            listener,
            local_addr,
            shared: self.shared,
        })
    }

    /// Binds, then serves until shut down; see [`BoundServer::run`].
    ///
    /// # Errors
    /// As [`Server::bind`].
    pub async fn run(self) -> Result<(), Error> {
        self.bind().await?.run().await;
        Ok(())
    }
}

/// A server with its listening socket open.
#[derive(Debug)]
pub struct BoundServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

impl BoundServer {
    /// The address actually bound, with the port the system chose for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that shuts this server down.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            draining: self.shared.draining.clone(),
        }
    }

    /// A handle that replaces this server's handlers while it runs.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The server's live figures.
    pub fn stats(&self) -> Stats {
        self.shared.stats.clone()
    }

    /// Runs until `signal` completes (or [`ShutdownHandle::shutdown`] is called), then
    /// shuts down as [`BoundServer::run`] does.
    ///
    /// ```no_run
    /// # async fn demo(server: poco_httpd::BoundServer) {
    /// server.run_until(tokio::signal::ctrl_c()).await;
    /// # }
    /// ```
    pub async fn run_until<F: Future>(self, signal: F) {
        let shutdown = self.shutdown_handle();
        let run = self.run();
        tokio::pin!(run);
        tokio::select! {
            () = &mut run => return,
            _ = signal => shutdown.shutdown(),
        }
        run.await;
    }

    /// Accepts and serves connections until [`ShutdownHandle::shutdown`] is called,
    /// then stops accepting at once, lets requests in flight (and their Post handlers)
    /// finish within the shutdown deadline, cuts what is left, and returns.
    pub async fn run(self) {
        let Self {
            listener,
            local_addr,
            shared,
        } = self;
        let draining = shared.draining.clone();
        tracing::info!(%local_addr, "listening");
        let mut next_id = 0;
        let mut backoff = AcceptBackoff::default();
        loop {
            let Some(slot) = connection_slot(&shared, &draining).await else {
                break;
            };
            let accepted = tokio::select! {
                biased;
                () = draining.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, remote_addr)) => {
                    backoff.succeeded();
                    // Responses are written whole; waiting to coalesce them only adds latency.
                    let _ = stream.set_nodelay(true);
                    next_id += 1;
                    let local_addr = stream.local_addr().unwrap_or(local_addr);
                    let info = ConnectionInfo {
                        id: next_id,
                        remote_addr,
                        client_addr: remote_addr,
                        local_addr,
                        tls: None,
                        transport: shared.transport.load_full(),
                    };
                    let serve = serve::accept(
                        Arc::clone(&shared),
                        stream,
                        info,
                        draining.clone(),
                        shared.cut.clone(),
                    );
                    shared.tasks.spawn(async move {
                        serve.await;
                        drop(slot);
                    });
                }
                Err(error) => {
                    drop(slot);
                    tokio::select! {
                        biased;
                        () = draining.cancelled() => break,
                        () = backoff.failed(&error) => {}
                    }
                }
            }
        }
        drop(listener);
        let deadline = shared.transport.load().limits.shutdown_deadline;
        drain(&shared, deadline).await;
    }
}

/// Waits for room under `max_connections`; `None` once shutdown began. While the
/// server is full it does not accept, so new clients wait in the listen backlog.
async fn connection_slot(shared: &Shared, draining: &CancellationToken) -> Option<ConnectionSlot> {
    let slots = &shared.connection_slots;
    if let Some(slot) = slots.try_acquire() {
        return Some(slot);
    }
    tracing::warn!(
        max_connections = slots.max(),
        "connection limit reached; new connections wait"
    );
    tokio::select! {
        biased;
        () = draining.cancelled() => None,
        slot = slots.acquire() => slot,
    }
}

/// Failed accepts in a row. Accept fails for a vanished client (harmless: retried at
/// once) or for lack of file descriptors (`EMFILE`, `ENFILE`) or memory, when
/// retrying at once would spin: then the loop pauses, 10 ms doubling up to 1 s, while
/// open connections go on being served and may close meanwhile. A burst is logged
/// when it starts and when it ends, not once per try.
#[derive(Debug, Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    const FIRST_PAUSE: Duration = Duration::from_millis(10);
    const LONGEST_PAUSE: Duration = Duration::from_secs(1);

    /// Accept failed with `error`: pauses unless retrying at once is fine.
    async fn failed(&mut self, error: &std::io::Error) {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
        if matches!(
            error.kind(),
            ConnectionAborted | ConnectionReset | Interrupted
        ) {
            return;
        }
        if self.failures == 0 {
            tracing::warn!(%error, "accepting connections failed; retrying with pauses");
        }
        let doublings = self.failures.min(7);
        self.failures = self.failures.saturating_add(1);
        let pause = Self::FIRST_PAUSE * (1 << doublings);
        tokio::time::sleep(pause.min(Self::LONGEST_PAUSE)).await;
    }

    /// Accept worked: a burst of failures, if any, is over.
    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "accepting connections again");
            self.failures = 0;
        }
    }
}

async fn drain(shared: &Shared, deadline: Duration) {
    shared.tasks.close();
    tracing::info!(in_flight = shared.tasks.len(), "shutting down");
    if tokio::time::timeout(deadline, shared.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            cut = shared.tasks.len(),
            "shutdown deadline passed; cutting what is still running"
        );
        shared.cut.cancel();
        shared.tasks.wait().await;
    }
    tracing::info!("shut down");
}
