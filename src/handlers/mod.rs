//! Built-in handlers, each a type configured in code the same way the ready-made
//! server's config file configures it.
//!
//! - [`TowerService`]: any `tower::Service` (an axum `Router`, a tower-http service)
//!   as the Content handler of a directory.
//! - [`Proxy`]: a reverse proxy to HTTP/1.1 or HTTP/2 upstreams (TCP or Unix
//!   sockets), with balancing, health checks, retries and WebSocket tunnels.
//! - [`Redirect`]: a Content handler answering with a redirect.
//! - [`BasicAuth`]: a Pre handler for HTTP Basic authentication from an htpasswd file.
//! - [`Compression`]: a Pre handler compressing responses with zstd, brotli or gzip.
//! - [`AccessLog`]: a Post handler writing Common or Combined Log Format lines.
//! - [`Rewrite`]: a Trans handler rewriting paths by regular expression.
//! - [`StaticFiles`]: files under a root — conditional and range requests (see
//!   [`Ranges`]), precompressed siblings, an optional listing, no way out of the root.
//! - [`TryFiles`]: nginx's `try_files` over a [`StaticFiles`] root (single-page-app
//!   fallback).
//! - [`ServerStatus`]: the live status page (HTML with a chart, JSON, Prometheus).
//! - [`ResponseHeaders`]: a Pre handler setting response headers (`Cache-Control`).
//! - [`Cors`]: a Pre handler for cross-origin requests, answering preflights.
//! - [`ErrorPages`]: a Pre handler replacing error answers' bodies with pages.
//! - [`AccessControl`]: a Pre handler allowing or denying client addresses (403).
//! - [`RealIp`]: a Trans handler taking the client's address from trusted proxies'
//!   `X-Forwarded-For` or `Forwarded`.
//! - [`RateLimit`]: a Pre handler limiting requests per client address (429).
//! - [`WebSocket`]: WebSockets over HTTP/1.1 and HTTP/2 through the phases (see
//!   [`websocket`]); [`WebSocketExt::websocket`] registers one in a line.

mod access;
mod access_log;
mod basic_auth;
mod compression;
mod cors;
mod error_pages;
mod proxy;
mod rate_limit;
mod redirect;
mod response_headers;
mod rewrite;
mod static_files;
mod status;
mod tower;
pub mod websocket;

pub use self::access::{AccessControl, NetError, RealIp};
pub use self::access_log::{AccessLog, LogFormat};
pub use self::basic_auth::{BasicAuth, HtpasswdError};
pub use self::compression::{Coding, Compression, is_compressible};
pub use self::cors::Cors;
pub use self::error_pages::{ErrorPageError, ErrorPages};
pub use self::proxy::{Balance, HostHeader, Proxy, ProxyFailure, ProxyReport, UpstreamError};
pub use self::rate_limit::RateLimit;
pub use self::redirect::Redirect;
pub use self::response_headers::ResponseHeaders;
pub use self::rewrite::Rewrite;
pub use self::static_files::{Ranges, StaticFiles, TryFiles, TryFilesError};
pub use self::status::ServerStatus;
pub use self::tower::TowerService;
pub use self::websocket::{WebSocket, WebSocketExt};
