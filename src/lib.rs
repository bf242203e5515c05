//! poco-httpd: build custom HTTP servers out of handler phases stacked by URL
//! directory, after Perl's POE::Component::Server::HTTP, on tokio and hyper.
//!
//! A request runs through phases ([`Phase`]), each a list of [`Handler`]s returning an
//! [`Outcome`]:
//!
//! - **Trans** handlers (a global list) run first and may rewrite the URI;
//! - **Pre** handlers of every directory on the path run next, `/` first, then `/foo/`,
//!   `/foo/bar/` and the file itself;
//! - the deepest **Content** handler on the path builds the response, which is then
//!   **Sent** with the default headers, `Date`, `Content-Length` and cookies;
//! - a **Stream** handler feeds a streaming response, called again each time a block
//!   has been flushed;
//! - **Post** handlers run once the response has been flushed to the socket;
//! - the deepest **Error** handler runs instead when the socket fails mid-exchange.
//!
//! ```no_run
//! use poco_httpd::{Request, Response, Server};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), poco_httpd::Error> {
//!     Server::builder()
//!         .content("/", |req: Request, res: Response| {
//!             res.ok(format!("Hi, you fetched {}", req.uri()))
//!         })
//!         .build()?
//!         .run()
//!         .await
//! }
//! ```
//!
//! # Layout
//!
//! - [`server`](ServerBuilder): builder, listening socket, accept loop, shutdown drain;
//! - `connection`: one task per socket, serving HTTP/1.1 and HTTP/2 through hyper;
//! - `transport`: what a connection is served with (limits, TLS certificate), which
//!   a [`ReloadHandle`] replaces for the connections after it;
//! - `pipeline`: the phase state machines in front of and behind the client, which
//!   run handlers in place and await only those that wait;
//! - `map`: the directory map from a normalized path to its handler stacks;
//! - [`Phase`]: the phases' names, for registration, logs and errors;
//! - `flush`: the socket wrapper that tells when a response has been flushed;
//! - `stream`: the bounded channel behind streaming responses; [`Event`] and
//!   [`Multipart`] encode Server-Sent Events and multipart pushes;
//! - [`Request`], [`Response`], [`Connection`]: what handlers see;
//! - [`handlers`]: built-in handlers (tower bridge, static files and `try_files`,
//!   redirect, rewrite, basic auth, access log, compression, response headers, CORS,
//!   error pages, access control by address, the client's address behind proxies,
//!   rate limits, reverse proxy, the status page);
//! - [`session`]: sessions matched by cookie, in memory or in Redis.

#![warn(clippy::unwrap_used)]

#[doc(hidden)]
pub mod bench_support;
mod body;
mod connection;
mod error;
mod exchange;
mod failure;
mod flush;
#[doc(hidden)]
pub mod fuzzing;
mod handler;
pub mod handlers;
mod header_tokens;
mod host;
mod incoming;
mod limits;
mod map;
mod multipart;
mod path;
mod per_ip;
mod phase;
mod pipeline;
mod post_hold;
mod proxy_header;
mod refusal_io;
mod reload;
mod request;
mod request_body;
mod response;
mod send_watch;
mod serve;
mod server;
pub mod session;
mod shared;
mod shutdown;
mod site;
mod sse;
mod stats;
mod stream;
mod sync;
mod timed_io;
mod tls;
mod transport;
mod until_signal;
mod upgrade;
mod wait;

pub use body::Body;
pub use connection::Connection;
pub use error::Error;
pub use failure::{Failure, FailureKind};
pub use handler::{Handler, HandlerFuture, Outcome, handler_fn};
pub use multipart::Multipart;
pub use path::{PathError, normalize_path};
pub use phase::Phase;
pub use post_hold::PostHold;
pub use reload::ReloadHandle;
pub use request::{BodyError, Request};
pub use request_body::RequestBody;
pub use response::Response;
pub use server::{BoundServer, Server, ServerBuilder};
pub use shutdown::ShutdownHandle;
pub use sse::Event;
pub use stats::Stats;
pub use stream::StreamError;
pub use tls::TlsInfo;
pub use upgrade::{Upgrade, UpgradeError, Upgraded};

/// Cheap, reference-counted bytes: what bodies and blocks are made of.
pub use bytes::Bytes;
/// The `cookie` crate, re-exported for [`Response::add_cookie`] and
/// [`Request::cookie`].
pub use cookie;
/// The `http` crate, re-exported for status codes, methods and headers.
pub use http;
/// The `rustls` crate, re-exported for [`ServerBuilder::tls_config`].
pub use tokio_rustls::rustls;

#[cfg(test)]
mod send_sync_checks {
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}

    #[test]
    fn handles_and_server_can_cross_threads() {
        assert_send::<crate::Request>();
        assert_sync::<crate::Request>();
        assert_send::<crate::Response>();
        assert_sync::<crate::Response>();
        assert_send::<crate::ShutdownHandle>();
        assert_sync::<crate::ShutdownHandle>();
        assert_send::<crate::Server>();
        assert_send::<crate::BoundServer>();
        assert_send::<crate::HandlerFuture>();
    }
}

/// The README's examples, compiled as documentation tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The guide for users of the Perl module (`docs/from-perl.md`), its examples
/// compiled as documentation tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/from-perl.md")]
pub struct FromPerlDoctests;
