//! [`Redirect`]: a Content handler that sends the client elsewhere, to a fixed
//! location or one built from the request with nginx's variables `$request_uri` and
//! `$host`.

use http::StatusCode;
use http::header::LOCATION;
use http::uri::Authority;

use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Answers every request with a redirect, e.g. `/honk` → `/honk/`.
///
/// The location may name two variables, spelled as in nginx:
///
/// - `$request_uri` — the path and query as the client sent them (origin form, as
///   received, before any Trans handler rewrote them), e.g. `/a/b?c=d`;
/// - `$host` — the host the client addressed ([`Request::host`]: the request line's
///   authority, else the `Host` header, else the server's host name), lower-cased
///   and without the port. A request whose host is not a valid host name gets
///   `400 Bad Request`.
///
/// Any other `$` is kept as written. Sending plain HTTP to HTTPS:
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::Redirect;
/// use poco_httpd::http::StatusCode;
///
/// let builder = Server::builder()
///     .content("/honk", Redirect::new("/honk/").status(StatusCode::MOVED_PERMANENTLY))
///     .content(
///         "/",
///         Redirect::new("https://$host$request_uri").status(StatusCode::MOVED_PERMANENTLY),
///     );
/// # drop(builder);
/// ```
///
/// The location must make a valid header value (no control characters): otherwise
/// the client gets `500` and the error is logged.
#[derive(Debug, Clone)]
pub struct Redirect {
    location: Vec<Part>,
    status: StatusCode,
}

/// A piece of a redirect's location.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    RequestUri,
    Host,
}

impl Redirect {
    /// A `302 Found` redirect to `location`, which may use `$request_uri` and `$host`.
    pub fn new(location: impl Into<String>) -> Self {
        Self {
            location: parse(&location.into()),
            status: StatusCode::FOUND,
        }
    }

    /// The status to answer with (301, 302, 303, 307 or 308).
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The location for `request`; `None` when it needs a host the request lacks.
    fn location_for(&self, request: &Request) -> Option<String> {
        let mut location = String::new();
        for part in &self.location {
            match part {
                Part::Text(text) => location.push_str(text),
                Part::RequestUri => location.push_str(&request_uri(request)),
                Part::Host => location.push_str(&host(request)?),
            }
        }
        Some(location)
    }
}

/// The names a location may use, longest first where one begins another.
const VARIABLES: [(&str, Part); 2] = [("request_uri", Part::RequestUri), ("host", Part::Host)];

/// Splits `location` into text and variables. A variable's name runs as far as
/// letters, digits and `_` go (as in nginx), so `$hostname` is not `$host`.
fn parse(location: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = location;
    while let Some(dollar) = rest.find('$') {
        text.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let known = VARIABLES
            .iter()
            .find(|(name, _)| *name == &after[..name_len]);
        match known {
            Some((_, variable)) => {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(variable.clone());
                rest = &after[name_len..];
            }
            None => {
                text.push('$');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    parts
}

/// `$request_uri`: the received path and query, in origin form even when the client
/// sent an absolute URI (HTTP/2 always does).
fn request_uri(request: &Request) -> String {
    let uri = request.original_uri();
    uri.path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned())
}

/// `$host`: the addressed host without port, if it is a valid host name.
fn host(request: &Request) -> Option<String> {
    let authority: Authority = request.host().parse().ok()?;
    let host = authority.host();
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

impl Handler for Redirect {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let Some(location) = self.location_for(&request) else {
            response.set_status(StatusCode::BAD_REQUEST);
            response.set_body("400 Bad Request: no valid Host\n");
            return HandlerFuture::ready(Outcome::Ok);
        };
        match response.try_set_header(LOCATION, location.as_str()) {
            Ok(()) => {
                response.set_status(self.status);
                response.set_body(format!("{} {location}\n", self.status));
            }
            Err(error) => {
                tracing::error!(%error, %location, "redirect location is not a valid header");
                response.set_status(StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
        HandlerFuture::ready(Outcome::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Part {
        Part::Text(s.to_owned())
    }

    #[test]
    fn variables_are_found_by_their_whole_name() {
        let check = |location: &str, expected: &[Part]| assert_eq!(parse(location), expected);
        check("/honk/", &[text("/honk/")]);
        check(
            "https://$host$request_uri",
            &[text("https://"), Part::Host, Part::RequestUri],
        );
        check(
            "https://example.org$request_uri#top",
            &[text("https://example.org"), Part::RequestUri, text("#top")],
        );
        check("/$hostname/$1/$", &[text("/$hostname/$1/$")]);
        check("$host:8443", &[Part::Host, text(":8443")]);
    }
}
