//! One proxied request: the upstream request built from the client's, sent to the
//! upstream the pool picks (the next one when an idempotent request could not
//! connect and none of its body went out), watched by the head and idle timeouts,
//! and the answer handed to the client — or `502`/`504` with a plain text body.

use std::error::Error as _;
use std::io;
use std::sync::Arc;

use hyper::body::Incoming;
use smallvec::SmallVec;

use super::body::{Answer, OutgoingBody};
use super::conn::{ConnError, UpstreamConn};
use super::headers::{self, Client};
use super::pool::{Member, Transport};
use super::report::{ProxyFailure, ProxyReport};
use super::{HostHeader, Proxy, tunnel};
use crate::http::header::{self, HeaderMap, HeaderValue};
use crate::http::uri::{Authority, PathAndQuery, Scheme};
use crate::http::{Method, Uri, Version};
use crate::{Outcome, Request, RequestBody, Response, normalize_path};

/// Forwards `request` and sets `response` from the upstream's answer.
pub(super) async fn forward(proxy: &Proxy, request: &Request, response: &Response) -> Outcome {
    let report = ProxyReport::new();
    request.insert_extension(report.clone());
    let switch = tunnel::Switch::asked(request, proxy.settings.client.http2);
    // The first attempt takes the head; a retry (rare: the upstream could not be
    // reached) builds it again rather than every request copying it.
    let mut head = Some(Head::of(proxy, request, switch.as_ref()));
    // A tunnel's request has no body of its own: over HTTP/2 the stream is the tunnel.
    let mut body = match switch {
        Some(_) => Some(RequestBody::empty()),
        None => Some(request.take_body().unwrap_or_else(|_| RequestBody::empty())),
    };
    let idempotent = is_idempotent(request.method());
    let mut tried: SmallVec<[usize; 4]> = SmallVec::new();
    // Set when a reused connection broke before its answer: the same upstream is
    // tried once more, on a fresh connection.
    let mut again: Option<usize> = None;
    let mut went_again = false;
    loop {
        let fresh = again.is_some();
        let index = match again.take() {
            Some(index) => index,
            None => {
                let Some(index) = proxy.pool.pick(&tried) else {
                    let failure = ProxyFailure::NoLiveUpstream;
                    tracing::warn!("proxy: {} for {}", failure, request.path());
                    return refuse(response, &report, failure);
                };
                tried.push(index);
                report.note_attempt(proxy.pool.member(index).upstream.name());
                index
            }
        };
        let member = proxy.pool.member(index);
        let lease = proxy.pool.lease(index);
        let (outgoing, mut given_back) =
            OutgoingBody::new(body.take().unwrap_or_else(RequestBody::empty));
        let head = head
            .take()
            .unwrap_or_else(|| Head::of(proxy, request, switch.as_ref()));
        let upstream_request = head.into_request(member, outgoing);
        let sent = send(proxy, member, upstream_request, fresh, switch.is_some()).await;
        match sent {
            Ok((answer, conn)) => {
                proxy.pool.succeeded(index);
                report.note_head(answer.status());
                if let Some(switch) = &switch
                    && tunnel::Switch::accepted(&answer)
                {
                    return tunnel::relay(switch, answer, request, response, lease, &report);
                }
                let (idle, upstream) = (
                    proxy.settings.idle_timeout,
                    Arc::clone(member.upstream.name()),
                );
                let report = report.clone();
                let body = relay(answer, response, |incoming| {
                    Answer::new(incoming, conn, idle, report, upstream, lease)
                });
                response.set_body(body.into_body().await);
                return Outcome::Ok;
            }
            Err(failed) => {
                body = given_back.take();
                if !went_again && body.is_some() && failed.may_go_again(idempotent) {
                    tracing::debug!(
                        upstream = %member.upstream,
                        "proxy: upstream {}: a reused connection broke ({}); once more on a fresh one",
                        member.upstream,
                        failed.detail
                    );
                    went_again = true;
                    again = Some(index);
                    continue;
                }
                proxy.pool.failed(index);
                let Failed {
                    failure, detail, ..
                } = failed;
                tracing::warn!(
                    upstream = %member.upstream,
                    "proxy: upstream {}: {failure} ({detail}) for {} {}",
                    member.upstream,
                    request.method(),
                    request.path()
                );
                let may_retry = matches!(
                    failure,
                    ProxyFailure::ConnectFailed | ProxyFailure::ConnectTimeout
                ) && idempotent
                    && body.is_some()
                    && proxy.pool.has_another(&tried);
                if !may_retry {
                    return refuse(response, &report, failure);
                }
            }
        }
    }
}

