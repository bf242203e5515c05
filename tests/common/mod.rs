//! Shared helpers for the integration tests: a real server on `127.0.0.1:0`, a raw
//! TCP client for protocol edges with a parser for what it reads, small handlers,
//! and an event log handlers write into.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poco_httpd::{
    Handler, Outcome, ReloadHandle, Request, Response, ServerBuilder, ShutdownHandle, Stats,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Generous bound for anything a test waits on; reached only when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How long a test waits to make sure something that should not happen did not.
pub const QUIET: Duration = Duration::from_millis(150);

/// A server running in the background of a test.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: ShutdownHandle,
    pub reload: ReloadHandle,
    pub stats: Stats,
    task: JoinHandle<()>,
}

impl TestServer {
    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Shuts the server down and waits (bounded) for `run` to return.
    pub async fn stop(self) {
        self.shutdown.shutdown();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("run returns after shutdown")
            .expect("server task");
    }

    /// Reports whether `run` has returned.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// GETs `path` with `client` and returns the status and the body.
    pub async fn get(&self, client: &reqwest::Client, path: &str) -> (u16, String) {
        fetch(client.get(self.url(path))).await
    }

    /// GETs `path` with `client` and returns the response, its body unread.
    pub async fn response(&self, client: &reqwest::Client, path: &str) -> reqwest::Response {
        client.get(self.url(path)).send().await.expect("GET")
    }

    /// GETs `path` with `headers` on a fresh client and returns the response.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = client().get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("GET")
    }

    /// GETs `path` with `client` and returns the body, whatever the status.
    pub async fn text(&self, client: &reqwest::Client, path: &str) -> String {
        self.get(client, path).await.1
    }

    /// POSTs `body` to `path` with `client` and returns the status and the body.
    pub async fn post(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: &'static str,
    ) -> (u16, String) {
        fetch(client.post(self.url(path)).body(body)).await
    }

    /// Opens a connection and sends `request` on it as raw bytes.
    pub async fn connect(&self, request: &[u8]) -> TcpStream {
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        send(&mut stream, request).await;
        stream
    }

    /// Sends one raw `GET path` with `Connection: close` on a fresh connection.
    pub async fn raw_get(&self, path: &str) -> Raw {
        raw_get(self.addr, path).await
    }

    /// Sends `request` as raw bytes on a fresh connection and returns everything the
    /// server wrote until it closed the connection.
    pub async fn raw(&self, request: &[u8]) -> String {
        raw(self.addr, request).await
    }

    /// [`raw`](Self::raw), parsed.
    pub async fn raw_answer(&self, request: &[u8]) -> Raw {
        Raw::parse(&self.raw(request).await)
    }
}

/// Starts `builder` on a free loopback port.
pub async fn start(builder: ServerBuilder) -> TestServer {
    start_on(builder.listen("127.0.0.1:0")).await
}

/// Starts `builder`, which names its listeners; the test talks to the first.
pub async fn start_on(builder: ServerBuilder) -> TestServer {
    let server = builder
        .build()
        .expect("valid server")
        .bind()
        .await
        .expect("bind loopback");
    let addr = server.local_addr();
    let shutdown = server.shutdown_handle();
    let reload = server.reload_handle();
    let stats = server.stats();
    let task = tokio::spawn(server.run());
    TestServer {
        addr,
        shutdown,
        reload,
        stats,
        task,
    }
}

/// Starts `builder`, sends it one raw `GET path`, stops it and returns the answer.
pub async fn get_once(builder: ServerBuilder, path: &str) -> Raw {
    let server = start(builder).await;
    let answer = server.raw_get(path).await;
    server.stop().await;
    answer
}

/// A Content handler answering `text`.
pub fn answer(text: &'static str) -> impl Handler {
    move |_req: Request, res: Response| {
        res.set_body(text);
        Outcome::Ok
    }
}

/// A Content handler answering `text` after `delay`.
pub fn slow_answer(delay: Duration, text: &'static str) -> impl Handler {
    move |_req: Request, res: Response| async move {
        tokio::time::sleep(delay).await;
        res.set_body(text);
        Outcome::Ok
    }
}

/// A Content handler answering what `body` makes of the request.
pub fn body_from(body: impl Fn(&Request) -> String + Send + Sync + 'static) -> impl Handler {
    move |req: Request, res: Response| {
        res.set_body(body(&req));
        Outcome::Ok
    }
}

/// A handler that does nothing and goes on.
pub fn pass(_req: Request, _res: Response) -> Outcome {
    Outcome::Ok
}

/// An HTTP/1.1 client that keeps connections alive.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .expect("client")
}

/// The value of header `name` of `response`, which must have it, as text.
pub fn header(response: &reqwest::Response, name: &str) -> String {
    let value = response.headers().get(name);
    let value = value.unwrap_or_else(|| panic!("no {name} header in {response:?}"));
    value.to_str().expect("a text header value").to_owned()
}

