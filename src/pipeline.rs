//! The phase pipeline: an explicit state machine over the original module's queue.
//!
//! In front of the client: Trans → Map → Pre → Content → Send, run inside hyper's
//! service call. Behind it, once the response has been flushed (or the socket
//! failed): [Error →] Post → Cleanup, polled once where the flush is noticed and, if
//! a handler waits, finished in a task of its own, so a slow Post handler never
//! delays the response nor the next request on the connection.
//!
//! The [`Tail`] carries a request from one half to the other. Whoever holds it when
//! the exchange ends decides how it ended: the pipeline while handlers run, then the
//! response body while hyper writes it, then the connection's flush tracker until the
//! bytes are flushed. Each of them delivers the tail as failed if it is dropped first,
//! so a client that leaves at any point reaches the Error handler exactly once.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::FutureExt;
use http::header::SET_COOKIE;
use http::{HeaderValue, Method, StatusCode, Uri, Version};
use hyper::body::Incoming;

use crate::body::{ResponseBody, Source};
use crate::connection::{ConnState, Connection};
use crate::exchange::{Exchange, RequestHead, lock};
use crate::handler::SharedHandler;
use crate::incoming::IncomingBody;
use crate::path::{normalize, normalize_path};
use crate::server::Shared;
use crate::stream::StreamChannel;
use crate::{Outcome, Request, Response};

/// The phases in front of the client, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Trans,
    Map,
    Pre,
    Content,
    Send,
}

/// What a handler's call amounts to for the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `Ok`, or `Wait` followed by a resume.
    Go,
    /// `Deny`.
    Stop,
    /// The handler panicked; it has been logged.
    Panicked,
}

/// Runs the front half of the pipeline for one request and returns the response.
pub(crate) async fn respond(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    request: http::Request<Incoming>,
) -> http::Response<ResponseBody> {
    let _in_flight = shared.stats.request_started();
    let (parts, body) = request.into_parts();
    // A refused path is answered 400, and still reported to the Post handlers of `/`
    // (an access log wants to see it).
    let (path, refused): (Arc<str>, _) = match normalize(parts.uri.path()) {
        Ok(path) => (path.as_ref().into(), None),
        Err(error) => ("/".into(), Some(error)),
    };
    let head = RequestHead {
        method: parts.method,
        version: parts.version,
        uri: parts.uri,
        headers: parts.headers,
    };
    let connection = Connection::new(Arc::clone(&conn.info));
    let body = IncomingBody::new(body, shared.limits.body_read_timeout);
    let exchange = Exchange::new(head, Some(body), parts.extensions, path, connection, shared);
    let tail = Tail::new(Arc::clone(&exchange), Arc::clone(&conn));
    let mut in_flight = InFlight(Some(tail));
    if let Some(error) = refused {
        tracing::debug!(%error, uri = %exchange.head.uri, "refused request path");
        exchange.answer_error(StatusCode::BAD_REQUEST);
    } else if head_size(&exchange.head) > exchange.server.limits.max_header_size {
        // As hyper does for heads over its own bound: answer, then close.
        exchange.answer_error(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        lock(&exchange.response)
            .headers
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    } else if declares_too_large_body(&exchange) {
        exchange.answer_error(StatusCode::PAYLOAD_TOO_LARGE);
    } else {
        let limit = exchange.server.limits.handler_timeout;
        let front = async {
            run_front(&exchange).await;
            run_send_hooks(&exchange).await;
        };
        // From the request's arrival, which saves reading the clock again.
        let deadline = tokio::time::Instant::from_std(exchange.received) + limit;
        if tokio::time::timeout_at(deadline, front).await.is_err() {
            time_out(&exchange, limit);
        }
    }
    send(&exchange, in_flight.0.take(), conn)
}

/// The handlers took longer than `handler_timeout`: their futures have been dropped;
/// the client gets 503, and the Error and Post handlers hear of it.
fn time_out(exchange: &Exchange, limit: std::time::Duration) {
    tracing::warn!(path = %exchange.path(), ?limit, "handlers timed out; answering 503");
    exchange.answer_error(StatusCode::SERVICE_UNAVAILABLE);
    exchange.fail(format!("the handlers did not answer within {limit:?}"));
}

/// The size of the request line and headers as sent (HTTP/1 framing), held to
/// `max_header_size`: hyper's own bound is its larger read buffer.
fn head_size(head: &RequestHead) -> usize {
    let uri = &head.uri;
    let target = uri
        .scheme_str()
        .map_or(0, |scheme| scheme.len() + "://".len())
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len())
        + uri.path_and_query().map_or(0, |path| path.as_str().len());
    let line = head.method.as_str().len() + target + "  HTTP/1.1\r\n".len();
    let fields: usize = (head.headers.iter())
        .map(|(name, value)| name.as_str().len() + value.len() + ": \r\n".len())
        .sum();
    line + fields
}

