//! The task behind one WebSocket: takes the connection over, runs the handler with a
//! [`Socket`], and whatever way the handler ends — returned, panicked, dropped at
//! shutdown — gets the socket's state back, finishes the closing handshake, records
//! the [`SocketEnd`] and lets the request's Post phase go.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::end::SocketEnd;
use super::message::{CloseCode, CloseFrame};
use super::socket::{Conn, Socket, Timing};
use crate::{PostHold, Request, Upgrade};

/// A WebSocket handler, boxed.
pub(super) type Serve = Arc<dyn Fn(Socket) -> BoxFuture<'static, ()> + Send + Sync>;

/// What one WebSocket is served with.
pub(super) struct Session {
    pub(super) upgrade: Upgrade,
    pub(super) hold: PostHold,
    pub(super) request: Request,
    pub(super) protocol: Option<String>,
    pub(super) config: WebSocketConfig,
    pub(super) timing: Timing,
    pub(super) serve: Serve,
}

/// How the handler's future ended.
enum Ended {
    Returned,
    Panicked,
    ShutDown,
}

impl Session {
    pub(super) async fn run(self) {
        // A failed switch was already reported by the exchange itself.
        let Ok(io) = self.upgrade.await else { return };
        let stream = WebSocketStream::from_raw_socket(io, Role::Server, Some(self.config)).await;
        let (give_back, given_back) = oneshot::channel();
        let conn = Conn::new(stream, self.timing);
        let socket = Socket::new(conn, give_back, self.request.clone(), self.protocol);
        let handler = AssertUnwindSafe((self.serve)(socket)).catch_unwind();
        let shutdown = self.request.shutdown_handle();
        let ended = tokio::select! {
            result = handler => if result.is_ok() { Ended::Returned } else { Ended::Panicked },
            () = shutdown.requested() => Ended::ShutDown,
        };
        if let Ended::Panicked = ended {
            tracing::error!(path = %self.request.path(), "WebSocket handler panicked; closed with 1011");
        }
        // The handler's future is gone; its socket, if it kept it elsewhere, is given
        // back when that copy drops.
        let Ok(mut conn) = given_back.await else {
            return;
        };
        finish(&mut conn, ended).await;
        let end = SocketEnd {
            client_closed: conn.client_close.is_some(),
            client_close: conn.client_close.clone().flatten(),
            server_close: conn.server_close.clone(),
            received: conn.received,
            sent: conn.sent,
        };
        self.request.insert_extension(end);
        match conn.broken.take() {
            Some(failure) => self.hold.fail(failure),
            None => self.hold.release(),
        }
    }
}

/// Closes what is still open (the code says why) and waits for the client's answer.
async fn finish(conn: &mut Conn, ended: Ended) {
    // A client's close frame was answered when it arrived.
    if conn.broken.is_none() && conn.server_close.is_none() && conn.client_close.is_none() {
        let frame = match ended {
            Ended::Returned => CloseFrame::new(CloseCode::NORMAL, ""),
            Ended::Panicked => CloseFrame::new(CloseCode::INTERNAL_ERROR, "internal error"),
            Ended::ShutDown => CloseFrame::new(CloseCode::GOING_AWAY, "server shutting down"),
        };
        let _ = conn.send(super::Message::Close(Some(frame))).await;
    }
    if conn.broken.is_none() && conn.client_close.is_none() {
        conn.await_close_answer().await;
    }
    if conn.broken.is_none() {
        conn.shut().await;
    }
}
