//! [`PerIpCounts`]: how many connections each client address holds open, for
//! `max_connections_per_ip`. An address is in the table only while it has a
//! connection open, so the table never holds more entries than there are open
//! connections (themselves bounded by `max_connections`).
//!
//! A leaf: it knows addresses and counts, nothing about sockets or requests.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::sync::lock;

/// Open connections per client address.
#[derive(Debug, Default)]
pub(crate) struct PerIpCounts {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its address's count, given back when dropped.
#[derive(Debug)]
pub(crate) struct PerIpPlace {
    counts: Arc<PerIpCounts>,
    ip: IpAddr,
}

impl PerIpCounts {
    /// A place for one more connection from `ip`, or `None` when it already holds
    /// `max`. An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`, as a dual-stack
    /// socket reports it) counts as the IPv4 address.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PerIpPlace> {
        let ip = ip.to_canonical();
        let mut open = lock(&self.open);
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            if *count == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(PerIpPlace {
            counts: Arc::clone(self),
            ip,
        })
    }

    /// The connections `ip` holds open.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        lock(&self.open).get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for PerIpPlace {
    fn drop(&mut self) {
        let mut open = lock(&self.counts.open);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_max_and_leaves_the_table_when_done() {
        let counts = Arc::new(PerIpCounts::default());
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let first = counts.try_acquire(ip, 2).expect("first");
        let second = counts.try_acquire(ip, 2).expect("second");
        assert!(counts.try_acquire(ip, 2).is_none());
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        assert!(counts.try_acquire(other, 2).is_some());
        drop(first);
        assert_eq!(counts.open(ip), 1);
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        let third = counts.try_acquire(mapped, 2).expect("room again");
        assert!(counts.try_acquire(ip, 2).is_none(), "mapped counts as IPv4");
        drop((second, third));
        assert!(lock(&counts.open).is_empty());
    }
}
