//! Sessions matched by cookie, with the memory store and with a real Redis that the
//! tests start (and stop, and restart) themselves.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use poco_httpd::session::{
    MemoryStore, OnStoreFailure, Record, RedisStore, Session, SessionId, SessionStore, Sessions,
    StoreFuture,
};
use poco_httpd::{Outcome, Request, Response, Server, ServerBuilder};

/// Counts visits: the session's `visits` value, incremented and shown.
fn counter(req: Request, res: Response) -> Outcome {
    let Some(session) = Session::of(&req) else {
        res.set_body("no session");
        return Outcome::Ok;
    };
    let visits = session.get::<u64>("visits").unwrap_or(0) + 1;
    session.insert("visits", visits).unwrap();
    res.set_body(visits.to_string());
    Outcome::Ok
}

/// Reads without writing.
fn peek(req: Request, res: Response) -> Outcome {
    let visits = Session::of(&req).and_then(|s| s.get::<u64>("visits"));
    res.set_body(format!("{visits:?}"));
    Outcome::Ok
}

fn login(req: Request, res: Response) -> Outcome {
    let session = Session::of(&req).unwrap();
    session.regenerate();
    session.insert("user", "alice").unwrap();
    res.set_body("logged in");
    Outcome::Ok
}

fn logout(req: Request, res: Response) -> Outcome {
    Session::of(&req).unwrap().destroy();
    res.set_body("logged out");
    Outcome::Ok
}

fn app(sessions: Sessions) -> ServerBuilder {
    Server::builder()
        .pre("/", sessions)
        .content("/", counter)
        .content("/peek", peek)
        .content("/login", login)
        .content("/logout", logout)
}

/// The `poco_session` Set-Cookie header of a response, whole.
fn set_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("poco_session="))
}

/// The session id a response set.
fn session_id(response: &reqwest::Response) -> Option<String> {
    let cookie = set_cookie(response)?;
    let value = cookie
        .trim_start_matches("poco_session=")
        .split(';')
        .next()?
        .to_string();
    (!value.is_empty()).then_some(value)
}

async fn get(url: &str, id: Option<&str>) -> reqwest::Response {
    let mut request = common::client().get(url);
    if let Some(id) = id {
        request = request.header("cookie", format!("poco_session={id}"));
    }
    request.send().await.unwrap()
}

/// The body of [`get`]'s answer.
async fn text(url: &str, id: Option<&str>) -> String {
    get(url, id).await.text().await.unwrap()
}

#[tokio::test]
async fn values_survive_across_requests_and_unchanged_sessions_are_not_written() {
    let store = CountingStore::new(MemoryStore::new());
    let saves = Arc::clone(&store.saves);
    let server = common::start(app(Sessions::new(store))).await;
    // A visitor that only reads gets no session at all.
    let reader = get(&server.url("/peek"), None).await;
    assert!(set_cookie(&reader).is_none());
    assert_eq!(saves.load(Ordering::SeqCst), 0);
    let first = get(&server.url("/"), None).await;
    let id = session_id(&first).expect("a session cookie");
    assert_eq!(first.text().await.unwrap(), "1");
    let second = get(&server.url("/"), Some(&id)).await;
    assert_eq!(second.text().await.unwrap(), "2");
    assert_eq!(saves.load(Ordering::SeqCst), 2);
    let peeked = get(&server.url("/peek"), Some(&id)).await;
    assert!(
        set_cookie(&peeked).is_none(),
        "unchanged: no cookie rewritten"
    );
    assert_eq!(peeked.text().await.unwrap(), "Some(2)");
    assert_eq!(saves.load(Ordering::SeqCst), 2, "unchanged: not written");
    server.stop().await;
}

#[tokio::test]
async fn the_cookie_is_http_only_same_site_lax_and_carries_128_random_bits() {
    let server = common::start(app(
        Sessions::new(MemoryStore::new()).cookie_domain("example.test")
    ))
    .await;
    let response = get(&server.url("/"), None).await;
    let cookie = set_cookie(&response).unwrap();
    let id = session_id(&response).unwrap();
    assert_eq!(id.len(), 32);
    assert!(SessionId::parse(&id).is_some());
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Domain=example.test",
        "Max-Age=",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "no TLS, no Secure: {cookie}");
    let other = session_id(&get(&server.url("/"), None).await).unwrap();
    assert_ne!(id, other);
    server.stop().await;
}

