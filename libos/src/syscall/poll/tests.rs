//! Pipes, eventfds and `poll`/`ppoll` through the dispatch table,
//! including a blocking read woken by a writer on another thread.

use alloc::vec::Vec;

use crate::error::Errno;
use crate::platform::Clock;
use crate::syscall::testing::{Sys, err};
use crate::user::UserMemory;

const BUF: u64 = 0x30_0000;

type H = Sys;

fn setup() -> H {
    Sys::new(BUF, 0x1000)
}

impl Sys {
    fn i32_at(&self, addr: u64) -> i32 {
        let mut b = [0u8; 4];
        self.m.read_user(addr, &mut b).unwrap();
        i32::from_le_bytes(b)
    }
    fn pollfd(&self, addr: u64, fd: i32, events: u16) {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&fd.to_le_bytes());
        b[4..6].copy_from_slice(&events.to_le_bytes());
        self.m.write_user(addr, &b).unwrap();
    }
    fn revents(&self, addr: u64) -> u16 {
        let mut b = [0u8; 2];
        self.m.read_user(addr + 6, &mut b).unwrap();
        u16::from_le_bytes(b)
    }
}

#[test]
fn pipe_through_syscalls() {
    let h = setup();
    assert_eq!(h.call("pipe2", &[BUF, 0o4000 | 0o2000000]), 0);
    let (r, w) = (h.i32_at(BUF) as u64, h.i32_at(BUF + 4) as u64);
    assert_eq!((r, w), (0, 1));
    assert_eq!(h.call("fcntl", &[r, 1]), 1, "O_CLOEXEC");
    let data = BUF + 0x100;
    h.m.write_user(data, b"ping").unwrap();
    assert_eq!(
        h.call("read", &[r, data + 16, 4]),
        err(Errno::EAGAIN),
        "O_NONBLOCK"
    );
    assert_eq!(h.call("write", &[w, data, 4]), 4);
    assert_eq!(h.call("read", &[r, data + 16, 16]), 4);
    let st = BUF + 0x200;
    assert_eq!(h.call("fstat", &[r, st]), 0);
    assert_eq!(h.i32_at(st + 24), 0o010600);
    assert_eq!(h.call("lseek", &[r, 0, 0]), err(Errno::ESPIPE));
    assert_eq!(h.call("close", &[w]), 0);
    assert_eq!(h.call("read", &[r, data + 16, 16]), 0, "end of file");
    assert_eq!(h.call("pipe2", &[BUF, 0x1]), err(Errno::EINVAL));
    assert_eq!(h.call("pipe", &[0xdead_0000]), err(Errno::EFAULT));
    assert_eq!(h.call("pipe", &[BUF]), 0);
    assert_eq!(
        (h.i32_at(BUF), h.i32_at(BUF + 4)),
        (1, 2),
        "lowest free fds"
    );
}

#[test]
fn blocking_read_wakes_when_another_thread_writes() {
    let h = setup();
    // The writer sleeps 20 ms of real time; the default spin budget can run
    // out before that on a loaded machine.
    h.m.set_block_spins(50_000_000);
    assert_eq!(h.call("pipe2", &[BUF, 0]), 0);
    let (r, w) = (h.i32_at(BUF) as u64, h.i32_at(BUF + 4) as u64);
    let data = BUF + 0x100;
    h.m.write_user(data, b"wake up").unwrap();
    let writer = {
        let (m, p, t) = (h.m.clone(), h.p.clone(), h.t.clone());
        std::thread::spawn(move || {
            let _ = &m;
            std::thread::sleep(std::time::Duration::from_millis(20));
            t.dispatch(&p, 1, [w, data, 7, 0, 0, 0]) as i64
        })
    };
    assert_eq!(h.call("read", &[r, data + 0x100, 64]), 7);
    assert_eq!(writer.join().unwrap(), 7);
    let mut got = [0u8; 7];
    h.m.read_user(data + 0x100, &mut got).unwrap();
    assert_eq!(&got, b"wake up");
}

