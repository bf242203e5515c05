//! Shared helpers for the integration tests: a real server on `127.0.0.1:0`, a raw
//! TCP client for protocol edges, and an event log handlers write into.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poco_httpd::{ReloadHandle, ServerBuilder, ShutdownHandle, Stats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Generous bound for anything a test waits on; reached only when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(10);

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
}

/// Starts `builder` on a free loopback port.
pub async fn start(builder: ServerBuilder) -> TestServer {
    let server = builder
        .listen("127.0.0.1:0")
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

/// A Content handler answering `text`.
pub fn answer(text: &'static str) -> impl poco_httpd::Handler {
    move |_req: poco_httpd::Request, res: poco_httpd::Response| {
        res.set_body(text);
        poco_httpd::Outcome::Ok
    }
}

/// An HTTP/1.1 client that keeps connections alive.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .expect("client")
}

/// Sends `request` as raw bytes and returns everything the server wrote until it
/// closed the connection.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    read_to_close(&mut stream).await
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

/// Reads exactly one HTTP/1.1 response with a `Content-Length` from `stream`.
pub async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    let head_end = loop {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .expect("response arrives")
            .expect("read");
        assert_eq!(
            n,
            1,
            "connection closed mid-response: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
        if buf.ends_with(b"\r\n\r\n") {
            break buf.len();
        }
    };
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

    /// Waits (bounded) until `count` events have been logged, then returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let now = self.all();
            if now.len() >= count {
                return now;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {count} events, got {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
