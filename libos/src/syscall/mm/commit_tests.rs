//! Tests of commit accounting through the memory syscalls
//! (`crate::mm::commit`): what is charged, what is not, and that every
//! refused charge is `ENOMEM` with nothing changed.

use super::bits::*;
use crate::elf::PAGE_SIZE;
use crate::error::Errno;
use crate::syscall::testing::{Sys, err};
use crate::user::UserMemory;

const PG: u64 = PAGE_SIZE;
const MIB: u64 = 1 << 20;
const ANON: u64 = (MAP_PRIVATE | MAP_ANONYMOUS) as u64;
const SHARED_ANON: u64 = (MAP_SHARED | MAP_ANONYMOUS) as u64;
const NORESERVE: u64 = MAP_NORESERVE as u64;
const STACK: u64 = MAP_STACK as u64;
const RW: u64 = (PROT_READ | PROT_WRITE) as u64;
const R: u64 = PROT_READ as u64;
const NONE: u64 = 0;

/// A process whose programs may hold `limit_mib` MiB (the mock's frame
/// budget), with a heap starting at 6 MiB.
fn setup(limit_mib: u64) -> Sys {
    let h = Sys::new(0x20_0000, 0x1000);
    h.m.set_frame_limit(limit_mib * MIB / PG);
    let mut vm = h.p.vm.lock();
    vm.brk_start = 0x60_0000;
    vm.brk = 0x60_0000;
    drop(vm);
    h
}

impl Sys {
    fn map_anon(&self, len: u64, prot: u64, flags: u64) -> i64 {
        self.call("mmap", &[0, len, prot, flags, u64::MAX, 0])
    }

    fn committed(&self) -> u64 {
        self.p.vm.lock().committed_bytes()
    }
}

#[test]
fn mappings_are_charged_until_the_limit_then_enomem() {
    // Large areas take no frames until touched (the mock maps nothing for
    // them), so only the commit limit can stop the loop — as `malloc` of
    // big blocks in a loop on a small guest.
    let h = setup(64);
    let mut got = 0;
    let last = loop {
        let r = h.map_anon(16 * MIB, RW, ANON);
        if r < 0 {
            break r;
        }
        got += 1;
        assert!(got <= 4, "more than the limit was committed");
    };
    assert_eq!(last, err(Errno::ENOMEM));
    assert_eq!(got, 4, "64 MiB holds four");
    assert_eq!(h.committed(), 64 * MIB);
    // Unmapping uncharges: the room is there again.
    let top = h.p.vm.lock().areas().last().unwrap().end;
    assert_eq!(h.call("munmap", &[top - 16 * MIB, 16 * MIB]), 0);
    assert_eq!(h.committed(), 48 * MIB);
    let a = h.map_anon(8 * MIB, RW, ANON) as u64;
    assert_eq!(h.committed(), 56 * MIB);
    assert_eq!(h.call("munmap", &[a, 8 * MIB]), 0);
    assert_eq!(h.committed(), 48 * MIB);
    assert!(h.map_anon(16 * MIB, RW, ANON) > 0);
    assert_eq!(h.map_anon(2 * MIB, RW, ANON), err(Errno::ENOMEM));
}

