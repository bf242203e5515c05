//! [`Stats`]: live figures of a running server, readable from any task or thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Live figures of one server. Clone it freely; clones read the same counters.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    open_connections: AtomicUsize,
}

impl Stats {
    /// Client connections currently open.
    pub fn open_connections(&self) -> usize {
        self.counters.open_connections.load(Ordering::Acquire)
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub(crate) fn connection_opened(&self) -> OpenConnection {
        self.counters
            .open_connections
            .fetch_add(1, Ordering::AcqRel);
        OpenConnection(self.clone())
    }
}

/// Held by a connection task for as long as its connection is open.
#[derive(Debug)]
pub(crate) struct OpenConnection(Stats);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0
            .counters
            .open_connections
            .fetch_sub(1, Ordering::AcqRel);
    }
}
