//! [`BoundedStore`]: governor's per-address state in a table that never holds more
//! than a set number of addresses. A new address past the bound takes the place of
//! the one, among a few looked at, whose bucket is the fullest — the state that
//! matters least, as a forgotten address starts again with a full bucket.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use governor::nanos::Nanos;
use governor::state::StateStore;

/// Shards, each with its own lock, so that checks for different addresses rarely wait
/// on each other.
const SHARDS: usize = 16;
/// How many entries a full shard looks at to choose which to forget: enough to find
/// one whose bucket is nearly full among a flood of one-off addresses, few enough to
/// stay cheap.
const SAMPLE: usize = 8;

/// Each address's theoretical arrival time (governor's GCRA state): the later it is,
/// the emptier the bucket. Clones share the table (the limiter owns one, and
/// `RateLimit` keeps one to count the addresses).
#[derive(Clone)]
pub(super) struct BoundedStore {
    shards: Arc<[Mutex<HashMap<IpAddr, Nanos>>]>,
    per_shard: usize,
    hasher: RandomState,
}

impl BoundedStore {
    /// A table of at most `max` addresses (at least 1).
    pub(super) fn new(max: usize) -> Self {
        let max = max.max(1);
        let shards = SHARDS.min(max);
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            per_shard: max / shards,
            hasher: RandomState::new(),
        }
    }

    /// How many addresses have state now.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    fn shard(&self, ip: &IpAddr) -> MutexGuard<'_, HashMap<IpAddr, Nanos>> {
        // The shard count is at most 16: the hash's low bits pick it.
        let at = self.hasher.hash_one(ip) as usize % self.shards.len();
        lock(&self.shards[at])
    }
}

/// The counts, not the addresses: a table may hold 100,000.
impl fmt::Debug for BoundedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedStore")
            .field("addresses", &self.len())
            .field("max", &(self.per_shard * self.shards.len()))
            .finish()
    }
}

/// The lock, even if a thread panicked holding it: the table is whole after every
/// operation on it (plain inserts and removes).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Forgets the entry with the earliest arrival time (the fullest bucket) among the
/// first `SAMPLE` the table yields; hash order makes them an arbitrary few.
fn forget_one(shard: &mut HashMap<IpAddr, Nanos>) {
    let fullest = shard.iter().take(SAMPLE).min_by_key(|(_, at)| **at);
    if let Some(ip) = fullest.map(|(ip, _)| *ip) {
        shard.remove(&ip);
    }
}

impl StateStore for BoundedStore {
    type Key = IpAddr;

    fn measure_and_replace<T, F, E>(&self, key: &IpAddr, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut shard = self.shard(key);
        let old = shard.get(key).copied();
        let (outcome, new) = f(old)?;
        if old.is_none() && shard.len() >= self.per_shard {
            forget_one(&mut shard);
        }
        shard.insert(*key, new);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from_bits(n))
    }

    fn put(store: &BoundedStore, n: u32, at: u64) {
        let stored: Result<(), ()> =
            store.measure_and_replace(&ip(n), |_| Ok(((), Nanos::new(at))));
        assert_eq!(stored, Ok(()));
    }

    fn has(store: &BoundedStore, n: u32) -> bool {
        lock(&store.shards[0]).contains_key(&ip(n))
    }

    #[test]
    fn a_full_table_forgets_the_fullest_bucket_it_looks_at() {
        // One shard of 4, so every entry is among those looked at.
        let store = BoundedStore {
            shards: vec![Mutex::default()].into(),
            per_shard: 4,
            hasher: RandomState::new(),
        };
        for (n, at) in [(1, 50), (2, 10), (3, 90), (4, 70)] {
            put(&store, n, at);
        }
        put(&store, 5, 100);
        assert_eq!(store.len(), 4);
        assert!(!has(&store, 2), "the earliest arrival time is forgotten");
        put(&store, 3, 95);
        assert_eq!(store.len(), 4, "a known address takes no new place");
        assert!(has(&store, 1) && has(&store, 3) && has(&store, 4) && has(&store, 5));
    }

    #[test]
    fn the_bound_holds_for_any_count() {
        for max in [1, 5, 16, 100] {
            let store = BoundedStore::new(max);
            for n in 0..1_000 {
                put(&store, n, u64::from(n));
            }
            assert!(store.len() <= max, "{max}: {}", store.len());
            assert!(store.len() >= max / 2, "{max}: {}", store.len());
        }
    }
}
