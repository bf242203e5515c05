//! [`StaticFiles`]: files under a root directory as the Content handler of a
//! directory. tower-http's `ServeDir` (through the tower bridge) does the serving —
//! content types, `Last-Modified`, `ETag`, conditional requests, precompressed
//! siblings, `index.html`; this module adds what it lacks: a root that symlinks cannot
//! lead out of, hidden (dot) files refused, `If-Range`, several ranges as
//! `multipart/byteranges` (`ranges`, `sections`), and an optional directory listing
//! (`listing`) that shows exactly the entries a request would be served.
//!
//! Hidden files: a path with a segment starting with `.` below the mount point —
//! `.env`, `.git/config`, `.htpasswd` — is answered 404 unless
//! [`StaticFiles::hidden_files`] allows them. One exception, as nginx configurations
//! commonly make it: `.well-known` directly under the root (RFC 8615; ACME's
//! `/.well-known/acme-challenge/`) is served; dot files inside it are still hidden.

mod listing;
mod ranges;
mod sections;
mod try_files;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::header::{
    CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_RANGE, LAST_MODIFIED,
    LOCATION, RANGE,
};
use http::{HeaderMap, Method, StatusCode};
use tower::ServiceExt;
use tower_http::services::ServeDir;

pub use self::ranges::Ranges;
use self::sections::Sections;
pub use self::try_files::{TryFiles, TryFilesError};
use super::TowerService;
use super::tower::copy_answer;
use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Serves the files under `root` for the directory it is mounted at. A directory
/// asked for without its trailing slash (`/static/css`, or the mount point itself
/// when also registered at `/static`) is answered `301` to the path with the slash.
/// Hidden (dot) files and directories are refused with 404, except `.well-known` at
/// the top of the root; symlinks leading out of the root are refused too (both can be
/// allowed).
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::StaticFiles;
///
/// let builder = Server::builder().content("/", StaticFiles::new("/", ".").directory_listing(true));
/// # drop(builder);
/// ```
#[derive(Debug, Clone)]
pub struct StaticFiles {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    prefix: String,
    root: PathBuf,
    /// The root with symlinks resolved, once, for the containment check.
    real_root: Option<PathBuf>,
    follow_symlinks_out: bool,
    hidden_files: bool,
    listing: bool,
    files: TowerService<ServeDir>,
}

impl StaticFiles {
    /// Files under `root`, mounted at the directory `prefix` (e.g. `/static/`).
    pub fn new(prefix: &str, root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let files = ServeDir::new(&root)
            .append_index_html_on_directories(true)
            .precompressed_br()
            .precompressed_gzip()
            .precompressed_zstd();
        Self {
            inner: Arc::new(Inner {
                prefix: prefix.trim_end_matches('/').to_owned(),
                real_root: root.canonicalize().ok(),
                root,
                follow_symlinks_out: false,
                hidden_files: false,
                listing: false,
                files: TowerService::new(prefix, files),
            }),
        }
    }

    /// Also serve files that symlinks inside the root point to outside it. Default:
    /// refused with 404.
    pub fn follow_symlinks_out(mut self, allow: bool) -> Self {
        Arc::make_mut(&mut self.inner).follow_symlinks_out = allow;
        self
    }

    /// Also serve hidden files and directories — names starting with `.`, such as
    /// `.env` or `.git/` — and list them. Default: refused with 404 and left out of
    /// listings, except `.well-known` directly under the root (for ACME and other
    /// RFC 8615 URIs), which is always served.
    pub fn hidden_files(mut self, allow: bool) -> Self {
        Arc::make_mut(&mut self.inner).hidden_files = allow;
        self
    }

    /// Answer a request for a directory without an `index.html` with an HTML listing
    /// of it. It shows only what would be served: no hidden files (unless
    /// [`StaticFiles::hidden_files`]), no symlinks leading out of the root (unless
    /// [`StaticFiles::follow_symlinks_out`]). Default: 404.
    pub fn directory_listing(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.inner).listing = on;
        self
    }
}

