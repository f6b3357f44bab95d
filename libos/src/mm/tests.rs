//! Tests of the area map, `load_image` and page-fault handling.

use alloc::vec::Vec;

use super::ops::{FaultAccess, READ_WRITE};
use super::*;
use crate::cpio::CpioWriter;
use crate::elf::header::{PF_R, PF_W, PF_X};
use crate::elf::test_util::ElfBuilder;
use crate::elf::{PAGE_SIZE, Perms};
use crate::error::Errno;
use crate::exec::{AddressLayout, prepare_exec};
use crate::platform::mock::MockPlatform;
use crate::process::Process;
use crate::user::UserMemory;

const PG: u64 = PAGE_SIZE;
const R: Perms = Perms {
    read: true,
    write: false,
    execute: false,
};

fn anon(start: u64, end: u64, perms: Perms) -> Vma {
    Vma::anonymous(start, end, perms, VmaName::None)
}

fn ranges(vm: &Vm) -> Vec<(u64, u64)> {
    vm.areas().map(|v| (v.start, v.end)).collect()
}

#[test]
fn carve_splits_and_insert_merges() {
    let mut vm = Vm::default();
    vm.insert(anon(0x10000, 0x20000, R));
    vm.insert(anon(0x20000, 0x30000, R));
    assert_eq!(ranges(&vm), [(0x10000, 0x30000)]);
    vm.insert(anon(0x30000, 0x31000, READ_WRITE));
    assert_eq!(ranges(&vm), [(0x10000, 0x30000), (0x30000, 0x31000)]);
    let cut = vm.carve(0x18000, 0x30800);
    assert_eq!(
        cut.iter().map(|v| (v.start, v.end)).collect::<Vec<_>>(),
        [(0x18000, 0x30000), (0x30000, 0x30800)]
    );
    assert_eq!(ranges(&vm), [(0x10000, 0x18000), (0x30800, 0x31000)]);
    assert!(vm.is_free(0x18000, 0x30800));
    assert!(!vm.is_covered(0x10000, 0x19000));
    assert!(vm.is_covered(0x10000, 0x18000));
    vm.update(0x11000, 0x12000, |v| v.perms = READ_WRITE);
    assert_eq!(
        ranges(&vm),
        [
            (0x10000, 0x11000),
            (0x11000, 0x12000),
            (0x12000, 0x18000),
            (0x30800, 0x31000)
        ]
    );
    vm.update(0x11000, 0x12000, |v| v.perms = R);
    assert_eq!(ranges(&vm), [(0x10000, 0x18000), (0x30800, 0x31000)]);
    assert_eq!(vm.find(0x17fff).map(|v| v.start), Some(0x10000));
    assert!(vm.find(0x18000).is_none());
    assert_eq!(vm.first_above(0x18000).map(|v| v.start), Some(0x30800));
}

#[test]
fn placement_is_top_down_and_respects_min_addr() {
    let mut vm = Vm::new(0x7fff_ffff_f000, 8 << 20);
    let base = vm.mmap_base;
    assert_eq!(base, 0x7fff_f7ff_f000);
    assert_eq!(vm.find_free(PG), Some(base - PG));
    vm.insert(anon(base - 2 * PG, base, R));
    assert_eq!(vm.find_free(PG), Some(base - 3 * PG));
    assert_eq!(vm.place(0x4000_0000, PG), Some(0x4000_0000));
    assert_eq!(vm.place(base - PG, PG), Some(base - 3 * PG));
    assert_eq!(vm.place(0x1000, PG), Some(base - 3 * PG));
    assert_eq!(vm.find_free_below(0x2_0000, 0x2_0000), None);
    assert_eq!(vm.find_free_below(0x1_0000, 0x2_0000), Some(0x1_0000));
}

use crate::process::mock_process as process;

fn install(p: &Process, path: &str, bytes: &[u8]) {
    let mut w = CpioWriter::new();
    w.add_file(path.as_bytes(), 0o755, bytes).unwrap();
    p.vfs.unpack_cpio(&w.finish()).unwrap();
}

