//! [`Shared`]: the state every connection and request of one server shares — the
//! current site and transport, the connection slots (in all and per client address), the statistics, the task
//! tracker and the cut token.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::per_ip::PerIpCounts;
use crate::site::Sites;
use crate::stats::Stats;
use crate::transport::{ConnectionSlots, Transport};

/// What every connection and request of one server shares.
pub(crate) struct Shared {
    /// The current handlers; swapped by [`ReloadHandle::reload`].
    pub(crate) site: ArcSwap<Sites>,
    /// What new connections are served with; swapped by [`ReloadHandle::reload`].
    pub(crate) transport: ArcSwap<Transport>,
    /// One slot per open connection, up to `max_connections`.
    pub(crate) connection_slots: ConnectionSlots,
    /// Open connections per client address, for `max_connections_per_ip`.
    pub(crate) per_ip: Arc<PerIpCounts>,
    /// The listeners as configured, which a reload may not change.
    pub(crate) listen: Vec<String>,
    /// The first TLS listener's port once bound (0 before), where the redirecting
    /// listeners send clients.
    pub(crate) https_port: Arc<AtomicU16>,
    /// The id of the connection accepted last, on any listener.
    pub(crate) next_connection_id: AtomicU64,
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
