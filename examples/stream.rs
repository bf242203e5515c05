//! A Server-Sent Events clock: every second an event with the time, comment
//! keep-alives in between, and `Last-Event-ID` honoured on reconnect.
//!
//! Run with `cargo run --example stream [ADDR:PORT]`, then
//! `curl -N http://127.0.0.1:8000/clock`, or open that URL with `EventSource` in a
//! browser.

use std::time::{Duration, SystemTime};

use poco_httpd::{Event, Outcome, Request, Response, Server};

/// Starts the event stream; a task ticks until the client leaves.
fn clock(req: Request, res: Response) -> Outcome {
    let mut tick: u64 = req
        .last_event_id()
        .and_then(|id| id.parse().ok())
        .unwrap_or(0);
    res.start_event_stream();
    tokio::spawn(async move {
        loop {
            tick += 1;
            let now = httpdate::fmt_http_date(SystemTime::now());
            let event = Event::data(now).event("tick").id(&tick.to_string());
            if res.write(event).await.is_err() {
                return; // the client left
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            if res.write(Event::comment("keep-alive")).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    Outcome::Ok
}

#[tokio::main]
async fn main() -> Result<(), poco_httpd::Error> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".into());
    let server = Server::builder()
        .listen(listen)
        .content("/clock", clock)
        .content("/", "try /clock\n")
        .build()?
        .bind()
        .await?;
    println!("listening on http://{}", server.local_addr());
    server.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
