//! [`Redirect`]: a Content handler that sends the client elsewhere.

use http::StatusCode;
use http::header::LOCATION;

use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Answers every request with a redirect to a fixed location, e.g. `/honk` →
/// `/honk/`.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::Redirect;
/// use poco_httpd::http::StatusCode;
///
/// let builder = Server::builder()
///     .content("/honk", Redirect::new("/honk/").status(StatusCode::MOVED_PERMANENTLY));
/// # drop(builder);
/// ```
#[derive(Debug, Clone)]
pub struct Redirect {
    location: String,
    status: StatusCode,
}

impl Redirect {
    /// A `302 Found` redirect to `location`.
    pub fn new(location: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            status: StatusCode::FOUND,
        }
    }

    /// The status to answer with (301, 302, 303, 307 or 308).
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl Handler for Redirect {
    fn call(&self, _request: Request, response: Response) -> HandlerFuture {
        let outcome = match response.try_set_header(LOCATION, self.location.as_str()) {
            Ok(()) => {
                response.set_status(self.status);
                response.set_body(format!("{} {}\n", self.status, self.location));
                Outcome::Ok
            }
            Err(error) => {
                tracing::error!(%error, location = %self.location, "redirect location is not a valid header");
                response.set_status(StatusCode::INTERNAL_SERVER_ERROR);
                Outcome::Ok
            }
        };
        HandlerFuture::ready(outcome)
    }
}
