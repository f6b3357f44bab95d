//! Tests of the memory syscalls over the mock's page table.

use alloc::vec::Vec;

use super::bits::*;
use crate::elf::PAGE_SIZE;
use crate::error::Errno;
use crate::syscall::testing::{Sys, err};
use crate::user::UserMemory;

const PG: u64 = PAGE_SIZE;
const SCRATCH: u64 = 0x20_0000;
const ANON: u64 = (MAP_PRIVATE | MAP_ANONYMOUS) as u64;
const RW: u64 = (PROT_READ | PROT_WRITE) as u64;
const R: u64 = PROT_READ as u64;
/// -1 as an fd.
const NO_FD: u64 = u64::MAX;

type H = Sys;

fn setup() -> H {
    let h = Sys::new(SCRATCH, 0x1000);
    h.p.vm.lock().brk_start = 0x60_0000;
    h.p.vm.lock().brk = 0x60_0000;
    h
}

impl Sys {
    fn mmap(&self, addr: u64, len: u64, prot: u64, flags: u64) -> i64 {
        self.call("mmap", &[addr, len, prot, flags, NO_FD, 0])
    }

    fn cstr(&self, s: &str) -> u64 {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.m.write_user(SCRATCH, &b).unwrap();
        SCRATCH
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        crate::mm::ops::fault_in(
            &self.p,
            addr,
            data.len() as u64,
            crate::mm::FaultAccess::Write,
        );
        self.m.write_user(addr, data).map_err(|e| e.errno())
    }

    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut b = alloc::vec![0; len];
        crate::mm::ops::fault_in(&self.p, addr, len as u64, crate::mm::FaultAccess::Read);
        self.m.read_user(addr, &mut b).map_err(|e| e.errno())?;
        Ok(b)
    }

    fn areas(&self) -> Vec<(u64, u64)> {
        self.p.vm.lock().areas().map(|v| (v.start, v.end)).collect()
    }
}

#[test]
fn anonymous_mmap_is_zeroed_top_down_and_unmaps() {
    let h = setup();
    let a = h.mmap(0, 3 * PG, RW, ANON);
    assert!(a > 0 && (a as u64).is_multiple_of(PG));
    let a = a as u64;
    assert_eq!(a + 3 * PG, h.p.vm.lock().mmap_base);
    assert_eq!(h.read(a, 8).unwrap(), [0; 8]);
    h.write(a + 100, b"hello").unwrap();
    // The next one goes right below, and merges into one area.
    let b = h.mmap(0, 5000, RW, ANON) as u64;
    assert_eq!(b, a - 2 * PG);
    assert_eq!(h.areas(), [(b, a + 3 * PG)]);
    // Unmapping the middle splits it.
    assert_eq!(h.call("munmap", &[a, PG]), 0);
    assert_eq!(h.areas(), [(b, a), (a + PG, a + 3 * PG)]);
    assert_eq!(h.write(a + 100, b"x"), Err(Errno::EFAULT));
    assert_eq!(h.read(a + PG, 1).unwrap(), [0]);
    // The hole is reused by a hint-less mapping that fits? No: top-down
    // takes the highest gap that fits, which is the hole.
    assert_eq!(h.mmap(0, PG, RW, ANON) as u64, a);
    // Unmapping nothing is fine.
    assert_eq!(h.call("munmap", &[0x1000_0000, PG]), 0);
}

#[test]
fn mmap_hint_fixed_and_noreplace() {
    let h = setup();
    let hint = 0x1000_0000u64;
    assert_eq!(h.mmap(hint + 5, PG, RW, ANON) as u64, hint + PG);
    assert_ne!(h.mmap(hint + PG, PG, RW, ANON) as u64, hint + PG);
    h.write(hint + PG, b"old").unwrap();
    let fixed = ANON | u64::from(MAP_FIXED);
    assert_eq!(h.mmap(hint, 3 * PG, R, fixed) as u64, hint);
    assert_eq!(h.read(hint + PG, 3).unwrap(), [0, 0, 0]);
    assert_eq!(h.write(hint + PG, b"x"), Err(Errno::EFAULT));
    let noreplace = ANON | u64::from(MAP_FIXED_NOREPLACE);
    assert_eq!(h.mmap(hint + 2 * PG, PG, RW, noreplace), err(Errno::EEXIST));
    assert_eq!(
        h.mmap(hint + 3 * PG, PG, RW, noreplace) as u64,
        hint + 3 * PG
    );
    // MAP_32BIT lands below 2 GiB.
    let low = h.mmap(0, PG, RW, ANON | u64::from(MAP_32BIT)) as u64;
    assert!((0x1_0000..0x8000_0000).contains(&low));
}

