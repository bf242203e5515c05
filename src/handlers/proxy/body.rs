//! The two bodies a proxy moves, each streamed block by block so memory stays
//! bounded whatever their size (hyper pulls the next block only once the previous
//! one was written):
//!
//! - [`OutgoingBody`], the client's request body on its way to the upstream. It
//!   notes progress for the proxy's timeouts, and if the upstream client drops it
//!   before taking a single block (the connection could not be opened), it hands
//!   the body back, so the request can go to another upstream.
//! - [`Answer`], the upstream's response body on its way to the client, which cuts
//!   the response when the upstream goes quiet for the idle timeout or breaks off,
//!   noting either in the [`ProxyReport`]. Over the proxy's own HTTP/1.1 pool it
//!   holds the upstream connection and polls it whenever no block is waiting (the
//!   connection has no task of its own, see `conn.rs`), and gives it back to the pool when the
//!   body has ended; dropped before that, it closes the connection. A body whose
//!   declared length is at most
//!   [`WHOLE_LIMIT`] is collected first and answered whole, as it would fit in one
//!   read anyway: hyper then writes it with the head, and the client's connection
//!   skips the streaming path's per-block work.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tokio::time::Sleep;

use super::conn::UpstreamConn;
use super::pool::Lease;
use super::report::{ProxyFailure, ProxyReport};
use crate::{Body, BodyError, RequestBody};

/// How far the request body got: when a block last went to the upstream, and
/// whether the body has ended, so the proxy can tell a slow upstream (no head
/// within the head timeout after the body ended) from a stalled upload.
#[derive(Debug)]
pub(super) struct Progress {
    start: Instant,
    /// Milliseconds after `start` of the last block taken (or of the start).
    last_ms: AtomicU64,
    ended: AtomicBool,
}

impl Progress {
    fn new(ended: bool) -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            ended: AtomicBool::new(ended),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// When the upstream is late: `head_timeout` after the body ended, or
    /// `idle_timeout` after the last block while it is still being sent.
    pub(super) fn deadline(&self, head_timeout: Duration, idle_timeout: Duration) -> Instant {
        let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        if self.ended.load(Ordering::Relaxed) {
            last + head_timeout
        } else {
            last + idle_timeout
        }
    }
}

/// The request body as the upstream client takes it; see the module docs.
pub(super) struct OutgoingBody {
    inner: Option<RequestBody>,
    /// Whether a block went out: from then on the request cannot be sent again.
    sent_any: bool,
    give_back: Option<oneshot::Sender<RequestBody>>,
    progress: Arc<Progress>,
}

/// Where an [`OutgoingBody`] dropped before sending anything returns its body. An
/// empty body (a `GET`, most requests) needs no way back: another is made.
pub(super) struct GivenBack(Option<oneshot::Receiver<RequestBody>>);

impl GivenBack {
    /// The body, if it came back.
    pub(super) fn take(&mut self) -> Option<RequestBody> {
        match &mut self.0 {
            None => Some(RequestBody::empty()),
            Some(given_back) => given_back.try_recv().ok(),
        }
    }
}

impl OutgoingBody {
    pub(super) fn new(body: RequestBody) -> (Self, GivenBack) {
        let ended = body.is_end_stream();
        let (give_back, given_back) = if ended {
            (None, GivenBack(None))
        } else {
            let (give_back, given_back) = oneshot::channel();
            (Some(give_back), GivenBack(Some(given_back)))
        };
        let outgoing = Self {
            inner: Some(body),
            sent_any: false,
            give_back,
            progress: Arc::new(Progress::new(ended)),
        };
        (outgoing, given_back)
    }

    pub(super) fn progress(&self) -> Arc<Progress> {
        Arc::clone(&self.progress)
    }
}

