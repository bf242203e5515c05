//! Two virtual hosts and a default site, served on IPv4 and IPv6 loopback at once:
//! each request runs with the handlers of the site its host name chooses.
//!
//! Run with `cargo run --example virtual_hosts [PORT]` (default 8000), then
//! `curl -H 'Host: blog.example.test' localhost:8000/`.

use poco_httpd::{Request, Response, Server};

#[tokio::main]
async fn main() -> Result<(), poco_httpd::Error> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8000".into());
    let blog = Server::builder()
        .header("X-Site", "blog")
        .content("/", |req: Request, res: Response| {
            res.ok(format!("the blog, page {}\n", req.path()))
        });
    let shop = Server::builder().content("/", "the shop\n");
    let server = Server::builder()
        .listen(format!("127.0.0.1:{port}"))
        .listen(format!("[::1]:{port}"))
        .content("/", "no site by that name here\n")
        .virtual_host(["blog.example.test", "*.blog.example.test"], blog)
        .virtual_host(["shop.example.test"], shop)
        .build()?
        .bind()
        .await?;
    for listener in server.listeners() {
        println!("listening on http://{}", listener.local_addr());
    }
    server.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
