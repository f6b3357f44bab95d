//! In-guest tests of the frame allocator, the page-table permissions, the
//! guard pages and the heap.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::arch::global_asm;

use x86_64::structures::paging::PageTableFlags as F;

use super::{PAGE_BYTES, frames, layout, paging, phys_to_virt, stack};
use crate::arch::catch::catch_fault;
use crate::ktest;

/// Page-fault error code bits.
const PF_PRESENT: u64 = 1;
const PF_WRITE: u64 = 2;
const PF_INSTRUCTION: u64 = 16;

ktest!(
    fn frames_are_distinct_writable_and_returned() {
        // The heap draws on the same frames: size the vector before counting.
        let mut got: Vec<u64> = Vec::with_capacity(64);
        let before = frames::free_frames();
        got.extend((0..64).map(|_| frames::alloc().expect("frame")));
        assert_eq!(frames::free_frames(), before - 64);
        for (i, &p) in got.iter().enumerate() {
            assert_eq!(p % PAGE_BYTES, 0);
            assert!(!got[..i].contains(&p), "frame {p:#x} handed out twice");
            // SAFETY: we own the frame; the direct map covers it RW.
            unsafe { (phys_to_virt(p) as *mut u64).write_volatile(p ^ 0x5a5a) };
        }
        for &p in &got {
            // SAFETY: as above; written just before.
            let value = unsafe { (phys_to_virt(p) as *const u64).read_volatile() };
            assert_eq!(value, p ^ 0x5a5a);
            frames::free(p, 1).expect("free");
        }
        assert_eq!(frames::free_frames(), before);
    }
);

ktest!(
    fn frames_contiguous_runs_are_aligned_and_double_free_is_refused() {
        let run = frames::alloc_contiguous(32, 512).expect("2 MiB-aligned run");
        assert_eq!(run % (2 << 20), 0);
        frames::free(run, 32).expect("free");
        assert!(frames::free(run, 1).is_err(), "double free must be refused");
    }
);

ktest!(
    fn frames_runs_extend_in_place_only_into_free_frames() {
        // The heap's `grow_pages`: a 2 MiB-aligned run, its tail freed, then
        // grown back over the tail; a used neighbour stops the growth.
        let run = frames::alloc_contiguous(64, 512).expect("2 MiB-aligned run");
        frames::free(run + 16 * PAGE_BYTES, 48).expect("free the tail");
        assert!(frames::try_extend(run, 16, 48), "the tail is free");
        assert!(frames::free(run + 63 * PAGE_BYTES, 1).is_ok(), "now used");
        assert!(!frames::try_extend(run, 32, 64), "frames 32..63 are used");
        frames::free(run, 63).expect("free");
    }
);

ktest!(
    fn frames_exhaustion_returns_none_and_recovers() {
        // Take everything in halving contiguous runs. `held` is sized first:
        // it must not grow (from the same frames) once they run out.
        let mut held: Vec<(u64, usize)> = Vec::with_capacity(256);
        let before = frames::free_frames();
        let mut run = before.next_power_of_two();
        while run > 0 {
            match frames::alloc_contiguous(run, 1) {
                Some(p) if held.len() < held.capacity() => held.push((p, run)),
                Some(p) => {
                    frames::free(p, run).expect("free");
                    break;
                }
                None => run /= 2,
            }
        }
        assert_eq!(frames::free_frames(), 0);
        assert_eq!(frames::alloc(), None);
        assert_eq!(frames::alloc_contiguous(2, 1), None);
        for (p, n) in held {
            frames::free(p, n).expect("free");
        }
        assert_eq!(frames::free_frames(), before);
        assert!(frames::alloc().map(|p| frames::free(p, 1)).is_some());
    }
);

static READ_ONLY_WORD: u64 = 0x1234;

extern "C" fn write_u64(addr: usize) {
    // SAFETY: deliberately invalid when `addr` is read-only: the test expects
    // the page fault, which `catch_fault` turns into a return.
    unsafe { (addr as *mut u64).write_volatile(0xdead) };
}

extern "C" fn call_addr(addr: usize) {
    // SAFETY: deliberately jumps into a non-executable page; the fetch faults
    // before any byte there runs.
    let f: extern "C" fn() = unsafe { core::mem::transmute(addr) };
    f();
}

ktest!(
    fn write_to_rodata_faults() {
        let addr = core::ptr::addr_of!(READ_ONLY_WORD) as usize;
        let fault = catch_fault(write_u64, addr).expect("a write to .rodata must fault");
        assert_eq!(fault.vector, 14);
        assert_eq!(fault.cr2, addr as u64);
        assert_eq!(
            fault.error_code & (PF_PRESENT | PF_WRITE),
            PF_PRESENT | PF_WRITE
        );
        assert_eq!(READ_ONLY_WORD, 0x1234);
    }
);

