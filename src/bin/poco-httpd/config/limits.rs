//! `[limits]`: each key with the range it accepts and the [`ServerBuilder`] method it
//! sets. Values are checked at load, so a zero or absurd value is refused naming the
//! file, line and key — a zero `handler_timeout_secs` would otherwise answer `503` to
//! any request whose handler waits, and a huge `max_connections` would panic.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::bail;
use poco_httpd::ServerBuilder;
use toml::Spanned;

use super::ConfigText;

/// `[limits]` as written: key → value. A map rather than a struct, so the keys, their
/// ranges and their builder methods live in one table ([`LIMITS`]).
pub(super) type RawLimits = BTreeMap<String, Spanned<u64>>;

/// One `[limits]` key.
#[derive(Debug)]
pub(super) struct Limit {
    key: &'static str,
    /// What the server accepts; outside it a value is a typo or a mistake.
    range: RangeInclusive<u64>,
    unit: &'static str,
    set: fn(ServerBuilder, u64) -> ServerBuilder,
}

const HOUR: u64 = 60 * 60;
const DAY: u64 = 24 * HOUR;
const MIB: u64 = 1024 * 1024;

/// Every `[limits]` key, in the order of the README and RELIABILITY.md.
const LIMITS: [Limit; 17] = [
    Limit {
        key: "header_read_timeout_secs",
        range: 1..=HOUR,
        unit: "seconds",
        set: |builder, value| builder.header_read_timeout(Duration::from_secs(value)),
    },
    Limit {
        key: "max_header_size",
        range: 1024..=MIB,
        unit: "bytes",
        set: |builder, value| builder.max_header_size(size(value)),
    },
    Limit {
        key: "max_headers",
        range: 1..=1000,
        unit: "headers",
        set: |builder, value| builder.max_headers(size(value)),
    },
    Limit {
        key: "max_body_size",
        range: 1..=1024 * 1024 * MIB,
        unit: "bytes",
        set: |builder, value| builder.max_body_size(size(value)),
    },
    Limit {
        key: "body_read_timeout_secs",
        range: 1..=HOUR,
        unit: "seconds",
        set: |builder, value| builder.body_read_timeout(Duration::from_secs(value)),
    },
    Limit {
        key: "write_timeout_secs",
        range: 1..=HOUR,
        unit: "seconds",
        set: |builder, value| builder.write_timeout(Duration::from_secs(value)),
    },
    Limit {
        key: "min_write_rate",
        range: 1..=1024 * MIB,
        unit: "bytes per second",
        set: |builder, value| builder.min_write_rate(value),
    },
    Limit {
        key: "send_timeout_secs",
        range: 1..=HOUR,
        unit: "seconds",
        set: |builder, value| builder.send_timeout(Duration::from_secs(value)),
    },
    Limit {
        key: "keep_alive_timeout_secs",
        range: 1..=HOUR,
        unit: "seconds",
        set: |builder, value| builder.keep_alive_timeout(Duration::from_secs(value)),
    },
    Limit {
        key: "max_connections",
        range: 1..=1_000_000,
        unit: "connections",
        set: |builder, value| builder.max_connections(size(value)),
    },
    Limit {
        key: "max_connections_per_ip",
        range: 1..=1_000_000,
        unit: "connections",
        set: |builder, value| builder.max_connections_per_ip(size(value)),
    },
    Limit {
        key: "handler_timeout_secs",
        range: 1..=DAY,
        unit: "seconds",
        set: |builder, value| builder.handler_timeout(Duration::from_secs(value)),
    },
    Limit {
        key: "max_concurrent_streams",
        range: 1..=10_000,
        unit: "streams",
        set: |builder, value| {
            builder.max_concurrent_streams(u32::try_from(value).unwrap_or(u32::MAX))
        },
    },
    Limit {
        key: "http2_send_buffer",
        range: 1024..=16 * MIB,
        unit: "bytes",
        set: |builder, value| builder.http2_send_buffer(size(value)),
    },
    Limit {
        key: "http2_connection_buffer",
        range: 64 * 1024..=1024 * MIB,
        unit: "bytes",
        set: |builder, value| builder.http2_connection_buffer(size(value)),
    },
    Limit {
        key: "max_active_streams",
        range: 1..=10_000,
        unit: "streams",
        set: |builder, value| builder.max_active_streams(u32::try_from(value).unwrap_or(u32::MAX)),
    },
    Limit {
        key: "shutdown_deadline_secs",
        range: 1..=HOUR,
        unit: "seconds",
        set: |builder, value| builder.shutdown_deadline(Duration::from_secs(value)),
    },
];

