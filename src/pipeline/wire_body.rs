//! [`WireBody`]: the body hyper writes for a pipeline's response, made from the
//! handlers' [`Body`](crate::Body). It also tells the connection's flush tracker when
//! the last byte (and, for pushed bodies, each block) has been handed over, ends the
//! request's in-flight count, and reports a body cut short to the request's tail.
//! On HTTP/2 it tells its stream's `SendWatch` when hyper takes a block and when
//! hyper comes back for the next, which is what the send timeout measures.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use http_body::{Body, Frame, SizeHint};

use super::send_budget::{Charged, SendBudget};
use super::{ActiveRequest, AfterFlush, Delivery, Tail};
use crate::body::Kind;
use crate::failure::{Failure, FailureKind};
use crate::send_watch::{self, SendWatch};
use crate::stream::{StreamChannel, Taken};

/// Where a response's bytes come from.
enum Source {
    /// A complete body, written at once.
    Full(Option<Bytes>),
    /// Blocks sent through [`Response::send`](crate::Response::send).
    Channel(Arc<StreamChannel>),
    /// A `Stream` of blocks: from the handler, an `AsyncRead` or a file.
    Stream(BoxStream<'static, io::Result<Bytes>>),
}

impl From<crate::Body> for Source {
    fn from(body: crate::Body) -> Self {
        match body.into_kind() {
            Kind::Full(bytes) if bytes.is_empty() => Self::Full(None),
            Kind::Full(bytes) => Self::Full(Some(bytes)),
            Kind::Pushed(channel) => Self::Channel(channel),
            Kind::Stream(stream) => Self::Stream(stream),
        }
    }
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
pub(crate) struct WireBody {
    source: Source,
    tail: Option<Tail>,
    /// Keeps the connection counted as busy until hyper is done with the body; also
    /// the way to the connection's flush tracker.
    active: ActiveRequest,
    /// The `Content-Length` a handler declared for a streaming body.
    declared: Option<u64>,
    /// Bytes handed to hyper so far.
    written: u64,
    /// No byte of the body will be written (`HEAD`, `204`, `304`, empty), so hyper
    /// may never poll it; see [`WireBody::handed_over`] for when its tail then
    /// waits for the flush.
    nothing_to_write: bool,
    /// An HTTP/2 stream's body, which hyper takes in the stream's own task.
    http2: bool,
    /// The body failed on our side (its producer broke, or it ran past its declared
    /// length), not the client's: the cut is reported as such.
    broken: bool,
    /// The channel `Response::send` feeds, if the response has one.
    pushed: Option<Arc<StreamChannel>>,
    /// The connection's budget, for a streamed HTTP/2 body: what it takes from its
    /// source waits there until the budget has room, and the charge then rides with
    /// the block as hyper's data.
    budget: Option<Box<SendBudget>>,
    /// An HTTP/2 stream's send timeout: told when hyper takes a block and when it
    /// comes back for the next.
    send_watch: Option<Arc<SendWatch>>,
}

/// How a response's body is framed, as the Send phase settled it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framing {
    /// False when no body bytes will be written (`HEAD`, `204`, `304`).
    pub(crate) on_wire: bool,
    /// The `Content-Length` a handler declared for a streamed body.
    pub(crate) declared: Option<u64>,
    /// An HTTP/2 stream's body, which hyper takes in the stream's own task.
    pub(crate) http2: bool,
}

impl WireBody {
    /// When `framing` says no body bytes will be written (`HEAD`, `204`, `304`),
    /// hyper may never poll the body, so the tail waits for the flush from
    /// [`WireBody::handed_over`].
    pub(crate) fn new(
        body: crate::Body,
        tail: Option<Tail>,
        active: ActiveRequest,
        framing: Framing,
    ) -> Self {
        let source = Source::from(body);
        let nothing_to_write = !framing.on_wire || matches!(source, Source::Full(None));
        // A whole body is already in memory; only what is pulled is worth bounding.
        let streamed = !matches!(source, Source::Full(_));
        let budget = (framing.http2 && streamed).then(|| Box::new(active.conn().send_budget()));
        Self {
            source,
            tail,
            active,
            declared: framing.declared,
            written: 0,
            nothing_to_write,
            http2: framing.http2,
            broken: false,
            pushed: None,
            budget,
            // Built inside the stream's task, where its watch is set.
            send_watch: framing.http2.then(send_watch::current).flatten(),
        }
    }

    /// The response's pushed-body channel, abandoned if the body is dropped before
    /// it ended, even when a handler wrapped it into another stream.
    pub(crate) fn abandoning(mut self, pushed: Option<Arc<StreamChannel>>) -> Self {
        self.pushed = pushed;
        self
    }

    /// hyper has taken the response. With HTTP/1 it writes the head before its
    /// next flush, so a body with nothing to write waits for that flush from here.
    /// With HTTP/2 the head is queued by the stream's task while the connection's
    /// task flushes on its own; such a body waits from when hyper drops it (after
    /// queueing the head) or polls it to its end. Calling this again does nothing.
    pub(crate) fn handed_over(&mut self) {
        if self.nothing_to_write && !self.http2 {
            self.finish();
        }
    }