#[test]
fn load_image_maps_segments_stack_and_heap() {
    let (m, p) = process();
    let image = ElfBuilder::exec()
        .load(0, 0x400000, 0x1800, 0x1800, PF_R | PF_X)
        .load(0x1800, 0x401800, 0x100, 0x2000, PF_R | PF_W)
        .phdr(0x400040)
        .build();
    install(&p, "bin/prog", &image);
    // Leftovers from a previous program are unmapped.
    let old = ops::map(
        &p,
        ops::MapRequest {
            placement: Placement::Fixed(0x1000_0000),
            len: PG,
            perms: READ_WRITE,
            shared: false,
            may_write: true,
            backing: Backing::Anonymous,
            name: VmaName::None,
            noreserve: false,
        },
    )
    .unwrap();
    let root = p.vfs.root().clone();
    let layout = AddressLayout::default();
    let img = prepare_exec(
        &p.vfs,
        &root,
        b"/bin/prog",
        &[b"prog"],
        &[b"A=1"],
        &*m,
        &layout,
    )
    .unwrap();
    let rsp = load_image(&p, &img).unwrap();
    assert_eq!(rsp, img.stack.rsp);
    assert_eq!(
        m.read_user(old, &mut [0]).unwrap_err().errno(),
        Errno::EFAULT
    );
    // File bytes, then zeroes to the end of the segment (whole file pages
    // come from the file on first touch).
    super::ops::fault_in(&p, 0x400000, 0x2000, FaultAccess::Read);
    let mut b = alloc::vec![0u8; 0x100];
    m.read_user(0x400000, &mut b).unwrap();
    assert_eq!(b, image[..0x100]);
    m.read_user(0x401800, &mut b).unwrap();
    assert_eq!(b, image[0x1800..0x1900]);
    m.read_user(0x401900, &mut b).unwrap();
    assert_eq!(b, [0; 0x100]);
    // Final permissions: text read-only, the shared page and data writable.
    assert_eq!(
        m.write_user(0x400000, b"x").unwrap_err().errno(),
        Errno::EFAULT
    );
    m.write_user(0x401800, b"x").unwrap();
    m.write_user(0x403000, b"x").unwrap();
    assert!(m.page_perms(0x400000).unwrap().execute);
    // The stack bytes are in place.
    let mut argc = [0u8; 8];
    m.read_user(rsp, &mut argc).unwrap();
    assert_eq!(u64::from_le_bytes(argc), 1);
    let vm = p.vm.lock();
    assert_eq!(vm.brk(), 0x404000);
    let stack = vm.find(rsp).unwrap();
    assert!(stack.grows_down && stack.name == VmaName::Stack);
    assert_eq!(stack.end, layout.stack_top);
    assert_eq!(stack.len(), 8 << 20);
    let maps = alloc::string::String::from_utf8(vm.maps_text()).unwrap();
    let lines: Vec<&str> = maps.lines().collect();
    assert_eq!(lines.len(), 4, "{maps}");
    // The text page is mapped from the file, shown as Linux shows it.
    assert!(
        lines[0].starts_with("00400000-00401000 r-xp 00000000 00:01 "),
        "{maps}"
    );
    assert!(lines[0].ends_with(" /bin/prog"));
    assert_eq!(lines[0].find("/bin/prog"), Some(73));
    assert!(lines[1].starts_with("00401000-00402000 rwxp"));
    assert!(lines[2].starts_with("00402000-00404000 rw-p"));
    assert!(
        lines[3].starts_with("7fffff7ff000-7ffffffff000 rw-p") && lines[3].ends_with("[stack]")
    );
}

#[test]
fn stack_pages_below_the_present_part_fault_in() {
    let (m, p) = process();
    let image = ElfBuilder::exec()
        .load(0, 0x400000, 0x200, 0x200, PF_R | PF_X)
        .phdr(0x400040)
        .build();
    install(&p, "prog", &image);
    let root = p.vfs.root().clone();
    let img = prepare_exec(
        &p.vfs,
        &root,
        b"/prog",
        &[b"p"],
        &[],
        &*m,
        &AddressLayout::default(),
    )
    .unwrap();
    load_image(&p, &img).unwrap();
    let top = AddressLayout::default().stack_top;
    let deep = top - STACK_PRESENT_BYTES - 10 * PG;
    assert_eq!(m.write_user(deep, b"x").unwrap_err().errno(), Errno::EFAULT);
    handle_page_fault(&p, deep + 8, FaultAccess::Write).unwrap();
    m.write_user(deep, b"deep").unwrap();
    // Already present: a second fault is a real fault.
    assert!(handle_page_fault(&p, deep, FaultAccess::Write).is_err());
    // Executing the stack, or touching beyond the limit or elsewhere, is not allowed.
    assert!(handle_page_fault(&p, deep - PG, FaultAccess::Execute).is_err());
    assert!(handle_page_fault(&p, top - (8 << 20) - PG, FaultAccess::Read).is_err());
    assert!(handle_page_fault(&p, 0x1234_5000, FaultAccess::Read).is_err());
    // The stack VMA stays one area in the maps.
    let maps = p.vm.lock().maps_text();
    assert_eq!(
        maps.split(|&b| b == b'\n')
            .filter(|l| l.ends_with(b"[stack]"))
            .count(),
        1
    );
}

