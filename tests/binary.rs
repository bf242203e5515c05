//! The ready-made server, run as a user runs it: the `poco-httpd` binary.

#[path = "common/binary.rs"]
mod binary;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use binary::{BINARY, Binary, FIXTURES};

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poco-httpd-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    binary::write(&dir, name, text)
}

/// Writes `htpasswd` with the user `alice`, password `pw`, and returns its path and
/// the path of `log` beside it, removed if a previous run left it.
fn alice_and_a_log(htpasswd: &str, log: &str) -> (PathBuf, PathBuf) {
    let hash = bcrypt::hash("pw", 4).unwrap();
    let htpasswd = write_config(htpasswd, &format!("alice:{hash}\n"));
    let log = htpasswd.with_file_name(log);
    let _ = std::fs::remove_file(&log);
    (htpasswd, log)
}

#[tokio::test]
async fn serves_the_root_directory_and_stops_on_sigterm() {
    let server = Binary::on_loopback(&["--root", FIXTURES]);
    let client = reqwest::Client::new();
    let text = server.get(&client, "/hello.txt").await;
    assert_eq!(text.status(), 200);
    assert_eq!(
        text.text().await.unwrap(),
        std::fs::read_to_string(format!("{FIXTURES}/hello.txt")).unwrap()
    );
    let missing = server.get(&client, "/missing.txt").await;
    assert_eq!(missing.status(), 404);
    let status = server.get(&client, "/server-status?json").await;
    assert_eq!(status.status(), 200, "the status page is on by default");
    assert!(
        status
            .text()
            .await
            .unwrap()
            .contains("\"requests_total\":2")
    );
    assert!(server.terminate().success(), "a graceful exit");
}

#[tokio::test]
async fn a_config_file_sets_headers_locations_and_redirects() {
    let config = write_config(
        "site.toml",
        &format!(
            "hostname = \"example.test\"\n[[rewrite]]\nfrom = \"^/old/(.*)$\"\nto = \"/files/$1\"\n\n[headers]\nX-Site = \"demo\"\n\n[[location]]\npath = \"/files/\"\nstatic = {{ root = \"{FIXTURES}\" }}\n\n[[location]]\npath = \"/honk\"\nredirect = {{ to = \"/honk/\", status = 301 }}\n\n[[location]]\npath = \"/\"\nredirect = {{ to = \"/files/hello.txt\" }}\n"
        ),
    );
    let server = Binary::with_config(&config);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let file = server.get(&client, "/files/dot.gif").await;
    assert_eq!(file.headers()["x-site"], "demo");
    assert_eq!(
        &file.bytes().await.unwrap()[..],
        &std::fs::read(format!("{FIXTURES}/dot.gif")).unwrap()[..]
    );
    let honk = server.get(&client, "/honk").await;
    assert_eq!(honk.status(), 301);
    assert_eq!(honk.headers()["location"], "/honk/");
    let root = server.get(&client, "/").await;
    assert_eq!(root.status(), 302);
    assert!(server.terminate().success());
}

#[test]
fn a_bad_config_is_refused_at_start_naming_file_line_and_key() {
    let config = write_config(
        "bad.toml",
        "listen = \"127.0.0.1:0\"\n\n[[location]]\npath = \"/\"\nstatik = { root = \".\" }\n",
    );
    let output = Command::new(BINARY)
        .args(["--config", config.to_str().unwrap()])
        .output()
        .expect("run poco-httpd");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("bad.toml:5:") && message.contains("statik"),
        "{message}"
    );
    let missing = Command::new(BINARY)
        .args(["--config", "/no/such/file.toml"])
        .output()
        .expect("run poco-httpd");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/file.toml"));
}

#[test]
fn a_port_in_use_is_reported_with_the_os_message_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(BINARY)
        .args(["--root", FIXTURES, "--listen", &addr])
        .output()
        .expect("run poco-httpd");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    // What the operating system says, e.g. "Address already in use (os error 98)".
    let os_message = std::net::TcpListener::bind(&addr)
        .expect_err("the port is taken")
        .to_string();
    assert!(
        message.contains(&format!("cannot listen on {addr}")),
        "{message}"
    );
    assert_eq!(message.matches(&os_message).count(), 1, "{message}");
}