impl Inner {
    /// The file a (normalized) request path names, if it exists inside the root.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        let relative = path.strip_prefix(&self.prefix)?.trim_start_matches('/');
        if !self.hidden_files && has_hidden_segment(relative) {
            tracing::debug!(%path, "refused: a hidden file");
            return None;
        }
        let candidate = self.root.join(relative);
        if self.follow_symlinks_out {
            return Some(candidate);
        }
        let real = candidate.canonicalize().ok()?;
        if !self
            .real_root
            .as_ref()
            .is_some_and(|root| real.starts_with(root))
        {
            tracing::warn!(%path, "refused: a symlink leads out of the static root");
            return None;
        }
        Some(candidate)
    }

    /// Serves `file`, found for the (normalized) `path`: the request's own, or the
    /// one [`TryFiles`] chose.
    async fn serve(
        &self,
        request: Request,
        response: Response,
        path: &str,
        file: PathBuf,
    ) -> Outcome {
        if !path.ends_with('/') && is_dir(&file).await {
            add_slash(&request, &response);
            return Outcome::Ok;
        }
        let reads = matches!(*request.method(), Method::GET | Method::HEAD);
        if self.listing && reads && path.ends_with('/') && lists(&file).await {
            let is_top = path.len() <= self.prefix.len() + 1;
            let shown = listing::Shown {
                hidden: self.hidden_files,
                top: is_top,
                inside: (!self.follow_symlinks_out)
                    .then_some(self.real_root.as_deref())
                    .flatten(),
            };
            return match listing::page(&file, path, &shown).await {
                Ok(page) => {
                    response.set_content_type("text/html; charset=utf-8");
                    response.set_body(page);
                    Outcome::Ok
                }
                Err(error) => {
                    tracing::error!(%error, %path, "cannot list the directory");
                    response.set_status(StatusCode::INTERNAL_SERVER_ERROR);
                    Outcome::Ok
                }
            };
        }
        // Ranges are answered here (ServeDir takes one range and no If-Range), from the
        // whole answer's validators and length.
        let range = (*request.method() == Method::GET)
            .then(|| request.header(RANGE)?.to_str().ok().map(str::to_owned))
            .flatten();
        let mut forwarded = self.files.forward_path(&request, path);
        if range.is_some() {
            forwarded.headers_mut().remove(RANGE);
        }
        let answer = match self.files.service().clone().oneshot(forwarded).await {
            Ok(answer) => answer,
            Err(error) => match error {},
        };
        if let Some(range) = range
            && let Some(size) = whole_file_length(answer.headers(), answer.status())
            && if_range_passes(request.headers(), answer.headers())
        {
            match Ranges::of(&range, size) {
                Ranges::Whole => {}
                Ranges::Unsatisfiable => {
                    unsatisfiable(&response, size);
                    return Outcome::Ok;
                }
                Ranges::Partial(ranges) => {
                    if partial(&response, answer.headers(), &file, size, &ranges).await {
                        return Outcome::Ok;
                    }
                }
            }
        }
        copy_answer(answer, &response);
        Outcome::Ok
    }
}

async fn is_dir(file: &Path) -> bool {
    tokio::fs::metadata(file).await.is_ok_and(|m| m.is_dir())
}

/// `301` from a directory's path without its slash (`/files`, `/files/sub`) to the
/// path with it, so relative links in its index resolve inside it. Done here because
/// `ServeDir`'s own redirect names the path it saw, without the mount prefix.
fn add_slash(request: &Request, response: &Response) {
    let uri = request.uri();
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    response.set_status(StatusCode::MOVED_PERMANENTLY);
    if response
        .try_set_header(LOCATION, location.as_str())
        .is_err()
    {
        response.set_status(StatusCode::NOT_FOUND);
    }
}

/// Whether a name is hidden: it starts with `.`, and is not `.well-known` at the top
/// of the root (`top`).
fn is_hidden(name: &str, top: bool) -> bool {
    name.starts_with('.') && !(top && name == ".well-known")
}

/// Whether a (normalized) path relative to the root names or passes through a hidden
/// file or directory.
fn has_hidden_segment(relative: &str) -> bool {
    relative
        .split('/')
        .enumerate()
        .any(|(depth, name)| is_hidden(name, depth == 0))
}

/// Whether `file` is a directory the listing should show (no `index.html` in it).
async fn lists(file: &Path) -> bool {
    is_dir(file).await
        && !tokio::fs::try_exists(file.join("index.html"))
            .await
            .unwrap_or(true)
}

