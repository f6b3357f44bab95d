//! [`Inet`]: what makes an IP socket `AF_INET` or `AF_INET6` — how its
//! user addresses map to the addresses smoltcp uses, which interfaces a
//! bound address listens on, and the `IPPROTO_IPV6` options.
//!
//! Dual stack, as Linux by default (`net.ipv6.bindv6only = 0`): an
//! `AF_INET6` socket without `IPV6_V6ONLY` also talks IPv4. Inside, such
//! a socket simply uses IPv4 smoltcp sockets for its IPv4 peers: a
//! v4-mapped address (`::ffff:a.b.c.d`) given to `connect`/`sendto`
//! becomes the IPv4 address, and an IPv4 address smoltcp reports (an
//! accepted client, a datagram's source) is shown to the program mapped.
//! A wildcard (`::`) listener keeps listening smoltcp sockets on the IPv4
//! interfaces as well as on the IPv6 loopback, and the port table makes
//! the port IPv4's too. Families stay apart because each loopback
//! interface carries one family and the card has no IPv6 address: an
//! IPv4 interface never sees an IPv6 packet, so an `AF_INET` wildcard
//! listener cannot answer IPv6.
//!
//! IPv6 reaches only `::1` (the card has no IPv6 address yet): other IPv6
//! destinations give `ENETUNREACH`, other local addresses `EADDRNOTAVAIL`.

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use super::addr::{AF_INET, AF_INET6, SockAddr};
use super::ancillary::{DatagramOptions, Marks, SendControl};
use super::port::BindAddr;
use super::socket::{int_bytes, int_value};
use super::stack::IfaceId;
use crate::error::{Errno, Result};
use crate::return_errno;

/// `IPPROTO_IPV6` option names.
#[allow(missing_docs, reason = "the names are Linux's; see ipv6(7)")]
pub mod opt {
    pub const IPV6_UNICAST_HOPS: i32 = 16;
    pub const IPV6_V6ONLY: i32 = 26;
}
use opt::*;

/// The hop limit (and IPv4 TTL) of packets when the program sets none.
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// The family of an IP socket and its `IPPROTO_IPV6` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inet {
    /// `AF_INET6` (else `AF_INET`).
    pub v6: bool,
    /// `IPV6_V6ONLY`: an `AF_INET6` socket that talks IPv6 only.
    pub v6only: bool,
    /// `IPV6_UNICAST_HOPS` as set (-1: the default).
    pub unicast_hops: i32,
    /// A datagram socket's RFC 3542 options (`IPV6_RECVHOPLIMIT`,
    /// `IPV6_RECVTCLASS`, `IPV6_TCLASS`).
    pub rfc3542: DatagramOptions,
}

impl Inet {
    /// An `AF_INET` socket's.
    pub const V4: Self = Self {
        v6: false,
        v6only: false,
        unicast_hops: -1,
        rfc3542: DatagramOptions {
            hop_limit: false,
            tclass: false,
            send_tclass: 0,
        },
    };
    /// A new `AF_INET6` socket's (dual stack).
    pub const V6: Self = Self {
        v6: true,
        v6only: false,
        unicast_hops: -1,
        rfc3542: DatagramOptions {
            hop_limit: false,
            tclass: false,
            send_tclass: 0,
        },
    };

    /// `AF_INET` or `AF_INET6`.
    pub fn domain(&self) -> u16 {
        if self.v6 { AF_INET6 } else { AF_INET }
    }

