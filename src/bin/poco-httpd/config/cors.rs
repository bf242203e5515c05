//! A location's `cors = { origins = [...], methods, headers, expose_headers,
//! credentials, max_age }`: cross-origin requests and preflights (`handlers::Cors`).

use anyhow::bail;
use poco_httpd::handlers::Cors;
use poco_httpd::http::Method;
use serde::Deserialize;
use toml::Spanned;

use super::ConfigText;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCors {
    origins: Spanned<Vec<String>>,
    methods: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    headers: Vec<Spanned<String>>,
    #[serde(default)]
    expose_headers: Vec<Spanned<String>>,
    #[serde(default)]
    credentials: bool,
    max_age: Option<u64>,
}

/// Checks the table and builds the handler.
pub(super) fn check(raw: RawCors, what: &str, text: &ConfigText<'_>) -> anyhow::Result<Cors> {
    let at = text.at(raw.origins.span());
    if raw.origins.get_ref().is_empty() {
        bail!(
            "{at}: key `origins` of `cors` of {what}: name at least one origin, such as \"https://app.example.org\", or \"*\""
        );
    }
    let mut cors = Cors::new().allow_credentials(raw.credentials);
    for origin in raw.origins.get_ref() {
        // An origin has no path: `https://a.example/app` would never match one.
        let host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .map(|host| host.trim_end_matches('/'));
        let valid = origin == "*"
            || host.is_some_and(|host| {
                !host.is_empty()
                    && host.is_ascii()
                    && !host.contains(|c: char| {
                        c == '/' || c.is_ascii_whitespace() || c.is_ascii_control()
                    })
            });
        if !valid {
            bail!(
                "{at}: key `origins` of `cors` of {what}: {origin:?} is not an origin; write scheme://host[:port], such as \"https://app.example.org\", or \"*\""
            );
        }
        cors = cors.allow_origin(origin);
    }
    if let Some(methods) = raw.methods {
        let mut parsed = Vec::new();
        for method in methods.get_ref() {
            match Method::from_bytes(method.as_bytes()) {
                Ok(method) => parsed.push(method),
                Err(_) => bail!(
                    "{}: key `methods` of `cors` of {what}: {method:?} is not a method",
                    text.at(methods.span())
                ),
            }
        }
        cors = cors.allow_methods(parsed);
    }
    for (key, names) in [
        ("headers", &raw.headers),
        ("expose_headers", &raw.expose_headers),
    ] {
        for name in names {
            let one = [name.get_ref().as_str()];
            let added = if key == "headers" {
                cors.clone().allow_headers(one)
            } else {
                cors.clone().expose_headers(one)
            };
            cors = match added {
                Ok(cors) => cors,
                Err(_) => bail!(
                    "{}: key `{key}` of `cors` of {what}: {:?} is not a header name",
                    text.at(name.span()),
                    name.get_ref()
                ),
            };
        }
    }
    if let Some(seconds) = raw.max_age {
        cors = cors.max_age(seconds);
    }
    Ok(cors)
}
