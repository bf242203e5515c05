//! [`RealIp`]: the client's address behind proxies the server trusts, from
//! `X-Forwarded-For` (or another header listing addresses) or `Forwarded` (RFC 7239).

use std::net::{IpAddr, SocketAddr};

use http::header::FORWARDED;
use http::{HeaderName, HeaderValue};

use super::nets::{NetError, Nets};
use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Sets [`Connection::client_addr`](crate::Connection::client_addr) from a header
/// that proxies the server trusts write: install as a Trans handler (or a Pre
/// handler of `/`) so that everything after it — access control, rate limits, the
/// access log — sees the client rather than the proxy.
///
/// The header is believed only when the connection comes from a trusted address.
/// Each proxy appends the address it got the request from, so the list is read from
/// its end: trusted proxies are skipped, and the first address that is not one is the
/// client (nginx's `real_ip_recursive on`). If every address is trusted, the first is
/// taken; a value that is not an address (`unknown`, an obfuscated `Forwarded`
/// node) stops the walk at the proxy that wrote it. A client cannot pose as another by
/// sending the header itself: its own value ends up left of the address the first
/// trusted proxy appended, which is where the walk stops.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::RealIp;
///
/// let behind_balancer = RealIp::new().trust("10.0.0.0/8")?;
/// let builder = Server::builder().trans(behind_balancer).content("/", "hello\n");
/// # drop(builder);
/// # Ok::<(), poco_httpd::handlers::NetError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RealIp {
    trusted: Nets<()>,
    header: HeaderName,
}

impl Default for RealIp {
    fn default() -> Self {
        Self::new()
    }
}

impl RealIp {
    /// Reads `X-Forwarded-For`, trusting no one until [`RealIp::trust`] is called.
    pub fn new() -> Self {
        Self {
            trusted: Nets::default(),
            header: HeaderName::from_static("x-forwarded-for"),
        }
    }

    /// Trusts the proxies at `net`: an address, a CIDR network, or `all`.
    ///
    /// # Errors
    /// When `net` is none of those.
    pub fn trust(mut self, net: &str) -> Result<Self, NetError> {
        self.trusted.add(net, ())?;
        Ok(self)
    }

    /// The header to read: `X-Forwarded-For` (the default) or any header listing
    /// addresses separated by commas (`X-Real-IP`), or `Forwarded`, whose `for=`
    /// parameters are read.
    pub fn header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.lookup(ip).is_some()
    }

    /// The client's address for a request from `peer` carrying `values` of the header.
    fn client<'a>(
        &self,
        peer: SocketAddr,
        values: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    ) -> Option<SocketAddr> {
        if !self.is_trusted(peer.ip()) {
            return None;
        }
        let forwarded = self.header == FORWARDED;
        // A value that is not text reads as an empty hop, which ends the walk: skipped,
        // it would let the addresses left of it, which a client may have written,
        // pass for what a trusted proxy appended.
        let texts = values.map(|value| value.to_str().unwrap_or(""));
        let hops = texts.rev().flat_map(|value| value.rsplit(','));
        let mut client = None;
        for hop in hops {
            let parsed = if forwarded {
                forwarded_for(hop)
            } else {
                node(hop.trim())
            };
            let Some(addr) = parsed else { break };
            client = Some(addr);
            if !self.is_trusted(addr.ip()) {
                break;
            }
        }
        client
    }
}

/// The `for=` node of one `Forwarded` element (`for=192.0.2.1;proto=https`).
fn forwarded_for(element: &str) -> Option<SocketAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        node(value.trim().trim_matches('"'))
    })
}

/// An address, with or without a port: `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:80`. Port 0 when none is given.
fn node(text: &str) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip.to_canonical(), 0));
    }
    if let Some(bracketed) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let ip: IpAddr = bracketed.parse().ok()?;
        return Some(SocketAddr::new(ip.to_canonical(), 0));
    }
    let addr: SocketAddr = text.parse().ok()?;
    Some(SocketAddr::new(addr.ip().to_canonical(), addr.port()))
}

impl Handler for RealIp {
    fn call(&self, request: Request, _response: Response) -> HandlerFuture {
        let connection = request.connection();
        let values = request.headers().get_all(&self.header);
        if let Some(client) = self.client(connection.client_addr(), values.iter()) {
            connection.set_client_addr(client);
        }
        HandlerFuture::ready(Outcome::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(real_ip: &RealIp, peer: &str, values: &[&str]) -> Option<String> {
        let values: Vec<HeaderValue> = values
            .iter()
            .map(|value| HeaderValue::from_str(value).expect("a header value"))
            .collect();
        client_of(real_ip, peer, &values)
    }

    fn client_of(real_ip: &RealIp, peer: &str, values: &[HeaderValue]) -> Option<String> {
        let peer = SocketAddr::new(peer.parse().expect("peer"), 1234);
        let found = real_ip.client(peer, values.iter());
        found.map(|addr| addr.to_string())
    }

    #[test]
    fn a_value_that_is_not_text_ends_the_walk() {
        let real_ip = RealIp::new().trust("10.0.0.0/8").expect("valid");
        // The client wrote both lines; a proxy appending to the last one made it
        // `\xff, <the client>`. Skipping that line would take the spoofed address.
        let values = [
            HeaderValue::from_static("198.51.100.66"),
            HeaderValue::from_bytes(b"\xff, 203.0.113.5").expect("obs-text is allowed"),
        ];
        assert_eq!(client_of(&real_ip, "10.0.0.1", &values), None);
        let behind_it = [
            HeaderValue::from_bytes(b"\xff").expect("obs-text is allowed"),
            HeaderValue::from_static("203.0.113.5"),
        ];
        assert_eq!(
            client_of(&real_ip, "10.0.0.1", &behind_it).as_deref(),
            Some("203.0.113.5:0")
        );
    }

    #[test]
    fn the_first_untrusted_address_from_the_right_is_the_client() {
        let real_ip = RealIp::new().trust("10.0.0.0/8").expect("valid");
        let chain = ["203.0.113.9, 198.51.100.4", "10.0.0.7"];
        assert_eq!(
            client(&real_ip, "10.0.0.1", &chain).as_deref(),
            Some("198.51.100.4:0")
        );
        assert_eq!(
            client(&real_ip, "192.0.2.1", &chain),
            None,
            "untrusted peer"
        );
        let all_trusted = ["10.1.1.1, 10.2.2.2"];
        assert_eq!(
            client(&real_ip, "10.0.0.1", &all_trusted).as_deref(),
            Some("10.1.1.1:0")
        );
        let garbage = ["evil, 10.2.2.2"];
        assert_eq!(
            client(&real_ip, "10.0.0.1", &garbage).as_deref(),
            Some("10.2.2.2:0")
        );
        assert_eq!(client(&real_ip, "10.0.0.1", &[]), None);
    }

    #[test]
    fn forwarded_nodes_are_read_with_ports_and_brackets() {
        let real_ip = RealIp::new()
            .trust("127.0.0.1")
            .expect("valid")
            .header(FORWARDED);
        let values = [r#"for=192.0.2.60;proto=http, For="[2001:db8:cafe::17]:4711""#];
        assert_eq!(
            client(&real_ip, "127.0.0.1", &values).as_deref(),
            Some("[2001:db8:cafe::17]:4711")
        );
        let hidden = ["for=192.0.2.60, for=_hidden"];
        assert_eq!(client(&real_ip, "127.0.0.1", &hidden), None);
    }
}
