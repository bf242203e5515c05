//! The `Host` rule of RFC 9112 §3.2: an HTTP/1.1 request must carry exactly one
//! `Host` header, and its value must be a valid `host[:port]` (RFC 3986 §3.2.2);
//! otherwise the server answers `400 Bad Request`, as nginx does. An absolute-form
//! request target still needs the header, but its own authority is the one used.
//!
//! The check runs on every HTTP/1 request, so it is cheap: the pipeline hands over
//! the `Host` fields it met while walking the head ([`HostFields`]), and a
//! connection remembers its last valid value ([`KnownHost`]), so a request that
//! repeats it (nearly every one) costs a comparison instead of a check.
//!
//! This module knows header fields and versions only, nothing of requests or servers.

use std::cell::Cell;

use http::header::{HOST, HeaderName};
use http::{HeaderValue, Version};

/// The `Host` fields of one request head, gathered while the pipeline walks the
/// head's fields once anyway (to measure it): no lookup of their own.
#[derive(Debug, Default)]
pub(crate) struct HostFields<'a> {
    first: Option<&'a HeaderValue>,
    count: usize,
}

impl<'a> HostFields<'a> {
    /// One field of the head; only `Host` fields are kept.
    pub(crate) fn see(&mut self, name: &HeaderName, value: &'a HeaderValue) {
        if name == HOST {
            self.first.get_or_insert(value);
            self.count += 1;
        }
    }

    /// What is wrong with them, if anything, for a request of `version`. A value
    /// equal to the one `known` remembers passed before and is not checked again;
    /// a new valid one is remembered instead.
    pub(crate) fn problem(
        &self,
        version: Version,
        known: Option<&KnownHost>,
    ) -> Option<&'static str> {
        // HTTP/2 carries the authority in `:authority`; HTTP/1.0 may leave `Host` out.
        if version >= Version::HTTP_2 {
            return None;
        }
        match (self.first, self.count) {
            (None, _) if version == Version::HTTP_11 => Some("an HTTP/1.1 request without Host"),
            (None, _) => None,
            (Some(_), 2..) => Some("more than one Host header"),
            (Some(host), _) => {
                let host = host.as_bytes();
                if known.is_some_and(|known| known.is(host)) {
                    return None;
                }
                if !is_valid_host(host) {
                    return Some("an invalid Host value");
                }
                if let Some(known) = known {
                    known.remember(host);
                }
                None
            }
        }
    }
}

/// The longest `Host` value a [`KnownHost`] remembers; longer ones (rare) are
/// checked on every request.
const KNOWN_HOST_BYTES: usize = 40;

/// The last valid `Host` value of one HTTP/1 connection, kept by the connection's
/// task: its requests nearly always repeat it, and comparing costs less than
/// checking again. Inline, so an idle connection holds no allocation for it.
#[derive(Debug, Clone)]
pub(crate) struct KnownHost {
    len: Cell<u8>,
    bytes: Cell<[u8; KNOWN_HOST_BYTES]>,
}

impl Default for KnownHost {
    fn default() -> Self {
        Self {
            len: Cell::new(0),
            bytes: Cell::new([0; KNOWN_HOST_BYTES]),
        }
    }
}

impl KnownHost {
    /// Whether `host` is the value remembered (an empty value never is).
    fn is(&self, host: &[u8]) -> bool {
        let len = usize::from(self.len.get());
        len != 0 && host.len() == len && self.bytes.get()[..len] == *host
    }

    /// Remembers `host`, which passed the check, if it fits.
    fn remember(&self, host: &[u8]) {
        let mut bytes = [0; KNOWN_HOST_BYTES];
        let (Some(slot), Ok(len)) = (bytes.get_mut(..host.len()), u8::try_from(host.len())) else {
            return;
        };
        slot.copy_from_slice(host);
        self.bytes.set(bytes);
        self.len.set(len);
    }
}

/// `host[:port]`: a bracketed IP literal, or a name (or IPv4 address) of unreserved,
/// percent-encoded and sub-delimiter characters, then an optional port of digits.
/// Empty is refused, as nginx does.
fn is_valid_host(value: &[u8]) -> bool {
    let port = match value.strip_prefix(b"[") {
        Some(literal) => {
            let Some(end) = literal.iter().position(|&b| b == b']') else {
                return false;
            };
            let (address, rest) = literal.split_at(end);
            if address.is_empty() || !address.iter().all(|&b| is_ip_literal_byte(b)) {
                return false;
            }
            &rest[1..]
        }
        None => {
            // One pass: name bytes up to the first `:` (checked per byte by table).
            let end = value
                .iter()
                .position(|&b| !NAME_BYTES[usize::from(b)])
                .unwrap_or(value.len());
            let (name, rest) = value.split_at(end);
            if name.is_empty() || !(rest.is_empty() || rest[0] == b':') {
                return false;
            }
            rest
        }
    };
    match port.strip_prefix(b":") {
        Some(digits) => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        None => port.is_empty(),
    }
}

