//! Built-in handlers: basic authentication, the access log and redirects.

mod common;

use poco_httpd::handlers::{AccessLog, BasicAuth, LogFormat, Redirect, Rewrite};
use poco_httpd::http::StatusCode;
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
    let anonymous = server.response(&client, "/admin/x").await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"admin area\", charset=\"UTF-8\""
    );
    let login = |user: &str, password: &str| {
        let request = client.get(server.url("/admin/x"));
        common::fetch(request.basic_auth(user, Some(password)))
    };
    // A wrong password, then an unknown user.
    assert_eq!(login("alice", "guess").await.0, 401);
    assert_eq!(login("mallory", "s3cret").await.0, 401);
    let right = login("alice", "s3cret").await;
    assert_eq!(right, (200, "Some(\"alice\") Some(\"Basic\")".into()));
    let open = server.text(&client, "/public").await;
    assert_eq!(
        open, "None None",
        "outside /admin/ no login is asked, and none leaks"
    );
    server.stop().await;
}

/// Waits (bounded) until `path` holds `lines` lines, then returns them.
async fn log_lines(path: &std::path::Path, lines: usize) -> Vec<String> {
    common::poll(
        || format!("{lines} log lines in {path:?}"),
        || {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let found: Vec<String> = text.lines().map(str::to_owned).collect();
            (found.len() >= lines).then_some(found)
        },
    )
    .await
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
    server.response(&client, "/after").await;
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

/// The `Location` header of a raw HTTP/1.1 exchange, and the status line.
async fn redirect_of(server: &common::TestServer, target: &str, host: &str) -> (String, String) {
    let head = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let answer = server.raw(head.as_bytes()).await;
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let location = answer
        .lines()
        .find_map(|line| line.strip_prefix("location: "))
        .unwrap_or_default()
        .to_owned();
    (status, location)
}

#[tokio::test]
async fn a_redirect_carries_the_request_uri_and_host_as_sent() {
    let to_https = Redirect::new("https://$host$request_uri").status(StatusCode::MOVED_PERMANENTLY);
    let server = common::start(
        Server::builder()
            // The Trans rewrite must not show: `$request_uri` is what the client sent.
            .trans(Rewrite::new("^/old/(.*)$", "/new/$1").unwrap())
            .content("/", to_https)
            .content("/fixed", Redirect::new("/elsewhere?$hostname")),
    )
    .await;
    let (status, location) = redirect_of(&server, "/old/a%20b?x=1&y", "Example.ORG:8080").await;
    assert!(status.starts_with("HTTP/1.1 301"), "{status}");
    assert_eq!(location, "https://example.org/old/a%20b?x=1&y");
    let (_, absolute_form) = redirect_of(&server, "http://[::1]:81/p?q", "[::1]:81").await;
    assert_eq!(
        absolute_form, "https://[::1]/p?q",
        "origin form, host without port"
    );
    let (_, fixed) = redirect_of(&server, "/fixed", "a").await;
    assert_eq!(
        fixed, "/elsewhere?$hostname",
        "an unknown variable stays as written"
    );
    let (bad_host, _) = redirect_of(&server, "/", "a b").await;
    assert!(bad_host.starts_with("HTTP/1.1 400"), "{bad_host}");
    server.stop().await;
}

#[tokio::test]
async fn the_access_log_shows_the_target_as_sent_over_http1_and_http2() {
    let dir = std::env::temp_dir().join(format!("poco-httpd-target-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    let _ = std::fs::remove_file(&path);
    let rewrite = |req: Request, _res: Response| {
        if let Some(rest) = req.path().strip_prefix("/old/") {
            let _ = req.set_uri(format!("/new/{rest}"));
        }
        Outcome::Ok
    };
    let server = common::start(
        Server::builder()
            .trans(rewrite)
            .content("/", whoami)
            .post("/", AccessLog::file(&path).unwrap()),
    )
    .await;
    common::client()
        .get(server.url("/old/a%20b?q=1"))
        .send()
        .await
        .unwrap();
    let h1 = log_lines(&path, 1).await;
    assert!(
        h1[0].contains("\"GET /old/a%20b?q=1 HTTP/1.1\" 200 "),
        "{h1:?}"
    );
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let answer = h2.get(server.url("/old/c?q=2")).send().await.unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);
    let lines = log_lines(&path, 2).await;
    assert!(
        lines[1].contains("\"GET /old/c?q=2 HTTP/2.0\" 200 "),
        "{lines:?}"
    );
    server.stop().await;
}
