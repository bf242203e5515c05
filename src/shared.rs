//! [`Shared`]: the state every connection and request of one server shares — the
//! current site and transport, the connection slots (in all and per client address), the statistics, the task
//! tracker and the cut token.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::per_ip::PerIpCounts;
use crate::site::Site;
use crate::stats::Stats;
use crate::transport::{ConnectionSlots, Transport};

/// What every connection and request of one server shares.
pub(crate) struct Shared {
    /// The current handlers; swapped by [`ReloadHandle::reload`].
    pub(crate) site: ArcSwap<Site>,
    /// What new connections are served with; swapped by [`ReloadHandle::reload`].
    pub(crate) transport: ArcSwap<Transport>,
    /// One slot per open connection, up to `max_connections`.
    pub(crate) connection_slots: ConnectionSlots,
    /// Open connections per client address, for `max_connections_per_ip`.
    pub(crate) per_ip: Arc<PerIpCounts>,
    /// The listen address as configured, which a reload may not change.
    pub(crate) listen: String,
    pub(crate) stats: Stats,
    /// Connection tasks and Post tasks, awaited on shutdown.
    pub(crate) tasks: TaskTracker,
    /// Cancelled when the shutdown deadline passes: whatever still runs is cut.
    pub(crate) cut: CancellationToken,
    /// Cancelled when shutdown is asked for: accepting stops, connections drain.
    pub(crate) draining: CancellationToken,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
