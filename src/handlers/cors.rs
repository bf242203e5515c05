//! [`Cors`]: Cross-Origin Resource Sharing (the Fetch standard's CORS protocol) for
//! a directory — the allowed origins, methods and headers, credentials, how long a
//! preflight may be cached — with preflight `OPTIONS` requests answered here.

use std::sync::Arc;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderName, HeaderValue, Method, StatusCode};

use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Answers cross-origin requests for a directory: install as a Pre handler.
///
/// - A request from an allowed `Origin` gets `Access-Control-Allow-Origin` (the
///   origin itself, or `*` when any origin is allowed without credentials),
///   `Access-Control-Allow-Credentials: true` if credentials are allowed, and
///   `Access-Control-Expose-Headers` if set — on error answers too, so a page can
///   read them.
/// - A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered
///   `204 No Content` here, whatever the directory's Content handler (a static
///   directory would say `405`): with the allowed methods and headers and
///   `Access-Control-Max-Age` when the origin, the method and every requested header
///   are allowed, else without them, which the browser takes as a refusal.
/// - Every answer says `Vary: Origin` (unless any origin is allowed without
///   credentials, when the answer does not depend on it), so caches keep answers for
///   different origins apart.
///
/// Origins are compared as the browser sends them, `scheme://host[:port]`, ignoring
/// ASCII case; `*` allows any. Methods default to `GET`, `HEAD` and `POST`; request
/// headers default to none beyond the CORS-safelisted ones.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::Cors;
/// use poco_httpd::http::Method;
///
/// let api = Cors::new()
///     .allow_origin("https://app.example.org")
///     .allow_methods([Method::GET, Method::PUT, Method::DELETE])
///     .allow_headers(["content-type", "authorization"])?
///     .allow_credentials(true)
///     .max_age(600);
/// let builder = Server::builder().pre("/api/", api).content("/", "hello\n");
/// # drop(builder);
/// # Ok::<(), poco_httpd::http::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Cors {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    /// Lowercase; empty with `any_origin`.
    origins: Vec<String>,
    any_origin: bool,
    methods: Vec<Method>,
    /// `*` among the methods: a preflight may ask for any.
    any_method: bool,
    headers: Vec<HeaderName>,
    /// `*` among the headers: a preflight may ask for any.
    any_header: bool,
    expose: Vec<HeaderName>,
    credentials: bool,
    max_age: Option<u64>,
}

impl Default for Cors {
    fn default() -> Self {
        Self::new()
    }
}

impl Cors {
    /// Allows no origin yet; methods `GET`, `HEAD`, `POST`.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                origins: Vec::new(),
                any_origin: false,
                methods: vec![Method::GET, Method::HEAD, Method::POST],
                any_method: false,
                headers: Vec::new(),
                any_header: false,
                expose: Vec::new(),
                credentials: false,
                max_age: None,
            }),
        }
    }

    fn edit(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// Allows requests from `origin` (`https://app.example.org`), or from any origin
    /// with `*`.
    pub fn allow_origin(mut self, origin: &str) -> Self {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if origin == "*" {
            self.edit().any_origin = true;
        } else {
            self.edit().origins.push(origin);
        }
        self
    }

    /// The methods a preflight allows, replacing the default `GET`, `HEAD`, `POST`.
    /// A method `*` allows any: a preflight's answer then names the method it asked
    /// for (which browsers need when credentials are allowed).
    pub fn allow_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        let methods: Vec<Method> = methods.into_iter().collect();
        let inner = self.edit();
        inner.any_method = methods.iter().any(|method| method.as_str() == "*");
        inner.methods = methods;
        self
    }

    /// The request headers a preflight allows (`content-type`, `authorization`).
    /// A name `*` allows any: a preflight's answer then names the headers it asked
    /// for (a literal `*` means nothing to browsers when credentials are allowed).
    ///
    /// # Errors
    /// When a name is not a valid header name.
    pub fn allow_headers<'a>(
        mut self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, http::Error> {
        for name in names {
            let name = HeaderName::try_from(name)?;
            let inner = self.edit();
            inner.any_header |= name.as_str() == "*";
            inner.headers.push(name);
        }
        Ok(self)
    }

    /// The response headers the page's script may read beyond the safelisted ones
    /// (`Access-Control-Expose-Headers`).
    ///
    /// # Errors
    /// When a name is not a valid header name.
    pub fn expose_headers<'a>(
        mut self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, http::Error> {
        for name in names {
            let name = HeaderName::try_from(name)?;
            self.edit().expose.push(name);
        }
        Ok(self)
    }

    /// Lets the browser send cookies and credentials
    /// (`Access-Control-Allow-Credentials: true`). With any origin allowed, the
    /// request's origin is then named rather than `*`, which browsers refuse with
    /// credentials — except `null`, which any sandboxed frame may send. Beware that
    /// any origin with credentials lets every site read what your users' cookies
    /// unlock: list the origins instead where you can. Default: off.
    pub fn allow_credentials(mut self, on: bool) -> Self {
        self.edit().credentials = on;
        self
    }

    /// How long, in seconds, a browser may cache a preflight's answer
    /// (`Access-Control-Max-Age`). Default: not sent (browsers then cache it 5 s).
    pub fn max_age(mut self, seconds: u64) -> Self {
        self.edit().max_age = Some(seconds);
        self
    }
}