ktest!(
    fn write_to_kernel_text_faults() {
        let addr = write_u64 as *const () as usize;
        let fault = catch_fault(write_u64, addr).expect("a write to .text must fault");
        assert_eq!((fault.vector, fault.cr2), (14, addr as u64));
        assert_eq!(fault.error_code & PF_WRITE, PF_WRITE);
    }
);

ktest!(
    fn write_to_kernel_image_through_direct_map_faults() {
        let virt = core::ptr::addr_of!(READ_ONLY_WORD) as u64;
        let alias = phys_to_virt(virt - super::KERNEL_VIRT) as usize;
        let fault = catch_fault(write_u64, alias)
            .expect("the direct-map alias of the image must be read-only");
        assert_eq!((fault.vector, fault.cr2), (14, alias as u64));
    }
);

ktest!(
    fn executing_a_data_page_faults() {
        // A `ret` in writable data: fetching it must fault (NX), not return.
        static mut RET_IN_DATA: [u8; 16] = [0xc3; 16];
        let addr = core::ptr::addr_of!(RET_IN_DATA) as usize;
        let fault = catch_fault(call_addr, addr).expect("executing .data must fault");
        assert_eq!(
            (fault.vector, fault.rip, fault.cr2),
            (14, addr as u64, addr as u64)
        );
        assert_eq!(
            fault.error_code & (PF_INSTRUCTION | PF_PRESENT),
            PF_INSTRUCTION | PF_PRESENT
        );
    }
);

ktest!(
    fn executing_the_heap_and_the_stack_faults() {
        let heap = Box::new([0xc3u8; 64]);
        let addr = heap.as_ptr() as usize;
        let fault = catch_fault(call_addr, addr).expect("executing the heap must fault");
        assert_eq!((fault.vector, fault.rip), (14, addr as u64));
        let on_stack = [0xc3u8; 64];
        let addr = on_stack.as_ptr() as usize;
        let fault = catch_fault(call_addr, addr).expect("executing the stack must fault");
        assert_eq!((fault.vector, fault.rip), (14, addr as u64));
        core::hint::black_box(on_stack);
    }
);

ktest!(
    fn section_permissions_are_exact() {
        let text = paging::flags_of(layout::text_start()).expect("text mapped");
        assert!(!text.contains(F::WRITABLE) && !text.contains(F::NO_EXECUTE));
        let ro =
            paging::flags_of(core::ptr::addr_of!(READ_ONLY_WORD) as u64).expect("rodata mapped");
        assert!(!ro.contains(F::WRITABLE) && ro.contains(F::NO_EXECUTE));
        let data = paging::flags_of(layout::data_start()).expect("data mapped");
        assert!(data.contains(F::WRITABLE) && data.contains(F::NO_EXECUTE));
        assert!(!data.contains(F::USER_ACCESSIBLE) && !text.contains(F::USER_ACCESSIBLE));
        assert_eq!(
            paging::flags_of(layout::boot_stack_guard()),
            None,
            "boot stack guard must be unmapped"
        );
        assert_eq!(
            paging::flags_of(0x20_0000),
            None,
            "no identity map after boot"
        );
        let ram = paging::flags_of(phys_to_virt(frames_probe())).expect("direct map");
        assert!(ram.contains(F::WRITABLE) && ram.contains(F::NO_EXECUTE));
    }
);

fn frames_probe() -> u64 {
    let p = frames::alloc().expect("frame");
    frames::free(p, 1).expect("free");
    p
}

// Pushes until the stack runs out: the push into the guard page faults, the
// CPU cannot push the page-fault frame on the same stack and escalates to a
// double fault, which runs on its IST stack.
global_asm!(
    r#"
    .text
    .global ktest_overflow_stack
ktest_overflow_stack:
    mov rsp, rdi
1:
    push rax
    jmp 1b
    "#
);

unsafe extern "C" {
    fn ktest_overflow_stack(stack_top: usize);
}

extern "C" fn overflow(stack_top: usize) {
    // SAFETY: deliberately exhausts the given stack; the resulting double
    // fault is caught and execution resumes on the original stack.
    unsafe { ktest_overflow_stack(stack_top) }
}

ktest!(
    fn stack_overflow_hits_the_guard_page() {
        let s = stack::alloc(2).expect("stack");
        assert_eq!(paging::flags_of(s.guard), None);
        let fault = catch_fault(overflow, s.top as usize).expect("overflow must fault");
        assert_eq!(
            fault.vector, 8,
            "expected a double fault on the IST stack, got {fault:?}"
        );
        assert!(
            (s.guard..s.guard + PAGE_BYTES).contains(&fault.cr2),
            "fault at {:#x}, guard at {:#x}",
            fault.cr2,
            s.guard
        );
    }
);

ktest!(
    fn heap_serves_small_and_large_allocations() {
        let small: Vec<Box<u64>> = (0..1000).map(Box::new).collect();
        assert!(small.iter().enumerate().all(|(i, b)| **b == i as u64));
        let big = alloc::vec![7u8; 1 << 20];
        assert_eq!(big.iter().map(|&b| u64::from(b)).sum::<u64>(), 7 << 20);
    }
);

