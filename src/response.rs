//! [`Response`]: the handle every handler gets to build the response, and to resume a
//! pipeline suspended with [`Outcome::Wait`](crate::Outcome::Wait).

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use cookie::Cookie;
use http::header::{AsHeaderName, CONTENT_LENGTH, CONTENT_TYPE, HeaderName};
use http::{HeaderMap, HeaderValue, StatusCode};

use futures_util::Stream;
use tokio::io::AsyncRead;

use crate::Outcome;
use crate::body::Body;
use crate::exchange::Exchange;
use crate::failure::Failure;
use crate::stream::{StreamChannel, StreamError};

/// The response of one exchange, as every phase sees it.
///
/// A cheap handle: clones share the same response, and every method takes `&self`, so
/// another task or thread can fill in the response and then call [`Response::resume`].
#[derive(Clone)]
pub struct Response {
    exchange: Arc<Exchange>,
}

impl Response {
    pub(crate) fn new(exchange: Arc<Exchange>) -> Self {
        Self { exchange }
    }

    /// The status code; `200 OK` until a handler changes it. Once the exchange failed
    /// before the head went out (the client left first), it reads `499` (nginx's
    /// "client closed request"): no status reached the client.
    pub fn status(&self) -> StatusCode {
        self.exchange.response_state().status
    }

    /// Sets the status code.
    pub fn set_status(&self, status: StatusCode) {
        self.exchange.response_state().status = status;
    }

    /// A clone of the first value of one response header.
    pub fn header(&self, name: impl AsHeaderName) -> Option<HeaderValue> {
        self.exchange
            .response_state()
            .header_map()
            .get(name)
            .cloned()
    }

    /// A clone of all response headers set so far (default headers and cookies are
    /// added when the response is sent).
    pub fn headers(&self) -> HeaderMap {
        self.exchange.response_state().header_map().clone()
    }

