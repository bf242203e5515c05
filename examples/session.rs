//! Sessions matched by cookie: log in, count visits, log out.
//!
//! Run with `cargo run --example session [ADDR:PORT] [REDIS_URL]`; without a Redis
//! URL the sessions live in memory. Then, keeping cookies in `jar`:
//!
//! ```text
//! curl -c jar -b jar http://127.0.0.1:8000/login?user=alice
//! curl -c jar -b jar http://127.0.0.1:8000/          # visit 1, visit 2, ...
//! curl -c jar -b jar http://127.0.0.1:8000/logout
//! ```

use poco_httpd::session::{MemoryStore, RedisStore, Session, Sessions};
use poco_httpd::{Outcome, Request, Response, Server};

fn counter(req: Request, res: Response) -> Outcome {
    let Some(session) = Session::of(&req) else {
        return Outcome::Deny;
    };
    let user: Option<String> = session.get("user");
    let visits = session.get::<u64>("visits").unwrap_or(0) + 1;
    let _ = session.insert("visits", visits);
    let who = user.as_deref().unwrap_or("stranger");
    res.ok(format!("hello {who}, visit {visits}\n"))
}

fn login(req: Request, res: Response) -> Outcome {
    let Some(session) = Session::of(&req) else {
        return Outcome::Deny;
    };
    let query = req.query().unwrap_or_default();
    let user = query
        .strip_prefix("user=")
        .unwrap_or("anonymous")
        .to_owned();
    // A new id on login: an id planted before is worthless afterwards.
    session.regenerate();
    let _ = session.insert("user", &user);
    res.ok(format!("logged in as {user}\n"))
}

fn logout(req: Request, res: Response) -> Outcome {
    if let Some(session) = Session::of(&req) {
        session.destroy();
    }
    res.ok("logged out\n")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8000".into());
    let sessions = match args.next() {
        Some(url) => Sessions::new(RedisStore::new(&url)?),
        None => Sessions::new(MemoryStore::new()),
    };
    let server = Server::builder()
        .listen(listen)
        .pre("/", sessions)
        .content("/", counter)
        .content("/login", login)
        .content("/logout", logout)
        .build()?
        .bind()
        .await?;
    println!("listening on http://{}", server.local_addr());
    server.run_until(tokio::signal::ctrl_c()).await;
    Ok(())
}