    /// The last byte has been handed to hyper: deliver at the next flush.
    fn finish(&mut self) {
        if let Some(tail) = self.tail.take() {
            self.active
                .conn()
                .flush
                .after_next_flush(AfterFlush::Tail(tail));
        }
    }

    /// Holds a streaming body to its declared `Content-Length`: running past it is an
    /// error (hyper then closes the connection rather than send a corrupt stream);
    /// reaching it exactly ends the body, as hyper will not ask for more.
    fn check_length(&mut self, block: io::Result<Bytes>) -> io::Result<Bytes> {
        let block = block?;
        self.written += block.len() as u64;
        let Some(declared) = self.declared else {
            return Ok(block);
        };
        let more_queued = match &self.source {
            Source::Channel(channel) => channel.buffered() > 0,
            _ => false,
        };
        if self.written > declared || (self.written == declared && more_queued) {
            return Err(io::Error::other(
                "the stream ran past its declared Content-Length",
            ));
        }
        if self.written == declared {
            if let Source::Channel(channel) = &self.source {
                channel.close();
            }
            self.finish();
        }
        Ok(block)
    }

    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        match &mut self.source {
            Source::Full(data) => Poll::Ready(data.take().map(Ok)),
            Source::Channel(channel) => match channel.take(cx.waker()) {
                Taken::Pending => Poll::Pending,
                Taken::Block(block) => {
                    // The Stream handler is owed a call once this block is flushed.
                    let channel = Arc::clone(channel);
                    self.active
                        .conn()
                        .flush
                        .after_next_flush(AfterFlush::Block(channel));
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

impl WireBody {
    /// The source's next block, once the connection's budget (if this body has one)
    /// has room for it; the budget keeps its charge.
    fn poll_charged(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if !self
            .budget
            .as_ref()
            .is_some_and(|budget| budget.is_holding())
        {
            match self.poll_source(cx) {
                Poll::Ready(Some(Ok(block))) => match self.budget.as_mut() {
                    Some(budget) => budget.hold(block),
                    None => return Poll::Ready(Some(Ok(block))),
                },
                other => return other,
            }
        }
        match self.budget.as_mut() {
            Some(budget) => budget.poll_release(cx).map(|block| block.map(Ok)),
            None => Poll::Ready(None),
        }
    }

    /// Why the body was dropped before its end: its own fault, a write error the
    /// socket reported, or else the client leaving.
    fn cut_cause(&self) -> Failure {
        if self.broken {
            let message = "the response body failed, so the response was cut";
            return Failure::new(FailureKind::StreamBroken, message);
        }
        if let Some(watch) = self.send_watch.as_ref().filter(|watch| watch.was_cut()) {
            let message = format!(
                "the client took nothing of the response for {:?}, so its stream was reset",
                watch.limit()
            );
            return Failure::new(FailureKind::SendTimeout, message);
        }
        match self.active.conn().write_failure.get() {
            Some(failure) => failure.clone(),
            None => {
                let message = "the client went away before the whole response was sent";
                Failure::new(FailureKind::ClientGone, message)
            }
        }
    }
}

impl Body for WireBody {
    type Data = Charged;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Charged>, io::Error>>> {
        if let Some(watch) = &self.send_watch {
            watch.release();
        }
        let polled = match self.poll_charged(cx) {
            Poll::Ready(Some(block)) if !matches!(self.source, Source::Full(_)) => {
                Poll::Ready(Some(self.check_length(block)))
            }
            polled => polled,
        };
        match &polled {
            Poll::Ready(Some(Ok(block))) => {
                self.active.conn().stats.sent(block.len());
                if let Some(watch) = &self.send_watch {
                    watch.hold();
                }
            }
            Poll::Ready(Some(Err(_))) => self.broken = true,
            _ => {}
        }
        match &polled {
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Ok(_))) if self.is_end_stream() => self.finish(),
            _ => {}
        }
        let charge = self.budget.as_mut().and_then(|budget| budget.take_charge());
        polled.map(|block| {
            block.map(|result| result.map(|bytes| Frame::data(Charged::new(bytes, charge))))
        })
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

impl Drop for WireBody {
    /// The response is done with, sent or abandoned: it is no longer in flight, and a
    /// tail still held reports how the exchange ended.
    fn drop(&mut self) {
        self.active.conn().stats.request_done();
        let channel = match &self.source {
            Source::Channel(channel) => Some(channel),
            _ => self.pushed.as_ref(),
        };
        if let Some(channel) = channel.filter(|channel| !channel.is_finished()) {
            channel.abandon();
        }
        if self.nothing_to_write {
            // Not a failure: the head went (or goes) out without a body.
            return self.finish();
        }
        if let Some(tail) = self.tail.take() {
            tail.deliver(Delivery::Failed(self.cut_cause()));
        }
    }
}
