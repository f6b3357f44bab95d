//! UDP-Lite (`IPPROTO_UDPLITE`) through the dispatch table: datagrams
//! over 127.0.0.1 and `::1` (and to a dual-stack socket), a port space
//! apart from UDP's, the checksum coverage options and the receiver's drop
//! rule, non-blocking and blocking receives, readiness, and the errors for
//! bad options and destinations outside the guest.

use core::net::Ipv6Addr;

use super::*;

const AF_INET6: u64 = 10;
const IPPROTO_UDP: u64 = 17;
const IPPROTO_UDPLITE: u64 = 136;
const SOL_SOCKET: u64 = 1;
const SO_PROTOCOL: u64 = 38;
const UDPLITE_SEND_CSCOV: u64 = 10;
const UDPLITE_RECV_CSCOV: u64 = 11;
const UDP_CORK: u64 = 1;
const MSG_DONTWAIT: u64 = 0x40;
const POLLIN: u16 = 1;
const POLLOUT: u16 = 4;
const BUF: u64 = MEM + 0x3000;

impl H {
    fn lite(&self, family: u64, ty: u64) -> u64 {
        let fd = self.call("socket", &[family, ty, IPPROTO_UDPLITE]);
        assert!(fd >= 0, "socket: {fd}");
        fd as u64
    }
    /// A UDP-Lite socket bound to `127.0.0.1:port` (`flags`: `SOCK_NONBLOCK`).
    fn lite_at(&self, port: u16, flags: u64) -> u64 {
        let fd = self.lite(AF_INET, SOCK_DGRAM | flags);
        let sa = self.sin(MEM + 0x40, [127, 0, 0, 1], port);
        assert_eq!(self.call("bind", &[fd, sa, 16]), 0);
        fd
    }
    /// Sends `len` bytes from `fd` to `127.0.0.1:port`.
    fn send_to(&self, fd: u64, port: u16, len: usize) -> i64 {
        let sa = self.sin(MEM + 0x80, [127, 0, 0, 1], port);
        let data = self.put(BUF, &pattern(len));
        self.call("sendto", &[fd, data, len as u64, 0, sa, 16])
    }
    /// A non-blocking receive into a 64 KiB buffer.
    fn recv_now(&self, fd: u64) -> i64 {
        self.call(
            "recvfrom",
            &[fd, BUF + 0x1_0000, 0x1_0000, MSG_DONTWAIT, 0, 0],
        )
    }
}

#[test]
fn datagrams_between_ipv4_sockets() {
    let h = setup();
    let a = h.lite_at(7100, 0);
    let b = h.lite(AF_INET, SOCK_DGRAM);
    assert_eq!(h.int_opt(a, SOL_SOCKET, SO_PROTOCOL), 136);
    assert_eq!(h.revents(a, POLLIN | POLLOUT), POLLOUT);
    assert_eq!(h.send_to(b, 7100, 300), 300);
    assert_eq!(h.revents(a, POLLIN | POLLOUT), POLLIN | POLLOUT);
    let (from, flen) = (MEM + 0x200, MEM + 0x280);
    h.put(flen, &16i32.to_le_bytes());
    let out = BUF + 0x1_0000;
    assert_eq!(h.call("recvfrom", &[a, out, 1000, 0, from, flen]), 300);
    assert_eq!(h.get(out, 300), pattern(300));
    let sender = h.get(from, 8);
    assert_eq!((sender[0], &sender[4..8]), (2, &[127, 0, 0, 1][..]));
    // The sender got an ephemeral port, which getsockname shows.
    let (name, nlen) = (MEM + 0x300, MEM + 0x380);
    h.put(nlen, &16i32.to_le_bytes());
    assert_eq!(h.call("getsockname", &[b, name, nlen]), 0);
    assert_eq!(h.get(name + 2, 2), sender[2..4]);
    // A reply to the address received; a truncated read says so with MSG_TRUNC.
    assert_eq!(h.call("sendto", &[a, BUF, 50, 0, from, 16]), 50);
    assert_eq!(h.call("recvfrom", &[b, out, 10, 0x20, 0, 0]), 50);
    // connect: default destination, getpeername, write/read.
    let sa = h.sin(MEM + 0x40, [127, 0, 0, 1], 7100);
    assert_eq!(h.call("connect", &[b, sa, 16]), 0);
    h.put(nlen, &16i32.to_le_bytes());
    assert_eq!(h.call("getpeername", &[b, name, nlen]), 0);
    assert_eq!(h.get(name + 2, 6), [0x1b, 0xbc, 127, 0, 0, 1]);
    assert_eq!(h.call("write", &[b, BUF, 7]), 7);
    assert_eq!(h.call("read", &[a, out, 100]), 7);
}

