//! [`Rewrite`]: a Trans handler rewriting request paths by pattern.

use regex::Regex;

use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Rewrites the request path when it matches a regular expression, keeping the query
/// string; later phases are mapped by the rewritten path. Use it with
/// [`ServerBuilder::trans`](crate::ServerBuilder::trans).
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::Rewrite;
///
/// let old_to_new = Rewrite::new(r"^/old/(.*)$", "/new/$1")?;
/// let builder = Server::builder().trans(old_to_new);
/// # Ok::<(), regex::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rewrite {
    pattern: Regex,
    replacement: String,
    last: bool,
}

impl Rewrite {
    /// Rewrites paths matching `pattern` to `replacement`, where `$1`, `${name}` refer
    /// to the pattern's groups.
    ///
    /// # Errors
    /// When `pattern` is not a valid regular expression.
    pub fn new(pattern: &str, replacement: impl Into<String>) -> Result<Self, regex::Error> {
        Ok(Self {
            pattern: Regex::new(pattern)?,
            replacement: replacement.into(),
            last: false,
        })
    }

    /// After a match, stop the Trans list (the handler returns `Deny`, which for
    /// Trans handlers means "stop translating, go on to mapping").
    pub fn last(mut self) -> Self {
        self.last = true;
        self
    }

    /// The rewritten path, if `path` matches.
    fn rewrite(&self, path: &str) -> Option<String> {
        self.pattern.is_match(path).then(|| {
            self.pattern
                .replace(path, self.replacement.as_str())
                .into_owned()
        })
    }
}

impl Handler for Rewrite {
    fn call(&self, request: Request, _response: Response) -> HandlerFuture {
        let current = request.uri();
        let outcome = match self.rewrite(current.path()) {
            None => Outcome::Ok,
            Some(path) => {
                let uri = match current.query() {
                    Some(query) => format!("{path}?{query}"),
                    None => path,
                };
                match request.set_uri(uri) {
                    Ok(()) if self.last => Outcome::Deny,
                    Ok(()) => Outcome::Ok,
                    Err(error) => {
                        tracing::warn!(%error, "rewrite produced an invalid URI; left unchanged");
                        Outcome::Ok
                    }
                }
            }
        };
        HandlerFuture::ready(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_substituted_and_non_matches_left_alone() {
        let rewrite = Rewrite::new(r"^/old/(?P<rest>.*)$", "/new/${rest}").expect("valid");
        assert_eq!(
            rewrite.rewrite("/old/a/b.html").as_deref(),
            Some("/new/a/b.html")
        );
        assert_eq!(rewrite.rewrite("/other"), None);
    }
}
