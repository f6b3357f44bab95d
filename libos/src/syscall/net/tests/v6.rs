//! `AF_INET6` through the dispatch table: TCP and UDP over `::1`, dual
//! stack (an IPv4 client of a `::` listener seen as `::ffff:127.0.0.1`,
//! a mapped address reaching an IPv4 listener), `IPV6_V6ONLY`, the
//! families kept apart, and bad `sockaddr_in6`s.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::*;

const AF_INET6: u64 = 10;
const IPPROTO_IPV6: u64 = 41;
const IPV6_UNICAST_HOPS: u64 = 16;
const IPV6_V6ONLY: u64 = 26;
const IPV6_RECVPKTINFO: u64 = 49;

fn mapped(ip: [u8; 4]) -> Ipv6Addr {
    Ipv4Addr::from(ip).to_ipv6_mapped()
}

impl H {
    /// A `sockaddr_in6` at `addr` (28 bytes, scope 0).
    pub(super) fn sin6(&self, addr: u64, ip: Ipv6Addr, port: u16) -> u64 {
        let mut b = [0u8; 28];
        b[0] = 10;
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[8..24].copy_from_slice(&ip.octets());
        self.put(addr, &b)
    }
    fn socket6(&self, ty: u64) -> u64 {
        let fd = self.call("socket", &[AF_INET6, ty, 0]);
        assert!(fd >= 0, "socket: {fd}");
        fd as u64
    }
    /// A listening `AF_INET6` TCP socket on `[ip]:port`, `IPV6_V6ONLY` if `only`.
    fn listener6(&self, ip: Ipv6Addr, port: u16, only: bool) -> u64 {
        let fd = self.socket6(SOCK_STREAM);
        if only {
            assert_eq!(self.set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1), 0);
        }
        let sa = self.sin6(MEM, ip, port);
        assert_eq!(self.call("bind", &[fd, sa, 28]), 0);
        assert_eq!(self.call("listen", &[fd, 16]), 0);
        fd
    }
    /// The address `call` (`getsockname`, `getpeername`, `accept4`) gives
    /// for `fd`, as (family, port, IPv6 address or mapped IPv4), with its
    /// reported length.
    fn name_of(&self, call: &str, fd: u64) -> (u16, u16, Ipv6Addr, i32) {
        let (at, len) = (MEM + 0x600, MEM + 0x680);
        self.put(len, &128i32.to_le_bytes());
        let r = self.call(call, &[fd, at, len, 0]);
        assert!(r >= 0, "{call}: {r}");
        self.sockaddr_at(at, len)
    }
    pub(super) fn sockaddr_at(&self, at: u64, len: u64) -> (u16, u16, Ipv6Addr, i32) {
        let b = self.get(at, 28);
        let family = u16::from_le_bytes([b[0], b[1]]);
        let port = u16::from_be_bytes([b[2], b[3]]);
        let ip = if family == 2 {
            mapped([b[4], b[5], b[6], b[7]])
        } else {
            Ipv6Addr::from(<[u8; 16]>::try_from(&b[8..24]).unwrap())
        };
        (family, port, ip, self.i32_at(len))
    }
}

