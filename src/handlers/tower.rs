//! [`TowerService`]: the tower bridge, mounting any `tower::Service` over
//! `http::Request` as the Content handler of a directory.

use std::fmt;

use bytes::Bytes;
use http_body::Body as HttpBody;
use tower::ServiceExt;

use crate::{Handler, HandlerFuture, Outcome, Request, RequestBody, Response};

/// Mounts a `tower::Service` at a directory: the service sees the request with the
/// directory's prefix taken off its (normalized) path, so a service mounted at
/// `/static/` answers `/static/css/site.css` as `/css/site.css`.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::TowerService;
///
/// let files = tower_http::services::ServeDir::new(".");
/// let builder = Server::builder().content("/static/", TowerService::new("/static/", files));
/// # drop(builder);
/// ```
#[derive(Clone)]
pub struct TowerService<S> {
    prefix: String,
    service: S,
}

impl<S> TowerService<S> {
    /// Bridges `service`, mounted at the directory `prefix` (e.g. `/static/`).
    pub fn new(prefix: impl Into<String>, service: S) -> Self {
        let mut prefix = prefix.into();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Self { prefix, service }
    }

    /// The `http::Request` the service is to see for `request`.
    fn forward(&self, request: &Request) -> http::Request<RequestBody> {
        forward(request, self.inner_uri(request))
    }

    /// The path the service sees: the request's normalized path without the prefix.
    fn inner_uri(&self, request: &Request) -> http::Uri {
        let path = request.path();
        let inner = path
            .strip_prefix(self.prefix.trim_end_matches('/'))
            .unwrap_or(path);
        let inner = if inner.is_empty() { "/" } else { inner };
        let encoded = percent_encoding::utf8_percent_encode(inner, PATH_ESCAPES).to_string();
        let with_query = match request.query() {
            Some(query) => format!("{encoded}?{query}"),
            None => encoded,
        };
        with_query
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("/"))
    }
}

/// What must be escaped to put a decoded path back into a URI (the proxy uses it too).
pub(super) const PATH_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

impl<S, B> Handler for TowerService<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: fmt::Display,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let forwarded = self.forward(&request);
        let service = self.service.clone();
        HandlerFuture::new(async move {
            match service.oneshot(forwarded).await {
                Ok(answer) => copy_answer(answer, &response),
                Err(error) => {
                    tracing::error!(%error, "mounted tower service failed");
                    response.set_status(http::StatusCode::INTERNAL_SERVER_ERROR);
                }
            }
            Outcome::Ok
        })
    }
}

/// The `http::Request` handed to the service: method, version, headers, extensions
/// and body of the exchange, with the inner URI.
fn forward(request: &Request, uri: http::Uri) -> http::Request<RequestBody> {
    // A body an earlier handler took is gone: the service sees an empty one.
    let body = request.take_body().unwrap_or_else(|_| RequestBody::empty());
    let mut forwarded = http::Request::new(body);
    *forwarded.method_mut() = request.method().clone();
    *forwarded.version_mut() = request.version();
    *forwarded.headers_mut() = request.headers().clone();
    *forwarded.uri_mut() = uri;
    forwarded
}

/// Copies the service's answer (status, headers, body) into `response`.
fn copy_answer<B>(answer: http::Response<B>, response: &Response)
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = answer.into_parts();
    response.set_status(parts.status);
    response.extend_headers(parts.headers);
    response.set_body(crate::Body::from_http_body(body));
}

impl<S> fmt::Debug for TowerService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerService")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}
