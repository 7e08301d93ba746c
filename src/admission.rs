//! Who gets one of the connection slots: the global limit, the cap per
//! client address, and, at the limit, eviction of a connection that has not
//! yet proved itself (finished its TLS handshake and sent a whole first
//! request head), so that slow or silent connections from a scanner cannot
//! keep new viewers out.
//!
//! Everything here runs on the one event-loop thread, so plain `Cell` and
//! `RefCell` suffice. The registry is a short vector (one entry per open
//! connection, at most the connection limit), scanned in full only when the
//! limit is reached.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Connections from one IPv4 address, or from one IPv6 /64 (one household's
/// or one phone's prefix), count together for the per-address cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    pub fn of(ip: IpAddr) -> AddressKey {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                AddressKey(IpAddr::V6(prefix.into()))
            }
            v4 => AddressKey(v4),
        }
    }
}

impl std::fmt::Display for AddressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

/// Why a new connection was turned away.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already holds the per-address cap.
    AddressFull,
    /// Every slot is taken by connections that have proved themselves.
    Full,
}

/// What a connection shares with the registry while it lives.
#[derive(Default)]
pub struct ConnectionState {
    established: Cell<bool>,
    evicted: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl ConnectionState {
    /// The handshake is done and a whole request head has arrived: from now
    /// on the connection is never evicted for a newcomer.
    pub fn set_established(&self) {
        self.established.set(true);
    }

    /// Resolves when the registry evicts this connection.
    pub fn evicted(&self) -> Evicted<'_> {
        Evicted(self)
    }
}

pub struct Evicted<'a>(&'a ConnectionState);

impl Future for Evicted<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.evicted.get() {
            return Poll::Ready(());
        }
        let mut waker = self.0.waker.borrow_mut();
        if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

struct Entry {
    id: u64,
    key: AddressKey,
    since: Instant,
    state: Rc<ConnectionState>,
}

/// The slots of every route together.
pub struct Admission {
    limit: usize,
    per_address: usize,
    entries: RefCell<Vec<Entry>>,
    per_key: RefCell<HashMap<AddressKey, usize>>,
    next_id: Cell<u64>,
}

/// One admitted connection's slot; given back when dropped.
pub struct Slot {
    admission: Rc<Admission>,
    id: u64,
    pub state: Rc<ConnectionState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.remove(self.id);
    }
}

/// The connection an admission made room for, for the log.
pub struct Evicting {
    pub key: AddressKey,
    pub age: Duration,
}