/// Inside `[...]`: IPv6 (hex digits, `:`, a dotted IPv4 tail, a `%25` zone) or an
/// IPvFuture.
fn is_ip_literal_byte(byte: u8) -> bool {
    byte == b':' || NAME_BYTES[usize::from(byte)]
}

/// RFC 3986's reg-name bytes — unreserved, `%` of a percent-encoding,
/// sub-delimiters — as a table: the check runs on every HTTP/1.1 request.
static NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || is_listed(b, b"-._~%!$&'()*+,;=");
        byte += 1;
    }
    table
};

/// `const` form of `list.contains(&byte)`.
const fn is_listed(byte: u8, list: &[u8]) -> bool {
    let mut at = 0;
    while at < list.len() {
        if list[at] == byte {
            return true;
        }
        at += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use http::header::ACCEPT;

    use super::*;

    /// The problem `hosts` (as `Host` fields, among others) have for a request of
    /// `version`, checked without a connection's memory and then twice with one: a
    /// remembered value must get the same answer.
    fn check(version: Version, hosts: &[&str], expected: Option<&str>) {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        for host in hosts {
            headers.append(HOST, HeaderValue::from_str(host).expect("a header value"));
        }
        let fields = fields(&headers);
        let known = KnownHost::default();
        for memory in [None, Some(&known), Some(&known)] {
            assert_eq!(
                fields.problem(version, memory),
                expected,
                "{version:?} {hosts:?}"
            );
        }
    }

    fn fields(headers: &HeaderMap) -> HostFields<'_> {
        let mut fields = HostFields::default();
        for (name, value) in headers {
            fields.see(name, value);
        }
        fields
    }

    /// The problem of one `Host` value on an HTTP/1.1 request, with `known`.
    fn problem_with(known: &KnownHost, host: &str) -> Option<&'static str> {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).expect("a header value"));
        fields(&headers).problem(Version::HTTP_11, Some(known))
    }

    #[test]
    fn a_connection_remembers_its_last_valid_host_only() {
        let known = KnownHost::default();
        assert_eq!(problem_with(&known, "example.org:8080"), None);
        assert!(known.is(b"example.org:8080"));
        // A different value is checked, and refused if invalid, however close.
        let refused = Some("an invalid Host value");
        assert_eq!(problem_with(&known, "example.org:8080x"), refused);
        assert_eq!(problem_with(&known, "example.org:808"), None);
        assert!(known.is(b"example.org:808") && !known.is(b"example.org:8080"));
        // One too long to remember is checked every time.
        let long = format!("{}.example", "a".repeat(KNOWN_HOST_BYTES));
        assert_eq!(problem_with(&known, &long), None);
        assert!(known.is(b"example.org:808") && !known.is(long.as_bytes()));
        assert_eq!(problem_with(&known, &format!("{long}/")), refused);
        // Nothing is known at first, not even the empty value.
        assert!(!KnownHost::default().is(b""));
    }

    #[test]
    fn valid_hosts_pass() {
        for host in [
            "example.org",
            "example.org:8080",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8000",
            "[fe80::1%25eth0]",
            "xn--bcher-kva.example",
            "localhost:",
        ] {
            check(Version::HTTP_11, &[host], None);
        }
    }

    #[test]
    fn invalid_hosts_are_refused() {
        for host in [
            "",
            "a b/c",
            "a/b",
            "user@example.org",
            "example.org:80:80",
            "example.org:port",
            "example.org:123456",
            "[::1",
            "[]",
            "[::1]x",
            ":80",
            "a\\b",
        ] {
            check(Version::HTTP_11, &[host], Some("an invalid Host value"));
        }
    }

    #[test]
    fn http_1_1_needs_exactly_one_host() {
        check(
            Version::HTTP_11,
            &[],
            Some("an HTTP/1.1 request without Host"),
        );
        check(
            Version::HTTP_11,
            &["a", "b"],
            Some("more than one Host header"),
        );
        check(
            Version::HTTP_11,
            &["a", "a"],
            Some("more than one Host header"),
        );
    }

    #[test]
    fn http_1_0_may_omit_host_but_not_break_it() {
        check(Version::HTTP_10, &[], None);
        check(Version::HTTP_10, &["a b"], Some("an invalid Host value"));
        check(
            Version::HTTP_10,
            &["a", "b"],
            Some("more than one Host header"),
        );
    }

    #[test]
    fn http_2_is_left_to_its_authority() {
        check(Version::HTTP_2, &[], None);
    }
}