#[test]
fn tcp_echo_over_ipv6_loopback() {
    let h = setup();
    let l = h.listener6(Ipv6Addr::LOCALHOST, 6380, false);
    assert_eq!(
        h.name_of("getsockname", l),
        (10, 6380, Ipv6Addr::LOCALHOST, 28)
    );
    let c = h.socket6(SOCK_STREAM);
    let sa = h.sin6(MEM, Ipv6Addr::LOCALHOST, 6380);
    assert_eq!(h.call("connect", &[c, sa, 28]), 0);
    let (fam, cport, ip, len) = h.name_of("getsockname", c);
    assert_eq!((fam, ip, len), (10, Ipv6Addr::LOCALHOST, 28));
    assert!(cport >= 32768, "an ephemeral port: {cport}");
    h.put(MEM + 0x780, &128i32.to_le_bytes());
    let s = h.call("accept4", &[l, MEM + 0x700, MEM + 0x780, 0]);
    assert!(s >= 0, "accept: {s}");
    assert_eq!(
        h.sockaddr_at(MEM + 0x700, MEM + 0x780),
        (10, cport, Ipv6Addr::LOCALHOST, 28)
    );
    let s = s as u64;
    assert_eq!(
        h.name_of("getpeername", s),
        (10, cport, Ipv6Addr::LOCALHOST, 28)
    );
    assert_eq!(
        h.name_of("getsockname", s),
        (10, 6380, Ipv6Addr::LOCALHOST, 28)
    );
    assert_eq!(
        h.name_of("getpeername", c),
        (10, 6380, Ipv6Addr::LOCALHOST, 28)
    );
    let data = pattern(100_000);
    let buf = h.put(MEM + 0x1000, &data);
    let mut sent = 0;
    let mut echoed = Vec::new();
    while echoed.len() < data.len() {
        if sent < data.len() {
            let n = h.call("write", &[c, buf + sent as u64, (data.len() - sent) as u64]);
            assert!(n > 0, "write: {n}");
            sent += n as usize;
        }
        let n = h.call("recvfrom", &[s, MEM + 0x10_0000, 65536, 0x40, 0, 0]);
        if n > 0 {
            assert_eq!(h.call("write", &[s, MEM + 0x10_0000, n as u64]), n);
        }
        let n = h.call("recvfrom", &[c, MEM + 0x20_0000, 65536, 0x40, 0, 0]);
        if n > 0 {
            echoed.extend(h.get(MEM + 0x20_0000, n as usize));
        }
    }
    assert!(echoed == data, "the echo differs");
    assert_eq!(h.call("close", &[c]), 0);
    assert_eq!(h.call("read", &[s, MEM + 0x300, 100]), 0, "end of file");
    assert_eq!(h.int_opt(s, 1, 39), 10, "SO_DOMAIN");
}

#[test]
fn udp_over_ipv6_loopback() {
    let h = setup();
    let a = h.socket6(SOCK_DGRAM);
    let b = h.socket6(SOCK_DGRAM);
    let sa = h.sin6(MEM, Ipv6Addr::LOCALHOST, 5354);
    assert_eq!(h.call("bind", &[a, sa, 28]), 0);
    let msg = h.put(MEM + 0x100, b"hello v6");
    assert_eq!(h.call("sendto", &[b, msg, 8, 0, sa, 28]), 8);
    let (from, flen) = (MEM + 0x200, MEM + 0x280);
    h.put(flen, &28i32.to_le_bytes());
    assert_eq!(h.call("recvfrom", &[a, MEM + 0x300, 100, 0, from, flen]), 8);
    assert_eq!(h.get(MEM + 0x300, 8), b"hello v6");
    let (fam, port, ip, len) = h.sockaddr_at(from, flen);
    assert_eq!((fam, ip, len), (10, Ipv6Addr::LOCALHOST, 28));
    assert_eq!(h.name_of("getsockname", b).1, port, "the sender's port");
    // The reply goes to the sender's address as received.
    assert_eq!(h.call("sendto", &[a, msg, 5, 0, from, 28]), 5);
    assert_eq!(h.call("read", &[b, MEM + 0x300, 100]), 5);
    // connect filters and names the peer.
    assert_eq!(h.call("connect", &[b, sa, 28]), 0);
    assert_eq!(
        h.name_of("getpeername", b),
        (10, 5354, Ipv6Addr::LOCALHOST, 28)
    );
    assert_eq!(h.call("write", &[b, msg, 3]), 3);
    assert_eq!(h.call("read", &[a, MEM + 0x300, 100]), 3);
}

