//! Caps on open WebSockets per client address and per user.
//!
//! A socket takes its slots at upgrade, before the upgrade completes, and gives them back when
//! its [`Slot`] is dropped (the socket closed, or the upgrade never happened), so two upgrades
//! racing each other cannot both slip under a cap.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::{Arc, Mutex, MutexGuard},
};

/// Open sockets counted by address and by user.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    by_addr: HashMap<IpAddr, usize>,
    by_user: HashMap<String, usize>,
}

/// A poisoned lock only means another thread panicked while holding it; every change is one
/// increment or decrement, so the counts stay consistent.
fn lock(m: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What an address is counted under: itself, or its /64 for IPv6 (one host usually holds a
/// whole /64). The unspecified address (no connection info) is not counted.
fn addr_key(ip: IpAddr) -> Option<IpAddr> {
    match ip.to_canonical() {
        ip if ip.is_unspecified() => None,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            Some(IpAddr::V6(Ipv6Addr::from(prefix)))
        }
        v4 => Some(v4),
    }
}

/// Decrements `key`'s count, removing it at zero.
fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Sockets {
    /// A slot for one more socket from `ip`, unless the address already has `cap`.
    pub(crate) fn take_addr(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<Slot> {
        let addr = addr_key(ip);
        if let Some(addr) = addr {
            let mut counts = lock(&self.counts);
            let n = counts.by_addr.entry(addr).or_default();
            if *n >= cap {
                return None;
            }
            *n += 1;
        }
        Some(Slot {
            sockets: self.clone(),
            addr,
            user: None,
        })
    }

    /// Open sockets (and upgrades under way) from `ip`'s address.
    #[cfg(test)]
    fn of_addr(&self, ip: IpAddr) -> usize {
        addr_key(ip).map_or(0, |a| {
            lock(&self.counts).by_addr.get(&a).copied().unwrap_or(0)
        })
    }
}

/// One socket's place under the caps; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    sockets: Arc<Sockets>,
    addr: Option<IpAddr>,
    user: Option<String>,
}

impl Slot {
    /// Counts the socket for `user` too, unless the user already has `cap`; whether it fit.
    pub(crate) fn take_user(&mut self, user: &str, cap: usize) -> bool {
        if self.user.is_some() {
            return true;
        }
        let mut counts = lock(&self.sockets.counts);
        if counts.by_user.get(user).is_some_and(|n| *n >= cap) || cap == 0 {
            return false;
        }
        *counts.by_user.entry(user.to_owned()).or_default() += 1;
        self.user = Some(user.to_owned());
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = lock(&self.sockets.counts);
        if let Some(addr) = &self.addr {
            release(&mut counts.by_addr, addr);
        }
        if let Some(user) = &self.user {
            release(&mut counts.by_user, user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_gets_its_cap_and_slots_come_back_when_dropped() {
        let sockets = Arc::new(Sockets::default());
        let a = sockets.take_addr(ip("10.0.0.1"), 2).unwrap();
        let b = sockets.take_addr(ip("::ffff:10.0.0.1"), 2).unwrap();
        assert!(sockets.take_addr(ip("10.0.0.1"), 2).is_none());
        assert!(sockets.take_addr(ip("10.0.0.2"), 2).is_some());
        drop(a);
        let c = sockets.take_addr(ip("10.0.0.1"), 2).unwrap();
        assert_eq!(sockets.of_addr(ip("10.0.0.1")), 2);
        drop((b, c));
        assert_eq!(sockets.of_addr(ip("10.0.0.1")), 0);
        assert!(lock(&sockets.counts).by_addr.is_empty());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_unknown_ones_not_at_all() {
        let sockets = Arc::new(Sockets::default());
        let _a = sockets.take_addr(ip("2001:db8::1"), 1).unwrap();
        assert!(sockets.take_addr(ip("2001:db8::2"), 1).is_none());
        assert!(sockets.take_addr(ip("2001:db8:0:1::1"), 1).is_some());
        let unknown: Vec<_> = (0..3)
            .map(|_| sockets.take_addr(ip("0.0.0.0"), 1))
            .collect();
        assert!(unknown.iter().all(Option::is_some));
    }

    #[test]
    fn a_user_gets_their_cap() {
        let sockets = Arc::new(Sockets::default());
        let mut slots: Vec<Slot> = Vec::new();
        for _ in 0..2 {
            let mut slot = sockets.take_addr(ip("0.0.0.0"), 1).unwrap();
            assert!(slot.take_user("ann", 2));
            slots.push(slot);
        }
        let mut third = sockets.take_addr(ip("0.0.0.0"), 1).unwrap();
        assert!(!third.take_user("ann", 2));
        assert!(third.take_user("bob", 2));
        slots.pop();
        let mut again = sockets.take_addr(ip("0.0.0.0"), 1).unwrap();
        assert!(again.take_user("ann", 2));
        drop((slots, third, again));
        assert!(lock(&sockets.counts).by_user.is_empty());
    }
}
