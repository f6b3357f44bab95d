//! Copy-on-write for forked address spaces: frames shared between spaces
//! and the copy made at the first write.
//!
//! At fork ([`super::space::fork_current`]) every user page with a frame
//! is shared: both entries lose the hardware `WRITABLE` bit and gain the
//! software bit [`COW`], and the frame's count of mappings
//! ([`share`]) goes up. A write to such a page — by the program (a
//! protection fault) or by the kernel's user copies and `fill` — comes to
//! [`break_cow`]: a frame still shared is copied into a fresh one for the
//! writer; the last mapping of a frame just gets its rights back.
//! Unmapping goes through [`release`], which frees a frame only when no
//! mapping is left. The counts live here, changed only under the
//! page-table lock (`user::with_lock`); a frame absent from the table has
//! exactly one mapping.

use alloc::collections::BTreeMap;

use spin::Mutex;
use x86_64::structures::paging::PageTableFlags as F;
use x86_64::structures::paging::page_table::PageTableEntry;

use super::{PAGE_BYTES, frames, phys_to_virt, pte};

/// Software bit: the frame may be shared; copy it before writing.
pub(super) const COW: F = F::BIT_54;

/// Mappings of each frame that has more than one.
static SHARED: Mutex<BTreeMap<u64, u32>> = Mutex::new(BTreeMap::new());

/// One more mapping of `frame` (the caller holds the page-table lock).
pub(super) fn share(frame: u64) {
    let mut shared = SHARED.lock();
    let count = shared.entry(frame).or_insert(1);
    *count = count.saturating_add(1);
}

/// One mapping of `frame` fewer; frees it with its last mapping.
pub(super) fn release(frame: u64) {
    {
        let mut shared = SHARED.lock();
        if let Some(count) = shared.get_mut(&frame) {
            *count -= 1;
            if *count <= 1 {
                shared.remove(&frame);
            }
            return;
        }
    }
    if let Err(e) = frames::free_user(frame) {
        log::error!("freeing a user frame: {e:?}");
    }
}

/// Whether `frame` has more than one mapping.
fn is_shared(frame: u64) -> bool {
    SHARED.lock().contains_key(&frame)
}

/// Frames shared now (for tests).
pub fn shared_frames() -> usize {
    SHARED.lock().len()
}

/// Makes the copy-on-write page whose entry is `entry` (at `vaddr`)
/// writable by this space alone: a copy if the frame is still shared,
/// else the frame itself. `with_rights` gives the entry's flags without
/// copy-on-write. Returns the frame now mapped, `None` without memory.
pub(super) fn break_cow(
    entry: &mut PageTableEntry,
    vaddr: u64,
    with_rights: impl FnOnce(F) -> F,
) -> Option<u64> {
    let old = pte::frame_of(entry);
    let flags = with_rights(entry.flags() - COW);
    let frame = if is_shared(old) {
        let new = frames::alloc_user_zeroed()?;
        // SAFETY: both are whole 4 KiB frames in the direct map: `old` is
        // mapped by this entry (its contents are read under the page-table
        // lock, so no other space changes the sharing meanwhile) and `new`
        // was just allocated, so they do not overlap.
        unsafe {
            core::ptr::copy_nonoverlapping(
                phys_to_virt(old) as *const u8,
                phys_to_virt(new) as *mut u8,
                PAGE_BYTES as usize,
            );
        }
        release(old);
        new
    } else {
        old
    };
    entry.set_addr(pte::private(frame), flags);
    super::user::flush_page(vaddr);
    Some(frame)
}

/// The flags a shared entry gets: copy-on-write, never writable.
pub(super) fn shared_flags(flags: F) -> F {
    (flags | COW) - F::WRITABLE
}
