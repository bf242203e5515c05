//! The phase model end to end: directory stacking, outcomes, what each phase may do,
//! the Send phase's headers, request facts, HTTP/2, build errors and header injection.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Events;
use poco_httpd::cookie::Cookie;
use poco_httpd::http::{StatusCode, Version, header};
use poco_httpd::{BodyError, Error, Handler, Outcome, Request, Response, Server};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How long a test waits to make sure something that should not happen did not.
const QUIET: Duration = Duration::from_millis(150);

/// A handler that logs `label` and goes on.
fn record(events: &Events, label: &str) -> impl Handler {
    let events = events.clone();
    let label = label.to_owned();
    move |_req: Request, _res: Response| {
        events.push(label.clone());
        Outcome::Ok
    }
}

/// A Content handler that logs `label` and answers it as the body.
fn answer(events: &Events, label: &str) -> impl Handler {
    let events = events.clone();
    let label = label.to_owned();
    move |_req: Request, res: Response| {
        events.push(label.clone());
        res.set_body(label.clone());
        Outcome::Ok
    }
}

/// A Content handler answering `label` without logging.
fn reply(label: &'static str) -> impl Handler {
    move |_req: Request, res: Response| {
        res.set_body(label);
        Outcome::Ok
    }
}

/// GETs `path` with the keep-alive client and returns status and body.
async fn get(client: &reqwest::Client, server: &common::TestServer, path: &str) -> (u16, String) {
    let response = client.get(server.url(path)).send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// A parsed raw HTTP/1.x response.
#[derive(Debug)]
struct Raw {
    status: u16,
    /// Header names lowercased, in the order received.
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn parse(text: &str) -> Raw {
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {text:?}"));
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {line:?} in {text:?}"));
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Raw {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    /// Every value of header `name` (lowercase).
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

/// Sends one raw `GET path` with `Connection: close` on a fresh connection.
async fn raw_get(addr: SocketAddr, path: &str) -> Raw {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    Raw::parse(&common::raw(addr, request.as_bytes()).await)
}

// ---------------------------------------------------------------------------
// 1. Directory stacking
// ---------------------------------------------------------------------------

#[tokio::test]
async fn pre_handlers_stack_from_the_root_to_the_file_in_fifo_order() {
    let events = Events::default();
    // Registered deepest first, to show the order comes from the path, not from
    // registration; the two handlers of `/foo/bar/` keep their registration order.
    let server = common::start(
        Server::builder()
            .pre("/foo/bar/baz/honk.txt", record(&events, "honk.txt"))
            .pre("/foo/bar/baz/", record(&events, "/foo/bar/baz/"))
            .pre("/foo/bar/", record(&events, "/foo/bar/ first"))
            .pre("/foo/", record(&events, "/foo/"))
            .pre("/foo/bar/", record(&events, "/foo/bar/ second"))
            .pre("/", record(&events, "/"))
            // Unrelated keys: a sibling directory, a file named like a directory on
            // the path, a directory named like the file, another file.
            .pre("/other/", record(&events, "unrelated /other/"))
            .pre("/foo/baz/", record(&events, "unrelated /foo/baz/"))
            .pre("/foo", record(&events, "unrelated /foo"))
            .pre("/foo/bar/baz", record(&events, "unrelated /foo/bar/baz"))
            .pre(
                "/foo/bar/baz/honk.txt/",
                record(&events, "unrelated honk.txt/"),
            )
            .pre("/foo/bar/baz/honk", record(&events, "unrelated honk"))
            .content("/", answer(&events, "content")),
    )
    .await;
    let (status, body) = get(&common::client(), &server, "/foo/bar/baz/honk.txt").await;
    assert_eq!((status, body.as_str()), (200, "content"));
    assert_eq!(
        events.all(),
        [
            "/",
            "/foo/",
            "/foo/bar/ first",
            "/foo/bar/ second",
            "/foo/bar/baz/",
            "honk.txt",
            "content"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn post_handlers_stack_like_pre_handlers_after_the_response() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .post("/a/b/c.txt", record(&events, "/a/b/c.txt"))
            .post("/a/", record(&events, "/a/ first"))
            .post("/", record(&events, "/"))
            .post("/a/", record(&events, "/a/ second"))
            .post("/b/", record(&events, "unrelated /b/"))
            .post("/a/b/c.txt/", record(&events, "unrelated c.txt/"))
            .content("/", answer(&events, "content")),
    )
    .await;
    let (status, _) = get(&common::client(), &server, "/a/b/c.txt").await;
    assert_eq!(status, 200);
    events.wait_for(5).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        events.all(),
        ["content", "/", "/a/ first", "/a/ second", "/a/b/c.txt"]
    );
    server.stop().await;
}

#[tokio::test]
async fn post_handlers_read_the_response_headers_the_handlers_set() {
    let events = Events::default();
    let seen = events.clone();
    let content = |_req: Request, res: Response| {
        res.set_content_type("text/plain");
        for (name, value) in [("x-a", "1"), ("x-a", "2"), ("x-b", "3"), ("x-c", "4")] {
            res.append_header(name, value);
        }
        res.set_body("with headers");
        Outcome::Ok
    };
    let post = move |_req: Request, res: Response| {
        let first = res
            .header("x-b")
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        seen.push(format!("x-b {first:?}"));
        let headers = res.headers();
        let mut all: Vec<String> = (headers.iter())
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("?")))
            .collect();
        all.sort();
        seen.push(all.join(", "));
        Outcome::Ok
    };
    let server = common::start(Server::builder().content("/", content).post("/", post)).await;
    let (status, body) = get(&common::client(), &server, "/").await;
    assert_eq!((status, body.as_str()), (200, "with headers"));
    events.wait_for(2).await;
    assert_eq!(
        events.all(),
        [
            r#"x-b Some("3")"#,
            "content-type: text/plain, x-a: 1, x-a: 2, x-b: 3, x-c: 4",
        ]
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 2. The deepest Content handler; file and directory keys
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_deepest_content_handler_on_the_path_answers() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .content("/", answer(&events, "root"))
            .content("/a/", answer(&events, "a"))
            .content("/a/b/c/", answer(&events, "c"))
            .content("/a/b/c/d.txt", answer(&events, "d.txt")),
    )
    .await;
    let client = common::client();
    for (path, expected) in [
        ("/", "root"),
        ("/x.html", "root"),
        ("/a/", "a"),
        ("/a/x.html", "a"),
        // No handler on /a/b/: the next shallower one answers.
        ("/a/b/x.html", "a"),
        ("/a/b/c/", "c"),
        ("/a/b/c/x.html", "c"),
        ("/a/b/c/d.txt", "d.txt"),
        ("/a/b/c/d.txt.bak", "c"),
    ] {
        events.clear();
        assert_eq!(get(&client, &server, path).await, (200, expected.into()));
        // Exactly one Content handler ran.
        assert_eq!(events.all(), [expected], "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn file_key_and_directory_key_of_the_same_name_never_match_each_other() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .pre("/honk", record(&events, "pre /honk"))
            .pre("/honk/", record(&events, "pre /honk/"))
            .content("/", answer(&events, "root"))
            .content("/honk", answer(&events, "file /honk"))
            .content("/honk/", answer(&events, "dir /honk/"))
            // Keys with no counterpart of the other kind.
            .pre("/dir-only/", record(&events, "pre /dir-only/"))
            .content("/dir-only/", answer(&events, "dir /dir-only/"))
            .pre("/file-only", record(&events, "pre /file-only"))
            .content("/file-only", answer(&events, "file /file-only")),
    )
    .await;
    let client = common::client();
    for (path, expected) in [
        ("/honk", vec!["pre /honk", "file /honk"]),
        ("/honk/", vec!["pre /honk/", "dir /honk/"]),
        ("/honk/x", vec!["pre /honk/", "dir /honk/"]),
        ("/honk/deeper/y.txt", vec!["pre /honk/", "dir /honk/"]),
        ("/honky", vec!["root"]),
        ("/honk.txt", vec!["root"]),
        ("/dir-only", vec!["root"]),
        ("/dir-only/", vec!["pre /dir-only/", "dir /dir-only/"]),
        ("/file-only/", vec!["root"]),
        ("/file-only/x", vec!["root"]),
        ("/file-only", vec!["pre /file-only", "file /file-only"]),
    ] {
        events.clear();
        let (status, body) = get(&client, &server, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(&body, expected.last().expect("a content label"), "{path}");
        assert_eq!(events.all(), expected, "{path}");
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 3. The original module's test scenarios
// ---------------------------------------------------------------------------

/// The handler map of the original module's test: `/`, `/honk/`, `/bonk/zip.html`.
fn original_module_server() -> poco_httpd::ServerBuilder {
    Server::builder()
        .content("/", |req: Request, res: Response| {
            res.set_content_type("text/plain");
            res.set_body(format!("this is top; connection {}", req.connection().id()));
            Outcome::Ok
        })
        .content("/honk/", |req: Request, res: Response| {
            res.set_content_type("text/plain");
            res.set_body(format!(
                "this is honk; connection {}",
                req.connection().id()
            ));
            Outcome::Ok
        })
        .content("/bonk/zip.html", |req: Request, res: Response| {
            res.set_content_type("text/html");
            res.set_body(format!(
                "<html><body>this is bonk2; connection {}</body></html>",
                req.connection().id()
            ));
            Outcome::Ok
        })
}

/// Checks one answer of [`original_module_server`]; returns its connection id.
fn check_original_answer(path: &str, answer: &Raw) -> String {
    assert_eq!(answer.status, 200, "{path}: {answer:?}");
    let (prefix, content_type) = match path {
        "/" => ("this is top", "text/plain"),
        "/honk/something.html" => ("this is honk", "text/plain"),
        "/bonk/zip.html" => ("<html><body>this is bonk2", "text/html"),
        other => panic!("unexpected path {other}"),
    };
    assert!(answer.body.starts_with(prefix), "{path}: {answer:?}");
    assert_eq!(
        answer.header("content-type"),
        Some(content_type),
        "{path}: {answer:?}"
    );
    let id = answer
        .body
        .split("connection ")
        .nth(1)
        .expect("connection id in body");
    id.trim_end_matches("</body></html>").to_owned()
}

const ORIGINAL_PATHS: [&str; 3] = ["/", "/honk/something.html", "/bonk/zip.html"];

#[tokio::test]
async fn original_module_scenarios_on_fresh_connections() {
    let server = common::start(original_module_server()).await;
    let mut ids = Vec::new();
    for path in ORIGINAL_PATHS {
        let answer = raw_get(server.addr, path).await;
        ids.push(check_original_answer(path, &answer));
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "each request had its own connection: {ids:?}");
    server.stop().await;
}

#[tokio::test]
async fn original_module_scenarios_over_one_keep_alive_connection() {
    let server = common::start(original_module_server()).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let mut ids = Vec::new();
    for path in ORIGINAL_PATHS {
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write request");
        let answer = Raw::parse(&common::read_response(&mut stream).await);
        ids.push(check_original_answer(path, &answer));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "all three on one connection: {ids:?}");
    server.stop().await;
}

#[tokio::test]
async fn original_module_scenarios_pipelined_on_one_connection() {
    let server = common::start(original_module_server()).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let requests: String = ORIGINAL_PATHS
        .iter()
        .map(|path| format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
        .collect();
    stream
        .write_all(requests.as_bytes())
        .await
        .expect("write requests");
    for path in ORIGINAL_PATHS {
        let answer = Raw::parse(&common::read_response(&mut stream).await);
        check_original_answer(path, &answer);
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 4. Normalized path matching
// ---------------------------------------------------------------------------

#[tokio::test]
async fn requests_are_mapped_by_their_normalized_path() {
    let events = Events::default();
    let tagged = |label: &'static str| {
        let events = events.clone();
        move |req: Request, res: Response| {
            events.push(format!("{label} {}", req.path()));
            res.set_body(format!("{label} {}", req.path()));
            Outcome::Ok
        }
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
    for (raw_path, expected) in [
        (
            "/foo/../secret/x",
            ["pre /secret/ /secret/x", "secret /secret/x"],
        ),
        (
            "/foo/%2e%2E/secret/x",
            ["pre /secret/ /secret/x", "secret /secret/x"],
        ),
        ("/%66oo/x", ["pre /foo/ /foo/x", "foo /foo/x"]),
        ("//foo/./x", ["pre /foo/ /foo/x", "foo /foo/x"]),
        ("/../../foo/x", ["pre /foo/ /foo/x", "foo /foo/x"]),
    ] {
        events.clear();
        let answer = raw_get(server.addr, raw_path).await;
        assert_eq!(answer.status, 200, "{raw_path}: {answer:?}");
        assert_eq!(answer.body, expected[1], "{raw_path}");
        assert_eq!(events.all(), expected, "{raw_path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_original_uri_keeps_the_raw_path_while_path_is_normalized() {
    let server = common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            res.set_body(format!(
                "{}|{}|{}",
                req.original_uri(),
                req.uri(),
                req.path()
            ));
            Outcome::Ok
        }),
    )
    .await;
    let answer = raw_get(server.addr, "/foo/../secret/%78?q=%2F").await;
    assert_eq!(
        answer.body,
        "/foo/../secret/%78?q=%2F|/foo/../secret/%78?q=%2F|/secret/x"
    );
    server.stop().await;
}

#[tokio::test]
async fn encoded_slash_and_nul_in_the_path_get_400_without_running_content() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .trans(record(&events, "trans"))
            .pre("/", record(&events, "pre"))
            .content("/", answer(&events, "content")),
    )
    .await;
    for raw_path in ["/a%2Fb", "/a%2fb", "/a%00b", "/dir%2F..%2Fsecret"] {
        let answer = raw_get(server.addr, raw_path).await;
        assert_eq!(answer.status, 400, "{raw_path}: {answer:?}");
        assert!(!answer.body.contains("content"), "{raw_path}");
    }
    tokio::time::sleep(QUIET).await;
    assert!(
        !events.all().iter().any(|e| e == "content" || e == "pre"),
        "{:?}",
        events.all()
    );
    // The server still serves afterwards.
    assert_eq!(raw_get(server.addr, "/ok").await.body, "content");
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 5. Outcomes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn trans_deny_stops_the_trans_list_but_mapping_pre_and_content_still_run() {
    let events = Events::default();
    let deny = {
        let events = events.clone();
        move |_req: Request, _res: Response| {
            events.push("trans deny");
            Outcome::Deny
        }
    };
    let server = common::start(
        Server::builder()
            .trans(record(&events, "trans first"))
            .trans(deny)
            .trans(record(&events, "trans after deny"))
            .pre("/", record(&events, "pre"))
            .content("/", answer(&events, "content")),
    )
    .await;
    let (status, body) = get(&common::client(), &server, "/x").await;
    assert_eq!((status, body.as_str()), (200, "content"));
    assert_eq!(
        events.all(),
        ["trans first", "trans deny", "pre", "content"]
    );
    server.stop().await;
}

#[tokio::test]
async fn trans_rewrite_before_deny_is_still_mapped() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .trans(|req: Request, _res: Response| {
                req.set_uri("/new/x").expect("valid URI");
                Outcome::Deny
            })
            .content("/", answer(&events, "root"))
            .content("/new/", answer(&events, "new")),
    )
    .await;
    let (status, body) = get(&common::client(), &server, "/old/x").await;
    assert_eq!((status, body.as_str()), (200, "new"));
    server.stop().await;
}

#[tokio::test]
async fn pre_deny_answers_403_and_skips_later_pre_handlers_and_content() {
    let events = Events::default();
    let deny = {
        let events = events.clone();
        move |_req: Request, res: Response| {
            events.push("pre deny");
            res.set_body("partial secret");
            Outcome::Deny
        }
    };
    let server = common::start(
        Server::builder()
            .pre("/", record(&events, "pre /"))
            .pre("/private/", deny)
            .pre("/private/", record(&events, "pre after deny"))
            .pre("/private/deep/", record(&events, "pre deeper"))
            .content("/", answer(&events, "content")),
    )
    .await;
    let client = common::client();
    let (status, body) = get(&client, &server, "/private/deep/x").await;
    assert_eq!(status, 403);
    assert!(!body.contains("secret"), "{body:?}");
    assert_eq!(events.all(), ["pre /", "pre deny"]);
    // Other paths are unaffected.
    events.clear();
    assert_eq!(
        get(&client, &server, "/public").await,
        (200, "content".into())
    );
    server.stop().await;
}

#[tokio::test]
async fn pre_deny_keeps_a_401_and_www_authenticate_the_handler_set() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .pre("/", |_req: Request, res: Response| {
                res.set_status(StatusCode::UNAUTHORIZED);
                res.set_header(header::WWW_AUTHENTICATE, "Basic realm=\"poco\"");
                Outcome::Deny
            })
            .content("/", answer(&events, "content")),
    )
    .await;
    let response = common::client()
        .get(server.url("/x"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().expect("ascii")),
        Some("Basic realm=\"poco\"")
    );
    assert!(events.all().is_empty(), "{:?}", events.all());
    server.stop().await;
}

#[tokio::test]
async fn content_deny_answers_403() {
    let server = common::start(Server::builder().content("/", reply("fine")).content(
        "/no/",
        |_req: Request, res: Response| {
            res.set_body("half-built secret");
            Outcome::Deny
        },
    ))
    .await;
    let client = common::client();
    let (status, body) = get(&client, &server, "/no/x").await;
    assert_eq!(status, 403);
    assert!(!body.contains("secret"), "{body:?}");
    assert_eq!(get(&client, &server, "/yes").await, (200, "fine".into()));
    server.stop().await;
}

#[tokio::test]
async fn content_deny_keeps_an_error_status_the_handler_set() {
    let server = common::start(
        Server::builder().content("/", |_req: Request, res: Response| {
            res.set_status(StatusCode::IM_A_TEAPOT);
            Outcome::Deny
        }),
    )
    .await;
    let (status, _) = get(&common::client(), &server, "/").await;
    assert_eq!(status, 418);
    server.stop().await;
}

#[tokio::test]
async fn post_deny_stops_the_remaining_post_handlers() {
    let events = Events::default();
    let deny = {
        let events = events.clone();
        move |_req: Request, _res: Response| {
            events.push("post deny");
            Outcome::Deny
        }
    };
    let server = common::start(
        Server::builder()
            .post("/", record(&events, "post first"))
            .post("/", deny)
            .post("/", record(&events, "post after deny"))
            .post("/log/", record(&events, "post deeper"))
            .pre("/", {
                let events = events.clone();
                move |req: Request, _res: Response| {
                    req.push_post_handler(record(&events, "pushed post"));
                    Outcome::Ok
                }
            })
            .content("/", answer(&events, "content")),
    )
    .await;
    let (status, _) = get(&common::client(), &server, "/log/x").await;
    assert_eq!(status, 200);
    events.wait_for(3).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(events.all(), ["content", "post first", "post deny"]);
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 6. What each phase may do
// ---------------------------------------------------------------------------

#[tokio::test]
async fn trans_rewrite_changes_the_handlers_that_run() {
    let events = Events::default();
    let report = {
        let events = events.clone();
        move |req: Request, res: Response| {
            events.push("content /new/");
            res.set_body(format!(
                "{}|{}|{}|{}",
                req.uri(),
                req.original_uri(),
                req.path(),
                req.query().unwrap_or_default()
            ));
            Outcome::Ok
        }
    };
    let server = common::start(
        Server::builder()
            .trans(|req: Request, _res: Response| {
                let uri = req.uri();
                if let Some(rest) = uri.path().strip_prefix("/old/") {
                    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                    req.set_uri(format!("/new/{rest}{query}"))
                        .expect("valid URI");
                }
                Outcome::Ok
            })
            .pre("/old/", record(&events, "pre /old/"))
            .pre("/new/", record(&events, "pre /new/"))
            .content("/", answer(&events, "root"))
            .content("/old/", answer(&events, "content /old/"))
            .content("/new/", report),
    )
    .await;
    let (status, body) = get(&common::client(), &server, "/old/page.html?x=1").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        "/new/page.html?x=1|/old/page.html?x=1|/new/page.html|x=1"
    );
    assert_eq!(events.all(), ["pre /new/", "content /new/"]);
    server.stop().await;
}

#[tokio::test]
async fn trans_rewrite_to_a_refused_path_answers_400_without_content() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .trans(|req: Request, _res: Response| {
                req.set_uri("/a%2Fb").expect("a valid URI");
                Outcome::Ok
            })
            .pre("/", record(&events, "pre"))
            .content("/", answer(&events, "content")),
    )
    .await;
    let (status, body) = get(&common::client(), &server, "/x").await;
    assert_eq!(status, 400);
    assert_ne!(body, "content");
    assert!(events.all().is_empty(), "{:?}", events.all());
    server.stop().await;
}

#[tokio::test]
async fn pre_set_content_handler_replaces_content_for_that_request_only() {
    let events = Events::default();
    let swap = {
        let events = events.clone();
        move |req: Request, _res: Response| {
            if req.header("x-swap").is_some() {
                let events = events.clone();
                req.set_content_handler(move |_req: Request, res: Response| {
                    events.push("replacement");
                    res.set_body("replacement");
                    Outcome::Ok
                });
            }
            Outcome::Ok
        }
    };
    let server = common::start(
        Server::builder()
            .pre("/s/", swap)
            .content("/", answer(&events, "root"))
            .content("/s/", answer(&events, "mapped")),
    )
    .await;
    let client = common::client();
    let swapped = client
        .get(server.url("/s/x"))
        .header("x-swap", "1")
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert_eq!(swapped, "replacement");
    // The next request, on the same keep-alive connection, gets the mapped one again.
    assert_eq!(get(&client, &server, "/s/x").await, (200, "mapped".into()));
    assert_eq!(events.all(), ["replacement", "mapped"]);
    server.stop().await;
}

#[tokio::test]
async fn the_last_set_content_handler_wins() {
    let server = common::start(
        Server::builder()
            .pre("/", |req: Request, _res: Response| {
                req.set_content_handler(reply("from /"));
                Outcome::Ok
            })
            .pre("/s/", |req: Request, _res: Response| {
                req.set_content_handler(reply("from /s/"));
                Outcome::Ok
            })
            .content("/", reply("mapped")),
    )
    .await;
    let client = common::client();
    assert_eq!(
        get(&client, &server, "/s/x").await,
        (200, "from /s/".into())
    );
    assert_eq!(get(&client, &server, "/t").await, (200, "from /".into()));
    server.stop().await;
}

#[tokio::test]
async fn pushed_post_handler_runs_after_the_mapped_ones_for_that_request_only() {
    let events = Events::default();
    let push = {
        let events = events.clone();
        move |req: Request, _res: Response| {
            if let Some(tag) = req.header_text("x-tag") {
                let events = events.clone();
                req.push_post_handler(move |_req: Request, _res: Response| {
                    events.push(format!("pushed {tag}"));
                    Outcome::Ok
                });
            }
            Outcome::Ok
        }
    };
    let mapped = |label: &'static str| {
        let events = events.clone();
        move |req: Request, _res: Response| {
            events.push(format!("{label} {}", req.path()));
            Outcome::Ok
        }
    };
    let server = common::start(
        Server::builder()
            .pre("/p/", push)
            .post("/p/", mapped("post /p/"))
            .post("/", mapped("post /"))
            .content("/", reply("ok")),
    )
    .await;
    let client = common::client();
    let first = client
        .get(server.url("/p/1"))
        .header("x-tag", "one")
        .send()
        .await
        .expect("GET");
    assert_eq!(first.status(), 200);
    assert_eq!(
        events.wait_for(3).await,
        ["post / /p/1", "post /p/ /p/1", "pushed one"]
    );
    events.clear();
    assert_eq!(get(&client, &server, "/p/2").await.0, 200);
    events.wait_for(2).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(events.all(), ["post / /p/2", "post /p/ /p/2"]);
    server.stop().await;
}

