//! Tests of the best-fit region for middle sizes (`bestfit.rs`, issue 16
//! item 5): splitting and coalescing, the best fit chosen, exhaustion,
//! chunks going back to the page source, `realloc` in place, a randomized
//! run against a reference of live intervals, and threads.

use core::alloc::Layout;
use std::collections::BTreeMap;
use std::vec::Vec;

use crate::PAGE_SIZE;
use crate::bestfit::{CHUNK_PAGES, block_bytes};
use crate::tests::{
    alloc, assert_all_returned, fill, free, free_held, heap, holds, layout8 as layout, realloc,
};

#[test]
fn blocks_split_and_free_neighbours_coalesce() {
    let (heap, pages) = heap(1 << 20);
    let a = alloc(heap, layout(2000));
    let b = alloc(heap, layout(2000));
    let c = alloc(heap, layout(2000));
    // Cut one after the other from the same chunk, 16-byte aligned.
    assert_eq!(b as usize, a as usize + block_bytes(2000));
    assert_eq!(c as usize, b as usize + block_bytes(2000));
    assert_eq!(a as usize % 16, 0);
    let stats = heap.stats();
    assert_eq!(stats.region_bytes, CHUNK_PAGES * PAGE_SIZE);
    let chunk_free = CHUNK_PAGES * PAGE_SIZE - 16 - 3 * block_bytes(2000);
    assert_eq!(stats.region_free_bytes, chunk_free);
    free(heap, b, layout(2000));
    free(heap, a, layout(2000));
    // a and b merged: a 4000-byte request fits exactly where they were.
    let ab = alloc(heap, layout(2 * block_bytes(2000) - 8));
    assert_eq!(ab, a);
    assert_eq!(heap.stats().region_free_bytes, chunk_free);
    free(heap, c, layout(2000));
    free(heap, ab, layout(2 * block_bytes(2000) - 8));
    // One free block spanning the chunk: kept as the spare until trim.
    let stats = heap.stats();
    assert_eq!(stats.region_bytes, CHUNK_PAGES * PAGE_SIZE);
    assert_eq!(stats.region_free_bytes, CHUNK_PAGES * PAGE_SIZE - 16);
    assert_all_returned(heap, pages);
}

#[test]
fn the_smallest_free_block_that_fits_is_chosen() {
    let (heap, pages) = heap(1 << 20);
    // Holes of 1456 and 1424 bytes (one bucket) and 2016 bytes, each
    // between used blocks; the larger of the two close ones freed last,
    // so it heads its list.
    let sizes = [1448, 1100, 1416, 1100, 2008, 1100];
    let blocks: Vec<_> = sizes.iter().map(|&s| alloc(heap, layout(s))).collect();
    free(heap, blocks[4], layout(2008));
    free(heap, blocks[2], layout(1416));
    free(heap, blocks[0], layout(1448));
    // Exact fit in the request's own bucket, not the list's head.
    let exact = alloc(heap, layout(1416));
    assert_eq!(exact, blocks[2]);
    // Next: the 1456-byte hole, not the 2016-byte one or the chunk's rest.
    let next = alloc(heap, layout(1420));
    assert_eq!(next, blocks[0]);
    let last = alloc(heap, layout(1900));
    assert_eq!(last, blocks[4]);
    for (ptr, size) in [(exact, 1416), (next, 1420), (last, 1900)] {
        free(heap, ptr, layout(size));
    }
    for i in [1, 3, 5] {
        free(heap, blocks[i], layout(sizes[i]));
    }
    assert_all_returned(heap, pages);
}

#[test]
fn exhaustion_returns_null_and_the_heap_recovers() {
    let (heap, pages) = heap(256 << 10);
    let mut live = Vec::new();
    for round in 0..2 {
        let mut size = 1500;
        loop {
            let ptr = alloc(heap, layout(size));
            if ptr.is_null() {
                break;
            }
            fill(ptr, size, round as u8);
            live.push((ptr, size));
            size = 1025 + (size * 13 + 7) % 7000;
        }
        assert!(live.len() > 20, "{} blocks", live.len());
        assert!(heap.stats().failed_allocs > 0);
        for (ptr, size) in live.drain(..) {
            assert!(holds(ptr, size, round as u8));
            free(heap, ptr, layout(size));
        }
    }
    assert_all_returned(heap, pages);
}

