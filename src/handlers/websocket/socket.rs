//! [`Socket`]: one open WebSocket as its handler sees it — [`Socket::recv`],
//! [`Socket::send`], [`Socket::close`] — and [`Conn`], the state behind it that goes
//! back to the driver (`run.rs`) when the socket is dropped, so the closing
//! handshake is finished, and the ending reported, however the handler ended.
//!
//! Keep-alive lives in `recv`: while it waits, a silence of `ping_interval` sends a
//! ping, and `pong_timeout` more of it closes the socket. One timer per socket,
//! moved only when it fires, so a message costs a clock read, not a timer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WireError, Message as WireMessage};

use super::message::{CloseCode, CloseFrame, Message};
use crate::{Failure, FailureKind, Request, Upgraded};

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The WebSocket is closed (or closing): nothing more can be sent.
    #[error("the WebSocket is closed; nothing more can be sent")]
    Closed,
    /// The client took nothing within the handler's write timeout; the socket is cut.
    #[error("the client stopped reading; the WebSocket was cut after the write timeout")]
    TimedOut,
    /// Writing failed (the client went away); the socket is cut.
    #[error("writing to the WebSocket failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The timeouts one socket keeps, from its [`WebSocket`](super::WebSocket) handler.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub(super) ping_interval: Duration,
    pub(super) pong_timeout: Duration,
    pub(super) write_timeout: Duration,
    pub(super) close_timeout: Duration,
}

/// An open WebSocket, given to the handler of a [`WebSocket`](super::WebSocket).
///
/// Messages come whole from [`Socket::recv`] (pings are answered by the socket);
/// [`Socket::send`] waits while the client is slow to read, so nothing piles up in
/// the server. When the handler returns (or panics, or the server shuts down) and
/// the socket is dropped, it is closed — with `1000`, `1011` or `1001` — and the
/// closing handshake waited for, up to the handler's `close_timeout`.
pub struct Socket {
    conn: Option<Conn>,
    give_back: Option<oneshot::Sender<Conn>>,
    request: Request,
    protocol: Option<String>,
}

impl Socket {
    pub(super) fn new(
        conn: Conn,
        give_back: oneshot::Sender<Conn>,
        request: Request,
        protocol: Option<String>,
    ) -> Self {
        Self {
            conn: Some(conn),
            give_back: Some(give_back),
            request,
            protocol,
        }
    }

    /// The next message from the client, or `None` once the WebSocket has closed:
    /// after the client's close frame (given as [`Message::Close`] first), a close
    /// the server sent for a broken rule (too big: `1009`; not UTF-8: `1007`; a
    /// protocol error: `1002`), a client that vanished or went silent through a ping.
    pub async fn recv(&mut self) -> Option<Message> {
        self.conn.as_mut()?.recv().await
    }

