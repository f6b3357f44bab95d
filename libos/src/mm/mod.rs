//! Memory management: the process address space as the LibOS keeps it.
//!
//! - [`vma`]: [`Vma`], one area (range, permissions, sharing, backing,
//!   name), splitting and merging, and its `/proc/self/maps` line.
//! - [`vm`]: [`Vm`], the sorted area map, `brk` state and the top-down
//!   `mmap` placement Linux uses without address randomisation.
//! - [`ops`]: the operations that change both the [`Vm`] and the page
//!   tables through the platform's
//!   [`AddressSpace`](crate::platform::AddressSpace): map, unmap,
//!   protect, `brk`, `madvise(MADV_DONTNEED)`, `mremap`, and
//!   [`handle_page_fault`] for pages not yet present (stack growth).
//! - [`commit`]: commit accounting — which areas are charged and when a
//!   charge is refused with `ENOMEM` (the rule `malloc` meets near the
//!   limit).
//! - [`load`]: [`load_image`], which materialises an
//!   [`exec::ProcessImage`](crate::exec::ProcessImage) at `execve`.
//!
//! The syscalls (`brk`, `mmap`, `munmap`, `mprotect`, …) decode and
//! validate their arguments in `crate::syscall::mm` and call [`ops`].
//! Every operation holds the process's `vm` lock while it changes page
//! tables, so the area map and the page tables agree for other threads.

pub mod commit;
pub mod load;
pub mod ops;
pub mod range_set;
pub mod vm;
pub mod vma;

pub use load::{STACK_PRESENT_BYTES, load_image};
pub use ops::{FaultAccess, Placement, handle_page_fault};
pub use vm::Vm;
pub use vma::{Backing, SharedObject, Vma, VmaName};

use crate::elf::PAGE_SIZE;

/// Lowest address `mmap` hands out or accepts with `MAP_FIXED` (Linux's
/// default `vm.mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;

/// `addr` rounded up to a page (`None` on overflow).
pub const fn page_up(addr: u64) -> Option<u64> {
    match addr.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & !(PAGE_SIZE - 1)),
        None => None,
    }
}

/// The stack reservation: the process's `RLIMIT_STACK` soft limit in
/// bytes, kept between 128 KiB and 1 GiB (the whole reservation is one
/// area, so an unlimited stack cannot be reserved whole).
pub(crate) fn rlimit_stack_bytes(process: &crate::process::Process) -> u64 {
    let soft = process
        .rlimits
        .lock()
        .get(crate::rlimit::RLIMIT_STACK as u32)
        .map_or(8 << 20, |l| l.soft);
    soft.clamp(128 << 10, 1 << 30) & !(PAGE_SIZE - 1)
}

/// Whether `addr` is page aligned.
pub const fn is_page_aligned(addr: u64) -> bool {
    addr.is_multiple_of(PAGE_SIZE)
}

#[cfg(test)]
mod tests;