#[test]
fn empty_chunks_go_back_to_the_page_source() {
    let (heap, pages) = heap(4 << 20);
    let blocks: Vec<_> = (0..400).map(|_| alloc(heap, layout(3000))).collect();
    assert!(blocks.iter().all(|p| !p.is_null()));
    let chunks = heap.stats().region_bytes / (CHUNK_PAGES * PAGE_SIZE);
    assert!(chunks >= 9, "{chunks} chunks");
    for &ptr in &blocks {
        free(heap, ptr, layout(3000));
    }
    // All but the one spare chunk are back without a trim.
    assert_eq!(heap.stats().region_bytes, CHUNK_PAGES * PAGE_SIZE);
    heap.trim();
    assert_eq!(heap.stats().region_bytes, 0);
    // Every page but the metadata's is back in the arena.
    assert_all_returned(heap, pages);
}

#[test]
fn realloc_grows_and_shrinks_in_place() {
    let (heap, pages) = heap(1 << 20);
    let a = alloc(heap, layout(1500));
    fill(a, 1500, 5);
    // The rest of the chunk follows `a`: growth stays in place.
    let grown = realloc(heap, a, layout(1500), 6000);
    assert_eq!(grown, a);
    assert!(holds(a, 1500, 5));
    fill(a, 6000, 6);
    // A size the block already holds needs no work.
    assert_eq!(realloc(heap, a, layout(6000), 6001), a);
    // Shrinking keeps the pointer and frees the tail for the next block.
    let shrunk = realloc(heap, a, layout(6001), 1100);
    assert_eq!(shrunk, a);
    assert!(holds(a, 1100, 6));
    let b = alloc(heap, layout(1100));
    assert!(
        b as usize <= a as usize + 2 * block_bytes(1100),
        "tail reused"
    );
    // Now `b` is in the way: growing `a` past it moves, keeping contents.
    let moved = realloc(heap, a, layout(1100), 5000);
    assert_ne!(moved, a);
    assert!(holds(moved, 1100, 6));
    free(heap, moved, layout(5000));
    free(heap, b, layout(1100));
    assert_all_returned(heap, pages);
}

#[test]
#[should_panic(expected = "double free")]
fn a_double_free_of_a_middle_block_panics() {
    let (heap, _) = heap(1 << 20);
    let _keep = alloc(heap, layout(3000));
    let p = alloc(heap, layout(3000));
    free(heap, p, layout(3000));
    free(heap, p, layout(3000));
}

#[test]
#[should_panic(expected = "does not match")]
fn a_middle_block_freed_with_a_larger_size_panics() {
    let (heap, _) = heap(1 << 20);
    let p = alloc(heap, layout(1500));
    free(heap, p, layout(3000));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "foreign pointer")]
fn a_foreign_pointer_with_a_middle_layout_panics_in_debug() {
    let (heap, _) = heap(1 << 20);
    let _warm = alloc(heap, layout(3000));
    let mut outside = [0u64; 512];
    free(heap, (&raw mut outside[8]).cast(), layout(3000));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "does not match")]
fn a_slab_object_freed_with_a_middle_layout_panics_in_debug() {
    let (heap, _) = heap(1 << 20);
    let p = alloc(heap, layout(1024));
    free(heap, p, layout(1500));
}

/// xorshift64*, for the randomized test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

