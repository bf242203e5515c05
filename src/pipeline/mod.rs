//! The phase pipeline: explicit state machines over the original module's queue.
//!
//! In front of the client ([`front`]): Trans → Map → Pre → Content → Send, run from
//! hyper's service call. Behind it ([`back`]), once the response has been flushed (or
//! the socket failed): [Error →] Post → Cleanup. Both machines run their handlers
//! right where they stand while the handlers answer at once ([`call`]); the first one
//! that waits hands the rest of its half to an async driver. A request whose handlers
//! are all synchronous thus costs no future, task or timer of its own.

mod back;
mod call;
mod conn;
mod front;
mod send_budget;
mod wire_body;

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use hyper::body::Incoming;

pub(crate) use back::{Delivery, Tail, report_aborted_head};
pub(crate) use conn::{ActiveRequest, AfterFlush, ConnState};
use wire_body::Framing;
pub(crate) use wire_body::WireBody;

use crate::Phase;
use crate::connection::Connection;
use crate::exchange::{Added, Exchange, HandedOver, RequestHead};
use crate::failure::{Failure, FailureKind};
use crate::header_tokens::lists_token;
use crate::host::{HostFields, KnownHost};
use crate::incoming::IncomingBody;
use crate::path::{PathError, normalize};
use crate::shared::Shared;
use crate::site::Site;
use crate::stats::InFlightRequest;
use crate::stream::StreamChannel;
use call::{Machine, Pending, Progress, Step, call, drive};
use front::Front;

/// The response to one request, as hyper's service future: ready at once when every
/// front handler answered at once, else the boxed rest of the front half.
#[expect(
    clippy::large_enum_variant,
    reason = "the ready response is the common case; boxing it would cost an allocation"
)]
pub(crate) enum Responding {
    Ready(Option<http::Response<WireBody>>),
    Later(Pin<Box<dyn Future<Output = http::Response<WireBody>> + Send>>),
}

impl Future for Responding {
    type Output = Result<http::Response<WireBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = match &mut *self {
            Self::Ready(response) => match response.take() {
                Some(response) => response,
                // Polled again after completion: hyper never does.
                None => return Poll::Pending,
            },
            Self::Later(future) => std::task::ready!(future.as_mut().poll(cx)),
        };
        response.body_mut().handed_over();
        Poll::Ready(Ok(response))
    }
}

/// Runs the front half of one HTTP/2 request in the stream's own task, as hyper
/// polls it there: a connection's streams must not wait for each other's handlers.
/// It starts once one of the connection's `max_active_streams` slots is free.
pub(crate) fn respond_in_stream(
    shared: Arc<Shared>,
    site: Arc<Site>,
    mut active: ActiveRequest,
    request: http::Request<Incoming>,
) -> Responding {
    Responding::Later(Box::pin(async move {
        // Beyond `max_active_streams`, a stream waits here, before any handler
        // could open a file for it.
        active.take_stream_slot().await;
        let Ok(response) = respond(shared, site, active, request, None).await;
        response
    }))
}

/// Runs the front half of the pipeline for one request, with the handlers of `site`;
/// see the module docs. `known_host` is the connection's memory of its last valid
/// `Host` value, if the request is answered in the connection's task (HTTP/1).
pub(crate) fn respond(
    shared: Arc<Shared>,
    site: Arc<Site>,
    active: ActiveRequest,
    request: http::Request<Incoming>,
    known_host: Option<&KnownHost>,
) -> Responding {
    shared.stats.request_started();
    let (parts, body) = request.into_parts();
    // A refused path is answered 400, and still reported to the Post handlers of `/`
    // (an access log wants to see it). An already normal path is not copied.
    let (normalized, refused) = match normalize(parts.uri.path()) {
        Ok(Cow::Borrowed(_)) => (None, None),
        Ok(Cow::Owned(path)) => (Some(path.into_boxed_str()), None),
        Err(error) => (Some("/".into()), Some(error)),
    };
    let head = RequestHead {
        method: parts.method,
        version: parts.version,
        uri: parts.uri,
        headers: parts.headers,
    };
    let connection = Connection::new(Arc::clone(&active.conn().info));
    // hyper knows a declared `Content-Length` (HTTP/1 and HTTP/2) as the body's size.
    let declared_body = http_body::Body::size_hint(&body).lower();
    let body = IncomingBody::new(body, connection.limits().body_read_timeout);
    let exchange = Exchange::new(
        head,
        Some(body),
        parts.extensions,
        normalized,
        connection,
        shared,
        site,
    );
    let conn = Arc::clone(active.conn());
    let tail = InFlight(Some(Tail::new(Arc::clone(&exchange), conn)));
    let mut front = Front::default();
    let progress = if refuse(&exchange, refused, declared_body, known_host) {
        Progress::Done
    } else {
        front.run(&exchange)
    };
    let Progress::Pending(pending, phase) = progress else {
        // Answered without waiting: as of its arrival, which saves reading the clock.
        let answered = exchange.received();
        let response = send(&exchange, tail, &front, active, answered);
        return Responding::Ready(Some(response));
    };
    // Until the body exists to end the count, a client leaving drops the guard.
    let counted = InFlightRequest::adopt(exchange.server().stats.clone());
    Responding::Later(Box::pin(async move {
        finish_front(&mut front, &exchange, pending, phase).await;
        let answered = std::time::Instant::now();
        counted.hand_over();
        send(&exchange, tail, &front, active, answered)
    }))
}

