//! [`TimedIo`]: the socket wrapper that enforces the time limits on a connection's
//! I/O — writes that stall (the client stopped reading, or reads only a trickle) fail
//! after `write_timeout`; a connection with no request in progress is reported idle
//! after `keep_alive_timeout`, for `connection::serve` to close it gracefully (with a
//! GOAWAY on HTTP/2); and an HTTP/1 connection waiting for a request head longer than
//! `header_read_timeout` fails its read (slowloris). It knows sockets and clocks only;
//! what "a request in progress" means is the [`IdleWatch`] implementor's business.
//!
//! The head wait begins when a read waits while no request is in progress (a new
//! connection, or the previous response done with) and ends when a request is in
//! progress again or a response is written (hyper writes on HTTP/1 only once a head
//! has been read). Bytes that trickle in do not end it. hyper has the same timeout,
//! but it allocates and registers a new timer for every request (1,300 – 1,700
//! instructions per request, `BENCHMARKS.md`), so it is left off and kept here,
//! where one long-lived timer serves a connection's whole life. Connections that
//! begin with the HTTP/2 preface, or have shown themselves HTTP/2 or switched
//! protocols ([`IdleWatch::reads_heads`]), read no HTTP/1 heads and are not timed so.
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

    /// Whether the connection still reads HTTP/1 request heads: not once it has
    /// shown itself HTTP/2 or switched to another protocol.
    fn reads_heads(&self) -> bool;

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
    /// How long an HTTP/1 connection may wait for a complete request head.
    pub(crate) head_timeout: Duration,
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
    /// Runs while the connection waits for a request head (HTTP/1).
    head: Watch,
    /// What the connection's first bytes say about its protocol.
    protocol: Protocol,
}

/// The HTTP/2 connection preface (RFC 9113 §3.4), which an HTTP/2 client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What a connection's first bytes showed: the HTTP/2 preface or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// The bytes so far (this many) begin the preface, or none came yet. Counts as
    /// HTTP/1, so a client that trickles the preface is timed like any head.
    Undecided(usize),
    Http1,
    Http2,
}

impl Protocol {
    /// Takes the connection's next `bytes` into account.
    fn after(self, bytes: &[u8]) -> Self {
        let Self::Undecided(matched) = self else {
            return self;
        };
        let expected = &H2_PREFACE[matched..];
        let compared = bytes.len().min(expected.len());
        if bytes[..compared] != expected[..compared] {
            Self::Http1
        } else if compared == expected.len() {
            Self::Http2
        } else {
            Self::Undecided(matched + compared)
        }
    }
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
    /// now lasted the limit; if not, this task is woken when it might have. If it
    /// begins now, `now` is its start (read once for several watches).
    fn holds(&mut self, cx: &mut Context<'_>, now: &mut Option<Instant>) -> bool {
        let since = *(self.since).get_or_insert_with(|| *now.get_or_insert_with(Instant::now));
        // A limit too far to express as an instant is never reached.
        let Some(deadline) = since.checked_add(self.limit) else {
            return false;
        };
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
            .and_then(|since| since.checked_add(self.limit))
            .is_some_and(|deadline| Instant::now() >= deadline)
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
            head: Watch::new(limits.head_timeout),
            protocol: Protocol::Undecided(0),
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
        if self.write_stall.holds(cx, &mut None) {
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

    /// A response is being written: whatever the connection waited for came.
    fn responding(&mut self) {
        self.idle.ended();
        self.head.ended();
    }

    /// The connection waits — a read waits, or a flush has put out everything
    /// queued: with no request in progress, that is idleness, and on HTTP/1 the
    /// wait for a request head, which fails at its limit. (hyper reads again after a
    /// response only when woken, so the flush that ends a response starts the
    /// watches, whose timers then wake the task.)
    fn waiting(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.conn.is_busy() {
            self.idle.ended();
            self.head.ended();
            return Ok(());
        }
        let mut now = None;
        if self.idle.holds(cx, &mut now) {
            self.conn.signal_idle();
        }
        if self.protocol != Protocol::Http2
            && self.conn.reads_heads()
            && self.head.holds(cx, &mut now)
        {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no complete request head within {:?}", self.head.limit),
            ));
        }
        Ok(())
    }
}

