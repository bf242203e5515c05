//! `[status]`: the live status page, on by default at `/server-status` for loopback
//! clients. Its path is checked as a location's, and must not be one a location
//! answers too.

use anyhow::bail;
use poco_httpd::ServerBuilder;
use poco_httpd::handlers::ServerStatus;
use serde::Deserialize;
use toml::Spanned;

use super::ConfigText;
use super::location::{Location, check_path, keys_of, overlap};

/// Where the page is unless `path` says otherwise.
const DEFAULT_PATH: &str = "/server-status";

/// `[status]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStatus {
    enabled: bool,
    path: Spanned<String>,
    allow_remote: bool,
}

impl Default for RawStatus {
    fn default() -> Self {
        Self {
            enabled: true,
            path: Spanned::new(0..0, DEFAULT_PATH.to_owned()),
            allow_remote: false,
        }
    }
}

/// The checked `[status]` table, when the page is on.
#[derive(Debug)]
pub(super) struct Status {
    path: String,
    page: ServerStatus,
}

impl Status {
    /// The page at its default path, for loopback clients.
    pub(super) fn by_default() -> Self {
        Self {
            path: DEFAULT_PATH.to_owned(),
            page: ServerStatus::new(),
        }
    }

    /// Checks `[status]` against the `locations`; `None` when the page is off.
    pub(super) fn check(
        raw: RawStatus,
        locations: &[Location],
        text: &ConfigText<'_>,
    ) -> anyhow::Result<Option<Self>> {
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
        let page = ServerStatus::new().allow_remote(raw.allow_remote);
        Ok(Some(Self { path, page }))
    }

    /// Puts the page, as the Content handler, on every key its path covers.
    pub(super) fn register(&self, builder: ServerBuilder) -> ServerBuilder {
        keys_of(&self.path).iter().fold(builder, |builder, key| {
            builder.content(key, self.page.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Settings;

    /// A location that makes a config servable.
    const SERVES: &str = "[[location]]\npath = \"/\"\nredirect = { to = \"/x\" }\n";

    #[test]
    fn the_status_page_cannot_take_a_served_path() {
        let error = Settings::parse(
            Path::new("site.toml"),
            &format!("{SERVES}[status]\npath = \"/\"\n"),
        )
        .expect_err("refused")
        .to_string();
        assert!(
            error.starts_with("site.toml:5: key `path` of [status]")
                && error.contains("location \"/\" of line 2"),
            "{error}"
        );
        let off = format!("{SERVES}[status]\nenabled = false\npath = \"/\"\n");
        assert!(Settings::parse(Path::new("site.toml"), &off).is_ok());
    }
}
