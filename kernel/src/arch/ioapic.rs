//! The I/O APIC at its standard address (0xfec0_0000, as on QEMU's `microvm`,
//! `pc` and `q35`): just enough to route one device interrupt line (a GSI)
//! to a vector on this CPU.
//!
//! Registers are reached indirectly: write the register number to IOREGSEL
//! (offset 0x00), then read or write IOWIN (offset 0x10). Redirection entry
//! `n` is the register pair `0x10 + 2n` (low) and `0x11 + 2n` (high).

use x86_64::instructions::interrupts::without_interrupts;

use crate::platform::mmio::{self, DeviceRegisters};

/// The I/O APIC's physical register base.
pub const IOAPIC_PADDR: u64 = 0xfec0_0000;
const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION: u32 = 0x10;
/// Redirection entry bits: level-triggered, masked.
const LEVEL_TRIGGERED: u32 = 1 << 15;
const MASKED: u32 = 1 << 16;

/// The registers (mapped by [`init`]).
static REGS: spin::Once<DeviceRegisters> = spin::Once::new();

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

// IOREGSEL and IOWIN are 32-bit registers in the page `init` mapped.
// Interrupts are off so the select/access pair is not split by a handler
// using the I/O APIC.
fn read(regs: &DeviceRegisters, reg: u32) -> u32 {
    without_interrupts(|| {
        regs.write32(IOREGSEL, reg);
        regs.read32(IOWIN)
    })
}

fn write(regs: &DeviceRegisters, reg: u32, value: u32) {
    without_interrupts(|| {
        regs.write32(IOREGSEL, reg);
        regs.write32(IOWIN, value);
    });
}

/// Maps the registers (once) and returns them with the number of
/// redirection entries.
fn init() -> Result<(&'static DeviceRegisters, u32), RouteError> {
    let regs = match REGS.get() {
        Some(r) => r,
        None => {
            let r = mmio::map_registers(IOAPIC_PADDR, crate::mm::PAGE_BYTES)
                .map_err(|_| RouteError::NotMapped)?;
            REGS.call_once(|| r)
        }
    };
    let version = read(regs, REG_VERSION);
    if version == u32::MAX {
        return Err(RouteError::Absent);
    }
    Ok((regs, ((version >> 16) & 0xff) + 1))
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
    let (regs, lines) = init()?;
    if gsi >= lines {
        return Err(RouteError::NoSuchLine(gsi));
    }
    let reg = REG_REDIRECTION + 2 * gsi;
    write(regs, reg, MASKED);
    write(regs, reg + 1, super::apic::id() << 24);
    write(regs, reg, low);
    Ok(())
}

/// Masks line `gsi` again.
pub fn mask(gsi: u32) {
    if let Some(regs) = REGS.get() {
        write(regs, REG_REDIRECTION + 2 * gsi, MASKED);
    }
}