impl<T: AsyncRead + Unpin, W: IdleWatch> AsyncRead for TimedIo<T, W> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.idle.ended();
                if let Protocol::Undecided(_) = this.protocol {
                    this.protocol = this.protocol.after(&buf.filled()[before..]);
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                this.waiting(cx)?;
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
        // A response goes out: the head it answers has been read, and the
        // connection is not idle.
        this.responding();
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
        // A response goes out: the head it answers has been read, and the
        // connection is not idle.
        this.responding();
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
                this.waiting(cx)?;
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

        fn reads_heads(&self) -> bool {
            true
        }

        fn signal_idle(&self) {}
    }

    /// A connection with no request in progress, reading HTTP/1 heads if `heads`.
    struct Waiting {
        heads: bool,
    }

    impl IdleWatch for Waiting {
        fn is_busy(&self) -> bool {
            false
        }

        fn reads_heads(&self) -> bool {
            self.heads
        }

        fn signal_idle(&self) {}
    }

    /// Reads through a `TimedIo` (300 ms head timeout, no request in progress) while
    /// a client writes `sent`, one byte every `every`, then nothing; how the reads
    /// ended within `wait`: `None` if they were still waiting.
    async fn reads_while_sent(
        sent: &'static [u8],
        every: Duration,
        heads: bool,
        wait: Duration,
    ) -> Option<io::Result<Vec<u8>>> {
        use tokio::io::AsyncReadExt;
        let (client, server) = tokio::io::duplex(1024);
        let limits = IoLimits {
            head_timeout: Duration::from_millis(300),
            ..limits(1)
        };
        let mut timed = TimedIo::new(server, Arc::new(Waiting { heads }), limits);
        tokio::spawn(async move {
            let mut client = client;
            for byte in sent {
                tokio::time::sleep(every).await;
                client
                    .write_all(&[*byte])
                    .await
                    .expect("the reader is there");
            }
            // Holds the connection open, sending nothing more.
            std::future::pending::<()>().await;
        });
        let mut read = Vec::new();
        let reading = async {
            loop {
                let mut buf = [0; 64];
                let count = timed.read(&mut buf).await?;
                read.extend_from_slice(&buf[..count]);
            }
        };
        let ended: Option<io::Result<()>> = tokio::time::timeout(wait, reading).await.ok();
        ended.map(|result| result.map(|()| read))
    }

    #[tokio::test]
    async fn a_connection_that_sends_part_of_a_head_is_cut_after_the_header_timeout() {
        let ended = reads_while_sent(b"GET / HT", Duration::ZERO, true, Duration::from_secs(30));
        let error = ended.await.expect("cut").expect_err("a timeout");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(
            error.to_string().contains("no complete request head"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_head_trickled_byte_by_byte_is_cut_all_the_same() {
        // 100 bytes at one per 50 ms would take 5 s: bytes arriving do not restart it.
        let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let ended = reads_while_sent(
            head,
            Duration::from_millis(50),
            true,
            Duration::from_secs(30),
        );
        let error = ended.await.expect("cut").expect_err("a timeout");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_connection_that_reads_no_heads_is_not_timed_for_one() {
        // The HTTP/2 preface, then silence: three times the limit passes uncut.
        let wait = Duration::from_millis(900);
        let ended = reads_while_sent(H2_PREFACE, Duration::ZERO, true, wait).await;
        assert!(ended.is_none(), "{ended:?}");
        // A connection that switched protocols (or showed itself HTTP/2 otherwise).
        let ended = reads_while_sent(b"GET / HT", Duration::ZERO, false, wait).await;
        assert!(ended.is_none(), "{ended:?}");
    }

    #[test]
    fn the_http2_preface_is_recognized_across_reads_and_only_in_full() {
        let (start, rest) = H2_PREFACE.split_at(5);
        let after_start = Protocol::Undecided(0).after(start);
        assert_eq!(after_start, Protocol::Undecided(5));
        assert_eq!(after_start.after(b""), Protocol::Undecided(5));
        assert_eq!(after_start.after(rest), Protocol::Http2);
        assert_eq!(Protocol::Undecided(0).after(H2_PREFACE), Protocol::Http2);
        // "P" could begin either; "PO" is HTTP/1.
        let after_p = Protocol::Undecided(0).after(b"P");
        assert_eq!(after_p, Protocol::Undecided(1));
        assert_eq!(after_p.after(b"OST / HTTP/1.1\r\n"), Protocol::Http1);
        assert_eq!(Protocol::Http1.after(H2_PREFACE), Protocol::Http1);
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
            head_timeout: Duration::from_secs(3600),
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
