//! Socket syscalls through the dispatch table: TCP between two stacks
//! joined by an in-memory card pair and over loopback, UDP, readiness,
//! errors, Unix sockets.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use crate::error::Errno;
use crate::fs::{DeviceRegistry, Vfs};
use crate::net::testdev::{
    PAIR_TSO_FRAME, PairEnd, PairStats, StdClock, device_pair, lending_pair, offloading_pair,
};
use crate::net::{NetConfig, NetDevice, NetStack};
use crate::platform::mock::MockPlatform;
use crate::process::Process;
use crate::syscall::{SyscallTable, syscall_number};
use crate::user::UserMemory;

mod copy_free;
mod epoll_edges;
mod parking;
mod rfc3542;
mod udplite;
mod v6;

/// Scratch user memory: 16 MiB from here.
const MEM: u64 = 0x100_0000;
const MEM_BYTES: usize = 16 << 20;

struct H {
    m: Arc<MockPlatform>,
    p: Arc<Process>,
    t: Arc<SyscallTable>,
}

fn process(m: &Arc<MockPlatform>, net: Option<Arc<NetStack>>) -> Arc<Process> {
    let vfs = Arc::new(Vfs::new(
        m.clone(),
        DeviceRegistry::standard(m.clone(), m.clone()),
    ));
    Arc::new(match net {
        Some(n) => Process::with_net(m.clone(), vfs, n),
        None => Process::new(m.clone(), vfs),
    })
}

fn setup() -> H {
    let m = Arc::new(MockPlatform::new());
    m.map(MEM, MEM_BYTES);
    let p = process(&m, None);
    H {
        m,
        p,
        t: Arc::new(SyscallTable::new()),
    }
}

/// Two processes on two stacks (10.0.2.15 and 10.0.2.16) joined by a card pair.
fn two_hosts() -> (H, H) {
    hosts_over(device_pair(256), NetConfig::default().copybreak)
}

/// [`two_hosts`] over cards that lend their buffers, every frame to send
/// written in place (no copybreak).
fn two_lending_hosts() -> (H, H) {
    hosts_over(lending_pair(256), 0)
}

fn hosts_over((a, b): (Arc<PairEnd>, Arc<PairEnd>), copybreak: usize) -> (H, H) {
    let host = |dev: Arc<dyn NetDevice>, last: u8| {
        let m = Arc::new(MockPlatform::new());
        m.map(MEM, MEM_BYTES);
        // The peer runs on another thread and TCP's timers in real time:
        // give waits longer than the mock's default before it gives up.
        m.set_block_spins(2_000_000);
        let config = NetConfig {
            addr: Ipv4Addr::new(10, 0, 2, last),
            random_seed: u64::from(last),
            copybreak,
            ..NetConfig::default()
        };
        let net = Arc::new(NetStack::new(Some(dev), config, StdClock::new()));
        H {
            p: process(&m, Some(net)),
            m,
            t: Arc::new(SyscallTable::new()),
        }
    };
    (host(a, 15), host(b, 16))
}

