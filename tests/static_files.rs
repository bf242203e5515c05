//! Static files: validators, ranges, the directory listing, the root's walls.

mod common;

use poco_httpd::Server;
use poco_httpd::handlers::StaticFiles;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const HELLO: &str = "Hello from a plain-text file.\nSecond line.\n";

/// A root with `inside.txt`, and `escape.txt`, a symlink to a file outside the root.
fn root_with_escape(name: &str) -> std::path::PathBuf {
    let base =
        std::env::temp_dir().join(format!("poco-httpd-static-{name}-{}", std::process::id()));
    let root = base.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("inside.txt"), "inside").unwrap();
    std::fs::write(base.join("secret.txt"), "outside the root").unwrap();
    let link = root.join("escape.txt");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(base.join("secret.txt"), &link).unwrap();
    root
}

#[tokio::test]
async fn static_files_carry_an_etag_and_answer_304_when_it_matches() {
    let root = root_with_escape("etag");
    let server =
        common::start(Server::builder().content("/files/", StaticFiles::new("/files/", &root)))
            .await;
    let client = common::client();
    let first = server.response(&client, "/files/inside.txt").await;
    let tag = common::header(&first, "etag");
    assert!(tag.starts_with('"'), "{tag}");
    assert_eq!(first.text().await.unwrap(), "inside");
    let again = server
        .get_with("/files/inside.txt", &[("if-none-match", &tag)])
        .await;
    assert_eq!(again.status(), 304);
    assert_eq!(again.text().await.unwrap(), "");
    let other = server
        .get_with("/files/inside.txt", &[("if-none-match", "\"nope\"")])
        .await;
    assert_eq!(other.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn symlinks_out_of_the_static_root_are_refused_unless_allowed() {
    let root = root_with_escape("symlink");
    let strict = common::start(Server::builder().content("/", StaticFiles::new("/", &root))).await;
    let lenient = common::start(
        Server::builder().content("/", StaticFiles::new("/", &root).follow_symlinks_out(true)),
    )
    .await;
    let client = common::client();
    let refused = strict.response(&client, "/escape.txt").await;
    assert_eq!(refused.status(), 404);
    assert!(!refused.text().await.unwrap().contains("outside"));
    for attempt in [
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/..\\secret.txt",
        "/inside.txt%00",
    ] {
        let answer = strict
            .raw(format!("GET {attempt} HTTP/1.0\r\n\r\n").as_bytes())
            .await;
        assert!(!answer.contains("outside the root"), "{attempt}: {answer}");
        assert!(answer.starts_with("HTTP/1.0 4"), "{attempt}: {answer}");
    }
    let followed = lenient.response(&client, "/escape.txt").await;
    assert_eq!(followed.text().await.unwrap(), "outside the root");
    strict.stop().await;
    lenient.stop().await;
}

/// GETs `/hello.txt` from `server` asking for `range`.
async fn hello_range(server: &common::TestServer, range: &str) -> reqwest::Response {
    server.get_with("/hello.txt", &[("range", range)]).await
}

fn fixtures_server() -> poco_httpd::ServerBuilder {
    Server::builder().content("/", StaticFiles::new("/", FIXTURES))
}

#[tokio::test]
async fn a_single_range_gets_206_with_its_content_range() {
    let server = common::start(fixtures_server()).await;
    let answer = hello_range(&server, "bytes=6-9").await;
    assert_eq!(answer.status(), 206);
    assert_eq!(answer.headers()["content-range"], "bytes 6-9/43");
    assert_eq!(answer.headers()["content-length"], "4");
    assert_eq!(answer.headers()["content-type"], "text/plain");
    assert_eq!(answer.text().await.unwrap(), &HELLO[6..10]);
    let suffix = hello_range(&server, "bytes=-5").await;
    assert_eq!(suffix.text().await.unwrap(), &HELLO[38..]);
    server.stop().await;
}

#[tokio::test]
async fn several_ranges_get_a_multipart_byteranges_body() {
    let server = common::start(fixtures_server()).await;
    let answer = hello_range(&server, "bytes=0-4, 30-35").await;
    assert_eq!(answer.status(), 206);
    let content_type = common::header(&answer, "content-type");
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("{content_type}"))
        .to_owned();
    let declared: usize = common::header(&answer, "content-length").parse().unwrap();
    let body = answer.text().await.unwrap();
    assert_eq!(body.len(), declared);
    let expected = format!(
        "--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-4/43\r\n\r\n{}\
         \r\n--{boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes 30-35/43\r\n\r\n{}\
         \r\n--{boundary}--\r\n",
        &HELLO[0..5],
        &HELLO[30..36]
    );
    assert_eq!(body, expected);
    server.stop().await;
}

#[tokio::test]
async fn unsatisfiable_ranges_get_416_and_malformed_ones_the_whole_file() {
    let server = common::start(fixtures_server()).await;
    let beyond = hello_range(&server, "bytes=43-").await;
    assert_eq!(beyond.status(), 416);
    assert_eq!(beyond.headers()["content-range"], "bytes */43");
    let malformed = hello_range(&server, "bytes=9-3").await;
    assert_eq!(malformed.status(), 200);
    assert_eq!(malformed.text().await.unwrap(), HELLO);
    server.stop().await;
}

#[tokio::test]
async fn if_range_sends_the_range_only_while_the_file_is_unchanged() {
    let server = common::start(fixtures_server()).await;
    let whole = server.get_with("/hello.txt", &[]).await;
    let tag = common::header(&whole, "etag");
    let modified = common::header(&whole, "last-modified");
    for validator in [tag.as_str(), modified.as_str()] {
        let current = server
            .get_with(
                "/hello.txt",
                &[("range", "bytes=0-4"), ("if-range", validator)],
            )
            .await;
        assert_eq!(current.status(), 206, "{validator}");
        assert_eq!(current.text().await.unwrap(), "Hello");
    }
    let stale = server
        .get_with(
            "/hello.txt",
            &[("range", "bytes=0-4"), ("if-range", "\"old\"")],
        )
        .await;
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.text().await.unwrap(), HELLO);
    server.stop().await;
}

