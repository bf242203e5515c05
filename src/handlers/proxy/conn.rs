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
//! It follows that the upload moves only while its answer is waited for or read.
//! When the answer ends before the upload does (an upstream refusing it early
//! with `413` or `401`), hyper cannot take another request on the connection, so
//! it is closed and the rest of the upload is not sent: the upstream has answered
//! already (nginx does the same). A connection task would have gone on sending it
//! for nothing.
//!
//! The answer's head comes from hyper through a tokio oneshot, polled with a
//! no-op waker (only polling the connection, or dropping it, can complete it) and
//! unconstrained by tokio's coop budget, which would otherwise make it say
//! `Pending` — and wake that no-op waker — once the task's budget is used up. A
//! connection future that ends is dropped at once, so hyper hands back a request
//! it had not sent yet, to be sent again elsewhere.
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
    /// `None` once the connection future finished (closed or failed): it is dropped
    /// right then, which makes hyper hand back a request it had not sent yet.
    connection: Option<http1::Connection<TokioIo<UpstreamIo>, OutgoingBody>>,
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
            connection: Some(connection),
            reused: false,
            idle_since: Instant::now(),
        })
    }

    /// Moves the connection on — writes what the request has ready, reads what the
    /// upstream sent, as far as the answer's body lets it (one block waiting at
    /// most). `Ready` once the connection has ended.
    pub(super) fn drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(connection) = self.connection.as_mut() else {
            return Poll::Ready(());
        };
        match Pin::new(connection).poll(cx) {
            Poll::Ready(result) => {
                self.connection = None;
                if let Err(error) = result {
                    tracing::debug!("proxy: upstream connection ended: {error}");
                }
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Whether the connection future finished (the connection is closed).
    fn ended(&self) -> bool {
        self.connection.is_none()
    }

    /// Whether it can take another request now (after polling it once).
    fn can_take_another(&mut self, cx: &mut Context<'_>) -> bool {
        self.drive(cx).is_pending() && self.sender.is_ready()
    }

    /// Reads `body`, an answer's body on this connection, to its end (or until the
    /// connection ends), driving the connection meanwhile; the data is dropped.
    pub(super) async fn discard(&mut self, mut body: Incoming) {
        use http_body::Body as _;
        poll_fn(|cx| {
            loop {
                let ended = self.drive(cx).is_ready();
                match Pin::new(&mut body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending if ended => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await;
    }

    /// Sends `request` and waits for the answer's head, driving the connection
    /// meanwhile.
    pub(super) async fn exchange(
        &mut self,
        request: http::Request<OutgoingBody>,
    ) -> Result<http::Response<Incoming>, ConnError> {
        // `unconstrained`: tokio's oneshot behind the answer spends the task's coop
        // budget, and with the budget used up it says `Pending` and wakes the
        // waker it was given — the no-op one below — so the answer would only be
        // seen on the next wake-up from elsewhere, if any (the head timeout).
        let mut answer = pin!(tokio::task::coop::unconstrained(
            self.sender.try_send_request(request)
        ));
        let reused = self.reused;
        poll_fn(|cx| {
            let ended = self.drive(cx).is_ready();
            // The answer can only come from the connection just driven (or from
            // its drop, which hands back a request not sent yet), so it needs no
            // waker of its own; a real one would only wake this task again for
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
                // The connection was dropped as it ended, so hyper has answered or
                // handed back every request; should it not, the request must not
                // wait for ever.
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
        // end of the answer; only otherwise is the connection polled once more. One
        // that ended (the upstream closed it after the answer) is not kept.
        if conn.ended() || (!conn.sender.is_ready() && !conn.can_take_another(cx)) {
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

    /// One exchange on a fresh connection, read to the end with the connection
    /// ready for the next request; then the upstream closes the connection
    /// cleanly, and this returns once the close reached this side, not yet read.
    async fn ready_then_closed() -> (Http1Pool, UpstreamConn) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let pool = pool_to(listener.local_addr().expect("addr")).await;
        let (close_tx, close) = tokio::sync::oneshot::channel::<()>();
        let (closed_tx, closed) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let _ = stream.read(&mut [0_u8; 1024]).await;
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHello";
            stream.write_all(answer).await.expect("write");
            let _ = close.await;
            stream.shutdown().await.expect("shutdown");
            drop(stream);
            let _ = closed_tx.send(());
        });
        let conn = used(&pool, true).await;
        assert!(conn.sender.is_ready(), "hyper asked for the next request");
        close_tx.send(()).expect("the upstream waits");
        closed.await.expect("the upstream closed");
        (pool, conn)
    }

    #[tokio::test]
    async fn a_request_on_a_connection_that_closed_before_sending_it_is_unsent() {
        let (_pool, mut conn) = ready_then_closed().await;
        conn.reused = true;
        let failed = conn
            .exchange(get())
            .await
            .expect_err("the connection closed");
        assert!(
            matches!(
                failed,
                ConnError::Broken {
                    unsent: true,
                    reused: true,
                    ..
                }
            ),
            "{failed:?}"
        );
        assert!(
            failed.may_go_again(false),
            "a request never sent may go again, even a POST"
        );
    }

    #[tokio::test]
    async fn a_connection_that_ended_is_not_given_back() {
        let (pool, mut conn) = ready_then_closed().await;
        // The close is read: the connection future ends.
        poll_fn(|cx| conn.drive(cx)).await;
        assert!(conn.ended());
        give_back(&pool, conn).await;
        assert_eq!(pool.idle_count(), 0, "an ended connection is not pooled");
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

#[cfg(test)]
mod budget_tests {
    //! The answer is seen even when the task's coop budget runs out just as the
    //! connection hands it over.

    use http_body::Body as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::RequestBody;
    use crate::handlers::proxy::upstream::Upstream;

    /// Takes all of the task's coop budget but `left` units.
    fn leave_budget(left: usize, cx: &mut Context<'_>) {
        let mut taken = Vec::new();
        while let Poll::Ready(unit) = tokio::task::coop::poll_proceed(cx) {
            taken.push(unit);
            assert!(taken.len() <= 100_000, "the task has a coop budget");
        }
        // Each unit put back restores the budget to what it was when taken.
        let put_back = taken.len().saturating_sub(left);
        for (index, unit) in taken.into_iter().enumerate() {
            if index != put_back {
                unit.made_progress();
            }
        }
    }

    /// An upstream that reads one request head and writes `answer`, then keeps
    /// the connection open until the client closes it.
    async fn upstream(answer: &'static [u8]) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(stream.read_u8().await.expect("a request head"));
            }
            stream.write_all(answer).await.expect("write");
            let _ = stream.read(&mut [0_u8; 64]).await;
        });
        addr
    }

    /// Sends a GET and waits for the head, leaving the task `left` units of coop
    /// budget at every poll.
    async fn exchange_on_budget(
        addr: std::net::SocketAddr,
        left: usize,
    ) -> Result<(http::StatusCode, Vec<u8>), String> {
        let upstream = Upstream::parse(&addr.to_string()).expect("address");
        let connector = Connector::new(upstream.address().clone(), Duration::from_secs(5));
        let pool = Http1Pool::new(connector, Duration::from_secs(30));
        let mut conn = pool.open().await.map_err(|e| e.detail())?;
        let (body, _) = OutgoingBody::new(RequestBody::empty());
        let request = http::Request::builder()
            .uri("/")
            .header("host", "x")
            .body(body)
            .expect("request");
        let head = {
            let mut exchange = pin!(conn.exchange(request));
            let short = poll_fn(|cx| {
                leave_budget(left, cx);
                exchange.as_mut().poll(cx)
            });
            tokio::time::timeout(Duration::from_secs(5), short)
                .await
                .map_err(|_| "the answer's head stalled".to_owned())?
                .map_err(|e| e.detail())?
        };
        let status = head.status();
        // Only the first block: the partial answer never ends.
        let mut body = head.into_body();
        let first = poll_fn(|cx| {
            let _ = conn.drive(cx);
            Pin::new(&mut body).poll_frame(cx)
        });
        let block = match tokio::time::timeout(Duration::from_secs(5), first).await {
            Ok(Some(Ok(frame))) => frame.into_data().unwrap_or_default().to_vec(),
            other => return Err(format!("no body block: {other:?}")),
        };
        Ok((status, block))
    }

    #[tokio::test]
    async fn an_answer_comes_through_when_the_task_budget_runs_out() {
        let partial: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHello";
        let closing: &[u8] =
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nHello";
        let mut failed = Vec::new();
        for answer in [partial, closing] {
            for left in 1..=8 {
                let got = exchange_on_budget(upstream(answer).await, left).await;
                if got != Ok((http::StatusCode::OK, b"Hello".to_vec())) {
                    failed.push(format!(
                        "{left} units left, answer {:?}: {got:?}",
                        String::from_utf8_lossy(answer)
                    ));
                }
            }
        }
        assert!(failed.is_empty(), "{failed:#?}");
    }
}
