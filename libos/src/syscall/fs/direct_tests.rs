//! Regular-file `read`/`write` straight between the file's pages and user
//! memory (`crate::fs::direct`): no bounce buffer, Linux's partial-copy
//! answers, and a buffer that is a not-yet-faulted mapping of the same
//! file — with the mock's fault handler set to the LibOS's fault path, as
//! the kernel's copies call it, so a fault taken under the inode lock
//! would deadlock here too.

use alloc::sync::Arc;
use alloc::vec::Vec;
use std::sync::mpsc;
use std::time::Duration;

use crate::elf::PAGE_SIZE;
use crate::error::Errno;
use crate::syscall::mm::bits::*;
use crate::syscall::testing::{Sys, err};
use crate::user::UserMemory;

const PG: u64 = PAGE_SIZE;
const SCRATCH: u64 = 0x20_0000;
const SCRATCH_BYTES: usize = 0x4_0000;
/// Buffers for the transfers (above the path).
const BUF: u64 = SCRATCH + 0x1000;
const RW: u64 = (PROT_READ | PROT_WRITE) as u64;
const PRIVATE: u64 = MAP_PRIVATE as u64;
const SHARED: u64 = MAP_SHARED as u64;
const ANON: u64 = (MAP_PRIVATE | MAP_ANONYMOUS) as u64;

/// The byte at offset `i` of the test file.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
}

/// A process whose user copies resolve faults through the LibOS (as the
/// kernel's do), with `/f` holding `len` bytes of [`pattern`] open
/// read-write as the returned fd.
fn setup(len: usize) -> (Sys, u64) {
    let h = Sys::new(SCRATCH, SCRATCH_BYTES);
    let weak = Arc::downgrade(&h.p);
    h.m.set_fault_handler(Arc::new(move |addr, access| match weak.upgrade() {
        Some(p) => crate::mm::handle_page_fault(&p, addr, access),
        None => Err(Errno::EFAULT.into()),
    }));
    h.m.write_user(SCRATCH, b"/f\0").unwrap();
    let fd = h.call("open", &[SCRATCH, 0o102, 0o600]) as u64; // O_RDWR | O_CREAT
    assert!(fd < 100, "open: {fd}");
    let data = pattern(len);
    h.m.write_user(BUF, &data).unwrap();
    assert_eq!(h.call("write", &[fd, BUF, len as u64]), len as i64);
    h.m.write_user(BUF, &alloc::vec![0; len]).unwrap();
    assert_eq!(h.call("lseek", &[fd, 0, 0]), 0);
    (h, fd)
}

fn peek(h: &Sys, addr: u64, len: usize) -> Vec<u8> {
    let mut b = alloc::vec![0; len];
    h.m.peek(addr, &mut b).unwrap();
    b
}

/// The file's bytes, read through a separate descriptor's `pread`.
fn contents(h: &Sys, fd: u64, len: usize) -> Vec<u8> {
    let at = BUF + 0x2_0000;
    assert_eq!(h.call("pread64", &[fd, at, len as u64, 0]), len as i64);
    peek(h, at, len)
}

fn file_size(h: &Sys, fd: u64) -> i64 {
    let st = BUF + 0x3_e000;
    assert_eq!(h.call("fstat", &[fd, st]), 0);
    i64::from_le_bytes(peek(h, st + 48, 8).try_into().unwrap())
}

