//! What the three benchmark servers share, so that they differ only in the framework:
//! the runtime, the listen address, the "listening" line `bench/compare` waits for,
//! the trivial per-phase work, the answer and the 1 GiB stream.

use std::hint::black_box;
use std::io::{self, Write};
use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::Stream;

/// The path every load test fetches.
pub const HELLO_PATH: &str = "/a/b/c.txt";
/// Its 13-byte body.
pub const HELLO_BODY: &str = "Hello, world!";
/// Its `Content-Type`.
pub const HELLO_TYPE: &str = "text/plain";
/// The path of the 1 GiB streaming response.
pub const STREAM_PATH: &str = "/stream";
/// The `Content-Type` of the stream.
pub const STREAM_TYPE: &str = "application/octet-stream";
/// The path whose answer waits [`HOLD_FOR`] before it is sent: the memory test keeps
/// thousands of such requests in flight at once (`bench-idle ... in-flight`).
pub const HOLD_PATH: &str = "/hold";
/// How long a request to [`HOLD_PATH`] waits before it is answered with
/// [`HELLO_BODY`]: longer than the memory test holds its connections.
pub const HOLD_FOR: std::time::Duration = std::time::Duration::from_secs(30);
/// The `Server` header all three send, so that the responses are the same bytes.
pub const SERVER_NAME: &str = "bench";

/// Where the static files of `BENCH_STATIC_ROOT` are served.
pub const STATIC_PREFIX: &str = "/static/";

/// The directory named by `BENCH_STATIC_ROOT`, whose files a server serves under
/// [`STATIC_PREFIX`] (compared against nginx by `bench/compare`).
pub fn static_root() -> Option<std::path::PathBuf> {
    std::env::var_os("BENCH_STATIC_ROOT").map(Into::into)
}

/// The size of one stream block.
const CHUNK_SIZE: usize = 64 * 1024;
/// How many blocks make 1 GiB.
const CHUNKS_PER_GIB: usize = (1 << 30) / CHUNK_SIZE;
/// The one block every stream repeats: cloning a static `Bytes` copies nothing, so the
/// stream measures the server's plumbing, not a producer.
static CHUNK: [u8; CHUNK_SIZE] = [b'x'; CHUNK_SIZE];

/// The address to listen on: the first argument (`127.0.0.1:0` lets the system pick
/// a free port; `bench/compare` reads it back from the "listening" line).
pub fn listen_addr() -> String {
    std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into())
}

/// A multi-thread runtime with `BENCH_THREADS` workers (default 1): the comparison
/// pins each server to one core, so one worker avoids needless cross-thread wake-ups.
///
/// # Panics
/// When `BENCH_THREADS` is not a positive number or the runtime cannot start: a
/// benchmark with the wrong set-up must not run at all.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads())
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime")
}

/// `BENCH_THREADS`, the number of worker threads (default 1).
///
/// # Panics
/// When `BENCH_THREADS` is not a positive number.
pub fn threads() -> usize {
    match std::env::var("BENCH_THREADS") {
        Ok(value) => value
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .expect("BENCH_THREADS must be a positive number"),
        Err(_) => 1,
    }
}

/// The certificate and key (PEM files) named by `BENCH_TLS_CERT` and `BENCH_TLS_KEY`:
/// when both are set, the servers that take part in the TLS comparison serve HTTPS.
pub fn tls_paths() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let cert = std::env::var_os("BENCH_TLS_CERT")?;
    let key = std::env::var_os("BENCH_TLS_KEY")?;
    Some((cert.into(), key.into()))
}

/// Prints the line `bench/compare` waits for, flushed at once since stdout is a pipe
/// (block-buffered) there.
pub fn announce(addr: SocketAddr) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
}

/// The trivial work each stand-in for a Pre handler does, identical in all three
/// servers: look a request header up. `black_box` keeps the optimizer from dropping it.
pub fn touch(host: Option<&[u8]>) {
    black_box(host.map(<[u8]>::len));
}

/// 1 GiB as 16384 clones of one shared 64 KiB block.
pub fn gib_stream() -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let chunk = Bytes::from_static(&CHUNK);
    futures_util::stream::iter(std::iter::repeat_n(chunk, CHUNKS_PER_GIB).map(Ok))
}

/// The path of the WebSocket echo in `bench-ws-ours` and `bench-ws-axum`.
pub const ECHO_PATH: &str = "/echo";
