//! The virtio card on PCI: QEMU's `q35` and `pc` machines (the ones
//! SEV-SNP and TDX guests run on) have no virtio-mmio, so the card is a
//! `virtio-net-pci` function there, found on bus 0 through configuration
//! space ([`crate::platform::pci::PortCam`]) and driven through
//! [`PciCard`], the kernel's own modern (virtio 1.0) PCI transport.
//!
//! Why its own: on SEV-SNP and TDX the host answers every configuration
//! read and owns the BARs, and `virtio-drivers` 0.13's PCI transport
//! trusts them (it follows the capability list without a bound, computes
//! offsets in `u8`/`u32` arithmetic that can wrap, hands the result to the
//! HAL's mapping callback, which can only panic on failure, and indexes the
//! notification area with the device's `queue_notify_off` by `unwrap`).
//! Here the capability list is read and checked on its own
//! ([`libos::net::virtio_pci::parse`], host-tested, random lists
//! included): each structure must lie inside its BAR, and is then mapped
//! as a register range of exactly its length, so every later access is
//! bounded by what was checked once. A card whose layout fails the check
//! is logged and left unused.
//!
//! The firmware (SeaBIOS) has assigned the BARs and written the legacy
//! interrupt line before the PVH entry; [`find`] turns on memory
//! decoding and bus mastering (the card's DMA). Its interrupt is the INTx
//! line the firmware routed (`q35`'s PIRQ routing raises the same I/O APIC
//! input as the 8259 line it writes to the interrupt-line register),
//! level-triggered, lowered by the ISR status read; MSI-X stays off (no
//! vector is set).
//!
//! A queue notification is one register write ([`QueueNotify`]): each
//! queue's notification register is found once, where a transport that
//! selects the queue and reads its offset first makes three device
//! accesses (three exits to the hypervisor on SEV-SNP and TDX).
//!
//! Only bus 0 is scanned: a card behind a PCIe root port or bridge is not
//! found (`-device virtio-net-pci` without `bus=` sits on bus 0).

use libos::net::virtio_pci::{self, Layout, Structure};
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::virtio_device_type;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{Error, PhysAddr};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::doorbell::{QUEUE_RECEIVE, QUEUE_TRANSMIT};
use crate::platform::mmio::{self, DeviceRegisters};
use crate::platform::pci::PortCam;

/// The interrupt line and pin register.
const REG_INTERRUPT: u8 = 0x3c;
/// Largest BAR used (virtio-net-pci's are 4 and 16 KiB).
const MAX_BAR_BYTES: u64 = 1 << 20;

/// Registers of the common configuration structure (virtio 1.2, §4.1.4.3).
mod common {
    pub const DEVICE_FEATURE_SELECT: u64 = 0x00;
    pub const DEVICE_FEATURE: u64 = 0x04;
    pub const DRIVER_FEATURE_SELECT: u64 = 0x08;
    pub const DRIVER_FEATURE: u64 = 0x0c;
    pub const DEVICE_STATUS: u64 = 0x14;
    pub const CONFIG_GENERATION: u64 = 0x15;
    pub const QUEUE_SELECT: u64 = 0x16;
    pub const QUEUE_SIZE: u64 = 0x18;
    pub const QUEUE_ENABLE: u64 = 0x1c;
    pub const QUEUE_NOTIFY_OFF: u64 = 0x1e;
    pub const QUEUE_DESC: u64 = 0x20;
    pub const QUEUE_DRIVER: u64 = 0x28;
    pub const QUEUE_DEVICE: u64 = 0x30;
}

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
        write!(f, "PCI {} (one write per notification)", self.function)
    }
}

/// The interrupt line the firmware wrote for a function whose interrupt
/// pin is INTA–INTD; `None` for no pin or an unrouted line (0 or 0xff).
pub fn interrupt_line(line_pin: u32) -> Option<u32> {
    let line = line_pin & 0xff;
    let pin = (line_pin >> 8) & 0xff;
    ((1..=4).contains(&pin) && line != 0 && line != 0xff).then_some(line)
}

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

