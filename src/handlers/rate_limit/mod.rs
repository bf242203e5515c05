//! [`RateLimit`]: token buckets per client address (the `governor` crate's GCRA),
//! answering `429 Too Many Requests` with `Retry-After` past the rate; the buckets
//! are kept in a [`BoundedStore`].

mod bounded_store;

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use http::StatusCode;
use http::header::RETRY_AFTER;

use crate::{Handler, HandlerFuture, Outcome, Request, Response};

use self::bounded_store::BoundedStore;

/// The default bound on addresses tracked at once.
const DEFAULT_MAX_ADDRESSES: usize = 100_000;

/// Limits the requests each client address may make: a bucket of `burst` tokens per
/// address, refilled at the given rate; a request takes a token, and one that finds
/// none is answered `429 Too Many Requests` with `Retry-After` (whole seconds until a
/// token is back). Install as a Pre handler; each `RateLimit` (and its clones) keeps
/// its own buckets, so one per directory limits each directory on its own.
///
/// The address is [`Connection::client_addr`](crate::Connection::client_addr) (put
/// [`RealIp`](super::RealIp) in front behind a proxy). IPv6 clients are counted by
/// their /64 network, since one host commonly holds a whole /64.
///
/// Memory stays bounded under many addresses: at most
/// [`max_addresses`](RateLimit::max_addresses) are tracked at once. A new address
/// past that takes the place of one whose bucket is among the fullest (chosen from a
/// few looked at): forgetting a full bucket changes nothing, as a new address gets a
/// full one. So a flood of one-off addresses pushes out other one-off addresses, not
/// the clients that used up their bursts, which stay limited.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::RateLimit;
///
/// // 10 requests a second per address, bursts of 20.
/// let api = RateLimit::per_second(10).burst(20);
/// let builder = Server::builder().pre("/api/", api).content("/", "hello\n");
/// # drop(builder);
/// ```
#[derive(Debug, Clone)]
pub struct RateLimit {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limiter: RateLimiter<IpAddr, BoundedStore, DefaultClock>,
    /// The limiter's table, to count its addresses.
    store: BoundedStore,
    quota: Quota,
    max_addresses: usize,
}

impl RateLimit {
    /// `count` requests a second per address (at least 1), in bursts of up to
    /// `count` until [`RateLimit::burst`] says otherwise.
    pub fn per_second(count: u32) -> Self {
        Self::with_quota(Quota::per_second(at_least_one(count)))
    }

    /// `count` requests a minute per address (at least 1), in bursts of up to
    /// `count` until [`RateLimit::burst`] says otherwise.
    pub fn per_minute(count: u32) -> Self {
        Self::with_quota(Quota::per_minute(at_least_one(count)))
    }

    fn with_quota(quota: Quota) -> Self {
        Self::build(quota, DEFAULT_MAX_ADDRESSES)
    }

    fn build(quota: Quota, max_addresses: usize) -> Self {
        let store = BoundedStore::new(max_addresses);
        Self {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(quota, store.clone(), DefaultClock::default()),
                store,
                quota,
                max_addresses,
            }),
        }
    }

    /// The most requests an address may make at once, after being idle (at least 1).
    /// Starts over with empty buckets.
    pub fn burst(self, count: u32) -> Self {
        let quota = self.inner.quota.allow_burst(at_least_one(count));
        Self::build(quota, self.inner.max_addresses)
    }

    /// The most addresses tracked at once (at least 1). Default: 100,000, a few
    /// megabytes. Starts over with empty buckets.
    pub fn max_addresses(self, count: usize) -> Self {
        Self::build(self.inner.quota, count.max(1))
    }

    /// How many addresses have a bucket now.
    pub fn tracked_addresses(&self) -> usize {
        self.inner.store.len()
    }

    /// Takes a token for `ip`; `Err` holds the whole seconds until one is back.
    fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let limiter = &self.inner.limiter;
        limiter.check_key(&key(ip)).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

fn at_least_one(count: u32) -> NonZeroU32 {
    NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN)
}

/// What a client is counted by: its IPv4 address, or its IPv6 /64 network.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let network = v6.to_bits() & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from_bits(network))
        }
    }
}

impl Handler for RateLimit {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let client = request.connection().client_addr();
        let outcome = match self.check(client.ip()) {
            Ok(()) => Outcome::Ok,
            Err(seconds) => {
                tracing::debug!(%client, path = request.path(), "rate limited");
                response.set_header(RETRY_AFTER, seconds.max(1));
                response.deny(StatusCode::TOO_MANY_REQUESTS)
            }
        };
        HandlerFuture::ready(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(key(a), key(b));
        assert_ne!(key(a), key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(key(mapped), "192.0.2.1".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_wait() {
        let limit = RateLimit::per_minute(1).burst(3);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(limit.check(ip), Ok(()));
        }
        let wait = limit.check(ip).expect_err("limited");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(limit.check("192.0.2.2".parse().expect("ip")), Ok(()));
    }

    #[test]
    fn the_table_stays_bounded_under_many_addresses() {
        let limit = RateLimit::per_minute(1).max_addresses(500);
        for n in 0..20_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from_bits(0x0a00_0000 + n));
            let _ = limit.check(ip);
            assert!(limit.tracked_addresses() <= 500, "{n}");
        }
    }

    #[test]
    fn a_flood_of_new_addresses_does_not_free_a_limited_client() {
        let limit = RateLimit::per_minute(1).burst(5).max_addresses(64);
        let heavy: IpAddr = "192.0.2.1".parse().expect("ip");
        for _ in 0..5 {
            assert_eq!(limit.check(heavy), Ok(()));
        }
        assert!(limit.check(heavy).is_err());
        for n in 0..10_000u32 {
            let one_off = IpAddr::V4(std::net::Ipv4Addr::from_bits(0x0a00_0000 + n));
            assert_eq!(limit.check(one_off), Ok(()), "{n}");
        }
        assert!(limit.check(heavy).is_err(), "still limited");
        assert!(limit.tracked_addresses() <= 64);
    }
}
