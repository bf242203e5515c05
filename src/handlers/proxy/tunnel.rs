//! Protocol switches passed through: a request asking to switch (HTTP/1.1
//! `Upgrade`, or an HTTP/2 extended CONNECT) goes upstream as an HTTP/1.1 `Upgrade`;
//! when the upstream answers `101`, the client gets its switch (`101`, or `200` on
//! HTTP/2) and a task copies bytes both ways until either side closes or the
//! server shuts down. A WebSocket over HTTP/2 gets the `Sec-WebSocket-Key` its
//! HTTP/1.1 handshake needs (RFC 8441 drops it), and the client is not shown the
//! upstream's `Sec-WebSocket-Accept`.

use base64::Engine as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::headers;
use super::pool::Lease;
use super::report::ProxyReport;
use crate::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use crate::http::{Method, StatusCode, Version};
use crate::{Outcome, Request, Response};

/// A switch the client asked for.
#[derive(Debug)]
pub(super) struct Switch {
    protocol: String,
    /// Asked as an HTTP/2 extended CONNECT.
    over_http2: bool,
}

impl Switch {
    /// The switch `request` asks for, if any and if it can be forwarded (an
    /// HTTP/2 upstream has no `Upgrade`).
    pub(super) fn asked(request: &Request, upstream_http2: bool) -> Option<Self> {
        if upstream_http2 {
            return None;
        }
        let protocol = request.upgrade_protocol()?;
        Some(Self {
            protocol,
            over_http2: request.version() >= Version::HTTP_2,
        })
    }

    /// Turns the upstream request into an HTTP/1.1 upgrade request.
    pub(super) fn prepare(&self, method: &mut Method, headers: &mut HeaderMap) {
        let Ok(protocol) = HeaderValue::from_str(&self.protocol) else {
            return;
        };
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
        if self.over_http2 {
            *method = Method::GET;
            if self.protocol.eq_ignore_ascii_case("websocket") {
                headers.insert(
                    HeaderName::from_static("sec-websocket-key"),
                    websocket_key(),
                );
            }
        }
    }

    /// Whether `answer` accepts the switch.
    pub(super) fn accepted(answer: &http::Response<Incoming>) -> bool {
        answer.status() == StatusCode::SWITCHING_PROTOCOLS
    }
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64 (RFC 6455 §4.1).
fn websocket_key() -> HeaderValue {
    let mut nonce = [0_u8; 16];
    // Without randomness the key is still well-formed; it is a nonce, not a secret.
    let _ = getrandom::fill(&mut nonce);
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    HeaderValue::from_str(&key)
        .unwrap_or_else(|_| HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAA=="))
}

/// The upstream switched: switch the client too and tunnel between them.
pub(super) fn relay(
    switch: &Switch,
    mut answer: http::Response<Incoming>,
    request: &Request,
    response: &Response,
    lease: Lease,
    report: &ProxyReport,
) -> Outcome {
    let upstream = hyper::upgrade::on(&mut answer);
    let Ok(client) = request.upgrade() else {
        response.set_status(StatusCode::INTERNAL_SERVER_ERROR);
        return Outcome::Ok;
    };
    let mut answer_headers = std::mem::take(answer.headers_mut());
    headers::remove_hop_by_hop(&mut answer_headers);
    if switch.over_http2 {
        answer_headers.remove("sec-websocket-accept");
    }
    headers::add_via(&mut answer_headers, answer.version());
    response.extend_headers(answer_headers);
    let shutdown = request.shutdown_handle();
    let report = report.clone();
    request.spawn(async move {
        let _counted = lease;
        let (Ok(mut client), Ok(upstream)) = tokio::join!(client, upstream) else {
            return;
        };
        let mut upstream = TokioIo::new(upstream);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            () = shutdown.requested() => {}
        }
        report.note_end();
    });
    response.switch_protocols(&switch.protocol)
}
