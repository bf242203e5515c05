//! Echo comparison of two WebSocket crates on the server side: `ws-crates CRATE MODE`
//! with CRATE `tungstenite` or `fastwebsockets`, MODE `rtt` (one 16-byte text message
//! at a time, answered before the next) or `stream` (100,000 messages written while
//! the echoes are read). The client is the same for both: pre-masked frames written
//! as bytes and the echoes counted as bytes, so only the server side differs.
//! Prints one line: messages per second. Run alternated by `bench/ws-crates/run`.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PAYLOAD: &[u8; 16] = b"0123456789abcdef";
const RTT_MESSAGES: usize = 20_000;
const STREAM_MESSAGES: usize = 100_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (which, mode) = (args[1].clone(), args[2].clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { serve(TcpListener::from_std(listener).unwrap(), which).await });
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rate = rt.block_on(client(addr, &mode));
    println!("{rate:.0}");
}

async fn serve(listener: TcpListener, which: String) {
    let (tcp, _) = listener.accept().await.unwrap();
    tcp.set_nodelay(true).unwrap();
    if which == "tungstenite" {
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if message.is_text() || message.is_binary() {
                ws.send(message).await.unwrap();
            }
        }
    } else {
        let tcp = handshake_by_hand(tcp).await;
        let mut ws = fastwebsockets::WebSocket::after_handshake(tcp, fastwebsockets::Role::Server);
        ws.set_auto_close(true);
        let mut ws = fastwebsockets::FragmentCollector::new(ws);
        while let Ok(frame) = ws.read_frame().await {
            match frame.opcode {
                fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                    ws.write_frame(frame).await.unwrap()
                }
                fastwebsockets::OpCode::Close => break,
                _ => {}
            }
        }
    }
}

/// fastwebsockets' own handshake helper needs hyper; this answers the same 101.
async fn handshake_by_hand(mut tcp: TcpStream) -> TcpStream {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    let key = head
        .lines()
        .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    tcp.write_all(answer.as_bytes()).await.unwrap();
    tcp
}

/// A masked text frame carrying `PAYLOAD` (mask key 1,2,3,4).
fn masked_frame() -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | PAYLOAD.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(PAYLOAD.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

async fn client(addr: std::net::SocketAddr, mode: &str) -> f64 {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    let frame = masked_frame();
    let echo_len = 2 + PAYLOAD.len();
    let started = Instant::now();
    let messages = if mode == "rtt" {
        let mut echo = vec![0; echo_len];
        for _ in 0..RTT_MESSAGES {
            tcp.write_all(&frame).await.unwrap();
            tcp.read_exact(&mut echo).await.unwrap();
        }
        RTT_MESSAGES
    } else {
        let (mut reader, mut writer) = tcp.into_split();
        let batch: Vec<u8> = frame.repeat(100);
        let writing = tokio::spawn(async move {
            for _ in 0..STREAM_MESSAGES / 100 {
                writer.write_all(&batch).await.unwrap();
            }
            writer
        });
        let mut echoes = vec![0; 64 * 1024];
        let mut left = STREAM_MESSAGES * echo_len;
        while left > 0 {
            let read = reader.read(&mut echoes).await.unwrap();
            assert!(read > 0);
            left -= read;
        }
        drop(writing.await.unwrap());
        STREAM_MESSAGES
    };
    messages as f64 / started.elapsed().as_secs_f64()
}
