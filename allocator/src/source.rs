//! What the embedder supplies: pages ([`PageSource`]) and the CPU it runs on
//! ([`CpuLocal`]).
//!
//! In the guest the kernel implements both: `PageSource` over its physical
//! frame allocator (runs of 4 KiB pages as direct-map virtual addresses) and
//! `CpuLocal` over its per-CPU data and interrupt flag. On the host,
//! [`ArenaPages`](crate::ArenaPages) and [`SingleCpu`] stand in.

use core::ptr::NonNull;

/// A source of page runs: the page-level allocator under the slab
/// allocator. Large requests (over 8 KiB, or whole pages) are served by it
/// directly; the best-fit region for middle sizes takes chunks from it.
///
/// # Safety
///
/// An implementation must guarantee that:
/// 1. `alloc_pages(count)` returns either `None` or a pointer to `count`
///    consecutive 4 KiB pages, aligned to 4 KiB, readable and writable, and
///    used by nothing else until they are handed back with `free_pages`;
/// 2. both methods may be called from any CPU at the same time (`Sync`),
///    and, if interrupt handlers allocate, from an interrupt handler that
///    interrupted one of them: an implementation holding a lock must mask
///    interrupts while it holds it.
///
/// The slab allocator calls neither method while it holds one of its own
/// locks.
#[expect(
    unsafe_code,
    reason = "the implementer vouches for the memory it hands out"
)]
pub unsafe trait PageSource: Sync {
    /// Allocates `count` (≥ 1) consecutive pages; `None` when out of memory.
    fn alloc_pages(&self, count: usize) -> Option<NonNull<u8>>;

    /// Returns a run to the source.
    ///
    /// # Safety
    ///
    /// `ptr` and `count` must be exactly a run returned by `alloc_pages` and
    /// not freed since; nothing may use the pages afterwards.
    #[expect(
        unsafe_code,
        reason = "the caller vouches that the run came from alloc_pages"
    )]
    unsafe fn free_pages(&self, ptr: NonNull<u8>, count: usize);

    /// Extends the run at `ptr` from `count` to `new_count` (> `count`)
    /// pages in place, if the pages right after it are free; returns
    /// whether it did. From then on the run is `ptr`/`new_count` (the
    /// count `free_pages` receives). The default never grows, which is
    /// always correct: `realloc` then moves the block.
    ///
    /// # Safety
    ///
    /// `ptr` and `count` must be exactly a run returned by `alloc_pages`
    /// (or grown by this method) and not freed since.
    #[expect(
        unsafe_code,
        reason = "the caller vouches that the run came from alloc_pages"
    )]
    unsafe fn grow_pages(&self, ptr: NonNull<u8>, count: usize, new_count: usize) -> bool {
        let _ = (ptr, count, new_count);
        false
    }
}

/// The CPU the allocator is running on, and interrupt masking.
///
/// `cpu_id` picks the per-CPU cache. A wrong or shared id is never unsound:
/// each cache is taken with a try-lock, and a caller that finds it taken
/// goes to the shared depot instead; it only costs speed.
///
/// `irq_save`/`irq_restore` bracket every moment the allocator holds one of
/// its spin locks (the depots', the best-fit region's and the descriptor
/// pool's, never across a
/// call into the [`PageSource`]). If interrupt handlers may allocate, they
/// must really mask interrupts on this CPU, or a handler that interrupts a
/// lock holder and allocates would spin forever. Non-maskable interrupt
/// handlers must not allocate at all.
pub trait CpuLocal: Sync {
    /// Index of the running CPU: small, distinct per CPU (folded modulo
    /// [`MAX_CPUS`](crate::MAX_CPUS)).
    fn cpu_id(&self) -> usize;

    /// Masks interrupts on this CPU and returns a token to restore the
    /// previous state with. The default does nothing.
    fn irq_save(&self) -> usize {
        0
    }

    /// Restores the interrupt state `irq_save` returned.
    fn irq_restore(&self, saved: usize) {
        let _ = saved;
    }
}

/// A [`CpuLocal`] for one CPU whose interrupt handlers never allocate (and
/// for host tests, where every thread is "CPU 0" and the try-lock on the
/// cache sends the others to the depot).
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleCpu;

impl CpuLocal for SingleCpu {
    #[inline(always)]
    fn cpu_id(&self) -> usize {
        0
    }
}
