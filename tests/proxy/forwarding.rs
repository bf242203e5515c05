//! What goes upstream and what comes back: method, path, query, headers, body;
//! hop-by-hop headers removed; forwarding headers added; `Host`; HTTP/2 clients.

use poco_httpd::handlers::HostHeader;
use poco_httpd::http::HeaderValue;
use poco_httpd::{Request, Response, Server};

use crate::common;
use crate::{echo_upstream, echoed, proxy_server, proxy_to};

#[tokio::test]
async fn method_path_query_and_body_reach_the_upstream_unchanged() {
    let upstream = echo_upstream().await;
    let proxy = proxy_server(proxy_to(&[upstream.addr.to_string()]), |b| b).await;
    let client = common::client();
    let response = client
        .put(proxy.url("/a%20b/c?x=1&y=%2F"))
        .body("the body")
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 200);
    assert_eq!(
        common::header(&response, "x-upstream"),
        upstream.addr.to_string()
    );
    let echo = response.text().await.expect("body");
    assert!(echo.starts_with("PUT /a%20b/c?x=1&y=%2F\n"), "{echo}");
    assert!(echo.ends_with("\n\nthe body"), "{echo}");
    proxy.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_and_forwarding_headers_added() {
    let upstream = echo_upstream().await;
    let proxy = proxy_server(
        proxy_to(&[upstream.addr.to_string()]).forwarded(true),
        |b| b,
    )
    .await;
    let request = "GET /x HTTP/1.1\r\nHost: site.example\r\nConnection: keep-alive, x-private\r\n\
        X-Private: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eDp5\r\n\
        X-Forwarded-For: 10.1.2.3\r\nX-Kept: yes\r\n\r\n";
    let mut stream = proxy.connect(request.as_bytes()).await;
    let answer = common::read_response(&mut stream).await;
    let echo = answer.split("\r\n\r\n").nth(1).expect("a body");
    for gone in [
        "x-private",
        "keep-alive",
        "te",
        "proxy-authorization",
        "connection",
    ] {
        assert_eq!(echoed(echo, gone), None, "{gone} in {echo}");
    }
    assert_eq!(echoed(echo, "x-kept"), Some("yes"));
    assert_eq!(echoed(echo, "host"), Some("site.example"));
    assert_eq!(echoed(echo, "x-forwarded-for"), Some("10.1.2.3, 127.0.0.1"));
    assert_eq!(echoed(echo, "x-forwarded-proto"), Some("http"));
    assert_eq!(echoed(echo, "x-forwarded-host"), Some("site.example"));
    assert_eq!(
        echoed(echo, "forwarded"),
        Some("for=127.0.0.1;proto=http;host=site.example")
    );
    assert_eq!(echoed(echo, "via"), Some("1.1 poco-httpd"));
    let head = answer
        .split("\r\n\r\n")
        .next()
        .expect("head")
        .to_ascii_lowercase();
    assert!(head.contains("\r\nvia: 1.1 poco-httpd"), "{head}");
    proxy.stop().await;
    upstream.stop().await;
}

