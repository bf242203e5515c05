//! [`HttpsRedirect`]: what a listener made with `Listener::redirect_to_https` answers
//! every request with — `308 Permanent Redirect` (the method and body are kept, unlike
//! with `301`) to the same host, path and query over `https`, at the port of the
//! server's first TLS listener, which is known only once it is bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use http::StatusCode;
use http::header::LOCATION;

use crate::host_pattern::host_name;
use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// The port HTTPS URLs leave out.
const HTTPS_PORT: u16 = 443;

/// The Content handler of the redirecting listeners' site.
#[derive(Debug, Clone)]
pub(crate) struct HttpsRedirect {
    /// The first TLS listener's port once bound; 0 before (or without one): 443.
    pub(crate) port: Arc<AtomicU16>,
}

impl HttpsRedirect {
    /// The `Location` for `request`.
    fn location(&self, request: &Request) -> String {
        let authority = request.host();
        let name = host_name(&authority);
        let target = request
            .original_uri()
            .path_and_query()
            .map_or("/", |target| target.as_str());
        match self.port.load(Ordering::Relaxed) {
            0 | HTTPS_PORT => format!("https://{name}{target}"),
            port => format!("https://{name}:{port}{target}"),
        }
    }
}

impl Handler for HttpsRedirect {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let location = self.location(&request);
        // A Host value that passed the host check is a valid header value.
        if response.try_set_header(LOCATION, location).is_err() {
            return HandlerFuture::ready(response.deny(StatusCode::BAD_REQUEST));
        }
        response.set_status(StatusCode::PERMANENT_REDIRECT);
        HandlerFuture::ready(Outcome::Ok)
    }
}
