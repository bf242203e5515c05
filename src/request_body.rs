//! [`RequestBody`]: the request body taken out of a request as a stream of blocks —
//! an `http_body::Body` and a `futures` `Stream` — with the server's limits still
//! applied: more than the body size limit fails with [`BodyError::TooLarge`], a
//! client that stops sending for the body read timeout with [`BodyError::TimedOut`].
//!
//! A read that fails because of the client (it broke off, or went quiet) also marks
//! the exchange failed, so the Error handler runs once the current handler returns.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::Stream;
use http_body::{Body, Frame, SizeHint};

use crate::exchange::Exchange;
use crate::failure::{Failure, FailureKind};
use crate::incoming::{IncomingBody, is_timeout};
use crate::request::BodyError;

/// The request body as a stream of blocks; see the module docs. Get it with
/// [`Request::take_body`](crate::Request::take_body).
///
/// ```
/// use futures_util::StreamExt;
/// use poco_httpd::{Outcome, Request, Response};
///
/// async fn count(req: Request, res: Response) -> Outcome {
///     let mut body = match req.take_body() {
///         Ok(body) => body,
///         Err(error) => return res.deny(error.status()),
///     };
///     let mut total = 0;
///     while let Some(block) = body.next().await {
///         match block {
///             Ok(block) => total += block.len(),
///             Err(error) => return res.deny(error.status()),
///         }
///     }
///     res.ok(format!("{total} bytes"))
/// }
/// # fn assert_handler(_: impl poco_httpd::Handler) {}
/// # assert_handler(count);
/// ```
pub struct RequestBody {
    incoming: Option<IncomingBody>,
    /// Refuse more than this many bytes in all.
    limit: u64,
    /// Bytes read so far, counted against `limit`.
    read: u64,
    /// The exchange a failed read marks as failed.
    exchange: Option<Arc<Exchange>>,
}

impl RequestBody {
    pub(crate) fn new(
        incoming: Option<IncomingBody>,
        read: u64,
        limit: usize,
        exchange: Arc<Exchange>,
    ) -> Self {
        Self {
            incoming,
            limit: limit as u64,
            read,
            exchange: Some(exchange),
        }
    }

    /// A body with nothing in it: what a handler hands on when an earlier one took
    /// the request's body.
    pub fn empty() -> Self {
        Self {
            incoming: None,
            limit: 0,
            read: 0,
            exchange: None,
        }
    }

    /// Refuses more than `limit` bytes in all (instead of the server's
    /// [`max_body_size`](crate::ServerBuilder::max_body_size)).
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit as u64;
        self
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Reads the rest of the body into one buffer, within the limit.
    ///
    /// # Errors
    /// As the blocks: see [`BodyError`].
    pub async fn bytes(mut self) -> Result<Bytes, BodyError> {
        if Body::size_hint(&self).lower() > self.limit {
            return Err(self.too_large());
        }
        // A body of one block, the common case for small ones, is kept without a copy.
        let mut only: Option<Bytes> = None;
        let mut joined = bytes::BytesMut::new();
        while let Some(block) = std::future::poll_fn(|cx| self.poll_block(cx)).await {
            let block = block?;
            match only.take() {
                None if joined.is_empty() => only = Some(block),
                first => {
                    joined.extend_from_slice(&first.unwrap_or_default());
                    joined.extend_from_slice(&block);
                }
            }
        }
        Ok(only.unwrap_or_else(|| joined.freeze()))
    }

    /// Takes back what is left, for a request that keeps reading block by block.
    pub(crate) fn into_unread(self) -> (Option<IncomingBody>, u64) {
        (self.incoming, self.read)
    }

    fn too_large(&self) -> BodyError {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        BodyError::TooLarge { limit }
    }

    /// The next data block: trailers are skipped, the limit is kept, and a failed read
    /// fails the exchange.
    fn poll_block(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>> {
        loop {
            let Some(incoming) = self.incoming.as_mut() else {
                return Poll::Ready(None);
            };
            let frame = match ready!(Pin::new(incoming).poll_frame(cx)) {
                None => {
                    self.incoming = None;
                    return Poll::Ready(None);
                }
                Some(Err(error)) => {
                    self.incoming = None;
                    return Poll::Ready(Some(Err(self.failed(&error))));
                }
                Some(Ok(frame)) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            self.read += data.len() as u64;
            if self.read > self.limit {
                self.incoming = None;
                return Poll::Ready(Some(Err(self.too_large())));
            }
            return Poll::Ready(Some(Ok(data)));
        }
    }

    /// A failed read fails the exchange: the Error handler runs once the current
    /// handler returns.
    fn failed(&self, error: &io::Error) -> BodyError {
        let timed_out = is_timeout(error);
        let cause = format!("reading the request body failed: {error}");
        let (kind, message) = if timed_out {
            (
                FailureKind::BodyTimeout,
                "the request body stopped arriving",
            )
        } else {
            (FailureKind::BodyRead, "reading the request body failed")
        };
        let io = Arc::new(io::Error::new(error.kind(), error.to_string()));
        if let Some(exchange) = &self.exchange {
            exchange.fail(Failure::new(kind, message).with_io(io));
        }
        if timed_out {
            BodyError::TimedOut(cause)
        } else {
            BodyError::Aborted(cause)
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.poll_block(cx)
            .map(|block| block.map(|result| result.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Stream for RequestBody {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_block(cx)
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("limit", &self.limit)
            .field("read", &self.read)
            .field("finished", &self.incoming.is_none())
            .finish()
    }
}
