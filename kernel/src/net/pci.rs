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
//! A queue notification is one register write ([`QueueNotify`]): the
//! kernel finds each queue's notification register once, where
//! `virtio-drivers`' transport selects the queue and reads its offset
//! before every notification (three device accesses, each an exit to the
//! hypervisor on SEV-SNP and TDX).
//!
//! Only bus 0 is scanned: a card behind a PCIe root port or bridge is not
//! found (`-device virtio-net-pci` without `bus=` sits on bus 0).

use libos::net::virtq::pci_notify_offset;
use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, PciRoot,
};
use virtio_drivers::transport::pci::{PciTransport, virtio_device_type};

use super::doorbell::{QUEUE_RECEIVE, QUEUE_TRANSMIT};
use super::hal::KernelHal;
use crate::platform::mmio::{self, DeviceRegisters};
use crate::platform::pci::PortCam;

/// The interrupt line and pin register.
const REG_INTERRUPT: u8 = 0x3c;
/// Largest BAR mapped (virtio-net-pci's are 4 and 16 KiB).
const MAX_BAR_BYTES: u64 = 1 << 20;
/// Vendor-specific capability: virtio's structures.
const CAP_VENDOR: u8 = 0x09;
/// `cfg_type` of the common configuration structure.
const CFG_COMMON: u8 = 1;
/// `cfg_type` of the notification structure.
const CFG_NOTIFY: u8 = 2;
/// `queue_select` and `queue_notify_off` in the common configuration.
const COMMON_QUEUE_SELECT: u64 = 0x16;
const COMMON_QUEUE_NOTIFY_OFF: u64 = 0x1e;
/// Bytes of the common configuration that must exist.
const COMMON_BYTES: u32 = 0x38;

/// The two queues' notification registers (receive, transmit), each two
/// bytes mapped on its own: a notification is the queue's index written
/// there.
#[derive(Debug, Clone, Copy)]
pub struct QueueNotify {
    regs: [DeviceRegisters; 2],
}

impl QueueNotify {
    /// Notifies the device of `queue` (0 or 1); `false` (nothing written)
    /// for another queue.
    pub fn notify(&self, queue: u16) -> bool {
        match self.regs.get(usize::from(queue)) {
            Some(reg) => {
                reg.write16(0, queue);
                true
            }
            None => false,
        }
    }
}

/// A virtio function found on PCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciDevice {
    /// Bus, device and function.
    pub function: DeviceFunction,
    /// The I/O APIC input of its INTx line, if the firmware routed one.
    pub irq: Option<u32>,
    /// Whether its queues' notification registers were found
    /// ([`QueueNotify`]).
    pub notify_direct: bool,
}

impl core::fmt::Display for PciDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let notify = if self.notify_direct {
            "one write per notification"
        } else {
            "notifications through the transport"
        };
        write!(f, "PCI {} ({notify})", self.function)
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
/// capabilities) are logged and skipped. With it, the queues'
/// notification registers, if they are where they should be (else the
/// transport notifies).
pub fn find(kind: DeviceType) -> Option<(PciTransport, PciDevice, Option<QueueNotify>)> {
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
) -> Result<(PciTransport, PciDevice, Option<QueueNotify>), alloc::string::String> {
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
    let notify = queue_notify(root, df, &bars);
    if notify.is_none() {
        log::warn!(
            "virtio-pci {df}: queue notification registers not found; the transport finds them each time"
        );
    }
    let line_pin = PortCam.read_word(df, REG_INTERRUPT);
    Ok((
        transport,
        PciDevice {
            function: df,
            irq: interrupt_line(line_pin),
            notify_direct: notify.is_some(),
        },
        notify,
    ))
}

/// A virtio structure's place: BAR, offset and length.
#[derive(Debug, Clone, Copy)]
struct Structure {
    bar: u8,
    offset: u32,
    length: u32,
}

/// The receive and transmit queues' notification registers of `df`,
/// from its common configuration and notification capabilities (the
/// first of each, as the transport takes them). Call before the driver
/// sets the device up: it selects queues in the common configuration,
/// which the transport selects again before each use.
fn queue_notify(
    root: &PciRoot<PortCam>,
    df: DeviceFunction,
    bars: &[Option<BarInfo>; 6],
) -> Option<QueueNotify> {
    let (mut common, mut notify) = (None, None);
    for cap in root.capabilities(df) {
        let (len, cfg_type) = (cap.private_header as u8, (cap.private_header >> 8) as u8);
        if cap.id != CAP_VENDOR || len < 16 {
            continue;
        }
        let word = |at: u8| PortCam.read_word(df, cap.offset.wrapping_add(at));
        let s = Structure {
            bar: word(4) as u8,
            offset: word(8),
            length: word(12),
        };
        match cfg_type {
            CFG_COMMON if common.is_none() => common = Some(s),
            CFG_NOTIFY if notify.is_none() && len >= 20 => notify = Some((s, word(16))),
            _ => {}
        }
    }
    let bar = |i: u8| {
        bars.get(usize::from(i))?
            .as_ref()?
            .memory_address_size()
            .filter(|&(a, _)| a != 0)
    };
    let common = common.filter(|c| c.length >= COMMON_BYTES)?;
    let (common_addr, common_bar) = bar(common.bar)?;
    if u64::from(common.offset) + u64::from(common.length) > common_bar {
        return None;
    }
    let common_regs = mmio::map_registers(
        common_addr + u64::from(common.offset),
        u64::from(COMMON_BYTES),
    )
    .ok()?;
    let (notify, multiplier) = notify?;
    let (notify_addr, notify_bar) = bar(notify.bar)?;
    let reg = |queue: u16| {
        common_regs.write16(COMMON_QUEUE_SELECT, queue);
        let off = common_regs.read16(COMMON_QUEUE_NOTIFY_OFF);
        let at = pci_notify_offset(notify.offset, notify.length, off, multiplier, notify_bar)?;
        mmio::map_registers(notify_addr + at, 2).ok()
    };
    Some(QueueNotify {
        regs: [reg(QUEUE_RECEIVE)?, reg(QUEUE_TRANSMIT)?],
    })
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
