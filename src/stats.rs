//! [`Stats`]: live figures of a running server, readable from any task or thread —
//! what the `/server-status` page shows.
//!
//! Every figure is an atomic counter bumped on the request path (a handful of
//! relaxed atomic adds per request); requests per second over the last minute come
//! from a ring of 60 one-second buckets, each stamped with the second it counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// Seconds of history kept for the per-second figures.
pub(crate) const HISTORY_SECONDS: usize = 60;

/// Live figures of one server. Clone it freely; clones read the same counters.
#[derive(Debug, Clone)]
pub struct Stats {
    counters: Arc<Counters>,
}

#[derive(Debug)]
struct Counters {
    started: Instant,
    open_connections: AtomicUsize,
    /// Connections (or HTTP/2 streams) taken over after a protocol switch, still open.
    upgraded: AtomicUsize,
    in_flight: AtomicUsize,
    bytes_sent: AtomicU64,
    /// Requests still in progress when a shutdown deadline cut their connection.
    cut: AtomicU64,
    /// Responses by status class: 1xx to 5xx.
    by_class: [AtomicU64; 5],
    /// `(second since start, requests answered in it)` per slot, slot = second % 60.
    per_second: [(AtomicU64, AtomicU64); HISTORY_SECONDS],
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            counters: Arc::new(Counters {
                started: Instant::now(),
                open_connections: AtomicUsize::new(0),
                upgraded: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                bytes_sent: AtomicU64::new(0),
                cut: AtomicU64::new(0),
                by_class: Default::default(),
                per_second: std::array::from_fn(|_| (AtomicU64::new(u64::MAX), AtomicU64::new(0))),
            }),
        }
    }
}

impl Stats {
    /// Client connections currently open.
    pub fn open_connections(&self) -> usize {
        self.counters.open_connections.load(Ordering::Acquire)
    }

    /// Connections taken over after a protocol switch — WebSockets, tunnels; on HTTP/2
    /// a stream each — still open: counted from when the taking task gets its
    /// [`Upgraded`](crate::Upgraded) until it drops it. Their HTTP/1.1 connections
    /// also count in [`Stats::open_connections`].
    pub fn open_upgraded(&self) -> usize {
        self.counters.upgraded.load(Ordering::Acquire)
    }

    /// Counts a taken-over connection as open until the returned guard is dropped.
    pub(crate) fn upgrade_opened(&self) -> OpenUpgrade {
        self.counters.upgraded.fetch_add(1, Ordering::AcqRel);
        OpenUpgrade(self.clone())
    }

    /// Requests being worked on: received, and their response not yet completely
    /// handed to the connection — a streaming response counts until its last block.
    pub fn in_flight(&self) -> usize {
        self.counters.in_flight.load(Ordering::Acquire)
    }

    /// Requests answered since the server started.
    pub fn requests(&self) -> u64 {
        let by_class = self.counters.by_class.iter();
        by_class.map(|count| count.load(Ordering::Relaxed)).sum()
    }

    /// Response body bytes handed to connections since the server started.
    pub fn bytes_sent(&self) -> u64 {
        self.counters.bytes_sent.load(Ordering::Relaxed)
    }

    /// Responses answered with a status of class `class` (1 to 5, for 1xx to 5xx).
    pub fn responses_of_class(&self, class: u16) -> u64 {
        let slot = usize::from(class.clamp(1, 5)) - 1;
        self.counters.by_class[slot].load(Ordering::Relaxed)
    }

    /// Seconds since the server was built.
    pub fn uptime_seconds(&self) -> u64 {
        self.counters.started.elapsed().as_secs()
    }

    /// Requests answered in each of the last 60 whole seconds, oldest first (the
    /// current, unfinished second is not included).
    pub fn per_second(&self) -> Vec<u64> {
        let now = self.counters.started.elapsed().as_secs();
        (1..=HISTORY_SECONDS as u64)
            .rev()
            .map(|ago| {
                let Some(second) = now.checked_sub(ago) else {
                    return 0;
                };
                let (stamp, count) = &self.counters.per_second[second as usize % HISTORY_SECONDS];
                if stamp.load(Ordering::Acquire) == second {
                    count.load(Ordering::Relaxed)
                } else {
                    0
                }
            })
            .collect()
    }