    /// Sends `message` (text from a `&str` or `String`, binary from `Bytes` or a
    /// `Vec<u8>`), waiting until the socket took it.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the WebSocket is closed; [`SendError::TimedOut`]
    /// and [`SendError::Failed`] when this send cut it.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), SendError> {
        let conn = self.conn.as_mut().ok_or(SendError::Closed)?;
        conn.send(message.into()).await
    }

    /// Starts the closing handshake with `code` and `reason`: [`Socket::recv`] then
    /// gives what the client still sends, up to its close frame, then `None`.
    ///
    /// # Errors
    /// As [`Socket::send`].
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let frame = CloseFrame::new(code, reason);
        self.send(Message::Close(Some(frame))).await
    }

    /// The request that opened the WebSocket: its path, headers, cookies, the
    /// `user` an auth handler set, extensions a Pre handler inserted.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The subprotocol agreed on (`Sec-WebSocket-Protocol`), if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Text and binary messages received so far.
    pub fn received(&self) -> u64 {
        self.conn.as_ref().map_or(0, |conn| conn.received)
    }

    /// Text and binary messages sent so far.
    pub fn sent(&self) -> u64 {
        self.conn.as_ref().map_or(0, |conn| conn.sent)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let (Some(conn), Some(give_back)) = (self.conn.take(), self.give_back.take()) {
            // The driver may be gone (cut at the shutdown deadline): nothing to finish.
            let _ = give_back.send(conn);
        }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("path", &self.request.path())
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// The WebSocket behind a [`Socket`], and what is known of how it ends.
pub(super) struct Conn {
    stream: WebSocketStream<Upgraded>,
    timing: Timing,
    pub(super) received: u64,
    pub(super) sent: u64,
    last_heard: Instant,
    pinged: bool,
    timer: Pin<Box<Sleep>>,
    /// The client's close frame, once received (`Some(None)`: one without a code).
    pub(super) client_close: Option<Option<CloseFrame>>,
    /// The close frame the server sent, once sent.
    pub(super) server_close: Option<CloseFrame>,
    /// Set when the connection broke: nothing more can be read or written.
    pub(super) broken: Option<Failure>,
    /// The server closed for a broken rule: the rest of the client's bytes are not
    /// frames to read, only to drain.
    pub(super) unreadable: bool,
}

impl Conn {
    pub(super) fn new(stream: WebSocketStream<Upgraded>, timing: Timing) -> Self {
        let now = Instant::now();
        Self {
            stream,
            timing,
            received: 0,
            sent: 0,
            last_heard: now,
            pinged: false,
            timer: Box::pin(tokio::time::sleep_until(now + timing.ping_interval)),
            client_close: None,
            server_close: None,
            broken: None,
            unreadable: false,
        }
    }

    /// Reports whether frames may still arrive.
    pub(super) fn readable(&self) -> bool {
        self.broken.is_none() && !self.unreadable && self.client_close.is_none()
    }

    async fn recv(&mut self) -> Option<Message> {
        while self.readable() {
            tokio::select! {
                biased;
                next = self.stream.next() => match next {
                    Some(Ok(wire)) => {
                        if let Some(message) = self.heard(wire).await {
                            return Some(message);
                        }
                    }
                    Some(Err(error)) => self.read_failed(error).await,
                    None => self.vanished(),
                },
                () = self.timer.as_mut() => self.keep_alive().await,
            }
        }
        None
    }

    /// Counts what arrived; a close frame is answered at once.
    async fn heard(&mut self, wire: WireMessage) -> Option<Message> {
        self.last_heard = Instant::now();
        self.pinged = false;
        let message = Message::from_wire(wire)?;
        match &message {
            Message::Text(_) | Message::Binary(_) => self.received += 1,
            Message::Close(frame) => {
                self.client_close = Some(frame.clone());
                // tungstenite queued the answer; it goes out with the next write.
                let _ = self.write(Flush).await;
            }
            Message::Ping(_) | Message::Pong(_) => {}
        }
        Some(message)
    }

    /// The timer fired: ping after `ping_interval` of silence, close after
    /// `pong_timeout` more.
    async fn keep_alive(&mut self) {
        let now = Instant::now();
        let wait = if self.pinged {
            self.timing.pong_timeout
        } else {
            self.timing.ping_interval
        };
        let due = self.last_heard + wait;
        if now < due {
            self.timer.as_mut().reset(due);
            return;
        }
        if self.pinged {
            let idle = Failure::new(FailureKind::UpgradedIdle, "no answer to the server's ping");
            self.close_for(CloseCode::GOING_AWAY, "idle timeout").await;
            self.broken.get_or_insert(idle);
            return;
        }
        self.pinged = true;
        self.last_heard = now;
        self.timer.as_mut().reset(now + self.timing.pong_timeout);
        let _ = self.write(WireMessage::Ping(Default::default())).await;
    }

    /// Reading failed: a broken rule is answered with its close code, a vanished
    /// client recorded.
    async fn read_failed(&mut self, error: WireError) {
        match error {
            WireError::Capacity(_) => self.close_for(CloseCode::TOO_BIG, "message too big").await,
            WireError::Utf8(_) => {
                self.close_for(CloseCode::INVALID_DATA, "text is not UTF-8")
                    .await;
            }
            WireError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => self.vanished(),
            WireError::Protocol(broken) => {
                self.close_for(CloseCode::PROTOCOL, &broken.to_string())
                    .await;
            }
            WireError::ConnectionClosed | WireError::AlreadyClosed => self.vanished(),
            other => self.broke(FailureKind::UpgradedBroken, other),
        }
    }

    /// The connection ended without a close frame from the client.
    fn vanished(&mut self) {
        if self.client_close.is_none() && self.broken.is_none() {
            let message = "the client left without a close frame";
            self.broken = Some(Failure::new(FailureKind::UpgradedBroken, message));
        }
    }

    fn broke(&mut self, kind: FailureKind, error: WireError) {
        let message = format!("the WebSocket broke: {error}");
        let failure = Failure::new(kind, message);
        let failure = match error {
            WireError::Io(io) => failure.with_io_error(io),
            _ => failure,
        };
        self.broken.get_or_insert(failure);
    }

    /// Sends a close frame for a broken rule; the client's remaining bytes are only
    /// drained from here on.
    pub(super) async fn close_for(&mut self, code: CloseCode, reason: &str) {
        self.unreadable = true;
        let _ = self
            .send(Message::Close(Some(CloseFrame::new(code, reason))))
            .await;
    }

    pub(super) async fn send(&mut self, message: Message) -> Result<(), SendError> {
        let closing = self.server_close.is_some() || self.client_close.is_some();
        if self.broken.is_some() || closing {
            return Err(SendError::Closed);
        }
        let data = message.is_data();
        if let Message::Close(frame) = &message {
            let frame = frame.clone();
            self.server_close = Some(frame.unwrap_or(CloseFrame::new(CloseCode(1005), "")));
        }
        self.write(message.into_wire()).await?;
        self.sent += u64::from(data);
        Ok(())
    }

    /// Writes `what` within the write timeout; a failure cuts the connection.
    async fn write(&mut self, what: impl Into<Write>) -> Result<(), SendError> {
        let limit = self.timing.write_timeout;
        let written = match what.into() {
            Write::Message(wire) => within(limit, self.stream.send(wire)).await,
            Write::Flush => within(limit, self.stream.flush()).await,
        };
        match written {
            Some(Ok(())) => Ok(()),
            Some(Err(
                WireError::ConnectionClosed
                | WireError::AlreadyClosed
                | WireError::Protocol(ProtocolError::SendAfterClosing),
            )) => Err(SendError::Closed),
            Some(Err(error)) => {
                let message = error.to_string();
                self.broke(FailureKind::UpgradedBroken, error);
                Err(SendError::Failed(message.into()))
            }
            None => {
                let failure = Failure::new(FailureKind::WriteTimeout, "the client stopped reading");
                self.broken.get_or_insert(failure);
                Err(SendError::TimedOut)
            }
        }
    }

    /// Waits for the client's close frame after the server's, within `close_timeout`;
    /// a client that does not answer is recorded as broken.
    pub(super) async fn await_close_answer(&mut self) {
        let limit = self.timing.close_timeout;
        if self.unreadable {
            // Not frames any more: the client gets our end of the stream and closes.
            let drained = within(limit, drain(self.stream.get_mut())).await;
            if drained.is_none() {
                self.broken.get_or_insert(no_answer());
            }
            return;
        }
        let answer = within(limit, async {
            while let Some(Ok(wire)) = self.stream.next().await {
                if let WireMessage::Close(frame) = wire {
                    return Some(frame.map(CloseFrame::from_wire));
                }
            }
            None
        })
        .await;
        match answer {
            Some(Some(frame)) => self.client_close = Some(frame),
            Some(None) => self.vanished(),
            None => {
                self.broken.get_or_insert(no_answer());
            }
        }
    }

    /// Ends the stream (TCP FIN on HTTP/1.1, END_STREAM on HTTP/2), within the close
    /// timeout.
    pub(super) async fn shut(&mut self) {
        let io = self.stream.get_mut();
        let _ = within(
            self.timing.close_timeout,
            tokio::io::AsyncWriteExt::shutdown(io),
        )
        .await;
    }
}

fn no_answer() -> Failure {
    let message = "the client did not answer the close frame in time";
    Failure::new(FailureKind::UpgradedBroken, message)
}

/// Ends our side of the stream, then reads and drops what the client still sends,
/// until it closes.
async fn drain(io: &mut Upgraded) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = io.shutdown().await;
    let mut sink = vec![0; 16 * 1024];
    while let Ok(1..) = io.read(&mut sink).await {}
}

/// What [`Conn::write`] writes: a message, or only what tungstenite queued.
enum Write {
    Message(WireMessage),
    Flush,
}

/// Only the queued frames (tungstenite's answers to pings and close frames).
struct Flush;

impl From<Flush> for Write {
    fn from(_: Flush) -> Self {
        Self::Flush
    }
}

impl From<WireMessage> for Write {
    fn from(message: WireMessage) -> Self {
        Self::Message(message)
    }
}

/// Runs `future` for at most `limit`; `None` when the time ran out. The timer is only
/// made if the future does not finish on its first poll, as most writes do.
pub(super) async fn within<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut timer: Option<Pin<Box<Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}
