//! Knowing when a response has really reached the socket, so Post handlers run after
//! the flush, as the original module promises.
//!
//! hyper reports the end of a response body when it has *taken* the last frame, not
//! when the bytes were written. [`FlushedIo`] wraps the connection's socket and watches
//! its writes: hyper only calls `poll_flush` once everything it buffered has been
//! written, so the first successful flush after a response's body ended marks that
//! response as delivered. Responses whose body has ended wait in the [`FlushTracker`]
//! until then; a failed write, or the connection going away first, delivers them as
//! failed instead, which runs their Error handler.
//!
//! With HTTP/2 the socket is shared by many streams and flow control may hold a
//! stream's last frame back, so there the flush after the end of the body is the
//! closest point the connection can observe.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::connection::ConnState;
use crate::sync::lock;
use crate::failure::{Failure, FailureKind};
use crate::pipeline::{Delivery, Tail};
use crate::stream::StreamChannel;

/// What waits for the next flush.
#[derive(Debug)]
pub(crate) enum AfterFlush {
    /// A response whose body has ended: its Post handlers run after the flush.
    Tail(Tail),
    /// A block of a streaming response: its Stream handler is called again.
    Block(Arc<StreamChannel>),
}

impl AfterFlush {
    fn flushed(self) {
        match self {
            Self::Tail(tail) => tail.deliver(Delivery::Flushed),
            Self::Block(channel) => channel.poke(),
        }
    }
}

/// Responses and blocks of one connection handed to hyper but not yet flushed.
#[derive(Debug, Default)]
pub(crate) struct FlushTracker {
    /// Lets the flush path skip the lock when nothing waits, the common case.
    armed: AtomicBool,
    waiting: Mutex<Waiting>,
}

/// The queue, in order: `first`, then `more`. One response at a time (HTTP/1 without
/// pipelining) fits the slot, so the common case neither allocates nor keeps memory.
#[derive(Debug, Default)]
struct Waiting {
    first: Option<AfterFlush>,
    more: Vec<AfterFlush>,
    /// The socket is gone: nothing queued now would ever be flushed.
    closed: bool,
}

/// Why items queued on a closed connection fail.
fn closed() -> Failure {
    let message = "the connection closed before the response was flushed";
    Failure::new(FailureKind::ClientGone, message)
}

impl Waiting {
    fn into_items(self) -> impl Iterator<Item = AfterFlush> {
        self.first.into_iter().chain(self.more)
    }
}

impl FlushTracker {
    /// Queues `item` until the next successful flush; on a closed connection (an
    /// HTTP/2 stream can outlive its socket) it fails at once instead.
    pub(crate) fn after_next_flush(&self, item: AfterFlush) {
        let mut waiting = lock(&self.waiting);
        if waiting.closed {
            drop(waiting);
            return fail(item, &closed());
        }
        if waiting.first.is_none() {
            waiting.first = Some(item);
        } else {
            waiting.more.push(item);
        }
        drop(waiting);
        self.armed.store(true, Ordering::Release);
    }

    /// Everything queued so far, taken under one lock.
    fn take_waiting(&self) -> Waiting {
        if !self.armed.swap(false, Ordering::AcqRel) {
            return Waiting::default();
        }
        let mut waiting = lock(&self.waiting);
        let closed = waiting.closed;
        std::mem::replace(
            &mut *waiting,
            Waiting {
                closed,
                ..Waiting::default()
            },
        )
    }

    fn flushed(&self) {
        let Waiting { first, more, .. } = self.take_waiting();
        // The slot alone is the common case: no iterator over the (empty) rest.
        if let Some(item) = first {
            item.flushed();
        }
        if !more.is_empty() {
            more.into_iter().for_each(AfterFlush::flushed);
        }
    }

    fn failed(&self, cause: &Failure) {
        for item in self.take_waiting().into_items() {
            fail(item, cause);
        }
    }

    /// The socket is gone: what waits fails, and so does what is queued later.
    fn close(&self) {
        lock(&self.waiting).closed = true;
        self.armed.store(true, Ordering::Release);
        self.failed(&closed());
    }
}

fn fail(item: AfterFlush, cause: &Failure) {
    match item {
        AfterFlush::Tail(tail) => tail.deliver(Delivery::Failed(cause.clone())),
        AfterFlush::Block(channel) => channel.abandon(),
    }
}

/// A socket that tells its connection's [`FlushTracker`] about flushes and failures.
#[derive(Debug)]
pub(crate) struct FlushedIo<T> {
    inner: T,
    tracker: Arc<ConnState>,
}

impl<T> FlushedIo<T> {
    pub(crate) fn new(inner: T, tracker: Arc<ConnState>) -> Self {
        Self { inner, tracker }
    }

    fn observe<R>(&self, result: io::Result<R>) -> io::Result<R> {
        if let Err(error) = &result {
            // The error itself goes back to hyper; the handlers get its kind and text.
            let cause = Failure::of_write(io::Error::new(error.kind(), error.to_string()));
            self.tracker.flush.failed(&cause);
            let _ = self.tracker.write_failure.set(cause);
        }
        result
    }
}

impl<T> Drop for FlushedIo<T> {
    fn drop(&mut self) {
        self.tracker.flush.close();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FlushedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FlushedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = ready!(Pin::new(&mut self.inner).poll_write(cx, buf));
        Poll::Ready(self.observe(result))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs));
        Poll::Ready(self.observe(result))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = ready!(Pin::new(&mut self.inner).poll_flush(cx));
        if result.is_ok() {
            self.tracker.note_flushed();
            self.tracker.flush.flushed();
        }
        Poll::Ready(self.observe(result))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