/// The kernel's virtio-pci transport over a checked [`Layout`].
#[derive(Debug)]
pub struct PciCard {
    device_type: DeviceType,
    common: DeviceRegisters,
    isr: DeviceRegisters,
    device: Option<DeviceRegisters>,
    notify: QueueNotify,
}

impl PciCard {
    /// The queues' notification registers.
    pub fn queue_notify(&self) -> QueueNotify {
        self.notify
    }
}

/// The first function on bus 0 that holds a virtio device of `kind` and
/// opens; functions that do not (unassigned or unmappable BARs, a layout
/// that fails the checks) are logged and skipped.
pub fn find(kind: DeviceType) -> Option<(PciCard, PciDevice)> {
    let mut root = PciRoot::new(PortCam);
    let functions: alloc::vec::Vec<DeviceFunction> = root
        .enumerate_bus(0)
        .filter(|(_, info)| virtio_device_type(info) == Some(kind))
        .map(|(df, _)| df)
        .collect();
    functions
        .into_iter()
        .find_map(|df| match open(&mut root, df, kind) {
            Ok(found) => Some(found),
            Err(why) => {
                log::warn!("virtio-pci {df}: {why}: not used");
                None
            }
        })
}

/// Reads and checks `df`'s layout, maps its structures, enables it.
fn open(
    root: &mut PciRoot<PortCam>,
    df: DeviceFunction,
    kind: DeviceType,
) -> Result<(PciCard, PciDevice), alloc::string::String> {
    let bars = root
        .bars(df)
        .map_err(|e| alloc::format!("its BARs cannot be read ({e})"))?;
    // Each BAR's address and size; 0 for I/O, unassigned or oversized
    // ones, so no structure is accepted there.
    let placed: [(u64, u64); 6] = core::array::from_fn(|i| {
        bars[i]
            .as_ref()
            .and_then(|b| b.memory_address_size())
            .filter(|&(addr, bytes)| addr != 0 && bytes <= MAX_BAR_BYTES)
            .unwrap_or((0, 0))
    });
    let sizes = placed.map(|(_, bytes)| bytes);
    let layout = virtio_pci::parse(|at| PortCam.read_word(df, at), &sizes)
        .map_err(|e| alloc::format!("its virtio capabilities are not usable ({e:?})"))?;
    let map = |s: Structure| {
        let (addr, _) = placed[usize::from(s.bar)];
        let at = addr + u64::from(s.offset);
        mmio::map_registers(at, u64::from(s.length))
            .map_err(|e| alloc::format!("registers at {at:#x} cannot be mapped ({e:?})"))
    };
    let common = map(layout.common)?;
    let notify_base = placed[usize::from(layout.notify.bar)].0 + u64::from(layout.notify.offset);
    let notify = QueueNotify {
        regs: [
            queue_register(&common, &layout, notify_base, QUEUE_RECEIVE)?,
            queue_register(&common, &layout, notify_base, QUEUE_TRANSMIT)?,
        ],
    };
    let card = PciCard {
        device_type: kind,
        common,
        isr: map(layout.isr)?,
        device: layout.device.map(map).transpose()?,
        notify,
    };
    let (_, command) = root.get_status_command(df);
    root.set_command(df, command | Command::MEMORY_SPACE | Command::BUS_MASTER);
    let line_pin = PortCam.read_word(df, REG_INTERRUPT);
    Ok((
        card,
        PciDevice {
            function: df,
            irq: interrupt_line(line_pin),
        },
    ))
}

/// `queue`'s notification register, mapped on its own.
fn queue_register(
    common: &DeviceRegisters,
    layout: &Layout,
    notify_base: u64,
    queue: u16,
) -> Result<DeviceRegisters, alloc::string::String> {
    common.write16(common::QUEUE_SELECT, queue);
    let off = common.read16(common::QUEUE_NOTIFY_OFF);
    let within = virtio_pci::notify_offset(layout.notify.length, off, layout.notify_multiplier)
        .ok_or_else(|| {
            alloc::format!("queue {queue}'s notification offset {off} lies outside its structure")
        })?;
    mmio::map_registers(notify_base + u64::from(within), 2)
        .map_err(|e| alloc::format!("queue {queue}'s notification register ({e:?})"))
}

