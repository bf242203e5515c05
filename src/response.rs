//! [`Response`]: the handle every handler gets to build the response, and to resume a
//! pipeline suspended with [`Outcome::Wait`](crate::Outcome::Wait).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use cookie::Cookie;
use http::header::{AsHeaderName, CONTENT_TYPE, HeaderName};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::exchange::{Exchange, lock};

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

    /// The status code; `200 OK` until a handler changes it.
    pub fn status(&self) -> StatusCode {
        lock(&self.exchange.response).status
    }

    /// Sets the status code.
    pub fn set_status(&self, status: StatusCode) {
        lock(&self.exchange.response).status = status;
    }

    /// A clone of the first value of one response header.
    pub fn header(&self, name: impl AsHeaderName) -> Option<HeaderValue> {
        lock(&self.exchange.response).headers.get(name).cloned()
    }

    /// A clone of all response headers set so far (default headers and cookies are
    /// added when the response is sent).
    pub fn headers(&self) -> HeaderMap {
        lock(&self.exchange.response).headers.clone()
    }

    /// Sets a header, replacing any values it had.
    ///
    /// # Errors
    /// When the name or the value is not valid in HTTP, e.g. a value holding CR or LF;
    /// the response is left unchanged.
    pub fn set_header<K, V>(&self, name: K, value: V) -> Result<(), http::Error>
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        let (name, value) = header_pair(name, value)?;
        lock(&self.exchange.response).headers.insert(name, value);
        Ok(())
    }

    /// Adds a header value, keeping the values it already had.
    ///
    /// # Errors
    /// As [`Response::set_header`].
    pub fn append_header<K, V>(&self, name: K, value: V) -> Result<(), http::Error>
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        let (name, value) = header_pair(name, value)?;
        lock(&self.exchange.response).headers.append(name, value);
        Ok(())
    }

    /// Removes a header, returning its first value if it had one.
    pub fn remove_header(&self, name: impl AsHeaderName) -> Option<HeaderValue> {
        lock(&self.exchange.response).headers.remove(name)
    }

    /// Sets the `Content-Type`, e.g. `"text/html; charset=utf-8"`.
    ///
    /// A value that is not a valid header value (it holds a control character) is a
    /// bug in the handler: the client gets `500 Internal Server Error` and the server
    /// logs why, rather than a response with a broken header.
    pub fn set_content_type(&self, mime: &str) {
        let mut response = lock(&self.exchange.response);
        match HeaderValue::from_str(mime) {
            Ok(value) => {
                response.headers.insert(CONTENT_TYPE, value);
            }
            Err(_) => response.misuse = Some(format!("invalid Content-Type {mime:?}")),
        }
    }

    /// Sets the body, from a `String`, a `&'static str`, a `Vec<u8>`, [`Bytes`]...
    /// `Content-Length` is set from it when the response is sent.
    pub fn set_body(&self, body: impl Into<Bytes>) {
        lock(&self.exchange.response).body = body.into();
    }

    /// A clone of the body set so far (cheap: [`Bytes`] is reference-counted).
    pub fn body(&self) -> Bytes {
        lock(&self.exchange.response).body.clone()
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
        lock(&self.exchange.response).cookies.push(cookie.into());
    }

    /// The cookies added so far.
    pub fn cookies(&self) -> Vec<Cookie<'static>> {
        lock(&self.exchange.response).cookies.clone()
    }

    /// Reports whether the response head has been handed to the connection; changes
    /// after that no longer reach the client.
    pub fn is_sent(&self) -> bool {
        lock(&self.exchange.response).sent
    }

    /// Reports whether the socket failed during this exchange; see
    /// [`Request::is_error`](crate::Request::is_error).
    pub fn is_error(&self) -> bool {
        self.exchange.is_failed()
    }

    /// Why the socket failed, when [`Response::is_error`] is true.
    pub fn error_cause(&self) -> Option<&str> {
        self.exchange.failure.get().map(String::as_str)
    }

    /// Resumes a pipeline suspended by [`Outcome::Wait`](crate::Outcome::Wait): the
    /// seed's `$response->continue`. Callable from any task or thread, before or after
    /// the handler returned `Wait`; calling it twice, or after the client left, is
    /// harmless.
    pub fn resume(&self) {
        self.exchange.gate.open();
    }
}

fn header_pair<K, V>(name: K, value: V) -> Result<(HeaderName, HeaderValue), http::Error>
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
        let response = lock(&self.exchange.response);
        f.debug_struct("Response")
            .field("status", &response.status)
            .field("headers", &response.headers)
            .field("body_len", &response.body.len())
            .field("is_error", &self.exchange.is_failed())
            .finish_non_exhaustive()
    }
}