#[tokio::test]
async fn precompressed_siblings_are_served_when_accepted() {
    let dir = std::env::temp_dir().join(format!("poco-httpd-precompressed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("page.txt"), "plain").unwrap();
    std::fs::write(dir.join("page.txt.br"), "pretend brotli").unwrap();
    let server = common::start(Server::builder().content("/", StaticFiles::new("/", &dir))).await;
    let encoded = server
        .get_with("/page.txt", &[("accept-encoding", "br")])
        .await;
    assert_eq!(encoded.headers()["content-encoding"], "br");
    assert_eq!(encoded.text().await.unwrap(), "pretend brotli");
    let plain = server
        .get_with("/page.txt", &[("accept-encoding", "identity")])
        .await;
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.text().await.unwrap(), "plain");
    server.stop().await;
}

#[tokio::test]
async fn the_directory_listing_escapes_names_and_is_off_by_default() {
    let dir = std::env::temp_dir().join(format!("poco-httpd-listing-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(dir.join("docs/<img src=x onerror=alert(1)>.txt"), "x").unwrap();
    std::fs::write(dir.join("docs/a b.txt"), "spaced").unwrap();
    let listing = common::start(Server::builder().content(
        "/files/",
        StaticFiles::new("/files/", &dir).directory_listing(true),
    ))
    .await;
    let plain =
        common::start(Server::builder().content("/files/", StaticFiles::new("/files/", &dir)))
            .await;
    let page = listing.get_with("/files/docs/", &[]).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains(">&lt;img src=x onerror=alert(1)&gt;.txt</a>"),
        "{html}"
    );
    assert!(html.contains("href=\"./a%20b.txt\""), "{html}");
    let followed = listing.get_with("/files/docs/a%20b.txt", &[]).await;
    assert_eq!(followed.text().await.unwrap(), "spaced");
    assert_eq!(plain.get_with("/files/docs/", &[]).await.status(), 404);
    listing.stop().await;
    plain.stop().await;
}

#[tokio::test]
async fn a_directory_without_its_slash_is_redirected_under_the_mount_prefix() {
    let root = root_with_escape("slash");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let files = StaticFiles::new("/files", &root);
    let server = common::start(
        Server::builder()
            .content("/files", files.clone())
            .content("/files/", files),
    )
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, expected) in [("/files", "/files/"), ("/files/sub?x=1", "/files/sub/?x=1")] {
        let answer = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 301, "{path}");
        assert_eq!(answer.headers()["location"], expected, "{path}");
    }
    let file = client
        .get(server.url("/files/inside.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(file.text().await.unwrap(), "inside");
    server.stop().await;
}

/// A root holding what a working directory does: `.env`, `.git/config`, a dot file in a
/// subdirectory, an ACME challenge under `.well-known/` (with a dot file beside it),
/// `visible.txt`, `alias.txt` (a symlink inside the root) and `escape.txt` (a symlink
/// out of it).
fn working_directory(name: &str) -> std::path::PathBuf {
    let root = root_with_escape(name);
    for dir in [".git", "sub", ".well-known/acme-challenge"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for (file, text) in [
        (".env", "SECRET=1"),
        (".git/config", "[core]"),
        ("sub/.htpasswd", "alice:x"),
        (".well-known/acme-challenge/token", "challenge"),
        (".well-known/.hidden", "hidden"),
        ("visible.txt", "visible"),
    ] {
        std::fs::write(root.join(file), text).unwrap();
    }
    let alias = root.join("alias.txt");
    let _ = std::fs::remove_file(&alias);
    std::os::unix::fs::symlink(root.join("visible.txt"), &alias).unwrap();
    root
}

#[tokio::test]
async fn hidden_files_are_refused_unless_allowed_but_well_known_is_served() {
    let root = working_directory("hidden");
    let strict = common::start(Server::builder().content("/", StaticFiles::new("/", &root))).await;
    let open = common::start(
        Server::builder().content("/", StaticFiles::new("/", &root).hidden_files(true)),
    )
    .await;
    let status = |server: &common::TestServer, path: &str| {
        let url = server.url(path);
        async move { common::client().get(url).send().await.unwrap().status() }
    };
    for path in [
        "/.env",
        "/%2eenv",
        "/.git/config",
        "/.git/",
        "/sub/.htpasswd",
        "/sub/../.env",
        "/.well-known/.hidden",
    ] {
        assert_eq!(status(&strict, path).await, 404, "{path}");
    }
    assert_eq!(
        status(&strict, "/.well-known/acme-challenge/token").await,
        200
    );
    assert_eq!(status(&strict, "/visible.txt").await, 200);
    for path in [
        "/.env",
        "/.git/config",
        "/sub/.htpasswd",
        "/.well-known/.hidden",
    ] {
        assert_eq!(status(&open, path).await, 200, "{path}");
    }
    strict.stop().await;
    open.stop().await;
}

#[tokio::test]
async fn the_listing_shows_only_what_would_be_served() {
    let root = working_directory("listing-policy");
    let listed = |files: StaticFiles| async move {
        let server =
            common::start(Server::builder().content("/", files.directory_listing(true))).await;
        let html = server.get_with("/", &[]).await.text().await.unwrap();
        server.stop().await;
        html
    };
    let strict = listed(StaticFiles::new("/", &root)).await;
    for shown in ["visible.txt", "alias.txt", ".well-known/", "sub/"] {
        assert!(strict.contains(&format!(">{shown}<")), "{shown}: {strict}");
    }
    for left_out in [".env", ".git", "escape.txt"] {
        assert!(!strict.contains(left_out), "{left_out}: {strict}");
    }
    let open = listed(
        StaticFiles::new("/", &root)
            .hidden_files(true)
            .follow_symlinks_out(true),
    )
    .await;
    for shown in [".env", ".git/", "escape.txt"] {
        assert!(open.contains(&format!(">{shown}<")), "{shown}: {open}");
    }
}

#[tokio::test]
async fn symlinks_are_followed_only_while_they_stay_inside_the_root() {
    let root = working_directory("symlink-kinds");
    let base = root.parent().unwrap().to_owned();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    for (link, target) in [
        ("relative.txt", "visible.txt"),
        ("sub/up.txt", "../visible.txt"),
        ("sub/out.txt", "../../secret.txt"),
        ("outdir", ".."),
    ] {
        let link = root.join(link);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
    }
    let server = common::start(Server::builder().content("/", StaticFiles::new("/", &root))).await;
    // Absolute and relative links inside the root are served, whatever their form.
    for path in ["/alias.txt", "/relative.txt", "/sub/up.txt"] {
        let answer = server.get_with(path, &[]).await;
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.text().await.unwrap(), "visible", "{path}");
    }
    // Out of the root by a file link, a relative climb or a directory link: refused.
    assert!(base.join("secret.txt").exists());
    for path in ["/escape.txt", "/sub/out.txt", "/outdir/secret.txt"] {
        let answer = server.get_with(path, &[]).await;
        assert_eq!(answer.status(), 404, "{path}");
        assert!(!answer.text().await.unwrap().contains("outside"), "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn large_files_stream_whole_and_small_ones_answer_head_and_conditions() {
    let root = root_with_escape("large");
    // Larger than what is read whole in one go, and not a multiple of a block.
    let large: Vec<u8> = (0..700_001u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("large.bin"), &large).unwrap();
    let server = common::start(Server::builder().content("/", StaticFiles::new("/", &root))).await;
    let whole = server.get_with("/large.bin", &[]).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(common::header(&whole, "content-length"), "700001");
    assert_eq!(
        common::header(&whole, "content-type"),
        "application/octet-stream"
    );
    assert_eq!(whole.bytes().await.unwrap(), large);
    let range = server
        .get_with("/large.bin", &[("range", "bytes=300000-400000")])
        .await;
    assert_eq!(range.status(), 206);
    assert_eq!(range.bytes().await.unwrap(), &large[300_000..=400_000]);

    let head = common::client()
        .head(server.url("/inside.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(common::header(&head, "content-length"), "6");
    assert_eq!(common::header(&head, "accept-ranges"), "bytes");
    let modified = common::header(&head, "last-modified");
    assert!(head.bytes().await.unwrap().is_empty());
    let unchanged = server
        .get_with("/inside.txt", &[("if-modified-since", &modified)])
        .await;
    assert_eq!(unchanged.status(), 304);
    let mismatch = server
        .get_with("/inside.txt", &[("if-match", "\"not-the-tag\"")])
        .await;
    assert_eq!(mismatch.status(), 412);
    let posted = common::client()
        .post(server.url("/inside.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 405);
    assert_eq!(common::header(&posted, "allow"), "GET,HEAD");
    server.stop().await;
}

#[tokio::test]
async fn a_changed_file_is_served_with_its_new_content_and_validators() {
    let root = root_with_escape("changed");
    let server = common::start(Server::builder().content("/", StaticFiles::new("/", &root))).await;
    let first = server.get_with("/inside.txt", &[]).await;
    let tag = common::header(&first, "etag");
    assert_eq!(first.text().await.unwrap(), "inside");
    std::fs::write(root.join("inside.txt"), "changed, and longer").unwrap();
    let second = server
        .get_with("/inside.txt", &[("if-none-match", &tag)])
        .await;
    assert_eq!(second.status(), 200);
    assert_ne!(common::header(&second, "etag"), tag);
    assert_eq!(second.text().await.unwrap(), "changed, and longer");
    server.stop().await;
}
