//! [`Listener`]: one listening socket of a server — an address to bind (IPv4, IPv6,
//! a host name, or a port alone for every interface) or a socket given ready (systemd
//! socket activation) — whether it speaks TLS, whether it only redirects to HTTPS, and
//! whether its connections start with a PROXY protocol header. [`BoundListener`] tells
//! what a bound one listens on; it goes with each connection accepted on it.
//!
//! An IPv6 address is bound IPv6-only, as nginx does, so `0.0.0.0:80` and `[::]:80`
//! can be listened on side by side. A port alone (`8080` or `:8080`) means every
//! interface, as Go's `:8080` does: `[::]` accepting IPv4 too, or `0.0.0.0` where the
//! machine has no IPv6.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;

use crate::Error;

/// How many connections the kernel queues before they are accepted (tokio's value).
const BACKLOG: i32 = 1024;

/// One socket a server listens on, given to
/// [`ServerBuilder::listener`](crate::ServerBuilder::listener).
///
/// ```
/// use poco_httpd::{Listener, Server};
///
/// let builder = Server::builder()
///     .tls("cert.pem", "key.pem")
///     .listener(Listener::new("0.0.0.0:443"))
///     .listener(Listener::new("[::]:443"))
///     .listener(Listener::new("0.0.0.0:80").redirect_to_https())
///     .listener(Listener::new(":8080").tls(false))
///     .listener(Listener::new("10.0.0.5:8443").proxy_protocol(true))
///     .content("/", "hello");
/// # drop(builder);
/// ```
#[derive(Debug)]
pub struct Listener {
    source: Source,
    tls: Option<bool>,
    redirect_to_https: bool,
    proxy_protocol: bool,
}

#[derive(Debug)]
enum Source {
    Address(String),
    Socket(std::net::TcpListener),
}

impl Listener {
    /// A listener on `addr`: `host:port` (`127.0.0.1:8000`, `[::1]:8000`,
    /// `localhost:8000`), or a port alone, `8000` or `:8000`, for every interface
    /// (IPv6 and IPv4). Port 0 picks a free port (see [`BoundServer::listeners`](crate::BoundServer::listeners)).
    /// It speaks TLS when the server has a certificate, unless [`tls`](Self::tls)
    /// says otherwise.
    pub fn new(addr: impl Into<String>) -> Self {
        Self::with_source(Source::Address(addr.into()))
    }

    /// A socket already bound and listening, such as one systemd passed (socket
    /// activation). It is served as it is: its address, options and backlog stay.
    pub fn from_std(listener: std::net::TcpListener) -> Self {
        Self::with_source(Source::Socket(listener))
    }

    fn with_source(source: Source) -> Self {
        Self {
            source,
            tls: None,
            redirect_to_https: false,
            proxy_protocol: false,
        }
    }

    /// Whether it speaks TLS: `true` needs a certificate ([`ServerBuilder::tls`](crate::ServerBuilder::tls));
    /// `false` serves plain HTTP even on a server that has one. Default: TLS exactly
    /// when the server has a certificate.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = Some(on);
        self
    }

    /// Answers every request on this (plain) listener with a `308 Permanent Redirect`
    /// to the same host, path and query over `https`, at the port of the server's
    /// first TLS listener (left out when it is 443, and 443 when there is none).
    /// Nothing else runs for those requests: no handler, no log.
    pub fn redirect_to_https(mut self) -> Self {
        self.redirect_to_https = true;
        self
    }

    /// Expect every connection on this listener to start with a PROXY protocol
    /// header (v1 text or v2 binary, as HAProxy, AWS and Google load balancers send
    /// it) and take the client's address from it:
    /// [`Connection::client_addr`](crate::Connection::client_addr), which access logs,
    /// access control, rate limits and `max_connections_per_ip` use. A connection that
    /// does not start with a valid header within the header read timeout is closed, so
    /// only turn this on for a listener that only a balancer sending one can reach.
    /// The header comes before the TLS handshake. Default: off. Like the listener
    /// itself, a reload cannot change it.
    pub fn proxy_protocol(mut self, on: bool) -> Self {
        self.proxy_protocol = on;
        self
    }

    /// Whether it redirects every request to HTTPS.
    pub(crate) fn redirects(&self) -> bool {
        self.redirect_to_https
    }

    /// The listener as a reload compares it: address, role and PROXY protocol.
    pub(crate) fn describe(&self) -> String {
        let role = match (self.tls, self.redirect_to_https) {
            (_, true) => " (redirect to https)",
            (Some(true), false) => " (tls)",
            (Some(false), false) => " (plain)",
            (None, false) => "",
        };
        let proxy = if self.proxy_protocol {
            " (proxy protocol)"
        } else {
            ""
        };
        format!("{self}{role}{proxy}")
    }

    /// Whether it will speak TLS on a server that has a certificate (`server_tls`) or
    /// not, refusing what cannot be served.
    pub(crate) fn speaks_tls(&self, server_tls: bool) -> Result<bool, Error> {
        let invalid = |reason| Error::InvalidListener {
            listener: self.to_string(),
            reason,
        };
        match (self.tls, self.redirect_to_https) {
            (Some(true), true) => Err(invalid(
                "a listener that redirects to HTTPS speaks plain HTTP; drop `tls(true)`",
            )),
            (Some(true), false) if !server_tls => Err(invalid(
                "it speaks TLS but the server has no certificate; add one with `tls(cert, key)`",
            )),
            (_, true) => Ok(false),
            (tls, false) => Ok(tls.unwrap_or(server_tls)),
        }
    }

    /// Opens the socket (a ready one is taken as it is).
    pub(crate) async fn bind(self, tls: bool) -> Result<BoundSocket, Error> {
        let name = self.to_string();
        let listen_error = |source| Error::Listen {
            addr: name.clone(),
            source,
        };
        let listener = match self.source {
            Source::Socket(socket) => socket
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(socket))
                .map_err(listen_error)?,
            Source::Address(addr) => bind_address(&addr).await?,
        };
        let local_addr = listener.local_addr().map_err(listen_error)?;
        Ok(BoundSocket {
            listener,
            info: BoundListener {
                local_addr,
                tls,
                redirects: self.redirect_to_https,
                proxy_protocol: self.proxy_protocol,
            },
        })
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Address(addr) => f.write_str(addr),
            Source::Socket(socket) => match socket.local_addr() {
                Ok(addr) => write!(f, "{addr} (a socket given ready)"),
                Err(_) => f.write_str("a socket given ready"),
            },
        }
    }
}

