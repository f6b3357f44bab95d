//! [`PortTable`]: which TCP and UDP ports are bound to which addresses,
//! for `EADDRINUSE` and ephemeral ports (smoltcp itself only matches
//! packets to sockets).
//!
//! IPv4 and IPv6 bindings share the port space as on Linux: a binding
//! overlaps another of its family at the same or a wildcard address, and
//! a dual-stack wildcard (`::` without `IPV6_V6ONLY`) also overlaps every
//! IPv4 binding.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::IpAddr;

use crate::error::{Errno, Result};
use crate::return_errno;

/// First ephemeral port (Linux's `ip_local_port_range`).
pub const EPHEMERAL_FIRST: u16 = 32768;
/// Last ephemeral port.
pub const EPHEMERAL_LAST: u16 = 60999;

/// A transport protocol: ports are separate per protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    /// TCP
    Tcp,
    /// UDP
    Udp,
}

#[derive(Debug, Clone, Copy)]
struct Binding {
    owner: u64,
    addr: BindAddr,
    reuse_port: bool,
}

/// The address a port is bound at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindAddr {
    /// The address (`0.0.0.0` or `::` for a wildcard).
    pub ip: IpAddr,
    /// `::` of an `AF_INET6` socket without `IPV6_V6ONLY`: IPv4 as well.
    pub dual: bool,
}

impl BindAddr {
    /// A binding of `ip` alone (not dual-stack).
    pub fn single(ip: impl Into<IpAddr>) -> Self {
        Self {
            ip: ip.into(),
            dual: false,
        }
    }

    /// Whether the two bindings can receive the same packet.
    fn overlaps(&self, other: &Self) -> bool {
        let same_family = self.ip.is_ipv4() == other.ip.is_ipv4();
        let covers_v4 = |a: &Self, b: &Self| a.dual && b.ip.is_ipv4();
        (same_family
            && (self.ip == other.ip || self.ip.is_unspecified() || other.ip.is_unspecified()))
            || covers_v4(self, other)
            || covers_v4(other, self)
    }
}

/// Bound ports.
#[derive(Debug)]
pub struct PortTable {
    bound: BTreeMap<(Proto, u16), Vec<Binding>>,
    next_ephemeral: u16,
    next_owner: u64,
}

impl PortTable {
    /// An empty table; `seed` picks where the ephemeral search starts.
    pub fn new(seed: u64) -> Self {
        let span = u64::from(EPHEMERAL_LAST - EPHEMERAL_FIRST) + 1;
        Self {
            bound: BTreeMap::new(),
            next_ephemeral: EPHEMERAL_FIRST + (seed % span) as u16,
            next_owner: 1,
        }
    }

    fn conflicts(&self, proto: Proto, addr: BindAddr, port: u16, reuse_port: bool) -> bool {
        self.bound.get(&(proto, port)).is_some_and(|v| {
            v.iter()
                .any(|b| b.addr.overlaps(&addr) && !(b.reuse_port && reuse_port))
        })
    }

    /// Binds `addr:port` (`port` 0: a free ephemeral port), returning the
    /// port and an owner token for [`PortTable::release`]. `EADDRINUSE`
    /// if taken (unless both sides set `SO_REUSEPORT`).
    pub fn bind(
        &mut self,
        proto: Proto,
        addr: impl Into<BindAddr>,
        port: u16,
        reuse_port: bool,
    ) -> Result<(u16, u64)> {
        let addr = addr.into();
        let port = if port == 0 {
            self.ephemeral(proto, addr)?
        } else if self.conflicts(proto, addr, port, reuse_port) {
            return_errno!(Errno::EADDRINUSE);
        } else {
            port
        };
        let owner = self.next_owner;
        self.next_owner += 1;
        self.bound.entry((proto, port)).or_default().push(Binding {
            owner,
            addr,
            reuse_port,
        });
        Ok((port, owner))
    }

