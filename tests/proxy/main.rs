//! The reverse proxy (`handlers::Proxy`) against real upstreams started by the tests:
//! the project's own server, Python's `http.server`, raw sockets that hang, die
//! mid-body or switch protocols. One module a topic; the helpers shared here.

#[path = "../common/mod.rs"]
mod common;

mod errors;
mod forwarding;
mod phases;
mod pooling;
mod streaming;
mod upgrades;
mod upstreams;

use std::net::SocketAddr;

use poco_httpd::handlers::Proxy;
use poco_httpd::{Outcome, Request, Response, Server, ServerBuilder};
use tokio::net::TcpListener;

use common::TestServer;

/// An upstream of our own that answers with what it received: the request line,
/// then each header as `name: value`, then a blank line and the body.
pub(crate) async fn echo_upstream() -> TestServer {
    common::start(Server::builder().content("/", echo)).await
}

async fn echo(req: Request, res: Response) -> Outcome {
    let mut text = format!("{} {}\n", req.method(), req.original_uri());
    for (name, value) in req.headers() {
        text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
    }
    text.push('\n');
    let body = req.body().await.unwrap_or_default();
    text.push_str(&String::from_utf8_lossy(&body));
    res.set_header("x-upstream", req.connection().local_addr().to_string());
    res.ok(text)
}

/// The value of header `name` in an echo of the request, if it was there.
pub(crate) fn echoed<'a>(echo: &'a str, name: &str) -> Option<&'a str> {
    let head = echo.split("\n\n").next().unwrap_or_default();
    head.lines()
        .skip(1)
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

/// Starts a server whose `/` is `proxy`, with `more` handlers added.
pub(crate) async fn proxy_server(
    proxy: Proxy,
    more: impl FnOnce(ServerBuilder) -> ServerBuilder,
) -> TestServer {
    common::start(more(Server::builder().content("/", proxy))).await
}

/// A proxy to `upstreams` (written as `host:port` or `unix:/path`).
pub(crate) fn proxy_to(upstreams: &[String]) -> Proxy {
    Proxy::new(upstreams).expect("valid upstreams")
}

/// A loopback address nothing listens on (bound, then closed).
pub(crate) async fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

/// The resident set size of this process, in bytes (Linux).
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// Waits (bounded) until something accepts connections at `addr`.
pub(crate) async fn wait_for_listener(addr: &str) {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing listens at {addr} within {:?}",
            common::PATIENCE
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A raw TCP upstream: each accepted connection is handed to `serve`. Returns its
/// address; the accept loop ends with the test's runtime.
pub(crate) async fn raw_upstream<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    addr
}

/// Waits (bounded by [`common::PATIENCE`]) for the proxy to close `stream`, an
/// upstream connection: `"closed"`, or `"open"` if it did not.
pub(crate) async fn closed_by_proxy(stream: &mut tokio::net::TcpStream) -> &'static str {
    use tokio::io::AsyncReadExt;
    let mut rest = [0_u8; 64];
    let read = tokio::time::timeout(common::PATIENCE, stream.read(&mut rest)).await;
    if matches!(read, Ok(Ok(0) | Err(_))) {
        "closed"
    } else {
        "open"
    }
}

/// The next report a raw upstream sent the test (bounded wait).
pub(crate) async fn next_report<T>(reports: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(common::PATIENCE * 2, reports.recv())
        .await
        .expect("the upstream hears back")
        .expect("a report")
}

/// Reads a request head (up to the blank line) from `stream`.
pub(crate) async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read_u8().await {
            Ok(byte) => head.push(byte),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The `warn` log lines of this test binary, collected once a test asked for them.
static LOG_LINES: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Appends what the subscriber writes to [`LOG_LINES`].
struct LogLines;

impl std::io::Write for LogLines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut lines = LOG_LINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lines.push_str(&String::from_utf8_lossy(bytes));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the `warn` lines of every server in this test binary to [`LOG_LINES`].
pub(crate) fn capture_logs() {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_writer(|| LogLines)
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .init();
    });
}

/// Waits (bounded) for a captured line holding every one of `parts`.
pub(crate) async fn logged(parts: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    loop {
        let lines = LOG_LINES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(line) = lines.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line with {parts:?}:\n{lines}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
