//! Post handlers: stacked like Pre handlers, run after the response was written,
//! reading what was sent; handlers pushed for one request.

use poco_httpd::{Outcome, Request, Response, Server, ServerBuilder};

use crate::common::{self, Events};
use crate::{check, recorders};

#[tokio::test]
async fn post_handlers_stack_like_pre_handlers_after_the_response() {
    let events = Events::default();
    // Deepest first, then two unrelated keys.
    let keys = ["/a/b/c.txt", "/a/", "/", "/a/", "/b/", "/a/b/c.txt/"];
    let builder = Server::builder().content("/", events.answer("content"));
    let builder = recorders(
        builder,
        ServerBuilder::post,
        |key| events.record(key),
        &keys,
    );
    let logged = ["content", "/", "/a/", "/a/ again", "/a/b/c.txt"];
    check(builder, &events, "/a/b/c.txt", (200, "content"), &logged).await;
}

#[tokio::test]
async fn post_handlers_read_the_response_headers_the_handlers_set() {
    let events = Events::default();
    let content = |_req: Request, res: Response| {
        res.set_content_type("text/plain");
        for (name, value) in [("x-a", "1"), ("x-a", "2"), ("x-b", "3"), ("x-c", "4")] {
            res.append_header(name, value);
        }
        res.set_body("with headers");
        Outcome::Ok
    };
    let post = events.handler(|events, _req, res| {
        let first = res
            .header("x-b")
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        events.push(format!("x-b {first:?}"));
        let headers = res.headers();
        let mut all: Vec<String> = (headers.iter())
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("?")))
            .collect();
        all.sort();
        events.push(all.join(", "));
        Outcome::Ok
    });
    let server = common::start(Server::builder().content("/", content).post("/", post)).await;
    let answer = server.get(&common::client(), "/").await;
    assert_eq!(answer, (200, "with headers".into()));
    assert_eq!(
        events.wait_for(2).await,
        [
            r#"x-b Some("3")"#,
            "content-type: text/plain, x-a: 1, x-a: 2, x-b: 3, x-c: 4",
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn pushed_post_handler_runs_after_the_mapped_ones_for_that_request_only() {
    let events = Events::default();
    let push = events.handler(|events, req, _res| {
        if let Some(tag) = req.header_text("x-tag") {
            req.push_post_handler(events.record(&format!("pushed {tag}")));
        }
        Outcome::Ok
    });
    let mapped = |label: &'static str| events.log(move |req| format!("{label} {}", req.path()));
    let server = common::start(
        Server::builder()
            .pre("/p/", push)
            .post("/p/", mapped("post /p/"))
            .post("/", mapped("post /"))
            .content("/", common::answer("ok")),
    )
    .await;
    let client = common::client();
    let tagged = client.get(server.url("/p/1")).header("x-tag", "one");
    assert_eq!(common::fetch(tagged).await.0, 200);
    assert_eq!(
        events.wait_for(3).await,
        ["post / /p/1", "post /p/ /p/1", "pushed one"]
    );
    events.clear();
    assert_eq!(server.get(&client, "/p/2").await.0, 200);
    assert_eq!(events.settle(2).await, ["post / /p/2", "post /p/ /p/2"]);
    server.stop().await;
}