#[tokio::test]
async fn typed_extensions_pass_from_pre_to_content_and_post() {
    #[derive(Clone, Debug, PartialEq)]
    struct User(String);
    #[derive(Clone, Debug, PartialEq)]
    struct Hits(u32);

    let events = Events::default();
    let post = {
        let events = events.clone();
        move |req: Request, _res: Response| {
            events.push(format!(
                "post {:?} {:?}",
                req.extension::<User>(),
                req.extension::<Hits>()
            ));
            Outcome::Ok
        }
    };
    let server = common::start(
        Server::builder()
            .pre("/", |req: Request, _res: Response| {
                assert!(req.extension::<User>().is_none(), "fresh per request");
                req.insert_extension(User("alice".into()));
                Outcome::Ok
            })
            .content("/", |req: Request, res: Response| {
                let user = req.extension::<User>();
                let previous = req.insert_extension(Hits(1));
                res.set_body(format!("{user:?} {previous:?}"));
                Outcome::Ok
            })
            .post("/", post),
    )
    .await;
    let client = common::client();
    for _ in 0..2 {
        events.clear();
        let (status, body) = get(&client, &server, "/").await;
        assert_eq!(status, 200);
        assert_eq!(body, "Some(User(\"alice\")) None");
        assert_eq!(
            events.wait_for(1).await,
            ["post Some(User(\"alice\")) Some(Hits(1))"]
        );
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 7. The Send phase
// ---------------------------------------------------------------------------

const DEFAULT_SERVER: &str = concat!("poco-httpd/", env!("CARGO_PKG_VERSION"));

#[tokio::test]
async fn server_header_is_sent_by_default() {
    let server = common::start(Server::builder().content("/", reply("hi"))).await;
    let answer = raw_get(server.addr, "/").await;
    assert_eq!(answer.all("server"), [DEFAULT_SERVER]);
    server.stop().await;
}

#[tokio::test]
async fn server_header_can_be_replaced() {
    let server = common::start(
        Server::builder()
            .header("Server", "My Server")
            .content("/", reply("hi")),
    )
    .await;
    let answer = raw_get(server.addr, "/").await;
    assert_eq!(answer.all("server"), ["My Server"]);
    server.stop().await;
}

#[tokio::test]
async fn server_header_can_be_removed() {
    let server = common::start(
        Server::builder()
            .remove_header("Server")
            .content("/", reply("hi")),
    )
    .await;
    let answer = raw_get(server.addr, "/").await;
    assert_eq!(answer.status, 200);
    assert!(answer.all("server").is_empty(), "{answer:?}");
    server.stop().await;
}

#[tokio::test]
async fn default_headers_are_added_unless_the_handler_set_its_own() {
    let server = common::start(
        Server::builder()
            .header("X-Frame-Options", "DENY")
            .header("Server", "Default Server")
            .content("/", reply("defaults"))
            .content("/own", |_req: Request, res: Response| {
                res.set_header("X-Frame-Options", "SAMEORIGIN");
                res.set_header("Server", "Handler Server");
                res.set_body("own");
                Outcome::Ok
            }),
    )
    .await;
    let defaults = raw_get(server.addr, "/").await;
    assert_eq!(defaults.all("x-frame-options"), ["DENY"]);
    assert_eq!(defaults.all("server"), ["Default Server"]);
    let own = raw_get(server.addr, "/own").await;
    assert_eq!(own.body, "own");
    assert_eq!(own.all("x-frame-options"), ["SAMEORIGIN"]);
    assert_eq!(own.all("server"), ["Handler Server"]);
    server.stop().await;
}

#[tokio::test]
async fn date_and_a_correct_content_length_are_sent() {
    let server = common::start(
        Server::builder()
            .content("/", reply("twelve bytes"))
            .content("/empty", reply("")),
    )
    .await;
    let answer = raw_get(server.addr, "/").await;
    assert_eq!(answer.body, "twelve bytes");
    assert_eq!(answer.all("content-length"), ["12"]);
    let date = answer.header("date").expect("a Date header");
    let sent = httpdate::parse_http_date(date).expect("an HTTP date");
    let age = std::time::SystemTime::now()
        .duration_since(sent)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "stale Date {date}");

    // HEAD: the same Content-Length, no body.
    let head = Raw::parse(
        &common::raw(
            server.addr,
            b"HEAD / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert_eq!(head.all("content-length"), ["12"]);
    assert_eq!(head.body, "");

    let empty = raw_get(server.addr, "/empty").await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.all("content-length"), ["0"]);
    assert_eq!(empty.body, "");
    server.stop().await;
}

#[tokio::test]
async fn each_cookie_becomes_its_own_set_cookie_header() {
    let server = common::start(
        Server::builder().content("/", |_req: Request, res: Response| {
            res.add_cookie(Cookie::build(("a", "1")).path("/"));
            res.add_cookie(Cookie::build(("b", "2")).http_only(true));
            res.set_body("cookies");
            Outcome::Ok
        }),
    )
    .await;
    let answer = raw_get(server.addr, "/").await;
    let cookies = answer.all("set-cookie");
    assert_eq!(cookies.len(), 2, "{answer:?}");
    let a = Cookie::parse(cookies[0]).expect("a cookie");
    assert_eq!((a.name(), a.value(), a.path()), ("a", "1", Some("/")));
    let b = Cookie::parse(cookies[1]).expect("a cookie");
    assert_eq!((b.name(), b.value(), b.http_only()), ("b", "2", Some(true)));
    server.stop().await;
}

#[tokio::test]
async fn request_cookies_are_read_by_name() {
    let server = common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            let name = req.cookie("name").map(|c| c.value().to_owned());
            let other = req.cookie("other").map(|c| c.value().to_owned());
            let missing = req.cookie("missing");
            res.set_body(format!("{name:?} {other:?} {missing:?}"));
            Outcome::Ok
        }),
    )
    .await;
    let response = common::client()
        .get(server.url("/"))
        .header(header::COOKIE, "a=1; name=value%20x")
        .header(header::COOKIE, "other=two")
        .send()
        .await
        .expect("GET");
    assert_eq!(
        response.text().await.expect("body"),
        "Some(\"value x\") Some(\"two\") None"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 8. Request facts
// ---------------------------------------------------------------------------

#[tokio::test]
async fn method_version_headers_and_query_are_reported() {
    let server = common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            res.set_body(format!(
                "{} {:?} {:?} {:?} {:?}",
                req.method(),
                req.version(),
                req.header_text("x-test"),
                req.query(),
                req.header("x-missing"),
            ));
            Outcome::Ok
        }),
    )
    .await;
    let response = common::client()
        .put(server.url("/facts?x=1&y=two"))
        .header("X-Test", "hello")
        .send()
        .await
        .expect("PUT");
    assert_eq!(
        response.text().await.expect("body"),
        "PUT HTTP/1.1 Some(\"hello\") Some(\"x=1&y=two\") None"
    );
    let raw = raw_get(server.addr, "/facts").await;
    assert_eq!(raw.body, "GET HTTP/1.1 None None None");
    server.stop().await;
}

