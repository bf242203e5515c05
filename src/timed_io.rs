//! [`TimedIo`]: the socket wrapper that enforces the two limits hyper lacks on a
//! connection's I/O — a write that stalls (the client stopped reading) fails after
//! `write_timeout`, and a connection with no request in progress is reported idle
//! after `keep_alive_timeout`, for `connection::serve` to close it gracefully (with
//! a GOAWAY on HTTP/2). It knows sockets and clocks only; what "a request in
//! progress" means is the [`IdleWatch`] implementor's business.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What [`TimedIo`] asks of the connection it serves: whether work is in progress,
/// and where to report idleness.
pub(crate) trait IdleWatch {
    /// Whether a request is in progress, so a waiting read is not idleness.
    fn is_busy(&self) -> bool;

    /// The connection has been idle for the keep-alive timeout.
    fn signal_idle(&self);
}

/// A socket whose stalled writes time out and whose idleness is reported.
#[derive(Debug)]
pub(crate) struct TimedIo<T, W> {
    inner: T,
    conn: Arc<W>,
    /// Runs while a write waits for the client.
    write_stall: Watch,
    /// Runs while the connection waits with no request in progress.
    idle: Watch,
}

/// How long a condition (a stalled write, idleness) has lasted, against a limit.
///
/// Conditions start and end per write or per request, far more often than a limit
/// passes, so the timer is not set per condition: it is allocated once and left
/// running, and only when it fires is it checked against the current condition's
/// start and, if early, moved to that condition's deadline. Starting a condition
/// costs a clock read; ending one costs nothing.
#[derive(Debug)]
struct Watch {
    limit: Duration,
    /// When the current condition began; `None` while it does not hold.
    since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Watch {
    fn new(limit: Duration) -> Self {
        Self {
            limit,
            since: None,
            timer: None,
        }
    }

    /// The condition holds (it may have held for a while): reports whether it has
    /// now lasted the limit; if not, this task is woken when it might have.
    fn holds(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = *self.since.get_or_insert_with(Instant::now) + self.limit;
        let timer = match &mut self.timer {
            Some(timer) => timer,
            None => {
                let timer = self
                    .timer
                    .insert(Box::pin(tokio::time::sleep_until(deadline)));
                // The first poll registers this task's waker; the timer keeps it (a
                // connection's I/O is always polled by the same task), so it need
                // not be polled again until it fires.
                if timer.as_mut().poll(cx).is_pending() {
                    return false;
                }
                timer
            }
        };
        if !timer.is_elapsed() {
            return false;
        }
        if Instant::now() >= deadline {
            return true;
        }
        // It fired for an earlier condition: wait for this one's deadline instead.
        timer.as_mut().reset(deadline);
        let _ = timer.as_mut().poll(cx);
        false
    }

    /// The condition has ended.
    fn ended(&mut self) {
        self.since = None;
    }
}

impl<T, W: IdleWatch> TimedIo<T, W> {
    pub(crate) fn new(
        inner: T,
        conn: Arc<W>,
        write_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            inner,
            conn,
            write_stall: Watch::new(write_timeout),
            idle: Watch::new(idle_timeout),
        }
    }

    fn wrote<R>(
        &mut self,
        result: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match result {
            Poll::Ready(result) => {
                self.write_stall.ended();
                Poll::Ready(result)
            }
            Poll::Pending if self.write_stall.holds(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {:?}", self.write_stall.limit),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// A read is waiting: with no request in progress, that is idleness.
    fn read_waiting(&mut self, cx: &mut Context<'_>) {
        if self.conn.is_busy() {
            self.idle.ended();
        } else if self.idle.holds(cx) {
            self.conn.signal_idle();
        }
    }
}

impl<T: AsyncRead + Unpin, W: IdleWatch> AsyncRead for TimedIo<T, W> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.idle.ended();
                Poll::Ready(result)
            }
            Poll::Pending => {
                this.read_waiting(cx);
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin, W: IdleWatch> AsyncWrite for TimedIo<T, W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.wrote(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
