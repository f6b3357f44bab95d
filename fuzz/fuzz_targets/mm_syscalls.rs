//! Fuzz the memory syscalls (`mmap`, `munmap`, `mprotect`, `mremap`,
//! `madvise`, `brk`, `mincore`, `msync`) over the mock platform: every
//! call returns a value or a valid `-errno`, and afterwards the LibOS's
//! area map and the mock's page table agree (sorted, disjoint, aligned
//! areas; every page present with its area's permissions unless recorded
//! as not yet populated).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use libos::fs::{DeviceRegistry, Vfs};
use libos::platform::mock::MockPlatform;
use libos::process::Process;
use libos::syscall::SyscallTable;

const PG: u64 = 4096;
const NUMBERS: [usize; 8] = [9, 11, 10, 25, 28, 12, 27, 26];

fn word(data: &mut &[u8]) -> u64 {
    let (head, rest) = data.split_at(data.len().min(8));
    *data = rest;
    let mut b = [0u8; 8];
    b[..head.len()].copy_from_slice(head);
    let v = u64::from_le_bytes(b);
    // Bias towards a small window of pages so calls interact.
    match v & 3 {
        0 => 0x1000_0000 + PG * ((v >> 2) % 64),
        1 => PG * ((v >> 2) % 16),
        2 => (v >> 2) % 0x40,
        _ => v,
    }
}

fn check(m: &MockPlatform, p: &Process) {
    let vm = p.vm.lock();
    let mut prev_end = 0;
    for v in vm.areas() {
        assert!(v.start < v.end && v.start >= prev_end && v.start % PG == 0 && v.end % PG == 0);
        prev_end = v.end;
        let absent = vm.unpopulated_in(v.start, v.end);
        let mut page = v.start;
        for r in absent.iter().chain(std::iter::once(&(v.end..v.end))) {
            while page < r.start {
                assert_eq!(m.page_perms(page), Some(v.perms), "page {page:#x} of {v:?}");
                page += PG;
            }
            page = r.end;
        }
    }
    // The commit charge is the sum of the charged areas.
    let charged: u64 = vm.areas().map(|v| v.charged_bytes()).sum();
    assert_eq!(vm.committed_bytes(), charged);
}

fuzz_target!(|data: &[u8]| {
    let m = Arc::new(MockPlatform::new());
    m.set_frame_limit(2048);
    m.set_block_spins(0);
    let vfs = Arc::new(Vfs::new(
        m.clone(),
        DeviceRegistry::standard(m.clone(), m.clone()),
    ));
    m.map(0x20_0000, 0x1000);
    let p = Process::new(m.clone(), vfs);
    let table = SyscallTable::new();
    let mut data = data;
    while !data.is_empty() {
        let nr = NUMBERS[usize::from(data[0]) % NUMBERS.len()];
        data = &data[1..];
        let mut args: [u64; 6] = std::array::from_fn(|_| word(&mut data));
        if nr == 9 {
            args[4] = u64::MAX;
        }
        if nr == 27 {
            args[2] = 0x20_0000;
        }
        let ret = table.dispatch(&p, nr, args) as i64;
        assert!(ret >= -133, "nr {nr} args {args:x?} -> {ret}");
        check(&m, &p);
    }
});
