//! The ready-made server's configuration: command-line flags and the TOML file, read
//! in two stages — the raw serde structs (`Raw*`), then the validated [`Settings`],
//! which hold only checked values and built handlers. Everything that can fail
//! (opening a file, compiling a pattern, parsing a URL) happens while the file is read,
//! and every error names the file, the line and the key; building the server from
//! `Settings` cannot fail.
//!
//! Each table has its own module: `[[location]]` blocks (`location`, with one module
//! per handler key: `location_headers`, `cors`, `error_pages`, `rate_limit`, and
//! `access` for `allow`/`deny` and the top-level `real_ip`, and `proxy` for a
//! location's `proxy = { … }`), `[[rewrite]]`
//! (`rewrites`), `[status]` (`status`), `[session]` (`session`), `[tls]` (`tls`),
//! `[limits]` (`limits`) and `[headers]` (`headers`). This file keeps the top level:
//! the flags, the file as a whole, `[compression]`, and turning a position in the
//! file into its line.

// Explicit paths: the fuzz target includes this file with `#[path]`, which resolves
// nested modules from this file's directory; these resolve the same from both.
#[path = "config/access.rs"]
mod access;
#[path = "config/cors.rs"]
mod cors;
#[path = "config/error_pages.rs"]
mod error_pages;
#[path = "config/headers.rs"]
mod headers;
#[path = "config/limits.rs"]
mod limits;
#[path = "config/location.rs"]
mod location;
#[path = "config/location_headers.rs"]
mod location_headers;
#[path = "config/proxy.rs"]
mod proxy;
#[path = "config/rate_limit.rs"]
mod rate_limit;
#[path = "config/rewrites.rs"]
mod rewrites;
#[path = "config/session.rs"]
mod session;
#[path = "config/status.rs"]
mod status;
#[path = "config/tls.rs"]
mod tls;

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use poco_httpd::handlers::{AccessLog, Compression, RealIp};
use poco_httpd::{Server, ServerBuilder};
use serde::Deserialize;
use toml::Spanned;

use self::access::RawRealIp;
use self::headers::{Headers, RawHeaders};
use self::limits::{Limits, RawLimits};
use self::location::{Location, RawLocation};
use self::rewrites::{RawRewrite, Rewrites};
use self::session::{RawSession, Session};
use self::status::{RawStatus, Status};
use self::tls::{RawTls, Tls};

/// A web server built on poco-httpd's handler phases.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    /// Address to listen on, ADDR:PORT (overrides the config file).
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) listen: Option<String>,
    /// Directory to serve when no config file is given [default: .]
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub(crate) root: Option<PathBuf>,
    /// TOML config file with `[[location]]` blocks (it says what to serve, so no
    /// `--root` with it).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8000";

/// The config file as written: the first stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    hostname: Option<String>,
    /// Each connection starts with a PROXY protocol header from the load balancer.
    #[serde(default)]
    proxy_protocol: bool,
    /// The client's address from trusted proxies' headers (a Trans handler).
    real_ip: Option<RawRealIp>,
    #[serde(default)]
    headers: RawHeaders,
    #[serde(default)]
    location: Vec<RawLocation>,
    /// Trans handlers, in order.
    #[serde(default)]
    rewrite: Vec<RawRewrite>,
    #[serde(default)]
    status: RawStatus,
    #[serde(default)]
    compression: RawCompression,
    session: Option<RawSession>,
    tls: Option<RawTls>,
    #[serde(default)]
    limits: RawLimits,
}

/// `[compression]`: zstd, brotli or gzip for compressible responses, on by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCompression {
    enabled: bool,
    min_size: usize,
}

impl Default for RawCompression {
    fn default() -> Self {
        Self {
            enabled: true,
            min_size: 256,
        }
    }
}

impl RawCompression {
    /// The Pre handler it describes, if on.
    fn handler(&self) -> Option<Compression> {
        self.enabled
            .then(|| Compression::new().min_size(self.min_size))
    }
}