#[test]
fn a_dual_stack_listener_accepts_ipv4_clients_as_mapped_addresses() {
    let h = setup();
    let l = h.listener6(Ipv6Addr::UNSPECIFIED, 6381, false);
    assert_eq!(h.int_opt(l, IPPROTO_IPV6, IPV6_V6ONLY), 0);
    // The port is IPv4's too.
    let v4 = h.socket(SOCK_STREAM);
    let sa4 = h.sin(MEM, [0, 0, 0, 0], 6381);
    assert_eq!(h.call("bind", &[v4, sa4, 16]), err(Errno::EADDRINUSE));
    let c = h.socket(SOCK_STREAM);
    let sa4 = h.sin(MEM, [127, 0, 0, 1], 6381);
    assert_eq!(h.call("connect", &[c, sa4, 16]), 0);
    let cport = {
        h.put(MEM + 0x210, &16i32.to_le_bytes());
        assert_eq!(h.call("getsockname", &[c, MEM + 0x200, MEM + 0x210]), 0);
        u16::from_be_bytes(h.get(MEM + 0x202, 2).try_into().unwrap())
    };
    h.put(MEM + 0x780, &128i32.to_le_bytes());
    let s = h.call("accept4", &[l, MEM + 0x700, MEM + 0x780, 0]);
    assert!(s >= 0, "accept: {s}");
    let lo4 = mapped([127, 0, 0, 1]);
    assert_eq!(
        h.sockaddr_at(MEM + 0x700, MEM + 0x780),
        (10, cport, lo4, 28)
    );
    let s = s as u64;
    assert_eq!(h.name_of("getsockname", s), (10, 6381, lo4, 28));
    let msg = h.put(MEM + 0x100, b"v4 to v6");
    assert_eq!(h.call("write", &[c, msg, 8]), 8);
    assert_eq!(h.call("read", &[s, MEM + 0x300, 100]), 8);
    // An IPv6 client reaches the same listener over ::1.
    let c6 = h.socket6(SOCK_STREAM);
    let sa6 = h.sin6(MEM, Ipv6Addr::LOCALHOST, 6381);
    assert_eq!(h.call("connect", &[c6, sa6, 28]), 0);
    let s6 = h.call("accept4", &[l, 0, 0, 0]);
    assert!(s6 >= 0, "accept: {s6}");
    assert_eq!(h.name_of("getpeername", s6 as u64).2, Ipv6Addr::LOCALHOST);
}

#[test]
fn an_ipv6_socket_reaches_an_ipv4_listener_through_a_mapped_address() {
    let h = setup();
    let l = h.listener([127, 0, 0, 1], 6384, 0);
    let c = h.socket6(SOCK_STREAM);
    let sa = h.sin6(MEM, mapped([127, 0, 0, 1]), 6384);
    assert_eq!(h.call("connect", &[c, sa, 28]), 0);
    let (fam, _, ip, len) = h.name_of("getsockname", c);
    assert_eq!((fam, ip, len), (10, mapped([127, 0, 0, 1]), 28));
    assert_eq!(
        h.name_of("getpeername", c),
        (10, 6384, mapped([127, 0, 0, 1]), 28)
    );
    let s = h.call("accept4", &[l, 0, 0, 0]);
    assert!(s >= 0, "accept: {s}");
    // The IPv4 side sees a plain sockaddr_in.
    h.put(MEM + 0x210, &16i32.to_le_bytes());
    assert_eq!(
        h.call("getpeername", &[s as u64, MEM + 0x200, MEM + 0x210]),
        0
    );
    assert_eq!(h.get(MEM + 0x200, 2), [2, 0]);
    assert_eq!(h.get(MEM + 0x204, 4), [127, 0, 0, 1]);
}

#[test]
fn udp_dual_stack_receives_and_answers_ipv4() {
    let h = setup();
    let a = h.socket6(SOCK_DGRAM);
    let any = h.sin6(MEM, Ipv6Addr::UNSPECIFIED, 5355);
    assert_eq!(h.call("bind", &[a, any, 28]), 0);
    let b = h.socket(SOCK_DGRAM);
    let to = h.sin(MEM + 0x40, [127, 0, 0, 1], 5355);
    let msg = h.put(MEM + 0x100, b"ping");
    assert_eq!(h.call("sendto", &[b, msg, 4, 0, to, 16]), 4);
    let (from, flen) = (MEM + 0x200, MEM + 0x280);
    h.put(flen, &28i32.to_le_bytes());
    assert_eq!(h.call("recvfrom", &[a, MEM + 0x300, 100, 0, from, flen]), 4);
    let (fam, _, ip, len) = h.sockaddr_at(from, flen);
    assert_eq!((fam, ip, len), (10, mapped([127, 0, 0, 1]), 28));
    assert_eq!(h.call("sendto", &[a, msg, 4, 0, from, 28]), 4);
    assert_eq!(h.call("read", &[b, MEM + 0x300, 100]), 4);
    // glibc's getaddrinfo sorts its answers this way: a connected IPv6
    // datagram socket names the source of its route, mapped for IPv4;
    // AF_UNSPEC dissolves the association.
    let g = h.socket6(SOCK_DGRAM);
    let v6dst = h.sin6(MEM + 0x400, Ipv6Addr::LOCALHOST, 9);
    assert_eq!(h.call("connect", &[g, v6dst, 28]), 0);
    assert_eq!(h.name_of("getsockname", g).2, Ipv6Addr::LOCALHOST);
    let unspec = h.put(MEM + 0x440, &[0u8; 16]);
    assert_eq!(h.call("connect", &[g, unspec, 16]), 0);
    assert_eq!(h.name_of("getsockname", g).2, Ipv6Addr::UNSPECIFIED);
    let v4dst = h.sin(MEM + 0x480, [127, 0, 0, 1], 9);
    assert_eq!(h.call("connect", &[g, v4dst, 16]), 0, "sockaddr_in");
    let (fam, _, ip, len) = h.name_of("getsockname", g);
    assert_eq!((fam, ip, len), (10, mapped([127, 0, 0, 1]), 28));
    // A v6-only socket cannot send to a mapped address.
    let only = h.socket6(SOCK_DGRAM);
    assert_eq!(h.set_int_opt(only, IPPROTO_IPV6, IPV6_V6ONLY, 1), 0);
    assert_eq!(
        h.call("sendto", &[only, msg, 4, 0, from, 28]),
        err(Errno::ENETUNREACH)
    );
}

