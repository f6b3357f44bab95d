//! TCP and UDP copy straight between smoltcp's buffers and user memory
//! (`crate::uio`): a fault part way returns the bytes copied before it
//! and leaves the rest queued (TCP), a datagram is all or `EFAULT` (UDP,
//! as Linux), `MSG_PEEK` and `MSG_TRUNC` keep their meaning, and
//! megabytes pass through the rings' wrap intact.

use super::*;

/// The first unmapped byte after the scratch memory.
const END: u64 = MEM + MEM_BYTES as u64;
/// In user space, never mapped.
const HOLE: u64 = 0x1000;
const MSG_PEEK: u64 = 0x2;
const MSG_TRUNC: u64 = 0x20;
const MSG_DONTWAIT: u64 = 0x40;

/// A connected loopback pair `(client, server)`, both non-blocking.
fn tcp_pair(h: &H, port: u16) -> (u64, u64) {
    let lfd = h.listener([127, 0, 0, 1], port, 0);
    let c = h.socket(SOCK_STREAM | SOCK_NONBLOCK);
    let sa = h.sin(MEM, [127, 0, 0, 1], port);
    assert_eq!(h.call("connect", &[c, sa, 16]), 0);
    let s = h.call("accept4", &[lfd, 0, 0, SOCK_NONBLOCK]);
    assert!(s >= 0, "accept: {s}");
    (c, s as u64)
}

/// Longer than smoltcp's delayed ACK (10 ms).
const DELAYED_ACK_NS: u64 = 20_000_000;

/// Reads `len` bytes from the non-blocking `fd` to `dst`, moving the
/// mock's clock on while nothing comes (Nagle holds a small segment until
/// the delayed ACK of the one before). Returns the count read.
fn read_all(h: &H, fd: u64, dst: u64, len: usize) -> usize {
    let mut got = 0;
    for _ in 0..100 {
        if got == len {
            break;
        }
        match h.call("read", &[fd, dst + got as u64, (len - got) as u64]) {
            n if n > 0 => got += n as usize,
            n => {
                assert_eq!(n, err(Errno::EAGAIN));
                h.m.advance_ns(DELAYED_ACK_NS);
            }
        }
    }
    got
}

