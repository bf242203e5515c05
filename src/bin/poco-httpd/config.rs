//! The ready-made server's configuration: command-line flags and the TOML file, read
//! in two stages — the raw serde structs (`Raw*`), then the validated [`Settings`],
//! which hold only checked values and built handlers. Everything that can fail
//! (opening a file, compiling a pattern, parsing a URL) happens while the file is read,
//! and every error names the file, the line and the key; building the server from
//! `Settings` cannot fail.
//!
//! Each table has its own module: `listen` (`listen`), `[[location]]` blocks
//! (`location`, with one module per handler key: `location_headers`, `cors`,
//! `error_pages`, `rate_limit`, and `access` for `allow`/`deny` and the top-level
//! `real_ip`, and `proxy` for a location's `proxy = { … }`), `[[site]]` blocks
//! (`sites`), `[[rewrite]]` (`rewrites`), `[status]` (`status`), `[session]`
//! (`session`), `[tls]` (`tls`), `[limits]` (`limits`) and `[headers]` (`headers`).
//! This file keeps the top level: the flags, the file as a whole, which site is the
//! default, `[compression]`, and turning a position in the
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
#[path = "config/listen.rs"]
mod listen;
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
#[path = "config/sites.rs"]
mod sites;
#[path = "config/status.rs"]
mod status;
#[path = "config/tls.rs"]
mod tls;

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use poco_httpd::handlers::{AccessLog, Compression, RealIp};
use poco_httpd::{Listener, Server, ServerBuilder};
use serde::Deserialize;

use self::access::RawRealIp;
use self::headers::{Headers, RawHeaders};
use self::limits::{Limits, RawLimits};
use self::listen::{ListenSpec, RawListen};
use self::location::{Location, RawLocation};
use self::rewrites::{RawRewrite, Rewrites};
use self::session::{RawSession, Session};
use self::sites::{RawSite, Site};
use self::status::{RawStatus, Status};
use self::tls::{RawTls, Tls};

/// A web server built on poco-httpd's handler phases.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    /// Address to listen on, ADDR:PORT, or a port alone (8080, :8080) for every
    /// interface (overrides the config file's `listen`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) listen: Option<String>,
    /// Directory to serve when no config file is given [default: .]
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub(crate) root: Option<PathBuf>,
    /// TOML config file with `[[location]]` blocks (it says what to serve, so no
    /// `--root` with it).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Check the configuration (every file it names opened, every value checked),
    /// print the verdict and exit: 0 when it is valid, 1 with the error otherwise.
    #[arg(long)]
    pub(crate) check: bool,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8000";

