//! A file's validators — `ETag` (size and modification time) and `Last-Modified` —
//! and the conditional requests (RFC 9110 §13) decided by them, parsed with the
//! `headers` crate.

use std::time::{SystemTime, UNIX_EPOCH};

use headers::{ETag, HeaderMapExt, IfMatch, IfModifiedSince, IfNoneMatch, IfUnmodifiedSince};
use http::header::{ETAG, IF_RANGE, LAST_MODIFIED};
use http::{HeaderMap, HeaderValue};

/// The validators of one file (or precompressed sibling), from its metadata.
#[derive(Debug)]
pub(super) struct Validators {
    modified: Option<SystemTime>,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
}

/// What the conditional headers of a request decide.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Condition {
    /// Serve the file.
    Proceed,
    /// `304 Not Modified`: the client's copy is current.
    NotModified,
    /// `412 Precondition Failed`: `If-Match` or `If-Unmodified-Since` failed.
    Failed,
}

impl Validators {
    pub(super) fn of(metadata: &std::fs::Metadata) -> Self {
        let modified = metadata.modified().ok();
        // A strong tag: any change of content changes the size or the time, to the
        // nanosecond (as far as the file system keeps it). Written by hand: `format!`
        // with padding cost more than the rest of the tag's work together.
        let etag = modified
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .and_then(|since| {
                let mut text = String::with_capacity(40);
                text.push('"');
                push_hex(&mut text, since.as_secs(), 1);
                text.push('.');
                push_hex(&mut text, u64::from(since.subsec_nanos()), 8);
                text.push('-');
                push_hex(&mut text, metadata.len(), 1);
                text.push('"');
                HeaderValue::try_from(text).ok()
            });
        let last_modified = modified
            .map(|time| HeaderValue::try_from(httpdate::fmt_http_date(time)))
            .and_then(Result::ok);
        Self {
            modified,
            etag,
            last_modified,
        }
    }

    /// `If-Match`, else `If-Unmodified-Since`; then `If-None-Match`, else
    /// `If-Modified-Since` (RFC 9110 §13.2.2).
    pub(super) fn check(&self, request: &HeaderMap) -> Condition {
        // Parsed only when a condition needs it: most requests carry none.
        let etag = || -> Option<ETag> { self.etag.as_ref()?.to_str().ok()?.parse().ok() };
        if let Some(wanted) = request.typed_get::<IfMatch>() {
            if !etag().is_some_and(|tag| wanted.precondition_passes(&tag)) {
                return Condition::Failed;
            }
        } else if let Some(since) = request.typed_get::<IfUnmodifiedSince>()
            && self
                .modified
                .is_some_and(|time| !since.precondition_passes(time))
        {
            return Condition::Failed;
        }
        if let Some(held) = request.typed_get::<IfNoneMatch>() {
            if etag().is_some_and(|tag| !held.precondition_passes(&tag)) {
                return Condition::NotModified;
            }
        } else if let Some(since) = request.typed_get::<IfModifiedSince>()
            && self.modified.is_some_and(|time| !since.is_modified(time))
        {
            return Condition::NotModified;
        }
        Condition::Proceed
    }

    /// `If-Range` (RFC 9110 §13.1.5): ranges only if the file is still the one the
    /// client has — a strong `ETag` equal to the current one, or the exact
    /// `Last-Modified` date.
    pub(super) fn if_range_passes(&self, request: &HeaderMap) -> bool {
        let Some(condition) = request.get(IF_RANGE) else {
            return true;
        };
        if condition.as_bytes().starts_with(b"W/") {
            return false;
        }
        if condition.as_bytes().starts_with(b"\"") {
            return self.etag.as_ref() == Some(condition);
        }
        let date = |value: &HeaderValue| httpdate::parse_http_date(value.to_str().ok()?).ok();
        date(condition)
            .is_some_and(|wanted| self.last_modified.as_ref().and_then(date) == Some(wanted))
    }

