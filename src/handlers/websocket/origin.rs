//! [`is_same_origin`]: the check that a browser's page is on the host it opens a
//! WebSocket to (RFC 6455 §10.2: servers guard against cross-site use by `Origin`).

use http::Uri;
use http::header::{HOST, ORIGIN};

use crate::Request;

/// Reports whether the request's `Origin` names the host and port the request was
/// sent to (its `Host`, or HTTP/2's `:authority`), ignoring case and default ports.
/// A request without `Origin` (not from a browser) passes; an `Origin` of `null` or
/// one that does not parse does not.
///
/// ```
/// use poco_httpd::handlers::websocket::is_same_origin;
/// use poco_httpd::http::StatusCode;
/// use poco_httpd::{Outcome, Request, Response};
///
/// let guard = |req: Request, res: Response| {
///     if req.upgrade_protocol().is_some() && !is_same_origin(&req) {
///         return res.deny(StatusCode::FORBIDDEN);
///     }
///     Outcome::Ok
/// };
/// # fn assert_handler(_: impl poco_httpd::Handler) {}
/// # assert_handler(guard);
/// ```
pub fn is_same_origin(req: &Request) -> bool {
    let Some(origin) = req.header(ORIGIN) else {
        return true;
    };
    let Ok(origin) = Uri::try_from(origin.as_bytes()) else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (origin.scheme_str(), origin.authority()) else {
        return false;
    };
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    let target = req.uri().authority().map(|a| a.as_str().to_owned());
    let Some(target) = target.or_else(|| req.header_text(HOST)) else {
        return false;
    };
    let Ok(target) = target.parse::<http::uri::Authority>() else {
        return false;
    };
    authority.host().eq_ignore_ascii_case(target.host())
        && authority.port_u16().unwrap_or(default_port) == target.port_u16().unwrap_or(default_port)
}
