//! Host unit tests of the slab allocator as a whole (the model-based
//! property test is `tests/model.rs`).

use core::alloc::{GlobalAlloc, Layout};
use std::vec::Vec;

use crate::{ArenaPages, CpuLocal, NUM_CLASSES, PAGE_SIZE, SingleCpu, SlabAllocator};

/// A fresh allocator over a fresh arena of `bytes` (both leaked). The
/// arena starts on a page boundary, so two heaps of one size have the same
/// geometry (a test comparing them failed now and then when the host's
/// `malloc` placed one arena off a page boundary and the other on one).
pub(crate) fn heap(bytes: usize) -> (&'static SlabAllocator, &'static ArenaPages) {
    let layout = Layout::from_size_align(bytes, PAGE_SIZE).expect("arena layout");
    // SAFETY: a non-zero size; the memory is leaked, so the slice lives
    // for 'static, and `MaybeUninit` needs no initialisation.
    #[expect(unsafe_code, reason = "a page-aligned arena for the tests")]
    let arena: &'static mut [core::mem::MaybeUninit<u8>] = unsafe {
        let p = std::alloc::alloc(layout).cast::<core::mem::MaybeUninit<u8>>();
        assert!(!p.is_null(), "arena allocation");
        core::slice::from_raw_parts_mut(p, bytes)
    };
    let pages: &'static ArenaPages = Box::leak(Box::new(ArenaPages::new(arena)));
    let alloc: &'static SlabAllocator = Box::leak(Box::new(SlabAllocator::new()));
    alloc.init(pages, &SingleCpu).unwrap();
    (alloc, pages)
}

pub(crate) fn alloc(heap: &SlabAllocator, layout: Layout) -> *mut u8 {
    // SAFETY: layouts in these tests have non-zero size.
    #[expect(unsafe_code, reason = "GlobalAlloc is the API under test")]
    unsafe {
        heap.alloc(layout)
    }
}

