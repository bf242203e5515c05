//! The ready-made server's virtual hosts: `[[site]]` blocks chosen by host name, each
//! with its own locations, headers and certificate (by SNI), the default site, and
//! SIGHUP reloading them.

#[path = "common/binary.rs"]
mod binary;
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use binary::{Binary, FIXTURES, addr_of, certificate, https_client, scratch, write};
use common::{Raw, raw};

/// `GET path` with `Host: host` over raw HTTP/1.1: status, `X-Site`, body.
async fn get(addr: SocketAddr, host: &str, path: &str) -> (u16, String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let answer = Raw::parse(&raw(addr, request.as_bytes()).await);
    let site = answer.header("x-site").unwrap_or("-").to_owned();
    (answer.status, site, answer.body)
}

/// A `[[site]]` for `hosts` redirecting `/` to `to`, with `X-Site: name`.
fn site(hosts: &str, name: &str, to: &str, extra: &str) -> String {
    format!(
        "[[site]]\nhosts = {hosts}\n{extra}[site.headers]\nX-Site = \"{name}\"\n[[site.location]]\npath = \"/\"\nredirect = {{ to = \"{to}\" }}\n"
    )
}

#[tokio::test]
async fn sites_are_chosen_by_host_with_their_own_locations_and_headers_and_reload_on_sighup() {
    let dir = scratch("sites");
    let top = format!(
        "listen = \"127.0.0.1:0\"\n[headers]\nX-Site = \"default\"\n[[location]]\npath = \"/files/\"\nstatic = {{ root = \"{FIXTURES}\" }}\n[[location]]\npath = \"/\"\nredirect = {{ to = \"/default\" }}\n"
    );
    let config = format!(
        "{top}{}{}",
        site("[\"example.test\"]", "example", "/example", ""),
        site("[\"*.example.test\"]", "subdomain", "/sub", "")
    );
    let file = write(&dir, "sites.toml", &config);
    let server = Binary::start(&["--config", file.to_str().expect("UTF-8")], 1);
    let addr = addr_of(&server.urls[0]);
    for (host, site, status) in [
        ("example.test", "example", 302),
        ("EXAMPLE.test:8080", "example", 302),
        ("www.example.test", "subdomain", 302),
        ("other.test", "default", 302),
    ] {
        let (got, header, _) = get(addr, host, "/").await;
        assert_eq!((got, header.as_str()), (status, site), "Host: {host}");
    }
    // The default site's /files/ is its own: example.test has no such location.
    assert_eq!(get(addr, "other.test", "/files/hello.txt").await.0, 200);
    let (status, header, _) = get(addr, "example.test", "/files/hello.txt").await;
    assert_eq!((status, header.as_str()), (302, "example"));

    let renamed = format!("{top}{}", site("[\"example.test\"]", "renamed", "/r", ""));
    std::fs::write(&file, renamed).expect("rewrite the config");
    server.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(addr, "example.test", "/").await.1 != "renamed" {
        assert!(Instant::now() < deadline, "the reload applies");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, header, _) = get(addr, "www.example.test", "/").await;
    assert_eq!(header, "default", "the wildcard site is gone");
    assert!(server.terminate().success());
}

#[tokio::test]
async fn a_site_marked_default_answers_unknown_hosts_and_its_own_and_limits_hold_on_every_site() {
    let dir = scratch("default-site");
    let config = format!(
        "listen = \"127.0.0.1:0\"\n[limits]\nmax_body_size = 10\n{}{}",
        site("[\"a.test\"]", "a", "/a", ""),
        site("[\"b.test\"]", "b", "/b", "default = true\n"),
    );
    let file = write(&dir, "default.toml", &config);
    let server = Binary::start(&["--config", file.to_str().expect("UTF-8")], 1);
    let addr = addr_of(&server.urls[0]);
    assert_eq!(get(addr, "a.test", "/").await.1, "a");
    assert_eq!(get(addr, "b.test", "/").await.1, "b");
    assert_eq!(get(addr, "unknown.test", "/").await.1, "b");
    // [limits] max_body_size holds on every site.
    for host in ["a.test", "b.test"] {
        let post = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 11\r\nConnection: close\r\n\r\n0123456789A"
        );
        assert_eq!(
            Raw::parse(&raw(addr, post.as_bytes()).await).status,
            413,
            "{host}"
        );
    }
    assert!(server.terminate().success());
}

// Several threads: the blocking `terminate` must not stop the client's connection
// tasks from answering the server's HTTP/2 GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_site_presents_its_own_certificate_by_sni() {
    let dir = scratch("sni");
    let (cert, key, default_pem) = certificate(&dir, "default", &["localhost"]);
    let (a_cert, a_key, a_pem) = certificate(&dir, "a", &["a.test"]);
    let a_tls = format!("[site.tls]\ncert = {a_cert:?}\nkey = {a_key:?}\n");
    let config = format!(
        "listen = \"127.0.0.1:0\"\n[tls]\ncert = {cert:?}\nkey = {key:?}\n[[location]]\npath = \"/\"\nredirect = {{ to = \"/default\" }}\n{}",
        site("[\"a.test\"]", "a", "/a", "")
            .replace("[site.headers]", &format!("{a_tls}[site.headers]")),
    );
    let file = write(&dir, "sni.toml", &config);
    let server = Binary::start(&["--config", file.to_str().expect("UTF-8")], 1);
    assert!(server.urls[0].starts_with("https://"), "{}", server.urls[0]);
    let addr = addr_of(&server.urls[0]);
    let roots = [default_pem.as_str(), a_pem.as_str()];
    let client = https_client(&roots, &["a.test", "localhost"], addr);
    // The client checks the certificate against the name it asked for.
    let a = client
        .get(format!("https://a.test:{}/", addr.port()))
        .send()
        .await
        .expect("a.test's certificate");
    assert_eq!(a.headers()["x-site"], "a");
    let default = client
        .get(format!("https://localhost:{}/", addr.port()))
        .send()
        .await
        .expect("the default certificate");
    assert_eq!(default.headers()["location"], "/default");
    let only_default = https_client(&[default_pem.as_str()], &["a.test"], addr);
    let refused = only_default
        .get(format!("https://a.test:{}/", addr.port()))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a.test did not get the default certificate"
    );
    drop((client, only_default));
    assert!(server.terminate().success());
}