#[test]
fn load_real_binaries_when_present() {
    for (exe, interp) in [
        ("/bin/busybox", None),
        ("/usr/bin/true", Some("/lib64/ld-linux-x86-64.so.2")),
    ] {
        let paths: Vec<&str> = core::iter::once(exe).chain(interp).collect();
        if paths.iter().any(|p| !std::path::Path::new(p).exists()) {
            std::eprintln!("skipping {exe}: not installed on the host");
            continue;
        }
        let (m, p) = process();
        for path in &paths {
            install(&p, &path[1..], &std::fs::read(path).unwrap());
        }
        let root = p.vfs.root().clone();
        let img = prepare_exec(
            &p.vfs,
            &root,
            exe.as_bytes(),
            &[b"x"],
            &[],
            &*m,
            &AddressLayout::default(),
        )
        .unwrap();
        let rsp = load_image(&p, &img).unwrap();
        for s in &img.segments {
            let m = &s.mapping;
            super::ops::fault_in(
                &p,
                m.pages.start,
                m.pages.end - m.pages.start,
                FaultAccess::Read,
            );
        }
        // The ELF header of the executable is mapped.
        let first = &img.segments[0].mapping;
        let mut magic = [0u8; 4];
        m.read_user(first.file_vaddr, &mut magic).unwrap();
        assert_eq!(&magic, b"\x7fELF", "{exe}");
        let mut word = [0u8; 8];
        m.read_user(rsp, &mut word).unwrap();
        assert_eq!(u64::from_le_bytes(word), 1);
        // Every segment's bytes are in memory.
        let exe_file = std::fs::read(exe).unwrap();
        let interp_file = interp.map(|i| std::fs::read(i).unwrap());
        for s in &img.segments {
            let src = match s.source {
                crate::exec::ImageSource::Executable => &exe_file,
                crate::exec::ImageSource::Interpreter => interp_file.as_ref().unwrap(),
            };
            let n = s.mapping.file_bytes.min(4096) as usize;
            let mut got = alloc::vec![0u8; n];
            m.peek(s.mapping.file_vaddr, &mut got).unwrap();
            let off = s.mapping.file_offset as usize;
            assert_eq!(got, src[off..off + n], "{exe}");
        }
        let vm = p.vm.lock();
        assert!(vm.brk() >= img.brk_start);
        assert!(vm.areas().count() >= 3);
    }
}

/// The area map and the page tables agree: areas are sorted, disjoint and
/// page aligned, and every page of an area is either recorded as
/// unpopulated (and absent) or present with the area's permissions.
fn check_consistent(m: &MockPlatform, p: &Process) {
    let vm = p.vm.lock();
    let mut prev_end = 0;
    for v in vm.areas() {
        assert!(v.start < v.end && v.start >= prev_end, "{v:?}");
        assert!(is_page_aligned(v.start) && is_page_aligned(v.end));
        prev_end = v.end;
        let absent = vm.unpopulated_in(v.start, v.end);
        let mut page = v.start;
        for r in absent.iter().chain(core::iter::once(&(v.end..v.end))) {
            while page < r.start {
                assert_eq!(m.page_perms(page), Some(v.perms), "page {page:#x} of {v:?}");
                page += PG;
            }
            if r.end - r.start <= 64 * PG {
                for q in (r.start..r.end).step_by(PG as usize) {
                    assert_eq!(m.page_perms(q), None, "unpopulated {q:#x}");
                }
            }
            page = r.end;
        }
    }
    for r in vm.unpopulated_in(0, u64::MAX) {
        assert!(
            vm.is_covered(r.start, r.end),
            "unpopulated outside areas: {r:?}"
        );
    }
    // No page is present outside the areas (a new mapping over a free
    // range need not clear anything).
    let present: u64 = vm
        .areas()
        .map(|v| {
            let absent: u64 = vm
                .unpopulated_in(v.start, v.end)
                .iter()
                .map(|r| r.end - r.start)
                .sum();
            (v.len() - absent) / PG
        })
        .sum();
    assert_eq!(m.mapped_pages() as u64, present, "pages outside the areas");
    // The commit is the sum of the charged areas, and within the limit.
    let charged: u64 = vm.areas().map(Vma::charged_bytes).sum();
    assert_eq!(vm.committed_bytes(), charged);
    assert!(charged <= crate::mm::commit::limit_bytes(m));
}

