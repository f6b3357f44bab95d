//! RFC 3542 ancillary data through the dispatch table, for UDP and
//! UDP-Lite over `::1`: `IPV6_HOPLIMIT` and `IPV6_TCLASS` chosen by a
//! `sendmsg` control message or the socket's options and reported by
//! `recvmsg` after `IPV6_RECVHOPLIMIT`/`IPV6_RECVTCLASS`, control buffers
//! too small (`MSG_CTRUNC`, messages cut as Linux's `put_cmsg` cuts them),
//! and the errors for bad messages. What CPython's
//! `Recvmsg*RFC3542Ancillary*6Test` classes exercise.

use core::net::Ipv6Addr;

use super::*;

const AF_INET6: u64 = 10;
const IPPROTO_IPV6: i32 = 41;
const IPPROTO_UDPLITE: u64 = 136;
const IPV6_UNICAST_HOPS: u64 = 16;
const IPV6_RECVHOPLIMIT: u64 = 51;
const IPV6_HOPLIMIT: i32 = 52;
const IPV6_RECVTCLASS: u64 = 66;
const IPV6_TCLASS: i32 = 67;
const MSG_DONTWAIT: u64 = 0x40;
const MSG_CTRUNC: i32 = 8;
const DATA: u64 = MEM + 0x2000;
const CONTROL: u64 = MEM + 0x3000;
const OUT: u64 = MEM + 0x4000;
const ROOM: u64 = MEM + 0x5000;

/// One `IPPROTO_IPV6` control message holding `data`, padded to 8.
fn message(ty: i32, data: &[u8]) -> Vec<u8> {
    let mut c = Vec::new();
    c.extend_from_slice(&((16 + data.len()) as u64).to_le_bytes());
    c.extend_from_slice(&IPPROTO_IPV6.to_le_bytes());
    c.extend_from_slice(&ty.to_le_bytes());
    c.extend_from_slice(data);
    c.resize((c.len() + 7) & !7, 0);
    c
}

/// The control messages of `bytes` as (level, type, data).
fn messages(bytes: &[u8]) -> Vec<(i32, i32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 16 {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        let level = i32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        let ty = i32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap());
        out.push((level, ty, bytes[at + 16..at + len].to_vec()));
        at = ((at + len + 7) & !7).min(bytes.len());
    }
    out
}