    /// The wildcard address of the family, port 0 (an unbound socket's name).
    pub fn unspecified(&self) -> SocketAddr {
        if self.v6 {
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)
        } else {
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
        }
    }

    /// The wildcard address of `a`'s family, port 0.
    pub fn unspecified_of(a: SocketAddr) -> SocketAddr {
        let v6 = Self {
            v6: a.is_ipv6(),
            ..Self::V4
        };
        v6.unspecified()
    }

    /// The peer a program names (`connect`, `sendto`) as smoltcp
    /// addresses it. A `sockaddr_in` given to an `AF_INET6` socket is
    /// `EINVAL` (too short), unless `v4_ok` (a datagram socket, which
    /// Linux lets send to one) and the socket is not v6-only; a mapped
    /// address on a v6-only socket is `ENETUNREACH`.
    pub fn peer(&self, addr: &SockAddr, v4_ok: bool) -> Result<SocketAddr> {
        match (self.v6, addr) {
            (false, SockAddr::Inet(a)) => Ok(SocketAddr::V4(*a)),
            (false, _) => return_errno!(Errno::EAFNOSUPPORT),
            (true, SockAddr::Inet6(a)) => match a.ip().to_ipv4_mapped() {
                Some(_) if self.v6only => return_errno!(Errno::ENETUNREACH),
                Some(v4) => Ok(SocketAddr::new(v4.into(), a.port())),
                None => Ok(SocketAddr::V6(SocketAddrV6::new(*a.ip(), a.port(), 0, 0))),
            },
            (true, SockAddr::Inet(_)) if v4_ok && self.v6only => {
                return_errno!(Errno::ENETUNREACH)
            }
            (true, SockAddr::Inet(a)) if v4_ok => Ok(SocketAddr::V4(*a)),
            (true, SockAddr::Inet(_)) => return_errno!(Errno::EINVAL),
            (true, _) => return_errno!(Errno::EAFNOSUPPORT),
        }
    }

    /// The address a program binds, as the port table keeps it. A mapped
    /// address binds IPv4 (`EINVAL` on a v6-only socket, as Linux); `::`
    /// without `IPV6_V6ONLY` is dual stack. `EADDRNOTAVAIL` for an
    /// address this machine does not have (`ext`: the card's, if any).
    pub fn local(&self, addr: &SockAddr, ext: Option<Ipv4Addr>) -> Result<(SocketAddr, bool)> {
        let (a, dual) = match (self.v6, addr) {
            (false, SockAddr::Inet(a)) => (SocketAddr::V4(*a), false),
            (false, _) | (true, SockAddr::Unspec | SockAddr::Unix(_)) => {
                return_errno!(Errno::EAFNOSUPPORT)
            }
            (true, SockAddr::Inet(_)) => return_errno!(Errno::EINVAL),
            (true, SockAddr::Inet6(a)) => match a.ip().to_ipv4_mapped() {
                Some(_) if self.v6only => return_errno!(Errno::EINVAL),
                Some(v4) => (SocketAddr::new(v4.into(), a.port()), false),
                None => (
                    SocketAddr::new((*a.ip()).into(), a.port()),
                    a.ip().is_unspecified() && !self.v6only,
                ),
            },
        };
        let ok = match a.ip() {
            IpAddr::V4(ip) => ip.is_unspecified() || ip == Ipv4Addr::LOCALHOST || Some(ip) == ext,
            IpAddr::V6(ip) => ip.is_unspecified() || ip == Ipv6Addr::LOCALHOST,
        };
        if !ok {
            return_errno!(Errno::EADDRNOTAVAIL);
        }
        Ok((a, dual))
    }

    /// How the program sees an address smoltcp reports: an IPv4 address
    /// mapped (`::ffff:a.b.c.d`) on an `AF_INET6` socket.
    pub fn user(&self, a: SocketAddr) -> SockAddr {
        match (self.v6, a) {
            (false, SocketAddr::V4(a)) => SockAddr::Inet(a),
            (true, SocketAddr::V4(a)) => {
                SockAddr::Inet6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
            }
            (_, SocketAddr::V6(a)) => SockAddr::Inet6(a),
        }
    }

    /// The hop limit to give smoltcp sockets: `None` for the default
    /// (smoltcp's is 64, as Linux's) or 0, which smoltcp cannot send (the
    /// value is still kept and reported).
    pub fn hop_limit(&self) -> Option<u8> {
        u8::try_from(self.unicast_hops).ok().filter(|&h| h != 0)
    }

    /// `setsockopt(IPPROTO_IPV6, name)`: `ENOPROTOOPT` on an `AF_INET`
    /// socket and for options not kept; `bound`: the socket has a port
    /// (`IPV6_V6ONLY` can no longer change, `EINVAL`).
    pub fn set_option(&mut self, name: i32, value: &[u8], bound: bool) -> Result<()> {
        if !self.v6 {
            return_errno!(Errno::ENOPROTOOPT);
        }
        match name {
            IPV6_V6ONLY => {
                let v = int_value(value)?;
                if bound {
                    return_errno!(Errno::EINVAL);
                }
                self.v6only = v != 0;
            }
            IPV6_UNICAST_HOPS => {
                let v = int_value(value)?;
                if !(-1..=255).contains(&v) {
                    return_errno!(Errno::EINVAL);
                }
                self.unicast_hops = v;
            }
            _ => return_errno!(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    /// `getsockopt(IPPROTO_IPV6, name)`.
    pub fn get_option(&self, name: i32) -> Result<Vec<u8>> {
        if !self.v6 {
            return_errno!(Errno::ENOPROTOOPT);
        }
        Ok(int_bytes(match name {
            IPV6_V6ONLY => i32::from(self.v6only),
            IPV6_UNICAST_HOPS if self.unicast_hops < 0 => i32::from(DEFAULT_HOP_LIMIT),
            IPV6_UNICAST_HOPS => self.unicast_hops,
            _ => return_errno!(Errno::ENOPROTOOPT),
        }))
    }
}

impl Inet {
    /// `setsockopt(IPPROTO_IPV6, name)` of a datagram socket: also the
    /// RFC 3542 options ([`DatagramOptions`]).
    pub fn set_datagram_option(&mut self, name: i32, value: &[u8], bound: bool) -> Result<()> {
        if self.v6 && self.rfc3542.set(name, value)? {
            return Ok(());
        }
        self.set_option(name, value, bound)
    }

    /// `getsockopt(IPPROTO_IPV6, name)` of a datagram socket.
    pub fn get_datagram_option(&self, name: i32) -> Result<Vec<u8>> {
        match self.rfc3542.get(name) {
            Some(v) if self.v6 => Ok(int_bytes(v)),
            _ => self.get_option(name),
        }
    }

    /// The hop limit and traffic class of an IPv6 datagram sent with
    /// `control`: the message's, else the socket's (`IPV6_UNICAST_HOPS`,
    /// `IPV6_TCLASS`), else the defaults (64, 0).
    pub fn send_marks(&self, control: SendControl) -> Marks {
        let socket_hops = u8::try_from(self.unicast_hops).unwrap_or(DEFAULT_HOP_LIMIT);
        Marks {
            hop_limit: control.hop_limit.unwrap_or(socket_hops),
            tclass: control.tclass.unwrap_or(self.rfc3542.send_tclass),
        }
    }
}

/// The port-table entry of a bound address.
pub(crate) fn bind_addr(a: SocketAddr, dual: bool) -> BindAddr {
    BindAddr { ip: a.ip(), dual }
}

/// The interfaces a socket bound at `ip` (`dual`: also IPv4) receives on,
/// given whether there is a card.
pub(crate) fn ifaces(ip: IpAddr, dual: bool, has_ext: bool) -> Vec<IfaceId> {
    let mut out = Vec::new();
    let v4_wild = match ip {
        IpAddr::V4(ip) => !ip.is_loopback(),
        IpAddr::V6(ip) => {
            out.push(IfaceId::Loopback6);
            ip.is_unspecified() && dual
        }
    };
    if ip.is_ipv4() || dual {
        out.push(IfaceId::Loopback);
    }
    if v4_wild && has_ext {
        out.push(IfaceId::External);
    }
    out
}

/// Which interface reaches `ip`, and the address to use for it (a
/// wildcard means this machine's loopback). `ext`: the card's address,
/// if there is a card.
pub(crate) fn route(ip: IpAddr, ext: Option<Ipv4Addr>) -> Result<(IfaceId, IpAddr)> {
    match ip {
        IpAddr::V4(ip) => {
            let ip = if ip.is_unspecified() {
                Ipv4Addr::LOCALHOST
            } else {
                ip
            };
            if ip.is_loopback() || Some(ip) == ext {
                Ok((IfaceId::Loopback, ip.into()))
            } else if ext.is_some() {
                Ok((IfaceId::External, ip.into()))
            } else {
                return_errno!(Errno::ENETUNREACH)
            }
        }
        IpAddr::V6(ip) if ip.is_unspecified() || ip.is_loopback() => {
            Ok((IfaceId::Loopback6, Ipv6Addr::LOCALHOST.into()))
        }
        IpAddr::V6(_) => return_errno!(Errno::ENETUNREACH),
    }
}

/// The source address of packets to `dest` through `iface` (the route's
/// preferred source on Linux): the destination itself when it is this
/// machine's card address, else the interface's address.
pub(crate) fn source(iface: IfaceId, dest: IpAddr, ext: Option<Ipv4Addr>) -> IpAddr {
    match iface {
        IfaceId::Loopback6 => Ipv6Addr::LOCALHOST.into(),
        IfaceId::Loopback if ext.is_some_and(|e| IpAddr::V4(e) == dest) => dest,
        IfaceId::Loopback => Ipv4Addr::LOCALHOST.into(),
        IfaceId::External => ext.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::SocketAddrV4;

    fn six(ip: Ipv6Addr, port: u16) -> SockAddr {
        SockAddr::Inet6(SocketAddrV6::new(ip, port, 0, 0))
    }

    #[test]
    fn mapped_addresses_talk_ipv4_unless_v6only() {
        let mapped = six(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 80);
        let v4 = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 80);
        assert_eq!(Inet::V6.peer(&mapped, false).unwrap(), v4);
        assert_eq!(Inet::V6.user(v4), mapped);
        let only = Inet {
            v6only: true,
            ..Inet::V6
        };
        let e = |r: Result<SocketAddr>| r.unwrap_err().errno();
        assert_eq!(e(only.peer(&mapped, false)), Errno::ENETUNREACH);
        let sin = SockAddr::Inet(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 80));
        assert_eq!(e(Inet::V6.peer(&sin, false)), Errno::EINVAL);
        assert_eq!(Inet::V6.peer(&sin, true).unwrap(), v4);
        assert_eq!(e(only.peer(&sin, true)), Errno::ENETUNREACH);
        assert_eq!(e(Inet::V4.peer(&mapped, false)), Errno::EAFNOSUPPORT);
        assert_eq!(Inet::V4.user(v4), sin);
    }

    #[test]
    fn binding_checks_the_address_and_finds_dual_stack() {
        let any = six(Ipv6Addr::UNSPECIFIED, 5);
        let (a, dual) = Inet::V6.local(&any, None).unwrap();
        assert!(dual && a.is_ipv6());
        let only = Inet {
            v6only: true,
            ..Inet::V6
        };
        assert!(!only.local(&any, None).unwrap().1);
        let e = |r: Result<(SocketAddr, bool)>| r.unwrap_err().errno();
        let mapped = six(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 5);
        assert_eq!(e(only.local(&mapped, None)), Errno::EINVAL);
        assert!(Inet::V6.local(&mapped, None).unwrap().0.is_ipv4());
        let far = six(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 5);
        assert_eq!(e(Inet::V6.local(&far, None)), Errno::EADDRNOTAVAIL);
        let sin = SockAddr::Inet(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5));
        assert_eq!(e(Inet::V6.local(&sin, None)), Errno::EINVAL);
    }

    #[test]
    fn wildcards_listen_on_the_interfaces_of_their_families() {
        use IfaceId::*;
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        assert_eq!(ifaces(any6, true, true), [Loopback6, Loopback, External]);
        assert_eq!(ifaces(any6, false, true), [Loopback6]);
        assert_eq!(ifaces(Ipv6Addr::LOCALHOST.into(), false, true), [Loopback6]);
        assert_eq!(ifaces(any4, false, true), [Loopback, External]);
        assert_eq!(ifaces(any4, false, false), [Loopback]);
        assert_eq!(ifaces(Ipv4Addr::LOCALHOST.into(), false, true), [Loopback]);
        let far6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        assert_eq!(
            route(far6.into(), Some(Ipv4Addr::new(10, 0, 2, 15)))
                .unwrap_err()
                .errno(),
            Errno::ENETUNREACH
        );
        assert_eq!(
            route(any6, None).unwrap(),
            (Loopback6, Ipv6Addr::LOCALHOST.into())
        );
    }

    #[test]
    fn options_are_kept_and_checked() {
        let mut o = Inet::V6;
        assert_eq!(o.get_option(IPV6_V6ONLY).unwrap(), int_bytes(0));
        o.set_option(IPV6_V6ONLY, &int_bytes(1), false).unwrap();
        assert_eq!(o.get_option(IPV6_V6ONLY).unwrap(), int_bytes(1));
        let e = |r: Result<()>| r.unwrap_err().errno();
        assert_eq!(
            e(o.set_option(IPV6_V6ONLY, &int_bytes(0), true)),
            Errno::EINVAL
        );
        assert_eq!(o.get_option(IPV6_UNICAST_HOPS).unwrap(), int_bytes(64));
        o.set_option(IPV6_UNICAST_HOPS, &int_bytes(7), true)
            .unwrap();
        assert_eq!(o.get_option(IPV6_UNICAST_HOPS).unwrap(), int_bytes(7));
        assert_eq!(o.hop_limit(), Some(7));
        assert_eq!(
            e(o.set_option(IPV6_UNICAST_HOPS, &int_bytes(256), true)),
            Errno::EINVAL
        );
        assert_eq!(
            e(o.set_option(49, &int_bytes(1), false)),
            Errno::ENOPROTOOPT
        );
        let mut v4 = Inet::V4;
        assert_eq!(
            e(v4.set_option(IPV6_V6ONLY, &int_bytes(1), false)),
            Errno::ENOPROTOOPT
        );
    }

    #[test]
    fn datagram_options_choose_the_marks_sent() {
        use crate::net::ancillary::opt::{IPV6_RECVHOPLIMIT, IPV6_TCLASS};
        let mut o = Inet::V6;
        let none = SendControl::default();
        assert_eq!(
            o.send_marks(none),
            Marks {
                hop_limit: 64,
                tclass: 0
            }
        );
        o.set_datagram_option(IPV6_UNICAST_HOPS, &int_bytes(9), false)
            .unwrap();
        o.set_datagram_option(IPV6_TCLASS, &int_bytes(0x10), false)
            .unwrap();
        assert_eq!(o.get_datagram_option(IPV6_TCLASS).unwrap(), int_bytes(0x10));
        assert_eq!(
            o.send_marks(none),
            Marks {
                hop_limit: 9,
                tclass: 0x10
            }
        );
        let c = SendControl {
            hop_limit: Some(2),
            tclass: Some(0),
        };
        assert_eq!(
            o.send_marks(c),
            Marks {
                hop_limit: 2,
                tclass: 0
            }
        );
        // Stream sockets (set_option) and AF_INET sockets do not have them.
        let e = |r: Result<()>| r.unwrap_err().errno();
        assert_eq!(
            e(o.set_option(IPV6_RECVHOPLIMIT, &int_bytes(1), false)),
            Errno::ENOPROTOOPT
        );
        let mut v4 = Inet::V4;
        assert_eq!(
            e(v4.set_datagram_option(IPV6_RECVHOPLIMIT, &int_bytes(1), false)),
            Errno::ENOPROTOOPT
        );
        assert_eq!(
            v4.get_datagram_option(IPV6_TCLASS).unwrap_err().errno(),
            Errno::ENOPROTOOPT
        );
    }
}
