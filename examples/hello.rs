//! The original module's synopsis: answers `Hi, you fetched <path>` to every request.
//!
//! Run with `cargo run --example hello [ADDR:PORT]` (default `127.0.0.1:8000`).

use poco_httpd::{Request, Response, Server};

#[tokio::main]
async fn main() -> Result<(), poco_httpd::Error> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".into());
    let server = Server::builder()
        .listen(listen)
        .content("/", |req: Request, res: Response| {
            res.ok(format!("Hi, you fetched {}", req.path()))
        })
        .build()?
        .bind()
        .await?;
    println!("listening on http://{}", server.local_addr());
    server.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