/// Random allocs, frees and reallocs of middle sizes against a reference:
/// the map of live blocks by address (no two may overlap, each keeps its
/// pattern), and the region's counters (free bytes plus the blocks in use
/// fill the chunks exactly).
#[test]
fn random_operations_match_a_reference() {
    let (heap, pages) = heap(2 << 20);
    let steps = if cfg!(miri) { 300 } else { 20_000 };
    let mut rng = Rng(0x5eed);
    // Every third request is aligned to 16 (a block whose payload would
    // land 8 bytes off leaves a free block in front); `realloc` keeps it.
    let mut live: BTreeMap<usize, (usize, usize, u8)> = BTreeMap::new();
    let with = |size: usize, align: usize| Layout::from_size_align(size, align).unwrap();
    for step in 0..steps {
        let action = rng.below(10);
        let size = 1025 + rng.below(8192 - 1025);
        let size = if size.is_multiple_of(PAGE_SIZE) {
            size + 1
        } else {
            size
        };
        if action < 5 || live.is_empty() {
            let align = if step % 3 == 0 { 16 } else { 8 };
            let ptr = alloc(heap, with(size, align));
            if ptr.is_null() {
                continue;
            }
            let byte = step as u8;
            fill(ptr, size, byte);
            live.insert(ptr as usize, (size, align, byte));
        } else {
            let pick = rng.below(live.len());
            let (&addr, &(old, align, byte)) = live.iter().nth(pick).unwrap();
            let ptr = std::ptr::with_exposed_provenance_mut::<u8>(addr);
            assert!(holds(ptr, old, byte));
            live.remove(&addr);
            if action < 8 {
                free(heap, ptr, with(old, align));
            } else {
                let moved = realloc(heap, ptr, with(old, align), size);
                if moved.is_null() {
                    live.insert(addr, (old, align, byte));
                    continue;
                }
                assert!(holds(moved, old.min(size), byte));
                fill(moved, size, byte);
                live.insert(moved as usize, (size, align, byte));
            }
        }
        let mut end = 0;
        for (&addr, &(size, align, _)) in &live {
            assert!(addr >= end, "{addr:#x} overlaps the block before it");
            assert_eq!(addr % align, 0);
            end = addr + size;
        }
        let stats = heap.stats();
        let chunks_bytes = stats.region_bytes;
        let used: usize = live
            .values()
            .map(|&(size, _, _)| block_bytes(size))
            .sum::<usize>();
        // Blocks may hold more than asked (realloc slack, unsplit tails).
        assert!(
            stats.region_free_bytes + used <= chunks_bytes,
            "free {} + used {used} > chunks {chunks_bytes}",
            stats.region_free_bytes
        );
        let live_bytes: usize = live.values().map(|&(size, _, _)| size).sum();
        assert_eq!(stats.live_bytes, live_bytes);
    }
    for (addr, (size, align, byte)) in live {
        let ptr = std::ptr::with_exposed_provenance_mut::<u8>(addr);
        assert!(holds(ptr, size, byte));
        free(heap, ptr, with(size, align));
    }
    assert_all_returned(heap, pages);
}

#[test]
fn threads_share_the_region() {
    let (heap, pages) = heap(16 << 20);
    let rounds = if cfg!(miri) { 40 } else { 600 };
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut held: Vec<(usize, usize)> = Vec::new();
                for i in 0..rounds {
                    let size = 1025 + (i * 997 + t * 131) % 7000;
                    let ptr = alloc(heap, layout(size));
                    assert!(!ptr.is_null());
                    fill(ptr, size, t as u8);
                    held.push((ptr.expose_provenance(), size));
                    if i % 3 == 0 {
                        let (addr, size) = held.swap_remove(i % held.len());
                        let ptr = std::ptr::with_exposed_provenance_mut::<u8>(addr);
                        assert!(holds(ptr, size, t as u8));
                        let new = 1025 + (size * 7) % 7000;
                        let moved = realloc(heap, ptr, layout(size), new);
                        assert!(holds(moved, size.min(new), t as u8));
                        free(heap, moved, layout(new));
                    }
                }
                held
            })
        })
        .collect();
    free_held(heap, threads);
    assert_all_returned(heap, pages);
}
