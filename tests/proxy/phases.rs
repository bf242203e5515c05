//! Phases still apply around the proxy: Pre handlers refuse before anything goes
//! upstream; Post handlers run after the proxied answer, with the upstream's
//! address and times.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use poco_httpd::handlers::{BasicAuth, ProxyReport};
use poco_httpd::{Request, Response, Server};

use crate::common::{self, Events};
use crate::proxy_to;

#[tokio::test]
async fn basic_auth_runs_before_anything_goes_upstream() {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let upstream = common::start(Server::builder().content(
        "/",
        move |req: Request, res: Response| {
            counter.fetch_add(1, Ordering::Relaxed);
            res.ok(format!(
                "user seen upstream: {:?}",
                req.header_text("authorization").is_some()
            ))
        },
    ))
    .await;
    let hash = bcrypt::hash("s3cret", 4).expect("hash");
    let auth = BasicAuth::from_htpasswd_text(&format!("alice:{hash}\n"))
        .expect("an htpasswd")
        .realm("app");
    let events = Events::default();
    let proxy = common::start(
        Server::builder()
            .pre("/", auth)
            .content("/", proxy_to(&[upstream.addr.to_string()]))
            .post(
                "/",
                events.log(|req: &Request| {
                    let report = req.extension::<ProxyReport>();
                    match report {
                        None => "post without proxying".to_owned(),
                        Some(report) => format!(
                            "post via {} {:?} head {} total {}",
                            report.upstream().unwrap_or_default(),
                            report.status(),
                            report.head_time().is_some(),
                            report.total_time().is_some()
                        ),
                    }
                }),
            ),
    )
    .await;
    let client = common::client();
    let (status, _) = proxy.get(&client, "/").await;
    assert_eq!(status, 401);
    assert_eq!(asked.load(Ordering::Relaxed), 0, "nothing went upstream");
    let response = client
        .get(proxy.url("/"))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        "user seen upstream: true"
    );
    assert_eq!(
        events.wait_for(2).await,
        [
            "post without proxying".to_owned(),
            format!("post via {} Some(200) head true total true", upstream.addr)
        ]
    );
    proxy.stop().await;
    upstream.stop().await;
}