/// A `Content-Length` beyond the server's limit is refused before any handler runs.
fn declares_too_large_body(exchange: &Exchange) -> bool {
    let declared = exchange.head.headers.get(http::header::CONTENT_LENGTH);
    let length = declared.and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    length.is_some_and(|length| length > exchange.site.max_body_size as u64)
}

async fn run_front(exchange: &Arc<Exchange>) {
    let mut phase = Phase::Trans;
    // The deepest Content handler on the path, found by the Pre phase's walk.
    let mut mapped_content = None;
    while phase != Phase::Send {
        phase = match phase {
            Phase::Trans => trans(exchange).await,
            Phase::Map => map(exchange),
            Phase::Pre => pre(exchange, &mut mapped_content).await,
            Phase::Content => content(exchange, mapped_content.take()).await,
            Phase::Send => Phase::Send,
        };
        if exchange.is_failed() {
            // The client went away (a handler saw its body read fail): nobody is
            // left to answer, so go straight to Send, which reports the failure.
            return;
        }
    }
}

async fn trans(exchange: &Arc<Exchange>) -> Phase {
    for handler in &exchange.site.trans {
        match call(handler, exchange, "Trans").await {
            Step::Go => {}
            Step::Stop => break,
            Step::Panicked => return Phase::Send,
        }
    }
    Phase::Map
}

/// The start of the Send phase: handlers added with `Request::before_send`.
async fn run_send_hooks(exchange: &Arc<Exchange>) {
    let hooks = std::mem::take(&mut lock(&exchange.request).send_hooks);
    for hook in &hooks {
        if call(hook, exchange, "Send").await == Step::Panicked {
            return;
        }
    }
}

/// Re-normalizes the path when a Trans handler rewrote the URI.
fn map(exchange: &Arc<Exchange>) -> Phase {
    let mut request = lock(&exchange.request);
    if request.uri == exchange.head.uri {
        return Phase::Pre;
    }
    match normalize_path(request.uri.path()) {
        Ok(path) => {
            request.path = path.into();
            Phase::Pre
        }
        Err(error) => {
            drop(request);
            tracing::warn!(%error, "a Trans handler rewrote the URI to a refused path");
            exchange.answer_error(StatusCode::BAD_REQUEST);
            Phase::Send
        }
    }
}

/// Runs the Pre handlers of every entry on the path, shallowest first, and notes the
/// deepest Content handler on the way, so the map is walked once for both.
async fn pre(exchange: &Arc<Exchange>, mapped_content: &mut Option<SharedHandler>) -> Phase {
    let path = exchange.path();
    let site = Arc::clone(&exchange.site);
    for entry in site.map.matches(&path) {
        if let Some(handler) = &entry.content {
            *mapped_content = Some(handler.clone());
        }
        for handler in &entry.pre {
            match call(handler, exchange, "Pre").await {
                Step::Go => {}
                Step::Stop => {
                    deny(exchange);
                    return Phase::Send;
                }
                Step::Panicked => return Phase::Send,
            }
        }
    }
    Phase::Content
}

async fn content(exchange: &Arc<Exchange>, mapped: Option<SharedHandler>) -> Phase {
    let chosen = lock(&exchange.request).content_override.clone();
    let Some(handler) = chosen.or(mapped) else {
        exchange.answer_error(StatusCode::NOT_FOUND);
        return Phase::Send;
    };
    if call(&handler, exchange, "Content").await == Step::Stop {
        deny(exchange);
    }
    Phase::Send
}

/// `Deny` from a Pre or Content handler: 403, unless the handler chose an error status.
fn deny(exchange: &Exchange) {
    let status = lock(&exchange.response).status;
    if !(status.is_client_error() || status.is_server_error()) {
        exchange.answer_error(StatusCode::FORBIDDEN);
    }
}

