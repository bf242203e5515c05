//! [`Pool`]: a proxy's upstreams, each with its keep-alive connections ([`Transport`]:
//! the proxy's own HTTP/1.1 pool, or hyper-util's client for HTTP/2 upstreams), its
//! count of requests in flight and its health; and the choice
//! of the upstream for the next request — [`Balance::RoundRobin`] or
//! [`Balance::LeastConnections`] — among those not marked down.
//!
//! Passive health: an upstream that fails `max_fails` times in a row (cannot be
//! reached, times out, breaks before answering) is left out for `fail_timeout`.
//! A lone upstream is never left out, since there is nothing to send to instead.
//! Active health checks (see `health.rs`) mark an upstream down until a check passes.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::OutgoingBody;
use super::conn::{Http1Pool, UpstreamConn};
use super::connector::Connector;
use super::upstream::Upstream;

/// How a proxy spreads requests over several upstreams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Balance {
    /// Each upstream in turn.
    #[default]
    RoundRobin,
    /// The upstream with the fewest requests in flight (long downloads and
    /// WebSockets count until they end); ties go round.
    LeastConnections,
}

/// What the clients of a pool are built with.
#[derive(Debug, Clone)]
pub(super) struct ClientSettings {
    pub(super) connect_timeout: Duration,
    pub(super) http2: bool,
    pub(super) pool_idle_timeout: Duration,
}

/// The health rules of a pool.
#[derive(Debug, Clone, Copy)]
pub(super) struct HealthRules {
    pub(super) max_fails: u32,
    pub(super) fail_timeout: Duration,
}

/// How a member's requests reach it.
pub(super) enum Transport {
    /// HTTP/1.1 over the proxy's own pool, whose connections are driven by the
    /// requests using them (see `conn.rs`).
    Http1(Http1Pool),
    /// HTTP/2 (h2c) over hyper-util's pooled client: one connection carries many
    /// requests at once, so it is driven by a task of its own.
    Http2(Box<Client<Connector, OutgoingBody>>),
}

/// One upstream with its connections and its state.
pub(super) struct Member {
    pub(super) upstream: Upstream,
    pub(super) transport: Transport,
    active: AtomicUsize,
    failures: AtomicU32,
    /// Left out until this many milliseconds after the pool's start (0: never was).
    down_until_ms: AtomicU64,
    /// The last active health check failed.
    check_failed: AtomicBool,
    /// The task closing its idle connections was started.
    reaping: AtomicBool,
}

impl Member {
    fn new(upstream: Upstream, settings: &ClientSettings) -> Self {
        let connector = Connector::new(upstream.address().clone(), settings.connect_timeout);
        let transport = if settings.http2 {
            let client = Client::builder(TokioExecutor::new())
                .timer(TokioTimer::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(settings.pool_idle_timeout)
                .http2_only(true)
                .set_host(false)
                .build(connector);
            Transport::Http2(Box::new(client))
        } else {
            Transport::Http1(Http1Pool::new(connector, settings.pool_idle_timeout))
        };
        Self {
            upstream,
            transport,
            active: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            down_until_ms: AtomicU64::new(0),
            check_failed: AtomicBool::new(false),
            reaping: AtomicBool::new(false),
        }
    }

    /// Whether it is spoken to in HTTP/2.
    pub(super) fn client_is_http2(&self) -> bool {
        matches!(self.transport, Transport::Http2(_))
    }

    /// Requests in flight to this upstream.
    pub(super) fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub(super) fn set_check_failed(&self, failed: bool) {
        let was = self.check_failed.swap(failed, Ordering::Relaxed);
        if was != failed {
            let state = if failed { "down" } else { "up again" };
            tracing::warn!(upstream = %self.upstream, "proxy: upstream {} is {state} (health check)", self.upstream);
        }
    }
}

/// A request in flight to one member, counted until dropped (when the response body
/// ends, or a tunnel closes).
pub(super) struct Lease {
    member: Arc<Member>,
}

impl Lease {
    /// Puts `conn`, whose answer has ended, back into its upstream's pool.
    pub(super) fn give_back(&self, conn: UpstreamConn, cx: &mut std::task::Context<'_>) {
        if let Transport::Http1(pool) = &self.member.transport {
            pool.give_back(conn, cx);
            let member = &self.member;
            if !member.reaping.load(Ordering::Relaxed)
                && !member.reaping.swap(true, Ordering::Relaxed)
            {
                spawn_reaper(Arc::downgrade(member), pool.reap_every());
            }
        }
    }
}

/// Starts the task that closes `member`'s stale idle connections every `every`; it
/// ends with the member (after a reload replaced the proxy, say).
fn spawn_reaper(member: Weak<Member>, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(member) = member.upgrade() else {
                return;
            };
            if let Transport::Http1(pool) = &member.transport {
                pool.reap();
            }
        }
    });
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.member.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A proxy's upstreams; see the module docs.
pub(super) struct Pool {
    members: Vec<Arc<Member>>,
    balance: Balance,
    health: HealthRules,
    next: AtomicUsize,
    start: Instant,
}

