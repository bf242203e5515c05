//! The limits a server puts on its clients, each with a documented default, and the
//! [`ServerBuilder`] methods that set them. hyper enforces the header size limits and
//! HTTP/2's; the header read, idle, write, send, body-read, handler, stream-slot and
//! connection-count limits are poco-httpd's own (hyper has none, or a costlier one):
//! `timed_io.rs` times the socket's reads and writes, `send_watch.rs` each HTTP/2 response's progress,
//! `incoming.rs` the request body, `pipeline/` the handlers, the stream slots and the
//! bytes an HTTP/2 connection holds unwritten (`pipeline/send_budget.rs`),
//! `server.rs` counts connections. RELIABILITY.md compares them with nginx's and
//! hyper's defaults.
//!
//! A reload replaces the limits for connections accepted after it (`transport.rs`);
//! a connection keeps the limits it was accepted with.

use std::time::Duration;

use hyper_util::rt::TokioTimer;
use hyper_util::server::conn::auto;
use tokio::sync::Semaphore;

use crate::ServerBuilder;
use crate::send_watch::StreamExecutor;

/// hyper's own default header count; setting any value moves its parser's header
/// array from the stack to the heap, so this one is left unset.
const HYPER_MAX_HEADERS: usize = 100;
/// hyper's default `max_buf_size` for HTTP/1 (8 KiB + 100 × 4 KiB).
const HYPER_MAX_BUF_SIZE: usize = 8192 + 4096 * 100;
/// The largest HTTP/2 send buffer h2 accepts (it asserts a `u32`).
const H2_MAX_SEND_BUF_SIZE: usize = u32::MAX as usize;

/// The limits of one server; see the [`ServerBuilder`] methods for each.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_header_size: usize,
    pub(crate) max_headers: usize,
    pub(crate) body_read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) min_write_rate: u64,
    pub(crate) send_timeout: Duration,
    pub(crate) max_active_streams: u32,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) max_connections: usize,
    /// `None`: no bound per address.
    pub(crate) max_connections_per_ip: Option<usize>,
    pub(crate) handler_timeout: Duration,
    pub(crate) max_concurrent_streams: u32,
    pub(crate) http2_send_buffer: usize,
    pub(crate) http2_connection_buffer: usize,
    pub(crate) shutdown_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            max_header_size: 64 * 1024,
            max_headers: HYPER_MAX_HEADERS,
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            min_write_rate: 1024,
            send_timeout: Duration::from_secs(60),
            max_active_streams: 32,
            keep_alive_timeout: Duration::from_secs(15),
            max_connections: 16 * 1024,
            max_connections_per_ip: None,
            handler_timeout: Duration::from_secs(60),
            // nginx's `http2_max_concurrent_streams`; hyper's 200 times its 400 KiB send
            // buffer let one connection that never reads pin ~100 MiB (issue 19).
            max_concurrent_streams: 128,
            http2_send_buffer: 64 * 1024,
            http2_connection_buffer: 4 * 1024 * 1024,
            shutdown_deadline: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// hyper's connection builder, with these limits.
    pub(crate) fn http_builder(&self) -> auto::Builder<StreamExecutor> {
        let mut builder = auto::Builder::new(StreamExecutor::new(self.send_timeout));
        let mut http1 = builder.http1();
        // hyper's header read timeout sets and drops a timer for every request (1,300 –
        // 1,700 instructions each, BENCHMARKS.md); `timed_io.rs` enforces
        // `header_read_timeout` with one timer per connection instead.
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            // hyper bounds its read buffer and its write queue by one figure. A small
            // one would make it flush after every streamed block, so it keeps its
            // default; heads over `max_header_size` get 431 from the pipeline.
            .max_buf_size(self.max_header_size.max(HYPER_MAX_BUF_SIZE));
        if self.max_headers != HYPER_MAX_HEADERS {
            http1.max_headers(self.max_headers);
        }
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.max_header_size).unwrap_or(u32::MAX))
            .max_concurrent_streams(self.max_concurrent_streams)
            // What one stream may queue for a client that does not read; the sum over
            // the streams is bounded by our own budget (`pipeline/send_budget.rs`).
            .max_send_buf_size(self.http2_send_buffer.clamp(1, H2_MAX_SEND_BUF_SIZE))
            // Extended CONNECT (RFC 8441): WebSockets and tunnels over HTTP/2.
            .enable_connect_protocol();
        // hyper's defaults stay for rapid-reset protection: at most 20 streams reset by
        // the client before the server accepted them, 1024 reset for local errors.
        builder
    }
}