#[test]
fn datagrams_over_ipv6_and_to_a_dual_stack_socket() {
    let h = setup();
    let a = h.lite(AF_INET6, SOCK_DGRAM);
    let sa = h.sin6(MEM, Ipv6Addr::UNSPECIFIED, 7101);
    assert_eq!(h.call("bind", &[a, sa, 28]), 0);
    let b = h.lite(AF_INET6, SOCK_DGRAM);
    let lo6 = h.sin6(MEM + 0x40, Ipv6Addr::LOCALHOST, 7101);
    let msg = h.put(BUF, b"over v6");
    assert_eq!(h.call("sendto", &[b, msg, 7, 0, lo6, 28]), 7);
    let (from, flen) = (MEM + 0x200, MEM + 0x280);
    h.put(flen, &28i32.to_le_bytes());
    assert_eq!(h.call("recvfrom", &[a, BUF + 0x100, 64, 0, from, flen]), 7);
    assert_eq!(h.get(BUF + 0x100, 7), b"over v6");
    assert_eq!(h.sockaddr_at(from, flen).2, Ipv6Addr::LOCALHOST);
    // An IPv4 sender reaches the `::` socket, seen mapped.
    let c = h.lite(AF_INET, SOCK_DGRAM);
    assert_eq!(h.send_to(c, 7101, 5), 5);
    h.put(flen, &28i32.to_le_bytes());
    assert_eq!(h.call("recvfrom", &[a, BUF + 0x100, 64, 0, from, flen]), 5);
    let (fam, _, ip, len) = h.sockaddr_at(from, flen);
    assert_eq!(
        (fam, ip, len),
        (10, "::ffff:127.0.0.1".parse().unwrap(), 28)
    );
    // The reply to the mapped address goes back over IPv4.
    assert_eq!(h.call("sendto", &[a, msg, 3, 0, from, 28]), 3);
    assert_eq!(h.recv_now(c), 3);
}

#[test]
fn udp_lite_has_its_own_port_space() {
    let h = setup();
    let lite = h.lite_at(7102, SOCK_NONBLOCK);
    let udp = h.socket(SOCK_DGRAM | SOCK_NONBLOCK);
    let sa = h.sin(MEM + 0x40, [127, 0, 0, 1], 7102);
    assert_eq!(
        h.call("bind", &[udp, sa, 16]),
        0,
        "the same port as UDP-Lite"
    );
    let second = h.lite(AF_INET, SOCK_DGRAM);
    assert_eq!(h.call("bind", &[second, sa, 16]), err(Errno::EADDRINUSE));
    // A UDP datagram reaches the UDP socket only, and UDP-Lite's the other.
    let udp_sender = h.socket(SOCK_DGRAM);
    assert_eq!(h.send_to(udp_sender, 7102, 11), 11);
    assert_eq!(h.recv_now(lite), err(Errno::EAGAIN));
    assert_eq!(h.recv_now(udp), 11);
    let lite_sender = h.lite(AF_INET, SOCK_DGRAM);
    assert_eq!(h.send_to(lite_sender, 7102, 13), 13);
    assert_eq!(h.recv_now(udp), err(Errno::EAGAIN));
    assert_eq!(h.recv_now(lite), 13);
    // Closing frees the UDP-Lite port only.
    assert_eq!(h.call("close", &[lite]), 0);
    assert_eq!(h.call("bind", &[second, sa, 16]), 0);
}

