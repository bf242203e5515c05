//! The `poco-httpd` binary run as a user runs it, for every test file that starts it:
//! on a free loopback port or its config's own listeners, with a faked systemd
//! environment, through a shell, its log kept or discarded.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_poco-httpd");

/// The static files the tests serve.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A running `poco-httpd`, killed if the test ends without stopping it.
pub struct Binary {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// The URL of each listener, from the `listening on` lines, in order.
    pub urls: Vec<String>,
}

impl Binary {
    /// Runs the binary with `args`, waiting for its `listeners` listening lines.
    pub fn start(args: &[&str], listeners: usize) -> Self {
        let mut command = Command::new(BINARY);
        command.args(args);
        Self::spawn(command, listeners)
    }

    /// Runs the binary with `args` and one listener on a free port of 127.0.0.1.
    pub fn on_loopback(args: &[&str]) -> Self {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Self::start(&all, 1)
    }

    /// `poco-httpd --config PATH` on a free port of 127.0.0.1.
    pub fn with_config(path: &Path) -> Self {
        Self::on_loopback(&["--config", path.to_str().expect("a UTF-8 path")])
    }

    /// `poco-httpd --root DIR` on a free port of 127.0.0.1.
    pub fn with_root(dir: &Path) -> Self {
        Self::on_loopback(&["--root", dir.to_str().expect("a UTF-8 path")])
    }

    /// Starts `command` (which runs the binary, perhaps through another program),
    /// its log discarded (`RUST_LOG` is for running it by hand), and waits for
    /// `listeners` listening lines.
    pub fn spawn(command: Command, listeners: usize) -> Self {
        Self::spawn_logging(command, Stdio::null(), listeners)
    }

    /// [`spawn`](Self::spawn), its log going to `stderr` (a file the test reads).
    pub fn spawn_logging(mut command: Command, stderr: Stdio, listeners: usize) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start poco-httpd");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut running = Self {
            child,
            stdout,
            urls: Vec::new(),
        };
        for _ in 0..listeners {
            let line = running.line();
            assert!(line.starts_with("poco-httpd listening on "), "{line}");
            let url = line.split(' ').nth(3).expect("a URL").to_owned();
            running.urls.push(url);
        }
        running
    }

    /// The next line it prints on stdout.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("a line on stdout");
        line.trim_end().to_owned()
    }

    /// The URL of its first listener, such as `http://127.0.0.1:8000`.
    pub fn url(&self) -> &str {
        self.urls.first().expect("a listener")
    }

    /// The socket address of its first listener.
    pub fn addr(&self) -> SocketAddr {
        addr_of(self.url())
    }

    /// GETs `path` on its first listener with `client`.
    pub async fn get(&self, client: &reqwest::Client, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.url());
        client.get(url).send().await.expect("GET")
    }

    /// Writes `text` to the config file at `path` and sends SIGHUP (reload).
    pub fn reload(&self, path: &Path, text: &str) {
        std::fs::write(path, text).expect("write config");
        self.signal("-HUP");
    }

    /// Sends raw bytes on a new connection to its first listener and reads until
    /// the server closes it (a reset counts as closed). Blocking: for sync tests.
    pub fn raw_blocking(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(self.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let _ = stream.write_all(request);
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer) {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(error) => panic!("read: {error}"),
        }
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`-HUP`, `-TERM`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal}");
    }

    /// Sends SIGTERM and returns the exit status (bounded wait).
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "poco-httpd exits after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory for one test's files.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poco-httpd-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, text).expect("write a file");
    file
}

/// A self-signed certificate for `names`, as `label.cert.pem` and `label.key.pem` in
/// `dir` (paths returned), and its PEM text for clients to trust.
pub fn certificate(dir: &Path, label: &str, names: &[&str]) -> (PathBuf, PathBuf, String) {
    let names = names
        .iter()
        .map(|name| (*name).to_owned())
        .collect::<Vec<_>>();
    let generated = rcgen::generate_simple_self_signed(names).expect("a certificate");
    let pem = generated.cert.pem();
    let cert = write(dir, &format!("{label}.cert.pem"), &pem);
    let key = write(
        dir,
        &format!("{label}.key.pem"),
        &generated.signing_key.serialize_pem(),
    );
    (cert, key, pem)
}

/// An HTTPS client trusting `roots` only, reaching every name in `names` at `addr`.
pub fn https_client(roots: &[&str], names: &[&str], addr: std::net::SocketAddr) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    for pem in roots {
        builder = builder.add_root_certificate(
            reqwest::Certificate::from_pem(pem.as_bytes()).expect("a PEM certificate"),
        );
    }
    for name in names {
        builder = builder.resolve(name, addr);
    }
    builder.build().expect("a client")
}

/// The socket address of a URL such as `http://127.0.0.1:8000`.
pub fn addr_of(url: &str) -> std::net::SocketAddr {
    url.split("://")
        .nth(1)
        .expect("scheme://address")
        .parse()
        .expect("a socket address")
}
