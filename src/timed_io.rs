//! [`TimedIo`]: the socket wrapper that enforces the two limits hyper lacks on a
//! connection's I/O — a write that stalls (the client stopped reading) fails after
//! `write_timeout`, and a connection with no request in progress is reported idle
//! after `keep_alive_timeout`, for `connection::serve` to close it gracefully (with
//! a GOAWAY on HTTP/2).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::connection::ConnState;

/// A socket whose stalled writes time out and whose idleness is reported.
#[derive(Debug)]
pub(crate) struct TimedIo<T> {
    inner: T,
    conn: Arc<ConnState>,
    write_timeout: Duration,
    idle_timeout: Duration,
    /// Running while a write waits for the client; dropped on progress.
    write_timer: Option<Pin<Box<Sleep>>>,
    /// When the connection last became idle (waiting with no request in progress).
    idle_since: Option<Instant>,
    /// Allocated once and left running between idle periods: when it fires early
    /// it is moved to the current period's deadline, so a keep-alive request costs
    /// a clock read rather than a timer registered and removed.
    idle_timer: Option<Pin<Box<Sleep>>>,
}

impl<T> TimedIo<T> {
    pub(crate) fn new(
        inner: T,
        conn: Arc<ConnState>,
        write_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            inner,
            conn,
            write_timeout,
            idle_timeout,
            write_timer: None,
            idle_since: None,
            idle_timer: None,
        }
    }

    /// A write is waiting: fails once it has waited `write_timeout` in all.
    fn write_stalled<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let timeout = self.write_timeout;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn wrote<R>(
        &mut self,
        result: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match result {
            Poll::Ready(result) => {
                self.write_timer = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.write_stalled(cx),
        }
    }

    /// A read is waiting: with no request in progress, that is idleness.
    fn read_waiting(&mut self, cx: &mut Context<'_>) {
        if self.conn.active_requests() > 0 {
            self.idle_since = None;
            return;
        }
        let deadline = *self.idle_since.get_or_insert_with(Instant::now) + self.idle_timeout;
        let timer = match &mut self.idle_timer {
            Some(timer) => timer,
            None => {
                let timer = self
                    .idle_timer
                    .insert(Box::pin(tokio::time::sleep_until(deadline)));
                // The first poll registers this task's waker; the timer keeps it (a
                // connection is always polled by the same task), so until it fires
                // there is no need to poll it again.
                if timer.as_mut().poll(cx).is_pending() {
                    return;
                }
                timer
            }
        };
        if !timer.is_elapsed() {
            return;
        }
        if Instant::now() >= deadline {
            self.conn.idle.notify_one();
        } else {
            // It fired for an earlier idle period: wait for this one's end instead.
            timer.as_mut().reset(deadline);
            let _ = timer.as_mut().poll(cx);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.idle_since = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                this.read_waiting(cx);
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
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
