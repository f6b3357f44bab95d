//! The kernel heap: for now `linked_list_allocator` over a contiguous run of
//! frames, until the slab allocator takes over as the global allocator.

use linked_list_allocator::LockedHeap;

use super::{PAGE_BYTES, frames, phys_to_virt};

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Gives the heap `bytes` (rounded up to pages) of physical memory. Returns
/// `false` if the frames are not available.
pub fn init(bytes: u64) -> bool {
    let pages = bytes.div_ceil(PAGE_BYTES) as usize;
    let Some(paddr) = frames::alloc_contiguous(pages, 1) else {
        return false;
    };
    // SAFETY: the frames were just allocated, so the heap owns them for good;
    // they are mapped RW in the direct map, and `init` is called once.
    unsafe {
        HEAP.lock()
            .init(phys_to_virt(paddr) as *mut u8, pages * PAGE_BYTES as usize)
    };
    true
}

/// Bytes in use and free in the heap.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}
