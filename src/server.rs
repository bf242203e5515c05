//! The server: [`ServerBuilder`] collects handlers and settings — with its virtual
//! hosts, each described by a builder of its own — [`Server`] is the validated
//! result, [`BoundServer`] owns the listening sockets and runs one accept loop over
//! all of them until shut down. Every listener serves the same sites, with one set
//! of connection slots, statistics and one shutdown.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use http::header::{HeaderName, SERVER};
use http::{HeaderMap, HeaderValue};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use arc_swap::ArcSwap;

use crate::connection::ConnectionInfo;
use crate::handler::{Handler, SharedHandler};
use crate::host_pattern::{HostPattern, HostTable};
use crate::https_redirect::HttpsRedirect;
use crate::limits::Limits;
use crate::listener::{BoundListener, BoundSocket, Listener};
use crate::map::DirectoryMap;
use crate::path::is_normalized;
use crate::reload::ReloadHandle;
use crate::serve;
use crate::shared::Shared;
use crate::site::{Site, Sites};
use crate::sni::SniResolver;
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
    /// Empty until set: a reload compares only listeners it was given.
    listeners: Vec<Listener>,
    /// Host names and the builder describing their site.
    virtual_hosts: Vec<(Vec<String>, ServerBuilder)>,
    hostname: Option<String>,
    header_changes: Vec<HeaderChange>,
    trans: Vec<SharedHandler>,
    stream: Option<SharedHandler>,
    registrations: Vec<(String, Phase, SharedHandler)>,
    max_body_size: usize,
    stream_buffer: usize,
    pub(crate) limits: Limits,
    pub(crate) tls: Option<TlsSource>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            listeners: Vec::new(),
            virtual_hosts: Vec::new(),
            hostname: None,
            header_changes: Vec::new(),
            trans: Vec::new(),
            stream: None,
            registrations: Vec::new(),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            stream_buffer: DEFAULT_STREAM_BUFFER,
            limits: Limits::default(),
            tls: None,
        }
    }
}

impl ServerBuilder {
    /// Adds a listener on `addr`: `host:port` (`127.0.0.1:8000`, `[::1]:8000`), or a
    /// port alone (`8000`, `:8000`) for every interface; port 0 picks a free port
    /// (read it back with [`BoundServer::local_addr`]). Each call adds one: a server
    /// may listen on IPv4 and IPv6, plain and TLS at once (see [`Listener`] for more
    /// choices). Default, when none is given: `127.0.0.1:8000`. A running server
    /// cannot move: [`ReloadHandle::reload`] refuses a builder naming other listeners.
    pub fn listen(self, addr: impl Into<String>) -> Self {
        self.listener(Listener::new(addr))
    }

