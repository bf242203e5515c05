//! Active health checks: a task per proxy that asks each upstream for a path every
//! interval and marks it down while the answer is not `2xx`/`3xx` (or does not come
//! within the connect and head timeouts). The task holds the pool weakly, so it ends
//! once the proxy is dropped — after a reload replaced it, say.

use std::sync::Weak;
use std::time::Duration;

use super::body::OutgoingBody;
use super::pool::{Member, Pool, Transport};
use crate::RequestBody;
use crate::http::{Method, Request, Uri, header};

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
    let authority = member.upstream.authority();
    let Ok(uri) = Uri::builder()
        .scheme("http")
        .authority(authority.clone())
        .path_and_query(path)
        .build()
    else {
        return false;
    };
    let (body, _) = OutgoingBody::new(RequestBody::empty());
    let Ok(request) = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(header::HOST, authority.as_str())
        .header(header::USER_AGENT, "poco-httpd health check")
        .body(body)
    else {
        return false;
    };
    // A check takes a connection of its own, leaving the pooled ones to requests.
    let status = async {
        match &member.transport {
            Transport::Http1(pool) => pool
                .exchange(request, true)
                .await
                .ok()
                .map(|(head, _)| head.status()),
            Transport::Http2(client) => {
                client.request(request).await.ok().map(|head| head.status())
            }
        }
    };
    let status = tokio::time::timeout(timeout, status).await;
    matches!(status, Ok(Some(status)) if status.is_success() || status.is_redirection())
}
