//! WebSockets (RFC 6455 over HTTP/1.1, RFC 8441 over HTTP/2) as a Content handler:
//! [`WebSocket`] accepts the upgrade at its directory and runs a handler with a
//! [`Socket`]; [`WebSocketExt::websocket`] registers one in a line.
//!
//! The phases apply as for any request: Trans and Pre handlers (authentication,
//! sessions, rewrites) run first and may refuse with a normal answer, and a Pre
//! handler may install a `WebSocket` as the request's Content handler
//! ([`Request::set_content_handler`]). A request to the path that asks for no
//! upgrade gets `426 Upgrade Required`, or the answer of [`WebSocket::fallback`].
//! The Post handlers run after the WebSocket closed, and read how it ended from
//! [`SocketEnd::of`]; the Error handler runs first when the client never sent a
//! close frame.
//!
//! Built on tokio-tungstenite (ARCHITECTURE.md says why): frames, fragments, UTF-8,
//! pongs and the closing handshake are its work; this module adds the handshake
//! through the phases, limits, keep-alive and the socket's end. permessage-deflate
//! is not offered: tungstenite does not implement it.
//!
//! Layout: `message.rs` (the public message types), `socket.rs` (`Socket` and the
//! state behind it), `run.rs` (the task behind one WebSocket), `end.rs`
//! (`SocketEnd`), `origin.rs` (`is_same_origin`), `routes.rs` (`WebSocketExt`).

mod end;
mod message;
mod origin;
mod routes;
mod run;
mod socket;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use http::header::{HeaderName, ORIGIN};
use http::{Method, StatusCode, Version};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use self::end::SocketEnd;
pub use self::message::{CloseCode, CloseFrame, Message, Text};
pub use self::origin::is_same_origin;
pub use self::routes::WebSocketExt;
use self::run::{Serve, Session};
use self::socket::Timing;
pub use self::socket::{SendError, Socket};
use crate::{Handler, HandlerFuture, Outcome, Request, Response};

const SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
const SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");
const SEC_WEBSOCKET_VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");
const SEC_WEBSOCKET_PROTOCOL: HeaderName = HeaderName::from_static("sec-websocket-protocol");

/// The Content handler of a WebSocket endpoint; see the module docs.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::WebSocket;
/// use poco_httpd::handlers::websocket::Message;
///
/// // Echoes every text and binary message.
/// let echo = WebSocket::new(|mut socket| async move {
///     while let Some(message) = socket.recv().await {
///         if message.is_data() && socket.send(message).await.is_err() {
///             break;
///         }
///     }
/// })
/// .max_message_size(1 << 20);
/// let builder = Server::builder().content("/echo", echo);
/// # drop(builder);
/// ```
#[derive(Clone)]
pub struct WebSocket {
    serve: Serve,
    protocols: Vec<String>,
    origins: Origins,
    max_message_size: usize,
    max_frame_size: usize,
    timing: Timing,
    fallback: Option<Arc<dyn Handler>>,
}

/// Which `Origin`s may open the WebSocket.
#[derive(Debug, Clone)]
enum Origins {
    Any,
    Same,
    Listed(Vec<String>),
}

