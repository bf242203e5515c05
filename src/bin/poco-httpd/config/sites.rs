//! `[[site]]` blocks: virtual hosts, each with `hosts` (`"example.org"`,
//! `"*.example.org"`), its own `[[site.location]]` blocks (checked as top-level
//! `[[location]]` blocks are), `[site.headers]` (on top of the top-level
//! `[headers]`), `[site.tls]` (its certificate, chosen by SNI), `hostname`, and
//! `default = true` for the site that answers requests naming no known host.
//!
//! Each site becomes `ServerBuilder::virtual_host(hosts, builder)`; the default site's
//! handlers are also the outer builder's own.

use std::collections::BTreeMap;

use anyhow::bail;
use poco_httpd::{Server, ServerBuilder};
use serde::Deserialize;
use toml::Spanned;

use super::ConfigText;
use super::headers::{Headers, RawHeaders};
use super::location::{self, Location, RawLocation};
use super::tls::{RawTls, Tls};

/// `[[site]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    hosts: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    default: bool,
    hostname: Option<String>,
    #[serde(default)]
    headers: RawHeaders,
    tls: Option<RawTls>,
    #[serde(default)]
    location: Vec<RawLocation>,
}

/// One checked `[[site]]`.
#[derive(Debug)]
pub(super) struct Site {
    pub(super) hosts: Vec<String>,
    /// The line of its `hosts` key.
    pub(super) line: usize,
    pub(super) default: bool,
    pub(super) hostname: Option<String>,
    pub(super) headers: Headers,
    pub(super) tls: Option<Tls>,
    pub(super) locations: Vec<Location>,
}

/// Checks every `[[site]]`: host names valid and named once, locations as top-level
/// ones, something to serve, at most one `default`.
pub(super) fn check_all(raw: Vec<RawSite>, text: &ConfigText<'_>) -> anyhow::Result<Vec<Site>> {
    // Lowercase name → the line of the site naming it.
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    let mut sites: Vec<Site> = Vec::with_capacity(raw.len());
    for block in raw {
        let site = check(block, &mut named, text)?;
        if site.default
            && let Some(other) = sites.iter().find(|other| other.default)
        {
            bail!(
                "{}:{}: key `default`: the site of line {} is the default already; only one can be",
                text.file.display(),
                site.line,
                other.line
            );
        }
        sites.push(site);
    }
    Ok(sites)
}

fn check(
    raw: RawSite,
    named: &mut BTreeMap<String, usize>,
    text: &ConfigText<'_>,
) -> anyhow::Result<Site> {
    let line = text.line(raw.hosts.span());
    let at = text.at(raw.hosts.span());
    let hosts = raw.hosts.into_inner();
    if hosts.is_empty() {
        bail!(
            "{at}: key `hosts` of [[site]]: list at least one host name, such as \"example.org\" or \"*.example.org\""
        );
    }
    for host in &hosts {
        check_host(host, text)?;
        let key = host.get_ref().trim_end_matches('.').to_ascii_lowercase();
        if let Some(earlier) = named.insert(key, line) {
            bail!(
                "{}: key `hosts` of [[site]]: {:?} is named by the site of line {earlier} too",
                text.at(host.span()),
                host.get_ref()
            );
        }
    }
    let hosts: Vec<String> = hosts.into_iter().map(Spanned::into_inner).collect();
    let locations = location::check_all(raw.location, text)?;
    if !locations.iter().any(Location::has_content) {
        bail!(
            "{at}: [[site]] {}: nothing to serve: no [[site.location]] has `static` or `redirect`",
            hosts.join(", ")
        );
    }
    Ok(Site {
        hosts,
        line,
        default: raw.default,
        hostname: raw.hostname,
        headers: Headers::check(raw.headers, text)?,
        tls: raw.tls.map(|tls| Tls::check(&tls, text)).transpose()?,
        locations,
    })
}

/// A host name the library takes: it says what is wrong with any other.
fn check_host(host: &Spanned<String>, text: &ConfigText<'_>) -> anyhow::Result<()> {
    let probe = Server::builder().content("/", "").virtual_host(
        [host.get_ref().as_str()],
        Server::builder().content("/", ""),
    );
    if let Err(error) = probe.build() {
        bail!("{}: key `hosts` of [[site]]: {error}", text.at(host.span()));
    }
    Ok(())
}

impl Site {
    /// `builder` with this site's hostname, headers, certificate and locations.
    pub(super) fn apply(&self, mut builder: ServerBuilder) -> ServerBuilder {
        if let Some(hostname) = &self.hostname {
            builder = builder.hostname(hostname.as_str());
        }
        if let Some(tls) = &self.tls {
            builder = tls.apply(builder);
        }
        builder = self.headers.apply(builder);
        self.locations
            .iter()
            .fold(builder, |builder, location| location.register(builder))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn outcome(toml: &str) -> String {
        #[derive(Deserialize)]
        struct Sites {
            site: Vec<RawSite>,
        }
        let raw: Sites = toml::from_str(toml).expect("site blocks");
        let text = ConfigText::new(Path::new("site.toml"), toml);
        check_all(raw.site, &text).map_or_else(|e| format!("{e:#}"), |_| "ok".to_owned())
    }

    fn site(hosts: &str, extra: &str) -> String {
        format!(
            "[[site]]\nhosts = {hosts}\n{extra}[[site.location]]\npath = \"/\"\nredirect = {{ to = \"/x\" }}\n"
        )
    }

    #[test]
    fn a_host_named_by_two_sites_is_refused_with_both_lines() {
        let twice = format!(
            "{}{}",
            site("[\"a.test\"]", ""),
            site("[\"x.test\", \"A.test\"]", "")
        );
        let error = outcome(&twice);
        assert!(
            error.starts_with("site.toml:7: key `hosts`") && error.contains("site of line 2"),
            "{error}"
        );
    }

    #[test]
    fn bad_host_names_are_refused_with_the_line() {
        let error = outcome(&site("[\"a.test:80\"]", ""));
        assert!(
            error.starts_with("site.toml:2: key `hosts`") && error.contains("no port"),
            "{error}"
        );
        let error = outcome(&site("[]", ""));
        assert!(error.contains("at least one host name"), "{error}");
    }

    #[test]
    fn only_one_site_can_be_the_default() {
        let both = format!(
            "{}{}",
            site("[\"a.test\"]", "default = true\n"),
            site("[\"b.test\"]", "default = true\n")
        );
        let error = outcome(&both);
        assert!(
            error.contains("the site of line 2 is the default already"),
            "{error}"
        );
    }

    #[test]
    fn a_site_needs_something_to_serve() {
        let error = outcome("[[site]]\nhosts = [\"a.test\"]\n");
        assert!(
            error.starts_with("site.toml:2: [[site]] a.test: nothing to serve"),
            "{error}"
        );
    }
}
