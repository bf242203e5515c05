//! [`TimedIo`]: the socket wrapper that enforces the two limits hyper lacks on a
//! connection's I/O — writes that stall (the client stopped reading, or reads only a
//! trickle) fail after `write_timeout`, and a connection with no request in progress
//! is reported idle after `keep_alive_timeout`, for `connection::serve` to close it
//! gracefully (with a GOAWAY on HTTP/2). It knows sockets and clocks only; what "a
//! request in progress" means is the [`IdleWatch`] implementor's business.
//!
//! A stall begins when the socket refuses a write (or a flush). It ends once the
//! client has taken `min_progress` bytes (the minimum rate times the timeout) since
//! it began, or when a flush succeeds while the client has kept up with the minimum
//! rate so far or no request is in progress. (A successful flush alone proves little
//! on HTTP/2: the h2 crate flushes whenever its frame queue runs dry, which happens
//! each time a stream's task is slower to refill it than the socket to take it.) A
//! write that merely succeeds does not end it: a client that reads a few bytes now and then (or a task woken by an
//! unrelated timer squeezing one more frame into a socket buffer that grew) would
//! otherwise restart the clock for ever. So the timeout bounds time spent below a
//! minimum rate, not time between two writes as nginx's `send_timeout` does.

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

/// The timeouts a [`TimedIo`] enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoLimits {
    /// How long writes may go on below `min_write_rate`.
    pub(crate) write_timeout: Duration,
    /// Bytes per second a client must read while the socket is full.
    pub(crate) min_write_rate: u64,
    /// How long the connection may wait with no request in progress.
    pub(crate) idle_timeout: Duration,
}

/// A socket whose stalled writes time out and whose idleness is reported.
#[derive(Debug)]
pub(crate) struct TimedIo<T, W> {
    inner: T,
    conn: Arc<W>,
    /// Runs while the socket takes less than `min_progress` bytes.
    write_stall: Watch,
    /// Bytes the socket took since the current stall began.
    progress: u64,
    /// Bytes a client must take within `write_timeout` to end a stall.
    min_progress: u64,
    /// Bytes per second a stalled client must read at.
    min_rate: u64,
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

    /// Whether the condition holds and has lasted the limit; reads the clock only
    /// while it holds.
    fn expired(&self) -> bool {
        self.since
            .is_some_and(|since| Instant::now() >= since + self.limit)
    }
}

impl<T, W: IdleWatch> TimedIo<T, W> {
    /// `limits` gives the write timeout and the minimum rate (bytes per second) a
    /// stalled client must read at, and the keep-alive timeout.
    pub(crate) fn new(inner: T, conn: Arc<W>, limits: IoLimits) -> Self {
        let millis = u64::try_from(limits.write_timeout.as_millis()).unwrap_or(u64::MAX);
        let min_progress = limits.min_write_rate.saturating_mul(millis) / 1000;
        Self {
            inner,
            conn,
            write_stall: Watch::new(limits.write_timeout),
            progress: 0,
            // A timeout under a second still asks for some progress.
            min_progress: min_progress.max(1),
            min_rate: limits.min_write_rate,
            idle: Watch::new(limits.idle_timeout),
        }
    }

    /// The error a stalled write ends with.
    fn timed_out(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the client read less than {} bytes in {:?}",
                self.min_progress, self.write_stall.limit
            ),
        )
    }

    /// Checked before each write: a stall past its deadline fails even if the socket
    /// would take a few more bytes now (a trickle must not rescue it).
    fn check_stall(&self) -> io::Result<()> {
        if self.write_stall.expired() {
            return Err(self.timed_out());
        }
        Ok(())
    }

    /// The socket took `bytes`: progress, once enough of it, ends a stall.
    fn took(&mut self, bytes: usize) {
        if self.write_stall.since.is_none() {
            return;
        }
        self.progress = self.progress.saturating_add(bytes as u64);
        if self.progress >= self.min_progress {
            self.write_stall.ended();
        }
    }

    /// A flush succeeded: what was queued is on the socket. That ends a stall if the
    /// client has kept up with the minimum rate since it began, or if nothing more
    /// is owed (no request in progress, so idle time never counts against the next).
    fn drained(&mut self) {
        let Some(since) = self.write_stall.since else {
            return;
        };
        let millis = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
        let owed = self.min_rate.saturating_mul(millis) / 1000;
        if self.progress >= owed || !self.conn.is_busy() {
            self.write_stall.ended();
        }
    }

    /// A write was refused: a stall begins (or goes on), and fails at its deadline.
    fn refused<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        if self.write_stall.since.is_none() {
            self.progress = 0;
        }
        if self.write_stall.holds(cx) {
            return Poll::Ready(Err(self.timed_out()));
        }
        Poll::Pending
    }

    fn wrote(
        &mut self,
        result: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(bytes)) => {
                self.took(bytes);
                Poll::Ready(Ok(bytes))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.refused(cx),
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
        this.check_stall()?;
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check_stall()?;
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.check_stall()?;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                this.drained();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => this.refused(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A connection with a request in progress, so only writes are timed.
    struct Busy;

    impl IdleWatch for Busy {
        fn is_busy(&self) -> bool {
            true
        }

        fn signal_idle(&self) {}
    }

    /// A socket whose client reads `chunk` bytes every `every`, and whose queue
    /// never drains (a flush waits like a write).
    struct Trickle {
        chunk: usize,
        every: Duration,
        next: Pin<Box<Sleep>>,
    }

    impl Trickle {
        fn new(chunk: usize, every: Duration) -> Self {
            let next = Box::pin(tokio::time::sleep(every));
            Self { chunk, every, next }
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            std::task::ready!(self.next.as_mut().poll(cx));
            let next = Instant::now() + self.every;
            self.next.as_mut().reset(next);
            Poll::Ready(Ok(buf.len().min(self.chunk)))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn limits(min_write_rate: u64) -> IoLimits {
        IoLimits {
            write_timeout: Duration::from_millis(300),
            min_write_rate,
            idle_timeout: Duration::from_secs(3600),
        }
    }

    /// Writes 1 MiB through a `TimedIo` over `socket`; the error it ended with.
    async fn write_through(socket: Trickle, min_write_rate: u64) -> Option<io::Error> {
        let mut timed = TimedIo::new(socket, Arc::new(Busy), limits(min_write_rate));
        let written = tokio::time::timeout(
            Duration::from_secs(60),
            timed.write_all(&vec![b'x'; 1 << 20]),
        )
        .await
        .expect("the write ends, one way or the other");
        written.err()
    }

    #[tokio::test]
    async fn a_client_reading_a_trickle_is_cut_after_the_write_timeout() {
        // 100 bytes every 100 ms: writes keep succeeding, at 1,000 bytes a second.
        let error = write_through(Trickle::new(100, Duration::from_millis(100)), 10_000)
            .await
            .expect("cut");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(
            error.to_string().contains("read less than 3000 bytes"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_client_reading_at_the_minimum_rate_is_not_cut() {
        // 64 KiB every 100 ms, well over 10,000 bytes a second.
        let error =
            write_through(Trickle::new(64 * 1024, Duration::from_millis(100)), 10_000).await;
        assert!(error.is_none(), "{error:?}");
    }
}
