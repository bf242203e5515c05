//! The static files' content cache: a cached file that changes in any way is served
//! fresh (or refused) on the very next request; the policies and the bounds hold.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use poco_httpd::Server;
use poco_httpd::handlers::{StaticFiles, TryFiles};

/// A fresh root under its own base directory (for things outside the root).
fn base(name: &str) -> (PathBuf, PathBuf) {
    let base = common::tempdir(&format!("file-cache-{name}"));
    let root = base.join("root");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    (base, root)
}

/// A server whose content handler is `files`, mounted at `/`.
async fn serve(files: &StaticFiles) -> common::TestServer {
    common::start(Server::builder().content("/", files.clone())).await
}

/// GETs `path` until `files` holds it in its cache, which happens once the file's
/// times are a couple of seconds old. Returns the body served.
async fn until_cached(server: &common::TestServer, files: &StaticFiles, path: &str) -> String {
    let before = files.cached_bytes();
    let first = server.get_with(path, &[]).await;
    assert_eq!(first.status(), 200, "{path}");
    let body = first.text().await.unwrap();
    if files.cached_bytes() > before {
        return body;
    }
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let again = server.get_with(path, &[]).await;
        assert_eq!(again.text().await.unwrap(), body);
        if files.cached_bytes() > before {
            return body;
        }
    }
    panic!("{path} was not cached within 6 s");
}

