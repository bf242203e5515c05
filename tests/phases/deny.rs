//! `Deny` in each phase: Trans goes on to mapping, Pre and Content answer 403 unless
//! the handler set an error status, Post stops the rest of the Post list.

use poco_httpd::http::{StatusCode, header};
use poco_httpd::{Outcome, Request, Response, Server};

use crate::check;
use crate::common::{self, Events};

#[tokio::test]
async fn trans_deny_stops_the_trans_list_but_mapping_pre_and_content_still_run() {
    let events = Events::default();
    let builder = Server::builder()
        .trans(events.record("trans first"))
        .trans(events.deny("trans deny"))
        .trans(events.record("trans after deny"))
        .pre("/", events.record("pre"))
        .content("/", events.answer("content"));
    let logged = ["trans first", "trans deny", "pre", "content"];
    check(builder, &events, "/x", (200, "content"), &logged).await;
}

#[tokio::test]
async fn trans_rewrite_before_deny_is_still_mapped() {
    let events = Events::default();
    let builder = Server::builder()
        .trans(|req: Request, _res: Response| {
            req.set_uri("/new/x").expect("valid URI");
            Outcome::Deny
        })
        .content("/", events.answer("root"))
        .content("/new/", events.answer("new"));
    check(builder, &events, "/old/x", (200, "new"), &["new"]).await;
}

#[tokio::test]
async fn pre_deny_answers_403_and_skips_later_pre_handlers_and_content() {
    let events = Events::default();
    let deny = events.handler(|events, _req, res| {
        events.push("pre deny");
        res.set_body("partial secret");
        Outcome::Deny
    });
    let server = common::start(
        Server::builder()
            .pre("/", events.record("pre /"))
            .pre("/private/", deny)
            .pre("/private/", events.record("pre after deny"))
            .pre("/private/deep/", events.record("pre deeper"))
            .content("/", events.answer("content")),
    )
    .await;
    let client = common::client();
    let (status, body) = server.get(&client, "/private/deep/x").await;
    assert_eq!(status, 403);
    assert!(!body.contains("secret"), "{body:?}");
    assert_eq!(events.all(), ["pre /", "pre deny"]);
    // Other paths are unaffected.
    events.clear();
    assert_eq!(
        server.get(&client, "/public").await,
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
            .content("/", events.answer("content")),
    )
    .await;
    let answer = server.raw_get("/x").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.all("www-authenticate"), ["Basic realm=\"poco\""]);
    assert!(events.all().is_empty(), "{:?}", events.all());
    server.stop().await;
}

#[tokio::test]
async fn content_deny_answers_403_without_the_body_it_set() {
    let builder = Server::builder()
        .content("/", common::answer("fine"))
        .content("/no/", |_req: Request, res: Response| {
            res.set_body("half-built secret");
            Outcome::Deny
        });
    let server = common::start(builder).await;
    let client = common::client();
    let (status, body) = server.get(&client, "/no/x").await;
    assert_eq!(status, 403);
    assert!(!body.contains("secret"), "{body:?}");
    assert_eq!(server.get(&client, "/yes").await, (200, "fine".into()));
    server.stop().await;
}

#[tokio::test]
async fn content_deny_keeps_an_error_status_the_handler_set() {
    let teapot = |_req: Request, res: Response| {
        res.set_status(StatusCode::IM_A_TEAPOT);
        Outcome::Deny
    };
    let answer = common::get_once(Server::builder().content("/", teapot), "/").await;
    assert_eq!(answer.status, 418);
}

#[tokio::test]
async fn post_deny_stops_the_remaining_post_handlers() {
    let events = Events::default();
    let push = events.handler(|events, req, _res| {
        req.push_post_handler(events.record("pushed post"));
        Outcome::Ok
    });
    let builder = Server::builder()
        .post("/", events.record("post first"))
        .post("/", events.deny("post deny"))
        .post("/", events.record("post after deny"))
        .post("/log/", events.record("post deeper"))
        .pre("/", push)
        .content("/", events.answer("content"));
    let logged = ["content", "post first", "post deny"];
    check(builder, &events, "/log/x", (200, "content"), &logged).await;
}
