//! Idle loopback connections parked out of smoltcp's socket walks
//! (`crate::net::sockets`): once more than a few sockets are polled, idle
//! connections are parked, and a packet for them, the program using them,
//! or their own timers keep or bring them back, so nothing is lost or
//! late.

use core::net::SocketAddr;

use super::*;
use crate::net::sockets::PARK_ABOVE;

const SOL_SOCKET: u64 = 1;
const SO_KEEPALIVE: u64 = 9;
const POLLIN: u16 = 1;

/// `n` connections to a listener on 127.0.0.1:`port`: (client, server) fds.
fn connections(h: &H, port: u16, n: usize) -> Vec<(u64, u64)> {
    let lfd = h.listener([127, 0, 0, 1], port, 0);
    let sa = h.sin(MEM, [127, 0, 0, 1], port);
    (0..n)
        .map(|_| {
            let c = h.socket(SOCK_STREAM);
            assert_eq!(h.call("connect", &[c, sa, 16]), 0);
            let s = h.call("accept", &[lfd, 0, 0]);
            assert!(s >= 0, "accept: {s}");
            (c, s as u64)
        })
        .collect()
}

/// Lets delayed ACKs go: then every idle connection can be parked.
fn settle(h: &H) {
    h.m.advance_ns(1_000_000_000);
    h.p.net.poll();
}

/// The port of a `sockaddr_in` that `call` fills in for `fd`.
fn port(h: &H, call: &str, fd: u64) -> u16 {
    let (name, len) = (MEM + 0xb00, MEM + 0xb20);
    h.put(len, &16u32.to_le_bytes());
    assert_eq!(h.call(call, &[fd, name, len]), 0);
    u16::from_be_bytes(h.get(name + 2, 2).try_into().unwrap())
}

/// Whether `fd`'s end of its loopback connection is parked.
fn parked(h: &H, fd: u64) -> bool {
    let (local, remote) = (port(h, "getsockname", fd), port(h, "getpeername", fd));
    let lo = |p| SocketAddr::new(Ipv4Addr::LOCALHOST.into(), p);
    h.p.net.parked().contains(&(lo(local), lo(remote)))
}

#[test]
fn idle_connections_are_parked_and_data_still_flows_both_ways() {
    let h = setup();
    let net = h.p.net.clone();
    let conns = connections(&h, 7071, 8);
    settle(&h);
    // Nothing to send, no timer running: all but a few are parked.
    assert!(net.polled_sockets() <= PARK_ABOVE, "{}", net.describe());
    let (c, s) = conns[0];
    assert!(parked(&h, c) && parked(&h, s), "{}", net.describe());
    // Readiness checks read a parked socket where it is.
    assert_eq!(h.revents(s, POLLIN), 0);
    assert!(parked(&h, s));
    // The client writes: its segment reaches the parked server end.
    let msg = h.put(MEM + 0x100, b"ping");
    assert_eq!(h.call("write", &[c, msg, 4]), 4);
    assert!(!parked(&h, s));
    assert_eq!(h.revents(s, POLLIN) & POLLIN, POLLIN);
    assert_eq!(h.call("read", &[s, MEM + 0x200, 100]), 4);
    assert_eq!(h.get(MEM + 0x200, 4), b"ping");
    let reply = h.put(MEM + 0x300, b"pong!");
    assert_eq!(h.call("write", &[s, reply, 5]), 5);
    assert_eq!(h.call("read", &[c, MEM + 0x400, 100]), 5);
    assert_eq!(h.get(MEM + 0x400, 5), b"pong!");
    // Every pair echoes; with all of them polled again, they are parked
    // again once idle.
    for &(c, s) in &conns {
        assert_eq!(h.call("write", &[c, msg, 4]), 4);
        assert_eq!(h.call("read", &[s, MEM + 0x200, 100]), 4);
        assert_eq!(h.call("write", &[s, reply, 5]), 5);
        assert_eq!(h.call("read", &[c, MEM + 0x400, 100]), 5);
    }
    assert!(net.polled_sockets() > PARK_ABOVE);
    settle(&h);
    assert!(net.polled_sockets() <= PARK_ABOVE, "{}", net.describe());
}

#[test]
fn a_few_connections_are_not_parked() {
    // Walking a few sockets is cheaper than parking them.
    let h = setup();
    let net = h.p.net.clone();
    let _conns = connections(&h, 7075, 3);
    settle(&h);
    assert!(net.parked().is_empty(), "{}", net.describe());
}

#[test]
fn a_parked_end_sees_its_peer_close() {
    let h = setup();
    let net = h.p.net.clone();
    let conns = connections(&h, 7072, 8);
    settle(&h);
    let (c, s) = conns[0];
    assert!(parked(&h, s), "{}", net.describe());
    assert_eq!(h.call("close", &[c]), 0);
    // The FIN reached the parked server end: readable, end of file.
    assert_eq!(h.revents(s, POLLIN) & POLLIN, POLLIN);
    assert_eq!(h.call("read", &[s, MEM + 0x200, 100]), 0);
    assert_eq!(h.call("close", &[s]), 0);
    settle(&h);
    // The others still work.
    let msg = h.put(MEM + 0x100, b"still");
    for &(c, s) in &conns[1..] {
        assert_eq!(h.call("write", &[s, msg, 5]), 5);
        assert_eq!(h.call("read", &[c, MEM + 0x200, 100]), 5);
    }
}

#[test]
fn a_connection_with_a_timer_of_its_own_is_not_parked() {
    // SO_KEEPALIVE gives smoltcp a timer for the connection: it must stay
    // in the polled sockets for its probes to go out.
    let h = setup();
    let net = h.p.net.clone();
    let lfd = h.listener([127, 0, 0, 1], 7073, 0);
    let sa = h.sin(MEM, [127, 0, 0, 1], 7073);
    let c = h.socket(SOCK_STREAM);
    assert_eq!(h.set_int_opt(c, SOL_SOCKET, SO_KEEPALIVE, 1), 0);
    assert_eq!(h.call("connect", &[c, sa, 16]), 0);
    let s = h.call("accept", &[lfd, 0, 0]) as u64;
    let _others = connections(&h, 7076, 8);
    settle(&h);
    assert!(parked(&h, s), "{}", net.describe());
    assert!(!parked(&h, c), "{}", net.describe());
}

#[test]
fn connections_nobody_accepted_yet_are_parked_and_accepted_later() {
    let h = setup();
    let net = h.p.net.clone();
    let lfd = h.listener([127, 0, 0, 1], 7074, 0);
    let sa = h.sin(MEM, [127, 0, 0, 1], 7074);
    let clients: Vec<u64> = (0..8)
        .map(|_| {
            let c = h.socket(SOCK_STREAM);
            assert_eq!(h.call("connect", &[c, sa, 16]), 0);
            c
        })
        .collect();
    settle(&h);
    let waiting = net.parked().len();
    assert!(
        waiting > 0 && net.polled_sockets() <= PARK_ABOVE,
        "{}",
        net.describe()
    );
    // Readiness of the listener reads its queue without unparking it.
    assert_eq!(h.revents(lfd, POLLIN) & POLLIN, POLLIN);
    assert_eq!(net.parked().len(), waiting);
    let msg = h.put(MEM + 0x100, b"hi");
    for &c in &clients {
        let s = h.call("accept", &[lfd, 0, 0]);
        assert!(s >= 0, "accept: {s}");
        assert_eq!(h.call("write", &[c, msg, 2]), 2);
        assert_eq!(h.call("read", &[s as u64, MEM + 0x200, 100]), 2);
    }
}