#[test]
fn mmap_rejects_bad_arguments() {
    let h = setup();
    assert_eq!(h.mmap(0, 0, RW, ANON), err(Errno::EINVAL));
    assert_eq!(
        h.mmap(0, PG, RW, u64::from(MAP_ANONYMOUS)),
        err(Errno::EINVAL)
    );
    assert_eq!(h.mmap(0, PG, RW, ANON | 0x4), err(Errno::EINVAL));
    assert_eq!(
        h.call("mmap", &[0, PG, RW, ANON, NO_FD, 100]),
        err(Errno::EINVAL)
    );
    assert_eq!(h.mmap(0, u64::MAX - 10, RW, ANON), err(Errno::ENOMEM));
    assert_eq!(h.mmap(0, 1 << 47, RW, ANON), err(Errno::ENOMEM));
    let fixed = ANON | u64::from(MAP_FIXED);
    assert_eq!(h.mmap(0x1000_0100, PG, RW, fixed), err(Errno::EINVAL));
    assert_eq!(
        h.mmap(0x7fff_ffff_f000, 2 * PG, RW, fixed),
        err(Errno::ENOMEM)
    );
    assert_eq!(h.mmap(0, PG, RW, fixed), err(Errno::EPERM));
    let validate = u64::from(MAP_SHARED_VALIDATE | MAP_ANONYMOUS);
    assert_eq!(
        h.mmap(0, PG, RW, validate | 0x20_0000),
        err(Errno::EOPNOTSUPP)
    );
    assert!(h.mmap(0, PG, RW, validate) > 0);
    // Unknown flags are ignored without validation, as Linux.
    assert!(h.mmap(0, PG, RW, ANON | 0x20_0000) > 0);
    assert_eq!(
        h.call("mmap", &[0, PG, RW, u64::from(MAP_PRIVATE), 77, 0]),
        err(Errno::EBADF)
    );
    assert_eq!(
        h.mmap(0, PG, RW, ANON | u64::from(MAP_HUGETLB)),
        err(Errno::ENOMEM)
    );
    // Out of frames (a mapping must leave room for its page tables too:
    // two pages for a small one).
    h.m.set_frame_limit(h.m.mapped_pages() as u64 + 6);
    assert_eq!(h.mmap(0, 8 * PG, RW, ANON), err(Errno::ENOMEM));
    assert!(h.mmap(0, 4 * PG, RW, ANON) > 0);
    // munmap checks.
    assert_eq!(h.call("munmap", &[0x1000_0001, PG]), err(Errno::EINVAL));
    assert_eq!(h.call("munmap", &[0x1000_0000, 0]), err(Errno::EINVAL));
    assert_eq!(
        h.call("munmap", &[0x7fff_ffff_f000, 2 * PG]),
        err(Errno::EINVAL)
    );
}

#[test]
fn mprotect_splits_merges_and_is_enforced() {
    let h = setup();
    let a = h.mmap(0, 4 * PG, RW, ANON) as u64;
    h.write(a + PG, b"keep").unwrap();
    assert_eq!(h.call("mprotect", &[a + PG, PG, R]), 0);
    assert_eq!(
        h.areas(),
        [(a, a + PG), (a + PG, a + 2 * PG), (a + 2 * PG, a + 4 * PG)]
    );
    assert_eq!(h.write(a + PG, b"x"), Err(Errno::EFAULT));
    assert_eq!(h.read(a + PG, 4).unwrap(), b"keep");
    assert_eq!(h.call("mprotect", &[a + PG, PG, 0]), 0);
    assert_eq!(h.read(a + PG, 1), Err(Errno::EFAULT));
    assert_eq!(h.call("mprotect", &[a + PG, 1, RW]), 0);
    assert_eq!(h.areas(), [(a, a + 4 * PG)]);
    assert_eq!(h.read(a + PG, 4).unwrap(), b"keep", "contents survive");
    let maps = alloc::string::String::from_utf8(h.p.vm.lock().maps_text()).unwrap();
    assert!(maps.contains(" rw-p 00000000 00:00 0 \n"), "{maps}");
    // Bad arguments.
    assert_eq!(h.call("mprotect", &[a + 1, PG, R]), err(Errno::EINVAL));
    assert_eq!(h.call("mprotect", &[a, PG, 0x10]), err(Errno::EINVAL));
    assert_eq!(h.call("mprotect", &[a, 0, 0x10]), 0);
    assert_eq!(h.call("mprotect", &[a, 5 * PG, R]), err(Errno::ENOMEM));
    assert_eq!(
        h.call("mprotect", &[a, u64::MAX - PG, R]),
        err(Errno::ENOMEM)
    );
    assert_eq!(
        h.call(
            "mprotect",
            &[a, PG, R | u64::from(PROT_GROWSDOWN | PROT_GROWSUP)]
        ),
        err(Errno::EINVAL)
    );
    assert_eq!(
        h.call("mprotect", &[a, PG, R | u64::from(PROT_GROWSDOWN)]),
        err(Errno::EINVAL)
    );
}

