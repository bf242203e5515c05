//! [`Body`]: a response body as handlers set, take and wrap it — whole bytes, a
//! `Stream` of blocks (from an `AsyncRead`, a file or an `http_body::Body`), or the
//! blocks pushed with [`Response::send`](crate::Response::send).
//!
//! A leaf of the model: it knows the stream channel behind pushed bodies, nothing of
//! connections or the pipeline, which turns a `Body` into what hyper writes.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http_body_util::BodyDataStream;
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

use crate::stream::{StreamChannel, Taken};

/// A response body; see the module docs.
///
/// A compression or transformation handler takes the body out with
/// [`Response::take_body`](crate::Response::take_body), looks at it, and sets a
/// wrapped one with [`Response::set_body`](crate::Response::set_body):
///
/// ```
/// use futures_util::StreamExt;
/// use poco_httpd::{Body, Bytes, Outcome, Request, Response};
///
/// // Upper-cases whatever the Content handler answered, whole or streamed.
/// let shout = |req: Request, _res: Response| {
///     req.before_send(|_req: Request, res: Response| {
///         let body = res.take_body();
///         let loud = body.into_stream().map(|block| {
///             block.map(|block| Bytes::from(block.to_ascii_uppercase()))
///         });
///         res.set_body(Body::from_stream(loud));
///         Outcome::Ok
///     });
///     Outcome::Ok
/// };
/// # fn assert_handler(_: impl poco_httpd::Handler) {}
/// # assert_handler(shout);
/// ```
pub struct Body {
    kind: Kind,
}

/// Where a body's bytes come from.
pub(crate) enum Kind {
    /// Complete, written at once.
    Full(Bytes),
    /// Blocks pushed through `Response::send` and `write`.
    Pushed(Arc<StreamChannel>),
    /// A `Stream` of blocks: from a handler, an `AsyncRead`, a file, another body.
    Stream(BoxStream<'static, io::Result<Bytes>>),
}

impl Body {
    /// A body with nothing in it.
    pub fn empty() -> Self {
        Self::full(Bytes::new())
    }

    /// A body streamed from `stream`, pulled only as fast as the client reads. An
    /// `Err` item cuts the response (the connection is closed).
    pub fn from_stream<S>(stream: S) -> Self
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        Self {
            kind: Kind::Stream(stream.boxed()),
        }
    }

    /// A body streamed from an `AsyncRead`, pulled only as fast as the client reads.
    pub fn from_reader<R>(reader: R) -> Self
    where
        R: AsyncRead + Send + 'static,
    {
        Self::from_stream(ReaderStream::new(Box::pin(reader)))
    }

    /// A body streamed from any `http_body::Body` — an upstream's response, a tower
    /// service's answer. Its data frames are sent; trailers are dropped; an error
    /// cuts the response.
    pub fn from_http_body<B>(body: B) -> Self
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let blocks = BodyDataStream::new(body)
            .map_ok(|mut data| data.copy_to_bytes(data.remaining()))
            .map_err(io::Error::other);
        Self::from_stream(blocks)
    }

    pub(crate) fn full(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full(bytes),
        }
    }

    pub(crate) fn pushed(channel: Arc<StreamChannel>) -> Self {
        Self {
            kind: Kind::Pushed(channel),
        }
    }

    pub(crate) fn into_kind(self) -> Kind {
        self.kind
    }

    /// The bytes of a whole body; `None` for a streamed or pushed one.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Full(bytes) => Some(bytes),
            Kind::Pushed(_) | Kind::Stream(_) => None,
        }
    }

    /// Reports whether the body is fed by [`Response::send`](crate::Response::send) /
    /// [`write`](crate::Response::write) (a streaming response, Server-Sent Events),
    /// whose blocks should reach the client as they are sent.
    pub fn is_pushed(&self) -> bool {
        matches!(self.kind, Kind::Pushed(_))
    }

    /// Reports whether the body is whole and empty.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_some_and(Bytes::is_empty)
    }

    /// The body as a stream of blocks, to wrap. A whole body is one block; a pushed
    /// body yields its blocks as they are sent (the producer's `send`/`write` keep
    /// working, and the Stream handler is then called again as each block is taken
    /// rather than after it was flushed).
    pub fn into_stream(self) -> BoxStream<'static, io::Result<Bytes>> {
        match self.kind {
            Kind::Full(bytes) if bytes.is_empty() => futures_util::stream::empty().boxed(),
            Kind::Full(bytes) => futures_util::stream::once(async { Ok(bytes) }).boxed(),
            Kind::Pushed(channel) => PushedBlocks(channel).boxed(),
            Kind::Stream(stream) => stream,
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self::full(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Self::full(text.into())
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Self::full(Bytes::from_static(text.as_bytes()))
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Self::full(bytes.into())
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Self::full(Bytes::from_static(bytes))
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full(bytes) => write!(f, "Body::Full({} bytes)", bytes.len()),
            Kind::Pushed(_) => f.write_str("Body::Pushed"),
            Kind::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

/// A pushed body's blocks as a `Stream`, for a handler that wraps it.
struct PushedBlocks(Arc<StreamChannel>);

impl Stream for PushedBlocks {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.0.take(cx.waker()) {
            Taken::Pending => Poll::Pending,
            Taken::Block(block) => {
                // The Stream handler is owed a call for the block, as after a flush.
                self.0.poke();
                Poll::Ready(Some(Ok(block)))
            }
            Taken::End => Poll::Ready(None),
            Taken::Broken => Poll::Ready(Some(Err(io::Error::other(
                "the stream's producer failed; the response is cut",
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collected(body: Body) -> Vec<u8> {
        let blocks: Vec<_> = body.into_stream().try_collect().await.expect("no error");
        blocks.concat()
    }

    #[tokio::test]
    async fn every_kind_of_body_reads_back_as_a_stream() {
        assert_eq!(collected(Body::from("whole")).await, b"whole");
        assert_eq!(collected(Body::empty()).await, b"");
        let reader: &'static [u8] = b"from a reader";
        assert_eq!(collected(Body::from_reader(reader)).await, b"from a reader");
        let http = http_body_util::Full::new(Bytes::from_static(b"from http_body"));
        assert_eq!(
            collected(Body::from_http_body(http)).await,
            b"from http_body"
        );
        let channel = Arc::new(StreamChannel::new(1024));
        channel.send(Bytes::from_static(b"pushed")).expect("room");
        channel.close();
        let pushed = Body::pushed(channel);
        assert!(pushed.is_pushed() && pushed.as_bytes().is_none());
        assert_eq!(collected(pushed).await, b"pushed");
    }

    #[test]
    fn only_a_whole_body_has_bytes() {
        assert_eq!(Body::from("ab").as_bytes().map(Bytes::len), Some(2));
        assert!(Body::empty().is_empty());
        let stream = Body::from_stream(futures_util::stream::empty());
        assert!(stream.as_bytes().is_none() && !stream.is_empty() && !stream.is_pushed());
    }
}