/// The layout the size-mix tests use: `size` bytes, aligned to 8.
pub(crate) fn layout8(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// Joins `threads` and frees the blocks each returned holding (address and
/// size, allocated with [`layout8`]).
pub(crate) fn free_held(
    heap: &SlabAllocator,
    threads: std::vec::Vec<std::thread::JoinHandle<std::vec::Vec<(usize, usize)>>>,
) {
    for thread in threads {
        for (addr, size) in thread.join().unwrap() {
            free(
                heap,
                std::ptr::with_exposed_provenance_mut(addr),
                layout8(size),
            );
        }
    }
}

pub(crate) fn free(heap: &SlabAllocator, ptr: *mut u8, layout: Layout) {
    // SAFETY: tests free only what they allocated, with its layout — except
    // the tests that check the debug-build panics, which is the point.
    #[expect(unsafe_code, reason = "GlobalAlloc is the API under test")]
    unsafe {
        heap.dealloc(ptr, layout)
    }
}

pub(crate) fn realloc(
    heap: &SlabAllocator,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
) -> *mut u8 {
    // SAFETY: tests pass live blocks with their layouts.
    #[expect(unsafe_code, reason = "GlobalAlloc is the API under test")]
    unsafe {
        heap.realloc(ptr, layout, new_size)
    }
}

/// Fills a live block of at least `len` bytes with `byte`.
pub(crate) fn fill(ptr: *mut u8, len: usize, byte: u8) {
    // SAFETY: callers pass a live block of at least `len` bytes.
    #[expect(unsafe_code, reason = "writing the test pattern")]
    unsafe {
        ptr.write_bytes(byte, len)
    }
}

/// Whether the first `len` bytes of a live block are all `byte`.
pub(crate) fn holds(ptr: *const u8, len: usize, byte: u8) -> bool {
    // SAFETY: callers pass a live block with `len` initialised bytes.
    #[expect(unsafe_code, reason = "reading the test pattern")]
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    bytes.iter().all(|&b| b == byte)
}

/// Once everything is freed and trimmed, every page is back in the arena,
/// metadata included (page-map nodes go back when empty, since issue 16
/// item 5; before, they stayed).
pub(crate) fn assert_all_returned(heap: &SlabAllocator, pages: &ArenaPages) {
    heap.trim();
    let stats = heap.stats();
    assert_eq!(stats.live_bytes, 0);
    assert_eq!(stats.slab_bytes, 0, "{stats}");
    assert_eq!(stats.large_bytes, 0);
    assert_eq!(stats.region_bytes, 0, "{stats}");
    assert_eq!(stats.metadata_bytes, 0, "{stats}");
    assert_eq!(pages.free_pages(), pages.total_pages());
}

#[test]
fn null_before_init() {
    let heap = SlabAllocator::new();
    assert!(alloc(&heap, Layout::new::<u64>()).is_null());
}

#[test]
fn init_only_once() {
    let (heap, pages) = heap(1 << 20);
    assert!(heap.init(pages, &SingleCpu).is_err());
}

#[test]
fn every_size_and_alignment_round_trips() {
    let (heap, pages) = heap(8 << 20);
    let mut blocks = Vec::new();
    for align_log in (0..=12).step_by(if cfg!(miri) { 4 } else { 1 }) {
        let align = 1usize << align_log;
        for size in (1..=9000)
            .step_by(if cfg!(miri) { 1499 } else { 97 })
            .chain([8, 64, 4096, 4097, 8192, 16_384, 16_385, 40_000])
        {
            let layout = Layout::from_size_align(size, align).unwrap();
            let ptr = alloc(heap, layout);
            assert!(!ptr.is_null());
            assert_eq!(ptr as usize % align, 0, "{layout:?}");
            let tag = (size + align_log) as u8;
            fill(ptr, size, tag);
            blocks.push((ptr, layout, tag));
        }
    }
    for &(ptr, layout, tag) in &blocks {
        assert!(holds(ptr, layout.size(), tag), "{layout:?} overwritten");
    }
    for (ptr, layout, _) in blocks {
        free(heap, ptr, layout);
    }
    assert_all_returned(heap, pages);
}

#[test]
fn too_large_alignment_is_refused() {
    let (heap, _) = heap(1 << 20);
    assert!(alloc(heap, Layout::from_size_align(16, 8192).unwrap()).is_null());
    assert_eq!(heap.stats().failed_allocs, 1);
}

#[test]
fn slabs_follow_the_live_set() {
    let (heap, pages) = heap(32 << 20);
    let layout = Layout::from_size_align(48, 8).unwrap();
    let count = if cfg!(miri) { 1_000 } else { 20_000 };
    let blocks: Vec<_> = (0..count).map(|_| alloc(heap, layout)).collect();
    let stats = heap.stats();
    assert_eq!(stats.live_bytes, count * 48);
    let class = stats.classes.iter().find(|c| c.object_bytes == 48).unwrap();
    assert_eq!(class.live_objects, count);
    assert!(class.slabs * class.objects_per_slab >= count);
    assert!(stats.slab_bytes * 10 < stats.live_bytes * 11, "{stats}");
    // Free every other block: half of each slab stays in use.
    for ptr in blocks.iter().step_by(2) {
        free(heap, *ptr, layout);
    }
    // Free the rest: slabs empty out and go back, but one in reserve.
    for ptr in blocks.iter().skip(1).step_by(2) {
        free(heap, *ptr, layout);
    }
    let stats = heap.stats();
    assert_eq!(stats.live_bytes, 0);
    let class = stats.classes.iter().find(|c| c.object_bytes == 48).unwrap();
    // Only the reserve and slabs pinned by the CPU cache remain.
    assert!(class.slabs - class.empty_slabs <= 2, "{stats}");
    assert!(class.empty_slabs <= crate::slab::RESERVE_PAGES, "{stats}");
    assert_all_returned(heap, pages);
}

#[test]
fn a_slab_keeps_its_descriptor_in_its_tail_when_it_fits() {
    use crate::class::{CLASS_BYTES, Kind, SLAB_OBJECTS, SLAB_PAGES, kind_of};
    use crate::slab::{DESC_BYTES, DESC_IN_TAIL};
    let (heap, pages) = heap(1 << 20);
    // 344-byte objects: 35 in three pages, 248 bytes of tail (a descriptor
    // of either build fits); 8-byte ones fill their page, no tail.
    let big = layout8(344);
    let Kind::Small(class) = kind_of(big) else {
        panic!("344 B is a class")
    };
    let slab_bytes = SLAB_PAGES[class] * PAGE_SIZE;
    assert!(slab_bytes - SLAB_OBJECTS[class] * CLASS_BYTES[class] >= DESC_BYTES);
    assert!(DESC_IN_TAIL[class] && !DESC_IN_TAIL[0]);
    let objects: Vec<*mut u8> = (0..SLAB_OBJECTS[class]).map(|_| alloc(heap, big)).collect();
    let base = objects.iter().map(|&p| p as usize).min().unwrap();
    for (i, &p) in objects.iter().enumerate() {
        // One slab, and no object reaches its tail.
        assert!(
            p as usize + 344 <= base + slab_bytes - DESC_BYTES,
            "object {i}"
        );
        fill(p, 344, i as u8);
    }
    let stats = heap.stats();
    assert_eq!(stats.slab_bytes, slab_bytes, "{stats}");
    // No descriptor page (the metadata is the page map's nodes); a slab
    // of 8-byte objects needs one.
    assert_eq!(heap.desc_pages(), 0);
    let small = alloc(heap, layout8(8));
    assert_eq!(heap.desc_pages(), 1);
    free(heap, small, layout8(8));
    for (i, &p) in objects.iter().enumerate() {
        assert!(holds(p, 344, i as u8), "object {i} overwritten");
    }
    for p in objects {
        free(heap, p, big);
    }
    assert_all_returned(heap, pages);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "double free")]
