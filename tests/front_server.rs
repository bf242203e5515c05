//! The handlers a front server needs, through the library on real sockets: response
//! headers, CORS, error pages, `try_files`, access control by address, the client's
//! address behind proxies (headers and the PROXY protocol), rate limits and the
//! per-address connection cap.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{PATIENCE, Raw, client, start};
use poco_httpd::handlers::{
    AccessControl, AccessLog, BasicAuth, Cors, ErrorPages, RateLimit, RealIp, ResponseHeaders,
    StaticFiles, TryFiles,
};
use poco_httpd::http::{HeaderName, Method, StatusCode};
use poco_httpd::{Outcome, Request, Response, Server, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/site");

/// Answers with the client's address as the server sees it.
fn client_addr(req: Request, res: Response) -> Outcome {
    res.ok(req.connection().client_addr().to_string())
}

/// Sends `request` on a new connection and reads until it closes. A reset counts as
/// closing: a server that closes a socket with unread bytes in it resets it.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may already have closed (and reset) it, when it refuses at once.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes");
    match read {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(error) => panic!("read: {error}"),
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn get_closing(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n").into_bytes()
}

#[tokio::test]
async fn response_headers_reach_errors_only_when_always() {
    let cache = ResponseHeaders::new()
        .header("Cache-Control", "max-age=60")
        .expect("valid");
    let always = ResponseHeaders::new()
        .header("X-Frame-Options", "DENY")
        .expect("valid")
        .always(true);
    let server = start(
        Server::builder()
            .pre("/", cache)
            .pre("/", always)
            .content("/", StaticFiles::new("/", SITE)),
    )
    .await;
    let http = client();
    let found = server.response(&http, "/assets/app.js").await;
    assert_eq!(found.status(), 200);
    assert_eq!(common::header(&found, "cache-control"), "max-age=60");
    assert_eq!(common::header(&found, "x-frame-options"), "DENY");
    let missing = server.response(&http, "/nothing").await;
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("cache-control").is_none());
    assert_eq!(common::header(&missing, "x-frame-options"), "DENY");
    server.stop().await;
}

fn cors_server() -> ServerBuilder {
    let cors = Cors::new()
        .allow_origin("https://app.example")
        .allow_methods([Method::GET, Method::PUT])
        .allow_headers(["content-type"])
        .expect("valid")
        .allow_credentials(true)
        .max_age(600);
    Server::builder()
        .pre("/api/", cors)
        .content("/", StaticFiles::new("/", SITE))
}

#[tokio::test]
async fn a_cors_preflight_is_answered_instead_of_405() {
    let server = start(cors_server()).await;
    let http = client();
    let preflight = |origin: &'static str, method: &'static str| {
        http.request(Method::OPTIONS, server.url("/api/index.html"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", "Content-Type")
            .send()
    };
    let allowed = preflight("https://app.example", "PUT")
        .await
        .expect("OPTIONS");
    assert_eq!(allowed.status(), 204);
    let header = |name| common::header(&allowed, name);
    assert_eq!(header("access-control-allow-origin"), "https://app.example");
    assert_eq!(header("access-control-allow-methods"), "GET, PUT");
    assert_eq!(header("access-control-allow-headers"), "content-type");
    assert_eq!(header("access-control-allow-credentials"), "true");
    assert_eq!(header("access-control-max-age"), "600");
    assert!(header("vary").contains("origin"), "{}", header("vary"));

    let other_origin = preflight("https://evil.example", "PUT")
        .await
        .expect("OPTIONS");
    assert_eq!(other_origin.status(), 204);
    assert!(
        other_origin
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let other_method = preflight("https://app.example", "DELETE")
        .await
        .expect("OPTIONS");
    assert!(
        other_method
            .headers()
            .get("access-control-allow-methods")
            .is_none()
    );

    // Outside the CORS directory, OPTIONS is still the static files' 405.
    let outside = http
        .request(Method::OPTIONS, server.url("/index.html"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "PUT")
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(outside.status(), 405);
    server.stop().await;
}

#[tokio::test]
async fn a_wildcard_method_or_header_allows_what_the_preflight_asks_for() {
    let cors = Cors::new()
        .allow_origin("https://app.example")
        .allow_methods([Method::from_bytes(b"*").expect("a token")])
        .allow_headers(["*"])
        .expect("valid")
        .allow_credentials(true);
    let server = start(Server::builder().pre("/", cors).content("/", "ok\n")).await;
    let preflight = |origin: &'static str| {
        client()
            .request(Method::OPTIONS, server.url("/"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PATCH")
            .header("Access-Control-Request-Headers", "x-trace-id, content-type")
            .send()
    };
    let allowed = preflight("https://app.example").await.expect("OPTIONS");
    assert_eq!(allowed.status(), 204);
    // Named, not `*`: with credentials, browsers read `*` as a name.
    assert_eq!(
        common::header(&allowed, "access-control-allow-methods"),
        "PATCH"
    );
    assert_eq!(
        common::header(&allowed, "access-control-allow-headers"),
        "x-trace-id, content-type"
    );
    let other = preflight("https://evil.example").await.expect("OPTIONS");
    assert!(
        other
            .headers()
            .get("access-control-allow-methods")
            .is_none()
    );
    server.stop().await;
}

#[tokio::test]
async fn any_origin_with_credentials_is_named_not_starred_and_varies() {
    let open = Cors::new().allow_origin("*");
    let with_credentials = Cors::new().allow_origin("*").allow_credentials(true);
    let server = start(
        Server::builder()
            .pre("/open/", open)
            .pre("/creds/", with_credentials)
            .content("/", "ok\n"),
    )
    .await;
    let from = |path: &str| {
        client()
            .get(server.url(path))
            .header("Origin", "https://any.example")
            .send()
    };
    let open = from("/open/x").await.expect("GET");
    assert_eq!(common::header(&open, "access-control-allow-origin"), "*");
    assert!(
        open.headers().get("vary").is_none(),
        "the same for every origin"
    );
    let creds = from("/creds/x").await.expect("GET");
    assert_eq!(
        common::header(&creds, "access-control-allow-origin"),
        "https://any.example"
    );
    assert_eq!(
        common::header(&creds, "access-control-allow-credentials"),
        "true"
    );
    assert_eq!(common::header(&creds, "vary"), "origin");
    server.stop().await;
}

#[tokio::test]
async fn cors_answers_name_the_allowed_origin_and_vary_by_origin() {
    let server = start(cors_server()).await;
    let http = client();
    let from = |origin: &'static str| {
        http.get(server.url("/api/missing"))
            .header("Origin", origin)
            .send()
    };
    let allowed = from("https://app.example").await.expect("GET");
    assert_eq!(allowed.status(), 404, "errors carry CORS headers too");
    assert_eq!(
        common::header(&allowed, "access-control-allow-origin"),
        "https://app.example"
    );
    assert_eq!(common::header(&allowed, "vary"), "origin");
    let refused = from("https://evil.example").await.expect("GET");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(common::header(&refused, "vary"), "origin");
    server.stop().await;
}

/// Basic authentication letting in `alice` (password `pw`) only.
fn alice_only() -> BasicAuth {
    let hash = bcrypt::hash("pw", 4).expect("hash");
    BasicAuth::from_htpasswd_text(&format!("alice:{hash}\n")).expect("htpasswd")
}

fn body_of_404() -> String {
    std::fs::read_to_string(format!("{SITE}/errors/404.html")).expect("the page")
}

#[tokio::test]
async fn error_pages_keep_the_status_and_the_deepest_directory_wins() {
    let errors = format!("{SITE}/errors");
    let site_pages = ErrorPages::new(&errors)
        .page("404", "/404.html")
        .and_then(|pages| pages.page("5xx", "/50x.html"))
        .expect("valid");
    let docs_pages = ErrorPages::new(&errors)
        .page("4xx", "/50x.html")
        .expect("valid");
    let fail = |_req: Request, res: Response| {
        res.set_status(StatusCode::BAD_GATEWAY);
        res.ok("upstream down\n")
    };
    let server = start(
        Server::builder()
            .pre("/", site_pages)
            .pre("/docs/", docs_pages)
            .pre(
                "/private/",
                AccessControl::new().deny("all").expect("valid"),
            )
            .pre("/docs/secret/", alice_only())
            .content("/", StaticFiles::new("/", SITE))
            .content("/broken", fail),
    )
    .await;
    let http = client();
    let (status, body) = server.get(&http, "/no/such/page").await;
    assert_eq!(status, 404);
    assert!(body.contains("custom not found page"), "{body}");
    let page = server.response(&http, "/no/such/page").await;
    assert_eq!(
        common::header(&page, "content-type"),
        "text/html; charset=utf-8"
    );
    let (status, body) = server.get(&http, "/broken").await;
    assert_eq!(status, 502);
    assert!(body.contains("custom server error page"), "{body}");
    let (status, body) = server.get(&http, "/docs/missing").await;
    assert_eq!(status, 404);
    assert!(
        body.contains("custom server error page"),
        "the deeper page: {body}"
    );
    let login = server.response(&http, "/docs/secret/x").await;
    assert_eq!(login.status(), 401);
    assert!(
        common::header(&login, "www-authenticate").starts_with("Basic realm="),
        "the page keeps the challenge"
    );
    let body = login.text().await.expect("body");
    assert!(body.contains("custom server error page"), "{body}");
    let (status, body) = server.get(&http, "/private/x").await;
    assert_eq!(
        status, 403,
        "a refusal by a Pre handler gets no page without one"
    );
    assert_eq!(body, "403 Forbidden\n");
    let (status, body) = server.get(&http, "/index.html").await;
    assert_eq!((status, body.contains("the app shell")), (200, true));
    let head = server
        .raw_answer(b"HEAD /no/such/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(head.status, 404);
    assert_eq!(
        head.header("content-length"),
        Some(body_of_404().len().to_string().as_str()),
        "HEAD says the page's length"
    );
    assert_eq!(head.body, "");
    let beyond = server
        .raw_answer(
            b"GET /docs/index.html HTTP/1.1\r\nHost: x\r\nRange: bytes=99999-\r\nConnection: close\r\n\r\n",
        )
        .await;
    assert_eq!(beyond.status, 416);
    let length = std::fs::metadata(format!("{SITE}/docs/index.html"))
        .expect("file")
        .len();
    assert_eq!(
        beyond.header("content-range"),
        Some(format!("bytes */{length}").as_str()),
        "a 416 keeps the file's length"
    );
    assert!(
        beyond.body.contains("custom server error page"),
        "/docs/'s 4xx page: {}",
        beyond.body
    );
    server.stop().await;
}

#[tokio::test]
async fn try_files_serves_the_file_the_directory_or_the_fallback() {
    let spa = TryFiles::new(
        StaticFiles::new("/", SITE),
        ["$uri", "$uri/", "/index.html"],
    )
    .expect("valid");
    let strict =
        TryFiles::new(StaticFiles::new("/strict/", SITE), ["$uri", "=410"]).expect("valid");
    let server = start(
        Server::builder()
            .content("/", spa)
            .content("/strict/", strict),
    )
    .await;
    let http = client();
    let (status, body) = server.get(&http, "/assets/app.js").await;
    assert_eq!((status, body.as_str()), (200, "console.log(\"app\");\n"));
    let (status, body) = server.get(&http, "/docs/").await;
    assert_eq!((status, body.contains("docs index")), (200, true));
    for route in ["/users/42/settings", "/docs/nothing-here"] {
        let (status, body) = server.get(&http, route).await;
        assert_eq!(status, 200, "{route}");
        assert!(body.contains("the app shell"), "{route}: {body}");
    }
    let (status, _) = server.get(&http, "/strict/assets/app.js").await;
    assert_eq!(status, 200);
    let (status, body) = server.get(&http, "/strict/nothing").await;
    assert_eq!((status, body.as_str()), (410, "410 Gone\n"));
    server.stop().await;
}

#[tokio::test]
async fn access_control_refuses_by_the_forwarded_client_address() {
    let real_ip = RealIp::new().trust("127.0.0.1").expect("valid");
    let office = AccessControl::new().allow("10.0.0.0/8").expect("valid");
    let server = start(
        Server::builder()
            .trans(real_ip)
            .pre("/office/", office)
            .content("/", client_addr),
    )
    .await;
    let http = client();
    let as_client = |path: &str, forwarded: &'static str| {
        http.get(server.url(path))
            .header("X-Forwarded-For", forwarded)
            .send()
    };
    let inside = as_client("/office/", "10.1.2.3").await.expect("GET");
    assert_eq!(inside.status(), 200);
    assert_eq!(inside.text().await.expect("body"), "10.1.2.3:0");
    let outside = as_client("/office/", "192.0.2.9").await.expect("GET");
    assert_eq!(outside.status(), 403);
    let (status, _) = server.get(&http, "/office/").await;
    assert_eq!(status, 403, "127.0.0.1 itself is not in 10/8");
    let (_, addr) = server.get(&http, "/").await;
    assert!(
        addr.starts_with("127.0.0.1:"),
        "no header: the peer, {addr}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_forwarded_client_lasts_one_request_of_a_kept_alive_connection() {
    let real_ip = RealIp::new().trust("127.0.0.1").expect("valid");
    let server = start(Server::builder().trans(real_ip).content("/", client_addr)).await;
    // One proxy connection carries many clients' requests.
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let local = stream.local_addr().expect("local").to_string();
    for (forwarded, client) in [
        ("X-Forwarded-For: 192.0.2.1\r\n", "192.0.2.1:0"),
        ("", local.as_str()),
        ("X-Forwarded-For: 198.51.100.2\r\n", "198.51.100.2:0"),
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: x\r\n{forwarded}\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let answer = common::read_response(&mut stream).await;
        assert!(answer.ends_with(client), "{forwarded:?}: {answer}");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_untrusted_peer_cannot_claim_another_address() {
    let real_ip = RealIp::new()
        .trust("10.0.0.0/8")
        .expect("valid")
        .header(HeaderName::from_static("forwarded"));
    let server = start(Server::builder().trans(real_ip).content("/", client_addr)).await;
    let answer = Raw::parse(
        &exchange(
            server.addr,
            &get_closing("/", "Forwarded: for=10.9.9.9\r\n"),
        )
        .await,
    );
    assert!(answer.body.starts_with("127.0.0.1:"), "{}", answer.body);
    server.stop().await;
}

#[tokio::test]
async fn a_trusted_forwarded_header_names_the_client_with_its_port() {
    let real_ip = RealIp::new()
        .trust("127.0.0.1")
        .expect("valid")
        .header(HeaderName::from_static("forwarded"));
    let server = start(Server::builder().trans(real_ip).content("/", client_addr)).await;
    let forwarded = "Forwarded: for=\"[2001:db8:cafe::17]:4711\";proto=https, for=127.0.0.1\r\n";
    let answer = Raw::parse(&exchange(server.addr, &get_closing("/", forwarded)).await);
    assert_eq!(answer.body, "[2001:db8:cafe::17]:4711");
    server.stop().await;
}

#[tokio::test]
async fn the_access_log_names_the_client_address() {
    let log_path = std::env::temp_dir().join(format!("front-log-{}", std::process::id()));
    let _ = std::fs::remove_file(&log_path);
    let log = AccessLog::file(&log_path).expect("log file");
    let server = start(
        Server::builder()
            .trans(RealIp::new().trust("127.0.0.1").expect("valid"))
            .post("/", log)
            .content("/", "hi\n"),
    )
    .await;
    let answer = exchange(
        server.addr,
        &get_closing("/", "X-Forwarded-For: 203.0.113.5\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let line = common::poll(
        || "an access log line".to_owned(),
        || {
            let text = std::fs::read_to_string(&log_path).ok()?;
            text.lines().next().map(str::to_owned)
        },
    )
    .await;
    assert!(line.starts_with("203.0.113.5 - - ["), "{line}");
    server.stop().await;
}

fn proxied() -> ServerBuilder {
    Server::builder()
        .proxy_protocol(true)
        .header_read_timeout(Duration::from_secs(5))
        .content("/", client_addr)
}

#[tokio::test]
async fn the_proxy_protocol_v1_from_curl_names_the_client() {
    let server = start(proxied()).await;
    let url = server.url("/");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["--silent", "--show-error", "--haproxy-protocol", &url])
            .output()
    })
    .await
    .expect("join")
    .expect("curl is installed (apt-get install curl)");
    assert!(output.status.success(), "{output:?}");
    // curl sends its own connection's addresses: the client is 127.0.0.1 with
    // curl's port, which the server learns from the header rather than the socket.
    let body = String::from_utf8_lossy(&output.stdout);
    assert!(body.starts_with("127.0.0.1:"), "{body}");
    let v1 = exchange(
        server.addr,
        &[
            b"PROXY TCP4 198.51.100.7 10.0.0.1 40000 80\r\n".as_slice(),
            &get_closing("/", ""),
        ]
        .concat(),
    )
    .await;
    assert_eq!(Raw::parse(&v1).body, "198.51.100.7:40000");
    server.stop().await;
}

#[tokio::test]
async fn the_proxy_protocol_v2_names_the_client_and_a_missing_header_closes() {
    let server = start(proxied()).await;
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[0x21, 0x21, 0, 36]);
    let source: std::net::Ipv6Addr = "2001:db8::7".parse().expect("ip");
    let destination: std::net::Ipv6Addr = "2001:db8::1".parse().expect("ip");
    v2.extend_from_slice(&source.octets());
    v2.extend_from_slice(&destination.octets());
    v2.extend_from_slice(&[0x9c, 0x40, 0, 80]);
    v2.extend_from_slice(&get_closing("/", ""));
    let answer = exchange(server.addr, &v2).await;
    assert_eq!(Raw::parse(&answer).body, "[2001:db8::7]:40000");
    let direct = exchange(server.addr, &get_closing("/", "")).await;
    assert_eq!(
        direct, "",
        "a connection without the header is closed unanswered"
    );
    server.stop().await;
}

/// A self-signed certificate for `localhost` in PEM files under a directory of its
/// own (`name` keeps tests apart): the certificate's and the key's paths.
fn self_signed(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let dir = std::env::temp_dir().join(format!("front-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("key");
    (cert_path, key_path)
}

#[tokio::test]
async fn the_proxy_protocol_before_tls() {
    let (cert_path, key_path) = self_signed("tls");
    let server = start(proxied().tls(&cert_path, &key_path)).await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", server.addr.port());
    let cacert = cert_path.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--haproxy-protocol",
                "--resolve",
                &resolve,
            ])
            .arg("--cacert")
            .arg(&cacert)
            .arg(&url)
            .output()
    })
    .await
    .expect("join")
    .expect("curl is installed (apt-get install curl)");
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("127.0.0.1:"));
    server.stop().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_client() {
    let limit = RateLimit::per_minute(1).burst(2);
    let server = start(
        Server::builder()
            .trans(RealIp::new().trust("127.0.0.1").expect("valid"))
            .pre("/api/", limit)
            .content("/", "ok\n"),
    )
    .await;
    let http = client();
    let from = |client: &'static str| {
        http.get(server.url("/api/x"))
            .header("X-Forwarded-For", client)
            .send()
    };
    for _ in 0..2 {
        assert_eq!(from("192.0.2.1").await.expect("GET").status(), 200);
    }
    let limited = from("192.0.2.1").await.expect("GET");
    assert_eq!(limited.status(), 429);
    let retry: u64 = common::header(&limited, "retry-after")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(from("192.0.2.2").await.expect("GET").status(), 200);
    let (status, _) = server.get(&http, "/other").await;
    assert_eq!(status, 200, "another directory is not limited");
    server.stop().await;
}

#[tokio::test]
async fn rate_limit_memory_stays_bounded_under_many_client_addresses() {
    let limit = RateLimit::per_minute(1).max_addresses(200);
    let server = start(
        Server::builder()
            .trans(RealIp::new().trust("127.0.0.1").expect("valid"))
            .pre("/", limit.clone())
            .content("/", "ok\n"),
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let mut most = 0;
    for n in 0..2_000u32 {
        let client = std::net::Ipv4Addr::from_bits(0xc633_0000 + n);
        let request = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {client}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let answer = common::read_response(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{n}: {answer}");
        most = most.max(limit.tracked_addresses());
    }
    assert!(most <= 200, "tracked {most} addresses");
    assert!(most >= 100, "the table was used: {most}");
    server.stop().await;
}

#[tokio::test]
async fn a_client_address_holds_at_most_max_connections_per_ip() {
    let server = start(
        Server::builder()
            .max_connections_per_ip(2)
            .content("/", "ok\n"),
    )
    .await;
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let answer = common::read_response(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        open.push(stream);
    }
    let third = exchange(server.addr, request).await;
    assert_eq!(third, "", "the third connection is closed unanswered");
    for stream in &mut open {
        stream.write_all(request).await.expect("write");
        let answer = common::read_response(stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "the first two go on: {answer}"
        );
    }
    drop(open.pop());
    let mut answered = false;
    for _ in 0..100 {
        let reply = exchange(server.addr, &get_closing("/", "")).await;
        if reply.starts_with("HTTP/1.1 200") {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "a closed connection gives its place back");
    server.stop().await;
}

#[tokio::test]
async fn the_connection_cap_counts_the_address_the_proxy_protocol_names() {
    let server = start(proxied().max_connections_per_ip(1)).await;
    let mut open = Vec::new();
    for client in ["198.51.100.1", "198.51.100.2"] {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let header = format!("PROXY TCP4 {client} 10.0.0.1 40000 80\r\n");
        stream.write_all(header.as_bytes()).await.expect("write");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let answer = common::read_response(&mut stream).await;
        assert!(answer.ends_with(&format!("{client}:40000")), "{answer}");
        open.push(stream);
    }
    let same = exchange(
        server.addr,
        &[
            b"PROXY TCP4 198.51.100.1 10.0.0.1 40001 80\r\n".as_slice(),
            &get_closing("/", ""),
        ]
        .concat(),
    )
    .await;
    assert_eq!(same, "", "a second connection from 198.51.100.1 is closed");
    drop(open);
    server.stop().await;
}

#[tokio::test]
async fn a_partial_proxy_header_is_dropped_at_the_header_read_timeout() {
    let server = start(proxied().header_read_timeout(Duration::from_secs(1))).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"PROXY TCP4 198.51.100.7 10.0.0.1 ")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes a connection whose header never ends");
    assert!(
        read.is_ok_and(|_| answer.is_empty()),
        "closed unanswered: {answer:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_failed_tls_handshake_gives_its_place_back() {
    let (cert_path, key_path) = self_signed("cap");
    let server = start(
        Server::builder()
            .max_connections_per_ip(1)
            .tls(&cert_path, &key_path)
            .content("/", "ok\n"),
    )
    .await;
    for _ in 0..3 {
        let refused = exchange(server.addr, &get_closing("/", "")).await;
        assert!(!refused.starts_with("HTTP/1.1 200"), "{refused}");
    }
    let pem = std::fs::read(&cert_path).expect("cert");
    let https = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .resolve("localhost", server.addr)
        .timeout(PATIENCE)
        .build()
        .expect("client");
    let url = format!("https://localhost:{}/", server.addr.port());
    // The failed handshakes' places come back as their tasks end, not at once.
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(answer) = https.get(&url).send().await {
            answered = Some(answer.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answered, Some(reqwest::StatusCode::OK));
    server.stop().await;
}
