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
/// The longest v1 line, `\r\n` included (the protocol's own bound).
const MAX_V1_LINE: usize = 107;

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
        if v1_line_unfinished(&buffer)? {
            continue;
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

/// Whether `buffer` holds the start of a v1 line without its end. `ppp` takes some
/// cut lines for whole bad ones (`PROXY TCP4 192.0.2.7 10.0.0.1 40000 `, cut before
/// the last port, parses as an error, not as incomplete), so a line is only parsed
/// once its `\r\n` is in: a balancer's header may come in several segments.
///
/// # Errors
/// `InvalidData` when the line is already longer than a v1 line may be.
fn v1_line_unfinished(buffer: &[u8]) -> io::Result<bool> {
    if !buffer.starts_with(b"PROXY ") {
        return Ok(false);
    }
    let window = &buffer[..buffer.len().min(MAX_V1_LINE)];
    if window.windows(2).any(|pair| pair == b"\r\n") {
        return Ok(false);
    }
    if buffer.len() >= MAX_V1_LINE {
        return Err(invalid("a v1 line longer than 107 bytes"));
    }
    Ok(true)
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

    /// A socket handing over one byte per read, as a header cut into many segments
    /// arrives.
    struct Trickle<'a>(&'a [u8]);

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some((first, rest)) = self.0.split_first() {
                buf.put_slice(&[*first]);
                self.0 = rest;
            }
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_header_arriving_a_byte_at_a_time_is_read_whole() {
        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        v2.extend_from_slice(&[0x21, 0x11, 0, 12]);
        v2.extend_from_slice(&[198, 51, 100, 9, 10, 0, 0, 1, 0x1f, 0x90, 0, 80]);
        let cases: [(&[u8], &str); 3] = [
            (
                b"PROXY TCP4 198.51.100.7 10.0.0.1 40000 80\r\n",
                "198.51.100.7:40000",
            ),
            (
                b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 80\r\n",
                "[2001:db8::1]:40000",
            ),
            (&v2, "198.51.100.9:8080"),
        ];
        for (header, source) in cases {
            let input = [header, b"GET"].concat();
            let parsed = read(&mut Trickle(&input)).await.expect("parsed");
            assert_eq!(parsed.source, Some(source.parse().expect("addr")));
            // Read a byte at a time, nothing past the header has been taken yet.
            assert_eq!(&parsed.rest[..], b"");
        }
    }

    #[tokio::test]
    async fn a_v1_line_without_its_end_is_refused_past_107_bytes() {
        let long = format!("PROXY TCP4 {}", "1".repeat(200));
        let error = parse(long.as_bytes()).await.expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("107 bytes"), "{error}");
    }

    #[tokio::test]
    async fn a_v2_header_with_a_large_tlv_is_read_and_a_huge_one_refused() {
        let header = |tlv: u16| {
            let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
            v2.extend_from_slice(&[0x21, 0x11]);
            v2.extend_from_slice(&(12 + 3 + tlv).to_be_bytes());
            v2.extend_from_slice(&[198, 51, 100, 9, 10, 0, 0, 1, 0x1f, 0x90, 0, 80]);
            v2.push(0xe0);
            v2.extend_from_slice(&tlv.to_be_bytes());
            v2.resize(v2.len() + usize::from(tlv), b'a');
            v2.extend_from_slice(b"GET");
            v2
        };
        let large = parse(&header(2000)).await.expect("a 2 KB header");
        assert_eq!(
            large.source,
            Some("198.51.100.9:8080".parse().expect("addr"))
        );
        assert_eq!(&large.rest[..], b"GET");
        let huge = parse(&header(8000)).await.expect_err("refused");
        assert!(huge.to_string().contains("4 KiB"), "{huge}");
    }

    #[tokio::test]
    async fn v2_local_and_unspecified_headers_name_no_client() {
        let signature = b"\r\n\r\n\0\r\nQUIT\n";
        // LOCAL (a health check) with IPv4 addresses, which must be ignored.
        let mut local = signature.to_vec();
        local.extend_from_slice(&[0x20, 0x11, 0, 12]);
        local.extend_from_slice(&[198, 51, 100, 9, 10, 0, 0, 1, 0x1f, 0x90, 0, 80]);
        local.extend_from_slice(b"GET");
        // PROXY with the UNSPEC family and no addresses.
        let mut unspecified = signature.to_vec();
        unspecified.extend_from_slice(&[0x21, 0x00, 0, 0]);
        unspecified.extend_from_slice(b"GET");
        for input in [local, unspecified] {
            let header = parse(&input).await.expect("parsed");
            assert_eq!(header.source, None);
            assert_eq!(&header.rest[..], b"GET");
        }
    }

    #[tokio::test]
    async fn rewind_reads_the_prefix_first() {
        let mut rewound = Rewind::new(Bytes::from_static(b"ab"), &b"cd"[..]);
        let mut all = Vec::new();
        rewound.read_to_end(&mut all).await.expect("read");
        assert_eq!(all, b"abcd");
    }
}