#[test]
fn v6only_refuses_ipv4_and_shares_the_port_with_it() {
    let h = setup();
    let l = h.listener6(Ipv6Addr::UNSPECIFIED, 6382, true);
    assert_eq!(h.int_opt(l, IPPROTO_IPV6, IPV6_V6ONLY), 1);
    assert_eq!(
        h.set_int_opt(l, IPPROTO_IPV6, IPV6_V6ONLY, 0),
        err(Errno::EINVAL),
        "fixed once bound"
    );
    let c = h.socket(SOCK_STREAM);
    let sa4 = h.sin(MEM, [127, 0, 0, 1], 6382);
    assert_eq!(h.call("connect", &[c, sa4, 16]), err(Errno::ECONNREFUSED));
    // An IPv4 listener may take the same port.
    let l4 = h.listener([0, 0, 0, 0], 6382, 0);
    let c = h.socket(SOCK_STREAM);
    let sa4 = h.sin(MEM, [127, 0, 0, 1], 6382);
    assert_eq!(h.call("connect", &[c, sa4, 16]), 0);
    assert!(h.call("accept4", &[l4, 0, 0, 0]) >= 0);
    assert_eq!(
        h.revents(l, 1),
        0,
        "the IPv4 client went to the IPv4 listener"
    );
    // A v6-only socket cannot connect to a mapped address.
    let c6 = h.socket6(SOCK_STREAM);
    assert_eq!(h.set_int_opt(c6, IPPROTO_IPV6, IPV6_V6ONLY, 1), 0);
    let sa = h.sin6(MEM, mapped([127, 0, 0, 1]), 6382);
    assert_eq!(h.call("connect", &[c6, sa, 28]), err(Errno::ENETUNREACH));
    // Nor bind one (EINVAL, as Linux).
    assert_eq!(h.call("bind", &[c6, sa, 28]), err(Errno::EINVAL));
}

#[test]
fn an_ipv4_wildcard_listener_does_not_answer_ipv6() {
    let h = setup();
    let _l = h.listener([0, 0, 0, 0], 6383, 0);
    let c = h.socket6(SOCK_STREAM);
    let sa = h.sin6(MEM, Ipv6Addr::LOCALHOST, 6383);
    assert_eq!(h.call("connect", &[c, sa, 28]), err(Errno::ECONNREFUSED));
    // A v6-only listener can share the port.
    h.listener6(Ipv6Addr::UNSPECIFIED, 6383, true);
}

