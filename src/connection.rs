//! [`Connection`]: the facts about one client connection every request carries —
//! addresses, TLS, and the `user` and `authtype` authentication handlers set. The task
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
    pub(crate) local_addr: SocketAddr,
    pub(crate) tls: Option<TlsInfo>,
    /// The server's transport when the connection was accepted: a reload after that
    /// does not change its limits.
    pub(crate) transport: Arc<Transport>,
}

/// The connection a request arrived on, as handlers see it: its addresses, and the
/// `user` and `authtype` an authentication handler established.
///
/// `user` and `authtype` belong to the request, not to the socket: every request on a
/// keep-alive or HTTP/2 connection starts without them, so one request's login never
/// leaks into the next.
pub struct Connection {
    info: Arc<ConnectionInfo>,
    auth: Mutex<Auth>,
}

#[derive(Debug, Default)]
struct Auth {
    user: Option<String>,
    authtype: Option<String>,
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

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.info.remote_addr
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
            .field("local_addr", &self.info.local_addr)
            .field("tls", &self.info.tls)
            .field("user", &auth.user)
            .field("authtype", &auth.authtype)
            .finish()
    }
}