#[tokio::test]
async fn forged_unknown_and_oversized_cookies_get_a_fresh_session() {
    let server = common::start(app(Sessions::new(MemoryStore::new()))).await;
    let victim = session_id(&get(&server.url("/"), None).await).unwrap();
    get(&server.url("/"), Some(&victim)).await;
    for forged in [
        "0123456789abcdef0123456789abcdef".to_string(),
        "x".repeat(5000),
        format!("{victim}00"),
        victim.to_uppercase(),
    ] {
        let response = get(&server.url("/"), Some(&forged)).await;
        let fresh = session_id(&response).unwrap();
        assert_ne!(fresh, forged);
        assert_ne!(fresh, victim);
        assert_eq!(
            response.text().await.unwrap(),
            "1",
            "never somebody else's data"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn regenerate_moves_the_session_to_a_new_id_and_destroy_ends_it() {
    let server = common::start(app(Sessions::new(MemoryStore::new()))).await;
    let before = session_id(&get(&server.url("/"), None).await).unwrap();
    let login = get(&server.url("/login"), Some(&before)).await;
    let after = session_id(&login).unwrap();
    assert_ne!(before, after);
    assert_eq!(
        text(&server.url("/peek"), Some(&before)).await,
        "None",
        "old id is dead"
    );
    assert_eq!(
        text(&server.url("/peek"), Some(&after)).await,
        "Some(1)",
        "values kept"
    );
    let logout = get(&server.url("/logout"), Some(&after)).await;
    let cleared = set_cookie(&logout).unwrap();
    assert!(
        cleared.starts_with("poco_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(text(&server.url("/peek"), Some(&after)).await, "None");
    server.stop().await;
}

#[tokio::test]
async fn idle_and_absolute_expiry_end_sessions() {
    let idle = common::start(app(
        Sessions::new(MemoryStore::new()).idle_timeout(Duration::from_millis(200))
    ))
    .await;
    let id = session_id(&get(&idle.url("/"), None).await).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(text(&idle.url("/peek"), Some(&id)).await, "None");
    idle.stop().await;

    let absolute = common::start(app(
        Sessions::new(MemoryStore::new()).absolute_timeout(Duration::from_secs(1))
    ))
    .await;
    let id = session_id(&get(&absolute.url("/"), None).await).unwrap();
    // Used all along, it still ends once its absolute lifetime is over.
    let mut last = String::new();
    for _ in 0..25 {
        last = text(&absolute.url("/peek"), Some(&id)).await;
        if last == "None" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, "None");
    absolute.stop().await;
}

#[tokio::test]
async fn concurrent_requests_of_one_session_never_corrupt_it() {
    let server = common::start(app(Sessions::new(MemoryStore::new()))).await;
    let id = session_id(&get(&server.url("/"), None).await).unwrap();
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let (url, id) = (server.url("/"), id.clone());
            tokio::spawn(async move { text(&url, Some(&id)).await })
        })
        .collect();
    for request in requests {
        let seen: u64 = request.await.unwrap().parse().expect("a whole number");
        assert!((2..=21).contains(&seen));
    }
    let stored = text(&server.url("/peek"), Some(&id)).await;
    let value: u64 = stored
        .trim_start_matches("Some(")
        .trim_end_matches(')')
        .parse()
        .expect("a valid stored value");
    assert!((2..=21).contains(&value), "last write wins: {value}");
    server.stop().await;
}

/// A store that counts saves, to see what gets written.
struct CountingStore<S> {
    inner: S,
    saves: Arc<AtomicUsize>,
}

impl<S> CountingStore<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            saves: Arc::default(),
        }
    }
}

impl<S: SessionStore> SessionStore for CountingStore<S> {
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Record>> {
        self.inner.load(id)
    }
    fn save<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.inner.save(id, record, ttl)
    }
    fn touch<'a>(&'a self, id: &'a SessionId, ttl: Duration) -> StoreFuture<'a, ()> {
        self.inner.touch(id, ttl)
    }
    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, ()> {
        self.inner.delete(id)
    }
}

/// A `redis-server` of the test's own, on a free loopback port, in a temporary
/// directory; killed when dropped.
struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("poco-httpd-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + common::PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn redis_sessions(redis: &RedisServer) -> Sessions {
    let store = RedisStore::new(&redis.url())
        .unwrap()
        .key_prefix("test:")
        .timeout(Duration::from_millis(300));
    Sessions::new(store).store_timeout(Duration::from_millis(500))
}

#[tokio::test]
async fn two_instances_sharing_redis_see_the_same_session_with_a_ttl() {
    let redis = RedisServer::start();
    let a = common::start(app(
        redis_sessions(&redis).idle_timeout(Duration::from_secs(600))
    ))
    .await;
    let b = common::start(app(redis_sessions(&redis))).await;
    let id = session_id(&get(&a.url("/"), None).await).unwrap();
    assert_eq!(text(&b.url("/"), Some(&id)).await, "2");
    assert_eq!(text(&a.url("/peek"), Some(&id)).await, "Some(2)");
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("test:{id}"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 30 * 60 * 1000, "TTL set in Redis: {ttl}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn with_redis_down_requests_get_503_or_go_on_and_recover_when_it_returns() {
    let mut redis = RedisServer::start();
    let strict = common::start(app(redis_sessions(&redis))).await;
    let lenient = common::start(app(
        redis_sessions(&redis).on_store_failure(OnStoreFailure::ContinueWithout)
    ))
    .await;
    let id = session_id(&get(&strict.url("/"), None).await).unwrap();
    redis.stop();
    let refused = get(&strict.url("/"), Some(&id)).await;
    assert_eq!(refused.status(), 503);
    let carried_on = get(&lenient.url("/"), Some(&id)).await;
    assert_eq!(carried_on.status(), 200);
    assert_eq!(carried_on.text().await.unwrap(), "no session");
    redis.restart();
    // The data is gone with the old redis-server (no persistence), but sessions work
    // again without restarting the web servers.
    let mut status = 0;
    for _ in 0..50 {
        let response = get(&strict.url("/"), None).await;
        status = response.status().as_u16();
        if status == 200 {
            let fresh = session_id(&response).unwrap();
            assert_eq!(text(&strict.url("/peek"), Some(&fresh)).await, "Some(1)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "sessions work again after Redis returns");
    strict.stop().await;
    lenient.stop().await;
}
