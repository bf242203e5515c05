//! The ready-made server's front-server keys, run as a user runs them (the
//! `poco-httpd` binary with a config file): `headers`, `cors`, `error_pages`,
//! `try_files`, `allow`/`deny`, `rate_limit`, `real_ip`, `proxy_protocol` (a
//! `listen` table's) and `max_connections_per_ip`.

#[path = "common/binary.rs"]
mod binary;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use binary::{BINARY, Binary, scratch, write};

const SITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/site");

/// `poco-httpd --config FILE` with `text` written to `name`, on a free port of
/// 127.0.0.1 (`own_listen`: with the config's own `listen`, which must be there).
fn run(name: &str, text: &str, own_listen: bool) -> Binary {
    let file = write(&scratch(&format!("front-{name}")), name, text);
    let config = file.to_str().expect("a UTF-8 path");
    if own_listen {
        Binary::start(&["--config", config], 1)
    } else {
        Binary::with_config(&file)
    }
}

/// The full URL of `path` on `server`.
fn url(server: &Binary, path: &str) -> String {
    format!("{}{path}", server.url())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    let value = response.headers().get(name);
    let value = value.unwrap_or_else(|| panic!("no {name} in {:?}", response.headers()));
    value.to_str().expect("text").to_owned()
}

/// A site: a single-page app at `/`, assets with their own cache header and 404
/// page, an API with CORS and a rate limit, an office-only admin directory.
fn site_config() -> String {
    format!(
        r#"real_ip = {{ from = ["127.0.0.1"] }}

[[location]]
path = "/"
static = {{ root = "{SITE}" }}
try_files = ["$uri", "$uri/", "/index.html"]
headers = {{ "X-Frame-Options" = "DENY", always = true }}
error_pages = {{ 404 = "/errors/404.html", "4xx" = "/errors/40x.html" }}

[[location]]
path = "/assets/"
static = {{ root = "{SITE}/assets" }}
headers = {{ "Cache-Control" = "public, max-age=31536000" }}
error_pages = {{ root = "{SITE}/errors", 404 = "/50x.html" }}

[[location]]
path = "/api/"
static = {{ root = "{SITE}" }}
cors = {{ origins = ["https://app.example"], methods = ["GET", "PUT"], headers = ["content-type"], credentials = true, max_age = 600 }}
rate_limit = {{ per_minute = 1, burst = 3 }}

[[location]]
path = "/admin/"
static = {{ root = "{SITE}" }}
allow = ["10.0.0.0/8"]
deny = ["10.66.0.0/16"]
"#
    )
}

#[tokio::test]
async fn try_files_headers_and_error_pages_from_the_config() {
    let server = run("files.toml", &site_config(), false);
    let http = client();
    let route = http
        .get(url(&server, "/settings/profile"))
        .send()
        .await
        .expect("GET");
    assert_eq!(route.status(), 200);
    assert_eq!(header(&route, "x-frame-options"), "DENY");
    assert!(route.text().await.expect("body").contains("the app shell"));

    let asset = http
        .get(url(&server, "/assets/app.js"))
        .send()
        .await
        .expect("GET");
    assert_eq!(asset.status(), 200);
    assert_eq!(header(&asset, "cache-control"), "public, max-age=31536000");
    assert_eq!(
        header(&asset, "x-frame-options"),
        "DENY",
        "`/` covers it too"
    );

    let missing = http
        .get(url(&server, "/assets/gone.js"))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
    assert!(
        missing.headers().get("cache-control").is_none(),
        "not `always`"
    );
    assert_eq!(header(&missing, "x-frame-options"), "DENY", "`always`");
    assert_eq!(header(&missing, "content-type"), "text/html; charset=utf-8");
    let body = missing.text().await.expect("body");
    assert!(
        body.contains("custom server error page"),
        "the deeper page: {body}"
    );
}

#[tokio::test]
async fn cors_and_rate_limits_from_the_config() {
    let server = run("api.toml", &site_config(), false);
    let http = client();
    let preflight = http
        .request(reqwest::Method::OPTIONS, url(&server, "/api/index.html"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "PUT")
        .header("Access-Control-Request-Headers", "content-type")
        .header("X-Forwarded-For", "192.0.2.50")
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        "https://app.example"
    );
    assert_eq!(
        header(&preflight, "access-control-allow-methods"),
        "GET, PUT"
    );
    assert_eq!(header(&preflight, "access-control-max-age"), "600");
    assert_eq!(
        header(&preflight, "access-control-allow-credentials"),
        "true"
    );

    let get = |client: &'static str| {
        http.get(url(&server, "/api/index.html"))
            .header("Origin", "https://app.example")
            .header("X-Forwarded-For", client)
            .send()
    };
    let first = get("192.0.2.1").await.expect("GET");
    assert_eq!(first.status(), 200);
    assert_eq!(
        header(&first, "access-control-allow-origin"),
        "https://app.example"
    );
    let vary: Vec<&str> = (first.headers().get_all("vary").iter())
        .filter_map(|value| value.to_str().ok())
        .collect();
    assert!(vary.iter().any(|v| v.contains("origin")), "{vary:?}");
    for _ in 0..2 {
        assert_eq!(get("192.0.2.1").await.expect("GET").status(), 200);
    }
    let limited = get("192.0.2.1").await.expect("GET");
    assert_eq!(limited.status(), 429);
    let retry: u64 = header(&limited, "retry-after").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        get("192.0.2.2").await.expect("GET").status(),
        200,
        "another client"
    );
}

