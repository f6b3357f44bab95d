//! The kernel's physical frame allocator: [`allocator::frame::FrameAllocator`]
//! behind an interrupt-safe lock, with its bitmap carved from RAM at boot.

use allocator::frame::{FRAME_BYTES, FrameAllocator, FrameError, bitmap_words};
use libos::boot::memmap::MemoryMap;
use spin::Mutex;
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::structures::paging::{PhysFrame, Size4KiB};

use super::{EARLY_MAPPED_BYTES, phys_to_virt};

static FRAMES: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);
static TOTAL_BYTES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// What the allocator owns: the RAM it hands out and its bitmap's range
/// (for [`super::reserved`], which must never alias it).
static MANAGED: spin::Once<(MemoryMap, (u64, u64))> = spin::Once::new();

/// Builds the allocator over `usable`, taking the bitmap's own storage out of
/// it first. Returns the physical range the bitmap occupies.
pub fn init(usable: &mut MemoryMap) -> Option<(u64, u64)> {
    let frame_count = usize::try_from(usable.end() / FRAME_BYTES).ok()?;
    let words = bitmap_words(frame_count);
    let bytes = (words * 8) as u64;
    let storage_paddr = usable.take_below(bytes, EARLY_MAPPED_BYTES)?;
    // SAFETY: `take_below` removed these bytes from the usable map, so no
    // other owner exists; they are RAM below EARLY_MAPPED_BYTES and so mapped
    // by the boot page table, page aligned (so aligned for u64), and
    // `words * 8` bytes long. They stay reserved forever ('static).
    let storage =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(storage_paddr) as *mut u64, words) };
    let mut fa = FrameAllocator::new(storage, 0, frame_count);
    for r in usable.ranges() {
        fa.add_free(r.start, (r.len_bytes() / FRAME_BYTES) as usize)
            .ok()?;
    }
    without_interrupts(|| *FRAMES.lock() = Some(fa));
    MANAGED.call_once(|| (usable.clone(), (storage_paddr, bytes)));
    TOTAL_BYTES.store(usable.usable_bytes(), core::sync::atomic::Ordering::Relaxed);
    Some((storage_paddr, bytes))
}

/// Whether any byte of `[start, end)` is (or may become) the allocator's:
/// a range it hands frames out of, or its bitmap. `None` before [`init`].
pub fn overlaps_managed(start: u64, end: u64) -> Option<bool> {
    let (usable, (bitmap, bitmap_bytes)) = MANAGED.get()?;
    let overlaps = |s: u64, e: u64| start < e && s < end;
    Some(
        overlaps(*bitmap, bitmap.saturating_add(*bitmap_bytes))
            || usable.ranges().iter().any(|r| overlaps(r.start, r.end)),
    )
}

fn with<R>(f: impl FnOnce(&mut FrameAllocator<'static>) -> R) -> R {
    without_interrupts(|| {
        f(FRAMES
            .lock()
            .as_mut()
            .expect("frame allocator used before init"))
    })
}

/// One frame, or `None` when memory is exhausted.
pub fn alloc() -> Option<u64> {
    with(|fa| fa.alloc())
}

/// `count` contiguous frames aligned to `align_frames` frames.
pub fn alloc_contiguous(count: usize, align_frames: usize) -> Option<u64> {
    with(|fa| fa.alloc_contiguous(count, align_frames))
}

/// Frees `count` frames at `paddr`.
pub fn free(paddr: u64, count: usize) -> Result<(), FrameError> {
    with(|fa| fa.free(paddr, count))
}

/// Extends the used run of `count` frames at `paddr` by `extra` frames in
/// place if the frames right after it are free; returns whether it did.
pub fn try_extend(paddr: u64, count: usize, extra: usize) -> bool {
    with(|fa| fa.try_extend(paddr, count, extra))
}

/// Bytes the allocator manages (free at boot).
pub fn total_bytes() -> u64 {
    TOTAL_BYTES.load(core::sync::atomic::Ordering::Relaxed)
}

/// `(total, free)` bytes of frame memory, for `sysinfo` and `/proc/meminfo`.
pub fn memory_bytes() -> (u64, u64) {
    (total_bytes(), free_frames() as u64 * FRAME_BYTES)
}

/// Frames currently free.
pub fn free_frames() -> usize {
    with(|fa| fa.free_frames())
}

/// Frames user memory may not take: kept for the kernel (its heap, thread
/// stacks, page tables of new threads), so a program that exhausts memory
/// is killed with the kernel still standing. 1/16 of memory, between
/// 4 MiB and 64 MiB.
pub fn kernel_reserve_frames() -> usize {
    let bytes = (total_bytes() / 16).clamp(4 << 20, 64 << 20);
    (bytes / FRAME_BYTES) as usize
}

/// Bytes user memory can still have: free frames minus the kernel's
/// reserve (what the LibOS's heuristic overcommit and `sysinfo` see).
pub fn user_available_bytes() -> u64 {
    free_frames().saturating_sub(kernel_reserve_frames()) as u64 * FRAME_BYTES
}

/// Frames user memory holds now (its pages and page tables).
static USER_FRAMES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The most bytes user memory can hold now: what it holds plus what it
/// can still have (the commit limit the LibOS enforces; the kernel's heap
/// — file data, sockets — and its reserve are excluded).
pub fn user_capacity_bytes() -> u64 {
    USER_FRAMES.load(core::sync::atomic::Ordering::Relaxed) * FRAME_BYTES + user_available_bytes()
}

/// Frames user memory holds now (its pages, page tables and the file
/// pages `MAP_SHARED` mappings map).
pub fn user_frames() -> u64 {
    USER_FRAMES.load(core::sync::atomic::Ordering::Relaxed)
}

/// A zeroed frame for user memory (a page or a page table of the
/// program's): `None` once only the kernel's reserve is left.
pub fn alloc_user_zeroed() -> Option<u64> {
    if free_frames() <= kernel_reserve_frames() {
        return None;
    }
    let paddr = alloc_zeroed()?;
    USER_FRAMES.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    Some(paddr)
}

/// Frees a frame [`alloc_user_zeroed`] gave.
pub fn free_user(paddr: u64) -> Result<(), FrameError> {
    free(paddr, 1)?;
    USER_FRAMES.fetch_sub(1, core::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// A zeroed frame.
pub fn alloc_zeroed() -> Option<u64> {
    let paddr = alloc()?;
    // SAFETY: the frame was just allocated, so we own it; the direct map
    // covers all RAM with RW permissions.
    unsafe { core::ptr::write_bytes(phys_to_virt(paddr) as *mut u8, 0, FRAME_BYTES as usize) };
    Some(paddr)
}

/// The frame source the `x86_64` crate's page-table mapper allocates
/// intermediate tables from.
#[derive(Debug)]
pub struct PageTableFrames;

// SAFETY: every frame returned comes from the frame allocator, so it is
// unused RAM that nothing else will be given until it is freed.
unsafe impl x86_64::structures::paging::FrameAllocator<Size4KiB> for PageTableFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        // Page tables are private memory: their entries in the level above
        // carry the platform's encryption bit.
        alloc().map(|p| PhysFrame::containing_address(super::pte::private(p)))
    }
}
