//! Device registers: mapping them the way the platform wants
//! ([`map_registers`]) and reaching them ([`DeviceRegisters`]).
//!
//! Each register range is mapped twice:
//!
//! - at its direct-map address (`mm::phys_to_virt`), which drivers use —
//!   present and uncached when the platform says [`MmioAccess::Mapped`]
//!   (with the shared mask on a CVM, where the access then raises
//!   `#VC`/`#VE`), *not present* when it says [`MmioAccess::Trapped`], so
//!   every access page-faults and is emulated (the page-fault path decodes
//!   the instruction);
//! - in the platform's own window ([`window_address`]), present and
//!   uncached, which only [`super::Platform::mmio_read`]/`mmio_write` of
//!   the native backend use to perform an emulated access.
//!
//! The ranges are recorded, so the fault handler can tell a device access
//! from a wild pointer and the window is never used outside a device.

use core::ptr::NonNull;

use spin::RwLock;
use x86_64::instructions::interrupts::without_interrupts;

use super::{MmioAccess, PlatformError, Width, platform};
use crate::mm::{self, PAGE_BYTES, paging};

/// Where the platform's own window of device registers starts: physical
/// address `p` is at `MMIO_WINDOW_BASE + p` (below the kernel image, above
/// the stacks region).
pub const MMIO_WINDOW_BASE: u64 = 0xffff_d000_0000_0000;
/// Physical addresses the window covers (64 TiB).
const MMIO_WINDOW_BYTES: u64 = 1 << 46;
/// Device ranges remembered (QEMU's microvm has 8 virtio-mmio transports in
/// two pages, the local APIC and the I/O APIC).
const MAX_RANGES: usize = 16;

/// A page-aligned physical range of device registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: u64,
    end: u64,
}

static RANGES: RwLock<[Option<Range>; MAX_RANGES]> = RwLock::new([None; MAX_RANGES]);

/// Why registers could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapRegistersError {
    /// The page tables refused (out of frames, or RAM is mapped there).
    Map(paging::MapError),
    /// The range is empty, wraps, or lies beyond the window.
    BadRange,
    /// More device ranges than [`MAX_RANGES`].
    TooMany,
}

/// Registers `[paddr, paddr + bytes)` of a device, mapped for drivers.
#[derive(Debug, Clone, Copy)]
pub struct DeviceRegisters {
    paddr: u64,
    vaddr: u64,
    bytes: u64,
}

fn registered(start: u64, end: u64) -> bool {
    RANGES
        .read()
        .iter()
        .flatten()
        .any(|r| r.start <= start && end <= r.end)
}

/// Maps device registers `[paddr, paddr + bytes)` (see the module docs)
/// and returns them. Mapping a range that is already mapped (transports
/// sharing a page) is fine.
pub fn map_registers(paddr: u64, bytes: u64) -> Result<DeviceRegisters, MapRegistersError> {
    let end = paddr
        .checked_add(bytes)
        .filter(|&e| bytes > 0 && e <= MMIO_WINDOW_BYTES)
        .ok_or(MapRegistersError::BadRange)?;
    let start = paddr & !(PAGE_BYTES - 1);
    let end = end.next_multiple_of(PAGE_BYTES);
    let regs = DeviceRegisters {
        paddr,
        vaddr: mm::phys_to_virt(paddr),
        bytes,
    };
    without_interrupts(|| {
        let mut ranges = RANGES.write();
        let mut p = start;
        while p < end {
            let page_known = ranges.iter().flatten().any(|r| r.start <= p && p < r.end);
            if !page_known {
                paging::map_device_page(MMIO_WINDOW_BASE + p, p).map_err(MapRegistersError::Map)?;
                if platform().mmio_access() == MmioAccess::Mapped {
                    paging::map_device_page(mm::phys_to_virt(p), p)
                        .map_err(MapRegistersError::Map)?;
                }
                let slot = ranges
                    .iter_mut()
                    .find(|r| r.is_none())
                    .ok_or(MapRegistersError::TooMany)?;
                *slot = Some(Range {
                    start: p,
                    end: p + PAGE_BYTES,
                });
            }
            p += PAGE_BYTES;
        }
        Ok(regs)
    })
}