fn int(v: i32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// A connected pair of `AF_INET6` datagram sockets of `protocol` over
/// `::1` (receiver, sender), the receiver asking for both messages.
fn pair(h: &H, protocol: u64, port: u16) -> (u64, u64) {
    let fd = |ty| {
        let r = h.call("socket", &[AF_INET6, ty, protocol]);
        assert!(r >= 0, "socket: {r}");
        r as u64
    };
    let (rx, tx) = (fd(SOCK_DGRAM), fd(SOCK_DGRAM));
    let sa = h.sin6(MEM, Ipv6Addr::LOCALHOST, port);
    assert_eq!(h.call("bind", &[rx, sa, 28]), 0);
    assert_eq!(h.call("connect", &[tx, sa, 28]), 0);
    let v6 = IPPROTO_IPV6 as u64;
    assert_eq!(h.set_int_opt(rx, v6, IPV6_RECVHOPLIMIT, 1), 0);
    assert_eq!(h.set_int_opt(rx, v6, IPV6_RECVTCLASS, 1), 0);
    assert_eq!(h.int_opt(rx, v6, IPV6_RECVTCLASS), 1);
    (rx, tx)
}

/// `sendmsg` of 3 bytes from `fd` with `control`.
fn send(h: &H, fd: u64, control: &[u8]) -> i64 {
    let data = h.put(DATA, b"abc");
    let c = h.put(CONTROL, control);
    let m = msghdr_with_control(h, MEM + 0x400, data, 3, c, control.len() as u64);
    h.call("sendmsg", &[fd, m, 0])
}

/// `recvmsg` on `fd` with `room` bytes of control buffer: the control
/// bytes reported (`msg_controllen` of them) and `msg_flags`.
fn recv(h: &H, fd: u64, room: u64) -> (Vec<u8>, i32) {
    h.put(ROOM, &[0xee; 64]);
    let m = msghdr_with_control(h, MEM + 0x800, OUT, 64, ROOM, room);
    assert_eq!(h.call("recvmsg", &[fd, m, MSG_DONTWAIT]), 3);
    assert_eq!(h.get(OUT, 3), b"abc");
    let len = u64::from_le_bytes(h.get(MEM + 0x800 + 40, 8).try_into().unwrap());
    assert!(len <= room, "msg_controllen {len} within {room}");
    (h.get(ROOM, len as usize), h.i32_at(MEM + 0x800 + 48))
}

fn hop_and_class(hop: i32, class: i32) -> Vec<(i32, i32, Vec<u8>)> {
    vec![
        (IPPROTO_IPV6, IPV6_HOPLIMIT, int(hop)),
        (IPPROTO_IPV6, IPV6_TCLASS, int(class)),
    ]
}

fn exercise(protocol: u64, port: u16) {
    let h = setup();
    let (rx, tx) = pair(&h, protocol, port);
    // Defaults: hop limit 64, traffic class 0, hop limit first (Linux's order).
    assert_eq!(send(&h, tx, &[]), 3);
    let (c, flags) = recv(&h, rx, 64);
    assert_eq!(
        (messages(&c), flags & MSG_CTRUNC),
        (hop_and_class(64, 0), 0)
    );
    assert_eq!(c.len(), 48, "CMSG_SPACE(4) each");
    // Chosen per datagram; a traffic class of -1 goes out as 255 (as on
    // Linux), a hop limit of -1 is the socket's.
    let mut control = message(IPV6_TCLASS, &int(-1));
    control.extend(message(IPV6_HOPLIMIT, &int(2)));
    assert_eq!(send(&h, tx, &control), 3);
    assert_eq!(messages(&recv(&h, rx, 64).0), hop_and_class(2, 255));
    let control = message(IPV6_HOPLIMIT, &int(-1));
    assert_eq!(send(&h, tx, &control), 3);
    assert_eq!(messages(&recv(&h, rx, 64).0), hop_and_class(64, 0));
    // The socket's own options.
    let v6 = IPPROTO_IPV6 as u64;
    assert_eq!(h.set_int_opt(tx, v6, IPV6_TCLASS as u64, 0xb8), 0);
    assert_eq!(h.set_int_opt(tx, v6, IPV6_UNICAST_HOPS, 9), 0);
    assert_eq!(h.int_opt(tx, v6, IPV6_TCLASS as u64), 0xb8);
    assert_eq!(send(&h, tx, &[]), 3);
    assert_eq!(messages(&recv(&h, rx, 64).0), hop_and_class(9, 0xb8));
    let control = message(IPV6_TCLASS, &int(3));
    assert_eq!(send(&h, tx, &control), 3);
    assert_eq!(messages(&recv(&h, rx, 64).0), hop_and_class(9, 3));
    // Bad messages: a traffic class one byte too long, a hop limit out
    // of range, an unknown type.
    let mut odd = int(0);
    odd.push(0);
    let mut control = message(IPV6_TCLASS, &odd);
    control.extend(message(IPV6_HOPLIMIT, &int(2)));
    assert_eq!(send(&h, tx, &control), err(Errno::EINVAL));
    let control = message(IPV6_HOPLIMIT, &int(256));
    assert_eq!(send(&h, tx, &control), err(Errno::EINVAL));
    assert_eq!(send(&h, tx, &message(999, &int(1))), err(Errno::EINVAL));
    // Too little room: the second header does not fit (CMSG_SPACE(4) + 1).
    assert_eq!(send(&h, tx, &[]), 3);
    let (c, flags) = recv(&h, rx, 25);
    assert_eq!(messages(&c), [(IPPROTO_IPV6, IPV6_HOPLIMIT, int(9))]);
    assert_eq!((c.len(), flags & MSG_CTRUNC), (24, MSG_CTRUNC));
    // The second message cut in its data (CMSG_SPACE(4) + CMSG_LEN(4) - 1).
    assert_eq!(send(&h, tx, &[]), 3);
    let (c, flags) = recv(&h, rx, 24 + 19);
    assert_eq!(c.len(), 43);
    assert_eq!(
        &c[24..32],
        &19u64.to_le_bytes(),
        "cmsg_len of what is there"
    );
    assert_eq!(
        messages(&c)[1],
        (IPPROTO_IPV6, IPV6_TCLASS, vec![0xb8, 0, 0])
    );
    assert_eq!(flags & MSG_CTRUNC, MSG_CTRUNC);
    // No room for a header at all: nothing, MSG_CTRUNC.
    for room in [0, 1, 8, 15] {
        assert_eq!(send(&h, tx, &[]), 3);
        assert_eq!(recv(&h, rx, room), (Vec::new(), MSG_CTRUNC));
    }
    // A hop limit of 0 (which smoltcp cannot send) arrives as 0, as on Linux.
    assert_eq!(h.set_int_opt(tx, v6, IPV6_UNICAST_HOPS, 0), 0);
    assert_eq!(send(&h, tx, &[]), 3);
    assert_eq!(messages(&recv(&h, rx, 64).0), hop_and_class(0, 0xb8));
    // Without the options, no messages.
    assert_eq!(h.set_int_opt(rx, v6, IPV6_RECVHOPLIMIT, 0), 0);
    assert_eq!(h.set_int_opt(rx, v6, IPV6_RECVTCLASS, 0), 0);
    assert_eq!(send(&h, tx, &[]), 3);
    assert_eq!(recv(&h, rx, 64), (Vec::new(), 0));
}

#[test]
fn udp_datagrams_carry_hop_limit_and_traffic_class() {
    exercise(0, 7300);
}

#[test]
fn udplite_datagrams_carry_hop_limit_and_traffic_class() {
    exercise(IPPROTO_UDPLITE, 7301);
}

#[test]
fn ipv4_sockets_ignore_ipv6_messages_and_refuse_the_options() {
    let h = setup();
    let a = h.socket(SOCK_DGRAM);
    let sa = h.sin(MEM, [127, 0, 0, 1], 7302);
    assert_eq!(h.call("bind", &[a, sa, 16]), 0);
    assert_eq!(h.call("connect", &[a, sa, 16]), 0);
    let v6 = IPPROTO_IPV6 as u64;
    assert_eq!(
        h.set_int_opt(a, v6, IPV6_RECVHOPLIMIT, 1),
        err(Errno::ENOPROTOOPT)
    );
    // ip_cmsg_send passes over other levels.
    assert_eq!(send(&h, a, &message(999, &int(1))), 3);
    assert_eq!(recv(&h, a, 64), (Vec::new(), 0));
}
