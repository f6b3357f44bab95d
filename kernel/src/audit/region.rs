//! Where the audit ring lives, chosen at boot before the frame allocator
//! exists:
//!
//! 1. QEMU's `ivshmem-plain` device, when present (found through PCI, see
//!    [`crate::platform::pci`]): its BAR2 *is* the host's `memory-backend-file`, so the
//!    host reads the ring from that file after the guest dies. The BAR is
//!    mapped at its direct-map address, RW+NX, supervisor-only.
//! 2. Otherwise, with `audit=SIZE` on the command line, `SIZE` bytes of RAM
//!    taken out of the usable map *before* the frame allocator is built, so
//!    it never hands a frame of the region out; the region is reached
//!    through the kernel's direct map (RW+NX, supervisor-only) and nothing
//!    maps it for applications (user pages come from the frame allocator).
//! 3. Otherwise auditing is off.

use core::sync::atomic::{AtomicBool, Ordering};

use libos::boot::cmdline::KernelArgs;
use libos::boot::memmap::MemoryMap;

use crate::mm::{self, PAGE_BYTES, STACKS_BASE, paging, phys_to_virt};
use crate::platform::pci::{self, BarError, Function};

/// The smallest region accepted (the `audit` crate needs 4 KiB + 2 blocks;
/// less than this is not a useful log).
pub const MIN_REGION_BYTES: u64 = 64 << 10;

/// What backs the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `ivshmem-plain` device at this PCI function.
    Ivshmem(Function),
    /// RAM reserved from the memory map (`audit=SIZE`).
    Ram,
}

/// The physical region the ring is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub paddr: u64,
    /// Length in bytes (a multiple of the page size).
    pub region_bytes: u64,
    /// What backs it.
    pub source: Source,
}

impl Region {
    /// Whether physical address `paddr` lies in the region.
    pub fn contains(&self, paddr: u64) -> bool {
        paddr >= self.paddr && paddr - self.paddr < self.region_bytes
    }
}

/// Chooses the region (see the module docs) and, for RAM, removes it from
/// `usable`. Call before the frame allocator is built from `usable`.
pub fn reserve(args: &KernelArgs<'_>, usable: &mut MemoryMap) -> Option<Region> {
    let size = match args.audit_region_bytes() {
        Ok(size) => size,
        Err(e) => {
            log::warn!(
                "audit: ignoring {}={}: expected {}",
                e.key,
                e.value,
                e.expected
            );
            None
        }
    };
    if let Some(region) = ivshmem() {
        if let Some(size) = size {
            log::info!(
                "audit: audit={size} ignored: the ivshmem device's {} bytes are used",
                region.region_bytes
            );
        }
        return Some(region);
    }
    let size = size?;
    if size < MIN_REGION_BYTES {
        log::warn!("audit: audit={size} is below the 64 KiB minimum: auditing is off");
        return None;
    }
    match usable.take_below(size, u64::MAX) {
        Some(paddr) => Some(Region {
            paddr,
            region_bytes: size.next_multiple_of(PAGE_BYTES),
            source: Source::Ram,
        }),
        None => {
            log::warn!("audit: no {size} bytes of free RAM for the audit region: auditing is off");
            None
        }
    }
}

/// The ivshmem device's shared memory, if there is a usable one.
fn ivshmem() -> Option<Region> {
    let (function, bar) = pci::find_ivshmem()?;
    let bar = match bar {
        Ok(bar) => bar,
        Err(e) => {
            let why = match e {
                BarError::NotMemory64 => "is not a 64-bit memory BAR",
                BarError::Unassigned => "has no address (no firmware assigned one)",
            };
            log::warn!("audit: ivshmem at {function}: BAR2 {why}: not used");
            return None;
        }
    };
    let direct_map_limit = STACKS_BASE - phys_to_virt(0);
    let fits = bar
        .paddr
        .checked_add(bar.bytes)
        .is_some_and(|end| end <= direct_map_limit);
    if bar.bytes < MIN_REGION_BYTES || !fits || !bar.paddr.is_multiple_of(PAGE_BYTES) {
        log::warn!(
            "audit: ivshmem at {function}: BAR2 of {} bytes at {:#x} is unusable (too small or too high)",
            bar.bytes,
            bar.paddr
        );
        return None;
    }
    Some(Region {
        paddr: bar.paddr,
        region_bytes: bar.bytes,
        source: Source::Ivshmem(function),
    })
}

/// Set once the region has been handed out as a `&'static mut`.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Why the region could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapRegionError {
    /// Already handed out.
    Taken,
    /// The page tables refused (out of frames, or it overlaps a mapping).
    Map(paging::MapError),
    /// Larger than the address space.
    TooLarge,
    /// The hardware layer refused to hand the range out.
    Claim(mm::reserved::ClaimError),
}

/// Maps the region (RAM: already in the direct map; ivshmem: its BAR, at
/// its direct-map address, RW+NX, supervisor-only, write-back) and returns
/// it as bytes. Call once, after the kernel page tables are built.
pub fn map(region: &Region) -> Result<&'static mut [u8], MapRegionError> {
    usize::try_from(region.region_bytes).map_err(|_| MapRegionError::TooLarge)?;
    if TAKEN.swap(true, Ordering::AcqRel) {
        return Err(MapRegionError::Taken);
    }
    if let Source::Ivshmem(_) = region.source {
        let mut p = region.paddr;
        while p < region.paddr + region.region_bytes {
            paging::map_page(phys_to_virt(p), p, paging::DATA).map_err(MapRegionError::Map)?;
            p += PAGE_BYTES;
        }
    }
    // The region lies outside the frame allocator's memory (RAM was
    // removed from the usable map before the allocator was built; the BAR
    // is device memory) and is now mapped RW at its direct-map address.
    mm::reserved::claim_mut(region.paddr, region.region_bytes).map_err(MapRegionError::Claim)
}
