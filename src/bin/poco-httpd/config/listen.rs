//! `listen`: one address, or a list of addresses and tables
//! (`{ addr = "0.0.0.0:443", tls = true }`, `{ addr = "0.0.0.0:80", redirect_to_https
//! = true }`, `{ addr = "10.0.0.5:80", proxy_protocol = true }`), each a `Listener` of
//! the library. An address is `HOST:PORT` or a port
//! alone (`8080`, `:8080`) for every interface. Under systemd socket activation the
//! sockets passed take the entries' places in order (see `main.rs`).

use std::net::SocketAddr;

use anyhow::{anyhow, bail};
use poco_httpd::Listener;
use serde::Deserialize;
use toml::Spanned;

use super::ConfigText;

/// `listen` as written: one address, or a list of addresses and tables. Kept as a
/// TOML value (with the span of the whole) and read here: serde's untagged enums
/// would lose the spans and say only "did not match any variant".
pub(super) type RawListen = Spanned<toml::Value>;

/// A table in a `listen` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListenerTable {
    addr: String,
    tls: Option<bool>,
    #[serde(default)]
    redirect_to_https: bool,
    #[serde(default)]
    proxy_protocol: bool,
}

/// One checked listener: the address, TLS (default: on when `[tls]` is set), the
/// HTTPS redirect and the PROXY protocol.
#[derive(Debug, Clone)]
pub(super) struct ListenSpec {
    addr: String,
    tls: Option<bool>,
    redirect_to_https: bool,
    proxy_protocol: bool,
}

impl ListenSpec {
    /// A plain address, as `--listen` gives it; checked.
    pub(super) fn address(addr: &str) -> Result<Self, &'static str> {
        check_address(addr)?;
        Ok(Self {
            addr: addr.to_owned(),
            tls: None,
            redirect_to_https: false,
            proxy_protocol: false,
        })
    }

    /// The library's listener on this address.
    pub(super) fn listener(&self) -> Listener {
        self.configure(Listener::new(self.addr.as_str()))
    }

    /// `listener` (a socket given ready, say) with this entry's TLS, redirect and
    /// PROXY protocol.
    pub(super) fn configure(&self, mut listener: Listener) -> Listener {
        if let Some(tls) = self.tls {
            listener = listener.tls(tls);
        }
        if self.redirect_to_https {
            listener = listener.redirect_to_https();
        }
        listener.proxy_protocol(self.proxy_protocol)
    }
}

/// Checks `listen`; `server_tls` says whether `[tls]` (or a site's `tls`) is set.
pub(super) fn check(
    raw: RawListen,
    server_tls: bool,
    text: &ConfigText<'_>,
) -> anyhow::Result<Vec<ListenSpec>> {
    let at = text.at(raw.span());
    let entries = match raw.into_inner() {
        toml::Value::Array(entries) if entries.is_empty() => {
            bail!("{at}: key `listen`: an empty list listens nowhere; give at least one address")
        }
        toml::Value::Array(entries) => entries,
        one => vec![one],
    };
    entries
        .into_iter()
        .map(|entry| check_entry(entry, server_tls, &at))
        .collect()
}

/// One entry, an address or a table; `at` is `file:line` of `listen`.
fn check_entry(entry: toml::Value, server_tls: bool, at: &str) -> anyhow::Result<ListenSpec> {
    let (addr, tls, redirect_to_https, proxy_protocol) = match entry {
        toml::Value::String(addr) => (addr, None, false, false),
        toml::Value::Table(table) => {
            let table: RawListenerTable = toml::Value::Table(table)
                .try_into()
                .map_err(|error| anyhow!("{at}: key `listen`: {}", error.message().trim()))?;
            (
                table.addr,
                table.tls,
                table.redirect_to_https,
                table.proxy_protocol,
            )
        }
        other => bail!(
            "{at}: key `listen`: expected an address such as \"0.0.0.0:80\" or a table such as {{ addr = \"0.0.0.0:443\", tls = true }}, found {}",
            other.type_str()
        ),
    };
    if let Err(expected) = check_address(&addr) {
        bail!("{at}: key `listen`: {addr:?}: {expected}");
    }
    if redirect_to_https && tls == Some(true) {
        bail!(
            "{at}: key `listen`: {addr:?} redirects to HTTPS, so it speaks plain HTTP; drop `tls = true`"
        );
    }
    if tls == Some(true) && !server_tls {
        bail!(
            "{at}: key `listen`: {addr:?} speaks TLS but there is no certificate; add a [tls] table with `cert` and `key`"
        );
    }
    Ok(ListenSpec {
        addr,
        tls,
        redirect_to_https,
        proxy_protocol,
    })
}

/// A listen address: an IP address and port, `HOST:PORT` with a host name (resolved
/// when the server binds), or a port alone for every interface.
fn check_address(addr: &str) -> Result<(), &'static str> {
    if addr.parse::<SocketAddr>().is_ok()
        || addr
            .strip_prefix(':')
            .unwrap_or(addr)
            .parse::<u16>()
            .is_ok()
    {
        return Ok(());
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(
            "expected HOST:PORT or a port alone, such as 127.0.0.1:8000, [::1]:8000, localhost:8000 or :8000",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_host_and_port_or_a_port_alone() {
        for good in [
            "127.0.0.1:0",
            "[::1]:8000",
            "localhost:8000",
            "8080",
            ":8080",
        ] {
            assert_eq!(check_address(good), Ok(()), "{good}");
        }
        for bad in ["localhost", "127.0.0.1:99999", "", ":", "99999", "[::1]"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}
