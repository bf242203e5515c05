//! [`Request`]: the handle every handler gets to read (and, in the Trans phase,
//! rewrite) the request.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use cookie::Cookie;
use futures_util::StreamExt;
use http::header::{AsHeaderName, HOST, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Uri, Version};

use crate::connection::Connection;
use crate::exchange::{Added, Exchange};
use crate::failure::Failure;
use crate::handler::{Handler, SharedHandler};
use crate::header_tokens::lists_token;
use crate::post_hold::PostHold;
use crate::request_body::RequestBody;
use crate::response::header_pair;
use crate::upgrade::{Upgrade, UpgradeError};
use crate::{ShutdownHandle, Stats};

/// The request of one exchange, as every phase sees it.
///
/// A cheap handle: clones share the same request, so a handler may keep one, move it
/// to another task, and return [`Outcome::Wait`](crate::Outcome::Wait).
#[derive(Clone)]
pub struct Request {
    exchange: Arc<Exchange>,
}

impl Request {
    pub(crate) fn new(exchange: Arc<Exchange>) -> Self {
        Self { exchange }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.exchange.head().method
    }

    /// The HTTP version the client spoke.
    pub fn version(&self) -> Version {
        self.exchange.head().version
    }

    /// The request headers as they stand: as received, unless a Trans or Pre handler
    /// changed them (later edits do not change a map already borrowed).
    pub fn headers(&self) -> &HeaderMap {
        self.exchange.request_headers()
    }

    /// The first value of one request header, if present.
    pub fn header(&self, name: impl AsHeaderName) -> Option<&HeaderValue> {
        self.headers().get(name)
    }

    /// The first value of one request header as text, if present and made of visible
    /// ASCII (see [`HeaderValue::to_str`]).
    ///
    /// ```
    /// use poco_httpd::{Outcome, Request, Response};
    ///
    /// let greet = |req: Request, res: Response| {
    ///     let agent = req.header_text("user-agent").unwrap_or_default();
    ///     res.set_body(format!("hello, {agent}"));
    ///     Outcome::Ok
    /// };
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(greet);
    /// ```
    pub fn header_text(&self, name: impl AsHeaderName) -> Option<String> {
        let value = self.header(name)?;
        value.to_str().ok().map(str::to_owned)
    }

