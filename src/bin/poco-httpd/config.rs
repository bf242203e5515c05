//! The ready-made server's configuration: command-line flags and the TOML file, read
//! in two stages — the raw serde structs below, then a validated [`Settings`] that
//! builds the server. Every error names the file, the line and the key.
//!
//! The tables with rules of their own have their own modules: `[[location]]` blocks
//! (`location`), `[limits]` (`limits`) and `[headers]` (`headers`).

// Explicit paths: the fuzz target includes this file with `#[path]`, which resolves
// nested modules from this file's directory; these resolve the same from both.
#[path = "config/headers.rs"]
mod headers;
#[path = "config/limits.rs"]
mod limits;
#[path = "config/location.rs"]
mod location;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use poco_httpd::handlers::{AccessLog, Compression, Rewrite, ServerStatus};
use poco_httpd::session::{MemoryStore, OnStoreFailure, RedisStore, Sessions};
use poco_httpd::{Server, ServerBuilder};
use serde::Deserialize;
use toml::Spanned;

use self::headers::{Headers, RawHeaders};
use self::limits::{Limits, RawLimits, in_range};
use self::location::{Location, RawLocation, check_path, keys_of, overlap};

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    hostname: Option<String>,
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

/// `[tls]`: serve HTTPS with this certificate chain and key (PEM files).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Spanned<PathBuf>,
    key: Spanned<PathBuf>,
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
    path: Spanned<String>,
    allow_remote: bool,
}

impl Default for RawStatus {
    fn default() -> Self {
        Self {
            enabled: true,
            path: Spanned::new(0..0, "/server-status".to_owned()),
            allow_remote: false,
        }
    }
}

/// The checked `[status]` table, when the page is on.
#[derive(Debug)]
struct Status {
    path: String,
    allow_remote: bool,
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
    path: Spanned<String>,
    /// Absent: sessions in memory.
    redis_url: Option<Spanned<String>>,
    key_prefix: Option<String>,
    cookie_name: Option<String>,
    cookie_domain: Option<String>,
    idle_timeout_secs: Option<Spanned<u64>>,
    absolute_timeout_secs: Option<Spanned<u64>>,
    store_timeout_ms: Option<Spanned<u64>>,
    /// `"unavailable"` (503) or `"continue"` (go on without a session).
    on_store_failure: Option<Spanned<String>>,
}

fn root_path() -> Spanned<String> {
    Spanned::new(0..0, "/".to_owned())
}

/// A year: the longest a session may last, idle or not.
const YEAR_SECS: u64 = 365 * 24 * 60 * 60;

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

