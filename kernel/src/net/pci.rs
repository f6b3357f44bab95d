//! Finding a virtio card on PCI: QEMU's `q35` and `pc` machines (the ones
//! SEV-SNP and TDX guests run on) have no virtio-mmio, so the card is a
//! `virtio-net-pci` function there, found on bus 0 through configuration
//! space ([`crate::platform::pci::PortCam`]) and driven through
//! `virtio-drivers`' modern (virtio 1.0) PCI transport.
//!
//! The firmware (SeaBIOS) has assigned the BARs and written the legacy
//! interrupt line before the PVH entry; [`open`] maps every memory BAR of
//! the function through the platform first — so that a BAR the platform
//! refuses (RAM, out of range) leaves the card unused instead of failing
//! inside `virtio-drivers`' mapping callback — turns on memory decoding
//! and bus mastering (the card's DMA), and opens the transport. Its
//! interrupt is the INTx line the firmware routed (`q35`'s PIRQ routing
//! raises the same I/O APIC input as the 8259 line it writes to the
//! interrupt-line register), level-triggered; MSI-X stays off, since the
//! transport leaves every queue's MSI-X vector unset.
//!
//! Only bus 0 is scanned: a card behind a PCIe root port or bridge is not
//! found (`-device virtio-net-pci` without `bus=` sits on bus 0).

use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::pci::bus::{Command, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::{PciTransport, virtio_device_type};

use super::hal::KernelHal;
use crate::platform::mmio;
use crate::platform::pci::PortCam;

/// The interrupt line and pin register.
const REG_INTERRUPT: u8 = 0x3c;
/// Largest BAR mapped (virtio-net-pci's are 4 and 16 KiB).
const MAX_BAR_BYTES: u64 = 1 << 20;

/// A virtio function found on PCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciDevice {
    /// Bus, device and function.
    pub function: DeviceFunction,
    /// The I/O APIC input of its INTx line, if the firmware routed one.
    pub irq: Option<u32>,
}

impl core::fmt::Display for PciDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PCI {}", self.function)
    }
}

/// The interrupt line the firmware wrote for a function whose interrupt
/// pin is INTA–INTD; `None` for no pin or an unrouted line (0 or 0xff).
pub fn interrupt_line(line_pin: u32) -> Option<u32> {
    let line = line_pin & 0xff;
    let pin = (line_pin >> 8) & 0xff;
    ((1..=4).contains(&pin) && line != 0 && line != 0xff).then_some(line)
}

/// The first function on bus 0 that holds a virtio device of `kind` and
/// opens; functions that do not (unassigned or unmappable BARs, missing
/// capabilities) are logged and skipped.
pub fn find(kind: DeviceType) -> Option<(PciTransport, PciDevice)> {
    let mut root = PciRoot::new(PortCam);
    let functions: alloc::vec::Vec<DeviceFunction> = root
        .enumerate_bus(0)
        .filter(|(_, info)| virtio_device_type(info) == Some(kind))
        .map(|(df, _)| df)
        .collect();
    functions
        .into_iter()
        .find_map(|df| match open(&mut root, df) {
            Ok(found) => Some(found),
            Err(why) => {
                log::warn!("virtio-pci {df}: {why}: not used");
                None
            }
        })
}

/// Maps `df`'s memory BARs, enables it and opens its transport.
fn open(
    root: &mut PciRoot<PortCam>,
    df: DeviceFunction,
) -> Result<(PciTransport, PciDevice), alloc::string::String> {
    let bars = root
        .bars(df)
        .map_err(|e| alloc::format!("its BARs cannot be read ({e})"))?;
    for (i, bar) in bars.iter().enumerate() {
        let Some((paddr, bytes)) = bar.as_ref().and_then(|b| b.memory_address_size()) else {
            continue;
        };
        if paddr == 0 {
            // Unassigned: the transport refuses it if a capability needs it.
            continue;
        }
        if bytes == 0 || bytes > MAX_BAR_BYTES {
            return Err(alloc::format!("BAR{i} of {bytes} bytes"));
        }
        mmio::map_registers(paddr, bytes)
            .map_err(|e| alloc::format!("BAR{i} at {paddr:#x} cannot be mapped ({e:?})"))?;
    }
    let (_, command) = root.get_status_command(df);
    root.set_command(df, command | Command::MEMORY_SPACE | Command::BUS_MASTER);
    let transport = PciTransport::new::<KernelHal, _>(root, df)
        .map_err(|e| alloc::format!("no virtio transport ({e})"))?;
    let line_pin = {
        use virtio_drivers::transport::pci::bus::ConfigurationAccess;
        PortCam.read_word(df, REG_INTERRUPT)
    };
    Ok((
        transport,
        PciDevice {
            function: df,
            irq: interrupt_line(line_pin),
        },
    ))
}

#[cfg(feature = "ktest")]
mod ktests {
    use super::interrupt_line;
    use crate::ktest;

    ktest!(
        fn pci_interrupt_line_needs_a_pin_and_a_routed_line() {
            assert_eq!(interrupt_line(0x0000_010b), Some(11));
            assert_eq!(interrupt_line(0x0000_040a), Some(10));
            assert_eq!(interrupt_line(0x0000_000b), None, "no pin");
            assert_eq!(interrupt_line(0x0000_0500), None, "pin 5 is not INTx");
            assert_eq!(interrupt_line(0x0000_0100), None, "line 0: unrouted");
            assert_eq!(interrupt_line(0x0000_01ff), None, "line 0xff: unrouted");
            assert_eq!(interrupt_line(u32::MAX), None, "no function");
        }
    );
}
