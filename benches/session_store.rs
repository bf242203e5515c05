//! Per-request cost of the session stores: one load, one touch and one save — what a
//! request that changes its session costs — against the memory store and against a
//! real Redis on loopback (started here on a free port, like the tests do).
//!
//! Run with `cargo bench --bench session_store`. Prints the median of 7 rounds of
//! 2,000 requests per store, in microseconds per request.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use poco_httpd::session::{MemoryStore, Record, RedisStore, SessionId, SessionStore};

const ROUNDS: usize = 7;
const REQUESTS: usize = 2_000;

/// The median of `ROUNDS` rounds, in microseconds per request.
async fn per_request(store: &dyn SessionStore) -> f64 {
    let id = SessionId::generate().expect("randomness");
    let ttl = Duration::from_secs(600);
    let mut record = Record::default();
    record.data.insert("visits".into(), 0.into());
    store.save(&id, &record, ttl).await.expect("first save");
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for visit in 0..REQUESTS {
            let mut loaded = store.load(&id).await.expect("load").expect("stored");
            store.touch(&id, ttl).await.expect("touch");
            loaded.data.insert("visits".into(), visit.into());
            store.save(&id, &loaded, ttl).await.expect("save");
        }
        rounds.push(started.elapsed().as_secs_f64() * 1e6 / REQUESTS as f64);
    }
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

/// A throw-away redis-server on a free loopback port.
fn start_redis() -> (Child, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server installed (scripts/test installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let memory = per_request(&MemoryStore::new()).await;
    let (mut redis, port) = start_redis();
    let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/0")).expect("url");
    let redis_cost = per_request(&store).await;
    let _ = redis.kill();
    let _ = redis.wait();
    println!(
        "session store        µs/request (load + touch + save), median of {ROUNDS} x {REQUESTS}"
    );
    println!("memory               {memory:>10.2}");
    println!("redis (loopback)     {redis_cost:>10.2}");
}
