//! [`Connection`]: the facts about one client connection every request carries —
//! addresses, TLS, and the `user`, `authtype` and client address handlers set. The task
//! that serves the socket is in `serve.rs`; what its requests share, in
//! `pipeline/conn.rs`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::limits::Limits;
use crate::sync::lock;
use crate::tls::TlsInfo;
use crate::transport::Transport;

/// Facts about one connection, shared by all its requests.
#[derive(Debug)]
pub(crate) struct ConnectionInfo {
    pub(crate) id: u64,
    pub(crate) remote_addr: SocketAddr,
    /// The client's address: the peer's, unless a PROXY protocol header named
    /// another.
    pub(crate) client_addr: SocketAddr,
    pub(crate) local_addr: SocketAddr,
    pub(crate) tls: Option<TlsInfo>,
    /// The server's transport when the connection was accepted: a reload after that
    /// does not change its limits.
    pub(crate) transport: Arc<Transport>,
}

/// The connection a request arrived on, as handlers see it: its addresses, and the
/// `user` and `authtype` an authentication handler established.
///
/// Two addresses name the other end: [`remote_addr`](Connection::remote_addr) is the
/// socket's peer, which behind a load balancer is the balancer;
/// [`client_addr`](Connection::client_addr) is the client it speaks for, as the PROXY
/// protocol or a trusted `X-Forwarded-For` said (see
/// [`RealIp`](crate::handlers::RealIp)). Access control, rate limits and access logs
/// use the client address.
///
/// `user`, `authtype` and a client address set by a handler belong to the request,
/// not to the socket: every request on a keep-alive or HTTP/2 connection starts
/// without them, so one request's login (or forwarded address) never leaks into the
/// next.
pub struct Connection {
    info: Arc<ConnectionInfo>,
    auth: Mutex<PerRequest>,
}

/// What handlers set on the connection for one request.
#[derive(Debug, Default)]
struct PerRequest {
    user: Option<String>,
    authtype: Option<String>,
    /// Boxed: rarely set, and the exchange holding it is kept small (its size test).
    client_addr: Option<Box<SocketAddr>>,
}

impl Connection {
    pub(crate) fn new(info: Arc<ConnectionInfo>) -> Self {
        Self {
            info,
            auth: Mutex::default(),
        }
    }

    /// A number identifying the connection, unique within the server's lifetime.
    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// The address of the socket's peer: the client, or the proxy or load balancer
    /// in front of the server. See [`Connection::client_addr`].
    pub fn remote_addr(&self) -> SocketAddr {
        self.info.remote_addr
    }

    /// The client's address: the one a handler set for this request
    /// ([`Connection::set_client_addr`]), else the source a PROXY protocol header
    /// named ([`ServerBuilder::proxy_protocol`](crate::ServerBuilder::proxy_protocol)),
    /// else [`Connection::remote_addr`]. Its port is 0 when the source did not say
    /// (`X-Forwarded-For` names only an address).
    pub fn client_addr(&self) -> SocketAddr {
        lock(&self.auth)
            .client_addr
            .as_deref()
            .copied()
            .unwrap_or(self.info.client_addr)
    }

    /// Records the client's address for this request, as a Trans or Pre handler
    /// learns it from a proxy it trusts; the handlers after it, the access log, access
    /// control and rate limits then see it in [`Connection::client_addr`].
    ///
    /// ```
    /// use poco_httpd::{Outcome, Request, Response};
    ///
    /// // Behind a proxy on this host, which sends the client in `X-Client`.
    /// let from_proxy = |req: Request, _res: Response| {
    ///     let named = req.header_text("x-client").and_then(|ip| ip.parse().ok());
    ///     if let (true, Some(ip)) = (req.connection().remote_addr().ip().is_loopback(), named) {
    ///         req.connection().set_client_addr(std::net::SocketAddr::new(ip, 0));
    ///     }
    ///     Outcome::Ok
    /// };
    /// # fn assert_handler(_: impl poco_httpd::Handler) {}
    /// # assert_handler(from_proxy);
    /// ```
    pub fn set_client_addr(&self, addr: SocketAddr) {
        lock(&self.auth).client_addr = Some(Box::new(addr));
    }

    /// The server's address this connection was accepted on.
    pub fn local_addr(&self) -> SocketAddr {
        self.info.local_addr
    }

    /// What the TLS handshake settled, on an HTTPS connection.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.info.tls.as_ref()
    }

    /// The limits this connection was accepted with.
    pub(crate) fn limits(&self) -> &Limits {
        &self.info.transport.limits
    }

    /// The authenticated user name, once an authentication handler set one.
    pub fn user(&self) -> Option<String> {
        lock(&self.auth).user.clone()
    }

    /// Records the authenticated user name.
    pub fn set_user(&self, user: impl Into<String>) {
        lock(&self.auth).user = Some(user.into());
    }

    /// The authentication scheme that established [`Connection::user`], e.g. `Basic`.
    pub fn authtype(&self) -> Option<String> {
        lock(&self.auth).authtype.clone()
    }

    /// Records the authentication scheme.
    pub fn set_authtype(&self, authtype: impl Into<String>) {
        lock(&self.auth).authtype = Some(authtype.into());
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = lock(&self.auth);
        f.debug_struct("Connection")
            .field("id", &self.info.id)
            .field("remote_addr", &self.info.remote_addr)
            .field(
                "client_addr",
                &auth
                    .client_addr
                    .as_deref()
                    .copied()
                    .unwrap_or(self.info.client_addr),
            )
            .field("local_addr", &self.info.local_addr)
            .field("tls", &self.info.tls)
            .field("user", &auth.user)
            .field("authtype", &auth.authtype)
            .finish()
    }
}
