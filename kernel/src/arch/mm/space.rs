//! Address spaces: one user half per process.
//!
//! An address space is a PML4 whose upper half (slots 256–511) is the
//! kernel's — the same entries as the kernel's own PML4, so every kernel
//! mapping made inside those slots is seen by all spaces — and whose lower
//! half is the process's user pages, managed by [`super::user`] in
//! whichever space is loaded in CR3. The first program runs in the
//! kernel's PML4 itself ([`kernel_root`]); `fork` makes a new one with
//! [`fork_current`]: new page tables whose user pages share their frames
//! copy-on-write with the caller's ([`super::cow`]; lazy and `PROT_NONE`
//! entries are copied as entries), and [`destroy`] frees one once no
//! thread uses it. The scheduler loads a thread's space with [`activate`]
//! before switching to it.
//!
//! A space is named by the physical address of its PML4 (`0` stands for
//! the kernel's). A fork costs the page tables, not the memory.

use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::tlb;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::PhysFrame;

use super::cow;
use super::user::{HAS_FRAME, UserMapError, table_at, with_lock};
use super::{PAGE_BYTES, frames, pte};

/// The kernel's PML4 (the first program's space), recorded by [`init`].
static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);

/// The first user PML4 slot that belongs to the kernel.
const KERNEL_SLOTS: usize = 256;

/// Records the running PML4 as the kernel's (called once, before any
/// fork).
pub fn init() {
    let _ = KERNEL_ROOT.compare_exchange(0, current(), Ordering::AcqRel, Ordering::Acquire);
}

/// The PML4 in CR3 now.
pub fn current() -> u64 {
    pte::strip(Cr3::read().0.start_address().as_u64())
}

/// The kernel's PML4.
pub fn kernel_root() -> u64 {
    KERNEL_ROOT.load(Ordering::Acquire)
}

/// Loads space `root` (`0`: the kernel's) unless it is loaded already.
pub fn activate(root: u64) {
    let root = if root == 0 { kernel_root() } else { root };
    if root == 0 || root == current() {
        return;
    }
    crate::arch::smp::tlb::note_loaded(root);
    // SAFETY: `root` is the kernel's PML4 or one `fork_current` built and
    // `destroy` has not freed (a space is destroyed only after its last
    // thread switched away for good); its upper half is the kernel's, so
    // the code, stack and data in use stay mapped across the switch.
    unsafe {
        Cr3::write(
            PhysFrame::containing_address(pte::private(root)),
            Cr3Flags::empty(),
        )
    };
}

/// Frees a table of `level` (3: PDPT, 2: PD, 1: PT) and everything below
/// it: the tables, and the frames of the user pages.
fn free_tree(table: u64, level: u8) {
    let t = table_at(table);
    for e in t.iter_mut() {
        if e.is_unused() {
            continue;
        }
        if level == 1 {
            if e.flags().contains(HAS_FRAME) {
                cow::release(pte::frame_of(e));
            }
        } else {
            free_tree(pte::frame_of(e), level - 1);
        }
        e.set_unused();
    }
    if let Err(err) = frames::free_user(table) {
        log::error!("freeing a user page table: {err:?}");
    }
}

/// Bytes one entry of a table of `level` spans (1: a page).
const fn entry_span(level: u8) -> u64 {
    PAGE_BYTES << (9 * (level as u64 - 1))
}

/// A copy of the table `src` of `level`, mapping from `base`, and
/// everything below it; the user pages' frames are shared copy-on-write
/// (`cow`) with `src`, whose entries lose their write right too — except
/// pages in `shared` (`MAP_SHARED` areas), whose frames both spaces map
/// writable.
fn copy_tree(src: u64, level: u8, base: u64, shared: &[Range<u64>]) -> Result<u64, UserMapError> {
    let dst = frames::alloc_user_zeroed().ok_or(UserMapError::OutOfMemory)?;
    for i in 0..512 {
        let entry = table_at(src)[i].clone();
        if entry.is_unused() {
            continue;
        }
        let vaddr = base + i as u64 * entry_span(level);
        let (paddr, flags) = if level == 1 {
            let flags = entry.flags();
            if flags.contains(HAS_FRAME) && shared.iter().any(|r| r.contains(&vaddr)) {
                cow::share(pte::frame_of(&entry));
                (pte::frame_of(&entry), flags)
            } else if flags.contains(HAS_FRAME) {
                cow::share(pte::frame_of(&entry));
                let shared = cow::shared_flags(flags);
                table_at(src)[i].set_flags(shared);
                (pte::frame_of(&entry), shared)
            } else {
                (pte::frame_of(&entry), flags)
            }
        } else {
            match copy_tree(pte::frame_of(&entry), level - 1, vaddr, shared) {
                Ok(copy) => (copy, entry.flags()),
                Err(e) => {
                    free_tree(dst, level);
                    return Err(e);
                }
            }
        };
        table_at(dst)[i].set_addr(pte::private(paddr), flags);
    }
    Ok(dst)
}

/// A new address space: the kernel's half shared, the current space's
/// user half copied with its frames shared copy-on-write, but those in
/// `shared` (page-aligned `MAP_SHARED` areas, whose pages the caller gave
/// frames) shared for real. `OutOfMemory`
/// leaves nothing behind (the caller's pages may stay marked
/// copy-on-write, which only costs a fault at their next write).
pub fn fork_current(shared: &[Range<u64>]) -> Result<u64, UserMapError> {
    with_lock(|| {
        let src = current();
        let dst = frames::alloc_user_zeroed().ok_or(UserMapError::OutOfMemory)?;
        for i in KERNEL_SLOTS..512 {
            let entry = table_at(src)[i].clone();
            table_at(dst)[i] = entry;
        }
        for i in 0..KERNEL_SLOTS {
            let entry = table_at(src)[i].clone();
            if entry.is_unused() {
                continue;
            }
            match copy_tree(pte::frame_of(&entry), 3, i as u64 * entry_span(4), shared) {
                Ok(copy) => table_at(dst)[i].set_addr(pte::private(copy), entry.flags()),
                Err(e) => {
                    destroy_locked(dst);
                    tlb::flush_all();
                    return Err(e);
                }
            }
        }
        // The caller's pages lost their write right (on every CPU).
        tlb::flush_all();
        crate::arch::smp::tlb::note_all();
        Ok(dst)
    })
}

fn destroy_locked(root: u64) {
    for i in 0..KERNEL_SLOTS {
        let entry = table_at(root)[i].clone();
        if !entry.is_unused() {
            free_tree(pte::frame_of(&entry), 3);
        }
    }
    if let Err(err) = frames::free_user(root) {
        log::error!("freeing a PML4: {err:?}");
    }
}

/// Frees space `root`: its user pages, its tables and its PML4. Refused
/// (logged) for the kernel's space and for the one loaded now.
pub fn destroy(root: u64) {
    if root == 0 || root == kernel_root() || root == current() {
        log::error!("refusing to destroy the address space {root:#x} in use");
        return;
    }
    // A CPU halted on a thread of the space that exited still has it.
    crate::arch::smp::tlb::leave(root);
    with_lock(|| destroy_locked(root));
}
