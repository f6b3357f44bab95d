//! The I/O APIC at its standard address (0xfec0_0000, as on QEMU's `microvm`,
//! `pc` and `q35`): just enough to route one device interrupt line (a GSI)
//! to a vector on this CPU.
//!
//! Registers are reached indirectly: write the register number to IOREGSEL
//! (offset 0x00), then read or write IOWIN (offset 0x10). Redirection entry
//! `n` is the register pair `0x10 + 2n` (low) and `0x11 + 2n` (high).

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::interrupts::without_interrupts;

/// The I/O APIC's physical register base.
pub const IOAPIC_PADDR: u64 = 0xfec0_0000;
const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION: u32 = 0x10;
/// Redirection entry bits: level-triggered, masked.
const LEVEL_TRIGGERED: u32 = 1 << 15;
const MASKED: u32 = 1 << 16;

/// Virtual address of the registers (0 until [`init`]).
static BASE: AtomicU64 = AtomicU64::new(0);

/// Why a line cannot be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// The registers could not be mapped.
    NotMapped,
    /// No I/O APIC answers at the standard address.
    Absent,
    /// The I/O APIC has fewer pins than the line number.
    NoSuchLine(u32),
}

fn read(reg: u32) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: `base` maps the I/O APIC's register page uncached (`init`);
    // IOREGSEL and IOWIN are 32-bit registers in it. Interrupts are off so
    // the select/access pair is not split by a handler using the I/O APIC.
    without_interrupts(|| unsafe {
        ((base + IOREGSEL) as *mut u32).write_volatile(reg);
        ((base + IOWIN) as *const u32).read_volatile()
    })
}

fn write(reg: u32, value: u32) {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: as in `read`.
    without_interrupts(|| unsafe {
        ((base + IOREGSEL) as *mut u32).write_volatile(reg);
        ((base + IOWIN) as *mut u32).write_volatile(value);
    });
}

/// Maps the registers (once) and returns the number of redirection entries.
fn init() -> Result<u32, RouteError> {
    if BASE.load(Ordering::Relaxed) == 0 {
        let v = match crate::mm::paging::map_mmio(IOAPIC_PADDR, crate::mm::PAGE_BYTES) {
            Ok(v) => v,
            Err(crate::mm::paging::MapError::AlreadyMapped(_)) => {
                crate::mm::phys_to_virt(IOAPIC_PADDR)
            }
            Err(_) => return Err(RouteError::NotMapped),
        };
        BASE.store(v, Ordering::Relaxed);
    }
    let version = read(REG_VERSION);
    if version == u32::MAX {
        return Err(RouteError::Absent);
    }
    Ok(((version >> 16) & 0xff) + 1)
}

/// Routes line `gsi` to `vector` on this CPU, level-triggered and active
/// high (virtio-mmio's line stays raised until the interrupt is
/// acknowledged at the device), unmasked.
pub fn route_level(gsi: u32, vector: u8) -> Result<(), RouteError> {
    route(gsi, LEVEL_TRIGGERED | u32::from(vector))
}

/// Routes ISA line `gsi` to `vector` on this CPU, edge-triggered and
/// active high (ISA devices such as the 16550 UARTs raise an edge per
/// event), unmasked.
pub fn route_edge(gsi: u32, vector: u8) -> Result<(), RouteError> {
    route(gsi, u32::from(vector))
}

/// Writes line `gsi`'s redirection entry: `low` (vector and mode) for
/// this CPU, unmasked.
fn route(gsi: u32, low: u32) -> Result<(), RouteError> {
    let lines = init()?;
    if gsi >= lines {
        return Err(RouteError::NoSuchLine(gsi));
    }
    let reg = REG_REDIRECTION + 2 * gsi;
    write(reg, MASKED);
    write(reg + 1, super::apic::id() << 24);
    write(reg, low);
    Ok(())
}

/// Masks line `gsi` again.
pub fn mask(gsi: u32) {
    if BASE.load(Ordering::Relaxed) != 0 {
        write(REG_REDIRECTION + 2 * gsi, MASKED);
    }
}