impl WebSocket {
    /// A WebSocket endpoint running `handler` for each WebSocket opened, with the
    /// defaults: messages and frames up to 16 MiB, a ping after 30 s of silence and
    /// the socket closed 30 s after it, a 30 s write timeout, 5 s for the client to
    /// answer a close, any origin, no subprotocol.
    pub fn new<F, Fut>(handler: F) -> Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            serve: Arc::new(move |socket| handler(socket).boxed()),
            protocols: Vec::new(),
            origins: Origins::Any,
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            timing: Timing {
                ping_interval: Duration::from_secs(30),
                pong_timeout: Duration::from_secs(30),
                write_timeout: Duration::from_secs(30),
                close_timeout: Duration::from_secs(5),
            },
            fallback: None,
        }
    }

    /// The subprotocols offered, most preferred first: the first of these the client
    /// lists in `Sec-WebSocket-Protocol` is agreed on ([`Socket::protocol`]); a client
    /// listing none of them gets a WebSocket without one.
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Accepts only browsers on these origins (`https://example.com`, compared
    /// without regard to case); others get `403`. Clients that send no `Origin`
    /// (not browsers) are accepted.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.origins = Origins::Listed(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Accepts only browsers on a page of this same host ([`is_same_origin`]);
    /// others get `403` — the usual guard against cross-site WebSocket hijacking.
    pub fn same_origin(mut self) -> Self {
        self.origins = Origins::Same;
        self
    }

    /// The largest message accepted, in bytes (fragments together); a bigger one
    /// closes the WebSocket with `1009`.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The largest single frame accepted, in bytes; a bigger one closes with `1009`.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// After this much silence from the client while the handler waits in
    /// [`Socket::recv`], the server sends a ping.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.timing.ping_interval = interval;
        self
    }

    /// How long after its ping the server waits for anything from the client before
    /// closing with `1001` (the Error handler then runs).
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.timing.pong_timeout = timeout;
        self
    }

    /// How long one send may wait for a client that takes nothing before the
    /// WebSocket is cut.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.timing.write_timeout = timeout;
        self
    }

    /// How long the client has to answer the server's close frame before it is cut.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.timing.close_timeout = timeout;
        self
    }

    /// Answers requests to the path that ask for no upgrade with `handler` (a page,
    /// say) instead of `426 Upgrade Required`.
    pub fn fallback(mut self, handler: impl Handler) -> Self {
        self.fallback = Some(Arc::new(handler));
        self
    }

    /// Accepts the WebSocket the request asks for, or refuses it with a status.
    fn accept(&self, req: &Request, res: &Response) -> Result<(), (StatusCode, &'static str)> {
        let http2 = req.version() >= Version::HTTP_2;
        if !http2 && req.method() != Method::GET {
            return Err((StatusCode::BAD_REQUEST, "a WebSocket opens with GET\n"));
        }
        if req.header(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
            res.set_header(SEC_WEBSOCKET_VERSION, "13");
            return Err((StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n"));
        }
        let key = match req.header(SEC_WEBSOCKET_KEY) {
            _ if http2 => None,
            Some(key) if key.len() == 24 => Some(derive_accept_key(key.as_bytes())),
            _ => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "a valid Sec-WebSocket-Key is needed\n",
                ));
            }
        };
        if !self.origin_allowed(req) {
            return Err((
                StatusCode::FORBIDDEN,
                "this origin may not open the WebSocket\n",
            ));
        }
        let protocol = self.choose_protocol(req);
        let Ok(upgrade) = req.upgrade() else {
            return Err((
                StatusCode::BAD_REQUEST,
                "the connection was already taken over\n",
            ));
        };
        let session = Session {
            upgrade,
            hold: req.hold_post(),
            request: req.clone(),
            protocol: protocol.clone(),
            config: self.config(),
            timing: self.timing,
            serve: Arc::clone(&self.serve),
        };
        req.spawn(session.run());
        if let Some(accept) = key {
            res.set_header(SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = protocol {
            res.set_header(SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        Ok(())
    }

    fn origin_allowed(&self, req: &Request) -> bool {
        match &self.origins {
            Origins::Any => true,
            Origins::Same => is_same_origin(req),
            Origins::Listed(allowed) => req.header(ORIGIN).is_none_or(|origin| {
                let origin = origin.to_str().unwrap_or_default();
                allowed.iter().any(|one| one.eq_ignore_ascii_case(origin))
            }),
        }
    }

    /// The first protocol of ours the client offers.
    fn choose_protocol(&self, req: &Request) -> Option<String> {
        let offered = req.headers().get_all(SEC_WEBSOCKET_PROTOCOL);
        let offered: Vec<&str> = (offered.iter())
            .filter_map(|value| value.to_str().ok())
            .flat_map(|list| list.split(',').map(str::trim))
            .collect();
        let mut ours = self.protocols.iter();
        ours.find(|ours| offered.contains(&ours.as_str())).cloned()
    }

    fn config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size))
    }

    /// A request that asks for no WebSocket: the fallback, or `426`.
    fn not_upgrading(&self, req: Request, res: Response) -> HandlerFuture {
        if let Some(fallback) = &self.fallback {
            return fallback.call(req, res);
        }
        res.set_status(StatusCode::UPGRADE_REQUIRED);
        if req.version() < Version::HTTP_2 {
            res.set_header(http::header::UPGRADE, "websocket");
            res.set_header(http::header::CONNECTION, "upgrade");
        }
        res.set_body("This address serves WebSockets: connect with a WebSocket client.\n");
        HandlerFuture::ready(Outcome::Ok)
    }
}

impl Handler for WebSocket {
    fn call(&self, req: Request, res: Response) -> HandlerFuture {
        let asked = req.upgrade_protocol();
        if !asked.is_some_and(|protocol| protocol.eq_ignore_ascii_case("websocket")) {
            return self.not_upgrading(req, res);
        }
        HandlerFuture::ready(match self.accept(&req, &res) {
            Ok(()) => res.switch_protocols("websocket"),
            Err((status, why)) => {
                res.set_status(status);
                res.ok(why)
            }
        })
    }
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("protocols", &self.protocols)
            .field("origins", &self.origins)
            .field("max_message_size", &self.max_message_size)
            .field("max_frame_size", &self.max_frame_size)
            .field("timing", &self.timing)
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}
