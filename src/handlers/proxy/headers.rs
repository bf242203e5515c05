//! The header rules of a proxy: hop-by-hop headers removed both ways (RFC 9110
//! §7.6.1, including every header the `Connection` header names), and the headers
//! that tell the upstream who asked — `X-Forwarded-For`, `-Proto`, `-Host`,
//! `Forwarded` (RFC 7239) — and `Via`, which names the proxy.

use std::net::{IpAddr, SocketAddr};

use smallvec::SmallVec;

use crate::http::Version;
use crate::http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, never forwarded. `Proxy-Authorization`
/// and `Proxy-Authenticate` are meant for this proxy, not the server behind it.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes the hop-by-hop headers from `headers`: the fixed list and every name the
/// `Connection` header lists. One look at each name finds those present, so only
/// they are hashed and removed (most messages carry none, or just `Connection`).
pub(super) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let present: SmallVec<[HeaderName; 4]> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(name))
        .cloned()
        .collect();
    if present.is_empty() {
        return;
    }
    // The lists are copied (shared bytes) so the names they hold can be removed.
    let lists: SmallVec<[HeaderValue; 2]> = headers
        .get_all(header::CONNECTION)
        .iter()
        .cloned()
        .collect();
    let named = lists
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    for token in named {
        headers.remove(token);
    }
    for name in &present {
        headers.remove(name);
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Who asked, as the forwarding headers tell it.
#[derive(Debug)]
pub(super) struct Client<'a> {
    pub(super) addr: SocketAddr,
    pub(super) https: bool,
    pub(super) host: &'a str,
    /// `host` as a header value; `None` when it is not a valid one.
    pub(super) host_value: Option<HeaderValue>,
    pub(super) version: Version,
}

/// Adds `X-Forwarded-For` (the client's address after any the request carried),
/// `X-Forwarded-Proto`, `X-Forwarded-Host`, `Via`, and with `forwarded` an RFC 7239
/// `Forwarded` element.
pub(super) fn add_forwarding(headers: &mut HeaderMap, client: &Client<'_>, forwarded: bool) {
    let ip = client.addr.ip();
    let earlier = joined(headers, X_FORWARDED_FOR.as_str());
    let chain = match earlier {
        Some(earlier) => format!("{earlier}, {ip}"),
        None => ip_text(ip),
    };
    if let Ok(chain) = HeaderValue::try_from(chain) {
        headers.insert(X_FORWARDED_FOR, chain);
    }
    let proto = HeaderValue::from_static(scheme(client));
    headers.insert(X_FORWARDED_PROTO, proto);
    if let Some(host) = client.host_value.clone() {
        headers.insert(X_FORWARDED_HOST, host);
    }
    if forwarded {
        let element = format!(
            "for={};proto={};host={}",
            node(ip),
            scheme(client),
            quoted(client.host)
        );
        append(headers, header::FORWARDED.as_str(), &element);
    }
    add_via(headers, client.version);
}

/// Appends this proxy to `Via`, with the protocol version of the message received.
pub(super) fn add_via(headers: &mut HeaderMap, received: Version) {
    let this = match received {
        Version::HTTP_09 => "0.9 poco-httpd",
        Version::HTTP_10 => "1.0 poco-httpd",
        Version::HTTP_2 => "2 poco-httpd",
        Version::HTTP_3 => "3 poco-httpd",
        _ => "1.1 poco-httpd",
    };
    if headers.contains_key(header::VIA) {
        append(headers, header::VIA.as_str(), this);
    } else {
        headers.insert(header::VIA, HeaderValue::from_static(this));
    }
}

/// `ip` as text. IPv4 digits are written directly: through `Display` the
/// formatting machinery cost more than the rest of the forwarding headers together.
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (index, octet) in v4.octets().into_iter().enumerate() {
        if index > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

fn scheme(client: &Client<'_>) -> &'static str {
    if client.https { "https" } else { "http" }
}

/// RFC 7239 §6: an IPv6 node is bracketed and quoted.
fn node(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

/// A `Forwarded` value: a token as is, anything else quoted (a host with a port has
/// a colon, which a token may not contain).
fn quoted(value: &str) -> String {
    let token = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if token {
        value.to_owned()
    } else {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }
}

/// Every value of `name`, joined by commas.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// Adds `value` to the list in `name`, as one header line.
fn append(headers: &mut HeaderMap, name: &'static str, value: &str) {
    let list = match joined(headers, name) {
        Some(earlier) => format!("{earlier}, {value}"),
        None => value.to_owned(),
    };
    set(headers, name, &list);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn an_address_is_written_as_display_writes_it() {
        for text in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "192.168.9.99",
            "::1",
        ] {
            let ip: IpAddr = text.parse().expect("address");
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut map = headers(&[
            ("connection", "keep-alive, X-Secret"),
            ("connection", "x-other"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("x-other", "2"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic eA=="),
            ("x-kept", "3"),
            ("content-type", "text/plain"),
        ]);
        remove_hop_by_hop(&mut map);
        let left: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-kept", "content-type"]);
    }

    #[test]
    fn forwarding_headers_extend_what_came_in() {
        let mut map = headers(&[("x-forwarded-for", "10.0.0.1"), ("via", "1.0 edge")]);
        let client = Client {
            addr: "[::1]:5000".parse().expect("addr"),
            https: true,
            host: "example.org:8443",
            host_value: Some(HeaderValue::from_static("example.org:8443")),
            version: Version::HTTP_2,
        };
        add_forwarding(&mut map, &client, true);
        let get = |name: &str| map.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(get("x-forwarded-for"), "10.0.0.1, ::1");
        assert_eq!(get("x-forwarded-proto"), "https");
        assert_eq!(get("x-forwarded-host"), "example.org:8443");
        assert_eq!(
            get("forwarded"),
            "for=\"[::1]\";proto=https;host=\"example.org:8443\""
        );
        assert_eq!(get("via"), "1.0 edge, 2 poco-httpd");
    }
}