/// A checked value as a size; the ranges above fit a 64-bit `usize`, and a 32-bit one
/// gets its largest.
fn size(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// The checked `[limits]`: each key set, with its value.
#[derive(Debug, Default)]
pub(super) struct Limits(Vec<(&'static Limit, u64)>);

impl Limits {
    /// Checks every key and value of `[limits]`.
    pub(super) fn check(raw: RawLimits, text: &ConfigText<'_>) -> anyhow::Result<Self> {
        let mut set = Vec::new();
        for (key, value) in raw {
            let Some(limit) = LIMITS.iter().find(|limit| limit.key == key) else {
                let known: Vec<&str> = LIMITS.iter().map(|limit| limit.key).collect();
                bail!(
                    "{}: unknown key `{key}` in [limits]; known keys: {}",
                    text.at(value.span()),
                    known.join(", ")
                );
            };
            let checked = in_range(&value, &limit.range, limit.unit, &key, "[limits]", text)?;
            set.push((limit, checked));
        }
        Ok(Self(set))
    }

    /// `builder` with these limits set; unset ones keep the library's defaults.
    pub(super) fn apply(&self, builder: ServerBuilder) -> ServerBuilder {
        self.0.iter().fold(builder, |builder, (limit, value)| {
            (limit.set)(builder, *value)
        })
    }
}

/// `value` if it lies in `range`, else an error naming the file, line, key and range.
pub(super) fn in_range(
    value: &Spanned<u64>,
    range: &RangeInclusive<u64>,
    unit: &str,
    key: &str,
    table: &str,
    text: &ConfigText<'_>,
) -> anyhow::Result<u64> {
    let number = *value.get_ref();
    if !range.contains(&number) {
        bail!(
            "{}: key `{key}` of {table}: {number} is out of range; expected {} to {} {unit}",
            text.at(value.span()),
            range.start(),
            range.end()
        );
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn check(limits: &str) -> anyhow::Result<Limits> {
        let table = format!("[limits]\n{limits}");
        let raw: BTreeMap<String, RawLimits> = toml::from_str(&table).expect("a [limits] table");
        let text = ConfigText::new(Path::new("site.toml"), &table);
        Limits::check(raw.into_values().next().unwrap_or_default(), &text)
    }

    #[test]
    fn zero_is_refused_for_every_limit_with_line_and_key() {
        for limit in &LIMITS {
            let error = check(&format!("# a comment\n{} = 0\n", limit.key))
                .expect_err("zero refused")
                .to_string();
            assert!(
                error.starts_with(&format!("site.toml:3: key `{}` of [limits]", limit.key)),
                "{error}"
            );
            assert!(error.contains("out of range"), "{error}");
        }
    }

    #[test]
    fn absurd_values_are_refused_and_sensible_ones_kept() {
        let error = check("max_connections = 9223372036854775807\n")
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("expected 1 to 1000000 connections"),
            "{error}"
        );
        let limits = check("handler_timeout_secs = 5\nmax_header_size = 8192\n").expect("valid");
        let keys: Vec<_> = limits.0.iter().map(|(l, v)| (l.key, *v)).collect();
        assert_eq!(
            keys,
            [("handler_timeout_secs", 5), ("max_header_size", 8192)]
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = check("handler_timeout = 5\n")
            .expect_err("refused")
            .to_string();
        assert!(
            error.starts_with("site.toml:2: unknown key `handler_timeout`")
                && error.contains("handler_timeout_secs"),
            "{error}"
        );
    }
}
