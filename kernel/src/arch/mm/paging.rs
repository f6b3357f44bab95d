//! The kernel page tables, built once at boot to replace the boot-time
//! identity map: the kernel image with exact per-section permissions (text
//! RX, rodata R+NX, data RW+NX, the boot stack's guard page unmapped), all RAM
//! in the direct map (RW+NX, but read-only where it aliases the kernel image),
//! and device MMIO pages uncached. Entries carry the platform's
//! encryption or shared bit ([`super::pte`]): private memory through
//! [`map_page`], memory shared with the host through [`map_shared_page`]
//! and [`map_device_page`].

use libos::boot::memmap::PhysRange;
use spin::Mutex;
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::PageTableFrameMapping;
use x86_64::structures::paging::mapper::{MapToError, TranslateResult};
use x86_64::structures::paging::{
    MappedPageTable, Mapper, Page, PageTable, PageTableFlags as F, PhysFrame, Size2MiB, Size4KiB,
    Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use super::frames::{self, PageTableFrames};
use super::{KERNEL_VIRT, PAGE_BYTES, layout, phys_to_virt, pte};

const HUGE_BYTES: u64 = 2 << 20;

/// Table frames reached through the direct map, at their entry's address
/// without the platform's encryption or shared bit.
#[derive(Debug, Clone, Copy)]
pub struct DirectMap;

// SAFETY: every page-table frame is RAM, mapped read-write in the direct
// map (by the boot tables below 4 GiB while `init` builds the kernel
// tables, by the kernel tables after); stripping the platform's bits gives
// the frame's physical address.
unsafe impl PageTableFrameMapping for DirectMap {
    fn frame_to_pointer(&self, frame: PhysFrame) -> *mut PageTable {
        phys_to_virt(pte::strip(frame.start_address().as_u64())) as *mut PageTable
    }
}

/// The kernel's page tables.
type Tables = MappedPageTable<'static, DirectMap>;

static KERNEL_PT: Mutex<Option<Tables>> = Mutex::new(None);

/// Why a mapping could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// No frame for a page table.
    OutOfMemory,
    /// Something is already mapped there.
    AlreadyMapped(u64),
}

impl<S: x86_64::structures::paging::PageSize> From<MapToError<S>> for MapError {
    fn from(e: MapToError<S>) -> Self {
        match e {
            MapToError::FrameAllocationFailed => Self::OutOfMemory,
            MapToError::ParentEntryHugePage | MapToError::PageAlreadyMapped(_) => {
                Self::AlreadyMapped(0)
            }
        }
    }
}

const TABLE_FLAGS: F = F::PRESENT.union(F::WRITABLE);
/// Flags of kernel code.
pub const TEXT: F = F::PRESENT;
/// Flags of read-only kernel data.
pub const RODATA: F = F::PRESENT.union(F::NO_EXECUTE);
/// Flags of writable kernel data.
pub const DATA: F = F::PRESENT.union(F::WRITABLE).union(F::NO_EXECUTE);
/// Flags of device registers.
pub const MMIO: F = DATA.union(F::NO_CACHE).union(F::WRITE_THROUGH);

/// Maps `vaddr` to the entry address `target` (a frame with the
/// platform's bit: [`pte::private`] or [`pte::shared`]).
fn map_4k(pt: &mut Tables, vaddr: u64, target: PhysAddr, flags: F) -> Result<(), MapError> {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(vaddr));
    let frame = PhysFrame::<Size4KiB>::containing_address(target);
    // SAFETY: every caller maps a frame the kernel owns (its image, RAM in the
    // direct map, a freshly allocated frame, or device registers) at an
    // address in a kernel region reserved for that purpose, so no existing
    // reference is invalidated.
    let flush = unsafe {
        pt.map_to_with_table_flags(page, frame, flags, TABLE_FLAGS, &mut PageTableFrames)
    }
    .map_err(|e| match MapError::from(e) {
        MapError::AlreadyMapped(_) => MapError::AlreadyMapped(vaddr),
        other => other,
    })?;
    flush.flush();
    Ok(())
}

fn map_2m(pt: &mut Tables, vaddr: u64, target: PhysAddr, flags: F) -> Result<(), MapError> {
    let page = Page::<Size2MiB>::containing_address(VirtAddr::new(vaddr));
    let frame = PhysFrame::<Size2MiB>::containing_address(target);
    // SAFETY: as in `map_4k`: a 2 MiB block of RAM mapped into the direct map.
    let flush = unsafe {
        pt.map_to_with_table_flags(page, frame, flags, TABLE_FLAGS, &mut PageTableFrames)
    }
    .map_err(|_| MapError::AlreadyMapped(vaddr))?;
    flush.flush();
    Ok(())
}

