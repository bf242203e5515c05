//! [`TryFiles`]: nginx's `try_files` over a [`StaticFiles`] root — the first of
//! several candidate paths that exists is served, else a fallback status; the
//! single-page-app fallback (`$uri`, `$uri/`, `/index.html`). Each candidate is
//! looked for in the content cache first, then on the file system.

use std::sync::Arc;

use http::StatusCode;

use super::open::Refused;
use super::{Found, Inner, StaticFiles, index_of};
use crate::{Handler, HandlerFuture, Request, Response, normalize_path};

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
/// a file. The root's policies hold for every candidate: hidden files, symlinks out
/// of the root and paths outside the files' directory count as missing (so does one
/// that cannot be opened, with an error logged). The candidate found is answered as a
/// request for it would be, with the same file descriptor that found it.
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
/// without its trailing `/`, empty for `/`): `/index.html` or `/apple.html` for files
/// at `/app/` could never be found (`Inner::relative` finds nothing for them). `$uri`
/// is always under it.
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

/// The candidate that exists: its normalized path, its name under the root, and what
/// was found there (for a directory with an `index.html`, the index itself).
struct Hit {
    path: String,
    relative: String,
    found: Found,
}

impl Inner {
    /// The first candidate that exists, else the status to answer (if one was given).
    /// Each candidate is first offered to `cached` (its normalized path and its name
    /// under the root), which answers it from the content cache if it can: then
    /// `Ok(None)`.
    fn first_existing(
        &self,
        request_path: &str,
        candidates: &[Candidate],
        mut cached: impl FnMut(&str, &str) -> bool,
    ) -> Result<Option<Hit>, Option<StatusCode>> {
        for candidate in candidates {
            let template = match candidate {
                Candidate::Path(template) => template,
                Candidate::Status(status) => return Err(Some(*status)),
            };
            // `..` cannot climb above `/`; `relative` keeps the path under the prefix.
            let Ok(path) = normalize_path(&template.replace("$uri", request_path)) else {
                continue;
            };
            if let Some(relative) = self.relative(&path)
                && cached(&path, relative)
            {
                return Ok(None);
            }
            if let Some(hit) = self.hit(path) {
                return Ok(Some(hit));
            }
        }
        Err(None)
    }

