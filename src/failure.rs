//! [`Failure`]: why an exchange did not end with the whole response on the wire, as
//! the Error and Post handlers are told through
//! [`Request::failure`](crate::Request::failure).
//!
//! The original module passed its Error handler the failed operation, the errno and
//! a message; here that is a [`FailureKind`] to match on, a message in words and, where
//! the socket reported one, the underlying [`io::Error`] as the error's source.

use std::fmt;
use std::io;
use std::sync::Arc;

/// What went wrong, in a form to match on. More kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The client closed or reset the connection before the whole response was sent.
    ClientGone,
    /// The client stopped reading: a write made no progress within the server's
    /// [`write_timeout`](crate::ServerBuilder::write_timeout).
    WriteTimeout,
    /// Writing to the socket failed for another reason (the I/O error tells which).
    WriteFailed,
    /// The handlers did not answer within the server's
    /// [`handler_timeout`](crate::ServerBuilder::handler_timeout); the client got `503`.
    HandlerTimeout,
    /// Reading the request body failed: the client broke off or sent a broken body.
    BodyRead,
    /// The client stopped sending the request body for longer than the server's
    /// [`body_read_timeout`](crate::ServerBuilder::body_read_timeout).
    BodyTimeout,
    /// The client went away in the middle of a request head; the request handlers see
    /// is a placeholder `GET /`.
    IncompleteHead,
    /// A streaming response's producer failed (its `Stream` yielded an error, or the
    /// Stream handler panicked), so the response was cut.
    StreamBroken,
    /// An HTTP/2 response made no progress (the client granted no flow-control
    /// window, or took nothing) within the server's
    /// [`send_timeout`](crate::ServerBuilder::send_timeout); its stream was reset.
    SendTimeout,
    /// A connection taken over after a protocol switch (a WebSocket) ended without
    /// its closing handshake: the client vanished, or broke the protocol.
    UpgradedBroken,
    /// A connection taken over (a WebSocket) heard nothing from the client, not even
    /// an answer to the server's ping, within its idle timeout.
    UpgradedIdle,
}

/// Why an exchange failed; see the module docs.
#[derive(Debug, Clone)]
pub struct Failure {
    kind: FailureKind,
    message: String,
    io: Option<Arc<io::Error>>,
}

impl Failure {
    /// A failure of `kind`, described by `message` (what happened, in words): for a
    /// task that reports how a connection it took over ended, through
    /// [`PostHold::fail`](crate::PostHold::fail).
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            io: None,
        }
    }

    /// Attaches the I/O error the socket or the body reported.
    pub(crate) fn with_io(mut self, error: Arc<io::Error>) -> Self {
        self.io = Some(error);
        self
    }

    /// Attaches `error`, the I/O error behind the failure (its
    /// [`source`](std::error::Error::source)).
    pub fn with_io_error(self, error: io::Error) -> Self {
        self.with_io(Arc::new(error))
    }

    /// A write to the socket failed with `error`: a timeout, a client gone, or else.
    pub(crate) fn of_write(error: io::Error) -> Self {
        let kind = match error.kind() {
            io::ErrorKind::TimedOut => FailureKind::WriteTimeout,
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected => FailureKind::ClientGone,
            _ => FailureKind::WriteFailed,
        };
        Self::new(kind, "writing the response failed").with_io(Arc::new(error))
    }

    /// What went wrong.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The I/O error behind the failure, when the socket or the body reported one.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.io.as_deref()
    }
}

impl fmt::Display for Failure {
    /// The message only; the I/O error is the [`source`](std::error::Error::source).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let error: &io::Error = self.io.as_deref()?;
        Some(error)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_write_error_is_sorted_by_its_kind() {
        let cases = [
            (io::ErrorKind::TimedOut, FailureKind::WriteTimeout),
            (io::ErrorKind::BrokenPipe, FailureKind::ClientGone),
            (io::ErrorKind::ConnectionReset, FailureKind::ClientGone),
            (io::ErrorKind::PermissionDenied, FailureKind::WriteFailed),
        ];
        for (io_kind, expected) in cases {
            let failure = Failure::of_write(io::Error::from(io_kind));
            assert_eq!(failure.kind(), expected, "{io_kind:?}");
            assert_eq!(failure.io_error().map(io::Error::kind), Some(io_kind));
        }
    }

    #[test]
    fn display_prints_one_level_and_the_source_holds_the_io_error() {
        let failure = Failure::of_write(io::Error::other("boom"));
        assert_eq!(failure.to_string(), "writing the response failed");
        let source = failure.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("boom"));
    }
}