/// A Content handler answering `req.url()`.
fn url_reporter() -> impl Handler {
    |req: Request, res: Response| {
        res.set_body(req.url());
        Outcome::Ok
    }
}

#[tokio::test]
async fn url_is_built_from_the_host_header() {
    let server = common::start(Server::builder().content("/", url_reporter())).await;
    let (_, body) = get(&common::client(), &server, "/u/v.html?q=1").await;
    assert_eq!(body, format!("http://{}/u/v.html?q=1", server.addr));
    let raw = Raw::parse(
        &common::raw(
            server.addr,
            b"GET /w HTTP/1.1\r\nHost: example.com:8080\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert_eq!(raw.body, "http://example.com:8080/w");
    server.stop().await;
}

#[tokio::test]
async fn url_without_a_host_header_uses_the_configured_hostname() {
    let server = common::start(
        Server::builder()
            .hostname("example.org")
            .content("/", url_reporter()),
    )
    .await;
    let raw = Raw::parse(&common::raw(server.addr, b"GET /u?x=y HTTP/1.0\r\n\r\n").await);
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body, "http://example.org/u?x=y");
    server.stop().await;
}

#[tokio::test]
async fn url_without_host_header_or_hostname_uses_the_local_address() {
    let server = common::start(Server::builder().content("/", url_reporter())).await;
    let raw = Raw::parse(&common::raw(server.addr, b"GET /u HTTP/1.0\r\n\r\n").await);
    assert_eq!(raw.body, format!("http://{}/u", server.addr));
    server.stop().await;
}

#[tokio::test]
async fn connection_reports_remote_and_local_addresses() {
    let server = common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            let conn = req.connection();
            res.set_body(format!("{} {}", conn.remote_addr(), conn.local_addr()));
            Outcome::Ok
        }),
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let client_addr = stream.local_addr().expect("client address");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let raw = Raw::parse(&common::read_to_close(&mut stream).await);
    let (remote, local) = raw.body.split_once(' ').expect("two addresses");
    let remote: SocketAddr = remote.parse().expect("remote address");
    assert_eq!(remote.ip().to_string(), "127.0.0.1");
    assert_eq!(remote, client_addr);
    assert_eq!(local.parse::<SocketAddr>().expect("local"), server.addr);
    server.stop().await;
}