/// A location path covers its directory: `/admin` protects `/admin`, `/admin/` and
/// everything below (not `/administrator`), for every kind of location.
#[tokio::test]
async fn a_location_path_covers_everything_below_it() {
    let (htpasswd, log) = alice_and_a_log("cover.htpasswd", "cover.log");
    let config = write_config(
        "cover.toml",
        &format!(
            "[status]\npath = \"/status\"\n\n[[location]]\npath = \"/files\"\nstatic = {{ root = \"{FIXTURES}\" }}\n\n[[location]]\npath = \"/admin\"\nstatic = {{ root = \"{FIXTURES}\" }}\nbasic_auth = {{ htpasswd = \"{}\" }}\naccess_log = {{ file = \"{}\" }}\n\n[[location]]\npath = \"/old\"\nredirect = {{ to = \"https://example.org$request_uri\", status = 301 }}\n\n[[location]]\npath = \"/\"\nredirect = {{ to = \"/files/\" }}\n",
            htpasswd.display(),
            log.display()
        ),
    );
    let server = Binary::with_config(&config);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| client.get(format!("{}{path}", server.url())).send();
    let location =
        |answer: &reqwest::Response| answer.headers()["location"].to_str().unwrap().to_owned();
    // basic_auth
    for path in ["/admin", "/admin/", "/admin/hello.txt"] {
        assert_eq!(get(path).await.unwrap().status(), 401, "{path}");
    }
    let outside = get("/administrator").await.unwrap();
    assert_eq!(
        (outside.status().as_u16(), location(&outside).as_str()),
        (302, "/files/")
    );
    let authed = |path: &str| {
        client
            .get(format!("{}{path}", server.url()))
            .basic_auth("alice", Some("pw"))
            .send()
    };
    let file = authed("/admin/hello.txt").await.unwrap();
    assert!(file.text().await.unwrap().starts_with("Hello"));
    let directory = authed("/admin").await.unwrap();
    assert_eq!(
        (directory.status().as_u16(), location(&directory).as_str()),
        (301, "/admin/")
    );
    // static
    let files = get("/files").await.unwrap();
    assert_eq!(
        (files.status().as_u16(), location(&files).as_str()),
        (301, "/files/")
    );
    let file = get("/files/hello.txt").await.unwrap();
    assert!(file.text().await.unwrap().starts_with("Hello"));
    // redirect, with the request's path and query
    for (path, expected) in [
        ("/old", "https://example.org/old"),
        ("/old/", "https://example.org/old/"),
        ("/old/a/b?c=d", "https://example.org/old/a/b?c=d"),
        ("/older", "/files/"),
    ] {
        assert_eq!(location(&get(path).await.unwrap()), expected, "{path}");
    }
    // status
    for path in ["/status?json", "/status/?json"] {
        let page = get(path).await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        assert!(
            page.text().await.unwrap().contains("requests_total"),
            "{path}"
        );
    }
    assert_eq!(get("/statusx").await.unwrap().status(), 302);
    // access_log: the five requests under /admin, and not /administrator
    // (counted, not ordered: each line is written when its response has been flushed).
    let lines = wait_for_lines(&log, 5);
    assert_eq!(lines.len(), 5, "{lines:?}");
    let count = |path: &str| {
        let request = format!("\"GET {path} HTTP/1.1\"");
        lines.iter().filter(|line| line.contains(&request)).count()
    };
    assert_eq!(
        [count("/admin"), count("/admin/"), count("/admin/hello.txt")],
        [2, 1, 2],
        "{lines:?}"
    );
    assert!(server.terminate().success());
}