impl HttpBody for OutgoingBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(Pin::new(inner).poll_frame(cx));
        this.sent_any = true;
        this.progress.touch();
        if frame.is_none() {
            this.progress.ended.store(true, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for OutgoingBody {
    fn drop(&mut self) {
        if self.sent_any {
            return;
        }
        if let (Some(body), Some(give_back)) = (self.inner.take(), self.give_back.take()) {
            // Nobody waiting any more is fine: the request is over.
            let _ = give_back.send(body);
        }
    }
}

/// The largest declared body collected and answered whole rather than streamed.
pub(super) const WHOLE_LIMIT: u64 = 64 * 1024;

/// The upstream's response body as the client gets it; see the module docs.
pub(super) struct Answer {
    body: Incoming,
    /// The connection the body comes on, when the proxy drives it.
    conn: Option<UpstreamConn>,
    idle_timeout: Duration,
    /// Running while the upstream keeps the next block waiting.
    idle: Option<Pin<Box<Sleep>>>,
    report: ProxyReport,
    upstream: Arc<str>,
    /// Counts this request against its upstream until the body ends.
    lease: Option<Lease>,
    done: bool,
}

impl Answer {
    pub(super) fn new(
        body: Incoming,
        conn: Option<UpstreamConn>,
        idle_timeout: Duration,
        report: ProxyReport,
        upstream: Arc<str>,
        lease: Lease,
    ) -> Self {
        Self {
            body,
            conn,
            idle_timeout,
            idle: None,
            report,
            upstream,
            lease: Some(lease),
            done: false,
        }
    }

    /// The client's response body: whole when the upstream declared a length from
    /// 1 to [`WHOLE_LIMIT`] bytes (collected within the idle timeout, as a stream
    /// would be), else streamed. Should the upstream break off or go quiet first,
    /// what came is sent and then the response is cut, as when streaming.
    pub(super) async fn into_body(mut self) -> Body {
        if self.body.is_end_stream() {
            // No body (`HEAD`, `204`, `304`): the connection can go back at once.
            std::future::poll_fn(|cx| {
                self.finish(cx);
                Poll::Ready(())
            })
            .await;
        }
        let small = self
            .body
            .size_hint()
            .exact()
            .is_some_and(|length| length > 0 && length <= WHOLE_LIMIT);
        if !small {
            return Body::from_stream(self);
        }
        let mut whole = Bytes::new();
        let mut joined: Option<BytesMut> = None;
        loop {
            match self.next().await {
                Some(Ok(block)) if whole.is_empty() => whole = block,
                Some(Ok(block)) => joined
                    .get_or_insert_with(|| BytesMut::from(&whole[..]))
                    .extend_from_slice(&block),
                None => {
                    let whole = joined.map_or(whole, BytesMut::freeze);
                    return Body::from(whole);
                }
                Some(Err(error)) => {
                    let came = joined.map_or(whole, BytesMut::freeze);
                    return Body::from_stream(Cut {
                        came: (!came.is_empty()).then_some(came),
                        paused: false,
                        error: Some(error),
                    });
                }
            }
        }
    }

    /// The next frame of the upstream's body. A block already waiting is taken as
    /// it is; otherwise the connection (when the proxy drives it) is polled, which
    /// reads the next block into the body — and sends more of the request's body,
    /// should its upload still go on — and the body is asked again. Once the
    /// connection ended, the body tells how.
    fn poll_block(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match &mut self.conn {
            Some(conn) => {
                let _ = conn.drive(cx);
                Pin::new(&mut self.body).poll_frame(cx)
            }
            None => Poll::Pending,
        }
    }

    /// The upstream's body ended: the request no longer counts against it, and
    /// its connection goes back to the pool.
    fn finish(&mut self, cx: &mut Context<'_>) {
        if !self.done {
            self.done = true;
            if let (Some(conn), Some(lease)) = (self.conn.take(), &self.lease) {
                lease.give_back(conn, cx);
            }
            self.lease = None;
            self.report.note_end();
        }
    }

    /// Ends the body with `failure`: logged, reported, and an error that cuts the
    /// client's response.
    fn fail(&mut self, failure: ProxyFailure, detail: &str) -> io::Error {
        self.done = true;
        self.conn = None;
        self.lease = None;
        self.report.note_failure(failure);
        tracing::warn!(
            upstream = %self.upstream,
            "proxy: upstream {}: {failure} ({detail})",
            self.upstream
        );
        let kind = match failure {
            ProxyFailure::IdleTimeout => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::UnexpectedEof,
        };
        io::Error::new(kind, failure.message())
    }
}

impl Stream for Answer {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.poll_block(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    this.idle = None;
                    // Trailers are not passed on (the client's body carries none).
                    // The client's side may stop polling once it has the declared
                    // length, so the end is noted with the last block.
                    if this.body.is_end_stream() {
                        this.finish(cx);
                    }
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    let error = this.fail(ProxyFailure::BrokeMidBody, &error.to_string());
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => {
                    this.finish(cx);
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    let timeout = this.idle_timeout;
                    let idle = this
                        .idle
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    ready!(idle.as_mut().poll(cx));
                    let detail = format!("nothing for {timeout:?}");
                    let error = this.fail(ProxyFailure::IdleTimeout, &detail);
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }
}

/// What came of a small body before the upstream failed, then the failure — after
/// one pause, in which hyper flushes the head and what came, as it would have while
/// streaming; an error polled at once would close the connection with them unsent.
struct Cut {
    came: Option<Bytes>,
    paused: bool,
    error: Option<io::Error>,
}

impl Stream for Cut {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(came) = self.came.take() {
            return Poll::Ready(Some(Ok(came)));
        }
        if !self.paused {
            self.paused = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.error.take().map(Err))
    }
}
