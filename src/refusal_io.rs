//! [`RefusalWatch`]: how the socket gives the answers hyper writes on its own — `400`
//! for a malformed request head, `431`, `414`, `505` — the same shape as every other
//! response: a `Content-Type`, a short text body, the server's default headers.
//!
//! hyper answers such heads without calling the service, and offers no hook for it.
//! Its answer is recognized on the way out: on an HTTP/1 connection, bytes that begin
//! a response (`HTTP/1.`) while no request is in progress and every earlier response
//! has been flushed can only be hyper's own refusal. They are replaced by the answer
//! [`Refusals`] renders, and whatever hyper writes after them is dropped: hyper
//! closes the connection after a refused head. An HTTP/2 connection is left alone:
//! the implementor says so once its first request arrived, and before that hyper
//! writes only control frames, whose first byte (the high byte of a frame length
//! below 16 KiB) is never `H`. When a refusal shares a write with an earlier
//! response (pipelined requests), it goes out as hyper wrote it. Reads are not
//! looked at.
//!
//! The watch is not a socket wrapper of its own: the connection's one wrapper
//! (`flush::FlushedIo`) holds it and lets it see each write and flush, which saves
//! a layer of polls on every request.
//!
//! This module knows sockets and bytes only; what counts as "no request in progress"
//! and what the answer says is the [`Refusals`] implementor's business.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use tokio::io::AsyncWrite;

/// What a [`RefusalWatch`] asks of the connection it serves.
pub(crate) trait Refusals {
    /// Whether this is an HTTP/1 connection with no request in progress and every
    /// earlier response flushed, so a response written now is hyper's own.
    fn is_between_requests(&self) -> bool;

    /// The whole response to send instead of hyper's refusal with `status`.
    fn render(&self, status: StatusCode) -> Bytes;
}

/// The state of one socket's refusal watch; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct RefusalWatch {
    /// Our answer, still (partly) to be written; then everything is swallowed.
    replacement: Option<Bytes>,
}

impl RefusalWatch {
    /// Recognizes hyper's own refusal at the start of `buf`.
    fn refused_status(buf: &[u8], refusals: &impl Refusals) -> Option<StatusCode> {
        let status = buf.strip_prefix(b"HTTP/1.")?.get(2..5)?;
        if !refusals.is_between_requests() {
            return None;
        }
        StatusCode::from_bytes(status).ok()
    }

    /// Writes what is left of the replacement to `inner`; ready once it is all out
    /// (at once when there is none). Called before a flush or shutdown.
    pub(crate) fn poll_rest<T: AsyncWrite + Unpin>(
        &mut self,
        inner: &mut T,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while let Some(rest) = self
            .replacement
            .as_mut()
            .filter(|rest| rest.has_remaining())
        {
            let written = ready!(Pin::new(&mut *inner).poll_write(cx, rest))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            rest.advance(written);
        }
        Poll::Ready(Ok(()))
    }

    /// Writes `buf` to `inner`, or the replacement in its place.
    pub(crate) fn poll_write<T: AsyncWrite + Unpin>(
        &mut self,
        inner: &mut T,
        cx: &mut Context<'_>,
        buf: &[u8],
        refusals: &impl Refusals,
    ) -> Poll<io::Result<usize>> {
        if self.replacement.is_none() {
            let Some(status) = Self::refused_status(buf, refusals) else {
                return Pin::new(inner).poll_write(cx, buf);
            };
            self.replacement = Some(refusals.render(status));
        }
        ready!(self.poll_rest(inner, cx))?;
        Poll::Ready(Ok(buf.len()))
    }

    /// Writes `bufs` to `inner` (vectored), or the replacement in their place.
    pub(crate) fn poll_write_vectored<T: AsyncWrite + Unpin>(
        &mut self,
        inner: &mut T,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
        refusals: &impl Refusals,
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|buf| !buf.is_empty());
        let refused = first.is_some_and(|buf| Self::refused_status(buf, refusals).is_some());
        if self.replacement.is_none() && !refused {
            return Pin::new(inner).poll_write_vectored(cx, bufs);
        }
        // hyper's refusal (or what follows it): through the one-buffer path.
        let total = bufs.iter().map(|buf| buf.len()).sum();
        let first = first.map_or(&[][..], |buf| &buf[..]);
        ready!(self.poll_write(inner, cx, first, refusals))?;
        Poll::Ready(Ok(total))
    }
}

/// An HTTP/1.1 response as bytes: status line, `headers`, blank line, `body`.
pub(crate) fn encode_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Bytes {
    let reason = status.canonical_reason().unwrap_or("");
    let mut out = BytesMut::with_capacity(256 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[derive(Debug, Default)]
    struct Fixed {
        busy: AtomicBool,
    }

    impl Refusals for Fixed {
        fn is_between_requests(&self) -> bool {
            !self.busy.load(Ordering::Relaxed)
        }

        fn render(&self, status: StatusCode) -> Bytes {
            Bytes::from(format!("ours {}", status.as_u16()))
        }
    }

    /// What reaches the socket (a `Vec`) when hyper writes `writes` through the
    /// watch, one write each, then flushes.
    async fn written(busy: bool, writes: &[&[u8]]) -> String {
        let refusals = Fixed::default();
        refusals.busy.store(busy, Ordering::Relaxed);
        let (mut watch, mut socket) = (RefusalWatch::default(), Vec::new());
        for bytes in writes {
            let taken =
                std::future::poll_fn(|cx| watch.poll_write(&mut socket, cx, bytes, &refusals))
                    .await
                    .expect("writes to a Vec");
            assert_eq!(taken, bytes.len(), "hyper is told all was written");
        }
        std::future::poll_fn(|cx| watch.poll_rest(&mut socket, cx))
            .await
            .expect("writes to a Vec");
        String::from_utf8(socket).expect("text")
    }

    #[tokio::test]
    async fn a_refusal_between_requests_is_replaced_and_what_follows_dropped() {
        let hypers = [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"content-length: 0\r\n\r\n",
        ];
        assert_eq!(written(false, &hypers).await, "ours 400");
    }

    #[tokio::test]
    async fn a_response_to_a_request_passes_unchanged() {
        let response = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        let text = String::from_utf8_lossy(response).into_owned();
        assert_eq!(written(true, &[response]).await, text);
    }

    #[test]
    fn a_response_is_encoded_with_its_headers_and_body() {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", http::HeaderValue::from_static("3"));
        let bytes = encode_response(StatusCode::NOT_FOUND, &headers, b"abc");
        assert_eq!(
            &bytes[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nabc"
        );
    }

    #[tokio::test]
    async fn other_bytes_pass_unchanged() {
        let frame = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00";
        let text = String::from_utf8_lossy(frame).into_owned();
        assert_eq!(written(false, &[frame]).await, text);
    }
}
