//! `Outcome::Wait`: a Content handler suspends its request, and another task fills in
//! the response after a delay and resumes it. Other requests are served meanwhile.
//!
//! Run with `cargo run --example wait [ADDR:PORT]`, then
//! `curl http://127.0.0.1:8000/slow` (answers after one second) and, at the same time,
//! `curl http://127.0.0.1:8000/` (answers at once).

use std::time::Duration;

use poco_httpd::{Outcome, Request, Response, Server};

/// Hands the response to a background task and returns at once.
fn slow(req: Request, res: Response) -> Outcome {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        res.set_body(format!("{} was worth the wait\n", req.path()));
        res.resume();
    });
    Outcome::Wait
}

#[tokio::main]
async fn main() -> Result<(), poco_httpd::Error> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".into());
    let server = Server::builder()
        .listen(listen)
        .content("/slow", slow)
        .content("/", "fast\n")
        .build()?
        .bind()
        .await?;
    println!("listening on http://{}", server.local_addr());
    server.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