/// The upstream's own hop-by-hop headers stay between it and the proxy.
#[tokio::test]
async fn the_upstreams_hop_by_hop_headers_do_not_reach_the_client() {
    let upstream = common::start(
        Server::builder().content("/", |_req: Request, res: Response| {
            res.set_header("connection", "x-internal");
            res.set_header("x-internal", "no");
            res.set_header("keep-alive", "timeout=99");
            res.set_header("x-public", "yes");
            res.ok("hi")
        }),
    )
    .await;
    let proxy = proxy_server(proxy_to(&[upstream.addr.to_string()]), |b| b).await;
    let response = proxy.get_with("/", &[]).await;
    assert_eq!(common::header(&response, "x-public"), "yes");
    assert!(response.headers().get("x-internal").is_none());
    assert!(response.headers().get("keep-alive").is_none());
    assert_eq!(response.text().await.expect("body"), "hi");
    proxy.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn host_is_passed_or_rewritten_as_configured() {
    let upstream = echo_upstream().await;
    let to = [upstream.addr.to_string()];
    let cases = [
        (HostHeader::Pass, "front.example".to_owned()),
        (HostHeader::Upstream, upstream.addr.to_string()),
        (
            HostHeader::Fixed(HeaderValue::from_static("app.internal")),
            "app.internal".to_owned(),
        ),
    ];
    for (host, expected) in cases {
        let proxy = proxy_server(proxy_to(&to).host_header(host.clone()), |b| b).await;
        let response = proxy.get_with("/", &[("host", "front.example")]).await;
        let echo = response.text().await.expect("body");
        assert_eq!(echoed(&echo, "host"), Some(expected.as_str()), "{host:?}");
        proxy.stop().await;
    }
    upstream.stop().await;
}

#[tokio::test]
async fn strip_prefix_makes_the_path_relative_to_the_location() {
    let upstream = echo_upstream().await;
    let proxy = proxy_to(&[upstream.addr.to_string()]).strip_prefix("/app");
    let server = common::start(
        Server::builder()
            .content("/app", proxy.clone())
            .content("/app/", proxy),
    )
    .await;
    let client = common::client();
    for (path, expected) in [
        ("/app/users?id=7", "GET /users?id=7\n"),
        ("/app", "GET /\n"),
        ("/app/", "GET /\n"),
    ] {
        let echo = server.text(&client, path).await;
        assert!(echo.starts_with(expected), "{path}: {echo}");
    }
    server.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn an_http2_client_reaches_an_http1_upstream() {
    let upstream = echo_upstream().await;
    let proxy = proxy_server(proxy_to(&[upstream.addr.to_string()]), |b| b).await;
    let response = common::h2_client()
        .post(proxy.url("/h2?q=1"))
        .body("over h2")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.version(), poco_httpd::http::Version::HTTP_2);
    let echo = response.text().await.expect("body");
    assert!(echo.starts_with("POST /h2?q=1\n"), "{echo}");
    assert_eq!(echoed(&echo, "host"), Some(proxy.addr.to_string().as_str()));
    assert_eq!(echoed(&echo, "via"), Some("2 poco-httpd"));
    assert!(echo.ends_with("\n\nover h2"), "{echo}");
    proxy.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn an_http2_upstream_is_spoken_to_when_configured() {
    let upstream = common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            res.ok(format!("{:?}", req.version()))
        }),
    )
    .await;
    let proxy = proxy_server(proxy_to(&[upstream.addr.to_string()]).http2(true), |b| b).await;
    let client = common::client();
    assert_eq!(proxy.get(&client, "/").await, (200, "HTTP/2.0".to_owned()));
    proxy.stop().await;
    upstream.stop().await;
}

