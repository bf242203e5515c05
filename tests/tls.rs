//! HTTPS: certificates from PEM files, ALPN choosing HTTP/2 or HTTP/1.1, the TLS facts
//! on `Connection`, and `Secure` session cookies on TLS.

mod common;

use std::path::PathBuf;

use poco_httpd::session::{MemoryStore, Session, Sessions};
use poco_httpd::{Error, Outcome, Request, Response, Server, ServerBuilder};

/// A self-signed certificate for `localhost`, written as PEM files for this test.
struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    pem: String,
}

fn certificate(name: &str) -> Certificate {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("poco-httpd-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = generated.cert.pem();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    Certificate { cert, key, pem }
}

fn tls_facts(req: Request, res: Response) -> Outcome {
    let tls = req.connection().tls().map(|tls| {
        format!(
            "{} {} {} {}",
            tls.version(),
            tls.server_name().unwrap_or("-"),
            tls.alpn().unwrap_or("-"),
            !tls.cipher_suite().is_empty()
        )
    });
    res.set_body(tls.unwrap_or_else(|| "plain".to_owned()));
    Outcome::Ok
}

async fn start(certificate: &Certificate, builder: ServerBuilder) -> common::TestServer {
    common::start(builder.tls(&certificate.cert, &certificate.key)).await
}

fn client(certificate: &Certificate, server: &common::TestServer) -> reqwest::ClientBuilder {
    let root = reqwest::Certificate::from_pem(certificate.pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .resolve("localhost", server.addr)
        .timeout(common::PATIENCE)
}

fn https(server: &common::TestServer, path: &str) -> String {
    format!("https://localhost:{}{path}", server.addr.port())
}

#[tokio::test]
async fn alpn_picks_http2_and_the_connection_tells_the_tls_facts() {
    let certificate = certificate("alpn");
    let server = start(&certificate, Server::builder().content("/", tls_facts)).await;
    let h2 = client(&certificate, &server).build().unwrap();
    let answer = h2.get(https(&server, "/")).send().await.unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);
    assert_eq!(answer.text().await.unwrap(), "TLSv1_3 localhost h2 true");
    let h1 = client(&certificate, &server).http1_only().build().unwrap();
    let answer = h1.get(https(&server, "/")).send().await.unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_11);
    assert_eq!(
        answer.text().await.unwrap(),
        "TLSv1_3 localhost http/1.1 true"
    );
    server.stop().await;
}

#[tokio::test]
async fn plain_http_and_garbage_on_the_tls_port_are_dropped_and_the_server_goes_on() {
    let certificate = certificate("garbage");
    let server = start(&certificate, Server::builder().content("/", tls_facts)).await;
    let plain = server.raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(!plain.contains("200"), "{plain}");
    let noise = server
        .raw(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 1, 2, 3])
        .await;
    assert!(!noise.contains("200"), "{noise}");
    let client = client(&certificate, &server).build().unwrap();
    let answer = client.get(https(&server, "/")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(server.stats.open_connections(), 1);
    server.stop().await;
}

#[test]
fn unusable_pem_files_are_refused_at_build_naming_the_file() {
    let certificate = certificate("bad");
    std::fs::write(&certificate.key, "not a key").unwrap();
    let error = Server::builder()
        .tls(&certificate.cert, &certificate.key)
        .content("/", tls_facts)
        .build()
        .expect_err("a bad key is refused");
    assert!(matches!(error, Error::Tls { .. }), "{error}");
    assert!(error.to_string().contains("key.pem"), "{error}");
    let missing = Server::builder()
        .tls("/no/such/cert.pem", &certificate.key)
        .content("/", tls_facts)
        .build()
        .expect_err("a missing file is refused");
    assert!(
        missing.to_string().contains("/no/such/cert.pem"),
        "{missing}"
    );
}