/// Runs `f` on another thread: a deadlock fails the test instead of
/// hanging it.
fn without_deadlock(h: &Arc<Sys>, fd: u64, f: fn(&Sys, u64)) {
    let (tx, rx) = mpsc::channel();
    let h2 = h.clone();
    std::thread::spawn(move || {
        f(&h2, fd);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the transfer deadlocked (or panicked)");
}

#[test]
fn regular_file_transfers_skip_the_bounce_buffer() {
    let len = 3 * PG as usize + 100;
    let (h, fd) = setup(len);
    let want = pattern(len);
    // `setup` already wrote and read through the direct path.
    assert_eq!(h.p.bounce.idle(), 0, "setup's write took the bounce buffer");
    assert_eq!(h.call("read", &[fd, BUF, len as u64 + 50]), len as i64);
    assert_eq!(peek(&h, BUF, len), want);
    assert_eq!(h.call("read", &[fd, BUF, 10]), 0, "at the end");
    assert_eq!(h.call("pread64", &[fd, BUF, 5000, 4000]), 5000);
    assert_eq!(peek(&h, BUF, 5000), want[4000..9000]);
    h.m.write_user(BUF, b"HELLO").unwrap();
    assert_eq!(h.call("pwrite64", &[fd, BUF, 5, PG - 2]), 5);
    // readv/writev: two pieces each, across a page boundary.
    let iov = BUF + 0x1_0000;
    let mut v = Vec::new();
    for (base, n) in [(BUF + 0x100, PG - 1), (BUF + 0x3000, 3)] {
        v.extend_from_slice(&base.to_le_bytes());
        v.extend_from_slice(&n.to_le_bytes());
    }
    h.m.write_user(iov, &v).unwrap();
    assert_eq!(h.call("lseek", &[fd, 0, 0]), 0);
    assert_eq!(h.call("readv", &[fd, iov, 2]), PG as i64 + 2);
    let mut expect = want.clone();
    expect[PG as usize - 2..PG as usize + 3].copy_from_slice(b"HELLO");
    assert_eq!(
        peek(&h, BUF + 0x100, PG as usize - 1),
        expect[..PG as usize - 1]
    );
    assert_eq!(
        peek(&h, BUF + 0x3000, 3),
        expect[PG as usize - 1..PG as usize + 2]
    );
    h.m.write_user(BUF + 0x100, &[0xaa; 8]).unwrap();
    assert_eq!(h.call("lseek", &[fd, 0, 0]), 0);
    assert_eq!(h.call("writev", &[fd, iov, 2]), PG as i64 + 2);
    assert_eq!(h.call("preadv", &[fd, iov, 2, 0]), PG as i64 + 2);
    assert_eq!(peek(&h, BUF + 0x100, 8), [0xaa; 8]);
    // A hole reads as zeros, directly too.
    assert_eq!(h.call("ftruncate", &[fd, 40 * PG]), 0);
    assert_eq!(
        h.call("pread64", &[fd, BUF, 2 * PG, 20 * PG]),
        2 * PG as i64
    );
    assert_eq!(
        peek(&h, BUF, 2 * PG as usize),
        alloc::vec![0; 2 * PG as usize]
    );
    assert_eq!(
        h.p.bounce.idle(),
        0,
        "a regular-file transfer took the bounce buffer"
    );
    // The check means something: a device still goes through it.
    h.m.write_user(SCRATCH, b"/dev/zero\0").unwrap();
    let zero = h.call("open", &[SCRATCH, 0]) as u64;
    assert_eq!(h.call("read", &[zero, BUF, 16]), 16);
    assert_eq!(h.p.bounce.idle(), 1);
}

#[test]
fn a_fault_part_way_reports_the_bytes_done_or_efault() {
    let len = 3 * PG as usize;
    let (h, fd) = setup(len);
    let want = pattern(len);
    let ro = h.call("mmap", &[0, PG, PROT_READ as u64, ANON, -1i64 as u64, 0]) as u64;
    // A buffer whose second page is not mapped: read stops there and the
    // offset moves by what was copied.
    let a = h.call("mmap", &[0, 2 * PG, RW, ANON, -1i64 as u64, 0]) as u64;
    assert_eq!(h.call("munmap", &[a + PG, PG]), 0);
    assert_eq!(h.call("read", &[fd, a + 100, 2 * PG]), PG as i64 - 100);
    assert_eq!(
        peek(&h, a + 100, PG as usize - 100),
        want[..PG as usize - 100]
    );
    assert_eq!(h.call("lseek", &[fd, 0, 1]), PG as i64 - 100);
    // Nothing copyable: EFAULT and the offset stays.
    assert_eq!(h.call("read", &[fd, a + PG, 10]), err(Errno::EFAULT));
    assert_eq!(h.call("lseek", &[fd, 0, 1]), PG as i64 - 100);
    assert_eq!(h.call("pread64", &[fd, a + PG, 10, 0]), err(Errno::EFAULT));
    // A read-only buffer cannot be read into.
    assert_eq!(h.call("pread64", &[fd, ro, 10, 0]), err(Errno::EFAULT));
    // Writes likewise: the file grows by what could be read, no further,
    // and a write of nothing readable allocates nothing.
    h.m.write_user(a + PG - 8, b"12345678").unwrap();
    assert_eq!(h.call("pwrite64", &[fd, a + PG - 8, 100, 10 * PG]), 8);
    assert_eq!(file_size(&h, fd), 10 * PG as i64 + 8);
    assert_eq!(
        h.call("pwrite64", &[fd, a + PG, 100, 20 * PG]),
        err(Errno::EFAULT)
    );
    assert_eq!(h.call("write", &[fd, 0, 1]), err(Errno::EFAULT));
    assert_eq!(file_size(&h, fd), 10 * PG as i64 + 8);
    let st = BUF + 0x3_e000;
    assert_eq!(h.call("fstat", &[fd, st]), 0);
    let blocks = u64::from_le_bytes(peek(&h, st + 64, 8).try_into().unwrap());
    assert_eq!(
        blocks,
        4 * 8,
        "three pages of data and the one written at 10 pages"
    );
    // A hole runs into the unmapped page the same way, and so does a
    // read that starts in data and ends in the hole.
    h.m.write_user(a, &[0xee; PG as usize]).unwrap();
    assert_eq!(
        h.call("pread64", &[fd, a + 100, 2 * PG, 5 * PG]),
        PG as i64 - 100
    );
    assert_eq!(
        peek(&h, a + 100, PG as usize - 100),
        alloc::vec![0; PG as usize - 100]
    );
    h.m.write_user(a, &[0xee; PG as usize]).unwrap();
    assert_eq!(
        h.call("pread64", &[fd, a + 16, 2 * PG, 3 * PG - 8]),
        PG as i64 - 16
    );
    assert_eq!(peek(&h, a + 16, 8), want[3 * PG as usize - 8..]);
    assert_eq!(peek(&h, a + 24, 16), [0; 16]);
    // Huge counts (clamped to MAX_RW_COUNT): as much as there is, or as
    // much as is mapped; past the user half, EFAULT before anything.
    assert_eq!(
        h.call("pread64", &[fd, BUF, u64::MAX >> 1, 0]),
        10 * PG as i64 + 8,
        "the file fits in the scratch buffer"
    );
    assert_eq!(
        h.call("pread64", &[fd, u64::MAX - 8, 100, 0]),
        err(Errno::EFAULT)
    );
    assert_eq!(
        h.call("pwrite64", &[fd, 1 << 47, 100, 0]),
        err(Errno::EFAULT)
    );
    assert_eq!(h.call("pread64", &[fd, a, 8 * PG, 0]), PG as i64);
    assert_eq!(h.call("pwrite64", &[fd, a, 8 * PG, 0]), PG as i64);
    assert_eq!(h.p.bounce.idle(), 0);
}

#[test]
fn reading_into_and_writing_from_a_fresh_mapping_of_the_same_file() {
    let len = 4 * PG as usize;
    let (h, fd) = setup(len);
    let h = Arc::new(h);
    without_deadlock(&h, fd, |h, fd| {
        let want = pattern(4 * PG as usize);
        let faults = h.m.faults_handled();
        // MAP_PRIVATE, not touched yet: each page is filled from the file
        // when the copy meets it, with the file's lock dropped.
        let m = h.call("mmap", &[0, 4 * PG, RW, PRIVATE, fd, 0]) as u64;
        assert_eq!(h.call("pread64", &[fd, m, 2 * PG, PG]), 2 * PG as i64);
        assert_eq!(
            peek(h, m, 2 * PG as usize),
            want[PG as usize..3 * PG as usize]
        );
        assert_eq!(
            contents(h, fd, 4 * PG as usize),
            want,
            "a private mapping changed the file"
        );
        assert!(
            h.m.faults_handled() >= faults + 2,
            "the pages were faulted in"
        );
        // write() from a fresh private mapping of the same file (the
        // untouched pages 2 and 3): the file's own bytes, moved.
        assert_eq!(
            h.call("pwrite64", &[fd, m + 2 * PG, 2 * PG, 4 * PG]),
            2 * PG as i64
        );
        let mut grown = want.clone();
        grown.extend_from_slice(&want[2 * PG as usize..]);
        assert_eq!(contents(h, fd, 6 * PG as usize), grown);
        // MAP_SHARED: the mapping is the file, so read() into it changes
        // the file too; write() from it reads the file's own frame.
        let s = h.call("mmap", &[0, 2 * PG, RW, SHARED, fd, 0]) as u64;
        assert_eq!(h.call("pread64", &[fd, s, PG, 3 * PG]), PG as i64);
        let mut now = grown.clone();
        now.copy_within(3 * PG as usize..4 * PG as usize, 0);
        assert_eq!(contents(h, fd, 6 * PG as usize), now);
        assert_eq!(h.call("pwrite64", &[fd, s + PG, PG, 5 * PG]), PG as i64);
        now.copy_within(PG as usize..2 * PG as usize, 5 * PG as usize);
        assert_eq!(contents(h, fd, 6 * PG as usize), now);
        // read() and write() at the file offset into and from a fresh
        // private mapping, through several pages at once.
        let m2 = h.call("mmap", &[0, 6 * PG, RW, PRIVATE, fd, 0]) as u64;
        assert_eq!(h.call("lseek", &[fd, 0, 0]), 0);
        assert_eq!(h.call("read", &[fd, m2, 6 * PG]), 6 * PG as i64);
        assert_eq!(peek(h, m2, 6 * PG as usize), now);
        let m3 = h.call("mmap", &[0, 6 * PG, RW, PRIVATE, fd, 0]) as u64;
        assert_eq!(h.call("write", &[fd, m3, 6 * PG]), 6 * PG as i64);
        let mut twice = now.clone();
        twice.extend_from_slice(&now);
        assert_eq!(contents(h, fd, 12 * PG as usize), twice);
        assert_eq!(h.p.bounce.idle(), 0);
    });
}
