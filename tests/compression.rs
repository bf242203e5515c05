//! Response compression: negotiation, what is compressed and what is left alone.

mod common;

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
use poco_httpd::handlers::{Compression, StaticFiles};
use poco_httpd::{Outcome, Request, Response, Server, ServerBuilder};
use tokio::io::AsyncReadExt;

fn text() -> String {
    "All work and no play makes Jack a dull boy.\n".repeat(100)
}

fn server() -> ServerBuilder {
    Server::builder()
        .pre("/", Compression::new())
        .content("/", |req: Request, res: Response| {
            let (content_type, body) = match req.path() {
                "/small" => ("text/plain", "tiny".to_owned()),
                "/image" => ("image/png", text()),
                "/encoded" => {
                    res.set_header("content-encoding", "br");
                    ("text/plain", text())
                }
                "/no-transform" => {
                    res.set_header("cache-control", "public, no-transform");
                    ("text/plain", text())
                }
                _ => ("text/plain; charset=utf-8", text()),
            };
            res.set_content_type(content_type);
            res.set_body(body);
            Outcome::Ok
        })
}

async fn get(server: &common::TestServer, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut request = common::client().get(server.url(path));
    if let Some(accept) = accept {
        request = request.header("accept-encoding", accept);
    }
    request.send().await.unwrap()
}

/// The body of `response`, decoded by its `Content-Encoding`.
async fn decoded(response: reqwest::Response) -> String {
    let coding = response
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    let data = response.bytes().await.unwrap();
    let mut out = String::new();
    match coding.as_deref() {
        None => out = String::from_utf8(data.to_vec()).unwrap(),
        Some("gzip") => GzipDecoder::new(&data[..])
            .read_to_string(&mut out)
            .await
            .map(drop)
            .unwrap(),
        Some("br") => BrotliDecoder::new(&data[..])
            .read_to_string(&mut out)
            .await
            .map(drop)
            .unwrap(),
        Some("zstd") => ZstdDecoder::new(&data[..])
            .read_to_string(&mut out)
            .await
            .map(drop)
            .unwrap(),
        Some(other) => panic!("unexpected coding {other}"),
    }
    out
}

fn encoding(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn text_is_compressed_with_the_coding_the_client_prefers() {
    let server = common::start(server()).await;
    for (accept, expected) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip;q=1.0, br;q=0.8", "gzip"),
    ] {
        let answer = get(&server, "/page", Some(accept)).await;
        assert_eq!(encoding(&answer), Some(expected), "{accept}");
        assert_eq!(answer.headers()["vary"], "accept-encoding");
        let length: usize = common::header(&answer, "content-length").parse().unwrap();
        assert!(length < text().len() / 5, "{accept}: {length} bytes");
        assert_eq!(decoded(answer).await, text(), "{accept}");
    }
    server.stop().await;
}

#[tokio::test]
async fn without_an_acceptable_coding_the_body_is_plain_and_vary_still_sent() {
    let server = common::start(server()).await;
    for accept in [None, Some("identity"), Some("gzip;q=0"), Some("deflate")] {
        let answer = get(&server, "/page", accept).await;
        assert_eq!(encoding(&answer), None, "{accept:?}");
        assert_eq!(answer.headers()["vary"], "accept-encoding");
        assert_eq!(answer.text().await.unwrap(), text());
    }
    server.stop().await;
}

#[tokio::test]
async fn small_bodies_binary_types_encoded_and_no_transform_answers_are_left_alone() {
    let server = common::start(server()).await;
    for path in ["/small", "/image", "/no-transform"] {
        let answer = get(&server, path, Some("gzip")).await;
        assert_eq!(encoding(&answer), None, "{path}");
    }
    let encoded = get(&server, "/encoded", Some("gzip")).await;
    assert_eq!(encoding(&encoded), Some("br"));
    assert_eq!(encoded.text().await.unwrap(), text());
    server.stop().await;
}

#[tokio::test]
async fn head_answers_carry_the_same_encoding_headers_and_no_body() {
    let server = common::start(server()).await;
    let answer = common::client()
        .head(server.url("/page"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(encoding(&answer), Some("gzip"));
    assert!(answer.bytes().await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn static_files_are_compressed_as_they_stream_and_ranges_stay_plain() {
    let dir = std::env::temp_dir().join(format!("poco-httpd-compress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = text().repeat(50);
    std::fs::write(dir.join("big.txt"), &big).unwrap();
    let server = common::start(
        Server::builder()
            .pre("/", Compression::new())
            .content("/", StaticFiles::new("/", &dir)),
    )
    .await;
    let answer = get(&server, "/big.txt", Some("br")).await;
    assert_eq!(encoding(&answer), Some("br"));
    assert!(answer.headers().get("accept-ranges").is_none());
    let tag = common::header(&answer, "etag");
    assert!(tag.starts_with("W/\""), "{tag}");
    assert_eq!(decoded(answer).await, big);
    let range = common::client()
        .get(server.url("/big.txt"))
        .header("accept-encoding", "br")
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(encoding(&range), None);
    assert_eq!(range.text().await.unwrap(), &big[..10]);
    server.stop().await;
}

#[tokio::test]
async fn event_streams_are_never_compressed() {
    let server = common::start(Server::builder().pre("/", Compression::new()).content(
        "/",
        |_req: Request, res: Response| {
            res.start_event_stream();
            let _ = res.send(text());
            res.close();
            Outcome::Ok
        },
    ))
    .await;
    let answer = get(&server, "/events", Some("gzip")).await;
    assert_eq!(encoding(&answer), None);
    assert_eq!(answer.text().await.unwrap(), text());
    server.stop().await;
}
