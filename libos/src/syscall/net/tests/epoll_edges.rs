//! Edge-triggered `epoll` on sockets, through the syscalls: as Linux, a
//! registration is reported again for each new event on a file that is
//! still ready (a second connection queued without an `accept` in
//! between, a second chunk of data, the peer shutting down), and not for
//! an `EAGAIN` the program got elsewhere.

use super::*;

const EPOLLIN: u32 = 1;
const EPOLLOUT: u32 = 4;
const EPOLLET: u32 = 1 << 31;
const AF_UNIX: u64 = 1;

impl H {
    /// A new epoll instance.
    fn epoll(&self) -> u64 {
        let ep = self.call("epoll_create1", &[0]);
        assert!(ep >= 0, "epoll_create1: {ep}");
        ep as u64
    }

    /// Registers `fd` with `events`, its data the fd.
    fn watch(&self, ep: u64, fd: u64, events: u32) {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&events.to_le_bytes());
        b[4..].copy_from_slice(&fd.to_le_bytes());
        let e = self.put(MEM + 0xc00, &b);
        assert_eq!(self.call("epoll_ctl", &[ep, 1, fd, e]), 0);
    }

    /// `epoll_wait` without waiting: the fds reported.
    fn ready(&self, ep: u64) -> Vec<u64> {
        let out = MEM + 0xd00;
        let n = self.call("epoll_wait", &[ep, out, 8, 0]);
        assert!(n >= 0, "epoll_wait: {n}");
        (0..n as u64)
            .map(|k| u64::from_le_bytes(self.get(out + k * 12 + 4, 8).try_into().unwrap()))
            .collect()
    }

    /// A `sockaddr_un` for the abstract name `name` at `addr`: its length.
    fn sun_abstract(&self, addr: u64, name: &[u8]) -> u64 {
        let mut b = alloc::vec![1u8, 0, 0];
        b.extend_from_slice(name);
        self.put(addr, &b);
        b.len() as u64
    }
}

#[test]
fn an_edge_triggered_unix_listener_hears_of_every_connection() {
    // stress-ng's epoll stressor: its server drops one reported event and
    // waits again; on Linux the next connection wakes it.
    let h = setup();
    let l = h.call("socket", &[AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0]) as u64;
    let sa = MEM + 0x100;
    let len = h.sun_abstract(sa, b"edges");
    assert_eq!(h.call("bind", &[l, sa, len]), 0);
    assert_eq!(h.call("listen", &[l, 16]), 0);
    let ep = h.epoll();
    h.watch(ep, l, EPOLLIN | EPOLLET);
    let connect = || {
        let c = h.call("socket", &[AF_UNIX, SOCK_STREAM, 0]) as u64;
        assert_eq!(h.call("connect", &[c, sa, len]), 0);
        c
    };
    let _c1 = connect();
    assert_eq!(h.ready(ep), [l]);
    assert_eq!(h.ready(ep), [], "no new connection");
    let _c2 = connect();
    assert_eq!(h.ready(ep), [l], "a second connection, no accept between");
    // An EAGAIN elsewhere is no event for it.
    let (r, _w) = {
        let fds = MEM + 0x200;
        assert_eq!(h.call("pipe2", &[fds, 0o4000]), 0);
        (h.i32_at(fds) as u64, h.i32_at(fds + 4) as u64)
    };
    assert_eq!(h.call("read", &[r, MEM + 0x300, 1]), err(Errno::EAGAIN));
    assert_eq!(h.ready(ep), []);
    for _ in 0..2 {
        assert!(h.call("accept", &[l, 0, 0]) >= 0);
    }
    assert_eq!(h.ready(ep), []);
}

#[test]
fn an_edge_triggered_unix_connection_hears_of_each_chunk_and_the_shutdown() {
    let h = setup();
    let sv = MEM + 0x100;
    assert_eq!(h.call("socketpair", &[AF_UNIX, SOCK_STREAM, 0, sv]), 0);
    let (a, b) = (h.i32_at(sv) as u64, h.i32_at(sv + 4) as u64);
    let ep = h.epoll();
    h.watch(ep, b, EPOLLIN | EPOLLET);
    let msg = h.put(MEM + 0x200, b"chunk");
    assert_eq!(h.call("write", &[a, msg, 5]), 5);
    assert_eq!(h.ready(ep), [b]);
    assert_eq!(h.call("read", &[b, MEM + 0x300, 2]), 2);
    assert_eq!(h.ready(ep), [], "read part, nothing new");
    assert_eq!(h.call("write", &[a, msg, 5]), 5);
    assert_eq!(h.ready(ep), [b], "a second chunk");
    // The peer reading is room for b's writes: no event for a reader.
    assert_eq!(h.call("write", &[b, msg, 5]), 5);
    assert_eq!(h.call("read", &[a, MEM + 0x300, 5]), 5);
    assert_eq!(h.ready(ep), []);
    assert_eq!(h.call("shutdown", &[a, 1]), 0);
    assert_eq!(h.ready(ep), [b], "the peer shut down");
    assert_eq!(h.ready(ep), []);
    // Its own shutdown wakes it too.
    assert_eq!(h.call("shutdown", &[b, 0]), 0);
    assert_eq!(h.ready(ep), [b]);
}

