//! Idle loopback connections parked out of smoltcp's socket walks
//! (`crate::net::sockets`): they are parked once nothing is left to do,
//! and a packet for them, the program using them, or their own timers
//! keep or bring them back, so nothing is lost or late.

use super::*;

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

#[test]
fn idle_connections_are_parked_and_data_still_flows_both_ways() {
    let h = setup();
    let net = h.p.net.clone();
    let conns = connections(&h, 7071, 4);
    net.poll();
    // Both ends of all four: nothing to send, no timer running.
    assert_eq!(net.parked(), 8, "{}", net.describe());
    // Readiness checks read a parked socket where it is.
    let (c, s) = conns[2];
    assert_eq!(h.revents(s, POLLIN), 0);
    assert_eq!(net.parked(), 8);
    // The client writes: its segment reaches the parked server end.
    let msg = h.put(MEM + 0x100, b"ping");
    assert_eq!(h.call("write", &[c, msg, 4]), 4);
    assert_eq!(h.revents(s, POLLIN) & POLLIN, POLLIN);
    assert_eq!(h.call("read", &[s, MEM + 0x200, 100]), 4);
    assert_eq!(h.get(MEM + 0x200, 4), b"ping");
    let reply = h.put(MEM + 0x300, b"pong!");
    assert_eq!(h.call("write", &[s, reply, 5]), 5);
    assert_eq!(h.call("read", &[c, MEM + 0x400, 100]), 5);
    assert_eq!(h.get(MEM + 0x400, 5), b"pong!");
    // Once the delayed ACKs have gone, the pair is parked again.
    h.m.advance_ns(1_000_000_000);
    net.poll();
    assert_eq!(net.parked(), 8, "{}", net.describe());
    // The others were not disturbed: each still echoes.
    for &(c, s) in &conns {
        assert_eq!(h.call("write", &[c, msg, 4]), 4);
        assert_eq!(h.call("read", &[s, MEM + 0x200, 100]), 4);
    }
}

#[test]
fn a_parked_end_sees_its_peer_close() {
    let h = setup();
    let net = h.p.net.clone();
    let conns = connections(&h, 7072, 2);
    net.poll();
    assert_eq!(net.parked(), 4);
    let (c, s) = conns[0];
    assert_eq!(h.call("close", &[c]), 0);
    // The FIN reached the parked server end: readable, end of file.
    assert_eq!(h.revents(s, POLLIN) & POLLIN, POLLIN);
    assert_eq!(h.call("read", &[s, MEM + 0x200, 100]), 0);
    assert_eq!(h.call("close", &[s]), 0);
    h.m.advance_ns(1_000_000_000);
    net.poll();
    // The other connection is still parked and still works.
    assert_eq!(net.parked(), 2, "{}", net.describe());
    let (c, s) = conns[1];
    let msg = h.put(MEM + 0x100, b"still");
    assert_eq!(h.call("write", &[s, msg, 5]), 5);
    assert_eq!(h.call("read", &[c, MEM + 0x200, 100]), 5);
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
    let s = h.call("accept", &[lfd, 0, 0]);
    assert!(s >= 0);
    h.m.advance_ns(1_000_000_000);
    net.poll();
    // The server end is parked; the client with keep-alive is not.
    assert_eq!(net.parked(), 1, "{}", net.describe());
}

#[test]
fn connections_nobody_accepted_yet_are_parked_and_accepted_later() {
    let h = setup();
    let net = h.p.net.clone();
    let lfd = h.listener([127, 0, 0, 1], 7074, 0);
    let sa = h.sin(MEM, [127, 0, 0, 1], 7074);
    let clients: Vec<u64> = (0..3)
        .map(|_| {
            let c = h.socket(SOCK_STREAM);
            assert_eq!(h.call("connect", &[c, sa, 16]), 0);
            c
        })
        .collect();
    net.poll();
    assert_eq!(net.parked(), 6, "{}", net.describe());
    // Readiness of the listener reads its queue without unparking it.
    assert_eq!(h.revents(lfd, POLLIN) & POLLIN, POLLIN);
    assert_eq!(net.parked(), 6);
    let msg = h.put(MEM + 0x100, b"hi");
    for &c in &clients {
        let s = h.call("accept", &[lfd, 0, 0]);
        assert!(s >= 0, "accept: {s}");
        assert_eq!(h.call("write", &[c, msg, 2]), 2);
        assert_eq!(h.call("read", &[s as u64, MEM + 0x200, 100]), 2);
    }
}