async fn body_of(server: &common::TestServer, path: &str) -> (u16, String) {
    let answer = server.get_with(path, &[]).await;
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[tokio::test]
async fn a_cached_file_rewritten_in_place_to_the_same_size_is_served_fresh() {
    let (_, root) = base("rewrite");
    std::fs::write(root.join("a.txt"), "version 1").unwrap();
    let files = StaticFiles::new("/", &root);
    let server = serve(&files).await;
    assert_eq!(body_of(&server, "/a.txt").await, (200, "version 1".into()));
    assert_eq!(files.cached_bytes(), 0, "a file just written is not cached");
    assert_eq!(until_cached(&server, &files, "/a.txt").await, "version 1");
    assert_eq!(body_of(&server, "/a.txt").await, (200, "version 1".into()));
    std::fs::write(root.join("a.txt"), "version 2").unwrap();
    assert_eq!(body_of(&server, "/a.txt").await, (200, "version 2".into()));
    assert_eq!(files.cached_bytes(), 0, "the stale entry was dropped");
    server.stop().await;
}

#[tokio::test]
async fn a_cached_file_replaced_by_a_rename_over_it_is_served_fresh() {
    let (base, root) = base("replace");
    std::fs::write(root.join("a.txt"), "old").unwrap();
    let files = StaticFiles::new("/", &root);
    let server = serve(&files).await;
    until_cached(&server, &files, "/a.txt").await;
    std::fs::write(base.join("new.txt"), "new").unwrap();
    std::fs::rename(base.join("new.txt"), root.join("a.txt")).unwrap();
    assert_eq!(body_of(&server, "/a.txt").await, (200, "new".into()));
    server.stop().await;
}

#[tokio::test]
async fn a_cached_file_renamed_away_or_deleted_is_not_found_next() {
    let (_, root) = base("gone");
    std::fs::write(root.join("moved.txt"), "moved").unwrap();
    std::fs::write(root.join("deleted.txt"), "deleted").unwrap();
    let files = StaticFiles::new("/", &root);
    let server = serve(&files).await;
    until_cached(&server, &files, "/moved.txt").await;
    until_cached(&server, &files, "/deleted.txt").await;
    std::fs::rename(root.join("moved.txt"), root.join("elsewhere.txt")).unwrap();
    std::fs::remove_file(root.join("deleted.txt")).unwrap();
    assert_eq!(body_of(&server, "/moved.txt").await.0, 404);
    assert_eq!(body_of(&server, "/deleted.txt").await.0, 404);
    assert_eq!(
        body_of(&server, "/elsewhere.txt").await,
        (200, "moved".into())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_cached_file_whose_permissions_change_is_opened_again() {
    use std::os::unix::fs::PermissionsExt;
    let (_, root) = base("chmod");
    let path = root.join("a.txt");
    std::fs::write(&path, "readable").unwrap();
    let files = StaticFiles::new("/", &root);
    let server = serve(&files).await;
    until_cached(&server, &files, "/a.txt").await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let (status, body) = body_of(&server, "/a.txt").await;
    // Root may read the file whatever its mode: then it is served from the disk.
    let readable = std::fs::read(&path).is_ok();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(files.cached_bytes(), 0, "the entry was dropped");
    if readable {
        assert_eq!((status, body.as_str()), (200, "readable"));
    } else {
        assert_eq!(status, 500, "{body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_symlink_swapped_in_for_a_cached_file_or_directory_is_refused() {
    let (base, root) = base("swap");
    std::fs::write(root.join("a.txt"), "inside").unwrap();
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::write(root.join("dir/b.txt"), "inside too").unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/b.txt"), "outside the root").unwrap();
    std::fs::write(base.join("secret.txt"), "outside the root").unwrap();
    let files = StaticFiles::new("/", &root);
    let server = serve(&files).await;
    until_cached(&server, &files, "/a.txt").await;
    until_cached(&server, &files, "/dir/b.txt").await;
    std::fs::remove_file(root.join("a.txt")).unwrap();
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("a.txt")).unwrap();
    std::fs::rename(root.join("dir"), base.join("old-dir")).unwrap();
    std::os::unix::fs::symlink(base.join("outside"), root.join("dir")).unwrap();
    for path in ["/a.txt", "/dir/b.txt"] {
        let (status, body) = body_of(&server, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("outside"), "{path}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn files_over_the_per_file_bound_are_served_but_not_cached() {
    let (_, root) = base("bound");
    std::fs::write(root.join("small.txt"), "s".repeat(100)).unwrap();
    std::fs::write(root.join("large.txt"), "l".repeat(101)).unwrap();
    let files = StaticFiles::new("/", &root).content_cache(1 << 20, 100);
    let server = serve(&files).await;
    let small = until_cached(&server, &files, "/small.txt").await;
    assert_eq!(small.len(), 100);
    let held = files.cached_bytes();
    for _ in 0..3 {
        assert_eq!(body_of(&server, "/large.txt").await.1.len(), 101);
    }
    assert_eq!(files.cached_bytes(), held, "the large file was not added");
    let off = StaticFiles::new("/", &root).content_cache(0, 0);
    let uncached = serve(&off).await;
    assert_eq!(body_of(&uncached, "/small.txt").await.1.len(), 100);
    assert_eq!(off.cached_bytes(), 0);
    server.stop().await;
    uncached.stop().await;
}

/// The answers of `server` to `path` with each header set, as status, the headers
/// that matter, and body.
async fn answers(server: &common::TestServer, path: &str, tag: &str) -> Vec<String> {
    let client = common::client();
    let url = |path: &str| server.url(path);
    let mut seen = Vec::new();
    let requests = [
        client.get(url(path)),
        client.head(url(path)),
        client.get(url(path)).header("if-none-match", tag),
        client.get(url(path)).header("if-match", "\"other\""),
        client.get(url(path)).header("range", "bytes=2-5"),
        client.get(url(path)).header("accept-encoding", "gzip"),
        client.post(url(path)),
    ];
    for request in requests {
        let answer = request.send().await.unwrap();
        let mut line = answer.status().as_str().to_owned();
        for name in [
            "content-type",
            "content-length",
            "content-encoding",
            "content-range",
            "etag",
            "last-modified",
            "vary",
            "accept-ranges",
        ] {
            let value = answer.headers().get(name).map(|v| v.to_str().unwrap());
            line.push_str(&format!(" {name}={value:?}"));
        }
        line.push_str(&format!(" body={:?}", answer.bytes().await.unwrap()));
        seen.push(line);
    }
    seen
}

#[tokio::test]
async fn head_conditions_ranges_and_siblings_are_answered_alike_with_the_cache() {
    let (_, root) = base("alike");
    std::fs::write(root.join("page.html"), "<p>cached page</p>").unwrap();
    std::fs::write(root.join("page.html.gz"), "pretend gzip").unwrap();
    let cached = StaticFiles::new("/", &root);
    let uncached = StaticFiles::new("/", &root).content_cache(0, 0);
    let with_cache = serve(&cached).await;
    let without = serve(&uncached).await;
    until_cached(&with_cache, &cached, "/page.html").await;
    let tag = common::header(&with_cache.get_with("/page.html", &[]).await, "etag");
    let expected = answers(&without, "/page.html", &tag).await;
    assert!(expected[2].starts_with("304"), "{}", expected[2]);
    assert!(expected[5].contains("gzip"), "{}", expected[5]);
    assert_eq!(answers(&with_cache, "/page.html", &tag).await, expected);
    assert!(
        cached.cached_bytes() > 0,
        "served from the cache throughout"
    );
    with_cache.stop().await;
    without.stop().await;
}

#[tokio::test]
async fn a_precompressed_sibling_added_after_caching_is_served_next() {
    let (_, root) = base("sibling");
    std::fs::write(root.join("page.html"), "<p>plain</p>").unwrap();
    let files = StaticFiles::new("/", &root);
    let server = serve(&files).await;
    until_cached(&server, &files, "/page.html").await;
    let gzip = [("accept-encoding", "gzip")];
    let plain = server.get_with("/page.html", &gzip).await;
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.text().await.unwrap(), "<p>plain</p>");
    std::fs::write(root.join("page.html.gz"), "pretend gzip").unwrap();
    let coded = server.get_with("/page.html", &gzip).await;
    assert_eq!(common::header(&coded, "content-encoding"), "gzip");
    assert_eq!(coded.text().await.unwrap(), "pretend gzip");
    let identity = server.get_with("/page.html", &[]).await;
    assert_eq!(identity.text().await.unwrap(), "<p>plain</p>");
    server.stop().await;
}

#[tokio::test]
async fn a_root_symlink_swapped_by_a_deploy_serves_the_new_tree_when_following_symlinks() {
    let (base, _) = base("deploy");
    for (release, text) in [("v1", "release 1"), ("v2", "release 2")] {
        std::fs::create_dir_all(base.join(release)).unwrap();
        std::fs::write(base.join(release).join("a.txt"), text).unwrap();
    }
    let current = base.join("current");
    let _ = std::fs::remove_file(&current);
    std::os::unix::fs::symlink(base.join("v1"), &current).unwrap();
    let files = StaticFiles::new("/", &current).follow_symlinks_out(true);
    let server = serve(&files).await;
    // Long enough for the file to have settled, had it been cacheable.
    for _ in 0..25 {
        assert_eq!(body_of(&server, "/a.txt").await, (200, "release 1".into()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The deploy: a new link renamed over the old one.
    std::os::unix::fs::symlink(base.join("v2"), base.join("next")).unwrap();
    std::fs::rename(base.join("next"), &current).unwrap();
    assert_eq!(body_of(&server, "/a.txt").await, (200, "release 2".into()));
    assert_eq!(
        files.cached_bytes(),
        0,
        "files opened by path are not cached"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_precompressed_sibling_added_in_a_directory_reached_through_a_symlink_is_served_next() {
    let (_, root) = base("sibling-link");
    // The link first, so it has settled by the time the file has.
    std::os::unix::fs::symlink("real", root.join("link")).unwrap();
    std::fs::create_dir_all(root.join("real")).unwrap();
    std::fs::write(root.join("real/page.html"), "<p>plain</p>").unwrap();
    let files = StaticFiles::new("/", &root);
    let server = serve(&files).await;
    until_cached(&server, &files, "/link/page.html").await;
    let gzip = [("accept-encoding", "gzip")];
    let plain = server.get_with("/link/page.html", &gzip).await;
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.text().await.unwrap(), "<p>plain</p>");
    std::fs::write(root.join("real/page.html.gz"), "pretend gzip").unwrap();
    let coded = server.get_with("/link/page.html", &gzip).await;
    assert_eq!(common::header(&coded, "content-encoding"), "gzip");
    assert_eq!(coded.text().await.unwrap(), "pretend gzip");
    server.stop().await;
}

/// Whether the second request for `path` to the handler `make` builds was answered
/// from the entry the first one made, seen through eviction: a hit marks its entry
/// used, so when a later file needs room the sweep passes it over and drops the
/// other, unused entry; a request that took the full path leaves the entry unused,
/// and it is dropped first (it came first). `path` must fill the entry of
/// `index.html` (10 bytes), the only other files being `y.txt` and `z.txt`.
async fn second_request_hits<H: poco_httpd::Handler>(
    name: &str,
    make: impl Fn(StaticFiles) -> H,
    path: &str,
) -> bool {
    let (_, root) = base(name);
    std::fs::write(root.join("index.html"), "index page").unwrap();
    std::fs::write(root.join("y.txt"), "y".repeat(300)).unwrap();
    std::fs::write(root.join("z.txt"), "z".repeat(300)).unwrap();
    // The entries' weights, measured once the files have settled.
    let measure = StaticFiles::new("/", &root);
    let measuring = serve(&measure).await;
    until_cached(&measuring, &measure, "/index.html").await;
    let index = measure.cached_bytes();
    until_cached(&measuring, &measure, "/y.txt").await;
    let other = measure.cached_bytes() - index;
    measuring.stop().await;
    assert_ne!(index, other);
    // Room for the index and one other file.
    let files = StaticFiles::new("/", &root).content_cache(index + other, 1000);
    let server = common::start(Server::builder().content("/", make(files.clone()))).await;
    let first = body_of(&server, path).await;
    assert_eq!(first, (200, "index page".into()), "{path}");
    assert_eq!(
        files.cached_bytes(),
        index,
        "{path} filled the index's entry"
    );
    assert_eq!(body_of(&server, "/y.txt").await.0, 200);
    assert_eq!(files.cached_bytes(), index + other);
    assert_eq!(body_of(&server, path).await, first);
    assert_eq!(body_of(&server, "/z.txt").await.0, 200);
    let held = files.cached_bytes();
    server.stop().await;
    // Kept: the index and `z.txt`, or (the index being the smaller) `z.txt` alone.
    assert!(held == index + other || held == other, "{held}");
    held == index + other
}

#[tokio::test]
async fn a_directory_path_is_answered_from_its_index_files_entry() {
    assert!(second_request_hits("slash", |files| files, "/").await);
}

#[tokio::test]
async fn an_index_rewritten_in_place_is_served_fresh_for_its_directory() {
    let (_, root) = base("slash-fresh");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/index.html"), "version 1").unwrap();
    let files = StaticFiles::new("/", &root);
    let server = serve(&files).await;
    assert_eq!(until_cached(&server, &files, "/docs/").await, "version 1");
    let held = files.cached_bytes();
    assert_eq!(body_of(&server, "/docs/").await, (200, "version 1".into()));
    assert_eq!(files.cached_bytes(), held, "filled once");
    assert_eq!(body_of(&server, "/docs/index.html").await.1, "version 1");
    std::fs::write(root.join("docs/index.html"), "version 2").unwrap();
    assert_eq!(body_of(&server, "/docs/").await, (200, "version 2".into()));
    // The directory replaced by a file of the same name: 404, as uncached.
    std::fs::rename(root.join("docs"), root.join("old-docs")).unwrap();
    std::fs::write(root.join("docs"), "a file").unwrap();
    assert_eq!(body_of(&server, "/docs/").await.0, 404);
    server.stop().await;
}

#[tokio::test]
async fn try_files_answers_a_candidate_from_the_cache() {
    let spa = |files| TryFiles::new(files, ["$uri", "$uri/", "/index.html"]).unwrap();
    assert!(second_request_hits("try-files", spa, "/some/route").await);
}

#[tokio::test]
async fn try_files_with_the_cache_still_prefers_an_earlier_candidate() {
    let (_, root) = base("try-files-order");
    std::fs::write(root.join("index.html"), "app").unwrap();
    let files = StaticFiles::new("/", &root);
    let app = TryFiles::new(files.clone(), ["$uri", "/index.html"]).unwrap();
    let server = common::start(Server::builder().content("/", app)).await;
    assert_eq!(until_cached(&server, &files, "/route").await, "app");
    std::fs::write(root.join("route"), "a file of its own").unwrap();
    assert_eq!(
        body_of(&server, "/route").await,
        (200, "a file of its own".into())
    );
    std::fs::remove_file(root.join("route")).unwrap();
    std::fs::write(root.join("index.html"), "new").unwrap();
    assert_eq!(body_of(&server, "/route").await, (200, "new".into()));
    server.stop().await;
}
