//! [`Transport`]: how a connection is served — the [`Limits`], hyper's connection
//! builder made from them, and the TLS acceptor — and [`ConnectionSlots`], the
//! `max_connections` bound.
//!
//! A reload replaces both. Each connection takes the transport that is current when it
//! is accepted and keeps it to the end, so new connections get the new limits and
//! certificate while open ones go on as they started. This module knows nothing about
//! requests or handlers.

use std::fmt;
use std::sync::{Arc, Mutex};

use hyper_util::server::conn::auto;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::limits::Limits;
use crate::send_watch::StreamExecutor;
use crate::sync::lock;

/// What a connection is served with, fixed when it is accepted.
pub(crate) struct Transport {
    pub(crate) limits: Limits,
    /// hyper's builder, configured from `limits`.
    pub(crate) http: auto::Builder<StreamExecutor>,
    /// Set when the server speaks HTTPS; holds the certificate new handshakes present.
    pub(crate) tls: Option<TlsAcceptor>,
    /// Each connection starts with a PROXY protocol header (v1 or v2) naming the
    /// client, sent by the load balancer in front.
    pub(crate) proxy_protocol: bool,
}

impl Transport {
    pub(crate) fn new(limits: Limits, tls: Option<TlsAcceptor>, proxy_protocol: bool) -> Self {
        Self {
            http: limits.http_builder(),
            limits,
            tls,
            proxy_protocol,
        }
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("limits", &self.limits)
            .field("tls", &self.tls.is_some())
            .field("proxy_protocol", &self.proxy_protocol)
            .finish_non_exhaustive()
    }
}

/// One semaphore permit per open connection, up to `max_connections`, resizable while
/// connections hold permits: growing adds permits at once; shrinking forgets the free
/// ones at once and the rest, as a debt, when connections close.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSlots(Arc<SlotsInner>);

#[derive(Debug)]
struct SlotsInner {
    semaphore: Arc<Semaphore>,
    /// Free and held permits minus `owed` always add up to `max` once settled.
    bound: Mutex<Bound>,
}

#[derive(Debug)]
struct Bound {
    max: usize,
    /// Permits to forget as connections close, after shrinking below the open count.
    owed: usize,
}

/// A connection's place under `max_connections`, given back when dropped (or, while
/// the bound is being lowered, forgotten).
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    permit: Option<OwnedSemaphorePermit>,
    slots: Arc<SlotsInner>,
}

impl ConnectionSlots {
    pub(crate) fn new(max: usize) -> Self {
        Self(Arc::new(SlotsInner {
            semaphore: Arc::new(Semaphore::new(max)),
            bound: Mutex::new(Bound { max, owed: 0 }),
        }))
    }

    /// The current bound.
    pub(crate) fn max(&self) -> usize {
        lock(&self.0.bound).max
    }

    /// A free slot, if there is one now.
    pub(crate) fn try_acquire(&self) -> Option<ConnectionSlot> {
        let permit = Arc::clone(&self.0.semaphore).try_acquire_owned().ok()?;
        Some(self.slot(permit))
    }

    /// Waits for a free slot.
    pub(crate) async fn acquire(&self) -> Option<ConnectionSlot> {
        let permit = Arc::clone(&self.0.semaphore).acquire_owned().await.ok()?;
        Some(self.slot(permit))
    }

    fn slot(&self, permit: OwnedSemaphorePermit) -> ConnectionSlot {
        ConnectionSlot {
            permit: Some(permit),
            slots: Arc::clone(&self.0),
        }
    }

    /// Makes `max` the bound.
    pub(crate) fn resize(&self, max: usize) {
        let mut bound = lock(&self.0.bound);
        if max >= bound.max {
            let grow = max - bound.max;
            let repaid = grow.min(bound.owed);
            bound.owed -= repaid;
            self.0.semaphore.add_permits(grow - repaid);
        } else {
            let shrink = bound.max - max;
            let forgotten = self.0.semaphore.forget_permits(shrink);
            bound.owed += shrink - forgotten;
        }
        bound.max = max;
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        // Under the lock, so a concurrent resize sees the permit either held or freed.
        let mut bound = lock(&self.slots.bound);
        if let Some(permit) = self.permit.take()
            && bound.owed > 0
        {
            bound.owed -= 1;
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_frees_slots_at_once() {
        let slots = ConnectionSlots::new(1);
        let _held = slots.try_acquire().expect("one slot");
        assert!(slots.try_acquire().is_none());
        slots.resize(2);
        assert!(slots.try_acquire().is_some());
    }

    #[test]
    fn shrinking_below_the_open_count_waits_for_connections_to_close() {
        let slots = ConnectionSlots::new(3);
        let held: Vec<ConnectionSlot> = (0..3).filter_map(|_| slots.try_acquire()).collect();
        slots.resize(1);
        let mut held = held.into_iter();
        drop(held.next());
        assert!(slots.try_acquire().is_none(), "two open, the bound is one");
        drop(held.next());
        assert!(slots.try_acquire().is_none(), "one open, the bound is one");
        drop(held.next());
        let again = slots.try_acquire().expect("none open");
        assert!(slots.try_acquire().is_none(), "one slot only");
        drop(again);
        assert_eq!(slots.max(), 1);
    }

    #[test]
    fn growing_again_repays_what_shrinking_still_owed() {
        let slots = ConnectionSlots::new(2);
        let held: Vec<ConnectionSlot> = (0..2).filter_map(|_| slots.try_acquire()).collect();
        slots.resize(0);
        slots.resize(3);
        assert!(slots.try_acquire().is_some(), "three allowed, two open");
        drop(held);
        let open: Vec<ConnectionSlot> = (0..4).filter_map(|_| slots.try_acquire()).collect();
        assert_eq!(open.len(), 3);
    }
}
