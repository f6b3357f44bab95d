//! Tests of small objects carved from the best-fit region (issue 16,
//! item 5): objects from 64 B up come from any free block, smallest
//! first, before a new slab is made (from 512 B in the sixth session, from
//! 64 B in the eighth); 24–56 B objects only from holes no larger class
//! fits.

use core::alloc::Layout;
use std::vec::Vec;

use crate::PAGE_SIZE;
use crate::bestfit::{CHUNK_PAGES, block_bytes};
use crate::tests::{
    alloc, assert_all_returned, fill, free, free_held, heap, holds, layout8 as layout,
};

/// Frees the middle block `freed` (of a `freed_size`-byte request) and
/// takes its front back with a `taken`-byte request, leaving a free hole
/// of `hole_bytes` before the block `next`: returns the new block and the
/// hole's first byte.
fn refill_front(
    heap: &crate::SlabAllocator,
    (freed, freed_size): (*mut u8, usize),
    taken: usize,
    next: *mut u8,
    hole_bytes: usize,
) -> (*mut u8, usize) {
    free(heap, freed, layout(freed_size));
    let w = alloc(heap, layout(taken));
    assert_eq!(w, freed);
    let hole = w as usize - 8 + block_bytes(taken);
    assert_eq!(hole + hole_bytes, next as usize - 8);
    (w, hole)
}

/// A chunk with a 480-byte hole (too small for any middle block) between
/// two used middle blocks: returns the blocks and the hole's first byte.
fn chunk_with_a_dead_hole(heap: &crate::SlabAllocator) -> ([*mut u8; 3], usize) {
    let x = alloc(heap, layout(2000));
    let y = alloc(heap, layout(1512));
    let z = alloc(heap, layout(2000));
    // The smallest middle block (1040 bytes) takes the front of y's
    // 1520-byte block; the 480 bytes after it can hold no middle block.
    let (w, hole) = refill_front(heap, (y, 1512), 1025, z, 480);
    ([x, w, z], hole)
}

#[test]
fn small_objects_fill_holes_too_small_for_middle_blocks() {
    let (heap, pages) = heap(1 << 20);
    let (middle, hole) = chunk_with_a_dead_hole(heap);
    let free_before = heap.stats().region_free_bytes;
    // 144-byte objects (152 B class) take 160-byte blocks: three fill the
    // hole, the smallest free block, before any slab is made.
    let small = layout(144);
    let objects: Vec<*mut u8> = (0..3).map(|_| alloc(heap, small)).collect();
    for (i, &p) in objects.iter().enumerate() {
        let at = p as usize;
        assert!(
            (hole..hole + 480).contains(&at),
            "object {i} at {at:#x}, hole at {hole:#x}"
        );
        assert_eq!(at % 8, 0);
        fill(p, 144, i as u8 + 1);
    }
    let stats = heap.stats();
    assert_eq!(stats.slab_bytes, 0, "{stats}");
    assert_eq!(stats.region_small_bytes, 480);
    assert_eq!(stats.region_free_bytes, free_before - 480);
    // The hole is used up: the next object comes from the chunk's other
    // free block, still no slab (from 64 B objects are carved first).
    let fourth = alloc(heap, small);
    assert!(!(hole..hole + 480).contains(&(fourth as usize)));
    assert_eq!(heap.stats().slab_bytes, 0);
    for (i, &p) in objects.iter().enumerate() {
        assert!(holds(p, 144, i as u8 + 1));
    }
    for p in objects.into_iter().chain([fourth]) {
        free(heap, p, small);
    }
    for (p, size) in middle.into_iter().zip([2000, 1025, 2000]) {
        free(heap, p, layout(size));
    }
    // The carved blocks went back to the region (through the CPU cache
    // and `trim`) and merged: every page is returned.
    assert_all_returned(heap, pages);
}

