//! Kernel memory management: the virtual layout, the physical frame
//! allocator, the kernel page tables, guarded stacks, the heap and the
//! reserved ranges handed out once ([`reserved`]: the initramfs, the audit
//! region).
//!
//! Virtual layout (48-bit, 4-level paging):
//!
//! ```text
//! 0x0000_0000_0000_0000 ..                 user space (the application)
//! 0xffff_8000_0000_0000 .. PHYS_OFFSET     direct map of all RAM, RW+NX
//!                                          (kernel image frames: R+NX)
//! 0xffff_c000_0000_0000 .. STACKS_BASE     kernel stacks, each with an
//!                                          unmapped guard page below
//! 0xffff_ffff_8000_0000 .. KERNEL_VIRT     the kernel image: text RX,
//!                                          rodata R+NX, data/bss RW+NX
//! ```

pub mod frames;
pub mod heap;
#[cfg(feature = "ktest")]
mod ktests;
pub mod paging;
pub mod pte;
pub mod reserved;
pub mod stack;
pub mod user;
#[cfg(feature = "ktest")]
mod user_ktests;

/// Where all of physical memory is mapped.
pub const PHYS_OFFSET: u64 = 0xffff_8000_0000_0000;
/// Where kernel stacks are allocated.
pub const STACKS_BASE: u64 = 0xffff_c000_0000_0000;
/// The kernel's link address minus its physical load address.
pub const KERNEL_VIRT: u64 = 0xffff_ffff_8000_0000;
/// Bytes in a page.
pub const PAGE_BYTES: u64 = 4096;
/// Physical memory the boot page table maps (and so the limit for anything
/// read before [`paging::init`]).
pub const EARLY_MAPPED_BYTES: u64 = 4 << 30;

/// The direct-map virtual address of physical address `paddr`.
pub const fn phys_to_virt(paddr: u64) -> u64 {
    PHYS_OFFSET + paddr
}

/// Symbols from `linker.ld`, as addresses.
pub mod layout {
    unsafe extern "C" {
        static __kernel_phys_start: u8;
        static __kernel_phys_end: u8;
        static __text_start: u8;
        static __text_end: u8;
        static __rodata_start: u8;
        static __rodata_end: u8;
        static __data_start: u8;
        static __data_end: u8;
        static __boot_stack_guard: u8;
        static __boot_stack_bottom: u8;
    }

    macro_rules! addr {
        ($(#[$doc:meta] $name:ident => $sym:ident),* $(,)?) => {$(
            #[$doc]
            pub fn $name() -> u64 {
                // Taking the address of a linker symbol reads nothing.
                core::ptr::addr_of!($sym) as u64
            }
        )*};
    }

    addr! {
        /// Physical address of the first byte of the image.
        kernel_phys_start => __kernel_phys_start,
        /// Physical address one past the image (including bss and boot stack).
        kernel_phys_end => __kernel_phys_end,
        /// Start of `.text`.
        text_start => __text_start,
        /// End of `.text` (page aligned).
        text_end => __text_end,
        /// Start of read-only data.
        rodata_start => __rodata_start,
        /// End of read-only data (page aligned).
        rodata_end => __rodata_end,
        /// Start of writable data.
        data_start => __data_start,
        /// End of writable data and the boot stack.
        data_end => __data_end,
        /// The unmapped page below the boot stack.
        boot_stack_guard => __boot_stack_guard,
        /// Lowest byte of the boot stack.
        boot_stack_bottom => __boot_stack_bottom,
    }
}

/// Copies physical memory at `paddr` into `buf` through the boot page
/// table's direct map (before `paging::init`); `false` if the range lies
/// beyond what that table maps ([`EARLY_MAPPED_BYTES`]).
pub fn read_early_phys(paddr: u64, buf: &mut [u8]) -> bool {
    match paddr.checked_add(buf.len() as u64) {
        Some(end) if end <= EARLY_MAPPED_BYTES => {
            // SAFETY: the range lies below EARLY_MAPPED_BYTES, which the
            // boot page table maps at PHYS_OFFSET; reading guest RAM (or
            // unbacked space, which reads as 0xff) has no side effects.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    phys_to_virt(paddr) as *const u8,
                    buf.as_mut_ptr(),
                    buf.len(),
                );
            }
            true
        }
        _ => false,
    }
}
