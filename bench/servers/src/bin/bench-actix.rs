//! The actix-web 4 side of the comparison: the route `/a/b/c.txt` behind three
//! `wrap_fn` middlewares doing the same trivial work as poco-httpd's Pre handlers of
//! `/`, `/a/`, `/a/b/`, plus `/stream` sending 1 GiB and `/hold` answering after 30 s; HTTP/1.1 and h2c (prior
//! knowledge) on one port, `TCP_NODELAY` as the others set it.
//! Usage: `bench-actix ADDR:PORT` (`BENCH_THREADS` workers, each its own runtime).

use std::io;

use actix_web::dev::Service;
use actix_web::http::header::{CONTENT_TYPE, HOST, HeaderValue, SERVER};
use actix_web::{App, HttpResponse, HttpServer, web};
use poco_bench::{
    HELLO_BODY, HELLO_PATH, HELLO_TYPE, HOLD_FOR, HOLD_PATH, SERVER_NAME, STREAM_PATH, STREAM_TYPE,
};

fn main() -> io::Result<()> {
    actix_web::rt::System::new().block_on(serve())
}

async fn serve() -> io::Result<()> {
    let listener = std::net::TcpListener::bind(poco_bench::listen_addr())?;
    poco_bench::announce(listener.local_addr()?);
    HttpServer::new(|| {
        App::new()
            .wrap_fn(|req, srv| {
                poco_bench::touch(req.headers().get(HOST).map(HeaderValue::as_bytes));
                srv.call(req)
            })
            .wrap_fn(|req, srv| {
                poco_bench::touch(req.headers().get(HOST).map(HeaderValue::as_bytes));
                srv.call(req)
            })
            .wrap_fn(|req, srv| {
                poco_bench::touch(req.headers().get(HOST).map(HeaderValue::as_bytes));
                srv.call(req)
            })
            .route(HELLO_PATH, web::get().to(hello))
            .route(STREAM_PATH, web::get().to(stream))
            .route(HOLD_PATH, web::get().to(hold))
    })
    .workers(poco_bench::threads())
    .tcp_nodelay(true)
    .listen_auto_h2c(listener)?
    .run()
    .await
}

async fn hello() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((SERVER, SERVER_NAME))
        .insert_header((CONTENT_TYPE, HELLO_TYPE))
        .body(HELLO_BODY)
}

async fn hold() -> HttpResponse {
    actix_web::rt::time::sleep(HOLD_FOR).await;
    hello().await
}

async fn stream() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((SERVER, SERVER_NAME))
        .insert_header((CONTENT_TYPE, STREAM_TYPE))
        .streaming(poco_bench::gib_stream())
}
