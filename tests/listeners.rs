//! Several listeners in one process: IPv4 and IPv6, plain and TLS at once, a socket
//! given ready, and a plain listener redirecting to HTTPS — one set of sites, one
//! shutdown.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use common::{PATIENCE, Raw, fetch, raw};
use poco_httpd::{BoundServer, Error, Listener, Request, Response, Server, ServerBuilder};

/// Answers `scheme local-address`.
fn where_am_i(req: Request, res: Response) -> poco_httpd::Outcome {
    let scheme = if req.connection().tls().is_some() {
        "https"
    } else {
        "http"
    };
    res.ok(format!("{scheme} {}", req.connection().local_addr()))
}

async fn bind(builder: ServerBuilder) -> BoundServer {
    builder
        .build()
        .expect("a valid server")
        .bind()
        .await
        .expect("bound on loopback")
}

/// A self-signed certificate for `localhost` as PEM files, and its PEM text.
fn certificate(label: &str) -> (PathBuf, PathBuf, String) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let dir = std::env::temp_dir().join(format!("poco-listeners-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let pem = generated.cert.pem();
    std::fs::write(&cert, &pem).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    (cert, key, pem)
}

fn https_client(pem: &str, addr: SocketAddr) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(pem.as_bytes()).expect("a PEM certificate");
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .resolve("localhost", addr)
        .timeout(PATIENCE)
        .build()
        .expect("a client")
}

#[tokio::test]
async fn one_server_answers_on_ipv4_and_ipv6_loopback_with_shared_stats_and_one_shutdown() {
    let server = bind(
        Server::builder()
            .listen("127.0.0.1:0")
            .listen("[::1]:0")
            .content("/", where_am_i),
    )
    .await;
    let listeners = server.listeners();
    assert_eq!(listeners.len(), 2);
    let (v4, v6) = (listeners[0].local_addr(), listeners[1].local_addr());
    assert!(v4.is_ipv4() && v6.is_ipv6(), "{v4} {v6}");
    assert_eq!(
        server.local_addr(),
        v4,
        "local_addr is the first listener's"
    );
    let (shutdown, stats) = (server.shutdown_handle(), server.stats());
    let task = tokio::spawn(server.run());
    let client = common::client();
    for addr in [v4, v6] {
        let (status, body) = fetch(client.get(format!("http://{addr}/"))).await;
        assert_eq!((status, body), (200, format!("http {addr}")));
    }
    assert_eq!(stats.requests(), 2, "one server counts both");
    shutdown.shutdown();
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("run returns after shutdown")
        .expect("the server task");
    for addr in [v4, v6] {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} is closed"
        );
    }
}

#[tokio::test]
async fn plain_and_tls_listeners_serve_side_by_side() {
    let (cert, key, pem) = certificate("mixed");
    let server = bind(
        Server::builder()
            .tls(&cert, &key)
            .listener(Listener::new("127.0.0.1:0").tls(false))
            .listener(Listener::new("127.0.0.1:0"))
            .content("/", where_am_i),
    )
    .await;
    let listeners = server.listeners();
    assert!(!listeners[0].is_tls() && listeners[1].is_tls());
    let (plain, tls) = (listeners[0].local_addr(), listeners[1].local_addr());
    let shutdown = server.shutdown_handle();
    let task = tokio::spawn(server.run());
    let (_, body) = fetch(common::client().get(format!("http://{plain}/"))).await;
    assert_eq!(body, format!("http {plain}"));
    let client = https_client(&pem, tls);
    let url = format!("https://localhost:{}/", tls.port());
    let (_, body) = fetch(client.get(url)).await;
    assert_eq!(body, format!("https {tls}"));
    shutdown.shutdown();
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("stops")
        .expect("task");
}

#[tokio::test]
async fn a_redirecting_listener_sends_every_request_to_https_keeping_path_and_query() {
    let (cert, key, _) = certificate("redirect");
    let server = bind(
        Server::builder()
            .tls(&cert, &key)
            .listener(Listener::new("127.0.0.1:0").redirect_to_https())
            .listener(Listener::new("127.0.0.1:0"))
            .content("/", where_am_i),
    )
    .await;
    let listeners = server.listeners();
    assert!(listeners[0].redirects_to_https() && !listeners[0].is_tls());
    let (plain, tls_port) = (listeners[0].local_addr(), listeners[1].local_addr().port());
    let shutdown = server.shutdown_handle();
    let task = tokio::spawn(server.run());
    for (request, location) in [
        (
            "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: Example.org:8080\r\n",
            format!("https://Example.org:{tls_port}/a/b?x=1&y=%20"),
        ),
        (
            "POST /form HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0\r\n",
            format!("https://[::1]:{tls_port}/form"),
        ),
    ] {
        let request = format!("{request}Connection: close\r\n\r\n");
        let answer = Raw::parse(&raw(plain, request.as_bytes()).await);
        assert_eq!(answer.status, 308, "{request}");
        assert_eq!(answer.header("location"), Some(location.as_str()));
    }
    shutdown.shutdown();
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("stops")
        .expect("task");
}

#[tokio::test]
async fn a_socket_given_ready_is_served_as_it_is() {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a socket");
    let addr = socket.local_addr().expect("its address");
    let server = bind(
        Server::builder()
            .listener(Listener::from_std(socket))
            .content("/", where_am_i),
    )
    .await;
    assert_eq!(server.local_addr(), addr);
    let shutdown = server.shutdown_handle();
    let task = tokio::spawn(server.run());
    let (_, body) = fetch(common::client().get(format!("http://{addr}/"))).await;
    assert_eq!(body, format!("http {addr}"));
    shutdown.shutdown();
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("stops")
        .expect("task");
}

#[tokio::test]
async fn a_reload_naming_other_listeners_is_refused() {
    let app = || Server::builder().content("/", "hi");
    let server = bind(app().listen("127.0.0.1:0").listen("[::1]:0")).await;
    let reload = server.reload_handle();
    let same = app().listen("127.0.0.1:0").listen("[::1]:0");
    reload.reload(same).expect("the same listeners");
    let error = reload
        .reload(app().listen("127.0.0.1:0"))
        .expect_err("a listener less");
    assert!(
        matches!(
            error,
            Error::NeedsRestart {
                setting: "listen",
                ..
            }
        ),
        "{error}"
    );
    reload
        .reload(app())
        .expect("listeners not named are not compared");
}

#[test]
fn a_tls_listener_without_a_certificate_is_refused() {
    let error = Server::builder()
        .listener(Listener::new("127.0.0.1:0").tls(true))
        .content("/", "hi")
        .build()
        .expect_err("no certificate");
    assert!(
        matches!(error, Error::InvalidListener { .. })
            && error.to_string().contains("no certificate"),
        "{error}"
    );
}