ktest!(
    fn slab_serves_every_size_and_alignment_from_real_frames() {
        use core::alloc::Layout;
        let before = super::heap::stats().live_bytes;
        let mut blocks = Vec::new();
        for shift in 3..=15 {
            for extra in [0usize, 1, 3] {
                let size = (1usize << shift) + extra * (1 << shift) / 4;
                let align = (1usize << (shift % 13)).min(4096);
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: the layout has a non-zero size.
                let p = unsafe { alloc::alloc::alloc(layout) };
                assert!(!p.is_null(), "allocating {size} bytes failed");
                assert_eq!(p as usize % align, 0, "{size} bytes misaligned");
                // SAFETY: `p` points to `size` writable bytes we own.
                unsafe { p.write_bytes(shift as u8, size) };
                blocks.push((p, layout, shift as u8));
            }
        }
        for (p, layout, tag) in blocks {
            // SAFETY: each block is ours, `layout.size()` bytes, written above.
            let ok = unsafe { core::slice::from_raw_parts(p, layout.size()) }
                .iter()
                .all(|&b| b == tag);
            assert!(ok, "contents of a {}-byte block changed", layout.size());
            // SAFETY: allocated above with this layout and not freed.
            unsafe { alloc::alloc::dealloc(p, layout) };
        }
        assert_eq!(super::heap::stats().live_bytes, before);
    }
);

ktest!(
    fn slab_out_of_memory_returns_null_and_recovers() {
        use core::alloc::Layout;
        super::heap::trim();
        let frames_before = frames::free_frames();
        let claimed_before = super::heap::stats().claimed_bytes();
        let mut held = Vec::with_capacity(4096);
        let mut failed = 0;
        // Large blocks until the frame allocator runs dry, then small ones.
        for size in [1usize << 20, 4096, 64] {
            let layout = Layout::from_size_align(size, 8).expect("layout");
            loop {
                // SAFETY: non-zero size.
                let p = unsafe { alloc::alloc::alloc(layout) };
                if p.is_null() {
                    failed += 1;
                    break;
                }
                if held.len() == held.capacity() {
                    // Never grow `held` itself while memory is nearly gone.
                    // SAFETY: allocated just above with `layout`.
                    unsafe { alloc::alloc::dealloc(p, layout) };
                    break;
                }
                held.push((p, layout));
            }
        }
        assert!(failed >= 1, "memory never ran out");
        assert!(
            frames::free_frames() < frames_before / 100,
            "{} frames still free",
            frames::free_frames()
        );
        for (p, layout) in held.drain(..) {
            // SAFETY: allocated above with this layout and not freed.
            unsafe { alloc::alloc::dealloc(p, layout) };
        }
        super::heap::trim();
        // Every frame still out is accounted for by the heap (no leak), and
        // what the heap holds beyond its metadata follows the live set.
        let st = super::heap::stats();
        let frames_out = (frames_before - frames::free_frames()) as u64 * PAGE_BYTES;
        let claimed_growth = (st.claimed_bytes() - claimed_before) as u64;
        assert_eq!(
            frames_out, claimed_growth,
            "frames out vs heap growth: {st}"
        );
        assert!(
            st.slab_bytes + st.large_bytes + st.region_bytes <= 2 * st.live_bytes + (256 << 10),
            "{st}"
        );
        let v = alloc::vec![1u8; 1 << 20];
        assert_eq!(v.len(), 1 << 20);
    }
);

ktest!(
    fn entries_carry_the_platform_bits_and_walks_strip_them() {
        use super::pte;
        use x86_64::structures::paging::page_table::PageTableEntry;
        // The live masks (0 natively) are put back before anything else
        // can map a page: interrupts stay off while the test's masks hold.
        let (live_private, live_shared) = pte::masks();
        x86_64::instructions::interrupts::without_interrupts(|| {
            let c_bit = 1u64 << 51;
            pte::init(c_bit, 0);
            let private = pte::private(0x1234_5000).as_u64();
            let shared = pte::shared(0x1234_5000 | c_bit).as_u64();
            let mut e = PageTableEntry::new();
            e.set_addr(pte::private(0x7000), F::PRESENT);
            let frame = pte::frame_of(&e);
            pte::init(0, 1 << 47);
            let tdx_shared = pte::shared(0x9000).as_u64();
            let tdx_private = pte::private(0x9000 | (1 << 47)).as_u64();
            pte::init(live_private, live_shared);
            assert_eq!(
                private,
                0x1234_5000 | c_bit,
                "SNP: the C-bit on private pages"
            );
            assert_eq!(shared, 0x1234_5000, "SNP: shared pages without it");
            assert_eq!(frame, 0x7000, "walks see the frame alone");
            assert_eq!(tdx_shared, 0x9000 | (1 << 47), "TDX: the shared bit");
            assert_eq!(tdx_private, 0x9000);
        });
        // Translations come back without the bits, whatever the platform.
        assert_eq!(paging::translate(phys_to_virt(0x5000)), Some(0x5000));
    }
);
