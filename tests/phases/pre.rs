//! Pre handlers: stacked from the root to the file, and what they may change for
//! the rest of the request (its Content handler, typed extensions).

use poco_httpd::{Outcome, Request, Response, Server, ServerBuilder};

use crate::common::{self, Events};
use crate::{check, recorders};

#[tokio::test]
async fn pre_handlers_stack_from_the_root_to_the_file_in_fifo_order() {
    let events = Events::default();
    // Registered deepest first, to show the order comes from the path, not from
    // registration; the two handlers of `/foo/bar/` keep their registration order.
    // Then unrelated keys: a sibling directory, a file named like a directory on the
    // path, a directory named like the file, another file.
    let keys = [
        "/foo/bar/baz/honk.txt",
        "/foo/bar/baz/",
        "/foo/bar/",
        "/foo/",
        "/foo/bar/",
        "/",
        "/other/",
        "/foo/baz/",
        "/foo",
        "/foo/bar/baz",
        "/foo/bar/baz/honk.txt/",
        "/foo/bar/baz/honk",
    ];
    let builder = Server::builder().content("/", events.answer("content"));
    let builder = recorders(builder, ServerBuilder::pre, |key| events.record(key), &keys);
    let logged = [
        "/",
        "/foo/",
        "/foo/bar/",
        "/foo/bar/ again",
        "/foo/bar/baz/",
        "/foo/bar/baz/honk.txt",
        "content",
    ];
    let path = "/foo/bar/baz/honk.txt";
    check(builder, &events, path, (200, "content"), &logged).await;
}

#[tokio::test]
async fn pre_set_content_handler_replaces_content_for_that_request_only() {
    let events = Events::default();
    let swap = events.handler(|events, req, _res| {
        if req.header("x-swap").is_some() {
            req.set_content_handler(events.answer("replacement"));
        }
        Outcome::Ok
    });
    let server = common::start(
        Server::builder()
            .pre("/s/", swap)
            .content("/", events.answer("root"))
            .content("/s/", events.answer("mapped")),
    )
    .await;
    let client = common::client();
    let swapping = client.get(server.url("/s/x")).header("x-swap", "1");
    assert_eq!(common::fetch(swapping).await.1, "replacement");
    // The next request, on the same keep-alive connection, gets the mapped one again.
    assert_eq!(server.get(&client, "/s/x").await, (200, "mapped".into()));
    assert_eq!(events.all(), ["replacement", "mapped"]);
    server.stop().await;
}

#[tokio::test]
async fn the_last_set_content_handler_wins() {
    let swap_to = |text: &'static str| {
        move |req: Request, _res: Response| {
            req.set_content_handler(common::answer(text));
            Outcome::Ok
        }
    };
    let server = common::start(
        Server::builder()
            .pre("/", swap_to("from /"))
            .pre("/s/", swap_to("from /s/"))
            .content("/", common::answer("mapped")),
    )
    .await;
    let client = common::client();
    assert_eq!(server.get(&client, "/s/x").await, (200, "from /s/".into()));
    assert_eq!(server.get(&client, "/t").await, (200, "from /".into()));
    server.stop().await;
}

#[tokio::test]
async fn typed_extensions_pass_from_pre_to_content_and_post() {
    #[derive(Clone, Debug, PartialEq)]
    struct User(String);
    #[derive(Clone, Debug, PartialEq)]
    struct Hits(u32);

    let events = Events::default();
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
            .post(
                "/",
                events.log(|req| {
                    let (user, hits) = (req.extension::<User>(), req.extension::<Hits>());
                    format!("post {user:?} {hits:?}")
                }),
            ),
    )
    .await;
    let client = common::client();
    for _ in 0..2 {
        events.clear();
        let answer = server.get(&client, "/").await;
        assert_eq!(answer, (200, "Some(User(\"alice\")) None".into()));
        assert_eq!(
            events.wait_for(1).await,
            ["post Some(User(\"alice\")) Some(Hits(1))"]
        );
    }
    server.stop().await;
}
