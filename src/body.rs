//! The body hyper sends for a pipeline's response, which also tells the connection's
//! flush tracker when the last byte (and, for streams, each block) has been handed
//! over.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use http_body::{Body, Frame, SizeHint};

use crate::connection::ConnState;
use crate::flush::AfterFlush;
use crate::pipeline::{Delivery, Tail};
use crate::stream::{StreamChannel, Taken};

/// Where a response's bytes come from.
pub(crate) enum Source {
    /// A complete body, written at once.
    Full(Option<Bytes>),
    /// Blocks sent through [`Response::send`](crate::Response::send).
    Channel(Arc<StreamChannel>),
    /// A `Stream` of blocks: from the handler, an `AsyncRead` or a file.
    Stream(BoxStream<'static, io::Result<Bytes>>),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(data) => write!(f, "Full({} bytes)", data.as_ref().map_or(0, Bytes::len)),
            Self::Channel(_) => f.write_str("Channel"),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// A response body carrying the request's [`Tail`], if it has one.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    source: Source,
    tail: Option<Tail>,
    conn: Arc<ConnState>,
}

impl ResponseBody {
    /// `on_wire` is false when no body bytes will be written (`HEAD`, `204`, `304`);
    /// hyper may then never poll the body, so the tail waits for the flush at once.
    pub(crate) fn new(
        source: Source,
        tail: Option<Tail>,
        conn: Arc<ConnState>,
        on_wire: bool,
    ) -> Self {
        let source = match source {
            Source::Full(Some(data)) if data.is_empty() => Source::Full(None),
            source => source,
        };
        let mut body = Self { source, tail, conn };
        if !on_wire || matches!(body.source, Source::Full(None)) {
            body.finish();
        }
        body
    }

    /// The last byte has been handed to hyper: deliver at the next flush.
    fn finish(&mut self) {
        if let Some(tail) = self.tail.take() {
            self.conn.flush.after_next_flush(AfterFlush::Tail(tail));
        }
    }

    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        match &mut self.source {
            Source::Full(data) => Poll::Ready(data.take().map(Ok)),
            Source::Channel(channel) => match channel.take(cx.waker()) {
                Taken::Pending => Poll::Pending,
                Taken::Block(block) => {
                    // The Stream handler is owed a call once this block is flushed.
                    let channel = Arc::clone(channel);
                    self.conn.flush.after_next_flush(AfterFlush::Block(channel));
                    Poll::Ready(Some(Ok(block)))
                }
                Taken::End => Poll::Ready(None),
                Taken::Broken => Poll::Ready(Some(Err(io::Error::other(
                    "the stream's producer failed; the response is cut",
                )))),
            },
            Source::Stream(stream) => Pin::new(stream).poll_next(cx),
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let polled = self.poll_source(cx);
        match &polled {
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Ok(_))) if self.is_end_stream() => self.finish(),
            _ => {}
        }
        polled.map(|block| block.map(|result| result.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.source, Source::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Source::Channel(_) | Source::Stream(_) => SizeHint::default(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Source::Channel(channel) = &self.source {
            if !channel.is_finished() {
                channel.abandon();
            }
        }
        if let Some(tail) = self.tail.take() {
            tail.deliver(Delivery::Failed(
                "the client went away before the whole response was sent".to_owned(),
            ));
        }
    }
}