/// Answers a request no handler may see: a refused path, an oversized head, a
/// missing, repeated or invalid `Host`, or a declared body over the limit. Returns
/// whether it did; if not, the handlers run.
fn refuse(
    exchange: &Exchange,
    refused_path: Option<PathError>,
    declared_body: u64,
    known_host: Option<&KnownHost>,
) -> bool {
    let head = &exchange.head();
    let mut close = false;
    let mut hosts = HostFields::default();
    let status = if let Some(error) = refused_path {
        tracing::debug!(%error, uri = %head.uri, "refused request path");
        StatusCode::BAD_REQUEST
    } else if head_size(head, &mut hosts) > exchange.connection().limits().max_header_size {
        close = true;
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    } else if let Some(problem) = hosts.problem(head.version, known_host) {
        tracing::debug!(problem, uri = %head.uri, "refused request: Host");
        close = true;
        StatusCode::BAD_REQUEST
    } else if declared_body > exchange.site().max_body_size as u64 {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        return false;
    };
    exchange.answer_error(status);
    if close {
        // As hyper does for heads it refuses itself: answer, then close.
        exchange.close_after_answer();
    }
    true
}

/// Awaits the front half's pending handler and runs the rest, all within
/// `handler_timeout` of the request's arrival.
async fn finish_front(front: &mut Front, exchange: &Arc<Exchange>, pending: Pending, phase: Phase) {
    let limit = exchange.connection().limits().handler_timeout;
    // From the request's arrival, which saves reading the clock again.
    let deadline = tokio::time::Instant::from_std(exchange.received()) + limit;
    let rest = drive(front, exchange, pending, phase);
    if tokio::time::timeout_at(deadline, rest).await.is_err() {
        time_out(exchange, limit);
    }
}

/// The handlers took longer than `handler_timeout`: their futures have been dropped;
/// the client gets 503, and the Error and Post handlers hear of it.
fn time_out(exchange: &Exchange, limit: std::time::Duration) {
    tracing::warn!(path = %exchange.path(), ?limit, "handlers timed out; answering 503");
    exchange.answer_error(StatusCode::SERVICE_UNAVAILABLE);
    let message = format!("the handlers did not answer within {limit:?}");
    exchange.fail(Failure::new(FailureKind::HandlerTimeout, message));
}

/// The size of the request line and headers as sent (HTTP/1 framing), held to
/// `max_header_size`: hyper's own bound is its larger read buffer. The `Host` fields
/// met on the way are noted in `hosts`, which saves looking them up again.
fn head_size<'a>(head: &'a RequestHead, hosts: &mut HostFields<'a>) -> usize {
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
        .map(|(name, value)| {
            hosts.see(name, value);
            name.as_str().len() + value.len() + ": \r\n".len()
        })
        .sum();
    line + fields
}