    /// Adds a listener: an address or a socket given ready, plain or TLS, or one that
    /// redirects every request to HTTPS.
    pub fn listener(mut self, listener: Listener) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Serves the requests for `hosts` with the site `site` describes: its handlers,
    /// default headers, `hostname`, `max_body_size`, `stream_buffer` and TLS
    /// certificate, which handshakes asking for one of `hosts` (SNI) get. A host is
    /// an exact name (`example.org`) or every name below one (`*.example.org`, which
    /// does not cover `example.org` itself); the request's host (from `Host` or the
    /// URI, port left out) is compared without regard to case, an exact name winning
    /// over a wildcard. Requests for any other host, or none, go to the site this
    /// builder describes itself (the default site), and so do handshakes.
    ///
    /// `site` describes a site only: listeners, limits and virtual hosts are the
    /// server's, and `build` refuses a `site` that sets them. What `site` does not set
    /// takes its default, not this builder's value (say, `max_body_size`).
    ///
    /// ```
    /// use poco_httpd::Server;
    ///
    /// let server = Server::builder()
    ///     .content("/", "the default site\n")
    ///     .virtual_host(
    ///         ["example.org", "*.example.org"],
    ///         Server::builder().header("X-Site", "example").content("/", "example\n"),
    ///     )
    ///     .build();
    /// assert!(server.is_ok());
    /// ```
    pub fn virtual_host<I>(mut self, hosts: I, site: ServerBuilder) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let hosts = hosts.into_iter().map(Into::into).collect();
        self.virtual_hosts.push((hosts, site));
        self
    }

    /// The host name [`Request::host`](crate::Request::host) and
    /// [`Request::url`](crate::Request::url) report for a request that names none
    /// (an HTTP/1.0 request without `Host`). It does not choose a site: virtual hosts
    /// are chosen by [`virtual_host`](Self::virtual_host)'s names. Default: the
    /// address the connection was accepted on.
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
    /// [`Error::DuplicateHandler`], [`Error::PhaseNotByPath`],
    /// [`Error::InvalidHeader`], [`Error::InvalidListener`],
    /// [`Error::InvalidVirtualHost`] (for the server or any virtual host), and
    /// [`Error::Tls`] for certificate files that cannot be used.
    pub fn build(self) -> Result<Server, Error> {
        let https_port = Arc::new(AtomicU16::new(0));
        let mut parts = self.into_parts(&https_port)?;
        if parts.listeners.is_empty() {
            let listener = Listener::new(DEFAULT_LISTEN);
            let tls = listener.speaks_tls(parts.transport.tls.is_some())?;
            parts.listeners.push((listener, tls));
        }
        let shared = Shared {
            site: ArcSwap::from_pointee(parts.sites),
            connection_slots: ConnectionSlots::new(parts.transport.limits.max_connections),
            per_ip: Arc::default(),
            transport: ArcSwap::from_pointee(parts.transport),
            listen: parts
                .listeners
                .iter()
                .map(|(listener, _)| listener.describe())
                .collect(),
            https_port,
            next_connection_id: Default::default(),
            stats: Stats::default(),
            tasks: TaskTracker::new(),
            cut: CancellationToken::new(),
            draining: CancellationToken::new(),
        };
        Ok(Server {
            shared: Arc::new(shared),
            listeners: parts.listeners,
        })
    }

    /// Checks the settings: the [`Sites`], the connections' [`Transport`], the
    /// listeners. TLS files are read here. `https_port` is where the redirecting
    /// listeners send clients, once the server is bound.
    pub(crate) fn into_parts(self, https_port: &Arc<AtomicU16>) -> Result<BuiltParts, Error> {
        let listen = (!self.listeners.is_empty())
            .then(|| self.listeners.iter().map(Listener::describe).collect());
        let default_tls = self.tls.as_ref().map(TlsSource::config).transpose()?;
        let mut by_host = HostTable::default();
        let mut certificates = HostTable::default();
        for (hosts, site) in self.virtual_hosts {
            let (site, tls) = site.into_virtual_host(&hosts)?;
            let site = Arc::new(site);
            for host in &hosts {
                let invalid = |reason: String| Error::InvalidVirtualHost {
                    hosts: hosts.join(", "),
                    reason,
                };
                let pattern = HostPattern::parse(host)
                    .map_err(|reason| invalid(format!("{host:?}: {reason}")))?;
                if by_host.insert(pattern.clone(), Arc::clone(&site)).is_err() {
                    return Err(invalid(format!(
                        "{host:?} is named by another virtual host"
                    )));
                }
                if let Some(tls) = &tls {
                    let _ = certificates.insert(pattern, Arc::clone(tls));
                }
            }
        }
        let tls = SniResolver::config(default_tls, certificates);
        let mut listeners = Vec::with_capacity(self.listeners.len());
        for listener in self.listeners {
            let speaks_tls = listener.speaks_tls(tls.is_some())?;
            listeners.push((listener, speaks_tls));
        }
        let default = site_of(
            self.registrations,
            self.trans,
            self.stream,
            self.header_changes,
            SiteSettings {
                hostname: self.hostname,
                max_body_size: self.max_body_size,
                stream_buffer: self.stream_buffer,
            },
        )?;
        let https_redirect = listeners
            .iter()
            .any(|(listener, _)| listener.redirects())
            .then(|| redirect_site(&default, https_port));
        let sites = Sites {
            default: Arc::new(default),
            by_host,
            https_redirect,
        };
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        Ok(BuiltParts {
            sites,
            listen,
            listeners,
            transport: Transport::new(self.limits, acceptor),
        })
    }

    /// The site a virtual host's builder describes, and its TLS config if any.
    fn into_virtual_host(
        self,
        hosts: &[String],
    ) -> Result<(Site, Option<Arc<ServerConfig>>), Error> {
        let invalid = |reason: &str| Error::InvalidVirtualHost {
            hosts: hosts.join(", "),
            reason: reason.to_owned(),
        };
        if hosts.is_empty() {
            return Err(invalid("it names no host"));
        }
        if !self.listeners.is_empty() {
            return Err(invalid(
                "its builder sets listeners; they are the server's: give them to the outer builder",
            ));
        }
        if !self.virtual_hosts.is_empty() {
            return Err(invalid(
                "its builder has virtual hosts of its own; give them all to the outer builder",
            ));
        }
        if self.limits != Limits::default() {
            return Err(invalid(
                "its builder sets limits; they are the server's: set them on the outer builder",
            ));
        }
        let tls = self.tls.as_ref().map(TlsSource::config).transpose()?;
        let site = site_of(
            self.registrations,
            self.trans,
            self.stream,
            self.header_changes,
            SiteSettings {
                hostname: self.hostname,
                max_body_size: self.max_body_size,
                stream_buffer: self.stream_buffer,
            },
        )?;
        Ok((site, tls))
    }
}

/// A site's settings beside its handlers.
struct SiteSettings {
    hostname: Option<String>,
    max_body_size: usize,
    stream_buffer: usize,
}

/// The site of one builder's handlers and settings.
fn site_of(
    registrations: Vec<(String, Phase, SharedHandler)>,
    trans: Vec<SharedHandler>,
    stream: Option<SharedHandler>,
    header_changes: Vec<HeaderChange>,
    settings: SiteSettings,
) -> Result<Site, Error> {
    Ok(Site {
        map: build_map(registrations)?,
        trans,
        stream,
        default_headers: build_headers(header_changes)?,
        hostname: settings.hostname,
        max_body_size: settings.max_body_size,
        stream_buffer: settings.stream_buffer,
    })
}