#[test]
fn tiny_objects_fill_only_holes_no_larger_class_fits() {
    let (heap, pages) = heap(1 << 20);
    let (middle, big_hole) = chunk_with_a_dead_hole(heap);
    // A 64-byte hole: a 1448-byte request takes 1456 of a freed
    // 1520-byte block (the 480-byte hole is too small for it).
    let a = alloc(heap, layout(1512));
    let b = alloc(heap, layout(2000));
    let (c, hole) = refill_front(heap, (a, 1512), 1448, b, 64);
    let free_before = heap.stats().region_free_bytes;
    // 16-byte objects are never carved (a 32-byte block would double them).
    let sixteen = alloc(heap, layout(16));
    let stats = heap.stats();
    assert!(
        stats.slab_bytes > 0 && stats.region_small_bytes == 0,
        "{stats}"
    );
    // 24-byte objects take 32-byte blocks: two fill the 64-byte hole.
    let tiny = layout(24);
    let objects: Vec<*mut u8> = (0..2).map(|_| alloc(heap, tiny)).collect();
    for (i, &p) in objects.iter().enumerate() {
        assert!((hole..hole + 64).contains(&(p as usize)), "object {i}");
        fill(p, 24, i as u8 + 1);
    }
    let stats = heap.stats();
    assert_eq!(stats.region_small_bytes, 64, "{stats}");
    assert_eq!(stats.region_free_bytes, free_before - 64);
    // The next one comes from a slab, not from the 480-byte hole, which
    // larger classes can use.
    let slab_before = stats.slab_bytes;
    let third = alloc(heap, tiny);
    assert!(!(big_hole..big_hole + 480).contains(&(third as usize)));
    let stats = heap.stats();
    assert_eq!(stats.region_small_bytes, 64, "{stats}");
    assert_eq!(stats.region_free_bytes, free_before - 64);
    assert!(stats.slab_bytes > slab_before, "{stats}");
    for (i, &p) in objects.iter().enumerate() {
        assert!(holds(p, 24, i as u8 + 1));
    }
    for p in objects.into_iter().chain([third]) {
        free(heap, p, tiny);
    }
    free(heap, sixteen, layout(16));
    free(heap, c, layout(1448));
    free(heap, b, layout(2000));
    for (p, size) in middle.into_iter().zip([2000, 1025, 2000]) {
        free(heap, p, layout(size));
    }
    assert_all_returned(heap, pages);
}

#[test]
fn objects_from_64_b_up_come_from_any_free_block_first() {
    let (heap, pages) = heap(1 << 20);
    // A chunk with one used block; the rest of it is one free block, far
    // larger than any dead hole.
    let middle = alloc(heap, layout(2000));
    let chunk = middle as usize - 16;
    let in_chunk = |p: *mut u8| (chunk..chunk + CHUNK_PAGES * PAGE_SIZE).contains(&(p as usize));
    // A 600-byte object (600 B class: with the header its block is 608
    // bytes) is cut from it, no slab made...
    let big = alloc(heap, layout(600));
    assert_eq!(big as usize, middle as usize + block_bytes(2000));
    let stats = heap.stats();
    assert_eq!(stats.slab_bytes, 0, "{stats}");
    assert!(stats.region_small_bytes > 0, "{stats}");
    let next = alloc(heap, layout(600));
    assert_eq!(next as usize, big as usize + 600 + 8);
    free(heap, next, layout(600));
    fill(big, 600, 3);
    // ... a 40-byte one (below 64 B) takes a slab.
    let smaller = alloc(heap, layout(40));
    assert!(!in_chunk(smaller));
    assert!(heap.stats().slab_bytes > 0);
    assert!(holds(big, 600, 3));
    free(heap, smaller, layout(40));
    free(heap, big, layout(600));
    free(heap, middle, layout(2000));
    assert_all_returned(heap, pages);
}

#[test]
fn requests_aligned_to_16_between_256_b_and_1_kib_are_cut_to_measure() {
    let (heap, pages) = heap(1 << 20);
    // The classes there are odd multiples of 8 (but for 512 and 1024):
    // a 300-byte request aligned to 16 takes a region block cut to measure
    // (312 bytes: the request and its header, rounded to 8).
    let aligned = Layout::from_size_align(300, 16).unwrap();
    let p = alloc(heap, aligned);
    assert_eq!(p as usize % 16, 0);
    let stats = heap.stats();
    assert_eq!(stats.slab_bytes, 0, "{stats}");
    assert_eq!(
        stats.region_bytes - stats.region_free_bytes - 2 * 8,
        block_bytes(300),
        "{stats}"
    );
    fill(p, 300, 5);
    assert!(holds(p, 300, 5));
    free(heap, p, aligned);
    assert_all_returned(heap, pages);
}

