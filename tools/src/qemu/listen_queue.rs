//! Widening the listen queue of QEMU's port forwards.
//!
//! QEMU's user-mode networking (libslirp) listens on each forwarded host
//! port with a backlog of 1 (`listen(s, 1)` in libslirp's `tcp_listen`),
//! and accepts one connection per pass of its main loop. When more than
//! two clients connect at once (`redis-benchmark -c 10`, `wrk -c 50`), the
//! host kernel finds the queue full and drops the others' SYNs (counted in
//! `TcpExtListenOverflows`); each of those clients tries again only after
//! TCP's one-second SYN timeout. A benchmark round then runs with fewer
//! clients for a second or more — the deep "stalled rounds" of issue 16,
//! for either guest (docs/PERFORMANCE.md, "The listen queue of QEMU's
//! forwards").
//!
//! Linux lets `listen` be called again on a listening socket to change its
//! backlog. So once QEMU has opened its forwards, the runner takes a
//! duplicate of each listening socket out of QEMU (`pidfd_getfd(2)`, which
//! needs the right to trace QEMU: the runner is its parent) and calls
//! `listen` on it with [`BACKLOG`]; the socket is the same, only the queue
//! changes. Nothing else about the forward changes. Where that fails (an
//! older kernel, a ptrace policy that forbids it) the runner says so and
//! the forward keeps its queue of one.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};

/// The backlog given to QEMU's forwards (Linux caps it at
/// `net.core.somaxconn`, 4096 by default).
pub const BACKLOG: i32 = 4096;

/// How long to wait for QEMU to open its forwards.
const WAIT_FOR_LISTENERS: Duration = Duration::from_secs(10);

/// The inode of the IPv4 socket listening on `addr:port` in
/// `/proc/net/tcp`'s text, if there is one.
pub fn listening_inode(proc_net_tcp: &str, addr: [u8; 4], port: u16) -> Option<u64> {
    // Local addresses are little-endian hex on x86: 127.0.0.1 is 0100007F.
    let want = format!("{:08X}:{port:04X}", u32::from_le_bytes(addr));
    proc_net_tcp.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl, local, remote, st (0A = LISTEN), queues, tr, retrnsmt, uid,
        // timeout, inode.
        (f.len() > 9 && f[1] == want && f[3] == "0A")
            .then(|| f[9].parse().ok())
            .flatten()
    })
}

/// The descriptor number `socket:[inode]` has in process `pid`.
fn fd_of_socket(pid: u32, inode: u64) -> Option<i32> {
    let target = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == target.as_str()))
        .and_then(|e| e.file_name().to_str()?.parse().ok())
}

/// QEMU's (process `pid`) socket listening on `addr:port`, as a duplicate
/// descriptor of this process, once QEMU has opened it.
fn take_listener(pid: u32, addr: [u8; 4], port: u16) -> Result<OwnedFd> {
    let pid_t = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .context("bad QEMU process id")?;
    let pidfd = pidfd_open(pid_t, PidfdFlags::empty()).context("pidfd_open on QEMU")?;
    let deadline = Instant::now() + WAIT_FOR_LISTENERS;
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").context("reading /proc/net/tcp")?;
        if let Some(fd) =
            listening_inode(&table, addr, port).and_then(|inode| fd_of_socket(pid, inode))
        {
            return pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty())
                .context("pidfd_getfd on QEMU's listening socket");
        }
        if Instant::now() >= deadline {
            bail!("QEMU opened no socket listening on port {port}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Gives QEMU's (process `pid`) forward on `127.0.0.1:port` a listen
/// queue of [`BACKLOG`]. Waits (up to 10 s) for QEMU to open it.
pub fn widen(pid: u32, port: u16) -> Result<()> {
    let socket = take_listener(pid, [127, 0, 0, 1], port)?;
    rustix::net::listen(&socket, BACKLOG).context("listen on QEMU's socket")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:3FFB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 81234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:3FFB 0100007F:9A3C 01 00000000:00000000 00:00000000 00000000     0        0 81299 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn finds_the_listener_not_its_connections() {
        // 0x3FFB = 16379.
        assert_eq!(listening_inode(TABLE, [127, 0, 0, 1], 16379), Some(81234));
        assert_eq!(listening_inode(TABLE, [0, 0, 0, 0], 22), Some(1111));
        assert_eq!(listening_inode(TABLE, [127, 0, 0, 1], 22), None);
        assert_eq!(listening_inode(TABLE, [127, 0, 0, 1], 16380), None);
        assert_eq!(listening_inode("", [127, 0, 0, 1], 16379), None);
    }

    #[test]
    fn widens_a_listener_of_this_process() {
        // A listener with a queue of one, as libslirp makes it.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        rustix::net::listen(&l, 1).expect("listen 1");
        widen(std::process::id(), port).expect("widen");
        // Four connections complete without an accept: the queue holds
        // more than two (with a backlog of one, the third SYN is dropped
        // and its connect would wait a second for the retry).
        let clients: Vec<_> = (0..4)
            .map(|_| {
                std::net::TcpStream::connect_timeout(
                    &l.local_addr().expect("addr"),
                    Duration::from_millis(500),
                )
            })
            .collect();
        assert!(clients.iter().all(Result::is_ok), "{clients:?}");
    }
}