/// The config file as written: the first stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<RawListen>,
    hostname: Option<String>,
    /// No longer read here: the PROXY protocol is a listener's (`listen`'s tables); kept
    /// to say so instead of "unknown field".
    proxy_protocol: Option<toml::Spanned<toml::Value>>,
    /// The client's address from trusted proxies' headers (a Trans handler).
    real_ip: Option<RawRealIp>,
    #[serde(default)]
    headers: RawHeaders,
    #[serde(default)]
    location: Vec<RawLocation>,
    /// Virtual hosts.
    #[serde(default)]
    site: Vec<RawSite>,
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
    listen: Vec<ListenSpec>,
    hostname: Option<String>,
    real_ip: Option<RealIp>,
    headers: Headers,
    /// The default site's locations: the top-level ones (empty when a `[[site]]` is
    /// the default).
    locations: Vec<Location>,
    sites: Vec<Site>,
    /// Which of `sites` is the default one, if any.
    default_site: Option<usize>,
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
            match ListenSpec::address(listen) {
                Ok(spec) => settings.listen = vec![spec],
                Err(expected) => bail!("--listen {listen:?}: {expected}"),
            }
        }
        Ok(settings)
    }

    /// No config file: static files from `root` at `/`.
    fn serving(root: &Path) -> anyhow::Result<Self> {
        if !root.is_dir() {
            bail!("--root {}: not a directory", root.display());
        }
        Ok(Self {
            listen: vec![default_listen()],
            hostname: None,
            real_ip: None,
            headers: Headers::default(),
            locations: vec![Location::serving(root.to_owned())],
            sites: Vec::new(),
            default_site: None,
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
        let sites = sites::check_all(raw.site, &text)?;
        let default_site = default_site(&locations, &sites, &text)?;
        let default_locations = match default_site {
            Some(index) => &sites[index].locations,
            None => &locations,
        };
        let status = Status::check(raw.status, default_locations, &text)?;
        let session = raw
            .session
            .map(|session| Session::check(session, &text))
            .transpose()?;
        if let Some(key) = &raw.proxy_protocol {
            bail!(
                "{}: key `proxy_protocol`: the PROXY protocol is set per listener; write it in a `listen` table instead, such as listen = [{{ addr = \"0.0.0.0:80\", proxy_protocol = true }}]",
                text.at(key.span())
            );
        }
        let tls = raw.tls.map(|tls| Tls::check(&tls, &text)).transpose()?;
        let any_tls = tls.is_some() || sites.iter().any(|site| site.tls.is_some());
        let listen = match raw.listen {
            Some(raw) => listen::check(raw, any_tls, &text)?,
            None => vec![default_listen()],
        };
        let settings = Self {
            listen,
            hostname: raw.hostname,
            real_ip: raw
                .real_ip
                .map(|real_ip| access::real_ip(real_ip, &text))
                .transpose()?,
            headers: Headers::check(raw.headers, &text)?,
            locations,
            sites,
            default_site,
            rewrites: Rewrites::check(raw.rewrite, &text)?,
            status,
            compression: raw.compression.handler(),
            session,
            tls,
            limits: Limits::check(raw.limits, &text)?,
        };
        // Last, so a mistake on a line is reported first.
        if settings.default_site.is_none() && !settings.locations.iter().any(Location::has_content)
        {
            bail!(
                "{}: nothing to serve: no [[location]] has `static`, `redirect` or `proxy`. Add one, for example:\n\n[[location]]\npath = \"/\"\nstatic = {{ root = \"/var/www\" }}\n",
                file.display()
            );
        }
        Ok(settings)
    }

    /// The server these settings describe, without its listeners
    /// ([`Settings::listeners`]).
    pub(crate) fn builder(&self) -> ServerBuilder {
        let mut builder = self.limits.apply(Server::builder());
        builder = self.site_builder(builder, self.default_site.map(|i| &self.sites[i]));
        // The default site's certificate: its own, else `[tls]`.
        if let Some(tls) = &self.tls
            && self
                .default_site
                .is_none_or(|i| self.sites[i].tls.is_none())
        {
            builder = tls.apply(builder);
        }
        builder = self.default_only(builder);
        builder = self
            .locations
            .iter()
            .fold(builder, |builder, location| location.register(builder));
        // A default `[[site]]` is also the virtual host of its own names, so that a
        // wildcard of another site cannot take them.
        for (index, site) in self.sites.iter().enumerate() {
            let own = self.limits.apply_per_site(Server::builder());
            let mut own = self.site_builder(own, Some(site));
            if self.default_site == Some(index) {
                own = self.default_only(own);
            }
            builder = builder.virtual_host(site.hosts.iter().map(String::as_str), own);
        }
        builder
    }

    /// `builder` with what only the default site has: `[[rewrite]]`, `[status]`,
    /// `[session]` and the top-level `hostname`.
    fn default_only(&self, mut builder: ServerBuilder) -> ServerBuilder {
        builder = self.rewrites.apply(builder);
        if let Some(status) = &self.status {
            builder = status.register(builder);
        }
        if let Some(session) = &self.session {
            builder = session.register(builder);
        }
        if let Some(hostname) = &self.hostname {
            builder = builder.hostname(hostname.as_str());
        }
        builder
    }

    /// `builder` with what every site has — compression, the top-level `[headers]` —
    /// and `site`'s own hostname, headers, certificate and locations.
    fn site_builder(&self, mut builder: ServerBuilder, site: Option<&Site>) -> ServerBuilder {
        if let Some(real_ip) = &self.real_ip {
            // First of the Trans handlers, so everything after sees the client.
            builder = builder.trans(real_ip.clone());
        }
        if let Some(compression) = &self.compression {
            // First of the Pre handlers of `/`, so it covers every answer.
            builder = builder.pre("/", compression.clone());
        }
        builder = self.headers.apply(builder);
        match site {
            Some(site) => site.apply(builder),
            None => builder,
        }
    }

    /// The listeners: `listen`'s addresses, or the sockets systemd passed (socket
    /// activation), which take the places of `listen`'s entries in order (their
    /// `tls` and `redirect_to_https` apply to the socket in the same place).
    pub(crate) fn listeners(
        &self,
        passed: Vec<std::net::TcpListener>,
    ) -> anyhow::Result<Vec<Listener>> {
        if passed.is_empty() {
            return Ok(self.listen.iter().map(ListenSpec::listener).collect());
        }
        if passed.len() > self.listen.len() && self.listen.len() > 1 {
            bail!(
                "systemd passed {} sockets but `listen` has {} entries; give one entry per socket, in order",
                passed.len(),
                self.listen.len()
            );
        }
        Ok(passed
            .into_iter()
            .enumerate()
            .map(|(i, socket)| {
                let spec = self.listen.get(i).unwrap_or(&self.listen[0]);
                spec.configure(Listener::from_std(socket))
            })
            .collect())
    }

    /// The access logs of every location, to reopen on SIGHUP.
    pub(crate) fn access_logs(&self) -> Vec<AccessLog> {
        let sites = self.sites.iter().flat_map(|site| &site.locations);
        self.locations
            .iter()
            .chain(sites)
            .filter_map(|l| l.access_log().cloned())
            .collect()
    }
}

/// `127.0.0.1:8000`, where the server listens unless told otherwise.
fn default_listen() -> ListenSpec {
    ListenSpec::address(DEFAULT_LISTEN).unwrap_or_else(|_| unreachable!("a valid address"))
}

/// Which `[[site]]` is the default one: the one with `default = true`, none when the
/// top-level `[[location]]` blocks are, else the first (as nginx takes the first
/// `server`). Refuses a marked site beside top-level locations.
fn default_site(
    locations: &[Location],
    sites: &[Site],
    text: &ConfigText<'_>,
) -> anyhow::Result<Option<usize>> {
    let marked = sites.iter().position(|site| site.default);
    let top_level = !locations.is_empty();
    match (marked, top_level) {
        (Some(index), true) => bail!(
            "{}:{}: key `default`: the top-level [[location]] blocks are the default site already; move them into a [[site]] or drop `default`",
            text.file.display(),
            sites[index].line
        ),
        (Some(index), false) => Ok(Some(index)),
        (None, false) if !sites.is_empty() => Ok(Some(0)),
        (None, _) => Ok(None),
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
    fn a_top_level_proxy_protocol_is_refused_naming_the_listen_table() {
        let error = error_of("# front\nproxy_protocol = true\n");
        assert!(
            error.starts_with("site.toml:2: key `proxy_protocol`: "),
            "{error}"
        );
        assert!(error.contains("proxy_protocol = true }]"), "{error}");
    }

    #[test]
    fn a_listen_table_sets_the_proxy_protocol_of_its_listener_only() {
        let settings = Settings::parse(
            Path::new("site.toml"),
            "listen = [{ addr = \"127.0.0.1:1\", proxy_protocol = true }, \"127.0.0.1:2\"]\n\n[[location]]\npath = \"/\"\nstatic = { root = \".\" }\n",
        )
        .expect("valid");
        let described: Vec<String> = settings
            .listeners(Vec::new())
            .expect("listeners")
            .iter()
            .map(|listener| format!("{listener:?}"))
            .collect();
        assert_eq!(described.len(), 2);
        assert!(
            described[0].contains("proxy_protocol: true"),
            "{described:?}"
        );
        assert!(
            described[1].contains("proxy_protocol: false"),
            "{described:?}"
        );
    }

    #[test]
    fn a_listen_address_needs_a_host_and_a_port_or_a_port_alone() {
        for bad in ["localhost", "127.0.0.1:99999", "", "99999"] {
            let error = error_of(&format!("# site\nlisten = {bad:?}\n"));
            assert!(
                error.starts_with(&format!(
                    "site.toml:2: key `listen`: {bad:?}: expected HOST:PORT or a port alone"
                )),
                "{error}"
            );
        }
        let cli = Cli::try_parse_from(["poco-httpd", "--listen", "localhost"]).expect("flags");
        let error = Settings::load(&cli).expect_err("refused").to_string();
        assert!(
            error.starts_with("--listen \"localhost\": expected HOST:PORT"),
            "{error}"
        );
        for good in ["8080", ":8080"] {
            let cli = Cli::try_parse_from(["poco-httpd", "--listen", good]).expect("flags");
            assert!(Settings::load(&cli).is_ok(), "{good}");
        }
    }

    #[test]
    fn listen_takes_a_list_of_addresses_and_tables() {
        let text = "listen = [\"127.0.0.1:1\", \"[::1]:1\", { addr = \":2\", redirect_to_https = true }]\n[[location]]\npath = \"/\"\nredirect = { to = \"/x\" }\n";
        let settings = Settings::parse(Path::new("site.toml"), text).expect("valid");
        assert_eq!(settings.listen.len(), 3);
        let error = error_of("listen = [{ addr = \":1\", tls = true }]\n");
        assert!(
            error.starts_with("site.toml:1: key `listen`") && error.contains("no certificate"),
            "{error}"
        );
        let error =
            error_of("listen = [{ addr = \":1\", tls = true, redirect_to_https = true }]\n");
        assert!(error.contains("drop `tls = true`"), "{error}");
    }

    #[test]
    fn the_default_site_is_marked_or_the_top_level_or_the_first() {
        let site = |hosts: &str, extra: &str| {
            format!(
                "[[site]]\nhosts = [{hosts:?}]\n{extra}[[site.location]]\npath = \"/\"\nredirect = {{ to = \"/x\" }}\n"
            )
        };
        let parse =
            |text: &str| Settings::parse(Path::new("site.toml"), text).map(|s| s.default_site);
        let two = format!(
            "{}{}",
            site("a.test", ""),
            site("b.test", "default = true\n")
        );
        assert_eq!(parse(&two).expect("valid"), Some(1));
        assert_eq!(parse(&site("a.test", "")).expect("valid"), Some(0));
        let top = format!(
            "[[location]]\npath = \"/\"\nredirect = {{ to = \"/y\" }}\n{}",
            site("a.test", "")
        );
        assert_eq!(parse(&top).expect("valid"), None);
        let clash = format!(
            "[[location]]\npath = \"/\"\nredirect = {{ to = \"/y\" }}\n{}",
            site("a.test", "default = true\n")
        );
        let error = parse(&clash).expect_err("refused").to_string();
        assert!(
            error.contains("the top-level [[location]] blocks are the default site already"),
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