/// A config file's name and text, to turn a value's span into `file:line`, and its
/// directory, against which relative paths in it are read.
#[derive(Debug)]
struct ConfigText<'a> {
    file: &'a Path,
    text: &'a str,
}

impl<'a> ConfigText<'a> {
    fn new(file: &'a Path, text: &'a str) -> Self {
        Self { file, text }
    }

    /// The 1-based line of a span's start.
    fn line(&self, span: Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    /// `file:line` of a span, to start an error message with.
    fn at(&self, span: Range<usize>) -> String {
        format!("{}:{}", self.file.display(), self.line(span))
    }

    /// `path` read relative to the config file's directory.
    fn relative(&self, path: &Path) -> PathBuf {
        self.file.parent().unwrap_or(Path::new(".")).join(path)
    }
}

/// The validated settings the server is built from: the second stage. Only checked
/// values and ready handlers; nothing left to parse or open.
#[derive(Debug)]
pub(crate) struct Settings {
    listen: String,
    hostname: Option<String>,
    proxy_protocol: bool,
    real_ip: Option<RealIp>,
    headers: Headers,
    locations: Vec<Location>,
    rewrites: Rewrites,
    status: Option<Status>,
    compression: Option<Compression>,
    session: Option<Session>,
    tls: Option<Tls>,
    limits: Limits,
}

impl Settings {
    /// Reads the flags and, if given, the config file.
    pub(crate) fn load(cli: &Cli) -> anyhow::Result<Self> {
        let mut settings = match (&cli.config, &cli.root) {
            (Some(file), _) => Self::from_file(file)?,
            (None, root) => Self::serving(root.as_deref().unwrap_or(Path::new(".")))?,
        };
        if let Some(listen) = &cli.listen {
            if let Err(expected) = check_listen(listen) {
                bail!("--listen {listen:?}: {expected}");
            }
            settings.listen.clone_from(listen);
        }
        Ok(settings)
    }

    /// No config file: static files from `root` at `/`.
    fn serving(root: &Path) -> anyhow::Result<Self> {
        if !root.is_dir() {
            bail!("--root {}: not a directory", root.display());
        }
        Ok(Self {
            listen: DEFAULT_LISTEN.to_owned(),
            hostname: None,
            proxy_protocol: false,
            real_ip: None,
            headers: Headers::default(),
            locations: vec![Location::serving(root.to_owned())],
            rewrites: Rewrites::default(),
            status: Some(Status::by_default()),
            compression: RawCompression::default().handler(),
            session: None,
            tls: None,
            limits: Limits::default(),
        })
    }

    fn from_file(file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read config file {}", file.display()))?;
        Self::parse(file, &text)
    }

