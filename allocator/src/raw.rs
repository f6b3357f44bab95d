//! Raw memory access: the only place in the crate with `unsafe` blocks.
//!
//! The slab allocator keeps its free lists, slab descriptors and page map
//! inside pages it holds from its [`PageSource`], and addresses them as
//! `usize`. The functions here turn such an address back into a pointer (with
//! the provenance exposed when the page source handed the run out) and read
//! or write a word.
//!
//! They are crate-private and take the *crate invariant* as their
//! precondition: every address passed in lies inside memory the allocator
//! currently holds (a run from its page source that it has not given back,
//! or the arena an [`ArenaPages`](crate::ArenaPages) owns), is 8-byte
//! aligned for word access, and is not at the same time part of an object
//! handed out to a caller. `slab.rs`, `pagemap.rs`, `arena.rs` and `heap.rs`
//! maintain it; the public `unsafe` boundary is [`GlobalAlloc`] (the caller
//! vouches for the pointers it frees) and [`PageSource`] (the implementer
//! vouches for the pages).
#![allow(
    unsafe_code,
    reason = "the allocator's raw memory access is kept in this one module"
)]

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};
use core::sync::atomic::AtomicUsize;

use crate::heap::SlabAllocator;
use crate::source::PageSource;

/// Address of a pointer, exposing its provenance so that [`word`] can
/// rebuild a usable pointer from the address later.
#[inline(always)]
pub(crate) fn expose(ptr: NonNull<u8>) -> usize {
    ptr.as_ptr().expose_provenance()
}

/// Pointer for an address obtained from [`expose`].
#[inline(always)]
pub(crate) fn pointer(addr: usize) -> *mut u8 {
    ptr::with_exposed_provenance_mut(addr)
}

/// Reads the word at `addr` (crate invariant).
#[inline(always)]
pub(crate) fn load(addr: usize) -> usize {
    debug_assert!(addr != 0 && addr.is_multiple_of(8));
    // SAFETY: by the crate invariant `addr` is 8-byte aligned, inside memory
    // the allocator holds and not inside an object a caller owns; nothing
    // writes it concurrently, because every such word is owned by one CPU
    // cache or guarded by a depot lock.
    unsafe { ptr::with_exposed_provenance::<usize>(addr).read() }
}

/// Writes the word at `addr` (crate invariant).
#[inline(always)]
pub(crate) fn store(addr: usize, value: usize) {
    debug_assert!(addr != 0 && addr.is_multiple_of(8));
    // SAFETY: as for `load`: aligned, held by the allocator, and written by
    // only one owner at a time.
    unsafe { ptr::with_exposed_provenance_mut::<usize>(addr).write(value) }
}

/// The word at `addr` as an atomic, for words several CPUs touch at once
/// (page-map entries, the debug bitmap).
#[inline(always)]
pub(crate) fn atomic(addr: usize) -> &'static AtomicUsize {
    debug_assert!(addr != 0 && addr.is_multiple_of(8));
    // SAFETY: by the crate invariant `addr` is 8-byte aligned and inside
    // memory the allocator holds; words reached through this function are
    // only ever accessed atomically. The `'static` lifetime is not real:
    // callers use the reference at once and never keep it past the moment
    // the memory goes back to the page source.
    unsafe { AtomicUsize::from_ptr(ptr::with_exposed_provenance_mut(addr)) }
}

/// Reads the byte at `addr` (crate invariant, any alignment).
#[inline(always)]
pub(crate) fn load_u8(addr: usize) -> u8 {
    // SAFETY: `addr` is inside memory the allocator holds, touched under the
    // arena lock only.
    unsafe { ptr::with_exposed_provenance::<u8>(addr).read() }
}

/// Writes the byte at `addr` (crate invariant, any alignment).
#[inline(always)]
pub(crate) fn store_u8(addr: usize, value: u8) {
    // SAFETY: as for `load_u8`.
    unsafe { ptr::with_exposed_provenance_mut::<u8>(addr).write(value) }
}

/// Zeroes `bytes` bytes at `addr` (crate invariant).
pub(crate) fn zero(addr: usize, bytes: usize) {
    // SAFETY: the range lies in memory the allocator holds and nothing else
    // uses (a page just obtained from the page source).
    unsafe { ptr::write_bytes(pointer(addr), 0, bytes) }
}

/// Gives a run back to its page source.
pub(crate) fn free_pages(source: &dyn PageSource, addr: usize, count: usize) {
    let ptr = NonNull::new(pointer(addr)).expect("page runs are never at address 0");
    // SAFETY: the allocator calls this exactly once per run it got from
    // `source.alloc_pages(count)`, with the same count, after it has
    // dropped every reference to the run's contents.
    unsafe { source.free_pages(ptr, count) }
}

/// Asks a page source to extend a run in place; true if it did.
pub(crate) fn grow_pages(
    source: &dyn PageSource,
    addr: usize,
    count: usize,
    new_count: usize,
) -> bool {
    let ptr = NonNull::new(pointer(addr)).expect("page runs are never at address 0");
    // SAFETY: the allocator holds the run `addr`/`count` it got from
    // `source` (a large block being reallocated by its only owner), and
    // records the new count for the later `free_pages` if this succeeds.
    unsafe { source.grow_pages(ptr, count, new_count) }
}

// SAFETY: `alloc` returns null or a block of at least `layout.size()` bytes
// aligned to `layout.align()` that no other live allocation overlaps (slab
// objects are disjoint slots of pages the allocator holds; large blocks are
// whole page runs); `dealloc`/`realloc` hand the caller's guarantees on.
unsafe impl GlobalAlloc for SlabAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocate(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // The caller guarantees `ptr` came from this allocator with `layout`
        // and is not used again; that keeps the crate invariant.
        self.deallocate(ptr, layout);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Same guarantee as `dealloc`, plus a valid `new_size`.
        self.reallocate(ptr, layout, new_size)
    }
}

/// Copies `bytes` bytes between two distinct allocations (for `realloc`).
pub(crate) fn copy(src: *const u8, dst: *mut u8, bytes: usize) {
    // SAFETY: `src` is a live allocation of at least `bytes` bytes the
    // caller of `realloc` owns, `dst` is a fresh allocation of at least
    // `bytes` bytes; two live allocations never overlap.
    unsafe { ptr::copy_nonoverlapping(src, dst, bytes) }
}
