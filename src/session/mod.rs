//! Sessions matched by cookie: the original module's TODO "a Session that matches an
//! HTTP session against server-side state using cookies".
//!
//! [`Sessions`] is a Pre handler: put it on a directory and every later handler of
//! the request reads and writes the [`Session`] (typed values through serde), can
//! [`regenerate`](Session::regenerate) its id on login and
//! [`destroy`](Session::destroy) it on logout. A changed session is saved before the
//! response goes out; an unchanged one is never written.
//!
//! The state lives in a [`SessionStore`]: [`MemoryStore`] inside the process (the
//! default), or [`RedisStore`] shared by every instance behind a load balancer.
//!
//! **Concurrent requests of one session**: each request works on its own copy loaded
//! at its start, and saves the whole record when it changed it, so the request that
//! saves last wins; a stored value is always one request's complete record, never a
//! mix.
//!
//! ```
//! use poco_httpd::session::{MemoryStore, Session, Sessions};
//! use poco_httpd::{Outcome, Request, Response, Server};
//!
//! let counter = |req: Request, res: Response| {
//!     let Some(session) = Session::of(&req) else { return Outcome::Deny };
//!     let visits = session.get::<u64>("visits").unwrap_or(0) + 1;
//!     let _ = session.insert("visits", visits);
//!     res.set_body(format!("visit number {visits}"));
//!     Outcome::Ok
//! };
//! let builder = Server::builder()
//!     .pre("/", Sessions::new(MemoryStore::new()))
//!     .content("/", counter);
//! # drop(builder);
//! ```

mod id;
mod memory;
mod middleware;
mod redis;
mod store;

pub use id::SessionId;
pub use memory::MemoryStore;
pub use middleware::{OnStoreFailure, Secure, Session, SessionError, Sessions};
pub use redis::RedisStore;
pub use store::{Record, SessionStore, StoreError, StoreFuture};

/// Locks `mutex`, ignoring poisoning: the sessions' own locks are held only for short,
/// panic-free updates, never while a handler or a store runs.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