#[tokio::test]
async fn an_empty_header_value_means_the_header_is_not_sent() {
    let config = write_config(
        "headers.toml",
        &format!(
            "[headers]\nServer = \"\"\nX-Site = \"demo\"\n[[location]]\npath = \"/\"\nstatic = {{ root = \"{FIXTURES}\" }}\n"
        ),
    );
    let server = Binary::with_config(&config);
    let answer = reqwest::get(format!("{}/hello.txt", server.url()))
        .await
        .unwrap();
    assert_eq!(answer.headers()["x-site"], "demo");
    assert!(
        answer.headers().get("server").is_none(),
        "{:?}",
        answer.headers()
    );
    assert!(server.terminate().success());
}

#[test]
fn root_with_config_is_refused() {
    // Not even valid TOML: the flags are refused before the file is read.
    let config = write_config("conflict.toml", "[[");
    let output = Command::new(BINARY)
        .args(["--root", FIXTURES, "--config", config.to_str().unwrap()])
        .output()
        .expect("run poco-httpd");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("--root") && message.contains("--config"),
        "{message}"
    );
}

/// Waits (bounded) until `path` has at least `count` lines.
fn wait_for_lines(path: &std::path::Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(Instant::now() < deadline, "{count} lines in {path:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn basic_auth_and_an_access_log_reopened_on_sighup() {
    let (htpasswd, log) = alice_and_a_log("users.htpasswd", "access.log");
    let config = write_config(
        "auth.toml",
        &format!(
            "[[location]]\npath = \"/\"\nstatic = {{ root = \"{FIXTURES}\" }}\naccess_log = {{ file = \"{}\", format = \"combined\" }}\n\n[[location]]\npath = \"/private/\"\nbasic_auth = {{ htpasswd = \"{}\", realm = \"private\" }}\n",
            log.display(),
            htpasswd.display()
        ),
    );
    let server = Binary::with_config(&config);
    let client = reqwest::Client::new();
    let refused = server.get(&client, "/private/x").await;
    assert_eq!(refused.status(), 401);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("realm=\"private\"")
    );
    let allowed = client
        .get(format!("{}/private/x", server.url()))
        .basic_auth("alice", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 404, "authenticated, then no such file");
    let lines = wait_for_lines(&log, 2);
    assert!(
        lines[0].contains("\"GET /private/x HTTP/1.1\" 401"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("127.0.0.1 - alice ["), "{lines:?}");
    let rotated = log.with_file_name("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    server.signal("-HUP");
    // Requests until one lands in the reopened file (the signal is handled async).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&log).unwrap_or_default().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the log is reopened after SIGHUP"
        );
        server.get(&client, "/hello.txt").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(wait_for_lines(&log, 1)[0].contains("\"GET /hello.txt HTTP/1.1\" 200"));
    assert!(server.terminate().success());
}

#[tokio::test]
async fn sighup_reloads_the_config_and_refuses_a_bad_one() {
    let config = write_config(
        "reload.toml",
        "[[location]]\npath = \"/\"\nredirect = { to = \"/first\" }\n",
    );
    let server = Binary::with_config(&config);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location =
        |response: reqwest::Response| response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location(client.get(server.url()).send().await.unwrap()),
        "/first"
    );
    server.reload(
        &config,
        "[[location]]\npath = \"/\"\nredirect = { to = \"/second\" }\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while location(client.get(server.url()).send().await.unwrap()) != "/second" {
        assert!(
            Instant::now() < deadline,
            "the new config is in effect after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.reload(
        &config,
        "[[location]]\npath = \"/\"\nredirekt = { to = \"/third\" }\n",
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        location(client.get(server.url()).send().await.unwrap()),
        "/second",
        "the old config stays"
    );
    assert!(server.terminate().success());
}

/// The resident memory of a process, from `/proc`.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

#[tokio::test]
async fn a_large_file_is_streamed_with_bounded_memory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SIZE: u64 = 1 << 30;
    let dir = std::env::temp_dir().join(format!("poco-httpd-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Sparse: a gigabyte to serve without a gigabyte of disk.
    std::fs::File::create(dir.join("big.bin"))
        .unwrap()
        .set_len(SIZE)
        .unwrap();
    let server = Binary::with_root(&dir);
    let pid = server.pid();
    let before = resident_bytes(pid);
    let addr = server.url().trim_start_matches("http://").to_owned();
    let mut client = tokio::net::TcpStream::connect(&addr).await.unwrap();
    client
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut received = vec![0u8; 1 << 20];
    client.read_exact(&mut received).await.unwrap();
    let head = String::from_utf8_lossy(&received[..1024]);
    let head = head.split("\r\n\r\n").next().unwrap_or_default();
    assert!(head.contains(&format!("content-length: {SIZE}")), "{head}");
    // The client stops reading: a server that buffered the file would now hold it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stalled = resident_bytes(pid);
    assert!(
        stalled < before + (64 << 20),
        "resident memory grew from {before} to {stalled} bytes while serving a 1 GiB file"
    );
    drop(client);
    let tail = reqwest::Client::new()
        .get(format!("{}/big.bin", server.url()))
        .header("range", "bytes=-4")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(
        tail.headers()["content-range"],
        format!("bytes {}-{}/{SIZE}", SIZE - 4, SIZE - 1).as_str()
    );
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &[0, 0, 0, 0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn compression_and_listing_by_default_and_compression_off_by_config() {
    let dir = std::env::temp_dir().join(format!("poco-httpd-defaults-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let text = "a line of text to compress\n".repeat(100);
    std::fs::write(dir.join("sub/page.txt"), &text).unwrap();
    let plain_config = write_config(
        "plain.toml",
        &format!(
            "[compression]\nenabled = false\n[[location]]\npath = \"/\"\nstatic = {{ root = \"{}\" }}\n",
            dir.display()
        ),
    );
    let default = Binary::with_root(&dir);
    let plain = Binary::with_config(&plain_config);
    let client = reqwest::Client::new();
    let get = |url: String| client.get(url).header("accept-encoding", "gzip").send();
    let compressed = get(format!("{}/sub/page.txt", default.url()))
        .await
        .unwrap();
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    assert!(compressed.bytes().await.unwrap().len() < text.len() / 5);
    let listing = get(format!("{}/sub/", default.url())).await.unwrap();
    assert_eq!(listing.status(), 200);
    let uncompressed = get(format!("{}/sub/page.txt", plain.url())).await.unwrap();
    assert!(uncompressed.headers().get("content-encoding").is_none());
    assert_eq!(uncompressed.text().await.unwrap(), text);
    assert_eq!(
        get(format!("{}/sub/", plain.url())).await.unwrap().status(),
        404
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn tls_and_limits_from_the_config_file() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = write_config("tls-cert.pem", &generated.cert.pem());
    let key = write_config("tls-key.pem", &generated.signing_key.serialize_pem());
    let config = write_config(
        "tls.toml",
        &format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n[limits]\nmax_header_size = 8192\nmin_write_rate = 2048\nsend_timeout_secs = 20\nmax_active_streams = 16\n[[location]]\npath = \"/\"\nstatic = {{ root = \"{FIXTURES}\" }}\n",
            cert.display(),
            key.display()
        ),
    );
    let server = Binary::with_config(&config);
    assert!(server.url().starts_with("https://"), "{}", server.url());
    let addr: std::net::SocketAddr = server.url().trim_start_matches("https://").parse().unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(generated.cert.pem().as_bytes()).unwrap(),
        )
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/hello.txt", addr.port());
    let answer = client.get(&url).send().await.unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);
    assert!(answer.text().await.unwrap().starts_with("Hello"));
    let oversized = client
        .get(&url)
        .header("x-big", "a".repeat(10_000))
        .send()
        .await;
    // HTTP/2 refuses a header list over the limit (the stream or the connection).
    assert!(oversized.map_or(true, |answer| !answer.status().is_success()));

    std::fs::write(&key, "not a key").unwrap();
    let refused = Command::new(BINARY)
        .args(["--config", config.to_str().unwrap()])
        .output()
        .expect("run poco-httpd");
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("tls-key.pem"), "{message}");
}

/// A self-signed certificate for `localhost`, as PEM: (certificate, key).
fn localhost_certificate() -> (String, String) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (generated.cert.pem(), generated.signing_key.serialize_pem())
}

/// A client trusting only the certificate `pem`, sending `localhost` to `addr`; a new
/// one per request, so every request makes its own handshake.
fn trusting(pem: &str, addr: std::net::SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap()
}

#[tokio::test]
async fn sighup_reloads_renewed_certificate_files_for_new_handshakes() {
    let (first_cert, first_key) = localhost_certificate();
    let cert = write_config("renew-cert.pem", &first_cert);
    let key = write_config("renew-key.pem", &first_key);
    let config = write_config(
        "renew.toml",
        &format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n[[location]]\npath = \"/\"\nstatic = {{ root = \"{FIXTURES}\" }}\n",
            cert.display(),
            key.display()
        ),
    );
    let server = Binary::with_config(&config);
    let addr: std::net::SocketAddr = server.url().trim_start_matches("https://").parse().unwrap();
    let url = format!("https://localhost:{}/hello.txt", addr.port());
    let answer = trusting(&first_cert, addr).get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 200);

    let (second_cert, second_key) = localhost_certificate();
    std::fs::write(&cert, &second_cert).unwrap();
    std::fs::write(&key, &second_key).unwrap();
    server.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while trusting(&second_cert, addr).get(&url).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "a new handshake presents the renewed certificate after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let old = trusting(&first_cert, addr).get(&url).send().await;
    assert!(old.is_err(), "the old certificate is no longer presented");
    // Not `terminate`: it blocks this runtime, whose tasks hold the clients' idle
    // HTTP/2 connections, which a graceful shutdown would wait for.
    drop(server);
}