/// Calls one handler, waits out `Wait`, and turns a panic into a logged 500.
async fn call(handler: &SharedHandler, exchange: &Arc<Exchange>, phase: &'static str) -> Step {
    exchange.gate.arm();
    let request = Request::new(Arc::clone(exchange));
    let response = Response::new(Arc::clone(exchange));
    // The call itself is inside the future, so a synchronous handler's panic is
    // caught as well as an async one's.
    let run = AssertUnwindSafe(async move { handler.call(request, response).await });
    match run.catch_unwind().await {
        Ok(Outcome::Ok) => Step::Go,
        Ok(Outcome::Deny) => Step::Stop,
        Ok(Outcome::Wait) => {
            exchange.gate.passed().await;
            Step::Go
        }
        Err(panic) => {
            tracing::error!(
                phase,
                path = %exchange.path(),
                "handler panicked: {}",
                panic_message(panic.as_ref())
            );
            if !lock(&exchange.response).sent {
                exchange.answer_error(StatusCode::INTERNAL_SERVER_ERROR);
            }
            Step::Panicked
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(no message)"
    }
}

/// The Send phase: default headers, cookies, `Content-Length` (by hyper, from the
/// body's exact size, as is `Date`), and the tail handed to the body.
fn send(
    exchange: &Arc<Exchange>,
    tail: Option<Tail>,
    conn: Arc<ConnState>,
) -> http::Response<ResponseBody> {
    let misuse = lock(&exchange.response).misuse.take();
    if let Some(misuse) = misuse {
        tracing::error!(path = %exchange.path(), "handler misused the response: {misuse}");
        exchange.answer_error(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let tail = tail.and_then(|mut tail| tail.has_work().then_some(tail));
    let mut state = lock(&exchange.response);
    state.sent = true;
    // Post handlers may still look at the headers, so only then are they copied.
    let mut headers = if tail.is_some() {
        state.headers.clone()
    } else {
        std::mem::take(&mut state.headers)
    };
    for name in exchange.site.default_headers.keys() {
        if !headers.contains_key(name) {
            for value in exchange.site.default_headers.get_all(name) {
                headers.append(name, value.clone());
            }
        }
    }
    for cookie in &state.cookies {
        match HeaderValue::try_from(cookie.encoded().to_string()) {
            Ok(value) => {
                headers.append(SET_COOKIE, value);
            }
            Err(_) => tracing::error!(cookie = cookie.name(), "cookie is not a valid header"),
        }
    }
    let status = state.status;
    exchange.server.stats.answered(status);
    let source = match state.stream.take() {
        // The channel stays reachable from the Response for `send` and `close`.
        Some(Source::Channel(channel)) => {
            state.stream = Some(Source::Channel(Arc::clone(&channel)));
            Source::Channel(channel)
        }
        Some(source) => source,
        None => Source::Full(Some(state.body.clone())),
    };
    drop(state);
    if let Source::Channel(channel) = &source {
        start_stream_handler(exchange, Arc::clone(channel));
    }
    let on_wire = exchange.head.method != Method::HEAD
        && !(status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED);
    let tail = match tail {
        Some(tail) if exchange.is_failed() => {
            let cause = exchange.failure.get().cloned().unwrap_or_default();
            tail.deliver(Delivery::Failed(cause));
            None
        }
        tail => tail,
    };
    let declared = headers.get(http::header::CONTENT_LENGTH);
    let declared = declared.and_then(|v| v.to_str().ok()?.parse().ok());
    let body = ResponseBody::new(source, tail, conn, on_wire, declared);
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Calls the Stream handler (the deepest on the path, else the global one) as the
/// stream starts, then once per flushed block or resume, until the stream ends. A
/// panicking Stream handler cuts the response.
fn start_stream_handler(exchange: &Arc<Exchange>, channel: Arc<StreamChannel>) {
    let (server, site) = (&exchange.server, &exchange.site);
    let path = exchange.path();
    let Some(handler) = site.map.stream(&path).or(site.stream.as_ref()).cloned() else {
        return;
    };
    let exchange = Arc::clone(exchange);
    let cut = server.cut.clone();
    let drive = async move {
        loop {
            if call(&handler, &exchange, "Stream").await == Step::Panicked {
                channel.break_off();
                return;
            }
            tokio::select! {
                more = channel.next_call() => if !more { return },
                () = cut.cancelled() => {
                    channel.break_off();
                    return;
                }
            }
        }
    };
    server.tasks.spawn(drive);
}

/// How an exchange ended for the client.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// The whole response reached the socket.
    Flushed,
    /// The socket failed first, for this reason.
    Failed(String),
}

/// The back half of one request, waiting to learn how the exchange ended.
#[derive(Debug)]
pub(crate) struct Tail {
    exchange: Arc<Exchange>,
    conn: Arc<ConnState>,
    /// Set once [`Tail::has_work`] said yes, so delivery need not walk the map again.
    has_work: bool,
}

impl Tail {
    fn new(exchange: Arc<Exchange>, conn: Arc<ConnState>) -> Self {
        Self {
            exchange,
            conn,
            has_work: false,
        }
    }

    /// Reports whether any Post or Error handler would run for this request.
    fn has_work(&mut self) -> bool {
        if !self.has_work {
            let path = self.exchange.path();
            self.has_work = !lock(&self.exchange.request).extra_post.is_empty()
                || (self.exchange.site.map.matches(&path))
                    .any(|entry| !entry.post.is_empty() || entry.error.is_some());
        }
        self.has_work
    }

    /// Runs the back half. It is polled once right here, so handlers that finish at
    /// once (the common, synchronous kind) cost no task; what is left then continues
    /// in a task of its own, tracked for shutdown.
    pub(crate) fn deliver(mut self, delivery: Delivery) {
        let failed = matches!(delivery, Delivery::Failed(_));
        if let Delivery::Failed(cause) = delivery {
            tracing::debug!(connection = self.conn.info.id, %cause, "exchange failed");
            self.exchange.fail(cause);
            self.conn.error_reported.store(true, Ordering::Release);
        }
        if !self.has_work() {
            return;
        }
        // Handlers may use tokio (timers, I/O) even on their first poll.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("runtime gone: Error and Post handlers skipped");
            return;
        };
        let server = Arc::clone(&self.exchange.server);
        let cut = server.cut.clone();
        let exchange = self.exchange;
        let back = async move {
            tokio::select! {
                biased;
                () = run_back(&exchange, failed) => {}
                () = cut.cancelled() => tracing::warn!(
                    path = %exchange.path(),
                    "Post handlers cut: still running at the shutdown deadline"
                ),
            }
        };
        let mut back = Box::pin(back);
        // A future may be polled with one waker and then moved to another: the
        // spawned task's first poll registers the task's own.
        let mut first_poll = std::task::Context::from_waker(std::task::Waker::noop());
        if back.as_mut().poll(&mut first_poll).is_ready() {
            return;
        }
        server.tasks.spawn_on(back, &runtime);
    }
}

/// The phases behind the client: Error (when the socket failed), Post, Cleanup.
async fn run_back(exchange: &Arc<Exchange>, failed: bool) {
    let path = exchange.path();
    let map = &exchange.site.map;
    if failed && let Some(handler) = map.error(&path) {
        let _ = call(handler, exchange, "Error").await;
    }
    let extra = std::mem::take(&mut lock(&exchange.request).extra_post);
    let post = map
        .matches(&path)
        .flat_map(|entry| &entry.post)
        .chain(&extra);
    for handler in post {
        if call(handler, exchange, "Post").await == Step::Stop {
            break;
        }
    }
    // Cleanup: dropping the last handles frees the exchange.
}

/// Holds the tail while the front half runs; if hyper drops the request's future
/// (the client left), the exchange is delivered as failed.
struct InFlight(Option<Tail>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(tail) = self.0.take() {
            let cause = "the client went away before the response was ready";
            tail.deliver(Delivery::Failed(cause.to_owned()));
        }
    }
}

/// A connection failed in the middle of a request head: the Error handler of `/` (and
/// the Post handlers of `/`) run with a placeholder `GET /` request marked as failed.
pub(crate) fn report_aborted_head(shared: &Arc<Shared>, conn: &Arc<ConnState>, cause: String) {
    let head = RequestHead {
        method: Method::GET,
        version: Version::HTTP_11,
        uri: Uri::from_static("/"),
        headers: http::HeaderMap::new(),
    };
    let connection = Connection::new(Arc::clone(&conn.info));
    let exchange = Exchange::new(
        head,
        None,
        http::Extensions::new(),
        "/".into(),
        connection,
        Arc::clone(shared),
    );
    let tail = Tail::new(exchange, Arc::clone(conn));
    tail.deliver(Delivery::Failed(format!(
        "the client went away mid-request: {cause}"
    )));
}
