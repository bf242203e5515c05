//! What a request path maps to: the deepest Content handler, file keys against
//! directory keys, and the normalized path every phase sees.

use poco_httpd::Server;

use crate::common::{self, Events, TestServer};

/// Requests each path raw, on a fresh connection, and checks that it is answered
/// 200 and that exactly the handlers `expected` ran, in order — the last of them
/// the Content handler, whose entry is also the body.
async fn check(server: &TestServer, events: &Events, cases: &[(&str, &[&str])]) {
    for &(path, expected) in cases {
        events.clear();
        let answer = server.raw_get(path).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert_eq!(Some(&answer.body.as_str()), expected.last(), "{path}");
        assert_eq!(events.all(), expected, "{path}");
    }
}

#[tokio::test]
async fn the_deepest_content_handler_on_the_path_answers() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .content("/", events.answer("root"))
            .content("/a/", events.answer("a"))
            .content("/a/b/c/", events.answer("c"))
            .content("/a/b/c/d.txt", events.answer("d.txt")),
    )
    .await;
    // Exactly one Content handler runs each time.
    let cases: &[(&str, &[&str])] = &[
        ("/", &["root"]),
        ("/x.html", &["root"]),
        ("/a/", &["a"]),
        ("/a/x.html", &["a"]),
        // No handler on /a/b/: the next shallower one answers.
        ("/a/b/x.html", &["a"]),
        ("/a/b/c/", &["c"]),
        ("/a/b/c/x.html", &["c"]),
        ("/a/b/c/d.txt", &["d.txt"]),
        ("/a/b/c/d.txt.bak", &["c"]),
    ];
    check(&server, &events, cases).await;
    server.stop().await;
}

#[tokio::test]
async fn file_key_and_directory_key_of_the_same_name_never_match_each_other() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .pre("/honk", events.record("pre /honk"))
            .pre("/honk/", events.record("pre /honk/"))
            .content("/", events.answer("root"))
            .content("/honk", events.answer("file /honk"))
            .content("/honk/", events.answer("dir /honk/"))
            // Keys with no counterpart of the other kind.
            .pre("/dir-only/", events.record("pre /dir-only/"))
            .content("/dir-only/", events.answer("dir /dir-only/"))
            .pre("/file-only", events.record("pre /file-only"))
            .content("/file-only", events.answer("file /file-only")),
    )
    .await;
    let cases: &[(&str, &[&str])] = &[
        ("/honk", &["pre /honk", "file /honk"]),
        ("/honk/", &["pre /honk/", "dir /honk/"]),
        ("/honk/x", &["pre /honk/", "dir /honk/"]),
        ("/honk/deeper/y.txt", &["pre /honk/", "dir /honk/"]),
        ("/honky", &["root"]),
        ("/honk.txt", &["root"]),
        ("/dir-only", &["root"]),
        ("/dir-only/", &["pre /dir-only/", "dir /dir-only/"]),
        ("/file-only/", &["root"]),
        ("/file-only/x", &["root"]),
        ("/file-only", &["pre /file-only", "file /file-only"]),
    ];
    check(&server, &events, cases).await;
    server.stop().await;
}

#[tokio::test]
async fn requests_are_mapped_by_their_normalized_path() {
    let events = Events::default();
    // Logs and answers `label` and the path the handler saw.
    let tagged = |label: &'static str| {
        events.body_from(move |events, req| {
            let entry = format!("{label} {}", req.path());
            events.push(entry.clone());
            entry
        })
    };
    let server = common::start(
        Server::builder()
            .pre("/foo/", tagged("pre /foo/"))
            .pre("/secret/", tagged("pre /secret/"))
            .content("/", tagged("root"))
            .content("/foo/", tagged("foo"))
            .content("/secret/", tagged("secret")),
    )
    .await;
    let to_secret: &[&str] = &["pre /secret/ /secret/x", "secret /secret/x"];
    let to_foo: &[&str] = &["pre /foo/ /foo/x", "foo /foo/x"];
    let cases = [
        ("/foo/../secret/x", to_secret),
        ("/foo/%2e%2E/secret/x", to_secret),
        ("/%66oo/x", to_foo),
        ("//foo/./x", to_foo),
        ("/../../foo/x", to_foo),
    ];
    check(&server, &events, &cases).await;
    server.stop().await;
}

#[tokio::test]
async fn the_original_uri_keeps_the_raw_path_while_path_is_normalized() {
    let report = common::body_from(|req| {
        let (original, uri, path) = (req.original_uri(), req.uri(), req.path());
        format!("{original}|{uri}|{path}")
    });
    let builder = Server::builder().content("/", report);
    let answer = common::get_once(builder, "/foo/../secret/%78?q=%2F").await;
    assert_eq!(
        answer.body,
        "/foo/../secret/%78?q=%2F|/foo/../secret/%78?q=%2F|/secret/x"
    );
}

#[tokio::test]
async fn encoded_slash_and_nul_in_the_path_get_400_without_running_content() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .trans(events.record("trans"))
            .pre("/", events.record("pre"))
            .content("/", events.answer("content")),
    )
    .await;
    for raw_path in ["/a%2Fb", "/a%2fb", "/a%00b", "/dir%2F..%2Fsecret"] {
        let answer = server.raw_get(raw_path).await;
        assert_eq!(answer.status, 400, "{raw_path}: {answer:?}");
        assert!(!answer.body.contains("content"), "{raw_path}");
    }
    tokio::time::sleep(common::QUIET).await;
    assert!(
        !events.all().iter().any(|e| e == "content" || e == "pre"),
        "{:?}",
        events.all()
    );
    // The server still serves afterwards.
    assert_eq!(server.raw_get("/ok").await.body, "content");
    server.stop().await;
}
