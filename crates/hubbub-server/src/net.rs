//! Client addresses: CIDR blocks, the trusted-proxy rule for
//! `X-Forwarded-For`, and the key an address is rate-limited under.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// An address block (`10.0.0.0/8`, `::1`, `2001:db8::/32`): the form
/// `server.trusted_proxies` is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `addr` or `addr/prefix`; `None` when either part is invalid.
    pub fn parse(s: &str) -> Option<IpNet> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(IpNet { addr, prefix })
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The address of the real client: the peer itself, unless the peer is a
/// trusted proxy, in which case the right-most `X-Forwarded-For` entry
/// that is not itself a trusted proxy (entries further left are written
/// by the client and prove nothing). The port is the peer's when the peer
/// is the client, else 0.
pub fn client_addr(peer: SocketAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> SocketAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if trusted.is_empty() || !is_trusted(peer.ip()) {
        return peer;
    }
    let Some(list) = forwarded_for else {
        return peer;
    };
    let mut client = None;
    for entry in list.rsplit(',') {
        let Some(ip) = parse_forwarded_entry(entry) else {
            // Garbage from here on leftwards: stop at the last good hop.
            break;
        };
        client = Some(ip);
        if !is_trusted(ip) {
            break;
        }
    }
    match client {
        Some(ip) => SocketAddr::new(ip.to_canonical(), 0),
        None => peer,
    }
}

/// One `X-Forwarded-For` entry: an address, possibly bracketed or with a port.
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = e.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    e.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse().ok())
}

/// What a client address is rate-limited under: IPv4 addresses as they
/// are, IPv6 addresses by their /64 (one subscriber's usual allocation, so
/// rotating through it does not multiply the allowance).
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let masked = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(masked))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.200.1.1")));
        assert!(n.contains(ip("::ffff:10.1.1.1")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(!n.contains(ip("::1")));
        let one = IpNet::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        let all = IpNet::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let v6 = IpNet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::5")));
        for bad in ["", "10.0.0.0/33", "::/129", "x", "10.0.0.0/", "10.0.0/8"] {
            assert!(IpNet::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted = [
            IpNet::parse("127.0.0.1").unwrap(),
            IpNet::parse("10.0.0.0/8").unwrap(),
        ];
        let proxy: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let stranger: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        // Not from a proxy: the header is ignored.
        assert_eq!(client_addr(stranger, Some("1.2.3.4"), &trusted), stranger);
        // No proxies configured: ignored.
        assert_eq!(client_addr(proxy, Some("1.2.3.4"), &[]), proxy);
        // From a proxy: the right-most untrusted entry.
        assert_eq!(
            client_addr(proxy, Some("6.6.6.6, 1.2.3.4, 10.1.1.1"), &trusted).ip(),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_addr(proxy, Some("[2001:db8::1]:443"), &trusted).ip(),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_addr(proxy, Some("1.2.3.4:80"), &trusted).ip(),
            ip("1.2.3.4")
        );
        // Garbage: the peer.
        assert_eq!(client_addr(proxy, Some("nonsense"), &trusted), proxy);
        assert_eq!(client_addr(proxy, None, &trusted), proxy);
        // Every hop trusted: the left-most.
        assert_eq!(
            client_addr(proxy, Some("10.0.0.9, 10.0.0.8"), &trusted).ip(),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(rate_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(rate_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