/// Sends a GET of `/hello.txt` with a header of `padding` bytes on `stream` and reads
/// the answer's status line (the body is `hello.txt`'s, read whole).
async fn raw_get(stream: &mut tokio::net::TcpStream, padding: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(padding)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut block = [0u8; 4096];
    loop {
        let read = stream.read(&mut block).await.unwrap();
        assert!(read > 0, "the connection stays open");
        received.extend_from_slice(&block[..read]);
        let text = String::from_utf8_lossy(&received);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return head.lines().next().unwrap_or_default().to_owned();
            }
        }
    }
}

#[tokio::test]
async fn sighup_applies_new_limits_to_new_connections_only() {
    let site = format!("[[location]]\npath = \"/\"\nstatic = {{ root = \"{FIXTURES}\" }}\n");
    let config = write_config("limits-reload.toml", &site);
    let server = Binary::with_config(&config);
    let addr = server.url().trim_start_matches("http://").to_owned();
    let mut before = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert_eq!(raw_get(&mut before, 20_000).await, "HTTP/1.1 200 OK");

    server.reload(
        &config,
        &format!("[limits]\nmax_header_size = 8192\nmax_body_size = 10\n{site}"),
    );
    let client = reqwest::Client::new();
    let post = || {
        client
            .post(format!("{}/hello.txt", server.url()))
            .body("x".repeat(100))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while post().send().await.unwrap().status() != 413 {
        assert!(
            Instant::now() < deadline,
            "max_body_size applies after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut after = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert_eq!(
        raw_get(&mut after, 20_000).await,
        "HTTP/1.1 431 Request Header Fields Too Large",
        "a new connection gets the new max_header_size"
    );
    assert_eq!(
        raw_get(&mut before, 20_000).await,
        "HTTP/1.1 200 OK",
        "an open connection keeps the limits it was accepted with"
    );
    assert!(server.terminate().success());
}

/// Waits (bounded) until the file `log` contains `text`.
fn wait_for_text(log: &std::path::Path, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logged = std::fs::read_to_string(log).unwrap_or_default();
        if logged.contains(text) {
            return logged;
        }
        assert!(Instant::now() < deadline, "{text:?} in the log: {logged}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sighup_refuses_a_new_listen_address_or_tls_switch_and_keeps_serving() {
    let site = "[[location]]\npath = \"/\"\nredirect = { to = \"/first\" }\n";
    let config = write_config(
        "listen-reload.toml",
        &format!("listen = \"127.0.0.1:0\"\n{site}"),
    );
    let log = config.with_file_name("listen-reload.log");
    let mut command = Command::new(BINARY);
    command.args(["--config", config.to_str().unwrap()]);
    let server = Binary::spawn_logging(command, std::fs::File::create(&log).unwrap().into(), 1);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location = || async {
        let answer = client.get(server.url()).send().await.unwrap();
        answer.headers()["location"].to_str().unwrap().to_owned()
    };
    assert_eq!(location().await, "/first");

    let moved =
        "listen = \"127.0.0.1:1\"\n[[location]]\npath = \"/\"\nredirect = { to = \"/second\" }\n";
    server.reload(&config, moved);
    let logged = wait_for_text(&log, "new configuration refused");
    assert!(
        logged.contains("listen-reload.toml: `listen` cannot change"),
        "{logged}"
    );
    assert_eq!(location().await, "/first", "the old configuration stays");

    let (cert_pem, key_pem) = localhost_certificate();
    let cert = write_config("switch-cert.pem", &cert_pem);
    let key = write_config("switch-key.pem", &key_pem);
    let with_tls = format!(
        "listen = \"127.0.0.1:0\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n{}",
        cert.display(),
        key.display(),
        site.replace("/first", "/third")
    );
    server.reload(&config, &with_tls);
    let logged = wait_for_text(&log, "`tls`");
    assert!(logged.contains("turning TLS on"), "{logged}");
    assert_eq!(location().await, "/first", "still plain HTTP, old handlers");
    assert!(server.terminate().success());
}

#[tokio::test]
async fn the_default_command_hides_dot_files_and_a_config_may_serve_them() {
    let dir = std::env::temp_dir().join(format!("poco-httpd-dotfiles-{}", std::process::id()));
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join(".env"), "SECRET=1").unwrap();
    std::fs::write(dir.join(".git/config"), "[core]").unwrap();
    std::fs::write(dir.join("page.txt"), "page").unwrap();
    let config = write_config(
        "hidden.toml",
        &format!(
            "[[location]]\npath = \"/\"\nstatic = {{ root = \"{}\", hidden = true }}\n",
            dir.display()
        ),
    );
    let default = Binary::with_root(&dir);
    let open = Binary::with_config(&config);
    let client = reqwest::Client::new();
    let get = |url: String| client.get(url).send();
    for path in ["/.env", "/.git/config"] {
        let refused = get(format!("{}{path}", default.url())).await.unwrap();
        assert_eq!(refused.status(), 404, "{path}");
        let served = get(format!("{}{path}", open.url())).await.unwrap();
        assert_eq!(served.status(), 200, "{path} with hidden = true");
    }
    let listing = get(format!("{}/", default.url())).await.unwrap();
    let html = listing.text().await.unwrap();
    assert!(
        html.contains("page.txt") && !html.contains(".env"),
        "{html}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Sends `GET /missing.txt` on a kept-alive `stream` and reads the answer's status
/// line; answering it opens no file.
async fn status_of_missing(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = "GET /missing.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut block = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("\r\n\r\n") {
        let read = stream.read(&mut block).await.unwrap();
        assert!(read > 0, "the connection stays open");
        received.extend_from_slice(&block[..read]);
    }
    let text = String::from_utf8_lossy(&received);
    text.lines().next().unwrap_or_default().to_owned()
}

/// How many lines of `path` contain `needle`.
fn lines_with(path: &std::path::Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter(|line| line.contains(needle)).count()
}

/// Waits (bounded) until a line of `path` contains `needle`.
async fn wait_for_line(path: &std::path::Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines_with(path, needle) == 0 {
        assert!(
            Instant::now() < deadline,
            "a line with {needle:?} in {path:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn out_of_file_descriptors_the_server_pauses_accepting_serves_what_is_open_and_recovers() {
    const FAILED: &str = "accepting connections failed";
    let log = write_config("emfile.log", "");
    let mut command = Command::new("sh");
    // A child shell lowers its own limit, then becomes the server.
    command.args([
        "-c",
        "ulimit -n 64 && exec \"$0\" \"$@\"",
        BINARY,
        "--listen",
        "127.0.0.1:0",
        "--root",
        FIXTURES,
    ]);
    let server = Binary::spawn_logging(
        command,
        Stdio::from(std::fs::File::create(&log).unwrap()),
        1,
    );
    let addr = server
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(status_of_missing(&mut first).await.contains("404"));
    // More connections than descriptors: the kernel completes them all, the server
    // accepts until it runs out.
    let mut crowd = Vec::new();
    for _ in 0..100 {
        crowd.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    wait_for_line(&log, FAILED).await;
    // Several pauses pass (10, 20, 40, … ms), each retry failing again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(status_of_missing(&mut first).await.contains("404"));
    assert_eq!(lines_with(&log, FAILED), 1, "logged once per burst");
    drop(crowd);
    wait_for_line(&log, "accepting connections again").await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (status, body) = {
        let answer = server.get(&client, "/hello.txt").await;
        (answer.status(), answer.text().await.unwrap())
    };
    assert_eq!(status, 200);
    assert!(body.starts_with("Hello from"), "{body}");
    assert!(server.terminate().success());
}

/// An upstream of our own (the library) answering `name` and the path; `/app/slow`
/// tells `arrived` its name, then waits for `release`.
async fn named_upstream(
    name: &'static str,
    arrived: tokio::sync::mpsc::UnboundedSender<&'static str>,
    release: std::sync::Arc<tokio::sync::Notify>,
) -> (std::net::SocketAddr, poco_httpd::ShutdownHandle) {
    use poco_httpd::{Request, Response, Server};
    let server = Server::builder()
        .listen("127.0.0.1:0")
        .content("/", move |req: Request, res: Response| {
            let (arrived, release) = (arrived.clone(), std::sync::Arc::clone(&release));
            async move {
                if req.path() == "/app/slow" {
                    let waiting = release.notified();
                    let _ = arrived.send(name);
                    waiting.await;
                }
                res.ok(format!("{name} {}", req.path()))
            }
        })
        .build()
        .expect("upstream")
        .bind()
        .await
        .expect("bind");
    let addr = server.local_addr();
    let shutdown = server.shutdown_handle();
    tokio::spawn(server.run());
    (addr, shutdown)
}

#[tokio::test]
async fn a_proxy_location_forwards_and_sighup_changes_upstreams_without_dropping_requests() {
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let (first, stop_first) =
        named_upstream("first", arrived_tx.clone(), std::sync::Arc::clone(&release)).await;
    let (second, stop_second) =
        named_upstream("second", arrived_tx, std::sync::Arc::clone(&release)).await;
    let proxy_to = |upstream: std::net::SocketAddr| {
        format!(
            "[[location]]\npath = \"/app\"\nproxy = {{ to = [\"{upstream}\"], forwarded = true }}\n"
        )
    };
    let config = write_config("proxy.toml", &proxy_to(first));
    let server = Binary::with_config(&config);
    let client = reqwest::Client::new();
    let text = |response: reqwest::Response| async { response.text().await.expect("body") };
    assert_eq!(
        text(server.get(&client, "/app/x").await).await,
        "first /app/x"
    );
    let in_flight = tokio::spawn({
        let (client, url) = (client.clone(), format!("{}/app/slow", server.url()));
        async move { client.get(url).send().await.expect("GET").text().await }
    });
    let at = tokio::time::timeout(Duration::from_secs(10), arrived.recv()).await;
    assert_eq!(
        at.expect("the slow request arrives").expect("a name"),
        "first"
    );
    server.reload(&config, &proxy_to(second));
    let deadline = Instant::now() + Duration::from_secs(10);
    while text(server.get(&client, "/app/x").await).await != "second /app/x" {
        assert!(
            Instant::now() < deadline,
            "the new upstream is used after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    release.notify_waiters();
    let answer = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the request in flight ends")
        .expect("task");
    assert_eq!(answer.expect("its body"), "first /app/slow");
    assert!(server.terminate().success());
    stop_first.shutdown();
    stop_second.shutdown();
}
