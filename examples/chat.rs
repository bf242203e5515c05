//! A chat room: the page and its WebSocket served by one server. A Pre handler lets
//! only visitors with a name in their session (from `src/session`) open the socket;
//! a Post handler logs each WebSocket's end.
//!
//! Run with `cargo run --example chat [ADDR:PORT]` (default `127.0.0.1:8000`), open
//! the address in two browser tabs (or two browsers, for two names), pick a name in
//! each and talk.

use poco_httpd::handlers::WebSocket;
use poco_httpd::handlers::websocket::{Message, Socket, SocketEnd};
use poco_httpd::http::StatusCode;
use poco_httpd::session::{MemoryStore, Session, Sessions};
use poco_httpd::{Outcome, Request, Response, Server};
use serde_json::json;
use tokio::sync::broadcast;

const CHAT_PAGE: &str = include_str!("chat.html");

const JOIN_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>join the chat</title>
<form action="/join"><label>Your name <input name="name" autofocus required maxlength="30"></label>
<button>Join</button></form>"#;

/// The chat page for a visitor with a name, else the form asking for one.
fn page(req: Request, res: Response) -> Outcome {
    let named = Session::of(&req).and_then(|s| s.get::<String>("name"));
    res.set_content_type("text/html; charset=utf-8");
    res.ok(if named.is_some() {
        CHAT_PAGE
    } else {
        JOIN_PAGE
    })
}

/// `/join?name=...`: keeps the name in the session and goes back to the page.
fn join(req: Request, res: Response) -> Outcome {
    let query = req.query().unwrap_or_default();
    let name = query.strip_prefix("name=").unwrap_or_default();
    let name = percent_decode(name);
    let name = name.trim();
    if let Some(session) = Session::of(&req)
        && !name.is_empty()
    {
        session.regenerate();
        let _ = session.insert("name", name.chars().take(30).collect::<String>());
    }
    res.set_header("location", "/");
    res.set_status(StatusCode::SEE_OTHER);
    Outcome::Ok
}

fn leave(req: Request, res: Response) -> Outcome {
    if let Some(session) = Session::of(&req) {
        session.destroy();
    }
    res.set_header("location", "/");
    res.set_status(StatusCode::SEE_OTHER);
    Outcome::Ok
}

/// A form's value: `+` for spaces and `%XX` escapes.
fn percent_decode(value: &str) -> String {
    let spaced = value.replace('+', " ");
    let mut bytes = Vec::new();
    let mut rest = spaced.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let hex = tail.get(..2).and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(decoded) if byte == b'%' => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The Pre handler of `/chat/`: no name, no socket.
fn named_only(req: Request, res: Response) -> Outcome {
    let named = Session::of(&req).and_then(|s| s.get::<String>("name"));
    if named.is_none() {
        return res.deny(StatusCode::FORBIDDEN);
    }
    Outcome::Ok
}

/// One member of the room: their messages go to everyone, everyone's to them.
async fn member(mut socket: Socket, room: broadcast::Sender<String>) {
    let name = Session::of(socket.request())
        .and_then(|s| s.get::<String>("name"))
        .unwrap_or_else(|| "someone".into());
    let mut heard = room.subscribe();
    let _ = socket.send(json!({ "you": name }).to_string()).await;
    let _ = room.send(json!({ "text": format!("{name} joined") }).to_string());
    loop {
        tokio::select! {
            message = socket.recv() => match message {
                Some(Message::Text(text)) => {
                    let _ = room.send(json!({ "from": name, "text": &*text }).to_string());
                }
                Some(_) => {}
                None => break,
            },
            said = heard.recv() => match said {
                Ok(said) => {
                    if socket.send(said).await.is_err() {
                        break;
                    }
                }
                // Too slow to keep up: skip what was missed rather than hold the room.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    let _ = room.send(json!({ "text": format!("{name} left") }).to_string());
}

fn log_end(req: Request, _res: Response) -> Outcome {
    if let Some(end) = SocketEnd::of(&req) {
        let how = if end.client_closed { "closed" } else { "lost" };
        eprintln!(
            "a chat socket {how}: {} messages in, {} out",
            end.received, end.sent
        );
    }
    Outcome::Ok
}

#[tokio::main]
async fn main() -> Result<(), poco_httpd::Error> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".into());
    let (room, _) = broadcast::channel(256);
    let socket = WebSocket::new(move |socket| member(socket, room.clone()))
        .protocols(["chat"])
        .same_origin()
        .max_message_size(64 * 1024);
    let server = Server::builder()
        .listen(listen)
        .pre("/", Sessions::new(MemoryStore::new()))
        .content("/", page)
        .content("/join", join)
        .content("/leave", leave)
        .pre("/chat/", named_only)
        .content("/chat/socket", socket)
        .post("/chat/", log_end)
        .build()?
        .bind()
        .await?;
    println!(
        "chat at http://{}/ (open it in two tabs)",
        server.local_addr()
    );
    server.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