    /// Requests per second, averaged over the last minute (or the uptime, if shorter).
    pub fn requests_per_second(&self) -> f64 {
        let seconds = self.uptime_seconds().clamp(1, HISTORY_SECONDS as u64);
        let recent: u64 = self.per_second().iter().rev().take(seconds as usize).sum();
        recent as f64 / seconds as f64
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub(crate) fn connection_opened(&self) -> OpenConnection {
        self.counters
            .open_connections
            .fetch_add(1, Ordering::AcqRel);
        OpenConnection(self.clone())
    }

    /// Requests cut because they were still in progress at the shutdown deadline.
    pub fn requests_cut(&self) -> u64 {
        self.counters.cut.load(Ordering::Relaxed)
    }

    /// Counts `requests` cut at the shutdown deadline.
    pub(crate) fn cut_at_deadline(&self, requests: usize) {
        self.counters
            .cut
            .fetch_add(requests as u64, Ordering::Relaxed);
    }

    /// Counts a request as in flight, until [`Stats::request_done`] (when its response
    /// body is dropped) or the drop of an [`InFlightRequest`] that adopted it.
    pub(crate) fn request_started(&self) {
        self.counters.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// Ends what [`Stats::request_started`] counted.
    pub(crate) fn request_done(&self) {
        self.counters.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Counts a response with `status` as answered at `now`: the caller's reading of
    /// the clock (for a request answered without waiting, the time it arrived).
    pub(crate) fn answered(&self, status: http::StatusCode, now: Instant) {
        let counters = &self.counters;
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        counters.by_class[class].fetch_add(1, Ordering::Relaxed);
        let second = now.saturating_duration_since(counters.started).as_secs();
        let (stamp, count) = &counters.per_second[second as usize % HISTORY_SECONDS];
        // A plain load first: the stamp changes once a second, not once a request.
        if stamp.load(Ordering::Acquire) != second && stamp.swap(second, Ordering::AcqRel) != second
        {
            // First request of a new second in this slot: forget the minute-old count.
            count.store(0, Ordering::Relaxed);
        }
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts body bytes handed to a connection.
    pub(crate) fn sent(&self, bytes: usize) {
        self.counters
            .bytes_sent
            .fetch_add(bytes as u64, Ordering::Relaxed);
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

/// Held by an [`Upgraded`](crate::Upgraded) for as long as it is open.
#[derive(Debug)]
pub(crate) struct OpenUpgrade(Stats);

impl Drop for OpenUpgrade {
    fn drop(&mut self) {
        self.0.counters.upgraded.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Ends the count of a request [`Stats::request_started`] counted when dropped: held
/// by a front half that waits, so a client leaving meanwhile still ends it, until
/// [`InFlightRequest::hand_over`] passes the count on to the response body.
#[derive(Debug)]
pub(crate) struct InFlightRequest(Option<Stats>);

impl InFlightRequest {
    pub(crate) fn adopt(stats: Stats) -> Self {
        Self(Some(stats))
    }

    /// The response body now holds the count; it ends it when dropped.
    pub(crate) fn hand_over(mut self) {
        self.0 = None;
    }
}

impl Drop for InFlightRequest {
    fn drop(&mut self) {
        if let Some(stats) = &self.0 {
            stats.request_done();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_by_class_and_second() {
        let stats = Stats::default();
        stats.answered(http::StatusCode::OK, Instant::now());
        stats.answered(http::StatusCode::NOT_FOUND, Instant::now());
        stats.answered(http::StatusCode::NOT_FOUND, Instant::now());
        assert_eq!(stats.requests(), 3);
        assert_eq!(
            (stats.responses_of_class(2), stats.responses_of_class(4)),
            (1, 2)
        );
        assert_eq!(stats.per_second().len(), HISTORY_SECONDS);
        stats.request_started();
        stats.request_started();
        assert_eq!(stats.in_flight(), 2);
        stats.request_done();
        let adopted = InFlightRequest::adopt(stats.clone());
        assert_eq!(stats.in_flight(), 1);
        drop(adopted);
        assert_eq!(stats.in_flight(), 0);
    }

    #[test]
    fn an_upgraded_connection_counts_while_its_guard_lives() {
        let stats = Stats::default();
        let open = stats.upgrade_opened();
        assert_eq!(stats.open_upgraded(), 1);
        drop(open);
        assert_eq!(stats.open_upgraded(), 0);
    }
}