#[test]
fn an_edge_triggered_tcp_listener_and_connection_hear_of_every_arrival() {
    let h = setup();
    let lfd = h.listener([127, 0, 0, 1], 7100, 0);
    let sa = h.sin(MEM, [127, 0, 0, 1], 7100);
    let ep = h.epoll();
    h.watch(ep, lfd, EPOLLIN | EPOLLET);
    let (c1, c2) = (h.socket(SOCK_STREAM), h.socket(SOCK_STREAM));
    assert_eq!(h.call("connect", &[c1, sa, 16]), 0);
    assert_eq!(h.ready(ep), [lfd]);
    assert_eq!(h.ready(ep), []);
    assert_eq!(h.call("connect", &[c2, sa, 16]), 0);
    assert_eq!(h.ready(ep), [lfd], "a second connection, no accept between");
    let s = h.call("accept", &[lfd, 0, 0]) as u64;
    assert_eq!(h.ready(ep), [], "accepting is no event");
    // The connection: each segment of data is an event.
    assert_eq!(h.set_int_opt(c1, 6, 1, 1), 0);
    h.watch(ep, s, EPOLLIN | EPOLLET);
    let msg = h.put(MEM + 0x200, b"chunk");
    assert_eq!(h.call("write", &[c1, msg, 5]), 5);
    assert_eq!(h.ready(ep), [s]);
    assert_eq!(h.call("read", &[s, MEM + 0x300, 2]), 2);
    assert_eq!(h.ready(ep), [], "read part, nothing new");
    assert_eq!(h.call("write", &[c1, msg, 5]), 5);
    assert_eq!(h.ready(ep), [s], "a second chunk");
    assert_eq!(h.call("shutdown", &[c1, 1]), 0);
    assert_eq!(h.ready(ep), [s], "the FIN");
    assert_eq!(h.ready(ep), []);
}

#[test]
fn an_edge_triggered_tcp_writer_hears_of_room_after_a_full_buffer() {
    let h = setup();
    let lfd = h.listener([127, 0, 0, 1], 7101, 0);
    let sa = h.sin(MEM, [127, 0, 0, 1], 7101);
    let c = h.socket(SOCK_STREAM | SOCK_NONBLOCK);
    let _ = h.call("connect", &[c, sa, 16]);
    let s = h.call("accept", &[lfd, 0, 0]) as u64;
    let ep = h.epoll();
    h.watch(ep, c, EPOLLOUT | EPOLLET);
    assert_eq!(h.ready(ep), [c]);
    assert_eq!(h.ready(ep), []);
    let big = h.put(MEM + 0x1_0000, &[7u8; 1 << 16]);
    while h.call("write", &[c, big, 1 << 16]) > 0 {}
    assert_eq!(h.revents(c, 4), 0, "full");
    // The reader drains before the writer waits: the writer's
    // registration never saw its buffer full, yet room came back.
    for _ in 0..100 {
        let _ = h.call("recvfrom", &[s, MEM + 0x10_0000, 1 << 16, 0x40, 0, 0]);
        h.m.advance_ns(50_000_000);
        h.p.net.poll();
        if h.revents(c, 4) & 4 != 0 {
            break;
        }
    }
    assert_eq!(h.revents(c, 4), 4);
    assert_eq!(h.ready(ep), [c], "room after a full buffer");
    assert_eq!(h.ready(ep), []);
}

#[test]
fn an_edge_triggered_udp_socket_hears_of_every_datagram() {
    let h = setup();
    let (a, b) = (h.socket(SOCK_DGRAM), h.socket(SOCK_DGRAM));
    let sa = h.sin(MEM, [127, 0, 0, 1], 7102);
    assert_eq!(h.call("bind", &[b, sa, 16]), 0);
    let ep = h.epoll();
    h.watch(ep, b, EPOLLIN | EPOLLET);
    let msg = h.put(MEM + 0x200, b"datagram");
    assert_eq!(h.call("sendto", &[a, msg, 8, 0, sa, 16]), 8);
    assert_eq!(h.ready(ep), [b]);
    assert_eq!(h.ready(ep), []);
    assert_eq!(h.call("sendto", &[a, msg, 8, 0, sa, 16]), 8);
    assert_eq!(h.ready(ep), [b], "a second datagram");
    assert_eq!(h.call("read", &[b, MEM + 0x300, 64]), 8);
    assert_eq!(h.ready(ep), [], "one read, nothing new");
    assert_eq!(h.call("read", &[b, MEM + 0x300, 64]), 8);
    assert_eq!(h.call("sendto", &[a, msg, 8, 0, sa, 16]), 8);
    assert_eq!(h.ready(ep), [b]);
}
