//! Comma-separated header lists (`Connection: keep-alive, Upgrade`): whether one
//! names a token, in any case. A leaf: it knows header values only.

use http::HeaderValue;

/// Whether any of `values` lists `token` (case-insensitive, spaces trimmed).
pub(crate) fn lists_token<'a>(
    values: impl IntoIterator<Item = &'a HeaderValue>,
    token: &str,
) -> bool {
    let values = values.into_iter().filter_map(|value| value.to_str().ok());
    values
        .flat_map(|value| value.split(','))
        .any(|listed| listed.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_in_any_value_and_any_case() {
        let values = [
            HeaderValue::from_static("keep-alive"),
            HeaderValue::from_static("Foo, UPGRADE"),
        ];
        assert!(lists_token(&values, "upgrade"));
        assert!(lists_token(&values, "Keep-Alive"));
        assert!(!lists_token(&values, "close"));
        assert!(!lists_token(&values[..1], "upgrade"));
    }
}
