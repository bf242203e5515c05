//! A location's `proxy = { … }`: the upstreams and the knobs of `handlers::Proxy`,
//! checked at load (each address parsed, each duration in range), so a typo is
//! refused naming the file, line and key rather than answering `502` later.

use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::bail;
use poco_httpd::handlers::{Balance, HostHeader, Proxy};
use poco_httpd::http::HeaderValue;
use serde::Deserialize;
use toml::Spanned;

use super::ConfigText;

/// `proxy = { … }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    /// `host:port` or `unix:/path`, one or more.
    to: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    balance: RawBalance,
    /// Send the path relative to the location.
    #[serde(default)]
    strip_prefix: bool,
    /// `"pass"` (default), `"upstream"`, or a fixed value.
    host: Option<Spanned<String>>,
    /// Add an RFC 7239 `Forwarded` header.
    #[serde(default)]
    forwarded: bool,
    /// Speak HTTP/2 (h2c) to the upstreams.
    #[serde(default)]
    http2: bool,
    connect_timeout_secs: Option<Spanned<u64>>,
    head_timeout_secs: Option<Spanned<u64>>,
    idle_timeout_secs: Option<Spanned<u64>>,
    max_fails: Option<Spanned<u64>>,
    fail_timeout_secs: Option<Spanned<u64>>,
    health_check: Option<RawHealthCheck>,
}

/// `balance`; serde refuses any other value, listing these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawBalance {
    #[default]
    RoundRobin,
    LeastConnections,
}

/// `health_check = { path = "/health", interval_secs = 5 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealthCheck {
    path: Spanned<String>,
    #[serde(default = "default_interval")]
    interval_secs: Spanned<u64>,
}

fn default_interval() -> Spanned<u64> {
    Spanned::new(0..0, 5)
}

const HOUR: u64 = 60 * 60;

/// Builds the proxy a location describes; `path` is the location's, `what` names it.
pub(super) fn check(
    raw: RawProxy,
    path: &str,
    what: &str,
    text: &ConfigText<'_>,
) -> anyhow::Result<Proxy> {
    let to: Vec<String> = raw
        .to
        .get_ref()
        .iter()
        .map(|t| t.get_ref().clone())
        .collect();
    if to.is_empty() {
        bail!(
            "{}: key `to` of {what}: list at least one upstream, e.g. [\"127.0.0.1:3000\"]",
            text.at(raw.to.span())
        );
    }
    for upstream in raw.to.get_ref() {
        if let Err(error) = Proxy::new([upstream.get_ref()]) {
            bail!("{}: key `to` of {what}: {error}", text.at(upstream.span()));
        }
    }
    let mut proxy = Proxy::new(&to)?.forwarded(raw.forwarded).http2(raw.http2);
    proxy = proxy.balance(match raw.balance {
        RawBalance::RoundRobin => Balance::RoundRobin,
        RawBalance::LeastConnections => Balance::LeastConnections,
    });
    if raw.strip_prefix {
        proxy = proxy.strip_prefix(path);
    }
    if let Some(host) = &raw.host {
        proxy = proxy.host_header(host_header(host, what, text)?);
    }
    let secs = |value: &Option<Spanned<u64>>, key: &str| {
        seconds(value.as_ref(), key, 1..=HOUR, what, text)
    };
    if let Some(timeout) = secs(&raw.connect_timeout_secs, "connect_timeout_secs")? {
        proxy = proxy.connect_timeout(timeout);
    }
    if let Some(timeout) = secs(&raw.head_timeout_secs, "head_timeout_secs")? {
        proxy = proxy.head_timeout(timeout);
    }
    if let Some(timeout) = secs(&raw.idle_timeout_secs, "idle_timeout_secs")? {
        proxy = proxy.idle_timeout(timeout);
    }
    if raw.max_fails.is_some() || raw.fail_timeout_secs.is_some() {
        let max_fails = match &raw.max_fails {
            Some(n) if (1..=1000).contains(n.get_ref()) => u32::try_from(*n.get_ref()).unwrap_or(3),
            Some(n) => bail!(
                "{}: key `max_fails` of {what}: {} is out of range; use 1 to 1000",
                text.at(n.span()),
                n.get_ref()
            ),
            None => 3,
        };
        let fail_timeout =
            secs(&raw.fail_timeout_secs, "fail_timeout_secs")?.unwrap_or(Duration::from_secs(10));
        proxy = proxy.passive_health(max_fails, fail_timeout);
    }
    if let Some(check) = raw.health_check {
        let interval = seconds(
            Some(&check.interval_secs),
            "interval_secs",
            1..=HOUR,
            what,
            text,
        )?
        .unwrap_or(Duration::from_secs(5));
        proxy = match proxy.health_check(check.path.get_ref(), interval) {
            Ok(proxy) => proxy,
            Err(error) => bail!(
                "{}: key `path` of {what}: {error}",
                text.at(check.path.span())
            ),
        };
    }
    Ok(proxy)
}

