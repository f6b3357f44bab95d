//! Tests of `MAP_SHARED` file mappings over the mock: the mappings map
//! the file's own pages, so stores, `read()` and `write()` see each other
//! at once, pages outlive truncation while mapped, and a shared futex is
//! keyed by the file.

use alloc::vec::Vec;

use super::bits::*;
use crate::elf::PAGE_SIZE;
use crate::error::Errno;
use crate::mm::{FaultAccess, handle_page_fault};
use crate::syscall::testing::{Sys, err};
use crate::user::UserMemory;

const PG: u64 = PAGE_SIZE;
const SCRATCH: u64 = 0x20_0000;
/// Where the tests put buffers for `pread`/`pwrite` (above the path).
const BUF: u64 = SCRATCH + 0x800;
const RW: u64 = (PROT_READ | PROT_WRITE) as u64;
const R: u64 = PROT_READ as u64;
const SHARED: u64 = MAP_SHARED as u64;

/// A process with `/dev/shm/f` of `len` bytes (pattern `i % 251`) open
/// read-write as the returned fd.
fn setup(len: usize) -> (Sys, u64) {
    let h = Sys::new(SCRATCH, 0x1000);
    let root = h.p.vfs.root().clone();
    let f = h.p.vfs.create_file(&root, b"/dev/shm/f", 0o600).unwrap();
    let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    f.write_at(0, &content, 0).unwrap();
    let fd = h.call("open", &[path(&h, "/dev/shm/f"), 2]) as u64;
    assert!(fd < 100, "open: {fd}");
    (h, fd)
}

fn path(h: &Sys, s: &str) -> u64 {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    h.m.write_user(SCRATCH, &b).unwrap();
    SCRATCH
}

fn load(h: &Sys, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
    crate::mm::ops::fault_in(&h.p, addr, len as u64, FaultAccess::Read);
    let mut b = alloc::vec![0; len];
    h.m.read_user(addr, &mut b).map_err(|e| e.errno())?;
    Ok(b)
}

fn store(h: &Sys, addr: u64, data: &[u8]) -> Result<(), Errno> {
    crate::mm::ops::fault_in(&h.p, addr, data.len() as u64, FaultAccess::Write);
    h.m.write_user(addr, data).map_err(|e| e.errno())
}

fn pread(h: &Sys, fd: u64, off: u64, len: usize) -> Vec<u8> {
    let n = h.call("pread64", &[fd, BUF, len as u64, off]);
    assert!(n >= 0, "pread64: {n}");
    let mut b = alloc::vec![0; n as usize];
    h.m.read_user(BUF, &mut b).unwrap();
    b
}

fn pwrite(h: &Sys, fd: u64, off: u64, data: &[u8]) {
    h.m.write_user(BUF, data).unwrap();
    assert_eq!(
        h.call("pwrite64", &[fd, BUF, data.len() as u64, off]),
        data.len() as i64
    );
}

#[test]
fn stores_and_file_writes_are_seen_both_ways_at_once() {
    let (h, fd) = setup(2 * PG as usize);
    let a = h.call("mmap", &[0, 2 * PG, RW, SHARED, fd, 0]) as u64;
    let b = h.call("mmap", &[0, PG, R, SHARED, fd, PG]) as u64;
    assert_eq!(load(&h, a + 5, 3).unwrap(), [5, 6, 7]);
    store(&h, a + PG + 10, b"through a").unwrap();
    assert_eq!(
        pread(&h, fd, PG + 10, 9),
        b"through a",
        "read() sees a store"
    );
    assert_eq!(load(&h, b + 10, 9).unwrap(), b"through a", "so does b");
    pwrite(&h, fd, PG + 100, b"by write");
    assert_eq!(load(&h, a + PG + 100, 8).unwrap(), b"by write");
    assert_eq!(load(&h, b + 100, 8).unwrap(), b"by write");
    // No copy: the mapping holds the file's frame, and an unmap and a
    // new mapping find the same bytes.
    assert_eq!(h.call("munmap", &[a, 2 * PG]), 0);
    let c = h.call("mmap", &[0, PG, R, SHARED, fd, PG]) as u64;
    assert_eq!(load(&h, c + 10, 9).unwrap(), b"through a");
    // MADV_DONTNEED keeps a shared file page's contents; msync succeeds.
    assert_eq!(h.call("madvise", &[c, PG, 4]), 0);
    assert_eq!(load(&h, c + 10, 9).unwrap(), b"through a");
    assert_eq!(h.call("msync", &[c, PG, u64::from(MS_SYNC)]), 0);
}