#[test]
fn noreserve_stacks_prot_none_and_read_only_memory_are_not_charged() {
    let h = setup(64);
    let tib = 1u64 << 40;
    // Linux without MAP_NORESERVE refuses 1 TiB on a small machine too.
    assert_eq!(h.map_anon(tib, RW, ANON), err(Errno::ENOMEM));
    let a = h.map_anon(tib, RW, ANON | NORESERVE);
    assert!(a > 0);
    let b = h.map_anon(tib, NONE, ANON);
    assert!(b > 0);
    assert!(h.map_anon(tib, R, ANON) > 0);
    assert!(h.map_anon(8 * MIB, RW, ANON | STACK) > 0);
    assert_eq!(h.committed(), 0);
    // Making a reservation writable charges it; MAP_NORESERVE and
    // MAP_STACK areas never are.
    assert_eq!(h.call("mprotect", &[b as u64, tib, RW]), err(Errno::ENOMEM));
    assert_eq!(h.committed(), 0);
    assert!(!h.p.vm.lock().find(b as u64).unwrap().perms.write);
    assert_eq!(h.call("mprotect", &[a as u64, tib, NONE]), 0);
    assert_eq!(h.call("mprotect", &[a as u64, tib, RW]), 0);
    let s = h.map_anon(8 * MIB, NONE, ANON | STACK) as u64;
    assert_eq!(h.call("mprotect", &[s, 8 * MIB, RW]), 0);
    assert_eq!(h.committed(), 0);
    // A part of the reservation made writable is charged, and stays
    // charged when made read-only again (as Linux's VM_ACCOUNT).
    assert_eq!(h.call("mprotect", &[b as u64, 4 * MIB, RW]), 0);
    assert_eq!(h.committed(), 4 * MIB);
    assert_eq!(h.call("mprotect", &[b as u64, 4 * MIB, R]), 0);
    assert_eq!(h.committed(), 4 * MIB);
    // Writing again does not charge twice.
    assert_eq!(h.call("mprotect", &[b as u64, 8 * MIB, RW]), 0);
    assert_eq!(h.committed(), 8 * MIB);
    assert_eq!(h.call("munmap", &[b as u64, tib]), 0);
    assert_eq!(h.committed(), 0);
}

#[test]
fn shared_anonymous_and_file_mappings_are_charged() {
    let h = setup(64);
    // Shared anonymous memory is charged whatever its protection (Linux
    // charges shmem at its size).
    assert!(h.map_anon(4 * MIB, R, SHARED_ANON) > 0);
    assert_eq!(h.committed(), 4 * MIB);
    assert!(h.map_anon(4 * MIB, RW, SHARED_ANON | NORESERVE) > 0);
    assert_eq!(h.committed(), 4 * MIB);
    // A read-only private file mapping: its bytes are copied into the
    // program's frames here, so it is charged (Linux shares the page
    // cache and charges nothing).
    let root = h.p.vfs.root().clone();
    h.p.vfs.create_file(&root, b"/data", 0o644).unwrap();
    h.m.write_user(0x20_0000, b"/data\0").unwrap();
    let fd = h.call("open", &[0x20_0000, 0]);
    assert!(fd >= 0);
    let f = h.call("mmap", &[0, 3 * PG, R, MAP_PRIVATE as u64, fd as u64, 0]);
    assert!(f > 0);
    assert_eq!(h.committed(), 4 * MIB + 3 * PG);
    // PROT_NONE file mappings are charged when made accessible.
    let g = h.call("mmap", &[0, 2 * PG, NONE, MAP_PRIVATE as u64, fd as u64, 0]);
    assert_eq!(h.committed(), 4 * MIB + 3 * PG);
    assert_eq!(h.call("mprotect", &[g as u64, 2 * PG, R]), 0);
    assert_eq!(h.committed(), 4 * MIB + 5 * PG);
}

#[test]
fn brk_growth_is_charged_and_refused_over_the_limit() {
    let h = setup(64);
    let base = 0x60_0000;
    assert_eq!(h.call("brk", &[base + 40 * MIB]) as u64, base + 40 * MIB);
    assert_eq!(h.committed(), 40 * MIB);
    // Past the limit the break stays (sbrk then fails with ENOMEM).
    assert_eq!(h.call("brk", &[base + 70 * MIB]) as u64, base + 40 * MIB);
    assert_eq!(h.committed(), 40 * MIB);
    assert_eq!(h.call("brk", &[base + MIB]) as u64, base + MIB);
    assert_eq!(h.committed(), MIB);
    assert!(h.map_anon(50 * MIB, RW, ANON) > 0);
    assert_eq!(h.call("brk", &[base + 20 * MIB]) as u64, base + MIB);
}