    /// What the candidate `path` finds by the root's policies (hidden files, symlinks,
    /// the prefix): a path ending in `/` counts when it is a directory with an
    /// `index.html` (or a listing, if listings are on), any other when it is a file.
    /// What is looked at is opened, and a hit keeps it open for sending.
    fn hit(&self, path: String) -> Option<Hit> {
        let relative = self.relative(&path)?.to_owned();
        match self.look(&path, &relative)? {
            found @ Found::File(..) if !path.ends_with('/') => Some(Hit {
                path,
                relative,
                found,
            }),
            Found::Directory if path.ends_with('/') => {
                let index = index_of(&relative);
                match self.look(&path, &index) {
                    Some(found @ Found::File(..)) => Some(Hit {
                        path: format!("{path}index.html"),
                        relative: index,
                        found,
                    }),
                    _ if self.listing => Some(Hit {
                        path,
                        relative,
                        found: Found::Directory,
                    }),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// [`Inner::find`] for a candidate. What cannot be opened for another reason than
    /// not being there (permissions, out of file descriptors) is logged and passed
    /// over too, as nginx's `try_files` does.
    fn look(&self, path: &str, relative: &str) -> Option<Found> {
        match self.find(relative) {
            Ok(found) => Some(found),
            Err(Refused::NotFound) => None,
            Err(Refused::Failed(error)) => {
                tracing::error!(%error, %path, "try_files: cannot open a candidate; trying the next");
                None
            }
        }
    }
}

impl Handler for TryFiles {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let files = &self.files;
        let cached =
            |path: &str, relative: &str| files.answer_cached(&request, &response, path, relative);
        let listing = match files.first_existing(request.path(), &self.candidates, cached) {
            Ok(None) => None,
            Ok(Some(hit)) => files.answer(&request, &response, &hit.path, &hit.relative, hit.found),
            Err(status) => {
                fallback(&response, status.unwrap_or(StatusCode::NOT_FOUND));
                None
            }
        };
        files.finish(response, listing)
    }
}

/// Answers the status given when no candidate exists; an error status with its text.
fn fallback(response: &Response, status: StatusCode) {
    response.set_status(status);
    if status.is_client_error() || status.is_server_error() {
        let reason = status.canonical_reason().unwrap_or("Error");
        response.set_content_type("text/plain; charset=utf-8");
        response.set_body(format!("{} {reason}\n", status.as_u16()));
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

    /// A root with a file, a directory with and one without an index, a hidden file,
    /// a symlink out of the root, and a file beside the root.
    fn site(name: &str) -> std::path::PathBuf {
        let base = std::env::temp_dir().join(format!("poco-httpd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("index.html"), "app").unwrap();
        std::fs::write(root.join("docs/index.html"), "docs").unwrap();
        std::fs::write(root.join(".env"), "secret").unwrap();
        std::fs::write(base.join("outside.txt"), "outside").unwrap();
        std::os::unix::fs::symlink(base.join("outside.txt"), root.join("out.txt")).unwrap();
        base
    }

    /// The path and name under the root of the candidate chosen for `request_path`,
    /// or the status answered.
    fn chosen(
        files: &StaticFiles,
        candidates: &[&str],
        request_path: &str,
    ) -> Result<(String, String), u16> {
        let try_files = TryFiles::new(files.clone(), candidates.iter().copied()).expect("valid");
        match try_files
            .files
            .first_existing(request_path, &try_files.candidates, |_, _| false)
        {
            Ok(hit) => {
                let hit = hit.expect("not answered from the cache");
                Ok((hit.path, hit.relative))
            }
            Err(status) => Err(status.map_or(404, |status| status.as_u16())),
        }
    }

    #[test]
    fn a_candidate_counts_as_a_file_or_as_a_directory_with_an_index() {
        let base = site("try-files-kinds");
        let files = StaticFiles::new("/", base.join("root"));
        let spa = ["$uri", "$uri/", "/index.html"];
        let docs = chosen(&files, &spa, "/docs");
        let root = chosen(&files, &spa, "/");
        let route = chosen(&files, &spa, "/users/42");
        let empty = chosen(&files, &["$uri/", "=410"], "/empty");
        let listed = chosen(&files.clone().directory_listing(true), &["$uri/"], "/empty");
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(
            docs,
            Ok(("/docs/index.html".into(), "docs/index.html".into()))
        );
        assert_eq!(root, Ok(("/index.html".into(), "index.html".into())));
        assert_eq!(route, Ok(("/index.html".into(), "index.html".into())));
        assert_eq!(empty, Err(410), "a directory without an index");
        assert_eq!(listed, Ok(("/empty/".into(), "empty".into())));
    }

    #[test]
    fn hidden_files_symlinks_out_and_paths_outside_the_mount_count_as_missing() {
        let base = site("try-files-policies");
        let files = StaticFiles::new("/app/", base.join("root"));
        let strict = ["$uri", "=404"];
        let hidden = chosen(&files, &strict, "/app/.env");
        let symlink_out = chosen(&files, &strict, "/app/out.txt");
        let climbing = chosen(&files, &["/app/../outside.txt", "=404"], "/app/x");
        // `/app/../appindex.html` passes the check at construction and normalizes
        // to `/appindex.html`, which is not `index.html` under `/app/`.
        let beside = chosen(&files, &["/app/../appindex.html", "=404"], "/app/x");
        let allowed = chosen(
            &files.clone().hidden_files(true).follow_symlinks_out(true),
            &["/app/.env", "/app/out.txt"],
            "/app/x",
        );
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(hidden, Err(404));
        assert_eq!(symlink_out, Err(404));
        assert_eq!(climbing, Err(404), "`..` cannot leave the mount");
        assert_eq!(beside, Err(404), "/appindex.html is not under /app/");
        assert_eq!(allowed, Ok(("/app/.env".into(), ".env".into())));
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
