//! [`KernelHal`]: the `virtio-drivers` [`Hal`] over the shared DMA pool
//! ([`crate::platform::dma`]): a device is only ever given addresses in the
//! pool, the one region shared with the host.
//!
//! - [`Hal::dma_alloc`] (the virtqueues, the driver's packet slots) carves
//!   page runs from the pool; device address = physical address (no
//!   IOMMU). Exhaustion returns physical address 0, which `virtio-drivers`
//!   reports as `Error::DmaError`.
//! - [`Hal::share`] of a buffer that already lies in the pool (the packet
//!   slots) hands over its own address: no copy. Any other buffer is
//!   private: it is bounced — a pool buffer is reserved, filled with the
//!   buffer's bytes if the device reads them, and its address handed over;
//!   [`Hal::unshare`] copies what the device wrote back into the private
//!   buffer and frees the bounce buffer.
//! - [`Hal::mmio_phys_to_virt`] maps device registers through the platform
//!   ([`crate::platform::mmio::map_registers`]).
//!
//! Every address handed to the device is checked (`debug_assert!`) to lie
//! in the pool; the `dma` ktests read the device's descriptor tables back
//! and check the same from the device's side.

use core::ptr::NonNull;

use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use crate::mm::PAGE_BYTES;
use crate::platform::dma::{self, SharedPool};

/// The kernel's DMA and address-translation services for `virtio-drivers`.
#[derive(Debug)]
pub struct KernelHal;

/// Alignment of bounce buffers (a descriptor's natural alignment).
const BOUNCE_ALIGN: usize = 16;

/// The pool; `net::init` sets it up before any device, so a driver
/// reaching the HAL without it is a bug.
fn pool() -> &'static SharedPool {
    dma::pool().expect("virtio: the shared DMA pool is set up before any device")
}

/// Checks the invariant of this module: the device sees only the pool.
fn debug_check_in_pool(pool: &SharedPool, paddr: u64, len: usize) {
    debug_assert!(
        pool.contains(paddr, len),
        "virtio: device address {paddr:#x}+{len} outside the shared pool {:#x}+{}",
        pool.paddr(),
        pool.bytes()
    );
}

// SAFETY:
// 1. `dma_alloc` returns a pool run the arena handed out (exclusive until
//    freed), page aligned, zeroed, through the shared window (valid for its
//    length);
// 2. `mmio_phys_to_virt` maps the registers uncached at their direct-map
//    address, which no RAM aliases;
// 3. `share` returns an address at which the device sees exactly the
//    buffer's bytes (the buffer itself when it lies in the pool, or a
//    bounce copy that `unshare` copies back and frees).
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let pool = pool();
        let Some(bytes) = pages.checked_mul(PAGE_BYTES as usize) else {
            return (0, NonNull::dangling());
        };
        match pool.alloc(bytes, PAGE_BYTES as usize) {
            Ok(buf) => {
                debug_check_in_pool(pool, buf.paddr, bytes);
                let vaddr = NonNull::new(buf.vaddr as *mut u8).expect("the DMA window is not at 0");
                (buf.paddr, vaddr)
            }
            Err(e) => {
                log::warn!("virtio: {pages} DMA pages: {e}");
                (0, NonNull::dangling())
            }
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        match pool().free(paddr, pages.saturating_mul(PAGE_BYTES as usize)) {
            Ok(()) => 0,
            Err(e) => {
                log::error!("virtio: freeing {pages} DMA pages at {paddr:#x}: {e}");
                -1
            }
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        match crate::platform::mmio::map_registers(paddr, size as u64) {
            Ok(regs) => regs.as_ptr(),
            Err(e) => panic!("cannot map device registers at {paddr:#x}: {e:?}"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let pool = pool();
        let vaddr = buffer.cast::<u8>().as_ptr() as u64;
        let len = buffer.len();
        if let Some(paddr) = pool.paddr_of(vaddr, len) {
            debug_check_in_pool(pool, paddr, len);
            return paddr;
        }
        // A private buffer: bounce it. `virtio-drivers` has no way to
        // report a failure here; the net driver never gets here (its
        // buffers live in the pool), so running out is a driver bug.
        let bounce = match pool.alloc(len, BOUNCE_ALIGN) {
            Ok(b) => b,
            Err(e) => panic!("virtio: a {len}-byte bounce buffer: {e}"),
        };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller guarantees `buffer` is valid for reads of
            // `len` bytes and not accessed by anyone else meanwhile.
            let private = unsafe { core::slice::from_raw_parts(vaddr as *const u8, len) };
            let copied = pool.write(bounce.paddr, private);
            debug_assert!(copied, "a bounce buffer lies in the pool");
        }
        debug_check_in_pool(pool, bounce.paddr, len);
        bounce.paddr
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let pool = pool();
        let vaddr = buffer.cast::<u8>().as_ptr() as u64;
        let len = buffer.len();
        if pool.paddr_of(vaddr, len) == Some(paddr) {
            // The buffer itself was shared.
            return;
        }
        debug_check_in_pool(pool, paddr, len);
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: the caller guarantees `buffer` is valid for writes of
            // `len` bytes and unused meanwhile; it is private memory, not
            // the pool, so the copy below does not alias it.
            let private = unsafe { core::slice::from_raw_parts_mut(vaddr as *mut u8, len) };
            let copied = pool.read(paddr, private);
            debug_assert!(copied, "{paddr:#x} is the bounce buffer `share` made");
        }
        if let Err(e) = pool.free(paddr, len) {
            log::error!("virtio: freeing a bounce buffer at {paddr:#x}: {e}");
        }
    }
}