    /// Sets a header, replacing any values it had.
    ///
    /// A name or value that is not valid in HTTP (a value holding CR or LF, say) is a
    /// bug in the handler: the header is not set, the server logs why, and the client
    /// gets `500 Internal Server Error` rather than a response with a broken header.
    /// [`Response::try_set_header`] returns the error instead, for values that come
    /// from outside.
    pub fn set_header<K, V>(&self, name: K, value: V)
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        let set = self.try_set_header(name, value);
        self.exchange.note_misuse(set, "set_header");
    }

    /// Adds a header value, keeping the values it already had. Misuse is answered as
    /// by [`Response::set_header`]; [`Response::try_append_header`] returns it.
    pub fn append_header<K, V>(&self, name: K, value: V)
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        let appended = self.try_append_header(name, value);
        self.exchange.note_misuse(appended, "append_header");
    }

    /// Sets a header, replacing any values it had.
    ///
    /// # Errors
    /// When the name or the value is not valid in HTTP, e.g. a value holding CR or LF;
    /// the response is left unchanged.
    pub fn try_set_header<K, V>(&self, name: K, value: V) -> Result<(), http::Error>
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        let (name, value) = header_pair(name, value)?;
        let mut response = self.exchange.response_state();
        response.length_set |= name == CONTENT_LENGTH;
        response.header_map().insert(name, value);
        Ok(())
    }

    /// Adds a header value, keeping the values it already had.
    ///
    /// # Errors
    /// As [`Response::try_set_header`].
    pub fn try_append_header<K, V>(&self, name: K, value: V) -> Result<(), http::Error>
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        let (name, value) = header_pair(name, value)?;
        let mut response = self.exchange.response_state();
        response.length_set |= name == CONTENT_LENGTH;
        response.header_map().append(name, value);
        Ok(())
    }

    /// Adds every header of `headers`, keeping the values already set: how a bridge
    /// or a proxy hands on an answer's headers.
    pub fn extend_headers(&self, headers: HeaderMap) {
        self.merge_headers(headers, false);
    }

    /// Sets every header of `headers`, replacing any values those names had (as
    /// [`Response::set_header`] does for one), in one step: when no header is set
    /// yet, the map moves in whole. How a handler sends headers it made ready once
    /// (a cache's) without a lookup per header.
    ///
    /// ```
    /// use poco_httpd::http::{HeaderMap, HeaderValue, header};
    /// use poco_httpd::{Request, Response};
    ///
    /// let cached = |_req: Request, res: Response| {
    ///     let mut headers = HeaderMap::new();
    ///     headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css"));
    ///     headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    ///     res.set_headers(headers);
    ///     res.ok("p { margin: 0 }")
    /// };
    /// # drop(cached);
    /// ```
    pub fn set_headers(&self, headers: HeaderMap) {
        self.merge_headers(headers, true);
    }

    /// Adds every header of `headers`, first dropping the values those names had when
    /// `replace` is set; when no header is set yet, the map moves in whole.
    fn merge_headers(&self, headers: HeaderMap, replace: bool) {
        let mut response = self.exchange.response_state();
        response.length_set |= headers.contains_key(CONTENT_LENGTH);
        let map = response.header_map();
        if map.is_empty() {
            // Nothing to keep or replace (a proxy's answer, a cache's headers).
            *map = headers;
            return;
        }
        let mut name = None;
        for (next, value) in headers {
            // `into_iter` names a header once, before all of its values.
            if let Some(next) = next {
                if replace {
                    map.remove(&next);
                }
                name = Some(next);
            }
            if let Some(name) = &name {
                map.append(name, value);
            }
        }
    }

    /// Removes a header, returning its first value if it had one.
    pub fn remove_header(&self, name: impl AsHeaderName) -> Option<HeaderValue> {
        self.exchange.response_state().header_map().remove(name)
    }

    /// Sets the `Content-Type`, e.g. `"text/html; charset=utf-8"`.
    ///
    /// A value that is not a valid header value (it holds a control character) is a
    /// bug in the handler: the client gets `500 Internal Server Error` and the server
    /// logs why, rather than a response with a broken header.
    pub fn set_content_type(&self, mime: &str) {
        let value = content_type_value(mime);
        let mut response = self.exchange.response_state();
        match value {
            Ok(value) => {
                response.header_map().insert(CONTENT_TYPE, value);
            }
            Err(_) => response.misuse = Some(format!("invalid Content-Type {mime:?}")),
        }
    }

    /// Sets the body and says the handler is done: one expression for the common
    /// handler.
    ///
    /// ```
    /// use poco_httpd::{Request, Response};
    ///
    /// let hello = |req: Request, res: Response| res.ok(format!("hello {}", req.path()));
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(hello);
    /// ```
    pub fn ok(&self, body: impl Into<Body>) -> Outcome {
        self.set_body(body);
        Outcome::Ok
    }

    /// Accepts the protocol switch the client asked for (see
    /// [`Request::upgrade`](crate::Request::upgrade)): on HTTP/1.1 `101 Switching
    /// Protocols` with `Upgrade: protocol` and `Connection: upgrade`; on HTTP/2
    /// (extended CONNECT) `200`. Returns [`Outcome::Ok`], to end a handler with.
    pub fn switch_protocols(&self, protocol: &str) -> Outcome {
        if self.exchange.head().version >= http::Version::HTTP_2 {
            self.set_status(StatusCode::OK);
        } else {
            self.set_status(StatusCode::SWITCHING_PROTOCOLS);
            self.set_header(http::header::UPGRADE, protocol);
            self.set_header(http::header::CONNECTION, "upgrade");
        }
        Outcome::Ok
    }

    /// Refuses the request with `status` (say `401` or `404`): sets it and returns
    /// [`Outcome::Deny`]. With no body set, the client gets the standard text page for
    /// the status; headers set before (`WWW-Authenticate`) are kept.
    ///
    /// ```
    /// use poco_httpd::http::StatusCode;
    /// use poco_httpd::{Outcome, Request, Response};
    ///
    /// let members_only = |req: Request, res: Response| {
    ///     if req.cookie("member").is_none() {
    ///         return res.deny(StatusCode::UNAUTHORIZED);
    ///     }
    ///     Outcome::Ok
    /// };
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(members_only);
    /// ```
    pub fn deny(&self, status: StatusCode) -> Outcome {
        self.set_status(status);
        Outcome::Deny
    }

    /// Sets status and body, and `text/plain; charset=utf-8` unless a handler set
    /// another type: the fixed answers of the built-in `Handler` impls.
    pub(crate) fn answer_text(&self, status: StatusCode, body: Bytes) {
        let mut response = self.exchange.response_state();
        response.status = status;
        response.body = Body::full(body);
        response.channel = None;
        let headers = response.header_map();
        if !headers.contains_key(CONTENT_TYPE) {
            let plain = HeaderValue::from_static("text/plain; charset=utf-8");
            headers.insert(CONTENT_TYPE, plain);
        }
    }

    /// Sets the body: a `String`, a `&'static str`, a `Vec<u8>`, [`Bytes`] — whose
    /// size becomes the `Content-Length` — or any [`Body`], streamed.
    ///
    /// A whole body replaces a streaming one: the response stops streaming, and
    /// [`Response::send`] then fails with [`StreamError::NotStreaming`]. A streamed
    /// body (say, a pushed one that [`Response::take_body`] took out and a handler
    /// wrapped) keeps `send` and `close` working.
    pub fn set_body(&self, body: impl Into<Body>) {
        let body = body.into();
        let mut response = self.exchange.response_state();
        if body.as_bytes().is_some() {
            response.channel = None;
        }
        response.body = body;
    }

    /// Takes the body out, leaving an empty one: to look at it and set a wrapped one
    /// (see [`Body`]), before the head goes out. A pushed body's producer keeps
    /// sending into it.
    pub fn take_body(&self) -> Body {
        std::mem::take(&mut self.exchange.response_state().body)
    }

    /// A clone of a whole body set so far (cheap: [`Bytes`] is reference-counted);
    /// empty while the body streams.
    pub fn body(&self) -> Bytes {
        let response = self.exchange.response_state();
        response.body.as_bytes().cloned().unwrap_or_default()
    }

    /// Adds a cookie; each one becomes a `Set-Cookie` header when the response is sent.
    ///
    /// ```
    /// use poco_httpd::{Outcome, Request, Response, cookie::Cookie};
    ///
    /// let login = |_req: Request, res: Response| {
    ///     res.add_cookie(Cookie::build(("theme", "dark")).path("/").http_only(true));
    ///     Outcome::Ok
    /// };
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(login);
    /// ```
    pub fn add_cookie(&self, cookie: impl Into<Cookie<'static>>) {
        self.exchange.response_state().cookies.push(cookie.into());
    }

    /// The cookies added so far.
    pub fn cookies(&self) -> Vec<Cookie<'static>> {
        self.exchange.response_state().cookies.clone()
    }

    /// Reports whether the response head has been handed to the connection; changes
    /// after that no longer reach the client.
    pub fn is_sent(&self) -> bool {
        self.exchange.response_state().sent
    }

    /// Reports whether the socket failed during this exchange; see
    /// [`Request::is_error`](crate::Request::is_error).
    pub fn is_error(&self) -> bool {
        self.exchange.is_failed()
    }

    /// Why the exchange failed, when [`Response::is_error`] is true; the same as
    /// [`Request::failure`](crate::Request::failure).
    pub fn failure(&self) -> Option<&Failure> {
        self.exchange.failure()
    }

    /// Resumes a pipeline suspended by [`Outcome::Wait`](crate::Outcome::Wait): the
    /// seed's `$response->continue`. Callable from any task or thread, before or after
    /// the handler returned `Wait`; calling it twice, or after the client left, is
    /// harmless. On a streaming response whose head has gone out, it also calls the
    /// Stream handler once more, for when there was nothing to send yet.
    pub fn resume(&self) {
        self.exchange.gate().open();
        if let Some(channel) = self.sent_channel() {
            channel.poke();
        }
    }

    /// Turns streaming on (or off again, before the response is sent). The head goes
    /// out when the Content handler returns; blocks follow through [`Response::send`],
    /// from the Stream handler or any task or thread, until [`Response::close`].
    /// Without a `Content-Length` set by the handler, HTTP/1.1 uses chunked encoding,
    /// HTTP/1.0 ends the body by closing the connection.
    ///
    /// ```
    /// use poco_httpd::{Outcome, Request, Response};
    ///
    /// let countdown = |_req: Request, res: Response| {
    ///     res.set_streaming(true);
    ///     tokio::spawn(async move {
    ///         for n in (1..=3).rev() {
    ///             if res.write(format!("{n}\n")).await.is_err() {
    ///                 return; // the client left
    ///             }
    ///         }
    ///         res.close();
    ///     });
    ///     Outcome::Ok
    /// };
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(countdown);
    /// ```
    pub fn set_streaming(&self, on: bool) {
        let limit = self.exchange.site().stream_buffer;
        let mut response = self.exchange.response_state();
        if response.sent || on == response.channel.is_some() {
            return;
        }
        response.channel = on.then(|| Arc::new(StreamChannel::new(limit)));
        response.body = match &response.channel {
            Some(channel) => Body::pushed(Arc::clone(channel)),
            None => Body::empty(),
        };
    }

    /// Turns the response into a Server-Sent Events stream: `Content-Type:
    /// text/event-stream`, `Cache-Control: no-cache`, streaming on. Send
    /// [`Event`](crate::Event)s with [`Response::write`] or [`Response::send`].
    pub fn start_event_stream(&self) {
        {
            let mut response = self.exchange.response_state();
            let headers = response.header_map();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            );
        }
        self.set_streaming(true);
    }

    /// Reports whether the response streams (by [`Response::set_streaming`] or one of
    /// the `set_body_*` sources).
    pub fn is_streaming(&self) -> bool {
        let response = self.exchange.response_state();
        response.channel.is_some() || response.body.as_bytes().is_none()
    }

    /// Queues one block of a streaming response. Never waits: beyond the server's
    /// [`stream_buffer`](crate::ServerBuilder::stream_buffer) bound it refuses the
    /// block with [`StreamError::Full`]; [`Response::write`] waits for room instead.
    ///
    /// # Errors
    /// [`StreamError`]: not streaming, buffer full, closed, or the client left.
    pub fn send(&self, block: impl Into<Bytes>) -> Result<(), StreamError> {
        self.channel()?.send(block.into())
    }

    /// Waits until the stream has room for a block of `len` bytes, then queues it:
    /// a producer faster than its client is slowed down to the client's pace.
    ///
    /// # Errors
    /// As [`Response::send`], except that a full buffer is waited out.
    pub async fn write(&self, block: impl Into<Bytes>) -> Result<(), StreamError> {
        let channel = self.channel()?;
        let block = block.into();
        loop {
            channel.ready(block.len()).await?;
            match channel.send(block.clone()) {
                Err(StreamError::Full { .. }) => continue,
                sent => return sent,
            }
        }
    }

    /// Waits until the stream's buffer has room for another block.
    ///
    /// # Errors
    /// As [`Response::send`].
    pub async fn ready(&self) -> Result<(), StreamError> {
        self.channel()?.ready(1).await
    }

    /// Ends a streaming response once its queued blocks are written.
    pub fn close(&self) {
        if let Ok(channel) = self.channel() {
            channel.close();
        }
    }

    /// Bytes of a streaming response queued and not yet taken by the connection.
    pub fn buffered_bytes(&self) -> usize {
        self.channel().map_or(0, |channel| channel.buffered())
    }

    /// The most bytes a streaming response ever had queued at once: stays within
    /// [`stream_buffer`](crate::ServerBuilder::stream_buffer) plus one block.
    pub fn peak_buffered_bytes(&self) -> usize {
        self.channel().map_or(0, |channel| channel.peak_buffered())
    }

    /// Streams the body from a `Stream` of blocks, pulled only as fast as the client
    /// reads. An `Err` item cuts the response (the connection is closed).
    pub fn set_body_stream<S>(&self, stream: S)
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        self.set_body(Body::from_stream(stream));
    }

    /// Streams the body from an `AsyncRead`, pulled only as fast as the client reads.
    pub fn set_body_reader<R>(&self, reader: R)
    where
        R: AsyncRead + Send + 'static,
    {
        self.set_body(Body::from_reader(reader));
    }

    /// Streams the body from a file, with its length as `Content-Length`.
    ///
    /// # Errors
    /// When the file cannot be opened or examined.
    pub async fn set_body_file(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let file = tokio::fs::File::open(path).await?;
        let length = file.metadata().await?.len();
        let mut response = self.exchange.response_state();
        response.length_set = true;
        response
            .header_map()
            .insert(CONTENT_LENGTH, HeaderValue::from(length));
        drop(response);
        self.set_body_reader(file);
        Ok(())
    }

    fn channel(&self) -> Result<Arc<StreamChannel>, StreamError> {
        let channel = self.exchange.response_state().channel.clone();
        channel.ok_or(StreamError::NotStreaming)
    }

    /// The stream channel, once the head has gone out.
    fn sent_channel(&self) -> Option<Arc<StreamChannel>> {
        let response = self.exchange.response_state();
        response.channel.clone().filter(|_| response.sent)
    }
}

