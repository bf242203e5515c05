//! `[session]`: sessions matched by cookie for every request under its `path`, kept
//! in memory or, with `redis_url`, in Redis. The store and the middleware are built
//! here, when the file is read, so a bad URL or timeout is refused naming the line
//! and the key, and registering the middleware cannot fail.

use std::time::Duration;

use anyhow::Context;
use poco_httpd::ServerBuilder;
use poco_httpd::session::{MemoryStore, OnStoreFailure, RedisStore, Sessions};
use serde::Deserialize;
use toml::Spanned;

use super::ConfigText;
use super::limits::in_range;
use super::location::{check_path, keys_of};

/// `[session]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSession {
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
    #[serde(default)]
    on_store_failure: StoreFailure,
}

fn root_path() -> Spanned<String> {
    Spanned::new(0..0, "/".to_owned())
}

/// `on_store_failure`: what a request needing a session gets when the store does not
/// answer in time. serde refuses any other value, listing these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoreFailure {
    /// `503 Service Unavailable`.
    #[default]
    Unavailable,
    /// The request goes on without a session.
    Continue,
}

impl From<StoreFailure> for OnStoreFailure {
    fn from(policy: StoreFailure) -> Self {
        match policy {
            StoreFailure::Unavailable => Self::Unavailable,
            StoreFailure::Continue => Self::ContinueWithout,
        }
    }
}

/// A year: the longest a session may last, idle or not.
const YEAR_SECS: u64 = 365 * 24 * 60 * 60;

/// The checked `[session]`: the middleware, ready to register under `path`.
#[derive(Debug)]
pub(super) struct Session {
    path: String,
    sessions: Sessions,
}

impl Session {
    /// Checks the path, the store and the timeouts, and builds the middleware.
    pub(super) fn check(raw: RawSession, text: &ConfigText<'_>) -> anyhow::Result<Self> {
        let path = check_path(&raw.path, "[session]", text)?;
        let sessions = match &raw.redis_url {
            Some(url) => Sessions::new(redis_store(url, raw.key_prefix.as_deref(), text)?),
            None => Sessions::new(MemoryStore::new()),
        };
        let sessions = with_timeouts(sessions, &raw, text)?
            .cookie_path(path.as_str())
            .on_store_failure(raw.on_store_failure.into());
        let sessions = with_cookie(sessions, raw.cookie_name, raw.cookie_domain);
        Ok(Self { path, sessions })
    }

    /// Puts the middleware, as a Pre handler, on every key its path covers.
    pub(super) fn register(&self, builder: ServerBuilder) -> ServerBuilder {
        keys_of(&self.path).iter().fold(builder, |builder, key| {
            builder.pre(key, self.sessions.clone())
        })
    }
}

/// The Redis store at `url`. Only the URL is parsed: a Redis that is down is the
/// failure policy's business, request by request.
fn redis_store(
    url: &Spanned<String>,
    prefix: Option<&str>,
    text: &ConfigText<'_>,
) -> anyhow::Result<RedisStore> {
    let store = RedisStore::new(url.get_ref())
        .with_context(|| format!("{}: key `redis_url` of [session]", text.at(url.span())))?;
    Ok(match prefix {
        Some(prefix) => store.key_prefix(prefix),
        None => store,
    })
}

/// `sessions` with the timeouts `raw` sets, each checked against its range.
fn with_timeouts(
    mut sessions: Sessions,
    raw: &RawSession,
    text: &ConfigText<'_>,
) -> anyhow::Result<Sessions> {
    let seconds = |value: &Spanned<u64>, key| {
        in_range(value, &(1..=YEAR_SECS), "seconds", key, "[session]", text)
            .map(Duration::from_secs)
    };
    if let Some(idle) = &raw.idle_timeout_secs {
        sessions = sessions.idle_timeout(seconds(idle, "idle_timeout_secs")?);
    }
    if let Some(absolute) = &raw.absolute_timeout_secs {
        sessions = sessions.absolute_timeout(seconds(absolute, "absolute_timeout_secs")?);
    }
    if let Some(ms) = &raw.store_timeout_ms {
        let key = "store_timeout_ms";
        let ms = in_range(ms, &(1..=60_000), "milliseconds", key, "[session]", text)?;
        sessions = sessions.store_timeout(Duration::from_millis(ms));
    }
    Ok(sessions)
}

/// `sessions` with the cookie name and domain, when given.
fn with_cookie(mut sessions: Sessions, name: Option<String>, domain: Option<String>) -> Sessions {
    if let Some(name) = name {
        sessions = sessions.cookie_name(name);
    }
    if let Some(domain) = domain {
        sessions = sessions.cookie_domain(domain);
    }
    sessions
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Settings;
    use super::*;

    /// A location that makes a config servable, for tests about `[session]`.
    const SERVES: &str = "[[location]]\npath = \"/\"\nredirect = { to = \"/x\" }\n";

    fn error_of(text: &str) -> String {
        Settings::parse(Path::new("site.toml"), text)
            .expect_err("refused")
            .to_string()
    }

    fn session_of(table: &str) -> Session {
        let text = format!("[session]\n{table}");
        #[derive(Deserialize)]
        struct File {
            session: RawSession,
        }
        let raw: File = toml::from_str(&text).expect("a [session] table");
        Session::check(raw.session, &ConfigText::new(Path::new("site.toml"), &text)).expect("valid")
    }

    #[test]
    fn session_settings_are_read_into_the_middleware() {
        let session =
            session_of("path = \"/app/\"\ncookie_name = \"sid\"\nidle_timeout_secs = 60\n");
        assert_eq!(session.path, "/app/");
        let sessions = format!("{:?}", session.sessions);
        assert!(
            sessions.contains("cookie_name: \"sid\"") && sessions.contains("idle_timeout: 60s"),
            "{sessions}"
        );
        assert_eq!(session_of("").path, "/");
    }

    #[test]
    fn an_unknown_store_failure_policy_names_its_key_and_the_known_ones() {
        let error = error_of(&format!(
            "[session]\non_store_failure = \"shrug\"\n{SERVES}"
        ));
        assert!(
            error.starts_with("site.toml:2: key `on_store_failure`")
                && error.contains("`unavailable`")
                && error.contains("`continue`"),
            "{error}"
        );
        for policy in ["unavailable", "continue"] {
            session_of(&format!("on_store_failure = {policy:?}\n"));
        }
    }

    #[test]
    fn timeouts_out_of_range_are_refused_with_line_and_key() {
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
    }

    #[test]
    fn a_bad_redis_url_or_path_names_its_key() {
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
        let server = settings
            .builder()
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
}
