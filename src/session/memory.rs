//! [`MemoryStore`]: sessions in the process's memory, the embedded default.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::SessionId;
use super::lock;
use super::store::{Record, SessionStore, StoreFuture};

const DEFAULT_MAX_SESSIONS: usize = 100_000;
/// Expired sessions are swept once every this many saves.
const SWEEP_EVERY: u32 = 1024;

#[derive(Debug)]
struct Stored {
    record: Record,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<SessionId, Stored>,
    saves_since_sweep: u32,
}

/// Sessions kept in memory: fast, but private to one process. Expired sessions are
/// swept as saves come in, and at most [`MemoryStore::max_sessions`] are kept: past
/// that, the session closest to expiry is dropped.
#[derive(Debug)]
pub struct MemoryStore {
    sessions: Mutex<Sessions>,
    max_sessions: usize,
}

impl MemoryStore {
    /// An empty store holding up to 100,000 sessions.
    pub fn new() -> Self {
        Self {
            sessions: Mutex::default(),
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }

    /// Bounds the number of sessions kept.
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max.max(1);
        self
    }

    /// Sessions currently stored (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        lock(&self.sessions).by_id.len()
    }

    /// Reports whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sweep(sessions: &mut Sessions, now: Instant) {
        sessions.by_id.retain(|_, stored| stored.expires > now);
        sessions.saves_since_sweep = 0;
    }

    fn evict_one(sessions: &mut Sessions) {
        let soonest = sessions
            .by_id
            .iter()
            .min_by_key(|(_, s)| s.expires)
            .map(|(id, _)| id.clone());
        if let Some(id) = soonest {
            sessions.by_id.remove(&id);
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionStore for MemoryStore {
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Record>> {
        let mut sessions = lock(&self.sessions);
        let found = match sessions.by_id.get(id) {
            Some(stored) if stored.expires > Instant::now() => Some(stored.record.clone()),
            Some(_) => {
                sessions.by_id.remove(id);
                None
            }
            None => None,
        };
        Box::pin(std::future::ready(Ok(found)))
    }

    fn save<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a Record,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        let now = Instant::now();
        let mut sessions = lock(&self.sessions);
        sessions.saves_since_sweep += 1;
        if sessions.saves_since_sweep >= SWEEP_EVERY {
            Self::sweep(&mut sessions, now);
        }
        let stored = Stored {
            record: record.clone(),
            expires: now + ttl,
        };
        sessions.by_id.insert(id.clone(), stored);
        if sessions.by_id.len() > self.max_sessions {
            Self::sweep(&mut sessions, now);
        }
        while sessions.by_id.len() > self.max_sessions {
            Self::evict_one(&mut sessions);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn touch<'a>(&'a self, id: &'a SessionId, ttl: Duration) -> StoreFuture<'a, ()> {
        if let Some(stored) = lock(&self.sessions).by_id.get_mut(id) {
            stored.expires = Instant::now() + ttl;
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn delete<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, ()> {
        lock(&self.sessions).by_id.remove(id);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> SessionId {
        SessionId::generate().expect("randomness")
    }

    #[tokio::test]
    async fn saved_records_load_until_they_expire() {
        let store = MemoryStore::new();
        let (a, record) = (
            id(),
            Record {
                created: 1,
                ..Record::default()
            },
        );
        store
            .save(&a, &record, Duration::from_secs(60))
            .await
            .expect("save");
        assert_eq!(store.load(&a).await.expect("load"), Some(record.clone()));
        store.save(&a, &record, Duration::ZERO).await.expect("save");
        assert_eq!(store.load(&a).await.expect("load"), None);
        assert!(store.is_empty(), "an expired session is dropped when seen");
    }

    #[tokio::test]
    async fn the_number_of_sessions_is_bounded() {
        let store = MemoryStore::new().max_sessions(3);
        let ids: Vec<_> = (0..5).map(|_| id()).collect();
        for (n, id) in ids.iter().enumerate() {
            let ttl = Duration::from_secs(60 + n as u64);
            store.save(id, &Record::default(), ttl).await.expect("save");
        }
        assert_eq!(store.len(), 3);
        // The sessions closest to expiry went first.
        assert_eq!(store.load(&ids[0]).await.expect("load"), None);
        assert!(store.load(&ids[4]).await.expect("load").is_some());
    }
}
