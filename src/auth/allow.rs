//! `--allow` address ranges: parsing CIDR text strictly, and matching a
//! client address (IPv4-mapped IPv6 clients as IPv4) against a route's list.
//!
//! Kept by hand rather than `ipnet` or `cidr`: ipnet takes `192.168.1.5/24`
//! host bits and all, neither turns a mapped range (`::ffff:10.0.0.0/104`)
//! into the IPv4 range it means nor words its errors for the command line,
//! and what they would replace is the 20-line `mask`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One `--allow` range: an address with a prefix length, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `192.168.0.0/16`, `10.1.2.3` (one address), `2001:db8::/32`, `::1`.
    /// IPv4-mapped IPv6 ranges (`::ffff:10.0.0.0/104`) become IPv4 ranges, as
    /// mapped clients are matched as IPv4. Host bits must be zero, so that
    /// `192.168.1.5/24` is not taken for one address or for the network by
    /// guess.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            format!(
                "{text:?}: expected an address or ADDRESS/PREFIX, e.g. 192.168.1.0/24, \
                 10.1.2.3, 2001:db8::/32"
            )
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        let cidr = match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Cidr {
                    addr: IpAddr::V4(v4),
                    prefix: prefix - 96,
                },
                None => Cidr { addr, prefix },
            },
            _ => Cidr { addr, prefix },
        };
        let masked = mask(cidr.addr, cidr.prefix);
        if masked != cidr.addr {
            return Err(format!(
                "{text:?} has bits set past the prefix: write {masked}/{} for the network, \
                 or {addr_text} alone for one address",
                cidr.prefix
            ));
        }
        Ok(cidr)
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length, at most 32 for IPv4 and 128 for IPv6.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            // Saturating: a prefix past the width keeps every bit.
            let bits = u32::MAX
                .checked_shl(32u32.saturating_sub(prefix.into()))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & bits))
        }
        IpAddr::V6(v6) => {
            let bits = u128::MAX
                .checked_shl(128u32.saturating_sub(prefix.into()))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & bits))
        }
    }
}

/// The `--allow` list of a route. Empty means no restriction (no `--allow`
/// given); otherwise a client must be inside at least one range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allow {
    ranges: Vec<Cidr>,
}

impl Allow {
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Allow, String> {
        let ranges = specs
            .iter()
            .map(|s| Cidr::parse(s.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Allow { ranges })
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, in the order given (a route written back as text shows
    /// them; the fuzz property checks them one by one).
    pub fn ranges(&self) -> &[Cidr] {
        &self.ranges
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.ranges.is_empty() || self.ranges.iter().any(|r| r.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_forms() {
        let cases = [
            ("192.168.0.0/16", "192.168.0.0/16"),
            ("10.1.2.3", "10.1.2.3/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::1", "::1/128"),
            ("::/0", "::/0"),
            (" 10.0.0.0/8 ", "10.0.0.0/8"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:1.2.3.4", "1.2.3.4/32"),
        ];
        for (text, shown) in cases {
            assert_eq!(Cidr::parse(text).unwrap().to_string(), shown, "{text}");
        }
    }

    #[test]
    fn cidr_errors() {
        let cases = [
            ("192.168.1.5/24", "192.168.1.0/24"),
            ("2001:db8::1/32", "2001:db8::/32"),
            ("10.0.0.0/33", "0 to 32"),
            ("::/129", "0 to 128"),
            ("10.0.0.0/", "0 to 32"),
            ("10.0.0.0/+8", "0 to 32"),
            ("10.0.0.0/8/8", "0 to 32"),
            ("10.0.0", "expected an address"),
            ("camera.lan", "expected an address"),
            ("fe80::1%eth0", "expected an address"),
            ("", "expected an address"),
        ];
        for (text, needle) in cases {
            let e = Cidr::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let e = Allow::parse(&["10.0.0.0/8", "bogus"]).unwrap_err();
        assert!(
            e.starts_with("\"bogus\"") && e.contains("expected an address"),
            "{e}"
        );
    }

    #[test]
    fn allow_matches_ranges_and_mapped_clients() {
        let allow = Allow::parse(&["192.168.0.0/16", "10.1.2.3", "2001:db8::/32", "::1"]).unwrap();
        for yes in [
            "192.168.0.1",
            "192.168.255.255",
            "10.1.2.3",
            "::ffff:192.168.7.7",
            "::ffff:10.1.2.3",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "::1",
        ] {
            assert!(allow.allows(ip(yes)), "{yes}");
        }
        for no in [
            "192.169.0.1",
            "10.1.2.4",
            "127.0.0.1",
            "::ffff:10.1.2.4",
            "2001:db9::1",
            "::2",
            "8.8.8.8",
        ] {
            assert!(!allow.allows(ip(no)), "{no}");
        }
        // ::1 is not the IPv4 address 0.0.0.1, and IPv6 ranges never take in
        // IPv4 clients.
        let v4 = Allow::parse(&["0.0.0.0/8"]).unwrap();
        assert!(!v4.allows(ip("::1")));
        assert!(v4.allows(ip("0.0.0.1")));
        let v6 = Allow::parse(&["::/0"]).unwrap();
        assert!(!v6.allows(ip("::ffff:1.2.3.4")));
        assert!(v6.allows(ip("2001:db8::1")));
        // Mapped ranges do take them in.
        let mapped = Allow::parse(&["::ffff:0:0/96"]).unwrap();
        assert!(mapped.allows(ip("1.2.3.4")) && mapped.allows(ip("::ffff:1.2.3.4")));
        // No --allow: everyone.
        let none = Allow::parse::<&str>(&[]).unwrap();
        assert!(none.is_empty() && none.allows(ip("8.8.8.8")) && none.allows(ip("::1")));
    }
}