/// The physical device-register address behind direct-map address
/// `vaddr`, if it lies in a mapped device range (for the fault handler).
pub fn device_paddr(vaddr: u64) -> Option<u64> {
    let paddr = vaddr.checked_sub(mm::PHYS_OFFSET)?;
    registered(paddr, paddr.checked_add(1)?).then_some(paddr)
}

/// The window address of the `width`-byte register at `paddr`, for the
/// native backend's emulated accesses: it must lie in a mapped device range
/// and be naturally aligned.
pub fn window_address(paddr: u64, width: Width) -> Result<u64, PlatformError> {
    let bytes = width.bytes() as u64;
    let end = paddr
        .checked_add(bytes)
        .ok_or(PlatformError::InvalidArgument)?;
    if !paddr.is_multiple_of(bytes) || !registered(paddr, end) {
        return Err(PlatformError::InvalidArgument);
    }
    Ok(MMIO_WINDOW_BASE + paddr)
}

impl DeviceRegisters {
    /// Physical address of the first register.
    pub fn paddr(&self) -> u64 {
        self.paddr
    }

    /// Bytes of registers.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The address drivers access the registers at (for a driver crate
    /// that does its own volatile accesses, such as `virtio-drivers`).
    pub fn as_ptr(&self) -> NonNull<u8> {
        NonNull::new(self.vaddr as *mut u8).expect("the direct map is not at 0")
    }

    fn reg_address(&self, offset: u64, width: Width) -> u64 {
        let bytes = width.bytes() as u64;
        assert!(
            offset.is_multiple_of(bytes) && offset + bytes <= self.bytes,
            "register offset {offset:#x} outside {} bytes of registers",
            self.bytes
        );
        self.vaddr + offset
    }

    /// Reads the register of `T`'s width at `offset`.
    fn read<T: Register>(&self, offset: u64) -> T {
        let vaddr = self.reg_address(offset, T::WIDTH);
        // SAFETY: `vaddr` is a naturally aligned register of `T`'s width
        // inside the range `map_registers` mapped for this device (or left
        // to trap, in which case the fault handler performs the access);
        // registers are not Rust objects, so nothing is aliased.
        unsafe { (vaddr as *const T).read_volatile() }
    }

    /// Writes the register of `T`'s width at `offset`.
    fn write<T: Register>(&self, offset: u64, value: T) {
        let vaddr = self.reg_address(offset, T::WIDTH);
        // SAFETY: as in `read`.
        unsafe { (vaddr as *mut T).write_volatile(value) }
    }

    /// Reads the 32-bit register at `offset`.
    pub fn read32(&self, offset: u64) -> u32 {
        self.read(offset)
    }

    /// Writes the 32-bit register at `offset`.
    pub fn write32(&self, offset: u64, value: u32) {
        self.write(offset, value)
    }

    /// Reads the 16-bit register at `offset`.
    pub fn read16(&self, offset: u64) -> u16 {
        self.read(offset)
    }

    /// Writes the 16-bit register at `offset`.
    pub fn write16(&self, offset: u64, value: u16) {
        self.write(offset, value)
    }

    /// Reads the 8-bit register at `offset`.
    pub fn read8(&self, offset: u64) -> u8 {
        self.read(offset)
    }

    /// Writes the 8-bit register at `offset`.
    pub fn write8(&self, offset: u64, value: u8) {
        self.write(offset, value)
    }
}

/// A register value type and its access width.
trait Register: Copy {
    const WIDTH: Width;
}

impl Register for u8 {
    const WIDTH: Width = Width::U8;
}

impl Register for u16 {
    const WIDTH: Width = Width::U16;
}

impl Register for u32 {
    const WIDTH: Width = Width::U32;
}
