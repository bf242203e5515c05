//! [`Compression`]: a Pre handler that compresses the responses of its directory
//! with zstd, brotli or gzip, as the client's `Accept-Encoding` prefers, when the
//! type is compressible (`negotiate`) — whole bodies and streamed ones (files,
//! readers) alike, through async-compression's encoders (`encode`). The work happens
//! in a `before_send` hook, once the response is complete.
//!
//! Left alone: responses already encoded, `Cache-Control: no-transform`, bodies below
//! the minimum size, `206`/`204`/`304`, and `Response::send` streams (Server-Sent
//! Events, multipart pushes), whose blocks must reach the client as they are sent.

mod encode;
mod negotiate;

use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
    ETAG, VARY,
};
use http::{HeaderValue, Method, StatusCode};

pub use self::negotiate::{Coding, is_compressible};
use crate::{Body, Handler, HandlerFuture, Outcome, Request, Response};

/// Whole bodies above this are compressed as a stream, a block at a time, rather
/// than in one go on the runtime's thread.
const WHOLE_AT_ONCE: usize = 256 * 1024;

/// Compresses the responses of the directories it is installed on as a Pre handler.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::{Coding, Compression};
///
/// let builder = Server::builder()
///     .pre("/", Compression::new().min_size(1024))
///     .pre("/legacy/", Compression::new().codings([Coding::Gzip]));
/// # drop(builder);
/// ```
#[derive(Debug, Clone)]
pub struct Compression {
    offered: Vec<Coding>,
    min_size: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Self::new()
    }
}

impl Compression {
    /// zstd, brotli and gzip (preferred in that order when the client ranks them
    /// equally) for bodies of at least 256 bytes.
    pub fn new() -> Self {
        Self {
            offered: vec![Coding::Zstd, Coding::Brotli, Coding::Gzip],
            min_size: 256,
        }
    }

    /// Leaves bodies shorter than `bytes` uncompressed (default 256): below a few
    /// hundred bytes the coding's own overhead eats the gain.
    pub fn min_size(mut self, bytes: usize) -> Self {
        self.min_size = bytes;
        self
    }

    /// The codings offered, most preferred first.
    pub fn codings(mut self, codings: impl IntoIterator<Item = Coding>) -> Self {
        self.offered = codings.into_iter().collect();
        self
    }
}

impl Handler for Compression {
    fn call(&self, request: Request, _response: Response) -> HandlerFuture {
        let accepted = request.header_text(ACCEPT_ENCODING);
        let coding = accepted.and_then(|accepted| Coding::negotiate(&accepted, &self.offered));
        let min_size = self.min_size;
        // Installed even when nothing is acceptable: `Vary` must still be sent.
        request.before_send(move |request: Request, response: Response| {
            compress(request, response, coding, min_size)
        });
        HandlerFuture::ready(Outcome::Ok)
    }
}

async fn compress(
    request: Request,
    response: Response,
    coding: Option<Coding>,
    min_size: usize,
) -> Outcome {
    if !eligible(&response) {
        return Outcome::Ok;
    }
    add_vary(&response);
    let Some(coding) = coding else {
        return Outcome::Ok;
    };
    let head_only = *request.method() == Method::HEAD;
    let declared = (response.header(CONTENT_LENGTH))
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    let body = response.take_body();
    let body = match body.as_bytes() {
        // Pushed blocks must reach the client as they are sent.
        None if body.is_pushed() => body,
        None if declared.is_some_and(|length| length < min_size) => body,
        None => encoded_stream(&response, coding, body),
        Some(bytes) if declared.unwrap_or(0).max(bytes.len()) < min_size => body,
        Some(_) if head_only => {
            mark_encoded(&response, coding);
            body
        }
        Some(bytes) if bytes.len() > WHOLE_AT_ONCE => encoded_stream(&response, coding, body),
        Some(bytes) => match encode::bytes(coding, bytes.clone()).await {
            Ok(compressed) => {
                mark_encoded(&response, coding);
                Body::from(compressed)
            }
            Err(error) => {
                tracing::error!(%error, "compressing a response failed; sent as is");
                body
            }
        },
    };
    response.set_body(body);
    Outcome::Ok
}

/// `body` encoded as it streams, a block at a time.
fn encoded_stream(response: &Response, coding: Coding, body: Body) -> Body {
    mark_encoded(response, coding);
    Body::from_stream(encode::stream(coding, body.into_stream()))
}

fn eligible(response: &Response) -> bool {
    let status = response.status();
    let status_ok = !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED);
    let compressible = (response.header(CONTENT_TYPE))
        .is_some_and(|value| value.to_str().is_ok_and(is_compressible));
    if !status_ok || !compressible || response.header(CONTENT_ENCODING).is_some() {
        return false;
    }
    let headers = response.headers();
    let mut cache_control = headers.get_all(CACHE_CONTROL).iter();
    !cache_control.any(|value| has_token(value, "no-transform"))
}

/// Whether a comma-separated header value lists `token` (in any case).
fn has_token(value: &HeaderValue, token: &str) -> bool {
    let listed = value.to_str().unwrap_or_default().split(',');
    listed
        .map(str::trim)
        .any(|listed| listed.eq_ignore_ascii_case(token))
}

/// The answer depends on `Accept-Encoding`: caches must know.
fn add_vary(response: &Response) {
    let headers = response.headers();
    let mut vary = headers.get_all(VARY).iter();
    let present = vary.any(|value| has_token(value, "accept-encoding") || has_token(value, "*"));
    if !present {
        response.append_header(VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// The headers of an encoded body: its length is no longer known in advance, ranges
/// of it are not offered, and a strong validator of the plain bytes becomes weak.
fn mark_encoded(response: &Response, coding: Coding) {
    response.set_header(CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
    response.remove_header(CONTENT_LENGTH);
    response.remove_header(ACCEPT_RANGES);
    if let Some(tag) = response.header(ETAG)
        && tag.as_bytes().starts_with(b"\"")
        && let Ok(weak) = HeaderValue::from_bytes(&[b"W/", tag.as_bytes()].concat())
    {
        response.set_header(ETAG, weak);
    }
}
