//! Who may ask: a location's `allow = [...]` / `deny = [...]`
//! (`handlers::AccessControl`), and the top-level `real_ip = { from = [...], header }`
//! (`handlers::RealIp`, a Trans handler) that finds the client behind trusted proxies.

use anyhow::bail;
use poco_httpd::handlers::{AccessControl, RealIp};
use poco_httpd::http::HeaderName;
use serde::Deserialize;
use toml::Spanned;

use super::ConfigText;

/// Builds the handler from a location's `allow` and `deny` lists.
pub(super) fn access_control(
    allow: &[Spanned<String>],
    deny: &[Spanned<String>],
    what: &str,
    text: &ConfigText<'_>,
) -> anyhow::Result<AccessControl> {
    let mut control = AccessControl::new();
    for (key, nets) in [("allow", allow), ("deny", deny)] {
        for net in nets {
            let added = if key == "allow" {
                control.clone().allow(net.get_ref())
            } else {
                control.clone().deny(net.get_ref())
            };
            control = match added {
                Ok(control) => control,
                Err(error) => bail!("{}: key `{key}` of {what}: {error}", text.at(net.span())),
            };
        }
    }
    Ok(control)
}

/// `real_ip = { from = ["10.0.0.0/8"], header = "X-Forwarded-For" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealIp {
    from: Spanned<Vec<Spanned<String>>>,
    header: Option<Spanned<String>>,
}

/// Checks `real_ip` and builds the Trans handler.
pub(super) fn real_ip(raw: RawRealIp, text: &ConfigText<'_>) -> anyhow::Result<RealIp> {
    if raw.from.get_ref().is_empty() {
        bail!(
            "{}: key `from` of `real_ip`: name the proxies to trust, such as [\"10.0.0.0/8\"]",
            text.at(raw.from.span())
        );
    }
    let mut real_ip = RealIp::new();
    for net in raw.from.get_ref() {
        real_ip = match real_ip.trust(net.get_ref()) {
            Ok(real_ip) => real_ip,
            Err(error) => bail!("{}: key `from` of `real_ip`: {error}", text.at(net.span())),
        };
    }
    if let Some(header) = raw.header {
        let Ok(name) = HeaderName::from_bytes(header.get_ref().as_bytes()) else {
            bail!(
                "{}: key `header` of `real_ip`: {:?} is not a header name; write \"X-Forwarded-For\" or \"Forwarded\"",
                text.at(header.span()),
                header.get_ref()
            );
        };
        real_ip = real_ip.header(name);
    }
    Ok(real_ip)
}
