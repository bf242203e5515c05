//! A location's `headers = { "Cache-Control" = "…", always = true }`: response
//! headers set on its answers (`handlers::ResponseHeaders`); `always` extends them to
//! error answers. An empty value removes the header.

use std::collections::BTreeMap;

use anyhow::bail;
use poco_httpd::handlers::ResponseHeaders;
use toml::{Spanned, Value};

use super::ConfigText;
use super::headers::PER_RESPONSE;

/// As written: header names with string values, and the flag `always`.
pub(super) type RawLocationHeaders = BTreeMap<String, Spanned<Value>>;

/// Checks each entry and builds the handler.
pub(super) fn check(
    raw: RawLocationHeaders,
    what: &str,
    text: &ConfigText<'_>,
) -> anyhow::Result<ResponseHeaders> {
    let mut headers = ResponseHeaders::new();
    for (name, value) in raw {
        let at = text.at(value.span());
        if name == "always" {
            let Some(always) = value.get_ref().as_bool() else {
                bail!("{at}: key `always` of `headers` of {what}: expected true or false");
            };
            headers = headers.always(always);
            continue;
        }
        let Some(text_value) = value.get_ref().as_str() else {
            bail!("{at}: key `{name}` of `headers` of {what}: expected a string");
        };
        if PER_RESPONSE.contains(&name.to_ascii_lowercase().as_str()) {
            bail!(
                "{at}: key `{name}` of `headers` of {what}: the server sets this header per response"
            );
        }
        headers = match headers.header(&name, text_value) {
            Ok(headers) => headers,
            Err(error) => bail!(
                "{at}: key `{name}` of `headers` of {what}: {error} (a name is letters, digits and !#$%&'*+-.^_`|~; a value has no line breaks)"
            ),
        };
    }
    Ok(headers)
}