impl Inner {
    fn allows_origin(&self, origin: &str) -> bool {
        // `null` is what sandboxed frames and `file:` pages send: any of them could
        // pose as it, so `*` with credentials does not name it (list it to allow it).
        let any = self.any_origin && !(self.credentials && origin.eq_ignore_ascii_case("null"));
        any || self
            .origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }

    /// Whether answers depend on the request's `Origin`.
    fn varies(&self) -> bool {
        !self.any_origin || self.credentials
    }

    /// The headers every answer to an allowed origin carries.
    fn allow(&self, origin: &HeaderValue, response: &Response) {
        if self.any_origin && !self.credentials {
            response.set_header(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            response.set_header(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        if self.credentials {
            response.set_header(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    fn vary(&self, response: &Response) {
        if self.varies() {
            response.append_header(VARY, HeaderValue::from_static("origin"));
        }
    }

    /// Whether a preflight's method and headers are all allowed.
    fn allows_preflight(&self, request: &Request) -> bool {
        let method = request.header(ACCESS_CONTROL_REQUEST_METHOD);
        let method = method.and_then(|m| Method::from_bytes(m.as_bytes()).ok());
        if !method.is_some_and(|m| self.any_method || self.methods.contains(&m)) {
            return false;
        }
        requested_headers(request).all(|name| {
            self.any_header
                || self
                    .headers
                    .iter()
                    .any(|allowed| allowed.as_str().eq_ignore_ascii_case(name))
        })
    }

    /// The answer to a preflight.
    fn preflight(&self, request: &Request, response: &Response, origin: Option<&HeaderValue>) {
        response.set_status(StatusCode::NO_CONTENT);
        response.set_header(
            VARY,
            HeaderValue::from_static(
                "origin, access-control-request-method, access-control-request-headers",
            ),
        );
        let Some(origin) = origin else { return };
        if !self.allows_preflight(request) {
            return;
        }
        self.allow(origin, response);
        if self.any_method {
            // Checked by `allows_preflight`: present and a method.
            if let Some(asked) = request.header(ACCESS_CONTROL_REQUEST_METHOD) {
                response.set_header(ACCESS_CONTROL_ALLOW_METHODS, asked);
            }
        } else {
            response.set_header(ACCESS_CONTROL_ALLOW_METHODS, names(&self.methods));
        }
        if self.any_header {
            let asked: Vec<&str> = requested_headers(request).collect();
            if !asked.is_empty() {
                response.set_header(ACCESS_CONTROL_ALLOW_HEADERS, asked.join(", "));
            }
        } else if !self.headers.is_empty() {
            response.set_header(ACCESS_CONTROL_ALLOW_HEADERS, names(&self.headers));
        }
        if let Some(seconds) = self.max_age {
            response.set_header(ACCESS_CONTROL_MAX_AGE, seconds);
        }
    }

    /// The headers of an answer to an actual (not preflight) request.
    fn answer(&self, origin: Option<&HeaderValue>, response: &Response) {
        self.vary(response);
        if let Some(origin) = origin {
            self.allow(origin, response);
            if !self.expose.is_empty() {
                response.set_header(ACCESS_CONTROL_EXPOSE_HEADERS, names(&self.expose));
            }
        }
    }
}

/// The header names a preflight asks for (`Access-Control-Request-Headers`).
fn requested_headers(request: &Request) -> impl Iterator<Item = &str> {
    let requested = request.headers().get_all(ACCESS_CONTROL_REQUEST_HEADERS);
    requested
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
}

/// Methods or header names as a header value lists them: `GET, PUT`.
fn names<T: AsRef<str>>(items: &[T]) -> String {
    let names: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    names.join(", ")
}

impl Handler for Cors {
    fn call(&self, request: Request, _response: Response) -> HandlerFuture {
        let inner = Arc::clone(&self.inner);
        let origin = request
            .header(ORIGIN)
            .filter(|origin| origin.to_str().is_ok_and(|o| inner.allows_origin(o)))
            .cloned();
        let is_preflight = request.method() == Method::OPTIONS
            && request.header(ACCESS_CONTROL_REQUEST_METHOD).is_some();
        if is_preflight {
            request.set_content_handler(move |req: Request, res: Response| {
                inner.preflight(&req, &res, origin.as_ref());
                Outcome::Ok
            });
        } else {
            request.before_send(move |_req: Request, res: Response| {
                inner.answer(origin.as_ref(), &res);
                Outcome::Ok
            });
        }
        HandlerFuture::ready(Outcome::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_origin_with_credentials_does_not_name_null() {
        let open = Cors::new().allow_origin("*");
        assert!(open.inner.allows_origin("null"), "answered `*` anyway");
        let with_credentials = open.allow_credentials(true);
        assert!(with_credentials.inner.allows_origin("https://a.example"));
        assert!(!with_credentials.inner.allows_origin("null"));
        let listed = with_credentials.allow_origin("null");
        assert!(listed.inner.allows_origin("null"), "listed on purpose");
    }
}