#[test]
fn prot_none_reservations_populate_on_mprotect() {
    let h = setup();
    let pages_before = h.m.mapped_pages();
    // 2 MiB: the largest reservation still populated eagerly (a larger one
    // is populated on touch: `huge_reservations_cost_nothing_until_touched`).
    let a = h.mmap(0, 512 * PG, 0, ANON | u64::from(MAP_NORESERVE)) as u64;
    assert_eq!(h.m.mapped_pages(), pages_before, "no frames for PROT_NONE");
    assert_eq!(h.read(a, 1), Err(Errno::EFAULT));
    assert_eq!(h.call("mprotect", &[a, 2 * PG, RW]), 0);
    assert_eq!(h.m.mapped_pages(), pages_before + 2);
    h.write(a + PG, b"arena").unwrap();
    assert_eq!(h.call("mincore", &[a, 4 * PG, SCRATCH]), 0);
    assert_eq!(h.read(SCRATCH, 4).unwrap(), [1, 1, 0, 0]);
    assert_eq!(h.call("mincore", &[a + 1, PG, SCRATCH]), err(Errno::EINVAL));
    assert_eq!(
        h.call("mincore", &[0x10_0000, PG, SCRATCH]),
        err(Errno::ENOMEM)
    );
    // Back to PROT_NONE keeps the contents.
    assert_eq!(h.call("mprotect", &[a, 2 * PG, 0]), 0);
    assert_eq!(h.call("mprotect", &[a, 2 * PG, R]), 0);
    assert_eq!(h.read(a + PG, 5).unwrap(), b"arena");
}

#[test]
fn brk_grows_shrinks_and_stops_at_mappings() {
    let h = setup();
    let start = 0x60_0000u64;
    assert_eq!(h.call("brk", &[0]) as u64, start);
    assert_eq!(h.call("brk", &[start + 100]) as u64, start + 100);
    h.write(start + 50, b"heap").unwrap();
    assert_eq!(
        h.call("brk", &[start + 3 * PG + 1]) as u64,
        start + 3 * PG + 1
    );
    assert_eq!(h.areas(), [(start, start + 4 * PG)]);
    let maps = alloc::string::String::from_utf8(h.p.vm.lock().maps_text()).unwrap();
    assert!(maps.ends_with("[heap]\n"), "{maps}");
    h.write(start + 3 * PG + 8, b"top").unwrap();
    // Shrinking unmaps whole pages past the new break.
    assert_eq!(h.call("brk", &[start + PG]) as u64, start + PG);
    assert_eq!(h.write(start + 3 * PG + 8, b"x"), Err(Errno::EFAULT));
    assert_eq!(h.read(start + 50, 4).unwrap(), b"heap");
    // Growing again gives zeroes.
    assert_eq!(h.call("brk", &[start + 4 * PG]) as u64, start + 4 * PG);
    assert_eq!(h.read(start + 3 * PG + 8, 3).unwrap(), [0, 0, 0]);
    // Below the start: unchanged.
    assert_eq!(h.call("brk", &[start - 1]) as u64, start + 4 * PG);
    // A mapping in the way (with a guard page) stops it.
    let fixed = ANON | u64::from(MAP_FIXED);
    assert_eq!(h.mmap(start + 8 * PG, PG, RW, fixed) as u64, start + 8 * PG);
    assert_eq!(h.call("brk", &[start + 8 * PG]) as u64, start + 4 * PG);
    assert_eq!(h.call("brk", &[start + 7 * PG]) as u64, start + 7 * PG);
    assert_eq!(h.call("brk", &[u64::MAX]) as u64, start + 7 * PG);
}