#[tokio::test]
async fn allow_and_deny_by_the_forwarded_address_from_the_config() {
    let server = run("admin.toml", &site_config(), false);
    let http = client();
    let from = |client: &'static str| {
        http.get(url(&server, "/admin/index.html"))
            .header("X-Forwarded-For", client)
            .send()
    };
    assert_eq!(from("10.1.2.3").await.expect("GET").status(), 200);
    let denied = from("10.66.1.1").await.expect("GET");
    assert_eq!(denied.status(), 403);
    assert_eq!(header(&denied, "x-frame-options"), "DENY");
    let page = denied.text().await.expect("body");
    assert!(page.contains("custom client error page"), "{page}");
    assert_eq!(from("192.0.2.1").await.expect("GET").status(), 403);
    let direct = http
        .get(url(&server, "/admin/index.html"))
        .send()
        .await
        .expect("GET");
    assert_eq!(direct.status(), 403, "127.0.0.1 is not in the office");
}

#[test]
fn proxy_protocol_and_the_per_address_cap_from_the_config() {
    let log = std::env::temp_dir().join(format!("front-proxied-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let config = format!(
        "listen = [{{ addr = \"127.0.0.1:0\", proxy_protocol = true }}]\n\n[limits]\nmax_connections_per_ip = 1\n\n[[location]]\npath = \"/\"\nstatic = {{ root = \"{SITE}\" }}\naccess_log = {{ file = \"{}\" }}\n",
        log.display()
    );
    let server = run("proxied.toml", &config, true);
    let request = "GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = server
        .raw_blocking(format!("PROXY TCP4 203.0.113.8 10.0.0.1 5000 80\r\n{request}").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let direct = server.raw_blocking(request.as_bytes());
    assert_eq!(direct, "", "no PROXY header: closed unanswered");

    // One connection per address: a second one from the same client is closed, one
    // from another client is served.
    let mut held = TcpStream::connect(server.addr()).expect("connect");
    // A kept-alive request answered on it: its header was read, its place taken.
    held.write_all(
        b"PROXY TCP4 203.0.113.9 10.0.0.1 5001 80\r\nGET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .expect("write");
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut answered = Vec::new();
    let mut chunk = [0; 1024];
    while !answered.ends_with(b"the app shell\n") {
        let read = held
            .read(&mut chunk)
            .expect("the held connection is answered");
        assert!(read > 0, "closed: {}", String::from_utf8_lossy(&answered));
        answered.extend_from_slice(&chunk[..read]);
    }
    let second = server
        .raw_blocking(format!("PROXY TCP4 203.0.113.9 10.0.0.1 5002 80\r\n{request}").as_bytes());
    assert_eq!(second, "", "a second connection from 203.0.113.9 is closed");
    let other = server
        .raw_blocking(format!("PROXY TCP4 203.0.113.10 10.0.0.1 5003 80\r\n{request}").as_bytes());
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
    drop(held);

    let mut logged = String::new();
    for _ in 0..250 {
        logged = std::fs::read_to_string(&log).unwrap_or_default();
        if logged.lines().count() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The log line follows the answer, so the held connection's may come after the next.
    let mut hosts: Vec<&str> = logged.lines().filter_map(|l| l.split(' ').next()).collect();
    hosts.sort_unstable();
    let mut expected = ["203.0.113.8", "203.0.113.9", "203.0.113.10"];
    expected.sort_unstable();
    assert_eq!(hosts, expected, "{logged}");
}

/// Runs the binary on `config` (written to a file called `name`), which it must
/// refuse: the file's path and what it printed.
fn refused(name: &str, config: &str) -> (String, String) {
    let file = write(&scratch(&format!("front-{name}")), "config.toml", config);
    let output = Command::new(BINARY)
        .arg("--config")
        .arg(&file)
        .output()
        .expect("run poco-httpd");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr).into_owned();
    (file.display().to_string(), message)
}

#[test]
fn a_bad_network_is_refused_naming_file_line_and_key() {
    let config = format!(
        "[[location]]\npath = \"/\"\nstatic = {{ root = \"{SITE}\" }}\ndeny = [\"10.0.0.0/33\"]\n"
    );
    let (file, message) = refused("bad-net", &config);
    assert!(
        message.contains(&format!("{file}:4: key `deny`"))
            && message.contains("\"10.0.0.0/33\" is not an IP address or network"),
        "{message}"
    );
}

#[test]
fn a_try_files_fallback_outside_the_location_is_refused() {
    // `/index.html` is not under `/app`: it could never be found in the app's root.
    let config = format!(
        "[[location]]\npath = \"/app\"\nstatic = {{ root = \"{SITE}\" }}\ntry_files = [\"$uri\", \"/index.html\"]\n"
    );
    let (file, message) = refused("try-outside", &config);
    assert!(
        message.contains(&format!("{file}:4: key `try_files`"))
            && message.contains("such as \"/app/index.html\""),
        "{message}"
    );
}

#[test]
fn a_cors_origin_with_a_path_is_refused() {
    let config = format!(
        "[[location]]\npath = \"/api\"\nstatic = {{ root = \"{SITE}\" }}\ncors = {{ origins = [\"https://app.example/app\"] }}\n"
    );
    let (file, message) = refused("cors-path", &config);
    assert!(
        message.contains(&format!("{file}:4: key `origins`"))
            && message.contains("\"https://app.example/app\" is not an origin"),
        "{message}"
    );
}
