//! [`Error`]: everything that can go wrong building or starting a server.
//!
//! As in hyper, an error's `Display` prints its own level only; an underlying cause
//! (the operating system's error) is reached through [`std::error::Error::source`],
//! so whoever prints the whole chain (anyhow's `{:#}`, say) prints each part once.

use std::io;

use crate::Phase;

/// Why a server could not be built or started. Each message says what to fix; the
/// operating system's error, where there is one, is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No Content handler was registered, so no request could ever be answered.
    #[error(
        "the server has no Content handler: register one with `content(\"/\", handler)` or `default_content(handler)`"
    )]
    NoContentHandler,
    /// A handler path key is not usable.
    #[error("handler path {path:?} is invalid: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two handlers were registered for a phase that takes one per path.
    #[error("two {phase} handlers are registered for {path:?}; a path takes only one")]
    DuplicateHandler {
        /// [`Phase::Content`], [`Phase::Error`] or [`Phase::Stream`].
        phase: Phase,
        /// The path registered twice.
        path: String,
    },
    /// A handler was registered by path for a phase whose handlers are not kept by path
    /// ([`Phase::Trans`], a global list, or [`Phase::Send`], which is built in).
    #[error("{phase} handlers cannot be registered by path (given {path:?}): {}", instead(*phase))]
    PhaseNotByPath {
        /// The phase asked for.
        phase: Phase,
        /// The path given with it.
        path: String,
    },
    /// A default header has an invalid name or value.
    #[error("default header {name:?} is invalid: {reason}")]
    InvalidHeader {
        /// The header name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The listen address could not be resolved.
    #[error("cannot resolve listen address {addr:?}")]
    Resolve {
        /// The address as given.
        addr: String,
        /// The resolver's error, also the [`source`](std::error::Error::source).
        source: io::Error,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address as given.
        addr: String,
        /// The operating system's error, also the [`source`](std::error::Error::source).
        source: io::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error("TLS: cannot use {file}: {reason}")]
    Tls {
        /// The PEM file at fault.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A listener cannot be served as asked.
    #[error("listener {listener}: {reason}")]
    InvalidListener {
        /// The listener's address (or `a socket given ready`).
        listener: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A virtual host cannot be served as asked.
    #[error("virtual host {hosts}: {reason}")]
    InvalidVirtualHost {
        /// Its host names as given, comma-separated.
        hosts: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A reload asked for a change that only a restart can make; the server keeps its
    /// current configuration.
    #[error(
        "`{setting}` cannot change while the server runs ({change}); restart the server to apply it"
    )]
    NeedsRestart {
        /// The setting, named as the config file's key: `listen` or `tls`.
        setting: &'static str,
        /// The change asked for.
        change: String,
    },
}

/// What to call instead of registering a `phase` handler by path.
fn instead(phase: Phase) -> &'static str {
    match phase {
        Phase::Trans => "they are one global list; add one with `trans(handler)`",
        Phase::Send => {
            "the Send phase is built in; to change a response before it goes out, add a hook with `Request::before_send` from a Pre or Content handler"
        }
        // Registered by path: `build` never refuses these.
        Phase::Pre | Phase::Content | Phase::Post | Phase::Error | Phase::Stream => {
            "use `handler(phase, path, handler)`"
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// Each variant with a cause: the cause is the source, and not printed again.
    #[test]
    fn a_cause_is_the_source_and_not_in_the_message() {
        let in_use = || io::Error::from(io::ErrorKind::AddrInUse);
        let errors = [
            Error::Resolve {
                addr: "nowhere:80".to_owned(),
                source: in_use(),
            },
            Error::Listen {
                addr: "127.0.0.1:80".to_owned(),
                source: in_use(),
            },
        ];
        let cause = in_use().to_string();
        for error in errors {
            assert!(!error.to_string().contains(&cause), "{error}");
            let source = error.source().map(ToString::to_string);
            assert_eq!(source.as_deref(), Some(cause.as_str()));
        }
    }

    /// The variants without a cause say what is wrong themselves.
    #[test]
    fn variants_without_a_cause_have_no_source() {
        let errors = [
            Error::NoContentHandler,
            Error::InvalidPath {
                path: "x".to_owned(),
                reason: "it must start with '/'",
            },
            Error::DuplicateHandler {
                phase: Phase::Content,
                path: "/".to_owned(),
            },
            Error::PhaseNotByPath {
                phase: Phase::Trans,
                path: "/".to_owned(),
            },
            Error::InvalidHeader {
                name: "a b".to_owned(),
                reason: "bad name".to_owned(),
            },
            Error::Tls {
                file: "key.pem".to_owned(),
                reason: "no private key".to_owned(),
            },
        ];
        for error in errors {
            assert!(error.source().is_none(), "{error}");
        }
    }
}