/// Safe to send twice (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Answers the client for a failure before the response head: `502` or `504`.
fn refuse(response: &Response, report: &ProxyReport, failure: ProxyFailure) -> Outcome {
    report.note_failure(failure);
    let status = failure.status();
    response.set_status(status);
    response.set_content_type("text/plain; charset=utf-8");
    response.set_body(format!(
        "{} {}: {failure}.\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    ));
    Outcome::Ok
}

/// Why one attempt got no answer head.
struct Failed {
    failure: ProxyFailure,
    detail: String,
    /// Set for a reused connection that broke before its answer (see
    /// [`ConnError::may_go_again`]).
    conn_error: Option<ConnError>,
}

impl Failed {
    fn may_go_again(&self, idempotent: bool) -> bool {
        self.conn_error
            .as_ref()
            .is_some_and(|error| error.may_go_again(idempotent))
    }
}

/// Sends `upstream_request` and waits for the head, within the timeouts. The
/// connection comes back with the head when the proxy drives it (HTTP/1.1 other
/// than a protocol switch); a `fresh` one is opened for it rather than an idle one
/// taken.
async fn send(
    proxy: &Proxy,
    member: &Member,
    upstream_request: http::Request<OutgoingBody>,
    fresh: bool,
    switch: bool,
) -> Result<(http::Response<Incoming>, Option<UpstreamConn>), Failed> {
    let progress = upstream_request.body().progress();
    let settings = &proxy.settings;
    let answer = async {
        match &member.transport {
            Transport::Http2(client) => client
                .request(upstream_request)
                .await
                .map(|head| (head, None))
                .map_err(|error| classify(&error)),
            Transport::Http1(pool) if switch => pool
                .exchange_upgradeable(upstream_request)
                .await
                .map(|head| (head, None))
                .map_err(Failed::from),
            Transport::Http1(pool) => pool
                .exchange(upstream_request, fresh)
                .await
                .map(|(head, conn)| (head, Some(conn)))
                .map_err(Failed::from),
        }
    };
    tokio::pin!(answer);
    loop {
        let deadline = progress.deadline(settings.head_timeout, settings.idle_timeout);
        tokio::select! {
            result = &mut answer => return result,
            () = tokio::time::sleep_until(deadline.into()) => {
                // The body may have moved on meanwhile, pushing the deadline back.
                if progress.deadline(settings.head_timeout, settings.idle_timeout) <= std::time::Instant::now() {
                    return Err(Failed {
                        failure: ProxyFailure::HeadTimeout,
                        detail: "no answer in time".to_owned(),
                        conn_error: None,
                    });
                }
            }
        }
    }
}

impl From<ConnError> for Failed {
    fn from(error: ConnError) -> Self {
        let detail = error.detail();
        let failure = match &error {
            ConnError::Connect(io) if io.kind() == io::ErrorKind::TimedOut => {
                ProxyFailure::ConnectTimeout
            }
            ConnError::Connect(_) => ProxyFailure::ConnectFailed,
            ConnError::Broken { .. } => ProxyFailure::Broken,
        };
        Self {
            failure,
            detail,
            conn_error: Some(error),
        }
    }
}

/// Sorts a client error: could not connect (in time), or broke before the head.
fn classify(error: &hyper_util::client::legacy::Error) -> Failed {
    let detail = chain(error);
    let failure = if error.is_connect() {
        connect_failure(error)
    } else {
        ProxyFailure::Broken
    };
    Failed {
        failure,
        detail,
        conn_error: None,
    }
}

/// A connect error's kind: timed out or not.
fn connect_failure(error: &hyper_util::client::legacy::Error) -> ProxyFailure {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::TimedOut
        {
            return ProxyFailure::ConnectTimeout;
        }
        source = cause.source();
    }
    ProxyFailure::ConnectFailed
}

/// An error and its causes, on one line.
pub(super) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Hands the upstream's answer head to the client — status, end-to-end headers,
/// `Via` — and returns its body.
fn relay(
    answer: http::Response<Incoming>,
    response: &Response,
    body: impl FnOnce(Incoming) -> Answer,
) -> Answer {
    let (parts, incoming) = answer.into_parts();
    let mut headers = parts.headers;
    headers::remove_hop_by_hop(&mut headers);
    headers::add_via(&mut headers, parts.version);
    response.set_status(parts.status);
    response.extend_headers(headers);
    body(incoming)
}

/// What every attempt of one request sends, whichever upstream it goes to.
pub(super) struct Head {
    method: Method,
    path_and_query: PathAndQuery,
    headers: HeaderMap,
    /// The `Host` to send when it is the client's or a fixed one; `None`: the
    /// upstream's own.
    host: Option<HeaderValue>,
}

impl Head {
    fn of(proxy: &Proxy, request: &Request, switch: Option<&tunnel::Switch>) -> Self {
        let settings = &proxy.settings;
        let mut headers = request.headers().clone();
        // Room for what is added (X-Forwarded-*, Via, Host) in one growth.
        headers.reserve(6);
        headers::remove_hop_by_hop(&mut headers);
        // hyper's client sends the body at once; an upstream waiting for
        // `100-continue` is answered by the body itself.
        headers.remove(header::EXPECT);
        headers.remove(header::HOST);
        let client_host = request.host();
        let host_value = HeaderValue::from_str(&client_host).ok();
        let client = Client {
            addr: request.connection().remote_addr(),
            https: request.connection().tls().is_some(),
            host: &client_host,
            host_value: host_value.clone(),
            version: request.version(),
        };
        headers::add_forwarding(&mut headers, &client, settings.forwarded);
        let mut method = request.method().clone();
        if let Some(switch) = switch {
            switch.prepare(&mut method, &mut headers);
        }
        let host = match &settings.host {
            HostHeader::Pass => host_value,
            HostHeader::Upstream => None,
            HostHeader::Fixed(value) => Some(value.clone()),
        };
        Self {
            method,
            path_and_query: upstream_target(request, settings.strip_prefix.as_deref()),
            headers,
            host,
        }
    }

    /// The request for `member`, with `body`.
    fn into_request(self, member: &Member, body: OutgoingBody) -> http::Request<OutgoingBody> {
        let upstream_authority = member.upstream.authority();
        let host = self
            .host
            .or_else(|| HeaderValue::from_str(upstream_authority.as_str()).ok());
        let mut headers = self.headers;
        // HTTP/1.1 names the host in `Host` and the target in origin form (hyper's
        // connection writes the URI as it is); HTTP/2 names the host in the URI
        // (`:authority`), whose pool then keys on it.
        let (version, uri) = if member.client_is_http2() {
            let authority = host
                .as_ref()
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.parse::<Authority>().ok())
                .unwrap_or(upstream_authority);
            let uri = Uri::builder()
                .scheme(Scheme::HTTP)
                .authority(authority)
                .path_and_query(self.path_and_query)
                .build()
                .unwrap_or_else(|_| Uri::from_static("/"));
            (Version::HTTP_2, uri)
        } else {
            if let Some(host) = host {
                headers.insert(header::HOST, host);
            }
            (Version::HTTP_11, Uri::from(self.path_and_query))
        };
        let mut upstream_request = http::Request::new(body);
        *upstream_request.method_mut() = self.method;
        *upstream_request.uri_mut() = uri;
        *upstream_request.version_mut() = version;
        *upstream_request.headers_mut() = headers;
        upstream_request
    }
}

