//! [`StaticFiles`]: files under a root directory as the Content handler of a
//! directory — tower-http's `ServeDir` (through the tower bridge) for the serving,
//! plus what it lacks: `ETag` with `If-None-Match`, and a root that symlinks cannot
//! lead out of.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use http::StatusCode;
use http::header::{ETAG, IF_NONE_MATCH};
use tower_http::services::ServeDir;

use super::TowerService;
use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Serves the files under `root` for the directory it is mounted at.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::StaticFiles;
///
/// let builder = Server::builder().content("/", StaticFiles::new("/", "."));
/// # drop(builder);
/// ```
#[derive(Debug, Clone)]
pub struct StaticFiles {
    prefix: String,
    root: PathBuf,
    /// The root with symlinks resolved, once, for the containment check.
    real_root: Option<PathBuf>,
    follow_symlinks_out: bool,
    files: TowerService<ServeDir>,
}

impl StaticFiles {
    /// Files under `root`, mounted at the directory `prefix` (e.g. `/static/`).
    pub fn new(prefix: &str, root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let files = ServeDir::new(&root).append_index_html_on_directories(true);
        Self {
            prefix: prefix.trim_end_matches('/').to_owned(),
            real_root: root.canonicalize().ok(),
            root,
            follow_symlinks_out: false,
            files: TowerService::new(prefix, files),
        }
    }

    /// Also serve files that symlinks inside the root point to outside it. Default:
    /// refused with 404.
    pub fn follow_symlinks_out(mut self, allow: bool) -> Self {
        self.follow_symlinks_out = allow;
        self
    }

    /// The file a (normalized) request path names, if it exists inside the root.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        let relative = path.strip_prefix(&self.prefix)?.trim_start_matches('/');
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
}

/// A weak validator from the file's length and modification time.
fn etag(path: &Path) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() {
        return None;
    }
    let modified = metadata.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(format!(
        "W/\"{:x}-{:x}\"",
        metadata.len(),
        modified.as_nanos()
    ))
}

fn matches_any(if_none_match: &str, tag: &str) -> bool {
    let strip_weak = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    if_none_match.trim() == "*"
        || if_none_match
            .split(',')
            .any(|t| strip_weak(t) == strip_weak(tag))
}

impl Handler for StaticFiles {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let path = request.path();
        let Some(file) = self.resolve(&path) else {
            response.set_status(StatusCode::NOT_FOUND);
            response.set_body("404 Not Found\n");
            return Box::pin(std::future::ready(Outcome::Ok));
        };
        let tag = etag(&file);
        if let Some(tag) = &tag {
            let wanted = request.header(IF_NONE_MATCH).and_then(|v| v.to_str().ok());
            if wanted.is_some_and(|wanted| matches_any(wanted, tag)) {
                response.set_status(StatusCode::NOT_MODIFIED);
                let _ = response.set_header(ETAG, tag.as_str());
                return Box::pin(std::future::ready(Outcome::Ok));
            }
        }
        let serving = self.files.call(request, response.clone());
        Box::pin(async move {
            let outcome = serving.await;
            if let Some(tag) = tag
                && response.status().is_success()
            {
                let _ = response.set_header(ETAG, tag);
            }
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        assert!(matches_any("W/\"a-b\"", "W/\"a-b\""));
        assert!(matches_any("\"x\", \"a-b\"", "W/\"a-b\""));
        assert!(matches_any("*", "W/\"a-b\""));
        assert!(!matches_any("\"other\"", "W/\"a-b\""));
    }
}