#[test]
fn coverage_options_are_kept_as_linux_and_the_receiver_drops_short_ones() {
    let h = setup();
    let rx = h.lite_at(7103, SOCK_NONBLOCK);
    let tx = h.lite(AF_INET, SOCK_DGRAM);
    for name in [UDPLITE_SEND_CSCOV, UDPLITE_RECV_CSCOV] {
        assert_eq!(h.int_opt(tx, IPPROTO_UDPLITE, name), 0);
        for (set, got) in [(1, 8), (7, 8), (8, 8), (20, 20), (0, 0), (-5, 8)] {
            assert_eq!(h.set_int_opt(tx, IPPROTO_UDPLITE, name, set), 0);
            assert_eq!(h.int_opt(tx, IPPROTO_UDPLITE, name), got, "{set}");
        }
        // SOL_UDP reaches the same option, as Linux.
        assert_eq!(h.int_opt(tx, IPPROTO_UDP, name), 8);
    }
    assert_eq!(
        h.set_int_opt(rx, IPPROTO_UDPLITE, UDPLITE_RECV_CSCOV, 20),
        0
    );
    let got = |send: i32, len: usize| {
        assert_eq!(
            h.set_int_opt(tx, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, send),
            0
        );
        assert_eq!(h.send_to(tx, 7103, len), len as i64);
        h.recv_now(rx) == len as i64
    };
    assert!(!got(10, 100), "coverage 10 < the 20 asked for: dropped");
    assert!(!got(19, 100));
    assert!(got(20, 100));
    assert!(got(40, 100));
    assert!(got(0, 100), "full coverage always satisfies");
    assert!(got(10, 1), "10 bytes cover a 9-byte datagram fully");
    // Without RECV_CSCOV every coverage is taken.
    let plain = h.lite_at(7104, SOCK_NONBLOCK);
    assert_eq!(h.set_int_opt(tx, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, 8), 0);
    assert_eq!(h.send_to(tx, 7104, 100), 100);
    assert_eq!(h.recv_now(plain), 100);
}

#[test]
fn bad_options_protocols_and_destinations() {
    let h = setup();
    let fd = h.lite(AF_INET, SOCK_DGRAM);
    let short = h.put(MEM + 0x20, &[8, 0]);
    for name in [UDPLITE_SEND_CSCOV, UDPLITE_RECV_CSCOV] {
        let r = h.call("setsockopt", &[fd, IPPROTO_UDPLITE, name, short, 2]);
        assert_eq!(r, err(Errno::EINVAL), "a value shorter than an int");
    }
    assert_eq!(
        h.set_int_opt(fd, IPPROTO_UDPLITE, 99, 1),
        err(Errno::ENOPROTOOPT)
    );
    assert_eq!(h.int_opt(fd, IPPROTO_UDPLITE, 99), err(Errno::ENOPROTOOPT));
    assert_eq!(
        h.set_int_opt(fd, IPPROTO_UDP, UDP_CORK, 1),
        err(Errno::ENOPROTOOPT)
    );
    // A UDP socket has no coverage options.
    let udp = h.socket(SOCK_DGRAM);
    assert_eq!(
        h.set_int_opt(udp, IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, 8),
        err(Errno::ENOPROTOOPT)
    );
    assert_eq!(
        h.call("socket", &[AF_INET, SOCK_STREAM, IPPROTO_UDPLITE]),
        err(Errno::EPROTONOSUPPORT)
    );
    // Outside the guest: ENETUNREACH, and no port is taken for it.
    let far = h.sin(MEM + 0x80, [10, 0, 2, 99], 7);
    assert_eq!(
        h.call("sendto", &[fd, BUF, 1, 0, far, 16]),
        err(Errno::ENETUNREACH)
    );
    assert_eq!(h.call("connect", &[fd, far, 16]), err(Errno::ENETUNREACH));
    let (name, nlen) = (MEM + 0x300, MEM + 0x380);
    h.put(nlen, &16i32.to_le_bytes());
    assert_eq!(h.call("getsockname", &[fd, name, nlen]), 0);
    assert_eq!(h.get(name + 2, 2), [0, 0]);
    let six = h.lite(AF_INET6, SOCK_DGRAM);
    let far6 = h.sin6(MEM + 0x80, "2001:db8::1".parse().unwrap(), 7);
    assert_eq!(
        h.call("sendto", &[six, BUF, 1, 0, far6, 28]),
        err(Errno::ENETUNREACH)
    );
    assert_eq!(h.send_to(fd, 7105, 65_508), err(Errno::EMSGSIZE));
    assert_eq!(h.call("write", &[fd, BUF, 1]), err(Errno::EDESTADDRREQ));
}