    /// Parses and validates a config file's text; `file` names it in errors.
    pub(crate) fn parse(file: &Path, text: &str) -> anyhow::Result<Self> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|error| serde_error(file, text, &error))?;
        let text = ConfigText::new(file, text);
        let locations = location::check_all(raw.location, &text)?;
        let status = Status::check(raw.status, &locations, &text)?;
        let session = raw
            .session
            .map(|session| Session::check(session, &text))
            .transpose()?;
        let settings = Self {
            listen: raw
                .listen
                .map(|listen| checked_listen(listen, &text))
                .transpose()?
                .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            hostname: raw.hostname,
            proxy_protocol: raw.proxy_protocol,
            real_ip: raw
                .real_ip
                .map(|real_ip| access::real_ip(real_ip, &text))
                .transpose()?,
            headers: Headers::check(raw.headers, &text)?,
            locations,
            rewrites: Rewrites::check(raw.rewrite, &text)?,
            status,
            compression: raw.compression.handler(),
            session,
            tls: raw.tls.map(|tls| Tls::check(&tls, &text)).transpose()?,
            limits: Limits::check(raw.limits, &text)?,
        };
        // Last, so a mistake on a line is reported first.
        if !settings.locations.iter().any(Location::has_content) {
            bail!(
                "{}: nothing to serve: no [[location]] has `static`, `redirect` or `proxy`. Add one, for example:\n\n[[location]]\npath = \"/\"\nstatic = {{ root = \"/var/www\" }}\n",
                file.display()
            );
        }
        Ok(settings)
    }

    /// `https` when the server speaks TLS, else `http`.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The server these settings describe.
    pub(crate) fn builder(&self) -> ServerBuilder {
        let mut builder = Server::builder()
            .listen(self.listen.as_str())
            .proxy_protocol(self.proxy_protocol);
        builder = self.limits.apply(builder);
        if let Some(real_ip) = &self.real_ip {
            // First of the Trans handlers, so everything after sees the client.
            builder = builder.trans(real_ip.clone());
        }
        if let Some(tls) = &self.tls {
            builder = tls.apply(builder);
        }
        builder = self.rewrites.apply(builder);
        if let Some(compression) = &self.compression {
            // First of the Pre handlers of `/`, so it covers every answer.
            builder = builder.pre("/", compression.clone());
        }
        if let Some(status) = &self.status {
            builder = status.register(builder);
        }
        if let Some(session) = &self.session {
            builder = session.register(builder);
        }
        if let Some(hostname) = &self.hostname {
            builder = builder.hostname(hostname.as_str());
        }
        builder = self.headers.apply(builder);
        self.locations
            .iter()
            .fold(builder, |builder, location| location.register(builder))
    }

    /// The access logs of every location, to reopen on SIGHUP.
    pub(crate) fn access_logs(&self) -> Vec<AccessLog> {
        self.locations
            .iter()
            .filter_map(|l| l.access_log().cloned())
            .collect()
    }
}

/// `listen`, checked to be an address the server can resolve when it binds.
fn checked_listen(listen: Spanned<String>, text: &ConfigText<'_>) -> anyhow::Result<String> {
    if let Err(expected) = check_listen(listen.get_ref()) {
        bail!(
            "{}: key `listen`: {:?}: {expected}",
            text.at(listen.span()),
            listen.get_ref()
        );
    }
    Ok(listen.into_inner())
}

/// A listen address as the resolver takes it: an IP address and port, or `HOST:PORT`
/// with a host name, resolved when the server binds.
fn check_listen(addr: &str) -> Result<(), &'static str> {
    if addr.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err("expected HOST:PORT, such as 127.0.0.1:8000, [::1]:8000 or localhost:8000"),
    }
}

/// A TOML or serde error (a wrong type, an unknown key or value) as `file:line:`, then
/// the key the value belongs to when the line says `key = value`, then serde's message
/// (which lists the accepted values or keys).
fn serde_error(file: &Path, text: &str, error: &toml::de::Error) -> anyhow::Error {
    let Some(span) = error.span() else {
        return anyhow::anyhow!("{}:0: {}", file.display(), error.message());
    };
    let line = line_of(text, span.start);
    match key_before(text, span.start) {
        Some(key) => anyhow::anyhow!(
            "{}:{line}: key `{key}`: {}",
            file.display(),
            error.message()
        ),
        None => anyhow::anyhow!("{}:{line}: {}", file.display(), error.message()),
    }
}