/// Maps the kernel image section `[start, end)` (virtual) with `flags`,
/// skipping the page at `skip`.
fn map_image(pt: &mut Tables, start: u64, end: u64, flags: F, skip: u64) -> Result<(), MapError> {
    let mut v = start;
    while v < end {
        if v != skip {
            map_4k(pt, v, pte::private(v - KERNEL_VIRT), flags)?;
        }
        v += PAGE_BYTES;
    }
    Ok(())
}

/// Maps RAM range `r` into the direct map: 2 MiB pages where a whole aligned
/// block lies in `r` and does not touch the kernel image, 4 KiB pages
/// elsewhere, read-only where they alias the image.
fn map_direct(pt: &mut Tables, r: PhysRange, image: PhysRange) -> Result<(), MapError> {
    let mut p = r.start;
    while p < r.end {
        let block_end = p.saturating_add(HUGE_BYTES);
        let touches_image = p < image.end && block_end > image.start;
        if p.is_multiple_of(HUGE_BYTES) && block_end <= r.end && !touches_image {
            map_2m(pt, phys_to_virt(p), pte::private(p), DATA)?;
            p = block_end;
        } else {
            let in_image = p >= image.start && p < image.end;
            let flags = if in_image { RODATA } else { DATA };
            map_4k(pt, phys_to_virt(p), pte::private(p), flags)?;
            p += PAGE_BYTES;
        }
    }
    Ok(())
}

/// Builds the kernel page tables over `ram` (every RAM range from the memory
/// map, page aligned) and switches to them.
pub fn init(ram: &[PhysRange]) -> Result<(), MapError> {
    let pml4_paddr = frames::alloc_zeroed().ok_or(MapError::OutOfMemory)?;
    // SAFETY: the frame is fresh, zeroed (a valid empty table) and reachable
    // through the boot direct map; it becomes the root of the kernel tables
    // and is never freed, so the 'static borrow holds.
    let pml4 = unsafe { &mut *(phys_to_virt(pml4_paddr) as *mut PageTable) };
    // SAFETY: all physical memory the mapper will touch (tables allocated
    // from RAM below 4 GiB at this point) is mapped at PHYS_OFFSET, both by
    // the boot tables now and by the tables being built (`DirectMap`).
    let mut pt = unsafe { MappedPageTable::new(pml4, DirectMap) };

    let guard = layout::boot_stack_guard();
    map_image(&mut pt, layout::text_start(), layout::text_end(), TEXT, 0)?;
    map_image(
        &mut pt,
        layout::rodata_start(),
        layout::rodata_end(),
        RODATA,
        0,
    )?;
    map_image(
        &mut pt,
        layout::data_start(),
        layout::data_end(),
        DATA,
        guard,
    )?;
    let image = PhysRange {
        start: layout::kernel_phys_start(),
        end: layout::kernel_phys_end().next_multiple_of(PAGE_BYTES),
    };
    for r in ram {
        map_direct(&mut pt, *r, image)?;
    }
    // SAFETY: the new tables map everything the kernel uses from here on —
    // its image (the code running now, its data, the boot stack we are on)
    // and the direct map; only the boot identity map disappears, and nothing
    // refers to it after this point.
    unsafe {
        Cr3::write(
            PhysFrame::containing_address(pte::private(pml4_paddr)),
            Cr3Flags::empty(),
        )
    };
    without_interrupts(|| *KERNEL_PT.lock() = Some(pt));
    Ok(())
}

fn with<R>(f: impl FnOnce(&mut Tables) -> R) -> R {
    without_interrupts(|| {
        f(KERNEL_PT
            .lock()
            .as_mut()
            .expect("kernel page table used before init"))
    })
}

/// Maps one 4 KiB page of private kernel memory.
pub fn map_page(vaddr: u64, paddr: u64, flags: F) -> Result<(), MapError> {
    with(|pt| map_4k(pt, vaddr, pte::private(paddr), flags))
}

/// Maps one 4 KiB page of memory shared with the host (the DMA pool;
/// `platform::dma`), which the platform made shared first.
pub fn map_shared_page(vaddr: u64, paddr: u64, flags: F) -> Result<(), MapError> {
    with(|pt| map_4k(pt, vaddr, pte::shared(paddr), flags))
}

