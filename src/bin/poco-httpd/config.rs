//! The ready-made server's configuration: command-line flags and the TOML file, read
//! in two stages — the raw serde structs below, then a validated [`Settings`] that
//! builds the server. Every error names the file, the line and the key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use poco_httpd::handlers::{
    AccessLog, BasicAuth, Compression, LogFormat, Redirect, Rewrite, ServerStatus, StaticFiles,
};
use poco_httpd::http::StatusCode;
use poco_httpd::session::{MemoryStore, OnStoreFailure, RedisStore, Sessions};
use poco_httpd::{Server, ServerBuilder};
use serde::Deserialize;
use toml::Spanned;

/// A web server built on poco-httpd's handler phases.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    /// Address to listen on, ADDR:PORT (overrides the config file).
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) listen: Option<String>,
    /// Directory to serve when no config file is given.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub(crate) root: PathBuf,
    /// TOML config file with `[[location]]` blocks.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8000";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    hostname: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
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

/// `[tls]`: serve HTTPS with this certificate chain and key (PEM files).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Spanned<PathBuf>,
    key: Spanned<PathBuf>,
}

/// `[limits]`: each unset key keeps the library's default (see RELIABILITY.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    header_read_timeout_secs: Option<u64>,
    max_header_size: Option<usize>,
    max_headers: Option<usize>,
    max_body_size: Option<usize>,
    body_read_timeout_secs: Option<u64>,
    write_timeout_secs: Option<u64>,
    keep_alive_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    handler_timeout_secs: Option<u64>,
    max_concurrent_streams: Option<u32>,
    shutdown_deadline_secs: Option<u64>,
}

impl RawLimits {
    fn apply(&self, mut builder: ServerBuilder) -> ServerBuilder {
        let secs = Duration::from_secs;
        if let Some(value) = self.header_read_timeout_secs {
            builder = builder.header_read_timeout(secs(value));
        }
        if let Some(value) = self.max_header_size {
            builder = builder.max_header_size(value);
        }
        if let Some(value) = self.max_headers {
            builder = builder.max_headers(value);
        }
        if let Some(value) = self.max_body_size {
            builder = builder.max_body_size(value);
        }
        if let Some(value) = self.body_read_timeout_secs {
            builder = builder.body_read_timeout(secs(value));
        }
        if let Some(value) = self.write_timeout_secs {
            builder = builder.write_timeout(secs(value));
        }
        if let Some(value) = self.keep_alive_timeout_secs {
            builder = builder.keep_alive_timeout(secs(value));
        }
        if let Some(value) = self.max_connections {
            builder = builder.max_connections(value);
        }
        if let Some(value) = self.handler_timeout_secs {
            builder = builder.handler_timeout(secs(value));
        }
        if let Some(value) = self.max_concurrent_streams {
            builder = builder.max_concurrent_streams(value);
        }
        if let Some(value) = self.shutdown_deadline_secs {
            builder = builder.shutdown_deadline(secs(value));
        }
        builder
    }
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

/// `[status]`: the live status page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStatus {
    enabled: bool,
    path: String,
    allow_remote: bool,
}

impl Default for RawStatus {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "/server-status".to_owned(),
            allow_remote: false,
        }
    }
}

/// `[[rewrite]]`: a Trans handler rewriting paths matching `from` to `to`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRewrite {
    from: Spanned<String>,
    to: String,
    #[serde(default)]
    last: bool,
}

/// `[session]`: sessions matched by cookie for every request under `path`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    #[serde(default = "root_path")]
    path: String,
    /// Absent: sessions in memory.
    redis_url: Option<String>,
    key_prefix: Option<String>,
    cookie_name: Option<String>,
    cookie_domain: Option<String>,
    idle_timeout_secs: Option<u64>,
    absolute_timeout_secs: Option<u64>,
    store_timeout_ms: Option<u64>,
    /// `"unavailable"` (503) or `"continue"` (go on without a session).
    on_store_failure: Option<Spanned<String>>,
}

