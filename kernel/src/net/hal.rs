//! [`KernelHal`]: the `virtio-drivers` [`Hal`] over the kernel's memory
//! management.
//!
//! - DMA regions (the virtqueues, the driver's packet buffers) are
//!   contiguous zeroed frames from [`frames::alloc_contiguous`], reached
//!   through the direct map; device address = physical address (no IOMMU).
//! - [`Hal::share`] hands the device the physical address of a buffer. A
//!   buffer in the direct map (the heap, DMA regions) or the kernel image is
//!   physically contiguous, so its address is arithmetic. Anything else (a
//!   kernel stack, whose pages are scattered) is translated page by page
//!   through the page tables; if its pages are not contiguous, it goes
//!   through a bounce buffer of fresh frames, copied in for the device and
//!   back out in [`Hal::unshare`].
//! - [`Hal::mmio_phys_to_virt`] maps device registers through the platform
//!   ([`crate::platform::mmio::map_registers`]).

use core::ptr::NonNull;

use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use crate::mm::{self, KERNEL_VIRT, PAGE_BYTES, PHYS_OFFSET, STACKS_BASE, frames, paging};

/// The kernel's DMA and address-translation services for `virtio-drivers`.
#[derive(Debug)]
pub struct KernelHal;

/// Frames covering `bytes`.
fn pages_for(bytes: usize) -> usize {
    bytes.div_ceil(PAGE_BYTES as usize)
}

/// Contiguous frames, zeroed; never physical address 0 (which
/// `virtio-drivers` takes for failure).
fn alloc_zeroed_run(pages: usize) -> Option<u64> {
    let mut paddr = frames::alloc_contiguous(pages, 1)?;
    if paddr == 0 {
        // Keep the run at 0 (a few frames, once) and take another.
        paddr = frames::alloc_contiguous(pages, 1)?;
    }
    // SAFETY: the run was just allocated, so nothing else refers to it; the
    // direct map covers all RAM read-write.
    unsafe { core::ptr::write_bytes(mm::phys_to_virt(paddr) as *mut u8, 0, pages * 4096) };
    Some(paddr)
}

/// The physical address of `[vaddr, vaddr + len)` if those bytes are
/// physically contiguous (and mapped).
pub fn contiguous_phys(vaddr: u64, len: usize) -> Option<u64> {
    if (PHYS_OFFSET..STACKS_BASE).contains(&vaddr) {
        // The direct map is linear.
        return Some(vaddr - PHYS_OFFSET);
    }
    if vaddr >= KERNEL_VIRT {
        // So is the kernel image.
        return Some(vaddr - KERNEL_VIRT);
    }
    let first = paging::translate(vaddr)?;
    let end = vaddr.checked_add(len as u64)?;
    let mut page = (vaddr & !(PAGE_BYTES - 1)) + PAGE_BYTES;
    while page < end {
        if paging::translate(page)? != first + (page - vaddr) {
            return None;
        }
        page += PAGE_BYTES;
    }
    Some(first)
}

// SAFETY:
// 1. `dma_alloc` returns freshly allocated frames (exclusive until freed),
//    page aligned, zeroed, through the direct map (valid for their length);
// 2. `mmio_phys_to_virt` maps the registers uncached at their direct-map
//    address, which no RAM aliases;
// 3. `share` returns an address at which the device sees exactly the
//    buffer's bytes (the buffer's own frames, or a bounce copy that
//    `unshare` copies back and frees).
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match alloc_zeroed_run(pages) {
            Some(paddr) => {
                let vaddr = NonNull::new(mm::phys_to_virt(paddr) as *mut u8)
                    .expect("the direct map is not at 0");
                (paddr, vaddr)
            }
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        match frames::free(paddr, pages) {
            Ok(()) => 0,
            Err(_) => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        match crate::platform::mmio::map_registers(paddr, size as u64) {
            Ok(regs) => regs.as_ptr(),
            Err(e) => panic!("cannot map device registers at {paddr:#x}: {e:?}"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let vaddr = buffer.cast::<u8>().as_ptr() as u64;
        let len = buffer.len();
        if let Some(paddr) = contiguous_phys(vaddr, len) {
            return paddr;
        }
        let Some(bounce) = alloc_zeroed_run(pages_for(len)) else {
            panic!("virtio: no memory for a {len}-byte bounce buffer");
        };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller guarantees `buffer` is valid for reads of
            // `len` bytes; the bounce run is ours and at least `len` long.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    vaddr as *const u8,
                    mm::phys_to_virt(bounce) as *mut u8,
                    len,
                );
            }
        }
        bounce
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let vaddr = buffer.cast::<u8>().as_ptr() as u64;
        let len = buffer.len();
        if contiguous_phys(vaddr, len) == Some(paddr) {
            return;
        }
        // A bounce buffer from `share`.
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: the caller guarantees `buffer` is valid for writes of
            // `len` bytes and unused meanwhile; `paddr` is the bounce run
            // `share` allocated for this buffer, at least `len` long.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    mm::phys_to_virt(paddr) as *const u8,
                    vaddr as *mut u8,
                    len,
                );
            }
        }
        if let Err(e) = frames::free(paddr, pages_for(len)) {
            log::error!("virtio: freeing a bounce buffer at {paddr:#x}: {e}");
        }
    }
}