#[test]
fn mremap_charges_growth_and_uncharges_shrinking() {
    let h = setup(64);
    let a = h.map_anon(8 * MIB, RW, ANON) as u64;
    let may_move = u64::from(MREMAP_MAYMOVE);
    assert_eq!(
        h.call("mremap", &[a, 8 * MIB, 80 * MIB, may_move]),
        err(Errno::ENOMEM)
    );
    assert_eq!(h.committed(), 8 * MIB);
    assert_eq!(h.p.vm.lock().find(a).unwrap().end, a + 8 * MIB);
    let b = h.call("mremap", &[a, 8 * MIB, 40 * MIB, may_move]) as u64;
    assert!(b < crate::elf::USER_SPACE_END);
    assert_eq!(h.committed(), 40 * MIB);
    assert_eq!(h.call("mremap", &[b, 40 * MIB, 4 * MIB, 0]) as u64, b);
    assert_eq!(h.committed(), 4 * MIB);
    // An uncharged area grows without charge.
    let n = h.map_anon(4 * MIB, RW, ANON | NORESERVE) as u64;
    assert!(h.call("mremap", &[n, 4 * MIB, 200 * MIB, may_move]) > 0);
    assert_eq!(h.committed(), 4 * MIB);
}

#[test]
fn a_fixed_mapping_over_charged_memory_reuses_its_charge() {
    let h = setup(64);
    let a = h.map_anon(60 * MIB, RW, ANON) as u64;
    assert_eq!(h.map_anon(8 * MIB, RW, ANON), err(Errno::ENOMEM));
    // Replacing charged pages with as many charged pages fits.
    let fixed = ANON | u64::from(MAP_FIXED);
    let r = h.call("mmap", &[a, 8 * MIB, RW, fixed, u64::MAX, 0]);
    assert_eq!(r as u64, a);
    assert_eq!(h.committed(), 60 * MIB);
    // Growing past the limit with MAP_FIXED is refused and the old
    // mapping stays.
    let over = h.call("mmap", &[a + 56 * MIB, 16 * MIB, RW, fixed, u64::MAX, 0]);
    assert_eq!(over, err(Errno::ENOMEM));
    assert!(h.p.vm.lock().is_covered(a, a + 60 * MIB));
    assert_eq!(h.committed(), 60 * MIB);
}

#[test]
fn a_charge_larger_than_the_free_memory_is_refused() {
    // The heuristic rule: frames already in use (small mappings are
    // present in the mock) leave less than the commit limit free.
    let h = setup(16);
    let a = h.map_anon(MIB, RW, ANON | NORESERVE);
    assert!(a > 0);
    assert_eq!(h.committed(), 0);
    // 1 MiB of frames is taken, uncharged: 15 MiB less the harness's
    // page and the page tables' margin is free.
    assert_eq!(h.map_anon(15 * MIB, RW, ANON), err(Errno::ENOMEM));
    assert!(h.map_anon(14 * MIB, RW, ANON) > 0);
}

#[test]
fn map_populate_gives_frames_at_once_or_enomem_with_nothing_left() {
    let h = setup(16);
    let populate = u64::from(MAP_POPULATE);
    let before = h.m.mapped_pages();
    let a = h.map_anon(4 * MIB, RW, ANON | populate);
    assert!(a > 0);
    assert_eq!(h.m.mapped_pages() - before, (4 * MIB / PG) as usize);
    // Uncharged (MAP_NORESERVE), so only the frames can refuse it: then
    // ENOMEM, and neither the mapping nor its charge is left behind.
    let areas = h.p.vm.lock().areas().count();
    let r = h.map_anon(64 * MIB, RW, ANON | NORESERVE | populate);
    assert_eq!(r, err(Errno::ENOMEM));
    assert_eq!(h.p.vm.lock().areas().count(), areas);
    assert_eq!(h.m.mapped_pages() - before, (4 * MIB / PG) as usize);
    assert_eq!(h.committed(), 4 * MIB);
    // Charged and over the limit: refused before anything is mapped.
    assert_eq!(
        h.map_anon(64 * MIB, RW, ANON | populate),
        err(Errno::ENOMEM)
    );
}