/// The validated settings the server is built from.
#[derive(Debug)]
pub(crate) struct Settings {
    listen: String,
    hostname: Option<String>,
    headers: Headers,
    locations: Vec<Location>,
    rewrites: Vec<Rewrite>,
    status: Option<Status>,
    compression: RawCompression,
    session: Option<RawSession>,
    /// Certificate and key files, checked to exist.
    tls: Option<(PathBuf, PathBuf)>,
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
            headers: Headers::default(),
            locations: vec![Location::serving(root.to_owned())],
            rewrites: Vec::new(),
            status: Some(Status {
                path: RawStatus::default().path.into_inner(),
                allow_remote: false,
            }),
            compression: RawCompression::default(),
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
        let raw: RawConfig = toml::from_str(text).map_err(|error| {
            let line = error.span().map_or(0, |span| line_of(text, span.start));
            anyhow::anyhow!("{}:{line}: {}", file.display(), error.message())
        })?;
        let text = ConfigText::new(file, text);
        let locations = location::check_all(raw.location, &text)?;
        let status = check_status(raw.status, &locations, &text)?;
        if let Some(session) = &raw.session {
            check_session(session, &text)?;
        }
        let settings = Self {
            listen: raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            hostname: raw.hostname,
            headers: Headers::check(raw.headers, &text)?,
            locations,
            rewrites: rewrites(raw.rewrite, &text)?,
            status,
            compression: raw.compression,
            session: raw.session,
            tls: raw.tls.map(|tls| tls_files(&tls, &text)).transpose()?,
            limits: Limits::check(raw.limits, &text)?,
        };
        // Last, so a mistake on a line is reported first.
        if !settings.locations.iter().any(Location::has_content) {
            bail!(
                "{}: nothing to serve: no [[location]] has `static` or `redirect`. Add one, for example:\n\n[[location]]\npath = \"/\"\nstatic = {{ root = \"/var/www\" }}\n",
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
        if let Some(status) = &self.status {
            let page = ServerStatus::new().allow_remote(status.allow_remote);
            for key in keys_of(&status.path) {
                builder = builder.content(&key, page.clone());
            }
        }
        if let Some(session) = &self.session {
            let sessions = sessions(session)?;
            for key in keys_of(session.path.get_ref()) {
                builder = builder.pre(&key, sessions.clone());
            }
        }
        if let Some(hostname) = &self.hostname {
            builder = builder.hostname(hostname.as_str());
        }
        builder = self.headers.apply(builder);
        for location in &self.locations {
            builder = location.register(builder);
        }
        Ok(builder)
    }

    /// The access logs of every location, to reopen on SIGHUP.
    pub(crate) fn access_logs(&self) -> Vec<AccessLog> {
        self.locations
            .iter()
            .filter_map(|l| l.access_log().cloned())
            .collect()
    }
}

/// `[status]`: its path is checked as a location's, and must not be the path of a
/// location that answers requests too.
fn check_status(
    raw: RawStatus,
    locations: &[Location],
    text: &ConfigText<'_>,
) -> anyhow::Result<Option<Status>> {
    if !raw.enabled {
        return Ok(None);
    }
    let path = check_path(&raw.path, "[status]", text)?;
    let taken = locations
        .iter()
        .find(|l| l.has_content() && overlap(l.path(), &path));
    if let Some(location) = taken {
        bail!(
            "{}: key `path` of [status]: location {:?} of line {} already answers {path:?}; move the status page or set `enabled = false`",
            text.at(raw.path.span()),
            location.path(),
            location.line()
        );
    }
    Ok(Some(Status {
        path,
        allow_remote: raw.allow_remote,
    }))
}

/// `[session]`: its path, timeouts and failure policy.
fn check_session(raw: &RawSession, text: &ConfigText<'_>) -> anyhow::Result<()> {
    check_path(&raw.path, "[session]", text)?;
    if let Some(url) = &raw.redis_url {
        // Parsing only: a Redis that is down is the store's failure policy's business.
        RedisStore::new(url.get_ref())
            .with_context(|| format!("{}: key `redis_url` of [session]", text.at(url.span())))?;
    }
    let seconds = [
        ("idle_timeout_secs", &raw.idle_timeout_secs),
        ("absolute_timeout_secs", &raw.absolute_timeout_secs),
    ];
    for (key, value) in seconds {
        if let Some(value) = value {
            in_range(value, &(1..=YEAR_SECS), "seconds", key, "[session]", text)?;
        }
    }
    if let Some(value) = &raw.store_timeout_ms {
        let range = 1..=60_000;
        in_range(
            value,
            &range,
            "milliseconds",
            "store_timeout_ms",
            "[session]",
            text,
        )?;
    }
    if let Some(policy) = &raw.on_store_failure
        && !matches!(policy.get_ref().as_str(), "unavailable" | "continue")
    {
        bail!(
            "{}: key `on_store_failure` of [session]: expected \"unavailable\" or \"continue\"",
            text.at(policy.span())
        );
    }
    Ok(())
}

fn rewrites(raw: Vec<RawRewrite>, text: &ConfigText<'_>) -> anyhow::Result<Vec<Rewrite>> {
    let mut rewrites = Vec::with_capacity(raw.len());
    for rule in raw {
        let rewrite = Rewrite::new(rule.from.get_ref(), rule.to).map_err(|error| {
            anyhow::anyhow!(
                "{}: key `from` of [[rewrite]]: {error}",
                text.at(rule.from.span())
            )
        })?;
        rewrites.push(if rule.last { rewrite.last() } else { rewrite });
    }
    Ok(rewrites)
}

/// `[tls]`: the certificate and key files, which must exist.
fn tls_files(raw: &RawTls, text: &ConfigText<'_>) -> anyhow::Result<(PathBuf, PathBuf)> {
    let file = |key: &str, path: &Spanned<PathBuf>| {
        let file = text.relative(path.get_ref());
        if !file.is_file() {
            bail!(
                "{}: key `{key}` of [tls]: {} is not a file",
                text.at(path.span()),
                file.display()
            );
        }
        Ok(file)
    };
    Ok((file("cert", &raw.cert)?, file("key", &raw.key)?))
}

/// The session middleware `[session]` describes.
fn sessions(raw: &RawSession) -> anyhow::Result<Sessions> {
    let mut sessions = match &raw.redis_url {
        Some(url) => {
            let mut store =
                RedisStore::new(url.get_ref()).context("key `redis_url` of [session]")?;
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
    sessions = sessions.cookie_path(raw.path.get_ref().as_str());
    let secs = |value: &Spanned<u64>| Duration::from_secs(*value.get_ref());
    if let Some(idle) = &raw.idle_timeout_secs {
        sessions = sessions.idle_timeout(secs(idle));
    }
    if let Some(absolute) = &raw.absolute_timeout_secs {
        sessions = sessions.absolute_timeout(secs(absolute));
    }
    if let Some(ms) = &raw.store_timeout_ms {
        sessions = sessions.store_timeout(Duration::from_millis(*ms.get_ref()));
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

    /// A location that makes a config servable, for tests about other tables.
    const SERVES: &str = "[[location]]\npath = \"/\"\nredirect = { to = \"/x\" }\n";

    #[test]
    fn session_settings_are_read_and_checked() {
        let text = format!(
            "[session]\npath = \"/app/\"\ncookie_name = \"sid\"\nidle_timeout_secs = 60\n{SERVES}"
        );
        let settings = Settings::parse(Path::new("site.toml"), &text).expect("valid");
        let session = settings.session.as_ref().expect("a [session] table");
        assert_eq!(
            (
                session.path.get_ref().as_str(),
                session.cookie_name.as_deref()
            ),
            ("/app/", Some("sid"))
        );
        let error = error_of(&format!(
            "[session]\non_store_failure = \"shrug\"\n{SERVES}"
        ));
        assert!(
            error.starts_with("site.toml:2:") && error.contains("`on_store_failure`"),
            "{error}"
        );
        for key in [
            "idle_timeout_secs",
            "absolute_timeout_secs",
            "store_timeout_ms",
        ] {
            for value in ["0", "9223372036854775807"] {
                let error = error_of(&format!("{SERVES}[session]\n{key} = {value}\n"));
                assert!(
                    error.starts_with(&format!("site.toml:5: key `{key}` of [session]")),
                    "{error}"
                );
            }
        }
        let error = error_of(&format!("{SERVES}[session]\nredis_url = \"http://x\"\n"));
        assert!(
            error.starts_with("site.toml:5: key `redis_url` of [session]"),
            "{error}"
        );
        let error = error_of(&format!("{SERVES}[session]\npath = \"app\"\n"));
        assert!(
            error.starts_with("site.toml:5: key `path` of [session]"),
            "{error}"
        );
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
    fn the_status_page_cannot_take_a_served_path() {
        let error = error_of(&format!("{SERVES}[status]\npath = \"/\"\n"));
        assert!(
            error.starts_with("site.toml:5: key `path` of [status]")
                && error.contains("location \"/\" of line 2"),
            "{error}"
        );
        let off = format!("{SERVES}[status]\nenabled = false\npath = \"/\"\n");
        assert!(Settings::parse(Path::new("site.toml"), &off).is_ok());
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

    /// `[session] path = "/app"` covers `/app`, `/app/` and below, not `/apple`: a
    /// Content handler reports whether the request has a session.
    #[tokio::test]
    async fn a_session_path_covers_its_directory() {
        use poco_httpd::session::Session;
        use poco_httpd::{Outcome, Request, Response};

        let text = "[session]\npath = \"/app\"\n[[location]]\npath = \"/elsewhere\"\nredirect = { to = \"/\" }\n";
        let settings = Settings::parse(Path::new("site.toml"), text).expect("valid");
        let probe = |req: Request, res: Response| {
            res.set_body(if Session::of(&req).is_some() {
                "yes"
            } else {
                "no"
            });
            Outcome::Ok
        };
        let builder = settings.builder().expect("a builder");
        let server = builder
            .listen("127.0.0.1:0")
            .content("/", probe)
            .build()
            .expect("valid");
        let server = server.bind().await.expect("bind loopback");
        let base = format!("http://{}", server.local_addr());
        let shutdown = server.shutdown_handle();
        let running = tokio::spawn(server.run());
        let client = reqwest::Client::new();
        for (path, expected) in [
            ("/app", "yes"),
            ("/app/", "yes"),
            ("/app/x/y", "yes"),
            ("/apple", "no"),
            ("/", "no"),
        ] {
            let answer = client
                .get(format!("{base}{path}"))
                .send()
                .await
                .expect("an answer");
            assert_eq!(answer.text().await.expect("a body"), expected, "{path}");
        }
        shutdown.shutdown();
        running.await.expect("the server stops");
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
