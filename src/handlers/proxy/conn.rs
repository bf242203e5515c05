//! [`Http1Pool`]: one upstream's own keep-alive pool of HTTP/1.1 connections
//! (hyper's `client::conn::http1`), and [`UpstreamConn`], one such connection.
//!
//! A connection has no task of its own: whoever uses it polls it. While a request
//! waits for its answer's head, the request's handler polls both the connection and
//! the answer ([`UpstreamConn::exchange`]); after the head, the response body the
//! client gets (`body.rs`'s `Answer`) polls the connection whenever no block of the
//! answer is waiting, so the request body's upload and the answer's download both
//! move on. This spares each request the hand-off to a connection task and back
//! (channels and task wake-ups) that hyper-util's pooled client costs.
//!
//! When the answer's body has ended and hyper says the connection can take another
//! request, the connection goes back to the idle list ([`Http1Pool::give_back`]):
//! last in, first out, at most [`MAX_IDLE`] of them, none older than the pool idle
//! timeout (a task per upstream closes those past it, or closed by the upstream,
//! while no request comes). A connection whose user goes away early is dropped,
//! which closes it and so cancels the upstream request. Taking an idle connection
//! polls it once, so one the upstream closed while idle is noticed and dropped; one
//! that closes just as a request goes out is reported as [`ConnError::Broken`] with
//! `reused` set, for the caller to try once on a fresh connection.
//!
//! Protocol switches (`Upgrade`) take a fresh connection that is never pooled and
//! runs on a task of its own under `with_upgrades()`, which hands the upgraded
//! socket to `hyper::upgrade::on`. Driving it from the request instead would mean
//! `poll_without_shutdown` and `into_parts` to get the socket back, for a
//! connection a switch ends anyway and a tunnel that runs on a task of its own:
//! no gain ([`Http1Pool::exchange_upgradeable`]).

use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use super::body::OutgoingBody;
use super::connector::{Connector, UpstreamIo};

/// The most idle connections kept per upstream; past it the oldest is closed.
/// Generous (nginx's `keepalive` is often 32 – 64), so that a burst of more
/// requests at once than that does not end in opening and closing connections.
pub(super) const MAX_IDLE: usize = 256;

/// One HTTP/1.1 connection to an upstream, polled by its user; see the module docs.
pub(super) struct UpstreamConn {
    sender: http1::SendRequest<OutgoingBody>,
    connection: http1::Connection<TokioIo<UpstreamIo>, OutgoingBody>,
    /// The connection future finished (closed or failed); it must not be polled again.
    ended: bool,
    /// It served a request before this one.
    reused: bool,
    /// When it went back to the idle list.
    idle_since: Instant,
}

/// Why a request got no answer head on a connection.
#[derive(Debug)]
pub(super) enum ConnError {
    /// No connection could be opened (`TimedOut`: not within the connect timeout).
    Connect(io::Error),
    /// The connection failed or closed before the head was complete.
    Broken {
        /// What hyper said, if anything.
        error: Option<hyper::Error>,
        /// None of the request went out (hyper gave it back).
        unsent: bool,
        /// The connection had served a request before: the upstream may have
        /// closed it just as this request went out.
        reused: bool,
    },
}

impl ConnError {
    /// The error and its causes, on one line.
    pub(super) fn detail(&self) -> String {
        match self {
            Self::Connect(error) => error.to_string(),
            Self::Broken {
                error: Some(error), ..
            } => super::forward::chain(error),
            Self::Broken { error: None, .. } => "the connection closed".to_owned(),
        }
    }

    /// A reused connection that broke before any answer came: the request may go
    /// again on a fresh connection — always when none of it went out, and when it
    /// did only if `idempotent` (and its body can still be had, which the caller
    /// checks).
    pub(super) fn may_go_again(&self, idempotent: bool) -> bool {
        let Self::Broken {
            error,
            unsent,
            reused: true,
        } = self
        else {
            return false;
        };
        *unsent || (idempotent && error.as_ref().is_none_or(closed_before_answer))
    }
}