/// A Content handler echoing the request body, or answering the body error's status.
fn body_echo(events: &Events) -> impl Handler {
    let events = events.clone();
    move |req: Request, res: Response| {
        let events = events.clone();
        async move {
            match req.body().await {
                Ok(body) => res.set_body(body),
                Err(error) => {
                    events.push(format!("{error:?}"));
                    res.set_status(error.status());
                    res.set_body(error.to_string());
                }
            }
            Outcome::Ok
        }
    }
}

#[tokio::test]
async fn posted_body_is_read_by_the_handler() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .max_body_size(16)
            .content("/", body_echo(&events)),
    )
    .await;
    let response = common::client()
        .post(server.url("/echo"))
        .body("exactly16bytes!!")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "exactly16bytes!!");
    assert!(events.all().is_empty(), "{:?}", events.all());
    server.stop().await;
}

#[tokio::test]
async fn declared_body_over_max_body_size_is_answered_413_before_any_handler() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .max_body_size(16)
            .trans(record(&events, "trans"))
            .pre("/", record(&events, "pre"))
            .content("/", body_echo(&events)),
    )
    .await;
    let response = common::client()
        .post(server.url("/echo"))
        .body("seventeen bytes!!")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(events.all().is_empty(), "{:?}", events.all());
    server.stop().await;
}

