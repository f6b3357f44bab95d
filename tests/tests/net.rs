//! The network card from the host's side: `cloister run --publish`'s
//! forward (QEMU user-mode networking, `hostfwd` on 127.0.0.1) carries a
//! host connection into the guest. The guest half is the ignored ktest
//! `kernel::net::ktests::a_host_connection_reaches_the_guest_through_publish`,
//! which waits for the TCP SYN on guest port 7777.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use tools::ktest;
use tools::qemu::{self, Nic, Outcome, PortForward};
use vm_tests::free_port;

const GUEST_TEST: &str = "kernel::net::ktests::a_host_connection_reaches_the_guest_through_publish";
const GUEST_PORT: u16 = 7777;

/// The local addresses of listening TCP sockets on `port` in
/// `/proc/net/tcp` (hex `ADDR:PORT` as the kernel prints them).
fn listeners_on(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let suffix = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // Column 3 is the state; 0A is LISTEN.
            (cols.len() > 3 && cols[1].ends_with(&suffix) && cols[3] == "0A")
                .then(|| cols[1].to_string())
        })
        .collect()
}

#[test]
fn a_published_port_carries_a_host_connection_into_the_guest_and_listens_on_loopback_only() {
    let host_port = free_port();
    let mut config = ktest::test_config(vm_tests::test_kernel()).expect("config");
    config.timeout = Duration::from_secs(180);
    config.cmdline = format!("log=warn ktest={GUEST_TEST}");
    config.nic = Some(
        Nic::with_forwards(vec![PortForward {
            host_port,
            guest_port: GUEST_PORT,
        }])
        .expect("nic"),
    );
    let mut listening = Vec::new();
    let mut connected = None;
    let report = qemu::run(&config, |line, _| {
        if line.contains("waiting for a TCP SYN") {
            listening = listeners_on(host_port);
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, host_port));
            // Slirp accepts on the host at once and opens the connection to
            // the guest; keep the stream open until QEMU is gone.
            connected = Some(TcpStream::connect_timeout(&addr, Duration::from_secs(10)));
        }
    })
    .expect("run QEMU");
    let ok_line = format!("test {GUEST_TEST} ... ok");
    assert!(
        report.outcome == Outcome::Success && report.lines.contains(&ok_line),
        "{:?}\n{}",
        report.outcome,
        report.lines.join("\n")
    );
    let stream = connected.expect("the guest said it waits");
    assert!(stream.is_ok(), "connect: {stream:?}");
    // 127.0.0.1 as /proc/net/tcp prints it (little-endian hex).
    assert_eq!(listening, [format!("0100007F:{host_port:04X}")]);
}
