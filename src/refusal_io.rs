//! [`RefusalIo`]: the socket wrapper that gives the answers hyper writes on its own —
//! `400` for a malformed request head, `431`, `414`, `505` — the same shape as every
//! other response: a `Content-Type`, a short text body, the server's default headers.
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
//! response (pipelined requests), it goes out as hyper wrote it. Reads pass through
//! untouched.
//!
//! This module knows sockets and bytes only; what counts as "no request in progress"
//! and what the answer says is the [`Refusals`] implementor's business.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What [`RefusalIo`] asks of the connection it serves.
pub(crate) trait Refusals {
    /// Whether this is an HTTP/1 connection with no request in progress and every
    /// earlier response flushed, so a response written now is hyper's own.
    fn is_between_requests(&self) -> bool;

    /// The whole response to send instead of hyper's refusal with `status`.
    fn render(&self, status: StatusCode) -> Bytes;
}

/// A socket whose hyper-made refusals are replaced; see the module docs.
#[derive(Debug)]
pub(crate) struct RefusalIo<T, R> {
    inner: T,
    refusals: Arc<R>,
    /// Our answer, still (partly) to be written; then everything is swallowed.
    replacement: Option<Bytes>,
}

impl<T, R: Refusals> RefusalIo<T, R> {
    pub(crate) fn new(inner: T, refusals: Arc<R>) -> Self {
        Self {
            inner,
            refusals,
            replacement: None,
        }
    }

    /// Recognizes hyper's own refusal at the start of `buf`.
    fn refused_status(&self, buf: &[u8]) -> Option<StatusCode> {
        let status = buf.strip_prefix(b"HTTP/1.")?.get(2..5)?;
        if !self.refusals.is_between_requests() {
            return None;
        }
        StatusCode::from_bytes(status).ok()
    }
}

impl<T: AsyncWrite + Unpin, R> RefusalIo<T, R> {
    /// Writes what is left of the replacement; ready once it is all out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(rest) = self
            .replacement
            .as_mut()
            .filter(|rest| rest.has_remaining())
        {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, rest))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            rest.advance(written);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin, R> AsyncRead for RefusalIo<T, R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
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

impl<T: AsyncWrite + Unpin, R: Refusals> AsyncWrite for RefusalIo<T, R> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacement.is_none() {
            let Some(status) = self.refused_status(buf) else {
                return Pin::new(&mut self.inner).poll_write(cx, buf);
            };
            self.replacement = Some(self.refusals.render(status));
        }
        ready!(self.poll_replacement(cx))?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|buf| !buf.is_empty());
        let refused = first.is_some_and(|buf| self.refused_status(buf).is_some());
        if self.replacement.is_none() && !refused {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        }
        // hyper's refusal (or what follows it): through the one-buffer path.
        let total = bufs.iter().map(|buf| buf.len()).sum();
        let first = first.map_or(&[][..], |buf| &buf[..]);
        ready!(self.as_mut().poll_write(cx, first))?;
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::io::AsyncWriteExt;

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

    async fn written(busy: bool, writes: &[&[u8]]) -> String {
        let refusals = Arc::new(Fixed::default());
        refusals.busy.store(busy, Ordering::Relaxed);
        let mut io = RefusalIo::new(Vec::new(), refusals);
        for bytes in writes {
            io.write_all(bytes).await.expect("writes to a Vec");
        }
        io.flush().await.expect("flushes a Vec");
        String::from_utf8(io.inner).expect("text")
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
