//! [`Message`], what travels over a WebSocket, with [`Text`] (a message's UTF-8,
//! shared rather than copied), [`CloseFrame`] and [`CloseCode`]; and the conversions
//! to and from tungstenite's types, which stay out of the public API.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as WireCloseFrame;
use tokio_tungstenite::tungstenite::{Message as WireMessage, Utf8Bytes};

/// One WebSocket message, whole (fragments are put together before it is given to
/// you). Pongs answering a ping are sent by the socket itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(Text),
    /// A binary message.
    Binary(Bytes),
    /// A ping (the socket answers it with a pong by itself).
    Ping(Bytes),
    /// A pong: an answer to a ping, or a heartbeat.
    Pong(Bytes),
    /// A close frame: the peer's, when received (the socket answers it).
    Close(Option<CloseFrame>),
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

impl From<Text> for Message {
    fn from(text: Text) -> Self {
        Self::Text(text)
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Self::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Self::Binary(data.into())
    }
}

/// The text of a message: a `str` (it derefs to one) sharing the bytes received.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Text(Utf8Bytes);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Self(text.into())
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self(text.into())
    }
}

/// A close frame's status code (RFC 6455 §7.4), with the usual ones named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: going away — the server shuts down, or the peer was idle too long.
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL: Self = Self(1002);
    /// 1003: a kind of data that is not accepted (binary where only text is).
    pub const UNSUPPORTED: Self = Self(1003);
    /// 1007: data not consistent with its type (a text message that is not UTF-8).
    pub const INVALID_DATA: Self = Self(1007);
    /// 1008: a message that violates the server's policy.
    pub const POLICY: Self = Self(1008);
    /// 1009: a message too big to process.
    pub const TOO_BIG: Self = Self(1009);
    /// 1011: the server met an unexpected condition (its handler panicked).
    pub const INTERNAL_ERROR: Self = Self(1011);
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A close frame's contents: a code and a reason (at most 123 bytes of UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// Why the connection closes.
    pub code: CloseCode,
    /// The reason, in words (may be empty).
    pub reason: String,
}

impl CloseFrame {
    /// A close frame with `code` and `reason`.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    /// The frame tungstenite sends; a reason too long for a control frame is cut at
    /// a character boundary.
    pub(super) fn to_wire(&self) -> WireCloseFrame {
        let mut end = self.reason.len().min(123);
        while !self.reason.is_char_boundary(end) {
            end -= 1;
        }
        WireCloseFrame {
            code: self.code.0.into(),
            reason: self.reason[..end].into(),
        }
    }

    pub(super) fn from_wire(frame: WireCloseFrame) -> Self {
        Self {
            code: CloseCode(frame.code.into()),
            reason: frame.reason.as_str().to_owned(),
        }
    }
}

impl Message {
    pub(super) fn into_wire(self) -> WireMessage {
        match self {
            Self::Text(text) => WireMessage::Text(text.0),
            Self::Binary(data) => WireMessage::Binary(data),
            Self::Ping(data) => WireMessage::Ping(data),
            Self::Pong(data) => WireMessage::Pong(data),
            Self::Close(frame) => WireMessage::Close(frame.as_ref().map(CloseFrame::to_wire)),
        }
    }

    /// The message tungstenite read; `None` for a raw frame, which reading never gives.
    pub(super) fn from_wire(message: WireMessage) -> Option<Self> {
        Some(match message {
            WireMessage::Text(text) => Self::Text(Text(text)),
            WireMessage::Binary(data) => Self::Binary(data),
            WireMessage::Ping(data) => Self::Ping(data),
            WireMessage::Pong(data) => Self::Pong(data),
            WireMessage::Close(frame) => Self::Close(frame.map(CloseFrame::from_wire)),
            WireMessage::Frame(_) => return None,
        })
    }

    /// Reports whether this is a text or binary message (what the counts count).
    pub fn is_data(&self) -> bool {
        matches!(self, Self::Text(_) | Self::Binary(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_at_a_character_boundary() {
        let frame = CloseFrame::new(CloseCode::NORMAL, "é".repeat(100));
        let wire = frame.to_wire();
        assert!(wire.reason.len() <= 123);
        assert_eq!(wire.reason.as_str(), "é".repeat(61));
    }

    #[test]
    fn messages_survive_the_trip_through_tungstenite() {
        let messages = [
            Message::from("hi"),
            Message::from(vec![1, 2]),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Close(Some(CloseFrame::new(CloseCode::TOO_BIG, "big"))),
            Message::Close(None),
        ];
        for message in messages {
            assert_eq!(
                Message::from_wire(message.clone().into_wire()),
                Some(message)
            );
        }
    }
}