#[tokio::test]
async fn body_with_limit_refuses_a_body_over_its_own_limit() {
    let server = common::start(Server::builder().content(
        "/",
        move |req: Request, res: Response| async move {
            match req.body_with_limit(4).await {
                Ok(body) => res.set_body(body),
                Err(error) => {
                    res.set_status(error.status());
                    res.set_body(format!("{error:?}"));
                }
            }
            Outcome::Ok
        },
    ))
    .await;
    let client = common::client();
    let small = client
        .post(server.url("/"))
        .body("four")
        .send()
        .await
        .expect("POST");
    assert_eq!(small.status(), 200);
    assert_eq!(small.text().await.expect("body"), "four");
    let big = client
        .post(server.url("/"))
        .body("five!")
        .send()
        .await
        .expect("POST");
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        big.text().await.expect("body"),
        format!("{:?}", BodyError::TooLarge { limit: 4 })
    );
    server.stop().await;
}

#[tokio::test]
async fn chunked_body_over_max_body_size_gives_the_handler_too_large_413() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .max_body_size(16)
            .content("/", body_echo(&events)),
    )
    .await;
    let raw = Raw::parse(
        &common::raw(
            server.addr,
            b"POST /echo HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
              Transfer-Encoding: chunked\r\n\r\n\
              a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
        )
        .await,
    );
    assert_eq!(raw.status, 413, "{raw:?}");
    assert_eq!(
        events.all(),
        [format!("{:?}", BodyError::TooLarge { limit: 16 })]
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 9. HTTP/2
// ---------------------------------------------------------------------------

#[tokio::test]
async fn http2_prior_knowledge_runs_the_same_phases() {
    let events = Events::default();
    let content = {
        let events = events.clone();
        move |req: Request, res: Response| {
            events.push(format!("content {:?} {}", req.version(), req.path()));
            res.set_body(req.url());
            Outcome::Ok
        }
    };
    let server = common::start(
        Server::builder()
            .trans(record(&events, "trans"))
            .pre("/", record(&events, "pre /"))
            .pre("/h2/", record(&events, "pre /h2/"))
            .content("/", content)
            .post("/", record(&events, "post /")),
    )
    .await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(common::PATIENCE)
        .build()
        .expect("client");
    let response = client
        .get(server.url("/h2/x?y=1"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key(header::SERVER));
    assert_eq!(
        response.text().await.expect("body"),
        format!("http://{}/h2/x?y=1", server.addr)
    );
    assert_eq!(
        events.wait_for(5).await,
        [
            "trans",
            "pre /",
            "pre /h2/",
            &format!("content {:?} /h2/x", Version::HTTP_2),
            "post /"
        ]
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 10. Build errors
// ---------------------------------------------------------------------------

fn build_error(builder: poco_httpd::ServerBuilder) -> Error {
    match builder.build() {
        Ok(server) => panic!("expected a build error, got {server:?}"),
        Err(error) => error,
    }
}

#[test]
fn build_without_a_content_handler_fails() {
    let error = build_error(Server::builder());
    assert!(matches!(error, Error::NoContentHandler), "{error:?}");
    assert!(error.to_string().contains("content("), "{error}");

    let only_other_phases = Server::builder()
        .pre("/", |_req: Request, _res: Response| Outcome::Ok)
        .post("/", |_req: Request, _res: Response| Outcome::Ok);
    let error = build_error(only_other_phases);
    assert!(matches!(error, Error::NoContentHandler), "{error:?}");
}

#[test]
fn build_refuses_paths_not_starting_with_a_slash() {
    for path in ["foo/", "foo.html", "", "*"] {
        let error = build_error(Server::builder().content(path, reply("x")));
        match &error {
            Error::InvalidPath { path: p, .. } => assert_eq!(p, path),
            other => panic!("{path:?}: expected InvalidPath, got {other:?}"),
        }
        let message = error.to_string();
        assert!(message.contains(&format!("{path:?}")), "{message}");
        assert!(message.contains("start with '/'"), "{message}");
    }
}

#[test]
fn build_refuses_paths_not_in_normal_form() {
    for path in [
        "/a/../b", "/a//b", "/a/./b", "/a/..", "//", "/a%20b", "/%66oo/",
    ] {
        // Whatever phase the path is registered for.
        let builders = [
            Server::builder()
                .content("/", reply("x"))
                .content(path, reply("y")),
            Server::builder()
                .content("/", reply("x"))
                .pre(path, |_req: Request, _res: Response| Outcome::Ok),
            Server::builder()
                .content("/", reply("x"))
                .post(path, |_req: Request, _res: Response| Outcome::Ok),
            Server::builder()
                .content("/", reply("x"))
                .error(path, |_req: Request, _res: Response| Outcome::Ok),
        ];
        for builder in builders {
            let error = build_error(builder);
            match &error {
                Error::InvalidPath { path: p, .. } => assert_eq!(p, path),
                other => panic!("{path:?}: expected InvalidPath, got {other:?}"),
            }
            let message = error.to_string();
            assert!(message.contains(path), "{message}");
            assert!(message.contains("normal form"), "{message}");
        }
    }
}

#[test]
fn build_refuses_two_content_or_error_handlers_on_one_path() {
    let error = build_error(
        Server::builder()
            .content("/x/", reply("one"))
            .content("/x/", reply("two")),
    );
    match &error {
        Error::DuplicateHandler { phase, path } => {
            assert_eq!((*phase, path.as_str()), ("Content", "/x/"));
        }
        other => panic!("expected DuplicateHandler, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("\"/x/\"") && message.contains("Content"),
        "{message}"
    );

    let error = build_error(
        Server::builder()
            .content("/", reply("one"))
            .error("/e", |_req: Request, _res: Response| Outcome::Ok)
            .error("/e", |_req: Request, _res: Response| Outcome::Ok),
    );
    assert!(
        matches!(&error, Error::DuplicateHandler { phase: "Error", path } if path == "/e"),
        "{error:?}"
    );

    // `default_content` is the Content handler of `/`.
    let error = build_error(
        Server::builder()
            .content("/", reply("one"))
            .default_content(reply("two")),
    );
    assert!(
        matches!(&error, Error::DuplicateHandler { phase: "Content", path } if path == "/"),
        "{error:?}"
    );
}

#[test]
fn several_pre_and_post_handlers_on_one_path_are_fine() {
    let built = Server::builder()
        .pre("/x/", |_req: Request, _res: Response| Outcome::Ok)
        .pre("/x/", |_req: Request, _res: Response| Outcome::Ok)
        .post("/x/", |_req: Request, _res: Response| Outcome::Ok)
        .post("/x/", |_req: Request, _res: Response| Outcome::Ok)
        .content("/x/", reply("x"))
        .build();
    assert!(built.is_ok(), "{built:?}");
}

#[test]
fn build_refuses_invalid_default_headers() {
    let error = build_error(
        Server::builder()
            .header("X-Evil", "a\r\nInjected: yes")
            .content("/", reply("x")),
    );
    match &error {
        Error::InvalidHeader { name, .. } => assert_eq!(name, "X-Evil"),
        other => panic!("expected InvalidHeader, got {other:?}"),
    }
    assert!(error.to_string().contains("X-Evil"), "{error}");

    let error = build_error(
        Server::builder()
            .header("Bad Name", "value")
            .content("/", reply("x")),
    );
    assert!(
        matches!(&error, Error::InvalidHeader { name, .. } if name == "Bad Name"),
        "{error:?}"
    );
    assert!(error.to_string().contains("Bad Name"), "{error}");
}

// ---------------------------------------------------------------------------
// 11. Header injection
// ---------------------------------------------------------------------------

/// Asserts `text` (a whole raw response) has no header line called `injected`.
fn assert_not_split(text: &str) {
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    assert!(
        !head
            .lines()
            .any(|line| line.to_ascii_lowercase().starts_with("injected")),
        "response was split: {text:?}"
    );
}

#[tokio::test]
async fn set_header_refuses_cr_lf_and_the_response_is_not_split() {
    let events = Events::default();
    let evil = {
        let events = events.clone();
        move |_req: Request, res: Response| {
            let set = res.try_set_header("X-Evil", "a\r\nInjected: yes");
            let append = res.try_append_header("X-Evil", "b\nInjected: yes");
            let name = res.try_set_header("Injected: yes\r\nX-Name", "c");
            events.push(format!(
                "{} {} {}",
                set.is_err(),
                append.is_err(),
                name.is_err()
            ));
            res.set_body("body");
            Outcome::Ok
        }
    };
    let server = common::start(Server::builder().content("/", evil)).await;
    let text = common::raw(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(events.all(), ["true true true"]);
    assert_not_split(&text);
    let raw = Raw::parse(&text);
    assert_eq!(raw.status, 200);
    assert!(raw.all("x-evil").is_empty(), "{raw:?}");
    assert_eq!(raw.body, "body");
    server.stop().await;
}

#[tokio::test]
async fn invalid_content_type_answers_500_without_splitting() {
    let server = common::start(
        Server::builder().content("/", |_req: Request, res: Response| {
            res.set_content_type("text/html\r\nInjected: yes");
            res.set_body("body");
            Outcome::Ok
        }),
    )
    .await;
    let text = common::raw(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_not_split(&text);
    assert_eq!(Raw::parse(&text).status, 500);
    server.stop().await;
}

#[tokio::test]
async fn cookie_values_cannot_split_the_response() {
    let server = common::start(
        Server::builder().content("/", |_req: Request, res: Response| {
            res.add_cookie(Cookie::new("c", "x\r\nInjected: yes"));
            res.set_body("body");
            Outcome::Ok
        }),
    )
    .await;
    let text = common::raw(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_not_split(&text);
    let raw = Raw::parse(&text);
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body, "body");
    server.stop().await;
}
