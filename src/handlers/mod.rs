//! Built-in handlers, each a type configured in code the same way the ready-made
//! server's config file configures it.
//!
//! - [`TowerService`]: any `tower::Service` (an axum `Router`, a tower-http service)
//!   as the Content handler of a directory.
//! - [`Redirect`]: a Content handler answering with a redirect.
//! - [`BasicAuth`]: a Pre handler for HTTP Basic authentication from an htpasswd file.
//! - [`Compression`]: a Pre handler compressing responses with zstd, brotli or gzip.
//! - [`AccessLog`]: a Post handler writing Common or Combined Log Format lines.
//! - [`Rewrite`]: a Trans handler rewriting paths by regular expression.
//! - [`StaticFiles`]: files under a root — conditional and range requests (see
//!   [`Ranges`]), precompressed siblings, an optional listing, no way out of the root.
//! - [`ServerStatus`]: the live status page (HTML with a chart, JSON, Prometheus).
//! - [`WebSocket`]: WebSockets over HTTP/1.1 and HTTP/2 through the phases (see
//!   [`websocket`]); [`WebSocketExt::websocket`] registers one in a line.

mod access_log;
mod basic_auth;
mod compression;
mod redirect;
mod rewrite;
mod static_files;
mod status;
mod tower;
pub mod websocket;

pub use self::access_log::{AccessLog, LogFormat};
pub use self::basic_auth::{BasicAuth, HtpasswdError};
pub use self::compression::{Coding, Compression, is_compressible};
pub use self::redirect::Redirect;
pub use self::rewrite::Rewrite;
pub use self::static_files::{Ranges, StaticFiles};
pub use self::status::ServerStatus;
pub use self::tower::TowerService;
pub use self::websocket::{WebSocket, WebSocketExt};
