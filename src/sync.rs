//! The lock helper every module's short-held mutexes go through.
//!
//! A leaf: it knows nothing of requests, connections or servers.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, ignoring poisoning: no user code ever runs while one of our locks is
/// held, so a poisoned lock cannot hold half-updated state.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