/// Turns the mapping of kernel page `vaddr` (a page of the image the
/// platform made shared, e.g. SEV-SNP's GHCB) into a shared one: same
/// frame and rights, the entry now with the shared form of the address.
pub fn share_kernel_page(vaddr: u64) -> Result<(), MapError> {
    if vaddr < USER_END {
        return Err(MapError::AlreadyMapped(vaddr));
    }
    with(|pt| {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(vaddr));
        let TranslateResult::Mapped { flags, .. } = pt.translate(page.start_address()) else {
            return Err(MapError::AlreadyMapped(vaddr));
        };
        let (frame, flush) = pt.unmap(page).map_err(|_| MapError::AlreadyMapped(vaddr))?;
        flush.flush();
        map_4k(
            pt,
            vaddr,
            pte::shared(frame.start_address().as_u64()),
            flags,
        )
    })
}

/// Maps one 4 KiB page of device registers, shared and uncached, at
/// `vaddr` ([`crate::platform::mmio::map_registers`] is the caller).
pub fn map_device_page(vaddr: u64, paddr: u64) -> Result<(), MapError> {
    with(|pt| map_4k(pt, vaddr, pte::shared(paddr), MMIO))
}

/// Table flags on the path to a user page (the leaf decides the rights).
const USER_TABLE_FLAGS: F = TABLE_FLAGS.union(F::USER_ACCESSIBLE);

/// Maps one 4 KiB user page (lower half) with `flags` (plus
/// `USER_ACCESSIBLE`).
pub fn map_user_page(vaddr: u64, paddr: u64, flags: F) -> Result<(), MapError> {
    if vaddr >= USER_END {
        return Err(MapError::AlreadyMapped(vaddr));
    }
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(vaddr));
    let frame = PhysFrame::<Size4KiB>::containing_address(pte::private(paddr));
    with(|pt| {
        // SAFETY: a lower-half address, which no kernel reference points
        // into; the frame belongs to the caller, who hands it to user space.
        let flush = unsafe {
            pt.map_to_with_table_flags(
                page,
                frame,
                flags | F::USER_ACCESSIBLE,
                USER_TABLE_FLAGS,
                &mut PageTableFrames,
            )
        }
        .map_err(|_| MapError::AlreadyMapped(vaddr))?;
        flush.flush();
        Ok(())
    })
}

/// Unmaps the kernel page at `vaddr` (a stack page being freed),
/// returning its frame.
pub fn unmap_kernel_page(vaddr: u64) -> Option<u64> {
    if vaddr < USER_END {
        return None;
    }
    with(|pt| {
        let (frame, flush) = pt
            .unmap(Page::<Size4KiB>::containing_address(VirtAddr::new(vaddr)))
            .ok()?;
        flush.flush();
        Some(pte::strip(frame.start_address().as_u64()))
    })
}

/// Unmaps the user page at `vaddr`, returning its frame.
pub fn unmap_user_page(vaddr: u64) -> Option<u64> {
    if vaddr >= USER_END {
        return None;
    }
    with(|pt| {
        let (frame, flush) = pt
            .unmap(Page::<Size4KiB>::containing_address(VirtAddr::new(vaddr)))
            .ok()?;
        flush.flush();
        Some(pte::strip(frame.start_address().as_u64()))
    })
}

/// One past the highest user address (the lower half of the 48-bit space).
pub const USER_END: u64 = 0x0000_8000_0000_0000;

/// The flags of the page mapping `vaddr`, or `None` if it is unmapped.
pub fn flags_of(vaddr: u64) -> Option<F> {
    with(|pt| match pt.translate(VirtAddr::new(vaddr)) {
        TranslateResult::Mapped { flags, .. } => Some(flags),
        _ => None,
    })
}

/// What a mapped page allows, without the entry's bits: the view the
/// layers above the hardware layer get of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageAccess {
    /// Writes are allowed.
    pub writable: bool,
    /// Instructions may be fetched from it.
    pub executable: bool,
    /// Ring 3 may reach it.
    pub user: bool,
}

/// What the page mapping `vaddr` allows, or `None` if it is unmapped.
pub fn access_of(vaddr: u64) -> Option<PageAccess> {
    flags_of(vaddr).map(|f| PageAccess {
        writable: f.contains(F::WRITABLE),
        executable: !f.contains(F::NO_EXECUTE),
        user: f.contains(F::USER_ACCESSIBLE),
    })
}

/// The physical address `vaddr` maps to (any page size), or `None` if it is
/// unmapped.
pub fn translate(vaddr: u64) -> Option<u64> {
    with(|pt| {
        pt.translate_addr(VirtAddr::new(vaddr))
            .map(|a| pte::strip(a.as_u64()))
    })
}