/// Python's `http.server` as an independent upstream (HTTP/1.0 answers, closes).
#[tokio::test]
async fn python_http_server_files_come_through() {
    let dir = std::env::temp_dir().join(format!("proxy-python-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("hello.txt"), "hello from python\n").expect("file");
    let port = crate::dead_address().await.port();
    let mut python = tokio::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 must be installed (apt-get install python3)");
    let upstream = format!("127.0.0.1:{port}");
    crate::wait_for_listener(&upstream).await;
    let proxy = proxy_server(proxy_to(&[upstream]), |b| b).await;
    let client = common::client();
    let response = client
        .get(proxy.url("/hello.txt"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    assert!(common::header(&response, "server").contains("Python"));
    assert_eq!(response.text().await.expect("body"), "hello from python\n");
    let (status, _) = proxy.get(&client, "/missing.txt").await;
    assert_eq!(status, 404);
    proxy.stop().await;
    let _ = python.kill().await;
}

/// A `HEAD` answer keeps the upstream's `Content-Length` and has no body.
#[tokio::test]
async fn a_head_request_gets_the_upstreams_length_and_no_body() {
    let upstream =
        common::start(Server::builder().content("/", common::answer("twelve bytes"))).await;
    let proxy = proxy_server(proxy_to(&[upstream.addr.to_string()]), |b| b).await;
    let answer = common::raw(
        proxy.addr,
        b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let raw = common::Raw::parse(&answer);
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-length"), Some("12"));
    assert_eq!(raw.body, "");
    proxy.stop().await;
    upstream.stop().await;
}

/// An HTTP/2 client over TLS: the upstream hears `X-Forwarded-Proto: https`.
#[tokio::test]
async fn an_http2_client_over_tls_is_forwarded_as_https() {
    let upstream = echo_upstream().await;
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = std::env::temp_dir().join(format!("proxy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("key");
    let proxy = common::start(
        Server::builder()
            .tls(&cert, &key)
            .content("/", proxy_to(&[upstream.addr.to_string()])),
    )
    .await;
    let root = reqwest::Certificate::from_pem(generated.cert.pem().as_bytes()).expect("root");
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .resolve("localhost", proxy.addr)
        .timeout(common::PATIENCE)
        .build()
        .expect("client");
    let url = format!("https://localhost:{}/secure", proxy.addr.port());
    let response = client.get(url).send().await.expect("GET");
    assert_eq!(response.version(), poco_httpd::http::Version::HTTP_2);
    let echo = response.text().await.expect("body");
    assert_eq!(echoed(&echo, "x-forwarded-proto"), Some("https"));
    assert_eq!(
        echoed(&echo, "host"),
        Some(format!("localhost:{}", proxy.addr.port()).as_str())
    );
    proxy.stop().await;
    upstream.stop().await;
}

/// curl asks `Expect: 100-continue` before a large upload: it gets its `100`, and
/// the upstream gets the body without the expectation.
#[tokio::test]
async fn curl_uploads_with_expect_100_continue_through_the_proxy() {
    let upstream = common::start(Server::builder().max_body_size(8 << 20).content(
        "/",
        |req: Request, res: Response| async move {
            let expect = req
                .header_text("expect")
                .unwrap_or_else(|| "none".to_owned());
            let body = req.body().await.unwrap_or_default();
            res.ok(format!("{} bytes, expect {expect}", body.len()))
        },
    ))
    .await;
    let proxy = common::start(
        Server::builder()
            .max_body_size(8 << 20)
            .content("/", proxy_to(&[upstream.addr.to_string()])),
    )
    .await;
    let file = std::env::temp_dir().join(format!("proxy-upload-{}", std::process::id()));
    std::fs::write(&file, vec![b'u'; 3 << 20]).expect("upload file");
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "-H", "Expect: 100-continue", "--data-binary"])
        .arg(format!("@{}", file.display()))
        .arg(proxy.url("/upload"))
        .output();
    let output = tokio::time::timeout(common::PATIENCE, output)
        .await
        .expect("curl finishes")
        .expect("curl must be installed (apt-get install curl)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{} bytes, expect none", 3 << 20)
    );
    let _ = std::fs::remove_file(&file);
    proxy.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn a_small_answer_arriving_in_parts_reaches_the_client_whole() {
    // A declared length under the collecting limit, sent in three writes with pauses.
    let upstream = crate::raw_upstream(|mut stream| async move {
        use tokio::io::AsyncWriteExt;
        crate::read_head(&mut stream).await;
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n";
        stream.write_all(head.as_bytes()).await.expect("head");
        for part in ["first", "-then", "-last"] {
            stream.write_all(part.as_bytes()).await.expect("part");
            stream.flush().await.expect("flush");
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
    })
    .await;
    let proxy =
        common::start(Server::builder().content("/", proxy_to(&[upstream.to_string()]))).await;
    let answer = common::raw(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let raw = common::Raw::parse(&answer);
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-length"), Some("15"));
    assert_eq!(raw.body, "first-then-last");
    proxy.stop().await;
}
