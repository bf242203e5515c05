//! [`Nets`]: a set of IP networks written as nginx writes them — an address
//! (`192.0.2.7`, `2001:db8::1`), a CIDR network (`10.0.0.0/8`, `2001:db8::/32`) or
//! `all` — matched by longest prefix; [`NetError`] for what does not parse.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

/// Why an address or network given to [`AccessControl`](super::AccessControl),
/// [`RealIp`](super::RealIp) or the config file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{written:?} is not an IP address or network; write 192.0.2.7, 10.0.0.0/8, 2001:db8::/32 or all"
)]
pub struct NetError {
    written: String,
}

/// Networks, each with a value; a lookup finds the most specific network holding an
/// address.
#[derive(Debug, Clone)]
pub(crate) struct Nets<T> {
    entries: Vec<(IpNet, T)>,
}

impl<T> Default for Nets<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T: Copy> Nets<T> {
    /// Adds `written` (an address, a CIDR network, or `all`: every IPv4 and IPv6
    /// address) with `value`.
    pub(crate) fn add(&mut self, written: &str, value: T) -> Result<(), NetError> {
        for net in parse(written)? {
            self.entries.push((net, value));
        }
        Ok(())
    }

    /// The value of the longest network holding `ip`; among equally long ones, the
    /// first added. An IPv4 address mapped into IPv6 is looked up as IPv4.
    pub(crate) fn lookup(&self, ip: IpAddr) -> Option<T> {
        let ip = ip.to_canonical();
        let mut best: Option<(u8, T)> = None;
        for (net, value) in &self.entries {
            if net.contains(&ip) && best.is_none_or(|(length, _)| net.prefix_len() > length) {
                best = Some((net.prefix_len(), *value));
            }
        }
        best.map(|(_, value)| value)
    }

    /// Moves the entries of `other` after these.
    pub(crate) fn add_all(&mut self, other: &mut Self) {
        self.entries.append(&mut other.entries);
    }
}

/// The networks `written` names (two for `all`).
fn parse(written: &str) -> Result<Vec<IpNet>, NetError> {
    let written = written.trim();
    if written == "all" {
        let v4: IpNet = "0.0.0.0/0".parse().map_err(|_| error(written))?;
        let v6: IpNet = "::/0".parse().map_err(|_| error(written))?;
        return Ok(vec![v4, v6]);
    }
    if let Ok(ip) = written.parse::<IpAddr>() {
        return Ok(vec![IpNet::from(ip.to_canonical())]);
    }
    // `trunc`: `10.1.2.3/8` means the network `10.0.0.0/8`, as nginx reads it.
    let net: IpNet = written.parse().map_err(|_| error(written))?;
    Ok(vec![canonical(net.trunc())])
}

/// An IPv6 network of IPv4-mapped addresses (`::ffff:10.0.0.0/104`) as the IPv4
/// network it is (`10.0.0.0/8`): addresses are looked up canonical, so as written it
/// would never hold one.
fn canonical(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && let Some(length) = v6.prefix_len().checked_sub(96)
        && let Ok(v4) = Ipv4Net::new(v4, length)
    {
        return IpNet::V4(v4);
    }
    net
}

fn error(written: &str) -> NetError {
    NetError {
        written: written.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn the_longest_network_wins() {
        let mut nets = Nets::default();
        nets.add("all", 'a').expect("all");
        nets.add("10.0.0.0/8", 'b').expect("v4 net");
        nets.add("10.1.2.3", 'c').expect("v4 address");
        nets.add("2001:db8::/32", 'd').expect("v6 net");
        assert_eq!(nets.lookup(ip("192.0.2.1")), Some('a'));
        assert_eq!(nets.lookup(ip("10.9.9.9")), Some('b'));
        assert_eq!(nets.lookup(ip("10.1.2.3")), Some('c'));
        assert_eq!(nets.lookup(ip("::ffff:10.1.2.3")), Some('c'));
        assert_eq!(nets.lookup(ip("2001:db8::5")), Some('d'));
        assert_eq!(nets.lookup(ip("2001:db9::5")), Some('a'));
    }

    #[test]
    fn a_network_of_ipv4_mapped_addresses_holds_the_ipv4_ones() {
        let mut nets = Nets::default();
        nets.add("::ffff:10.0.0.0/104", 'm').expect("mapped net");
        nets.add("::ffff:192.0.2.7", 'a').expect("mapped address");
        assert_eq!(nets.lookup(ip("10.1.2.3")), Some('m'));
        assert_eq!(nets.lookup(ip("::ffff:10.1.2.3")), Some('m'));
        assert_eq!(nets.lookup(ip("192.0.2.7")), Some('a'));
        assert_eq!(nets.lookup(ip("11.0.0.1")), None);
        // Shorter than /96 it is an IPv6 network; IPv4 clients are not in it.
        nets.add("::/8", 'v').expect("v6 net");
        assert_eq!(nets.lookup(ip("172.16.0.1")), None);
        assert_eq!(nets.lookup(ip("::1")), Some('v'));
    }

    #[test]
    fn bad_networks_are_refused_with_examples() {
        let mut nets = Nets::default();
        for bad in ["10.0.0.0/33", "example.org", "", "10.0.0"] {
            let error = nets.add(bad, ()).expect_err("refused").to_string();
            assert!(error.contains("write 192.0.2.7, 10.0.0.0/8"), "{error}");
        }
        assert_eq!(nets.lookup(ip("10.0.0.1")), None);
    }
}
