//! [`Connector`]: how a new connection to one upstream is opened — TCP (with
//! `TCP_NODELAY`) or a Unix socket — within the connect timeout, and
//! [`UpstreamIo`], the socket it gives either way. The HTTP/1.1 pool (`conn.rs`)
//! calls [`Connector::open`]; hyper-util's client (HTTP/2 upstreams) uses it as a
//! `tower::Service`.
//!
//! Each upstream has a pool of its own, so the connector ignores the URI it is
//! given: the pool is per upstream already.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use super::upstream::Address;
use crate::http::Uri;

/// Opens connections to one address; see the module docs.
#[derive(Debug, Clone)]
pub(super) struct Connector {
    address: Arc<Address>,
    timeout: Duration,
}

impl Connector {
    pub(super) fn new(address: Address, timeout: Duration) -> Self {
        Self {
            address: Arc::new(address),
            timeout,
        }
    }

    /// Opens a connection, or fails with `TimedOut` past the connect timeout.
    pub(super) fn open(&self) -> impl Future<Output = io::Result<UpstreamIo>> + Send + 'static {
        Self::connect(Arc::clone(&self.address), self.timeout)
    }

    async fn connect(address: Arc<Address>, timeout: Duration) -> io::Result<UpstreamIo> {
        let connecting = async {
            match &*address {
                Address::Tcp(authority) => {
                    let port = authority.port_u16().unwrap_or(80);
                    let host = authority
                        .host()
                        .trim_start_matches('[')
                        .trim_end_matches(']');
                    let stream = TcpStream::connect((host, port)).await?;
                    stream.set_nodelay(true)?;
                    Ok(UpstreamIo::Tcp(stream))
                }
                Address::Unix(path) => UnixStream::connect(path).await.map(UpstreamIo::Unix),
            }
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")))
    }
}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<UpstreamIo>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let connecting = self.open();
        Box::pin(async move { connecting.await.map(TokioIo::new) })
    }
}

/// A connection to an upstream, over TCP or a Unix socket.
#[derive(Debug)]
pub(super) enum UpstreamIo {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Connection for UpstreamIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Unix(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Unix(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Self::Unix(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(stream) => stream.is_write_vectored(),
            Self::Unix(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Self::Unix(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Unix(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}
