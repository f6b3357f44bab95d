//! Reserved physical memory handed out once as a `'static` slice: the
//! initramfs the boot loader placed and the audit region. The safe door to
//! memory the frame allocator never owns, so the modules above the
//! hardware layer need no `unsafe` to use it.
//!
//! A claim is granted only if the range
//! 1. lies entirely outside what the frame allocator manages (its free RAM
//!    and its bitmap, [`super::frames::overlaps_managed`]) and outside the
//!    kernel image, so nothing else in the kernel holds a reference to it;
//! 2. is mapped at its direct-map address onto itself (writable, for
//!    [`claim_mut`]), so every byte of the slice is accessible;
//! 3. overlaps no earlier claim, so the slice is the only one ever made.

use spin::Mutex;
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::structures::paging::PageTableFlags as F;

use super::{PAGE_BYTES, layout, paging, phys_to_virt};

/// How many ranges can be claimed (the initramfs, the audit region, room
/// for a few more).
const MAX_CLAIMS: usize = 8;

/// The smallest large page.
const LARGE_PAGE_BYTES: u64 = 2 << 20;

/// Claimed ranges, `[start, end)`.
static CLAIMED: Mutex<([(u64, u64); MAX_CLAIMS], usize)> = Mutex::new(([(0, 0); MAX_CLAIMS], 0));

/// Why a range could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// The range wraps or does not fit the address space.
    TooLarge,
    /// Claimed before the frame allocator was built.
    TooEarly,
    /// It overlaps memory the frame allocator owns.
    Allocator,
    /// It overlaps the kernel image.
    KernelImage,
    /// A page of it is not mapped onto itself in the direct map (or not
    /// writable, for a mutable claim).
    NotMapped(u64),
    /// It overlaps an earlier claim.
    AlreadyClaimed,
    /// Too many claims.
    TableFull,
}

/// Claims `[paddr, paddr + bytes)` for reading (see the module docs).
pub fn claim(paddr: u64, bytes: u64) -> Result<&'static [u8], ClaimError> {
    let (vaddr, len) = check_and_record(paddr, bytes, false)?;
    // SAFETY: `check_and_record` established the module's three conditions:
    // 1. no allocation, kernel static or earlier claim aliases the range;
    // 2. every page of `[vaddr, vaddr + len)` is mapped (and stays so: the
    //    direct map is never unmapped) onto exactly this physical range;
    // 3. the range is recorded, so no other slice of it will be made.
    // `u8` has no alignment or validity requirements.
    Ok(unsafe { core::slice::from_raw_parts(vaddr as *const u8, len) })
}

/// Claims `[paddr, paddr + bytes)` for reading and writing (see the module
/// docs).
pub fn claim_mut(paddr: u64, bytes: u64) -> Result<&'static mut [u8], ClaimError> {
    let (vaddr, len) = check_and_record(paddr, bytes, true)?;
    // SAFETY: as in `claim`, and every page is mapped writable; the
    // recorded claim makes this the only reference, so it may be `mut`.
    Ok(unsafe { core::slice::from_raw_parts_mut(vaddr as *mut u8, len) })
}

/// The checks of the module docs; on success the range is recorded and its
/// direct-map address and length returned.
fn check_and_record(paddr: u64, bytes: u64, writable: bool) -> Result<(u64, usize), ClaimError> {
    let len = usize::try_from(bytes).map_err(|_| ClaimError::TooLarge)?;
    let end = paddr.checked_add(bytes).ok_or(ClaimError::TooLarge)?;
    phys_to_virt_checked(end).ok_or(ClaimError::TooLarge)?;
    if bytes == 0 {
        return Ok((phys_to_virt(paddr), 0));
    }
    let overlaps = |s: u64, e: u64| paddr < e && s < end;
    match super::frames::overlaps_managed(paddr, end) {
        None => return Err(ClaimError::TooEarly),
        Some(true) => return Err(ClaimError::Allocator),
        Some(false) => {}
    }
    if overlaps(layout::kernel_phys_start(), layout::kernel_phys_end()) {
        return Err(ClaimError::KernelImage);
    }
    let mut page = paddr & !(PAGE_BYTES - 1);
    while page < end {
        let vaddr = phys_to_virt(page);
        let flags = paging::flags_of(vaddr).ok_or(ClaimError::NotMapped(page))?;
        if paging::translate(vaddr) != Some(page) || (writable && !flags.contains(F::WRITABLE)) {
            return Err(ClaimError::NotMapped(page));
        }
        // A large page maps at least the rest of its 2 MiB block alike (a
        // 1 GiB page too; its other blocks are then checked again).
        let step = if flags.contains(F::HUGE_PAGE) {
            LARGE_PAGE_BYTES - (page & (LARGE_PAGE_BYTES - 1))
        } else {
            PAGE_BYTES
        };
        page = page.saturating_add(step);
    }
    without_interrupts(|| {
        let mut claimed = CLAIMED.lock();
        let (table, count) = &mut *claimed;
        if table[..*count].iter().any(|&(s, e)| overlaps(s, e)) {
            return Err(ClaimError::AlreadyClaimed);
        }
        let slot = table.get_mut(*count).ok_or(ClaimError::TableFull)?;
        *slot = (paddr, end);
        *count += 1;
        Ok((phys_to_virt(paddr), len))
    })
}

/// The direct-map address of `paddr` if it stays in the direct map's half.
fn phys_to_virt_checked(paddr: u64) -> Option<u64> {
    super::PHYS_OFFSET.checked_add(paddr)
}
