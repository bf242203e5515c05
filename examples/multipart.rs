//! Server push with `multipart/x-mixed-replace`, the original module's streaming
//! demo: the Stream handler sends one frame each time the previous one has been
//! flushed, three frames in all, then closes.
//!
//! Run with `cargo run --example multipart [ADDR:PORT]`, then
//! `curl -N http://127.0.0.1:8000/push`.

use std::time::Duration;

use poco_httpd::{Multipart, Outcome, Request, Response, Server};

const FRAMES: usize = 3;

/// Sends one frame per call; the frame counter rides along as a typed extension.
async fn next_frame(req: Request, res: Response) -> Outcome {
    let (multipart, sent) = req.extension::<(Multipart, usize)>().expect("set by push");
    if sent == FRAMES {
        let _ = res.send(multipart.end());
        res.close();
        return Outcome::Ok;
    }
    if sent > 0 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let frame = format!("frame {} of {FRAMES}\n", sent + 1);
    let _ = res.send(multipart.part("text/plain", frame.as_bytes()));
    req.insert_extension((multipart, sent + 1));
    Outcome::Ok
}

#[tokio::main]
async fn main() -> Result<(), poco_httpd::Error> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".into());
    let server = Server::builder()
        .listen(listen)
        .content("/push", |req: Request, res: Response| {
            let multipart = Multipart::new();
            res.set_header("content-type", multipart.content_type("x-mixed-replace"));
            req.insert_extension((multipart, 0usize));
            res.set_streaming(true);
            Outcome::Ok
        })
        .stream_at("/push", next_frame)
        .content("/", "try /push\n")
        .build()?
        .bind()
        .await?;
    println!("listening on http://{}", server.local_addr());
    server.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