impl Pool {
    pub(super) fn new(
        upstreams: &[Upstream],
        balance: Balance,
        health: HealthRules,
        settings: &ClientSettings,
    ) -> Self {
        let members = upstreams
            .iter()
            .map(|upstream| Arc::new(Member::new(upstream.clone(), settings)))
            .collect();
        Self {
            members,
            balance,
            health,
            next: AtomicUsize::new(0),
            start: Instant::now(),
        }
    }

    pub(super) fn members(&self) -> &[Arc<Member>] {
        &self.members
    }

    /// The member for the next request, leaving out those in `tried` and those
    /// marked down; `None` when no member is left.
    pub(super) fn pick(&self, tried: &[usize]) -> Option<usize> {
        let count = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let candidates = (0..count)
            .map(|offset| (start + offset) % count)
            .filter(|index| !tried.contains(index) && self.is_up(*index));
        match self.balance {
            Balance::RoundRobin => candidates.into_iter().next(),
            Balance::LeastConnections => {
                candidates.min_by_key(|index| self.members[*index].active())
            }
        }
    }

    /// Whether a member outside `tried` is up, without advancing the turn.
    pub(super) fn has_another(&self, tried: &[usize]) -> bool {
        (0..self.members.len()).any(|index| !tried.contains(&index) && self.is_up(index))
    }

    fn is_up(&self, index: usize) -> bool {
        if self.members.len() == 1 {
            return true;
        }
        let member = &self.members[index];
        !member.check_failed.load(Ordering::Relaxed)
            && member.down_until_ms.load(Ordering::Relaxed) <= self.now_ms()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn member(&self, index: usize) -> &Arc<Member> {
        &self.members[index]
    }

    /// Counts a request in flight to `index` until the lease is dropped.
    pub(super) fn lease(&self, index: usize) -> Lease {
        let member = Arc::clone(&self.members[index]);
        member.active.fetch_add(1, Ordering::Relaxed);
        Lease { member }
    }

    /// The upstream answered: its failures in a row start again from zero.
    pub(super) fn succeeded(&self, index: usize) {
        self.members[index].failures.store(0, Ordering::Relaxed);
    }

    /// The upstream failed; after `max_fails` in a row it is left out for
    /// `fail_timeout`.
    pub(super) fn failed(&self, index: usize) {
        let member = &self.members[index];
        let failures = member.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < self.health.max_fails || self.members.len() == 1 {
            return;
        }
        member.failures.store(0, Ordering::Relaxed);
        let timeout = u64::try_from(self.health.fail_timeout.as_millis()).unwrap_or(u64::MAX);
        let until = self.now_ms().saturating_add(timeout);
        member.down_until_ms.store(until, Ordering::Relaxed);
        tracing::warn!(
            upstream = %member.upstream,
            "proxy: upstream {} left out for {:?} after {failures} failures in a row",
            member.upstream,
            self.health.fail_timeout
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(count: usize, balance: Balance) -> Pool {
        let upstreams: Vec<Upstream> = (0..count)
            .map(|i| Upstream::parse(&format!("127.0.0.1:{}", 3000 + i)).expect("address"))
            .collect();
        let health = HealthRules {
            max_fails: 2,
            fail_timeout: Duration::from_secs(60),
        };
        let settings = ClientSettings {
            connect_timeout: Duration::from_secs(1),
            http2: false,
            pool_idle_timeout: Duration::from_secs(1),
        };
        Pool::new(&upstreams, balance, health, &settings)
    }

    #[test]
    fn round_robin_takes_each_in_turn_and_skips_the_tried() {
        let pool = pool(3, Balance::RoundRobin);
        let picks: Vec<Option<usize>> = (0..4).map(|_| pool.pick(&[])).collect();
        assert_eq!(picks, [Some(0), Some(1), Some(2), Some(0)]);
        assert_eq!(pool.pick(&[0, 1, 2]), None);
        let other = pool.pick(&[2]).expect("one left");
        assert_ne!(other, 2);
    }

    #[test]
    fn least_connections_takes_the_least_busy() {
        let pool = pool(3, Balance::LeastConnections);
        let _busy = [pool.lease(0), pool.lease(0), pool.lease(2)];
        assert_eq!(pool.pick(&[]), Some(1));
        let _more = pool.lease(1);
        let _more2 = pool.lease(1);
        assert_eq!(pool.pick(&[]), Some(2));
    }

    #[test]
    fn an_upstream_failing_max_fails_times_is_left_out() {
        let pool = pool(2, Balance::RoundRobin);
        pool.failed(0);
        assert!(pool.is_up(0), "one failure is below max_fails");
        pool.succeeded(0);
        pool.failed(0);
        assert!(pool.is_up(0), "a success starts the count again");
        pool.failed(0);
        assert!(!pool.is_up(0));
        assert_eq!(
            (0..3).map(|_| pool.pick(&[])).collect::<Vec<_>>(),
            [Some(1); 3]
        );
        pool.members[1].set_check_failed(true);
        assert_eq!(pool.pick(&[]), None);
    }

    #[test]
    fn a_lone_upstream_is_never_left_out() {
        let pool = pool(1, Balance::RoundRobin);
        for _ in 0..5 {
            pool.failed(0);
        }
        assert_eq!(pool.pick(&[]), Some(0));
    }
}