#[test]
fn once_pages_run_out_small_objects_come_from_any_free_block() {
    let (heap, pages) = heap(48 * PAGE_SIZE);
    // A chunk with one used block; the rest of it is one free block.
    let middle = alloc(heap, layout(8000));
    assert!(!middle.is_null());
    assert_eq!(heap.stats().region_bytes, CHUNK_PAGES * PAGE_SIZE);
    let mut runs = Vec::new();
    loop {
        let run = alloc(heap, layout(PAGE_SIZE));
        if run.is_null() {
            break;
        }
        runs.push(run);
    }
    assert_eq!(pages.free_pages(), 0);
    // A 1000-byte request is of the 1 KiB class: no slab can be made,
    // but the chunk's free block holds blocks of that class, right after
    // the middle block (16-byte aligned, no gap); one aligned to 1 KiB
    // gets a block at the class's alignment.
    let chunk = middle as usize - 16;
    let in_chunk = |p: *mut u8| (chunk..chunk + CHUNK_PAGES * PAGE_SIZE).contains(&(p as usize));
    let small = layout(1000);
    let p = alloc(heap, small);
    assert!(!p.is_null(), "no 1 KiB object with a free chunk block");
    assert_eq!(p as usize, middle as usize + block_bytes(8000));
    let aligned = Layout::from_size_align(1000, 1024).unwrap();
    let q = alloc(heap, aligned);
    assert!(
        !q.is_null(),
        "no aligned 1 KiB object with a free chunk block"
    );
    assert_eq!(q as usize % 1024, 0);
    assert!(in_chunk(p) && in_chunk(q));
    fill(p, 1000, 7);
    fill(q, 1000, 8);
    assert!(holds(p, 1000, 7) && holds(q, 1000, 8));
    free(heap, p, small);
    free(heap, q, aligned);
    free(heap, middle, layout(8000));
    for run in runs {
        free(heap, run, layout(PAGE_SIZE));
    }
    assert_all_returned(heap, pages);
}

#[test]
fn carved_objects_leave_no_alignment_gap_and_aligned_requests_skip_them() {
    let (heap, pages) = heap(1 << 20);
    let (middle, hole) = chunk_with_a_dead_hole(heap);
    // 96-byte objects (a class 32-byte aligned in slabs) take 104-byte
    // blocks back to back: four fill 416 bytes of the 480-byte hole.
    let small = layout(96);
    let mut objects: Vec<*mut u8> = (0..4).map(|_| alloc(heap, small)).collect();
    objects.sort();
    for (i, &p) in objects.iter().enumerate() {
        assert_eq!(p as usize, hole + 8 + i * 104, "object {i}");
    }
    assert_eq!(heap.stats().slab_bytes, 0);
    // Back in the CPU list, the last freed first: one not 32-aligned.
    let odd = objects
        .iter()
        .position(|&p| !(p as usize).is_multiple_of(32))
        .unwrap();
    let unaligned = objects.remove(odd);
    for &p in &objects {
        free(heap, p, small);
    }
    free(heap, unaligned, small);
    // A 96-byte request aligned to 32 passes it over (an object carved
    // at that alignment)...
    let aligned = Layout::from_size_align(96, 32).unwrap();
    let a = alloc(heap, aligned);
    assert_eq!(a as usize % 32, 0);
    assert_ne!(a, unaligned);
    fill(a, 96, 9);
    // ... and leaves it to the next request with a small alignment.
    assert_eq!(alloc(heap, small), unaligned);
    free(heap, unaligned, small);
    assert!(holds(a, 96, 9));
    free(heap, a, aligned);
    for (p, size) in middle.into_iter().zip([2000, 1025, 2000]) {
        free(heap, p, layout(size));
    }
    assert_all_returned(heap, pages);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "double free")]
fn a_carved_object_freed_twice_panics() {
    let (heap, _) = heap(1 << 20);
    let _ = chunk_with_a_dead_hole(heap);
    let small = layout(144);
    let p = alloc(heap, small);
    free(heap, p, small);
    free(heap, p, small);
}

#[test]
fn threads_share_carved_objects_and_middle_blocks() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static CARVED: AtomicBool = AtomicBool::new(false);
    let (heap, pages) = heap(if cfg!(miri) { 2 << 20 } else { 16 << 20 });
    let rounds = if cfg!(miri) { 60 } else { 1500 };
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut held: Vec<(usize, usize)> = Vec::new();
                for i in 0..rounds {
                    // Middle blocks and small objects in turn: frees of the
                    // middle ones leave holes the small ones are carved from.
                    let size = if i % 2 == 0 {
                        1025 + (i * 997 + t * 131) % 7000
                    } else {
                        24 + (i * 37 + t * 11) % 1000
                    };
                    let ptr = alloc(heap, layout(size));
                    assert!(!ptr.is_null());
                    fill(ptr, size, t as u8);
                    held.push((ptr.expose_provenance(), size));
                    if i % 2 == 0 {
                        let (addr, size) = held.swap_remove((i * 7) % held.len());
                        let ptr = std::ptr::with_exposed_provenance_mut::<u8>(addr);
                        assert!(holds(ptr, size, t as u8));
                        free(heap, ptr, layout(size));
                    }
                    if i % 16 == 0 && heap.stats().region_small_bytes > 0 {
                        CARVED.store(true, Ordering::Relaxed);
                    }
                }
                held
            })
        })
        .collect();
    free_held(heap, threads);
    assert!(CARVED.load(Ordering::Relaxed), "no object was carved");
    assert_all_returned(heap, pages);
}
