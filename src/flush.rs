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
//!
//! [`FlushedIo`] is the connection's one socket wrapper above the timeouts: it also
//! holds the connection's [`RefusalWatch`] (`refusal_io.rs`), which sees each write
//! before it goes out, so a request's bytes pass one layer of polls, not two.
//!
//! This module knows sockets only: what waits is any [`Flushable`], and who hears of
//! flushes is any [`FlushObserver`] (the pipeline's connection state), which is also
//! the watch's [`Refusals`].

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::failure::{Failure, FailureKind};
use crate::refusal_io::{RefusalWatch, Refusals};
use crate::sync::lock;

/// What waits in a [`FlushTracker`] for the next flush: told when the bytes before it
/// reached the socket, or that they never will.
pub(crate) trait Flushable {
    /// Everything written before it has been flushed.
    fn flushed(self);

    /// The socket failed (or closed) first, for `cause`.
    fn failed(self, cause: &Failure);
}

/// What [`FlushedIo`] tells the connection it serves.
pub(crate) trait FlushObserver {
    /// A flush succeeded: everything written so far is on the socket.
    fn flushed(&self);

    /// A write or flush failed with `error`.
    fn write_failed(&self, error: &io::Error);

    /// The socket is gone.
    fn closed(&self);
}

/// Responses and blocks of one connection handed to hyper but not yet flushed.
#[derive(Debug)]
pub(crate) struct FlushTracker<I> {
    /// Lets the flush path skip the lock when nothing waits, the common case.
    armed: AtomicBool,
    waiting: Mutex<Waiting<I>>,
}

impl<I> Default for FlushTracker<I> {
    fn default() -> Self {
        Self {
            armed: AtomicBool::new(false),
            waiting: Mutex::new(Waiting::default()),
        }
    }
}

/// The queue, in order: `first`, then `more`. One response at a time (HTTP/1 without
/// pipelining) fits the slot, so the common case neither allocates nor keeps memory.
#[derive(Debug)]
struct Waiting<I> {
    first: Option<I>,
    more: Vec<I>,
    /// The socket is gone: nothing queued now would ever be flushed.
    closed: bool,
}

impl<I> Default for Waiting<I> {
    fn default() -> Self {
        Self {
            first: None,
            more: Vec::new(),
            closed: false,
        }
    }
}

/// Why items queued on a closed connection fail.
fn closed() -> Failure {
    let message = "the connection closed before the response was flushed";
    Failure::new(FailureKind::ClientGone, message)
}

impl<I> Waiting<I> {
    fn into_items(self) -> impl Iterator<Item = I> {
        self.first.into_iter().chain(self.more)
    }
}

impl<I: Flushable> FlushTracker<I> {
    /// Queues `item` until the next successful flush; on a closed connection (an
    /// HTTP/2 stream can outlive its socket) it fails at once instead.
    pub(crate) fn after_next_flush(&self, item: I) {
        let mut waiting = lock(&self.waiting);
        if waiting.closed {
            drop(waiting);
            return item.failed(&closed());
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
    fn take_waiting(&self) -> Waiting<I> {
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

    /// Everything written so far has been flushed: what waits is delivered.
    pub(crate) fn flushed(&self) {
        let Waiting { first, more, .. } = self.take_waiting();
        // The slot alone is the common case: no iterator over the (empty) rest.
        if let Some(item) = first {
            item.flushed();
        }
        if !more.is_empty() {
            more.into_iter().for_each(I::flushed);
        }
    }

    /// A write failed: what waits fails with `cause`.
    pub(crate) fn failed(&self, cause: &Failure) {
        for item in self.take_waiting().into_items() {
            item.failed(cause);
        }
    }

    /// The socket is gone: what waits fails, and so does what is queued later.
    pub(crate) fn close(&self) {
        lock(&self.waiting).closed = true;
        self.armed.store(true, Ordering::Release);
        self.failed(&closed());
    }
}

/// A socket that tells its connection (a [`FlushObserver`]) about flushes and
/// failures, and whose hyper-made refusals its [`RefusalWatch`] replaces.
#[derive(Debug)]
pub(crate) struct FlushedIo<T, O: FlushObserver> {
    inner: T,
    observer: Arc<O>,
    refusals: RefusalWatch,
}

impl<T, O: FlushObserver> FlushedIo<T, O> {
    pub(crate) fn new(inner: T, observer: Arc<O>) -> Self {
        Self {
            inner,
            observer,
            refusals: RefusalWatch::default(),
        }
    }

    fn observe<R>(&self, result: io::Result<R>) -> io::Result<R> {
        if let Err(error) = &result {
            self.observer.write_failed(error);
        }
        result
    }
}

impl<T, O: FlushObserver> Drop for FlushedIo<T, O> {
    fn drop(&mut self) {
        self.observer.closed();
    }
}

impl<T: AsyncRead + Unpin, O: FlushObserver> AsyncRead for FlushedIo<T, O> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin, O: FlushObserver + Refusals> AsyncWrite for FlushedIo<T, O> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = this
            .refusals
            .poll_write(&mut this.inner, cx, buf, &*this.observer);
        Poll::Ready(this.observe(ready!(written)))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written =
            (this.refusals).poll_write_vectored(&mut this.inner, cx, bufs, &*this.observer);
        Poll::Ready(this.observe(ready!(written)))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // A refusal's replacement goes out first, as part of what is flushed.
        let rest = ready!(this.refusals.poll_rest(&mut this.inner, cx));
        let result = match rest {
            Ok(()) => ready!(Pin::new(&mut this.inner).poll_flush(cx)),
            Err(error) => Err(error),
        };
        if result.is_ok() {
            this.observer.flushed();
        }
        Poll::Ready(this.observe(result))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let rest = ready!(this.refusals.poll_rest(&mut this.inner, cx));
        this.observe(rest)?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
