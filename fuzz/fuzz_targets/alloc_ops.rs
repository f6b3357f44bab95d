//! Fuzz target: the input is a sequence of allocator operations (4 bytes
//! each: opcode, size/selector, alignment), run against the slab allocator
//! and a model of the live blocks. Checks alignment, no overlap, contents
//! preserved (also across realloc), live-byte statistics, and that after
//! freeing everything and trimming only the metadata pages stay claimed.
//!
//! Run: `cargo +nightly fuzz run alloc_ops` (from the repository root).
#![no_main]
#![allow(unsafe_code, reason = "the target drives the GlobalAlloc interface")]

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::sync::OnceLock;

use allocator::{ArenaPages, PAGE_SIZE, SingleCpu, SlabAllocator};
use libfuzzer_sys::fuzz_target;

struct Heap {
    alloc: SlabAllocator,
    pages: ArenaPages,
}

/// One heap for the whole run: each input must leave it as it found it.
fn heap() -> &'static Heap {
    static HEAP: OnceLock<&'static Heap> = OnceLock::new();
    HEAP.get_or_init(|| {
        let arena = Box::leak(Box::new_uninit_slice(8 << 20));
        let heap: &'static Heap = Box::leak(Box::new(Heap {
            alloc: SlabAllocator::new(),
            pages: ArenaPages::new(arena),
        }));
        heap.alloc.init(&heap.pages, &SingleCpu).unwrap();
        heap
    })
}

/// Sizes biased small, up to 40 000 bytes (past the largest class).
fn size_of(selector: u8, extra: u8) -> usize {
    match selector >> 6 {
        0 | 1 => 1 + (selector as usize & 0x3f) * 4 + (extra as usize & 3),
        2 => 1 + ((selector as usize & 0x3f) << 6 | extra as usize & 0x3f),
        _ => 1 + ((selector as usize & 0x3f) << 9 | extra as usize) % 40_000,
    }
}

fn check(ptr: *mut u8, len: usize, tag: u8) {
    // SAFETY: `ptr` is a live block with `len` bytes written with `tag`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    assert!(bytes.iter().all(|&b| b == tag), "block contents changed");
}

fn admit(live: &mut BTreeMap<usize, (Layout, u8)>, ptr: *mut u8, layout: Layout, tag: u8) {
    let start = ptr as usize;
    assert_eq!(start % layout.align(), 0, "misaligned {layout:?}");
    if let Some((&before, (other, _))) = live.range(..=start).next_back() {
        assert!(before + other.size() <= start, "overlap");
    }
    if let Some((&after, _)) = live.range(start..).next() {
        assert!(start + layout.size() <= after, "overlap");
    }
    // SAFETY: a fresh live block of `layout.size()` bytes.
    unsafe { ptr.write_bytes(tag, layout.size()) };
    live.insert(start, (layout, tag));
}

fuzz_target!(|data: &[u8]| {
    let heap = heap();
    let a = &heap.alloc;
    let mut live: BTreeMap<usize, (Layout, u8)> = BTreeMap::new();
    for (step, op) in data.chunks_exact(4).take(2000).enumerate() {
        let tag = step as u8 | 1;
        match op[0] % 8 {
            0..=3 => {
                let layout =
                    Layout::from_size_align(size_of(op[1], op[2]), 1 << (op[3] % 13)).unwrap();
                // SAFETY: non-zero size.
                let ptr = unsafe { a.alloc(layout) };
                if !ptr.is_null() {
                    admit(&mut live, ptr, layout, tag);
                }
            }
            4 | 5 if !live.is_empty() => {
                let key = *live.keys().nth(op[1] as usize % live.len()).unwrap();
                let (layout, old_tag) = live.remove(&key).unwrap();
                let ptr = std::ptr::with_exposed_provenance_mut::<u8>(key);
                check(ptr, layout.size(), old_tag);
                // SAFETY: live block, freed once with its layout.
                unsafe { a.dealloc(ptr, layout) };
            }
            6 if !live.is_empty() => {
                let key = *live.keys().nth(op[1] as usize % live.len()).unwrap();
                let (layout, old_tag) = live.remove(&key).unwrap();
                let ptr = std::ptr::with_exposed_provenance_mut::<u8>(key);
                let size = size_of(op[2], op[3]);
                // SAFETY: live block with its layout, non-zero new size.
                let moved = unsafe { a.realloc(ptr, layout, size) };
                if moved.is_null() {
                    live.insert(key, (layout, old_tag));
                } else {
                    check(moved, size.min(layout.size()), old_tag);
                    let layout = Layout::from_size_align(size, layout.align()).unwrap();
                    admit(&mut live, moved, layout, tag);
                }
            }
            7 => a.trim(),
            _ => {}
        }
        let expected: usize = live.values().map(|(l, _)| l.size()).sum();
        assert_eq!(a.stats().live_bytes, expected);
    }
    for (addr, (layout, tag)) in live {
        let ptr = std::ptr::with_exposed_provenance_mut::<u8>(addr);
        check(ptr, layout.size(), tag);
        // SAFETY: live block, freed once with its layout.
        unsafe { a.dealloc(ptr, layout) };
    }
    a.trim();
    let stats = a.stats();
    assert_eq!(
        stats.slab_bytes + stats.large_bytes + stats.region_bytes,
        0,
        "{stats}"
    );
    assert_eq!(
        heap.pages.total_pages() - heap.pages.free_pages(),
        stats.metadata_bytes / PAGE_SIZE,
        "pages not returned"
    );
});
