//! The client of the memory test: opens N keep-alive connections to a server and
//! holds them open while `bench/compare` reads the server's RSS, then exits. Idle
//! (the default): one `GET /a/b/c.txt` is sent on each and answered first. In flight:
//! one `GET /hold` is sent on each and left unanswered (the server waits 30 s before
//! answering it), so that every connection has a request in the server's hands.
//!
//! Usage: `bench-idle ADDR:PORT [N=10000] [HOLD_SECONDS=5] [idle|in-flight]`. Prints
//! `holding N connections` once all are open (and, idle, answered); exits non-zero,
//! saying why, if any connection fails, since the figure would then be wrong.

use std::error::Error;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use poco_bench::{HELLO_PATH, HOLD_PATH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// Connections being opened at once: enough to go fast, few enough not to overflow
/// the server's listen backlog (SYNs dropped there would stall for a second each).
const OPENING_AT_ONCE: usize = 256;
/// How long one connection may take to be opened and answered.
const PER_CONNECTION: Duration = Duration::from_secs(10);
/// How long the server gets to take in requests that are not answered.
const SETTLE: Duration = Duration::from_secs(2);
/// File descriptors needed beyond the connections (stdio, the runtime's own).
const SPARE_FDS: u64 = 64;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .ok_or("usage: bench-idle ADDR:PORT [N] [HOLD_SECONDS]")?;
    let count: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let hold = Duration::from_secs(args.next().map_or(Ok(5), |s| s.parse())?);
    let in_flight = match args.next().as_deref() {
        None | Some("idle") => false,
        Some("in-flight") => true,
        Some(other) => return Err(format!("unknown mode {other:?}: idle or in-flight").into()),
    };
    raise_fd_limit(count)?;
    // One thread is plenty for a client that mostly waits, and leaves the server alone.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&addr, count, hold, in_flight))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as `ulimit -n` would.
fn raise_fd_limit(count: usize) -> Result<()> {
    let needed = count as u64 + SPARE_FDS;
    let limit = rlimit::increase_nofile_limit(needed)?;
    if limit < needed {
        return Err(format!("RLIMIT_NOFILE allows {limit} descriptors, {needed} needed").into());
    }
    Ok(())
}

async fn run(addr: &str, count: usize, hold: Duration, in_flight: bool) -> Result<()> {
    let path = if in_flight { HOLD_PATH } else { HELLO_PATH };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let connections: Vec<TcpStream> = futures_util::stream::iter(0..count)
        .map(|_| open(addr, &request, !in_flight))
        .buffer_unordered(OPENING_AT_ONCE)
        .try_collect()
        .await?;
    if in_flight {
        // A connect completes in the kernel's backlog before the server accepts it:
        // leave the server time to accept and read every request (it handles tens
        // of thousands a second, so 10,000 take a fraction of this).
        tokio::time::sleep(SETTLE).await;
    }
    println!("holding {} connections", connections.len());
    tokio::time::sleep(hold).await;
    drop(connections);
    println!("done");
    Ok(())
}

/// One connection with one request sent on it (and its answer read, when
/// `answered`), left open.
async fn open(addr: &str, request: &str, answered: bool) -> Result<TcpStream> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        if answered {
            read_response(&mut stream).await?;
        }
        Ok(stream)
    };
    tokio::time::timeout(PER_CONNECTION, exchange)
        .await
        .map_err(|_| "a connection was not answered within 10 s")?
}

/// Reads one `200` response with a `Content-Length` body, whole, so that the server
/// is done with the request and the connection is idle afterwards.
async fn read_response(stream: &mut TcpStream) -> Result<()> {
    let mut buffer = Vec::with_capacity(512);
    loop {
        if let Some(head_end) = find(&buffer, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buffer[..head_end])?;
            if !head.starts_with("HTTP/1.1 200") {
                return Err(format!("unexpected answer: {head:?}").into());
            }
            if buffer.len() >= head_end + 4 + content_length(head)? {
                return Ok(());
            }
        }
        if stream.read_buf(&mut buffer).await? == 0 {
            return Err("the server closed the connection mid-response".into());
        }
    }
}

fn content_length(head: &str) -> Result<usize> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .ok_or("no Content-Length in the response")?
        .1
        .trim()
        .parse()
        .map_err(Into::into)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