/// The length of a whole, unencoded `200` answer: the only kind a range applies to.
fn whole_file_length(headers: &HeaderMap, status: StatusCode) -> Option<u64> {
    if status != StatusCode::OK || headers.contains_key(CONTENT_ENCODING) {
        return None;
    }
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// `If-Range` (RFC 9110 §13.1.5): ranges only if the file is still the one the client
/// has — a strong `ETag` equal to the current one, or the exact `Last-Modified` date.
fn if_range_passes(request: &HeaderMap, answer: &HeaderMap) -> bool {
    let Some(condition) = request.get(IF_RANGE) else {
        return true;
    };
    if condition.as_bytes().starts_with(b"W/") {
        return false;
    }
    if condition.as_bytes().starts_with(b"\"") {
        return answer.get(ETAG) == Some(condition);
    }
    let date = |value: &http::HeaderValue| httpdate::parse_http_date(value.to_str().ok()?).ok();
    date(condition).is_some_and(|wanted| answer.get(LAST_MODIFIED).and_then(date) == Some(wanted))
}

fn unsatisfiable(response: &Response, size: u64) {
    response.set_status(StatusCode::RANGE_NOT_SATISFIABLE);
    response.set_header(CONTENT_RANGE, format!("bytes */{size}"));
    response.set_body("416 Range Not Satisfiable\n");
}

/// Answers `206` with `ranges` of `file` read as the client takes them; false when
/// the file is no longer the one the whole answer described (then that is sent).
async fn partial(
    response: &Response,
    whole: &HeaderMap,
    file: &Path,
    size: u64,
    ranges: &[std::ops::Range<u64>],
) -> bool {
    let Ok(opened) = tokio::fs::File::open(file).await else {
        return false;
    };
    if !opened
        .metadata()
        .await
        .is_ok_and(|m| m.is_file() && m.len() == size)
    {
        return false;
    }
    let sections = match ranges {
        [range] => {
            let last = range.end - 1;
            response.set_header(
                CONTENT_RANGE,
                format!("bytes {}-{last}/{size}", range.start),
            );
            if let Some(content_type) = whole.get(CONTENT_TYPE) {
                response.set_header(CONTENT_TYPE, content_type);
            }
            Sections::single(range.clone())
        }
        ranges => {
            let boundary = boundary();
            let content_type = format!("multipart/byteranges; boundary={boundary}");
            response.set_content_type(&content_type);
            Sections::multipart(ranges, size, whole.get(CONTENT_TYPE), &boundary)
        }
    };
    for name in [ETAG, LAST_MODIFIED] {
        if let Some(value) = whole.get(&name) {
            response.set_header(name, value);
        }
    }
    response.set_status(StatusCode::PARTIAL_CONTENT);
    response.set_header(CONTENT_LENGTH, sections.len());
    response.set_body_stream(sections.into_stream(opened));
    true
}

/// A multipart boundary no file is likely to contain.
fn boundary() -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes()[..12]);
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("poco-httpd-{hex}")
}

impl Handler for StaticFiles {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let Some(file) = self.inner.resolve(request.path()) else {
            response.set_status(StatusCode::NOT_FOUND);
            response.set_body("404 Not Found\n");
            return HandlerFuture::ready(Outcome::Ok);
        };
        let inner = Arc::clone(&self.inner);
        HandlerFuture::new(async move {
            let path = request.path().to_owned();
            inner.serve(request, response, &path, file).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(http::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_static(value)))
            .collect()
    }

    #[test]
    fn if_range_needs_the_same_strong_etag_or_the_exact_date() {
        let answer = headers(&[
            (ETAG, "\"abc\""),
            (LAST_MODIFIED, "Wed, 21 Oct 2015 07:28:00 GMT"),
        ]);
        let check =
            |condition: &'static str| if_range_passes(&headers(&[(IF_RANGE, condition)]), &answer);
        assert!(if_range_passes(&HeaderMap::new(), &answer));
        assert!(check("\"abc\""));
        assert!(!check("\"abd\""));
        assert!(!check("W/\"abc\""));
        assert!(check("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert!(!check("Wed, 21 Oct 2015 07:28:01 GMT"));
        assert!(!check("not a date"));
    }

    #[test]
    fn dot_segments_are_hidden_but_a_top_well_known() {
        for hidden in [
            ".env",
            ".git/config",
            "sub/.htpasswd",
            ".well-known/.x",
            "a/.well-known/b",
        ] {
            assert!(has_hidden_segment(hidden), "{hidden}");
        }
        for shown in [
            "",
            "index.html",
            "a.b/c",
            "a/b.",
            ".well-known/acme-challenge/t",
        ] {
            assert!(!has_hidden_segment(shown), "{shown}");
        }
    }

    #[test]
    fn only_whole_unencoded_answers_take_ranges() {
        let plain = headers(&[(CONTENT_LENGTH, "10")]);
        assert_eq!(whole_file_length(&plain, StatusCode::OK), Some(10));
        assert_eq!(whole_file_length(&plain, StatusCode::NOT_MODIFIED), None);
        let encoded = headers(&[(CONTENT_LENGTH, "10"), (CONTENT_ENCODING, "br")]);
        assert_eq!(whole_file_length(&encoded, StatusCode::OK), None);
    }
}