/// The port of `8080` or `:8080`, the forms that mean every interface.
fn port_alone(addr: &str) -> Option<u16> {
    addr.strip_prefix(':').unwrap_or(addr).parse().ok()
}

/// Binds `addr`: every interface for a port alone, else each address it resolves to
/// in turn until one binds.
async fn bind_address(addr: &str) -> Result<TcpListener, Error> {
    let listen_error = |source| Error::Listen {
        addr: addr.to_owned(),
        source,
    };
    if let Some(port) = port_alone(addr) {
        let dual = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        return match open(dual, false) {
            Ok(listener) => Ok(listener),
            // No IPv6 on this machine (a container, say): IPv4 alone.
            Err(_) => open(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), true),
        }
        .map_err(listen_error);
    }
    let candidates = tokio::net::lookup_host(addr)
        .await
        .map_err(|source| Error::Resolve {
            addr: addr.to_owned(),
            source,
        })?;
    let mut last_error = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
    for candidate in candidates {
        match open(candidate, true) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = error,
        }
    }
    Err(listen_error(last_error))
}

/// A listening socket on `addr`; an IPv6 one accepts IPv4 too unless `v6_only`.
fn open(addr: SocketAddr, v6_only: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(v6_only)?;
    }
    // As tokio's own `bind`: a restarted server can bind while old connections linger.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// A bound listener and what it is for.
#[derive(Debug)]
pub(crate) struct BoundSocket {
    pub(crate) listener: TcpListener,
    pub(crate) info: BoundListener,
}

/// What one of a running server's listeners listens on and how it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundListener {
    local_addr: SocketAddr,
    tls: bool,
    redirects: bool,
    proxy_protocol: bool,
}

impl BoundListener {
    /// The address bound, with the port the system chose for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether it speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether it answers every request with a redirect to HTTPS.
    pub fn redirects_to_https(&self) -> bool {
        self.redirects
    }

    /// Whether its connections start with a PROXY protocol header
    /// ([`Listener::proxy_protocol`]).
    pub fn expects_proxy_protocol(&self) -> bool {
        self.proxy_protocol
    }

    /// `https` or `http`, as its URLs start.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_means_every_interface() {
        assert_eq!(port_alone("8080"), Some(8080));
        assert_eq!(port_alone(":8080"), Some(8080));
        assert_eq!(port_alone("0.0.0.0:8080"), None);
        assert_eq!(port_alone("[::]:8080"), None);
        assert_eq!(port_alone("localhost:8080"), None);
    }

    #[test]
    fn tls_follows_the_server_unless_said() {
        let plain_server = false;
        assert_eq!(
            Listener::new(":1").speaks_tls(plain_server).ok(),
            Some(false)
        );
        assert_eq!(Listener::new(":1").speaks_tls(true).ok(), Some(true));
        assert_eq!(
            Listener::new(":1").tls(false).speaks_tls(true).ok(),
            Some(false)
        );
        assert!(
            Listener::new(":1")
                .tls(true)
                .speaks_tls(plain_server)
                .is_err()
        );
        let redirect = Listener::new(":1").redirect_to_https();
        assert_eq!(redirect.speaks_tls(true).ok(), Some(false));
        let both = Listener::new(":1").redirect_to_https().tls(true);
        assert!(both.speaks_tls(true).is_err());
    }

    #[tokio::test]
    async fn an_ipv6_address_is_bound_ipv6_only() {
        let Ok(listener) = open("[::1]:0".parse().expect("an address"), true) else {
            panic!("binding ::1 failed: this machine needs IPv6 on loopback");
        };
        let socket = socket2::SockRef::from(&listener);
        assert!(socket.only_v6().expect("IPV6_V6ONLY readable"));
    }
}
