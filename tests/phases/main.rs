//! The phase model end to end, one module a topic: directory stacking and the
//! phases' own powers (`pre`, `post`, `trans`), what a path maps to (`mapping`),
//! `Deny` in every phase (`deny`), the original module's scenarios (`original`), the
//! Send phase's headers (`send`), request facts and bodies (`request`, `body`),
//! HTTP/2 (`http2`), build errors (`build`) and header injection (`injection`).

#[path = "../common/mod.rs"]
mod common;

mod body;
mod build;
mod deny;
mod http2;
mod injection;
mod mapping;
mod original;
mod post;
mod pre;
mod request;
mod send;
mod trans;

use common::Events;
use poco_httpd::ServerBuilder;

/// Starts `builder`, GETs `path` and checks the answer's status and body, then the
/// handlers that logged into `events`, in order (waiting for the Post handlers, and a
/// little longer so that one too many would show).
async fn check(
    builder: ServerBuilder,
    events: &Events,
    path: &str,
    (status, body): (u16, &str),
    logged: &[&str],
) {
    let server = common::start(builder).await;
    let answer = server.get(&common::client(), path).await;
    assert_eq!(answer, (status, body.to_owned()), "{path}");
    assert_eq!(events.settle(logged.len()).await, logged, "{path}");
    server.stop().await;
}

/// Registers with `register` (`ServerBuilder::pre` or `ServerBuilder::post`), for
/// each of `keys` in order, a handler logging its key, or `KEY again` for a key
/// registered before.
fn recorders<H>(
    mut builder: ServerBuilder,
    register: fn(ServerBuilder, &str, H) -> ServerBuilder,
    record: impl Fn(&str) -> H,
    keys: &[&str],
) -> ServerBuilder {
    for (n, key) in keys.iter().enumerate() {
        let again = if keys[..n].contains(key) {
            " again"
        } else {
            ""
        };
        builder = register(builder, key, record(&format!("{key}{again}")));
    }
    builder
}