/// The key a value starting at byte `offset` is assigned to: the bare or quoted key
/// before the `=` that precedes it on its line.
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let before = text.get(..offset)?.trim_end_matches([' ', '\t']);
    let before = before.strip_suffix('=')?.trim_end_matches([' ', '\t']);
    if let Some(quoted) = before.strip_suffix('"') {
        let start = quoted.rfind(['"', '\n'])?;
        return quoted[start..].strip_prefix('"');
    }
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |at| at + 1);
    Some(&before[start..]).filter(|key| !key.is_empty())
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        Settings::parse(Path::new("site.toml"), text)
            .expect_err("refused")
            .to_string()
    }

    /// The inputs the config fuzz target kept: each parses or is refused, never panics.
    #[test]
    fn the_fuzz_corpus_parses_or_is_refused() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/config");
        let mut inputs = 0;
        for entry in std::fs::read_dir(dir).expect("the config corpus") {
            let path = entry.expect("an entry").path();
            let text = std::fs::read(&path).expect("readable");
            if let Ok(text) = std::str::from_utf8(&text) {
                let _ = Settings::parse(Path::new("fuzz.toml"), text);
            }
            inputs += 1;
        }
        assert!(inputs > 0, "no kept inputs for the config target");
    }

    #[test]
    fn the_example_config_is_valid() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/poco-httpd.toml");
        let text = std::fs::read_to_string(&example).expect("the example config");
        if let Err(error) = Settings::parse(&example, &text) {
            panic!("{error:#}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_with_the_line() {
        let nested = format!(
            "listen = \"127.0.0.1:1\"\nx = {}1{}\n",
            "[".repeat(2000),
            "]".repeat(2000)
        );
        let error = error_of(&nested);
        assert!(error.starts_with("site.toml:2:"), "{error}");
        assert!(error.contains("recursion"), "{error}");
    }

    #[test]
    fn unknown_keys_are_refused_with_file_line_and_key() {
        let error = error_of(
            "listen = \"127.0.0.1:1\"\n\n[[location]]\npath = \"/\"\nstatik = { root = \".\" }\n",
        );
        assert!(error.starts_with("site.toml:5:"), "{error}");
        assert!(error.contains("statik"), "{error}");
    }

    #[test]
    fn wrong_types_are_refused_with_file_line_and_key() {
        let error = error_of("listen = 8000\n");
        assert!(error.starts_with("site.toml:1: key `listen`: "), "{error}");
        let error = error_of("# compression\n[compression]\nmin_size = \"big\"\n");
        assert!(
            error.starts_with("site.toml:3: key `min_size`: "),
            "{error}"
        );
    }

    #[test]
    fn a_listen_address_needs_a_host_and_a_port() {
        for good in ["127.0.0.1:0", "[::1]:8000", "localhost:8000"] {
            assert_eq!(check_listen(good), Ok(()), "{good}");
        }
        for bad in ["8000", ":8000", "localhost", "127.0.0.1:99999", ""] {
            let error = error_of(&format!("# site\nlisten = {bad:?}\n"));
            assert!(
                error.starts_with(&format!(
                    "site.toml:2: key `listen`: {bad:?}: expected HOST:PORT"
                )),
                "{error}"
            );
        }
        let cli = Cli::try_parse_from(["poco-httpd", "--listen", "8000"]).expect("flags");
        let error = Settings::load(&cli).expect_err("refused").to_string();
        assert!(
            error.starts_with("--listen \"8000\": expected HOST:PORT"),
            "{error}"
        );
    }

    #[test]
    fn the_key_of_a_value_is_found_before_its_equals_sign() {
        let text = "a = 1\nb_c-d=2\nt = { x = 3, \"y z\" = 4 }\n[ 5 ]\n";
        let key_of = |value: &str| key_before(text, text.find(value).expect("in the text"));
        assert_eq!(key_of("1"), Some("a"));
        assert_eq!(key_of("2"), Some("b_c-d"));
        assert_eq!(key_of("3"), Some("x"));
        assert_eq!(key_of("4"), Some("y z"));
        assert_eq!(key_of("5"), None);
        assert_eq!(key_of("a"), None);
    }

    #[test]
    fn a_config_without_content_says_what_to_add() {
        for text in ["", "[[location]]\npath = \"/\"\naccess_log = {}\n"] {
            let error = error_of(text);
            assert!(
                error.starts_with("site.toml: nothing to serve")
                    && error.contains("[[location]]\npath = \"/\"\nstatic = { root ="),
                "{error}"
            );
            assert!(!error.contains("content("), "no library call: {error}");
        }
    }

    #[test]
    fn root_and_config_together_are_refused() {
        let both = Cli::try_parse_from(["poco-httpd", "--root", ".", "--config", "site.toml"]);
        let error = both.expect_err("refused").to_string();
        assert!(
            error.contains("--root") && error.contains("--config"),
            "{error}"
        );
        let root_only = Cli::try_parse_from(["poco-httpd"]).expect("valid");
        assert_eq!(
            root_only.root, None,
            "the default is applied by Settings::load"
        );
    }
}
