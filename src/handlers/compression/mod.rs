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

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
    ETAG, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

pub use self::negotiate::{Coding, is_compressible};
use crate::body::Source;
use crate::exchange::ResponseState;
use crate::sync::lock;
use crate::{Handler, HandlerFuture, Outcome, Request, Response};

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

/// What is to be compressed, taken out of the response.
enum Plan {
    /// A whole body small enough to compress at once.
    Whole(Coding, Bytes),
    /// Only the headers change: a `HEAD` answer, or a stream now wrapped.
    Done,
}

async fn compress(
    request: Request,
    response: Response,
    coding: Option<Coding>,
    min_size: usize,
) -> Outcome {
    let head_only = *request.method() == Method::HEAD;
    let plan = {
        let mut state = lock(&response.exchange().response);
        plan(&mut state, coding, min_size, head_only)
    };
    if let Some(Plan::Whole(coding, body)) = plan {
        match encode::bytes(coding, body).await {
            Ok(compressed) => {
                let mut state = lock(&response.exchange().response);
                state.body = compressed;
                mark_encoded(&mut state.headers, coding);
            }
            Err(error) => tracing::error!(%error, "compressing a response failed; sent as is"),
        }
    }
    Outcome::Ok
}

/// Decides, with the response locked, and applies what needs no waiting.
fn plan(
    state: &mut ResponseState,
    coding: Option<Coding>,
    min_size: usize,
    head_only: bool,
) -> Option<Plan> {
    if !eligible(state.status, &state.headers) {
        return None;
    }
    add_vary(&mut state.headers);
    let coding = coding?;
    let declared = state
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    match state.stream.take() {
        Some(Source::Channel(channel)) => {
            state.stream = Some(Source::Channel(channel));
            None
        }
        Some(Source::Stream(body)) if declared.is_some_and(|length| length < min_size) => {
            state.stream = Some(Source::Stream(body));
            None
        }
        Some(Source::Stream(body)) => Some(wrap(state, coding, body)),
        Some(Source::Full(_)) | None => {
            let size = declared.unwrap_or(0).max(state.body.len());
            if size < min_size {
                None
            } else if head_only {
                mark_encoded(&mut state.headers, coding);
                Some(Plan::Done)
            } else if state.body.len() > WHOLE_AT_ONCE {
                let body = std::mem::take(&mut state.body);
                Some(wrap(
                    state,
                    coding,
                    futures_util::stream::once(std::future::ready(Ok(body))).boxed(),
                ))
            } else {
                Some(Plan::Whole(coding, state.body.clone()))
            }
        }
    }
}

fn wrap(
    state: &mut ResponseState,
    coding: Coding,
    body: BoxStream<'static, std::io::Result<Bytes>>,
) -> Plan {
    state.stream = Some(Source::Stream(encode::stream(coding, body)));
    mark_encoded(&mut state.headers, coding);
    Plan::Done
}

fn eligible(status: StatusCode, headers: &HeaderMap) -> bool {
    let status_ok = !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED);
    let no_transform = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
        });
    let compressible = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_compressible);
    status_ok && compressible && !no_transform && !headers.contains_key(CONTENT_ENCODING)
}

/// The answer depends on `Accept-Encoding`: caches must know.
fn add_vary(headers: &mut HeaderMap) {
    let present = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|name| name.trim().eq_ignore_ascii_case("accept-encoding") || name.trim() == "*");
    if !present {
        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// The headers of an encoded body: its length is no longer known in advance, ranges
/// of it are not offered, and a strong validator of the plain bytes becomes weak.
fn mark_encoded(headers: &mut HeaderMap, coding: Coding) {
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
    headers.remove(CONTENT_LENGTH);
    headers.remove(ACCEPT_RANGES);
    if let Some(tag) = headers.get(ETAG)
        && tag.as_bytes().starts_with(b"\"")
        && let Ok(weak) = HeaderValue::from_bytes(&[b"W/", tag.as_bytes()].concat())
    {
        headers.insert(ETAG, weak);
    }
}
