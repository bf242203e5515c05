//! The original module's synopsis, end to end.

mod common;

use poco_httpd::{Outcome, Request, Response, Server};

#[tokio::test]
async fn hello_answers_with_the_fetched_path() {
    let server = common::start(
        Server::builder().content("/", |req: Request, res: Response| {
            res.set_body(format!("Hi, you fetched {}", req.path()));
            Outcome::Ok
        }),
    )
    .await;
    let body = server.text(&common::client(), "/a/b.txt").await;
    assert_eq!(body, "Hi, you fetched /a/b.txt");
    server.stop().await;
}