/// The Send phase: default headers, cookies, `Content-Length` (by hyper, from the
/// body's exact size, as is `Date`), and the tail handed to the body.
fn send(
    exchange: &Arc<Exchange>,
    mut in_flight: InFlight,
    front: &Front,
    active: ActiveRequest,
    answered: std::time::Instant,
) -> http::Response<WireBody> {
    let tail = in_flight.0.take();
    let tail = tail.map(|tail| tail.knowing(front.back_entries()));
    let tail = tail.and_then(|mut tail| tail.has_work().then_some(tail));
    // Post handlers may still look at the headers: only then is a copy kept.
    let HandedOver {
        status,
        mut headers,
        body,
        pushed,
        length_set,
    } = exchange.hand_over(tail.is_some());
    exchange.site().add_default_headers(&mut headers);
    exchange.server().stats.answered(status, answered);
    let head = exchange.head();
    let tunnel = head.method == Method::CONNECT && status.is_success();
    if status == StatusCode::SWITCHING_PROTOCOLS || (tunnel && head.version < http::Version::HTTP_2)
    {
        // hyper hands the connection over after this answer (a `101`, or a `2xx`
        // to a `CONNECT`): its bytes are not HTTP's from here.
        active.conn().note_upgraded();
    }
    if let Some(channel) = &pushed {
        start_stream_handler(exchange, Arc::clone(channel));
    }
    let on_wire = exchange.head().method != Method::HEAD
        && !(status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED);
    let tail = match (tail, exchange.failure().cloned()) {
        // Failed while the handlers ran: a handler timeout's 503 still goes out, but
        // after a broken body read there is nobody left to answer.
        (Some(tail), Some(cause)) => {
            if matches!(
                cause.kind(),
                FailureKind::BodyRead | FailureKind::ClientGone
            ) {
                exchange.note_client_gone();
            }
            tail.deliver(Delivery::Failed(cause));
            None
        }
        (tail, _) => tail,
    };
    // A stream is held to a `Content-Length` a handler declared; a whole body's own
    // size overrules one that disagrees.
    let declared = match body.as_bytes() {
        _ if !length_set => None,
        Some(bytes) => {
            if on_wire {
                overrule_length(exchange, &mut headers, bytes.len());
            }
            None
        }
        None => declared_length(&headers),
    };
    if exchange.added().has(Added::HEADERS) && exchange.head().version < http::Version::HTTP_2 {
        close_if_asked(exchange, &mut headers);
    }
    let http2 = exchange.head().version == http::Version::HTTP_2;
    let framing = Framing {
        on_wire,
        declared,
        http2,
    };
    let body = WireBody::new(body, tail, active, framing).abandoning(pushed);
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The `Content-Length` a handler declared, if it is one number.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let first = values.next()?.to_str().ok()?.parse().ok()?;
    values.next().is_none().then_some(first)
}

/// A whole body goes out with its own size as `Content-Length`: a handler's value
/// that disagrees (or is not one number) would desynchronize the connection, so it
/// is dropped, with a warning, and hyper writes the real size. `HEAD` and `304`
/// answers, which carry no body, keep the size the handler declared.
fn overrule_length(exchange: &Exchange, headers: &mut HeaderMap, size: usize) {
    if !headers.contains_key(CONTENT_LENGTH) || declared_length(headers) == Some(size as u64) {
        return;
    }
    let declared = headers.get(CONTENT_LENGTH).cloned();
    tracing::warn!(
        path = %exchange.path(),
        ?declared,
        size,
        "a handler set a Content-Length that disagrees with the body; sending the body's size"
    );
    headers.remove(CONTENT_LENGTH);
}

/// A handler changed the request's `Connection` header so that it no longer keeps
/// the connection (the original module's way to end a kept-alive stream): the answer
/// says `Connection: close`, and hyper closes the connection after it.
fn close_if_asked(exchange: &Exchange, headers: &mut HeaderMap) {
    let version = exchange.head().version;
    if !keeps_alive(version, exchange.request_headers()) {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
}

/// Whether a request with these headers keeps its connection: HTTP/1.1 unless
/// `Connection` holds the token `close`, HTTP/1.0 only if it holds `keep-alive`.
fn keeps_alive(version: http::Version, headers: &HeaderMap) -> bool {
    let connection = headers.get_all(CONNECTION);
    if version == http::Version::HTTP_10 {
        lists_token(connection, "keep-alive")
    } else {
        !lists_token(connection, "close")
    }
}

/// Calls the Stream handler (the deepest on the path, else the global one) as the
/// stream starts, then once per flushed block or resume, until the stream ends. A
/// panicking Stream handler cuts the response.
fn start_stream_handler(exchange: &Arc<Exchange>, channel: Arc<StreamChannel>) {
    let (server, site) = (&exchange.server(), &exchange.site());
    let Some(handler) = site
        .map
        .stream(exchange.path())
        .or(site.stream.as_ref())
        .cloned()
    else {
        return;
    };
    let exchange = Arc::clone(exchange);
    let cut = server.cut.clone();
    let drive = async move {
        loop {
            if call(&handler, &exchange, Phase::Stream).await == Step::Panicked {
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

/// Holds the tail while the front half runs; if hyper drops the request's future
/// (the client left), the exchange is delivered as failed.
struct InFlight(Option<Tail>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(tail) = self.0.take() {
            let cause = "the client went away before the response was ready";
            tail.deliver(Delivery::Failed(Failure::new(
                FailureKind::ClientGone,
                cause,
            )));
        }
    }
}
