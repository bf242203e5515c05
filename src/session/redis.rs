//! [`RedisStore`]: sessions in Redis, shared by every instance of a server.
//!
//! One multiplexed connection ([`ConnectionManager`]) serves all requests and
//! reconnects by itself after Redis comes back; the first connection is made lazily,
//! so a server starts even while Redis is down. Records are JSON under
//! `<prefix><id>`, with the idle timeout as Redis' own expiry.

use std::fmt;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::SessionId;
use super::store::{Record, SessionStore, StoreError, StoreFuture};

const DEFAULT_PREFIX: &str = "poco-httpd:session:";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Sessions in Redis; see the module docs.
pub struct RedisStore {
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
}

impl RedisStore {
    /// A store for the Redis at `url`, e.g. `redis://127.0.0.1:6379/0`.
    ///
    /// # Errors
    /// When the URL does not parse. No connection is made yet.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError(format!("bad Redis URL {url:?}: {e}")))?;
        Ok(Self {
            client,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connection: tokio::sync::Mutex::new(None),
        })
    }

    /// The prefix of every key. Default: `poco-httpd:session:`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long connecting, and each command, may take. Default: 1 second.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The Redis key of `id`.
    pub fn key(&self, id: &SessionId) -> String {
        format!("{}{}", self.prefix, id.as_str())
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut connection = self.connection.lock().await;
        if let Some(manager) = &*connection {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let manager = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(unavailable)?;
        *connection = Some(manager.clone());
        Ok(manager)
    }
}

fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError(format!("Redis: {error}"))
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl SessionStore for RedisStore {
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            let mut redis = self.connection().await?;
            let stored: Option<String> = redis.get(self.key(id)).await.map_err(unavailable)?;
            // A record that does not parse is treated as unknown: a fresh session.
            Ok(stored.and_then(|json| serde_json::from_str(&json).ok()))
        })
    }

    fn save<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let json = serde_json::to_string(record).map_err(|e| StoreError(e.to_string()))?;
            let mut redis = self.connection().await?;
            redis::cmd("SET")
                .arg(self.key(id))
                .arg(json)
                .arg("PX")
                .arg(millis(ttl))
                .query_async::<()>(&mut redis)
                .await
                .map_err(unavailable)
        })
    }

    fn touch<'a>(&'a self, id: &'a SessionId, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut redis = self.connection().await?;
            let ttl = i64::try_from(millis(ttl)).unwrap_or(i64::MAX);
            redis
                .pexpire::<_, ()>(self.key(id), ttl)
                .await
                .map_err(unavailable)
        })
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut redis = self.connection().await?;
            redis.del::<_, ()>(self.key(id)).await.map_err(unavailable)
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
