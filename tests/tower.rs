//! The tower bridge: tower services mounted as Content handlers of a directory.

mod common;

use std::convert::Infallible;

use http_body_util::Full;
use poco_httpd::handlers::TowerService;
use poco_httpd::{Outcome, Request, Response, Server};

#[tokio::test]
async fn a_mounted_service_sees_the_path_relative_to_its_directory() {
    let echo = tower::service_fn(|request: poco_httpd::http::Request<_>| async move {
        let _: &poco_httpd::RequestBody = request.body();
        let text = format!("{} {}", request.method(), request.uri());
        Ok::<_, Infallible>(poco_httpd::http::Response::new(Full::new(
            bytes::Bytes::from(text),
        )))
    });
    let server = common::start(
        Server::builder()
            .content("/", |_req: Request, res: Response| {
                res.set_body("outside");
                Outcome::Ok
            })
            .content("/api/", TowerService::new("/api/", echo)),
    )
    .await;
    let client = common::client();
    for (path, expected) in [
        ("/api/users/7?x=1", "GET /users/7?x=1"),
        ("/api/", "GET /"),
        ("/api/a/../b%20c", "GET /b%20c"),
        ("/other", "outside"),
    ] {
        let body = server.text(&client, path).await;
        assert_eq!(body, expected, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn tower_http_serve_dir_serves_files_through_the_bridge() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let files = tower_http::services::ServeDir::new(dir);
    let server =
        common::start(Server::builder().content("/files/", TowerService::new("/files/", files)))
            .await;
    let client = common::client();
    let text = server.response(&client, "/files/hello.txt").await;
    assert_eq!(text.status(), 200);
    assert_eq!(text.headers()["content-type"], "text/plain");
    let expected = std::fs::read_to_string(format!("{dir}/hello.txt")).unwrap();
    assert_eq!(text.text().await.unwrap(), expected);
    let gif = server.response(&client, "/files/dot.gif").await;
    assert_eq!(
        &gif.bytes().await.unwrap()[..],
        include_bytes!("fixtures/dot.gif")
    );
    let missing = server.response(&client, "/files/nope.txt").await;
    assert_eq!(missing.status(), 404);
    let escape = server
        .raw(b"GET /files/..%2f..%2fCargo.toml HTTP/1.0\r\n\r\n")
        .await;
    assert!(escape.starts_with("HTTP/1.0 400"), "{escape}");
    server.stop().await;
}
