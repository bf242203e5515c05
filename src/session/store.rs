//! [`SessionStore`]: where session records live, behind one trait.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SessionId;

/// The future a [`SessionStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What is stored for one session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The session's values, by key.
    pub data: serde_json::Map<String, serde_json::Value>,
    /// When the session was created, in seconds since the Unix epoch (for the
    /// absolute expiry).
    pub created: u64,
}

/// A store failed to answer; requests needing a session get 503 (or go on without
/// one, if so configured).
#[derive(Debug, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct StoreError(pub String);

/// Where session records live. Idle expiry is the store's job (`ttl`); the
/// middleware checks the absolute expiry itself.
pub trait SessionStore: Send + Sync + 'static {
    /// The record of `id`, unless it is unknown or expired.
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Record>>;

    /// Stores `record` for `id`, to expire after `ttl` without a touch.
    fn save<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, ()>;

    /// Restarts the idle clock of `id` without rewriting its record.
    fn touch<'a>(&'a self, id: &'a SessionId, ttl: Duration) -> StoreFuture<'a, ()>;

    /// Forgets `id`.
    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, ()>;
}
