//! [`TryFiles`]: nginx's `try_files` over a [`StaticFiles`] root — the first of
//! several candidate paths that exists is served, else a fallback status; the
//! single-page-app fallback (`$uri`, `$uri/`, `/index.html`).

use std::path::Path;
use std::sync::Arc;

use http::StatusCode;

use super::{Inner, StaticFiles, is_dir};
use crate::{Handler, HandlerFuture, Outcome, Request, Response, normalize_path};

/// Why [`TryFiles::new`] refused its candidates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryFilesError {
    /// No candidates at all.
    #[error("try_files needs at least one candidate, such as \"$uri\"")]
    Empty,
    /// A candidate neither starts with `/` nor with `$uri`, or names another variable.
    #[error(
        "{0:?}: a candidate is a path starting with '/' or \"$uri\" (the only variable), or a last \"=404\""
    )]
    BadCandidate(String),
    /// A path candidate outside the path the [`StaticFiles`] serve, which could never
    /// be found under their root.
    #[error(
        "{candidate:?} is outside {prefix}/, the path the files are served at; name a path under it, such as \"{prefix}/index.html\""
    )]
    OutsideFiles {
        /// The candidate as written.
        candidate: String,
        /// The files' path, without its trailing `/`.
        prefix: String,
    },
    /// `=status` somewhere but last, or not a status.
    #[error(
        "{0:?}: a status (\"=404\") may only be the last candidate, with a code from 200 to 599"
    )]
    BadStatus(String),
}

/// One candidate: a path template, or the status answered when none was found.
#[derive(Debug, Clone)]
enum Candidate {
    /// A path in which `$uri` stands for the request's (normalized) path.
    Path(String),
    Status(StatusCode),
}

/// Serves the first candidate path that exists under a [`StaticFiles`] root, as the
/// Content handler of its directory; the last candidate may instead be a status
/// (`=404`) answered when none exists. `$uri` stands for the request's normalized
/// path. A candidate ending in `/` (`$uri/`) counts when it is a directory with an
/// `index.html` (or a listing, if the files have listings on); any other, when it is
/// a file. The root's policies hold for every candidate: hidden files and symlinks
/// out of the root count as missing.
///
/// The usual single-page-app setup — the file if there is one, else the app's
/// `index.html`, so client-side routes load the app:
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::{StaticFiles, TryFiles};
///
/// let files = StaticFiles::new("/", "./dist");
/// let app = TryFiles::new(files, ["$uri", "$uri/", "/index.html"])?;
/// let builder = Server::builder().content("/", app);
/// # drop(builder);
/// # Ok::<(), poco_httpd::handlers::TryFilesError>(())
/// ```
///
/// The fallback is served with its own status (`200` for `/index.html`); it is not
/// a redirect. With no candidate found and no status given, the answer is `404`.
#[derive(Debug, Clone)]
pub struct TryFiles {
    files: Arc<Inner>,
    candidates: Arc<[Candidate]>,
}

impl TryFiles {
    /// Tries `candidates` in order under the root of `files`.
    ///
    /// # Errors
    /// When there is no candidate, one is not a path (`/…`) or a `$uri` template, or a
    /// status (`=404`) is not last or not a status.
    pub fn new<'a>(
        files: StaticFiles,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, TryFilesError> {
        let written: Vec<&str> = candidates.into_iter().collect();
        let mut parsed = Vec::with_capacity(written.len());
        for (index, candidate) in written.iter().enumerate() {
            let is_last = index + 1 == written.len();
            let candidate = parse(candidate, is_last)?;
            if let Candidate::Path(template) = &candidate {
                check_under(template, &files.inner.prefix)?;
            }
            parsed.push(candidate);
        }
        if parsed.is_empty() {
            return Err(TryFilesError::Empty);
        }
        Ok(Self {
            files: files.inner,
            candidates: parsed.into(),
        })
    }
}

fn parse(candidate: &str, is_last: bool) -> Result<Candidate, TryFilesError> {
    if let Some(code) = candidate.strip_prefix('=') {
        let status = code
            .parse::<u16>()
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
            .filter(|status| status.as_u16() >= 200);
        return match status {
            Some(status) if is_last => Ok(Candidate::Status(status)),
            _ => Err(TryFilesError::BadStatus(candidate.to_owned())),
        };
    }
    let without_variable = candidate.replace("$uri", "");
    let starts_well = candidate.starts_with('/') || candidate.starts_with("$uri");
    if !starts_well || without_variable.contains('$') {
        return Err(TryFilesError::BadCandidate(candidate.to_owned()));
    }
    Ok(Candidate::Path(candidate.to_owned()))
}

