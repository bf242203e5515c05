//! Built-in handlers: basic authentication and the access log.

mod common;

use std::time::Duration;

use poco_httpd::handlers::{AccessLog, BasicAuth, LogFormat, StaticFiles};
use poco_httpd::{Outcome, Request, Response, Server};

fn whoami(req: Request, res: Response) -> Outcome {
    let connection = req.connection();
    res.set_body(format!(
        "{:?} {:?}",
        connection.user(),
        connection.authtype()
    ));
    Outcome::Ok
}

fn auth() -> BasicAuth {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    BasicAuth::from_htpasswd_text(&format!("# admins\nalice:{hash}\n"))
        .unwrap()
        .realm("admin area")
}

#[tokio::test]
async fn basic_auth_refuses_without_valid_credentials_and_sets_the_user() {
    let server = common::start(
        Server::builder()
            .pre("/admin/", auth())
            .content("/", whoami),
    )
    .await;
    let client = common::client();
    let anonymous = client.get(server.url("/admin/x")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"admin area\", charset=\"UTF-8\""
    );
    let wrong = client
        .get(server.url("/admin/x"))
        .basic_auth("alice", Some("guess"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let unknown = client
        .get(server.url("/admin/x"))
        .basic_auth("mallory", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let right = client
        .get(server.url("/admin/x"))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(
        right.text().await.unwrap(),
        "Some(\"alice\") Some(\"Basic\")"
    );
    let open = client
        .get(server.url("/public"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        open, "None None",
        "outside /admin/ no login is asked, and none leaks"
    );
    server.stop().await;
}

/// Waits (bounded) until `path` holds `lines` lines, then returns them.
async fn log_lines(path: &std::path::Path, lines: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let found: Vec<String> = text.lines().map(str::to_owned).collect();
        if found.len() >= lines {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {lines} log lines in {path:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_access_log_writes_combined_lines_and_reopens_after_rotation() {
    let dir = std::env::temp_dir().join(format!("poco-httpd-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    let _ = std::fs::remove_file(&path);
    let log = AccessLog::file(&path).unwrap().format(LogFormat::Combined);
    let server = common::start(
        Server::builder()
            .pre("/admin/", auth())
            .content("/", whoami)
            .post("/", log.clone()),
    )
    .await;
    let client = common::client();
    client
        .get(server.url("/admin/x?y=1"))
        .basic_auth("alice", Some("s3cret"))
        .header("referer", "http://example.test/")
        .header("user-agent", "test \"agent\"")
        .send()
        .await
        .unwrap();
    let lines = log_lines(&path, 1).await;
    let line = &lines[0];
    assert!(line.starts_with("127.0.0.1 - alice ["), "{line}");
    assert!(
        line.contains("] \"GET /admin/x?y=1 HTTP/1.1\" 200 "),
        "{line}"
    );
    assert!(
        line.contains(" \"http://example.test/\" \"test \\\"agent\\\"\" "),
        "{line}"
    );
    let duration = line.rsplit(' ').next().unwrap();
    assert!(
        duration.parse::<u64>().is_ok(),
        "duration in microseconds: {line}"
    );
    // Rotation: the file is moved away, the log reopened, the next line lands anew.
    let rotated = dir.join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    log.reopen().unwrap();
    client.get(server.url("/after")).send().await.unwrap();
    let fresh = log_lines(&path, 1).await;
    assert!(
        fresh[0].contains("\"GET /after HTTP/1.1\" 200 "),
        "{fresh:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap().lines().count(),
        1
    );
    server.stop().await;
}

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
    let first = client
        .get(server.url("/files/inside.txt"))
        .send()
        .await
        .unwrap();
    let tag = first.headers()["etag"].to_str().unwrap().to_string();
    assert!(tag.starts_with("W/\""), "{tag}");
    assert_eq!(first.text().await.unwrap(), "inside");
    let again = client
        .get(server.url("/files/inside.txt"))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.text().await.unwrap(), "");
    let other = client
        .get(server.url("/files/inside.txt"))
        .header("if-none-match", "\"nope\"")
        .send()
        .await
        .unwrap();
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
    let refused = client.get(strict.url("/escape.txt")).send().await.unwrap();
    assert_eq!(refused.status(), 404);
    assert!(!refused.text().await.unwrap().contains("outside"));
    for attempt in [
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/..\\secret.txt",
        "/inside.txt%00",
    ] {
        let answer = common::raw(
            strict.addr,
            format!("GET {attempt} HTTP/1.0\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(!answer.contains("outside the root"), "{attempt}: {answer}");
        assert!(answer.starts_with("HTTP/1.0 4"), "{attempt}: {answer}");
    }
    let followed = client.get(lenient.url("/escape.txt")).send().await.unwrap();
    assert_eq!(followed.text().await.unwrap(), "outside the root");
    strict.stop().await;
    lenient.stop().await;
}
