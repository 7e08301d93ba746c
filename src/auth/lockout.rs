//! The lockout of client addresses that keep failing to log in, in a table
//! of bounded size.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// When failed logins lock an address out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that block an address...
    pub max_failures: u32,
    /// ...when they fall within this long of the first one.
    pub window: Duration,
    /// How long a blocked address is refused.
    pub block: Duration,
    /// Most addresses tracked at once: the table's memory is bounded by this
    /// (at most about 130 bytes an entry with the hash table's spare room, so
    /// 130 KiB at 1024), however many addresses an attacker has.
    pub capacity: usize,
}

impl Default for LockoutPolicy {
    /// 5 failures in 60 s block for 5 minutes; 1024 addresses tracked. A
    /// guesser gets at most 5 tries per 5 minutes per address (1,440 a
    /// day), and at most 5 slow verifications of CPU per address per block.
    fn default() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 5,
            window: Duration::from_secs(60),
            block: Duration::from_secs(300),
            capacity: 1024,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Strikes {
    failures: u32,
    first: Instant,
    blocked_until: Option<Instant>,
}

impl Strikes {
    /// Nothing left to remember: not blocked, and the window has passed.
    fn stale(&self, now: Instant, policy: &LockoutPolicy) -> bool {
        match self.blocked_until {
            Some(until) => now >= until,
            None => now.duration_since(self.first) >= policy.window,
        }
    }
}

/// Failed logins per client address. IPv6 clients are counted per /64, the
/// block a single home or host is given, so that rotating through one's own
/// addresses does not reset the count; mapped IPv4 counts as IPv4.
#[derive(Debug)]
pub struct Lockout {
    policy: LockoutPolicy,
    table: HashMap<IpAddr, Strikes>,
}

impl Lockout {
    pub fn new(policy: LockoutPolicy) -> Lockout {
        Lockout {
            policy,
            table: HashMap::new(),
        }
    }

