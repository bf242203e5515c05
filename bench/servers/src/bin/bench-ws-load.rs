//! The WebSocket load client of `bench/websocket`: opens N WebSockets to a server's
//! `/echo` and, for the given seconds, either does round trips (one 16-byte text
//! message at a time per connection, `rtt`) or keeps up to 64 messages in flight per
//! connection (`stream`); prints `messages N seconds S` (echoes received).
//!
//! The frames are written as prepared bytes (masked with a zero key) and the echoes
//! counted as bytes, so the client spends little and measures the server. Exits
//! non-zero, saying why, if any connection fails.
//!
//! Usage: `bench-ws-load ADDR:PORT N SECONDS rtt|stream`.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const PAYLOAD: &[u8; 16] = b"0123456789abcdef";
/// The echo of one message: a 2-byte header and the payload.
const ECHO_LEN: usize = 2 + PAYLOAD.len();
/// Messages in flight per connection in `stream` mode.
const WINDOW: usize = 64;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, count, seconds, mode] = args.as_slice() else {
        return Err("usage: bench-ws-load ADDR:PORT N SECONDS rtt|stream".into());
    };
    let (count, seconds): (usize, u64) = (count.parse()?, seconds.parse()?);
    let stream = mode == "stream";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(addr, count, Duration::from_secs(seconds), stream))
}

async fn run(addr: &str, count: usize, length: Duration, stream: bool) -> Result<()> {
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        sockets.push(open(addr).await?);
    }
    let counted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|socket| {
            let (counted, stop) = (Arc::clone(&counted), Arc::clone(&stop));
            tokio::spawn(async move {
                if stream {
                    pipelined(socket, &counted, &stop).await
                } else {
                    round_trips(socket, &counted, &stop).await
                }
            })
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let messages = counted.load(Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    for task in tasks {
        task.await??;
    }
    println!("messages {messages} seconds {seconds:.3}");
    Ok(())
}

/// Opens one WebSocket with a raw handshake.
async fn open(addr: &str) -> Result<TcpStream> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    tcp.write_all(b"GET /echo HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await?);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!("no upgrade: {}", String::from_utf8_lossy(&head)).into());
    }
    Ok(tcp)
}

/// One client text frame carrying `PAYLOAD`, masked with a zero key.
fn frame() -> Vec<u8> {
    let mut frame = vec![0x81, 0x80 | PAYLOAD.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(PAYLOAD);
    frame
}

async fn round_trips(mut tcp: TcpStream, counted: &AtomicU64, stop: &AtomicBool) -> Result<()> {
    let (frame, mut echo) = (frame(), [0; ECHO_LEN]);
    while !stop.load(Ordering::Relaxed) {
        tcp.write_all(&frame).await?;
        tcp.read_exact(&mut echo).await?;
        counted.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Keeps `WINDOW` messages in flight: a batch goes out whenever half came back.
async fn pipelined(tcp: TcpStream, counted: &AtomicU64, stop: &AtomicBool) -> Result<()> {
    let (mut reader, mut writer) = tcp.into_split();
    let half = frame().repeat(WINDOW / 2);
    writer.write_all(&frame().repeat(WINDOW)).await?;
    let mut buffer = vec![0; 64 * 1024];
    let mut owed_bytes = 0;
    while !stop.load(Ordering::Relaxed) {
        let read = reader.read(&mut buffer).await?;
        if read == 0 {
            return Err("the server closed the connection".into());
        }
        owed_bytes += read;
        let whole = owed_bytes / ECHO_LEN;
        counted.fetch_add(whole as u64, Ordering::Relaxed);
        owed_bytes -= whole * ECHO_LEN;
        // Refill in batches of half the window, as echoes of them come back.
        let mut refill = whole;
        while refill >= WINDOW / 2 {
            writer.write_all(&half).await?;
            refill -= WINDOW / 2;
        }
        if refill > 0 {
            writer.write_all(&frame().repeat(refill)).await?;
        }
    }
    Ok(())
}
