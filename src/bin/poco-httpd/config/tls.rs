//! `[tls]`: serve HTTPS with the certificate chain in `cert` and its key in `key`
//! (PEM files, relative to the config file).
//!
//! The files are read here, when the config is read, into the rustls config handed to
//! `ServerBuilder::tls_config` — not left to `ServerBuilder::tls`, which reads them
//! when the server is built: that way a missing, unreadable or mismatched file is
//! refused naming the line and the key, and building the server cannot fail over a
//! file. The config is the one `tls` makes: ring, safe protocol versions, ALPN
//! offering `h2` then `http/1.1`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail};
use poco_httpd::ServerBuilder;
use poco_httpd::rustls::ServerConfig;
use poco_httpd::rustls::crypto::ring;
use poco_httpd::rustls::pki_types::pem::PemObject;
use poco_httpd::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use toml::Spanned;

use super::ConfigText;

/// `[tls]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    cert: Spanned<PathBuf>,
    key: Spanned<PathBuf>,
}

/// The checked `[tls]`: a rustls config with the certificate and key loaded.
#[derive(Debug)]
pub(super) struct Tls(Arc<ServerConfig>);

impl Tls {
    /// Reads the certificate chain and the key, and checks that they fit.
    pub(super) fn check(raw: &RawTls, text: &ConfigText<'_>) -> anyhow::Result<Self> {
        let cert = existing_file(&raw.cert, "cert", text)?;
        let key = existing_file(&raw.key, "key", text)?;
        let cert_error = |reason: String| at_key(&raw.cert, "cert", &cert, text, &reason);
        let key_error = |reason: String| at_key(&raw.key, "key", &key, text, &reason);
        let chain = chain(&cert).map_err(cert_error)?;
        let private = PrivateKeyDer::from_pem_file(&key).map_err(|e| key_error(e.to_string()))?;
        let provider = Arc::new(ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| cert_error(error.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|error| key_error(format!("does not fit the certificate: {error}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self(Arc::new(config)))
    }

    /// `builder` serving HTTPS with this config.
    pub(super) fn apply(&self, builder: ServerBuilder) -> ServerBuilder {
        builder.tls_config(Arc::clone(&self.0))
    }
}

/// `path` read relative to the config file, if it names a file.
fn existing_file(
    path: &Spanned<PathBuf>,
    key: &str,
    text: &ConfigText<'_>,
) -> anyhow::Result<PathBuf> {
    let file = text.relative(path.get_ref());
    if !file.is_file() {
        bail!(
            "{}: key `{key}` of [tls]: {} is not a file",
            text.at(path.span()),
            file.display()
        );
    }
    Ok(file)
}

/// The certificates in the PEM file `file`, server certificate first.
fn chain(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(file)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| error.to_string())?;
    if chain.is_empty() {
        return Err("no CERTIFICATE block in the file".to_owned());
    }
    Ok(chain)
}

/// The error for a file that cannot be used, naming the line, the key and the file.
fn at_key(
    path: &Spanned<PathBuf>,
    key: &str,
    file: &Path,
    text: &ConfigText<'_>,
    reason: &str,
) -> anyhow::Error {
    anyhow!(
        "{}: key `{key}` of [tls]: cannot use {}: {reason}",
        text.at(path.span()),
        file.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[tls]` naming `cert.pem` and `key.pem` in a fresh directory holding `files`.
    fn check(name: &str, files: &[(&str, &str)]) -> anyhow::Result<Tls> {
        let dir = std::env::temp_dir().join(format!("tls-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        for (file, contents) in files {
            std::fs::write(dir.join(file), contents).expect("write a PEM file");
        }
        let toml = "# TLS\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n";
        #[derive(Deserialize)]
        struct File {
            tls: RawTls,
        }
        let raw: File = toml::from_str(toml).expect("a [tls] table");
        let config = dir.join("site.toml");
        Tls::check(&raw.tls, &ConfigText::new(&config, toml))
    }

    fn generated() -> (String, String) {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        (pair.cert.pem(), pair.signing_key.serialize_pem())
    }

    #[test]
    fn a_certificate_and_its_key_are_loaded_with_alpn() {
        let (cert, key) = generated();
        let tls = check("ok", &[("cert.pem", &cert), ("key.pem", &key)]).expect("valid");
        assert_eq!(tls.0.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_missing_file_names_its_key() {
        let error = check("missing", &[]).expect_err("refused").to_string();
        assert!(
            error.contains("site.toml:3: key `cert` of [tls]"),
            "{error}"
        );
        assert!(error.ends_with("cert.pem is not a file"), "{error}");
    }

    #[test]
    fn unusable_pem_files_are_refused_at_load_naming_line_and_key() {
        let (cert, key) = generated();
        let (_, other_key) = generated();
        let cert_at = "site.toml:3: key `cert` of [tls]: cannot use ";
        let key_at = "site.toml:4: key `key` of [tls]: cannot use ";
        for (name, files, at, reason) in [
            (
                "no-cert",
                [("cert.pem", "not a certificate"), ("key.pem", key.as_str())],
                cert_at,
                "no CERTIFICATE block",
            ),
            (
                "no-key",
                [("cert.pem", cert.as_str()), ("key.pem", "not a key")],
                key_at,
                "key.pem: ",
            ),
            (
                "mismatch",
                [("cert.pem", cert.as_str()), ("key.pem", other_key.as_str())],
                key_at,
                "does not fit the certificate",
            ),
        ] {
            let error = check(name, &files).expect_err("refused").to_string();
            assert!(
                error.contains(at) && error.contains(reason),
                "{name}: {error}"
            );
        }
    }
}
