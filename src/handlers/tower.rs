//! [`TowerService`]: the tower bridge, mounting any `tower::Service` over
//! `http::Request` as the Content handler of a directory.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyDataStream;
use tower::ServiceExt;

use crate::incoming::IncomingBody;
use crate::sync::lock;
use crate::{Handler, HandlerFuture, Outcome, Request, Response};

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

    /// The service being bridged.
    pub(crate) fn service(&self) -> &S {
        &self.service
    }

    /// The `http::Request` the service is to see for `request`.
    pub(crate) fn forward(&self, request: &Request) -> http::Request<RequestBody> {
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

/// What must be escaped to put a decoded path back into a URI.
const PATH_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
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
    B: Body<Data = Bytes> + Send + 'static,
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
    let body = lock(&request.exchange().request).body.take();
    let mut forwarded = http::Request::new(RequestBody(body));
    *forwarded.method_mut() = request.method().clone();
    *forwarded.version_mut() = request.version();
    *forwarded.headers_mut() = request.headers();
    *forwarded.uri_mut() = uri;
    forwarded
}

/// Copies the service's answer (status, headers, body) into `response`.
pub(crate) fn copy_answer<B>(answer: http::Response<B>, response: &Response)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = answer.into_parts();
    response.set_status(parts.status);
    let mut exchange = lock(&response.exchange().response);
    for (name, value) in &parts.headers {
        exchange.headers.append(name, value.clone());
    }
    drop(exchange);
    let blocks = BodyDataStream::new(body).map_err(io::Error::other);
    response.set_body_stream(blocks);
}

/// The request body a mounted service reads: the client's, unless an earlier
/// handler already took it (then empty).
#[derive(Debug)]
pub struct RequestBody(Option<IncomingBody>);

impl Body for RequestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.0 {
            Some(incoming) => Pin::new(incoming).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl<S> fmt::Debug for TowerService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerService")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}
