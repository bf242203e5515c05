//! TLS through tokio-rustls: the certificate chain and key from PEM files, ALPN
//! offering `h2` and `http/1.1`, and [`TlsInfo`], what a handshake tells handlers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig, ServerConnection};

use crate::{Error, ServerBuilder};

/// A rustls server config for the chain in `cert` and the key in `key` (PEM files),
/// with ALPN offering HTTP/2 first.
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, Error> {
    let tls_error = |file: &Path, reason: String| Error::Tls {
        file: file.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| tls_error(cert, error.to_string()))?;
    if chain.is_empty() {
        return Err(tls_error(
            cert,
            "no CERTIFICATE block in the file".to_owned(),
        ));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|error| tls_error(key, error.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error(cert, error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|error| tls_error(key, format!("does not fit the certificate: {error}")))?;
    config.alpn_protocols = alpn();
    Ok(Arc::new(config))
}

/// The protocols offered in ALPN, most preferred first.
pub(crate) fn alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// What the TLS handshake of a connection settled.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    version: &'static str,
    server_name: Option<String>,
    alpn: Option<String>,
    cipher_suite: String,
}

impl TlsInfo {
    pub(crate) fn of(connection: &ServerConnection) -> Self {
        Self {
            version: connection
                .protocol_version()
                .and_then(|version| version.as_str())
                .unwrap_or("unknown"),
            server_name: connection.server_name().map(str::to_owned),
            alpn: connection
                .alpn_protocol()
                .map(|protocol| String::from_utf8_lossy(protocol).into_owned()),
            cipher_suite: connection
                .negotiated_cipher_suite()
                .map(|suite| format!("{:?}", suite.suite()))
                .unwrap_or_default(),
        }
    }

    /// The protocol version, e.g. `TLSv1_3`.
    pub fn version(&self) -> &str {
        self.version
    }

    /// The host name the client asked for (SNI), if it sent one.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The application protocol agreed through ALPN: `h2`, `http/1.1`, or none.
    pub fn alpn(&self) -> Option<&str> {
        self.alpn.as_deref()
    }

    /// The cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub fn cipher_suite(&self) -> &str {
        &self.cipher_suite
    }
}

/// Where a server's TLS settings come from.
#[derive(Debug, Clone)]
pub(crate) enum TlsSource {
    /// PEM files, read when the server is built.
    Files(PathBuf, PathBuf),
    /// A ready rustls config.
    Config(Arc<ServerConfig>),
}

impl TlsSource {
    /// The rustls config: the files read, or the one given.
    pub(crate) fn config(&self) -> Result<Arc<ServerConfig>, Error> {
        match self {
            Self::Files(cert, key) => server_config(cert, key),
            Self::Config(config) => Ok(Arc::clone(config)),
        }
    }

    pub(crate) fn acceptor(&self) -> Result<TlsAcceptor, Error> {
        self.config().map(TlsAcceptor::from)
    }
}

impl ServerBuilder {
    /// Serves HTTPS (on every listener not made plain with
    /// [`Listener::tls`](crate::Listener::tls)), with the certificate chain in the PEM file `cert` (server
    /// certificate first) and its private key in the PEM file `key`. ALPN offers
    /// `h2` and `http/1.1`. The files are read by [`ServerBuilder::build`], whose
    /// error names the file at fault.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some(TlsSource::Files(cert.into(), key.into()));
        self
    }

    /// Serves HTTPS (as [`tls`](Self::tls) does), with a rustls config of your own (client certificates,
    /// several certificates by SNI...). Its `alpn_protocols` decide whether clients
    /// may choose HTTP/2: set them to `h2` and `http/1.1` for both.
    pub fn tls_config(mut self, config: Arc<ServerConfig>) -> Self {
        self.tls = Some(TlsSource::Config(config));
        self
    }
}
