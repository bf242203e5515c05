//! [`Request`]: the handle every handler gets to read (and, in the Trans phase,
//! rewrite) the request.

use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use cookie::Cookie;
use http::header::{AsHeaderName, HOST};
use http::{HeaderMap, HeaderValue, Method, Uri, Version};
use http_body::Body as _;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::connection::Connection;
use crate::exchange::{Added, Exchange, lock};
use crate::handler::{Handler, SharedHandler};
use crate::incoming::is_timeout;

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

    /// The shared state, for built-in handlers.
    pub(crate) fn exchange(&self) -> &Exchange {
        &self.exchange
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.exchange.head.method
    }

    /// The HTTP version the client spoke.
    pub fn version(&self) -> Version {
        self.exchange.head.version
    }

    /// All request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.exchange.head.headers
    }

    /// The first value of one header, if present.
    pub fn header(&self, name: impl AsHeaderName) -> Option<&HeaderValue> {
        self.exchange.head.headers.get(name)
    }

    /// The URI exactly as the client sent it.
    pub fn original_uri(&self) -> &Uri {
        &self.exchange.head.uri
    }

    /// The URI as it stands now: the one received, unless a Trans handler rewrote it.
    pub fn uri(&self) -> Uri {
        let rewritten = lock(&self.exchange.request).rewritten_uri.clone();
        rewritten.map_or_else(|| self.exchange.head.uri.clone(), |uri| *uri)
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
        lock(&self.exchange.request).rewritten_uri = Some(Box::new(uri));
        self.exchange.added.mark(Added::URI);
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
        let request = lock(&self.exchange.request);
        let uri = (request.rewritten_uri.as_deref()).unwrap_or(&self.exchange.head.uri);
        uri.query().map(str::to_owned)
    }

    /// The host the client addressed: the URI's authority (HTTP/2, absolute-form), else
    /// the `Host` header, else the server's configured hostname.
    pub fn host(&self) -> String {
        let head = &self.exchange.head;
        if let Some(authority) = head.uri.authority() {
            return authority.as_str().to_owned();
        }
        match head.headers.get(HOST).and_then(|h| h.to_str().ok()) {
            Some(host) if !host.is_empty() => host.to_owned(),
            _ => self.exchange.site.hostname(self.connection()),
        }
    }

    /// The absolute URL of the request: scheme, [`Request::host`], then the path and
    /// query of [`Request::uri`].
    pub fn url(&self) -> String {
        let uri = self.uri();
        if uri.scheme().is_some() && uri.authority().is_some() {
            // Already absolute: a Trans handler rewrote it to another host.
            return uri.to_string();
        }
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        format!("http://{}{}", self.host(), path_and_query)
    }

    /// The `Last-Event-ID` a reconnecting Server-Sent Events client sends.
    pub fn last_event_id(&self) -> Option<&str> {
        self.header("last-event-id").and_then(|v| v.to_str().ok())
    }

    /// The request cookie called `name`, parsed from the `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.cookies().find(|cookie| cookie.name() == name)
    }

    /// Every request cookie; malformed ones are skipped.
    pub fn cookies(&self) -> impl Iterator<Item = Cookie<'static>> + '_ {
        self.exchange
            .head
            .headers
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
        self.body_with_limit(self.exchange.site.max_body_size).await
    }

    /// Reads the whole request body, refusing more than `limit` bytes.
    ///
    /// # Errors
    /// See [`BodyError`].
    pub async fn body_with_limit(&self, limit: usize) -> Result<Bytes, BodyError> {
        let incoming = lock(&self.exchange.request).body.take();
        let Some(incoming) = incoming else {
            return Err(BodyError::AlreadyRead);
        };
        if incoming.size_hint().lower() > limit as u64 {
            return Err(BodyError::TooLarge { limit });
        }
        match Limited::new(incoming, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) if error.is::<LengthLimitError>() => Err(BodyError::TooLarge { limit }),
            Err(error) => {
                let timed_out = error.downcast_ref::<io::Error>().is_some_and(is_timeout);
                Err(self.body_failed(&*error, timed_out))
            }
        }
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
        let limit = self.exchange.site.max_body_size;
        let incoming = lock(&self.exchange.request).body.take();
        let Some(mut incoming) = incoming else {
            return Ok(None);
        };
        loop {
            let data = match incoming.frame().await {
                None => return Ok(None),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_trailers) => continue,
                },
                Some(Err(error)) => return Err(self.body_failed(&error, is_timeout(&error))),
            };
            let mut request = lock(&self.exchange.request);
            request.body_read += data.len() as u64;
            if request.body_read > limit as u64 {
                return Err(BodyError::TooLarge { limit });
            }
            request.body = Some(incoming);
            return Ok(Some(data));
        }
    }

    /// A failed body read fails the exchange: the Error handler runs once the current
    /// handler returns.
    fn body_failed(&self, error: &dyn std::error::Error, timed_out: bool) -> BodyError {
        let cause = format!("reading the request body failed: {error}");
        self.exchange.fail(cause.clone());
        if timed_out {
            BodyError::TimedOut(cause)
        } else {
            BodyError::Aborted(cause)
        }
    }

    /// When the server started working on this request (after reading its head).
    pub fn received_at(&self) -> std::time::Instant {
        self.exchange.received
    }

    /// The connection this request arrived on.
    pub fn connection(&self) -> &Connection {
        &self.exchange.connection
    }

    /// Reports whether the socket failed during this exchange (the client left, a read
    /// or a write failed). True while Error handlers and the Post handlers after them run.
    pub fn is_error(&self) -> bool {
        self.exchange.is_failed()
    }

    /// Why the socket failed, when [`Request::is_error`] is true.
    pub fn error_cause(&self) -> Option<&str> {
        self.exchange.failure.get().map(String::as_str)
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
        lock(&self.exchange.request).extensions.insert(value)
    }

    /// A clone of the typed value an earlier handler stored, if any.
    pub fn extension<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        lock(&self.exchange.request).extensions.get::<T>().cloned()
    }

    /// Removes and returns the typed value an earlier handler stored, if any.
    pub fn remove_extension<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        lock(&self.exchange.request).extensions.remove::<T>()
    }

    /// Replaces the Content handler of this request only. Meant for Pre handlers; the
    /// last call wins, as in the original module.
    pub fn set_content_handler(&self, handler: impl Handler) {
        lock(&self.exchange.request).content_override = Some(SharedHandler::new(handler));
        self.exchange.added.mark(Added::CONTENT);
    }

    /// Adds a handler run at the start of the Send phase, after Content (or a `Deny`)
    /// and before the head goes out, in the order added: the place to finish the
    /// response, as the session middleware does to save the session and set its
    /// cookie. A panic there answers 500.
    pub fn before_send(&self, handler: impl Handler) {
        lock(&self.exchange.request)
            .send_hooks
            .push(SharedHandler::new(handler));
        self.exchange.added.mark(Added::SEND_HOOKS);
    }

    /// Adds a Post handler for this request only, run after the mapped Post handlers.
    pub fn push_post_handler(&self, handler: impl Handler) {
        lock(&self.exchange.request)
            .extra_post
            .push(SharedHandler::new(handler));
        self.exchange.added.mark(Added::POST);
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