impl PciCard {
    fn select(&self, queue: u16) {
        self.common.write16(common::QUEUE_SELECT, queue);
    }

    fn write64(&self, offset: u64, value: u64) {
        // Two 32-bit halves, low first, as virtio 1.2 §4.1.3.1 allows.
        self.common.write32(offset, value as u32);
        self.common.write32(offset + 4, (value >> 32) as u32);
    }

    /// The device configuration `[offset, offset + len)`, if it lies there.
    fn device_range(&self, offset: usize, len: usize) -> virtio_drivers::Result<&DeviceRegisters> {
        let device = self.device.as_ref().ok_or(Error::ConfigSpaceMissing)?;
        match offset.checked_add(len) {
            Some(end) if end as u64 <= device.bytes() => Ok(device),
            _ => Err(Error::ConfigSpaceTooSmall),
        }
    }
}

impl Transport for PciCard {
    fn device_type(&self) -> DeviceType {
        self.device_type
    }

    fn read_device_features(&mut self) -> u64 {
        self.common.write32(common::DEVICE_FEATURE_SELECT, 0);
        let low = self.common.read32(common::DEVICE_FEATURE);
        self.common.write32(common::DEVICE_FEATURE_SELECT, 1);
        let high = self.common.read32(common::DEVICE_FEATURE);
        u64::from(low) | u64::from(high) << 32
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.common.write32(common::DRIVER_FEATURE_SELECT, 0);
        self.common
            .write32(common::DRIVER_FEATURE, driver_features as u32);
        self.common.write32(common::DRIVER_FEATURE_SELECT, 1);
        self.common
            .write32(common::DRIVER_FEATURE, (driver_features >> 32) as u32);
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.select(queue);
        self.common.read16(common::QUEUE_SIZE).into()
    }

    fn notify(&mut self, queue: u16) {
        if !self.notify.notify(queue) {
            log::warn!("virtio-pci: no notification register for queue {queue}");
        }
    }

    fn get_status(&self) -> DeviceStatus {
        DeviceStatus::from_bits_truncate(self.common.read8(common::DEVICE_STATUS).into())
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.common
            .write8(common::DEVICE_STATUS, status.bits() as u8);
    }

    fn set_guest_page_size(&mut self, _guest_page_size: u32) {
        // The PCI transport has no page size.
    }

    fn requires_legacy_layout(&self) -> bool {
        false
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.select(queue);
        self.common.write16(common::QUEUE_SIZE, size as u16);
        self.write64(common::QUEUE_DESC, descriptors);
        self.write64(common::QUEUE_DRIVER, driver_area);
        self.write64(common::QUEUE_DEVICE, device_area);
        self.common.write16(common::QUEUE_ENABLE, 1);
    }

    fn queue_unset(&mut self, _queue: u16) {
        // A queue cannot be disabled on PCI short of a device reset.
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.select(queue);
        self.common.read16(common::QUEUE_ENABLE) == 1
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        // Reading the ISR status clears it and lowers the INTx line.
        InterruptStatus::from_bits_retain(self.isr.read8(0).into())
    }

    fn read_config_generation(&self) -> u32 {
        self.common.read8(common::CONFIG_GENERATION).into()
    }

    fn read_config_space<T: FromBytes + IntoBytes>(
        &self,
        offset: usize,
    ) -> virtio_drivers::Result<T> {
        let len = size_of::<T>();
        let device = self.device_range(offset, len)?;
        let mut value = T::new_zeroed();
        let bytes = value.as_mut_bytes();
        let at = offset as u64;
        match len {
            4 if offset.is_multiple_of(4) => {
                bytes.copy_from_slice(&device.read32(at).to_le_bytes())
            }
            2 if offset.is_multiple_of(2) => {
                bytes.copy_from_slice(&device.read16(at).to_le_bytes())
            }
            _ => {
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = device.read8(at + i as u64);
                }
            }
        }
        Ok(value)
    }

    fn write_config_space<T: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> virtio_drivers::Result<()> {
        let device = self.device_range(offset, size_of::<T>())?;
        for (i, b) in value.as_bytes().iter().enumerate() {
            device.write8(offset as u64 + i as u64, *b);
        }
        Ok(())
    }
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