fn root_path() -> String {
    "/".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocation {
    path: Spanned<String>,
    #[serde(rename = "static")]
    static_files: Option<RawStatic>,
    redirect: Option<RawRedirect>,
    basic_auth: Option<RawBasicAuth>,
    access_log: Option<RawAccessLog>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    htpasswd: Spanned<PathBuf>,
    realm: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccessLog {
    /// Absent: standard output.
    file: Option<PathBuf>,
    /// `"common"` (default) or `"combined"`.
    format: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatic {
    root: Spanned<PathBuf>,
    /// Serve files that symlinks inside the root point to outside it.
    #[serde(default)]
    follow_symlinks: bool,
    /// List directories without an `index.html`.
    #[serde(default)]
    listing: bool,
    /// Serve (and list) dot files such as `.env` and `.git/`; `.well-known` at the
    /// top of the root is served either way.
    #[serde(default)]
    hidden: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedirect {
    to: String,
    #[serde(default = "default_redirect_status")]
    status: Spanned<u16>,
}

fn default_redirect_status() -> Spanned<u16> {
    Spanned::new(0..0, StatusCode::FOUND.as_u16())
}

/// The Content handler one location installs.
#[derive(Debug)]
enum Content {
    Static {
        root: PathBuf,
        follow_symlinks: bool,
        listing: bool,
        hidden: bool,
    },
    Redirect(String, StatusCode),
}

/// The handlers one `[[location]]` puts on its path.
#[derive(Debug)]
struct Location {
    path: String,
    content: Option<Content>,
    auth: Option<BasicAuth>,
    log: Option<AccessLog>,
}

/// The validated settings the server is built from.
#[derive(Debug)]
pub(crate) struct Settings {
    listen: String,
    hostname: Option<String>,
    headers: BTreeMap<String, String>,
    locations: Vec<Location>,
    rewrites: Vec<Rewrite>,
    status: RawStatus,
    compression: RawCompression,
    session: Option<RawSession>,
    /// Certificate and key files, checked to exist.
    tls: Option<(PathBuf, PathBuf)>,
    limits: RawLimits,
}

impl Settings {
    /// Reads the flags and, if given, the config file.
    pub(crate) fn load(cli: &Cli) -> anyhow::Result<Self> {
        let mut settings = match &cli.config {
            Some(file) => Self::from_file(file)?,
            None => Self::serving(&cli.root)?,
        };
        if let Some(listen) = &cli.listen {
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
            headers: BTreeMap::new(),
            locations: vec![Location {
                path: "/".to_owned(),
                // Like `python3 -m http.server`: browsing the directory is the point.
                content: Some(Content::Static {
                    root: root.to_owned(),
                    follow_symlinks: false,
                    listing: true,
                    // `.env`, `.git/`: what a directory being worked in holds.
                    hidden: false,
                }),
                auth: None,
                log: None,
            }],
            rewrites: Vec::new(),
            status: RawStatus::default(),
            compression: RawCompression::default(),
            session: None,
            tls: None,
            limits: RawLimits::default(),
        })
    }

    fn from_file(file: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read config file {}", file.display()))?;
        Self::parse(file, &text)
    }

    /// Parses and validates a config file's text; `file` names it in errors.
    pub(crate) fn parse(file: &Path, text: &str) -> anyhow::Result<Self> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| {
            let line = error.span().map_or(0, |span| line_of(text, span.start));
            anyhow::anyhow!("{}:{line}: {}", file.display(), error.message())
        })?;
        let base = file.parent().unwrap_or(Path::new("."));
        let at = |span: Range<usize>| format!("{}:{}", file.display(), line_of(text, span.start));
        let mut locations = Vec::new();
        for location in raw.location {
            let path = location.path.get_ref().clone();
            let content = match (location.static_files, location.redirect) {
                (Some(files), None) => {
                    let root = base.join(files.root.get_ref());
                    if !root.is_dir() {
                        bail!(
                            "{}: key `root` of location {path:?}: {} is not a directory",
                            at(files.root.span()),
                            root.display()
                        );
                    }
                    Some(Content::Static {
                        root,
                        follow_symlinks: files.follow_symlinks,
                        listing: files.listing,
                        hidden: files.hidden,
                    })
                }
                (None, Some(redirect)) => {
                    let status = StatusCode::from_u16(*redirect.status.get_ref())
                        .ok()
                        .filter(StatusCode::is_redirection)
                        .with_context(|| {
                            format!(
                                "{}: key `status` of location {path:?}: not a redirect status (301, 302, 303, 307, 308)",
                                at(redirect.status.span())
                            )
                        })?;
                    Some(Content::Redirect(redirect.to, status))
                }
                (None, None) => None,
                (Some(_), Some(_)) => bail!(
                    "{}: location {path:?} has both `static` and `redirect`; a path has one Content handler",
                    at(location.path.span())
                ),
            };
            let auth = match location.basic_auth {
                Some(auth) => {
                    let file = base.join(auth.htpasswd.get_ref());
                    let users = BasicAuth::from_htpasswd(&file).map_err(|error| {
                        anyhow::anyhow!(
                            "{}: key `htpasswd` of location {path:?}: {error}",
                            at(auth.htpasswd.span())
                        )
                    })?;
                    Some(users.realm(auth.realm.unwrap_or_else(|| "poco-httpd".to_owned())))
                }
                None => None,
            };
            let log = match location.access_log {
                Some(log) => Some(access_log(base, log, &path, &at)?),
                None => None,
            };
            if content.is_none() && auth.is_none() && log.is_none() {
                bail!(
                    "{}: location {path:?} needs at least one of the keys `static`, `redirect`, `basic_auth`, `access_log`",
                    at(location.path.span())
                );
            }
            locations.push(Location {
                path,
                content,
                auth,
                log,
            });
        }
        let mut rewrites = Vec::new();
        for rule in raw.rewrite {
            let rewrite = Rewrite::new(rule.from.get_ref(), rule.to).map_err(|error| {
                anyhow::anyhow!(
                    "{}: key `from` of [[rewrite]]: {error}",
                    at(rule.from.span())
                )
            })?;
            rewrites.push(if rule.last { rewrite.last() } else { rewrite });
        }
        let policy = raw
            .session
            .as_ref()
            .and_then(|s| s.on_store_failure.as_ref());
        if let Some(policy) = policy
            && !matches!(policy.get_ref().as_str(), "unavailable" | "continue")
        {
            bail!(
                "{}: key `on_store_failure` of [session]: expected \"unavailable\" or \"continue\"",
                at(policy.span())
            );
        }
        let tls = match raw.tls {
            Some(tls) => {
                let file = |key: &str, path: &Spanned<PathBuf>| {
                    let file = base.join(path.get_ref());
                    if file.is_file() {
                        Ok(file)
                    } else {
                        Err(anyhow::anyhow!(
                            "{}: key `{key}` of [tls]: {} is not a file",
                            at(path.span()),
                            file.display()
                        ))
                    }
                };
                Some((file("cert", &tls.cert)?, file("key", &tls.key)?))
            }
            None => None,
        };
        Ok(Self {
            listen: raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            hostname: raw.hostname,
            headers: raw.headers,
            locations,
            rewrites,
            status: raw.status,
            compression: raw.compression,
            session: raw.session,
            tls,
            limits: raw.limits,
        })
    }

    /// `https` when the server speaks TLS, else `http`.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The server these settings describe.
    pub(crate) fn builder(&self) -> anyhow::Result<ServerBuilder> {
        let mut builder = Server::builder().listen(self.listen.as_str());
        builder = self.limits.apply(builder);
        if let Some((cert, key)) = &self.tls {
            builder = builder.tls(cert, key);
        }
        for rewrite in &self.rewrites {
            builder = builder.trans(rewrite.clone());
        }
        if self.compression.enabled {
            // First of the Pre handlers of `/`, so it covers every answer.
            let compression = Compression::new().min_size(self.compression.min_size);
            builder = builder.pre("/", compression);
        }
        if self.status.enabled {
            let page = ServerStatus::new().allow_remote(self.status.allow_remote);
            builder = builder.content(&self.status.path, page);
        }
        if let Some(session) = &self.session {
            builder = builder.pre(&session.path, sessions(session)?);
        }
        if let Some(hostname) = &self.hostname {
            builder = builder.hostname(hostname.as_str());
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        for Location {
            path,
            content,
            auth,
            log,
        } in &self.locations
        {
            if let Some(auth) = auth {
                builder = builder.pre(path, auth.clone());
            }
            if let Some(log) = log {
                builder = builder.post(path, log.clone());
            }
            builder = match content {
                None => builder,
                Some(Content::Static {
                    root,
                    follow_symlinks,
                    listing,
                    hidden,
                }) => {
                    let files = StaticFiles::new(path, root.as_path())
                        .follow_symlinks_out(*follow_symlinks)
                        .hidden_files(*hidden)
                        .directory_listing(*listing);
                    builder.content(path, files)
                }
                Some(Content::Redirect(to, status)) => {
                    builder.content(path, Redirect::new(to.as_str()).status(*status))
                }
            };
        }
        Ok(builder)
    }
}

impl Settings {
    /// The access logs of every location, to reopen on SIGHUP.
    pub(crate) fn access_logs(&self) -> Vec<AccessLog> {
        self.locations
            .iter()
            .filter_map(|l| l.log.clone())
            .collect()
    }
}

fn access_log(
    base: &Path,
    raw: RawAccessLog,
    path: &str,
    at: &dyn Fn(Range<usize>) -> String,
) -> anyhow::Result<AccessLog> {
    let log = match &raw.file {
        Some(file) => {
            let file = base.join(file);
            AccessLog::file(&file).with_context(|| {
                format!(
                    "key `file` of location {path:?}: cannot open {}",
                    file.display()
                )
            })?
        }
        None => AccessLog::stdout(),
    };
    let format = match raw
        .format
        .as_ref()
        .map(|f| (f.get_ref().as_str(), f.span()))
    {
        None | Some(("common", _)) => LogFormat::Common,
        Some(("combined", _)) => LogFormat::Combined,
        Some((_, span)) => bail!(
            "{}: key `format` of location {path:?}: expected \"common\" or \"combined\"",
            at(span)
        ),
    };
    Ok(log.format(format))
}

/// The session middleware `[session]` describes.
fn sessions(raw: &RawSession) -> anyhow::Result<Sessions> {
    let mut sessions = match &raw.redis_url {
        Some(url) => {
            let mut store =
                RedisStore::new(url).map_err(|e| anyhow::anyhow!("[session] redis_url: {e}"))?;
            if let Some(prefix) = &raw.key_prefix {
                store = store.key_prefix(prefix.as_str());
            }
            Sessions::new(store)
        }
        None => Sessions::new(MemoryStore::new()),
    };
    if let Some(name) = &raw.cookie_name {
        sessions = sessions.cookie_name(name.as_str());
    }
    if let Some(domain) = &raw.cookie_domain {
        sessions = sessions.cookie_domain(domain.as_str());
    }
    sessions = sessions.cookie_path(raw.path.as_str());
    if let Some(secs) = raw.idle_timeout_secs {
        sessions = sessions.idle_timeout(Duration::from_secs(secs));
    }
    if let Some(secs) = raw.absolute_timeout_secs {
        sessions = sessions.absolute_timeout(Duration::from_secs(secs));
    }
    if let Some(ms) = raw.store_timeout_ms {
        sessions = sessions.store_timeout(Duration::from_millis(ms));
    }
    if raw
        .on_store_failure
        .as_ref()
        .is_some_and(|p| p.get_ref() == "continue")
    {
        sessions = sessions.on_store_failure(OnStoreFailure::ContinueWithout);
    }
    Ok(sessions)
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
    fn wrong_types_are_refused_with_file_and_line() {
        let error = error_of("listen = 8000\n");
        assert!(error.starts_with("site.toml:1:"), "{error}");
    }

    #[test]
    fn a_missing_static_root_names_its_key() {
        let error = error_of("[[location]]\npath = \"/\"\nstatic = { root = \"/no/such/dir\" }\n");
        assert!(error.starts_with("site.toml:3:"), "{error}");
        assert!(
            error.contains("`root`") && error.contains("/no/such/dir"),
            "{error}"
        );
    }

    #[test]
    fn a_location_needs_one_handler() {
        let error = error_of("[[location]]\npath = \"/x\"\n");
        assert!(
            error.starts_with("site.toml:2:") && error.contains("\"/x\""),
            "{error}"
        );
    }

    #[test]
    fn session_settings_are_read_and_checked() {
        let text = "[session]\npath = \"/app/\"\ncookie_name = \"sid\"\nidle_timeout_secs = 60\n";
        let settings = Settings::parse(Path::new("site.toml"), text).expect("valid");
        let session = settings.session.as_ref().expect("a [session] table");
        assert_eq!(
            (session.path.as_str(), session.cookie_name.as_deref()),
            ("/app/", Some("sid"))
        );
        let error = error_of("[session]\non_store_failure = \"shrug\"\n");
        assert!(
            error.starts_with("site.toml:2:") && error.contains("`on_store_failure`"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_htpasswd_file_names_its_key() {
        let error = error_of(
            "[[location]]\npath = \"/admin/\"\nbasic_auth = { htpasswd = \"/no/such/htpasswd\" }\n",
        );
        assert!(
            error.starts_with("site.toml:3:") && error.contains("`htpasswd`"),
            "{error}"
        );
    }

    #[test]
    fn an_access_log_format_must_be_known() {
        let error = error_of("[[location]]\npath = \"/\"\naccess_log = { format = \"fancy\" }\n");
        assert!(
            error.starts_with("site.toml:3:") && error.contains("`format`"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_rewrite_pattern_names_its_key() {
        let error = error_of("[[rewrite]]\nfrom = \"^/(unclosed\"\nto = \"/x\"\n");
        assert!(
            error.starts_with("site.toml:2:") && error.contains("`from`"),
            "{error}"
        );
    }

    #[test]
    fn a_redirect_status_must_be_a_redirect() {
        let error =
            error_of("[[location]]\npath = \"/x\"\nredirect = { to = \"/y\", status = 200 }\n");
        assert!(
            error.starts_with("site.toml:3:") && error.contains("`status`"),
            "{error}"
        );
    }
}
