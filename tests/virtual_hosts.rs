//! Virtual hosts: a request runs with the site its host name chooses (exact names,
//! `*.` wildcards, case and port ignored, the default site otherwise), each site with
//! its own handlers, headers and certificate, chosen by SNI during the handshake.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use common::{PATIENCE, fetch, raw};
use poco_httpd::{Error, Request, Response, Server, ServerBuilder};

/// A site answering `name` at `/` and `name/deep` at `/deep/`, with `X-Site: name`.
fn site(name: &'static str) -> ServerBuilder {
    Server::builder()
        .header("X-Site", name)
        .content("/", name)
        .content("/deep/", move |_req: Request, res: Response| {
            res.ok(format!("{name}/deep"))
        })
}

fn three_sites() -> ServerBuilder {
    site("default")
        .virtual_host(["example.org"], site("example"))
        .virtual_host(["*.example.org"], site("subdomains"))
        .virtual_host(["www.example.org", "other.test"], site("www"))
}

/// The body and `X-Site` of `GET path` with `Host: host`, over raw HTTP/1.1.
async fn answer_for(addr: SocketAddr, host: &str, path: &str) -> (String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let answer = common::Raw::parse(&raw(addr, request.as_bytes()).await);
    (
        answer.body.clone(),
        answer.header("x-site").unwrap_or("-").to_owned(),
    )
}