#[test]
fn bad_ipv6_addresses_and_options() {
    let h = setup();
    let fd = h.socket6(SOCK_STREAM);
    let sa = h.sin6(MEM, Ipv6Addr::LOCALHOST, 7);
    for len in [0, 1, 2, 16, 23] {
        assert_eq!(h.call("bind", &[fd, sa, len]), err(Errno::EINVAL), "{len}");
    }
    let sin = h.sin(MEM + 0x40, [127, 0, 0, 1], 7);
    assert_eq!(
        h.call("bind", &[fd, sin, 16]),
        err(Errno::EINVAL),
        "sockaddr_in"
    );
    assert_eq!(
        h.call("connect", &[fd, sin, 16]),
        err(Errno::EINVAL),
        "sockaddr_in"
    );
    let far = h.sin6(
        MEM + 0x80,
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
        7,
    );
    assert_eq!(h.call("bind", &[fd, far, 28]), err(Errno::EADDRNOTAVAIL));
    assert_eq!(h.call("connect", &[fd, far, 28]), err(Errno::ENETUNREACH));
    // The RFC 2133 form (no scope id) is enough.
    assert_eq!(h.call("bind", &[fd, sa, 24]), 0);
    // An AF_INET socket refuses a sockaddr_in6.
    let v4 = h.socket(SOCK_STREAM);
    assert_eq!(h.call("bind", &[v4, sa, 28]), err(Errno::EAFNOSUPPORT));
    // getsockname truncates to the caller's room and gives the full length.
    h.put(MEM + 0x180, &8i32.to_le_bytes());
    h.put(MEM + 0x100, &[0xee; 28]);
    assert_eq!(h.call("getsockname", &[fd, MEM + 0x100, MEM + 0x180]), 0);
    assert_eq!(h.i32_at(MEM + 0x180), 28);
    assert_eq!(h.get(MEM + 0x100, 10)[8..], [0xee, 0xee]);
    // Options.
    assert_eq!(h.int_opt(fd, 1, 39), 10, "SO_DOMAIN");
    assert_eq!(h.int_opt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS), 64);
    assert_eq!(h.set_int_opt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 5), 0);
    assert_eq!(h.int_opt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS), 5);
    assert_eq!(
        h.set_int_opt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, -2),
        err(Errno::EINVAL)
    );
    assert_eq!(
        h.set_int_opt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1),
        err(Errno::ENOPROTOOPT)
    );
    assert_eq!(
        h.int_opt(v4, IPPROTO_IPV6, IPV6_V6ONLY),
        err(Errno::ENOPROTOOPT)
    );
    let u = h.socket6(SOCK_DGRAM);
    assert_eq!(h.set_int_opt(u, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9), 0);
    assert_eq!(h.int_opt(u, IPPROTO_IPV6, IPV6_UNICAST_HOPS), 9);
    assert_eq!(
        h.call("socketpair", &[AF_INET6, SOCK_STREAM, 0, MEM]),
        err(Errno::EOPNOTSUPP)
    );
}

#[test]
fn a_parked_ipv6_loopback_connection_wakes_for_its_probe_with_nothing_else_polled() {
    // The IPv6 loopback is polled only when something there may move: a
    // parked connection's timer falling due counts, even with no socket
    // left in the polled set (the listener closed, every pair parked).
    let h = setup();
    let net = h.p.net.clone();
    let lfd = h.listener6(Ipv6Addr::LOCALHOST, 7090, true);
    let sa = h.sin6(MEM, Ipv6Addr::LOCALHOST, 7090);
    let pairs: Vec<(u64, u64)> = (0..9)
        .map(|i| {
            let c = h.socket6(SOCK_STREAM);
            if i == 0 {
                assert_eq!(h.set_int_opt(c, 1, 9, 1), 0); // SO_KEEPALIVE
                assert_eq!(h.set_int_opt(c, 6, 4, 10), 0); // TCP_KEEPIDLE 10 s
            }
            assert_eq!(h.call("connect", &[c, sa, 28]), 0);
            let s = h.call("accept", &[lfd, 0, 0]);
            assert!(s >= 0, "accept: {s}");
            (c, s as u64)
        })
        .collect();
    let (c, s) = pairs[0];
    assert_eq!(h.call("close", &[lfd]), 0);
    h.m.advance_ns(1_000_000_000);
    h.p.net.poll();
    // Close the pairs not parked (the pass stops below 9 polled sockets),
    // so that none is left in the polled set.
    let parked = |fd: u64| {
        let local = h.name_of("getsockname", fd).1;
        net.parked().iter().any(|(l, _)| l.port() == local)
    };
    assert!(parked(c) && parked(s), "{}", net.describe());
    for &(a, b) in &pairs[1..] {
        if !(parked(a) && parked(b)) {
            assert_eq!(h.call("close", &[a]), 0);
            assert_eq!(h.call("close", &[b]), 0);
        }
    }
    h.m.advance_ns(1_000_000_000);
    h.p.net.poll();
    assert_eq!(net.polled_sockets(), 0, "{}", net.describe());
    super::parking::serve_due_probe(&h, 10);
    let msg = h.put(MEM + 0x100, b"six");
    assert_eq!(h.call("write", &[c, msg, 3]), 3);
    assert_eq!(h.call("read", &[s, MEM + 0x200, 100]), 3);
}
