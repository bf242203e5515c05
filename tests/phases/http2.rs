//! HTTP/2 requests run the same phases as HTTP/1.1 ones.

use poco_httpd::Server;
use poco_httpd::http::{Version, header};

use crate::common::{self, Events};

#[tokio::test]
async fn http2_prior_knowledge_runs_the_same_phases() {
    let events = Events::default();
    let content = events.body_from(|events, req| {
        events.push(format!("content {:?} {}", req.version(), req.path()));
        req.url()
    });
    let server = common::start(
        Server::builder()
            .trans(events.record("trans"))
            .pre("/", events.record("pre /"))
            .pre("/h2/", events.record("pre /h2/"))
            .content("/", content)
            .post("/", events.record("post /")),
    )
    .await;
    let response = common::h2_client()
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
