//! Active health checks: a task per proxy that asks each upstream for a path every
//! interval and marks it down while the answer is not `2xx`/`3xx` (or does not come
//! within the connect and head timeouts). The task holds the pool weakly, so it ends
//! once the proxy is dropped — after a reload replaced it, say.

use std::sync::Weak;
use std::time::Duration;

use super::body::OutgoingBody;
use super::pool::{Member, Pool, Transport};
use crate::RequestBody;
use http_body_util::BodyExt as _;

use crate::http::{Method, Request, StatusCode, Uri, header};

/// Where and how often to check.
#[derive(Debug, Clone)]
pub(super) struct HealthCheck {
    pub(super) path: String,
    pub(super) interval: Duration,
}

/// Starts the checks on the current tokio runtime; one check may take `timeout`.
pub(super) fn spawn(pool: Weak<Pool>, check: HealthCheck, timeout: Duration) {
    tokio::spawn(async move {
        loop {
            let Some(pool) = pool.upgrade() else { return };
            for member in pool.members() {
                let healthy = probe(member, &check.path, timeout).await;
                member.set_check_failed(!healthy);
            }
            drop(pool);
            tokio::time::sleep(check.interval).await;
        }
    });
}

/// One check of one upstream.
async fn probe(member: &Member, path: &str, timeout: Duration) -> bool {
    let status = tokio::time::timeout(timeout, ask(member, path)).await;
    matches!(status, Ok(Some(status)) if status.is_success() || status.is_redirection())
}

/// Asks `member` for `path` on a connection of its own (leaving the pooled ones
/// to requests), reads the answer to its end and closes the connection: the
/// answer's status, if one came.
async fn ask(member: &Member, path: &str) -> Option<StatusCode> {
    let authority = member.upstream.authority();
    let uri = match &member.transport {
        // HTTP/1.1 sends the URI as it is: the origin form (`/health`) that
        // servers match paths against, the authority going in `Host`.
        Transport::Http1(_) => Uri::builder().path_and_query(path).build(),
        // HTTP/2 takes `:scheme` and `:authority` from it.
        Transport::Http2(_) => Uri::builder()
            .scheme("http")
            .authority(authority.clone())
            .path_and_query(path)
            .build(),
    }
    .ok()?;
    let (body, _) = OutgoingBody::new(RequestBody::empty());
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(header::HOST, authority.as_str())
        .header(header::USER_AGENT, "poco-httpd health check");
    if let Transport::Http1(_) = member.transport {
        // The connection is not kept: the upstream may close it after the answer.
        request = request.header(header::CONNECTION, "close");
    }
    let request = request.body(body).ok()?;
    match &member.transport {
        Transport::Http1(pool) => {
            let (head, mut conn) = pool.exchange(request, true).await.ok()?;
            let status = head.status();
            // Read to the end before closing, so the upstream sees a clean close
            // rather than a reset of an answer not taken.
            conn.discard(head.into_body()).await;
            Some(status)
        }
        Transport::Http2(client) => {
            let head = client.request(request).await.ok()?;
            let status = head.status();
            let _ = head.into_body().collect().await;
            Some(status)
        }
    }
}
