//! Who may ask: [`AccessControl`], a Pre handler allowing or denying client addresses
//! by IP and CIDR network, and [`RealIp`], which finds the client's address behind
//! proxies the server trusts (`X-Forwarded-For`, `Forwarded`). Both read the address
//! a PROXY protocol header gave, if any, through
//! [`Connection::client_addr`](crate::Connection::client_addr).

mod nets;
mod real_ip;

use http::StatusCode;

pub use self::nets::NetError;
use self::nets::Nets;
pub use self::real_ip::RealIp;
use crate::{Handler, HandlerFuture, Outcome, Request, Response};

/// Whether a rule lets an address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Allow,
    Deny,
}

/// Allows or denies requests by the client's address, answering `403 Forbidden` to
/// those denied: install as a Pre handler of the directory to guard.
///
/// Each address or network is allowed or denied; the most specific one holding the
/// client's address decides (a single address beats `10.0.0.0/8`, which beats `all`;
/// between an allow and a deny of the same network, deny). An address no rule names
/// is let in — unless there are allow rules, which then list the only addresses let
/// in. So `allow("10.0.0.0/8")` alone means "only 10/8", and `deny("192.0.2.7")`
/// alone means "all but 192.0.2.7".
///
/// The address checked is [`Connection::client_addr`](crate::Connection::client_addr):
/// put [`RealIp`] in front when the server is behind a proxy.
///
/// ```
/// use poco_httpd::Server;
/// use poco_httpd::handlers::AccessControl;
///
/// let office = AccessControl::new()
///     .allow("10.0.0.0/8")?
///     .allow("2001:db8::/32")?
///     .deny("10.66.0.0/16")?;
/// let builder = Server::builder().pre("/admin/", office).content("/", "hello\n");
/// # drop(builder);
/// # Ok::<(), poco_httpd::handlers::NetError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct AccessControl {
    rules: Nets<Rule>,
    has_allow: bool,
}

impl AccessControl {
    /// No rules: everyone is let in until rules are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets in `net`: an address (`192.0.2.7`), a CIDR network (`10.0.0.0/8`) or
    /// `all`. Once any allow rule exists, addresses no rule names are denied.
    ///
    /// # Errors
    /// When `net` is none of those.
    pub fn allow(mut self, net: &str) -> Result<Self, NetError> {
        self.add(net, Rule::Allow)?;
        self.has_allow = true;
        Ok(self)
    }

    /// Denies `net`: an address, a CIDR network or `all`.
    ///
    /// # Errors
    /// When `net` is none of those.
    pub fn deny(mut self, net: &str) -> Result<Self, NetError> {
        self.add(net, Rule::Deny)?;
        Ok(self)
    }

    /// Adds a rule, a deny put before an allow of the same network so it wins the tie.
    fn add(&mut self, net: &str, rule: Rule) -> Result<(), NetError> {
        let mut added = Nets::default();
        added.add(net, rule)?;
        let mut rules = added;
        if rule == Rule::Allow {
            self.rules.add_all(&mut rules);
        } else {
            rules.add_all(&mut self.rules);
            self.rules = rules;
        }
        Ok(())
    }

    /// Whether a client at `ip` is let in.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        match self.rules.lookup(ip) {
            Some(rule) => rule == Rule::Allow,
            None => !self.has_allow,
        }
    }
}

impl Handler for AccessControl {
    fn call(&self, request: Request, response: Response) -> HandlerFuture {
        let client = request.connection().client_addr();
        let outcome = if self.allows(client.ip()) {
            Outcome::Ok
        } else {
            tracing::debug!(%client, path = request.path(), "access denied by address");
            response.deny(StatusCode::FORBIDDEN)
        };
        HandlerFuture::ready(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(control: &AccessControl, ip: &str) -> bool {
        control.allows(ip.parse().expect("an address"))
    }

    #[test]
    fn allow_rules_list_the_only_addresses_let_in() {
        let control = AccessControl::new().allow("10.0.0.0/8").expect("valid");
        assert!(allows(&control, "10.1.2.3"));
        assert!(!allows(&control, "192.0.2.1"));
        assert!(!allows(&control, "::1"));
    }

    #[test]
    fn deny_rules_alone_let_the_rest_in() {
        let control = AccessControl::new().deny("192.0.2.7").expect("valid");
        assert!(!allows(&control, "192.0.2.7"));
        assert!(allows(&control, "192.0.2.8"));
    }

    #[test]
    fn the_most_specific_rule_decides_and_deny_wins_a_tie() {
        let control = AccessControl::new()
            .deny("all")
            .and_then(|c| c.allow("10.0.0.0/8"))
            .and_then(|c| c.deny("10.66.0.0/16"))
            .and_then(|c| c.allow("10.66.0.1"))
            .and_then(|c| c.allow("192.0.2.0/24"))
            .and_then(|c| c.deny("192.0.2.0/24"))
            .expect("valid");
        assert!(!allows(&control, "172.16.0.1"));
        assert!(allows(&control, "10.1.1.1"));
        assert!(!allows(&control, "10.66.3.3"));
        assert!(allows(&control, "10.66.0.1"));
        assert!(!allows(&control, "192.0.2.9"));
    }
}