    /// Addresses tracked now (never more than the policy's capacity).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn key(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
            v4 => v4,
        }
    }

    /// How much longer `ip` is refused, if it is. Check before the TLS
    /// handshake or before verifying a password.
    pub fn blocked(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let key = Lockout::key(ip);
        let until = self.table.get(&key)?.blocked_until?;
        if now >= until {
            self.table.remove(&key);
            return None;
        }
        Some(until - now)
    }

    pub fn is_blocked(&mut self, ip: IpAddr, now: Instant) -> bool {
        self.blocked(ip, now).is_some()
    }

    /// Counts a failed login (an [`AuthResult::Wrong`](crate::auth::users::AuthResult::Wrong)); true when `ip` is
    /// blocked after it.
    pub fn failure(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = Lockout::key(ip);
        if !self.table.contains_key(&key) {
            self.make_room(now);
        }
        let policy = self.policy;
        let strikes = self.table.entry(key).or_insert(Strikes {
            failures: 0,
            first: now,
            blocked_until: None,
        });
        if let Some(until) = strikes.blocked_until {
            if now < until {
                return true;
            }
        }
        if strikes.stale(now, &policy) {
            *strikes = Strikes {
                failures: 0,
                first: now,
                blocked_until: None,
            };
        }
        strikes.failures += 1;
        if strikes.failures >= policy.max_failures {
            strikes.blocked_until = Some(now + policy.block);
            log::warn!(
                "{} failed logins from {key}{}: refused for {} s",
                strikes.failures,
                if key.is_ipv6() { "/64" } else { "" },
                policy.block.as_secs()
            );
            return true;
        }
        false
    }

    /// A successful login forgets the address's failures.
    pub fn success(&mut self, ip: IpAddr) {
        self.table.remove(&Lockout::key(ip));
    }

    /// Keeps the table under its capacity before a new address goes in:
    /// stale entries go first, then the unblocked entry whose window started
    /// earliest, and only when every entry is blocked, the block that ends
    /// soonest. So an attacker cycling through addresses cannot free a
    /// blocked one while unblocked ones remain.
    fn make_room(&mut self, now: Instant) {
        if self.table.len() < self.policy.capacity {
            return;
        }
        let policy = self.policy;
        self.table.retain(|_, s| !s.stale(now, &policy));
        while self.table.len() >= policy.capacity.max(1) {
            let victim = self
                .table
                .iter()
                .min_by_key(|(_, s)| (s.blocked_until.is_some(), s.blocked_until, s.first))
                .map(|(k, _)| *k);
            match victim {
                Some(k) => self.table.remove(&k),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn policy() -> LockoutPolicy {
        LockoutPolicy::default()
    }

    #[test]
    fn lockout_blocks_after_failures_in_the_window() {
        let mut l = Lockout::new(policy());
        let a = ip("203.0.113.5");
        let t0 = Instant::now();
        for i in 0..4 {
            assert!(!l.failure(a, t0 + Duration::from_secs(i * 10)));
            assert!(!l.is_blocked(a, t0 + Duration::from_secs(i * 10)));
        }
        let t5 = t0 + Duration::from_secs(59);
        assert!(l.failure(a, t5));
        assert_eq!(l.blocked(a, t5), Some(Duration::from_secs(300)));
        // Another address is not affected.
        assert!(!l.is_blocked(ip("203.0.113.6"), t5));
        // Blocked until the block ends, not a moment longer; further failures
        // while blocked do not extend it.
        assert!(l.failure(a, t5 + Duration::from_secs(100)));
        let end = t5 + Duration::from_secs(300);
        assert!(l.is_blocked(a, end - Duration::from_millis(1)));
        assert!(!l.is_blocked(a, end));
        assert!(l.is_empty());
        // After the block, a fresh count.
        assert!(!l.failure(a, end));
    }

    #[test]
    fn lockout_window_restarts() {
        let mut l = Lockout::new(policy());
        let a = ip("203.0.113.5");
        let t0 = Instant::now();
        for i in 0..4 {
            assert!(!l.failure(a, t0 + Duration::from_secs(i)));
        }
        // The fifth comes when the window of the first has passed.
        let later = t0 + Duration::from_secs(60);
        assert!(!l.failure(a, later));
        for i in 1..4 {
            assert!(!l.failure(a, later + Duration::from_secs(i)));
        }
        assert!(l.failure(a, later + Duration::from_secs(59)));
    }

    #[test]
    fn lockout_success_clears() {
        let mut l = Lockout::new(policy());
        let a = ip("203.0.113.5");
        let t0 = Instant::now();
        for _ in 0..4 {
            l.failure(a, t0);
        }
        l.success(a);
        assert!(l.is_empty());
        for _ in 0..4 {
            assert!(!l.failure(a, t0));
        }
        assert!(l.failure(a, t0));
    }

    #[test]
    fn lockout_groups_ipv6_by_64_and_mapped_ipv4() {
        let mut l = Lockout::new(policy());
        let t0 = Instant::now();
        for i in 1..=5 {
            l.failure(ip(&format!("2001:db8:1:2::{i}")), t0);
        }
        assert!(l.is_blocked(ip("2001:db8:1:2:ffff::9"), t0));
        assert!(!l.is_blocked(ip("2001:db8:1:3::1"), t0));
        for _ in 0..4 {
            l.failure(ip("198.51.100.7"), t0);
        }
        assert!(l.failure(ip("::ffff:198.51.100.7"), t0));
        assert!(l.is_blocked(ip("198.51.100.7"), t0));
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn lockout_table_is_bounded_and_keeps_blocked_addresses() {
        let cap = 64;
        let mut l = Lockout::new(LockoutPolicy {
            capacity: cap,
            ..policy()
        });
        let t0 = Instant::now();
        let blocked = ip("192.0.2.1");
        for _ in 0..5 {
            l.failure(blocked, t0);
        }
        // An attacker with many addresses, one failure each.
        for i in 0..10 * cap as u32 {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            l.failure(addr, t0 + Duration::from_millis(u64::from(i)));
            assert!(l.len() <= cap);
        }
        assert_eq!(l.len(), cap);
        assert!(l.is_blocked(blocked, t0 + Duration::from_secs(1)));
        // The newest addresses are kept, the oldest unblocked went first.
        let newest = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + 10 * cap as u32 - 1));
        assert!(l.table.contains_key(&newest));
        assert!(!l.table.contains_key(&ip("10.0.0.0")));

        // A table full of blocked addresses gives up the one that ends first.
        let mut l = Lockout::new(LockoutPolicy {
            capacity: 4,
            ..policy()
        });
        for i in 0..5u32 {
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            for _ in 0..5 {
                l.failure(addr, t0 + Duration::from_secs(u64::from(i)));
            }
            assert!(l.len() <= 4);
        }
        let t = t0 + Duration::from_secs(10);
        assert!(!l.is_blocked(ip("10.0.0.0"), t));
        for i in 1..5 {
            assert!(l.is_blocked(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), t));
        }
        // Stale entries are dropped before anything live is evicted.
        let late = t0 + Duration::from_secs(1000);
        l.failure(ip("10.9.9.9"), late);
        assert_eq!(l.len(), 1);
    }
}