fn a_double_free_in_a_slab_with_its_descriptor_in_the_tail_panics() {
    let (heap, _) = heap(1 << 20);
    let p = alloc(heap, layout8(344));
    free(heap, p, layout8(344));
    free(heap, p, layout8(344));
}

#[test]
fn out_of_memory_returns_null_and_recovers() {
    let (heap, pages) = heap(if cfg!(miri) { 96 << 10 } else { 256 << 10 });
    for size in [24, 1000, 5000] {
        let layout = Layout::from_size_align(size, 8).unwrap();
        let mut blocks = Vec::new();
        loop {
            let ptr = alloc(heap, layout);
            if ptr.is_null() {
                break;
            }
            blocks.push(ptr);
        }
        assert!(!blocks.is_empty());
        assert!(heap.stats().failed_allocs > 0);
        let live = heap.stats().live_bytes;
        // Loose bound: in an arena this small, 5-page slabs (5120 B class)
        // leave buddy tails no slab fits in.
        assert!(
            live * 3 >= pages.total_pages() * PAGE_SIZE,
            "size {size}: live {live}"
        );
        for ptr in blocks {
            free(heap, ptr, layout);
        }
        heap.trim();
        assert!(!alloc(heap, layout).is_null(), "no recovery after freeing");
        let ptr = alloc(heap, layout);
        free(heap, ptr, layout);
    }
}

#[test]
fn realloc_keeps_contents_and_stays_in_place_within_a_class() {
    let (heap, pages) = heap(4 << 20);
    let layout = Layout::from_size_align(100, 8).unwrap();
    let ptr = alloc(heap, layout);
    fill(ptr, 100, 7);
    let same = realloc(heap, ptr, layout, 104);
    assert_eq!(same, ptr, "100 and 104 share the 104 B class");
    let grown = realloc(heap, same, Layout::from_size_align(104, 8).unwrap(), 20_000);
    assert!(!grown.is_null());
    assert!(holds(grown, 100, 7));
    let shrunk = realloc(heap, grown, Layout::from_size_align(20_000, 8).unwrap(), 10);
    assert!(holds(shrunk, 10, 7));
    free(heap, shrunk, Layout::from_size_align(10, 8).unwrap());
    assert_all_returned(heap, pages);
}

#[test]
fn stats_print() {
    let (heap, _) = heap(1 << 20);
    let ptr = alloc(heap, Layout::new::<[u64; 4]>());
    let text = std::format!("{}", heap.stats());
    assert!(text.contains("live 32 B"), "{text}");
    assert!(text.contains("fragmentation"), "{text}");
    assert!(text.contains("32 B:"), "{text}");
    free(heap, ptr, Layout::new::<[u64; 4]>());
    assert_eq!(heap.stats().classes.len(), NUM_CLASSES);
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "double free")]
fn double_free_panics_in_debug() {
    let (heap, _) = heap(1 << 20);
    let layout = Layout::new::<[u8; 40]>();
    let ptr = alloc(heap, layout);
    free(heap, ptr, layout);
    free(heap, ptr, layout);
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "foreign pointer")]
fn foreign_pointer_panics_in_debug() {
    let (heap, _) = heap(1 << 20);
    let _warm = alloc(heap, Layout::new::<u64>());
    let mut outside = 0u64;
    free(heap, (&raw mut outside).cast(), Layout::new::<u64>());
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "not the start")]
fn interior_pointer_panics_in_debug() {
    let (heap, _) = heap(1 << 20);
    let layout = Layout::new::<[u8; 64]>();
    let ptr = alloc(heap, layout);
    free(heap, ptr.wrapping_add(8), layout);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "does not match")]
fn large_free_with_wrong_size_panics() {
    let (heap, _) = heap(1 << 20);
    let ptr = alloc(heap, Layout::from_size_align(3 * PAGE_SIZE, 8).unwrap());
    free(
        heap,
        ptr,
        Layout::from_size_align(5 * PAGE_SIZE, 8).unwrap(),
    );
}