#[test]
fn holes_get_pages_and_pages_past_the_end_fault() {
    let (h, fd) = setup(100);
    assert_eq!(h.call("ftruncate", &[fd, 2 * PG + 1]), 0);
    let a = h.call("mmap", &[0, 4 * PG, RW, SHARED, fd, 0]) as u64;
    // Page 1 is a hole: a store gives the file a page.
    store(&h, a + PG, b"hole").unwrap();
    assert_eq!(pread(&h, fd, PG, 4), b"hole");
    // Page 2 holds the file's last byte; page 3 lies wholly past the end
    // (SIGBUS on Linux: the fault is refused with ENXIO).
    assert_eq!(load(&h, a + 2 * PG, 2).unwrap(), [0, 0]);
    let past = handle_page_fault(&h.p, a + 3 * PG, FaultAccess::Read).unwrap_err();
    assert_eq!(past.errno(), Errno::ENXIO);
    assert_eq!(load(&h, a + 3 * PG, 1), Err(Errno::EFAULT));
    // A read-only mapping refuses a store.
    let r = h.call("mmap", &[0, PG, R, SHARED, fd, 0]) as u64;
    let refused = handle_page_fault(&h.p, r, FaultAccess::Write).unwrap_err();
    assert_eq!(refused.errno(), Errno::EFAULT);
}

#[test]
fn a_mapped_page_outlives_truncate_and_unlink() {
    let (h, fd) = setup(PG as usize);
    let a = h.call("mmap", &[0, PG, RW, SHARED, fd, 0]) as u64;
    store(&h, a, b"kept").unwrap();
    assert_eq!(h.m.owned_frames(), 1, "the file's page is a frame now");
    // Shrinking inside the page zeroes its tail in the mapping too.
    assert_eq!(h.call("ftruncate", &[fd, 2]), 0);
    assert_eq!(load(&h, a, 4).unwrap(), b"ke\0\0");
    // Cut and unlinked: the file lets the frame go, the mapping keeps it.
    assert_eq!(h.call("ftruncate", &[fd, 0]), 0);
    assert_eq!(h.m.owned_frames(), 0);
    assert_eq!(h.call("unlink", &[path(&h, "/dev/shm/f")]), 0);
    store(&h, a + 8, b"alive").unwrap();
    assert_eq!(load(&h, a + 8, 5).unwrap(), b"alive");
    assert_eq!(h.call("close", &[fd]), 0);
    assert_eq!(h.call("munmap", &[a, PG]), 0);
}

#[test]
fn shared_file_mappings_are_not_charged_and_key_futexes_by_file() {
    let (h, fd) = setup(PG as usize);
    let before = h.p.vm.lock().committed_bytes();
    let a = h.call("mmap", &[0, PG, RW, SHARED, fd, 0]) as u64;
    let b = h.call("mmap", &[0, PG, RW, SHARED, fd, 0]) as u64;
    assert_eq!(h.p.vm.lock().committed_bytes(), before);
    let private = h.call("mmap", &[0, PG, RW, u64::from(MAP_PRIVATE), fd, 0]) as u64;
    assert_eq!(h.p.vm.lock().committed_bytes(), before + PG);
    let key = |addr: u64| {
        let vm = h.p.vm.lock();
        vm.find(addr).and_then(|v| v.shared_object_at(addr))
    };
    assert!(key(a + 8).is_some());
    assert_eq!(key(a + 8), key(b + 8), "one key for the file offset");
    assert_ne!(key(a + 8), key(a + 12));
    assert_eq!(key(private), None);
    // A shared FUTEX_WAKE through one mapping reaches the word's key (no
    // waiter: 0 woken), and a value mismatch through the other is EAGAIN.
    store(&h, a, &7u32.to_ne_bytes()).unwrap();
    load(&h, b, 4).unwrap();
    assert_eq!(h.call("futex", &[a, 1, 1]), 0);
    assert_eq!(h.call("futex", &[b, 0, 8, 0]), err(Errno::EAGAIN));
}