/// Common media types, kept as static header values: setting one copies nothing,
/// and copying it for the Post handlers allocates nothing.
const COMMON_CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "text/plain; charset=utf-8",
    "text/html",
    "text/html; charset=utf-8",
    "text/css",
    "text/csv",
    "text/event-stream",
    "text/javascript",
    "application/json",
    "application/javascript",
    "application/octet-stream",
    "application/xml",
    "application/x-www-form-urlencoded",
    "image/png",
    "image/jpeg",
    "image/svg+xml",
];

fn content_type_value(mime: &str) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    match COMMON_CONTENT_TYPES.iter().find(|common| **common == mime) {
        Some(common) => Ok(HeaderValue::from_static(common)),
        None => HeaderValue::from_str(mime),
    }
}

/// A header name and value checked for HTTP, from anything they convert from.
pub(crate) fn header_pair<K, V>(name: K, value: V) -> Result<(HeaderName, HeaderValue), http::Error>
where
    HeaderName: TryFrom<K>,
    <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
    HeaderValue: TryFrom<V>,
    <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
{
    let name = HeaderName::try_from(name).map_err(Into::into)?;
    let value = HeaderValue::try_from(value).map_err(Into::into)?;
    Ok((name, value))
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut response = self.exchange.response_state();
        f.debug_struct("Response")
            .field("status", &response.status)
            .field("headers", response.header_map())
            .field("body", &response.body)
            .field("is_error", &self.exchange.is_failed())
            .finish_non_exhaustive()
    }
}
