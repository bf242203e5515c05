//! Request bodies: read whole by the handler, bounded by `max_body_size` (declared
//! lengths refused before any handler, chunked ones when read) or by a limit of the
//! handler's own.

use poco_httpd::{BodyError, Handler, Outcome, Request, Response, Server, ServerBuilder};

use crate::common::{self, Events};

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

/// A server taking bodies of 16 bytes at most.
fn at_most_16_bytes() -> ServerBuilder {
    Server::builder().max_body_size(16)
}

#[tokio::test]
async fn posted_body_is_read_by_the_handler() {
    let events = Events::default();
    let server = common::start(at_most_16_bytes().content("/", body_echo(&events))).await;
    let answer = server
        .post(&common::client(), "/echo", "exactly16bytes!!")
        .await;
    assert_eq!(answer, (200, "exactly16bytes!!".into()));
    assert!(events.all().is_empty(), "{:?}", events.all());
    server.stop().await;
}

#[tokio::test]
async fn declared_body_over_max_body_size_is_answered_413_before_any_handler() {
    let events = Events::default();
    let server = common::start(
        at_most_16_bytes()
            .trans(events.record("trans"))
            .pre("/", events.record("pre"))
            .content("/", body_echo(&events)),
    )
    .await;
    let (status, _) = server
        .post(&common::client(), "/echo", "seventeen bytes!!")
        .await;
    assert_eq!(status, 413);
    assert!(events.all().is_empty(), "{:?}", events.all());
    server.stop().await;
}

#[tokio::test]
async fn body_with_limit_refuses_a_body_over_its_own_limit() {
    let limited = |req: Request, res: Response| async move {
        match req.body_with_limit(4).await {
            Ok(body) => res.set_body(body),
            Err(error) => {
                res.set_status(error.status());
                res.set_body(format!("{error:?}"));
            }
        }
        Outcome::Ok
    };
    let server = common::start(Server::builder().content("/", limited)).await;
    let client = common::client();
    assert_eq!(
        server.post(&client, "/", "four").await,
        (200, "four".into())
    );
    let too_large = format!("{:?}", BodyError::TooLarge { limit: 4 });
    assert_eq!(server.post(&client, "/", "five!").await, (413, too_large));
    server.stop().await;
}

#[tokio::test]
async fn chunked_body_over_max_body_size_gives_the_handler_too_large_413() {
    let events = Events::default();
    let server = common::start(at_most_16_bytes().content("/", body_echo(&events))).await;
    let raw = server
        .raw_answer(
            b"POST /echo HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
              Transfer-Encoding: chunked\r\n\r\n\
              a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
        )
        .await;
    assert_eq!(raw.status, 413, "{raw:?}");
    assert_eq!(
        events.all(),
        [format!("{:?}", BodyError::TooLarge { limit: 16 })]
    );
    server.stop().await;
}
