//! Idle loopback connections parked out of smoltcp's socket walks
//! (`crate::net::sockets`): once more than a few sockets are polled, idle
//! connections are parked, and a packet for them, the program using them,
//! or their own timers keep or bring them back, so nothing is lost or
//! late.

use core::net::SocketAddr;

use super::*;
use crate::net::sockets::PARK_ABOVE;
use crate::platform::Clock;

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
fn a_parked_connection_wakes_for_its_keep_alive_probe() {
    // SO_KEEPALIVE gives smoltcp a timer for the connection: parked, it
    // leaves the polled sockets, and the stack asks to be polled when the
    // probe is due and brings it back then.
    let h = setup();
    let net = h.p.net.clone();
    let lfd = h.listener([127, 0, 0, 1], 7073, 0);
    let sa = h.sin(MEM, [127, 0, 0, 1], 7073);
    let c = h.socket(SOCK_STREAM);
    assert_eq!(h.set_int_opt(c, SOL_SOCKET, SO_KEEPALIVE, 1), 0);
    assert_eq!(h.set_int_opt(c, IPPROTO_TCP, TCP_KEEPIDLE, 10), 0);
    assert_eq!(h.call("connect", &[c, sa, 16]), 0);
    let s = h.call("accept", &[lfd, 0, 0]) as u64;
    let _others = connections(&h, 7076, 8);
    settle(&h);
    assert!(parked(&h, s) && parked(&h, c), "{}", net.describe());
    // The stack wants a poll when the probe is due, 10 s after the last
    // segment, no sooner than the minimum a parked timer waits.
    let (now, due) = serve_due_probe(&h, 10);
    assert!(
        (now + 8_000_000_000..=now + 10_000_000_000).contains(&due),
        "{now} {due}"
    );
    // And it still carries data.
    let msg = h.put(MEM + 0x100, b"alive");
    assert_eq!(h.call("write", &[c, msg, 5]), 5);
    assert_eq!(h.call("read", &[s, MEM + 0x200, 100]), 5);
}

/// Moves the mock clock to the time the stack asks to be polled at — a
/// parked connection's keep-alive probe, `period_s` after its last
/// segment — and polls: the connection is polled again, its probe goes
/// out and is answered, which starts the next period (were it left
/// parked, the stack would still ask for a poll at that time, now past).
/// Returns the time before and the probe's time.
pub(super) fn serve_due_probe(h: &H, period_s: u64) -> (u64, u64) {
    let now = h.m.monotonic_ns();
    let due = h.p.net.poll_at().expect("a parked timer to poll for");
    assert!(due > now, "{now} {due}");
    h.m.advance_ns(due - now);
    h.p.net.poll();
    let next = h.p.net.poll_at().expect("the next probe");
    assert!(next >= due + (period_s - 1) * 1_000_000_000, "{due} {next}");
    (now, due)
}

/// The keep-alive probe: smoltcp sends one as the option is set, and one
/// each idle period after; a period is `TCP_KEEPIDLE` seconds.
const IPPROTO_TCP: u64 = 6;
const TCP_KEEPIDLE: u64 = 4;

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

#[test]
fn idle_connections_over_the_card_are_parked_and_frames_bring_them_back() {
    // The external interface: the stack reads the connection of the
    // card's next frame before smoltcp takes it (`NicPhy::peek`).
    let (server, client) = two_hosts();
    let _tick = ticker(&[&server, &client]);
    let lfd = server.listener([0, 0, 0, 0], 7080, 0);
    let sa = client.sin(MEM, [10, 0, 2, 15], 7080);
    let pairs: Vec<(u64, u64)> = (0..12)
        .map(|_| {
            let c = client.socket(SOCK_STREAM);
            assert_eq!(client.call("connect", &[c, sa, 16]), 0);
            // Redis's setting: a keep-alive timer on every connection.
            let s = server.call("accept", &[lfd, 0, 0]);
            assert!(s >= 0, "accept: {s}");
            assert_eq!(server.set_int_opt(s as u64, SOL_SOCKET, SO_KEEPALIVE, 1), 0);
            (c, s as u64)
        })
        .collect();
    // Until the delayed ACKs and the first keep-alive probes are done.
    let idle = |h: &H| {
        (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(2));
            h.p.net.polled_external_sockets() <= PARK_ABOVE
        })
    };
    assert!(idle(&server), "{}", server.p.net.describe());
    assert!(server.p.net.parked().len() >= 12 - PARK_ABOVE);
    // Every connection carries a request and its answer, in and out of
    // the parked set.
    for round in 0..2 {
        for (i, &(c, s)) in pairs.iter().enumerate() {
            let msg = format!("request {round}.{i}");
            let at = client.put(MEM + 0x100, msg.as_bytes());
            let n = msg.len() as u64;
            assert_eq!(client.call("write", &[c, at, n]), n as i64);
            assert_eq!(server.call("read", &[s, MEM + 0x200, 100]), n as i64);
            assert_eq!(server.get(MEM + 0x200, msg.len()), msg.as_bytes());
            assert_eq!(server.call("write", &[s, MEM + 0x200, n]), n as i64);
            assert_eq!(client.call("read", &[c, MEM + 0x300, 100]), n as i64);
            assert_eq!(client.get(MEM + 0x300, msg.len()), msg.as_bytes());
        }
        assert!(idle(&server), "{}", server.p.net.describe());
    }
    // A parked end sees its peer close.
    let (c, s) = pairs[0];
    assert_eq!(client.call("close", &[c]), 0);
    assert_eq!(server.call("read", &[s, MEM + 0x200, 100]), 0);
}