#[test]
fn poll_and_ppoll() {
    let h = setup();
    h.call("pipe2", &[BUF, 0]);
    let (r, w) = (h.i32_at(BUF), h.i32_at(BUF + 4));
    let efd = h.call("eventfd2", &[0, 0]) as i32;
    let fds = BUF + 0x100;
    h.pollfd(fds, r, 1); // POLLIN
    h.pollfd(fds + 8, w, 4); // POLLOUT
    h.pollfd(fds + 16, 77, 1); // not open
    h.pollfd(fds + 24, -1, 1); // ignored
    h.pollfd(fds + 32, efd, 1);
    assert_eq!(h.call("poll", &[fds, 5, 0]), 2);
    assert_eq!(h.revents(fds), 0);
    assert_eq!(h.revents(fds + 8), 4);
    assert_eq!(h.revents(fds + 16), 0x20, "POLLNVAL");
    assert_eq!(h.revents(fds + 24), 0);
    assert_eq!(h.revents(fds + 32), 0);
    // Only the read end and the eventfd: nothing ready, the timeout passes.
    let before = h.m.monotonic_ns();
    assert_eq!(h.call("poll", &[fds, 1, 50]), 0);
    assert!(h.m.monotonic_ns() >= before + 50_000_000);
    let ts = BUF + 0x200;
    h.m.write_user(ts, &[0u8; 16]).unwrap();
    h.m.write_user(ts + 8, &5_000i64.to_le_bytes()).unwrap();
    assert_eq!(h.call("ppoll", &[fds, 1, ts, 0, 8]), 0);
    // Data and an event make them readable.
    let data = BUF + 0x300;
    h.m.write_user(data, &1u64.to_le_bytes()).unwrap();
    assert_eq!(h.call("write", &[w as u64, data, 1]), 1);
    assert_eq!(h.call("write", &[efd as u64, data, 8]), 8);
    h.pollfd(fds + 8, efd, 1);
    assert_eq!(h.call("ppoll", &[fds, 2, 0, 0, 8]), 2);
    assert_eq!(h.revents(fds), 1);
    assert_eq!(h.revents(fds + 8), 1);
    // Hang-up is reported even when not asked for.
    h.call("close", &[w as u64]);
    h.pollfd(fds, r, 0);
    assert_eq!(h.call("poll", &[fds, 1, 0]), 1);
    assert_eq!(h.revents(fds), 0x10);
    h.m.write_user(ts + 8, &2_000_000_000i64.to_le_bytes())
        .unwrap();
    assert_eq!(h.call("ppoll", &[fds, 1, ts, 0, 8]), err(Errno::EINVAL));
    assert_eq!(h.call("poll", &[fds, 100_000, 0]), err(Errno::EINVAL));
    assert_eq!(h.call("eventfd2", &[0, 0x2]), err(Errno::EINVAL));
}

#[test]
fn epoll_through_syscalls() {
    let h = setup();
    let ep = h.call("epoll_create1", &[0o2000000]);
    assert_eq!(ep, 0);
    assert_eq!(h.call("fcntl", &[0, 1]), 1);
    h.call("pipe2", &[BUF, 0]);
    let (r, w) = (h.i32_at(BUF) as u64, h.i32_at(BUF + 4) as u64);
    let ev = BUF + 0x100;
    let mut e = [0u8; 12];
    e[..4].copy_from_slice(&1u32.to_le_bytes());
    e[4..].copy_from_slice(&0xabcdu64.to_le_bytes());
    h.m.write_user(ev, &e).unwrap();
    assert_eq!(h.call("epoll_ctl", &[0, 1, r, ev]), 0);
    assert_eq!(h.call("epoll_ctl", &[0, 1, r, ev]), err(Errno::EEXIST));
    assert_eq!(
        h.call("epoll_ctl", &[0, 1, 0, ev]),
        err(Errno::EINVAL),
        "itself"
    );
    assert_eq!(
        h.call("epoll_ctl", &[r, 1, w, ev]),
        err(Errno::EINVAL),
        "not epoll"
    );
    assert_eq!(h.call("epoll_ctl", &[0, 9, w, ev]), err(Errno::EINVAL));
    assert_eq!(h.call("epoll_ctl", &[0, 2, w, ev]), err(Errno::ENOENT));
    let reg = BUF + 0x180;
    h.m.write_user(reg, b"f\0").unwrap();
    let f = h.call("open", &[reg, 0o100 | 2, 0o644]) as u64;
    assert_eq!(
        h.call("epoll_ctl", &[0, 1, f, ev]),
        err(Errno::EPERM),
        "regular file"
    );
    let out = BUF + 0x200;
    assert_eq!(h.call("epoll_wait", &[0, out, 8, 0]), 0);
    assert_eq!(h.call("epoll_wait", &[0, out, 8, 10]), 0, "times out");
    assert_eq!(h.call("epoll_wait", &[0, out, 0, 0]), err(Errno::EINVAL));
    h.m.write_user(BUF + 0x300, b"!").unwrap();
    h.call("write", &[w, BUF + 0x300, 1]);
    assert_eq!(h.call("epoll_pwait", &[0, out, 8, -1i64 as u64, 0, 8]), 1);
    let mut got = [0u8; 12];
    h.m.read_user(out, &mut got).unwrap();
    assert_eq!(u32::from_le_bytes(got[..4].try_into().unwrap()), 1);
    assert_eq!(u64::from_le_bytes(got[4..].try_into().unwrap()), 0xabcd);
    // The epoll fd itself is pollable.
    let fds = BUF + 0x400;
    h.pollfd(fds, 0, 1);
    assert_eq!(h.call("poll", &[fds, 1, 0]), 1);
    assert_eq!(h.call("epoll_ctl", &[0, 2, r, 0]), 0);
    let ts = BUF + 0x500;
    h.m.write_user(ts, &[0u8; 16]).unwrap();
    assert_eq!(h.call("epoll_pwait2", &[0, out, 8, ts, 0, 8]), 0);
    // Waiting forever with nothing registered: the mock reports the deadlock.
    assert_eq!(
        h.call("epoll_pwait2", &[0, out, 8, 0, 0, 8]),
        err(Errno::EDEADLK)
    );
    assert_eq!(h.call("epoll_create", &[0]), err(Errno::EINVAL));
}