/// Gives each thread its own id, so threads share caches only modulo
/// `MAX_CPUS`, and some of them contend.
struct ThreadCpu;
impl CpuLocal for ThreadCpu {
    fn cpu_id(&self) -> usize {
        std::thread_local!(static ID: usize = {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            NEXT.fetch_add(1, Ordering::Relaxed)
        });
        ID.with(|id| *id) % 2
    }
}

#[test]
fn threads_share_the_heap() {
    let arena = Box::leak(Box::new_uninit_slice(16 << 20));
    let pages: &'static ArenaPages = Box::leak(Box::new(ArenaPages::new(arena)));
    let heap: &'static SlabAllocator = Box::leak(Box::new(SlabAllocator::new()));
    heap.init(pages, &ThreadCpu).unwrap();
    let rounds = if cfg!(miri) { 50 } else { 5_000 };
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for i in 0..rounds {
                    let size = 8 + (i * 37 + t * 11) % 600;
                    let layout = Layout::from_size_align(size, 8).unwrap();
                    let ptr = alloc(heap, layout);
                    assert!(!ptr.is_null());
                    fill(ptr, size, t as u8);
                    held.push((ptr.expose_provenance(), layout));
                    if i % 3 == 0 {
                        let (addr, layout) = held.swap_remove(i % held.len());
                        let ptr = std::ptr::with_exposed_provenance_mut::<u8>(addr);
                        assert!(holds(ptr, layout.size(), t as u8));
                        free(heap, ptr, layout);
                    }
                }
                held
            })
        })
        .collect();
    let leftovers: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    for (addr, layout) in leftovers {
        free(heap, std::ptr::with_exposed_provenance_mut(addr), layout);
    }
    assert_all_returned(heap, pages);
}

/// Simulates an interrupt handler that allocates: the first `irq_save` of
/// each outer call (made while the CPU cache is claimed, just before a
/// depot lock) runs a nested alloc and free on the same heap.
#[derive(Default)]
struct Interrupting {
    heap: std::sync::OnceLock<&'static SlabAllocator>,
    depth: std::sync::atomic::AtomicUsize,
    nested: std::sync::atomic::AtomicUsize,
}

impl CpuLocal for Interrupting {
    fn cpu_id(&self) -> usize {
        0
    }
    fn irq_save(&self) -> usize {
        use std::sync::atomic::Ordering::Relaxed;
        if self.depth.fetch_add(1, Relaxed) == 0
            && let Some(heap) = self.heap.get()
        {
            let layout = Layout::new::<[u8; 24]>();
            let ptr = alloc(heap, layout);
            assert!(!ptr.is_null());
            free(heap, ptr, layout);
            self.nested.fetch_add(1, Relaxed);
        }
        self.depth.fetch_sub(1, Relaxed);
        0
    }
}

fn interrupted_heap(exclusive: bool) {
    let arena = Box::leak(Box::new_uninit_slice(4 << 20));
    let pages: &'static ArenaPages = Box::leak(Box::new(ArenaPages::new(arena)));
    let heap: &'static SlabAllocator = Box::leak(Box::new(SlabAllocator::new()));
    let cpu: &'static Interrupting = Box::leak(Box::default());
    if exclusive {
        // SAFETY: this test uses the heap from one thread only.
        #[expect(unsafe_code, reason = "testing init_exclusive")]
        unsafe { heap.init_exclusive(pages, cpu) }.unwrap();
    } else {
        heap.init(pages, cpu).unwrap();
    }
    cpu.heap.set(heap).unwrap();
    let layout = Layout::new::<[u8; 24]>();
    let blocks: Vec<_> = (0..if cfg!(miri) { 300 } else { 2000 })
        .map(|_| alloc(heap, layout))
        .collect();
    for (i, &ptr) in blocks.iter().enumerate() {
        fill(ptr, 24, i as u8);
    }
    for (i, &ptr) in blocks.iter().enumerate() {
        assert!(holds(ptr, 24, i as u8));
        free(heap, ptr, layout);
    }
    assert!(cpu.nested.load(std::sync::atomic::Ordering::Relaxed) > 10);
    // No more "interrupts" (depth never returns to 0).
    cpu.depth
        .store(1 << 20, std::sync::atomic::Ordering::Relaxed);
    assert_all_returned(heap, pages);
}

#[test]
fn interrupt_handlers_may_allocate_mid_call() {
    interrupted_heap(false);
}

#[test]
fn interrupt_handlers_may_allocate_mid_call_with_exclusive_ids() {
    interrupted_heap(true);
}
