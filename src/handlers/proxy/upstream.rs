//! [`Upstream`]: one server a proxy forwards to — a TCP `host:port` or a Unix socket
//! (`unix:/path`) — parsed from the text a program or the config file writes, and
//! [`UpstreamError`], why such a text was refused.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::http::uri::Authority;

/// Why an upstream address was refused; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The list of upstreams is empty.
    #[error("a proxy needs at least one upstream")]
    NoUpstream,
    /// The text is neither `host:port` nor `unix:/absolute/path`.
    #[error(
        "upstream {0:?} is not an address: write host:port (\"127.0.0.1:3000\", \"[::1]:3000\", \"app.internal:8080\") or unix:/absolute/path"
    )]
    BadAddress(String),
    /// A TCP upstream without a port.
    #[error("upstream {0:?} has no port: write host:port, e.g. \"127.0.0.1:3000\"")]
    NoPort(String),
    /// A Unix socket path that is not absolute.
    #[error("upstream {0:?}: a Unix socket path must be absolute, e.g. unix:/run/app.sock")]
    RelativeSocket(String),
    /// A health check path that does not start with `/`.
    #[error("health check path {0:?} must start with '/'")]
    BadHealthPath(String),
}

/// Where an upstream listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Address {
    /// A host name or IP address with a port, resolved at each new connection.
    Tcp(Authority),
    /// A Unix domain socket.
    Unix(PathBuf),
}

/// One upstream: its address and the text it was written as (for logs and reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Upstream {
    address: Address,
    /// Shared, as each request's report and body name their upstream.
    written: Arc<str>,
}

impl Upstream {
    /// Parses `host:port` (an optional `http://` in front is accepted) or
    /// `unix:/absolute/path`.
    pub(super) fn parse(text: &str) -> Result<Self, UpstreamError> {
        let written = text.trim().to_owned();
        let address = if let Some(path) = written.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(UpstreamError::RelativeSocket(written));
            }
            Address::Unix(path)
        } else {
            let bare = written.strip_prefix("http://").unwrap_or(&written);
            let authority: Authority = bare
                .parse()
                .ok()
                .filter(|a: &Authority| a.as_str() == bare && !bare.contains('@'))
                .ok_or_else(|| UpstreamError::BadAddress(written.clone()))?;
            if authority.port_u16().is_none() {
                return Err(UpstreamError::NoPort(written));
            }
            Address::Tcp(authority)
        };
        Ok(Self {
            address,
            written: Arc::from(written),
        })
    }

    /// The text the upstream was written as.
    pub(super) fn name(&self) -> &Arc<str> {
        &self.written
    }

    pub(super) fn address(&self) -> &Address {
        &self.address
    }

    /// The authority requests to this upstream carry in their URI (and in `Host`
    /// when the proxy is told to send the upstream's own name): `host:port`, or
    /// `localhost` for a Unix socket.
    pub(super) fn authority(&self) -> Authority {
        match &self.address {
            Address::Tcp(authority) => authority.clone(),
            Address::Unix(_) => Authority::from_static("localhost"),
        }
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_and_unix_addresses_parse_and_the_rest_is_refused() {
        let tcp = Upstream::parse("127.0.0.1:3000").expect("tcp");
        assert_eq!(tcp.authority().as_str(), "127.0.0.1:3000");
        assert_eq!(tcp.to_string(), "127.0.0.1:3000");
        let v6 = Upstream::parse("http://[::1]:8080").expect("v6");
        assert_eq!(v6.authority().as_str(), "[::1]:8080");
        let unix = Upstream::parse("unix:/run/app.sock").expect("unix");
        assert_eq!(
            unix.address(),
            &Address::Unix(PathBuf::from("/run/app.sock"))
        );
        let refused = [
            ("app.internal", "no port"),
            ("unix:run/app.sock", "must be absolute"),
            ("http://a:1/path", "not an address"),
            ("user@host:1", "not an address"),
            ("", "not an address"),
        ];
        for (text, expected) in refused {
            let error = Upstream::parse(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
