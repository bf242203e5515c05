//! Trans handlers rewriting the request URI before it is mapped.

use poco_httpd::{Outcome, Request, Response, Server};

use crate::check;
use crate::common::{self, Events};

#[tokio::test]
async fn trans_rewrite_changes_the_handlers_that_run() {
    let events = Events::default();
    let report = events.body_from(|events, req| {
        events.push("content /new/");
        let query = req.query().unwrap_or_default();
        let (uri, original, path) = (req.uri(), req.original_uri(), req.path());
        format!("{uri}|{original}|{path}|{query}")
    });
    let builder = Server::builder()
        .trans(|req: Request, _res: Response| {
            let uri = req.uri();
            if let Some(rest) = uri.path().strip_prefix("/old/") {
                let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                req.set_uri(format!("/new/{rest}{query}"))
                    .expect("valid URI");
            }
            Outcome::Ok
        })
        .pre("/old/", events.record("pre /old/"))
        .pre("/new/", events.record("pre /new/"))
        .content("/", events.answer("root"))
        .content("/old/", events.answer("content /old/"))
        .content("/new/", report);
    let answer = "/new/page.html?x=1|/old/page.html?x=1|/new/page.html|x=1";
    let logged = ["pre /new/", "content /new/"];
    check(
        builder,
        &events,
        "/old/page.html?x=1",
        (200, answer),
        &logged,
    )
    .await;
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
            .pre("/", events.record("pre"))
            .content("/", events.answer("content")),
    )
    .await;
    let (status, body) = server.get(&common::client(), "/x").await;
    assert_eq!(status, 400);
    assert_ne!(body, "content");
    assert!(events.all().is_empty(), "{:?}", events.all());
    server.stop().await;
}