/// The site of the listeners that redirect to HTTPS: the redirect at `/`, with the
/// default site's headers.
fn redirect_site(default: &Site, https_port: &Arc<AtomicU16>) -> Arc<Site> {
    let mut map = DirectoryMap::default();
    let redirect = HttpsRedirect {
        port: Arc::clone(https_port),
    };
    map.entry("/").content = Some(SharedHandler::new(redirect));
    Arc::new(Site {
        map,
        trans: Vec::new(),
        stream: None,
        default_headers: default.default_headers.clone(),
        hostname: default.hostname.clone(),
        max_body_size: default.max_body_size,
        stream_buffer: default.stream_buffer,
    })
}

/// A checked [`ServerBuilder`], taken apart.
pub(crate) struct BuiltParts {
    pub(crate) sites: Sites,
    /// The listeners as a reload compares them, if the builder named any.
    pub(crate) listen: Option<Vec<String>>,
    /// Each listener and whether it speaks TLS.
    pub(crate) listeners: Vec<(Listener, bool)>,
    pub(crate) transport: Transport,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("listeners", &self.listeners)
            .field("hostname", &self.hostname)
            .field("handlers", &(self.trans.len() + self.registrations.len()))
            .field("virtual_hosts", &self.virtual_hosts.len())
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
    /// Each listener and whether it speaks TLS.
    listeners: Vec<(Listener, bool)>,
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

    /// Opens the listening sockets, in the order they were given.
    ///
    /// # Errors
    /// [`Error::Resolve`] or [`Error::Listen`] (say, a port is taken), naming the
    /// listener; those opened before it are closed again.
    pub async fn bind(self) -> Result<BoundServer, Error> {
        let mut sockets = Vec::with_capacity(self.listeners.len());
        for (listener, tls) in self.listeners {
            sockets.push(listener.bind(tls).await?);
        }
        if let Some(tls) = sockets.iter().find(|socket| socket.info.is_tls()) {
            let port = tls.info.local_addr().port();
            self.shared.https_port.store(port, Ordering::Relaxed);
        }
        Ok(BoundServer {
            sockets,
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

/// A server with its listening sockets open.
#[derive(Debug)]
pub struct BoundServer {
    sockets: Vec<BoundSocket>,
    shared: Arc<Shared>,
}

impl BoundServer {
    /// The address of the first listener, with the port the system chose for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.sockets
            .first()
            .map(|socket| socket.info.local_addr())
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Every listener, in the order given: its address, and whether it speaks TLS or
    /// redirects to HTTPS.
    pub fn listeners(&self) -> Vec<BoundListener> {
        self.sockets.iter().map(|socket| socket.info).collect()
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
        let Self { sockets, shared } = self;
        for socket in &sockets {
            let local_addr = socket.info.local_addr();
            tracing::info!(%local_addr, tls = socket.info.is_tls(), "listening");
        }
        accept_loop(&sockets, &shared).await;
        drop(sockets);
        let deadline = shared.transport.load().limits.shutdown_deadline;
        drain(&shared, deadline).await;
    }
}

/// Accepts connections on every listener and spawns their tasks, until shutdown. One
/// loop for all of them, so one free connection slot waits for whichever listener
/// gets the next client.
async fn accept_loop(sockets: &[BoundSocket], shared: &Arc<Shared>) {
    let draining = shared.draining.clone();
    let mut backoff = AcceptBackoff::default();
    let mut turn = 0;
    loop {
        let Some(slot) = connection_slot(shared, &draining).await else {
            break;
        };
        let (accepted, listener) = tokio::select! {
            biased;
            () = draining.cancelled() => break,
            accepted = std::future::poll_fn(|cx| poll_accept_any(sockets, &mut turn, cx)) => accepted,
        };
        match accepted {
            Ok((stream, remote_addr)) => {
                backoff.succeeded();
                // Responses are written whole; waiting to coalesce them only adds latency.
                let _ = stream.set_nodelay(true);
                let id = shared.next_connection_id.fetch_add(1, Ordering::Relaxed) + 1;
                let local_addr = stream.local_addr().unwrap_or(listener.local_addr());
                let connection = ConnectionInfo {
                    id,
                    remote_addr,
                    client_addr: remote_addr,
                    local_addr,
                    tls: None,
                    transport: shared.transport.load_full(),
                };
                let serve = serve::accept(
                    Arc::clone(shared),
                    stream,
                    connection,
                    listener,
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
}

/// The next connection on any of `sockets`, asking them in turn from `turn` on, so
/// a busy listener cannot starve the others.
fn poll_accept_any(
    sockets: &[BoundSocket],
    turn: &mut usize,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<(std::io::Result<(TcpStream, SocketAddr)>, BoundListener)> {
    for offset in 0..sockets.len() {
        let socket = &sockets[(*turn + offset) % sockets.len()];
        if let std::task::Poll::Ready(accepted) = socket.listener.poll_accept(cx) {
            *turn = turn.wrapping_add(offset + 1);
            return std::task::Poll::Ready((accepted, socket.info));
        }
    }
    std::task::Poll::Pending
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
