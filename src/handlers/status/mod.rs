//! [`ServerStatus`]: the live status page, like Apache's mod_status — an HTML page
//! that draws its own chart (no CDN, no external script), `?json`, and Prometheus
//! text at `?metrics`.

use std::fmt::Write as _;

use http::StatusCode;
use serde_json::json;

use crate::{Handler, HandlerFuture, Outcome, Request, Response, Stats};

/// The page itself; its script polls `?json` every second.
const PAGE: &str = include_str!("page.html");

/// The status page as a Content handler. Served only to loopback clients unless
/// [`allow_remote`](ServerStatus::allow_remote) is set; others get `403`.
///
/// ```
/// use poco_httpd::handlers::ServerStatus;
/// use poco_httpd::{Outcome, Request, Response, Server};
///
/// let builder = Server::builder()
///     .content("/", |_req: Request, res: Response| { res.set_body("hi"); Outcome::Ok })
///     .content("/server-status", ServerStatus::new());
/// # drop(builder);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServerStatus {
    allow_remote: bool,
}

impl ServerStatus {
    /// A status page for loopback clients only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also serve clients that are not on loopback.
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.allow_remote = allow;
        self
    }

    fn admits(&self, client: std::net::IpAddr) -> bool {
        self.allow_remote || client.is_loopback()
    }
}

impl Handler for ServerStatus {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let outcome = if !self.admits(request.connection().remote_addr().ip()) {
            Outcome::Deny
        } else {
            let stats = request.server_stats();
            let (content_type, body) = match request.query().as_deref() {
                Some("json") => ("application/json", json_figures(&stats)),
                Some("metrics") => (
                    "text/plain; version=0.0.4; charset=utf-8",
                    prometheus(&stats),
                ),
                _ => ("text/html; charset=utf-8", PAGE.to_owned()),
            };
            response.set_status(StatusCode::OK);
            response.set_content_type(content_type);
            response.set_header(http::header::CACHE_CONTROL, "no-store");
            response.set_body(body);
            Outcome::Ok
        };
        HandlerFuture::ready(outcome)
    }
}

fn json_figures(stats: &Stats) -> String {
    json!({
        "uptime_seconds": stats.uptime_seconds(),
        "requests_total": stats.requests(),
        "requests_per_second": stats.requests_per_second(),
        "in_flight": stats.in_flight(),
        "open_connections": stats.open_connections(),
        "open_websockets": stats.open_upgraded(),
        "bytes_sent": stats.bytes_sent(),
        "responses": {
            "1xx": stats.responses_of_class(1),
            "2xx": stats.responses_of_class(2),
            "3xx": stats.responses_of_class(3),
            "4xx": stats.responses_of_class(4),
            "5xx": stats.responses_of_class(5),
        },
        "per_second": stats.per_second(),
    })
    .to_string()
}

fn prometheus(stats: &Stats) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    metric(
        "poco_httpd_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        stats.uptime_seconds().to_string(),
    );
    metric(
        "poco_httpd_requests_total",
        "counter",
        "Requests answered.",
        stats.requests().to_string(),
    );
    metric(
        "poco_httpd_requests_per_second",
        "gauge",
        "Requests per second over the last minute.",
        format!("{:.3}", stats.requests_per_second()),
    );
    metric(
        "poco_httpd_in_flight_requests",
        "gauge",
        "Requests being worked on.",
        stats.in_flight().to_string(),
    );
    metric(
        "poco_httpd_open_connections",
        "gauge",
        "Client connections open.",
        stats.open_connections().to_string(),
    );
    metric(
        "poco_httpd_open_websockets",
        "gauge",
        "WebSockets (and other connections taken over after a protocol switch) open.",
        stats.open_upgraded().to_string(),
    );
    metric(
        "poco_httpd_sent_bytes_total",
        "counter",
        "Response body bytes sent.",
        stats.bytes_sent().to_string(),
    );
    let _ = write!(
        out,
        "# HELP poco_httpd_responses_total Responses by status class.\n# TYPE poco_httpd_responses_total counter\n"
    );
    for class in 1..=5 {
        let _ = writeln!(
            out,
            "poco_httpd_responses_total{{class=\"{class}xx\"}} {}",
            stats.responses_of_class(class)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_clients_unless_allowed() {
        let local: std::net::IpAddr = "127.0.0.1".parse().expect("ip");
        let remote: std::net::IpAddr = "192.0.2.7".parse().expect("ip");
        assert!(ServerStatus::new().admits(local));
        assert!(ServerStatus::new().admits("::1".parse().expect("ip")));
        assert!(!ServerStatus::new().admits(remote));
        assert!(ServerStatus::new().allow_remote(true).admits(remote));
    }
}