/// An `iovec` array of `pieces` at `at`.
fn iovecs(h: &H, at: u64, pieces: &[(u64, u64)]) -> u64 {
    let mut b = Vec::new();
    for &(base, len) in pieces {
        b.extend_from_slice(&base.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
    }
    h.put(at, &b)
}

/// A `msghdr` at `at` over `iovcnt` iovecs at `iov`, no name or control.
fn msghdr(h: &H, at: u64, iov: u64, iovcnt: u64) -> u64 {
    let mut b = [0u8; 56];
    b[16..24].copy_from_slice(&iov.to_le_bytes());
    b[24..32].copy_from_slice(&iovcnt.to_le_bytes());
    h.put(at, &b)
}

#[test]
fn a_tcp_read_that_faults_part_way_returns_the_count_and_keeps_the_rest() {
    let h = setup();
    let (c, s) = tcp_pair(&h, 7001);
    let data = pattern(1000);
    let src = h.put(MEM + 0x10000, &data);
    assert_eq!(h.call("write", &[c, src, 1000]), 1000);
    // 100 bytes fit before the unmapped end: those, and no more, go.
    assert_eq!(h.call("read", &[s, END - 100, 1000]), 100);
    assert_eq!(h.get(END - 100, 100), data[..100]);
    // Nothing mapped: EFAULT, nothing taken.
    assert_eq!(h.call("read", &[s, HOLE, 1000]), err(Errno::EFAULT));
    assert_eq!(
        h.call("recvfrom", &[s, HOLE, 10, 0, 0, 0]),
        err(Errno::EFAULT)
    );
    // MSG_PEEK sees all the rest, and leaves it.
    let dst = MEM + 0x20000;
    assert_eq!(h.call("recvfrom", &[s, dst, 2000, MSG_PEEK, 0, 0]), 900);
    assert_eq!(h.get(dst, 900), data[100..]);
    // recvmsg scattering into a good iovec and one that runs off the
    // end: 300 + 50 bytes.
    let iov = iovecs(&h, MEM + 0x30000, &[(dst, 300), (END - 50, 500)]);
    let msg = msghdr(&h, MEM + 0x30100, iov, 2);
    assert_eq!(h.call("recvmsg", &[s, msg, 0]), 350);
    assert_eq!(h.get(dst, 300), data[100..400]);
    assert_eq!(h.get(END - 50, 50), data[400..450]);
    // readv stops at the first short piece too.
    let iov = iovecs(&h, MEM + 0x30000, &[(END - 20, 20), (dst, 1000)]);
    assert_eq!(h.call("readv", &[s, iov, 2]), 20 + 530);
    assert_eq!(h.get(END - 20, 20), data[450..470]);
    assert_eq!(h.get(dst, 530), data[470..]);
    assert_eq!(h.call("read", &[s, dst, 10]), err(Errno::EAGAIN));
    // A read of nothing is 0 at once, as Linux's sock_read_iter.
    assert_eq!(h.call("read", &[s, dst, 0]), 0);
}

#[test]
fn a_tcp_write_that_faults_part_way_sends_what_came_before() {
    let h = setup();
    let (c, s) = tcp_pair(&h, 7002);
    let data = pattern(100);
    h.put(END - 100, &data);
    assert_eq!(h.call("write", &[c, END - 100, 1000]), 100);
    assert_eq!(h.call("write", &[c, HOLE, 10]), err(Errno::EFAULT));
    assert_eq!(
        h.call("sendto", &[c, HOLE, 10, MSG_DONTWAIT, 0, 0]),
        err(Errno::EFAULT)
    );
    assert_eq!(h.call("sendto", &[c, END - 10, 100, 0, 0, 0]), 10);
    let iov = iovecs(&h, MEM + 0x30000, &[(END - 30, 30), (HOLE, 5)]);
    assert_eq!(h.call("writev", &[c, iov, 2]), 30);
    let msg = msghdr(&h, MEM + 0x30100, iov, 2);
    assert_eq!(h.call("sendmsg", &[c, msg, 0]), 30);
    let dst = MEM + 0x20000;
    assert_eq!(read_all(&h, s, dst, 170), 170);
    let got = h.get(dst, 170);
    assert_eq!(got[..100], data[..]);
    assert_eq!(got[100..110], data[90..]);
    assert_eq!(got[110..140], data[70..]);
    assert_eq!(got[140..], data[70..]);
}

#[test]
fn megabytes_pass_through_the_rings_wrap_with_peeks_on_the_way() {
    let h = setup();
    let (c, s) = tcp_pair(&h, 7003);
    let total = 3 << 20;
    let data = pattern(total);
    let (src, dst, peeked) = (MEM + 0x10_0000, MEM + 0x60_0000, MEM + 0xb0_0000);
    h.put(src, &data);
    let (mut sent, mut got) = (0usize, 0usize);
    let mut rounds = 0;
    while got < total {
        rounds += 1;
        assert!(rounds < 10_000, "stuck at {got} of {total}");
        if sent < total {
            let want = (total - sent).min(200_000) as u64;
            let n = h.call("write", &[c, src + sent as u64, want]);
            if n != err(Errno::EAGAIN) {
                assert!(n > 0, "write: {n}");
                sent += n as usize;
            }
        }
        // Odd sizes so that the reads end anywhere in the ring.
        let want = 150_001 + (rounds % 7) * 1_000;
        if rounds % 5 == 0 {
            let n = h.call("recvfrom", &[s, peeked, want, MSG_PEEK, 0, 0]);
            if n > 0 {
                let n = n as usize;
                assert_eq!(h.get(peeked, n), data[got..got + n], "peek at {got}");
            }
        }
        let n = h.call("read", &[s, dst + got as u64, want]);
        if n == err(Errno::EAGAIN) {
            // The mock's clock stands still: let delayed ACKs go out.
            h.m.advance_ns(DELAYED_ACK_NS);
            continue;
        }
        assert!(n > 0, "read: {n}");
        got += n as usize;
    }
    assert!(h.get(dst, total) == data, "bytes out of order");
}

#[test]
fn udp_faults_truncation_and_peek_follow_linux() {
    let h = setup();
    let a = h.socket(SOCK_DGRAM | SOCK_NONBLOCK);
    let b = h.socket(SOCK_DGRAM | SOCK_NONBLOCK);
    let sa = h.sin(MEM, [127, 0, 0, 1], 5454);
    assert_eq!(h.call("bind", &[a, sa, 16]), 0);
    let msg = h.put(MEM + 0x100, b"first datagram");
    let dst = MEM + 0x20000;
    // A datagram from a buffer that faults is not sent at all.
    h.put(END - 4, b"tail");
    assert_eq!(
        h.call("sendto", &[b, END - 4, 10, 0, sa, 16]),
        err(Errno::EFAULT)
    );
    assert_eq!(
        h.call("sendto", &[b, HOLE, 10, 0, sa, 16]),
        err(Errno::EFAULT)
    );
    assert_eq!(h.call("read", &[a, dst, 100]), err(Errno::EAGAIN));
    assert_eq!(h.call("sendto", &[b, msg, 14, 0, sa, 16]), 14);
    assert_eq!(h.call("sendto", &[b, msg, 5, 0, sa, 16]), 5);
    // A read of nothing takes no datagram.
    assert_eq!(h.call("read", &[a, dst, 0]), 0);
    // A peek into a bad buffer: EFAULT, and the datagram stays.
    assert_eq!(
        h.call("recvfrom", &[a, HOLE, 100, MSG_PEEK, 0, 0]),
        err(Errno::EFAULT)
    );
    // MSG_TRUNC: the real length; 6 bytes copied.
    assert_eq!(
        h.call("recvfrom", &[a, dst, 6, MSG_PEEK | MSG_TRUNC, 0, 0]),
        14
    );
    assert_eq!(h.get(dst, 6), b"first ");
    // recvmsg sets MSG_TRUNC in msg_flags and returns what it copied.
    let iov = iovecs(&h, MEM + 0x30000, &[(dst, 3), (dst + 100, 2)]);
    let hdr = msghdr(&h, MEM + 0x30100, iov, 2);
    assert_eq!(h.call("recvmsg", &[a, hdr, 0]), 5);
    assert_eq!(h.get(dst, 3), b"fir");
    assert_eq!(h.get(dst + 100, 2), b"st");
    assert_eq!(h.i32_at(hdr + 48) as u64 & MSG_TRUNC, MSG_TRUNC);
    // A fault part way: EFAULT, and the datagram is gone (Linux drops
    // it in udp_recvmsg).
    assert_eq!(
        h.call("recvfrom", &[a, END - 2, 5, 0, 0, 0]),
        err(Errno::EFAULT)
    );
    assert_eq!(h.call("read", &[a, dst, 100]), err(Errno::EAGAIN));
    // A datagram fills the buffer exactly.
    assert_eq!(h.call("sendto", &[b, msg, 14, 0, sa, 16]), 14);
    assert_eq!(h.call("read", &[a, END - 14, 100]), 14);
    assert_eq!(h.get(END - 14, 14), b"first datagram");
}

#[test]
fn sendfile_moves_a_files_pages_into_the_socket_and_its_offset_with_them() {
    let h = setup();
    let (c, s) = tcp_pair(&h, 7004);
    let total = 600_000;
    let data = pattern(total);
    let path = h.put(MEM + 0x40, b"/sent\0");
    let f = h.call("open", &[path, 0o102, 0o644]); // O_CREAT | O_RDWR
    assert!(f >= 0, "open: {f}");
    let f = f as u64;
    let src = h.put(MEM + 0x10_0000, &data);
    assert_eq!(h.call("pwrite64", &[f, src, total as u64, 0]), total as i64);
    // From offset 1000 through a pointer (the file offset stays), then
    // through the file offset past the end.
    let off = h.put(MEM + 0x80, &1000u64.to_le_bytes());
    let dst = MEM + 0x60_0000;
    let mut got = 0usize;
    let mut sent = 0usize;
    for _ in 0..1000 {
        if got == total - 1000 {
            break;
        }
        if sent < total - 1000 {
            let n = h.call("sendfile", &[c, f, off, 1 << 20]);
            if n != err(Errno::EAGAIN) {
                assert!(n > 0, "sendfile: {n}");
                sent += n as usize;
            }
        }
        match h.call("read", &[s, dst + got as u64, 1 << 20]) {
            n if n > 0 => got += n as usize,
            _ => h.m.advance_ns(DELAYED_ACK_NS),
        }
    }
    assert_eq!(sent, total - 1000);
    assert_eq!(got, total - 1000);
    assert!(h.get(dst, got) == data[1000..], "bytes differ");
    assert_eq!(h.get(off, 8), (total as u64).to_le_bytes());
    assert_eq!(h.call("sendfile", &[c, f, off, 10]), 0, "at the end");
    assert_eq!(
        h.call("lseek", &[f, (total - 5) as u64, 0]),
        (total - 5) as i64
    );
    assert_eq!(h.call("sendfile", &[c, f, 0, 100]), 5);
    assert_eq!(h.call("lseek", &[f, 0, 1]), total as i64);
    assert_eq!(read_all(&h, s, dst, 5), 5);
    assert_eq!(h.get(dst, 5), data[total - 5..]);
    // An input opened write-only: EBADF, nothing sent.
    let w = h.call("open", &[path, 0o1, 0]) as u64;
    assert_eq!(h.call("sendfile", &[c, w, 0, 10]), err(Errno::EBADF));
}
