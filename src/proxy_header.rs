//! The PROXY protocol (v1 text and v2 binary, as HAProxy defines it): the header a
//! load balancer sends first on each connection to say whose it is. [`read`] takes
//! it off a socket — parsing is the `ppp` crate's — and [`Rewind`] hands whatever
//! was read past it back to the reader, so the TLS handshake or the HTTP request
//! after it starts intact.
//!
//! This module knows sockets only: nothing about requests or servers.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use ppp::{HeaderResult, PartialResult, v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The longest header taken: a v1 line is at most 107 bytes; a v2 header is 16 bytes
/// plus its addresses and TLVs, which load balancers keep to a few hundred bytes.
const MAX_HEADER: usize = 4096;

/// A PROXY header read off a connection.
#[derive(Debug)]
pub(crate) struct ProxyHeader {
    /// The client's address, when the header names one (`UNKNOWN`, `LOCAL` and
    /// Unix-socket headers do not: the connection is then its own client).
    pub(crate) source: Option<SocketAddr>,
    /// Bytes read past the header: the start of what the client sent.
    pub(crate) rest: Bytes,
}

/// Reads a PROXY protocol header (v1 or v2) from the start of `stream`.
///
/// # Errors
/// `InvalidData` when the connection does not start with a valid header (a client
/// talking to the server directly, past the load balancer) or it is longer than
/// 4 KiB; `UnexpectedEof` when the connection ends before it is complete.
pub(crate) async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<ProxyHeader> {
    let mut buffer = BytesMut::with_capacity(256);
    loop {
        if stream.read_buf(&mut buffer).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let parsed = HeaderResult::parse(&buffer);
        if parsed.is_incomplete() {
            if buffer.len() >= MAX_HEADER {
                return Err(invalid("a PROXY header longer than 4 KiB"));
            }
            continue;
        }
        let (length, source) = match parsed {
            HeaderResult::V1(Ok(header)) => (header.header.len(), v1_source(&header.addresses)),
            HeaderResult::V2(Ok(header)) => (header.len(), v2_source(&header)),
            HeaderResult::V1(Err(error)) => return Err(invalid(&error.to_string())),
            HeaderResult::V2(Err(error)) => return Err(invalid(&error.to_string())),
        };
        buffer.advance(length);
        return Ok(ProxyHeader {
            source,
            rest: buffer.freeze(),
        });
    }
}

fn invalid(reason: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("no valid PROXY protocol header: {reason}"),
    )
}

fn v1_source(addresses: &v1::Addresses) -> Option<SocketAddr> {
    match addresses {
        v1::Addresses::Tcp4(ip) => Some((ip.source_address, ip.source_port).into()),
        v1::Addresses::Tcp6(ip) => Some((ip.source_address, ip.source_port).into()),
        v1::Addresses::Unknown => None,
    }
}

fn v2_source(header: &v2::Header<'_>) -> Option<SocketAddr> {
    // A `LOCAL` header is the balancer's own health check: its addresses mean nothing.
    if header.command != v2::Command::Proxy {
        return None;
    }
    match &header.addresses {
        v2::Addresses::IPv4(ip) => Some((ip.source_address, ip.source_port).into()),
        v2::Addresses::IPv6(ip) => Some((ip.source_address, ip.source_port).into()),
        v2::Addresses::Unix(_) | v2::Addresses::Unspecified => None,
    }
}

/// A socket with bytes already read from it put back in front: reads return `prefix`
/// first, then the socket's; writes go straight through.
#[derive(Debug)]
pub(crate) struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    pub(crate) fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(input: &[u8]) -> io::Result<ProxyHeader> {
        let mut reader = input;
        read(&mut reader).await
    }

    #[tokio::test]
    async fn a_v1_header_gives_the_source_and_keeps_what_follows() {
        let header = parse(b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\nGET / HTTP/1.1\r\n")
            .await
            .expect("parsed");
        assert_eq!(header.source, Some("192.0.2.7:5555".parse().expect("addr")));
        assert_eq!(&header.rest[..], b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_v2_header_gives_the_source() {
        let mut input = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        input.extend_from_slice(&[0x21, 0x11, 0, 12]);
        input.extend_from_slice(&[198, 51, 100, 9, 10, 0, 0, 1, 0x1f, 0x90, 0, 80]);
        input.extend_from_slice(b"GET");
        let header = parse(&input).await.expect("parsed");
        assert_eq!(
            header.source,
            Some("198.51.100.9:8080".parse().expect("addr"))
        );
        assert_eq!(&header.rest[..], b"GET");
    }

    #[tokio::test]
    async fn unknown_and_missing_headers() {
        let unknown = parse(b"PROXY UNKNOWN\r\n").await.expect("parsed");
        assert_eq!(unknown.source, None);
        let error = parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(
            error.expect_err("refused").kind(),
            io::ErrorKind::InvalidData
        );
        let cut = parse(b"PROXY TCP4 192.0.2.7").await;
        assert_eq!(
            cut.expect_err("refused").kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[tokio::test]
    async fn rewind_reads_the_prefix_first() {
        let mut rewound = Rewind::new(Bytes::from_static(b"ab"), &b"cd"[..]);
        let mut all = Vec::new();
        rewound.read_to_end(&mut all).await.expect("read");
        assert_eq!(all, b"abcd");
    }
}
