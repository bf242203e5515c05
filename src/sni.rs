//! [`SniResolver`]: the certificate for a TLS handshake, chosen by the name the client
//! asked for (SNI) among the virtual hosts' certificates, with the default site's for
//! a name no virtual host covers (or none given).
//!
//! Each site's certificate comes as a whole rustls `ServerConfig` (from PEM files or
//! given ready), and the resolver asks that config's own resolver: so a site may hold
//! several certificates of its own, and the server's config — protocol versions, ALPN
//! — stays the one the handshake is made with. This module knows TLS and host names,
//! nothing of requests or servers.

use std::fmt;
use std::sync::Arc;

use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use crate::host_pattern::HostTable;

/// Chooses a handshake's certificate by its SNI name.
pub(crate) struct SniResolver {
    by_host: HostTable<Arc<dyn ResolvesServerCert>>,
    default: Option<Arc<dyn ResolvesServerCert>>,
}

impl SniResolver {
    /// A resolver asking `by_host`'s configs by name, else `default`'s.
    pub(crate) fn new(
        by_host: HostTable<Arc<ServerConfig>>,
        default: Option<&Arc<ServerConfig>>,
    ) -> Self {
        let mut resolvers = HostTable::default();
        for (pattern, config) in by_host.into_entries() {
            // Patterns come from a table, so none repeats.
            let _ = resolvers.insert(pattern, Arc::clone(&config.cert_resolver));
        }
        Self {
            by_host: resolvers,
            default: default.map(|config| Arc::clone(&config.cert_resolver)),
        }
    }
}

impl SniResolver {
    /// The server's TLS config: `default` alone when no virtual host has a
    /// certificate, else a copy of `default` (or of the first virtual host's config,
    /// when the default site has none) choosing the certificate by SNI.
    pub(crate) fn config(
        default: Option<Arc<ServerConfig>>,
        by_host: HostTable<Arc<ServerConfig>>,
    ) -> Option<Arc<ServerConfig>> {
        if by_host.is_empty() {
            return default;
        }
        let base = default.as_ref().or_else(|| by_host.values().next())?;
        let mut config = ServerConfig::clone(base);
        config.cert_resolver = Arc::new(Self::new(by_host, default.as_ref()));
        Some(Arc::new(config))
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = client_hello
            .server_name()
            .and_then(|name| self.by_host.find(name))
            .or(self.default.as_ref())?;
        chosen.resolve(client_hello)
    }
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver")
            .field("default", &self.default.is_some())
            .finish_non_exhaustive()
    }
}
