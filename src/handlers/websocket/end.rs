//! [`SocketEnd`]: how a WebSocket ended, as its Post and Error handlers read it from
//! the request that opened it.

use super::message::CloseFrame;
use crate::Request;

/// How a WebSocket ended and what went through it; inserted into the request that
/// opened it before its Error and Post handlers run.
///
/// ```
/// use poco_httpd::handlers::websocket::SocketEnd;
/// use poco_httpd::{Outcome, Request, Response};
///
/// let log = |req: Request, _res: Response| {
///     if let Some(end) = SocketEnd::of(&req) {
///         let code = end.client_close.as_ref().map(|frame| frame.code.0);
///         eprintln!("{}: closed with {code:?}, {} messages in", req.path(), end.received);
///     }
///     Outcome::Ok
/// };
/// # fn assert_handler(_: impl poco_httpd::Handler) {}
/// # assert_handler(log);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketEnd {
    /// Whether the client sent a close frame. When it did not — it vanished, went
    /// silent through a ping, stopped reading, or did not answer the server's close
    /// — the Error handler ran first.
    pub client_closed: bool,
    /// The client's close frame, when it had a code.
    pub client_close: Option<CloseFrame>,
    /// The close frame the server sent: the handler's, `1000` when it returned,
    /// `1001` at shutdown or idleness, `1002`/`1007`/`1009` for a broken rule,
    /// `1011` when it panicked.
    pub server_close: Option<CloseFrame>,
    /// Text and binary messages received.
    pub received: u64,
    /// Text and binary messages sent.
    pub sent: u64,
}

impl SocketEnd {
    /// The ending of the WebSocket `request` opened, once it has ended.
    pub fn of(request: &Request) -> Option<Self> {
        request.extension::<Self>()
    }
}