#[test]
fn the_guests_own_card_address_is_inside() {
    let (h, _peer) = two_hosts();
    let fd = h.lite(AF_INET, SOCK_NONBLOCK | SOCK_DGRAM);
    let sa = h.sin(MEM + 0x40, [10, 0, 2, 15], 7106);
    assert_eq!(h.call("bind", &[fd, sa, 16]), 0);
    let tx = h.lite(AF_INET, SOCK_DGRAM);
    assert_eq!(h.call("sendto", &[tx, BUF, 4, 0, sa, 16]), 4);
    assert_eq!(h.recv_now(fd), 4);
    // The other machine on the card is outside.
    let other = h.sin(MEM + 0x80, [10, 0, 2, 16], 7106);
    assert_eq!(
        h.call("sendto", &[tx, BUF, 4, 0, other, 16]),
        err(Errno::ENETUNREACH)
    );
}

#[test]
fn nonblocking_and_blocking_receives() {
    let h = setup();
    let fd = h.lite_at(7107, SOCK_NONBLOCK);
    assert_eq!(
        h.call("recvfrom", &[fd, BUF, 10, 0, 0, 0]),
        err(Errno::EAGAIN)
    );
    let blocking = h.lite_at(7108, 0);
    assert_eq!(
        h.call("recvfrom", &[blocking, BUF, 10, MSG_DONTWAIT, 0, 0]),
        err(Errno::EAGAIN)
    );
    // A signal ends a blocking receive.
    h.m.interrupt_next_wait_after(1_000_000);
    assert_eq!(
        h.call("recvfrom", &[blocking, BUF, 10, 0, 0, 0]),
        err(Errno::EINTR)
    );
    // A blocked receiver gets a datagram sent meanwhile.
    h.m.set_block_spins(2_000_000);
    let waiter = {
        let (m, p, t) = (h.m.clone(), h.p.clone(), h.t.clone());
        std::thread::spawn(move || {
            let r = H { m, p, t };
            r.call("recvfrom", &[blocking, BUF + 0x8000, 100, 0, 0, 0])
        })
    };
    let tx = h.lite(AF_INET, SOCK_DGRAM);
    assert_eq!(h.send_to(tx, 7108, 9), 9);
    assert_eq!(waiter.join().unwrap(), 9);
    // MSG_PEEK leaves it queued; FIONREAD tells its length.
    assert_eq!(h.send_to(tx, 7107, 21), 21);
    assert_eq!(h.call("recvfrom", &[fd, BUF, 100, 2, 0, 0]), 21);
    let n = MEM + 0x900;
    assert_eq!(h.call("ioctl", &[fd, 0x541b, n]), 0);
    assert_eq!(h.i32_at(n), 21);
    assert_eq!(h.recv_now(fd), 21);
    assert_eq!(h.recv_now(fd), err(Errno::EAGAIN));
}