/// Random sequences of memory syscalls keep the area map and the page
/// tables consistent (the same check the `mm_syscalls` fuzz target makes).
#[test]
fn random_memory_syscalls_keep_map_and_page_tables_consistent() {
    use crate::syscall::{SyscallTable, syscall_number};
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    let names = ["mmap", "munmap", "mprotect", "mremap", "madvise", "brk"];
    for seed in 0..8 {
        let (m, p) = process();
        m.set_frame_limit(4096);
        {
            let mut vm = p.vm.lock();
            vm.brk_start = 0x60_0000;
            vm.brk = 0x60_0000;
        }
        let t = SyscallTable::new();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let base = 0x1000_0000u64;
        for _ in 0..400 {
            let arg = |rng: &mut ChaCha20Rng| match rng.next_u32() % 6 {
                0 => base + PG * u64::from(rng.next_u32() % 64),
                // Up to 4 MiB: areas over 2 MiB are populated a chunk
                // at a time, on faults.
                1 if rng.next_u32().is_multiple_of(4) => u64::from(rng.next_u32() % 4 + 1) << 20,
                1 => PG * u64::from(rng.next_u32() % 16 + 1),
                2 => u64::from(rng.next_u32() % 8),
                3 => 0x60_0000 + u64::from(rng.next_u32() % 0x20_000),
                4 => rng.next_u64(),
                _ => u64::from(rng.next_u32() % 0x40),
            };
            if rng.next_u32() % 8 == 0 {
                // A touch (what the kernel asks on a fault), mostly
                // inside an area.
                let areas: Vec<(u64, u64)> =
                    p.vm.lock().areas().map(|v| (v.start, v.len())).collect();
                let addr = match areas.get(rng.next_u32() as usize % (areas.len() + 1)) {
                    Some(&(start, len)) => start + rng.next_u64() % len,
                    None => arg(&mut rng),
                };
                let _ = handle_page_fault(&p, addr, FaultAccess::Write);
                check_consistent(&m, &p);
                continue;
            }
            let name = names[rng.next_u32() as usize % names.len()];
            let mut args: [u64; 6] = core::array::from_fn(|_| arg(&mut rng));
            if name == "mmap" {
                args[3] =
                    [0x22, 0x32, 0x21, 0x100022, 0x2, 0x4022, 0x20022][rng.next_u32() as usize % 7];
                args[4] = u64::MAX;
                args[5] = 0;
            }
            let ret = t.dispatch(&p, syscall_number(name).unwrap(), args) as i64;
            assert!(ret >= -133, "{name} {args:x?} -> {ret}");
            check_consistent(&m, &p);
        }
    }
}

#[test]
fn exec_maps_whole_file_pages_on_first_touch_only() {
    let (m, p) = process();
    let image = ElfBuilder::exec()
        .load(0, 0x400000, 0x10000, 0x10000, PF_R | PF_X)
        .load(0x10000, 0x410000, 0x100, 0x2000, PF_R | PF_W)
        .phdr(0x400040)
        .build();
    install(&p, "prog", &image);
    let root = p.vfs.root().clone();
    let img = prepare_exec(
        &p.vfs,
        &root,
        b"/prog",
        &[b"p"],
        &[],
        &*m,
        &AddressLayout::default(),
    )
    .unwrap();
    load_image(&p, &img).unwrap();
    // The 16 text pages are the file's, left for first touch; the data
    // segment's partial page was copied at exec.
    for page in (0x400000..0x410000).step_by(PG as usize) {
        assert_eq!(m.page_perms(page), None, "{page:#x} present at exec");
    }
    let mut b = [0u8; 0x100];
    m.read_user(0x410000, &mut b).unwrap();
    assert_eq!(b, image[0x10000..0x10100]);
    // A fetch from the middle brings in that page alone, from the file.
    handle_page_fault(&p, 0x405123, FaultAccess::Execute).unwrap();
    assert!(m.page_perms(0x405000).unwrap().execute);
    assert_eq!(m.page_perms(0x404000), None);
    assert_eq!(m.page_perms(0x406000), None);
    let mut page = alloc::vec![0u8; PG as usize];
    m.read_user(0x405000, &mut page).unwrap();
    assert_eq!(page, image[0x5000..0x6000]);
    // Still not writable, and no write fault makes it so.
    assert!(handle_page_fault(&p, 0x404000, FaultAccess::Write).is_err());
    let vm = p.vm.lock();
    let text = vm.find(0x400000).unwrap();
    assert!(matches!(text.backing, Backing::File { offset: 0, .. }));
    assert_eq!((text.start, text.end), (0x400000, 0x410000));
}