/// Sends `request` and returns the status and the body.
pub async fn fetch(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.expect("send request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// An HTTP/2 client (prior knowledge, no TLS).
pub fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(PATIENCE)
        .build()
        .expect("client")
}

/// Sends `request` as raw bytes and returns everything the server wrote until it
/// closed the connection.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    send(&mut stream, request).await;
    read_to_close(&mut stream).await
}

/// Sends one raw `GET path` with `Connection: close` on a fresh connection.
pub async fn raw_get(addr: SocketAddr, path: &str) -> Raw {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    Raw::parse(&raw(addr, request.as_bytes()).await)
}

/// Writes `request` on `stream` as raw bytes.
pub async fn send(stream: &mut TcpStream, request: &[u8]) {
    stream.write_all(request).await.expect("write request");
}

/// Reads until the server closes the connection (bounded by [`PATIENCE`]).
pub async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("server closes the connection")
        .expect("read answer");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads one response head (up to its blank line) from `stream`, byte by byte so
/// that what follows it stays in the socket.
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .expect("response arrives")
            .expect("read");
        assert_eq!(
            n,
            1,
            "connection closed mid-head: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Reads exactly one HTTP/1.1 response with a `Content-Length` from `stream`.
pub async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = read_head(stream).await.into_bytes();
    let head_end = buf.len();
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("numeric content-length"));
    buf.resize(head_end + length, 0);
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut buf[head_end..]))
        .await
        .expect("body arrives")
        .expect("read body");
    String::from_utf8_lossy(&buf).into_owned()
}

/// Calls `probe` every few milliseconds until it returns something, and returns that;
/// fails after [`PATIENCE`], saying what it expected (`expected()`).
pub async fn poll<T>(expected: impl Fn() -> String, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {} within {PATIENCE:?}",
            expected()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A parsed raw HTTP/1.x response.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    /// Parses a whole response; panics, saying why, on anything malformed.
    pub fn parse(text: &str) -> Raw {
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {text:?}"));
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {line:?} in {text:?}"));
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Raw {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    /// Every value of header `name` (lowercase).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

/// An ordered log of what handlers did, shared between handlers and the test.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    pub fn push(&self, event: impl Into<String>) {
        self.0.lock().expect("events lock").push(event.into());
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().expect("events lock").clone()
    }

    pub fn clear(&self) {
        self.0.lock().expect("events lock").clear();
    }

    /// A handler that logs `label` and goes on.
    pub fn record(&self, label: &str) -> impl Handler + use<> {
        self.record_then(label, Outcome::Ok)
    }

    /// A handler that logs `label` and denies.
    pub fn deny(&self, label: &str) -> impl Handler + use<> {
        self.record_then(label, Outcome::Deny)
    }

    /// A handler that logs `label` and returns `outcome`.
    pub fn record_then(&self, label: &str, outcome: Outcome) -> impl Handler + use<> {
        let label = label.to_owned();
        self.handler(move |events, _req, _res| {
            events.push(label.clone());
            outcome
        })
    }

    /// A Content handler that logs `label` and answers it as the body.
    pub fn answer(&self, label: &str) -> impl Handler + use<> {
        let label = label.to_owned();
        self.handler(move |events, _req, res| {
            events.push(label.clone());
            res.set_body(label.clone());
            Outcome::Ok
        })
    }

    /// A Content handler given this log, answering what `body` makes of the request.
    pub fn body_from<F>(&self, body: F) -> impl Handler + use<F>
    where
        F: Fn(&Events, &Request) -> String + Send + Sync + 'static,
    {
        self.handler(move |events, req, res| {
            res.set_body(body(events, &req));
            Outcome::Ok
        })
    }

    /// A handler given this log along with the request and the response.
    pub fn handler<F>(&self, handler: F) -> impl Handler + use<F>
    where
        F: Fn(&Events, Request, Response) -> Outcome + Send + Sync + 'static,
    {
        let events = self.clone();
        move |req: Request, res: Response| handler(&events, req, res)
    }

    /// A handler that logs what `entry` makes of the request and goes on.
    pub fn log<F>(&self, entry: F) -> impl Handler + use<F>
    where
        F: Fn(&Request) -> String + Send + Sync + 'static,
    {
        self.handler(move |events, req, _res| {
            events.push(entry(&req));
            Outcome::Ok
        })
    }

    /// Waits for `count` events, then a little longer so that any extra one shows,
    /// and returns them all.
    pub async fn settle(&self, count: usize) -> Vec<String> {
        self.wait_for(count).await;
        tokio::time::sleep(QUIET).await;
        self.all()
    }

    /// Waits (bounded) until `count` events have been logged, then returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<String> {
        let expected = || format!("{count} events, got {:?}", self.all());
        poll(expected, || {
            Some(self.all()).filter(|now| now.len() >= count)
        })
        .await
    }
}

/// Runs headless Chromium with the flags that work on a machine without network.
pub fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempdir("chromium-profile");
    std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium is installed (scripts/test installs it)")
}

pub fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("poco-httpd-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
