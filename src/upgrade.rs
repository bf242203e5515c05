//! Taking over a connection after switching protocols: HTTP/1.1 `Upgrade` (RFC 9110
//! §7.8, answered `101 Switching Protocols`) and HTTP/2 extended CONNECT (RFC 8441,
//! a `CONNECT` with a `:protocol`, answered `200`). The hook WebSockets and tunnels
//! are built on.
//!
//! The Trans and Pre handlers run as for any request, so authentication, sessions
//! and rewrites apply before an upgrade and can refuse it with a normal answer. A
//! handler that accepts calls [`Request::upgrade`](crate::Request::upgrade), answers
//! with [`Response::switch_protocols`](crate::Response::switch_protocols), and awaits
//! the [`Upgrade`] in a task of its own: it resolves to the connection's bytes once
//! the answer has gone out. Post handlers run when that answer has been flushed.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::stats::{OpenUpgrade, Stats};

/// Why a connection could not be taken over.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The request asked for no protocol switch (or an earlier handler already took
    /// it over).
    #[error("the request asked for no protocol switch, or it was already taken")]
    NotRequested,
    /// The switch did not happen: the answer was not `101`/`200`, or the connection
    /// failed first.
    #[error("the connection could not be taken over")]
    Failed(#[source] hyper::Error),
}

/// The connection, once the answer that switches protocols has gone out: resolves to
/// [`Upgraded`]. Returned by [`Request::upgrade`](crate::Request::upgrade).
#[must_use = "the connection is only taken over when this is awaited"]
pub struct Upgrade {
    pending: hyper::upgrade::OnUpgrade,
    /// Counts the connection in [`Stats::open_upgraded`] once taken.
    stats: Stats,
}

impl Upgrade {
    pub(crate) fn new(pending: hyper::upgrade::OnUpgrade, stats: Stats) -> Self {
        Self { pending, stats }
    }
}

impl Future for Upgrade {
    type Output = Result<Upgraded, UpgradeError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upgraded = ready!(Pin::new(&mut self.pending).poll(cx));
        Poll::Ready(
            upgraded
                .map(|io| Upgraded {
                    io: TokioIo::new(io),
                    _open: self.stats.upgrade_opened(),
                })
                .map_err(UpgradeError::Failed),
        )
    }
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Upgrade")
    }
}

/// The bytes of a connection taken over: an `AsyncRead + AsyncWrite`. On HTTP/1.1 it
/// is the socket itself (the server's write timeout still applies); on HTTP/2, the
/// request's stream. Counted in [`Stats::open_upgraded`] until dropped.
pub struct Upgraded {
    io: TokioIo<hyper::upgrade::Upgraded>,
    _open: OpenUpgrade,
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Upgraded")
    }
}
