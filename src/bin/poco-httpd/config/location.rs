//! `[[location]]` blocks: a path and the built-in handlers put on it, checked at load.
//!
//! A location path names a URL prefix by whole segments, as nginx users read it:
//! `/admin` covers `/admin`, `/admin/` and everything below (not `/administrator`);
//! `/admin/` covers `/admin/` and below. The library keeps the original module's exact
//! keys (`/admin` and `/admin/` are different keys), so [`keys_of`] maps a config path
//! onto them: a path without its trailing slash is registered at both.

use std::path::PathBuf;

use anyhow::{Context, bail};
use poco_httpd::handlers::{
    AccessControl, AccessLog, BasicAuth, Cors, ErrorPages, LogFormat, RateLimit, Redirect,
    ResponseHeaders, StaticFiles, TryFiles,
};
use poco_httpd::http::StatusCode;
use poco_httpd::{ServerBuilder, normalize_path};
use serde::Deserialize;
use toml::Spanned;

use super::ConfigText;
use super::cors::{self, RawCors};
use super::error_pages::{self, RawErrorPages};
use super::location_headers::{self, RawLocationHeaders};
use super::rate_limit::{self, RawRateLimit};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocation {
    path: Spanned<String>,
    #[serde(rename = "static")]
    static_files: Option<RawStatic>,
    redirect: Option<RawRedirect>,
    basic_auth: Option<RawBasicAuth>,
    access_log: Option<RawAccessLog>,
    headers: Option<RawLocationHeaders>,
    cors: Option<RawCors>,
    error_pages: Option<RawErrorPages>,
    try_files: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    rate_limit: Option<RawRateLimit>,
    proxy: Option<super::proxy::RawProxy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    htpasswd: Spanned<PathBuf>,
    realm: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccessLog {
    /// Absent: standard output.
    file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    format: Format,
}

/// An access log's `format`; serde refuses any other value, listing these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Common,
    Combined,
    Json,
}

impl From<Format> for LogFormat {
    fn from(format: Format) -> Self {
        match format {
            Format::Common => Self::Common,
            Format::Combined => Self::Combined,
            Format::Json => Self::Json,
        }
    }
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
    /// The content cache's bound on all it holds; 0 turns it off.
    #[serde(default = "default_cache_bytes")]
    cache_bytes: usize,
    /// The content cache's bound on one file.
    #[serde(default = "default_cache_file_bytes")]
    cache_file_bytes: usize,
}

fn default_cache_bytes() -> usize {
    StaticFiles::DEFAULT_CACHE_BYTES
}