#[tokio::test]
async fn session_cookies_are_secure_on_tls_only() {
    let certificate = certificate("session");
    let app = || {
        Server::builder()
            .pre("/", Sessions::new(MemoryStore::new()))
            .content("/", |req: Request, res: Response| {
                let _ = Session::of(&req).map(|s| s.insert("seen", true));
                res.set_body("ok");
                Outcome::Ok
            })
    };
    let secure = start(&certificate, app()).await;
    let plain = common::start(app()).await;
    let over_tls = client(&certificate, &secure).build().unwrap();
    let answer = over_tls.get(https(&secure, "/")).send().await.unwrap();
    let cookie = common::header(&answer, "set-cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    let answer = plain.response(&common::client(), "/").await;
    let cookie = common::header(&answer, "set-cookie");
    assert!(!cookie.contains("Secure"), "{cookie}");
    secure.stop().await;
    plain.stop().await;
}

/// A client trusting only `certificate`; a new one makes a new handshake.
fn trusting(certificate: &Certificate, server: &common::TestServer) -> reqwest::Client {
    client(certificate, server).build().unwrap()
}

/// The status a GET of `url` gets from a client trusting only `certificate`, or `None`
/// when the handshake (or anything else) fails.
async fn status_trusting(
    certificate: &Certificate,
    server: &common::TestServer,
    url: &str,
) -> Option<u16> {
    let response = trusting(certificate, server).get(url).send().await;
    response.ok().map(|response| response.status().as_u16())
}

#[tokio::test]
async fn reload_certificate_presents_the_new_one_to_new_handshakes() {
    let (first, second) = (certificate("renew-first"), certificate("renew-second"));
    let server = start(&first, Server::builder().content("/", tls_facts)).await;
    let url = https(&server, "/");
    assert_eq!(status_trusting(&first, &server, &url).await, Some(200));
    assert_eq!(status_trusting(&second, &server, &url).await, None);

    server
        .reload
        .reload_certificate(&second.cert, &second.key)
        .unwrap();
    assert_eq!(status_trusting(&second, &server, &url).await, Some(200));
    assert_eq!(status_trusting(&first, &server, &url).await, None);

    let refused = server
        .reload
        .reload_certificate(&second.cert, "/no/such/key.pem");
    assert!(
        matches!(&refused, Err(Error::Tls { file, .. }) if file == "/no/such/key.pem"),
        "{refused:?}"
    );
    assert_eq!(status_trusting(&second, &server, &url).await, Some(200));
    server.stop().await;
}

#[tokio::test]
async fn a_reload_may_not_turn_tls_on_or_off_or_move_the_server() {
    let certificate = certificate("restart");
    let server = start(&certificate, Server::builder().content("/", tls_facts)).await;
    let plain = server
        .reload
        .reload(Server::builder().content("/", tls_facts));
    assert!(
        matches!(plain, Err(Error::NeedsRestart { setting: "tls", .. })),
        "{plain:?}"
    );
    let moved = server.reload.reload(
        Server::builder()
            .listen("127.0.0.1:1")
            .tls(&certificate.cert, &certificate.key)
            .content("/", tls_facts),
    );
    let message = moved
        .as_ref()
        .map_err(ToString::to_string)
        .expect_err("refused");
    assert!(message.contains("`listen`"), "{message}");
    let answer = trusting(&certificate, &server)
        .get(https(&server, "/"))
        .send()
        .await;
    assert_eq!(answer.unwrap().status(), 200, "still serving HTTPS");
    server.stop().await;
    let plain = common::start(Server::builder().content("/", tls_facts)).await;
    let on = plain
        .reload
        .reload_certificate(&certificate.cert, &certificate.key);
    assert!(
        matches!(on, Err(Error::NeedsRestart { setting: "tls", .. })),
        "{on:?}"
    );
    let answer = common::client().get(plain.url("/")).send().await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "plain");
    plain.stop().await;
}

#[tokio::test]
async fn the_url_of_a_request_over_tls_says_https_on_http1_and_http2() {
    let certificate = certificate("url");
    let url = |req: Request, res: Response| res.ok(req.url());
    let server = start(&certificate, Server::builder().content("/", url)).await;
    let expected = https(&server, "/p?q=1");
    let h1 = client(&certificate, &server).http1_only().build().unwrap();
    let answer = h1.get(&expected).send().await.unwrap();
    assert_eq!(answer.text().await.unwrap(), expected);
    let h2 = client(&certificate, &server).build().unwrap();
    let answer = h2.get(&expected).send().await.unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);
    assert_eq!(answer.text().await.unwrap(), expected);
    server.stop().await;
}