/// Refuses a candidate starting with `/` that is not under `prefix` (the files' path
/// without its trailing `/`, empty for `/`): `/index.html` for files at `/app/` would
/// be looked up as nothing, or `/apple.html` as `le.html`. `$uri` is always under it.
fn check_under(template: &str, prefix: &str) -> Result<(), TryFilesError> {
    let under = !template.starts_with('/')
        || template
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'));
    if under {
        return Ok(());
    }
    Err(TryFilesError::OutsideFiles {
        candidate: template.to_owned(),
        prefix: prefix.to_owned(),
    })
}

impl Inner {
    /// The normalized path and file of the first candidate that exists.
    async fn first_existing(
        &self,
        request_path: &str,
        candidates: &[Candidate],
    ) -> Result<(String, std::path::PathBuf), Option<StatusCode>> {
        for candidate in candidates {
            let template = match candidate {
                Candidate::Path(template) => template,
                Candidate::Status(status) => return Err(Some(*status)),
            };
            let Ok(path) = normalize_path(&template.replace("$uri", request_path)) else {
                continue;
            };
            let Some(file) = self.resolve(&path) else {
                continue;
            };
            if self.counts(&path, &file).await {
                return Ok((path, file));
            }
        }
        Err(None)
    }

    /// Whether a candidate's file answers: a directory with an index (or a listing)
    /// for a path ending in `/`, else a file.
    async fn counts(&self, path: &str, file: &Path) -> bool {
        if path.ends_with('/') {
            let has_index = tokio::fs::metadata(file.join("index.html"))
                .await
                .is_ok_and(|m| m.is_file());
            return is_dir(file).await && (has_index || self.listing);
        }
        tokio::fs::metadata(file).await.is_ok_and(|m| m.is_file())
    }
}

impl Handler for TryFiles {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let files = Arc::clone(&self.files);
        let candidates = Arc::clone(&self.candidates);
        HandlerFuture::new(async move {
            let request_path = request.path().to_owned();
            match files.first_existing(&request_path, &candidates).await {
                Ok((path, file)) => files.serve(request, response, &path, file).await,
                Err(status) => {
                    let status = status.unwrap_or(StatusCode::NOT_FOUND);
                    response.set_status(status);
                    if status.is_client_error() || status.is_server_error() {
                        let reason = status.canonical_reason().unwrap_or("Error");
                        response.set_content_type("text/plain; charset=utf-8");
                        response.set_body(format!("{} {reason}\n", status.as_u16()));
                    }
                    Outcome::Ok
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(candidates: &[&str]) -> TryFilesError {
        let files = StaticFiles::new("/", ".");
        TryFiles::new(files, candidates.iter().copied()).expect_err("refused")
    }

    #[test]
    fn candidates_are_checked() {
        assert_eq!(refused(&[]), TryFilesError::Empty);
        assert!(matches!(
            refused(&["index.html"]),
            TryFilesError::BadCandidate(_)
        ));
        assert!(matches!(refused(&["$url"]), TryFilesError::BadCandidate(_)));
        assert!(matches!(
            refused(&["/$host"]),
            TryFilesError::BadCandidate(_)
        ));
        assert!(matches!(
            refused(&["=404", "$uri"]),
            TryFilesError::BadStatus(_)
        ));
        assert!(matches!(
            refused(&["$uri", "=99"]),
            TryFilesError::BadStatus(_)
        ));
        let files = StaticFiles::new("/", ".");
        assert!(TryFiles::new(files, ["$uri", "$uri.html", "$uri/", "=404"]).is_ok());
    }

    #[test]
    fn a_candidate_outside_the_files_path_is_refused() {
        let at_app = || StaticFiles::new("/app/", ".");
        for outside in ["/index.html", "/apple.html", "/app", "/other$uri"] {
            let error = TryFiles::new(at_app(), ["$uri", outside]).expect_err(outside);
            assert!(
                matches!(error, TryFilesError::OutsideFiles { .. }),
                "{outside}: {error:?}"
            );
            assert!(error.to_string().contains("\"/app/index.html\""), "{error}");
        }
        assert!(TryFiles::new(at_app(), ["$uri", "$uri/", "/app/index.html"]).is_ok());
        assert!(TryFiles::new(StaticFiles::new("/", "."), ["/index.html"]).is_ok());
    }
}