/// Polls stacks every millisecond, as the kernel's timer tick does, until dropped.
struct Ticker {
    stop: Arc<core::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn ticker(stacks: &[&H]) -> Ticker {
    let stop = Arc::new(core::sync::atomic::AtomicBool::new(false));
    let nets: Vec<Arc<NetStack>> = stacks.iter().map(|h| h.p.net.clone()).collect();
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        while !flag.load(core::sync::atomic::Ordering::Relaxed) {
            for n in &nets {
                n.poll();
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
    Ticker {
        stop,
        thread: Some(thread),
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, core::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn err(e: Errno) -> i64 {
    -i64::from(e.as_i32())
}

const AF_INET: u64 = 2;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
const SOCK_NONBLOCK: u64 = 0o4000;

impl H {
    fn call(&self, name: &str, args: &[u64]) -> i64 {
        let mut raw = [0u64; 6];
        raw[..args.len()].copy_from_slice(args);
        self.t.dispatch(&self.p, syscall_number(name).unwrap(), raw) as i64
    }
    fn put(&self, addr: u64, bytes: &[u8]) -> u64 {
        self.m.write_user(addr, bytes).unwrap();
        addr
    }
    fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut b = alloc::vec![0u8; len];
        self.m.read_user(addr, &mut b).unwrap();
        b
    }
    fn i32_at(&self, addr: u64) -> i32 {
        i32::from_le_bytes(self.get(addr, 4).try_into().unwrap())
    }
    /// A `sockaddr_in` at `addr`.
    fn sin(&self, addr: u64, ip: [u8; 4], port: u16) -> u64 {
        let mut b = [0u8; 16];
        b[0] = 2;
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[4..8].copy_from_slice(&ip);
        self.put(addr, &b)
    }
    fn socket(&self, ty: u64) -> u64 {
        let fd = self.call("socket", &[AF_INET, ty, 0]);
        assert!(fd >= 0, "socket: {fd}");
        fd as u64
    }
    /// A TCP listener on `ip:port`.
    fn listener(&self, ip: [u8; 4], port: u16, flags: u64) -> u64 {
        let fd = self.socket(SOCK_STREAM | flags);
        let sa = self.sin(MEM, ip, port);
        assert_eq!(self.call("bind", &[fd, sa, 16]), 0);
        assert_eq!(self.call("listen", &[fd, 16]), 0);
        fd
    }
    fn int_opt(&self, fd: u64, level: u64, name: u64) -> i64 {
        let (val, len) = (MEM + 0x900, MEM + 0x910);
        self.put(len, &4i32.to_le_bytes());
        let r = self.call("getsockopt", &[fd, level, name, val, len]);
        if r < 0 {
            r
        } else {
            i64::from(self.i32_at(val))
        }
    }
    fn set_int_opt(&self, fd: u64, level: u64, name: u64, v: i32) -> i64 {
        let val = self.put(MEM + 0x920, &v.to_le_bytes());
        self.call("setsockopt", &[fd, level, name, val, 4])
    }
    /// `poll` on one fd with a zero timeout: its `revents`.
    fn revents(&self, fd: u64, events: u16) -> u16 {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&(fd as i32).to_le_bytes());
        b[4..6].copy_from_slice(&events.to_le_bytes());
        let at = self.put(MEM + 0xa00, &b);
        assert!(self.call("poll", &[at, 1, 0]) >= 0);
        u16::from_le_bytes(self.get(at + 6, 2).try_into().unwrap())
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn tcp_megabytes_each_way_between_two_stacks() {
    let (server, client) = two_hosts();
    tcp_megabytes_each_way(&server, &client);
    for c in card_counters([&server, &client]) {
        assert_eq!(c.tx_in_place, 0, "{c}");
    }
}

#[test]
fn tcp_megabytes_each_way_between_two_stacks_over_lent_buffers() {
    let (server, client) = two_lending_hosts();
    tcp_megabytes_each_way(&server, &client);
    for c in card_counters([&server, &client]) {
        // Every frame sent in place but for those the full card pushed
        // into the backlog.
        assert_eq!(c.tx_in_place + c.tx_deferred, c.tx_frames, "{c}");
        assert!(c.tx_in_place > (3 << 20) / 1500, "{c}");
    }
}

/// [`tcp_megabytes_each_way`] over cards that finish TCP checksums and
/// cut long frames into segments, as QEMU's TAP path does, with frames
/// written in place and copied: each side sends its data in few long
/// frames, and the other verifies every segment's checksum (a wrong
/// pseudo-header sum would stall the transfer).
#[test]
fn tcp_megabytes_each_way_over_cards_that_finish_checksums_and_cut_segments() {
    for lends in [true, false] {
        let (a, b) = offloading_pair(256, lends);
        let cards = [a.clone(), b.clone()];
        let (server, client) = hosts_over((a, b), NetConfig::default().copybreak);
        tcp_megabytes_each_way(&server, &client);
        for (c, card) in card_counters([&server, &client]).iter().zip(&cards) {
            let cut = PairStats::get(&card.stats.cut) as u64;
            assert_eq!(cut, c.tx_segmented, "lends={lends}: {c}");
            // 3 MiB in frames of up to 32 KiB: most of it went cut.
            assert!(
                c.tx_segmented >= (3 << 20) / PAIR_TSO_FRAME as u64 / 2,
                "lends={lends}: {c}"
            );
            // Every TCP frame's checksum was left to the card.
            assert!(PairStats::get(&card.stats.completed) as u64 >= c.tx_frames / 2);
        }
    }
}

#[test]
fn tcp_megabytes_each_way_write_full_frames_in_place_and_copy_short_ones() {
    // The default copybreak: segments of data are written in place,
    // acknowledgements copied.
    let (server, client) = hosts_over(lending_pair(256), NetConfig::default().copybreak);
    tcp_megabytes_each_way(&server, &client);
    for c in card_counters([&server, &client]) {
        assert_eq!(
            c.tx_in_place + c.tx_short_copied + c.tx_deferred,
            c.tx_frames,
            "{c}"
        );
        assert!(c.tx_in_place > (3 << 20) / 1500, "{c}");
        assert!(c.tx_short_copied > 0, "{c}");
    }
}

/// The card counters of each host's stack.
fn card_counters(hosts: [&H; 2]) -> [crate::net::counters::CountersSnapshot; 2] {
    hosts.map(|h| h.p.net.counters().expect("a stack with a card counts"))
}

fn tcp_megabytes_each_way(server: &H, client: &H) {
    let _tick = ticker(&[server, client]);
    let lfd = server.listener([0, 0, 0, 0], 7001, 0);
    const LEN: usize = 3 << 20;
    let data = pattern(LEN);
    let src = client.put(MEM + 0x10_0000, &data);
    let sink = {
        let (m, p, t) = (server.m.clone(), server.p.clone(), server.t.clone());
        std::thread::spawn(move || {
            let s = H { m, p, t };
            let cfd = s.call("accept", &[lfd, 0, 0]) as u64;
            let buf = MEM + 0x80_0000;
            let mut got = 0usize;
            loop {
                let n = s.call("read", &[cfd, buf + got as u64, (LEN + 1 - got) as u64]);
                assert!(n >= 0, "server read: {n} after {got}");
                if n == 0 {
                    break;
                }
                got += n as usize;
            }
            assert_eq!(got, LEN);
            // Send it all back, then close.
            assert_eq!(s.call("write", &[cfd, buf, LEN as u64]), LEN as i64);
            assert_eq!(s.call("close", &[cfd]), 0);
            s.get(buf, LEN)
        })
    };
    let fd = client.socket(SOCK_STREAM);
    let sa = client.sin(MEM, [10, 0, 2, 15], 7001);
    assert_eq!(client.call("connect", &[fd, sa, 16]), 0);
    assert_eq!(client.call("write", &[fd, src, LEN as u64]), LEN as i64);
    assert_eq!(
        client.call("shutdown", &[fd, 1]),
        0,
        "FIN: the server reads end of file"
    );
    let dst = MEM + 0x80_0000;
    let mut got = 0usize;
    loop {
        let n = client.call("read", &[fd, dst + got as u64, (LEN + 1 - got) as u64]);
        assert!(n >= 0, "client read: {n} after {got}");
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    assert!(
        sink.join().unwrap() == data,
        "bytes the server received differ"
    );
    assert_eq!(got, LEN);
    assert!(client.get(dst, LEN) == data, "bytes sent back differ");
    // Both cards counted the frames that carried it (sent ones may have
    // been cut into segments by the card).
    for c in card_counters([server, client]) {
        assert!(c.tx_frames > 0 && c.rx_frames > (LEN / 1500) as u64, "{c}");
    }
}

/// Both directions full at once (the client writes while the echo is
/// still coming back): sometimes stalls with the server's send buffer
/// full and the client's receive buffer empty until the mock gives up
/// (`EDEADLK`). Not understood yet (window update / zero-window probe
/// backoff?); kept to reproduce it: `cargo test -p libos -- --ignored concurrent_echo`.
#[test]
#[ignore = "intermittent stall under bidirectional full buffers, under investigation"]
fn tcp_concurrent_echo_of_megabytes_between_two_stacks() {
    let (server, client) = two_hosts();
    // The server closes with echoed bytes still queued: its stack must
    // keep being driven after its thread is done.
    let _tick = ticker(&[&server, &client]);
    let lfd = server.listener([0, 0, 0, 0], 7000, 0);
    const LEN: usize = 3 << 20;
    let echo = {
        let (m, p, t) = (server.m.clone(), server.p.clone(), server.t.clone());
        std::thread::spawn(move || {
            let s = H { m, p, t };
            let cfd = s.call("accept", &[lfd, 0, 0]);
            assert!(cfd >= 0, "accept: {cfd}");
            let buf = MEM + 0x10_0000;
            let mut total = 0;
            loop {
                let n = s.call("read", &[cfd as u64, buf, 100_000]);
                assert!(n >= 0, "read: {n}");
                if n == 0 {
                    break;
                }
                assert_eq!(s.call("write", &[cfd as u64, buf, n as u64]), n);
                total += n as usize;
            }
            assert_eq!(s.call("close", &[cfd as u64]), 0);
            total
        })
    };
    let fd = client.socket(SOCK_STREAM);
    let sa = client.sin(MEM, [10, 0, 2, 15], 7000);
    assert_eq!(client.call("connect", &[fd, sa, 16]), 0);
    let data = pattern(LEN);
    let src = client.put(MEM + 0x10_0000, &data);
    let writer = {
        let (m, p, t) = (client.m.clone(), client.p.clone(), client.t.clone());
        std::thread::spawn(move || {
            let c = H { m, p, t };
            assert_eq!(c.call("write", &[fd, src, LEN as u64]), LEN as i64);
            assert_eq!(c.call("shutdown", &[fd, 1]), 0);
        })
    };
    let dst = MEM + 0x80_0000;
    let mut got = 0usize;
    let t0 = std::time::Instant::now();
    loop {
        let n = client.call("read", &[fd, dst + got as u64, (LEN + 1 - got) as u64]);
        assert!(
            n >= 0,
            "read: {n} after {got} bytes, {:?}\nserver: {}\nclient: {}",
            t0.elapsed(),
            server.p.net.describe(),
            client.p.net.describe()
        );
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    writer.join().unwrap();
    assert_eq!(echo.join().unwrap(), LEN);
    assert_eq!(got, LEN);
    assert!(client.get(dst, LEN) == data, "echoed bytes differ");
}

#[test]
fn loopback_server_and_client_in_one_process() {
    let h = setup();
    let lfd = h.listener([127, 0, 0, 1], 6379, SOCK_NONBLOCK);
    assert_eq!(h.call("accept4", &[lfd, 0, 0, 0]), err(Errno::EAGAIN));
    assert_eq!(h.revents(lfd, 1), 0);
    let c = h.socket(SOCK_STREAM);
    let sa = h.sin(MEM, [127, 0, 0, 1], 6379);
    assert_eq!(h.call("connect", &[c, sa, 16]), 0);
    assert_eq!(h.call("connect", &[c, sa, 16]), err(Errno::EISCONN));
    assert_eq!(h.revents(lfd, 1), 1, "a connection to accept");
    let (peer, plen) = (MEM + 0x100, MEM + 0x110);
    h.put(plen, &16i32.to_le_bytes());
    let s = h.call("accept4", &[lfd, peer, plen, SOCK_NONBLOCK | 0o2000000]) as u64;
    assert!((s as i64) >= 0);
    assert_eq!(h.i32_at(plen), 16);
    let peer_bytes = h.get(peer, 8);
    assert_eq!(&peer_bytes[..2], &[2, 0]);
    assert_eq!(&peer_bytes[4..8], &[127, 0, 0, 1]);
    // The accepted socket's peer is the client's local address.
    let (name, nlen) = (MEM + 0x200, MEM + 0x210);
    h.put(nlen, &16i32.to_le_bytes());
    assert_eq!(h.call("getsockname", &[c, name, nlen]), 0);
    assert_eq!(h.get(name, 8), peer_bytes);
    h.put(nlen, &16i32.to_le_bytes());
    assert_eq!(h.call("getpeername", &[s, name, nlen]), 0);
    assert_eq!(h.get(name, 8), peer_bytes);
    assert_eq!(h.call("fcntl", &[s, 1]), 1, "SOCK_CLOEXEC");
    assert_eq!(h.call("read", &[s, MEM + 0x300, 10]), err(Errno::EAGAIN));
    let msg = h.put(MEM + 0x400, b"PING\r\n");
    assert_eq!(h.call("sendto", &[c, msg, 6, 0, 0, 0]), 6);
    assert_eq!(h.revents(s, 1), 1);
    assert_eq!(
        h.call("recvfrom", &[s, MEM + 0x300, 2, 2, 0, 0]),
        2,
        "MSG_PEEK"
    );
    assert_eq!(h.call("read", &[s, MEM + 0x300, 100]), 6);
    assert_eq!(h.get(MEM + 0x300, 6), b"PING\r\n");
    assert_eq!(h.call("write", &[s, msg, 6]), 6);
    assert_eq!(h.call("read", &[c, MEM + 0x300, 100]), 6);
    // Closing the client: the server reads end of file and sees POLLIN.
    assert_eq!(h.call("close", &[c]), 0);
    assert_eq!(h.revents(s, 1) & 1, 1);
    assert_eq!(h.call("read", &[s, MEM + 0x300, 100]), 0);
    assert_eq!(h.call("close", &[s]), 0);
    assert_eq!(h.call("close", &[lfd]), 0);
    // The port is free again.
    h.listener([127, 0, 0, 1], 6379, 0);
}

#[test]
fn closed_loopback_connections_leave_no_sockets_behind() {
    let m = Arc::new(MockPlatform::new());
    m.map(MEM, MEM_BYTES);
    let h = setup();
    let net = h.p.net.clone();
    let lfd = h.listener([127, 0, 0, 1], 7070, 0);
    let sa = h.sin(MEM, [127, 0, 0, 1], 7070);
    for _ in 0..20 {
        let c = h.socket(SOCK_STREAM);
        assert_eq!(h.call("connect", &[c, sa, 16]), 0);
        let s = h.call("accept4", &[lfd, 0, 0, 0]);
        assert!(s >= 0, "accept: {s}");
        assert_eq!(h.call("close", &[c]), 0);
        assert_eq!(h.call("close", &[s as u64]), 0);
    }
    // Nothing but the listener's sockets: no connection lingers in
    // TIME-WAIT to be walked by every later poll.
    let left = net.describe();
    let lingering = left
        .split("] ")
        .filter(|s| !s.is_empty() && !s.contains("LISTEN"))
        .count();
    assert_eq!(lingering, 0, "{left}");
}

#[test]
fn udp_round_trip_over_loopback_and_a_card() {
    let h = setup();
    let a = h.socket(SOCK_DGRAM);
    let b = h.socket(SOCK_DGRAM);
    let sa = h.sin(MEM, [127, 0, 0, 1], 5353);
    assert_eq!(h.call("bind", &[a, sa, 16]), 0);
    let msg = h.put(MEM + 0x100, b"hello udp");
    assert_eq!(h.call("sendto", &[b, msg, 9, 0, sa, 16]), 9);
    let (from, flen) = (MEM + 0x200, MEM + 0x210);
    h.put(flen, &16i32.to_le_bytes());
    // MSG_TRUNC: the datagram's real length, 4 bytes copied.
    assert_eq!(
        h.call("recvfrom", &[a, MEM + 0x300, 4, 0x20, from, flen]),
        9
    );
    assert_eq!(h.get(MEM + 0x300, 4), b"hell");
    let from_bytes = h.get(from, 8);
    assert_eq!(&from_bytes[4..8], &[127, 0, 0, 1]);
    // Reply to the sender's ephemeral port.
    assert_eq!(h.call("sendto", &[a, msg, 5, 0, from, 16]), 5);
    assert_eq!(h.call("read", &[b, MEM + 0x300, 100]), 5);
    assert_eq!(
        h.call("recvfrom", &[a, MEM + 0x300, 4, 0x40, 0, 0]),
        err(Errno::EAGAIN)
    );
    assert_eq!(
        h.call("sendto", &[a, msg, 5, 0, 0, 0]),
        err(Errno::EDESTADDRREQ)
    );
    // Over a card pair.
    let (s, c) = two_hosts();
    let sfd = s.socket(SOCK_DGRAM);
    let any = s.sin(MEM, [0, 0, 0, 0], 53);
    assert_eq!(s.call("bind", &[sfd, any, 16]), 0);
    let cfd = c.socket(SOCK_DGRAM);
    let dst = c.sin(MEM, [10, 0, 2, 15], 53);
    assert_eq!(c.call("connect", &[cfd, dst, 16]), 0);
    let q = c.put(MEM + 0x100, b"query");
    assert_eq!(c.call("write", &[cfd, q, 5]), 5);
    // The datagram waits for ARP: the tick drives the client's stack.
    let _tick = ticker(&[&c]);
    let got = s.call("recvfrom", &[sfd, MEM + 0x300, 100, 0, 0, 0]);
    assert_eq!(got, 5, "receive over the card");
    assert_eq!(s.get(MEM + 0x300, 5), b"query");
}

#[test]
fn nonblocking_connect_reports_through_poll_and_so_error() {
    let (server, client) = two_hosts();
    let lfd = server.listener([10, 0, 2, 15], 8080, SOCK_NONBLOCK);
    assert_eq!(server.call("accept", &[lfd, 0, 0]), err(Errno::EAGAIN));
    let fd = client.socket(SOCK_STREAM | SOCK_NONBLOCK);
    let sa = client.sin(MEM, [10, 0, 2, 15], 8080);
    assert_eq!(
        client.call("connect", &[fd, sa, 16]),
        err(Errno::EINPROGRESS)
    );
    assert_eq!(client.call("connect", &[fd, sa, 16]), err(Errno::EALREADY));
    assert_eq!(client.revents(fd, 4), 0, "not writable while connecting");
    let mut accepted = -1;
    for _ in 0..100_000 {
        server.p.net.poll();
        if client.revents(fd, 4) == 4 {
            accepted = server.call("accept", &[lfd, 0, 0]);
            if accepted >= 0 {
                break;
            }
        }
        std::thread::yield_now();
    }
    assert!(accepted >= 0, "the handshake completed");
    assert_eq!(client.int_opt(fd, 1, 4), 0, "SO_ERROR");
    // Refused: RST from the server's stack.
    let fd2 = client.socket(SOCK_STREAM | SOCK_NONBLOCK);
    let closed = client.sin(MEM, [10, 0, 2, 15], 8081);
    assert_eq!(
        client.call("connect", &[fd2, closed, 16]),
        err(Errno::EINPROGRESS)
    );
    let mut ev = 0;
    for _ in 0..100_000 {
        server.p.net.poll();
        ev = client.revents(fd2, 4);
        if ev != 0 {
            break;
        }
        std::thread::yield_now();
    }
    assert_eq!(ev & 0x8, 0x8, "POLLERR after the RST: {ev:#x}");
    assert_eq!(
        client.int_opt(fd2, 1, 4),
        i64::from(Errno::ECONNREFUSED.as_i32())
    );
    assert_eq!(
        client.int_opt(fd2, 1, 4),
        0,
        "SO_ERROR is cleared once read"
    );
}

#[test]
fn blocking_connect_to_a_closed_port_is_refused() {
    let h = setup();
    let fd = h.socket(SOCK_STREAM);
    let sa = h.sin(MEM, [127, 0, 0, 1], 9);
    assert_eq!(h.call("connect", &[fd, sa, 16]), err(Errno::ECONNREFUSED));
    let ext = h.sin(MEM, [10, 0, 2, 2], 80);
    let fd = h.socket(SOCK_STREAM);
    assert_eq!(
        h.call("connect", &[fd, ext, 16]),
        err(Errno::ENETUNREACH),
        "no card"
    );
}

#[test]
fn epoll_sees_connections_data_and_hangup() {
    let h = setup();
    let lfd = h.listener([0, 0, 0, 0], 80, SOCK_NONBLOCK);
    let ep = h.call("epoll_create1", &[0]) as u64;
    let ev = |events: u32, data: u64| {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&events.to_le_bytes());
        b[4..].copy_from_slice(&data.to_le_bytes());
        h.put(MEM + 0x500, &b)
    };
    assert_eq!(h.call("epoll_ctl", &[ep, 1, lfd, ev(1, 100)]), 0);
    let out = MEM + 0x600;
    assert_eq!(h.call("epoll_wait", &[ep, out, 8, 0]), 0);
    let c = h.socket(SOCK_STREAM);
    let sa = h.sin(MEM, [127, 0, 0, 1], 80);
    assert_eq!(h.call("connect", &[c, sa, 16]), 0);
    assert_eq!(h.call("epoll_wait", &[ep, out, 8, 10]), 1);
    assert_eq!(h.get(out + 4, 8), 100u64.to_le_bytes());
    let s = h.call("accept", &[lfd, 0, 0]) as u64;
    assert_eq!(h.call("epoll_ctl", &[ep, 1, s, ev(1 | 4, 200)]), 0);
    assert_eq!(h.call("epoll_wait", &[ep, out, 8, 0]), 1);
    assert_eq!(h.i32_at(out), 4, "writable, nothing to read");
    let msg = h.put(MEM + 0x700, b"x");
    assert_eq!(h.call("write", &[c, msg, 1]), 1);
    assert_eq!(h.call("epoll_wait", &[ep, out, 8, 0]), 1);
    assert_eq!(h.i32_at(out), 5);
    assert_eq!(h.call("read", &[s, MEM + 0x800, 10]), 1);
    // The peer's shutdown: readable (end of file); after both FINs, HUP.
    assert_eq!(h.call("shutdown", &[c, 1]), 0);
    assert_eq!(h.call("epoll_wait", &[ep, out, 8, 0]), 1);
    assert_eq!(h.i32_at(out) & 1, 1);
    assert_eq!(h.call("read", &[s, MEM + 0x800, 10]), 0);
    assert_eq!(h.call("shutdown", &[s, 1]), 0);
    assert_eq!(h.revents(s, 1) & 0x10, 0x10, "POLLHUP");
    // The client, shut for writing, still reads what the server sent.
    assert_eq!(h.call("read", &[c, MEM + 0x800, 10]), 0);
}

#[test]
fn epoll_reports_connections_in_the_order_their_data_arrived() {
    // Issue 17: Redis serves clients in epoll order; Linux's ready list
    // is in arrival order, not fd order. The lower fd's data comes second.
    let h = setup();
    let lfd = h.listener([127, 0, 0, 1], 6379, 0);
    let sa = h.sin(MEM, [127, 0, 0, 1], 6379);
    let (c1, c2) = (h.socket(SOCK_STREAM), h.socket(SOCK_STREAM));
    // Each write leaves at once (TCP_NODELAY): with Nagle, the second
    // round's writes both wait for the delayed ACKs of the first and
    // leave in one walk of the sockets, in the stack's order, not the
    // writes' order.
    for c in [c1, c2] {
        assert_eq!(h.set_int_opt(c, 6, 1, 1), 0);
    }
    assert_eq!(h.call("connect", &[c1, sa, 16]), 0);
    let s1 = h.call("accept", &[lfd, 0, 0]) as u64;
    assert_eq!(h.call("connect", &[c2, sa, 16]), 0);
    let s2 = h.call("accept", &[lfd, 0, 0]) as u64;
    assert!(s1 < s2);
    let ep = h.call("epoll_create1", &[0]) as u64;
    for (fd, data) in [(s1, 1u64), (s2, 2)] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&1u32.to_le_bytes());
        b[4..].copy_from_slice(&data.to_le_bytes());
        let e = h.put(MEM + 0x500, &b);
        assert_eq!(h.call("epoll_ctl", &[ep, 1, fd, e]), 0);
    }
    let out = MEM + 0x600;
    let order = |h: &H| {
        assert_eq!(h.call("epoll_wait", &[ep, out, 8, 100]), 2);
        [h.get(out + 4, 8)[0], h.get(out + 16, 8)[0]]
    };
    let msg = h.put(MEM + 0x700, b"PING\r\n");
    for (first, second, want) in [(c2, c1, [2, 1]), (c1, c2, [1, 2])] {
        assert_eq!(h.call("write", &[first, msg, 6]), 6);
        // The stack runs between the two clients' sends, as it would
        // for two clients on the wire.
        let _ = h.revents(lfd, 1);
        assert_eq!(h.call("write", &[second, msg, 6]), 6);
        assert_eq!(order(&h), want);
        for s in [s1, s2] {
            assert_eq!(h.call("read", &[s, MEM + 0x800, 100]), 6);
        }
        assert_eq!(h.call("epoll_wait", &[ep, out, 8, 0]), 0);
    }
}

#[test]
fn reset_and_epipe() {
    let h = setup();
    let lfd = h.listener([127, 0, 0, 1], 81, 0);
    let c = h.socket(SOCK_STREAM);
    let sa = h.sin(MEM, [127, 0, 0, 1], 81);
    assert_eq!(h.call("connect", &[c, sa, 16]), 0);
    let s = h.call("accept", &[lfd, 0, 0]) as u64;
    // SO_LINGER {1, 0}: close resets.
    let linger = h.put(MEM + 0x100, &[1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(h.call("setsockopt", &[s, 1, 13, linger, 8]), 0);
    assert_eq!(h.call("close", &[s]), 0);
    assert_eq!(h.revents(c, 1) & 0x18, 0x18, "POLLERR | POLLHUP");
    assert_eq!(
        h.call("read", &[c, MEM + 0x200, 10]),
        err(Errno::ECONNRESET)
    );
    assert_eq!(h.call("read", &[c, MEM + 0x200, 10]), 0);
    let msg = h.put(MEM + 0x300, b"late");
    assert_eq!(h.call("write", &[c, msg, 4]), err(Errno::EPIPE));
    assert_eq!(
        h.call("getpeername", &[c, MEM + 0x400, MEM + 0x410]),
        err(Errno::ENOTCONN)
    );
}

#[test]
fn data_sent_to_a_closed_socket_is_answered_with_a_reset() {
    // A server reads a request and closes (no unread data, so a FIN); the
    // client goes on sending: Linux resets, and so must we — the client
    // learns at once instead of filling a window nobody reads.
    let h = setup();
    let lfd = h.listener([127, 0, 0, 1], 82, 0);
    let c = h.socket(SOCK_STREAM);
    let sa = h.sin(MEM, [127, 0, 0, 1], 82);
    assert_eq!(h.call("connect", &[c, sa, 16]), 0);
    let s = h.call("accept", &[lfd, 0, 0]) as u64;
    let req = h.put(MEM + 0x100, b"request");
    assert_eq!(h.call("write", &[c, req, 7]), 7);
    assert_eq!(h.call("read", &[s, MEM + 0x200, 64]), 7);
    assert_eq!(h.call("close", &[s]), 0);
    h.p.net.poll();
    // The FIN arrives: end of file for the client.
    assert_eq!(h.call("read", &[c, MEM + 0x200, 64]), 0);
    // Data after the close: reset, then the writer sees EPIPE.
    let more = h.put(MEM + 0x300, &[b'x'; 1000]);
    assert_eq!(h.call("write", &[c, more, 1000]), 1000);
    for _ in 0..4 {
        h.p.net.poll();
    }
    assert_eq!(h.revents(c, 4) & 0x18, 0x18, "POLLERR | POLLHUP");
    let w = h.call("write", &[c, more, 1000]);
    assert!(
        w == err(Errno::ECONNRESET) || w == err(Errno::EPIPE),
        "write after the reset: {w}"
    );
}

#[test]
fn address_in_use_and_reuseport() {
    let h = setup();
    let a = h.listener([0, 0, 0, 0], 6000, 0);
    let b = h.socket(SOCK_STREAM);
    let lo = h.sin(MEM, [127, 0, 0, 1], 6000);
    assert_eq!(h.call("bind", &[b, lo, 16]), err(Errno::EADDRINUSE));
    assert_eq!(h.call("close", &[a]), 0);
    assert_eq!(h.call("bind", &[b, lo, 16]), 0);
    assert_eq!(
        h.call("bind", &[b, lo, 16]),
        err(Errno::EINVAL),
        "already bound"
    );
    let (x, y) = (h.socket(SOCK_STREAM), h.socket(SOCK_STREAM));
    let sa = h.sin(MEM, [0, 0, 0, 0], 6001);
    assert_eq!(h.set_int_opt(x, 1, 15, 1), 0);
    assert_eq!(h.set_int_opt(y, 1, 15, 1), 0);
    assert_eq!(h.call("bind", &[x, sa, 16]), 0);
    assert_eq!(h.call("bind", &[y, sa, 16]), 0, "SO_REUSEPORT on both");
    let other = h.sin(MEM, [10, 9, 8, 7], 6002);
    assert_eq!(
        h.call("bind", &[h.socket(SOCK_STREAM), other, 16]),
        err(Errno::EADDRNOTAVAIL)
    );
    // Port 0: an ephemeral port, reported by getsockname.
    let e = h.socket(SOCK_DGRAM);
    let zero = h.sin(MEM, [0, 0, 0, 0], 0);
    assert_eq!(h.call("bind", &[e, zero, 16]), 0);
    h.put(MEM + 0x110, &16i32.to_le_bytes());
    assert_eq!(h.call("getsockname", &[e, MEM + 0x100, MEM + 0x110]), 0);
    let port = u16::from_be_bytes(h.get(MEM + 0x102, 2).try_into().unwrap());
    assert!(port >= 32768, "ephemeral {port}");
}

#[test]
fn bad_arguments() {
    let h = setup();
    let fd = h.socket(SOCK_STREAM);
    let sa = h.sin(MEM, [127, 0, 0, 1], 7);
    assert_eq!(h.call("bind", &[fd, 0xdead_0000, 16]), err(Errno::EFAULT));
    assert_eq!(h.call("bind", &[fd, sa, 8]), err(Errno::EINVAL));
    assert_eq!(h.call("bind", &[fd, sa, 4096]), err(Errno::EINVAL));
    assert_eq!(h.call("bind", &[99, sa, 16]), err(Errno::EBADF));
    assert_eq!(h.call("pipe2", &[MEM + 0x100, 0]), 0);
    let pipe_fd = h.i32_at(MEM + 0x100) as u64;
    assert_eq!(h.call("bind", &[pipe_fd, sa, 16]), err(Errno::ENOTSOCK));
    assert_eq!(
        h.call("getsockopt", &[pipe_fd, 1, 3, MEM, MEM + 8]),
        err(Errno::ENOTSOCK)
    );
    assert_eq!(
        h.call("socket", &[10, SOCK_STREAM, 17]),
        err(Errno::EPROTONOSUPPORT),
        "AF_INET6 stream over UDP"
    );
    assert_eq!(
        h.call("socket", &[16, 3, 0]),
        err(Errno::EAFNOSUPPORT),
        "AF_NETLINK"
    );
    assert_eq!(
        h.call("socket", &[AF_INET, SOCK_STREAM | 0x100, 0]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        h.call("socket", &[AF_INET, SOCK_STREAM, 17]),
        err(Errno::EPROTONOSUPPORT)
    );
    assert_eq!(
        h.call("socket", &[AF_INET, 3, 0]),
        err(Errno::ESOCKTNOSUPPORT),
        "raw"
    );
    assert_eq!(h.call("read", &[fd, MEM, 4]), err(Errno::ENOTCONN));
    assert_eq!(
        h.call("getpeername", &[fd, MEM, 0xdead_0000]),
        err(Errno::EFAULT)
    );
    h.put(MEM + 0x200, &16i32.to_le_bytes());
    assert_eq!(
        h.call("getpeername", &[fd, MEM, MEM + 0x200]),
        err(Errno::ENOTCONN)
    );
}

#[test]
fn socket_options() {
    let h = setup();
    let fd = h.socket(SOCK_STREAM);
    assert_eq!(h.int_opt(fd, 1, 3), 1, "SO_TYPE");
    assert_eq!(h.int_opt(fd, 1, 39), 2, "SO_DOMAIN");
    assert_eq!(h.int_opt(fd, 1, 8), 256 * 1024, "SO_RCVBUF");
    assert_eq!(h.set_int_opt(fd, 1, 8, 65536), 0);
    assert_eq!(h.int_opt(fd, 1, 8), 65536);
    assert_eq!(h.int_opt(fd, 6, 1), 0);
    assert_eq!(h.set_int_opt(fd, 6, 1, 1), 0, "TCP_NODELAY");
    assert_eq!(h.int_opt(fd, 6, 1), 1);
    for name in [2, 9, 15] {
        assert_eq!(h.set_int_opt(fd, 1, name, 1), 0);
        assert_eq!(h.int_opt(fd, 1, name), 1);
    }
    for (name, v) in [(4, 60), (5, 10), (6, 3)] {
        assert_eq!(h.set_int_opt(fd, 6, name, v), 0);
        assert_eq!(h.int_opt(fd, 6, name), i64::from(v));
    }
    assert_eq!(h.set_int_opt(fd, 6, 4, 0), err(Errno::EINVAL));
    assert_eq!(
        h.set_int_opt(fd, 41, 26, 1),
        err(Errno::ENOPROTOOPT),
        "IPV6_V6ONLY"
    );
    assert_eq!(h.set_int_opt(fd, 1, 999, 1), err(Errno::ENOPROTOOPT));
    assert_eq!(h.int_opt(fd, 6, 999), err(Errno::ENOPROTOOPT));
    assert_eq!(
        h.call("setsockopt", &[fd, 1, 2, MEM, 2]),
        err(Errno::EINVAL),
        "short int"
    );
    // FIONBIO sets O_NONBLOCK.
    let on = h.put(MEM + 0x100, &1i32.to_le_bytes());
    assert_eq!(h.call("ioctl", &[fd, 0x5421, on]), 0);
    assert_eq!(h.call("fcntl", &[fd, 3]) & 0o4000, 0o4000);
    let u = h.socket(SOCK_DGRAM);
    assert_eq!(h.int_opt(u, 1, 3), 2);
    assert_eq!(h.call("listen", &[u, 5]), err(Errno::EOPNOTSUPP));
}

#[test]
fn socketpair_and_unix_names() {
    let h = setup();
    let sv = MEM + 0x100;
    assert_eq!(h.call("socketpair", &[1, SOCK_STREAM, 0, sv]), 0);
    let (a, b) = (h.i32_at(sv) as u64, h.i32_at(sv + 4) as u64);
    let msg = h.put(MEM + 0x200, b"over the pair");
    assert_eq!(h.call("write", &[a, msg, 13]), 13);
    assert_eq!(h.revents(b, 1), 1);
    // MSG_PEEK leaves the bytes for the next read.
    assert_eq!(h.call("recvfrom", &[b, MEM + 0x300, 4, 2, 0, 0]), 4);
    assert_eq!(h.get(MEM + 0x300, 4), b"over");
    assert_eq!(h.call("recvfrom", &[b, MEM + 0x300, 64, 0, 0, 0]), 13);
    assert_eq!(h.get(MEM + 0x300, 13), b"over the pair");
    assert_eq!(h.call("sendto", &[b, msg, 4, 0, 0, 0]), 4);
    assert_eq!(h.call("read", &[a, MEM + 0x300, 64]), 4);
    assert_eq!(h.call("shutdown", &[a, 1]), 0);
    assert_eq!(
        h.call("read", &[b, MEM + 0x300, 64]),
        0,
        "end of file after SHUT_WR"
    );
    assert_eq!(h.call("close", &[b]), 0);
    assert_eq!(h.call("write", &[a, msg, 4]), err(Errno::EPIPE));
    assert_eq!(
        h.call("socketpair", &[AF_INET, SOCK_STREAM, 0, sv]),
        err(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        h.call("socketpair", &[1, SOCK_STREAM, 0, 0xdead_0000]),
        err(Errno::EFAULT)
    );
    // A named listener.
    let path = h.put(MEM + 0x400, b"\x01\x00/app.sock\0\0\0\0\0");
    let l = h.call("socket", &[1, SOCK_STREAM | SOCK_NONBLOCK, 0]) as u64;
    let c = h.call("socket", &[1, SOCK_STREAM, 0]) as u64;
    assert_eq!(h.call("connect", &[c, path, 16]), err(Errno::ENOENT));
    assert_eq!(h.call("bind", &[l, path, 16]), 0);
    assert_eq!(h.call("listen", &[l, 4]), 0);
    assert_eq!(h.call("accept", &[l, 0, 0]), err(Errno::EAGAIN));
    assert_eq!(h.call("connect", &[c, path, 16]), 0);
    let s = h.call("accept", &[l, 0, 0]) as u64;
    assert_eq!(h.call("write", &[c, msg, 4]), 4);
    assert_eq!(h.call("read", &[s, MEM + 0x300, 64]), 4);
    let other = h.call("socket", &[1, SOCK_STREAM, 0]) as u64;
    assert_eq!(h.call("bind", &[other, path, 16]), err(Errno::EADDRINUSE));
}

#[test]
fn unix_path_names_are_socket_files() {
    let h = setup();
    let addr = |at: u64, name: &[u8]| h.put(at, &[b"\x01\x00", name, b"\0"].concat());
    let path = addr(MEM + 0x400, b"/s.sock");
    let l = h.call("socket", &[1, SOCK_STREAM, 0]) as u64;
    assert_eq!(h.call("bind", &[l, path, 10]), 0);
    // The name is a socket file: stat sees S_IFSOCK.
    let name = h.put(MEM + 0x500, b"/s.sock\0");
    assert_eq!(h.call("stat", &[name, MEM + 0x600]), 0);
    let mode = u32::from_le_bytes(h.get(MEM + 0x600 + 24, 4).try_into().unwrap());
    assert_eq!(mode & 0o170000, 0o140000);
    // A second bind of the socket is EINVAL; of the path, EADDRINUSE —
    // also for a path that is some other file.
    assert_eq!(h.call("bind", &[l, path, 10]), err(Errno::EINVAL));
    let file = h.put(MEM + 0x700, b"/plain\0");
    assert!(h.call("open", &[file, 0o100 | 0o1, 0o644]) >= 0);
    let plain = addr(MEM + 0x780, b"/plain");
    let other = h.call("socket", &[1, SOCK_STREAM, 0]) as u64;
    assert_eq!(h.call("bind", &[other, plain, 9]), err(Errno::EADDRINUSE));
    assert_eq!(h.call("listen", &[l, 4]), 0);
    // connect: a file that is no socket refuses; a missing one is ENOENT.
    let c = h.call("socket", &[1, SOCK_STREAM, 0]) as u64;
    assert_eq!(h.call("connect", &[c, plain, 9]), err(Errno::ECONNREFUSED));
    // A relative name resolves from the working directory.
    let rel = addr(MEM + 0x800, b"s.sock");
    assert_eq!(h.call("connect", &[c, rel, 9]), 0);
    // Renamed, the file still leads to the listener; unlinked, nothing does
    // and the name is free again.
    let moved = h.put(MEM + 0x880, b"/t.sock\0");
    assert_eq!(h.call("rename", &[name, moved]), 0);
    let c2 = h.call("socket", &[1, SOCK_STREAM, 0]) as u64;
    let t = addr(MEM + 0x900, b"/t.sock");
    assert_eq!(h.call("connect", &[c2, t, 10]), 0);
    assert_eq!(h.call("unlink", &[moved]), 0);
    let c3 = h.call("socket", &[1, SOCK_STREAM, 0]) as u64;
    assert_eq!(h.call("connect", &[c3, t, 10]), err(Errno::ENOENT));
    assert_eq!(h.call("bind", &[c3, t, 10]), 0);
    assert_eq!(h.call("connect", &[c3, t, 10]), err(Errno::ECONNREFUSED));
    // Closing a bound socket releases its name in the table (the file
    // stays, as on Linux).
    assert_eq!(h.call("close", &[l]), 0);
    assert_eq!(h.call("unlink", &[name]), err(Errno::ENOENT));
    assert_eq!(
        h.call(
            "bind",
            &[h.call("socket", &[1, SOCK_STREAM, 0]) as u64, path, 10]
        ),
        0
    );
}

#[test]
fn binding_the_empty_name_picks_a_free_abstract_one() {
    let h = setup();
    let family = h.put(MEM + 0x100, b"\x01\x00");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let s = h.call("socket", &[1, SOCK_STREAM, 0]) as u64;
        assert_eq!(h.call("bind", &[s, family, 2]), 0);
        let len = h.put(MEM + 0x200, &110u32.to_le_bytes());
        assert_eq!(h.call("getsockname", &[s, MEM + 0x300, len]), 0);
        assert_eq!(h.i32_at(MEM + 0x200), 8, "family, NUL and five digits");
        let name = h.get(MEM + 0x300, 8);
        assert_eq!(name[2], 0);
        assert!(name[3..].iter().all(u8::is_ascii_hexdigit), "{name:?}");
        seen.push(name);
        // Bound: another bind is EINVAL.
        assert_eq!(h.call("bind", &[s, family, 2]), err(Errno::EINVAL));
    }
    assert_ne!(seen[0], seen[1]);
}

#[test]
fn sendmsg_and_recvmsg_gather_and_scatter() {
    let h = setup();
    let sv = MEM + 0x100;
    assert_eq!(h.call("socketpair", &[1, SOCK_STREAM, 0, sv]), 0);
    let (a, b) = (h.i32_at(sv) as u64, h.i32_at(sv + 4) as u64);
    h.put(MEM + 0x1000, b"abc");
    h.put(MEM + 0x2000, b"defg");
    let iov = |at: u64, parts: &[(u64, u64)]| {
        let mut bytes = Vec::new();
        for (base, len) in parts {
            bytes.extend_from_slice(&base.to_le_bytes());
            bytes.extend_from_slice(&len.to_le_bytes());
        }
        h.put(at, &bytes)
    };
    let msghdr = |at: u64, iov: u64, n: u64| {
        let mut m = [0u8; 56];
        m[16..24].copy_from_slice(&iov.to_le_bytes());
        m[24..32].copy_from_slice(&n.to_le_bytes());
        h.put(at, &m)
    };
    let v = iov(MEM + 0x300, &[(MEM + 0x1000, 3), (MEM + 0x2000, 4)]);
    let m = msghdr(MEM + 0x400, v, 2);
    assert_eq!(h.call("sendmsg", &[a, m, 0]), 7);
    let v = iov(MEM + 0x500, &[(MEM + 0x3000, 2), (MEM + 0x4000, 10)]);
    let m = msghdr(MEM + 0x600, v, 2);
    assert_eq!(h.call("recvmsg", &[b, m, 0]), 7);
    assert_eq!(h.get(MEM + 0x3000, 2), b"ab");
    assert_eq!(h.get(MEM + 0x4000, 5), b"cdefg");
}

/// A `msghdr` at `at` with one iovec (`buf`, `len`) and a control buffer
/// (`control`, `control_len`).
fn msghdr_with_control(h: &H, at: u64, buf: u64, len: u64, control: u64, control_len: u64) -> u64 {
    let mut iov = [0u8; 16];
    iov[..8].copy_from_slice(&buf.to_le_bytes());
    iov[8..].copy_from_slice(&len.to_le_bytes());
    h.put(at + 0x80, &iov);
    let mut m = [0u8; 56];
    m[16..24].copy_from_slice(&(at + 0x80).to_le_bytes());
    m[24..32].copy_from_slice(&1u64.to_le_bytes());
    m[32..40].copy_from_slice(&control.to_le_bytes());
    m[40..48].copy_from_slice(&control_len.to_le_bytes());
    h.put(at, &m)
}

/// One `SCM_RIGHTS` control message carrying `fds`.
fn rights_message(fds: &[i32]) -> Vec<u8> {
    let mut c = Vec::new();
    c.extend_from_slice(&((16 + 4 * fds.len()) as u64).to_le_bytes());
    c.extend_from_slice(&1i32.to_le_bytes());
    c.extend_from_slice(&1i32.to_le_bytes());
    for fd in fds {
        c.extend_from_slice(&fd.to_le_bytes());
    }
    c.resize((c.len() + 7) & !7, 0);
    c
}

#[test]
fn open_files_pass_over_a_unix_stream() {
    let h = setup();
    let sv = MEM + 0x100;
    assert_eq!(h.call("socketpair", &[1, SOCK_STREAM, 0, sv]), 0);
    let (a, b) = (h.i32_at(sv) as u64, h.i32_at(sv + 4) as u64);
    let fds = MEM + 0x140;
    assert_eq!(h.call("pipe2", &[fds, 0]), 0);
    let (pr, pw) = (h.i32_at(fds), h.i32_at(fds + 4));
    // Plain data first, then a byte carrying the pipe's write end.
    let data = h.put(MEM + 0x200, b"hi!");
    assert_eq!(h.call("write", &[a, data, 2]), 2);
    let control = h.put(MEM + 0x300, &rights_message(&[pw]));
    let m = msghdr_with_control(&h, MEM + 0x400, data + 2, 1, control, 24);
    assert_eq!(h.call("sendmsg", &[a, m, 0]), 1);
    // A read stops before the byte that carries the file.
    let (out, room) = (MEM + 0x600, MEM + 0x700);
    let m = msghdr_with_control(&h, MEM + 0x800, out, 64, room, 64);
    assert_eq!(h.call("recvmsg", &[b, m, 0]), 2);
    assert_eq!(
        h.get(MEM + 0x800 + 40, 8),
        0u64.to_le_bytes(),
        "no control data"
    );
    // recvmsg rewrote msg_controllen: give the room again, as programs do.
    let m = msghdr_with_control(&h, MEM + 0x800, out, 64, room, 64);
    assert_eq!(
        h.call("recvmsg", &[b, m, 0x4000_0000]),
        1,
        "MSG_CMSG_CLOEXEC"
    );
    assert_eq!(h.get(out, 1), b"!");
    assert_eq!(
        h.get(MEM + 0x800 + 40, 8),
        24u64.to_le_bytes(),
        "CMSG_SPACE(4)"
    );
    let got = h.get(room, 20);
    assert_eq!(
        &got[..16],
        &rights_message(&[0])[..16],
        "one SCM_RIGHTS header"
    );
    let new_fd = u64::from(u32::from_le_bytes(got[16..20].try_into().unwrap()));
    assert_ne!(new_fd, pw as u64);
    assert_eq!(h.call("fcntl", &[new_fd, 1]), 1, "close-on-exec");
    // The new fd is the same pipe: what it writes, the read end reads.
    assert_eq!(h.call("write", &[new_fd, data, 3]), 3);
    assert_eq!(h.call("read", &[pr as u64, MEM + 0x900, 8]), 3);
    assert_eq!(h.get(MEM + 0x900, 3), b"hi!");
}

#[test]
fn passed_files_that_do_not_fit_are_dropped_with_msg_ctrunc() {
    let h = setup();
    let sv = MEM + 0x100;
    assert_eq!(h.call("socketpair", &[1, SOCK_STREAM, 0, sv]), 0);
    let (a, b) = (h.i32_at(sv) as u64, h.i32_at(sv + 4) as u64);
    let data = h.put(MEM + 0x200, b"x");
    let control = h.put(
        MEM + 0x300,
        &rights_message(&[a as i32, b as i32, a as i32]),
    );
    let m = msghdr_with_control(&h, MEM + 0x400, data, 1, control, 32);
    assert_eq!(h.call("sendmsg", &[a, m, 0]), 1);
    // Room for one fd (CMSG_LEN(4) = 20 bytes).
    let m = msghdr_with_control(&h, MEM + 0x800, MEM + 0x600, 8, MEM + 0x700, 20);
    assert_eq!(h.call("recvmsg", &[b, m, 0]), 1);
    assert_eq!(h.i32_at(MEM + 0x800 + 48) & 0x8, 0x8, "MSG_CTRUNC");
    assert_eq!(h.get(MEM + 0x800 + 40, 8), 20u64.to_le_bytes());
    // Bad fds and TCP sockets are refused, as Linux.
    let bad = h.put(MEM + 0x300, &rights_message(&[999]));
    let m = msghdr_with_control(&h, MEM + 0x400, data, 1, bad, 24);
    assert_eq!(h.call("sendmsg", &[a, m, 0]), err(Errno::EBADF));
    let tcp = h.socket(SOCK_STREAM);
    let good = h.put(MEM + 0x300, &rights_message(&[a as i32]));
    let m = msghdr_with_control(&h, MEM + 0x400, data, 1, good, 24);
    assert_eq!(h.call("sendmsg", &[tcp, m, 0]), err(Errno::EINVAL));
}

#[test]
fn fioasync_and_f_setown_send_sigio_to_the_owner_when_data_arrives() {
    const FIOASYNC: u64 = 0x5452;
    const F_SETFL: u64 = 4;
    const F_GETFL: u64 = 3;
    const F_SETOWN: u64 = 8;
    const F_GETOWN: u64 = 9;
    const O_ASYNC: usize = 0o20000;
    const SIGIO_BIT: u64 = 1 << 28;
    let h = setup();
    h.p.processes.insert_init(h.p.clone());
    // A second process (as after a fork) to own the signal.
    let child = Arc::new(h.p.fork(2, 1));
    h.p.processes.add_child(1, child.clone()).unwrap();
    let sv = MEM + 0x100;
    assert_eq!(h.call("socketpair", &[1, SOCK_STREAM, 0, sv]), 0);
    let (a, b) = (h.i32_at(sv) as u64, h.i32_at(sv + 4) as u64);
    let on = h.put(MEM + 0x200, &1i32.to_le_bytes());
    assert_eq!(h.call("ioctl", &[a, FIOASYNC, on]), 0);
    assert_eq!(h.call("fcntl", &[a, F_GETFL]) as usize & O_ASYNC, O_ASYNC);
    assert_eq!(h.call("fcntl", &[a, F_GETOWN]), 0);
    assert_eq!(h.call("fcntl", &[a, F_SETOWN, 2]), 0);
    assert_eq!(h.call("fcntl", &[a, F_GETOWN]), 2);
    let msg = h.put(MEM + 0x300, b"cmd");
    // Data towards `a` signals its owner only; data towards `b` nobody.
    assert_eq!(h.call("write", &[b, msg, 3]), 3);
    assert_ne!(child.signals.lock().pending(2) & SIGIO_BIT, 0);
    assert_eq!(h.p.signals.lock().pending(1) & SIGIO_BIT, 0);
    // Off again (F_SETFL without O_ASYNC): no more signals.
    let child_quiet = Arc::new(h.p.fork(3, 1));
    h.p.processes.add_child(1, child_quiet.clone()).unwrap();
    assert_eq!(h.call("fcntl", &[a, F_SETOWN, 3]), 0);
    assert_eq!(h.call("fcntl", &[a, F_SETFL, 0]), 0);
    assert_eq!(h.call("fcntl", &[a, F_GETFL]) as usize & O_ASYNC, 0);
    assert_eq!(h.call("write", &[b, msg, 3]), 3);
    assert_eq!(child_quiet.signals.lock().pending(3) & SIGIO_BIT, 0);
    // A file without signal-driven I/O says so.
    let fd = h.socket(SOCK_STREAM);
    assert_eq!(h.call("ioctl", &[fd, FIOASYNC, on]), err(Errno::ENOTTY));
    assert_eq!(h.call("fcntl", &[fd, F_SETOWN, 1]), err(Errno::EINVAL));
}

#[test]
fn a_poll_that_finds_nothing_flushes_the_card() {
    let (a, b) = device_pair(256);
    let (h, _peer) = hosts_over((a.clone(), b), NetConfig::default().copybreak);
    let flushes = || PairStats::get(&a.stats.flushes);
    let ep = h.call("epoll_create1", &[0]) as u64;
    let out = MEM + 0x600;
    // Nothing registered, zero timeout: nothing ready, so the card is
    // told to send what it holds, though the call does not block.
    assert_eq!(h.call("epoll_wait", &[ep, out, 8, 0]), 0);
    assert_eq!(flushes(), 1);
    assert_eq!(h.call("poll", &[MEM + 0x700, 0, 0]), 0);
    assert_eq!(flushes(), 2);
    let tv = h.put(MEM + 0x800, &[0u8; 16]);
    assert_eq!(h.call("select", &[0, 0, 0, 0, tv]), 0);
    assert_eq!(flushes(), 3);
    // Something ready: the program has work, nothing is flushed.
    let s = h.socket(SOCK_DGRAM);
    let mut ev = [0u8; 12];
    ev[..4].copy_from_slice(&4u32.to_le_bytes());
    let ev = h.put(MEM + 0x500, &ev);
    assert_eq!(h.call("epoll_ctl", &[ep, 1, s, ev]), 0);
    assert_eq!(
        h.call("epoll_wait", &[ep, out, 8, 0]),
        1,
        "a UDP socket is writable"
    );
    assert_eq!(flushes(), 3);
}
