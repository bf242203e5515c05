//! The poco-httpd side of the comparison: Pre handlers at `/`, `/a/`, `/a/b/`, the
//! Content handler of `/a/b/` answering `Hello, world!`, a Post handler at `/`, and
//! `/stream` sending 1 GiB, `/hold` answering after 30 s, and with `BENCH_STATIC_ROOT` set, that directory's files
//! under `/static/` (the ready-made server's `StaticFiles`). Usage:
//! `bench-ours ADDR:PORT` (`BENCH_THREADS` workers; HTTPS with `BENCH_TLS_CERT` and
//! `BENCH_TLS_KEY`).

use poco_bench::{
    HELLO_BODY, HELLO_TYPE, HOLD_FOR, HOLD_PATH, SERVER_NAME, STATIC_PREFIX, STREAM_PATH,
    STREAM_TYPE,
};
use poco_httpd::handlers::StaticFiles;
use poco_httpd::http::header::HOST;
use poco_httpd::{Outcome, Request, Response, Server};

fn main() -> Result<(), poco_httpd::Error> {
    poco_bench::runtime().block_on(serve())
}

async fn serve() -> Result<(), poco_httpd::Error> {
    let mut builder = Server::builder();
    if let Some((cert, key)) = poco_bench::tls_paths() {
        builder = builder.tls(cert, key);
    }
    if let Some(root) = poco_bench::static_root() {
        builder = builder.content(STATIC_PREFIX, StaticFiles::new(STATIC_PREFIX, root));
    }
    let server = builder
        .listen(poco_bench::listen_addr())
        .header("Server", SERVER_NAME)
        .pre("/", pre)
        .pre("/a/", pre)
        .pre("/a/b/", pre)
        .content("/a/b/", hello)
        .content(STREAM_PATH, stream)
        .content(HOLD_PATH, hold)
        .post("/", post)
        .build()?
        .bind()
        .await?;
    poco_bench::announce(server.local_addr());
    server.run().await;
    Ok(())
}

/// The same trivial work as the other servers' stand-ins.
fn pre(req: Request, _res: Response) -> Outcome {
    poco_bench::touch(req.header(HOST).as_ref().map(|v| v.as_bytes()));
    Outcome::Ok
}

fn hello(_req: Request, res: Response) -> Outcome {
    res.set_content_type(HELLO_TYPE);
    res.set_body(HELLO_BODY);
    Outcome::Ok
}

async fn hold(req: Request, res: Response) -> Outcome {
    tokio::time::sleep(HOLD_FOR).await;
    hello(req, res)
}

fn stream(_req: Request, res: Response) -> Outcome {
    res.set_content_type(STREAM_TYPE);
    res.set_body_stream(poco_bench::gib_stream());
    Outcome::Ok
}

/// Runs after the response has been flushed; as cheap as a Post handler can be, so
/// that what it costs is the phase itself.
fn post(_req: Request, res: Response) -> Outcome {
    std::hint::black_box(res.status());
    Outcome::Ok
}