    /// Sets a request header, replacing any values it had, for the handlers that run
    /// after this one (the original module's `$request->header(Name => 'value')`).
    ///
    /// Setting `Connection: close` is how a handler ends a kept-alive connection after
    /// this response, as with the original module: the server then answers with
    /// `Connection: close` and closes the connection once the response is out (HTTP/1;
    /// HTTP/2 has no per-request connection header and ignores it).
    ///
    /// ```
    /// use poco_httpd::{Outcome, Request, Response};
    ///
    /// let last_one = |req: Request, _res: Response| {
    ///     req.set_header("connection", "close");
    ///     Outcome::Ok
    /// };
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(last_one);
    /// ```
    ///
    /// A name or value that is not valid in HTTP is a bug in the handler, answered as
    /// by [`Response::set_header`](crate::Response::set_header) (`500`, logged);
    /// [`Request::try_set_header`] returns the error instead.
    pub fn set_header<K, V>(&self, name: K, value: V)
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        let set = self.try_set_header(name, value);
        self.exchange.note_misuse(set, "Request::set_header");
    }

    /// Adds a request header value, keeping the values it already had; misuse is
    /// answered as by [`Request::set_header`].
    pub fn append_header<K, V>(&self, name: K, value: V)
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        let appended = self.try_append_header(name, value);
        self.exchange
            .note_misuse(appended, "Request::append_header");
    }

    /// Sets a request header, replacing any values it had.
    ///
    /// # Errors
    /// When the name or the value is not valid in HTTP, e.g. a value holding CR or LF;
    /// the headers are left unchanged.
    pub fn try_set_header<K, V>(&self, name: K, value: V) -> Result<(), http::Error>
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        let (name, value) = header_pair(name, value)?;
        self.exchange
            .edit_request_headers(|headers| headers.insert(name, value));
        Ok(())
    }

    /// Adds a request header value, keeping the values it already had.
    ///
    /// # Errors
    /// As [`Request::try_set_header`].
    pub fn try_append_header<K, V>(&self, name: K, value: V) -> Result<(), http::Error>
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        let (name, value) = header_pair(name, value)?;
        self.exchange
            .edit_request_headers(|headers| headers.append(name, value));
        Ok(())
    }

    /// Removes a request header, returning its first value if it had one.
    pub fn remove_header(&self, name: impl AsHeaderName) -> Option<HeaderValue> {
        self.exchange
            .edit_request_headers(|headers| headers.remove(name))
    }

    /// The URI as the client sent it, before any rewrite by a Trans handler. For
    /// HTTP/2, hyper joins the `:scheme`, `:authority` and `:path` the client sent into
    /// an absolute URI; its `path_and_query` is the `:path`.
    pub fn original_uri(&self) -> &Uri {
        &self.exchange.head().uri
    }

    /// The URI as it stands now: the one received, unless a Trans handler rewrote it.
    pub fn uri(&self) -> Uri {
        let rewritten = self.exchange.request_state().rewritten_uri.clone();
        rewritten.map_or_else(|| self.exchange.head().uri.clone(), |uri| *uri)
    }

    /// Rewrites the request URI. Meant for Trans handlers: the path of the rewritten URI
    /// is what the directory map resolves. Later rewrites change [`Request::uri`] but no
    /// longer the handlers that run.
    ///
    /// # Errors
    /// When `uri` does not parse as a URI.
    ///
    /// ```
    /// use poco_httpd::{Outcome, Request, Response};
    ///
    /// let old_to_new = |req: Request, _res: Response| {
    ///     if let Some(rest) = req.path().strip_prefix("/old/") {
    ///         if req.set_uri(format!("/new/{rest}")).is_err() {
    ///             return Outcome::Deny;
    ///         }
    ///     }
    ///     Outcome::Ok
    /// };
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(old_to_new);
    /// ```
    pub fn set_uri<U>(&self, uri: U) -> Result<(), http::Error>
    where
        Uri: TryFrom<U>,
        <Uri as TryFrom<U>>::Error: Into<http::Error>,
    {
        let uri = Uri::try_from(uri).map_err(Into::into)?;
        self.exchange.request_state().rewritten_uri = Some(Box::new(uri));
        self.exchange.added().mark(Added::URI);
        Ok(())
    }

    /// The normalized path the handlers were mapped by: percent-decoded, dot segments
    /// resolved, repeated slashes merged. Built-in handlers use this path, never the raw
    /// one, so a request cannot reach past the directory whose Pre handlers it passed.
    pub fn path(&self) -> &str {
        self.exchange.path()
    }

    /// The query string of [`Request::uri`], without the `?`.
    pub fn query(&self) -> Option<String> {
        let request = self.exchange.request_state();
        let uri = (request.rewritten_uri.as_deref()).unwrap_or(&self.exchange.head().uri);
        uri.query().map(str::to_owned)
    }

    /// The host the client addressed: the URI's authority (HTTP/2, absolute-form), else
    /// the `Host` header, else the server's configured hostname.
    pub fn host(&self) -> String {
        if let Some(authority) = self.exchange.head().uri.authority() {
            return authority.as_str().to_owned();
        }
        match self.header_text(HOST) {
            Some(host) if !host.is_empty() => host,
            _ => self.exchange.site().hostname(self.connection()),
        }
    }

    /// The absolute URL of the request: scheme (`https` on a TLS connection, else
    /// `http`), [`Request::host`], then the path and query of [`Request::uri`].
    pub fn url(&self) -> String {
        let uri = self.uri();
        if uri.scheme().is_some() && uri.authority().is_some() {
            // Already absolute: HTTP/2, absolute-form, or a Trans handler's rewrite.
            return uri.to_string();
        }
        let scheme = match self.connection().tls() {
            Some(_) => "https",
            None => "http",
        };
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        format!("{scheme}://{}{}", self.host(), path_and_query)
    }

    /// The `Last-Event-ID` a reconnecting Server-Sent Events client sends.
    pub fn last_event_id(&self) -> Option<String> {
        self.header_text("last-event-id")
    }

    /// The request cookie called `name`, parsed from the `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.cookies().find(|cookie| cookie.name() == name)
    }

    /// Every request cookie; malformed ones are skipped.
    pub fn cookies(&self) -> impl Iterator<Item = Cookie<'static>> + '_ {
        self.headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse_encoded)
            .filter_map(Result::ok)
            .map(Cookie::into_owned)
    }

    /// Reads the whole request body, up to the server's
    /// [`max_body_size`](crate::ServerBuilder::max_body_size).
    ///
    /// # Errors
    /// See [`BodyError`]; a client that disconnects mid-body also marks the request as
    /// failed, so the Error handler runs once the current handler returns.
    pub async fn body(&self) -> Result<Bytes, BodyError> {
        self.body_with_limit(self.exchange.site().max_body_size)
            .await
    }

    /// Reads the whole request body, refusing more than `limit` bytes.
    ///
    /// # Errors
    /// See [`BodyError`].
    pub async fn body_with_limit(&self, limit: usize) -> Result<Bytes, BodyError> {
        self.take_body()?.with_limit(limit).bytes().await
    }

    /// Takes the request body out as a stream of blocks (an `http_body::Body` and a
    /// `Stream`), with the server's body size limit and read timeout still applied:
    /// the way to hand it on — to a proxied upstream, a decoder, a file — without
    /// holding it whole. Later calls, and [`Request::body`], get
    /// [`BodyError::AlreadyRead`].
    ///
    /// # Errors
    /// [`BodyError::AlreadyRead`] when an earlier handler took the body.
    pub fn take_body(&self) -> Result<RequestBody, BodyError> {
        let mut request = self.exchange.request_state();
        let incoming = request.body.take().ok_or(BodyError::AlreadyRead)?;
        let read = request.body_read;
        drop(request);
        let limit = self.exchange.site().max_body_size;
        let exchange = Arc::clone(&self.exchange);
        Ok(RequestBody::new(Some(incoming), read, limit, exchange))
    }

    /// Reads the next block of the request body as it arrives, for uploads too large to
    /// hold in memory. `Ok(None)` once the body is exhausted (or was read whole by
    /// [`Request::body`]).
    ///
    /// # Errors
    /// [`BodyError::TooLarge`] once more than the server's
    /// [`max_body_size`](crate::ServerBuilder::max_body_size) arrived;
    /// [`BodyError::Aborted`] when the client broke off.
    ///
    /// ```
    /// use poco_httpd::{Outcome, Request, Response};
    ///
    /// async fn count_bytes(req: Request, res: Response) -> Outcome {
    ///     let mut total = 0;
    ///     loop {
    ///         match req.body_chunk().await {
    ///             Ok(Some(block)) => total += block.len(),
    ///             Ok(None) => break,
    ///             Err(error) => {
    ///                 res.set_status(error.status());
    ///                 return Outcome::Ok;
    ///             }
    ///         }
    ///     }
    ///     res.set_body(format!("{total} bytes"));
    ///     Outcome::Ok
    /// }
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(count_bytes);
    /// ```
    pub async fn body_chunk(&self) -> Result<Option<Bytes>, BodyError> {
        let Ok(mut body) = self.take_body() else {
            return Ok(None);
        };
        let block = body.next().await.transpose()?;
        let (incoming, read) = body.into_unread();
        let mut request = self.exchange.request_state();
        request.body = incoming;
        request.body_read = read;
        Ok(block)
    }

    /// The protocol the client asks to switch to: the `Upgrade` header of an HTTP/1.1
    /// request whose `Connection` lists `upgrade` (`websocket`, say), or the
    /// `:protocol` of an HTTP/2 extended CONNECT. `None` for an ordinary request.
    pub fn upgrade_protocol(&self) -> Option<String> {
        let head = self.exchange.head();
        if head.version >= Version::HTTP_2 {
            if head.method != Method::CONNECT {
                return None;
            }
            let request = self.exchange.request_state();
            let protocol = request.extensions.get::<hyper::ext::Protocol>()?;
            return Some(protocol.as_str().to_owned());
        }
        let connection = self.headers().get_all(http::header::CONNECTION);
        if lists_token(connection, "upgrade") {
            self.header_text(http::header::UPGRADE)
        } else {
            None
        }
    }

    /// Takes the connection over, for the protocol the client asked to switch to
    /// ([`Request::upgrade_protocol`]): answer with
    /// [`Response::switch_protocols`](crate::Response::switch_protocols) and await the
    /// returned [`Upgrade`] in a task of your own — it resolves to the connection's
    /// bytes once that answer has gone out (or fails if the handlers answered
    /// otherwise). See the [`upgrade`](crate::Upgrade) types.
    ///
    /// ```
    /// use poco_httpd::{Outcome, Request, Response};
    ///
    /// // Echoes whatever the client sends once it switched to "echo".
    /// let echo = |req: Request, res: Response| {
    ///     if req.upgrade_protocol().as_deref() != Some("echo") {
    ///         return res.ok("ask for Upgrade: echo\n");
    ///     }
    ///     let Ok(upgrade) = req.upgrade() else { return Outcome::Deny };
    ///     let shutdown = req.shutdown_handle();
    ///     req.spawn(async move {
    ///         let Ok(io) = upgrade.await else { return };
    ///         let (mut reader, mut writer) = tokio::io::split(io);
    ///         tokio::select! {
    ///             _ = tokio::io::copy(&mut reader, &mut writer) => {}
    ///             () = shutdown.requested() => {}
    ///         }
    ///     });
    ///     res.switch_protocols("echo")
    /// };
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(echo);
    /// ```
    ///
    /// # Errors
    /// [`UpgradeError::NotRequested`] when the request asked for no protocol switch,
    /// or an earlier handler already took the connection.
    pub fn upgrade(&self) -> Result<Upgrade, UpgradeError> {
        if self.upgrade_protocol().is_none() {
            return Err(UpgradeError::NotRequested);
        }
        let mut request = self.exchange.request_state();
        let pending = request.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let stats = self.exchange.server().stats.clone();
        let pending = pending.ok_or(UpgradeError::NotRequested)?;
        Ok(Upgrade::new(pending, stats))
    }

    /// A handle on the server's shutdown: whether it was asked for, a future that
    /// completes when it is (for a task serving a taken-over connection), and the
    /// means to ask for it (say, from an admin endpoint).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            draining: self.exchange.server().draining.clone(),
        }
    }

    /// Runs `task` as one of the server's own: shutdown waits for it up to the
    /// shutdown deadline, then drops it. For work that outlives the request, such as
    /// serving a connection taken over with [`Request::upgrade`]; it should watch
    /// [`ShutdownHandle::requested`] to finish in time.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let server = self.exchange.server();
        let cut = server.cut.clone();
        server.tasks.spawn(async move {
            tokio::select! {
                () = task => {}
                () = cut.cancelled() => {}
            }
        });
    }

    /// Keeps this request's Error and Post handlers waiting until the returned
    /// [`PostHold`] is released — for a handler whose work goes on after the response,
    /// in a task of its own: a connection taken over with [`Request::upgrade`] (a
    /// WebSocket, a tunnel). Post handlers then see how it ended (say, through an
    /// extension the task inserted); a hold released with [`PostHold::fail`] runs the
    /// Error handler first. Taken after the back half ran, a hold changes nothing.
    ///
    /// ```
    /// use poco_httpd::{Failure, FailureKind, Outcome, Request, Response};
    ///
    /// let tunnel = |req: Request, res: Response| {
    ///     let Ok(upgrade) = req.upgrade() else { return res.ok("ask for Upgrade: echo\n") };
    ///     let hold = req.hold_post();
    ///     req.spawn(async move {
    ///         let Ok(io) = upgrade.await else { return };
    ///         let (mut reader, mut writer) = tokio::io::split(io);
    ///         match tokio::io::copy(&mut reader, &mut writer).await {
    ///             Ok(_) => hold.release(),
    ///             Err(error) => hold.fail(
    ///                 Failure::new(FailureKind::UpgradedBroken, "echo broke").with_io_error(error),
    ///             ),
    ///         }
    ///     });
    ///     res.switch_protocols("echo")
    /// };
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(tunnel);
    /// ```
    pub fn hold_post(&self) -> PostHold {
        PostHold::new(self.exchange.hold_slot())
    }

    /// The live figures of the server this request arrived at — connections, requests
    /// in flight, answers by status class — as the status page shows them.
    pub fn server_stats(&self) -> Stats {
        self.exchange.server().stats.clone()
    }

    /// When the server started working on this request (after reading its head).
    pub fn received_at(&self) -> std::time::Instant {
        self.exchange.received()
    }

    /// The connection this request arrived on.
    pub fn connection(&self) -> &Connection {
        self.exchange.connection()
    }

    /// Reports whether the socket failed during this exchange (the client left, a read
    /// or a write failed). True while Error handlers and the Post handlers after them run.
    pub fn is_error(&self) -> bool {
        self.exchange.is_failed()
    }

    /// Why the exchange failed, when [`Request::is_error`] is true: a
    /// [`FailureKind`](crate::FailureKind) to match on, a message, and the I/O error
    /// behind it where there was one.
    ///
    /// ```
    /// use poco_httpd::{FailureKind, Outcome, Request, Response};
    ///
    /// let on_error = |req: Request, res: Response| {
    ///     if let Some(failure) = req.failure() {
    ///         let gone = failure.kind() == FailureKind::ClientGone;
    ///         eprintln!("{} failed ({failure}, client gone: {gone}); status {}",
    ///             req.path(), res.status());
    ///     }
    ///     Outcome::Ok
    /// };
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(on_error);
    /// ```
    pub fn failure(&self) -> Option<&Failure> {
        self.exchange.failure()
    }

    /// Stores a typed value for later handlers of this request, returning the value of
    /// the same type stored before, if any.
    ///
    /// ```
    /// use poco_httpd::{Outcome, Request, Response};
    ///
    /// #[derive(Clone)]
    /// struct UserId(u64);
    ///
    /// let pre = |req: Request, _res: Response| {
    ///     req.insert_extension(UserId(7));
    ///     Outcome::Ok
    /// };
    /// let content = |req: Request, res: Response| {
    ///     let id = req.extension::<UserId>().map_or(0, |u| u.0);
    ///     res.set_body(format!("user {id}"));
    ///     Outcome::Ok
    /// };
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(pre);
    /// # assert_handler(content);
    /// ```
    pub fn insert_extension<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.exchange.request_state().extensions.insert(value)
    }

    /// A clone of the typed value an earlier handler stored, if any.
    pub fn extension<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.exchange.request_state().extensions.get::<T>().cloned()
    }

    /// Removes and returns the typed value an earlier handler stored, if any.
    pub fn remove_extension<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.exchange.request_state().extensions.remove::<T>()
    }

    /// Replaces the Content handler of this request only. Meant for Pre handlers; the
    /// last call wins, as in the original module.
    pub fn set_content_handler(&self, handler: impl Handler) {
        self.exchange.request_state().content_override = Some(SharedHandler::new(handler));
        self.exchange.added().mark(Added::CONTENT);
    }

    /// Adds a handler run at the start of the Send phase, after Content (or a `Deny`)
    /// and before the head goes out, in the order added: the place to finish the
    /// response, as the session middleware does to save the session and set its
    /// cookie. A panic there answers 500.
    pub fn before_send(&self, handler: impl Handler) {
        self.exchange
            .request_state()
            .send_hooks
            .push(SharedHandler::new(handler));
        self.exchange.added().mark(Added::SEND_HOOKS);
    }

    /// Adds a Post handler for this request only, run after the mapped Post handlers.
    pub fn push_post_handler(&self, handler: impl Handler) {
        self.exchange
            .request_state()
            .extra_post
            .push(SharedHandler::new(handler));
        self.exchange.added().mark(Added::POST);
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", self.method())
            .field("uri", &self.uri())
            .field("version", &self.version())
            .field("is_error", &self.is_error())
            .finish_non_exhaustive()
    }
}

/// Why [`Request::body`] could not return the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is longer than the limit; answer `413 Payload Too Large`.
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
    /// An earlier call already took the body.
    #[error("the request body was already read by an earlier handler")]
    AlreadyRead,
    /// The client sent a broken body or went away while sending it.
    #[error("{0}")]
    Aborted(String),
    /// The client stopped sending the body for longer than the server's
    /// [`body_read_timeout`](crate::ServerBuilder::body_read_timeout).
    #[error("{0}")]
    TimedOut(String),
}

impl BodyError {
    /// The status to answer the client with for this error.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::TooLarge { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            Self::AlreadyRead => http::StatusCode::INTERNAL_SERVER_ERROR,
            Self::Aborted(_) => http::StatusCode::BAD_REQUEST,
            Self::TimedOut(_) => http::StatusCode::REQUEST_TIMEOUT,
        }
    }
}
