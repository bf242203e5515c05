//! [`Phase`]: the names of the handler phases, as registration, logs and errors use
//! them.
//!
//! This module knows nothing about the pipeline that runs the phases: it only names
//! them. The pipeline's machines keep positions of their own (mapping, the end of the
//! walk) and say which of these phases a handler they call belongs to.

use std::fmt;

/// A handler phase. A request runs through Trans, Pre, Content, Send and Post in that
/// order; when the socket fails mid-exchange, Error runs before Post; Stream feeds a
/// streaming response. Each [`Handler`](crate::Handler) returns an
/// [`Outcome`](crate::Outcome), whose `Deny` means:
///
/// | phase | keyed by | how many run | `Deny` |
/// |---|---|---|---|
/// | Trans | global list ([`trans`](crate::ServerBuilder::trans)) | each in order, before mapping; may rewrite the URI | stops the Trans list, goes on to mapping |
/// | Pre | directory or file path | all on the path: `/`, `/foo/`, `/foo/bar/`, `/foo/bar/baz.txt`; FIFO; may replace the Content handler and push Post handlers | 403 (unless the handler set an error status), skips Content |
/// | Content | directory or file path | the deepest one on the path | 403 (unless an error status was set) |
/// | Send | built in | default headers, `Date`, `Content-Length` (unless streaming), `Set-Cookie`; first the hooks added with [`Request::before_send`](crate::Request::before_send) | — |
/// | Post | directory or file path | all on the path, after the response has been flushed to the socket | stops the Post list |
/// | Error | directory or file path | the deepest one, when the socket fails mid-exchange; Post handlers still run | — |
/// | Stream | global, or directory or file path | when a streaming response starts, then each time a block has been flushed, until closed | — |
///
/// Pre, Content, Post, Error and Stream handlers are registered by path with
/// [`ServerBuilder::handler`](crate::ServerBuilder::handler) (or its short forms
/// `pre`, `content`, `post`, `error`, `stream_at`). `Display` prints the name as
/// above (`Trans`, `Pre`, …), as do the logs; a panicking handler is logged with its
/// phase.
///
/// ```
/// use poco_httpd::Phase;
///
/// assert_eq!(Phase::Content.to_string(), "Content");
/// assert_eq!(Phase::Post.as_str(), "Post");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Global handlers run in order before the path is mapped; they may rewrite the URI.
    Trans,
    /// Every handler on the path, shallowest first; they may refuse the request.
    Pre,
    /// The deepest handler on the path, which builds the response.
    Content,
    /// Built in: the response head is finished and handed to the connection.
    Send,
    /// Every handler on the path, after the response has been flushed.
    Post,
    /// The deepest handler on the path, when the socket fails mid-exchange.
    Error,
    /// Feeds a streaming response, called again after each flushed block.
    Stream,
}

impl Phase {
    /// The phase's name, as `Display` prints it: `"Trans"`, `"Pre"`, and so on.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trans => "Trans",
            Self::Pre => "Pre",
            Self::Content => "Content",
            Self::Send => "Send",
            Self::Post => "Post",
            Self::Error => "Error",
            Self::Stream => "Stream",
        }
    }
}

impl fmt::Display for Phase {
    /// Prints the name; width and alignment apply (`{:<8}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Phase;

    #[test]
    fn display_prints_the_phase_name() {
        let names = [
            (Phase::Trans, "Trans"),
            (Phase::Pre, "Pre"),
            (Phase::Content, "Content"),
            (Phase::Send, "Send"),
            (Phase::Post, "Post"),
            (Phase::Error, "Error"),
            (Phase::Stream, "Stream"),
        ];
        for (phase, name) in names {
            assert_eq!(phase.to_string(), name);
            assert_eq!(phase.as_str(), name);
        }
    }

    #[test]
    fn display_honours_width_and_alignment() {
        assert_eq!(format!("[{:<8}]", Phase::Pre), "[Pre     ]");
        assert_eq!(format!("[{:>5}]", Phase::Post), "[ Post]");
    }
}
