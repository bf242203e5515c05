//! The life of a request over real TCP: Post after the flush, the Error handler when
//! the client leaves, keep-alive and pipelining, Wait and shutdown. (Mapping,
//! outcomes and phase powers are in `phases.rs`; panics in `panics.rs`; shutdown
//! under load in `shutdown.rs`.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Events, PATIENCE, answer};
use poco_httpd::{Outcome, Request, Response, Server};
use tokio::net::TcpStream;
use tokio::sync::Notify;

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
    let mut stream = server
        .connect(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(common::read_response(&mut stream).await.ends_with("done"));
    assert_eq!(events.wait_for(1).await, ["post start /first 200 false"]);
    // The first Post handler is still blocked; the connection serves the next request.
    common::send(&mut stream, b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n").await;
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
            .content(
                "/slow",
                common::slow_answer(Duration::from_millis(300), "slow"),
            )
            .error("/", move |req: Request, res: Response| {
                let kind = req.failure().map(poco_httpd::Failure::kind);
                error_log.push(format!(
                    "error {} {} {kind:?}",
                    req.is_error(),
                    res.is_error()
                ));
                Outcome::Ok
            })
            .post("/", move |req: Request, res: Response| {
                post_log.push(format!("post {} {}", req.is_error(), res.status().as_u16()));
                Outcome::Ok
            }),
    )
    .await
}

async fn assert_still_serving(server: &common::TestServer) {
    let answer = server.raw(b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(answer.ends_with("ok"), "{answer}");
}

/// Sends `request` to an [`error_server`] and closes the connection at once; checks
/// that the Error handler was told `failure`, that the Post handlers ran after it, and
/// that the server goes on serving.
async fn check_client_gone(request: &[u8], failure: &str) {
    let events = Events::default();
    let server = error_server(&events).await;
    drop(server.connect(request).await);
    let error = format!("error true true Some({failure})");
    assert_eq!(events.wait_for(2).await, [error.as_str(), "post true 499"]);
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_sends_half_a_body_then_closes_reaches_the_error_handler() {
    let request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
    check_client_gone(request, "BodyRead").await;
}

#[tokio::test]
async fn a_client_that_sends_half_a_head_then_closes_reaches_the_error_handler() {
    check_client_gone(b"GET /x HTTP/1.1\r\nHo", "IncompleteHead").await;
}

#[tokio::test]
async fn a_client_that_closes_right_after_its_request_reaches_the_error_handler() {
    check_client_gone(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", "ClientGone").await;
}

#[tokio::test]
async fn closing_an_idle_keep_alive_connection_is_not_an_error() {
    let events = Events::default();
    let server = error_server(&events).await;
    let mut stream = server.connect(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(common::read_response(&mut stream).await.ends_with("ok"));
    drop(stream);
    assert_eq!(events.settle(1).await, ["post false 200"]);
    server.stop().await;
}

#[tokio::test]
async fn keep_alive_follows_the_connection_header_and_version() {
    let server = common::start(Server::builder().content("/", answer("k"))).await;
    // HTTP/1.1 keeps the connection; a `close` token anywhere in the list ends it.
    let mut stream = server.connect(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(common::read_response(&mut stream).await.ends_with("k"));
    common::send(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Foo, CLOSE\r\n\r\n",
    )
    .await;
    let last = common::read_to_close(&mut stream).await;
    assert!(last.ends_with("k"), "{last}");
    // HTTP/1.0 closes unless keep-alive was asked for.
    let closed = server.raw(b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(closed.ends_with("k"));
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..2 {
        common::send(
            &mut kept,
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        )
        .await;
        assert!(common::read_response(&mut kept).await.ends_with("k"));
    }
    server.stop().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = common::start(Server::builder().content(
        "/",
        |req: Request, res: Response| async move {
            if req.path() == "/first" {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            res.set_body(req.path().to_string());
            Outcome::Ok
        },
    ))
    .await;
    let requests = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\nGET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = server.raw(requests).await;
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
                if req.path() == "/trans-wait" {
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
    assert_eq!(server.text(&client, "/").await, "fast");
    assert_eq!(slow.await.unwrap(), "from a task");
    for (path, expected) in [
        ("/thread", "from a thread"),
        ("/early", "resumed before waiting"),
        ("/trans-wait", "after trans wait"),
    ] {
        let body = server.text(&client, path).await;
        assert_eq!(body, expected);
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_from_a_thread_finishes_requests_in_flight_then_refuses() {
    let finishing = common::slow_answer(Duration::from_millis(300), "finished");
    let server = common::start(Server::builder().content("/", finishing)).await;
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
    common::send(&mut stuck, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("cut at the deadline")
        .unwrap();
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
    let stream = server
        .connect(b"GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
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
    let answer = server.raw(b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(answer.ends_with("still serving"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn run_until_returns_once_its_signal_completes() {
    let server = Server::builder()
        .listen("127.0.0.1:0")
        .content("/", answer("x"))
        .build()
        .unwrap()
        .bind()
        .await
        .unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(server.run_until(stopped));
    let answer = common::raw(addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(answer.ends_with('x'), "serving before the signal: {answer}");
    assert!(!run.is_finished());
    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("returns after the signal")
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}

/// Connections keep the handlers they last used between requests; a reload must still
/// reach a keep-alive connection's next request.
#[tokio::test]
async fn a_keep_alive_connection_gets_the_reloaded_handlers_on_its_next_request() {
    let server = common::start(Server::builder().content("/", answer("old"))).await;
    let request = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";
    let mut stream = server.connect(request).await;
    let before = common::read_response(&mut stream).await;
    assert!(before.ends_with("old"), "{before}");
    (server.reload)
        .reload(Server::builder().content("/", answer("new")))
        .unwrap();
    common::send(&mut stream, request).await;
    let after = common::read_response(&mut stream).await;
    assert!(
        after.ends_with("new"),
        "the same connection, reloaded: {after}"
    );
    drop(stream);
    server.stop().await;
}

#[tokio::test]
async fn reload_swaps_handlers_but_not_for_requests_in_flight() {
    let parked: Arc<std::sync::Mutex<Option<Response>>> = Arc::default();
    let park = Arc::clone(&parked);
    let builder = Server::builder().content("/", answer("old")).content(
        "/park",
        move |_req: Request, res: Response| {
            *park.lock().unwrap() = Some(res);
            Outcome::Wait
        },
    );
    let server = common::start(builder).await;
    let (addr, reload) = (server.addr, &server.reload);
    let in_flight =
        tokio::spawn(async move { common::raw(addr, b"GET /park HTTP/1.0\r\n\r\n").await });
    while parked.lock().unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused = reload.reload(Server::builder().pre("/", answer("no content")));
    assert!(refused.is_err(), "an invalid configuration is refused");
    reload
        .reload(Server::builder().content("/", answer("new")))
        .unwrap();
    let fresh = common::raw(addr, b"GET /park HTTP/1.0\r\n\r\n").await;
    assert!(
        fresh.ends_with("new"),
        "new requests get the new handlers: {fresh}"
    );
    let waiting = parked.lock().unwrap().take().unwrap();
    waiting.set_body("finished by the old handler");
    waiting.resume();
    let old = in_flight.await.unwrap();
    assert!(old.ends_with("finished by the old handler"), "{old}");
    server.stop().await;
}