#[test]
fn mremap_grows_in_place_moves_and_shrinks() {
    let h = setup();
    let a = h.mmap(0x1000_0000, 2 * PG, RW, ANON) as u64;
    h.write(a, b"first").unwrap();
    h.write(a + PG, b"second").unwrap();
    // Grow in place into free space.
    assert_eq!(h.call("mremap", &[a, 2 * PG, 3 * PG, 0]) as u64, a);
    assert_eq!(h.areas(), [(a, a + 3 * PG)]);
    assert_eq!(h.read(a + 2 * PG, 1).unwrap(), [0]);
    // Blocked: ENOMEM without MAYMOVE, a move with it.
    let fixed = ANON | u64::from(MAP_FIXED);
    h.mmap(a + 3 * PG, PG, R, fixed);
    assert_eq!(
        h.call("mremap", &[a, 3 * PG, 5 * PG, 0]),
        err(Errno::ENOMEM)
    );
    let b = h.call("mremap", &[a, 3 * PG, 5 * PG, u64::from(MREMAP_MAYMOVE)]) as u64;
    assert_ne!(b, a);
    assert_eq!(h.read(b, 5).unwrap(), b"first");
    assert_eq!(h.read(b + PG, 6).unwrap(), b"second");
    assert_eq!(h.read(b + 4 * PG, 1).unwrap(), [0]);
    assert_eq!(h.read(a, 1), Err(Errno::EFAULT));
    // Shrink.
    assert_eq!(h.call("mremap", &[b, 5 * PG, PG, 0]) as u64, b);
    assert_eq!(h.read(b + PG, 1), Err(Errno::EFAULT));
    // Fixed destination.
    let dest = 0x2000_0000u64;
    let flags = u64::from(MREMAP_MAYMOVE | MREMAP_FIXED);
    assert_eq!(h.call("mremap", &[b, PG, 2 * PG, flags, dest]) as u64, dest);
    assert_eq!(h.read(dest, 5).unwrap(), b"first");
    // Bad arguments.
    assert_eq!(h.call("mremap", &[dest, PG, PG, 8]), err(Errno::EINVAL));
    assert_eq!(
        h.call(
            "mremap",
            &[dest, PG, PG, u64::from(MREMAP_FIXED), 0x3000_0000]
        ),
        err(Errno::EINVAL)
    );
    assert_eq!(h.call("mremap", &[dest + 1, PG, PG, 0]), err(Errno::EINVAL));
    assert_eq!(h.call("mremap", &[dest, PG, 0, 0]), err(Errno::EINVAL));
    assert_eq!(h.call("mremap", &[dest, 0, PG, 1]), err(Errno::EINVAL));
    assert_eq!(
        h.call("mremap", &[dest, PG, 2 * PG, flags, dest - PG]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        h.call("mremap", &[0x5000_0000, PG, 2 * PG, 1]),
        err(Errno::EFAULT)
    );
    assert_eq!(
        h.call("mremap", &[dest, 4 * PG, 8 * PG, 1]),
        err(Errno::EFAULT)
    );
}

#[test]
fn file_mappings_copy_contents_and_check_access() {
    let h = setup();
    let root = h.p.vfs.root().clone();
    let f = h.p.vfs.create_file(&root, b"/data", 0o644).unwrap();
    let content: Vec<u8> = (0..(PG as usize + 100)).map(|i| (i % 251) as u8).collect();
    f.write_at(0, &content, 0).unwrap();
    let fd = h.call("open", &[h.cstr("/data"), 0]) as u64;
    let private = u64::from(MAP_PRIVATE);
    let a = h.call("mmap", &[0, 3 * PG, RW, private, fd, 0]) as u64;
    assert_eq!(h.read(a, PG as usize + 100).unwrap(), content);
    assert_eq!(h.read(a + PG + 100, 8).unwrap(), [0; 8]);
    // Private: writes do not reach the file.
    h.write(a, b"XY").unwrap();
    let mut b = [0u8; 2];
    f.read_at(0, &mut b).unwrap();
    assert_eq!(b, [0, 1]);
    // MADV_DONTNEED brings the file's bytes back.
    assert_eq!(h.call("madvise", &[a, PG, 4]), 0);
    assert_eq!(h.read(a, 2).unwrap(), [0, 1]);
    // An offset.
    let c = h.call("mmap", &[0, PG, R, private, fd, PG]) as u64;
    assert_eq!(h.read(c, 100).unwrap(), &content[PG as usize..]);
    let maps = alloc::string::String::from_utf8(h.p.vm.lock().maps_text()).unwrap();
    assert!(maps.contains(" r--p 00001000 00:01 "), "{maps}");
    // Shared read-only works; shared writable needs a read-write fd.
    let shared = u64::from(MAP_SHARED);
    assert!(h.call("mmap", &[0, PG, R, shared, fd, 0]) > 0);
    assert_eq!(
        h.call("mmap", &[0, PG, RW, shared, fd, 0]),
        err(Errno::EACCES)
    );
    let s = h.call("mmap", &[0, PG, R, shared, fd, 0]) as u64;
    assert_eq!(h.call("mprotect", &[s, PG, RW]), err(Errno::EACCES));
    let rw_fd = h.call("open", &[h.cstr("/data"), 2]) as u64;
    let w = h.call("mmap", &[0, PG, R, shared, rw_fd, 0]) as u64;
    assert_eq!(h.call("mprotect", &[w, PG, RW]), 0);
    let wo_fd = h.call("open", &[h.cstr("/data"), 1]) as u64;
    assert_eq!(
        h.call("mmap", &[0, PG, R, private, wo_fd, 0]),
        err(Errno::EACCES)
    );
    // Directories cannot be mapped; /dev/zero is anonymous memory.
    let dir = h.call("open", &[h.cstr("/"), 0]) as u64;
    assert_eq!(
        h.call("mmap", &[0, PG, R, private, dir, 0]),
        err(Errno::ENODEV)
    );
    let zero = h.call("open", &[h.cstr("/dev/zero"), 2]) as u64;
    let z = h.call("mmap", &[0, PG, RW, shared, zero, 0]) as u64;
    h.write(z, b"shared").unwrap();
    assert_eq!(h.call("madvise", &[z, PG, 4]), 0);
    assert_eq!(
        h.read(z, 6).unwrap(),
        b"shared",
        "DONTNEED keeps shared memory"
    );
    assert_eq!(h.call("madvise", &[z, PG, 9]), 0);
    assert_eq!(h.read(z, 6).unwrap(), [0; 6], "MADV_REMOVE frees it");
}

#[test]
fn madvise_and_msync() {
    let h = setup();
    let a = h.mmap(0, 2 * PG, RW, ANON) as u64;
    h.write(a + 10, b"gone").unwrap();
    assert_eq!(h.call("madvise", &[a, 2 * PG, 3]), 0);
    assert_eq!(h.read(a + 10, 4).unwrap(), b"gone");
    assert_eq!(h.call("madvise", &[a, 2 * PG, 4]), 0);
    assert_eq!(h.read(a + 10, 4).unwrap(), [0; 4]);
    assert_eq!(h.call("madvise", &[a, 2 * PG, 8]), 0);
    assert_eq!(h.call("madvise", &[a, 2 * PG, 9]), err(Errno::EINVAL));
    assert_eq!(h.call("madvise", &[a, 2 * PG, 99]), err(Errno::EINVAL));
    assert_eq!(h.call("madvise", &[a + 1, PG, 0]), err(Errno::EINVAL));
    assert_eq!(h.call("madvise", &[a, 0, 0]), 0);
    assert_eq!(h.call("madvise", &[a, 3 * PG, 0]), err(Errno::ENOMEM));
    assert_eq!(h.call("msync", &[a, 2 * PG, u64::from(MS_SYNC)]), 0);
    assert_eq!(
        h.call("msync", &[a, 3 * PG, u64::from(MS_ASYNC)]),
        err(Errno::ENOMEM)
    );
    assert_eq!(h.call("msync", &[a, PG, 3 | 4]), err(Errno::EINVAL));
    assert_eq!(h.call("msync", &[a + 8, PG, 0]), err(Errno::EINVAL));
    assert_eq!(h.call("msync", &[a, 0, 0]), 0);
}

#[test]
fn huge_reservations_cost_nothing_until_touched() {
    let h = setup();
    let pages_before = h.m.mapped_pages();
    // 1 TiB, readable and writable: nothing is mapped, whatever its size.
    let tib = 1u64 << 40;
    let a = h.mmap(0, tib, RW, ANON | u64::from(MAP_NORESERVE)) as u64;
    assert!(a < crate::elf::USER_SPACE_END, "{a:#x}");
    assert_eq!(h.m.mapped_pages(), pages_before);
    assert_eq!(h.call("mprotect", &[a, tib / 2, 0]), 0);
    assert_eq!(h.call("mprotect", &[a, tib / 2, RW]), 0);
    assert_eq!(
        h.m.mapped_pages(),
        pages_before,
        "mprotect populates nothing"
    );
    // A touch reserves the 2 MiB chunk around it, no more.
    let page = a + ((tib / 3) & !(PG - 1));
    crate::mm::handle_page_fault(&h.p, page + 12, crate::mm::FaultAccess::Write).unwrap();
    let chunk = ((2u64 << 20) / PG) as usize;
    assert_eq!(h.m.mapped_pages(), pages_before + chunk);
    h.write(page, b"touched").unwrap();
    assert_eq!(h.read(page, 7).unwrap(), b"touched");
    assert_eq!(h.call("munmap", &[a, tib]), 0);
    assert_eq!(h.m.mapped_pages(), pages_before);
}