#[test]
fn pipes_copy_straight_between_user_memory_and_the_queue_across_its_wrap() {
    // read/write of a pipe skip the bounce buffer (FileLike::read_user /
    // write_user): the bytes must still come out in order after the
    // queue's ring wraps, and a bad buffer must lose nothing.
    let h = Sys::new(BUF, 0x40000);
    h.call("pipe2", &[BUF, 0o4000]); // O_NONBLOCK
    let (r, w) = (h.i32_at(BUF) as u64, h.i32_at(BUF + 4) as u64);
    let (src, dst) = (BUF + 0x1000, BUF + 0x20000);
    let pattern: Vec<u8> = (0..0x1_0000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    h.m.write_user(src, &pattern).unwrap();
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for (wlen, rlen) in [(60_000u64, 50_000u64), (40_000, 30_000), (50_000, 65_536)] {
        let n = h.call("write", &[w, src, wlen]);
        assert!(n > 0, "write {n}");
        expected.extend_from_slice(&pattern[..n as usize]);
        let n = h.call("read", &[r, dst, rlen]);
        assert!(n > 0, "read {n}");
        let mut b = alloc::vec![0u8; n as usize];
        h.m.read_user(dst, &mut b).unwrap();
        got.extend_from_slice(&b);
    }
    let n = h.call("read", &[r, dst, 65_536]);
    if n > 0 {
        let mut b = alloc::vec![0u8; n as usize];
        h.m.read_user(dst, &mut b).unwrap();
        got.extend_from_slice(&b);
    }
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "bytes out of order");
    // Unmapped buffers: EFAULT, and the queue keeps its bytes.
    assert_eq!(h.call("write", &[w, src, 100]), 100);
    assert_eq!(h.call("read", &[r, 0x1000, 100]), err(Errno::EFAULT));
    assert_eq!(h.call("write", &[w, 0x1000, 100]), err(Errno::EFAULT));
    assert_eq!(h.call("read", &[r, dst, 1000]), 100);
    assert_eq!(h.call("read", &[r, dst, 1000]), err(Errno::EAGAIN));
}