/// `host`: `"pass"`, `"upstream"`, or a value to send as is.
fn host_header(
    host: &Spanned<String>,
    what: &str,
    text: &ConfigText<'_>,
) -> anyhow::Result<HostHeader> {
    Ok(match host.get_ref().as_str() {
        "pass" => HostHeader::Pass,
        "upstream" => HostHeader::Upstream,
        fixed => match HeaderValue::from_str(fixed) {
            Ok(value) if !fixed.is_empty() && fixed.bytes().all(|b| b.is_ascii_graphic()) => {
                HostHeader::Fixed(value)
            }
            _ => bail!(
                "{}: key `host` of {what}: {fixed:?} is not a host; write \"pass\", \"upstream\" or a name such as \"app.internal\"",
                text.at(host.span())
            ),
        },
    })
}

/// A duration key in whole seconds within `range`.
fn seconds(
    value: Option<&Spanned<u64>>,
    key: &str,
    range: RangeInclusive<u64>,
    what: &str,
    text: &ConfigText<'_>,
) -> anyhow::Result<Option<Duration>> {
    let Some(value) = value else { return Ok(None) };
    if !range.contains(value.get_ref()) {
        bail!(
            "{}: key `{key}` of {what}: {} is out of range; use {} to {} seconds",
            text.at(value.span()),
            value.get_ref(),
            range.start(),
            range.end()
        );
    }
    Ok(Some(Duration::from_secs(*value.get_ref())))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The error for one location with `proxy`, or "ok".
    fn outcome(proxy: &str) -> String {
        let toml = format!("[[location]]\npath = \"/app\"\nproxy = {proxy}\n");
        super::super::Settings::parse(Path::new("site.toml"), &toml)
            .map_or_else(|e| format!("{e:#}"), |_| "ok".to_owned())
    }

    #[test]
    fn a_valid_proxy_location_loads() {
        let proxy = r#"{ to = ["127.0.0.1:3000", "unix:/run/app.sock"], balance = "least_connections", strip_prefix = true, host = "upstream", forwarded = true, connect_timeout_secs = 2, max_fails = 5, health_check = { path = "/health" } }"#;
        assert_eq!(outcome(proxy), "ok");
    }

    #[test]
    fn mistakes_name_the_line_and_key() {
        let cases = [
            (
                r#"{ to = [] }"#,
                "site.toml:3: key `to`",
                "at least one upstream",
            ),
            (
                r#"{ to = ["127.0.0.1"] }"#,
                "site.toml:3: key `to`",
                "no port",
            ),
            (
                r#"{ to = ["unix:run/app.sock"] }"#,
                "site.toml:3: key `to`",
                "absolute",
            ),
            (
                r#"{ to = ["a:1"], balance = "random" }"#,
                "site.toml:3: key `balance`",
                "`least_connections`",
            ),
            (
                r#"{ to = ["a:1"], head_timeout_secs = 0 }"#,
                "site.toml:3: key `head_timeout_secs`",
                "out of range",
            ),
            (
                r#"{ to = ["a:1"], host = "a b" }"#,
                "site.toml:3: key `host`",
                "not a host",
            ),
            (
                r#"{ to = ["a:1"], health_check = { path = "health" } }"#,
                "site.toml:3: key `path`",
                "start with '/'",
            ),
            (
                r#"{ to = ["a:1"], max_fails = 0 }"#,
                "site.toml:3: key `max_fails`",
                "out of range",
            ),
            (
                r#"{ to = ["a:1"], upstream = "x" }"#,
                "site.toml:3",
                "unknown field `upstream`",
            ),
        ];
        for (proxy, at, says) in cases {
            let error = outcome(proxy);
            assert!(
                error.starts_with(at) && error.contains(says),
                "{proxy}: {error}"
            );
        }
    }
}