/// Whether `error` says the upstream closed or reset the connection (rather than,
/// say, sending something that is not HTTP).
fn closed_before_answer(error: &hyper::Error) -> bool {
    if error.is_incomplete_message() || error.is_canceled() {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            );
        }
        source = cause.source();
    }
    false
}

impl UpstreamConn {
    /// A connection over `io`, not yet used.
    async fn over(io: UpstreamIo) -> Result<Self, ConnError> {
        let (sender, connection) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|error| ConnError::Connect(io::Error::other(error)))?;
        Ok(Self {
            sender,
            connection,
            ended: false,
            reused: false,
            idle_since: Instant::now(),
        })
    }

    /// Moves the connection on — writes what the request has ready, reads what the
    /// upstream sent, as far as the answer's body lets it (one block waiting at
    /// most). `Ready` once the connection has ended.
    pub(super) fn drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.ended {
            return Poll::Ready(());
        }
        match Pin::new(&mut self.connection).poll(cx) {
            Poll::Ready(result) => {
                self.ended = true;
                if let Err(error) = result {
                    tracing::debug!("proxy: upstream connection ended: {error}");
                }
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Whether it can take another request now (after polling it once).
    fn can_take_another(&mut self, cx: &mut Context<'_>) -> bool {
        self.drive(cx).is_pending() && self.sender.is_ready()
    }

    /// Sends `request` and waits for the answer's head, driving the connection
    /// meanwhile.
    pub(super) async fn exchange(
        &mut self,
        request: http::Request<OutgoingBody>,
    ) -> Result<http::Response<Incoming>, ConnError> {
        let mut answer = pin!(self.sender.try_send_request(request));
        let reused = self.reused;
        poll_fn(|cx| {
            let ended = self.drive(cx).is_ready();
            // The answer can only come from the connection just driven, so it needs
            // no waker of its own; a real one would only wake this task again for
            // nothing (hyper's hand-over of the head wakes whoever waits for it).
            let mut unwoken = Context::from_waker(Waker::noop());
            match answer.as_mut().poll(&mut unwoken) {
                Poll::Ready(Ok(head)) => Poll::Ready(Ok(head)),
                Poll::Ready(Err(mut failed)) => {
                    // Dropping the request given back returns its body to the caller.
                    let unsent = failed.take_message().is_some();
                    Poll::Ready(Err(ConnError::Broken {
                        error: Some(failed.into_error()),
                        unsent,
                        reused,
                    }))
                }
                // hyper answers every request before its connection ends; should it
                // not, the request must not wait for ever.
                Poll::Pending if ended => Poll::Ready(Err(ConnError::Broken {
                    error: None,
                    unsent: false,
                    reused,
                })),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// One upstream's idle HTTP/1.1 connections; see the module docs.
pub(super) struct Http1Pool {
    connector: Connector,
    idle: Mutex<Vec<UpstreamConn>>,
    idle_timeout: Duration,
    /// [`MAX_IDLE`] (a field so that tests can make it small).
    max_idle: usize,
}

impl Http1Pool {
    pub(super) fn new(connector: Connector, idle_timeout: Duration) -> Self {
        Self {
            connector,
            idle: Mutex::new(Vec::new()),
            idle_timeout,
            max_idle: MAX_IDLE,
        }
    }

    /// Sends `request` on an idle connection (a new one if none is left, or when
    /// `fresh`) and waits for the head, within the connect timeout for a new
    /// connection. The connection comes back with the head; on failure it is
    /// dropped (closed) before this returns, so the request's body is given back.
    pub(super) async fn exchange(
        &self,
        request: http::Request<OutgoingBody>,
        fresh: bool,
    ) -> Result<(http::Response<Incoming>, UpstreamConn), ConnError> {
        let idle = if fresh { None } else { self.take_idle() };
        let mut conn = match idle {
            Some(conn) => conn,
            None => self.open().await?,
        };
        let head = conn.exchange(request).await?;
        Ok((head, conn))
    }

    /// Sends a protocol switch request on a fresh connection driven by a task of
    /// its own (see the module docs), and waits for the head.
    pub(super) async fn exchange_upgradeable(
        &self,
        request: http::Request<OutgoingBody>,
    ) -> Result<http::Response<Incoming>, ConnError> {
        let io = self.connector.open().await.map_err(ConnError::Connect)?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|error| ConnError::Connect(io::Error::other(error)))?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!("proxy: upstream connection ended: {error}");
            }
        });
        sender
            .try_send_request(request)
            .await
            .map_err(|mut failed| ConnError::Broken {
                unsent: failed.take_message().is_some(),
                error: Some(failed.into_error()),
                reused: false,
            })
    }

    async fn open(&self) -> Result<UpstreamConn, ConnError> {
        let io = self.connector.open().await.map_err(ConnError::Connect)?;
        UpstreamConn::over(io).await
    }

    /// The most recently used idle connection still open and younger than the idle
    /// timeout; those found closed or too old are dropped. Each is polled once to
    /// see whether it closed, with a waker that does nothing: its user polls it
    /// with its own right after, and a real waker here would only be woken for
    /// nothing by the request being handed over.
    fn take_idle(&self) -> Option<UpstreamConn> {
        let mut unwoken = Context::from_waker(Waker::noop());
        loop {
            let mut conn = {
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                let conn = idle.pop()?;
                if conn.idle_since.elapsed() > self.idle_timeout {
                    // The rest are older still.
                    let expired = std::mem::take(&mut *idle);
                    drop(idle);
                    drop(expired);
                    return None;
                }
                conn
            };
            if conn.can_take_another(&mut unwoken) {
                conn.reused = true;
                return Some(conn);
            }
            // Closed while idle (by the upstream, most likely): dropped, next one.
        }
    }

    /// Puts `conn` back on the idle list if it can take another request; else it is
    /// dropped, which closes it. Drops the oldest idle connections past the idle
    /// timeout or past [`MAX_IDLE`].
    pub(super) fn give_back(&self, mut conn: UpstreamConn, cx: &mut Context<'_>) {
        // Usually hyper has already asked for the next request while reading the
        // end of the answer; only otherwise is the connection polled once more.
        if !conn.sender.is_ready() && !conn.can_take_another(cx) {
            return;
        }
        let now = Instant::now();
        conn.idle_since = now;
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let expired = idle
            .iter()
            .take_while(|old| now.duration_since(old.idle_since) > self.idle_timeout)
            .count();
        let surplus = (idle.len() + 1).saturating_sub(self.max_idle);
        let dropped: Vec<UpstreamConn> = idle.drain(..expired.max(surplus)).collect();
        idle.push(conn);
        drop(idle);
        drop(dropped);
    }

    /// How often [`Http1Pool::reap`] should run: within half an idle timeout of
    /// its end, a connection is closed.
    pub(super) fn reap_every(&self) -> Duration {
        (self.idle_timeout / 2).max(Duration::from_millis(50))
    }

    /// Closes the idle connections past the idle timeout or closed by the upstream,
    /// so a quiet pool does not hold them until the next request comes.
    pub(super) fn reap(&self) {
        let taken = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        if taken.is_empty() {
            return;
        }
        let mut unwoken = Context::from_waker(Waker::noop());
        let kept: Vec<UpstreamConn> = taken
            .into_iter()
            .filter_map(|mut conn| {
                let fresh = conn.idle_since.elapsed() <= self.idle_timeout;
                (fresh && conn.can_take_another(&mut unwoken)).then_some(conn)
            })
            .collect();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Those given back meanwhile are younger: the kept ones go before them.
        idle.splice(0..0, kept);
        let surplus = idle.len().saturating_sub(self.max_idle);
        let dropped: Vec<UpstreamConn> = idle.drain(..surplus).collect();
        drop(idle);
        drop(dropped);
    }

    /// How many connections are idle.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::RequestBody;
    use crate::handlers::proxy::upstream::Upstream;

    async fn pool_to(addr: std::net::SocketAddr) -> Http1Pool {
        let upstream = Upstream::parse(&addr.to_string()).expect("address");
        let connector = Connector::new(upstream.address().clone(), Duration::from_secs(5));
        Http1Pool::new(connector, Duration::from_secs(30))
    }

    /// An upstream answering every request on every connection it accepts.
    async fn answering_upstream() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer_all(stream));
            }
        });
        addr
    }

    /// One exchange on a connection of `pool`, read to the end: the connection
    /// comes back ready for the next request.
    async fn used(pool: &Http1Pool, fresh: bool) -> UpstreamConn {
        let (head, mut conn) = pool.exchange(get(), fresh).await.expect("answer");
        assert_eq!(read_all(&mut conn, head.into_body()).await, b"Hello");
        conn
    }

    async fn give_back(pool: &Http1Pool, conn: UpstreamConn) {
        let mut conn = Some(conn);
        poll_fn(|cx| {
            if let Some(conn) = conn.take() {
                pool.give_back(conn, cx);
            }
            Poll::Ready(())
        })
        .await;
    }

    #[tokio::test]
    async fn the_idle_list_keeps_the_most_recent_within_its_bound_and_age() {
        let mut pool = pool_to(answering_upstream().await).await;
        pool.max_idle = 2;
        let mut conns = Vec::new();
        for _ in 0..3 {
            conns.push(used(&pool, true).await);
        }
        for conn in conns {
            give_back(&pool, conn).await;
        }
        assert_eq!(pool.idle_count(), 2, "the oldest is closed past the bound");
        let conn = used(&pool, false).await;
        assert!(conn.reused, "an idle connection is taken first");
        assert_eq!(pool.idle_count(), 1);
        give_back(&pool, conn).await;
        pool.idle_timeout = Duration::ZERO;
        std::thread::sleep(Duration::from_millis(2));
        let conn = used(&pool, false).await;
        assert!(
            !conn.reused,
            "idle connections past the idle timeout are not taken"
        );
        assert_eq!(pool.idle_count(), 0, "and they are closed");
        give_back(&pool, conn).await;
        assert_eq!(pool.idle_count(), 1);
        std::thread::sleep(Duration::from_millis(2));
        pool.reap();
        assert_eq!(
            pool.idle_count(),
            0,
            "reaping closes those past the idle timeout"
        );
    }

    fn get() -> http::Request<OutgoingBody> {
        let (body, _) = OutgoingBody::new(RequestBody::empty());
        http::Request::builder()
            .uri("/")
            .header("host", "x")
            .body(body)
            .expect("request")
    }

    /// Answers each request on a connection with `Hello` until the client closes.
    async fn answer_all(mut stream: tokio::net::TcpStream) {
        let mut buffer = [0_u8; 1024];
        while let Ok(read) = stream.read(&mut buffer).await {
            if read == 0 {
                return;
            }
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHello";
            if stream.write_all(answer).await.is_err() {
                return;
            }
        }
    }

    /// Reads the whole answer body, driving the connection as the proxy's body does.
    async fn read_all(conn: &mut UpstreamConn, mut body: Incoming) -> Vec<u8> {
        use http_body::Body as _;
        let mut got = Vec::new();
        poll_fn(|cx| {
            loop {
                let _ = conn.drive(cx);
                match Pin::new(&mut body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        got.extend_from_slice(&frame.into_data().unwrap_or_default());
                    }
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await;
        got
    }

    #[tokio::test]
    async fn a_connection_given_back_after_its_answer_is_taken_again() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let pool = pool_to(listener.local_addr().expect("addr")).await;
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            answer_all(stream).await;
        });
        for round in 0..3 {
            let (head, mut conn) = pool.exchange(get(), false).await.expect("answer");
            assert_eq!(conn.reused, round > 0);
            let body = read_all(&mut conn, head.into_body()).await;
            assert_eq!(body, b"Hello");
            give_back(&pool, conn).await;
            assert_eq!(pool.idle_count(), 1, "round {round}");
        }
        drop(pool);
        server.await.expect("one connection served every round");
    }
}