    fn ephemeral(&mut self, proto: Proto, addr: BindAddr) -> Result<u16> {
        for _ in EPHEMERAL_FIRST..=EPHEMERAL_LAST {
            let port = self.next_ephemeral;
            self.next_ephemeral = if port == EPHEMERAL_LAST {
                EPHEMERAL_FIRST
            } else {
                port + 1
            };
            if !self.conflicts(proto, addr, port, false) {
                return Ok(port);
            }
        }
        return_errno!(Errno::EADDRINUSE)
    }

    /// Frees what [`PortTable::bind`] gave `owner`.
    pub fn release(&mut self, proto: Proto, port: u16, owner: u64) {
        if let Some(v) = self.bound.get_mut(&(proto, port)) {
            v.retain(|b| b.owner != owner);
            if v.is_empty() {
                self.bound.remove(&(proto, port));
            }
        }
    }
}

impl From<core::net::Ipv4Addr> for BindAddr {
    fn from(ip: core::net::Ipv4Addr) -> Self {
        Self::single(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn conflicts_wildcards_and_reuseport() {
        let mut t = PortTable::new(0);
        let any = Ipv4Addr::UNSPECIFIED;
        let lo = Ipv4Addr::LOCALHOST;
        let (p, a) = t.bind(Proto::Tcp, lo, 8080, false).unwrap();
        assert_eq!(p, 8080);
        let e = |r: Result<(u16, u64)>| r.unwrap_err().errno();
        assert_eq!(e(t.bind(Proto::Tcp, any, 8080, false)), Errno::EADDRINUSE);
        assert_eq!(e(t.bind(Proto::Tcp, lo, 8080, true)), Errno::EADDRINUSE);
        t.bind(Proto::Tcp, Ipv4Addr::new(10, 0, 2, 15), 8080, false)
            .unwrap();
        t.bind(Proto::Udp, any, 8080, false).unwrap();
        t.release(Proto::Tcp, 8080, a);
        t.bind(Proto::Tcp, lo, 8080, false).unwrap();
        let (p1, _) = t.bind(Proto::Tcp, any, 9000, true).unwrap();
        let (p2, _) = t.bind(Proto::Tcp, any, 9000, true).unwrap();
        assert_eq!((p1, p2), (9000, 9000));
        let (e1, _) = t.bind(Proto::Tcp, any, 0, false).unwrap();
        let (e2, _) = t.bind(Proto::Tcp, any, 0, false).unwrap();
        assert!((EPHEMERAL_FIRST..=EPHEMERAL_LAST).contains(&e1));
        assert_ne!(e1, e2);
    }

    #[test]
    fn ipv6_wildcards_cover_ipv4_only_when_dual_stack() {
        let mut t = PortTable::new(0);
        let v6any = BindAddr::single(Ipv6Addr::UNSPECIFIED);
        let dual = BindAddr {
            ip: Ipv6Addr::UNSPECIFIED.into(),
            dual: true,
        };
        let e = |r: Result<(u16, u64)>| r.unwrap_err().errno();
        // A v6-only wildcard and an IPv4 wildcard share a port.
        t.bind(Proto::Tcp, v6any, 7000, false).unwrap();
        t.bind(Proto::Tcp, Ipv4Addr::UNSPECIFIED, 7000, false)
            .unwrap();
        assert_eq!(
            e(t.bind(
                Proto::Tcp,
                BindAddr::single(Ipv6Addr::LOCALHOST),
                7000,
                false
            )),
            Errno::EADDRINUSE
        );
        // A dual-stack wildcard takes the IPv4 port as well.
        t.bind(Proto::Tcp, dual, 7001, false).unwrap();
        assert_eq!(
            e(t.bind(Proto::Tcp, Ipv4Addr::LOCALHOST, 7001, false)),
            Errno::EADDRINUSE
        );
        t.bind(Proto::Tcp, Ipv4Addr::LOCALHOST, 7002, false)
            .unwrap();
        assert_eq!(e(t.bind(Proto::Tcp, dual, 7002, false)), Errno::EADDRINUSE);
        t.bind(
            Proto::Tcp,
            BindAddr::single(Ipv6Addr::LOCALHOST),
            7002,
            false,
        )
        .unwrap();
    }
}