#[cfg(feature = "ktest")]
mod ktests {
    use super::*;
    use crate::ktest;

    ktest!(
        fn dma_share_bounces_a_private_buffer_through_the_pool() {
            let pool = pool();
            let (used_before, _) = pool.usage();
            let mut private = alloc::vec![0u8; 300];
            private
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = i as u8);
            // Device-readable: the pool copy holds the bytes.
            // SAFETY: `private` is a live heap buffer used by nobody else.
            let paddr = unsafe {
                KernelHal::share(
                    NonNull::from(private.as_mut_slice()),
                    BufferDirection::DriverToDevice,
                )
            };
            assert!(
                pool.contains(paddr, private.len()),
                "{paddr:#x} not in the pool"
            );
            let mut seen = [0u8; 300];
            assert!(pool.read(paddr, &mut seen));
            assert_eq!(seen[..], private[..]);
            // SAFETY: the same buffer and address.
            unsafe {
                KernelHal::unshare(
                    paddr,
                    NonNull::from(private.as_mut_slice()),
                    BufferDirection::DriverToDevice,
                )
            };
            // Device-writable: what the "device" writes comes back.
            // SAFETY: as above.
            let paddr = unsafe {
                KernelHal::share(
                    NonNull::from(private.as_mut_slice()),
                    BufferDirection::DeviceToDriver,
                )
            };
            assert!(pool.contains(paddr, private.len()));
            assert!(pool.write(paddr, &[0xa5; 300]));
            // SAFETY: as above.
            unsafe {
                KernelHal::unshare(
                    paddr,
                    NonNull::from(private.as_mut_slice()),
                    BufferDirection::DeviceToDriver,
                )
            };
            assert!(private.iter().all(|&b| b == 0xa5));
            assert_eq!(pool.usage().0, used_before, "bounce buffers leaked");
        }
    );

    ktest!(
        fn dma_a_pool_buffer_is_shared_in_place_and_pages_come_from_the_pool() {
            let pool = pool();
            let (paddr, vaddr) = KernelHal::dma_alloc(2, BufferDirection::Both);
            assert!(pool.contains(paddr, 8192), "{paddr:#x} not in the pool");
            assert!(paddr.is_multiple_of(PAGE_BYTES));
            let slot = NonNull::slice_from_raw_parts(vaddr, 2048);
            // SAFETY: the run was just allocated and nothing else uses it.
            let shared = unsafe { KernelHal::share(slot, BufferDirection::DeviceToDriver) };
            assert_eq!(shared, paddr, "a pool buffer is not bounced");
            // SAFETY: as above.
            unsafe { KernelHal::unshare(shared, slot, BufferDirection::DeviceToDriver) };
            // SAFETY: what `dma_alloc` returned, freed once.
            assert_eq!(unsafe { KernelHal::dma_dealloc(paddr, vaddr, 2) }, 0);
            // A second free is refused, not a corruption.
            assert!(pool.free(paddr, 8192).is_err());
        }
    );
}