#[test]
fn an_edge_not_copied_out_stays_ready_and_epolls_nest() {
    // stress-ng's epoll server first waits into a PROT_NONE page: Linux
    // answers EFAULT and keeps the event; losing it starved the server.
    let h = setup();
    let (ep, inner) = (h.call("epoll_create1", &[0]), h.call("epoll_create1", &[0]));
    h.call("pipe2", &[BUF, 0]);
    let (r, w) = (h.i32_at(BUF) as u64, h.i32_at(BUF + 4) as u64);
    let ev = BUF + 0x100;
    let mut e = [0u8; 12];
    e[..4].copy_from_slice(&(1u32 | 1 << 31).to_le_bytes()); // EPOLLIN | EPOLLET
    e[4..].copy_from_slice(&7u64.to_le_bytes());
    h.m.write_user(ev, &e).unwrap();
    assert_eq!(h.call("epoll_ctl", &[ep as u64, 1, r, ev]), 0);
    h.call("write", &[w, BUF, 1]);
    let unmapped = 0x1000;
    assert_eq!(
        h.call("epoll_wait", &[ep as u64, unmapped, 1, 0]),
        err(Errno::EFAULT)
    );
    let out = BUF + 0x200;
    assert_eq!(
        h.call("epoll_wait", &[ep as u64, out, 8, 0]),
        1,
        "still ready"
    );
    assert_eq!(
        h.call("epoll_wait", &[ep as u64, out, 8, 0]),
        0,
        "edge taken"
    );
    // An epoll watching another; the reverse would be a loop.
    assert_eq!(h.call("epoll_ctl", &[ep as u64, 1, inner as u64, ev]), 0);
    assert_eq!(
        h.call("epoll_ctl", &[inner as u64, 1, ep as u64, ev]),
        err(Errno::ELOOP)
    );
}

#[test]
fn select_and_pselect6() {
    let h = setup();
    h.call("pipe2", &[BUF, 0]);
    let (r, w) = (h.i32_at(BUF) as u64, h.i32_at(BUF + 4) as u64);
    assert_eq!((r, w), (0, 1));
    let (rd, wr) = (BUF + 0x100, BUF + 0x108);
    let set = |addr: u64, bits: u64| h.m.write_user(addr, &bits.to_le_bytes()).unwrap();
    let get = |addr: u64| {
        let mut b = [0u8; 8];
        h.m.read_user(addr, &mut b).unwrap();
        u64::from_le_bytes(b)
    };
    set(rd, 0b01);
    set(wr, 0b10);
    let tv = BUF + 0x200;
    h.m.write_user(tv, &[0u8; 16]).unwrap();
    assert_eq!(h.call("select", &[2, rd, wr, 0, tv]), 1);
    assert_eq!((get(rd), get(wr)), (0, 0b10));
    h.m.write_user(BUF + 0x300, b"x").unwrap();
    h.call("write", &[w, BUF + 0x300, 1]);
    set(rd, 0b01);
    set(wr, 0b10);
    assert_eq!(h.call("pselect6", &[2, rd, wr, 0, 0, 0]), 2);
    assert_eq!((get(rd), get(wr)), (0b01, 0b10));
    // Nothing ready: the timeout passes.
    set(rd, 0b10);
    set(wr, 0);
    h.m.write_user(tv + 8, &1000i64.to_le_bytes()).unwrap();
    let before = h.m.monotonic_ns();
    assert_eq!(h.call("select", &[2, rd, 0, 0, tv]), 0);
    assert!(h.m.monotonic_ns() >= before + 1_000_000);
    set(rd, 1 << 9);
    assert_eq!(h.call("select", &[10, rd, 0, 0, tv]), err(Errno::EBADF));
    h.m.write_user(tv + 8, &1_000_000i64.to_le_bytes()).unwrap();
    assert_eq!(h.call("select", &[1, rd, 0, 0, tv]), err(Errno::EINVAL));
    assert_eq!(
        h.call("select", &[-1i64 as u64, 0, 0, 0, tv]),
        err(Errno::EINVAL)
    );
}

#[test]
fn eventfd_write_takes_one_value_and_full_counter_does_not_spin() {
    let h = setup();
    h.m.set_block_spins(10);
    let efd = h.call("eventfd2", &[0, 0]) as u64;
    let data = BUF + 0x100;
    h.m.write_user(data, &5u64.to_le_bytes()).unwrap();
    h.m.write_user(data + 8, &7u64.to_le_bytes()).unwrap();
    assert_eq!(h.call("write", &[efd, data, 16]), 8, "only the first value");
    assert_eq!(h.call("read", &[efd, data + 32, 64]), 8);
    let mut v = [0u8; 8];
    h.m.read_user(data + 32, &mut v).unwrap();
    assert_eq!(u64::from_le_bytes(v), 5);
    // Writable (count < max) but this value does not fit: the blocking
    // write waits for the write to succeed, not for readiness, so the mock
    // reports a deadlock instead of spinning forever.
    h.m.write_user(data, &(u64::MAX - 2).to_le_bytes()).unwrap();
    assert_eq!(h.call("write", &[efd, data, 8]), 8);
    h.m.write_user(data, &10u64.to_le_bytes()).unwrap();
    assert_eq!(h.call("write", &[efd, data, 8]), err(Errno::EDEADLK));
}
