//! Every phase, printing the order it runs in.
//!
//! Run with `cargo run --example stacking [ADDR:PORT]`, then
//! `curl http://127.0.0.1:8000/foo/bar/baz.txt` and watch the server's output:
//! Trans, the Pre handlers of `/`, `/foo/`, `/foo/bar/`, the Content handler of
//! `/foo/`, then — after the response has been flushed — the Post handlers.
//! Close a connection mid-request to see the Error handler.

use poco_httpd::{Handler, Outcome, Phase, Request, Response, Server};

/// A handler that prints which phase and path it belongs to.
fn announce(phase: Phase, key: &'static str) -> impl Handler {
    move |req: Request, _res: Response| {
        println!("{phase:<8} {key:<18} {}", req.path());
        Outcome::Ok
    }
}

#[tokio::main]
async fn main() -> Result<(), poco_httpd::Error> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".into());
    let server = Server::builder()
        .listen(listen)
        .trans(announce(Phase::Trans, "(global)"))
        .pre("/", announce(Phase::Pre, "/"))
        .pre("/foo/", announce(Phase::Pre, "/foo/"))
        .pre("/foo/", announce(Phase::Pre, "/foo/ (second)"))
        .pre("/foo/bar/", announce(Phase::Pre, "/foo/bar/"))
        .pre("/foo/bar/baz.txt", announce(Phase::Pre, "/foo/bar/baz.txt"))
        .content("/", |req: Request, res: Response| {
            println!("{:<8} {:<18} {}", Phase::Content, "/", req.path());
            res.ok("top handler\n")
        })
        .content("/foo/", |req: Request, res: Response| {
            println!("{:<8} {:<18} {}", Phase::Content, "/foo/", req.path());
            res.ok(format!("the /foo/ handler answers {}\n", req.path()))
        })
        .post("/", announce(Phase::Post, "/"))
        .post("/foo/", announce(Phase::Post, "/foo/"))
        .error("/", |req: Request, _res: Response| {
            let cause = req.failure().map(ToString::to_string).unwrap_or_default();
            println!("{:<8} {:<18} {} ({cause})", Phase::Error, "/", req.path());
            Outcome::Ok
        })
        .build()?
        .bind()
        .await?;
    println!("listening on http://{}", server.local_addr());
    server.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
