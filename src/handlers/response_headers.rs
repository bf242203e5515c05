//! [`ResponseHeaders`]: headers added to the responses of a directory, such as
//! `Cache-Control`, on successful answers only or on errors too.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Sets response headers on every answer from a directory: install as a Pre handler.
/// The headers are set just before the head goes out (replacing what a handler set
/// under the same name), on answers below `400` — successes, redirects, `304` —
/// unless [`always`](ResponseHeaders::always) extends them to error answers, as
/// nginx's `add_header … always` does. An empty value removes the header.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::{ResponseHeaders, StaticFiles};
///
/// let assets = ResponseHeaders::new()
///     .header("Cache-Control", "public, max-age=31536000, immutable")?
///     .header("X-Content-Type-Options", "nosniff")?
///     .always(true);
/// let builder = Server::builder()
///     .pre("/assets/", assets)
///     .content("/assets/", StaticFiles::new("/assets/", "./assets"));
/// # drop(builder);
/// # Ok::<(), poco_httpd::http::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ResponseHeaders {
    /// `None` removes the header.
    headers: Arc<Vec<(HeaderName, Option<HeaderValue>)>>,
    always: bool,
}

impl ResponseHeaders {
    /// No headers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header to set; an empty `value` removes the header instead.
    ///
    /// # Errors
    /// When the name or value is not valid in HTTP (a value holding CR or LF, say).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, http::Error> {
        let name = HeaderName::try_from(name)?;
        let value = if value.is_empty() {
            None
        } else {
            Some(HeaderValue::try_from(value)?)
        };
        Arc::make_mut(&mut self.headers).push((name, value));
        Ok(self)
    }

    /// Also set the headers on error answers (`4xx`, `5xx`). Default: off.
    pub fn always(mut self, on: bool) -> Self {
        self.always = on;
        self
    }

    fn apply(&self, response: &Response) {
        if !self.always && response.status().as_u16() >= 400 {
            return;
        }
        for (name, value) in self.headers.iter() {
            match value {
                Some(value) => response.set_header(name, value),
                None => {
                    response.remove_header(name);
                }
            }
        }
    }
}

impl Handler for ResponseHeaders {
    fn call(&self, request: Request, _response: Response) -> HandlerFuture {
        let headers = self.clone();
        request.before_send(move |_req: Request, res: Response| {
            headers.apply(&res);
            Outcome::Ok
        });
        HandlerFuture::ready(Outcome::Ok)
    }
}