fn default_cache_file_bytes() -> usize {
    StaticFiles::DEFAULT_CACHE_FILE_BYTES
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedirect {
    to: Spanned<String>,
    #[serde(default = "default_redirect_status")]
    status: Spanned<u16>,
}

fn default_redirect_status() -> Spanned<u16> {
    Spanned::new(0..0, StatusCode::FOUND.as_u16())
}

/// The variables a redirect target may name (see `handlers::Redirect`).
const REDIRECT_VARIABLES: [&str; 2] = ["request_uri", "host"];

/// The Content handler one location installs.
#[derive(Debug)]
enum Content {
    Static(StaticFiles),
    TryFiles(TryFiles),
    Redirect(Redirect),
    Proxy(poco_httpd::handlers::Proxy),
}

/// The Pre handlers of one location, in the order they run: those that finish the
/// answer (their `before_send` hooks see every answer, a refusal too) first, then
/// those that may refuse — the cheap address checks before the password check.
#[derive(Debug, Default)]
struct Guards {
    error_pages: Option<ErrorPages>,
    headers: Option<ResponseHeaders>,
    cors: Option<Cors>,
    access: Option<AccessControl>,
    rate_limit: Option<RateLimit>,
}

impl Guards {
    fn is_empty(&self) -> bool {
        self.error_pages.is_none()
            && self.headers.is_none()
            && self.cors.is_none()
            && self.access.is_none()
            && self.rate_limit.is_none()
    }

    fn register(&self, key: &str, mut builder: ServerBuilder) -> ServerBuilder {
        if let Some(pages) = &self.error_pages {
            builder = builder.pre(key, pages.clone());
        }
        if let Some(headers) = &self.headers {
            builder = builder.pre(key, headers.clone());
        }
        if let Some(cors) = &self.cors {
            builder = builder.pre(key, cors.clone());
        }
        if let Some(access) = &self.access {
            builder = builder.pre(key, access.clone());
        }
        if let Some(limit) = &self.rate_limit {
            builder = builder.pre(key, limit.clone());
        }
        builder
    }
}

/// The handlers one `[[location]]` puts on its path.
#[derive(Debug)]
pub(super) struct Location {
    path: String,
    /// The line of its `path` key, to point at when another block overlaps it.
    line: usize,
    content: Option<Content>,
    guards: Guards,
    auth: Option<BasicAuth>,
    log: Option<AccessLog>,
}

impl Location {
    /// Static files from `root` at `/`, with directory listings: `--root` without a
    /// config file, like `python3 -m http.server`.
    pub(super) fn serving(root: PathBuf) -> Self {
        let files = StaticFiles::new("/", root).directory_listing(true);
        Self {
            path: "/".to_owned(),
            line: 0,
            content: Some(Content::Static(files)),
            guards: Guards::default(),
            auth: None,
            log: None,
        }
    }

    /// Checks one block: its path, each handler's keys, and that it has a handler.
    fn check(raw: RawLocation, text: &ConfigText<'_>) -> anyhow::Result<Self> {
        let path = check_path(&raw.path, "location", text)?;
        let what = format!("location {path:?}");
        let location_at = text.at(raw.path.span());
        let static_root = raw
            .static_files
            .as_ref()
            .map(|files| text.relative(files.root.get_ref()));
        if raw.static_files.is_none()
            && let Some(try_files) = &raw.try_files
        {
            bail!(
                "{}: key `try_files` of {what}: it looks for files under the location's `static` root; add `static`",
                text.at(try_files.span())
            );
        }
        let content = match (raw.static_files, raw.redirect) {
            (Some(files), None) => Some(static_files(files, &path, raw.try_files, text)?),
            (None, Some(redirect)) => Some(redirect_to(redirect, &what, text)?),
            (None, None) => None,
            (Some(_), Some(_)) => bail!(
                "{location_at}: {what} has both `static` and `redirect`; a path has one Content handler"
            ),
        };
        let content = match (content, raw.proxy) {
            (content, None) => content,
            (None, Some(proxy)) => Some(Content::Proxy(super::proxy::check(
                proxy, &path, &what, text,
            )?)),
            (Some(_), Some(_)) => bail!(
                "{location_at}: {what} has `proxy` and `static` or `redirect`; a path has one Content handler"
            ),
        };
        let guards = Guards {
            error_pages: raw
                .error_pages
                .map(|pages| {
                    error_pages::check(pages, static_root.as_deref(), &what, &location_at, text)
                })
                .transpose()?,
            headers: raw
                .headers
                .map(|headers| location_headers::check(headers, &what, text))
                .transpose()?,
            cors: raw
                .cors
                .map(|cors| cors::check(cors, &what, text))
                .transpose()?,
            access: if raw.allow.is_empty() && raw.deny.is_empty() {
                None
            } else {
                Some(super::access::access_control(
                    &raw.allow, &raw.deny, &what, text,
                )?)
            },
            rate_limit: raw
                .rate_limit
                .map(|limit| rate_limit::check(limit, &what, &location_at, text))
                .transpose()?,
        };
        let auth = raw
            .basic_auth
            .map(|auth| basic_auth(auth, &what, text))
            .transpose()?;
        let log = raw
            .access_log
            .map(|log| access_log(log, &what, text))
            .transpose()?;
        if content.is_none() && auth.is_none() && log.is_none() && guards.is_empty() {
            bail!(
                "{location_at}: {what} needs at least one of the keys `static`, `redirect`, `proxy`, `basic_auth`, `access_log`, `headers`, `cors`, `error_pages`, `allow`, `deny`, `rate_limit`"
            );
        }
        Ok(Self {
            path,
            line: text.line(raw.path.span()),
            content,
            guards,
            auth,
            log,
        })
    }

    pub(super) fn path(&self) -> &str {
        &self.path
    }

    pub(super) fn line(&self) -> usize {
        self.line
    }

    /// Whether it answers requests (has a Content handler).
    pub(super) fn has_content(&self) -> bool {
        self.content.is_some()
    }

    pub(super) fn access_log(&self) -> Option<&AccessLog> {
        self.log.as_ref()
    }

    /// Puts its handlers on every key its path covers.
    pub(super) fn register(&self, mut builder: ServerBuilder) -> ServerBuilder {
        for key in keys_of(&self.path) {
            builder = self.guards.register(&key, builder);
            if let Some(auth) = &self.auth {
                builder = builder.pre(&key, auth.clone());
            }
            if let Some(log) = &self.log {
                builder = builder.post(&key, log.clone());
            }
            builder = match &self.content {
                None => builder,
                Some(Content::Static(files)) => builder.content(&key, files.clone()),
                Some(Content::TryFiles(files)) => builder.content(&key, files.clone()),
                Some(Content::Redirect(redirect)) => builder.content(&key, redirect.clone()),
                Some(Content::Proxy(proxy)) => builder.content(&key, proxy.clone()),
            };
        }
        builder
    }
}

/// Checks every `[[location]]`, refusing two whose paths cover the same key.
pub(super) fn check_all(
    raw: Vec<RawLocation>,
    text: &ConfigText<'_>,
) -> anyhow::Result<Vec<Location>> {
    let mut locations: Vec<Location> = Vec::with_capacity(raw.len());
    for block in raw {
        let span = block.path.span();
        let location = Location::check(block, text)?;
        if let Some(earlier) = locations.iter().find(|l| overlap(&l.path, &location.path)) {
            bail!(
                "{}: key `path`: location {:?} covers the same paths as location {:?} of line {}; put their keys in one [[location]]",
                text.at(span),
                location.path,
                earlier.path,
                earlier.line
            );
        }
        locations.push(location);
    }
    Ok(locations)
}

/// The directory-map keys a config path covers: `/admin` → `/admin` and `/admin/`
/// (the directory, hence everything below it); `/admin/` and `/` → themselves.
pub(super) fn keys_of(path: &str) -> Vec<String> {
    if path.ends_with('/') {
        vec![path.to_owned()]
    } else {
        vec![path.to_owned(), format!("{path}/")]
    }
}

/// Whether two config paths share a key.
pub(super) fn overlap(a: &str, b: &str) -> bool {
    let b_keys = keys_of(b);
    keys_of(a).iter().any(|key| b_keys.contains(key))
}

/// A config path (of a location, `[status]` or `[session]`): it must start with `/`
/// and be written as requests are matched — decoded, without `.`, `..` or `//`.
pub(super) fn check_path(
    path: &Spanned<String>,
    what: &str,
    text: &ConfigText<'_>,
) -> anyhow::Result<String> {
    let written = path.get_ref();
    let at = || text.at(path.span());
    if !written.starts_with('/') {
        bail!(
            "{}: key `path` of {what}: {written:?} must start with '/'",
            at()
        );
    }
    match normalize_path(written) {
        Ok(normal) if normal == *written => Ok(normal),
        Ok(normal) => bail!(
            "{}: key `path` of {what}: {written:?} is not in normal form; write {normal:?}",
            at()
        ),
        Err(error) => bail!("{}: key `path` of {what}: {written:?}: {error}", at()),
    }
}

fn static_files(
    raw: RawStatic,
    path: &str,
    try_files: Option<Spanned<Vec<String>>>,
    text: &ConfigText<'_>,
) -> anyhow::Result<Content> {
    let root = text.relative(raw.root.get_ref());
    if !root.is_dir() {
        bail!(
            "{}: key `root` of location {path:?}: {} is not a directory",
            text.at(raw.root.span()),
            root.display()
        );
    }
    let files = StaticFiles::new(path, root)
        .follow_symlinks_out(raw.follow_symlinks)
        .hidden_files(raw.hidden)
        .directory_listing(raw.listing)
        .content_cache(raw.cache_bytes, raw.cache_file_bytes);
    let Some(try_files) = try_files else {
        return Ok(Content::Static(files));
    };
    let candidates = try_files.get_ref().iter().map(String::as_str);
    match TryFiles::new(files, candidates) {
        Ok(files) => Ok(Content::TryFiles(files)),
        Err(error) => bail!(
            "{}: key `try_files` of location {path:?}: {error}",
            text.at(try_files.span())
        ),
    }
}

fn redirect_to(raw: RawRedirect, what: &str, text: &ConfigText<'_>) -> anyhow::Result<Content> {
    let status = StatusCode::from_u16(*raw.status.get_ref())
        .ok()
        .filter(StatusCode::is_redirection)
        .with_context(|| {
            format!(
                "{}: key `status` of {what}: not a redirect status (301, 302, 303, 307, 308)",
                text.at(raw.status.span())
            )
        })?;
    let to = raw.to.get_ref();
    if let Err(reason) = check_redirect_target(to) {
        bail!(
            "{}: key `to` of {what}: {to:?} {reason}",
            text.at(raw.to.span())
        );
    }
    Ok(Content::Redirect(Redirect::new(to).status(status)))
}

/// A redirect target goes into the `Location` header: visible ASCII only (a URL,
/// percent-encoded), and only the variables the handler knows.
fn check_redirect_target(to: &str) -> Result<(), String> {
    if to.is_empty() {
        return Err("is empty".to_owned());
    }
    if let Some(bad) = to.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "contains {bad:?}; a target has no spaces, control or non-ASCII characters (percent-encode them)"
        ));
    }
    for (dollar, _) in to.match_indices('$') {
        let after = &to[dollar + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        if !name.is_empty() && !REDIRECT_VARIABLES.contains(&name) {
            return Err(format!(
                "names the unknown variable `${name}`; known: $request_uri, $host"
            ));
        }
    }
    Ok(())
}