impl ServerBuilder {
    /// How long a client may take to send a request head, from the moment the
    /// connection waits for one (slowloris). Default: 30 s. On HTTP/1.1 the wait for
    /// the next request on a kept-alive connection counts too.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// The largest request head (request line and headers) accepted, in bytes; larger
    /// ones get `431 Request Header Fields Too Large` (HTTP/1.1; at least 8 KiB) or a
    /// refused stream (HTTP/2's header list size). Default: 64 KiB.
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.limits.max_header_size = bytes;
        self
    }

    /// The most header fields a request may have; more get `431`. Default: 100.
    pub fn max_headers(mut self, count: usize) -> Self {
        self.limits.max_headers = count;
        self
    }

    /// How long a request body may go without a byte arriving while a handler reads
    /// it; then the read fails with [`BodyError::TimedOut`](crate::BodyError) (`408`)
    /// and the Error handler runs. Default: 30 s.
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.body_read_timeout = timeout;
        self
    }

    /// How long a client may read slower than [`min_write_rate`](Self::min_write_rate)
    /// while the server has bytes for it (the socket refuses writes) before the
    /// connection is closed (the Error handler runs). Default: 30 s.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.limits.write_timeout = timeout;
        self
    }

    /// The rate, in bytes per second, a client must read at while the server's writes
    /// wait for it: a stall ends only when everything queued is written or the client
    /// took `write_timeout × rate` bytes, so a client that reads a trickle is cut
    /// after [`write_timeout`](Self::write_timeout) as one that reads nothing is.
    /// Applies to HTTP/1.1 and HTTP/2 alike. Default: 1024 (1 KiB/s); at least 1.
    pub fn min_write_rate(mut self, bytes_per_second: u64) -> Self {
        self.limits.min_write_rate = bytes_per_second.max(1);
        self
    }

    /// How long one HTTP/2 response may make no progress — hyper holds a block of
    /// its body and asks for no more, because the client's flow-control window stays
    /// closed or the connection is stalled — before its stream is reset (`CANCEL`),
    /// its body dropped (closing a file it streams) and its Error handler told
    /// ([`FailureKind::SendTimeout`](crate::FailureKind::SendTimeout)). A stream
    /// that waits for its own producer is not stalled. On HTTP/1.1 a response stalls
    /// only when its connection's writes do, which
    /// [`write_timeout`](Self::write_timeout) bounds. Default: 60 s (nginx's
    /// `send_timeout`).
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.limits.send_timeout = timeout;
        self
    }

    /// The most HTTP/2 streams of one connection being answered at once (from their
    /// handlers to the end of their response body). Further streams wait for one to
    /// end before their handlers run, so one connection can pin at most this many
    /// open files and response buffers, however many streams it opens. Default: 32;
    /// at least 1.
    pub fn max_active_streams(mut self, count: u32) -> Self {
        self.limits.max_active_streams = count.max(1);
        self
    }

    /// How long a connection with no request in progress stays open. Default: 15 s.
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.limits.keep_alive_timeout = timeout;
        self
    }

    /// The most connections served at once. Beyond it the server stops accepting:
    /// new connections wait in the kernel's listen backlog until a connection closes
    /// (and are refused by the kernel once the backlog is full). Default: 16384.
    /// At least 1; at most [`Semaphore::MAX_PERMITS`](tokio::sync::Semaphore::MAX_PERMITS)
    /// (larger counts are lowered to it).
    pub fn max_connections(mut self, count: usize) -> Self {
        // The count becomes a semaphore's permits, which panics past its maximum.
        self.limits.max_connections = count.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// The most connections one client address may hold open at once (the client's
    /// address: the one a PROXY protocol header names, when
    /// [`proxy_protocol`](ServerBuilder::proxy_protocol) is on). A connection past it
    /// is closed as soon as it is accepted (after the PROXY header, before the TLS
    /// handshake), without an answer; the client's other connections go on. An IPv4
    /// address mapped into IPv6 counts as the IPv4 address. Default: no bound; at
    /// least 1.
    pub fn max_connections_per_ip(mut self, count: usize) -> Self {
        self.limits.max_connections_per_ip = Some(count.max(1));
        self
    }

    /// How long the handlers in front of the client (Trans to Content, including a
    /// `Wait`) may take to produce a response. Then they are cancelled, the client
    /// gets `503 Service Unavailable`, and the Error and Post handlers run, the request
    /// marked as failed. Streaming after the head has gone out is not limited.
    /// Default: 60 s.
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.limits.handler_timeout = timeout;
        self
    }

    /// The most HTTP/2 streams (requests) open at once on one connection. Default: 128
    /// (nginx's; hyper's own is 200). Together with
    /// [`http2_send_buffer`](Self::http2_send_buffer) it bounds the memory one HTTP/2
    /// connection can hold.
    pub fn max_concurrent_streams(mut self, count: u32) -> Self {
        self.limits.max_concurrent_streams = count;
        self
    }

    /// The most bytes of an HTTP/2 response body queued for the socket per stream,
    /// beyond which the body is not read further until the client takes some. A client
    /// that opens many streams and never reads thus pins at most about
    /// `max_concurrent_streams` × (this + two body blocks) on one connection.
    /// Default: 64 KiB (hyper's own is 400 KiB). Larger than 4 GiB is lowered to it.
    pub fn http2_send_buffer(mut self, bytes: usize) -> Self {
        self.limits.http2_send_buffer = bytes;
        self
    }

    /// The most bytes of streamed response bodies one HTTP/2 connection holds taken
    /// from the handlers but not yet written to the socket, all its streams together;
    /// beyond it a stream's body waits (holding one block) until others are written.
    /// Whole bodies a handler already made are not counted. Default: 4 MiB.
    /// At least 1 byte.
    pub fn http2_connection_buffer(mut self, bytes: usize) -> Self {
        // The count becomes a semaphore's permits, which panics past its maximum.
        self.limits.http2_connection_buffer = bytes.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// How long a shutdown waits for requests in flight before cutting them.
    /// Default: 10 seconds.
    pub fn shutdown_deadline(mut self, deadline: Duration) -> Self {
        self.limits.shutdown_deadline = deadline;
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::{Outcome, Request, Response, Server};

    #[test]
    fn any_connection_count_builds() {
        for count in [0, usize::MAX] {
            let built = Server::builder()
                .max_connections(count)
                .content("/", |_: Request, _: Response| Outcome::Ok)
                .build();
            assert!(built.is_ok(), "max_connections({count})");
        }
    }
}
