//! [`Error`]: everything that can go wrong building or starting a server.

use std::io;

/// Why a server could not be built or started. Each message says what to fix.
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
        /// `Content`, `Error` or `Stream`.
        phase: &'static str,
        /// The path registered twice.
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
    #[error("cannot resolve listen address {addr:?}: {source}")]
    Resolve {
        /// The address as given.
        addr: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address as given.
        addr: String,
        /// The operating system's error.
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