fn basic_auth(raw: RawBasicAuth, what: &str, text: &ConfigText<'_>) -> anyhow::Result<BasicAuth> {
    let file = text.relative(raw.htpasswd.get_ref());
    let users = BasicAuth::from_htpasswd(&file)
        .with_context(|| format!("{}: key `htpasswd` of {what}", text.at(raw.htpasswd.span())))?;
    let Some(realm) = raw.realm else {
        return Ok(users.realm("poco-httpd"));
    };
    // The realm is sent quoted in `WWW-Authenticate`.
    if let Some(bad) = realm
        .get_ref()
        .chars()
        .find(|c| !(c.is_ascii_graphic() || *c == ' ') || matches!(c, '"' | '\\'))
    {
        bail!(
            "{}: key `realm` of {what}: {bad:?} cannot be sent in a realm",
            text.at(realm.span())
        );
    }
    Ok(users.realm(realm.into_inner()))
}

fn access_log(raw: RawAccessLog, what: &str, text: &ConfigText<'_>) -> anyhow::Result<AccessLog> {
    let log = match &raw.file {
        Some(file) => {
            let path = text.relative(file.get_ref());
            AccessLog::file(&path).with_context(|| {
                format!(
                    "{}: key `file` of {what}: cannot open {}",
                    text.at(file.span()),
                    path.display()
                )
            })?
        }
        None => AccessLog::stdout(),
    };
    Ok(log.format(raw.format.into()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The error for the locations in `toml`, or "ok".
    fn outcome(toml: &str) -> String {
        #[derive(Deserialize)]
        struct Blocks {
            location: Vec<RawLocation>,
        }
        let raw: Blocks = toml::from_str(toml).expect("location blocks");
        let text = ConfigText::new(Path::new("site.toml"), toml);
        check_all(raw.location, &text).map_or_else(|e| format!("{e:#}"), |_| "ok".to_owned())
    }

    fn redirect(path: &str, to: &str) -> String {
        format!("[[location]]\npath = {path:?}\nredirect = {{ to = {to:?} }}\n")
    }

    #[test]
    fn a_path_without_its_slash_covers_the_directory_too() {
        assert_eq!(keys_of("/admin"), ["/admin", "/admin/"]);
        assert_eq!(keys_of("/admin/"), ["/admin/"]);
        assert_eq!(keys_of("/"), ["/"]);
        assert!(overlap("/admin", "/admin/"));
        assert!(!overlap("/admin", "/administrator"));
        assert!(!overlap("/admin/", "/admin/x"));
    }

    #[test]
    fn paths_must_be_absolute_and_in_normal_form() {
        let error = outcome(&redirect("admin", "/"));
        assert!(
            error.starts_with("site.toml:2: key `path`") && error.contains("start with '/'"),
            "{error}"
        );
        let error = outcome(&redirect("/a/../b", "/"));
        assert!(error.contains("write \"/b\""), "{error}");
        let error = outcome(&redirect("/a%2Fb", "/"));
        assert!(error.starts_with("site.toml:2: key `path`"), "{error}");
    }

    #[test]
    fn duplicate_and_overlapping_locations_are_refused() {
        let twice = format!("{}{}", redirect("/x", "/a"), redirect("/x", "/b"));
        let error = outcome(&twice);
        assert!(
            error.starts_with("site.toml:5: key `path`") && error.contains("of line 2"),
            "{error}"
        );
        let overlapping = format!("{}{}", redirect("/x/", "/a"), redirect("/x", "/b"));
        assert!(outcome(&overlapping).contains("covers the same paths"));
        let apart = format!("{}{}", redirect("/x", "/a"), redirect("/xy", "/b"));
        assert_eq!(outcome(&apart), "ok");
    }

    #[test]
    fn redirect_targets_are_checked() {
        for (to, expected) in [
            ("/a\r\nSet-Cookie: x=1", "contains '\\r'"),
            ("/a b", "contains ' '"),
            ("", "is empty"),
            ("https://x$request_urx", "unknown variable `$request_urx`"),
            ("/$1", "unknown variable `$1`"),
        ] {
            let error = outcome(&redirect("/r", to));
            assert!(
                error.starts_with("site.toml:3: key `to`") && error.contains(expected),
                "{to:?}: {error}"
            );
        }
        assert_eq!(
            outcome(&redirect("/r", "https://$host:8443$request_uri")),
            "ok"
        );
    }

    #[test]
    fn an_access_log_that_cannot_be_opened_names_its_key() {
        let error =
            outcome("[[location]]\npath = \"/\"\naccess_log = { file = \"/no/such/dir/log\" }\n");
        assert!(
            error.starts_with(
                "site.toml:3: key `file` of location \"/\": cannot open /no/such/dir/log: "
            ),
            "{error}"
        );
    }

    #[test]
    fn a_realm_must_fit_in_its_header() {
        let hash = "$2y$04$abcdefghijklmnopqrstuuJ4Rn1i8V8Zw8qXz7Y0mGfYc0bq2Jf4O";
        let htpasswd = std::env::temp_dir().join(format!("realm-{}.htpasswd", std::process::id()));
        std::fs::write(&htpasswd, format!("alice:{hash}\n")).expect("write htpasswd");
        let error = outcome(&format!(
            "[[location]]\npath = \"/\"\nbasic_auth = {{ htpasswd = {:?}, realm = \"a\\\"b\" }}\n",
            htpasswd.display().to_string()
        ));
        assert!(error.starts_with("site.toml:3: key `realm`"), "{error}");
    }

    #[test]
    fn a_missing_static_root_names_its_key() {
        let error = outcome("[[location]]\npath = \"/\"\nstatic = { root = \"/no/such/dir\" }\n");
        assert!(
            error.starts_with("site.toml:3: key `root`") && error.contains("/no/such/dir"),
            "{error}"
        );
    }

    #[test]
    fn a_location_needs_one_handler() {
        let error = outcome("[[location]]\npath = \"/x\"\n");
        assert!(
            error.starts_with("site.toml:2:") && error.contains("\"/x\""),
            "{error}"
        );
    }

    #[test]
    fn a_redirect_status_must_be_a_redirect() {
        let error =
            outcome("[[location]]\npath = \"/x\"\nredirect = { to = \"/y\", status = 200 }\n");
        assert!(error.starts_with("site.toml:3: key `status`"), "{error}");
    }

    #[test]
    fn a_missing_htpasswd_file_names_its_key() {
        let error = outcome(
            "[[location]]\npath = \"/admin/\"\nbasic_auth = { htpasswd = \"/no/such/htpasswd\" }\n",
        );
        assert!(error.starts_with("site.toml:3: key `htpasswd`"), "{error}");
    }

    /// Refused by serde, before the log file is opened, with the formats it knows.
    #[test]
    fn an_access_log_format_must_be_known() {
        let text = "[[location]]\npath = \"/\"\naccess_log = { format = \"fancy\" }\n";
        let error = super::super::Settings::parse(Path::new("site.toml"), text)
            .expect_err("refused")
            .to_string();
        assert!(
            error.starts_with("site.toml:3: key `format`")
                && error.contains("`common`")
                && error.contains("`combined`"),
            "{error}"
        );
        let combined =
            outcome("[[location]]\npath = \"/\"\naccess_log = { format = \"combined\" }\n");
        assert_eq!(combined, "ok");
    }

    /// The front-server keys: each mistake names the line and the key.
    #[test]
    fn front_server_keys_are_checked_with_line_and_key() {
        let root = env!("CARGO_MANIFEST_DIR");
        let with = |keys: &str| {
            outcome(&format!(
                "[[location]]\npath = \"/\"\nstatic = {{ root = {root:?} }}\n{keys}\n"
            ))
        };
        for (keys, expected) in [
            (
                "try_files = [\"$uri\", \"index.html\"]",
                "site.toml:4: key `try_files`",
            ),
            ("try_files = [\"=404\", \"$uri\"]", "may only be the last"),
            (
                "allow = [\"10.0.0.0/8\", \"ten\"]",
                "site.toml:4: key `allow`",
            ),
            (
                "rate_limit = { burst = 3 }",
                "exactly one of `per_second` and `per_minute`",
            ),
            (
                "rate_limit = { per_second = 0 }",
                "site.toml:4: key `per_second`",
            ),
            (
                "cors = { origins = [\"app.example\"] }",
                "site.toml:4: key `origins`",
            ),
            ("cors = { origins = [] }", "name at least one origin"),
            (
                "headers = { always = \"yes\" }",
                "site.toml:4: key `always`",
            ),
            (
                "headers = { \"Content-Length\" = \"1\" }",
                "sets this header per response",
            ),
            (
                "headers = { \"X-A\" = \"a\\nb\" }",
                "site.toml:4: key `X-A`",
            ),
            (
                "error_pages = { 200 = \"/index.html\" }",
                "not an error status",
            ),
            (
                "error_pages = { 404 = \"/no-such-page.html\" }",
                "is not a file",
            ),
        ] {
            let error = with(keys);
            assert!(error.contains(expected), "{keys}: {error}");
        }
        let fine = with(
            "try_files = [\"$uri\", \"/README.md\"]\nallow = [\"all\"]\ndeny = [\"192.0.2.0/24\"]\nrate_limit = { per_second = 5, burst = 10 }\nheaders = { \"Cache-Control\" = \"no-store\", always = true }\nerror_pages = { 404 = \"/README.md\" }",
        );
        assert_eq!(fine, "ok");
    }

    #[test]
    fn try_files_and_error_pages_need_a_root() {
        let error = outcome(
            "[[location]]\npath = \"/\"\nredirect = { to = \"/x\" }\ntry_files = [\"$uri\"]\n",
        );
        assert!(
            error.starts_with("site.toml:4: key `try_files`") && error.contains("add `static`"),
            "{error}"
        );
        let error = outcome("[[location]]\npath = \"/x\"\nerror_pages = { 404 = \"/404.html\" }\n");
        assert!(
            error.starts_with("site.toml:2:") && error.contains("root ="),
            "{error}"
        );
    }
}
