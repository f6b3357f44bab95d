//! The bits a confidential VM adds to the physical address in a page-table
//! entry: SEV-SNP's C-bit on every private page, TDX's shared bit on every
//! page shared with the host (`platform::PteMasks`; both 0 natively).
//!
//! Every entry the kernel writes goes through [`private`] or [`shared`],
//! and every address it reads back from an entry (or from CR3) through
//! [`strip`], so the tables walk and free the right frames whatever the
//! platform. The masks are set once at boot ([`init`]), before the kernel
//! tables are built; the boot tables (`arch::boot`) predate them and carry
//! none (see docs/CVM.md).

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::PhysAddr;
use x86_64::structures::paging::page_table::PageTableEntry;

/// OR-ed into private mappings.
static PRIVATE: AtomicU64 = AtomicU64::new(0);
/// OR-ed into shared mappings.
static SHARED: AtomicU64 = AtomicU64::new(0);

/// Sets the masks (from the platform backend). Call once, before
/// `paging::init`.
pub fn init(private: u64, shared: u64) {
    PRIVATE.store(private, Ordering::Relaxed);
    SHARED.store(shared, Ordering::Relaxed);
}

/// The masks in use: (private, shared).
pub fn masks() -> (u64, u64) {
    (
        PRIVATE.load(Ordering::Relaxed),
        SHARED.load(Ordering::Relaxed),
    )
}

/// `paddr` as an entry of a private (guest-owned, encrypted) page holds it.
pub fn private(paddr: u64) -> PhysAddr {
    PhysAddr::new(strip(paddr) | PRIVATE.load(Ordering::Relaxed))
}

/// `paddr` as an entry of a page shared with the host holds it.
pub fn shared(paddr: u64) -> PhysAddr {
    PhysAddr::new(strip(paddr) | SHARED.load(Ordering::Relaxed))
}

/// The physical address in an entry's (or CR3's) address field, without
/// the encryption and shared bits.
pub fn strip(addr: u64) -> u64 {
    addr & !(PRIVATE.load(Ordering::Relaxed) | SHARED.load(Ordering::Relaxed))
}

/// The frame an entry points to.
pub fn frame_of(entry: &PageTableEntry) -> u64 {
    strip(entry.addr().as_u64())
}