    /// Adds `ETag` and `Last-Modified` to the headers of a `200`, `206` or `304`
    /// (or of a content cache entry).
    pub(super) fn insert_into(&self, headers: &mut HeaderMap) {
        if let Some(value) = &self.etag {
            headers.insert(ETAG, value.clone());
        }
        if let Some(value) = &self.last_modified {
            headers.insert(LAST_MODIFIED, value.clone());
        }
    }
}

/// Appends `value` in lower-case hexadecimal, at least `width` digits.
fn push_hex(text: &mut String, value: u64, width: usize) {
    let digits = (64 - value.leading_zeros() as usize).div_ceil(4).max(width);
    for shift in (0..digits).rev() {
        let nibble = (value >> (shift * 4)) & 0xf;
        text.push(char::from(b"0123456789abcdef"[nibble as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};
    use std::time::Duration;

    fn validators(seconds: u64) -> Validators {
        let modified = UNIX_EPOCH + Duration::from_secs(seconds);
        Validators {
            modified: Some(modified),
            etag: Some(HeaderValue::from_static("\"abc\"")),
            last_modified: Some(HeaderValue::try_from(httpdate::fmt_http_date(modified)).unwrap()),
        }
    }

    fn request(pairs: &[(http::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_static(value)))
            .collect()
    }

    #[test]
    fn if_range_needs_the_same_strong_etag_or_the_exact_date() {
        // 1445412480 is Wed, 21 Oct 2015 07:28:00 GMT.
        let file = validators(1_445_412_480);
        let check =
            |condition: &'static str| file.if_range_passes(&request(&[(IF_RANGE, condition)]));
        assert!(file.if_range_passes(&HeaderMap::new()));
        assert!(check("\"abc\""));
        assert!(!check("\"abd\""));
        assert!(!check("W/\"abc\""));
        assert!(check("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert!(!check("Wed, 21 Oct 2015 07:28:01 GMT"));
        assert!(!check("not a date"));
    }

    #[test]
    fn hex_digits_are_padded_to_the_width_asked() {
        let hex = |value, width| {
            let mut text = String::new();
            push_hex(&mut text, value, width);
            text
        };
        assert_eq!(hex(0, 1), "0");
        assert_eq!(hex(0x1f, 1), "1f");
        assert_eq!(hex(0x1f, 8), "0000001f");
        assert_eq!(hex(u64::MAX, 1), "ffffffffffffffff");
        assert_eq!(hex(999_999_999, 8), "3b9ac9ff");
    }

    #[test]
    fn conditions_follow_the_order_of_rfc_9110() {
        let file = validators(1_445_412_480);
        let check = |pairs: &[(http::HeaderName, &'static str)]| file.check(&request(pairs));
        assert_eq!(check(&[]), Condition::Proceed);
        assert_eq!(check(&[(IF_NONE_MATCH, "\"abc\"")]), Condition::NotModified);
        assert_eq!(
            check(&[(IF_NONE_MATCH, "W/\"abc\"")]),
            Condition::NotModified
        );
        assert_eq!(
            check(&[(IF_NONE_MATCH, "\"x\", \"y\"")]),
            Condition::Proceed
        );
        assert_eq!(check(&[(IF_NONE_MATCH, "*")]), Condition::NotModified);
        assert_eq!(check(&[(IF_MATCH, "\"x\"")]), Condition::Failed);
        assert_eq!(check(&[(IF_MATCH, "\"abc\"")]), Condition::Proceed);
        let later = "Wed, 21 Oct 2015 07:28:01 GMT";
        let earlier = "Wed, 21 Oct 2015 07:27:59 GMT";
        assert_eq!(check(&[(IF_MODIFIED_SINCE, later)]), Condition::NotModified);
        assert_eq!(check(&[(IF_MODIFIED_SINCE, earlier)]), Condition::Proceed);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            check(&[(IF_NONE_MATCH, "\"x\""), (IF_MODIFIED_SINCE, later)]),
            Condition::Proceed
        );
        assert_eq!(check(&[(IF_UNMODIFIED_SINCE, earlier)]), Condition::Failed);
        assert_eq!(check(&[(IF_UNMODIFIED_SINCE, later)]), Condition::Proceed);
    }
}
