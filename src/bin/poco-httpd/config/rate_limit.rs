//! A location's `rate_limit = { per_second = N, burst = M }` (or `per_minute`):
//! token buckets per client address (`handlers::RateLimit`), `429` past them.

use anyhow::bail;
use poco_httpd::handlers::RateLimit;
use serde::Deserialize;
use toml::Spanned;

use super::ConfigText;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    per_second: Option<Spanned<u32>>,
    per_minute: Option<Spanned<u32>>,
    burst: Option<Spanned<u32>>,
    max_addresses: Option<Spanned<usize>>,
}

/// Checks the table and builds the handler; `location_at` is the `file:line` of the
/// location's path, for errors about the table as a whole.
pub(super) fn check(
    raw: RawRateLimit,
    what: &str,
    location_at: &str,
    text: &ConfigText<'_>,
) -> anyhow::Result<RateLimit> {
    let positive = |key: &str, value: &Spanned<u32>| -> anyhow::Result<u32> {
        if *value.get_ref() == 0 {
            bail!(
                "{}: key `{key}` of `rate_limit` of {what}: must be at least 1",
                text.at(value.span())
            );
        }
        Ok(*value.get_ref())
    };
    let mut limit = match (&raw.per_second, &raw.per_minute) {
        (Some(rate), None) => RateLimit::per_second(positive("per_second", rate)?),
        (None, Some(rate)) => RateLimit::per_minute(positive("per_minute", rate)?),
        _ => bail!(
            "{}: `rate_limit` of {what}: give exactly one of `per_second` and `per_minute`",
            location_at
        ),
    };
    if let Some(burst) = &raw.burst {
        limit = limit.burst(positive("burst", burst)?);
    }
    if let Some(max) = &raw.max_addresses {
        if *max.get_ref() == 0 {
            bail!(
                "{}: key `max_addresses` of `rate_limit` of {what}: must be at least 1",
                text.at(max.span())
            );
        }
        limit = limit.max_addresses(*max.get_ref());
    }
    Ok(limit)
}
