//! Host tests of how the slab allocator packs objects (issue 16): the
//! depot refills from its fullest slab, and a class with no free object
//! borrows those a larger class has to spare.

use core::alloc::Layout;
use std::collections::BTreeSet;
use std::vec::Vec;

use crate::PAGE_SIZE;
use crate::tests::{alloc, assert_all_returned, fill, free, heap, holds};

fn page_of(ptr: *mut u8) -> usize {
    ptr as usize / PAGE_SIZE
}

fn class_stats(heap: &crate::SlabAllocator, bytes: usize) -> crate::ClassStats {
    let stats = heap.stats();
    *stats
        .classes
        .iter()
        .find(|c| c.object_bytes == bytes)
        .expect("a class of that size")
}

#[test]
fn refills_come_from_the_fullest_slab() {
    let (heap, _) = heap(1 << 20);
    // 512 B objects, eight to a one-page slab; two slabs.
    let layout = Layout::from_size_align(512, 8).unwrap();
    assert_eq!(class_stats(heap, 512).objects_per_slab, 8);
    let objects: Vec<*mut u8> = (0..16).map(|_| alloc(heap, layout)).collect();
    assert_eq!(class_stats(heap, 512).slabs, 2);
    let (first, second) = (page_of(objects[0]), page_of(objects[8]));
    assert_ne!(first, second);
    assert!(objects[..8].iter().all(|&p| page_of(p) == first));
    // The second slab keeps five objects, the first seven. `trim` returns
    // the CPU cache's objects to their slabs last freed first, so the
    // second slab is the last to get an object back (a depot ordered by
    // recency would refill from it).
    for &p in &objects[13..] {
        free(heap, p, layout);
    }
    free(heap, objects[1], layout);
    heap.trim();
    let again = alloc(heap, layout);
    assert_eq!(again, objects[1], "refilled from the emptier slab");
    free(heap, again, layout);
    for &p in objects[..1].iter().chain(&objects[2..13]) {
        free(heap, p, layout);
    }
    heap.trim();
    assert_eq!(heap.stats().slab_bytes, 0);
}

#[test]
fn a_class_borrows_spare_objects_of_a_larger_class_and_returns_them() {
    let (heap, pages) = heap(1 << 20);
    // Classes below 64 B, which do not carve first from the region.
    let (l48, l40, l32) = (
        Layout::from_size_align(48, 8).unwrap(),
        Layout::from_size_align(40, 8).unwrap(),
        Layout::from_size_align(32, 8).unwrap(),
    );
    let per_slab = class_stats(heap, 48).objects_per_slab;
    let mut big: Vec<*mut u8> = (0..4 * per_slab).map(|_| alloc(heap, l48)).collect();
    let slab_pages: BTreeSet<usize> = big.iter().map(|&p| page_of(p)).collect();
    // Free every other one: more than a slab's worth of free objects,
    // scattered, no slab empty.
    let mut kept = Vec::new();
    for (i, p) in big.drain(..).enumerate() {
        if i % 2 == 0 {
            free(heap, p, l48);
        } else {
            kept.push(p);
        }
    }
    heap.trim();
    assert_eq!(class_stats(heap, 48).slabs, 4);

    // 40 B has no slab: it borrows 48 B objects instead of taking pages.
    let small: Vec<*mut u8> = (0..per_slab).map(|_| alloc(heap, l40)).collect();
    assert_eq!(class_stats(heap, 40).slabs, 0);
    for (i, &p) in small.iter().enumerate() {
        assert!(
            slab_pages.contains(&page_of(p)),
            "borrowed from the 48 B slabs"
        );
        fill(p, 40, i as u8);
    }
    for &p in &kept {
        fill(p, 48, 0xee);
    }
    for (i, &p) in small.iter().enumerate() {
        assert!(holds(p, 40, i as u8), "borrowed object {i} kept its bytes");
    }
    // 32 B objects need 32-byte alignment, which 48 B slots lack.
    let aligned = alloc(heap, l32);
    assert!(!slab_pages.contains(&page_of(aligned)));
    assert_eq!(aligned as usize % 32, 0);
    assert_eq!(class_stats(heap, 32).slabs, 1);

    // Freed as 40 B objects, they go back to their 48 B slabs.
    for p in small {
        free(heap, p, l40);
    }
    for p in kept {
        free(heap, p, l48);
    }
    free(heap, aligned, l32);
    assert_all_returned(heap, pages);
}