/// The path and query the upstream sees: the request's own (as the client wrote it,
/// so its encoding is kept, unless that differs from the normalized path the
/// handlers were mapped by; then the normalized one, encoded again), less the
/// prefix when one is stripped.
fn upstream_target(request: &Request, strip: Option<&str>) -> PathAndQuery {
    let uri = request.uri();
    let normal = request.path();
    let raw = uri.path();
    // The pipeline's path is the normalized raw one: equal, it needs no second look.
    let raw_is_normal = raw == normal || normalize_path(raw).is_ok_and(|n| n == normal);
    if let (None, true, Some(target)) = (strip, raw_is_normal, uri.path_and_query()) {
        return target.clone();
    }
    let path = match (strip, raw_is_normal) {
        (None, true) => raw.to_owned(),
        (None, false) => encode(normal),
        (Some(prefix), true) if under(raw, prefix) => relative(raw, prefix),
        (Some(prefix), _) => relative(&encode(normal), prefix),
    };
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    target
        .parse()
        .unwrap_or_else(|_| PathAndQuery::from_static("/"))
}

/// Whether `path` lies in the directory `prefix` (whole segments).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `path` without `prefix`; `/` when nothing is left.
fn relative(path: &str, prefix: &str) -> String {
    match path.strip_prefix(prefix) {
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        Some("") => "/".to_owned(),
        _ => path.to_owned(),
    }
}

/// A decoded path put back into URI form.
fn encode(path: &str) -> String {
    percent_encoding::utf8_percent_encode(path, super::super::tower::PATH_ESCAPES).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stripped_prefix_leaves_the_rest_or_the_root() {
        assert_eq!(relative("/app/users", "/app"), "/users");
        assert_eq!(relative("/app", "/app"), "/");
        assert!(under("/app/x", "/app") && under("/app", "/app"));
        assert!(!under("/application", "/app"));
    }

    #[test]
    fn only_idempotent_methods_are_retried() {
        assert!(is_idempotent(&Method::GET) && is_idempotent(&Method::PUT));
        assert!(!is_idempotent(&Method::POST) && !is_idempotent(&Method::PATCH));
    }
}
