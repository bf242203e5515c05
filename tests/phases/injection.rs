//! Header injection: CR and LF in anything a handler puts into the head are refused,
//! and the response is never split.

use poco_httpd::cookie::Cookie;
use poco_httpd::{Handler, Outcome, Request, Response, Server};

use crate::common::{self, Events, Raw};

/// Starts a server whose Content handler is `handler`, GETs `/` and asserts the
/// answer has no header line called `injected`.
async fn answer_unsplit(handler: impl Handler) -> Raw {
    let answer = common::get_once(Server::builder().content("/", handler), "/").await;
    assert!(
        !answer
            .headers
            .iter()
            .any(|(name, _)| name.starts_with("injected")),
        "response was split: {answer:?}"
    );
    answer
}

#[tokio::test]
async fn set_header_refuses_cr_lf_and_the_response_is_not_split() {
    let events = Events::default();
    let evil = events.handler(|events, _req, res| {
        let set = res.try_set_header("X-Evil", "a\r\nInjected: yes");
        let append = res.try_append_header("X-Evil", "b\nInjected: yes");
        let name = res.try_set_header("Injected: yes\r\nX-Name", "c");
        let refused = [set, append, name].map(|result| result.is_err());
        events.push(format!("refused {refused:?}"));
        res.set_body("body");
        Outcome::Ok
    });
    let answer = answer_unsplit(evil).await;
    assert_eq!(events.all(), ["refused [true, true, true]"]);
    assert_eq!(answer.status, 200);
    assert!(answer.all("x-evil").is_empty(), "{answer:?}");
    assert_eq!(answer.body, "body");
}

#[tokio::test]
async fn invalid_content_type_answers_500_without_splitting() {
    let answer = answer_unsplit(|_req: Request, res: Response| {
        res.set_content_type("text/html\r\nInjected: yes");
        res.set_body("body");
        Outcome::Ok
    })
    .await;
    assert_eq!(answer.status, 500);
}

#[tokio::test]
async fn cookie_values_cannot_split_the_response() {
    let answer = answer_unsplit(|_req: Request, res: Response| {
        res.add_cookie(Cookie::new("c", "x\r\nInjected: yes"));
        res.set_body("body");
        Outcome::Ok
    })
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "body");
}
