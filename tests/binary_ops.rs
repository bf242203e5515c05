//! Running the ready-made server in production: several listeners (IPv4, IPv6, TLS,
//! a plain one redirecting to HTTPS), `--check`, the JSON access log, and systemd —
//! readiness through `NOTIFY_SOCKET` and socket activation through `LISTEN_FDS` —
//! with the environment systemd would set faked by the test.

#[path = "common/binary.rs"]
mod binary;
mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use binary::{BINARY, Binary, FIXTURES, addr_of, certificate, https_client, scratch, write};
use common::{Raw, raw};

// Several threads: the blocking `terminate` must not stop the client's connection
// tasks from answering the server's HTTP/2 GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_listens_on_ipv4_ipv6_tls_and_a_redirecting_port() {
    let dir = scratch("listeners");
    let (cert, key, pem) = certificate(&dir, "server", &["localhost"]);
    let config = format!(
        "listen = [{{ addr = \"127.0.0.1:0\", tls = false }}, {{ addr = \"[::1]:0\", tls = false }}, {{ addr = \"127.0.0.1:0\", redirect_to_https = true }}, \"127.0.0.1:0\"]\n[tls]\ncert = {cert:?}\nkey = {key:?}\n[[location]]\npath = \"/\"\nstatic = {{ root = \"{FIXTURES}\" }}\n"
    );
    let file = write(&dir, "listeners.toml", &config);
    let server = Binary::start(&["--config", file.to_str().expect("UTF-8")], 4);
    let [v4, v6, redirect, tls] = [0, 1, 2, 3].map(|i| addr_of(&server.urls[i]));
    assert!(server.urls[0].starts_with("http://127.0.0.1:"));
    assert!(server.urls[1].starts_with("http://[::1]:"));
    assert!(server.urls[3].starts_with("https://127.0.0.1:"));
    let hello = std::fs::read_to_string(format!("{FIXTURES}/hello.txt")).expect("fixture");
    for addr in [v4, v6] {
        let answer = Raw::parse(&raw(addr, b"GET /hello.txt HTTP/1.0\r\n\r\n").await);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, hello.as_str()),
            "{addr}"
        );
    }
    let request = b"GET /hello.txt?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let answer = Raw::parse(&raw(redirect, request).await);
    let location = format!("https://localhost:{}/hello.txt?x=1", tls.port());
    assert_eq!(answer.status, 308);
    assert_eq!(answer.header("location"), Some(location.as_str()));
    let client = https_client(&[pem.as_str()], &["localhost"], tls);
    let followed = client.get(location).send().await.expect("HTTPS");
    assert_eq!(followed.text().await.expect("a body"), hello);
    drop(client);
    assert!(server.terminate().success());
}

#[test]
fn check_validates_without_binding_and_exits_0_or_1_with_the_error() {
    let dir = scratch("check");
    // A port in use: --check must not try to bind it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("its address").port();
    let good = write(
        &dir,
        "good.toml",
        &format!(
            "listen = \"127.0.0.1:{port}\"\n[[location]]\npath = \"/\"\nstatic = {{ root = \"{FIXTURES}\" }}\n"
        ),
    );
    let output = Command::new(BINARY)
        .args(["--check", "--config", good.to_str().expect("UTF-8")])
        .output()
        .expect("run --check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("good.toml: the configuration is valid"),
        "{stdout}"
    );
    let bad = write(
        &dir,
        "bad.toml",
        "[[location]]\npath = \"/\"\nstatic = { root = \"/no/such/dir\" }\n",
    );
    let output = Command::new(BINARY)
        .args(["--check", "--config", bad.to_str().expect("UTF-8")])
        .output()
        .expect("run --check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.toml:3: key `root`"), "{stderr}");
    drop(taken);
}