#[tokio::test]
async fn the_host_name_chooses_the_site_exact_before_wildcard_case_and_port_ignored() {
    let server = common::start(three_sites()).await;
    for (host, site) in [
        ("example.org", "example"),
        ("EXAMPLE.org:8080", "example"),
        ("example.org.", "example"),
        ("a.example.org", "subdomains"),
        ("a.b.Example.ORG", "subdomains"),
        ("www.example.org", "www"),
        ("other.test:1", "www"),
        ("example.net", "default"),
        ("127.0.0.1", "default"),
    ] {
        let (body, header) = answer_for(server.addr, host, "/").await;
        assert_eq!(
            (body.as_str(), header.as_str()),
            (site, site),
            "Host: {host}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn each_site_keeps_its_own_directory_map() {
    let server = common::start(three_sites()).await;
    let (body, _) = answer_for(server.addr, "example.org", "/deep/x").await;
    assert_eq!(body, "example/deep");
    let (body, _) = answer_for(server.addr, "nowhere.test", "/deep/x").await;
    assert_eq!(body, "default/deep");
    server.stop().await;
}

#[tokio::test]
async fn http2_chooses_the_site_by_its_authority() {
    let server = common::start(three_sites()).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .resolve("www.example.org", server.addr)
        .build()
        .expect("a client");
    let url = format!("http://www.example.org:{}/", server.addr.port());
    let (status, body) = fetch(client.get(url)).await;
    assert_eq!((status, body.as_str()), (200, "www"));
    server.stop().await;
}

#[tokio::test]
async fn a_reload_replaces_the_virtual_hosts() {
    let server = common::start(three_sites()).await;
    let (body, _) = answer_for(server.addr, "example.org", "/").await;
    assert_eq!(body, "example");
    let fewer = site("default").virtual_host(["example.org"], site("renamed"));
    server.reload.reload(fewer).expect("reloaded");
    let (body, _) = answer_for(server.addr, "example.org", "/").await;
    assert_eq!(body, "renamed");
    let (body, _) = answer_for(server.addr, "a.example.org", "/").await;
    assert_eq!(body, "default", "the wildcard site is gone");
    server.stop().await;
}

#[test]
fn bad_virtual_hosts_are_refused_saying_why() {
    let refusal = |builder: ServerBuilder| match builder.build() {
        Err(error @ Error::InvalidVirtualHost { .. }) => error.to_string(),
        other => panic!("expected InvalidVirtualHost, got {other:?}"),
    };
    let error = refusal(site("d").virtual_host(["example.org:80"], site("x")));
    assert!(
        error.contains("\"example.org:80\": a host name has no port"),
        "{error}"
    );
    let error = refusal(
        site("d")
            .virtual_host(["a.test"], site("x"))
            .virtual_host(["A.test"], site("y")),
    );
    assert!(error.contains("named by another virtual host"), "{error}");
    let error = refusal(site("d").virtual_host(["a.test"], site("x").listen("127.0.0.1:0")));
    assert!(error.contains("sets listeners"), "{error}");
    let error = refusal(site("d").virtual_host(["a.test"], site("x").max_connections(3)));
    assert!(error.contains("sets limits"), "{error}");
    let error = refusal(site("d").virtual_host(Vec::<String>::new(), site("x")));
    assert!(error.contains("names no host"), "{error}");
    let no_content = site("d").virtual_host(["a.test"], Server::builder());
    assert!(matches!(no_content.build(), Err(Error::NoContentHandler)));
}

/// A self-signed certificate for `names`, as PEM files, and its PEM text.
fn certificate(label: &str, names: &[&str]) -> (PathBuf, PathBuf, String) {
    let names = names
        .iter()
        .map(|name| (*name).to_owned())
        .collect::<Vec<_>>();
    let generated = rcgen::generate_simple_self_signed(names).expect("a certificate");
    let dir = std::env::temp_dir().join(format!("poco-vhost-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let pem = generated.cert.pem();
    std::fs::write(&cert, &pem).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    (cert, key, pem)
}

/// GET `https://host:port/` trusting only `roots`: the body, or the error text.
async fn https_get(addr: SocketAddr, host: &str, roots: &[&str]) -> Result<String, String> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .resolve(host, addr)
        .timeout(PATIENCE);
    for pem in roots {
        let root = reqwest::Certificate::from_pem(pem.as_bytes()).expect("a PEM certificate");
        builder = builder.add_root_certificate(root);
    }
    let client = builder.build().expect("a client");
    let url = format!("https://{host}:{}/", addr.port());
    match client.get(url).send().await {
        Ok(response) => Ok(response.text().await.expect("a body")),
        Err(error) => Err(format!("{error:?}")),
    }
}

#[tokio::test]
async fn the_certificate_is_chosen_by_sni_with_the_default_sites_for_other_names() {
    let (default_cert, default_key, default_pem) = certificate("default", &["localhost"]);
    let (a_cert, a_key, a_pem) = certificate("a", &["a.test"]);
    let (b_cert, b_key, b_pem) = certificate("b", &["b.test", "x.b.test"]);
    let builder = site("default")
        .tls(&default_cert, &default_key)
        .virtual_host(["a.test"], site("a").tls(&a_cert, &a_key))
        .virtual_host(["b.test", "*.b.test"], site("b").tls(&b_cert, &b_key));
    let server = common::start(builder).await;
    let all = [default_pem.as_str(), a_pem.as_str(), b_pem.as_str()];
    // A client trusting all three verifies the name against what it was given, so
    // each success means the right certificate was chosen.
    assert_eq!(https_get(server.addr, "a.test", &all).await, Ok("a".into()));
    assert_eq!(https_get(server.addr, "b.test", &all).await, Ok("b".into()));
    assert_eq!(
        https_get(server.addr, "x.b.test", &all).await,
        Ok("b".into())
    );
    assert_eq!(
        https_get(server.addr, "localhost", &all).await,
        Ok("default".into())
    );
    // Trusting only a.test's certificate, b.test's handshake fails: it got b's.
    let refused = https_get(server.addr, "b.test", &[a_pem.as_str()]).await;
    assert!(refused.is_err(), "{refused:?}");
    server.stop().await;
}

#[tokio::test]
async fn without_a_default_certificate_unknown_names_fail_the_handshake_only() {
    let (a_cert, a_key, a_pem) = certificate("only-a", &["a.test"]);
    let builder = site("default").virtual_host(["a.test"], site("a").tls(&a_cert, &a_key));
    let server = common::start(builder).await;
    assert_eq!(
        https_get(server.addr, "a.test", &[a_pem.as_str()]).await,
        Ok("a".into())
    );
    let unknown = https_get(server.addr, "localhost", &[a_pem.as_str()]).await;
    assert!(unknown.is_err(), "{unknown:?}");
    assert_eq!(
        https_get(server.addr, "a.test", &[a_pem.as_str()]).await,
        Ok("a".into()),
        "the server goes on"
    );
    server.stop().await;
}
