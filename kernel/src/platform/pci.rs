//! PCI configuration space through the legacy ports 0xCF8/0xCFC (present
//! on `pc` and `q35`; on `microvm`, which has no PCI, every read returns all
//! ones and nothing is found), through the seam's port I/O (a `#VC`/`#VE`
//! exit on SEV-SNP and TDX):
//!
//! - [`find`] and [`memory_bar64`]: just enough to find QEMU's
//!   `ivshmem-plain` device on bus 0 and size one 64-bit memory BAR (the
//!   audit region, `crate::audit::region`);
//! - [`PortCam`]: the same registers as `virtio-drivers` reads them, for
//!   the virtio-net card on PCI (`crate::net::pci`).
//!
//! `ivshmem-plain` (vendor 0x1af4, device 0x1110) exposes its shared memory
//! — the host's `memory-backend-file` — as BAR2, a 64-bit prefetchable
//! memory BAR. The firmware (SeaBIOS) assigns its address before the PVH
//! entry; this module only reads it, sizes it and makes sure memory decoding
//! is on.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};

use super::port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

/// Red Hat / virtio vendor id, as QEMU's ivshmem uses.
pub const IVSHMEM_VENDOR: u16 = 0x1af4;
/// `ivshmem-plain` (and `ivshmem-doorbell`) device id.
pub const IVSHMEM_DEVICE: u16 = 0x1110;
/// The BAR holding the shared memory.
const IVSHMEM_SHM_BAR: u8 = 2;

const REG_ID: u8 = 0x00;
const REG_COMMAND: u8 = 0x04;
const REG_HEADER_TYPE: u8 = 0x0c;
const REG_BAR0: u8 = 0x10;
const COMMAND_MEMORY: u32 = 1 << 1;

/// A PCI function on bus 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// Device number (0..32).
    pub device: u8,
    /// Function number (0..8).
    pub function: u8,
}

impl core::fmt::Display for Function {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "00:{:02x}.{}", self.device, self.function)
    }
}

/// A memory BAR's placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBar {
    /// Physical address assigned by the firmware (0 if unassigned).
    pub paddr: u64,
    /// Size in bytes (a power of two).
    pub bytes: u64,
}

/// CONFIG_ADDRESS for a register of bus `bus`, device `device` (its low
/// five bits), function `function` (its low three bits).
fn bdf_address(bus: u8, device: u8, function: u8, offset: u8) -> u32 {
    (1 << 31)
        | (u32::from(bus) << 16)
        | (u32::from(device & 0x1f) << 11)
        | (u32::from(function & 0x7) << 8)
        | u32::from(offset & 0xfc)
}

/// `f` as `virtio-drivers` names a function.
fn on_bus0(f: Function) -> DeviceFunction {
    DeviceFunction {
        bus: 0,
        device: f.device,
        function: f.function,
    }
}

fn read32(f: Function, offset: u8) -> u32 {
    PortCam.read_word(on_bus0(f), offset)
}

fn write32(f: Function, offset: u8, value: u32) {
    // Callers write only the command register and the BARs of the ivshmem
    // function they own, restoring the BARs after sizing.
    PortCam.write_word(on_bus0(f), offset, value);
}

/// The first function on bus 0 with this vendor and device id.
pub fn find(vendor: u16, device: u16) -> Option<Function> {
    let want = u32::from(vendor) | (u32::from(device) << 16);
    for dev in 0..32 {
        let f0 = Function {
            device: dev,
            function: 0,
        };
        let id = read32(f0, REG_ID);
        if id & 0xffff == 0xffff {
            continue;
        }
        if id == want {
            return Some(f0);
        }
        let multi = read32(f0, REG_HEADER_TYPE) & (0x80 << 16) != 0;
        if multi {
            for func in 1..8 {
                let f = Function {
                    device: dev,
                    function: func,
                };
                if read32(f, REG_ID) == want {
                    return Some(f);
                }
            }
        }
    }
    None
}

/// Why a BAR cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarError {
    /// It is an I/O BAR or a 32-bit memory BAR.
    NotMemory64,
    /// The firmware left it unassigned.
    Unassigned,
}

/// Reads and sizes 64-bit memory BAR `bar` of `f`, and enables memory
/// decoding.
pub fn memory_bar64(f: Function, bar: u8) -> Result<MemoryBar, BarError> {
    let lo_reg = REG_BAR0 + 4 * bar;
    let hi_reg = lo_reg + 4;
    let lo = read32(f, lo_reg);
    // Bit 0: I/O space; bits 2:1 = 0b10: 64-bit.
    if lo & 1 != 0 || (lo >> 1) & 3 != 2 {
        return Err(BarError::NotMemory64);
    }
    let hi = read32(f, hi_reg);
    let paddr = (u64::from(hi) << 32) | u64::from(lo & !0xf);

    // Size it: with decoding off, write all ones and read back the mask.
    let command = read32(f, REG_COMMAND);
    write32(f, REG_COMMAND, command & !COMMAND_MEMORY);
    write32(f, lo_reg, u32::MAX);
    write32(f, hi_reg, u32::MAX);
    let mask = (u64::from(read32(f, hi_reg)) << 32) | u64::from(read32(f, lo_reg) & !0xf);
    write32(f, lo_reg, lo);
    write32(f, hi_reg, hi);
    write32(f, REG_COMMAND, command | COMMAND_MEMORY);
    let bytes = (!mask).wrapping_add(1);
    if paddr == 0 || bytes == 0 {
        return Err(BarError::Unassigned);
    }
    Ok(MemoryBar { paddr, bytes })
}

/// The ivshmem device's shared memory: its function and BAR2.
pub fn find_ivshmem() -> Option<(Function, Result<MemoryBar, BarError>)> {
    let f = find(IVSHMEM_VENDOR, IVSHMEM_DEVICE)?;
    Some((f, memory_bar64(f, IVSHMEM_SHM_BAR)))
}

/// Configuration space through the legacy ports (any bus; 256 bytes per
/// function), for this module and `virtio-drivers`' `PciRoot`.
///
/// Selecting a register with CONFIG_ADDRESS and reading CONFIG_DATA has
/// no effect beyond the read. Without a PCI host bridge the ports are
/// unassigned and read as all ones. One CPU probes devices at boot and
/// nothing else uses the port pair meanwhile, so a select and its data
/// access are not interleaved.
#[derive(Debug)]
pub struct PortCam;

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, register_offset: u8) -> u32 {
        port::write_u32(
            CONFIG_ADDRESS,
            bdf_address(df.bus, df.device, df.function, register_offset),
        );
        port::read_u32(CONFIG_DATA)
    }

    fn write_word(&mut self, df: DeviceFunction, register_offset: u8, data: u32) {
        port::write_u32(
            CONFIG_ADDRESS,
            bdf_address(df.bus, df.device, df.function, register_offset),
        );
        port::write_u32(CONFIG_DATA, data);
    }

    unsafe fn unsafe_clone(&self) -> Self {
        // The ports are global; a second handle adds no state.
        Self
    }
}