#[tokio::test]
async fn the_json_access_log_writes_one_object_per_request() {
    let dir = scratch("json-log");
    let log = dir.join("access.json");
    let config = format!(
        "listen = \"127.0.0.1:0\"\n[[location]]\npath = \"/\"\nstatic = {{ root = \"{FIXTURES}\" }}\naccess_log = {{ file = {log:?}, format = \"json\" }}\n"
    );
    let file = write(&dir, "json.toml", &config);
    let server = Binary::start(&["--config", file.to_str().expect("UTF-8")], 1);
    let addr = addr_of(&server.urls[0]);
    let request = b"GET /hello.txt?q=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: say \"hi\"\\\r\nConnection: close\r\n\r\n";
    assert_eq!(Raw::parse(&raw(addr, request).await).status, 200);
    assert_eq!(
        Raw::parse(&raw(addr, b"GET /missing HTTP/1.0\r\n\r\n").await).status,
        404
    );
    assert!(
        server.terminate().success(),
        "Post handlers ran before exit"
    );
    let text = std::fs::read_to_string(&log).expect("the log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let first = &lines[0];
    let hello = std::fs::metadata(format!("{FIXTURES}/hello.txt"))
        .expect("fixture")
        .len();
    assert_eq!(first["method"], "GET");
    assert_eq!(first["target"], "/hello.txt?q=1");
    assert_eq!(first["host"], "example.test");
    assert_eq!(first["protocol"], "HTTP/1.1");
    assert_eq!(first["status"], 200);
    assert_eq!(first["bytes"], hello);
    assert_eq!(first["user_agent"], "say \"hi\"\\");
    assert_eq!(first["referer"], serde_json::Value::Null);
    assert_eq!(first["remote"], "127.0.0.1");
    assert!(
        first["duration_us"].is_u64() && first["time"].as_str().is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(lines[1]["status"], 404);
}

/// The next datagram on `socket`, as text (bounded wait).
fn next_datagram(socket: &UnixDatagram) -> String {
    let mut buffer = [0; 512];
    let read = socket
        .recv(&mut buffer)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

#[tokio::test]
async fn systemd_is_told_ready_after_binding_reloading_and_stopping() {
    let dir = scratch("notify");
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("a notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    let mut command = Command::new(BINARY);
    command
        .args(["--listen", "127.0.0.1:0", "--root", FIXTURES])
        .env("NOTIFY_SOCKET", &path);
    let server = Binary::spawn(command, 1);
    assert_eq!(next_datagram(&socket).trim(), "READY=1");
    // Ready means bound: a request is answered now.
    let answer =
        Raw::parse(&raw(addr_of(&server.urls[0]), b"GET /hello.txt HTTP/1.0\r\n\r\n").await);
    assert_eq!(answer.status, 200);
    server.signal("-HUP");
    assert_eq!(next_datagram(&socket).trim(), "RELOADING=1");
    assert_eq!(next_datagram(&socket).trim(), "READY=1");
    server.signal("-TERM");
    assert_eq!(next_datagram(&socket).trim(), "STOPPING=1");
}

/// Python binds a socket on a free port of 127.0.0.1, prints the port, puts the socket
/// at fd 3 and becomes the server (exec keeps the process id systemd would name).
const SOCKET_ACTIVATION: &str = r#"
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"#;

#[tokio::test]
async fn socket_activation_serves_the_socket_passed_as_fd_3() {
    let python = Command::new("python3").arg("--version").output();
    assert!(
        python.is_ok_and(|output| output.status.success()),
        "socket activation is tested through python3: install it (apt-get install python3)"
    );
    let mut command = Command::new("python3");
    // 192.0.2.1 is a documentation address no machine has: binding it would fail, so
    // serving at all proves the passed socket is used.
    command.args([
        "-c",
        SOCKET_ACTIVATION,
        BINARY,
        "--listen",
        "192.0.2.1:80",
        "--root",
        FIXTURES,
    ]);
    let mut server = Binary::spawn(command, 0);
    let port: u16 = server.line().parse().expect("the port python bound");
    let line = server.line();
    assert_eq!(
        line,
        format!("poco-httpd listening on http://127.0.0.1:{port}")
    );
    let addr = format!("127.0.0.1:{port}").parse().expect("an address");
    let answer = Raw::parse(&raw(addr, b"GET /hello.txt HTTP/1.0\r\n\r\n").await);
    assert_eq!(answer.status, 200);
    assert!(server.terminate().success());
}
