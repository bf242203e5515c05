//! `[headers]`: default response headers. An empty value means "do not send this
//! header" (`ServerBuilder::remove_header`), which is how the `Server` header the
//! library adds is turned off; an empty header would only be sent empty.

use std::collections::BTreeMap;

use anyhow::bail;
use poco_httpd::ServerBuilder;
use poco_httpd::http::{HeaderName, HeaderValue};
use toml::Spanned;

use super::ConfigText;

/// `[headers]` as written: name → value.
pub(super) type RawHeaders = BTreeMap<String, Spanned<String>>;

/// Headers the server writes per response, from the body and the connection; a fixed
/// default would contradict them (nor may a location's `headers` set them).
pub(super) const PER_RESPONSE: [&str; 6] = [
    "connection",
    "content-length",
    "date",
    "keep-alive",
    "trailer",
    "transfer-encoding",
];

/// One checked `[headers]` entry.
#[derive(Debug)]
enum Change {
    Set(HeaderName, String),
    Remove(HeaderName),
}

/// The checked `[headers]` table.
#[derive(Debug, Default)]
pub(super) struct Headers(Vec<Change>);

impl Headers {
    /// Checks each name and value of `[headers]`.
    pub(super) fn check(raw: RawHeaders, text: &ConfigText<'_>) -> anyhow::Result<Self> {
        let mut changes = Vec::with_capacity(raw.len());
        for (name, value) in raw {
            let at = || text.at(value.span());
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                bail!(
                    "{}: key `{name}` of [headers]: not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)",
                    at()
                );
            };
            if PER_RESPONSE.contains(&header.as_str()) {
                bail!(
                    "{}: key `{name}` of [headers]: the server sets this header per response",
                    at()
                );
            }
            if value.get_ref().is_empty() {
                changes.push(Change::Remove(header));
                continue;
            }
            if HeaderValue::from_str(value.get_ref()).is_err() {
                bail!(
                    "{}: key `{name}` of [headers]: the value has a control character (a line break?)",
                    at()
                );
            }
            changes.push(Change::Set(header, value.into_inner()));
        }
        Ok(Self(changes))
    }

    /// `builder` with these default headers set or removed.
    pub(super) fn apply(&self, builder: ServerBuilder) -> ServerBuilder {
        self.0.iter().fold(builder, |builder, change| match change {
            Change::Set(name, value) => builder.header(name.as_str(), value.as_str()),
            Change::Remove(name) => builder.remove_header(name.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn check(table: &str) -> anyhow::Result<Headers> {
        let text = format!("[headers]\n{table}");
        let raw: BTreeMap<String, RawHeaders> = toml::from_str(&text).expect("a table");
        let config = ConfigText::new(Path::new("site.toml"), &text);
        Headers::check(raw.into_values().next().unwrap_or_default(), &config)
    }

    #[test]
    fn bad_names_and_values_are_refused_with_line_and_key() {
        for (table, key) in [
            ("X-Ok = \"1\"\n\"Bad Name\" = \"x\"\n", "Bad Name"),
            (
                "X-Ok = \"1\"\nX-Broken = \"a\\r\\nSet-Cookie: x=1\"\n",
                "X-Broken",
            ),
            ("X-Ok = \"1\"\nContent-Length = \"5\"\n", "Content-Length"),
        ] {
            let error = check(table).expect_err("refused").to_string();
            assert!(
                error.starts_with(&format!("site.toml:3: key `{key}` of [headers]")),
                "{error}"
            );
        }
    }

    #[test]
    fn an_empty_value_removes_the_header() {
        let headers = check("Server = \"\"\nX-Site = \"demo\"\n").expect("valid");
        assert!(
            matches!(&headers.0[..], [Change::Remove(server), Change::Set(site, _)]
                if server == "server" && site == "x-site"),
            "{headers:?}"
        );
    }
}