impl Admission {
    pub fn new(limit: usize, per_address: usize) -> Admission {
        Admission {
            limit,
            per_address,
            entries: RefCell::new(Vec::new()),
            per_key: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.entries.borrow().len()
    }

    /// A slot for a new connection from `ip`, evicting an unproven
    /// connection when every slot is taken.
    pub fn admit(
        self: &Rc<Self>,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(Slot, Option<Evicting>), Refusal> {
        let key = AddressKey::of(ip);
        if self.per_key.borrow().get(&key).copied().unwrap_or(0) >= self.per_address {
            return Err(Refusal::AddressFull);
        }
        let evicting = if self.open() >= self.limit {
            Some(self.evict_one(now).ok_or(Refusal::Full)?)
        } else {
            None
        };
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let state = Rc::new(ConnectionState::default());
        self.entries.borrow_mut().push(Entry {
            id,
            key,
            since: now,
            state: state.clone(),
        });
        *self.per_key.borrow_mut().entry(key).or_insert(0) += 1;
        Ok((
            Slot {
                admission: self.clone(),
                id,
                state,
            },
            evicting,
        ))
    }

    /// Takes the slot of the unproven connection whose address holds the
    /// most connections (the oldest of those), and tells its task to close.
    /// A scanner's many slow connections go before one viewer's handshake.
    fn evict_one(&self, now: Instant) -> Option<Evicting> {
        let per_key = self.per_key.borrow();
        let victim = self
            .entries
            .borrow()
            .iter()
            .filter(|e| !e.state.established.get())
            .max_by_key(|e| (per_key.get(&e.key).copied().unwrap_or(0), now - e.since))
            .map(|e| e.id)?;
        drop(per_key);
        let entry = self.remove(victim)?;
        entry.state.evicted.set(true);
        if let Some(waker) = entry.state.waker.borrow_mut().take() {
            waker.wake();
        }
        Some(Evicting {
            key: entry.key,
            age: now - entry.since,
        })
    }

    fn remove(&self, id: u64) -> Option<Entry> {
        let mut entries = self.entries.borrow_mut();
        let at = entries.iter().position(|e| e.id == id)?;
        let entry = entries.swap_remove(at);
        let mut per_key = self.per_key.borrow_mut();
        if let Some(n) = per_key.get_mut(&entry.key) {
            *n -= 1;
            if *n == 0 {
                per_key.remove(&entry.key);
            }
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            AddressKey::of(ip("2001:db8:1:2:aaaa::1")),
            AddressKey::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            AddressKey::of(ip("2001:db8:1:2::1")),
            AddressKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddressKey::of(ip("::ffff:192.0.2.7")),
            AddressKey::of(ip("192.0.2.7"))
        );
        assert_eq!(
            AddressKey::of(ip("2001:db8:1:2::9")).to_string(),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn the_cap_per_address_leaves_room_for_others() {
        let a = Rc::new(Admission::new(10, 2));
        let now = Instant::now();
        let _one = a.admit(ip("192.0.2.1"), now).unwrap();
        let _two = a.admit(ip("192.0.2.1"), now).unwrap();
        assert_eq!(
            a.admit(ip("192.0.2.1"), now).err(),
            Some(Refusal::AddressFull)
        );
        let other = a.admit(ip("192.0.2.2"), now).unwrap();
        assert_eq!(a.open(), 3);
        drop(other);
        drop(_two);
        assert_eq!(a.open(), 1);
        assert!(a.admit(ip("192.0.2.1"), now).is_ok());
    }

    #[test]
    fn at_the_limit_the_busiest_addresses_oldest_unproven_goes() {
        let a = Rc::new(Admission::new(4, 10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let viewer = a.admit(ip("198.51.100.9"), at(0)).unwrap().0;
        let scan1 = a.admit(ip("192.0.2.1"), at(1)).unwrap().0;
        let scan2 = a.admit(ip("192.0.2.1"), at(2)).unwrap().0;
        let proven = a.admit(ip("192.0.2.1"), at(0)).unwrap().0;
        proven.state.set_established();
        let (_new, evicting) = a.admit(ip("203.0.113.5"), at(3)).unwrap();
        let evicting = evicting.expect("someone made room");
        assert_eq!(evicting.key, AddressKey::of(ip("192.0.2.1")));
        assert_eq!(evicting.age, Duration::from_secs(2));
        assert!(scan1.state.evicted.get());
        assert!(!scan2.state.evicted.get());
        assert!(!viewer.state.evicted.get() && !proven.state.evicted.get());
        assert_eq!(a.open(), 4);
        // The evicted task ends later; its slot is already free.
        drop(scan1);
        assert_eq!(a.open(), 4);
    }

    #[test]
    fn established_connections_are_never_evicted() {
        let a = Rc::new(Admission::new(2, 10));
        let now = Instant::now();
        let one = a.admit(ip("192.0.2.1"), now).unwrap().0;
        let two = a.admit(ip("192.0.2.2"), now).unwrap().0;
        one.state.set_established();
        two.state.set_established();
        assert_eq!(a.admit(ip("192.0.2.3"), now).err(), Some(Refusal::Full));
        assert_eq!(a.open(), 2);
    }

    #[test]
    fn an_evicted_connection_is_woken() {
        let a = Rc::new(Admission::new(1, 10));
        let now = Instant::now();
        let first = a.admit(ip("192.0.2.1"), now).unwrap().0;
        let state = first.state.clone();
        let woken = smol::block_on(async {
            let wait = async {
                state.evicted().await;
                true
            };
            let evict = async {
                smol::future::yield_now().await;
                let _second = a.admit(ip("192.0.2.2"), now).unwrap();
                smol::Timer::after(Duration::from_secs(5)).await;
                false
            };
            smol::future::or(wait, evict).await
        });
        assert!(woken);
    }
}
