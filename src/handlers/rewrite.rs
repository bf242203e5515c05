//! [`Rewrite`]: a Trans handler rewriting request paths by pattern.

use regex::{Regex, RegexBuilder};

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
    /// How deep a pattern may nest groups and repetitions: far beyond what a path
    /// rewrite needs, and shallow enough that compiling a hostile pattern cannot
    /// exhaust the stack (the regex parser recurses per level).
    pub const MAX_NESTING: u32 = 32;

    /// Rewrites paths matching `pattern` to `replacement`, where `$1`, `${name}` refer
    /// to the pattern's groups.
    ///
    /// # Errors
    /// When `pattern` is not a valid regular expression, or nests groups and
    /// repetitions more than [`Rewrite::MAX_NESTING`] deep.
    pub fn new(pattern: &str, replacement: impl Into<String>) -> Result<Self, regex::Error> {
        Ok(Self {
            pattern: RegexBuilder::new(pattern)
                .nest_limit(Self::MAX_NESTING)
                .build()?,
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

    /// Found by the config fuzz target: 200 stacked `*` overflowed a debug build's
    /// stack inside the regex parser.
    #[test]
    fn deeply_nested_patterns_are_refused() {
        let hostile = format!("a{}", "*".repeat(200));
        let error = Rewrite::new(&hostile, "/x").expect_err("too deep");
        assert!(error.to_string().contains("nest"), "{error}");
        let nested_groups = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(Rewrite::new(&nested_groups, "/x").is_err());
        assert!(Rewrite::new("^/(a|b)+/((c)*)$", "/x").is_ok());
    }
}
