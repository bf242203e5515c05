//! The `Host` rule of RFC 9112 §3.2: an HTTP/1.1 request must carry exactly one
//! `Host` header, and its value must be a valid `host[:port]` (RFC 3986 §3.2.2);
//! otherwise the server answers `400 Bad Request`, as nginx does. An absolute-form
//! request target still needs the header, but its own authority is the one used.
//!
//! This module knows header maps and versions only, nothing of requests or servers.

use http::header::HOST;
use http::{HeaderMap, Version};

/// What is wrong with the request's `Host` headers, if anything.
pub(crate) fn host_problem(version: Version, headers: &HeaderMap) -> Option<&'static str> {
    // HTTP/2 carries the authority in `:authority`; HTTP/1.0 may leave `Host` out.
    if version >= Version::HTTP_2 {
        return None;
    }
    // A head without repeated names (the common case) needs one lookup, not two.
    let repeated = headers.len() != headers.keys_len();
    let host = headers.get(HOST);
    let second = || headers.get_all(HOST).iter().nth(1);
    match (host, if repeated { second() } else { None }) {
        (None, _) if version == Version::HTTP_11 => Some("an HTTP/1.1 request without Host"),
        (None, _) => None,
        (Some(_), Some(_)) => Some("more than one Host header"),
        (Some(host), None) if !is_valid_host(host.as_bytes()) => Some("an invalid Host value"),
        (Some(_), None) => None,
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
    use http::HeaderValue;

    use super::*;

    fn check(version: Version, hosts: &[&str], expected: Option<&str>) {
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(HOST, HeaderValue::from_str(host).expect("a header value"));
        }
        assert_eq!(
            host_problem(version, &headers),
            expected,
            "{version:?} {hosts:?}"
        );
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
