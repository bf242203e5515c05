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

/// Starts a server with a Pre handler logging `pre KEY` on each of `pre_keys`, and
/// a Content handler logging and answering `content KEY` on each of `content_keys`.
async fn keyed(events: &Events, pre_keys: &[&str], content_keys: &[&str]) -> TestServer {
    let mut builder = Server::builder();
    for key in pre_keys {
        builder = builder.pre(key, events.record(&format!("pre {key}")));
    }
    for key in content_keys {
        builder = builder.content(key, events.answer(&format!("content {key}")));
    }
    common::start(builder).await
}

#[tokio::test]
async fn the_deepest_content_handler_on_the_path_answers() {
    let events = Events::default();
    let server = keyed(&events, &[], &["/", "/a/", "/a/b/c/", "/a/b/c/d.txt"]).await;
    // Exactly one Content handler runs each time.
    let cases: &[(&str, &[&str])] = &[
        ("/", &["content /"]),
        ("/x.html", &["content /"]),
        ("/a/", &["content /a/"]),
        ("/a/x.html", &["content /a/"]),
        // No handler on /a/b/: the next shallower one answers.
        ("/a/b/x.html", &["content /a/"]),
        ("/a/b/c/", &["content /a/b/c/"]),
        ("/a/b/c/x.html", &["content /a/b/c/"]),
        ("/a/b/c/d.txt", &["content /a/b/c/d.txt"]),
        ("/a/b/c/d.txt.bak", &["content /a/b/c/"]),
    ];
    check(&server, &events, cases).await;
    server.stop().await;
}

#[tokio::test]
async fn file_key_and_directory_key_of_the_same_name_never_match_each_other() {
    let events = Events::default();
    // `/honk` and `/honk/` both; then keys with no counterpart of the other kind.
    let keys = ["/honk", "/honk/", "/dir-only/", "/file-only"];
    let server = keyed(&events, &keys, &[&["/"], &keys[..]].concat()).await;
    let cases: &[(&str, &[&str])] = &[
        ("/honk", &["pre /honk", "content /honk"]),
        ("/honk/", &["pre /honk/", "content /honk/"]),
        ("/honk/x", &["pre /honk/", "content /honk/"]),
        ("/honk/deeper/y.txt", &["pre /honk/", "content /honk/"]),
        ("/honky", &["content /"]),
        ("/honk.txt", &["content /"]),
        ("/dir-only", &["content /"]),
        ("/dir-only/", &["pre /dir-only/", "content /dir-only/"]),
        ("/file-only/", &["content /"]),
        ("/file-only/x", &["content /"]),
        ("/file-only", &["pre /file-only", "content /file-only"]),
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
