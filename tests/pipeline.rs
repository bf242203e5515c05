//! The phase pipeline end to end: stacking, outcomes, phase powers, Send, Post after
//! flush, Error, keep-alive, Wait, shutdown and panics — over real TCP.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Events, PATIENCE};
use poco_httpd::cookie::Cookie;
use poco_httpd::{Error, Outcome, Request, Response, Server};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// A handler that logs `name` and returns `outcome`.
fn log(events: &Events, name: &str, outcome: Outcome) -> impl poco_httpd::Handler {
    let (events, name) = (events.clone(), name.to_string());
    move |_req: Request, _res: Response| {
        events.push(name.clone());
        outcome
    }
}

/// A Content handler answering `name`.
fn answer(name: &'static str) -> impl poco_httpd::Handler {
    move |_req: Request, res: Response| {
        res.set_body(name);
        Outcome::Ok
    }
}

#[tokio::test]
async fn pre_handlers_stack_from_the_root_to_the_file_in_fifo_order() {
    let events = Events::default();
    let mut builder = Server::builder().content("/", answer("top"));
    for key in [
        "/",
        "/foo/",
        "/foo/bar/",
        "/foo/bar/baz/",
        "/foo/bar/baz/honk.txt",
        "/other/",
        "/foo/bar",
    ] {
        builder = builder.pre(key, log(&events, key, Outcome::Ok));
    }
    builder = builder.pre("/foo/", log(&events, "/foo/ again", Outcome::Ok));
    let server = common::start(builder).await;
    common::client()
        .get(server.url("/foo/bar/baz/honk.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.all(),
        [
            "/",
            "/foo/",
            "/foo/ again",
            "/foo/bar/",
            "/foo/bar/baz/",
            "/foo/bar/baz/honk.txt"
        ]
    );
    server.stop().await;
}

/// The original module's own scenarios.
async fn seed_server() -> common::TestServer {
    common::start(
        Server::builder()
            .content("/", answer("top"))
            .content("/honk/", answer("honk"))
            .content("/bonk/zip.html", |_req: Request, res: Response| {
                res.set_content_type("text/html");
                res.set_body("<html>zip</html>");
                Outcome::Ok
            }),
    )
    .await
}

const SEED_CASES: [(&str, &str); 3] = [
    ("/", "top"),
    ("/honk/something.html", "honk"),
    ("/bonk/zip.html", "<html>zip</html>"),
];

#[tokio::test]
async fn the_seed_scenarios_on_fresh_connections() {
    let server = seed_server().await;
    for (path, body) in SEED_CASES {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = common::raw(server.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        assert!(answer.ends_with(body), "{path}: {answer}");
        if path.ends_with(".html") && path.starts_with("/bonk") {
            assert!(
                answer.to_lowercase().contains("content-type: text/html"),
                "{answer}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn the_seed_scenarios_over_one_keep_alive_connection() {
    let server = seed_server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    for (path, body) in SEED_CASES {
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let answer = common::read_response(&mut stream).await;
        assert!(answer.ends_with(body), "{path}: {answer}");
    }
    server.stop().await;
}

#[tokio::test]
async fn file_and_directory_keys_are_different() {
    let server = common::start(
        Server::builder()
            .content("/", answer("top"))
            .content("/honk", answer("file"))
            .content("/honk/", answer("dir")),
    )
    .await;
    let client = common::client();
    for (path, expected) in [
        ("/honk", "file"),
        ("/honk/", "dir"),
        ("/honk/x", "dir"),
        ("/honky", "top"),
    ] {
        let body = client
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, expected, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn matching_uses_the_normalized_path_and_refuses_unsafe_ones() {
    let server = common::start(Server::builder().content("/", answer("top")).content(
        "/foo/",
        |req: Request, res: Response| {
            res.set_body(format!("foo sees {}", req.path()));
            Outcome::Ok
        },
    ))
    .await;
    for (path, expected) in [
        ("/x/../foo/a", "foo sees /foo/a"),
        ("/%66oo/b%20c", "foo sees /foo/b c"),
    ] {
        let answer = common::raw(
            server.addr,
            format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.ends_with(expected), "{path}: {answer}");
    }
    for path in ["/foo/a%2Fb", "/foo/a%00b"] {
        let answer = common::raw(
            server.addr,
            format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.0 400"), "{path}: {answer}");
    }
    server.stop().await;
}

#[tokio::test]
async fn deny_stops_trans_refuses_in_pre_and_content_and_keeps_an_error_status() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .trans(log(&events, "trans 1", Outcome::Deny))
            .trans(log(&events, "trans 2", Outcome::Ok))
            .content("/", answer("open"))
            .pre("/closed/", log(&events, "pre closed", Outcome::Deny))
            .content("/closed/", log(&events, "content closed", Outcome::Ok))
            .pre("/auth/", |_req: Request, res: Response| {
                res.set_status(poco_httpd::http::StatusCode::UNAUTHORIZED);
                res.set_header("www-authenticate", "Basic realm=\"x\"")
                    .unwrap();
                Outcome::Deny
            })
            .content("/denied", log(&events, "content denied", Outcome::Deny)),
    )
    .await;
    let client = common::client();
    let open = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(open.text().await.unwrap(), "open");
    assert_eq!(
        events.all(),
        ["trans 1"],
        "Deny stops the Trans list, mapping goes on"
    );
    events.clear();
    assert_eq!(
        client
            .get(server.url("/closed/x"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(events.all(), ["trans 1", "pre closed"], "Content skipped");
    let auth = client.get(server.url("/auth/")).send().await.unwrap();
    assert_eq!(auth.status(), 401);
    assert_eq!(auth.headers()["www-authenticate"], "Basic realm=\"x\"");
    assert_eq!(
        client
            .get(server.url("/denied"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    server.stop().await;
}

#[tokio::test]
async fn post_deny_stops_the_post_list() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .content("/", answer("x"))
            .post("/", log(&events, "post 1", Outcome::Deny))
            .post("/", log(&events, "post 2", Outcome::Ok))
            .post("/", log(&events, "marker", Outcome::Ok)),
    )
    .await;
    common::client().get(server.url("/")).send().await.unwrap();
    events.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(events.all(), ["post 1"]);
    server.stop().await;
}

#[tokio::test]
async fn trans_rewrites_pre_replaces_content_and_pushes_post_with_typed_data() {
    #[derive(Clone)]
    struct Tag(&'static str);
    let events = Events::default();
    let post_log = events.clone();
    let server = common::start(
        Server::builder()
            .trans(|req: Request, _res: Response| {
                if req.path().starts_with("/old/") {
                    req.set_uri(req.uri().path().replacen("/old/", "/new/", 1))
                        .unwrap();
                }
                Outcome::Ok
            })
            .content("/", answer("top"))
            .content("/new/", |req: Request, res: Response| {
                res.set_body(format!("new {} from {}", req.uri(), req.original_uri()));
                Outcome::Ok
            })
            .pre("/swap/", move |req: Request, _res: Response| {
                req.insert_extension(Tag("from pre"));
                req.set_content_handler(|req: Request, res: Response| {
                    res.set_body(format!(
                        "swapped, {}",
                        req.extension::<Tag>().map_or("-", |t| t.0)
                    ));
                    Outcome::Ok
                });
                let post_log = post_log.clone();
                req.push_post_handler(move |req: Request, _res: Response| {
                    post_log.push(format!(
                        "pushed post sees {}",
                        req.extension::<Tag>().map_or("-", |t| t.0)
                    ));
                    Outcome::Ok
                });
                Outcome::Ok
            })
            .content("/swap/", answer("mapped"))
            .post("/", log(&events, "mapped post", Outcome::Ok)),
    )
    .await;
    let client = common::client();
    let rewritten = client
        .get(server.url("/old/a"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(rewritten, "new /new/a from /old/a");
    events.wait_for(1).await;
    events.clear();
    let swapped = client
        .get(server.url("/swap/x"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(swapped, "swapped, from pre");
    assert_eq!(
        events.wait_for(2).await,
        ["mapped post", "pushed post sees from pre"]
    );
    server.stop().await;
}

#[tokio::test]
async fn send_adds_default_headers_date_length_and_cookies() {
    let server = common::start(
        Server::builder()
            .header("X-Default", "default")
            .header("X-Overridden", "default")
            .content("/", |req: Request, res: Response| {
                res.set_header("x-overridden", "handler").unwrap();
                res.add_cookie(Cookie::build(("a", "1")).path("/"));
                res.add_cookie(Cookie::new("b", "2"));
                res.set_body(format!(
                    "cookie c={}",
                    req.cookie("c")
                        .map_or("-".into(), |c| c.value().to_string())
                ));
                Outcome::Ok
            }),
    )
    .await;
    let response = common::client()
        .get(server.url("/"))
        .header("cookie", "c=3; d=4")
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    assert_eq!(
        headers["server"],
        concat!("poco-httpd/", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(headers["x-default"], "default");
    assert_eq!(headers["x-overridden"], "handler");
    assert!(headers.contains_key("date"));
    let cookies: Vec<_> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
    assert_eq!(headers["content-length"], "10");
    assert_eq!(response.text().await.unwrap(), "cookie c=3");
    server.stop().await;
}

#[tokio::test]
async fn the_server_header_can_be_replaced_or_removed() {
    let replaced = common::start(
        Server::builder()
            .header("Server", "My Server")
            .content("/", answer("x")),
    )
    .await;
    let removed = common::start(
        Server::builder()
            .remove_header("Server")
            .content("/", answer("x")),
    )
    .await;
    let client = common::client();
    let a = client.get(replaced.url("/")).send().await.unwrap();
    let b = client.get(removed.url("/")).send().await.unwrap();
    assert_eq!(a.headers()["server"], "My Server");
    assert!(!b.headers().contains_key("server"));
    replaced.stop().await;
    removed.stop().await;
}

#[test]
fn bad_configurations_are_refused_with_what_to_fix() {
    let no_content = Server::builder().pre("/", answer("x")).build().unwrap_err();
    assert!(matches!(no_content, Error::NoContentHandler));
    assert!(no_content.to_string().contains("content("));
    for path in ["foo/", "/a/../b", "/a//b"] {
        let error = Server::builder()
            .content(path, answer("x"))
            .build()
            .unwrap_err();
        assert!(matches!(error, Error::InvalidPath { .. }), "{path}");
        assert!(error.to_string().contains(path), "{error}");
    }
    let twice = Server::builder()
        .content("/a/", answer("1"))
        .content("/a/", answer("2"))
        .build()
        .unwrap_err();
    assert!(
        matches!(
            twice,
            Error::DuplicateHandler {
                phase: "Content",
                ..
            }
        ),
        "{twice}"
    );
    let header = Server::builder()
        .header("X", "a\r\nb")
        .content("/", answer("x"))
        .build()
        .unwrap_err();
    assert!(matches!(header, Error::InvalidHeader { .. }), "{header}");
}

#[tokio::test]
async fn request_facts_are_available_to_handlers() {
    let server = common::start(Server::builder().hostname("example.org").content(
        "/",
        |req: Request, res: Response| async move {
            let body = req.body().await.map(|b| b.len()).unwrap_or(0);
            res.set_body(format!(
                "{} {:?} {} {} {} {}",
                req.method(),
                req.version(),
                req.url(),
                req.query().unwrap_or_default(),
                req.connection().remote_addr().ip(),
                body
            ));
            Outcome::Ok
        },
    ))
    .await;
    let with_host = common::client()
        .post(server.url("/p?q=1"))
        .body("12345")
        .send()
        .await
        .unwrap();
    let expected = format!("POST HTTP/1.1 http://{}/p?q=1 q=1 127.0.0.1 5", server.addr);
    assert_eq!(with_host.text().await.unwrap(), expected);
    let without_host = common::raw(server.addr, b"GET /p HTTP/1.0\r\n\r\n").await;
    assert!(
        without_host.ends_with("GET HTTP/1.0 http://example.org/p  127.0.0.1 0"),
        "{without_host}"
    );
    server.stop().await;
}

#[tokio::test]
async fn http2_prior_knowledge_runs_the_same_phases() {
    let events = Events::default();
    let server = common::start(
        Server::builder()
            .pre("/", log(&events, "pre", Outcome::Ok))
            .content("/", answer("h2"))
            .post("/", log(&events, "post", Outcome::Ok)),
    )
    .await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.text().await.unwrap(), "h2");
    assert_eq!(events.wait_for(2).await, ["pre", "post"]);
    server.stop().await;
}

#[tokio::test]
async fn a_slow_post_handler_delays_neither_the_response_nor_the_next_request() {
    let release = Arc::new(Notify::new());
    let events = Events::default();
    let (post_release, post_log) = (Arc::clone(&release), events.clone());
    let server = common::start(Server::builder().content("/", answer("done")).post(
        "/",
        move |req: Request, res: Response| {
            let (release, log) = (Arc::clone(&post_release), post_log.clone());
            async move {
                log.push(format!(
                    "post start {} {} {}",
                    req.path(),
                    res.status().as_u16(),
                    res.is_error()
                ));
                release.notified().await;
                log.push("post end");
                Outcome::Ok
            }
        },
    ))
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(common::read_response(&mut stream).await.ends_with("done"));
    assert_eq!(events.wait_for(1).await, ["post start /first 200 false"]);
    // The first Post handler is still blocked; the connection serves the next request.
    stream
        .write_all(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(common::read_response(&mut stream).await.ends_with("done"));
    assert!(!events.all().contains(&"post end".to_string()));
    release.notify_waiters();
    release.notify_one();
    events.wait_for(3).await;
    server.stop().await;
}

/// A server with Error and Post handlers on `/` and a Content handler that reads the
/// body, or is slow on `/slow`.
async fn error_server(events: &Events) -> common::TestServer {
    let (error_log, post_log) = (events.clone(), events.clone());
    common::start(
        Server::builder()
            .content("/", |req: Request, res: Response| async move {
                let _ = req.body().await;
                res.set_body("ok");
                Outcome::Ok
            })
            .content("/slow", |_req: Request, res: Response| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                res.set_body("slow");
                Outcome::Ok
            })
            .error("/", move |req: Request, res: Response| {
                let cause_given = req.error_cause().is_some_and(|c| !c.is_empty());
                error_log.push(format!(
                    "error {} {} {cause_given}",
                    req.is_error(),
                    res.is_error()
                ));
                Outcome::Ok
            })
            .post("/", move |req: Request, _res: Response| {
                post_log.push(format!("post {}", req.is_error()));
                Outcome::Ok
            }),
    )
    .await
}

async fn assert_still_serving(server: &common::TestServer) {
    let answer = common::raw(server.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(answer.ends_with("ok"), "{answer}");
}

#[tokio::test]
async fn a_client_that_sends_half_a_body_then_closes_reaches_the_error_handler() {
    let events = Events::default();
    let server = error_server(&events).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    drop(stream);
    assert_eq!(
        events.wait_for(2).await,
        ["error true true true", "post true"]
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_sends_half_a_head_then_closes_reaches_the_error_handler() {
    let events = Events::default();
    let server = error_server(&events).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET /x HTTP/1.1\r\nHo").await.unwrap();
    drop(stream);
    assert_eq!(
        events.wait_for(2).await,
        ["error true true true", "post true"]
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_closes_right_after_its_request_reaches_the_error_handler() {
    let events = Events::default();
    let server = error_server(&events).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    drop(stream);
    assert_eq!(
        events.wait_for(2).await,
        ["error true true true", "post true"]
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn closing_an_idle_keep_alive_connection_is_not_an_error() {
    let events = Events::default();
    let server = error_server(&events).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(common::read_response(&mut stream).await.ends_with("ok"));
    drop(stream);
    assert_eq!(events.wait_for(1).await, ["post false"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(events.all(), ["post false"]);
    server.stop().await;
}

#[tokio::test]
async fn keep_alive_follows_the_connection_header_and_version() {
    let server = common::start(Server::builder().content("/", answer("k"))).await;
    // HTTP/1.1 keeps the connection; a `close` token anywhere in the list ends it.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(common::read_response(&mut stream).await.ends_with("k"));
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Foo, CLOSE\r\n\r\n")
        .await
        .unwrap();
    let last = common::read_to_close(&mut stream).await;
    assert!(last.ends_with("k"), "{last}");
    // HTTP/1.0 closes unless keep-alive was asked for.
    let closed = common::raw(server.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(closed.ends_with("k"));
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..2 {
        kept.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await
            .unwrap();
        assert!(common::read_response(&mut kept).await.ends_with("k"));
    }
    server.stop().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = common::start(Server::builder().content(
        "/",
        |req: Request, res: Response| async move {
            if req.path().as_ref() == "/first" {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            res.set_body(req.path().to_string());
            Outcome::Ok
        },
    ))
    .await;
    let requests = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\nGET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = common::raw(server.addr, requests).await;
    let order: Vec<_> = ["/first", "/second", "/third"]
        .iter()
        .map(|p| answer.find(&format!("\r\n\r\n{p}")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn wait_is_resumed_from_a_task_a_thread_twice_or_early_without_blocking_others() {
    let server = common::start(
        Server::builder()
            .content("/", answer("fast"))
            .trans(|req: Request, res: Response| {
                if req.path().as_ref() == "/trans-wait" {
                    let res = res.clone();
                    tokio::spawn(async move { res.resume() });
                    return Outcome::Wait;
                }
                Outcome::Ok
            })
            .content("/task", |_req: Request, res: Response| {
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    res.set_body("from a task");
                    res.resume();
                });
                Outcome::Wait
            })
            .content("/thread", |_req: Request, res: Response| {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    res.set_body("from a thread");
                    res.resume();
                    res.resume();
                });
                Outcome::Wait
            })
            .content("/early", |_req: Request, res: Response| {
                res.set_body("resumed before waiting");
                res.resume();
                Outcome::Wait
            })
            .content("/trans-wait", answer("after trans wait")),
    )
    .await;
    let client = common::client();
    let slow = {
        let client = client.clone();
        let url = server.url("/task");
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
    };
    assert_eq!(
        client
            .get(server.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "fast"
    );
    assert_eq!(slow.await.unwrap(), "from a task");
    for (path, expected) in [
        ("/thread", "from a thread"),
        ("/early", "resumed before waiting"),
        ("/trans-wait", "after trans wait"),
    ] {
        let body = client
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, expected);
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_from_a_thread_finishes_requests_in_flight_then_refuses() {
    let server = common::start(Server::builder().content(
        "/",
        |_req: Request, res: Response| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            res.set_body("finished");
            Outcome::Ok
        },
    ))
    .await;
    let addr = server.addr;
    let in_flight =
        tokio::spawn(async move { common::raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let handle = server.shutdown.clone();
    std::thread::spawn(move || handle.shutdown())
        .join()
        .unwrap();
    let answer = in_flight.await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("finished"),
        "{answer}"
    );
    server.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_before_run_and_past_the_deadline_still_returns() {
    let early = Server::builder().content("/", answer("x")).build().unwrap();
    early.shutdown_handle().shutdown();
    tokio::time::timeout(PATIENCE, early.bind().await.unwrap().run())
        .await
        .expect("returns at once");

    let server = Server::builder()
        .listen("127.0.0.1:0")
        .shutdown_deadline(Duration::from_millis(200))
        .content("/", |_req: Request, _res: Response| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Outcome::Ok
        })
        .build()
        .unwrap()
        .bind()
        .await
        .unwrap();
    let (addr, handle) = (server.local_addr(), server.shutdown_handle());
    let run = tokio::spawn(server.run());
    let mut stuck = TcpStream::connect(addr).await.unwrap();
    stuck
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("cut at the deadline")
        .unwrap();
}

#[tokio::test]
async fn a_panic_in_any_phase_answers_500_and_the_server_keeps_serving() {
    let events = Events::default();
    let post_log = events.clone();
    let server = common::start(
        Server::builder()
            .trans(|req: Request, _res: Response| {
                assert!(req.path().as_ref() != "/trans", "trans panics");
                Outcome::Ok
            })
            .pre("/pre/", |_req: Request, _res: Response| -> Outcome {
                panic!("pre panics")
            })
            .content("/", answer("fine"))
            .content("/content", |_req: Request, _res: Response| async move {
                tokio::task::yield_now().await;
                panic!("async content panics after an await")
            })
            .post("/", |req: Request, _res: Response| {
                assert!(req.path().as_ref() != "/post-panic", "post panics");
                Outcome::Ok
            })
            .post("/", move |req: Request, _res: Response| {
                post_log.push(format!("later post {}", req.path()));
                Outcome::Ok
            }),
    )
    .await;
    let client = common::client();
    for path in ["/trans", "/pre/x", "/content"] {
        assert_eq!(
            client.get(server.url(path)).send().await.unwrap().status(),
            500,
            "{path}"
        );
    }
    assert_eq!(
        client
            .get(server.url("/post-panic"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let seen = events.wait_for(4).await;
    assert!(
        seen.contains(&"later post /post-panic".to_string()),
        "{seen:?}"
    );
    assert_eq!(
        client
            .get(server.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "fine"
    );
    server.stop().await;
}

#[tokio::test]
async fn resuming_a_request_whose_client_left_is_harmless() {
    let events = Events::default();
    let parked: Arc<std::sync::Mutex<Option<Response>>> = Arc::default();
    let (park, error_log) = (Arc::clone(&parked), events.clone());
    let server = common::start(
        Server::builder()
            .content("/", answer("still serving"))
            .content("/park", move |_req: Request, res: Response| {
                *park.lock().unwrap() = Some(res);
                Outcome::Wait
            })
            .error("/", move |req: Request, _res: Response| {
                error_log.push(format!("error {}", req.path()));
                Outcome::Ok
            }),
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while parked.lock().unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request reached its handler"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(stream);
    assert_eq!(events.wait_for(1).await, ["error /park"]);
    let response = parked.lock().unwrap().take().unwrap();
    response.set_body("too late");
    response.resume();
    response.resume();
    let answer = common::raw(server.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(answer.ends_with("still serving"), "{answer}");
    server.stop().await;
}
