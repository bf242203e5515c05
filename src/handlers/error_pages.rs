//! [`ErrorPages`]: custom pages for error answers (`404`, `5xx`), read from a
//! directory and sent with the original status.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::header::{
    ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    LAST_MODIFIED,
};
use http::{HeaderValue, StatusCode};

use crate::{Handler, HandlerFuture, Outcome, Request, Response, normalize_path};

/// Which error answers a page is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Statuses {
    One(StatusCode),
    /// Every status of a class: 4 for `4xx`, 5 for `5xx`.
    Class(u16),
}

/// Why [`ErrorPages::page`] refused a page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorPageError {
    /// The status is not an error status, nor `4xx` or `5xx`.
    #[error("{0:?} is not an error status; write one from 400 to 599, or \"4xx\" or \"5xx\"")]
    NotAnErrorStatus(String),
    /// The page's path does not start with `/`, names a directory, or has `..`.
    #[error(
        "page {0:?} must be the path of a file under the pages' directory, starting with '/', without '..'"
    )]
    BadPath(String),
}

/// Replaces the body of error answers with pages of your own, keeping the status:
/// install as a Pre handler of a directory (`/` for the whole server). Just before
/// the head goes out, an answer with a status that has a page gets the page's bytes
/// (and a `Content-Type` from its extension) instead of its body; a page for the exact
/// status wins over one for its class (`"5xx"`). It is an internal lookup, not a
/// redirect: the client sees the URL it asked for, with the original status.
///
/// Pages are paths under a directory (`/404.html` is `<dir>/404.html`), usually the
/// static root, read when needed, so an edited page shows at once. A page that cannot
/// be read leaves the answer as it was, and is logged. Installed at several depths,
/// the deepest directory's page wins (its hook runs last).
///
/// Answers the server writes before any handler runs (a malformed request's `400`, a
/// too large body's `413`) keep their plain text.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::{ErrorPages, StaticFiles};
///
/// let pages = ErrorPages::new("./public").page("404", "/404.html")?.page("5xx", "/50x.html")?;
/// let builder = Server::builder()
///     .pre("/", pages)
///     .content("/", StaticFiles::new("/", "./public"));
/// # drop(builder);
/// # Ok::<(), poco_httpd::handlers::ErrorPageError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ErrorPages {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    dir: PathBuf,
    pages: Vec<(Statuses, PathBuf)>,
}

impl ErrorPages {
    /// Pages read from the directory `dir`; none yet.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                dir: dir.into(),
                pages: Vec::new(),
            }),
        }
    }

    /// Answers with `status` — `"404"`, or a class, `"4xx"` or `"5xx"` — get the page
    /// at `path` (`/404.html`) under the directory.
    ///
    /// # Errors
    /// When the status is not an error status or class, or the path does not start
    /// with `/`, ends with `/` or has `..` segments.
    pub fn page(mut self, status: &str, path: &str) -> Result<Self, ErrorPageError> {
        let statuses = parse_statuses(status)?;
        let bad_path = || ErrorPageError::BadPath(path.to_owned());
        if !path.starts_with('/') || path.split('/').any(|segment| segment == "..") {
            return Err(bad_path());
        }
        let normal = normalize_path(path).map_err(|_| bad_path())?;
        let relative = normal.trim_start_matches('/');
        if relative.is_empty() || normal.ends_with('/') {
            return Err(bad_path());
        }
        let file = self.inner.dir.join(relative);
        Arc::make_mut(&mut self.inner).pages.push((statuses, file));
        Ok(self)
    }

    /// The file of the page for `status`, if there is one.
    fn page_for(&self, status: StatusCode) -> Option<&Path> {
        let pages = &self.inner.pages;
        let exact = pages.iter().find(|(s, _)| *s == Statuses::One(status));
        let class = || {
            let hundreds = status.as_u16() / 100;
            pages.iter().find(|(s, _)| *s == Statuses::Class(hundreds))
        };
        exact.or_else(class).map(|(_, file)| file.as_path())
    }
}

fn parse_statuses(written: &str) -> Result<Statuses, ErrorPageError> {
    let refused = || ErrorPageError::NotAnErrorStatus(written.to_owned());
    match written.to_ascii_lowercase().as_str() {
        "4xx" => return Ok(Statuses::Class(4)),
        "5xx" => return Ok(Statuses::Class(5)),
        _ => {}
    }
    let code: u16 = written.parse().map_err(|_| refused())?;
    let status = StatusCode::from_u16(code).map_err(|_| refused())?;
    if status.is_client_error() || status.is_server_error() {
        Ok(Statuses::One(status))
    } else {
        Err(refused())
    }
}

/// The `Content-Type` of a page, by its extension.
fn content_type(file: &Path) -> &'static str {
    let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

/// Puts the page in place of the answer's body, dropping what described the old one.
async fn replace_body(response: Response, file: PathBuf) -> Outcome {
    let page = match tokio::fs::read(&file).await {
        Ok(page) => page,
        Err(error) => {
            tracing::warn!(%error, page = %file.display(), "cannot read the error page");
            return Outcome::Ok;
        }
    };
    for name in [
        CONTENT_LENGTH,
        CONTENT_ENCODING,
        ACCEPT_RANGES,
        ETAG,
        LAST_MODIFIED,
    ] {
        response.remove_header(name);
    }
    // A 416's `Content-Range: bytes */<length>` tells the client the file's length
    // (RFC 9110, 15.5.17), not the body's range: it stays.
    if response.status() != StatusCode::RANGE_NOT_SATISFIABLE {
        response.remove_header(CONTENT_RANGE);
    }
    response.set_header(CONTENT_TYPE, HeaderValue::from_static(content_type(&file)));
    response.set_body(page);
    Outcome::Ok
}

impl Handler for ErrorPages {
    fn call(&self, request: Request, _response: Response) -> HandlerFuture {
        let pages = self.clone();
        request.before_send(move |_req: Request, res: Response| {
            match pages.page_for(res.status()) {
                Some(file) => HandlerFuture::new(replace_body(res, file.to_owned())),
                None => HandlerFuture::ready(Outcome::Ok),
            }
        });
        HandlerFuture::ready(Outcome::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_status_wins_over_its_class() {
        let pages = ErrorPages::new("/srv")
            .page("5xx", "/50x.html")
            .and_then(|p| p.page("503", "/busy.html"))
            .and_then(|p| p.page("404", "/./404.html"))
            .expect("valid");
        let page = |code: u16| {
            let status = StatusCode::from_u16(code).expect("status");
            pages.page_for(status).map(|p| p.display().to_string())
        };
        assert_eq!(page(503).as_deref(), Some("/srv/busy.html"));
        assert_eq!(page(500).as_deref(), Some("/srv/50x.html"));
        assert_eq!(page(404).as_deref(), Some("/srv/404.html"));
        assert_eq!(page(403), None);
    }

    #[test]
    fn statuses_and_paths_are_checked() {
        let pages = || ErrorPages::new("/srv");
        for bad in ["200", "3xx", "600", "x"] {
            let error = pages().page(bad, "/e.html").expect_err("refused");
            assert!(
                matches!(error, ErrorPageError::NotAnErrorStatus(_)),
                "{bad}"
            );
        }
        for bad in ["e.html", "/../e.html", "/", "/dir/"] {
            let error = pages().page("404", bad).expect_err("refused");
            assert!(matches!(error, ErrorPageError::BadPath(_)), "{bad}");
        }
    }
}
